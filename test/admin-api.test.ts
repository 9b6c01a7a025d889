/**
 * The HTTP admin API (shared/PROTOCOL.md, "Moderators"): nothing answers without ADMIN_TOKEN or with
 * the wrong bearer token; `DELETE /api/identities/:userId` revokes; the five moderator routes check
 * their room, path and JSON body as the socket checks the same requests, and answer 204 / 404 (first
 * against a recording hub, then on both engines, where a v2 client sees `delete`, `topic`, `kicked`);
 * and direct rooms are neither listed by `GET /api/rooms` nor served by `GET /api/rooms/:room/messages`.
 */
import { afterEach, describe, expect, it } from "bun:test";
import { nickKey, v2 } from "../protocol";
import { type AdminHub, authorized, BODY_MAX, isAdminPath } from "../server/admin";
import type { ChatHub } from "../server/chat/hub";
import { jsonLogger, silentLogger } from "../server/chat/log";
import { type HttpContext, routeHttp } from "../server/http";
import { IdentitySigner } from "../server/identity";
import { upgradeRequest } from "./support/http-upgrade";
import { closeAllClients, connect, TestClient } from "./support/test-client";
import { testEngines } from "./support/test-engines";
import { startTestServer, startTestServerOn, stopAllServers } from "./support/test-server";
import { closeAllV2Clients, connectV2, type Of } from "./support/v2-client";

const ADMIN = "admin-token-0123456789abcdef";

const sockets = new Set<WebSocket>();

afterEach(async () => {
  for (const ws of sockets) ws.close();
  sockets.clear();
  const bad = await closeAllV2Clients();
  await closeAllClients();
  await stopAllServers();
  if (bad.length > 0) throw new Error(`server sent ${bad.length} undecodable v2 frames, first: ${bad[0]}`);
});

const engines = testEngines();

/** Every admin route of the spec, with a body where it takes one. */
const ADMIN_ROUTES: Array<[string, string, unknown?]> = [
  ["DELETE", "/api/identities/someone"],
  ["DELETE", "/api/rooms/lobby/messages/1"],
  ["PUT", "/api/rooms/lobby/topic", { topic: "hi" }],
  ["POST", "/api/rooms/lobby/kick", { nick: "ann" }],
  ["POST", "/api/rooms/lobby/bans", { nick: "ann", seconds: 60 }],
  ["DELETE", "/api/rooms/lobby/bans/someone"],
];

async function call(
  base: URL,
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: unknown,
): Promise<{ status: number; body: { error?: string; message?: string } | undefined }> {
  const res = await fetch(new URL(path, base), {
    method,
    headers: body === undefined ? headers : { ...headers, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text === "" ? undefined : JSON.parse(text) };
}

const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });

const isJoined =
  (room: string) =>
  (m: v2.ServerMessageV2): m is Of<"joined"> =>
    m.type === "joined" && m.room === room;

const isKicked =
  (room: string) =>
  (m: v2.ServerMessageV2): m is Of<"kicked"> =>
    m.type === "kicked" && m.room === room;

const presenceOf =
  (event: "join" | "leave") =>
  (room: string, nick: string) =>
  (m: v2.ServerMessageV2): m is Of<"presence"> =>
    m.type === "presence" && m.room === room && m.events.some((e) => e.event === event && e.nick === nick);
const isArrival = presenceOf("join");
const isLeave = presenceOf("leave");

/** A v2 connection that stays open; resolves with its welcome. */
async function openV2(base: URL, query: Record<string, string>): Promise<[WebSocket, v2.Welcome]> {
  const url = new URL(`ws://${base.host}/ws?v=2`);
  for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v);
  const ws = new WebSocket(url);
  sockets.add(ws);
  const welcome = await new Promise<v2.Welcome>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("no v2 welcome")), 3000);
    ws.addEventListener("message", (ev) => {
      const decoded = v2.decodeServerMessageV2(String(ev.data));
      if (decoded.ok && decoded.value.type === "welcome") {
        clearTimeout(timer);
        resolve(decoded.value);
      }
    });
    ws.addEventListener("close", (ev) => reject(new Error(`closed with ${ev.code} before a welcome`)));
  });
  return [ws, welcome];
}

