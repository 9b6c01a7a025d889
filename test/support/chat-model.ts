/** The deliberately simpler model both model-based tests check the hubs against: plain lists and counters. */
import type { PresenceEvent, ServerMessage } from "../../protocol";

export const ROOMS = ["lobby", "Dev", "dev"];
export const NICKS = [
  "ann",
  "Ann",
  "bob",
  "BOB",
  "carol",
  "a-very-long-nickname-of-32-chars",
  "bad nick",
  undefined,
];
export const SLOTS = 5;
export const HISTORY = 50;

// ---- the model: plain lists and counters, no sessions or queues ----

export interface ModelMessage {
  seq: number;
  nick: string;
  text: string;
  sentAt: string;
}

export interface ModelClient {
  open: boolean;
  room: string;
  nick: string;
  token: string;
  lastTyping: number;
  /** `room/id` of each message this session sent with an id, and the seq it got. */
  ids: Map<string, number>;
}

export class Model {
  now = 1_700_000_000_000;
  guest = 0;
  clients: Array<ModelClient | undefined> = [];
  seq = new Map<string, number>();
  log = new Map<string, ModelMessage[]>();
  /** Expected new messages per slot for the step being checked. */
  expect = new Map<number, Array<Partial<ServerMessage>>>();

  members(room: string, except?: number): number[] {
    const out: number[] = [];
    this.clients.forEach((c, i) => {
      if (c?.open && c.room === room && i !== except) out.push(i);
    });
    return out;
  }

  users(room: string): string[] {
    const nicks = this.members(room).map((i) => (this.clients[i] as ModelClient).nick);
    return nicks.sort((a, b) => {
      const [x, y] = [a.toLowerCase(), b.toLowerCase()];
      return x < y ? -1 : x > y ? 1 : a < b ? -1 : a > b ? 1 : 0;
    });
  }

  taken(room: string, nick: string, except?: number): boolean {
    return this.members(room, except).some((i) => this.clients[i]?.nick.toLowerCase() === nick.toLowerCase());
  }

  freeNick(room: string, wanted: string, except?: number): string {
    if (!this.taken(room, wanted, except)) return wanted;
    for (let n = 2; ; n++) {
      const suffix = `-${n}`;
      const nick = [...wanted].slice(0, 32 - suffix.length).join("") + suffix;
      if (!this.taken(room, nick, except)) return nick;
    }
  }

  guestNick(room: string): string {
    let nick: string;
    do nick = `guest-${++this.guest}`;
    while (this.taken(room, nick));
    return nick;
  }

  to(slot: number, msg: Partial<ServerMessage>): void {
    const list = this.expect.get(slot) ?? [];
    list.push(msg);
    this.expect.set(slot, list);
  }

  presence(room: string, event: PresenceEvent, except?: number): void {
    for (const i of this.members(room, except)) this.to(i, { type: "presence", room, events: [event] });
  }

  welcome(slot: number): void {
    const c = this.clients[slot] as ModelClient;
    const log = this.log.get(c.room) ?? [];
    this.to(slot, {
      type: "welcome",
      room: c.room,
      nick: c.nick,
      users: this.users(c.room),
      history: log.slice(-HISTORY).map((m) => ({ type: "chat" as const, room: c.room, ...m })),
      historyTruncated: log.length > HISTORY,
      lastSeq: this.seq.get(c.room) ?? 0,
    });
  }
}

/** Keeps only the fields the model predicts: ids, tokens and epochs are the server's own. */
export function comparable(msg: ServerMessage): Partial<ServerMessage> {
  if (msg.type === "welcome") {
    const { connectionId: _c, resumeToken: _r, protocol: _p, epoch: _e, ...rest } = msg;
    return rest;
  }
  if (msg.type === "error") return { type: "error", code: msg.code, ...(msg.id ? { id: msg.id } : {}) };
  return msg;
}

/** What each slot's peer received since the last call (`seen` holds how far each was read). */
export function receivedSince(
  peers: ReadonlyArray<{ inbox: ServerMessage[] } | undefined>,
  seen: number[],
): Map<number, ServerMessage[]> {
  const out = new Map<number, ServerMessage[]>();
  peers.forEach((p, i) => {
    if (!p) return;
    const fresh = p.inbox.slice(seen[i] ?? 0);
    seen[i] = p.inbox.length;
    if (fresh.length) out.set(i, fresh);
  });
  return out;
}
