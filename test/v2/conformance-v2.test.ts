/**
 * Conformance of protocol v2, part 1 (shared/PROTOCOL.md, "Users", "Rooms on one connection" and the
 * matching rows) over real sockets, on both engines and on the Deno entry: welcome, joined/parted, posts as v2 and v1 see
 * them, mentions, sync, history, who, typing, read markers, renames, direct rooms, and the typed
 * refusals that change nothing.
 */
import { afterEach, describe, expect, it } from "bun:test";
import { onBun, onDeno, type ServerFactory, stopDenoServers } from "../support/server-targets";
import { closeAllClients, connect } from "../support/test-client";
import { testEngines } from "../support/test-engines";
import { stopAllServers } from "../support/test-server";
import { closeAllV2Clients, connectV2, type Of, type V2Client } from "../support/v2-client";

const targets: Array<[string, ServerFactory]> = [
  ...testEngines().map(([name, engineOf]): [string, ServerFactory] => [name, onBun(engineOf)]),
  // server.deno.ts as a child process: the local engine on node:sqlite, fan-out by its topic map.
  ["deno", onDeno],
];
afterEach(async () => {
  const bad = await closeAllV2Clients();
  await closeAllClients();
  await stopAllServers();
  await stopDenoServers();
  if (bad.length > 0) throw new Error(`server sent ${bad.length} undecodable v2 frames, first: ${bad[0]}`);
});

const isType =
  <K extends Of<"welcome">["type"] | string>(type: K) =>
  (m: { type: string }): m is never =>
    m.type === type;