describe("authorization", () => {
  it("answers 401 to every admin route without ADMIN_TOKEN, whatever the request carries", async () => {
    const srv = startTestServer();
    for (const [method, path, body] of ADMIN_ROUTES) {
      for (const headers of [{}, bearer(""), bearer("undefined"), bearer(ADMIN)]) {
        const answer = await call(srv.url, method, path, headers, body);
        expect([method, path, answer.status, answer.body?.error]).toEqual([
          method,
          path,
          401,
          "unauthorized",
        ]);
        expect(typeof answer.body?.message).toBe("string");
      }
    }
  });

  it("answers 401 to a wrong, partial, padded or differently-schemed token", async () => {
    const srv = startTestServer({ ADMIN_TOKEN: ADMIN });
    const wrong: Array<Record<string, string>> = [
      {},
      bearer("admin-token-0123456789abcdeF"),
      bearer(ADMIN.slice(0, -1)),
      bearer(`${ADMIN}x`),
      bearer(`x${ADMIN}`),
      bearer(ADMIN.toUpperCase()),
      { Authorization: ADMIN },
      { Authorization: `Basic ${ADMIN}` },
      { Authorization: `Basic ${btoa(`admin:${ADMIN}`)}` },
      { Authorization: `Bearer${ADMIN}` },
      { Authorization: `Bearer ${ADMIN} ${ADMIN}` },
      { Authorization: "Bearer" },
      { Authorization: `Token ${ADMIN}` },
      { "X-Admin-Token": ADMIN },
    ];
    for (const [method, path, body] of ADMIN_ROUTES) {
      for (const headers of wrong) {
        const answer = await call(srv.url, method, path, headers, body);
        expect([method, path, headers, answer.status, answer.body?.error]).toEqual([
          method,
          path,
          headers,
          401,
          "unauthorized",
        ]);
      }
    }
    // Even a wrong method on an admin path is told 401 first, so the API's shape shows to no one.
    expect((await call(srv.url, "GET", "/api/identities/someone")).status).toBe(401);
  });

  it("compares in constant time over digests, and takes the scheme in any case", () => {
    expect(authorized(ADMIN, `Bearer ${ADMIN}`)).toBe(true);
    expect(authorized(ADMIN, `bearer ${ADMIN}`)).toBe(true);
    expect(authorized(ADMIN, `BEARER  ${ADMIN} `)).toBe(true);
    expect(authorized(ADMIN, `Bearer ${ADMIN}\n`)).toBe(false);
    expect(authorized(undefined, `Bearer ${ADMIN}`)).toBe(false);
    expect(authorized("", "Bearer ")).toBe(false);
    expect(authorized(ADMIN, null)).toBe(false);
    expect(authorized(ADMIN, `Bearer ${"x".repeat(100_000)}`)).toBe(false);
  });

  it("knows the admin paths, and leaves the public ones alone", () => {
    for (const [, path] of ADMIN_ROUTES) expect([path, isAdminPath(path)]).toEqual([path, true]);
    for (const path of ["/api/rooms", "/api/rooms/lobby/messages", "/healthz", "/api/identities", "/"]) {
      expect([path, isAdminPath(path)]).toEqual([path, false]);
    }
  });

  it("with the right token: a wrong method is 405; the moderator routes answer, never 401", async () => {
    const srv = startTestServer({ ADMIN_TOKEN: ADMIN });
    await srv.ready;
    const wrongMethod = await call(srv.url, "GET", "/api/identities/someone", bearer(ADMIN));
    expect([wrongMethod.status, wrongMethod.body?.error]).toEqual([405, "method_not_allowed"]);
    expect((await call(srv.url, "POST", "/api/identities/someone", bearer(ADMIN))).status).toBe(405);
    for (const [method, path] of [
      ["GET", "/api/rooms/lobby/topic"],
      ["DELETE", "/api/rooms/lobby/kick"],
      ["GET", "/api/rooms/lobby/bans"],
      ["PUT", "/api/rooms/lobby/bans/someone"],
      ["POST", "/api/rooms/lobby/messages/1"],
    ] as const) {
      const answer = await call(srv.url, method, path, bearer(ADMIN));
      expect([method, path, answer.status, answer.body?.error]).toEqual([
        method,
        path,
        405,
        "method_not_allowed",
      ]);
    }
    // On an empty server every moderator route finds nothing to act on, except the topic, which is set.
    for (const [method, path, body] of ADMIN_ROUTES.slice(1)) {
      const answer = await call(srv.url, method, path, bearer(ADMIN), body);
      const expected = method === "PUT" ? [204, undefined] : [404, "not_found"];
      expect([method, path, answer.status, answer.body?.error]).toEqual([method, path, ...expected]);
    }
    // Public routes need no token and are unchanged.
    expect((await call(srv.url, "GET", "/api/rooms")).status).toBe(200);
    expect((await call(srv.url, "POST", "/api/rooms")).status).toBe(405);
    expect((await call(srv.url, "DELETE", "/api/rooms/lobby/messages")).status).toBe(405);
  });

  it("never logs the admin token", async () => {
    const lines: string[] = [];
    const srv = startTestServer(
      { ADMIN_TOKEN: ADMIN, LOG_LEVEL: "debug" },
      { log: jsonLogger("debug", (l) => lines.push(l)) },
    );
    await call(srv.url, "DELETE", "/api/identities/someone", bearer(`${ADMIN}x`));
    await call(srv.url, "DELETE", "/api/identities/someone", bearer(ADMIN)).catch(() => undefined);
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.filter((l) => l.includes(ADMIN))).toEqual([]);
  });
});

/** An AdminHub that records what the routes ask of it and answers as told. */
class RecordingHub implements AdminHub {
  readonly calls: unknown[][] = [];
  /** What the next calls answer: found (ok / true) or not (not_found / false). */
  found = true;

