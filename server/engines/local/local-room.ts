/** One room as the local engine keeps it: seq counters, nickname claims and the log entries waiting for the next flush. */
import type { Page, Post, RoomEntry } from "../../chat/engine";
import type { PendingChat } from "./local-sessions";
import type { StoredChange } from "./store";

/** A log entry waiting for the flush; a chat becomes `chat` once stored, `void` if its write failed. */
export type Queued<C> =
  | Exclude<RoomEntry, { kind: "chat" | "void" | "change" }>
  | { n: number; kind: "chat"; chat: PendingChat<C> }
  | { n: number; kind: "change"; stored: StoredChange };

/** Who holds a nickname in a room. */
export interface NickClaim {
  connId: string;
  nick: string;
}

export class LocalRoom<C> {
  /** Next seq to hand out, and the newest one committed to storage. */
  nextSeq: number;
  committedSeq: number;
  /** The same for changes' revs. */
  nextRev: number;
  committedRev: number;
  /** Posts changed by changes not yet committed, by seq: what the next change of them starts from. */
  readonly changed = new Map<number, Post>();
  /** Number of the newest log entry. */
  n = 0;
  /** nickKey -> holder. */
  readonly claims = new Map<string, NickClaim>();
  /** v2 users here: their nick and the connections that share their claim (see `claims`, held as `u:ID`). */
  readonly userClaims = new Map<string, { nick: string; holders: Set<string> }>();
  outbox: Array<Queued<C>> = [];
  /** The last plain welcome page read, and the seq it was read up to. */
  latestPage: { upTo: number; page: Page } | undefined;
  /** A replica follows it: its entry numbers must not start again. */
  followed = false;

  constructor(
    readonly name: string,
    lastSeq: number,
    lastRev = 0,
  ) {
    this.nextSeq = lastSeq + 1;
    this.committedSeq = lastSeq;
    this.nextRev = lastRev + 1;
    this.committedRev = lastRev;
  }

  get idle(): boolean {
    return !this.followed && this.claims.size === 0 && this.outbox.length === 0;
  }
}
