/**
 * The v2 chat client (protocol v2 of shared/PROTOCOL.md) for browsers and Bun: one user in all of
 * its rooms over one socket that comes back by itself. On every (re)connect it `sync`s each room from
 * what it holds, re-sends what was not acked (same ids: the server stores a post once), and keeps
 * counts, read markers, typing notices and pending posts per room. Frames are checked by guards.ts,
 * not zod, so the page stays small.
 */

import { charCount, isValidNick, normalizeNick, normalizeRoom } from "../../protocol/names";
import { LIMITS_V2 } from "../../protocol/v2/limits";
import { isReactionEmoji, isValidRoomV2 } from "../../protocol/v2/names";
import { DEFAULT_BACKOFF } from "../backoff";
import { Emitter } from "../emitter";
import { type Drop, type NextStep, ResilientSocket } from "../resilient-socket";
import type {
  ChatClientV2Api,
  ChatClientV2Options,
  ClientV2Events,
  ConnectionState,
  IdentityStore,
  PendingPost,
  RoomView,
} from "./api";
import { parseFrame, type RoomStateFrame, type ServerFrame } from "./guards";
import { KEEP_POSTS, type Me, mentionsNick, RoomModel } from "./room-model";
import { describeRefusal, type RequestKind } from "./words";

type Frame<K extends ServerFrame["type"]> = Extract<ServerFrame, { type: K }>;
type Timer = ReturnType<typeof setTimeout>;

/** Posts asked for by one `loadOlder`. */
const HISTORY_PAGE = 100;
/** Requests remembered for matching their errors (changes and joins answer nothing when they work). */
const REQUESTS_KEPT = 200;
/** Below this many posts after a truncated sync, older ones are fetched at once. */
const FEW_POSTS = 50;

/** Random hex: post ids must not collide between the tabs and devices of one user (the server dedupes on them). */
function randomHex(bytes: number, random: () => number): string {
  const buf = new Uint8Array(bytes);
  const c = (globalThis as { crypto?: Crypto }).crypto;
  if (c?.getRandomValues) c.getRandomValues(buf);
  else for (let i = 0; i < bytes; i++) buf[i] = Math.floor(random() * 256);
  let out = "";
  for (const b of buf) out += b.toString(16).padStart(2, "0");
  return out;
}

/** Why the connection is down, in people's words. */
function dropReason(drop: Drop): string {
  if (drop.status === 403)
    return "The server refused this page's origin (set ALLOWED_ORIGINS on the server).";
  if (drop.status === 429 || drop.status === 503) return "The server is busy.";
  if (drop.status === 401) return "The server did not accept your sign-in.";
  if (drop.code === 1001) return "The server is restarting.";
  if (drop.code === 1009) return "A message was too large for the server.";
  return drop.opened ? "The connection was lost." : "Could not reach the server.";
}

export class ChatClientV2 extends Emitter<ClientV2Events> implements ChatClientV2Api {
  private readonly socket: ResilientSocket;
  private readonly models = new Map<string, RoomModel>();
  private readonly identity: IdentityStore | undefined;
  private readonly random: () => number;
  private readonly keepPosts: number;
  private readonly readDelayMs: number;
  private readonly typingMs: number;
  private readonly idPrefix: string;
  private counter = 0;

  private me: Me = { userId: undefined, nick: undefined };
  private currentConnectionId: string | undefined;
  private current: ConnectionState = "offline";
  /** The open socket got its welcome: requests go out now. */
  private welcomed = false;
  /** A welcome came since the last `connect()`: later attempts are reconnections. */
  private welcomedOnce = false;
  /** `room=` goes with the attempts until a welcome came (it adds the room for good). */
  private firstRoom: string | undefined;
  /** The identity token when no store keeps it (and, with a store, a copy). */
  private token: string | undefined;
  /** Pre-open failures in a row with an identity where the runtime said nothing (a browser). */
  private opaqueFailures = 0;
  /** This attempt leaves the identity out, to learn whether it is the identity that is refused. */
  private probingWithoutIdentity = false;
  /** The identity was refused: the next welcome makes a new user. */
  private identityLost = false;