  async revokeUser(userId: string): Promise<boolean> {
    this.calls.push(["revokeUser", userId]);
    return this.found;
  }
  async adminDelete(room: string, seq: number): Promise<"ok" | "not_found"> {
    this.calls.push(["delete", room, seq]);
    return this.found ? "ok" : "not_found";
  }
  async adminTopic(room: string, topic: string): Promise<"ok"> {
    this.calls.push(["topic", room, topic]);
    return "ok";
  }
  async adminKick(room: string, nick: string, reason?: string): Promise<"ok" | "not_found"> {
    this.calls.push(["kick", room, nick, reason]);
    return this.found ? "ok" : "not_found";
  }
  async adminBan(room: string, nick: string, seconds?: number, reason?: string): Promise<"ok" | "not_found"> {
    this.calls.push(["ban", room, nick, seconds, reason]);
    return this.found ? "ok" : "not_found";
  }
  async adminUnban(room: string, userId: string): Promise<boolean> {
    this.calls.push(["unban", room, userId]);
    return this.found;
  }
}

describe("the moderator routes against a recording hub", () => {
  function harness() {
    const hub = new RecordingHub();
    const ctx: HttpContext = {
      hub: { roomList: async () => [] } as unknown as ChatHub,
      startedAt: 0,
      page: () => new Response(""),
      admin: { token: ADMIN, hub, log: silentLogger },
    };
    /** One request straight through routeHttp; `body` is sent as is when a string or bytes, else as JSON. */
    const send = async (
      method: string,
      path: string,
      body?: unknown,
      headers: Record<string, string> = bearer(ADMIN),
    ) => {
      const url = new URL(path, "http://localhost");
      const raw =
        body === undefined || typeof body === "string" || body instanceof Uint8Array
          ? body
          : JSON.stringify(body);
      const res = await routeHttp(new Request(url, { method, headers, body: raw as BodyInit }), url, ctx);
      const text = await res.text();
      return {
        status: res.status,
        body: (text === "" ? undefined : JSON.parse(text)) as
          | { error?: string; message?: string }
          | undefined,
      };
    };
    return { hub, send };
  }

  it("DELETE /api/rooms/:room/messages/:seq: 204, 404 when there is no such post, 400 for a bad seq", async () => {
    const { hub, send } = harness();
    expect(await send("DELETE", "/api/rooms/lobby/messages/7")).toEqual({ status: 204, body: undefined });
    hub.found = false;
    const missing = await send("DELETE", "/api/rooms/lobby/messages/8");
    expect([missing.status, missing.body?.error]).toEqual([404, "not_found"]);
    for (const seq of ["0", "-1", "x", "1.5", "1e3", "%20", "99999999999999999"]) {
      const answer = await send("DELETE", `/api/rooms/lobby/messages/${seq}`);
      expect([seq, answer.status, answer.body?.error]).toEqual([seq, 400, "bad_request"]);
    }
    expect(hub.calls).toEqual([
      ["delete", "lobby", 7],
      ["delete", "lobby", 8],
    ]);
  });

  it("takes v2 room names, normalized (a direct room too), and refuses others with 400 room_invalid", async () => {
    const { hub, send } = harness();
    for (const [raw, room] of [
      ["Zo%C3%AB.chat", "Zoë.chat"],
      ["Zoe%CC%88", "Zoë"],
      ["~abc.DEF", "~abc.DEF"],
      ["%7Eabc", "~abc"],
    ]) {
      expect((await send("DELETE", `/api/rooms/${raw}/messages/1`)).status).toBe(204);
      expect(hub.calls.at(-1)).toEqual(["delete", room, 1]);
    }
    const bad = ["a%20b", "~", "~%C3%A9", "x".repeat(65), `~${"a".repeat(129)}`, "%F0%9F%98%80", "a%2Fb"];
    for (const raw of bad) {
      for (const [method, path, body] of [
        ["DELETE", `/api/rooms/${raw}/messages/1`],
        ["PUT", `/api/rooms/${raw}/topic`, { topic: "t" }],
        ["POST", `/api/rooms/${raw}/kick`, { nick: "ann" }],
        ["POST", `/api/rooms/${raw}/bans`, { nick: "ann" }],
        ["DELETE", `/api/rooms/${raw}/bans/u1`],
      ] as const) {
        const answer = await send(method, path, body);
        expect([method, path, answer.status, answer.body?.error]).toEqual([
          method,
          path,
          400,
          "room_invalid",
        ]);
        expect(typeof answer.body?.message).toBe("string");
      }
    }
    expect(hub.calls.length).toBe(4);
  });

  it("PUT /api/rooms/:room/topic {topic}: 0-200 characters, checked as the socket's topic", async () => {
    const { hub, send } = harness();
    const max = "😀".repeat(v2.LIMITS_V2.topicMax);
    for (const topic of ["Release day", "", max, " spaced "]) {
      expect(await send("PUT", "/api/rooms/lobby/topic", { topic })).toEqual({
        status: 204,
        body: undefined,
      });
      expect(hub.calls.at(-1)).toEqual(["topic", "lobby", topic]);
    }
    const refused: Array<[unknown, string]> = [
      [{ topic: `${max}x` }, "too_large"],
      [{ topic: "x".repeat(1000) }, "too_large"],
      [{ topic: 7 }, "bad_message"],
      [{ topic: null }, "bad_message"],
      [{}, "bad_message"],
      [{ topic: "t", extra: 1 }, "bad_message"],
      [{ topic: "t", room: "lobby" }, "bad_message"],
      [{ topic: "t", type: "topic" }, "bad_message"],
      [{ topic: "t", id: "x" }, "bad_message"],
      [["t"], "bad_message"],
      ['"t"', "bad_message"],
      ["null", "bad_message"],
      ['{"topic":"\\ud800"}', "bad_message"],
      ['{"topic":"t"', "bad_json"],
      ["", "bad_json"],
      [
        new Uint8Array([0x7b, 0x22, 0x74, 0x6f, 0x70, 0x69, 0x63, 0x22, 0x3a, 0x22, 0xff, 0x22, 0x7d]),
        "bad_json",
      ],
    ];
    const before = hub.calls.length;
    for (const [body, code] of refused) {
      const answer = await send("PUT", "/api/rooms/lobby/topic", body);
      expect([body, answer.status, answer.body?.error]).toEqual([body, 400, code]);
      expect(typeof answer.body?.message).toBe("string");
    }
    expect(hub.calls.length).toBe(before);
  });

  it("reads at most 16 KiB of body: one byte more is 413 too_large, declared or not", async () => {
    const { hub, send } = harness();
    const exact = (n: number) => {
      const base = JSON.stringify({ topic: "t" });
      return `${base.slice(0, -1)}${" ".repeat(n - base.length)}}`;
    };
    expect(exact(BODY_MAX).length).toBe(BODY_MAX);
    expect((await send("PUT", "/api/rooms/lobby/topic", exact(BODY_MAX))).status).toBe(204);
    const over = await send("PUT", "/api/rooms/lobby/topic", exact(BODY_MAX + 1));
    expect([over.status, over.body?.error]).toEqual([413, "too_large"]);
    // A streamed body with no length declared is cut off as it arrives.
    const chunk = new TextEncoder().encode(" ".repeat(4096));
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent++ < 64) controller.enqueue(chunk);
        else controller.close();
      },
    });
    const url = new URL("/api/rooms/lobby/kick", "http://localhost");
    const ctxHub = hub;
    const res = await routeHttp(
      new Request(url, { method: "POST", headers: bearer(ADMIN), body: stream }),
      url,
      {
        hub: {} as ChatHub,
        startedAt: 0,
        page: () => new Response(""),
        admin: { token: ADMIN, hub: ctxHub, log: silentLogger },
      },
    );
    expect(res.status).toBe(413);
    expect(sent).toBeLessThan(64);
    expect(hub.calls.length).toBe(1);
  });

  it("POST /api/rooms/:room/kick {nick, reason?}: 204, 404 when no one has that nick there", async () => {
    const { hub, send } = harness();
    expect((await send("POST", "/api/rooms/lobby/kick", { nick: "ann" })).status).toBe(204);
    expect(
      (await send("POST", "/api/rooms/lobby/kick", { nick: " Zoe\u0308 ", reason: "spam" })).status,
    ).toBe(204);
    hub.found = false;
    const missing = await send("POST", "/api/rooms/lobby/kick", { nick: "bob" });
    expect([missing.status, missing.body?.error]).toEqual([404, "not_found"]);
    expect(hub.calls).toEqual([
      ["kick", "lobby", "ann", undefined],
      ["kick", "lobby", "Zoë", "spam"],
      ["kick", "lobby", "bob", undefined],
    ]);
    const refused: Array<[unknown, string]> = [
      [{ nick: "<script>" }, "nick_invalid"],
      [{ nick: "x".repeat(33) }, "nick_invalid"],
      [{ nick: "" }, "nick_invalid"],
      [{ nick: 7 }, "bad_message"],
      [{}, "bad_message"],
      [{ nick: "ann", reason: "" }, "bad_message"],
      [{ nick: "ann", reason: "r".repeat(v2.LIMITS_V2.reasonMax + 1) }, "too_large"],
      [{ nick: "ann", seconds: 5 }, "bad_message"],
    ];
    for (const [body, code] of refused) {
      const answer = await send("POST", "/api/rooms/lobby/kick", body);
      expect([body, answer.status, answer.body?.error]).toEqual([body, 400, code]);
    }
    expect(hub.calls.length).toBe(3);
  });

  it("POST /api/rooms/:room/bans {nick, seconds?, reason?}: 204, 404 when no one has that nick there", async () => {
    const { hub, send } = harness();
    expect((await send("POST", "/api/rooms/lobby/bans", { nick: "ann" })).status).toBe(204);
    expect(
      (await send("POST", "/api/rooms/~a.b/bans", { nick: "bob", seconds: 60, reason: "flood" })).status,
    ).toBe(204);
    const longest = v2.LIMITS_V2.banSecondsMax;
    expect((await send("POST", "/api/rooms/lobby/bans", { nick: "carl", seconds: longest })).status).toBe(
      204,
    );
    hub.found = false;
    const missing = await send("POST", "/api/rooms/lobby/bans", { nick: "dan", seconds: 1 });
    expect([missing.status, missing.body?.error]).toEqual([404, "not_found"]);
    expect(hub.calls).toEqual([
      ["ban", "lobby", "ann", undefined, undefined],
      ["ban", "~a.b", "bob", 60, "flood"],
      ["ban", "lobby", "carl", longest, undefined],
      ["ban", "lobby", "dan", 1, undefined],
    ]);
    const refused: Array<[unknown, string]> = [
      [{ nick: "ann", seconds: 0 }, "bad_message"],
      [{ nick: "ann", seconds: -5 }, "bad_message"],
      [{ nick: "ann", seconds: 1.5 }, "bad_message"],
      [{ nick: "ann", seconds: "60" }, "bad_message"],
      [{ nick: "ann", seconds: null }, "bad_message"],
      [{ nick: "ann", seconds: longest + 1 }, "bad_message"],
      [{ nick: "ann", reason: "r".repeat(v2.LIMITS_V2.reasonMax + 1) }, "too_large"],
      [{ nick: "a b" }, "nick_invalid"],
      [{ seconds: 60 }, "bad_message"],
    ];
    for (const [body, code] of refused) {
      const answer = await send("POST", "/api/rooms/lobby/bans", body);
      expect([body, answer.status, answer.body?.error]).toEqual([body, 400, code]);
    }
    expect(hub.calls.length).toBe(4);
  });

  it("DELETE /api/rooms/:room/bans/:userId: 204, 404 when there is no such ban; the id percent-decoded", async () => {
    const { hub, send } = harness();
    expect((await send("DELETE", "/api/rooms/lobby/bans/Xq12_-ab")).status).toBe(204);
    expect((await send("DELETE", "/api/rooms/lobby/bans/v1%3Aann")).status).toBe(204);
    expect((await send("DELETE", "/api/rooms/lobby/bans/auth0%7Cbob")).status).toBe(204);
    hub.found = false;
    const missing = await send("DELETE", "/api/rooms/lobby/bans/nobody");
    expect([missing.status, missing.body?.error]).toEqual([404, "not_found"]);
    expect(hub.calls).toEqual([
      ["unban", "lobby", "Xq12_-ab"],
      ["unban", "lobby", "v1:ann"],
      ["unban", "lobby", "auth0|bob"],
      ["unban", "lobby", "nobody"],
    ]);
    // A v1 nickname's ban by the nick as written: the id as given, then the nick's key.
    const before = hub.calls.length;
    expect((await send("DELETE", "/api/rooms/lobby/bans/v1:Carl")).status).toBe(404);
    expect((await send("DELETE", "/api/rooms/lobby/bans/v1:carl")).status).toBe(404);
    expect((await send("DELETE", "/api/rooms/lobby/bans/v1:a%20b")).status).toBe(404);
    expect(hub.calls.slice(before)).toEqual([
      ["unban", "lobby", "v1:Carl"],
      ["unban", "lobby", "v1:carl"],
      ["unban", "lobby", "v1:carl"],
      ["unban", "lobby", "v1:a b"],
    ]);
    expect((await send("DELETE", "/api/rooms/lobby/bans/%E0%A4%A")).status).toBe(400);
  });

  it("asks nothing of the hub without the right token, nor for a wrong method", async () => {
    const { hub, send } = harness();
    for (const [method, path, body] of ADMIN_ROUTES) {
      expect((await send(method, path, body, {})).status).toBe(401);
      expect((await send(method, path, body, bearer(`${ADMIN}x`))).status).toBe(401);
    }
    expect((await send("PATCH", "/api/rooms/lobby/topic", { topic: "x" })).status).toBe(405);
    expect(hub.calls).toEqual([]);
  });
});

