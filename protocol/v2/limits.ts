/**
 * Every limit of wire protocol v2 (shared/PROTOCOL.md, "Wire protocol v2"): v1's limits, which v2 keeps,
 * and the new ones. `MAX_ROOMS_PER_USER` (default 100) is server configuration, not protocol: the schemas
 * only bound lists generously (`roomsBound`), as v1 bounds user lists.
 */
import { LIMITS } from "../limits";

export const PROTOCOL_VERSION_V2 = 2;

export const LIMITS_V2 = {
  ...LIMITS,
  /** Characters (code points) in a room topic; the empty topic clears it. */
  topicMax: 200,
  /** Characters (code points) in a kick or ban reason. The spec gives none; 200, as a topic. */
  reasonMax: 200,
  /** Characters (code points) in a reaction's emoji: one emoji or `:shortcode:`. */
  emojiMax: 32,
  /** Characters of a `:shortcode:`'s name between its colons (so the whole is at most `emojiMax`). */
  shortcodeNameMax: 30,
  /** Characters (code points) after the `~` of a direct room's name. */
  directRoomMax: 128,
  /** Distinct emoji one post may carry: the length bound of a folded post's `reactions`. */
  reactionsPerPost: 20,
  /** Cap of a RoomState's `unread` and `mentions` counts. */
  unreadMax: 1000,
  /** Posts, and separately changes, in one `sync` answer; more sets `truncated`. */
  syncMax: 500,
  /** Length bound of a welcome's `rooms` (the server's MAX_ROOMS_PER_USER is far lower). */
  roomsBound: 100_000,
  /** Nicks one post may mention: each `@x` takes two characters of the text at least. */
  mentionsMax: LIMITS.textMax / 2,
  /** Longest timed ban: 100 years (absent `seconds` bans for ever); keeps the ban's end a valid date. */
  banSecondsMax: 100 * 365 * 24 * 3600,
} as const;
