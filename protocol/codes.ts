/** The closed sets of error codes and close codes of the wire protocol. */
export const ERROR_CODES = [
  "bad_json",
  "bad_frame",
  "bad_message",
  "too_large",
  "rate_limited",
  "nick_taken",
  "nick_invalid",
  "room_invalid",
  "unauthorized",
  "forbidden",
  "server_busy",
  "internal",
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

export const CLOSE = {
  normal: 1000,
  goingAway: 1001,
  policy: 1008,
  tooLarge: 1009,
  internal: 1011,
  replaced: 4001,
} as const;

export type CloseCode = (typeof CLOSE)[keyof typeof CLOSE];

/** Codes of refusals before the upgrade: the error codes plus HTTP's own `bad_request`. */
export type RefusalCode = ErrorCode | "bad_request";

/** Body of every refusal before the upgrade and of every HTTP API error. */
export interface Refusal {
  error: RefusalCode;
  message: string;
}