describe("direct rooms over plain HTTP", () => {
  it("GET /api/rooms/~x/messages is 404 not_found, however the ~ is written", async () => {
    const srv = startTestServer();
    for (const path of [
      "/api/rooms/~x/messages",
      "/api/rooms/%7Ex/messages",
      "/api/rooms/%7ea.b/messages?limit=5",
    ]) {
      const answer = await call(srv.url, "GET", path);
      expect([path, answer.status, answer.body?.error]).toEqual([path, 404, "not_found"]);
    }
    // A v1 room is served as before; a broken name is still room_invalid.
    expect((await call(srv.url, "GET", "/api/rooms/lobby/messages")).status).toBe(200);
    expect((await call(srv.url, "GET", "/api/rooms/a%20b/messages")).body?.error).toBe("room_invalid");
  });

  it("GET /api/rooms never lists a direct room (the hub's list filtered)", async () => {
    const hub = {
      roomList: async () => [
        { room: "~a.b", users: 9 },
        { room: "lobby", users: 3 },
        { room: "~c.d", users: 2 },
        { room: "x~y", users: 1 },
      ],
    } as unknown as ChatHub;
    const ctx: HttpContext = {
      hub,
      startedAt: 0,
      page: () => new Response(""),
      admin: { token: undefined, hub: new RecordingHub(), log: silentLogger },
    };
    const url = new URL("http://localhost/api/rooms");
    const res = await routeHttp(new Request(url), url, ctx);
    expect(await res.json()).toEqual([
      { room: "lobby", users: 3 },
      { room: "x~y", users: 1 },
    ]);
  });
});

