/** v2 in the core, over the local engine on a fake network: users, rooms, presence per user, read markers. */
import { describe, expect, test } from "bun:test";
import type { Connection } from "../../server/chat/connection";
import { FakeNet, type FakePeer } from "../support/fake-net";
import { localHub } from "../support/hubs";

function setup() {
  const net = new FakeNet();
  const hub = localHub({ fanout: net });
  const settle = () => {
    for (let i = 0; i < 5; i++) hub.flush();
  };
  const open = (
    userId: string,
    o: { nick?: string; room?: string; minted?: boolean; mod?: boolean } = {},
  ) => {
    const peer = net.peer(2);
    const conn = hub.open(peer, {
      room: "",
      v2: {
        userId,
        mod: o.mod ?? false,
        nick: o.nick,
        room: o.room,
        identityToken: o.minted === false ? undefined : `${userId}.sig`,
      },
    });
    peer.onClose = (code) => hub.close(conn, code);
    settle();
    return { peer, conn };
  };
  const v1 = (room: string, nick: string) => {
    const peer = net.peer(1);
    const conn = hub.open(peer, { room, nick });
    peer.onClose = (code) => hub.close(conn, code);
    settle();
    return { peer, conn };
  };
  const send = (c: { conn: Connection }, msg: object) => {
    hub.receive(c.conn, JSON.stringify(msg));
    settle();
  };
  return { hub, net, open, v1, send, settle };
}

const types = (p: FakePeer) => p.inbox2.map((m) => m.type);
const last = <T extends string>(p: FakePeer, type: T) =>
  p.inbox2.filter((m) => m.type === type).at(-1) as Extract<FakePeer["inbox2"][number], { type: T }>;

describe("v2 over the local engine", () => {
  test("a new user gets a welcome with its room, and a second tab is the same member", () => {
    const { open, v1 } = setup();
    const watcher = v1("lobby", "watcher");
    const a = open("u1", { nick: "ann", room: "lobby" });
    expect(types(a.peer)[0]).toBe("welcome");
    const w = last(a.peer, "welcome");
    expect(w.user).toEqual({ userId: "u1", nick: "ann" });
    // room= joins after the welcome
    const joined = last(a.peer, "joined");
    expect(joined.room).toBe("lobby");
    expect(joined.users).toEqual(["ann", "watcher"]);
    const b = open("u1", { minted: false });
    const wb = last(b.peer, "welcome");
    expect(wb.rooms.map((r) => r.room)).toEqual(["lobby"]);
    expect(wb.rooms[0]?.users).toEqual(["ann", "watcher"]);
    const joins = watcher.peer.inbox.filter((m) => m.type === "presence");
    expect(joins.length).toBe(1);
  });
});

