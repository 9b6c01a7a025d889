/** The IPC contract between the orchestrator (pool.ts) and each generator process (worker.ts). */
import type { HistogramData } from "../stats";
import type { ClientSpec, DialectName } from "./dialects";

export interface Target {
  hostname: string;
  port: number;
  dialect: DialectName;
  /** "light": clients on Bun's own WebSocket instead of the bare generator client. */
  client?: "light";
}

export type Command =
  /**
   * Opens every client, at most `concurrency` handshakes at a time, and waits for each to be ready.
   * With `checkSeq` (our protocol only), each client checks that the chats of its room arrive with
   * `seq` one above the last it saw (its welcome's `lastSeq` first): no gap, no duplicate.
   */
  | {
      cmd: "connect";
      target: Target;
      clients: ClientSpec[];
      idBase: number;
      concurrency: number;
      timeoutMs: number;
      checkSeq?: boolean;
    }
  /**
   * Closed loop: each sender keeps `window` messages in flight, sending one more per own echo;
   * with `limit`, each sender stops after that many messages.
   */
  | { cmd: "closedLoop"; senders: number[]; window: number; textLength: number; limit?: number }
  /**
   * Open loop: each sender sends `rate` messages a second from `startAt + offsetMs` on, whatever
   * comes back. Every chat received is timed against the send time stamped in its text.
   */
  | {
      cmd: "openLoop";
      senders: Array<[client: number, offsetMs: number]>;
      rate: number;
      startAt: number;
      textLength: number;
    }
  /**
   * Stops sending (with `spendBudget`, only once every sender sent its `limit`); resolves once no own
   * message is in flight and deliveries settle, or at `timeoutMs`.
   */
  | { cmd: "stopSending"; timeoutMs: number; spendBudget?: boolean }
  /** Counters so far; `reset` starts a new latency histogram. */
  | { cmd: "snapshot"; reset: boolean }
  /** Marks every client here as waiting for one chat; sent to all workers before `broadcast`. */
  | { cmd: "arm" }
  /**
   * The listed clients send one message each at `at` (wall clock, ms), so that every process starts
   * together; resolves when every armed client here had a chat.
   */
  | { cmd: "broadcast"; senders: number[]; at: number; textLength: number; timeoutMs: number }
  /** Closes every client (a close frame each) and waits until their sockets are gone. */
  | { cmd: "close"; timeoutMs: number }
  /** Reconnects every client with `since` = the welcome's lastSeq and its resume token. */
  | { cmd: "reconnect"; concurrency: number; timeoutMs: number }
  | { cmd: "exit" };

export interface ConnectResult {
  connected: number;
  failed: number;
  firstError: string | undefined;
  ms: number;
  /** Connect-to-ready times in microseconds. */
  readyHist: HistogramData;
  readyMax: number;
  historyMin: number;
  historyMax: number;
  truncated: number;
}

export interface Snapshot {
  /** performance.timeOrigin + now(), in ms, so processes agree. */
  at: number;
  deliveries: number;
  sent: number;
  errors: number;
  /** The first error frame received, cut to 300 characters. */
  firstError: string | undefined;
  unexpectedCloses: number;
  /** Largest delay between a scheduled open-loop send and the send itself, in ms. */
  sendLagMaxMs: number;
  /** With `checkSeq`: seqs skipped (summed over clients), and chats at or below a seq already seen. */
  seqGaps: number;
  seqDupes: number;
  latency: HistogramData;
  latencyMax: number;
}

export interface BroadcastResult {
  /** NaN when this worker sent nothing. */
  firstSendAt: number;
  doneAt: number;
  missing: number;
}

export interface Reply {
  id: number;
  ok: boolean;
  error?: string;
  value?: unknown;
}

/** Wall-clock milliseconds with sub-millisecond precision, comparable between processes. */
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}
