/**
 * The HTTP admin API (shared/PROTOCOL.md, "Moderators"): nothing answers without ADMIN_TOKEN or with
 * the wrong bearer token; `DELETE /api/identities/:userId` revokes; and direct rooms are neither
 * listed by `GET /api/rooms` nor served by `GET /api/rooms/:room/messages`.
 */
import { afterEach, describe, expect, it } from "bun:test";
import { v2 } from "../protocol";
import { authorized, isAdminPath } from "../server/admin";
import type { ChatHub } from "../server/chat/hub";
import { jsonLogger, silentLogger } from "../server/chat/log";
import { type HttpContext, routeHttp } from "../server/http";
import { IdentitySigner } from "../server/identity";
import { closeAllClients, connect } from "./support/test-client";
import { testEngines } from "./support/test-engines";
import { startTestServer, startTestServerOn, stopAllServers } from "./support/test-server";

const ADMIN = "admin-token-0123456789abcdef";

const sockets = new Set<WebSocket>();

afterEach(async () => {
  for (const ws of sockets) ws.close();
  sockets.clear();
  await closeAllClients();
  await stopAllServers();
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

  it("with the right token: a wrong method is 405; routes not built yet are never 401", async () => {
    const srv = startTestServer({ ADMIN_TOKEN: ADMIN });
    const wrongMethod = await call(srv.url, "GET", "/api/identities/someone", bearer(ADMIN));
    expect([wrongMethod.status, wrongMethod.body?.error]).toEqual([405, "method_not_allowed"]);
    expect((await call(srv.url, "POST", "/api/identities/someone", bearer(ADMIN))).status).toBe(405);
    for (const [method, path, body] of ADMIN_ROUTES.slice(1)) {
      const answer = await call(srv.url, method, path, bearer(ADMIN), body);
      expect([method, path, answer.status === 401]).toEqual([method, path, false]);
      expect(typeof answer.body?.error === "string" || answer.status < 300).toBe(true);
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
      admin: { token: undefined, hub: { revokeUser: async () => false }, log: silentLogger },
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
        if (decoded.ok && decoded.value.type === "joined") {
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