describe("v2 rooms, posts and markers", () => {
  test("posts reach v1 and v2 in their own shapes; counts and mentions are exact", () => {
    const { open, v1, send } = setup();
    const old = v1("lobby", "oldie");
    const ann = open("u1", { nick: "ann", room: "lobby" });
    const bob = open("u2", { nick: "bob", room: "lobby" });
    send(ann, { type: "chat", room: "lobby", text: "hi @bob and @oldie", id: "m1" });
    send(old, { type: "chat", text: "hello" });
    const chat = last(bob.peer, "chat");
    expect(chat).toMatchObject({ room: "lobby", seq: 2, nick: "oldie", userId: "v1:oldie" });
    const first = bob.peer.inbox2.find((m) => m.type === "chat");
    expect(first).toMatchObject({ seq: 1, userId: "u1", mentions: ["bob", "oldie"] });
    const v1chat = old.peer.inbox.find((m) => m.type === "chat");
    expect(Object.keys(v1chat ?? {}).sort()).toEqual(["nick", "room", "sentAt", "seq", "text", "type"]);
    expect(last(ann.peer, "ack")).toEqual({ type: "ack", id: "m1", seq: 1 });
    // bob comes back in a new tab: 2 unread (one by ann mentioning him, one by oldie), 1 mention
    const bob2 = open("u2", { minted: false });
    const state = last(bob2.peer, "welcome").rooms[0];
    expect(state).toMatchObject({ room: "lobby", lastSeq: 2, readSeq: 0, unread: 2, mentions: 1 });
    // ann's own post is not unread for her
    const ann2 = open("u1", { minted: false });
    expect(last(ann2.peer, "welcome").rooms[0]).toMatchObject({ unread: 1, mentions: 0 });
    // read moves forward, is clamped, echoed to every tab of the user
    send(bob, { type: "read", room: "lobby", seq: 99 });
    expect(last(bob.peer, "read")).toEqual({ type: "read", room: "lobby", seq: 2 });
    expect(last(bob2.peer, "read")).toEqual({ type: "read", room: "lobby", seq: 2 });
    send(bob, { type: "read", room: "lobby", seq: 1 });
    expect(last(bob.peer, "read")).toEqual({ type: "read", room: "lobby", seq: 2 });
    const bob3 = open("u2", { minted: false });
    expect(last(bob3.peer, "welcome").rooms[0]).toMatchObject({ readSeq: 2, unread: 0, mentions: 0 });
  });

  test("presence is per user: the last tab to close leaves", () => {
    const { open, v1, settle } = setup();
    const watcher = v1("lobby", "watcher");
    const a = open("u1", { nick: "ann", room: "lobby" });
    const b = open("u1", { minted: false });
    const presence = () => watcher.peer.inbox.filter((m) => m.type === "presence").flatMap((m) => m.events);
    expect(presence()).toEqual([{ event: "join", nick: "ann" }]);
    a.peer.close(1000);
    settle();
    expect(presence()).toEqual([{ event: "join", nick: "ann" }]);
    b.peer.close(1000);
    settle();
    expect(presence()).toEqual([
      { event: "join", nick: "ann" },
      { event: "leave", nick: "ann" },
    ]);
  });

  test("join, part, nick and dm reach every tab; refusals are typed and change nothing", () => {
    const { open, v1, send } = setup();
    const a = open("u1", { nick: "ann", room: "lobby" });
    const a2 = open("u1", { minted: false });
    const b = open("u2", { nick: "bob", room: "lobby" });
    v1("lobby", "zed");
    send(a, { type: "join", room: "dev", id: "j" });
    expect(last(a.peer, "joined").room).toBe("dev");
    expect(last(a2.peer, "joined").room).toBe("dev");
    send(a, { type: "chat", room: "nowhere", text: "x", id: "c1" });
    expect(last(a.peer, "error")).toMatchObject({ code: "not_found", id: "c1" });
    send(a, { type: "nick", nick: "zed", id: "n1" });
    expect(last(a.peer, "error")).toMatchObject({ code: "nick_taken", id: "n1" });
    send(a, { type: "nick", nick: "anna" });
    const renames = b.peer.inbox2
      .filter((m) => m.type === "presence")
      .flatMap((m) => (m.type === "presence" ? m.events : []));
    expect(renames).toContainEqual({ event: "nick", from: "ann", nick: "anna" });
    send(a, { type: "dm", nick: "nobody", id: "d0" });
    expect(last(a.peer, "error")).toMatchObject({ code: "not_found", id: "d0" });
    send(a, { type: "dm", nick: "zed", id: "d1" });
    expect(last(a.peer, "error")).toMatchObject({ code: "not_found", id: "d1" });
    send(a, { type: "dm", nick: "bob" });
    const dm = last(a.peer, "joined");
    expect(dm.room.startsWith("~")).toBe(true);
    expect(dm.dm).toEqual({ nick: "bob" });
    expect(last(b.peer, "joined")).toMatchObject({ room: dm.room, dm: { nick: "anna" } });
    expect(last(a2.peer, "joined").room).toBe(dm.room);
    // a third user cannot join it
    const c = open("u3", { nick: "cat" });
    send(c, { type: "join", room: dm.room, id: "j3" });
    expect(last(c.peer, "error")).toMatchObject({ code: "not_found", id: "j3" });
    send(a, { type: "part", room: "dev" });
    expect(last(a.peer, "parted")).toEqual({ type: "parted", room: "dev" });
    expect(last(a2.peer, "parted")).toEqual({ type: "parted", room: "dev" });
    const back = open("u1", { minted: false });
    expect(
      last(back.peer, "welcome")
        .rooms.map((r) => r.room)
        .sort(),
    ).toEqual([dm.room, "lobby"].sort());
    expect(last(back.peer, "welcome").user.nick).toBe("anna");
  });

  test("sync answers what was missed as of the stream's position", () => {
    const { open, send } = setup();
    const a = open("u1", { nick: "ann", room: "lobby" });
    for (let i = 1; i <= 5; i++) send(a, { type: "chat", room: "lobby", text: `m${i}` });
    send(a, { type: "sync", room: "lobby", since: 3, sinceRev: 0 });
    const s = last(a.peer, "sync");
    expect(s.posts.map((p) => p.seq)).toEqual([4, 5]);
    expect(s).toMatchObject({ changes: [], truncated: false });
    expect(s.posts[0]).toMatchObject({ userId: "u1", nick: "ann", text: "m4" });
  });
});