describe.each(targets)("v2 conformance over %s", (_name, server) => {
  /** A user that joined `room`, with its identity token for more tabs. */
  async function user(
    url: URL,
    nick: string,
    room = "lobby",
  ): Promise<{ c: V2Client; token: string; id: string }> {
    const [c, w] = await connectV2(url, { nick, room });
    await c.first("joined");
    return { c, token: w.identityToken as string, id: w.user.userId };
  }

  it("welcome: protocol 2, the user, a minted identity once, and the user's rooms as RoomStates", async () => {
    const srv = await server();
    const [c, w] = await connectV2(srv.url, { nick: "ann" });
    expect(w).toMatchObject({ type: "welcome", protocol: 2, user: { nick: "ann" }, rooms: [] });
    expect(w.identityToken?.startsWith(`${w.user.userId}.`)).toBe(true);
    expect((await c.ask({ type: "join", room: "lobby" })).type).toBe("joined");
    const [again, w2] = await connectV2(srv.url, { identity: w.identityToken as string });
    expect(w2.identityToken).toBeUndefined();
    expect(w2.user).toEqual(w.user);
    expect(w2.rooms).toEqual([
      {
        room: "lobby",
        topic: "",
        users: ["ann"],
        lastSeq: 0,
        lastRev: 0,
        readSeq: 0,
        unread: 0,
        mentions: 0,
        ...epochOf(w2),
      },
    ]);
    await again.close();
  });

  it("room= adds the room: joined follows the welcome, and the room is the user's from then on", async () => {
    const srv = await server();
    const [c, w] = await connectV2(srv.url, { nick: "ann", room: "lobby" });
    const joined = await c.first("joined");
    expect(joined).toMatchObject({ room: "lobby", users: ["ann"], lastSeq: 0, unread: 0, mentions: 0 });
    const [, w2] = await connectV2(srv.url, { identity: w.identityToken as string });
    expect(w2.rooms.map((r) => r.room)).toEqual(["lobby"]);
  });

  it("posts: v2 sees userId, kind, replyTo and mentions; v1 sees v1 exactly, an action as /me", async () => {
    const srv = await server();
    const ann = await user(srv.url, "ann");
    const bob = await user(srv.url, "bob");
    const old = await connect(srv.url, { room: "lobby", nick: "oldie" });
    ann.c.send({ type: "chat", room: "lobby", text: "hi @bob and @OLDIE, not @nobody", id: "a1" });
    expect(await ann.c.first("ack")).toEqual({ type: "ack", id: "a1", seq: 1 });
    bob.c.send({ type: "chat", room: "lobby", text: "waves", kind: "action", replyTo: 1 });
    const first = await bob.c.nth("chat", 0);
    expect(first).toMatchObject({ seq: 1, nick: "ann", userId: ann.id, mentions: ["bob", "oldie"] });
    const second = await ann.c.nth("chat", 1);
    expect(second).toMatchObject({
      seq: 2,
      nick: "bob",
      userId: bob.id,
      kind: "action",
      replyTo: 1,
      text: "waves",
    });
    expect(second).not.toHaveProperty("mentions");
    const v1 = await old.next("chat");
    expect(Object.keys(v1).sort()).toEqual(["nick", "room", "sentAt", "seq", "text", "type"]);
    const v1b = await old.next("chat");
    expect(v1b.text).toBe("/me waves");
    // v1's posts reach v2 under a user id no v2 user can have
    old.send({ type: "chat", text: "plain" });
    expect(await ann.c.nth("chat", 2)).toMatchObject({ seq: 3, nick: "oldie", userId: "v1:oldie" });
  });

  it("a replyTo that does not exist is not_found, and nothing is stored", async () => {
    const srv = await server();
    const ann = await user(srv.url, "ann");
    const answer = await ann.c.ask({ type: "chat", room: "lobby", text: "re", replyTo: 5, id: "r1" });
    expect(answer).toMatchObject({ type: "error", code: "not_found", id: "r1" });
    expect(await ann.c.ask({ type: "chat", room: "lobby", text: "ok", id: "r2" })).toEqual({
      type: "ack",
      id: "r2",
      seq: 1,
    });
  });

  it("two tabs of one user are one member: one join, both hear everything, the leave comes with the last", async () => {
    const srv = await server();
    const watcher = await connect(srv.url, { room: "lobby", nick: "watcher" });
    const ann = await user(srv.url, "ann");
    const [tab2] = await connectV2(srv.url, { identity: ann.token });
    const w = await tab2.first("welcome");
    expect(w.rooms[0]?.users).toEqual(["ann", "watcher"]);
    watcher.send({ type: "chat", text: "to both" });
    expect((await ann.c.first("chat")).text).toBe("to both");
    expect((await tab2.first("chat")).text).toBe("to both");
    await ann.c.close();
    watcher.send({ type: "who" });
    expect((await watcher.next("users")).users).toEqual(["ann", "watcher"]);
    await tab2.close();
    const leave = await watcher.waitFor("presence", (m) => m.events.some((e) => e.event === "leave"));
    expect(leave.events).toEqual([{ event: "leave", nick: "ann" }]);
  });

  it("read: forward only, clamped to lastSeq, sent to every tab, kept across connections", async () => {
    const srv = await server();
    const ann = await user(srv.url, "ann");
    const bob = await user(srv.url, "bob");
    for (let i = 1; i <= 3; i++)
      await bob.c.ask({ type: "chat", room: "lobby", text: `m${i} @ann`, id: `m${i}` });
    const [tab2] = await connectV2(srv.url, { identity: ann.token });
    const w = await tab2.first("welcome");
    expect(w.rooms[0]).toMatchObject({ lastSeq: 3, readSeq: 0, unread: 3, mentions: 3 });
    expect(await ann.c.ask({ type: "read", room: "lobby", seq: 2 })).toEqual({
      type: "read",
      room: "lobby",
      seq: 2,
    });
    expect(await tab2.first("read")).toEqual({ type: "read", room: "lobby", seq: 2 });
    expect(await ann.c.ask({ type: "read", room: "lobby", seq: 1 })).toEqual({
      type: "read",
      room: "lobby",
      seq: 2,
    });
    expect(await ann.c.ask({ type: "read", room: "lobby", seq: 99 })).toEqual({
      type: "read",
      room: "lobby",
      seq: 3,
    });
    const [, w3] = await connectV2(srv.url, { identity: ann.token });
    expect(w3.rooms[0]).toMatchObject({ readSeq: 3, unread: 0, mentions: 0 });
  });

  it("join, part and the room limit: typed refusals change nothing", async () => {
    const srv = await server({ MAX_ROOMS_PER_USER: "2" });
    const ann = await user(srv.url, "ann");
    expect(await ann.c.ask({ type: "join", room: "dev" })).toMatchObject({ type: "joined", room: "dev" });
    expect(await ann.c.ask({ type: "join", room: "ops", id: "j3" })).toMatchObject({
      type: "error",
      code: "forbidden",
      id: "j3",
    });
    expect(await ann.c.ask({ type: "part", room: "ops", id: "p0" })).toMatchObject({
      code: "not_found",
      id: "p0",
    });
    expect(await ann.c.ask({ type: "part", room: "dev" })).toEqual({ type: "parted", room: "dev" });
    expect(await ann.c.ask({ type: "chat", room: "dev", text: "x", id: "c" })).toMatchObject({
      code: "not_found",
      id: "c",
    });
    expect(await ann.c.ask({ type: "join", room: "ops" })).toMatchObject({ type: "joined", room: "ops" });
    const [, w] = await connectV2(srv.url, { identity: ann.token });
    expect(w.rooms.map((r) => r.room).sort()).toEqual(["lobby", "ops"]);
    // a joined room starts read: what was said before does not count
  });

  it("a room joined late starts with everything before it read", async () => {
    const srv = await server();
    const bob = await user(srv.url, "bob");
    await bob.c.ask({ type: "chat", room: "lobby", text: "before", id: "b" });
    const ann = await user(srv.url, "ann");
    const joined = ann.c.received.find(isType("joined")) as unknown as Of<"joined">;
    expect(joined).toMatchObject({ lastSeq: 1, readSeq: 1, unread: 0 });
  });

  it("nick: renames the user in every room and every tab; taken anywhere is nick_taken", async () => {
    const srv = await server();
    const ann = await user(srv.url, "ann");
    await ann.c.ask({ type: "join", room: "dev" });
    const [tab2] = await connectV2(srv.url, { identity: ann.token });
    await tab2.first("welcome");
    await connect(srv.url, { room: "dev", nick: "zed" });
    expect(await ann.c.ask({ type: "nick", nick: "ZED", id: "n1" })).toMatchObject({
      code: "nick_taken",
      id: "n1",
    });
    ann.c.send({ type: "nick", nick: "anna" });
    const renames = await Promise.all(
      ["lobby", "dev"].map((room) =>
        tab2.until(
          (m): m is Of<"presence"> =>
            m.type === "presence" && m.room === room && m.events.some((e) => e.event === "nick"),
        ),
      ),
    );
    expect(renames.map((r) => r.events)).toEqual([
      [{ event: "nick", from: "ann", nick: "anna" }],
      [{ event: "nick", from: "ann", nick: "anna" }],
    ]);
    const [, w] = await connectV2(srv.url, { identity: ann.token });
    expect(w.user.nick).toBe("anna");
  });

  it("dm: a direct room for two, joined by both users' tabs, closed to everyone else", async () => {
    const srv = await server();
    const ann = await user(srv.url, "ann");
    const bob = await user(srv.url, "bob");
    const cat = await user(srv.url, "cat", "elsewhere");
    expect(await ann.c.ask({ type: "dm", nick: "cat", id: "d0" })).toMatchObject({
      code: "not_found",
      id: "d0",
    });
    const joined = (await ann.c.ask({ type: "dm", nick: "bob" })) as Of<"joined">;
    expect(joined).toMatchObject({ type: "joined", dm: { nick: "bob" }, users: ["ann", "bob"] });
    expect(joined.room.startsWith("~")).toBe(true);
    const theirs = await bob.c.until((m): m is Of<"joined"> => m.type === "joined" && m.room === joined.room);
    expect(theirs.dm).toEqual({ nick: "ann" });
    expect(await ann.c.ask({ type: "dm", nick: "bob" })).toMatchObject({ type: "joined", room: joined.room });
    ann.c.send({ type: "chat", room: joined.room, text: "psst" });
    expect(
      await bob.c.until((m): m is Of<"chat"> => m.type === "chat" && m.room === joined.room),
    ).toMatchObject({ text: "psst" });
    expect(await cat.c.ask({ type: "join", room: joined.room, id: "x" })).toMatchObject({
      code: "not_found",
      id: "x",
    });
    const rooms = (await (await fetch(new URL("/api/rooms", srv.url))).json()) as Array<{ room: string }>;
    expect(rooms.map((r) => r.room)).not.toContain(joined.room);
    const [, w] = await connectV2(srv.url, { identity: bob.token });
    expect(w.rooms.find((r) => r.room === joined.room)).toMatchObject({ dm: { nick: "ann" }, unread: 1 });
  });

  it("sync: the posts after since, folded, meeting the live stream; history gives folded pages", async () => {
    const srv = await server();
    const ann = await user(srv.url, "ann");
    for (let i = 1; i <= 4; i++) await ann.c.ask({ type: "chat", room: "lobby", text: `m${i}`, id: `m${i}` });
    const sync = (await ann.c.ask({ type: "sync", room: "lobby", since: 2, sinceRev: 0 })) as Of<"sync">;
    expect(sync).toMatchObject({ type: "sync", room: "lobby", changes: [], truncated: false });
    expect(sync.posts.map((p) => [p.seq, p.text, p.userId])).toEqual([
      [3, "m3", ann.id],
      [4, "m4", ann.id],
    ]);
    expect(sync.posts[0]).not.toHaveProperty("type");
    const hist = (await ann.c.ask({ type: "history", room: "lobby", before: 4, limit: 2 })) as Of<"history">;
    expect(hist.messages.map((p) => p.seq)).toEqual([2, 3]);
    expect(hist.hasMore).toBe(true);
    expect(await ann.c.ask({ type: "sync", room: "nope", since: 0, sinceRev: 0, id: "s" })).toMatchObject({
      code: "not_found",
      id: "s",
    });
  });

  it("who and typing name the room; bad frames get typed errors and the connection stays", async () => {
    const srv = await server();
    const ann = await user(srv.url, "ann");
    const bob = await user(srv.url, "bob");
    expect(await ann.c.ask({ type: "who", room: "lobby" })).toEqual({
      type: "users",
      room: "lobby",
      users: ["ann", "bob"],
    });
    ann.c.send({ type: "typing", room: "lobby" });
    expect(await bob.c.first("typing")).toEqual({ type: "typing", room: "lobby", nick: "ann" });
    const raw = ann.c as unknown as { ws: WebSocket };
    raw.ws.send("{nope");
    expect((await ann.c.first("error")).code).toBe("bad_json");
    raw.ws.send(JSON.stringify({ type: "chat", text: "no room" }));
    expect((await ann.c.nth("error", 1)).code).toBe("bad_message");
    expect(await ann.c.ask({ type: "who", room: "lobby" })).toMatchObject({ type: "users" });
  });
});

function epochOf(w: Of<"welcome">): { epoch?: string } {
  const e = w.rooms[0]?.epoch;
  return e === undefined ? {} : { epoch: e };
}
