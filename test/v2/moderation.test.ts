/**
 * Moderation over real sockets, on both engines (shared/PROTOCOL.md, "Moderators", and the `kick` /
 * `ban` rows of "Client to server (v2)"): a moderator is a user whose access token carries
 * `"mod": true`. Its `kick` and `ban` reach every connection of the target with `kicked`, and the
 * target leaves the room (the others see one presence `leave`); anyone else's is `forbidden`, echoing
 * the request's id. A ban holds the user out by every way back: `join`, `room=` on reconnect, another
 * tab, the same user under another nickname, a v1 connection with its nickname (403 before the
 * upgrade); a timed ban ends by itself and the admin API lifts one. A kicked v1 connection is closed
 * with 4003.
 */
import { afterEach, describe, expect, it } from "bun:test";
import { nickKey, v2 } from "../../protocol";
import { TokenAuthority } from "../../server/auth";
import { upgradeRequest } from "../support/http-upgrade";
import { closeAllClients, connect } from "../support/test-client";
import { testEngines } from "../support/test-engines";
import { startTestServerOn, stopAllServers } from "../support/test-server";
import { closeAllV2Clients, connectV2, type Of, type V2Client } from "../support/v2-client";

const SECRET = "moderation-access-secret-0123456789";
const ADMIN = "moderation-admin-token-0123456789";
const authority = new TokenAuthority(SECRET);

const engines = testEngines();

afterEach(async () => {
  const bad = await closeAllV2Clients();
  await closeAllClients();
  await stopAllServers();
  if (bad.length > 0) throw new Error(`server sent ${bad.length} undecodable v2 frames, first: ${bad[0]}`);
});

/** An access token for `nick`; the user is `u-NICK` unless `sub` says otherwise. */
function tokenFor(nick: string, extra: { mod?: boolean; sub?: string } = {}): Promise<string> {
  return authority.sign({
    nick,
    exp: Math.floor(Date.now() / 1000) + 3600,
    sub: extra.sub ?? `u-${nick}`,
    ...(extra.mod === undefined ? {} : { mod: extra.mod }),
  });
}

const isError =
  (code: string, id?: string) =>
  (m: v2.ServerMessageV2): m is Of<"error"> =>
    m.type === "error" && m.code === code && (id === undefined || m.id === id);

const isLeave =
  (room: string, nick: string) =>
  (m: v2.ServerMessageV2): m is Of<"presence"> =>
    m.type === "presence" && m.room === room && m.events.some((e) => e.event === "leave" && e.nick === nick);

const isArrival =
  (room: string, nick: string) =>
  (m: v2.ServerMessageV2): m is Of<"presence"> =>
    m.type === "presence" && m.room === room && m.events.some((e) => e.event === "join" && e.nick === nick);

const isKicked =
  (room: string) =>
  (m: v2.ServerMessageV2): m is Of<"kicked"> =>
    m.type === "kicked" && m.room === room;

const isJoined =
  (room: string) =>
  (m: v2.ServerMessageV2): m is Of<"joined"> =>
    m.type === "joined" && m.room === room;

/** How many `leave` events for `nick` in `room` the client saw. */
function leavesOf(c: V2Client, room: string, nick: string): number {
  return c.received
    .filter((m): m is Of<"presence"> => m.type === "presence" && m.room === room)
    .flatMap((m) => m.events)
    .filter((e) => e.event === "leave" && e.nick === nick).length;
}

