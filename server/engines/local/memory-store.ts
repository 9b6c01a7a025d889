/** An in-memory ChatStore with the same contract as SQLite's, for model tests and fault injection. */

import type { v2 } from "../../../protocol";
import type { ChangePage, Post } from "../../chat/engine";
import { randomToken } from "../../chat/tokens";
import { above, type MemoryPost, MemoryUsers } from "./memory-users";
import type { ChatStore, Page, PruneStep, SessionRecord, StoredChange, StoredMessage } from "./store";
import { toChatMessage } from "./store";

/** A stored change: its rev and its wire message as JSON (parsed afresh for each reader). */
interface ChangeRow {
  rev: number;
  body: string;
}

const revOf = (c: ChangeRow) => c.rev;
const seqOf = (m: MemoryPost) => m.seq;

/** A post as its changes left it; the fields of a change only when they apply (as SQLite's toPost). */
function folded(m: MemoryPost): Post {
  const post = toChatMessage(m);
  if (m.editedAt !== undefined) post.editedAt = m.editedAt;
  if (m.deleted) post.deleted = true;
  if (m.reactions !== undefined) post.reactions = copyReactions(m.reactions);
  return post;
}

function copyReactions(list: readonly { emoji: string; nicks: string[]; ids: string[] }[]) {
  return list.map((r) => ({ emoji: r.emoji, nicks: [...r.nicks], ids: [...r.ids] }));
}

/** An ISO time as SQLite answers it (stored in ms); throws on one that is not a time. */
function isoOf(text: string): string {
  const ms = Date.parse(text);
  if (Number.isNaN(ms)) throw new Error(`editedAt ${text} is no time`);
  return new Date(ms).toISOString();
}

export class MemoryStore implements ChatStore {
  private readonly rooms = new Map<string, MemoryPost[]>();
  private readonly sessions = new Map<string, SessionRecord>();
  /** Room -> its changes, ascending by rev (kept when their posts are pruned, as in SQLite). */
  private readonly changeLog = new Map<string, ChangeRow[]>();
  private readonly meta = new Map<string, { lastRev: number; topic: string }>();
  readonly users = new MemoryUsers((room) => this.rooms.get(room));

  lastSeq(room: string): number {
    const list = this.rooms.get(room);
    return list?.length ? (list[list.length - 1] as StoredMessage).seq : 0;
  }

  before(room: string, before: number, limit: number): Page {
    const older = (this.rooms.get(room) ?? []).filter((m) => m.seq < before);
    const page = older.slice(Math.max(0, older.length - limit));
    return { messages: page.map(folded), more: older.length > page.length };
  }

  after(room: string, after: number, limit: number): Page {
    const newer = (this.rooms.get(room) ?? []).filter((m) => m.seq > after);
    const page = newer.slice(Math.max(0, newer.length - limit));
    return { messages: page.map(folded), more: newer.length > page.length };
  }

  /**
   * Checks the whole batch before storing any of it, so a bad message or change leaves nothing
   * behind. Stricter than SQLite: seqs and revs must rise within a room (SQLite refuses repeats).
   */
  commit(
    messages: readonly StoredMessage[],
    sessions: readonly SessionRecord[],
    changes: readonly StoredChange[] = [],
  ): void {
    const last = new Map<string, number>();
    for (const m of messages) {
      const prev = last.get(m.room) ?? this.rooms.get(m.room)?.at(-1)?.seq ?? 0;
      if (m.seq <= prev) throw new Error(`seq ${m.seq} already stored in ${m.room}`);
      last.set(m.room, m.seq);
    }
    const lastRev = new Map<string, number>();
    const bodies: string[] = [];
    const editedAt: Array<string | undefined> = [];
    for (const { room, change, post } of changes) {
      const prev = lastRev.get(room) ?? this.meta.get(room)?.lastRev ?? 0;
      if (change.rev <= prev) throw new Error(`rev ${change.rev} already stored in ${room}`);
      lastRev.set(room, change.rev);
      bodies.push(JSON.stringify(change));
      editedAt.push(post?.editedAt === undefined || post.deleted ? undefined : isoOf(post.editedAt));
    }
    for (const m of messages) {
      const list = this.rooms.get(m.room) ?? [];
      list.push({ ...m });
      this.rooms.set(m.room, list);
      this.users.posted(m);
    }
    for (const s of sessions) this.sessions.set(s.id, { ...s });
    changes.forEach(({ room, change, post }, i) => {
      const log = this.changeLog.get(room) ?? [];
      log.push({ rev: change.rev, body: bodies[i] as string });
      this.changeLog.set(room, log);
      const meta = this.meta.get(room) ?? { lastRev: 0, topic: "" };
      meta.lastRev = change.rev;
      if (change.type === "topic") meta.topic = change.topic;
      this.meta.set(room, meta);
      if (change.type === "delete") {
        // Earlier edits hold the deleted post's text: each becomes the delete, at its own rev (as SQLite).
        for (const c of log) {
          const body = JSON.parse(c.body) as v2.Change;
          if (body.type === "edit" && body.seq === change.seq) {
            c.body = JSON.stringify({ type: "delete", room, rev: c.rev, seq: change.seq, by: change.by });
          }
        }
      }
      if (post) this.fold(room, post, editedAt[i]);
    });
  }

