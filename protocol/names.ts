/** Room and nickname rules as pure predicates, shared by server, client and tests. */
import { LIMITS } from "./limits";
import { caseFold, isHighlyRestrictive, lookAlikeKey } from "./unicode/tables";

// Letters that render as nothing (the Hangul fillers are \p{L} and default-ignorable) would allow
// invisible or look-alike names, so the classes exclude them. Combining marks may follow a first
// letter or digit: scripts such as Devanagari and Thai need them even after NFC.
const VISIBLE = "(?!\\p{Default_Ignorable_Code_Point})";
const FIRST = `(?:${VISIBLE}[\\p{L}\\p{N}_.-])`;
const NEXT = `(?:${VISIBLE}[\\p{L}\\p{Mn}\\p{Mc}\\p{N}_.-])`;
const ROOM_RE = new RegExp(`^${FIRST}${NEXT}{0,${LIMITS.roomMax - 1}}$`, "u");
const NICK_RE = new RegExp(`^${FIRST}${NEXT}{0,${LIMITS.nickMax - 1}}$`, "u");

/** NFC form of a room name; rooms are case-sensitive, so nothing else changes. */
export function normalizeRoom(room: string): string {
  return room.normalize("NFC");
}

export function isValidRoom(room: string): boolean {
  return ROOM_RE.test(room);
}

/** NFC and trimmed: the form a nickname is checked and stored in. */
export function normalizeNick(nick: string): string {
  return nick.normalize("NFC").trim();
}

/**
 * True for a normalized nickname that follows the rules: letters, digits, `_`, `-`, `.`, and no mix
 * of scripts beyond UTS #39's "highly restrictive" level (Latin with Cyrillic is refused; Latin with
 * Han and kana, with Han and Bopomofo, or with Han and Hangul is not).
 */
export function isValidNick(nick: string): boolean {
  return NICK_RE.test(nick) && isHighlyRestrictive(nick);
}

/** nickKey's recent answers: every join, rename and user-list change asks again for the same names. */
const KEYS = new Map<string, string>();
const KEYS_MAX = 10_000;

/** A number after the last `-` as the skeleton writes it (`0` as `o`, `1` as `l`): `-lo` for `-10`. */
const NUMBER_TAIL = /-([ol2-9]+)$/;
const digits = (tail: string) => tail.replace(/o/g, "0").replace(/l/g, "1");

const ASCII_NAME = /^[\w.-]*$/;

/** The look-alike key of each ASCII name character, worked out once. */
const ASCII_KEYS = new Map<number, string>();

/**
 * An ASCII name's look-alike key a character at a time: every step of the key (folding, NFKD, the
 * confusable map) works per code point and none of them joins characters, so the key of the name is
 * the keys of its characters put together; most names are ASCII, and this makes no garbage.
 */
function asciiLookAlikeKey(nick: string): string {
  let out = "";
  for (let i = 0; i < nick.length; i++) {
    const c = nick.charCodeAt(i);
    let k = ASCII_KEYS.get(c);
    if (k === undefined) {
      k = lookAlikeKey(nick[i] as string);
      ASCII_KEYS.set(c, k);
    }
    out += k;
  }
  return out;
}

function keyOf(lookAlike: string): string {
  return NUMBER_TAIL.test(lookAlike)
    ? lookAlike.replace(NUMBER_TAIL, (_, tail: string) => `-${digits(tail)}`)
    : lookAlike;
}

/** nickKey without its ASCII shortcut and memo: what the shortcut must agree with (tests use it). */
export function nickKeyByTables(nick: string): string {
  return keyOf(lookAlikeKey(nick));
}

/**
 * Uniqueness key: two nicknames are the same name when they look the same, that is when they agree
 * after case folding and the confusable skeleton of UTS #39 (`ann`, `Ann`, Cyrillic `аnn`, fullwidth
 * `ａｎｎ`; `straße`, `strasse`, `ſtrasse`; `σ`, `ς`; `paypa1`, `paypal`). Exact for names that pass
 * isValidNick.
 *
 * The skeleton writes `0` as `o` and `1` as `l`; a key writes a number ending the name after a `-`
 * with digits again (no skeleton holds a 0 or 1, so names still share a key exactly when their
 * skeletons agree). So `NICK-n` keys end in `-n`, and `guest-N` is its own key, as the Redis engine's
 * claim script takes it to be.
 */
export function nickKey(nick: string): string {
  // ASCII names (most names) cost a few table lookups: no memo to hold them.
  if (ASCII_NAME.test(nick)) return keyOf(asciiLookAlikeKey(nick));
  let key = KEYS.get(nick);
  if (key === undefined) {
    key = keyOf(lookAlikeKey(nick));
    if (KEYS.size >= KEYS_MAX) KEYS.clear();
    KEYS.set(nick, key);
  }
  return key;
}

/** compareNicks' case folds of names that are not plain ASCII, as user lists sort the same names again. */
const FOLDS = new Map<string, string>();

/** Full case folding; for ASCII names (most names) that is lowercasing. */
function foldForOrder(nick: string): string {
  if (ASCII_NAME.test(nick)) return nick.toLowerCase();
  let folded = FOLDS.get(nick);
  if (folded === undefined) {
    folded = caseFold(nick);
    if (FOLDS.size >= KEYS_MAX) FOLDS.clear();
    FOLDS.set(nick, folded);
  }
  return folded;
}

/** Case-insensitive order of user lists, ties broken by the exact string so it is total. */
export function compareNicks(a: string, b: string): number {
  const ka = foldForOrder(a);
  const kb = foldForOrder(b);
  if (ka !== kb) return ka < kb ? -1 : 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** True when `s` is well-formed Unicode: no lone surrogate (the protocol's every string must be). */
export function isWellFormed(s: string): boolean {
  const native = (s as { isWellFormed?: () => boolean }).isWellFormed;
  return native ? native.call(s) : !LONE_SURROGATE.test(s);
}

/** Number of Unicode code points, the protocol's "characters". */
export function charCount(s: string): number {
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n--;
        i++;
      }
    }
  }
  return n;
}

/** The `n`-th variant of a nickname: itself for 1, else `NICK-n` with the base cut to fit the limit. */
export function nickVariant(nick: string, n: number): string {
  if (n <= 1) return nick;
  const suffix = `-${n}`;
  return [...nick].slice(0, LIMITS.nickMax - suffix.length).join("") + suffix;
}

/** `NICK`, `NICK-2`, `NICK-3`, ...: the first variant of `nick` that `taken` refuses. */
export function firstFreeNick(nick: string, taken: (key: string) => boolean): string {
  for (let n = 1; ; n++) {
    const candidate = nickVariant(nick, n);
    if (!taken(nickKey(candidate))) return candidate;
  }
}
