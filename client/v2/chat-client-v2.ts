/**
 * The v2 chat client (protocol v2 of shared/PROTOCOL.md) for browsers and Bun: one user in all of
 * its rooms over one socket that comes back by itself. On every (re)connect it `sync`s each room from
 * what it holds, re-sends what was not acked (same ids: the server stores a post once), and keeps
 * counts, read markers, typing notices and pending posts per room. Frames are checked by guards.ts,
 * not zod, so the page stays small.
 */

import { charCount, isValidNick, nickKey, normalizeNick, normalizeRoom } from "../../protocol/names";
import { LIMITS_V2 } from "../../protocol/v2/limits";
import { isReactionEmoji, isValidRoomV2 } from "../../protocol/v2/names";
import { DEFAULT_BACKOFF } from "../backoff";
import { ChatError, type ChatErrorCode, type ChatErrorDetails } from "../chat-error";
import { Emitter } from "../emitter";
import { type Drop, type NextStep, ResilientSocket, socketClass } from "../resilient-socket";
import { type Sending, type SendSettler, type SendState, sendingOf } from "../sending";
import { type ReadyOptions, Waiters } from "../waiters";
import type {
  ChatClientV2Api,
  ChatClientV2Options,
  ClientV2Events,
  ConnectionState,
  IdentityStore,
  PendingPost,
  ReadyInfo,
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

/** One post's promise and the state its fields read. */
interface SendRecord {
  status: { id: string; room: string; text: string; state: SendState; seq?: number; error?: ChatError };
  settler: SendSettler;
}

/** A join, part or dm waiting for its answer (`joined`, `parted`), which carries no request id. */
interface Awaited {
  kind: "join" | "part" | "dm";
  /** The request's id, which an error would echo. */
  id: string;
  /** join and part: the room; dm: the nick's key (same-name rule). */
  key: string;
  resolve(view: RoomView | undefined): void;
  reject(error: ChatError): void;
}

/** A promise whose rejection nobody has to handle (the error is also the `error` event). */
function quiet<T>(promise: Promise<T>): Promise<T> {
  promise.catch(() => {});
  return promise;
}

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
  /** Posts not yet acked or failed, by id. */
  private readonly sends = new Map<string, SendRecord>();
  private readonly awaiting = new Set<Awaited>();
  private readonly readyWaiters = new Waiters<ReadyInfo>();
  /** `close()` came before the automatic connect. */
  private closedEarly = false;

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
        Socket: socketClass(options.WebSocket),
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
    if (options.autoConnect ?? true) {
      queueMicrotask(() => {
        if (!this.closedEarly) this.connect();
      });
    }
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

  ready(options: ReadyOptions = {}): Promise<ReadyInfo> {
    const { userId, nick } = this.me;
    if (this.welcomed && userId !== undefined && nick !== undefined) {
      return Promise.resolve({ userId, nick, rooms: this.rooms() });
    }
    return this.readyWaiters.wait(options);
  }

  connect(): void {
    this.closedEarly = false;
    if (this.socket.running) return;
    this.welcomedOnce = false;
    if (typeof window === "object" && typeof window.addEventListener === "function") {
      window.addEventListener("online", this.onOnline);
    }
    this.socket.start();
  }

  close(): void {
    this.closedEarly = true;
    this.socket.stop("closed by the client");
    if (typeof window === "object" && typeof window.removeEventListener === "function") {
      window.removeEventListener("online", this.onOnline);
    }
    this.lost();
    for (const timer of this.readTimers.values()) clearTimeout(timer);
    this.readTimers.clear();
    clearTimeout(this.typingTimer);
    this.typingTimer = undefined;
    const closed = new ChatError("closed", "The client was closed.");
    this.settleAwaited(() => closed);
    this.readyWaiters.reject(closed);
    this.setState({ state: "offline" });
  }

  /** Skips the rest of a reconnection wait. */
  reconnectNow(): void {
    this.socket.retryNow();
  }

  send(room: string, text: string, opts: { kind?: "action"; replyTo?: number } = {}): string {
    return this.post(room, text, opts).id;
  }

  post(room: string, text: string, opts: { kind?: "action"; replyTo?: number } = {}): Sending {
    const id = `${randomHex(8, this.random)}.${++this.counter}`;
    const record = this.track({ id, room, text, state: "sending" });
    const model = this.models.get(room);
    const refuse = (code: ChatErrorCode, message: string) => {
      this.failSend(record, this.fail(code, message, { id, room }));
      return record.settler.sending;
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
    return record.settler.sending;
  }

  retry(room: string, id: string): Sending | undefined {
    const model = this.models.get(room);
    const i = model?.pending.findIndex((p) => p.id === id) ?? -1;
    const old = model?.pending[i];
    if (!model || !old || old.state !== "failed") return undefined;
    const { reason: _reason, error: _error, ...rest } = old;
    const pending: PendingPost = { ...rest, state: "sending" };
    model.pending[i] = pending;
    const record = this.track({ id, room, text: old.text, state: "sending" });
    this.changed(model);
    if (this.welcomed) this.writeChat(pending);
    return record.settler.sending;
  }

  discard(room: string, id: string): void {
    const model = this.models.get(room);
    if (!model) return;
    const left = model.pending.filter((p) => p.id !== id);
    if (left.length === model.pending.length) return;
    model.pending = left;
    const record = this.sends.get(id);
    if (record)
      this.failSend(record, new ChatError("discarded", "Discarded before it was sent.", { id, room }));
    this.changed(model);
  }

  edit(room: string, seq: number, text: string): void {
    if (text.trim() === "") {
      this.fail("bad_message", "An edit cannot be empty: delete the message instead.", { room });
    } else if (charCount(text) > LIMITS_V2.textMax) {
      this.fail("too_large", describeRefusal("too_large", "edit"), { room });
    } else {
      this.request("edit", room, { type: "edit", room, seq, text });
    }
  }

  remove(room: string, seq: number): void {
    this.request("delete", room, { type: "delete", room, seq });
  }

  react(room: string, seq: number, emoji: string, on: boolean): void {
    if (!isReactionEmoji(emoji)) this.fail("bad_message", describeRefusal("bad_message", "react"), { room });
    else this.request("react", room, { type: "react", room, seq, emoji, on });
  }

  setTopic(room: string, topic: string): void {
    if (charCount(topic) > LIMITS_V2.topicMax)
      this.fail("too_large", describeRefusal("too_large", "topic"), { room });
    else this.request("topic", room, { type: "topic", room, topic });
  }

  join(room: string): Promise<RoomView> {
    const name = normalizeRoom(room.trim());
    if (!isValidRoomV2(name))
      return quiet(Promise.reject(this.fail("room_invalid", describeRefusal("room_invalid"))));
    const held = this.view(name);
    if (held) return Promise.resolve(held);
    return this.awaitAnswer("join", name, { type: "join", room: name }) as Promise<RoomView>;
  }

  part(room: string): Promise<void> {
    if (!this.models.has(room)) return Promise.resolve();
    return this.awaitAnswer("part", room, { type: "part", room }).then(() => {});
  }

  dm(nick: string): Promise<RoomView> {
    const name = normalizeNick(nick);
    if (!isValidNick(name))
      return quiet(Promise.reject(this.fail("nick_invalid", describeRefusal("nick_invalid"))));
    return this.awaitAnswer("dm", nickKey(name), { type: "dm", nick: name }) as Promise<RoomView>;
  }

  rename(nick: string): void {
    const name = normalizeNick(nick);
    if (!isValidNick(name)) {
      this.fail("nick_invalid", describeRefusal("nick_invalid"));
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
    if (
      typeof this.request("nick", undefined, { type: "nick", nick: name }, undo) === "string" &&
      optimistic
    ) {
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
    if (typeof id !== "string") return Promise.resolve();
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
      const refused = this.fail("unauthorized", describeRefusal("unauthorized"));
      this.settleAwaited(() => refused);
      this.readyWaiters.reject(refused);
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
      const sample = typeof data === "string" ? data.slice(0, 200) : "";
      this.fail("invalid_frame", describeRefusal("invalid_frame"), {
        cause: { reason: parsed.reason, sample },
      });
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
      this.fail("identity_lost", "Your earlier identity is no longer valid: you are a new user now.");
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
    // A join, part or dm sent before a drop: the rooms of the welcome tell whether it was done.
    this.settleAwaited(
      (a) => this.answered(a) ?? this.fail("unconfirmed", describeRefusal("unconfirmed"), { id: a.id }),
    );
    this.setState({ state: "connected" });
    const info: ReadyInfo = { userId: w.user.userId, nick: w.user.nick, rooms: after };
    this.emit("ready", info);
    this.readyWaiters.resolve(info);
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
    const dmKey = f.dm === undefined ? undefined : nickKey(f.dm.nick);
    this.settleAwaited((a) =>
      (a.kind === "join" && a.key === f.room) || (a.kind === "dm" && a.key === dmKey)
        ? { view: this.view(f.room) }
        : undefined,
    );
  }

  private onLeft(room: string, kicked?: { by: string; reason?: string }): void {
    if (!this.models.has(room)) return;
    this.drop(room);
    const event: ClientV2Events["rooms"] = { rooms: this.rooms(), removed: room };
    if (kicked) event.kicked = kicked;
    this.emit("rooms", event);
    this.settleAwaited((a) => (a.kind === "part" && a.key === room ? { view: undefined } : undefined));
  }

  /** Forgets a room the user is no longer in; its posts not yet acked fail (`left_room`). */
  private drop(room: string): void {
    for (const p of this.models.get(room)?.pending ?? []) {
      const record = this.sends.get(p.id);
      if (record)
        this.failSend(record, this.fail("left_room", describeRefusal("left_room"), { id: p.id, room }));
    }
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
    const record = this.sends.get(f.id);
    if (record) {
      record.status.state = "sent";
      record.status.seq = f.seq;
      this.sends.delete(f.id);
      record.settler.resolve({ id: f.id, room: record.status.room, seq: f.seq });
    }
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
          const error = new ChatError(f.code as ChatErrorCode, describeRefusal(f.code, "chat"), {
            id,
            room: model.room,
          });
          model.pending[i] = { ...pending, state: "failed", reason: error.message, error };
          this.changed(model);
          const record = this.sends.get(id);
          if (record) this.failSend(record, error);
          this.emit("error", error);
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
    const error = this.fail(f.code as ChatErrorCode, describeRefusal(f.code, request?.kind), {
      id,
      room: request?.room,
    });
    if (id !== undefined) this.settleAwaited((a) => (a.id === id ? error : undefined));
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

  /** Reports an error (the `error` event) and returns it, for a promise to reject with. */
  private fail(code: ChatErrorCode, message: string, details: ChatErrorDetails = {}): ChatError {
    const error = new ChatError(code, message, details);
    this.emit("error", error);
    return error;
  }

  private track(status: SendRecord["status"]): SendRecord {
    const record: SendRecord = { status, settler: sendingOf(status) };
    this.sends.set(status.id, record);
    return record;
  }

  private failSend(record: SendRecord, error: ChatError): void {
    record.status.state = "failed";
    record.status.error = error;
    this.sends.delete(record.status.id);
    record.settler.reject(error);
  }

  /** Sends a join, part or dm and waits for its answer (or its error, or a drop and a welcome without it). */
  private awaitAnswer(
    kind: Awaited["kind"],
    key: string,
    msg: Record<string, unknown>,
  ): Promise<RoomView | undefined> {
    const sent = this.request(kind, kind === "part" ? key : undefined, msg);
    if (sent instanceof ChatError) return quiet(Promise.reject(sent));
    return quiet(
      new Promise<RoomView | undefined>((resolve, reject) => {
        this.awaiting.add({ kind, id: sent, key, resolve, reject });
      }),
    );
  }

  /** The answer an awaited request has in what the client holds now: the room held (join, dm), or gone (part). */
  private answered(a: Awaited): { view: RoomView | undefined } | undefined {
    if (a.kind === "part") return this.models.has(a.key) ? undefined : { view: undefined };
    if (a.kind === "join") {
      const view = this.view(a.key);
      return view ? { view } : undefined;
    }
    for (const room of this.models.keys()) {
      const view = this.view(room);
      if (view?.dm !== undefined && nickKey(view.dm) === a.key) return { view };
    }
    return undefined;
  }

  /** Settles the awaited requests `outcome` has an answer or an error for; the others keep waiting. */
  private settleAwaited(
    outcome: (a: Awaited) => { view: RoomView | undefined } | ChatError | undefined,
  ): void {
    for (const a of [...this.awaiting]) {
      const result = outcome(a);
      if (result === undefined) continue;
      this.awaiting.delete(a);
      this.requests.delete(a.id);
      if (result instanceof ChatError) a.reject(result);
      else a.resolve(result.view);
    }
  }

  private nextId(): string {
    return `${this.idPrefix}.${++this.counter}`;
  }

  /**
   * Sends a request with an id (so its error can be told) and returns the id; refused locally when
   * offline or out of the room: returns the ChatError, emitted (but for a `typing`, dropped quietly).
   */
  private request(
    kind: RequestKind,
    room: string | undefined,
    msg: Record<string, unknown>,
    undo?: () => void,
  ): string | ChatError {
    if (room !== undefined && !this.models.has(room)) {
      return this.fail("not_found", describeRefusal("not_found", "part"), { room });
    }
    if (!this.welcomed) {
      const message = describeRefusal("offline");
      return kind === "typing" ? new ChatError("offline", message) : this.fail("offline", message, { room });
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
