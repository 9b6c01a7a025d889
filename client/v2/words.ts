/**
 * Refusals in people's words: what the page shows instead of an error code. The server's own
 * `message` names codes and fields for developers; these say what happened and what to do.
 */
import { LIMITS_V2 } from "../../protocol/v2/limits";

/** What a request was about, so a refusal can be told in its terms. */
export type RequestKind =
  | "chat"
  | "edit"
  | "delete"
  | "react"
  | "topic"
  | "join"
  | "part"
  | "dm"
  | "nick"
  | "read"
  | "history"
  | "sync"
  | "who"
  | "typing";

const thousands = (n: number) => n.toLocaleString("en");

const GENERAL: Record<string, string> = {
  too_large: `That is too long: a message holds at most ${thousands(LIMITS_V2.textMax)} characters.`,
  rate_limited: "You are sending too fast. Wait a moment and try again.",
  not_found: "That is no longer there.",
  forbidden: "You are not allowed to do that.",
  bad_message: "The server could not accept that.",
  bad_json: "The server could not read what was sent.",
  bad_frame: "The server could not read what was sent.",
  internal: "Something went wrong on the server. Try again.",
  server_busy: "The server is busy. Try again in a moment.",
  unauthorized: "You are not signed in any more. Reload the page.",
  nick_taken: "Someone else is using that name. Pick another.",
  nick_invalid: `A name is 1-${LIMITS_V2.nickMax} letters, digits, _, - or . (not mixing alphabets).`,
  room_invalid: `A room name is 1-${LIMITS_V2.roomMax} letters, digits, _, - or .`,
  offline: "You are offline. Try again once the connection is back.",
  unconfirmed: "The connection was lost before the server answered. Try again.",
  left_room: "You are not in that room any more.",
  invalid_frame: "The server sent something this client could not read; it was ignored.",
};

/** Where the same code means something more precise for one kind of request. */
const SPECIFIC: Partial<Record<RequestKind, Record<string, string>>> = {
  chat: {
    not_found: "You are not in that room any more.",
    forbidden: "You may not post in that room.",
  },
  edit: {
    forbidden: "You can only edit your own messages (and only for a while after sending them).",
    not_found: "That message is no longer there.",
  },
  delete: {
    forbidden: "You can only delete your own messages.",
    not_found: "That message is no longer there.",
  },
  react: {
    not_found: "That message is no longer there.",
    bad_message: "A reaction is one emoji or a :shortcode:.",
    too_large: `A message holds at most ${LIMITS_V2.reactionsPerPost} different reactions.`,
  },
  topic: {
    too_large: `A topic holds at most ${LIMITS_V2.topicMax} characters.`,
    not_found: "You are not in that room any more.",
  },
  join: {
    forbidden: "You cannot join that room: you are banned from it, or in as many rooms as allowed.",
    nick_taken: "Someone in that room already uses your name. Change your name first, then join.",
  },
  part: { not_found: "You are not in that room." },
  dm: {
    not_found: "No one by that name is online in your rooms.",
    forbidden: "One of you is in as many rooms as allowed; leave a room first.",
  },
  nick: {
    forbidden: "Your name is set by your sign-in and cannot be changed here.",
  },
  history: { rate_limited: "Loading older messages too fast. Wait a moment and scroll again." },
};

/** The sentence for an error `code` answering a request of `kind` (or none). */
export function describeRefusal(code: string, kind?: RequestKind): string {
  return (
    (kind && SPECIFIC[kind]?.[code]) ?? GENERAL[code] ?? "The server refused that. Try again in a moment."
  );
}
