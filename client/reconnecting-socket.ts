/** One WebSocket at a time that comes back by itself: backoff with jitter, a connect timeout, a heartbeat. */
import { CLOSE } from "../protocol";
import { type BackoffOptions, backoffDelay } from "./backoff";
import type { ConnectionState } from "./client-events";

/** The WebSocket class: the global one in browsers and Bun, or a stand-in. */
export type SocketClass = new (url: string) => WebSocket;

export interface SocketOptions {
  Socket: SocketClass;
  backoff: BackoffOptions;
  /** Silence after which `probe` runs; 0 turns the heartbeat off. */
  heartbeatMs: number;
  /** How long a new socket or a probe may wait for a frame before the socket is given up. */
  timeoutMs: number;
  random: () => number;
}

export interface SocketHooks {
  /** The address of the next attempt, built fresh each time (since and resume change). */
  url(): string;
  frame(data: unknown): void;
  /** The socket is gone; a retry follows unless the state says `closed`. */
  dropped(): void;
  state(state: ConnectionState): void;
  /** Sends something the server must answer. */
  probe(): void;
}

type Timer = ReturnType<typeof setTimeout>;

export class ReconnectingSocket {
  private ws: WebSocket | undefined;
  private stopped = true;
  private attempt = 0;
  private retryTimer: Timer | undefined;
  private watchdog: Timer | undefined;
  private current: ConnectionState = { status: "closed", code: CLOSE.normal, reason: "not connected yet" };

  constructor(
    private readonly options: SocketOptions,
    private readonly hooks: SocketHooks,
  ) {}

  get state(): ConnectionState {
    return this.current;
  }

  /** Starts connecting; no-op while a socket is open. */
  start(): void {
    this.stopped = false;
    if (!this.ws) this.open();
  }

  /** Skips the rest of a reconnection wait. */
  retryNow(): void {
    if (this.current.status === "waiting") this.open();
  }

  /** Closes for good (until `start()`). */
  stop(reason: string): void {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    const ws = this.ws;
    this.detach();
    try {
      ws?.close(CLOSE.normal, reason);
    } catch {
      // Already closing.
    }
    this.setState({ status: "closed", code: CLOSE.normal, reason });
  }

  /** The server accepted this socket (its welcome came): the backoff starts over. */
  established(connectionId: string): void {
    this.attempt = 0;
    this.setState({ status: "connected", connectionId });
  }

  send(data: string): boolean {
    const ws = this.ws;
    if (ws?.readyState !== 1) return false;
    try {
      ws.send(data);
      return true;
    } catch {
      return false;
    }
  }

  private open(): void {
    clearTimeout(this.retryTimer);
    let ws: WebSocket;
    try {
      ws = new this.options.Socket(this.hooks.url());
    } catch (err) {
      this.retryLater(1006, err instanceof Error ? err.message : "could not open a socket");
      return;
    }
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    ws.onmessage = (event) => {
      if (this.ws !== ws) return;
      this.heard();
      this.hooks.frame(event.data);
    };
    ws.onclose = (event) => this.dropped(ws, event.code, event.reason);
    ws.onerror = () => {}; // a close event follows with the code
    this.setState({ status: "connecting", attempt: this.attempt });
    this.arm(this.options.timeoutMs, () => this.abandon("no answer from the server"));
  }

  /** Any frame is a sign of life: the heartbeat waits for the next silence. */
  private heard(): void {
    if (this.options.heartbeatMs <= 0) {
      clearTimeout(this.watchdog);
      return;
    }
    this.arm(this.options.heartbeatMs, () => {
      this.hooks.probe();
      this.arm(this.options.timeoutMs, () => this.abandon("the server stopped answering"));
    });
  }

  private arm(ms: number, fn: () => void): void {
    clearTimeout(this.watchdog);
    this.watchdog = setTimeout(fn, ms);
  }

  /** Gives up on a socket that went silent without closing (a dead network path). */
  private abandon(reason: string): void {
    const ws = this.ws;
    if (!ws) return;
    try {
      ws.close(4000, reason);
    } catch {
      // Closing a socket that never opened can throw in some runtimes.
    }
    this.dropped(ws, 1006, reason);
  }

  private dropped(ws: WebSocket, code: number, reason: string): void {
    if (ws !== this.ws) return;
    this.detach();
    if (this.stopped) return;
    if (code === CLOSE.replaced) {
      // Another connection resumed this session: coming back would only take it over again.
      this.stopped = true;
      this.setState({ status: "closed", code, reason: reason || "this session was resumed elsewhere" });
    } else {
      this.retryLater(code, reason);
    }
  }

  private detach(): void {
    const ws = this.ws;
    if (!ws) return;
    ws.onmessage = null;
    ws.onclose = null;
    ws.onerror = null;
    this.ws = undefined;
    clearTimeout(this.watchdog);
    this.hooks.dropped();
  }

  private retryLater(code: number, reason: string): void {
    const delay = backoffDelay(this.attempt, this.options.backoff, this.options.random);
    this.attempt++;
    this.setState({ status: "waiting", attempt: this.attempt, retryAt: Date.now() + delay, code, reason });
    this.retryTimer = setTimeout(() => this.open(), delay);
  }

  private setState(state: ConnectionState): void {
    this.current = state;
    this.hooks.state(state);
  }
}
