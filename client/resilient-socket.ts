/**
 * One WebSocket at a time that comes back by itself, for both clients: exponential backoff with
 * jitter (backoff.ts), a connect timeout and a heartbeat for paths that die silently. It tells its
 * owner how each socket ended, including the HTTP status of a refused upgrade when the runtime says
 * it (Bun and other non-browser runtimes put it in the error's message; browsers never do), and the
 * owner decides what follows. Plain TS with no protocol imports, so the v2 bundle stays free of zod.
 */
import { type BackoffOptions, backoffDelay } from "./backoff";

/** How a socket ended. */
export interface Drop {
  code: number;
  reason: string;
  /** The socket opened (the upgrade was accepted) before it ended. */
  opened: boolean;
  /** The HTTP status of a refused upgrade, when the runtime tells it. */
  status?: number;
  /** The runtime said nothing at all about why it could not connect (a browser): the status is unknowable. */
  opaque: boolean;
}

/** What to do after a drop: wait and retry, retry at once, or stay closed. */
export type NextStep = "retry" | "now" | "stop";

export interface SocketHooks {
  /** The address of the next attempt, built fresh each time. */
  url(): string;
  frame(data: unknown): void;
  dropped(drop: Drop): NextStep;
  connecting(): void;
  waiting(retryInMs: number, drop: Drop): void;
  /** Sends something the server must answer (the heartbeat). */
  probe(): void;
}

/**
 * What the clients use of a WebSocket: the WHATWG one (browsers, Bun, Deno, Node 22+, Node 20 with
 * `--experimental-websocket`) has it, and so has the `ws` package's (Node 20). Handlers take `never`
 * so that any implementation's event types fit; the socket reads only `data`, `code`, `reason` and
 * an error's `message`.
 */
export interface WebSocketLike {
  binaryType: string;
  readonly readyState: number;
  onopen: ((event: never) => void) | null;
  onmessage: ((event: never) => void) | null;
  onclose: ((event: never) => void) | null;
  onerror: ((event: never) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

/** The WebSocket class: the global one in browsers and Bun, `ws`'s in Node 20, or a stand-in. */
export type SocketClass = new (url: string) => WebSocketLike;

/** `options.WebSocket`, else the runtime's; a clear error where there is none (Node 20 without a flag). */
export function socketClass(given: SocketClass | undefined): SocketClass {
  const found = given ?? (globalThis as { WebSocket?: SocketClass }).WebSocket;
  if (typeof found !== "function") {
    throw new TypeError(
      "This runtime has no WebSocket: pass one as the WebSocket option (in Node 20: `npm install ws`, " +
        'then `import WebSocket from "ws"`), or run Node 20 with --experimental-websocket (Node 22+ has it).',
    );
  }
  return found;
}

export interface SocketOptions {
  Socket: SocketClass;
  backoff: BackoffOptions;
  /** Silence after which `probe` runs; 0 turns the heartbeat off. */
  heartbeatMs: number;
  /** How long a new socket or a probe may wait for a frame before it is given up. */
  timeoutMs: number;
  random: () => number;
}

type Timer = ReturnType<typeof setTimeout>;

/** The HTTP status in a refused upgrade's error: Bun's "… status code 401", ws's "Unexpected server response: 401". */
const STATUS = /(?:status(?: code)?|server response):?\s*(\d{3})\b/i;

export class ResilientSocket {
  private ws: WebSocketLike | undefined;
  private stopped = true;
  private attempt = 0;
  private retryTimer: Timer | undefined;
  private watchdog: Timer | undefined;

  constructor(
    private readonly options: SocketOptions,
    private readonly hooks: SocketHooks,
  ) {}

  get running(): boolean {
    return !this.stopped;
  }

  /** Starts connecting; no-op while a socket is open or opening. */
  start(): void {
    this.stopped = false;
    if (!this.ws) this.open();
  }

  /** Skips the rest of a reconnection wait. */
  retryNow(): void {
    if (!this.stopped && !this.ws) this.open();
  }

  /** Closes for good (until `start()`). */
  stop(reason: string): void {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    const ws = this.ws;
    this.detach();
    try {
      ws?.close(1000, reason);
    } catch {
      // Already closing.
    }
  }

  /** Closes the current socket as if the network dropped it; a retry follows (tests, "reconnect now"). */
  drop(reason = "dropped by the client"): void {
    const ws = this.ws;
    if (!ws) return;
    try {
      ws.close(4000, reason);
    } catch {
      // Closing a socket that never opened can throw in some runtimes.
    }
    this.dropped(ws, { code: 1006, reason, opened: true, opaque: false });
  }

  /** The server accepted this socket (its welcome came): the backoff starts over. */
  established(): void {
    this.attempt = 0;
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
    let ws: WebSocketLike;
    try {
      ws = new this.options.Socket(this.hooks.url());
    } catch (err) {
      const reason = err instanceof Error ? err.message : "could not open a socket";
      this.after({ code: 1006, reason, opened: false, opaque: false });
      return;
    }
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    let opened = false;
    let error: Partial<Drop> = { opaque: true };
    ws.onopen = () => {
      opened = true;
    };
    ws.onmessage = (event: { data: unknown }) => {
      if (this.ws !== ws) return;
      this.heard();
      this.hooks.frame(event.data);
    };
    ws.onerror = (event: { message?: unknown }) => {
      const message = event.message;
      if (typeof message === "string" && message !== "") {
        const status = STATUS.exec(message)?.[1];
        error = status ? { status: Number(status), opaque: false } : { opaque: false };
      }
    };
    ws.onclose = (event: { code: number; reason: string }) =>
      this.dropped(ws, {
        code: event.code,
        reason: event.reason,
        opened,
        opaque: !opened && error.opaque !== false,
        ...(opened || error.status === undefined ? {} : { status: error.status }),
      });
    this.hooks.connecting();
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
    const opened = ws.readyState === 1;
    try {
      ws.close(4000, reason);
    } catch {
      // Closing a socket that never opened can throw in some runtimes.
    }
    this.dropped(ws, { code: 1006, reason, opened, opaque: false });
  }

  private dropped(ws: WebSocketLike, drop: Drop): void {
    if (ws !== this.ws) return;
    this.detach();
    if (!this.stopped) this.after(drop);
  }

  private after(drop: Drop): void {
    const next = this.hooks.dropped(drop);
    if (next === "stop") {
      this.stopped = true;
      return;
    }
    if (next === "now") {
      this.open();
      return;
    }
    const delay = backoffDelay(this.attempt, this.options.backoff, this.options.random);
    this.attempt++;
    this.hooks.waiting(delay, drop);
    this.retryTimer = setTimeout(() => this.open(), delay);
  }

  private detach(): void {
    const ws = this.ws;
    if (!ws) return;
    ws.onopen = null;
    ws.onmessage = null;
    ws.onclose = null;
    ws.onerror = null;
    this.ws = undefined;
    clearTimeout(this.watchdog);
  }
}
