/** Turns the markdown tokens of a message into DOM nodes: elements and text nodes, never HTML strings. */
import { h } from "./dom";
import type { Block, Inline } from "./markdown";
import { parseMessage } from "./markdown";
import { nickClass } from "./palette";

/** Tells whether a mentioned name is the reader (same-name rule). */
export type IsMe = (nick: string) => boolean;

function inline(tokens: Inline[], isMe: IsMe): Node[] {
  return tokens.map((t): Node => {
    switch (t.t) {
      case "text":
        return document.createTextNode(t.text);
      case "code":
        return h("code", {}, t.text);
      case "bold":
        return h("strong", {}, ...inline(t.children, isMe));
      case "italic":
        return h("em", {}, ...inline(t.children, isMe));
      case "link":
        // href is a parsed http(s) URL (links.ts); the text is shown as written.
        return h("a", { attrs: { href: t.href, target: "_blank", rel: "noopener noreferrer" } }, t.text);
      default:
        return h("span", { class: `mention-chip ${isMe(t.nick) ? "me" : nickClass(t.nick)}` }, t.text);
    }
  });
}

function block(b: Block, isMe: IsMe): Node {
  if (b.t === "codeblock") {
    return h("pre", { attrs: { "data-lang": b.lang } }, h("code", {}, b.text));
  }
  return h("p", {}, ...inline(b.children, isMe));
}

/** The message's text as nodes to put in a `.text` element. */
export function renderText(text: string, isMe: IsMe): Node[] {
  return parseMessage(text).map((b) => block(b, isMe));
}