describe.each(engines)("revoking identities over %s", (_name, engineOf) => {
  it("DELETE /api/identities/:userId: 204 for a user, 404 for an unknown one or once revoked", async () => {
    const srv = startTestServerOn(engineOf(), { ADMIN_TOKEN: ADMIN });
    await srv.ready;
    const [ws, welcome] = await openV2(srv.url, { room: "lobby" });
    const closed = new Promise<number>((resolve) => ws.addEventListener("close", (ev) => resolve(ev.code)));
    const path = `/api/identities/${encodeURIComponent(welcome.user.userId)}`;
    expect((await call(srv.url, "DELETE", path, bearer(ADMIN))).status).toBe(204);
    expect(await Promise.race([closed, Bun.sleep(3000).then(() => "still open")])).not.toBe("still open");
    const again = await call(srv.url, "DELETE", path, bearer(ADMIN));
    expect([again.status, again.body?.error]).toEqual([404, "not_found"]);
    const stranger = new IdentitySigner("whatever-key-0123456789").mint().userId;
    const unknown = await call(srv.url, "DELETE", `/api/identities/${stranger}`, bearer(ADMIN));
    expect([unknown.status, unknown.body?.error]).toEqual([404, "not_found"]);
    // Another user is untouched.
    const [, other] = await openV2(srv.url, { room: "lobby" });
    expect(other.user.userId).not.toBe(welcome.user.userId);
  });

  it("a direct room never shows in GET /api/rooms, nor its messages", async () => {
    const srv = startTestServerOn(engineOf());
    await srv.ready;
    const [ann] = await openV2(srv.url, { room: "lobby", nick: "ann" });
    await openV2(srv.url, { room: "lobby", nick: "bob" });
    const v1 = await connect(srv.url, { room: "lobby", nick: "carl" });
    const joined = new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("no joined for the direct room")), 3000);
      ann.addEventListener("message", (ev) => {
        const decoded = v2.decodeServerMessageV2(String(ev.data));
        // Not lobby's own `joined`, which may come after this listener on a slower engine.
        if (decoded.ok && decoded.value.type === "joined" && decoded.value.room !== "lobby") {
          clearTimeout(timer);
          resolve(decoded.value.room);
        }
      });
    });
    ann.send(v2.encodeV2({ type: "dm", nick: "bob" }));
    const direct = await joined;
    expect(direct.startsWith("~")).toBe(true);
    const listed = await (await fetch(new URL("/api/rooms", srv.url))).json();
    expect(listed.map((r: { room: string }) => r.room)).toEqual(["lobby"]);
    const answer = await call(srv.url, "GET", `/api/rooms/${encodeURIComponent(direct)}/messages`);
    expect([answer.status, answer.body?.error]).toEqual([404, "not_found"]);
    expect(v1.welcome.room).toBe("lobby");
  });
});