describe("v2 changes and moderation over the local engine", () => {
  test("edit, react, delete and topic: numbered by rev, seen by v2 live, folded in history and sync", () => {
    const { open, v1, send } = setup();
    const old = v1("lobby", "oldie");
    const ann = open("u1", { nick: "ann", room: "lobby" });
    const bob = open("u2", { nick: "bob", room: "lobby" });
    send(ann, { type: "chat", room: "lobby", text: "helo", id: "a" });
    send(ann, { type: "edit", room: "lobby", seq: 1, text: "hello" });
    expect(last(bob.peer, "edit")).toMatchObject({ room: "lobby", rev: 1, seq: 1, text: "hello" });
    send(bob, { type: "edit", room: "lobby", seq: 1, text: "hijack", id: "e2" });
    expect(last(bob.peer, "error")).toMatchObject({ code: "forbidden", id: "e2" });
    send(bob, { type: "react", room: "lobby", seq: 1, emoji: "👍", on: true });
    send(ann, { type: "react", room: "lobby", seq: 1, emoji: "👍", on: true });
    send(ann, { type: "react", room: "lobby", seq: 1, emoji: "👍", on: true }); // already so: nothing
    expect(last(ann.peer, "reaction")).toMatchObject({ rev: 3, nick: "ann", on: true });
    send(ann, { type: "topic", room: "lobby", topic: "welcome all" });
    expect(last(bob.peer, "topic")).toMatchObject({ rev: 4, topic: "welcome all", nick: "ann" });
    send(bob, { type: "history", room: "lobby" });
    expect(last(bob.peer, "history").messages[0]).toMatchObject({
      seq: 1,
      text: "hello",
      reactions: [{ emoji: "👍", nicks: ["bob", "ann"] }],
    });
    expect(last(bob.peer, "history").messages[0]?.editedAt).toBeDefined();
    send(bob, { type: "delete", room: "lobby", seq: 1, id: "d1" });
    expect(last(bob.peer, "error")).toMatchObject({ code: "forbidden", id: "d1" });
    send(ann, { type: "delete", room: "lobby", seq: 1 });
    expect(last(bob.peer, "delete")).toMatchObject({ rev: 5, seq: 1, by: "ann" });
    send(ann, { type: "react", room: "lobby", seq: 1, emoji: "🎉", on: true, id: "r9" });
    expect(last(ann.peer, "error")).toMatchObject({ code: "not_found", id: "r9" });
    send(bob, { type: "sync", room: "lobby", since: 0, sinceRev: 2 });
    const sync = last(bob.peer, "sync");
    expect(sync.changes.map((c) => c.rev)).toEqual([3, 4, 5]);
    expect(sync.posts).toEqual([expect.objectContaining({ seq: 1, text: "", deleted: true })]);
    // v1 saw none of it live, and sees the current state in history
    expect(old.peer.inbox.map((m) => m.type)).not.toContain("edit");
    send(old, { type: "history" });
    const h = old.peer.inbox.filter((m) => m.type === "history").at(-1);
    expect(h?.type === "history" && h.messages[0]?.text).toBe("(deleted)");
    const again = open("u2", { minted: false });
    expect(last(again.peer, "welcome").rooms[0]).toMatchObject({
      topic: "welcome all",
      lastRev: 5,
      unread: 0,
    });
  });

  test("the 21st emoji is too_large; kicks and bans hold users out by every route", () => {
    const { open, v1, send } = setup();
    const mod = open("m", { nick: "mo", room: "lobby", mod: true });
    const ann = open("u1", { nick: "ann", room: "lobby" });
    const zed = v1("lobby", "zed");
    send(ann, { type: "chat", room: "lobby", text: "x" });
    for (let i = 0; i < 20; i++)
      send(mod, { type: "react", room: "lobby", seq: 1, emoji: `:e${i}:`, on: true });
    send(mod, { type: "react", room: "lobby", seq: 1, emoji: ":e20:", on: true, id: "r" });
    expect(last(mod.peer, "error")).toMatchObject({ code: "too_large", id: "r" });
    send(ann, { type: "kick", room: "lobby", nick: "zed", id: "k" });
    expect(last(ann.peer, "error")).toMatchObject({ code: "forbidden", id: "k" });
    send(mod, { type: "kick", room: "lobby", nick: "zed", reason: "spam" });
    expect(zed.peer.closedWith).toBe(4003);
    send(mod, { type: "ban", room: "lobby", nick: "ann", reason: "rude" });
    expect(last(ann.peer, "kicked")).toMatchObject({ room: "lobby", by: "mo", reason: "rude" });
    send(ann, { type: "join", room: "lobby", id: "j" });
    expect(last(ann.peer, "error")).toMatchObject({ code: "forbidden", id: "j" });
    const back = open("u1", { minted: false, room: "lobby" });
    expect(last(back.peer, "welcome").rooms).toEqual([]);
    expect(last(back.peer, "error")).toMatchObject({ code: "forbidden" });
    const presence = mod.peer.inbox2.flatMap((m) => (m.type === "presence" ? m.events : []));
    expect(presence).toContainEqual({ event: "leave", nick: "ann" });
    expect(presence).toContainEqual({ event: "leave", nick: "zed" });
  });
});