  /** Writes a post's folded state over the kept one; a pruned post has none to write over. */
  private fold(room: string, post: Post, editedAt: string | undefined): void {
    const list = this.rooms.get(room) ?? [];
    const i = above(list, post.seq - 1, seqOf);
    const kept = list[i];
    if (kept?.seq !== post.seq) return;
    const { editedAt: _e, deleted: _d, reactions: _r, mentionIds, ...stored } = kept;
    const next: MemoryPost = {
      ...stored,
      text: post.text,
      mentions: post.mentions ? [...post.mentions] : null,
    };
    if (post.deleted) {
      // Nothing of what it said stays, and it mentions no one.
      next.text = "";
      next.mentions = null;
      next.deleted = true;
      this.users.unmention(room, post.seq);
    } else {
      if (mentionIds !== undefined) next.mentionIds = mentionIds;
      if (editedAt !== undefined) next.editedAt = editedAt;
      if (post.reactions?.length) next.reactions = copyReactions(post.reactions);
    }
    list[i] = next;
  }

  post(room: string, seq: number): Post | undefined {
    const list = this.rooms.get(room) ?? [];
    const m = list[above(list, seq - 1, seqOf)];
    return m?.seq === seq ? folded(m) : undefined;
  }

  changes(room: string, sinceRev: number, upTo: number, limit: number): ChangePage {
    const log = this.changeLog.get(room) ?? [];
    const from = above(log, sinceRev, revOf);
    const to = Math.max(from, above(log, upTo, revOf));
    const n = Math.min(to - from, Math.max(0, limit));
    return {
      changes: log.slice(from, from + n).map((c) => JSON.parse(c.body) as v2.Change),
      more: to - from > n,
    };
  }

  roomMeta(room: string): { lastRev: number; topic: string } {
    const meta = this.meta.get(room);
    return meta ? { ...meta } : { lastRev: 0, topic: "" };
  }

  loadSession(id: string): SessionRecord | undefined {
    const s = this.sessions.get(id);
    return s && { ...s };
  }

  recentClientIds(session: string, room: string, limit: number): Array<[string, number]> {
    const list = this.rooms.get(room) ?? [];
    const out: Array<[string, number]> = [];
    for (let i = list.length - 1; i >= 0 && out.length < limit; i--) {
      const m = list[i] as StoredMessage;
      if (m.session === session && m.clientId !== null) out.push([m.clientId, m.seq]);
    }
    return out;
  }

  dropSessions(endedBefore: number): void {
    for (const [id, s] of this.sessions) {
      if (s.endedAt !== null && s.endedAt < endedBefore) this.sessions.delete(id);
    }
  }

  prune(keepPerRoom: number, olderThanMs: number): number {
    return this.pruneStep(keepPerRoom, olderThanMs, Number.POSITIVE_INFINITY).deleted;
  }

  /** Only rows deleted count as work here: looking at a room in memory costs next to nothing. */
  pruneStep(keepPerRoom: number, olderThanMs: number, work: number): PruneStep {
    if (keepPerRoom <= 0 && olderThanMs <= 0) return { deleted: 0, done: true };
    let deleted = 0;
    for (const [room, list] of this.rooms) {
      const beyond = keepPerRoom > 0 ? list.length - keepPerRoom : 0;
      let k = 0;
      // Never the newest: the room's seq must survive.
      for (; k < list.length - 1; k++) {
        const old = olderThanMs > 0 && (list[k] as StoredMessage).sentAt < olderThanMs;
        if (k >= beyond && !old) break;
        if (deleted + k >= work) {
          this.drop(room, list, k);
          return { deleted: deleted + k, done: false };
        }
      }
      this.drop(room, list, k);
      deleted += k;
    }
    return { deleted, done: true };
  }

  /** Deletes a room's oldest `k` messages, and their mentions (their changes stay, as in SQLite). */
  private drop(room: string, list: StoredMessage[], k: number): void {
    if (k === 0) return;
    list.splice(0, k);
    this.users.pruned(room, (list[0] as StoredMessage).seq);
  }

  private readonly generation = randomToken(9);

  epoch(): string {
    return this.generation;
  }

  close(): void {}
}
