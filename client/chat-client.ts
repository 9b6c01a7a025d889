/**
 * The protocol v1 chat client for browsers, Bun and Node: typed events, reconnection with resume and
 * since, an outbox whose every message is also a promise of its ack, the user list.
 */
import {
  type ChatMessage,
  type ClientMessage,
  DEFAULT_ROOM,
  type DecodeError,
  decodeClientMessage,
  decodeServerMessage,
  type ErrorMessage,
  encode,
  LIMITS,
  normalizeNick,
  normalizeRoom,
  type Presence,
  type Users,
  type Welcome,
} from "../protocol";
import { type BackoffOptions, DEFAULT_BACKOFF } from "./backoff";
import { ChatError } from "./chat-error";
import type { ClientEvents, ConnectionState } from "./client-events";
import { type Command, parseCommand } from "./commands";
import { Emitter } from "./emitter";
import { Outbox, type OutboxEntry } from "./outbox";
import { ReconnectingSocket, type SocketClass, type SocketOptions } from "./reconnecting-socket";
import { socketClass } from "./resilient-socket";
import { Roster } from "./roster";
import { type Acked, type Sending, type SendSettler, sendingOf } from "./sending";
import { socketUrl } from "./socket-url";
import { type ReadyOptions, Waiters } from "./waiters";

export interface ChatClientOptions {
  /** The server: an http(s) or ws(s) address such as `location.href`; `ws` is resolved against it. */
  url: string | URL;
  room?: string;
  /** Wanted nickname; the server assigns `guest-N` when absent and `NICK-2` when taken. */
  nick?: string;
  /** Access token, for a server started with an auth secret. */
  token?: string;
  backoff?: Partial<BackoffOptions>;
  /** Silence after which the client asks the server for a sign of life; 0 turns the heartbeat off. */
  heartbeatMs?: number;
  /** How long a new socket or a heartbeat may wait for an answer before the client reconnects. */
  timeoutMs?: number;
  /** Source of jitter; tests pass a fixed one. */
  random?: () => number;
  /**
   * The WebSocket class; the runtime's by default. Node 20 has none without
   * `--experimental-websocket`: pass `ws`'s (`import WebSocket from "ws"`).
   */
  WebSocket?: SocketClass;
  /**
   * Start connecting right after the constructor (default true), in a microtask: listeners added
   * just after `new` see every event, the first `state` included. Otherwise call `connect()`.
   */
  autoConnect?: boolean;
}

export class ChatClient extends Emitter<ClientEvents> {
  private readonly base: string | URL;
  private readonly token: string | undefined;
  private readonly socket: ReconnectingSocket;
  private readonly roster = new Roster();
  private readonly outbox = new Outbox();
  /** The promise of each message not yet acked or failed, by id. */
  private readonly settlers = new Map<string, SendSettler>();
  private readonly readyWaiters = new Waiters<Welcome>();
  /** The last welcome of the open socket. */
  private lastWelcome: Welcome | undefined;
  /** `close()` came before the automatic connect. */
  private closedEarly = false;

  /** The open socket got its welcome: requests may go out. */
  private welcomed = false;
  /** The room to be in: the last welcome's, or the one a `join` asked for. */
  private targetRoom: string;
  private currentNick: string | undefined;
  private pendingNick: string | undefined;
  private resumeToken: string | undefined;
  private id: string | undefined;
  /** The newest seq this client has seen, and in which room. */
  private seen: { room: string; seq: number; epoch: string | undefined } | undefined;
  /** The `since` the open socket asked for; undefined asks for a fresh view. */
  private sinceSent: number | undefined;
  /** Who asked for each pending `who`: the person (true) or the heartbeat (false). */
  private readonly whoQueue: boolean[] = [];
  private lastTypingAt = Number.NEGATIVE_INFINITY;

