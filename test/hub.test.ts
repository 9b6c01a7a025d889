/** Example tests of the chat logic's flush: grouped writes, storage failures, dedupe, limits, shutdown. */
import { describe, expect, it } from "bun:test";
import type { ServerMessage } from "../protocol";
import type { ChatLimits } from "../server/chat/limits";
import { MemoryStore } from "../server/engines/local/memory-store";
import type { SessionRecord, StoredChange, StoredMessage } from "../server/engines/local/store";
import { FakeNet, type FakePeer } from "./support/fake-net";
import { localHub } from "./support/hubs";

/** A store whose commits can be made to fail, counting those that succeed. */
class FlakyStore extends MemoryStore {
  failing = false;
  commits = 0;
  override commit(
    messages: readonly StoredMessage[],
    sessions: readonly SessionRecord[],
    changes: readonly StoredChange[] = [],
  ): void {
    if (this.failing) throw new Error("disk I/O error");
    super.commit(messages, sessions, changes);
    this.commits++;
  }
}

function setup(limits: Partial<ChatLimits> = { rateLimit: 0 }) {
  const store = new FlakyStore();
  const net = new FakeNet();
  const clock = { now: 1_700_000_000_000 };
  const timers: number[] = [];
  const hub = localHub({
    store,
    fanout: net,
    timer: (_fn, ms) => timers.push(ms),
    now: () => clock.now,
    limits,
  });
  const join = (nick: string, room = "r") => {
    const peer = net.peer();
    const conn = hub.open(peer, { room, nick });
    peer.onClose = (code) => hub.close(conn, code);
    const say = (msg: object) => hub.receive(conn, JSON.stringify(msg));
    return { peer, conn, say };
  };
  return { store, hub, join, clock, timers };
}

const of = <T extends ServerMessage["type"]>(peer: FakePeer, type: T) =>
  peer.inbox.filter((m): m is Extract<ServerMessage, { type: T }> => m.type === type);

describe("flush", () => {
  it("stores every chat of one turn in one transaction and publishes them in seq order", () => {
    const { store, hub, join } = setup();
    const a = join("ann");
    const b = join("bob");
    hub.flush();
    const before = store.commits;
    for (let i = 0; i < 5; i++) a.say({ type: "chat", text: `m${i}`, id: `id${i}` });
    b.say({ type: "chat", text: "b" });
    hub.flush();
    expect(store.commits).toBe(before + 1);
    expect(of(b.peer, "chat").map((m) => [m.seq, m.text])).toEqual([
      [1, "m0"],
      [2, "m1"],
      [3, "m2"],
      [4, "m3"],
      [5, "m4"],
      [6, "b"],
    ]);
    expect(of(a.peer, "ack").map((m) => m.seq)).toEqual([1, 2, 3, 4, 5]);
  });

  it("publishes nothing before it is stored, and a joiner of the same turn sees it once, in its history", () => {
    const { hub, join } = setup();
    const a = join("ann");
    hub.flush();
    a.say({ type: "chat", text: "early" });
    const late = join("cat");
    expect(of(a.peer, "chat")).toHaveLength(0);
    hub.flush();
    const welcome = of(late.peer, "welcome")[0];
    expect(welcome?.history.map((m) => m.text)).toEqual(["early"]);
    expect(welcome?.lastSeq).toBe(1);
    expect(of(late.peer, "chat")).toHaveLength(0);
    expect(of(a.peer, "chat").map((m) => m.text)).toEqual(["early"]);
  });

  it("on a storage failure sends no ack, tells only the sender, and reuses the seq", () => {
    const { store, hub, join } = setup();
    const a = join("ann");
    const b = join("bob");
    hub.flush();
    store.failing = true;
    a.say({ type: "chat", text: "lost", id: "x" });
    hub.flush();
    expect(of(a.peer, "ack")).toHaveLength(0);
    expect(of(a.peer, "error")).toEqual([
      { type: "error", code: "internal", message: expect.any(String), id: "x" },
    ]);
    expect(of(b.peer, "chat")).toHaveLength(0);
    expect(of(b.peer, "error")).toHaveLength(0);
    store.failing = false;
    a.say({ type: "chat", text: "again", id: "x" });
    hub.flush();
    expect(of(b.peer, "chat").map((m) => [m.seq, m.text])).toEqual([[1, "again"]]);
    expect(of(a.peer, "ack")).toEqual([{ type: "ack", id: "x", seq: 1 }]);
  });

  it("stores a message resent with the same id once, acking every copy", () => {
    const { store, hub, join } = setup();
    const a = join("ann");
    hub.flush();
    a.say({ type: "chat", text: "once", id: "same" });
    a.say({ type: "chat", text: "once", id: "same" });
    hub.flush();
    a.say({ type: "chat", text: "once", id: "same" });
    expect(store.lastSeq("r")).toBe(1);
    expect(of(a.peer, "chat")).toHaveLength(1);
    expect(of(a.peer, "ack").map((m) => m.seq)).toEqual([1, 1, 1]);
  });
});

