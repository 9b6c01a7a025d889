/**
 * Script-injection payloads: as chat text they are relayed byte-exact inside valid JSON strings (live,
 * in a welcome's history and from the HTTP API); as nicknames and rooms they are refused.
 */
import { afterEach, describe, expect, it } from "bun:test";
import { decodeServerMessage } from "../../protocol";
import { upgradeRequest } from "../support/http-upgrade";
import { closeAllClients, connect } from "../support/test-client";
import { startTestServer, stopAllServers, wsUrl } from "../support/test-server";

afterEach(async () => {
  await closeAllClients();
  await stopAllServers();
});

const PAYLOADS = [
  "<script>alert(1)</script>",
  "<img src=x onerror=alert(1)>",
  '"><svg onload=alert(1)>',
  "javascript:alert(1)",
  '<a href="javascript:alert(1)">x</a>',
  "</script><script>alert(1)</script>",
  "{{constructor.constructor('alert(1)')()}}",
  // biome-ignore lint/suspicious/noTemplateCurlyInString: the payload is the literal text
  "${alert(1)}",
  `'"\`\\`,
  '\\"}',
  '","type":"ack","id":"x',
  '"\\u003cscript\\u003e"',
  "&lt;b&gt; &amp; &#60;",
  "%3Cscript%3Ealert(1)%3C/script%3E",
  "a\u2028b\u2029c",
  "\u202Eright-to-left override",
  "nul\u0000byte",
  "tab\tnew\nline\r\nend",
  "\\\\\\",
  "😀👩‍👩‍👧‍👦🏳️‍🌈",
  "e\u0301 vs \u00e9",
];

const encoder = new TextEncoder();

describe("XSS payloads as chat text", () => {
  it("are relayed byte-exact inside valid JSON, live, in history and from the HTTP API", async () => {
    const srv = startTestServer({ RATE_LIMIT: "0" });
    // A bare WebSocket keeps the raw frame text, before any decoding.
    const raw: string[] = [];
    const listener = new WebSocket(`${wsUrl(srv)}?room=x&nick=listener`);
    listener.addEventListener("message", (ev) => raw.push(ev.data as string));
    await new Promise((resolve) => listener.addEventListener("open", resolve));
    const sender = await connect(srv.url, { room: "x", nick: "sender" });

    const acks = await Promise.all(
      PAYLOADS.map(async (text, i) => {
        sender.send({ type: "chat", text, id: `p${i}` });
        return sender.waitFor("ack", (k) => k.id === `p${i}`);
      }),
    );
    await sender.waitUntil(() => sender.count("chat") >= PAYLOADS.length, "every payload back");
    const until = Date.now() + 3000;
    const rawChats = () => raw.filter((r) => r.startsWith('{"type":"chat"'));
    while (rawChats().length < PAYLOADS.length && Date.now() < until) await Bun.sleep(5);
    listener.close();

    const bySeq = new Map<number, string>();
    for (const frame of rawChats()) {
      const parsed = JSON.parse(frame) as { seq: number; text: string };
      expect(decodeServerMessage(frame).ok).toBe(true);
      bySeq.set(parsed.seq, parsed.text);
    }
    const relayed = acks.map((k) => bySeq.get(k.seq));
    expect(relayed).toEqual(PAYLOADS);
    for (const [i, text] of PAYLOADS.entries()) {
      expect(encoder.encode(relayed[i] ?? "")).toEqual(encoder.encode(text));
    }

    // The same bytes come back from storage: a welcome's history, and the HTTP API as JSON.
    const late = await connect(srv.url, { room: "x", nick: "late", since: 0 });
    expect(late.welcome.history.map((m) => m.text)).toEqual(PAYLOADS);
    const res = await fetch(new URL("/api/rooms/x/messages?limit=200", srv.url));
    expect(res.headers.get("content-type")).toContain("application/json");
    const body = (await res.json()) as { messages: Array<{ text: string }> };
    expect(body.messages.map((m) => m.text)).toEqual(PAYLOADS);
  });
});

describe("XSS payloads as names", () => {
  const BAD_NAMES = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    '"><svg onload=alert(1)>',
    "javascript:alert(1)",
    "a'b",
    'a"b',
    "a\\b",
    "a&b",
    "a<b",
    "a\u2028b",
    "\u202Eadmin",
    "ad\u200Bmin",
    "admin\u0000",
    "a\u0007b",
    "\u3164",
    "😀",
  ];

  it("are refused as nicknames with nick_invalid, on connect and with /nick", async () => {
    const srv = startTestServer();
    const a = await connect(srv.url, { room: "r", nick: "alice" });
    const answers: Array<[string, string]> = [];
    for (const nick of BAD_NAMES) {
      a.send({ type: "nick", nick });
      answers.push([nick, (await a.next("error")).code]);
    }
    expect(answers).toEqual(BAD_NAMES.map((n) => [n, "nick_invalid"]));
    const refusals: Array<[string, number, string | undefined]> = [];
    for (const nick of BAD_NAMES) {
      const answer = await upgradeRequest(srv.url, { room: "r", nick });
      refusals.push([nick, answer.status, answer.body?.error]);
    }
    expect(refusals).toEqual(BAD_NAMES.map((n) => [n, 400, "nick_invalid"]));
    a.send({ type: "who" });
    expect((await a.next("users")).users).toEqual(["alice"]);
  });

  it("are refused as rooms with room_invalid, on connect and with join", async () => {
    const srv = startTestServer();
    const a = await connect(srv.url, { room: "r", nick: "alice" });
    const answers: Array<[string, string]> = [];
    for (const room of BAD_NAMES) {
      a.send({ type: "join", room });
      answers.push([room, (await a.next("error")).code]);
    }
    expect(answers).toEqual(BAD_NAMES.map((n) => [n, "room_invalid"]));
    for (const room of BAD_NAMES) {
      const answer = await upgradeRequest(srv.url, { room });
      expect([room, answer.status, answer.body?.error]).toEqual([room, 400, "room_invalid"]);
    }
  });
});