  constructor(options: ChatClientOptions) {
    super();
    this.base = options.url;
    this.token = options.token;
    this.targetRoom = normalizeRoom(options.room ?? DEFAULT_ROOM);
    const refusal = check({ type: "join", room: this.targetRoom });
    if (refusal) throw new ChatError(refusal.code, refusal.message);
    if (options.nick !== undefined) {
      const nickRefusal = check({ type: "nick", nick: options.nick });
      if (nickRefusal) throw new ChatError(nickRefusal.code, nickRefusal.message);
      this.currentNick = normalizeNick(options.nick);
    }
    const socketOptions: SocketOptions = {
      Socket: socketClass(options.WebSocket),
      backoff: { ...DEFAULT_BACKOFF, ...options.backoff },
      heartbeatMs: options.heartbeatMs ?? 25_000,
      timeoutMs: options.timeoutMs ?? 10_000,
      random: options.random ?? Math.random,
    };
    this.socket = new ReconnectingSocket(socketOptions, {
      url: () => this.url(),
      frame: (data) => this.receive(data),
      dropped: () => {
        this.welcomed = false;
        this.lastWelcome = undefined;
        this.whoQueue.length = 0;
      },
      state: (state) => {
        if (state.status === "closed") {
          this.readyWaiters.reject(new ChatError("closed", `the client is closed: ${state.reason}`));
        }
        this.emit("state", state);
      },
      probe: () => {
        this.whoQueue.push(false);
        this.write({ type: "who" });
      },
    });
    if (options.autoConnect ?? true) {
      queueMicrotask(() => {
        if (!this.closedEarly) this.connect();
      });
    }
  }

  get state(): ConnectionState {
    return this.socket.state;
  }
  /** Welcomed on an open socket: requests go out now. */
  get connected(): boolean {
    return this.welcomed;
  }
  /** The room this client is in (or joining). */
  get room(): string {
    return this.targetRoom;
  }
  /** This client's nickname as the server knows it; before the first welcome, the wanted one. */
  get nickname(): string | undefined {
    return this.currentNick;
  }
  get connectionId(): string | undefined {
    return this.id;
  }
  get users(): readonly string[] {
    return this.roster.list();
  }
  /** Newest seq seen in the current room. */
  get lastSeq(): number {
    return this.seen?.room === this.targetRoom ? this.seen.seq : 0;
  }
  /** Messages not yet acked, oldest first. */
  get pending(): readonly OutboxEntry[] {
    return this.outbox.unsettled();
  }

  /**
   * Resolves with the welcome once the client is connected (at once if it is now); rejects with a
   * ChatError `closed` if the client is closed first (`close()`, or replaced by a resumed session),
   * `aborted` if `signal` aborts first. It does not connect by itself (see `autoConnect`), and waits
   * through reconnection attempts: pass `signal: AbortSignal.timeout(ms)` to bound the wait.
   */
  ready(options: ReadyOptions = {}): Promise<Welcome> {
    if (this.welcomed && this.lastWelcome) return Promise.resolve(this.lastWelcome);
    return this.readyWaiters.wait(options);
  }

  /** Starts connecting (again, after `close()` or a 4001 replacement); no-op while a socket is open. */
  connect(): void {
    this.closedEarly = false;
    this.socket.start();
  }

  /** Skips the rest of a reconnection wait. */
  reconnectNow(): void {
    this.socket.retryNow();
  }

  /** Closes for good (until `connect()`); the outbox keeps what was not acked, their promises wait. */
  close(): void {
    this.closedEarly = true;
    this.socket.stop("closed by the client");
  }

  /** Runs one line typed by a person: a chat line, or a slash command parsed by `parseCommand`. */
  input(line: string): Command {
    const command = parseCommand(line);
    if (command.kind === "chat") this.send(command.text);
    else if (command.kind === "nick") this.nick(command.nick);
    else if (command.kind === "join") this.join(command.room);
    else if (command.kind === "who") this.who();
    return command;
  }

  /**
   * Queues a chat message; it goes out now or after the next welcome. Returns a promise of its ack
   * (`{id, room, seq}`) that rejects with the ChatError that failed it (also emitted as `error`):
   * the server's refusal, the client's own (blank or too long: the server's codes), `unconfirmed`,
   * `left_room`. Its fields (`id`, `state`, `seq`, `error`) follow the message meanwhile.
   */
  send(text: string): Sending {
    const entry = this.outbox.add(this.targetRoom, text);
    const settler = sendingOf(entry);
    this.settlers.set(entry.id, settler);
    const refusal = check({ type: "chat", text, id: entry.id });
    if (refusal) {
      this.fail(entry, new ChatError(refusal.code, refusal.message, { id: entry.id, room: entry.room }));
    } else {
      this.emit("outbox", entry);
      if (this.welcomed) this.writeChat(entry);
    }
    return settler.sending;
  }

