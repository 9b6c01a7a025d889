/**
 * What a v2 client is told of one of its rooms (a RoomState: in the welcome, and as `joined`), and
 * the counts in it. Counts come from the engine's index as of the replica's newest seq; an engine
 * that answers later (Redis) is asked again if a room moved meanwhile, so they stay exact.
 */
import { v2 } from "../../../protocol";
import type { Connection } from "../connection";
import type { Replica } from "../replica";
import type { Counts, Membership, UserStore } from "../users";

/** Times counts are asked again because a room moved while they were counted; then they go as they are. */
const COUNT_TRIES = 3;

export function roomState(
  replica: Replica<Connection>,
  mark: Membership | undefined,
  counts: Counts,
  peerNick: string | undefined,
): v2.RoomState {
  const state: v2.RoomState = {
    room: replica.name,
    topic: replica.subject,
    users: replica.sortedUsers(),
    lastSeq: replica.lastSeq,
    lastRev: replica.lastRev,
    readSeq: Math.min(mark?.readSeq ?? replica.lastSeq, replica.lastSeq),
    unread: counts.unread,
    mentions: counts.mentions,
  };
  if (peerNick !== undefined) state.dm = { nick: peerNick };
  if (replica.epoch !== undefined) state.epoch = replica.epoch;
  return state;
}

export interface Counted {
  counts: Counts[];
  /** Nicknames of the other users of the direct rooms among them. */
  peers: Map<string, string>;
}

/**
 * Counts for `members` (with their marks), then calls `done` in the same turn as it checked that
 * none of their rooms moved since: what `done` sends is exact as of that moment.
 */
export function countFor(
  users: UserStore,
  userId: string,
  members: readonly Connection[],
  marks: ReadonlyMap<string, Membership>,
  done: (err: unknown, counted?: Counted) => void,
  tries = COUNT_TRIES,
): void {
  const replicas = members.map((m) => m.replica as Replica<Connection>);
  const upTo = replicas.map((r) => r.lastSeq);
  const queries = replicas.map((r, i) => ({
    room: r.name,
    readSeq: Math.min(marks.get(r.name)?.readSeq ?? r.lastSeq, r.lastSeq),
    upTo: upTo[i] as number,
  }));
  const peerIds = [...new Set(replicas.map((r) => marks.get(r.name)?.peer).filter((p) => p !== undefined))];
  users.counts(userId, queries, v2.LIMITS_V2.unreadMax, (err, counts) => {
    if (err !== undefined && err !== null) return done(err);
    const finish = (peers: Map<string, string>) => {
      const moved = replicas.some((r, i) => r.lastSeq !== upTo[i]);
      if (moved && tries > 1) return countFor(users, userId, members, marks, done, tries - 1);
      done(undefined, { counts: counts ?? [], peers });
    };
    if (peerIds.length === 0) return finish(new Map());
    users.nicks(peerIds as string[], (nErr, nicks) => {
      if (nErr !== undefined && nErr !== null) return done(nErr);
      finish(nicks ?? new Map());
    });
  });
}
