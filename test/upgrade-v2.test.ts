/**
 * The v2 upgrade path (shared/PROTOCOL.md, "Wire protocol v2", "Users"): `v=2` selects v2, any other
 * `v` but 1 is 400; identity tokens are minted, taken back and refused (forged, truncated, another
 * key's, revoked) with 401 before the upgrade; with AUTH_SECRET the user is the token's `sub` (else
 * its `nick`); the limits and the Origin check apply as in v1; a v1 upgrade is v1 exactly, but for
 * one check of v2's moderators: a banned nickname is 403 before the upgrade.
 */
import { afterEach, describe, expect, it } from "bun:test";
import { rmSync } from "node:fs";
import { TokenAuthority } from "../server/auth";
import { jsonLogger } from "../server/chat/log";
import { IdentitySigner } from "../server/identity";
import { upgradeRequest } from "./support/http-upgrade";
import { closeAllClients, connect, connectUrl, TestClient } from "./support/test-client";
import { testEngines } from "./support/test-engines";
import { startTestServer, startTestServerOn, stopAllServers } from "./support/test-server";
import { closeAllV2Clients, connectV2 } from "./support/v2-client";

const SECRET = "v2-access-secret-0123456789";
const IDENTITY_SECRET = "v2-identity-secret-0123456789";
const ADMIN = "v2-admin-token-0123456789";

afterEach(async () => {
  const bad = await closeAllV2Clients();
  await closeAllClients();
  await stopAllServers();
  if (bad.length > 0) throw new Error(`server sent ${bad.length} undecodable v2 frames, first: ${bad[0]}`);
});

const engines = testEngines();

function inAnHour(): number {
  return Math.floor(Date.now() / 1000) + 3600;
}

describe("choosing the version", () => {
  it("answers a v other than absent, 1 or 2 with 400 bad_request before anything else of v2", async () => {
    const srv = startTestServer();
    for (const v of ["0", "3", "bad", "2.0", "02", "v2", " 2", "1,2", "２"]) {
      const answer = await upgradeRequest(srv.url, { v, room: "r" });
      expect([v, answer.status, answer.body?.error]).toEqual([v, 400, "bad_request"]);
    }
    expect(srv.hub.connectionCount).toBe(0);
  });

  it("v=1 and an empty v are v1; a v1 query with a v2-only value is refused as before", async () => {
    const srv = startTestServer();
    for (const v of ["1", ""]) {
      expect((await upgradeRequest(srv.url, { v, room: "r" })).status).toBe(101);
    }
    // v1's room rules hold without v=2: a direct room's name is not a v1 room.
    expect((await upgradeRequest(srv.url, { room: "~a.b" })).body?.error).toBe("room_invalid");
    expect((await upgradeRequest(srv.url, { v: "1", room: "~a.b" })).body?.error).toBe("room_invalid");
  });
});

describe("the v2 query, before the upgrade", () => {
  it("takes room as optional, checks it by v2's rules, checks nick as v1, and ignores since and resume", async () => {
    const srv = startTestServer({ IDENTITY_SECRET });
    const refused: Array<[Record<string, string>, string]> = [
      [{ room: "no spaces" }, "room_invalid"],
      [{ room: "x".repeat(65) }, "room_invalid"],
      [{ room: "~" }, "room_invalid"],
      [{ room: "~é" }, "room_invalid"],
      [{ room: `~${"a".repeat(129)}` }, "room_invalid"],
      [{ nick: "<script>" }, "nick_invalid"],
      [{ nick: "x".repeat(33) }, "nick_invalid"],
    ];
    for (const [query, code] of refused) {
      const answer = await upgradeRequest(srv.url, { v: "2", ...query });
      expect([query, answer.status, answer.body?.error]).toEqual([query, 400, code]);
    }
    const accepted: Array<Record<string, string>> = [
      {},
      { room: "" },
      { room: "lobby" },
      { room: "Zoë.chat" },
      { nick: " ann " },
      { since: "not a number" },
      { resume: "x".repeat(5000) },
    ];
    for (const query of accepted) {
      expect([query, (await upgradeRequest(srv.url, { v: "2", ...query })).status]).toEqual([query, 101]);
    }
  });

  it("applies the Origin check as v1 does", async () => {
    const srv = startTestServer({ IDENTITY_SECRET });
    const answer = await upgradeRequest(srv.url, { v: "2" }, { Origin: "http://evil.example" });
    expect([answer.status, answer.body?.error]).toEqual([403, "forbidden"]);
    expect((await upgradeRequest(srv.url, { v: "2" }, { Origin: `http://${srv.url.host}` })).status).toBe(
      101,
    );
  });

  it("applies the connect rate per address as v1 does", async () => {
    const srv = startTestServer({ IDENTITY_SECRET, CONNECT_RATE_PER_IP: "1", CONNECT_BURST_PER_IP: "2" });
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++)
      statuses.push((await upgradeRequest(srv.url, { v: i % 2 ? "2" : "1" })).status);
    expect(statuses.slice(0, 2)).toEqual([101, 101]);
    expect(statuses.slice(2)).toContain(429);
  });
});