describe.each(engines)("the moderator routes over %s", (_name, engineOf) => {
  async function server() {
    const srv = startTestServerOn(engineOf(), { ADMIN_TOKEN: ADMIN });
    await srv.ready;
    return srv;
  }

  /** A v2 user in `room`, once the room is its. */
  async function member(base: URL, nick: string, room = "lobby") {
    const [c, welcome] = await connectV2(base, { nick, room });
    if (!welcome.rooms.some((r) => r.room === room)) await c.until(isJoined(room));
    return { c, userId: welcome.user.userId, identity: welcome.identityToken as string };
  }

  const admin = (base: URL, method: string, path: string, body?: unknown) =>
    call(base, method, path, bearer(ADMIN), body);

  it("DELETE /api/rooms/:room/messages/:seq: every member gets a delete by admin; the post stays, folded", async () => {
    const srv = await server();
    const ann = await member(srv.url, "ann");
    const bob = await member(srv.url, "bob");
    expect(await ann.c.ask({ type: "chat", room: "lobby", text: "oops", id: "m1" })).toMatchObject({
      type: "ack",
      seq: 1,
    });
    expect((await admin(srv.url, "DELETE", "/api/rooms/lobby/messages/1")).status).toBe(204);
    for (const c of [ann.c, bob.c]) {
      const change = await c.first("delete");
      expect(change).toEqual({ type: "delete", room: "lobby", rev: change.rev, seq: 1, by: "admin" });
      expect(change.rev).toBeGreaterThanOrEqual(1);
    }
    // The post keeps its seq and loses its text, as v2's history folds it.
    const history = await bob.c.ask({ type: "history", room: "lobby" });
    expect(history).toMatchObject({
      type: "history",
      messages: [expect.objectContaining({ seq: 1, nick: "ann", text: "", deleted: true })],
    });
    for (const path of ["/api/rooms/lobby/messages/2", "/api/rooms/empty/messages/1"]) {
      const answer = await admin(srv.url, "DELETE", path);
      expect([path, answer.status, answer.body?.error]).toEqual([path, 404, "not_found"]);
    }
  });

  it("PUT /api/rooms/:room/topic: every member gets a topic by admin, a newcomer's RoomState has it; a direct room too", async () => {
    const srv = await server();
    const ann = await member(srv.url, "ann");
    const bob = await member(srv.url, "bob");
    expect((await admin(srv.url, "PUT", "/api/rooms/lobby/topic", { topic: "Release day" })).status).toBe(
      204,
    );
    for (const c of [ann.c, bob.c]) {
      const change = await c.first("topic");
      expect(change).toEqual({
        type: "topic",
        room: "lobby",
        rev: change.rev,
        topic: "Release day",
        nick: "admin",
      });
    }
    const carl = await connectV2(srv.url, { nick: "carl", room: "lobby" });
    expect((await carl[0].until(isJoined("lobby"))).topic).toBe("Release day");

    ann.c.send({ type: "dm", nick: "bob" });
    const direct = (await ann.c.until((m): m is v2.Joined => m.type === "joined" && m.room.startsWith("~")))
      .room;
    await bob.c.until(isJoined(direct));
    const path = `/api/rooms/${encodeURIComponent(direct)}/topic`;
    expect((await admin(srv.url, "PUT", path, { topic: "just us" })).status).toBe(204);
    for (const c of [ann.c, bob.c]) {
      const change = await c.until((m): m is v2.TopicMessage => m.type === "topic" && m.room === direct);
      expect(change).toMatchObject({ topic: "just us", nick: "admin" });
    }
    // The empty topic clears it.
    expect((await admin(srv.url, "PUT", "/api/rooms/lobby/topic", { topic: "" })).status).toBe(204);
    expect(
      await bob.c.until(
        (m): m is v2.TopicMessage => m.type === "topic" && m.room === "lobby" && m.topic === "",
      ),
    ).toMatchObject({ nick: "admin" });
  });

  it("POST /api/rooms/:room/kick: the user's tabs get kicked by admin and leave, the others see it; 404 for no one", async () => {
    const srv = await server();
    const ann = await member(srv.url, "ann");
    const bob = await member(srv.url, "bob");
    const [bobTab] = await connectV2(srv.url, { identity: bob.identity });
    expect(
      (await admin(srv.url, "POST", "/api/rooms/lobby/kick", { nick: "Bob", reason: "spam" })).status,
    ).toBe(204);
    for (const c of [bob.c, bobTab]) {
      expect(await c.until(isKicked("lobby"))).toEqual({
        type: "kicked",
        room: "lobby",
        by: "admin",
        reason: "spam",
      });
    }
    await ann.c.until(isLeave("lobby", "bob"));
    expect(await ann.c.ask({ type: "who", room: "lobby" })).toMatchObject({ users: ["ann"] });
    for (const nick of ["bob", "nobody"]) {
      const answer = await admin(srv.url, "POST", "/api/rooms/lobby/kick", { nick });
      expect([nick, answer.status, answer.body?.error]).toEqual([nick, 404, "not_found"]);
    }
    // A kick is not a ban.
    expect(await bob.c.ask({ type: "join", room: "lobby" })).toMatchObject({ type: "joined", room: "lobby" });
  });

  it("POST /api/rooms/:room/bans, DELETE .../bans/:userId: a banned user stays out, even with its identity, until unbanned", async () => {
    const srv = await server();
    const ann = await member(srv.url, "ann");
    const bob = await member(srv.url, "bob");
    expect(
      (await admin(srv.url, "POST", "/api/rooms/lobby/bans", { nick: "bob", reason: "flood" })).status,
    ).toBe(204);
    expect(await bob.c.until(isKicked("lobby"))).toEqual({
      type: "kicked",
      room: "lobby",
      by: "admin",
      reason: "flood",
    });
    await ann.c.until(isLeave("lobby", "bob"));
    expect(await bob.c.ask({ type: "join", room: "lobby", id: "j1" })).toMatchObject({
      type: "error",
      code: "forbidden",
      id: "j1",
    });
    const [again, welcome] = await connectV2(srv.url, { identity: bob.identity, room: "lobby" });
    expect(welcome.rooms.map((r) => r.room)).not.toContain("lobby");
    await again.until((m): m is v2.ErrorMessage => m.type === "error" && m.code === "forbidden");
    const v1 = await upgradeRequest(srv.url, { room: "lobby", nick: "bob" });
    expect([v1.status, v1.body?.error]).toEqual([403, "forbidden"]);

    const path = `/api/rooms/lobby/bans/${encodeURIComponent(bob.userId)}`;
    expect((await admin(srv.url, "DELETE", path)).status).toBe(204);
    expect(await bob.c.ask({ type: "join", room: "lobby" })).toMatchObject({ type: "joined", room: "lobby" });
    const twice = await admin(srv.url, "DELETE", path);
    expect([twice.status, twice.body?.error]).toEqual([404, "not_found"]);
    const absent = await admin(srv.url, "POST", "/api/rooms/lobby/bans", { nick: "nobody", seconds: 60 });
    expect([absent.status, absent.body?.error]).toEqual([404, "not_found"]);

    // A timed ban's kicked carries its end.
    expect(
      (await admin(srv.url, "POST", "/api/rooms/lobby/bans", { nick: "bob", seconds: 3600 })).status,
    ).toBe(204);
    const timed = await bob.c.until(isKicked("lobby"), 1);
    expect(Date.parse(timed.until as string) - Date.now()).toBeGreaterThan(3_500_000);
  });

  // The upgrade cannot know whose a `resume` token is: the core checks the nick it reclaims, and renames.
  it("a banned v1 nickname does not come back by a resume token nor by a rename", async () => {
    const srv = await server();
    const ann = await member(srv.url, "ann");
    const carl = await connect(srv.url, { room: "lobby", nick: "carl" });
    await ann.c.until(isArrival("lobby", "carl"));
    expect((await admin(srv.url, "POST", "/api/rooms/lobby/bans", { nick: "carl" })).status).toBe(204);
    expect(await carl.closing()).toBe(v2.CLOSE_V2.kicked);
    // The kicked connection's resume token, with no nick: refused, or ignored (a guest), or closed.
    const url = new URL(`ws://${srv.url.host}/ws`);
    url.searchParams.set("room", "lobby");
    url.searchParams.set("resume", carl.welcome.resumeToken);
    const resumed = new TestClient(url);
    const first = await Promise.race([resumed.next("welcome").catch(() => undefined), resumed.closed]);
    if (typeof first === "object" && first !== undefined) {
      expect(nickKey(first.nick)).not.toBe(nickKey("carl"));
    }
    // A guest in the room may not take the banned nickname.
    const guest = await connect(srv.url, { room: "lobby" });
    guest.send({ type: "nick", nick: "Carl" });
    await guest.next("error");
    expect(guest.all("presence").flatMap((m) => m.events)).not.toContainEqual(
      expect.objectContaining({ event: "nick", nick: "Carl" }),
    );
    const who = await ann.c.ask({ type: "who", room: "lobby" });
    expect(who.type === "users" && who.users.map(nickKey)).not.toContain(nickKey("carl"));
  });

  it("bans a v1 nickname: closed with 4003 and refused before the upgrade; a guest is never held out", async () => {
    const srv = await server();
    const ann = await member(srv.url, "ann");
    const carl = await connect(srv.url, { room: "lobby", nick: "carl" });
    await ann.c.until(isArrival("lobby", "carl"));
    expect((await admin(srv.url, "POST", "/api/rooms/lobby/bans", { nick: "carl" })).status).toBe(204);
    expect(await carl.closing()).toBe(v2.CLOSE_V2.kicked);
    await ann.c.until(isLeave("lobby", "carl"));
    for (const nick of ["carl", "Carl", "ｃａｒｌ"]) {
      const answer = await upgradeRequest(srv.url, { room: "lobby", nick });
      expect([nick, answer.status, answer.body?.error]).toEqual([nick, 403, "forbidden"]);
    }
    const guest = await connect(srv.url, { room: "lobby" });
    expect(guest.welcome.nick).toMatch(/^guest-/);
    expect((await upgradeRequest(srv.url, { room: "elsewhere", nick: "carl" })).status).toBe(101);
    // Lifted by `v1:NICKKEY`, or by the nick as written.
    const path = `/api/rooms/lobby/bans/${encodeURIComponent(`v1:${nickKey("carl")}`)}`;
    expect((await admin(srv.url, "DELETE", path)).status).toBe(204);
    const back = await connect(srv.url, { room: "lobby", nick: "carl" });
    expect(back.welcome.nick).toBe("carl");
    expect(
      (await admin(srv.url, "POST", "/api/rooms/lobby/bans", { nick: "carl", seconds: 60 })).status,
    ).toBe(204);
    expect(await back.closing()).toBe(v2.CLOSE_V2.kicked);
    expect((await admin(srv.url, "DELETE", "/api/rooms/lobby/bans/v1:Carl")).status).toBe(204);
    expect((await upgradeRequest(srv.url, { room: "lobby", nick: "carl" })).status).toBe(101);
  });
});
