/**
 * How the page at `GET /` is delivered: br, gzip or identity by Accept-Encoding (q=0 honoured),
 * computed once per build; one strong ETag per coding, a 304 without a body on If-None-Match;
 * `Vary: Accept-Encoding`, `Cache-Control: no-cache` and the security headers on every answer; HEAD;
 * and the budget of issue 13: at most 45 KB compressed, with no zod in the bundle.
 */
import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { brotliDecompressSync, gunzipSync } from "node:zlib";
import type { RunningServer } from "../server";
import { chooseEncoding, noneMatch } from "../server/compress";
import { browserPage, pageSizes } from "../server/page";
import { startTestServer, stopTestServer } from "./support/test-server";

const BUDGET = 45 * 1024;
/** A browser's header today (Chromium, Firefox). */
const BROWSER = "gzip, deflate, br, zstd";

let srv: RunningServer;

beforeAll(() => {
  srv = startTestServer();
});

afterAll(async () => {
  await stopTestServer(srv);
});

interface Answer {
  status: number;
  headers: Headers;
  bytes: Uint8Array;
}

/** `GET /` (or HEAD) with these headers, the body as sent (Bun's fetch would otherwise decode it). */
async function getPage(headers: Record<string, string>, method = "GET", path = "/"): Promise<Answer> {
  const res = await fetch(new URL(path, srv.url), { method, headers, decompress: false });
  return { status: res.status, headers: res.headers, bytes: new Uint8Array(await res.arrayBuffer()) };
}

function decode(answer: Answer): string {
  const coding = answer.headers.get("content-encoding");
  const raw =
    coding === "br"
      ? brotliDecompressSync(answer.bytes)
      : coding === "gzip"
        ? gunzipSync(answer.bytes)
        : Buffer.from(answer.bytes);
  return raw.toString("utf8");
}

/** The inline script of the page. */
function inlineScript(html: string): string {
  const match = /<script[^>]*>([\s\S]*?)<\/script>/.exec(html);
  if (!match?.[1]) throw new Error("the page has no inline script");
  return match[1];
}

describe("the page's codings", () => {
  it("answers br, gzip and identity by Accept-Encoding, all decoding to the same page", async () => {
    const br = await getPage({ "Accept-Encoding": BROWSER });
    const gzip = await getPage({ "Accept-Encoding": "gzip" });
    const identity = await getPage({ "Accept-Encoding": "identity" });
    expect([br.status, gzip.status, identity.status]).toEqual([200, 200, 200]);
    expect(br.headers.get("content-encoding")).toBe("br");
    expect(gzip.headers.get("content-encoding")).toBe("gzip");
    expect(identity.headers.get("content-encoding")).toBeNull();
    const page = decode(identity);
    expect(page).toStartWith("<!doctype html>");
    expect(decode(br)).toBe(page);
    expect(decode(gzip)).toBe(page);
    expect(br.bytes.length).toBeLessThan(gzip.bytes.length);
    expect(gzip.bytes.length).toBeLessThan(identity.bytes.length);
    // Each answer: its length, and every header the page had before compression.
    for (const a of [br, gzip, identity]) {
      expect(a.headers.get("content-length")).toBe(String(a.bytes.length));
      expect(a.headers.get("content-type")).toBe("text/html; charset=utf-8");
      expect(a.headers.get("vary")).toBe("Accept-Encoding");
      expect(a.headers.get("cache-control")).toBe("no-cache");
      expect(a.headers.get("content-security-policy")).toContain("script-src 'sha256-");
      expect(a.headers.get("x-content-type-options")).toBe("nosniff");
      expect(a.headers.get("referrer-policy")).toBe("no-referrer");
    }
    // Strong ETags, one per coding (the same tag on other bytes would mislead caches).
    const tags = [br, gzip, identity].map((a) => a.headers.get("etag") ?? "");
    for (const tag of tags) expect(tag).toMatch(/^"[^"]+"$/);
    expect(new Set(tags).size).toBe(3);
    // /index.html is the same page.
    const index = await getPage({ "Accept-Encoding": "br" }, "GET", "/index.html");
    expect(decode(index)).toBe(page);
  });

  it("honours q: q=0 refuses a coding, the higher q wins, * stands for codings not named", async () => {
    const cases: Array<[string, string | null]> = [
      ["br", "br"],
      ["gzip, br", "br"],
      ["br;q=0, gzip", "gzip"],
      ["gzip;q=0.5, br;q=0.4", "gzip"],
      ["BR;Q=0.9, GZIP;q=0.1", "br"],
      ["br;q=0, gzip;q=0", null],
      ["*", "br"],
      ["*;q=0.5, br;q=0", "gzip"],
      ["*;q=0", null],
      ["identity", null],
      ["deflate, zstd", null],
      ["", null],
    ];
    const got: Array<[string, string | null]> = [];
    for (const [header] of cases) {
      const answer = await getPage({ "Accept-Encoding": header });
      got.push([header, answer.headers.get("content-encoding")]);
    }
    expect(got).toEqual(cases);
  });

  it("chooses codings as RFC 9110 says (no header: identity; unreadable q: refused; named twice: the lower q)", () => {
    expect(chooseEncoding(null)).toBe("identity");
    expect(chooseEncoding(undefined)).toBe("identity");
    expect(chooseEncoding("br;q=2, gzip")).toBe("gzip");
    expect(chooseEncoding("br;q=abc")).toBe("identity");
    expect(chooseEncoding("br;q=0.0001")).toBe("identity");
    expect(chooseEncoding("br;q=0.001")).toBe("br");
    expect(chooseEncoding("br, br;q=0, gzip")).toBe("gzip");
    expect(chooseEncoding("x-gzip")).toBe("gzip");
    expect(chooseEncoding(" br ; q=1.000 ,gzip;q=1")).toBe("br");
    expect(chooseEncoding("gzip, br", ["gzip"])).toBe("gzip");
  });

  it("serves identity to a request without Accept-Encoding", async () => {
    const res = await browserPage(new Request("http://localhost/"));
    expect(res.headers.get("content-encoding")).toBeNull();
    expect(res.headers.get("vary")).toBe("Accept-Encoding");
    expect(await res.text()).toStartWith("<!doctype html>");
  });

  it("answers HEAD with GET's headers and no body", async () => {
    const get = await getPage({ "Accept-Encoding": "br" });
    const head = await getPage({ "Accept-Encoding": "br" }, "HEAD");
    expect(head.status).toBe(200);
    expect(head.bytes.length).toBe(0);
    for (const name of ["content-encoding", "etag", "vary", "content-length", "content-security-policy"]) {
      expect(head.headers.get(name)).toBe(get.headers.get(name));
    }
  });
});