  private readonly requests = new Map<string, { kind: RequestKind; room?: string; undo?: () => void }>();
  private readonly historyWaiters = new Map<
    string,
    { id: string; promise: Promise<void>; done: () => void }
  >();
  /** Read markers asked for and not yet confirmed, by room. */
  private readonly readWanted = new Map<string, number>();
  private readonly readTimers = new Map<string, Timer>();
  private readonly typingSentAt = new Map<string, number>();
  private typingTimer: Timer | undefined;
  private readonly dirty = new Set<string>();
  private flushQueued = false;
  private readonly onOnline = () => this.socket.retryNow();

  constructor(private readonly options: ChatClientV2Options) {
    super();
    this.identity = options.token === undefined ? options.identity : undefined;
    this.random = options.random ?? Math.random;
    this.keepPosts = options.keepPosts ?? KEEP_POSTS;
    this.readDelayMs = options.readDelayMs ?? 500;
    this.typingMs = options.typingMs ?? 4000;
    this.idPrefix = randomHex(8, this.random);
    if (options.nick !== undefined) this.me.nick = normalizeNick(options.nick);
    if (options.room !== undefined) this.firstRoom = normalizeRoom(options.room);
    this.socket = new ResilientSocket(
      {
        Socket: options.WebSocket ?? globalThis.WebSocket,
        backoff: { ...DEFAULT_BACKOFF, ...options.backoff },
        heartbeatMs: options.heartbeatMs ?? 25_000,
        timeoutMs: options.timeoutMs ?? 10_000,
        random: this.random,
      },
      {
        url: () => this.url(),
        frame: (data) => this.receive(data),
        dropped: (drop) => this.dropped(drop),
        connecting: () => this.setState({ state: this.welcomedOnce ? "reconnecting" : "connecting" }),
        waiting: (retryInMs, drop) =>
          this.setState({ state: "reconnecting", retryInMs, reason: dropReason(drop) }),
        probe: () => {
          const room = this.models.keys().next().value ?? "default";
          this.write({ type: "who", room, id: `${this.idPrefix}.probe` });
        },
      },
    );
  }

  /** The server's id of the current connection (for logs and old browser tests; not for people). */
  get connectionId(): string | undefined {
    return this.currentConnectionId;
  }

  get userId(): string | undefined {
    return this.me.userId;
  }
  get nick(): string | undefined {
    return this.me.nick;
  }
  get state(): ConnectionState {
    return this.current;
  }

  rooms(): string[] {
    return [...this.models.keys()];
  }

  view(room: string): RoomView | undefined {
    return this.models.get(room)?.view(Date.now());
  }

  connect(): void {
    if (this.socket.running) return;
    this.welcomedOnce = false;
    if (typeof window === "object" && typeof window.addEventListener === "function") {
      window.addEventListener("online", this.onOnline);
    }
    this.socket.start();
  }

  close(): void {
    this.socket.stop("closed by the client");
    if (typeof window === "object" && typeof window.removeEventListener === "function") {
      window.removeEventListener("online", this.onOnline);
    }
    this.lost();
    for (const timer of this.readTimers.values()) clearTimeout(timer);
    this.readTimers.clear();
    clearTimeout(this.typingTimer);
    this.typingTimer = undefined;
    this.setState({ state: "offline" });
  }

  /** Skips the rest of a reconnection wait. */
  reconnectNow(): void {
    this.socket.retryNow();
  }

  send(room: string, text: string, opts: { kind?: "action"; replyTo?: number } = {}): string {
    const id = `${randomHex(8, this.random)}.${++this.counter}`;
    const model = this.models.get(room);
    const refuse = (code: string, message: string) => {
      this.emit("problem", { code, message, id, room });
      return id;
    };
    if (text.trim() === "") return refuse("bad_message", "An empty message is not sent.");
    if (charCount(text) > LIMITS_V2.textMax) return refuse("too_large", describeRefusal("too_large", "chat"));
    if (!model) return refuse("not_found", describeRefusal("not_found", "chat"));
    const pending: PendingPost = { id, room, text, state: "sending" };
    if (opts.kind === "action") pending.kind = "action";
    if (opts.replyTo !== undefined && Number.isSafeInteger(opts.replyTo) && opts.replyTo > 0) {
      pending.replyTo = opts.replyTo;
    }
    model.pending.push(pending);
    this.changed(model);
    if (this.welcomed) this.writeChat(pending);
    return id;
  }