describe("rate limit", () => {
  it("refuses past the burst without storing, then closes a flooding connection with 1008", () => {
    const { store, hub, join, clock } = setup({ rateLimit: 1, rateBurst: 3, floodCloseAfter: 5 });
    const a = join("ann");
    hub.flush();
    for (let i = 0; i < 4; i++) a.say({ type: "chat", text: "x", id: `i${i}` });
    hub.flush();
    expect(store.lastSeq("r")).toBe(3);
    expect(of(a.peer, "error").map((e) => [e.code, e.id])).toEqual([["rate_limited", "i3"]]);
    clock.now += 1000;
    a.say({ type: "chat", text: "refilled" });
    hub.flush();
    expect(store.lastSeq("r")).toBe(4);
    for (let i = 0; i < 5; i++) a.say({ type: "chat", text: "flood" });
    expect(a.peer.closedWith).toBe(1008);
  });
});

describe("shutdown", () => {
  it("stores what is pending, acks it, then closes every socket with 1001", () => {
    const { store, hub, join } = setup();
    const a = join("ann");
    const b = join("bob", "other");
    hub.flush();
    a.say({ type: "chat", text: "last words", id: "z" });
    hub.shutdown();
    expect(store.lastSeq("r")).toBe(1);
    expect(of(a.peer, "ack")).toEqual([{ type: "ack", id: "z", seq: 1 }]);
    expect([a.peer.closedWith, b.peer.closedWith]).toEqual([1001, 1001]);
  });
});

describe("request limits", () => {
  it("limits nick, join, history and who together, and every frame, with rate_limited", () => {
    const { hub, join } = setup({
      rateLimit: 0,
      controlRate: 1,
      controlBurst: 2,
      frameRate: 1,
      frameBurst: 6,
    });
    const a = join("ann");
    hub.flush();
    a.say({ type: "who" });
    a.say({ type: "history" });
    a.say({ type: "nick", nick: "anna" });
    expect(of(a.peer, "error").map((e) => e.code)).toEqual(["rate_limited"]);
    a.say({ type: "chat", text: "1" });
    a.say({ type: "chat", text: "2" });
    a.say({ type: "chat", text: "3" });
    a.say({ type: "chat", text: "4" });
    hub.flush();
    expect(of(a.peer, "chat").map((m) => m.text)).toEqual(["1", "2", "3"]);
    expect(of(a.peer, "error").map((e) => e.code)).toEqual(["rate_limited", "rate_limited"]);
  });
});

