/**
 * What the timeline shows, as rows, from a room's posts and the page's own notes (presence, answers
 * to commands, problems): day separators, the "New messages" line, posts grouped by author within a
 * few minutes, and runs of joins and leaves folded into one row. Pure: the DOM is timeline-view.ts's.
 */
import type { ClientPost } from "../v2/api";

/** Posts by one author closer together than this share one head (nick and time shown once). */
export const GROUP_MS = 5 * 60 * 1000;

/** Something the page noted in a room's timeline: not a post, never sent to the server. */
interface NoteBase {
  id: number;
  /** When it happened (ms). */
  at: number;
  /** The room's newest seq when it happened: the note follows that post. */
  afterSeq: number;
}
export type PresenceNote =
  | (NoteBase & { kind: "join" | "leave"; nick: string })
  | (NoteBase & { kind: "rename"; from: string; to: string });
export type TextNote = NoteBase & { kind: "info" | "error"; text: string };
export type Note = PresenceNote | TextNote;

const isText = (note: Note): note is TextNote => note.kind === "info" || note.kind === "error";

export type Row =
  | { kind: "day"; key: string; at: number }
  | { kind: "unread"; key: string }
  | { kind: "post"; key: string; post: ClientPost; head: boolean }
  | { kind: "presence"; key: string; at: number; notes: PresenceNote[] }
  | { kind: "note"; key: string; note: TextNote };

export interface RowOptions {
  /** The read marker when the reader arrived: the "New messages" line goes after it. */
  unreadAfter?: number;
  /** True for posts by the reader (they never start the unread part). */
  isOwn?: (post: ClientPost) => boolean;
}

type Item = { post: ClientPost; at: number } | { note: Note; at: number };

/** Posts (ascending by seq) and notes (ascending by id) woven together: a note follows the post it came after. */
function weave(posts: readonly ClientPost[], notes: readonly Note[]): Item[] {
  const items: Item[] = [];
  let n = 0;
  // Notes from before the oldest post held go first.
  const firstSeq = posts[0]?.seq ?? Number.POSITIVE_INFINITY;
  while (n < notes.length && (notes[n] as Note).afterSeq < firstSeq) {
    const note = notes[n++] as Note;
    items.push({ note, at: note.at });
  }
  for (let i = 0; i < posts.length; i++) {
    const post = posts[i] as ClientPost;
    items.push({ post, at: Date.parse(post.sentAt) });
    const nextSeq = posts[i + 1]?.seq ?? Number.POSITIVE_INFINITY;
    while (n < notes.length && (notes[n] as Note).afterSeq < nextSeq) {
      const note = notes[n++] as Note;
      items.push({ note, at: note.at });
    }
  }
  return items;
}

/** The local calendar day of a time, as a key. */
export function dayKey(at: number): string {
  const d = new Date(at);
  return `${d.getFullYear()}-${d.getMonth() + 1}-${d.getDate()}`;
}

export function buildRows(
  posts: readonly ClientPost[],
  notes: readonly Note[],
  opts: RowOptions = {},
): Row[] {
  const rows: Row[] = [];
  let day = "";
  let unreadPlaced = opts.unreadAfter === undefined;
  let lastPost: ClientPost | undefined;
  let lastAt = 0;
  for (const item of weave(posts, notes)) {
    const at = Number.isFinite(item.at) ? item.at : lastAt;
    const key = dayKey(at);
    let broken = false;
    if (key !== day) {
      day = key;
      rows.push({ kind: "day", key: `d${key}`, at });
      broken = true;
    }
    if ("post" in item) {
      const post = item.post;
      if (!unreadPlaced && post.seq > (opts.unreadAfter ?? 0) && !opts.isOwn?.(post)) {
        unreadPlaced = true;
        rows.push({ kind: "unread", key: "unread" });
        broken = true;
      }
      const head =
        broken ||
        lastPost === undefined ||
        lastPost.userId !== post.userId ||
        lastPost.nick !== post.nick ||
        lastPost.kind === "action" ||
        post.kind === "action" ||
        at - lastAt > GROUP_MS;
      rows.push({ kind: "post", key: `p${post.seq}`, post, head });
      lastPost = post;
    } else {
      const note = item.note;
      const prev = rows.at(-1);
      if (isText(note)) {
        rows.push({ kind: "note", key: `n${note.id}`, note });
      } else if (prev?.kind === "presence" && !broken) {
        prev.notes.push(note);
      } else {
        rows.push({ kind: "presence", key: `n${note.id}`, at, notes: [note] });
      }
      lastPost = undefined;
    }
    lastAt = at;
  }
  return rows;
}

/** What a run of presence notes says, in a few words. */
export interface PresenceSummary {
  text: string;
  /** Every name involved, for the expanded view. */
  detail: string;
}

function listNames(names: string[]): string {
  if (names.length <= 1) return names.join("");
  return `${names.slice(0, -1).join(", ")} and ${names.at(-1)}`;
}

function people(names: string[], verb: string): string {
  if (names.length <= 2) return `${listNames(names)} ${verb}`;
  return `${names.length} people ${verb}`;
}

export function summarizePresence(notes: readonly PresenceNote[]): PresenceSummary {
  const joined: string[] = [];
  const left: string[] = [];
  const renames: string[] = [];
  for (const note of notes) {
    if (note.kind === "rename") renames.push(`${note.from} is now known as ${note.to}`);
    else {
      const list = note.kind === "join" ? joined : left;
      if (!list.includes(note.nick)) list.push(note.nick);
    }
  }
  const parts: string[] = [];
  if (joined.length > 0) parts.push(people(joined, "joined"));
  if (left.length > 0) parts.push(people(left, "left"));
  if (renames.length === 1) parts.push(renames[0] as string);
  else if (renames.length > 1) parts.push(`${renames.length} people changed their names`);
  const detail: string[] = [];
  if (joined.length > 2) detail.push(`Joined: ${joined.join(", ")}`);
  if (left.length > 2) detail.push(`Left: ${left.join(", ")}`);
  if (renames.length > 1) detail.push(...renames);
  return { text: parts.join(" · "), detail: detail.join(". ") };
}

/** "Today", "Yesterday", a weekday within the last week, else the date (with the year when not this year). */
export function dayLabel(at: number, now: number = Date.now(), locale?: string): string {
  const startOf = (t: number) => {
    const d = new Date(t);
    d.setHours(0, 0, 0, 0);
    return d.getTime();
  };
  const days = Math.round((startOf(now) - startOf(at)) / 86_400_000);
  if (days === 0) return "Today";
  if (days === 1) return "Yesterday";
  const date = new Date(at);
  if (days > 1 && days < 7) return date.toLocaleDateString(locale, { weekday: "long" });
  const sameYear = date.getFullYear() === new Date(now).getFullYear();
  return date.toLocaleDateString(locale, {
    weekday: sameYear ? "long" : undefined,
    day: "numeric",
    month: "long",
    year: sameYear ? undefined : "numeric",
  });
}
