/**
 * One room as the v2 client holds it: posts by seq (folded with their changes), the changes applied
 * by rev, the user list, the read marker and the unread and mention counts. Pure state, no socket:
 * the client feeds it frames and asks it for views.
 *
 * Counts: the RoomState of a welcome or `joined` gives `unread` and `mentions` exactly up to its
 * `lastSeq`; every post after that (live or from a sync) is counted here as it first arrives. When
 * the held posts cover everything after the read marker, the counts are worked out from them again
 * (after a read, a delete or a sync), so they meet the server's.
 */
import { compareNicks, nickKey } from "../../protocol/names";
import { LIMITS_V2 } from "../../protocol/v2/limits";
import type { ClientPost, PendingPost, RoomView } from "./api";
import type { ChangeFrame, FoldedPostFrame, PresenceEventFrame, RoomStateFrame } from "./guards";

/** Who the client is, for counting: own posts never count, mentions match by the same-name rule. */
export interface Me {
  userId: string | undefined;
  nick: string | undefined;
}

/** Posts a fresh room keeps after its first sync (older ones come with `loadOlder`). */
export const KEEP_POSTS = 300;

/** A post from the wire as the client holds it: only the fields it knows, plus its room. */
export function toClientPost(room: string, p: FoldedPostFrame): ClientPost {
  const post: ClientPost = {
    room,
    seq: p.seq,
    nick: p.nick,
    userId: p.userId,
    text: p.text,
    sentAt: p.sentAt,
  };
  if (p.kind !== undefined) post.kind = p.kind;
  if (p.replyTo !== undefined) post.replyTo = p.replyTo;
  if (p.mentions !== undefined && p.mentions.length > 0) post.mentions = [...p.mentions];
  if (p.editedAt !== undefined) post.editedAt = p.editedAt;
  if (p.deleted === true) post.deleted = true;
  if (p.reactions !== undefined && p.reactions.length > 0) {
    post.reactions = p.reactions.map((r) => ({ emoji: r.emoji, nicks: [...r.nicks] }));
  }
  return post;
}

/** True when `post` names `nick` among its mentions (same-name rule). */
export function mentionsNick(post: { mentions?: string[] }, nick: string | undefined): boolean {
  if (nick === undefined || !post.mentions) return false;
  const key = nickKey(nick);
  return post.mentions.some((m) => m === nick || nickKey(m) === key);
}

const cap = (n: number) => Math.max(0, Math.min(LIMITS_V2.unreadMax, n));

export class RoomModel {
  topic = "";
  users: string[] = [];
  /** The room's newest seq as far as this client knows; posts up to it are counted. */
  lastSeq = 0;
  /** The newest rev the server reported (RoomState); `appliedRev` is what the held posts reflect. */
  serverRev = 0;
  /** Changes up to this rev are in the held posts: a sync asks for the ones after it. */
  appliedRev = 0;
  readSeq = 0;
  unread = 0;
  mentions = 0;
  dm: string | undefined;
  epoch: string | undefined;
  /** Ascending by seq. */
  posts: ClientPost[] = [];
  hasOlder = false;
  pending: PendingPost[] = [];
  /** Nick -> when its typing notice expires (ms, Date.now()). */
  readonly typing = new Map<string, number>();
  /** Seqs of held posts that mention this user, judged as each arrived. */
  private readonly mentioned = new Set<number>();
  /** A sync answer came on the current connection. */
  synced = false;
  private cached: RoomView | undefined;

  constructor(readonly room: string) {}

  /** Something changed: the next `view()` is built afresh. */
  touch(): void {
    this.cached = undefined;
  }

  view(now: number): RoomView {
    if (this.cached) return this.cached;
    const view: RoomView = {
      room: this.room,
      topic: this.topic,
      users: [...this.users],
      lastSeq: this.lastSeq,
      lastRev: Math.max(this.appliedRev, this.serverRev),
      readSeq: this.readSeq,
      unread: this.unread,
      mentions: this.mentions,
      posts: [...this.posts],
      hasOlder: this.hasOlder,
      pending: this.pending.map((p) => ({ ...p })),
      typing: [...this.typing].filter(([, until]) => until > now).map(([nick]) => nick),
    };
    if (this.dm !== undefined) view.dm = this.dm;
    this.cached = view;
    return view;
  }

  /** Takes a RoomState (welcome or `joined`): counts, users, topic; a new epoch starts the posts over. */
  applyState(state: RoomStateFrame): void {
    const newest = this.posts.at(-1)?.seq ?? 0;
    const restarted =
      (state.epoch !== undefined && this.epoch !== undefined && state.epoch !== this.epoch) ||
      state.lastSeq < newest;
    if (restarted) {
      this.posts = [];
      this.mentioned.clear();
      this.appliedRev = 0;
      this.hasOlder = false;
    }
    this.epoch = state.epoch ?? this.epoch;
    this.topic = state.topic;
    this.users = [...state.users];
    this.lastSeq = state.lastSeq;
    this.serverRev = state.lastRev;
    // Holding no posts, nothing needs the changes up to now: a sync's posts come folded.
    if (this.posts.length === 0) this.appliedRev = Math.max(this.appliedRev, state.lastRev);
    this.readSeq = state.readSeq;
    this.unread = state.unread;
    this.mentions = state.mentions;
    this.dm = state.dm?.nick;
    this.synced = false;
    this.touch();
  }