  retry(room: string, id: string): void {
    const model = this.models.get(room);
    const i = model?.pending.findIndex((p) => p.id === id) ?? -1;
    const old = model?.pending[i];
    if (!model || !old || old.state !== "failed") return;
    const { reason: _reason, ...rest } = old;
    const pending: PendingPost = { ...rest, state: "sending" };
    model.pending[i] = pending;
    this.changed(model);
    if (this.welcomed) this.writeChat(pending);
  }

  discard(room: string, id: string): void {
    const model = this.models.get(room);
    if (!model) return;
    const left = model.pending.filter((p) => p.id !== id);
    if (left.length === model.pending.length) return;
    model.pending = left;
    this.changed(model);
  }

  edit(room: string, seq: number, text: string): void {
    if (text.trim() === "") {
      this.problem("bad_message", "An edit cannot be empty: delete the message instead.", room);
    } else if (charCount(text) > LIMITS_V2.textMax) {
      this.problem("too_large", describeRefusal("too_large", "edit"), room);
    } else {
      this.request("edit", room, { type: "edit", room, seq, text });
    }
  }

  remove(room: string, seq: number): void {
    this.request("delete", room, { type: "delete", room, seq });
  }

  react(room: string, seq: number, emoji: string, on: boolean): void {
    if (!isReactionEmoji(emoji)) this.problem("bad_message", describeRefusal("bad_message", "react"), room);
    else this.request("react", room, { type: "react", room, seq, emoji, on });
  }

  setTopic(room: string, topic: string): void {
    if (charCount(topic) > LIMITS_V2.topicMax)
      this.problem("too_large", describeRefusal("too_large", "topic"), room);
    else this.request("topic", room, { type: "topic", room, topic });
  }

  join(room: string): void {
    const name = normalizeRoom(room.trim());
    if (!isValidRoomV2(name)) this.problem("room_invalid", describeRefusal("room_invalid"));
    else if (!this.models.has(name)) this.request("join", undefined, { type: "join", room: name });
  }

  part(room: string): void {
    if (this.models.has(room)) this.request("part", room, { type: "part", room });
  }

  dm(nick: string): void {
    const name = normalizeNick(nick);
    if (!isValidNick(name)) this.problem("nick_invalid", describeRefusal("nick_invalid"));
    else this.request("dm", undefined, { type: "dm", nick: name });
  }

  rename(nick: string): void {
    const name = normalizeNick(nick);
    if (!isValidNick(name)) {
      this.problem("nick_invalid", describeRefusal("nick_invalid"));
      return;
    }
    if (name === this.me.nick) return;
    // In no room, no presence event tells us the rename took: it is taken as done unless refused.
    const previous = this.me.nick;
    const optimistic = this.models.size === 0 && this.welcomed;
    const undo = optimistic
      ? () => {
          if (this.me.nick === name && previous !== undefined) this.setNick(previous);
        }
      : undefined;
    if (this.request("nick", undefined, { type: "nick", nick: name }, undo) !== undefined && optimistic) {
      this.setNick(name);
    }
  }

  typing(room: string): void {
    if (!this.welcomed || !this.models.has(room)) return;
    const now = Date.now();
    // The server relays one a second; the others show a notice for typingMs: a third of it is plenty.
    if (now - (this.typingSentAt.get(room) ?? Number.NEGATIVE_INFINITY) < this.typingMs / 3) return;
    this.typingSentAt.set(room, now);
    this.request("typing", room, { type: "typing", room });
  }

