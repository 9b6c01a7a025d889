/**
 * The v2 client's public shape: what the browser page (and anyone's program) builds on. The client
 * keeps one user's view of all its rooms: the posts it has seen (folded with their changes), who is
 * in each room, unread and mention counts, read markers, and the topic; it reconnects by itself and
 * `sync`s each room from what it has. It imports no zod (the page must stay small): frames are
 * checked by the hand-written guards in guards.ts, against the limits in protocol/.
 */
import type { ChatError } from "../chat-error";
import type { SocketClass } from "../resilient-socket";
import type { Sending } from "../sending";
import type { ReadyOptions } from "../waiters";

/** A post as the client holds it: a folded post of the protocol plus its room. */
export interface ClientPost {
  room: string;
  seq: number;
  nick: string;
  userId: string;
  text: string;
  sentAt: string;
  kind?: "action";
  replyTo?: number;
  mentions?: string[];
  editedAt?: string;
  deleted?: true;
  reactions?: Array<{ emoji: string; nicks: string[] }>;
}

/** A send not yet acknowledged: shown as pending, retried on reconnect, never stored twice. */
export interface PendingPost {
  id: string;
  room: string;
  text: string;
  kind?: "action";
  replyTo?: number;
  /** `sending` until acked; `failed` with a reason in people's words when the server refused it. */
  state: "sending" | "failed";
  /** The failure's `error.message`. */
  reason?: string;
  error?: ChatError;
}

export interface RoomView {
  room: string;
  topic: string;
  /** Online users, sorted as the server sorts them. */
  users: string[];
  lastSeq: number;
  lastRev: number;
  readSeq: number;
  unread: number;
  mentions: number;
  /** For a direct room: the other user's nick. */
  dm?: string;
  /** Posts held, ascending by seq (the newest ones; older come with `loadOlder`). */
  posts: ClientPost[];
  /** Older posts exist on the server than the oldest held. */
  hasOlder: boolean;
  pending: PendingPost[];
  /** Nicks typing now (expire after a few seconds). */
  typing: string[];
}

export type ConnectionState = "connecting" | "connected" | "reconnecting" | "offline";

/** Everything the client tells its listeners; `room` events name the room that changed. */
export interface ClientV2Events {
  /** The connection state changed; `retryInMs` while waiting to reconnect. */
  state: { state: ConnectionState; retryInMs?: number; reason?: string };
  /** Connected (first time or again): who we are and which rooms we are in. */
  ready: ReadyInfo;
  /** A room's view changed (posts, users, counts, topic, pending, typing): redraw it. */
  room: { room: string; view: RoomView };
  /** A room was added to (joined, dm) or removed from (parted, kicked) the user's rooms. */
  rooms: { rooms: string[]; added?: string; removed?: string; kicked?: { by: string; reason?: string } };
  /** A new post arrived live (not from sync or history): for notifications and live regions. */
  post: { post: ClientPost; mentionsMe: boolean; own: boolean };
  /** Our nickname changed. */
  nick: { nick: string };
  /**
   * Every error, one type: what the server (or the client, before sending) refused, with the
   * protocol's code and a `message` in people's words, the request's `id` and `room` when it has
   * them; a post that failed (its PendingPost turns `failed` and its `send` promise rejects with
   * the same object); the client's own codes (see ChatErrorCode: `offline`, `unconfirmed`,
   * `identity_lost`, `invalid_frame` for a frame the guards dropped).
   */
  error: ChatError;
}

/** Who we are and which rooms we are in, as of the last welcome. */
export interface ReadyInfo {
  userId: string;
  nick: string;
  rooms: string[];
}

