/**
 * The v2 client's public shape: what the browser page (and anyone's program) builds on. The client
 * keeps one user's view of all its rooms: the posts it has seen (folded with their changes), who is
 * in each room, unread and mention counts, read markers, and the topic; it reconnects by itself and
 * `sync`s each room from what it has. It imports no zod (the page must stay small): frames are
 * checked by the hand-written guards in guards.ts, against the limits in protocol/.
 */

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
  reason?: string;
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
  ready: { userId: string; nick: string; rooms: string[] };
  /** A room's view changed (posts, users, counts, topic, pending, typing): redraw it. */
  room: { room: string; view: RoomView };
  /** A room was added to (joined, dm) or removed from (parted, kicked) the user's rooms. */
  rooms: { rooms: string[]; added?: string; removed?: string; kicked?: { by: string; reason?: string } };
  /** A new post arrived live (not from sync or history): for notifications and live regions. */
  post: { post: ClientPost; mentionsMe: boolean; own: boolean };
  /** Our nickname changed. */
  nick: { nick: string };
  /** Something the server refused, in people's words (no codes), with the request's id if any. */
  problem: { message: string; code: string; id?: string; room?: string };
}

/** The client's operations. Every request that names a room acts in that room. */
export interface ChatClientV2Api {
  readonly userId: string | undefined;
  readonly nick: string | undefined;
  readonly state: ConnectionState;
  rooms(): string[];
  view(room: string): RoomView | undefined;
  on<K extends keyof ClientV2Events>(type: K, listener: (value: ClientV2Events[K]) => void): () => void;
  connect(): void;
  close(): void;
  /** Sends a post (an action with `kind`); returns its client id. Over-long text is refused before sending. */
  send(room: string, text: string, opts?: { kind?: "action"; replyTo?: number }): string;
  edit(room: string, seq: number, text: string): void;
  remove(room: string, seq: number): void;
  react(room: string, seq: number, emoji: string, on: boolean): void;
  setTopic(room: string, topic: string): void;
  join(room: string): void;
  part(room: string): void;
  dm(nick: string): void;
  rename(nick: string): void;
  typing(room: string): void;
  /** Moves the read marker forward to `seq` (debounced; never back). */
  markRead(room: string, seq: number): void;
  /** Loads older posts of a room (history before the oldest held). */
  loadOlder(room: string): Promise<void>;
  retry(room: string, id: string): void;
  discard(room: string, id: string): void;
}

/** Where the client keeps the identity token between visits (localStorage in a browser). */
export interface IdentityStore {
  get(): string | undefined;
  set(token: string): void;
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
  WebSocket?: typeof WebSocket;
  /** Jitter source and timers, for tests. */
  random?: () => number;
}
