/** v2's name rules as pure predicates: direct room names and reaction emoji. */
import { charCount, isValidRoom } from "../names";
import { LIMITS_V2 } from "./limits";

/** First character of every direct room's name; no v1 room name can hold it. */
export const DIRECT_ROOM_PREFIX = "~";

/**
 * A direct room's name: `~` and then 1-128 characters of ASCII letters, digits, `_`, `-` and `.`.
 * ASCII only, so the name is the same in every normalisation and has no look-alike; case-sensitive,
 * as room names are. The server chooses the part after `~`; `directRoomName` below is one way, the
 * two user ids (when they are plain) sorted and joined with `.`, so a pair of users always finds the
 * same room. A server whose user ids are not plain (a token's `sub` may be an e-mail address) writes
 * something else that fits, a hash in base64url for instance.
 */
const DIRECT_ROOM_RE = new RegExp(`^~[A-Za-z0-9_.-]{1,${LIMITS_V2.directRoomMax}}$`);

export function isDirectRoom(room: string): boolean {
  return DIRECT_ROOM_RE.test(room);
}

/** A room name of v2: a v1 room name (checked after NFC, as v1 does) or a direct room's name. */
export function isValidRoomV2(room: string): boolean {
  return isValidRoom(room) || isDirectRoom(room);
}

/** User ids `directRoomName` can join: no `.`, so the name splits back into the two ids. */
const PLAIN_USER_ID = /^[A-Za-z0-9_-]{1,63}$/;

/**
 * `~A.B` for two plain user ids A < B (code-unit order): the same name whichever of the two asks.
 * Undefined when an id is not plain (or both are one id): the server then names the room otherwise.
 */
export function directRoomName(userIdA: string, userIdB: string): string | undefined {
  if (userIdA === userIdB || !PLAIN_USER_ID.test(userIdA) || !PLAIN_USER_ID.test(userIdB)) return undefined;
  const [lo, hi] = userIdA < userIdB ? [userIdA, userIdB] : [userIdB, userIdA];
  return `${DIRECT_ROOM_PREFIX}${lo}.${hi}`;
}

/** `:name:` with a lower-case ASCII name (`:+1:`, `:thumbs_up:`): one spelling per shortcode. */
const SHORTCODE_RE = new RegExp(`^:[a-z0-9_+-]{1,${LIMITS_V2.shortcodeNameMax}}:$`);

/**
 * One emoji, after the "possible emoji" grammar of UTS #51 (ED-27, section 1.4.9): elements joined by
 * ZWJ, an element being a flag (two regional indicators), a keycap (`#`, `*` or a digit, FE0F?, 20E3),
 * a lone skin-tone modifier, or a pictographic character with a skin tone, a variation selector 16
 * or a tag sequence after it. A grammar, not Unicode's list of recommended emoji, so that emoji newer
 * than the engine still pass and every engine (server, browser) agrees. Emoji with and without FE0F
 * (`❤` and `❤️`) are two spellings; the schema keeps what was sent.
 */
const ELEMENT =
  "(?:\\p{Regional_Indicator}{2}|[0-9#*]\\uFE0F?\\u20E3|\\p{Emoji_Modifier}" +
  "|\\p{Extended_Pictographic}(?:\\p{Emoji_Modifier}|\\uFE0F|[\\u{E0020}-\\u{E007E}]+\\u{E007F})?)";
const EMOJI_RE = new RegExp(`^${ELEMENT}(?:\\u200D${ELEMENT})*$`, "u");

/** True for one emoji or one `:shortcode:` of 1-32 characters: the `emoji` of a reaction. */
export function isReactionEmoji(emoji: string): boolean {
  const n = charCount(emoji);
  return n >= 1 && n <= LIMITS_V2.emojiMax && (SHORTCODE_RE.test(emoji) || EMOJI_RE.test(emoji));
}
