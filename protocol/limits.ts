/** Every limit of wire protocol v1 in one place (shared/PROTOCOL.md); servers may lower the configurable ones. */
export const PROTOCOL_VERSION = 1;

export const LIMITS = {
  /** Characters (code points) in a room name. */
  roomMax: 64,
  /** Characters (code points) in a nickname, after NFC and trimming. */
  nickMax: 32,
  /** Characters (code points) in a chat text. */
  textMax: 4000,
  /** Characters in a client's own message reference. */
  idMax: 64,
  /** Messages in a welcome without `since`. */
  welcomeHistory: 50,
  /** Messages in a welcome with `since`; more sets `historyTruncated`. */
  sinceMax: 500,
  /** `history` request limit: default and maximum. */
  historyDefault: 50,
  historyMax: 200,
  /** Default largest frame in bytes (MAX_PAYLOAD). */
  payloadDefault: 16384,
  /** Users in one room, as a bound for the schemas of lists. */
  usersMax: 1_000_000,
  /** Events one presence message may carry. */
  presenceEventsMax: 100_000,
  /** Length bound for opaque server strings (ids, tokens, messages for people). */
  opaqueMax: 512,
  /** Seconds between two relayed `typing` events of one connection. */
  typingIntervalMs: 1000,
} as const;

export const DEFAULT_ROOM = "default";
