/** The few things the chat logic asks of a socket and of the pub/sub system; Bun's adapter maps them. */
import { describeError, type Logger } from "./log";

export interface Peer {
  /** Sends one text frame to this socket only; 0 means it was dropped, as Bun's `send` says. */
  send(data: string): number | undefined;
  /** Bytes queued for this socket and not yet written. */
  bufferedAmount(): number;
  subscribe(topic: string): void;
  unsubscribe(topic: string): void;
  /** Sends to every subscriber of `topic` but this socket. */
  publishOthers(topic: string, data: string): void;
  close(code: number, reason: string): void;
}

export interface Fanout {
  /** Sends to every subscriber of `topic`; encoded once, whatever the room's size. */
  publish(topic: string, data: string): void;
}

export function roomTopic(room: string): string {
  return `room:${room}`;
}

export function roomTopicV2(room: string): string {
  return `room2:${room}`;
}

/** One peer's failure (a socket already gone) must never stop the work for the others. */
export function safely(fn: () => void, log: Logger): void {
  try {
    fn();
  } catch (err) {
    log.log("warn", "peer_call_failed", describeError(err));
  }
}
