/** Room and nickname rules as pure predicates, shared by server, client and tests. */
import { LIMITS } from "./limits";

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

/** True for a normalized nickname that follows the rules (letters, digits, `_`, `-`, `.`). */
export function isValidNick(nick: string): boolean {
  return NICK_RE.test(nick);
}

/** Uniqueness key: nicknames compare case-insensitively. */
export function nickKey(nick: string): string {
  return nick.toLowerCase();
}

/** Case-insensitive order of user lists, ties broken by the exact string so it is total. */
export function compareNicks(a: string, b: string): number {
  const ka = nickKey(a);
  const kb = nickKey(b);
  if (ka !== kb) return ka < kb ? -1 : 1;
  return a < b ? -1 : a > b ? 1 : 0;
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