describe.each(engines)("moderation over %s", (_name, engineOf) => {
  async function server() {
    const srv = startTestServerOn(engineOf(), { AUTH_SECRET: SECRET, ADMIN_TOKEN: ADMIN });
    await srv.ready;
    return srv;
  }

  /** A connection of `nick`'s user (its token given or made) in `room`, once the room is its. */
  async function member(url: URL, nick: string, options: { mod?: boolean; token?: string } = {}) {
    const token = options.token ?? (await tokenFor(nick, { mod: options.mod }));
    const [c, welcome] = await connectV2(url, { token, room: "lobby" });
    if (!welcome.rooms.some((r) => r.room === "lobby")) await c.until(isJoined("lobby"));
    return { c, token, userId: welcome.user.userId };
  }

  /** What a v1 upgrade as `nick` (its access token) into `room` is answered. */
  async function v1Upgrade(url: URL, nick: string, room = "lobby") {
    return upgradeRequest(url, { room, token: await tokenFor(nick) });
  }

  async function unban(url: URL, room: string, userId: string): Promise<number> {
    const res = await fetch(new URL(`/api/rooms/${room}/bans/${encodeURIComponent(userId)}`, url), {
      method: "DELETE",
      headers: { Authorization: `Bearer ${ADMIN}` },
    });
    await res.arrayBuffer();
    return res.status;
  }

  it("a moderator's kick: every tab of the target gets kicked and leaves; the others see one leave", async () => {
    const srv = await server();
    const mia = await member(srv.url, "mia", { mod: true });
    const ann = await member(srv.url, "ann");
    const bob = await member(srv.url, "bob");
    const [bobTab] = await connectV2(srv.url, { token: bob.token });
    await ann.c.until(isArrival("lobby", "bob"));

    mia.c.send({ type: "kick", room: "lobby", nick: "bob", reason: "spam", id: "k1" });
    for (const tab of [bob.c, bobTab]) {
      expect(await tab.until(isKicked("lobby"))).toEqual({
        type: "kicked",
        room: "lobby",
        by: "mia",
        reason: "spam",
      });
    }
    await ann.c.until(isLeave("lobby", "bob"));
    await mia.c.until(isLeave("lobby", "bob"));
    const who = await ann.c.ask({ type: "who", room: "lobby" });
    expect(who).toMatchObject({ type: "users", room: "lobby", users: ["ann", "mia"] });
    expect(leavesOf(ann.c, "lobby", "bob")).toBe(1);
    expect(mia.c.received.filter(isError("forbidden"))).toEqual([]);

    // The room is no longer bob's, on either tab; the connections stay open.
    for (const tab of [bob.c, bobTab]) {
      const answer = await tab.ask({ type: "chat", room: "lobby", text: "still here?", id: "c1" });
      expect(answer).toMatchObject({ type: "error", code: "not_found", id: "c1" });
      expect(tab.closeCode).toBeUndefined();
    }
    // A kick is not a ban: bob may come back.
    expect(await bob.c.ask({ type: "join", room: "lobby" })).toMatchObject({ type: "joined", room: "lobby" });
    // Kicking someone who is not in the room finds no one.
    const nobody = await mia.c.ask({ type: "kick", room: "lobby", nick: "nobody", id: "k2" });
    expect(nobody).toMatchObject({ type: "error", code: "not_found", id: "k2" });
  });

  it("a kick or ban by a user who is no moderator is forbidden, echoing its id, and changes nothing", async () => {
    const srv = await server();
    const ann = await member(srv.url, "ann", { mod: false });
    const eve = await member(srv.url, "eve");
    const bob = await member(srv.url, "bob");
    const requests: v2.ClientMessageV2[] = [
      { type: "kick", room: "lobby", nick: "bob", id: "x1" },
      { type: "kick", room: "lobby", nick: "bob", reason: "because", id: "x2" },
      { type: "ban", room: "lobby", nick: "bob", id: "x3" },
      { type: "ban", room: "lobby", nick: "bob", seconds: 60, reason: "because", id: "x4" },
    ];
    for (const [who, request] of [ann, eve].flatMap((u) => requests.map((r) => [u, r] as const))) {
      const answer = await who.c.ask(request);
      expect(answer).toMatchObject({ type: "error", code: "forbidden", id: request.id });
    }
    const users = await bob.c.ask({ type: "who", room: "lobby" });
    expect(users).toMatchObject({ type: "users", users: ["ann", "bob", "eve"] });
    expect(bob.c.received.filter(isKicked("lobby"))).toEqual([]);
    expect(await bob.c.ask({ type: "chat", room: "lobby", text: "fine", id: "c1" })).toMatchObject({
      type: "ack",
      id: "c1",
    });
    expect((await v1Upgrade(srv.url, "bob")).status).toBe(101);
  });

  it("a ban holds the user out by every way back: join, room=, another tab, another nick, v1", async () => {
    const srv = await server();
    const mia = await member(srv.url, "mia", { mod: true });
    const ann = await member(srv.url, "ann");
    const bob = await member(srv.url, "bob");

    mia.c.send({ type: "ban", room: "lobby", nick: "bob", reason: "flood", id: "b1" });
    const kicked = await bob.c.until(isKicked("lobby"));
    expect(kicked).toEqual({ type: "kicked", room: "lobby", by: "mia", reason: "flood" });
    await ann.c.until(isLeave("lobby", "bob"));

    // join, on the connection that was kicked.
    expect(await bob.c.ask({ type: "join", room: "lobby", id: "j1" })).toMatchObject({
      type: "error",
      code: "forbidden",
      id: "j1",
    });
    // A reconnect with room=: the welcome does not list the room, and the join after it is forbidden.
    const [again, welcome] = await connectV2(srv.url, { token: bob.token, room: "lobby" });
    expect(welcome.rooms.map((r) => r.room)).not.toContain("lobby");
    await again.until(isError("forbidden"));
    // Another tab, without room=.
    const [tab, tabWelcome] = await connectV2(srv.url, { token: bob.token });
    expect(tabWelcome.rooms.map((r) => r.room)).not.toContain("lobby");
    expect(await tab.ask({ type: "join", room: "lobby", id: "j2" })).toMatchObject({
      code: "forbidden",
      id: "j2",
    });
    // The same user under another nickname (its token's sub is what it is).
    const renamed = await tokenFor("robert", { sub: bob.userId });
    const [robert, robertWelcome] = await connectV2(srv.url, { token: renamed, room: "lobby" });
    expect(robertWelcome.user).toEqual({ userId: bob.userId, nick: "robert" });
    expect(robertWelcome.rooms.map((r) => r.room)).not.toContain("lobby");
    await robert.until(isError("forbidden"));
    // A v1 connection with the nickname, however it is written: 403 before the upgrade.
    for (const nick of ["bob", "Bob", "BOB"]) {
      const answer = await v1Upgrade(srv.url, nick);
      expect([nick, answer.status, answer.body?.error]).toEqual([nick, 403, "forbidden"]);
      expect(answer.body?.message).toMatch(/banned/);
    }
    expect(bob.c.received.filter(isJoined("lobby")).length).toBe(1);
    for (const c of [again, tab, robert]) expect(c.received.filter(isJoined("lobby"))).toEqual([]);

    // Nobody got in: the room is ann and mia; and a ban is of one room only.
    expect(await ann.c.ask({ type: "who", room: "lobby" })).toMatchObject({ users: ["ann", "mia"] });
    expect(leavesOf(ann.c, "lobby", "bob")).toBe(1);
    expect(await bob.c.ask({ type: "join", room: "dev" })).toMatchObject({ type: "joined", room: "dev" });
    expect((await v1Upgrade(srv.url, "bob", "dev")).status).toBe(101);
    // Another user is not held out by bob's ban.
    expect((await v1Upgrade(srv.url, "carl")).status).toBe(101);
  });

  it("a kicked v1 connection is closed with 4003; a banned v1 nickname is refused until unbanned", async () => {
    const srv = await server();
    const mia = await member(srv.url, "mia", { mod: true });
    const carl = await connect(srv.url, { room: "lobby", token: await tokenFor("carl") });
    await mia.c.until(isArrival("lobby", "carl"));

    mia.c.send({ type: "kick", room: "lobby", nick: "carl", reason: "spam" });
    expect(await carl.closing()).toBe(v2.CLOSE_V2.kicked);
    await mia.c.until(isLeave("lobby", "carl"));

    // A kick is not a ban.
    const back = await connect(srv.url, { room: "lobby", token: await tokenFor("carl") });
    expect(back.welcome.nick).toBe("carl");
    mia.c.send({ type: "ban", room: "lobby", nick: "carl" });
    expect(await back.closing()).toBe(v2.CLOSE_V2.kicked);
    const refused = await v1Upgrade(srv.url, "carl");
    expect([refused.status, refused.body?.error]).toEqual([403, "forbidden"]);
    expect(refused.body?.message).toMatch(/banned/);

    // A v1 nickname's ban is lifted by `v1:NICKKEY`.
    expect(await unban(srv.url, "lobby", `v1:${nickKey("carl")}`)).toBe(204);
    expect((await v1Upgrade(srv.url, "carl")).status).toBe(101);
    expect(await unban(srv.url, "lobby", `v1:${nickKey("carl")}`)).toBe(404);
  });

  it("a timed ban ends by itself: kicked carries its end, and once past it the user comes back", async () => {
    const srv = await server();
    const mia = await member(srv.url, "mia", { mod: true });
    const bob = await member(srv.url, "bob");
    const before = Date.now();
    mia.c.send({ type: "ban", room: "lobby", nick: "bob", seconds: 1 });
    const kicked = await bob.c.until(isKicked("lobby"));
    expect(kicked).toMatchObject({ room: "lobby", by: "mia" });
    const until = Date.parse(kicked.until as string);
    expect(until).toBeGreaterThanOrEqual(before + 1000 - 50);
    expect(until).toBeLessThanOrEqual(Date.now() + 1000 + 50);
    expect(kicked.until).toBe(new Date(until).toISOString());

    expect(await bob.c.ask({ type: "join", room: "lobby" })).toMatchObject({ code: "forbidden" });
    expect((await v1Upgrade(srv.url, "bob")).status).toBe(403);

    await Bun.sleep(Math.max(0, until - Date.now()) + 100);
    expect(await bob.c.ask({ type: "join", room: "lobby" })).toMatchObject({ type: "joined", room: "lobby" });
    expect((await v1Upgrade(srv.url, "bob")).status).toBe(101);
  });

  it("DELETE /api/rooms/:room/bans/:userId lifts a moderator's ban: the user and its nickname come back", async () => {
    const srv = await server();
    const mia = await member(srv.url, "mia", { mod: true });
    const bob = await member(srv.url, "bob");
    mia.c.send({ type: "ban", room: "lobby", nick: "bob", reason: "flood" });
    await bob.c.until(isKicked("lobby"));
    expect(await bob.c.ask({ type: "join", room: "lobby" })).toMatchObject({ code: "forbidden" });

    expect(await unban(srv.url, "lobby", bob.userId)).toBe(204);
    expect(await bob.c.ask({ type: "join", room: "lobby" })).toMatchObject({ type: "joined", room: "lobby" });
    await mia.c.until(isArrival("lobby", "bob"), 1);
    const [tab, welcome] = await connectV2(srv.url, { token: bob.token });
    expect(welcome.rooms.map((r) => r.room)).toContain("lobby");
    await tab.close();
    expect((await v1Upgrade(srv.url, "bob")).status).toBe(101);
    // Lifted once: there is no ban left to lift, nor one in another room.
    expect(await unban(srv.url, "lobby", bob.userId)).toBe(404);
    expect(await unban(srv.url, "dev", bob.userId)).toBe(404);
  });
});
