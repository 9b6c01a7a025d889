/** How much wants the reader's attention, for the title and the favicon badge. Pure. */

export interface RoomCounts {
  unread: number;
  mentions: number;
  /** A direct room: every unread post in it counts as a mention. */
  dm?: string;
}

export interface Attention {
  unread: number;
  mentions: number;
}

/** Totals over rooms; a direct room's unread posts are all addressed to the reader. */
export function attentionOf(rooms: Iterable<RoomCounts>): Attention {
  let unread = 0;
  let mentions = 0;
  for (const room of rooms) {
    unread += room.unread;
    mentions += room.dm !== undefined ? room.unread : room.mentions;
  }
  return { unread, mentions };
}

/** A room's pill: mentions (or a direct room's unread) win over plain unread. */
export function pillOf(room: RoomCounts): { count: number; mention: boolean } | undefined {
  const mentions = room.dm !== undefined ? room.unread : room.mentions;
  if (mentions > 0) return { count: mentions, mention: true };
  if (room.unread > 0) return { count: room.unread, mention: false };
  return undefined;
}

function shortCount(n: number): string {
  return n > 999 ? "999+" : String(n);
}

/** "(2!) #lobby · bun-chat" with mentions, "(3) #lobby · bun-chat" with only unread posts. */
export function titleText(a: Attention, place: string | undefined, app = "bun-chat"): string {
  const badge =
    a.mentions > 0 ? `(${shortCount(a.mentions)}!) ` : a.unread > 0 ? `(${shortCount(a.unread)}) ` : "";
  return `${badge}${place ? `${place} · ` : ""}${app}`;
}

export { shortCount };