  /**
   * Sends a failed message again under the same id, so the server stores it at most once. Returns a
   * new promise of its ack, or undefined when no failed message has that id.
   */
  retry(id: string): Sending | undefined {
    const entry = this.outbox.retry(id);
    if (!entry) return undefined;
    const settler = sendingOf(entry);
    this.settlers.set(id, settler);
    this.emit("outbox", entry);
    if (this.welcomed && entry.room === this.targetRoom) this.writeChat(entry);
    return settler.sending;
  }

  /** Forgets an unacked message; its promise rejects with `discarded` (not an `error` event: you asked). */
  discard(id: string): boolean {
    const room = this.outbox.get(id)?.room;
    if (!this.outbox.discard(id)) return false;
    const discarded = new ChatError("discarded", "discarded before the server confirmed it", { id, room });
    this.settlers.get(id)?.reject(discarded);
    this.settlers.delete(id);
    return true;
  }

  /** Asks for a new nickname; offline, it is asked for after the next welcome. */
  nick(name: string): boolean {
    const refusal = check({ type: "nick", nick: name });
    if (refusal) return this.refuse(refusal);
    if (this.welcomed) return this.write({ type: "nick", nick: normalizeNick(name) });
    this.pendingNick = normalizeNick(name);
    return true;
  }

  /** Switches room; offline, the next connection opens in that room. */
  join(room: string): boolean {
    const refusal = check({ type: "join", room });
    if (refusal) return this.refuse(refusal);
    this.targetRoom = normalizeRoom(room);
    this.sinceSent = undefined;
    if (this.welcomed) this.write({ type: "join", room: this.targetRoom });
    return true;
  }

  /** Asks for the messages before `before` (newest first page when absent); answered by `history`. */
  history(before?: number, limit?: number): boolean {
    if (!this.welcomed) return false;
    const msg: ClientMessage = { type: "history" };
    if (before !== undefined) msg.before = before;
    if (limit !== undefined) msg.limit = limit;
    return this.write(msg);
  }

  /** Asks for the user list; answered by `users`. */
  who(): boolean {
    if (!this.welcomed) return false;
    this.whoQueue.push(true);
    return this.write({ type: "who" });
  }

  /** Tells the room this person is typing; sent at most once a second. */
  typing(): boolean {
    const now = Date.now();
    if (!this.welcomed || now - this.lastTypingAt < LIMITS.typingIntervalMs) return false;
    this.lastTypingAt = now;
    return this.write({ type: "typing" });
  }

  private url(): string {
    this.sinceSent = this.seen?.room === this.targetRoom ? this.seen.seq : undefined;
    return socketUrl(this.base, {
      room: this.targetRoom,
      nick: this.currentNick,
      since: this.sinceSent,
      resume: this.resumeToken,
      token: this.token,
    });
  }

  private receive(data: unknown): void {
    const frame = typeof data === "string" || data instanceof ArrayBuffer ? data : new ArrayBuffer(0);
    const decoded = decodeServerMessage(frame);
    if (!decoded.ok) {
      const { code, message } = decoded.error;
      const cause = { code, message, sample: typeof data === "string" ? data.slice(0, 200) : "" };
      this.emit(
        "error",
        new ChatError("invalid_frame", `dropped a frame from the server: ${message}`, { cause }),
      );
      return;
    }
    const msg = decoded.value;
    const inRoom = "room" in msg && msg.type !== "welcome" ? msg.room === this.seen?.room : true;
    if (!inRoom) return; // a late frame of a room this client has left
    switch (msg.type) {
      case "welcome":
        this.onWelcome(msg);
        break;
      case "chat":
        this.onChat(msg);
        break;
      case "presence":
        this.onPresence(msg);
        break;
      case "users":
        this.onUsers(msg);
        break;
      case "history":
        this.emit("history", msg);
        break;
      case "ack": {
        const entry = this.outbox.acked(msg.id, msg.seq);
        if (entry) {
          const ack: Acked = { id: entry.id, room: entry.room, seq: msg.seq };
          this.settlers.get(entry.id)?.resolve(ack);
          this.settlers.delete(entry.id);
          this.emit("outbox", entry);
        }
        this.emit("ack", msg);
        break;
      }
      case "typing":
        this.emit("typing", msg);
        break;
      case "error":
        this.onError(msg);
        break;
    }
  }