describe("identity tokens refused before the upgrade", () => {
  it("refuses forged, truncated, another key's and malformed identity tokens with 401 (IDENTITY_SECRET)", async () => {
    const srv = startTestServer({ IDENTITY_SECRET });
    const mine = new IdentitySigner(IDENTITY_SECRET).mint();
    const [userId, sig] = mine.identityToken.split(".") as [string, string];
    const flip = (s: string, i: number) => s.slice(0, i) + (s[i] === "A" ? "B" : "A") + s.slice(i + 1);
    const cases: Array<[string, string]> = [
      ["signature changed", `${userId}.${flip(sig, 10)}`],
      ["id changed", `${flip(userId, 3)}.${sig}`],
      ["truncated", mine.identityToken.slice(0, -1)],
      ["signature removed", `${userId}.`],
      ["id only", userId],
      ["extended", `${mine.identityToken}x`],
      ["another key's", new IdentitySigner("some-other-secret-0123456789").tokenFor(userId)],
      ["garbage", "garbage"],
      ["very long", "A".repeat(4000)],
    ];
    const answers: Array<[string, number, string | undefined]> = [];
    for (const [name, identity] of cases) {
      const answer = await upgradeRequest(srv.url, { v: "2", room: "r", identity });
      answers.push([name, answer.status, answer.body?.error]);
      expect(typeof answer.body?.message).toBe("string");
    }
    expect(answers).toEqual(cases.map(([name]) => [name, 401, "unauthorized"]));
    expect(srv.hub.connectionCount).toBe(0);
  });

  it("refuses a well-signed token of a user the server never made with 401 [needs the core's userExists]", async () => {
    const srv = startTestServer({ IDENTITY_SECRET });
    await srv.ready;
    const stranger = new IdentitySigner(IDENTITY_SECRET).mint();
    const answer = await upgradeRequest(srv.url, { v: "2", identity: stranger.identityToken });
    expect([answer.status, answer.body?.error]).toEqual([401, "unauthorized"]);
  });
});

