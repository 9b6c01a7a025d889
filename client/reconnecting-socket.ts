/**
 * The v1 client's socket: resilient-socket.ts (backoff with jitter, a connect timeout, a heartbeat)
 * with v1's rules on top: its state as a ConnectionState, and a 4001 (this session resumed elsewhere)
 * ends it for good, as coming back would only take the session over again.
 */
import { CLOSE } from "../protocol";
import type { ConnectionState } from "./client-events";
import { type Drop, type NextStep, ResilientSocket, type SocketOptions } from "./resilient-socket";

export type { SocketClass, SocketOptions } from "./resilient-socket";

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

export class ReconnectingSocket {
  private readonly socket: ResilientSocket;
  /** Attempts since the last welcome: 0 is the first connection, more a reconnection. */
  private attempt = 0;
  private current: ConnectionState = { status: "closed", code: CLOSE.normal, reason: "not connected yet" };

  constructor(
    options: SocketOptions,
    private readonly hooks: SocketHooks,
  ) {
    this.socket = new ResilientSocket(options, {
      url: () => hooks.url(),
      frame: (data) => hooks.frame(data),
      probe: () => hooks.probe(),
      connecting: () => this.setState({ status: "connecting", attempt: this.attempt }),
      dropped: (drop) => this.dropped(drop),
      waiting: (delay, drop) => {
        this.attempt++;
        const { code, reason } = drop;
        this.setState({
          status: "waiting",
          attempt: this.attempt,
          retryAt: Date.now() + delay,
          code,
          reason,
        });
      },
    });
  }

  get state(): ConnectionState {
    return this.current;
  }

  /** Starts connecting; no-op while a socket is open. */
  start(): void {
    this.socket.start();
  }

  /** Skips the rest of a reconnection wait. */
  retryNow(): void {
    if (this.current.status === "waiting") this.socket.retryNow();
  }

  /** Closes for good (until `start()`). */
  stop(reason: string): void {
    this.socket.stop(reason);
    this.hooks.dropped();
    this.setState({ status: "closed", code: CLOSE.normal, reason });
  }

  /** The server accepted this socket (its welcome came): the backoff starts over. */
  established(connectionId: string): void {
    this.attempt = 0;
    this.socket.established();
    this.setState({ status: "connected", connectionId });
  }

  send(data: string): boolean {
    return this.socket.send(data);
  }

  private dropped(drop: Drop): NextStep {
    this.hooks.dropped();
    if (drop.code !== CLOSE.replaced) return "retry";
    this.setState({
      status: "closed",
      code: drop.code,
      reason: drop.reason || "this session was resumed elsewhere",
    });
    return "stop";
  }

  private setState(state: ConnectionState): void {
    this.current = state;
    this.hooks.state(state);
  }
}