  /** The `sync` request for this room: after the newest post held and the newest change applied. */
  syncRequest(): { since: number; sinceRev: number } {
    return { since: this.posts.at(-1)?.seq ?? 0, sinceRev: this.appliedRev };
  }

  /**
   * Merges a sync answer. Complete: its posts replace or join the held ones by seq, then its changes
   * are replayed in rev order (they end at the room's present, so replaying them is idempotent).
   * Truncated: the answer's posts are the newest ones, folded as of now, and the held ones may have
   * a gap before them or miss changes past the answer's first 500: they are dropped, and so are the
   * changes (the first ones after `sinceRev` would take the fresh posts back in time).
   */
  applySync(
    frame: { posts: FoldedPostFrame[]; changes: ChangeFrame[]; truncated: boolean },
    me: Me,
    keep = KEEP_POSTS,
  ): void {
    const since = this.posts.at(-1)?.seq ?? 0;
    const held = this.posts.length;
    if (frame.truncated) {
      const fresh = frame.posts.map((p) => toClientPost(this.room, p));
      const top = fresh.at(-1)?.seq ?? 0;
      this.posts = [...fresh, ...this.posts.filter((p) => p.seq > top)];
      this.hasOlder = true;
      this.mentioned.clear();
      for (const p of this.posts) if (mentionsNick(p, me.nick)) this.mentioned.add(p.seq);
    } else {
      for (const p of frame.posts) this.put(toClientPost(this.room, p));
      for (const change of frame.changes) this.applyChange(change, me, false);
      if (since === 0 && held === 0) this.hasOlder = false;
    }
    this.appliedRev = Math.max(this.appliedRev, this.serverRev);
    for (const p of frame.posts) {
      const post = this.find(p.seq);
      if (post && mentionsNick(post, me.nick)) this.mentioned.add(post.seq);
      this.arrived(post, me);
    }
    this.trim(Math.max(keep, held));
    this.synced = true;
    this.recount(me);
    this.touch();
  }

  /** Prepends a page of history (older posts); `hasMore` says whether older ones remain. */
  applyHistory(messages: FoldedPostFrame[], hasMore: boolean, me: Me): void {
    for (const p of messages) {
      if (this.find(p.seq)) continue;
      const post = toClientPost(this.room, p);
      this.put(post);
      if (mentionsNick(post, me.nick)) this.mentioned.add(post.seq);
    }
    this.hasOlder = hasMore;
    this.recount(me);
    this.touch();
  }

  /** A live post: the held one (undefined when it was held already). */
  addLive(frame: FoldedPostFrame, me: Me, limit = KEEP_POSTS * 10): ClientPost | undefined {
    if (this.find(frame.seq)) return undefined;
    const post = toClientPost(this.room, frame);
    this.put(post);
    if (mentionsNick(post, me.nick)) this.mentioned.add(post.seq);
    this.arrived(post, me);
    this.typing.delete(post.nick);
    this.trim(limit);
    this.touch();
    return post;
  }

  /**
   * Applies one change. A live one at or below the applied rev was seen already and is skipped; a
   * sync's are replayed in order. Reactions are sets: `on` adds the nick when absent, `off` removes it.
   */
  applyChange(change: ChangeFrame, me: Me, live: boolean): void {
    if (live && change.rev <= this.appliedRev) return;
    this.appliedRev = Math.max(this.appliedRev, change.rev);
    this.touch();
    if (change.type === "topic") {
      this.topic = change.topic;
      return;
    }
    const i = this.indexOf(change.seq);
    const post = i < 0 ? undefined : this.posts[i];
    if (!post) return;
    let next: ClientPost | undefined;
    if (change.type === "edit") {
      if (!post.deleted) next = { ...post, text: change.text, editedAt: change.editedAt };
    } else if (change.type === "delete") {
      if (!post.deleted) {
        const { mentions: _m, reactions: _r, editedAt: _e, ...rest } = post;
        next = { ...rest, text: "", deleted: true };
        const counted = this.counts(post, me);
        this.mentioned.delete(post.seq);
        if (counted && !this.covered()) {
          this.unread = cap(this.unread - 1);
          if (mentionsNick(post, me.nick)) this.mentions = cap(this.mentions - 1);
        }
      }
    } else if (!post.deleted) {
      next = { ...post, reactions: react(post.reactions, change.emoji, change.nick, change.on) };
      if (next.reactions === undefined) delete next.reactions;
    }
    if (next) this.posts[i] = next;
    if (change.type === "delete") this.recount(me);
  }