  private onWelcome(w: Welcome): void {
    const since = this.sinceSent;
    // The server hands out a new token on every resume, keeping its first part (the session's id).
    const resumed =
      this.resumeToken !== undefined && sessionOf(w.resumeToken) === sessionOf(this.resumeToken);
    // A gap the server could not fill, or a room whose history was lost or reset (a new epoch, or
    // fewer messages than we saw), starts the view over.
    const newEpoch = w.epoch !== undefined && this.seen?.epoch !== undefined && w.epoch !== this.seen.epoch;
    const reset =
      since === undefined ||
      this.seen?.room !== w.room ||
      w.historyTruncated ||
      w.lastSeq < since ||
      newEpoch;
    const previous = reset ? 0 : since;
    const missed: ChatMessage[] = reset ? [] : w.history.filter((m) => m.seq > previous);
    const seq = Math.max(previous, w.lastSeq, w.history.at(-1)?.seq ?? 0);
    this.seen = { room: w.room, seq, epoch: w.epoch };
    this.targetRoom = w.room;
    this.currentNick = w.nick;
    this.id = w.connectionId;
    this.resumeToken = w.resumeToken;
    this.welcomed = true;
    this.lastWelcome = w;
    this.roster.reset(w.users);
    this.socket.established(w.connectionId);
    this.emit("welcome", { message: w, reset, missed, resumed });
    this.readyWaiters.resolve(w);
    this.emit("roster", this.roster.list());
    this.flushOutbox(resumed);
    if (this.pendingNick !== undefined) {
      const nick = this.pendingNick;
      this.pendingNick = undefined;
      if (nick !== this.currentNick) this.write({ type: "nick", nick });
    }
  }

  private onChat(msg: ChatMessage): void {
    const seen = this.seen as { room: string; seq: number };
    if (msg.seq <= seen.seq) return; // already shown: a resume overlap never shows twice
    seen.seq = msg.seq;
    this.emit("chat", msg);
  }

  private onPresence(msg: Presence): void {
    for (const event of msg.events) {
      this.roster.apply(event);
      if (event.event === "nick" && event.from === this.currentNick) this.currentNick = event.nick;
    }
    this.emit("presence", msg);
    this.emit("roster", this.roster.list());
  }

  private onUsers(msg: Users): void {
    this.roster.reset(msg.users);
    const askedByPerson = this.whoQueue.shift() ?? true;
    this.emit("roster", this.roster.list());
    if (askedByPerson) this.emit("users", msg);
  }

  private onError(msg: ErrorMessage): void {
    const entry = msg.id === undefined ? undefined : this.outbox.get(msg.id);
    const error = new ChatError(msg.code, msg.message, { id: msg.id, room: entry?.room ?? this.seen?.room });
    if (entry) this.fail(entry, error);
    else this.emit("error", error);
  }

  /** Sends what waited; a message sent before a drop goes again only if the server kept the session. */
  private flushOutbox(resumed: boolean): void {
    for (const entry of this.outbox.sending()) {
      const at = { id: entry.id, room: entry.room };
      if (entry.room !== this.targetRoom) {
        this.fail(entry, new ChatError("left_room", `not sent: you left ${entry.room}`, at));
      } else if (entry.attempts > 0 && !resumed) {
        const message = "the connection was lost before the server confirmed this message";
        this.fail(entry, new ChatError("unconfirmed", message, at));
      } else {
        this.writeChat(entry);
      }
    }
  }

  /** A message failed: its entry, its promise and the `error` event say so, with the same error. */
  private fail(entry: OutboxEntry, error: ChatError): void {
    this.outbox.failed(entry.id, error);
    this.emit("outbox", entry);
    this.settlers.get(entry.id)?.reject(error);
    this.settlers.delete(entry.id);
    this.emit("error", error);
  }

  private writeChat(entry: OutboxEntry): void {
    entry.attempts++;
    this.write({ type: "chat", text: entry.text, id: entry.id });
  }

  private write(msg: ClientMessage): boolean {
    return this.socket.send(encode(msg));
  }

  private refuse(error: DecodeError): false {
    this.emit("error", new ChatError(error.code, error.message, { room: this.targetRoom }));
    return false;
  }
}

/** The refusal the server would give this message, from the same decoder, or undefined. */
function check(msg: ClientMessage): DecodeError | undefined {
  const decoded = decodeClientMessage(encode(msg));
  return decoded.ok ? undefined : decoded.error;
}

/** The part of a resume token that names the session (`SID.SECRET`); an opaque token is its own. */
function sessionOf(token: string): string {
  const dot = token.indexOf(".");
  return dot === -1 ? token : token.slice(0, dot);
}
