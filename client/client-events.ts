/** What a ChatClient reports: its connection state and one typed event per server message. */
import type { Ack, ChatMessage, History, Presence, Typing, Users, Welcome } from "../protocol";
import type { ChatError } from "./chat-error";
import type { OutboxEntry } from "./outbox";

export type ConnectionState =
  /** A socket is opening; `attempt` 0 is the first connection, more is a reconnection. */
  | { status: "connecting"; attempt: number }
  | { status: "connected"; connectionId: string }
  /** Dropped; the next attempt starts at `retryAt` (epoch ms). */
  | { status: "waiting"; attempt: number; retryAt: number; code: number; reason: string }
  /** Stopped for good: `close()` was called, or another connection resumed this session (4001). */
  | { status: "closed"; code: number; reason: string };

export interface WelcomeEvent {
  message: Welcome;
  /**
   * True when the view must start over from `message.history`: the first welcome, another room,
   * or a gap the server could not fill. False after a resume: `missed` then holds exactly the
   * messages this client had not seen, in order.
   */
  reset: boolean;
  missed: ChatMessage[];
  /** The server kept this client's session (nickname and message ids) across the reconnection. */
  resumed: boolean;
}

/** The `cause` of an `invalid_frame` error: why the frame failed to decode, and its start. */
export interface InvalidFrame {
  code: string;
  message: string;
  /** The start of the frame, for diagnostics. */
  sample: string;
}

export interface ClientEvents {
  state: ConnectionState;
  welcome: WelcomeEvent;
  /** A chat message of the current room, each seq once and in order. */
  chat: ChatMessage;
  presence: Presence;
  /** The user list changed (welcome, presence, users). */
  roster: readonly string[];
  /** The answer to `who()`. */
  users: Users;
  /** The answer to `history()`. */
  history: History;
  ack: Ack;
  typing: Typing;
  /**
   * Every error, one type: the server's refusals, requests this client refused to send (with the
   * same codes), messages that failed (`unconfirmed`, `left_room`; their `send` promise rejects with
   * the same object) and frames that did not decode (`invalid_frame`: dropped, never acted upon).
   */
  error: ChatError;
  /** An outbox entry was added or changed state. */
  outbox: OutboxEntry;
}