  /** The read marker moved (our own `markRead`, or the server's `read`): counts follow. Never back. */
  applyRead(seq: number, me: Me): void {
    const target = seq;
    if (target <= this.readSeq) return;
    if (!this.covered()) {
      // Take away what the held posts between the two markers counted; the rest is not known here.
      for (const p of this.posts) {
        if (p.seq > this.readSeq && p.seq <= target && this.counts(p, me)) {
          this.unread = cap(this.unread - 1);
          if (this.mentioned.has(p.seq)) this.mentions = cap(this.mentions - 1);
        }
      }
    }
    this.readSeq = target;
    this.recount(me);
    this.touch();
  }

  applyPresence(events: PresenceEventFrame[]): void {
    for (const e of events) {
      if (e.event === "join") this.addUser(e.nick);
      else if (e.event === "leave") this.removeUser(e.nick);
      else {
        this.removeUser(e.from);
        this.addUser(e.nick);
        const until = this.typing.get(e.from);
        if (until !== undefined) {
          this.typing.delete(e.from);
          this.typing.set(e.nick, until);
        }
        if (this.dm === e.from) this.dm = e.nick;
      }
    }
    this.touch();
  }

  setUsers(users: string[]): void {
    this.users = [...users];
    this.touch();
  }

  /** Forgets typing notices that ran out; true when one did. */
  expireTyping(now: number): boolean {
    let changed = false;
    for (const [nick, until] of this.typing) {
      if (until <= now) {
        this.typing.delete(nick);
        changed = true;
      }
    }
    if (changed) this.touch();
    return changed;
  }

  find(seq: number): ClientPost | undefined {
    const i = this.indexOf(seq);
    return i < 0 ? undefined : this.posts[i];
  }

  /** Index of `seq` in the posts, or -(insertion point) - 1. */
  private indexOf(seq: number): number {
    let lo = 0;
    let hi = this.posts.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const at = (this.posts[mid] as ClientPost).seq;
      if (at === seq) return mid;
      if (at < seq) lo = mid + 1;
      else hi = mid - 1;
    }
    return -lo - 1;
  }

  /** Inserts or replaces a post by seq. */
  private put(post: ClientPost): void {
    const last = this.posts.at(-1);
    if (!last || last.seq < post.seq) {
      this.posts.push(post);
      return;
    }
    const i = this.indexOf(post.seq);
    if (i >= 0) this.posts[i] = post;
    else this.posts.splice(-i - 1, 0, post);
  }

  /** A post new to the room's count (after the newest counted seq): counted once. */
  private arrived(post: ClientPost | undefined, me: Me): void {
    if (!post || post.seq <= this.lastSeq) return;
    this.lastSeq = post.seq;
    if (this.counts(post, me)) {
      this.unread = cap(this.unread + 1);
      if (this.mentioned.has(post.seq)) this.mentions = cap(this.mentions + 1);
    }
  }

  /** Whether a held post counts as unread: after the marker, by someone else, not deleted. */
  private counts(post: ClientPost, me: Me): boolean {
    return post.seq > this.readSeq && post.userId !== me.userId && !post.deleted;
  }

  /** The held posts hold every post after the read marker (up to the room's newest). */
  private covered(): boolean {
    if (this.lastSeq <= this.readSeq) return true;
    const first = this.posts[0];
    const last = this.posts.at(-1);
    if (!first || !last || last.seq < this.lastSeq) return false;
    return !this.hasOlder || first.seq <= this.readSeq + 1;
  }

  /** Works the counts out from the held posts, when they cover everything after the marker. */
  private recount(me: Me): void {
    if (!this.covered()) return;
    let unread = 0;
    let mentions = 0;
    for (const p of this.posts) {
      if (!this.counts(p, me)) continue;
      unread++;
      if (this.mentioned.has(p.seq)) mentions++;
    }
    this.unread = cap(unread);
    this.mentions = cap(mentions);
  }

  /** Keeps the newest `limit` posts; dropping any means older ones exist. */
  private trim(limit: number): void {
    if (this.posts.length <= limit) return;
    const dropped = this.posts.splice(0, this.posts.length - limit);
    for (const p of dropped) this.mentioned.delete(p.seq);
    this.hasOlder = true;
  }

  private addUser(nick: string): void {
    const key = nickKey(nick);
    if (this.users.some((u) => nickKey(u) === key)) return;
    this.users.push(nick);
    this.users.sort(compareNicks);
  }

  private removeUser(nick: string): void {
    const key = nickKey(nick);
    this.users = this.users.filter((u) => u !== nick && nickKey(u) !== key);
  }
}

/** A post's reactions after one `reaction` change; undefined when none is left. */
function react(
  reactions: ClientPost["reactions"],
  emoji: string,
  nick: string,
  on: boolean,
): ClientPost["reactions"] {
  const list = (reactions ?? []).map((r) => ({ emoji: r.emoji, nicks: [...r.nicks] }));
  let entry = list.find((r) => r.emoji === emoji);
  if (on) {
    if (!entry) {
      entry = { emoji, nicks: [] };
      list.push(entry);
    }
    if (!entry.nicks.includes(nick)) entry.nicks.push(nick);
  } else if (entry) {
    entry.nicks = entry.nicks.filter((n) => n !== nick);
  }
  const left = list.filter((r) => r.nicks.length > 0);
  return left.length > 0 ? left : undefined;
}