  markRead(room: string, seq: number): void {
    const model = this.models.get(room);
    if (!model) return;
    const target = Math.min(Math.floor(seq), model.lastSeq);
    if (!(target > model.readSeq)) return;
    this.readWanted.set(room, Math.max(target, this.readWanted.get(room) ?? 0));
    model.applyRead(target, this.me);
    this.changed(model);
    if (!this.readTimers.has(room)) {
      this.readTimers.set(
        room,
        setTimeout(() => {
          this.readTimers.delete(room);
          this.writeRead(room);
        }, this.readDelayMs),
      );
    }
  }

  loadOlder(room: string): Promise<void> {
    const model = this.models.get(room);
    if (!model || !this.welcomed) return Promise.resolve();
    const waiting = this.historyWaiters.get(room);
    if (waiting) return waiting.promise;
    const before = model.posts[0]?.seq;
    if (!model.hasOlder || (before !== undefined && before <= 1)) return Promise.resolve();
    const msg: Record<string, unknown> = { type: "history", room, limit: HISTORY_PAGE };
    if (before !== undefined) msg.before = before;
    const id = this.request("history", room, msg);
    if (id === undefined) return Promise.resolve();
    let done = () => {};
    const promise = new Promise<void>((resolve) => {
      done = resolve;
    });
    this.historyWaiters.set(room, { id, promise, done });
    return promise;
  }

  // ---- the connection ----

  private url(): string {
    const url = new URL("ws", this.options.url);
    url.protocol = url.protocol === "https:" || url.protocol === "wss:" ? "wss:" : "ws:";
    url.hash = "";
    const query = new URLSearchParams({ v: "2" });
    const identity = this.probingWithoutIdentity ? undefined : this.identityToken();
    if (this.options.token !== undefined) query.set("token", this.options.token);
    if (identity !== undefined) query.set("identity", identity);
    else if (this.me.nick !== undefined) query.set("nick", this.me.nick);
    if (this.firstRoom !== undefined) query.set("room", this.firstRoom);
    url.search = query.toString();
    return url.toString();
  }

  private identityToken(): string | undefined {
    if (this.options.token !== undefined || this.identityLost) return undefined;
    const stored = this.identity?.get();
    return stored !== undefined && stored !== "" ? stored : this.token;
  }

  private forgetIdentity(): void {
    this.identityLost = true;
    this.token = undefined;
    if (this.identity?.clear) this.identity.clear();
    else this.identity?.set("");
  }

  private dropped(drop: Drop): NextStep {
    const hadIdentity = this.identityToken() !== undefined && !this.probingWithoutIdentity;
    const probing = this.probingWithoutIdentity;
    this.probingWithoutIdentity = false;
    this.lost();
    if (drop.opened && drop.code === 1008 && /revoked/i.test(drop.reason)) {
      this.forgetIdentity();
      return "now";
    }
    if (drop.status === 401) {
      if (hadIdentity) {
        this.forgetIdentity();
        return "now";
      }
      this.emit("problem", { code: "unauthorized", message: describeRefusal("unauthorized") });
      this.setState({ state: "offline", reason: dropReason(drop) });
      return "stop";
    }
    // A browser hides the status of a refused upgrade. After two silent refusals of the identity, one
    // attempt right away without it tells: if a new user gets in at once, it was the identity.
    if (!drop.opened && drop.opaque && hadIdentity && !probing) {
      this.opaqueFailures++;
      const online = (globalThis as { navigator?: { onLine?: boolean } }).navigator?.onLine !== false;
      if (this.opaqueFailures >= 2 && online) {
        this.opaqueFailures = 0;
        this.probingWithoutIdentity = true;
        return "now";
      }
    }
    return "retry";
  }

  /** The socket is gone: what waited on it is settled. */
  private lost(): void {
    this.welcomed = false;
    for (const model of this.models.values()) model.synced = false;
    for (const waiter of this.historyWaiters.values()) waiter.done();
    this.historyWaiters.clear();
  }

  private setState(next: ClientV2Events["state"]): void {
    if (
      next.state === this.current &&
      next.retryInMs === undefined &&
      next.state !== "reconnecting" &&
      next.reason === undefined
    ) {
      return;
    }
    this.current = next.state;
    this.emit("state", next);
  }

