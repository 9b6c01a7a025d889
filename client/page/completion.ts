/** Tab completion of nicknames in the composer, most recently active first. Pure. */

/** Online users ordered by who posted last (newest first), then the rest in their given order; not `me`. */
export function rankNicks(
  users: readonly string[],
  posts: ReadonlyArray<{ nick: string }>,
  me: string | undefined,
): string[] {
  const online = new Set(users);
  const ranked: string[] = [];
  for (let i = posts.length - 1; i >= 0 && ranked.length < users.length; i--) {
    const nick = (posts[i] as { nick: string }).nick;
    if (online.has(nick) && !ranked.includes(nick)) ranked.push(nick);
  }
  for (const nick of users) if (!ranked.includes(nick)) ranked.push(nick);
  return ranked.filter((nick) => nick !== me);
}

export interface Completion {
  value: string;
  caret: number;
  /** Pass back on the next Tab to cycle to the next match. */
  state: CompletionState;
}

export interface CompletionState {
  start: number;
  prefix: string;
  at: boolean;
  matches: string[];
  index: number;
  /** The value and caret this completion produced: cycling goes on only while they stand. */
  value: string;
  caret: number;
}

const WORD = /(^|\s)(@?)([\p{L}\p{Mn}\p{Mc}\p{N}_.-]*)$/u;

/** Completes the word before the caret; Tab again (with `state`) gives the next match; undefined when none. */
export function completeNick(
  value: string,
  caret: number,
  candidates: readonly string[],
  state?: CompletionState,
): Completion | undefined {
  if (state && state.value === value && state.caret === caret && state.matches.length > 1) {
    return apply(value, { ...state, index: (state.index + 1) % state.matches.length }, caret);
  }
  const m = WORD.exec(value.slice(0, caret));
  if (!m) return undefined;
  const at = m[2] === "@";
  const prefix = m[3] as string;
  if (prefix === "" && !at) return undefined;
  const lower = prefix.toLowerCase();
  const matches = candidates.filter((nick) => nick.toLowerCase().startsWith(lower));
  if (matches.length === 0) return undefined;
  const start = (m.index ?? 0) + (m[1] as string).length;
  return apply(value, { start, prefix, at, matches, index: 0, value: "", caret: 0 }, caret);
}

function apply(value: string, state: CompletionState, caret: number): Completion {
  const nick = state.matches[state.index] as string;
  // At the start of the line a name is an address ("ann: "); elsewhere it is a word.
  // A space already after the caret serves as the word's end.
  const spaced = /^\s/.test(value.slice(caret));
  const suffix = state.start === 0 && !state.at ? ":" : "";
  const inserted = `${state.at ? "@" : ""}${nick}${suffix}${spaced ? "" : " "}`;
  const next = value.slice(0, state.start) + inserted + value.slice(caret);
  const nextCaret = state.start + inserted.length + (spaced ? 1 : 0);
  return { value: next, caret: nextCaret, state: { ...state, value: next, caret: nextCaret } };
}