describe.each(engines)("v2 users over %s", (_name, engineOf) => {
  it("mints a user with an identity token, and the token brings the same user back (no new token)", async () => {
    const srv = startTestServerOn(engineOf());
    await srv.ready;
    const [first, welcome] = await connectV2(srv.url, { room: "lobby", nick: "ann" });
    expect(welcome.protocol).toBe(2);
    expect(welcome.user.userId).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(welcome.user.nick).toBe("ann");
    const token = welcome.identityToken as string;
    expect(token).toMatch(new RegExp(`^${welcome.user.userId}\\.[A-Za-z0-9_-]{43}$`));
    // room= adds the room: in the welcome's rooms, or announced by a `joined` right after it.
    if (welcome.rooms.length === 0) expect((await first.first("joined")).room).toBe("lobby");
    else expect(welcome.rooms.map((r) => r.room)).toEqual(["lobby"]);
    await first.close();

    const [, again] = await connectV2(srv.url, { identity: token });
    expect(again.user).toEqual(welcome.user);
    expect(again.identityToken).toBeUndefined();
    expect(again.rooms.map((r) => r.room)).toEqual(["lobby"]);
    // Each connection without a token is a new user.
    const [, other] = await connectV2(srv.url);
    expect(other.user.userId).not.toBe(welcome.user.userId);
    expect(other.identityToken).toBeDefined();
  });

  it("signs with the engine's stored key: a token outlives a restart on the same storage", async () => {
    const dbPath = `/tmp/upgrade-v2-${process.pid}-${Date.now()}-${_name}.db`;
    const first = startTestServerOn(engineOf(), { DB_PATH: dbPath });
    await first.ready;
    const [client, welcome] = await connectV2(first.url, { room: "lobby" });
    await client.close();
    await first.stop();
    const second = startTestServerOn(engineOf(), { DB_PATH: dbPath });
    await second.ready;
    try {
      const [, again] = await connectV2(second.url, { identity: welcome.identityToken as string });
      expect(again.user.userId).toBe(welcome.user.userId);
    } finally {
      await second.stop();
      for (const suffix of ["", "-wal", "-shm"]) rmSync(`${dbPath}${suffix}`, { force: true });
    }
  });

  it("refuses a revoked user's token with 401 and closes its live connections", async () => {
    const srv = startTestServerOn(engineOf(), { ADMIN_TOKEN: ADMIN });
    await srv.ready;
    const [live, welcome] = await connectV2(srv.url, { room: "lobby" });
    const token = welcome.identityToken as string;
    const revoke = () =>
      fetch(new URL(`/api/identities/${welcome.user.userId}`, srv.url), {
        method: "DELETE",
        headers: { Authorization: `Bearer ${ADMIN}` },
      });
    expect((await revoke()).status).toBe(204);
    await Promise.race([live.closed, Bun.sleep(3000)]);
    expect(live.closeCode).toBeDefined();
    const answer = await upgradeRequest(srv.url, { v: "2", identity: token });
    expect([answer.status, answer.body?.error]).toEqual([401, "unauthorized"]);
    expect((await revoke()).status).toBe(404);
  });

  it("with AUTH_SECRET: requires the access token; the user is its sub, else its nick; no identity token", async () => {
    const srv = startTestServerOn(engineOf(), { AUTH_SECRET: SECRET });
    await srv.ready;
    const authority = new TokenAuthority(SECRET);
    const exp = inAnHour();
    expect((await upgradeRequest(srv.url, { v: "2" })).status).toBe(401);
    // An identity token is no way in when access tokens are required.
    const identity = new IdentitySigner(IDENTITY_SECRET).mint().identityToken;
    expect((await upgradeRequest(srv.url, { v: "2", identity })).status).toBe(401);
    for (const sub of ["", "x".repeat(129), 7]) {
      const token = await authority.sign({ nick: "ann", exp, sub: sub as unknown as string });
      const answer = await upgradeRequest(srv.url, { v: "2", token });
      expect([sub, answer.status, answer.body?.error]).toEqual([sub, 401, "unauthorized"]);
    }
    const [, bySub] = await connectV2(srv.url, {
      room: "r",
      nick: "ignored",
      token: await authority.sign({ nick: "ann", exp, sub: "auth0|ann" }),
    });
    expect(bySub.user).toEqual({ userId: "auth0|ann", nick: "ann" });
    expect(bySub.identityToken).toBeUndefined();
    const [, byNick] = await connectV2(srv.url, {
      room: "r",
      token: await authority.sign({ nick: "bob", exp }),
    });
    expect(byNick.user).toEqual({ userId: "bob", nick: "bob" });
  });

  it("counts v2 connections in the per-address limit, as v1's", async () => {
    const srv = startTestServerOn(engineOf(), { MAX_CONNECTIONS_PER_IP: "2" });
    await srv.ready;
    await connectV2(srv.url);
    await connect(srv.url, { room: "r" });
    for (const v of ["1", "2"]) {
      const answer = await upgradeRequest(srv.url, { v });
      expect([v, answer.status, answer.body?.error]).toEqual([v, 503, "server_busy"]);
    }
  });

  it("never logs an identity token, even at debug level", async () => {
    const lines: string[] = [];
    const srv = startTestServerOn(
      engineOf(),
      { LOG_LEVEL: "debug", ADMIN_TOKEN: ADMIN },
      { log: jsonLogger("debug", (l) => lines.push(l)) },
    );
    await srv.ready;
    const [a, welcome] = await connectV2(srv.url, { room: "r" });
    const token = welcome.identityToken as string;
    await a.close();
    await connectV2(srv.url, { identity: token });
    await upgradeRequest(srv.url, { v: "2", identity: `${token}x` });
    await fetch(new URL(`/api/identities/${welcome.user.userId}`, srv.url), {
      method: "DELETE",
      headers: { Authorization: `Bearer ${ADMIN}` },
    });
    await upgradeRequest(srv.url, { v: "2", identity: token });
    expect(lines.length).toBeGreaterThan(3);
    const sig = token.split(".")[1] as string;
    expect(lines.filter((l) => l.includes(sig) || l.includes(ADMIN))).toEqual([]);
  });
});