  // ---- frames ----

  private receive(data: unknown): void {
    const parsed = parseFrame(data);
    if (!parsed.ok) {
      const report =
        this.options.onMalformed ?? ((reason: string) => console.warn(`chat: dropped a frame (${reason})`));
      report(parsed.reason, data);
      return;
    }
    const f = parsed.frame;
    switch (f.type) {
      case "welcome":
        this.onWelcome(f);
        break;
      case "joined":
        this.onJoined(f);
        break;
      case "parted":
        this.onLeft(f.room);
        break;
      case "kicked": {
        const kicked: { by: string; reason?: string } = { by: f.by };
        if (f.reason !== undefined) kicked.reason = f.reason;
        this.onLeft(f.room, kicked);
        break;
      }
      case "chat":
        this.onChat(f);
        break;
      case "sync":
        this.onSync(f);
        break;
      case "history":
        this.onHistory(f);
        break;
      case "edit":
      case "delete":
      case "reaction":
      case "topic":
        this.inRoom(f.room, (m) => m.applyChange(f, this.me, true));
        break;
      case "read":
        this.onRead(f);
        break;
      case "presence":
        this.onPresence(f);
        break;
      case "users":
        this.inRoom(f.room, (m) => m.setUsers(f.users));
        break;
      case "ack":
        this.onAck(f);
        break;
      case "typing":
        this.onTyping(f);
        break;
      case "error":
        this.onError(f);
        break;
    }
  }

  private onWelcome(w: Frame<"welcome">): void {
    this.welcomed = true;
    this.welcomedOnce = true;
    this.socket.established();
    this.opaqueFailures = 0;
    if (this.identityLost || this.probingWithoutIdentity) {
      // The identity was refused (or, in a browser, a new user got in where it could not): it is gone.
      this.emit("problem", {
        code: "identity_lost",
        message: "Your earlier identity is no longer valid: you are a new user now.",
      });
    }
    this.identityLost = false;
    this.probingWithoutIdentity = false;
    if (w.identityToken !== undefined && this.options.token === undefined) {
      this.token = w.identityToken;
      this.identity?.set(w.identityToken);
    }
    this.firstRoom = undefined;
    this.me.userId = w.user.userId;
    this.currentConnectionId = w.connectionId;
    this.setNick(w.user.nick);
    const before = this.rooms();
    const listed = new Set(w.rooms.map((r) => r.room));
    for (const room of before) {
      if (!listed.has(room)) this.drop(room);
    }
    for (const state of w.rooms) this.enter(state);
    const after = this.rooms();
    if (after.length !== before.length || after.some((r, i) => r !== before[i])) {
      this.emit("rooms", { rooms: after });
    }
    for (const model of this.models.values()) {
      for (const pending of model.pending) if (pending.state === "sending") this.writeChat(pending);
    }
    this.setState({ state: "connected" });
    this.emit("ready", { userId: w.user.userId, nick: w.user.nick, rooms: after });
  }

  /** Takes one RoomState (welcome or joined), sends its sync and any read marker not yet confirmed. */
  private enter(state: RoomStateFrame): RoomModel {
    let model = this.models.get(state.room);
    if (!model) {
      model = new RoomModel(state.room);
      this.models.set(state.room, model);
    }
    model.applyState(state);
    const wanted = this.readWanted.get(state.room);
    if (wanted !== undefined) {
      if (wanted > model.readSeq) {
        model.applyRead(wanted, this.me);
        if (!this.readTimers.has(state.room)) this.writeRead(state.room);
      } else {
        this.readWanted.delete(state.room);
      }
    }
    this.sync(model);
    this.changed(model);
    return model;
  }

  private onJoined(f: Frame<"joined">): void {
    const { type: _type, ...state } = f;
    const known = this.models.has(f.room);
    this.enter(state);
    if (!known) this.emit("rooms", { rooms: this.rooms(), added: f.room });
  }

