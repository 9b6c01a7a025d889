/**
 * The small markdown subset of chat text, parsed to a token tree (pure: the DOM is built from it by
 * render-text.ts, with text nodes only). Blocks: code fenced by three backticks, and everything else
 * as one paragraph whose line breaks are kept. Inline: `code`, **bold**, *italic* / _italic_, safe
 * links (links.ts) and @mentions. No HTML, no headings, no images, no `[text](url)` links (a link
 * always shows where it goes).
 */
import { findLinks } from "./links";

export type Inline =
  | { t: "text"; text: string }
  | { t: "code"; text: string }
  | { t: "bold"; children: Inline[] }
  | { t: "italic"; children: Inline[] }
  | { t: "link"; href: string; text: string }
  | { t: "mention"; nick: string; text: string };

export type Block = { t: "para"; children: Inline[] } | { t: "codeblock"; text: string; lang?: string };

const FENCE = "```";

/** Splits off fenced code blocks; an unclosed fence is plain text. */
export function parseMessage(text: string): Block[] {
  const blocks: Block[] = [];
  let rest = text;
  for (;;) {
    const open = rest.indexOf(FENCE);
    const close = open < 0 ? -1 : rest.indexOf(FENCE, open + FENCE.length);
    if (close < 0) break;
    pushPara(blocks, rest.slice(0, open));
    blocks.push(codeBlock(rest.slice(open + FENCE.length, close)));
    rest = rest.slice(close + FENCE.length);
  }
  pushPara(blocks, rest);
  return blocks;
}

function pushPara(blocks: Block[], text: string): void {
  // The newline next to a fence belongs to the fence, not to the paragraph.
  const trimmed = blocks.length > 0 ? text.replace(/^\r?\n/, "") : text;
  const body = trimmed.replace(/\r?\n$/, "");
  if (body.trim() === "") return;
  blocks.push({ t: "para", children: parseInline(body) });
}

function codeBlock(inner: string): Block {
  // ```ts\ncode``` names a language on the fence's own line; ```code``` on one line has none.
  const firstBreak = inner.indexOf("\n");
  const head = firstBreak < 0 ? "" : inner.slice(0, firstBreak);
  let body = inner;
  let lang: string | undefined;
  if (firstBreak >= 0 && /^[\w+#.-]{0,20}\s*$/.test(head)) {
    lang = head.trim() || undefined;
    body = inner.slice(firstBreak + 1);
  }
  body = body.replace(/\r?\n$/, "");
  return lang ? { t: "codeblock", text: body, lang } : { t: "codeblock", text: body };
}

/** A mention: `@` after the start or a character that cannot be in a name, then a name. */
const MENTION = /(?<![\p{L}\p{N}_.@-])@([\p{L}\p{N}_][\p{L}\p{Mn}\p{Mc}\p{N}_.-]*)/gu;

/** Inline tokens of one paragraph. */
export function parseInline(text: string): Inline[] {
  const out: Inline[] = [];
  // Inline code first: nothing inside it is markup.
  let at = 0;
  const code = /`([^`\n]+)`/g;
  for (const m of text.matchAll(code)) {
    const start = m.index ?? 0;
    emphasis(text.slice(at, start), out);
    out.push({ t: "code", text: m[1] as string });
    at = start + m[0].length;
  }
  emphasis(text.slice(at), out);
  return merge(out);
}

/**
 * Bold and italic. An opener must not be followed by a space and a closer not preceded by one;
 * `_` and `*` pairs must also sit at word edges, so snake_case_names and 2*3*4 stay as written.
 */
const EMPHASIS =
  /(\*\*|__)(?=\S)([\s\S]*?\S)\1(?![\p{L}\p{N}])|(?<![\p{L}\p{N}*_])([*_])(?=[^\s*_])([^\n]*?[^\s*_])\3(?![\p{L}\p{N}*_])/gu;

function emphasis(text: string, out: Inline[]): void {
  let at = 0;
  for (const m of text.matchAll(EMPHASIS)) {
    const start = m.index ?? 0;
    // Bold must not start inside a word either (a**b** is left alone).
    if (m[1] && start > 0 && /[\p{L}\p{N}]/u.test(text[start - 1] as string)) continue;
    plain(text.slice(at, start), out);
    if (m[1]) {
      const children: Inline[] = [];
      emphasis(m[2] as string, children);
      out.push({ t: "bold", children: merge(children) });
    } else {
      const children: Inline[] = [];
      plain(m[4] as string, children);
      out.push({ t: "italic", children: merge(children) });
    }
    at = start + m[0].length;
  }
  plain(text.slice(at), out);
}

/** Links and mentions in text that is otherwise literal. */
function plain(text: string, out: Inline[]): void {
  if (text === "") return;
  let at = 0;
  for (const link of findLinks(text)) {
    mentions(text.slice(at, link.start), out);
    out.push({ t: "link", href: link.href, text: link.text });
    at = link.end;
  }
  mentions(text.slice(at), out);
}

function mentions(text: string, out: Inline[]): void {
  let at = 0;
  for (const m of text.matchAll(MENTION)) {
    const start = m.index ?? 0;
    // A trailing `.` or `-` ends the sentence, not the name (as the server reads mentions).
    const nick = (m[1] as string).replace(/[.-]+$/u, "");
    if (nick === "") continue;
    if (start > at) out.push({ t: "text", text: text.slice(at, start) });
    out.push({ t: "mention", nick, text: `@${nick}` });
    at = start + 1 + nick.length;
  }
  if (at < text.length) out.push({ t: "text", text: text.slice(at) });
}

/** Joins neighbouring text tokens. */
function merge(tokens: Inline[]): Inline[] {
  const out: Inline[] = [];
  for (const token of tokens) {
    const last = out.at(-1);
    if (token.t === "text" && last?.t === "text") last.text += token.text;
    else out.push(token);
  }
  return out;
}

/** The text of a message as one line without markup: for quotes, notifications and announcements. */
export function plainExcerpt(text: string, max = 120): string {
  const flat = text
    .replace(/```[\w+#.-]*\n?/g, "")
    .replace(/\s+/g, " ")
    .trim();
  const chars = [...flat];
  return chars.length <= max ? flat : `${chars.slice(0, max - 1).join("")}…`;
}
