/** The page's markdown subset and links: tokens, not HTML; only http and https ever become links. */
import { describe, expect, it } from "bun:test";
import { findLinks, safeHref } from "../client/page/links";
import { type Inline, parseInline, parseMessage, plainExcerpt } from "../client/page/markdown";

const text = (t: string): Inline => ({ t: "text", text: t });

describe("safe links", () => {
  it("lets http and https through as the parser reads them", () => {
    expect(safeHref("https://example.com/a?b=1#c")).toBe("https://example.com/a?b=1#c");
    expect(safeHref("HTTP://Example.COM")).toBe("http://example.com/");
  });

  it("refuses every other scheme, however it is spelled", () => {
    for (const raw of [
      "javascript:alert(1)",
      "JaVaScRiPt:alert(1)",
      " javascript:alert(1)",
      "java\tscript:alert(1)",
      "java\nscript:alert(1)",
      "\u0000javascript:alert(1)",
      "data:text/html,<script>alert(1)</script>",
      "vbscript:msgbox(1)",
      "file:///etc/passwd",
      "//evil.example",
      "http:/evil.example",
      "https://",
      "http:// spaced",
    ]) {
      expect(safeHref(raw)).toBeUndefined();
    }
  });

  it("finds links in text and leaves other schemes as text", () => {
    const found = findLinks("go to https://a.example/x, or javascript:alert(1) or data:text/html,hi");
    expect(found).toEqual([{ start: 6, end: 25, href: "https://a.example/x", text: "https://a.example/x" }]);
    expect(parseInline("javascript:alert(1) data:x vbscript:y")).toEqual([
      text("javascript:alert(1) data:x vbscript:y"),
    ]);
  });

  it("ends a link before sentence punctuation and an unmatched parenthesis", () => {
    expect(findLinks("(see https://en.wikipedia.org/wiki/Foo_(bar)).").map((l) => l.text)).toEqual([
      "https://en.wikipedia.org/wiki/Foo_(bar)",
    ]);
    expect(findLinks("https://x.example/a. Next").map((l) => l.text)).toEqual(["https://x.example/a"]);
    expect(findLinks('<a href="https://x.example/">').map((l) => l.text)).toEqual(["https://x.example/"]);
  });

  it("does not read a #number as anything", () => {
    expect(parseInline("PR #482 is merged")).toEqual([text("PR #482 is merged")]);
  });
});

describe("the markdown subset", () => {
  it("reads bold, italic and inline code", () => {
    expect(parseInline("a **b** *c* _d_ `e`")).toEqual([
      text("a "),
      { t: "bold", children: [text("b")] },
      text(" "),
      { t: "italic", children: [text("c")] },
      text(" "),
      { t: "italic", children: [text("d")] },
      text(" "),
      { t: "code", text: "e" },
    ]);
  });

  it("leaves snake_case, arithmetic, lone stars and markup inside code alone", () => {
    expect(parseInline("snake_case_name 2*3*4 a * b * c")).toEqual([text("snake_case_name 2*3*4 a * b * c")]);
    expect(parseInline("`**not bold** <b>`")).toEqual([{ t: "code", text: "**not bold** <b>" }]);
    expect(parseInline("** not bold **")).toEqual([text("** not bold **")]);
  });

  it("nests italic in bold", () => {
    expect(parseInline("**a *b* c**")).toEqual([
      { t: "bold", children: [text("a "), { t: "italic", children: [text("b")] }, text(" c")] },
    ]);
  });

  it("finds @mentions without the sentence's punctuation", () => {
    expect(parseInline("hi @bob. and @ann- but not x@y.z")).toEqual([
      text("hi "),
      { t: "mention", nick: "bob", text: "@bob" },
      text(". and "),
      { t: "mention", nick: "ann", text: "@ann" },
      text("- but not x@y.z"),
    ]);
  });

  it("keeps HTML as text", () => {
    const payload = `<img src=x onerror=alert(1)><script>alert(2)</script>`;
    expect(parseMessage(payload)).toEqual([{ t: "para", children: [text(payload)] }]);
  });

  it("keeps line breaks in a paragraph", () => {
    expect(parseMessage("one\ntwo\n\nfour")).toEqual([{ t: "para", children: [text("one\ntwo\n\nfour")] }]);
  });

  it("reads fenced code blocks, with or without a language, and nothing inside them", () => {
    expect(parseMessage("look:\n```ts\nconst a = **1**;\n  indented\n```\nafter")).toEqual([
      { t: "para", children: [text("look:")] },
      { t: "codeblock", text: "const a = **1**;\n  indented", lang: "ts" },
      { t: "para", children: [text("after")] },
    ]);
    expect(parseMessage("```one line```")).toEqual([{ t: "codeblock", text: "one line" }]);
    expect(parseMessage("```\nx\n```")).toEqual([{ t: "codeblock", text: "x" }]);
  });

  it("leaves an unclosed fence as text", () => {
    expect(parseMessage("```\nnot closed")).toEqual([{ t: "para", children: [text("```\nnot closed")] }]);
  });

  it("makes a one-line excerpt for quotes and notifications", () => {
    expect(plainExcerpt("a\n\n b   c")).toBe("a b c");
    expect(plainExcerpt("x".repeat(200), 10)).toBe(`${"x".repeat(9)}…`);
  });
});