describe("slow readers", () => {
  it("closes a member too far behind with 1008 after a publish, and the others see it leave", () => {
    const { hub, join, clock } = setup({ rateLimit: 0, slowConsumerBytes: 1000 });
    const a = join("ann");
    const b = join("bob");
    hub.flush();
    b.peer.buffered = 1001;
    a.say({ type: "chat", text: "hello" });
    hub.flush();
    // A room's backlogs are checked at most every 50 ms; Bun's higher limit guards in between.
    expect(b.peer.closedWith).toBeUndefined();
    clock.now += 50;
    a.say({ type: "chat", text: "again" });
    hub.flush();
    expect(b.peer.closedWith).toBe(1008);
    expect(a.peer.closedWith).toBeUndefined();
    hub.flush();
    expect(of(a.peer, "presence").at(-1)?.events).toEqual([{ event: "leave", nick: "bob" }]);
  });
});

describe("presence in a big room", () => {
  const big = { rateLimit: 0, presenceBatchMs: 25, presenceBatchMinMembers: 3 };

  it("holds joins and the joiners' welcomes for the window, then sends the joins in one message", () => {
    const { hub, join, clock, timers } = setup(big);
    const [a, b, c] = [join("ann"), join("bob"), join("cat")];
    hub.flush();
    expect([a, b, c].map((x) => x.peer.inbox.length)).toEqual([0, 0, 0]);
    expect(timers).toEqual([25]);
    clock.now += 25;
    hub.flush();
    expect(of(a.peer, "welcome")[0]?.users).toEqual(["ann", "bob", "cat"]);
    const [d, e] = [join("dan"), join("eve")];
    clock.now += 10;
    hub.flush();
    expect(of(a.peer, "presence")).toHaveLength(0);
    expect(of(d.peer, "welcome")).toHaveLength(0);
    clock.now += 15;
    hub.flush();
    for (const x of [a, b, c]) {
      expect(of(x.peer, "presence").map((p) => p.events)).toEqual([
        [
          { event: "join", nick: "dan" },
          { event: "join", nick: "eve" },
        ],
      ]);
    }
    expect(of(d.peer, "welcome")[0]?.users).toEqual(["ann", "bob", "cat", "dan", "eve"]);
    expect(of(e.peer, "presence")).toHaveLength(0);
  });

  it("sends held presence at once, before it, when a chat comes", () => {
    const { hub, join, clock } = setup(big);
    const [a] = [join("ann"), join("bob"), join("cat")];
    clock.now += 25;
    hub.flush();
    const d = join("dan");
    a.say({ type: "chat", text: "hi" });
    hub.flush();
    expect(a.peer.inbox.slice(1).map((m) => m.type)).toEqual(["presence", "chat"]);
    expect(of(d.peer, "welcome")[0]?.history.map((m) => m.text)).toEqual(["hi"]);
    expect(of(d.peer, "chat")).toHaveLength(0);
  });

  it("never holds a small room, and shutdown sends what is held", () => {
    const small = setup({ ...big, presenceBatchMinMembers: 10 });
    const a = small.join("ann");
    small.hub.flush();
    expect(of(a.peer, "welcome")).toHaveLength(1);
    const { hub, join } = setup(big);
    const xs = [join("ann"), join("bob"), join("cat")];
    hub.shutdown();
    expect(xs.map((x) => of(x.peer, "welcome").length)).toEqual([1, 1, 1]);
  });
});

describe("session writes", () => {
  it("go with the next messages, or at most every 250 ms, not one transaction per join", () => {
    const { store, hub, join, clock } = setup();
    const a = join("ann");
    hub.flush();
    expect(store.commits).toBe(1);
    const b = join("bob");
    hub.flush();
    expect(store.commits).toBe(1);
    const token = of(b.peer, "welcome")[0]?.resumeToken ?? "";
    expect(store.loadSession(token)).toBeUndefined();
    clock.now += 250;
    hub.flush();
    expect(store.commits).toBe(2);
    expect(store.loadSession(token)?.nick).toBe("bob");
    const c = join("cat");
    a.say({ type: "chat", text: "carries cat's session along" });
    hub.flush();
    expect(store.commits).toBe(3);
    expect(store.loadSession(of(c.peer, "welcome")[0]?.resumeToken ?? "")?.nick).toBe("cat");
  });
});