describe("revalidation", () => {
  it("answers If-None-Match naming the ETag with 304 and no body, for every coding", async () => {
    for (const coding of ["br", "gzip", "identity"]) {
      const first = await getPage({ "Accept-Encoding": coding });
      const etag = first.headers.get("etag") ?? "";
      for (const inm of [etag, `W/${etag}`, `"other", ${etag}`, "*"]) {
        const again = await getPage({ "Accept-Encoding": coding, "If-None-Match": inm });
        expect({ coding, inm, status: again.status, bytes: again.bytes.length }).toEqual({
          coding,
          inm,
          status: 304,
          bytes: 0,
        });
        expect(again.headers.get("etag")).toBe(etag);
        expect(again.headers.get("vary")).toBe("Accept-Encoding");
        expect(again.headers.get("cache-control")).toBe("no-cache");
        expect(again.headers.get("content-encoding")).toBeNull();
      }
      const head = await getPage({ "Accept-Encoding": coding, "If-None-Match": etag }, "HEAD");
      expect(head.status).toBe(304);
    }
  });

  it("answers 200 with the page when the tag is another build's or another coding's", async () => {
    const br = await getPage({ "Accept-Encoding": "br" });
    const gzipWithBrTag = await getPage({
      "Accept-Encoding": "gzip",
      "If-None-Match": br.headers.get("etag") ?? "",
    });
    expect(gzipWithBrTag.status).toBe(200);
    expect(gzipWithBrTag.headers.get("content-encoding")).toBe("gzip");
    const stale = await getPage({ "Accept-Encoding": "br", "If-None-Match": '"an-older-build-br"' });
    expect(stale.status).toBe(200);
    expect(stale.bytes.length).toBe(br.bytes.length);
  });

  it("compares If-None-Match weakly and ignores what is not a tag", () => {
    expect(noneMatch(null, '"a"')).toBe(false);
    expect(noneMatch('"a"', '"a"')).toBe(true);
    expect(noneMatch('W/"a"', '"a"')).toBe(true);
    expect(noneMatch('"b", W/"a"', '"a"')).toBe(true);
    expect(noneMatch("a", '"a"')).toBe(false);
    expect(noneMatch('"a-br"', '"a"')).toBe(false);
    expect(noneMatch(" * ", '"a"')).toBe(true);
  });
});

describe("the page's size (issue 13: at most 45 KB compressed)", () => {
  it(`is at most ${BUDGET} bytes with br`, async () => {
    const sizes = await pageSizes();
    const br = await getPage({ "Accept-Encoding": "br" });
    expect(br.bytes.length).toBe(sizes.br);
    console.log(
      `page: ${sizes.identity} bytes raw, ${sizes.br} br, ${sizes.gzip} gzip (budget ${BUDGET} compressed)`,
    );
    expect(sizes.br).toBeLessThanOrEqual(BUDGET);
  });

  it("ships no zod in its script", async () => {
    const script = inlineScript(decode(await getPage({ "Accept-Encoding": "identity" })));
    const hits = script.match(/ZodError|zod/gi) ?? [];
    if (hits.length > 0)
      console.log(`page script: ${hits.length} mentions of zod in ${script.length} characters`);
    expect(hits).toEqual([]);
  });
});