describe("v1 is unchanged", () => {
  it("a v1 welcome (no v, or v=1) is v1's, whatever v2 parameters come along", async () => {
    const srv = startTestServer({ IDENTITY_SECRET });
    const plain = await connect(srv.url, { room: "r", nick: "ann" });
    expect(plain.welcome.protocol).toBe(1);
    expect(Object.keys(plain.welcome).sort()).toEqual(
      [
        "type",
        "protocol",
        "connectionId",
        "room",
        "nick",
        "users",
        "history",
        "historyTruncated",
        "lastSeq",
        "resumeToken",
        ...("epoch" in plain.welcome ? ["epoch"] : []),
      ].sort(),
    );
    const url = new URL(`ws://${srv.url.host}/ws?v=1&room=r&nick=bob&identity=whatever`);
    const ws = new WebSocket(url);
    const first = await new Promise<string>((resolve, reject) => {
      ws.addEventListener("message", (ev) => resolve(String(ev.data)), { once: true });
      ws.addEventListener("close", () => reject(new Error("closed before a welcome")), { once: true });
    });
    ws.close();
    const welcome = JSON.parse(first);
    expect(welcome.type).toBe("welcome");
    expect(welcome.protocol).toBe(1);
    expect(welcome.nick).toBe("bob");
    expect(welcome.user).toBeUndefined();
    expect(welcome.identityToken).toBeUndefined();
    // since and resume still work under v=1.
    plain.send({ type: "chat", text: "one", id: "1" });
    await plain.next("ack");
    const again = await connect(srv.url, { room: "r", since: 0, resume: plain.welcome.resumeToken });
    expect(again.welcome.nick).toBe("ann");
    expect(again.welcome.history.map((m) => m.text)).toEqual(["one"]);
  });

  it("v1's refusals are unchanged: bad since, bad room, missing access token", async () => {
    const srv = startTestServer({ AUTH_SECRET: SECRET });
    expect((await upgradeRequest(srv.url, { room: "r", since: "x" })).body?.error).toBe("bad_request");
    expect((await upgradeRequest(srv.url, { room: "bad room" })).body?.error).toBe("room_invalid");
    expect((await upgradeRequest(srv.url, { room: "r" })).body?.error).toBe("unauthorized");
    const token = await new TokenAuthority(SECRET).sign({ nick: "ann", exp: inAnHour(), sub: "", mod: true });
    // A sub v2 would refuse is nothing to v1.
    expect((await upgradeRequest(srv.url, { room: "r", token })).status).toBe(101);
  });
});

describe("bans before a v1 upgrade", () => {
  it("asks the core about the nickname (the token's when there is one), and never about a guest", async () => {
    const srv = startTestServer({ AUTH_SECRET: SECRET });
    await srv.ready;
    const asked: Array<[string, string]> = [];
    srv.hub.isBanned = async (room, nick) => {
      asked.push([room, nick]);
      return nick === "bob";
    };
    const authority = new TokenAuthority(SECRET);
    const bob = await authority.sign({ nick: "bob", exp: inAnHour() });
    const answer = await upgradeRequest(srv.url, { room: "lobby", nick: "ann", token: bob });
    expect([answer.status, answer.body?.error]).toEqual([403, "forbidden"]);
    expect(answer.body?.message).toMatch(/banned/);
    const ann = await authority.sign({ nick: "ann", exp: inAnHour() });
    expect((await upgradeRequest(srv.url, { room: "dev", token: ann })).status).toBe(101);
    // Refused before anything costly: a bad room or token is not looked up.
    expect((await upgradeRequest(srv.url, { room: "bad room", token: bob })).status).toBe(400);
    expect((await upgradeRequest(srv.url, { room: "lobby", token: "x" })).status).toBe(401);
    // v2 upgrades are not held out before the upgrade (their join is refused instead).
    expect((await upgradeRequest(srv.url, { v: "2", room: "lobby", token: bob })).status).toBe(101);
    expect(asked).toEqual([
      ["lobby", "bob"],
      ["dev", "ann"],
    ]);
    const open = startTestServer();
    await open.ready;
    open.hub.isBanned = async (room, nick) => {
      asked.push([room, nick]);
      return true;
    };
    const guest = await connect(open.url, { room: "lobby" });
    expect(guest.welcome.nick).toMatch(/^guest-/);
    expect(asked.length).toBe(2);
  });

  it("closes the socket with 1011 when the ban check fails, and lets no one in unchecked", async () => {
    const srv = startTestServer({ MAX_CONNECTIONS_PER_IP: "1" });
    await srv.ready;
    srv.hub.isBanned = async () => {
      throw new Error("the store is down");
    };
    const client = new TestClient(connectUrl(srv.url, { room: "lobby", nick: "bob" }));
    expect(await client.closed).toBe(1011);
    expect(client.received).toEqual([]);
    expect(srv.hub.connectionCount).toBe(0);
    // The per-address slot it held is given back.
    const again = await connect(srv.url, { room: "lobby" });
    expect(again.welcome.nick).toMatch(/^guest-/);
  });
});