  private onLeft(room: string, kicked?: { by: string; reason?: string }): void {
    if (!this.models.has(room)) return;
    this.drop(room);
    const event: ClientV2Events["rooms"] = { rooms: this.rooms(), removed: room };
    if (kicked) event.kicked = kicked;
    this.emit("rooms", event);
  }

  /** Forgets a room the user is no longer in. */
  private drop(room: string): void {
    this.models.delete(room);
    this.dirty.delete(room);
    this.readWanted.delete(room);
    clearTimeout(this.readTimers.get(room));
    this.readTimers.delete(room);
    this.typingSentAt.delete(room);
    const waiter = this.historyWaiters.get(room);
    waiter?.done();
    this.historyWaiters.delete(room);
  }

  private onChat(f: Frame<"chat">): void {
    const model = this.models.get(f.room);
    if (!model) return;
    const post = model.addLive(f, this.me, this.keepPosts * 10);
    if (!post) return;
    this.changed(model);
    const own = post.userId === this.me.userId;
    this.emit("post", { post, own, mentionsMe: !own && mentionsNick(post, this.me.nick) });
  }

  private onSync(f: Frame<"sync">): void {
    const model = this.models.get(f.room);
    if (!model) return;
    model.applySync(f, this.me, this.keepPosts);
    this.changed(model);
    if (f.truncated && model.posts.length < FEW_POSTS && model.hasOlder) void this.loadOlder(f.room);
  }

  private onHistory(f: Frame<"history">): void {
    const model = this.models.get(f.room);
    const waiter = this.historyWaiters.get(f.room);
    this.historyWaiters.delete(f.room);
    if (waiter) this.requests.delete(waiter.id);
    if (model) {
      model.applyHistory(f.messages, f.hasMore, this.me);
      this.changed(model);
    }
    waiter?.done();
  }

  private onRead(f: Frame<"read">): void {
    const model = this.models.get(f.room);
    if (!model) return;
    if (f.seq >= (this.readWanted.get(f.room) ?? 0) && !this.readTimers.has(f.room)) {
      this.readWanted.delete(f.room);
    }
    model.applyRead(f.seq, this.me);
    this.changed(model);
  }

  private onPresence(f: Frame<"presence">): void {
    const model = this.models.get(f.room);
    if (!model) return;
    for (const e of f.events) {
      if (e.event === "nick" && e.from === this.me.nick) this.setNick(e.nick);
    }
    model.applyPresence(f.events);
    this.changed(model);
  }

  private onAck(f: Frame<"ack">): void {
    for (const model of this.models.values()) {
      const left = model.pending.filter((p) => p.id !== f.id);
      if (left.length !== model.pending.length) {
        model.pending = left;
        this.changed(model);
        return;
      }
    }
  }

  private onTyping(f: Frame<"typing">): void {
    const model = this.models.get(f.room);
    if (!model || f.nick === this.me.nick) return;
    const until = Date.now() + this.typingMs;
    model.typing.set(f.nick, until);
    this.changed(model);
    if (this.typingTimer === undefined) this.armTyping(this.typingMs);
  }

  private armTyping(ms: number): void {
    this.typingTimer = setTimeout(() => {
      this.typingTimer = undefined;
      const now = Date.now();
      let next = Number.POSITIVE_INFINITY;
      for (const model of this.models.values()) {
        if (model.expireTyping(now)) this.changed(model);
        for (const until of model.typing.values()) next = Math.min(next, until);
      }
      if (next !== Number.POSITIVE_INFINITY) this.armTyping(Math.max(10, next - now));
    }, ms);
  }