/** The client's operations. Every request that names a room acts in that room. */
export interface ChatClientV2Api {
  readonly userId: string | undefined;
  /** The current connection's id, as the welcome gave it. */
  readonly connectionId: string | undefined;
  readonly nick: string | undefined;
  readonly state: ConnectionState;
  rooms(): string[];
  view(room: string): RoomView | undefined;
  on<K extends keyof ClientV2Events>(type: K, listener: (value: ClientV2Events[K]) => void): () => void;
  /**
   * Resolves once connected (at once if connected now) with who we are; rejects with a ChatError
   * `closed` (close()), `unauthorized` (an access token refused) or `aborted` (`signal`).
   */
  ready(options?: ReadyOptions): Promise<ReadyInfo>;
  connect(): void;
  close(): void;
  /**
   * Sends a post (an action with `kind`): a promise of its ack (`{id, room, seq}`) that rejects with
   * the ChatError that failed the post (also the `error` event); `id` is the post's client id, as in
   * `view.pending`. Over-long or blank text and a room not held are refused before sending. Sent
   * while offline, it waits and goes after the next welcome.
   */
  post(room: string, text: string, opts?: { kind?: "action"; replyTo?: number }): Sending;
  /** `post`, returning only the post's client id (for callers that follow it in `view.pending`). */
  send(room: string, text: string, opts?: { kind?: "action"; replyTo?: number }): string;
  edit(room: string, seq: number, text: string): void;
  remove(room: string, seq: number): void;
  react(room: string, seq: number, emoji: string, on: boolean): void;
  setTopic(room: string, topic: string): void;
  /** Joins a room: resolves with its view once `joined` (at once if held); rejects with the refusal. */
  join(room: string): Promise<RoomView>;
  /** Leaves a room for good: resolves once `parted`. */
  part(room: string): Promise<void>;
  /** Opens the direct room with the user of that nick: resolves with its view once `joined`. */
  dm(nick: string): Promise<RoomView>;
  rename(nick: string): void;
  typing(room: string): void;
  /** Moves the read marker forward to `seq` (debounced; never back). */
  markRead(room: string, seq: number): void;
  /** Loads older posts of a room (history before the oldest held). */
  loadOlder(room: string): Promise<void>;
  /** Sends a failed post again under its id; a new promise of its ack, or undefined if none failed so. */
  retry(room: string, id: string): Sending | undefined;
  discard(room: string, id: string): void;
  /** Skips the rest of a reconnection wait (a "reconnect now" button). */
  reconnectNow?(): void;
}

/** Where the client keeps the identity token between visits (localStorage in a browser). */
export interface IdentityStore {
  get(): string | undefined;
  set(token: string): void;
  /** Forgets the token (a revoked identity); without it, `set("")` is called and "" reads as none. */
  clear?(): void;
}

export interface ChatClientV2Options {
  /** The server: an http(s) or ws(s) address such as `location.href`. */
  url: string | URL;
  /** Nick for a new user (first visit); ignored once an identity exists. */
  nick?: string;
  /** A room to join on connect (`room=`). */
  room?: string;
  /** Access token, for a server started with AUTH_SECRET (then no identity is kept). */
  token?: string;
  identity?: IdentityStore;
  /**
   * The WebSocket class; the runtime's by default. Node 20 has none without
   * `--experimental-websocket`: pass `ws`'s (`import WebSocket from "ws"`).
   */
  WebSocket?: SocketClass;
  /**
   * Start connecting right after the constructor (default true), in a microtask: listeners added
   * just after `new` see every event. With false, call `connect()`.
   */
  autoConnect?: boolean;
  /** Jitter source and timers, for tests. */
  random?: () => number;
  /** Reconnection delays (client/backoff.ts); default 500 ms doubling up to 15 s, with jitter. */
  backoff?: { baseMs?: number; maxMs?: number; factor?: number };
  /** Silence after which the client asks the server for a sign of life; 0 turns it off. Default 25 s. */
  heartbeatMs?: number;
  /** How long a new socket or that question may wait for an answer before reconnecting. Default 10 s. */
  timeoutMs?: number;
  /** Posts a room keeps after a sync (older ones come with `loadOlder`). Default 300. */
  keepPosts?: number;
  /** How long `markRead` waits to send the marker (later calls in that time join it). Default 500 ms. */
  readDelayMs?: number;
  /** How long a `typing` notice from someone stays in `view.typing`. Default 4 s. */
  typingMs?: number;
}