  private onError(f: Frame<"error">): void {
    const id = f.id;
    if (id === `${this.idPrefix}.probe`) return;
    if (id !== undefined) {
      for (const model of this.models.values()) {
        const i = model.pending.findIndex((p) => p.id === id);
        const pending = model.pending[i];
        if (pending) {
          model.pending[i] = { ...pending, state: "failed", reason: describeRefusal(f.code, "chat") };
          this.changed(model);
          return;
        }
      }
    }
    const request = id === undefined ? undefined : this.requests.get(id);
    if (id !== undefined) this.requests.delete(id);
    if (request?.kind === "typing") return;
    request?.undo?.();
    const room = request?.room;
    if (request?.kind === "sync" && room !== undefined && f.code === "internal") {
      // The server could not read the room: ask again in a moment, on this connection only.
      setTimeout(() => {
        const model = this.models.get(room);
        if (model && this.welcomed && !model.synced) this.sync(model);
      }, 2000);
    }
    if (request?.kind === "history" && request.room !== undefined) {
      const waiter = this.historyWaiters.get(request.room);
      if (waiter && waiter.id === id) {
        this.historyWaiters.delete(request.room);
        waiter.done();
      }
    }
    const problem: ClientV2Events["problem"] = {
      code: f.code,
      message: describeRefusal(f.code, request?.kind),
    };
    if (id !== undefined) problem.id = id;
    if (request?.room !== undefined) problem.room = request.room;
    this.emit("problem", problem);
  }

  // ---- helpers ----

  private inRoom(room: string, fn: (model: RoomModel) => void): void {
    const model = this.models.get(room);
    if (!model) return;
    fn(model);
    this.changed(model);
  }

  private setNick(nick: string): void {
    if (nick === this.me.nick) return;
    const known = this.me.nick !== undefined && this.me.userId !== undefined;
    this.me.nick = nick;
    if (known) this.emit("nick", { nick });
  }

  private problem(code: string, message: string, room?: string): void {
    const problem: ClientV2Events["problem"] = { code, message };
    if (room !== undefined) problem.room = room;
    this.emit("problem", problem);
  }

  private nextId(): string {
    return `${this.idPrefix}.${++this.counter}`;
  }

  /**
   * Sends a request with an id (so its error can be told) and returns the id; refused locally (no id)
   * when offline or out of the room.
   */
  private request(
    kind: RequestKind,
    room: string | undefined,
    msg: Record<string, unknown>,
    undo?: () => void,
  ): string | undefined {
    if (room !== undefined && !this.models.has(room)) {
      this.problem("not_found", describeRefusal("not_found", "part"), room);
      return undefined;
    }
    if (!this.welcomed) {
      if (kind !== "typing") this.problem("offline", describeRefusal("offline"), room);
      return undefined;
    }
    const id = this.nextId();
    const entry: { kind: RequestKind; room?: string; undo?: () => void } = { kind };
    if (room !== undefined) entry.room = room;
    if (undo) entry.undo = undo;
    this.requests.set(id, entry);
    if (this.requests.size > REQUESTS_KEPT) {
      const oldest = this.requests.keys().next().value;
      if (oldest !== undefined) this.requests.delete(oldest);
    }
    this.write({ ...msg, id });
    return id;
  }

  private sync(model: RoomModel): void {
    this.request("sync", model.room, { type: "sync", room: model.room, ...model.syncRequest() });
  }

  private writeChat(p: PendingPost): void {
    const msg: Record<string, unknown> = { type: "chat", room: p.room, text: p.text, id: p.id };
    if (p.kind !== undefined) msg.kind = p.kind;
    if (p.replyTo !== undefined) msg.replyTo = p.replyTo;
    this.write(msg);
  }

  private writeRead(room: string): void {
    const seq = this.readWanted.get(room);
    if (seq === undefined || !this.welcomed) return;
    this.request("read", room, { type: "read", room, seq });
  }

  private write(msg: Record<string, unknown>): boolean {
    return this.socket.send(JSON.stringify(msg));
  }

  /** A room's view changed: one `room` event per room, after the current frame's work. */
  private changed(model: RoomModel): void {
    model.touch();
    this.dirty.add(model.room);
    if (this.flushQueued) return;
    this.flushQueued = true;
    queueMicrotask(() => {
      this.flushQueued = false;
      const rooms = [...this.dirty];
      this.dirty.clear();
      for (const room of rooms) {
        const view = this.view(room);
        if (view) this.emit("room", { room, view });
      }
    });
  }
}
