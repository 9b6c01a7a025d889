/** Mirror tests of server/chat/delivery.ts: log entries applied in order and published, presence batched, acks after chats, resyncs, slow readers. */

import { describe, expect, it } from "bun:test";
import fc from "fast-check";
import {
  type ChatMessage,
  CLOSE,
  encode,
  LIMITS,
  type PresenceEvent,
  type ServerMessage,
} from "../../protocol";
import { ClientBudgets } from "../../server/chat/client-budgets";
import { Connection } from "../../server/chat/connection";
import { Connections } from "../../server/chat/connections";
import { Delivery } from "../../server/chat/delivery";
import type { Done, Engine, EngineConn, RoomEntry, RoomSnapshot } from "../../server/chat/engine";
import { type ChatLimits, chatLimits } from "../../server/chat/limits";
import { silentLogger } from "../../server/chat/log";
import { Metrics } from "../../server/chat/metrics";
import { Replicas } from "../../server/chat/replicas";
import { UsersHere } from "../../server/chat/v2/user-conn";
import { DEFAULT_CONFIG } from "../../server/config";
import { FakeNet, type FakePeer } from "../support/fake-net";

const ROOM = "lobby";
const DEFAULT_LIMITS = chatLimits(DEFAULT_CONFIG);
/** A room this size holds its presence for a window (the default is 50 members; 3 keeps tests small). */
const BIG_ROOM: Partial<ChatLimits> = { presenceBatchMinMembers: 3, presenceBatchMs: 25 };

// ---- entries ----

function chat(seq: number): ChatMessage {
  return { type: "chat", room: ROOM, seq, nick: "ann", text: `m${seq}`, sentAt: new Date(seq).toISOString() };
}
const chatEntry = (n: number, seq: number): RoomEntry => ({ n, kind: "chat", msg: chat(seq) });
const presenceEntry = (n: number, event: PresenceEvent, at?: number): RoomEntry =>
  at === undefined ? { n, kind: "presence", event } : { n, kind: "presence", event, at };
const join = (n: number, nick: string, at?: number) => presenceEntry(n, { event: "join", nick }, at);
const leave = (n: number, nick: string) => presenceEntry(n, { event: "leave", nick });

// ---- what a member received ----

const presence = (...events: PresenceEvent[]): ServerMessage => ({ type: "presence", room: ROOM, events });
const ack = (id: string, seq: number): ServerMessage => ({ type: "ack", id, seq });
const joined = (nick: string): PresenceEvent => ({ event: "join", nick });
const left = (nick: string): PresenceEvent => ({ event: "leave", nick });

// ---- the rig: real Replicas, Connections and Delivery over a fake engine, a fake net and a fake clock ----

interface Member {
  conn: Connection;
  peer: FakePeer;
}

function rig(
  opts: { members?: number; limits?: Partial<ChatLimits>; snapshot?: Partial<RoomSnapshot> } = {},
) {
  const limits: ChatLimits = { ...DEFAULT_LIMITS, ...opts.limits };
  const snapshot: RoomSnapshot = { lastSeq: 0, lastN: 0, users: [], recent: [], ...opts.snapshot };
  const unloads: string[] = [];
  const leaves: string[] = [];
  const fakeEngine = {
    load(_room: string, done: Done<RoomSnapshot>) {
      done(undefined, structuredClone(snapshot));
    },
    unload(room: string) {
      unloads.push(room);
    },
    leave(conn: EngineConn, room: string) {
      leaves.push(`${conn.id}@${room}`);
    },
  };
  const engine = fakeEngine as unknown as Engine<EngineConn>;
  const clock = { t: 1000 };
  const now = () => clock.t;
  const timers: Array<{ fn: () => void; due: number; ms: number }> = [];
  const timer = (fn: () => void, ms: number) => {
    timers.push({ fn, due: clock.t + ms, ms });
  };
  const net = new FakeNet();
  const metrics = new Metrics();
  const replicas = new Replicas(engine);
  const budgets = new ClientBudgets(limits);
  const usersHere = new UsersHere();
  const connections = new Connections({
    engine,
    replicas,
    budgets,
    metrics,
    limits,
    log: silentLogger,
    now,
    usersHere,
  });
  const delivery = new Delivery({
    replicas,
    connections,
    fanout: net,
    metrics,
    limits,
    log: silentLogger,
    now,
    timer,
  });
  // The test's own hold, so the replica outlives its members.
  const replica = replicas.acquire(ROOM);

  let ids = 0;
  /** A connection in the room: live (subscribed, welcomed) or pending (waiting for its welcome). */
  const add = (state: "live" | "pending" = "live"): Member => {
    const peer = net.peer();
    const conn = new Connection(`c${++ids}`, peer, limits, clock.t);
    connections.add(conn);
    expect(replicas.acquire(ROOM)).toBe(replica);
    conn.replica = replica;
    replica.members.set(conn.id, conn);
    if (state === "live") {
      conn.state = "live";
      conn.subscribed = replica.topic;
      peer.subscribe(replica.topic);
    }
    return { conn, peer };
  };
  const members = Array.from({ length: opts.members ?? 2 }, () => add());

  /** Advances the clock and runs the timers due by then, including those they set. */
  const advance = (ms: number) => {
    clock.t += ms;
    for (;;) {
      const i = timers.findIndex((x) => x.due <= clock.t);
      if (i < 0) return;
      const [due] = timers.splice(i, 1);
      due?.fn();
    }
  };

  return {
    delivery,
    replicas,
    connections,
    replica,
    net,
    metrics,
    limits,
    members,
    add,
    clock,
    timers,
    advance,
    unloads,
    leaves,
  };
}

describe("Delivery of chats", () => {
  it("publishes each chat to every member, in order, and advances the replica", () => {
    const r = rig();
    r.delivery.deliver(ROOM, [chatEntry(1, 1), chatEntry(2, 2)]);
    r.delivery.deliver(ROOM, [chatEntry(3, 3)]);
    for (const m of r.members) expect(m.peer.inbox).toEqual([chat(1), chat(2), chat(3)]);
    expect([r.replica.lastN, r.replica.lastSeq]).toEqual([3, 3]);
    expect(r.replica.latest(50).messages).toEqual([chat(1), chat(2), chat(3)]);
    expect(r.metrics.messagesOut).toBe(3 * r.members.length);
  });

  it("publishes the engine's own encoding of a chat when it has one", () => {
    const r = rig();
    const wire = encode({ ...chat(1), text: "as stored" });
    r.delivery.deliver(ROOM, [{ n: 1, kind: "chat", msg: chat(1), wire }]);
    expect(r.members[0]?.peer.inbox).toEqual([{ ...chat(1), text: "as stored" }]);
  });

  it("counts a void entry without delivering anything, so the next one follows it", () => {
    const r = rig();
    r.delivery.deliver(ROOM, [chatEntry(1, 1), { n: 2, kind: "void" }, chatEntry(3, 2)]);
    expect(r.members[0]?.peer.inbox).toEqual([chat(1), chat(2)]);
    expect(r.members[0]?.peer.closedWith).toBeUndefined();
    expect(r.replica.lastN).toBe(3);
  });

  it("ignores entries of a room with no loaded replica here", () => {
    const r = rig();
    r.delivery.deliver("elsewhere", [chatEntry(1, 1)]);
    expect(r.members[0]?.peer.inbox).toEqual([]);
    expect(r.replica.lastN).toBe(0);
  });

  it("skips entries already applied: a batch delivered twice arrives once", () => {
    const r = rig();
    const batch = [join(1, "ann"), chatEntry(2, 1), chatEntry(3, 2)];
    r.delivery.deliver(ROOM, batch);
    r.delivery.deliver(ROOM, batch);
    r.delivery.deliver(ROOM, batch.slice(1));
    expect(r.members[0]?.peer.inbox).toEqual([presence(joined("ann")), chat(1), chat(2)]);
    expect(r.members[0]?.peer.closedWith).toBeUndefined();
  });

  it("skips the entries a snapshot already holds and applies the ones after it", () => {
    const r = rig({ snapshot: { lastN: 5, lastSeq: 3, recent: [chat(1), chat(2), chat(3)] } });
    r.delivery.deliver(ROOM, [chatEntry(4, 2), chatEntry(5, 3), chatEntry(6, 4)]);
    expect(r.members[0]?.peer.inbox).toEqual([chat(4)]);
    expect([r.replica.lastN, r.replica.lastSeq]).toEqual([6, 4]);
  });
});

describe("Delivery of presence", () => {
  it("shares one message among consecutive presence events of one batch", () => {
    const r = rig();
    r.delivery.deliver(ROOM, [join(1, "ann"), join(2, "bob"), leave(3, "ann")]);
    for (const m of r.members)
      expect(m.peer.inbox).toEqual([presence(joined("ann"), joined("bob"), left("ann"))]);
    expect(r.replica.sortedUsers()).toEqual(["bob"]);
    expect(r.replica.held).toEqual([]);
  });

  it("splits presence events around a chat, keeping the log's order", () => {
    const r = rig();
    r.delivery.deliver(ROOM, [
      join(1, "ann"),
      chatEntry(2, 1),
      join(3, "bob"),
      leave(4, "ann"),
      chatEntry(5, 2),
    ]);
    expect(r.members[0]?.peer.inbox).toEqual([
      presence(joined("ann")),
      chat(1),
      presence(joined("bob"), left("ann")),
      chat(2),
    ]);
  });

  it("splits a batch of more than presenceEventsMax events into messages a client can decode", () => {
    const r = rig({ members: 1 });
    const count = LIMITS.presenceEventsMax + 1;
    const entries = Array.from({ length: count }, (_, i) =>
      i % 2 ? leave(i + 1, "ann") : join(i + 1, "ann"),
    );
    r.delivery.deliver(ROOM, entries);
    const got = r.members[0]?.peer.inbox ?? [];
    expect(got.map((m) => (m.type === "presence" ? m.events.length : -1))).toEqual([
      LIMITS.presenceEventsMax,
      1,
    ]);
  });

  it("sends presence at once in a room smaller than presenceBatchMinMembers", () => {
    const r = rig({ members: 2, limits: BIG_ROOM });
    r.delivery.deliver(ROOM, [join(1, "ann")]);
    expect(r.members[0]?.peer.inbox).toEqual([presence(joined("ann"))]);
    expect(r.timers).toEqual([]);
  });
});

describe("Delivery of acks", () => {
  it("sends an ack owed for a seq not yet delivered right after its chat, to its connection only", () => {
    const r = rig();
    const [a, b] = r.members as [Member, Member];
    r.delivery.committed(a.conn, ROOM, "id-2", 2);
    expect(a.peer.inbox).toEqual([]);
    r.delivery.deliver(ROOM, [chatEntry(1, 1), chatEntry(2, 2), chatEntry(3, 3)]);
    expect(a.peer.inbox).toEqual([chat(1), chat(2), ack("id-2", 2), chat(3)]);
    expect(b.peer.inbox).toEqual([chat(1), chat(2), chat(3)]);
    expect(r.replica.acks.size).toBe(0);
  });

  it("sends every ack owed for one seq after that chat", () => {
    const r = rig();
    const [a, b] = r.members as [Member, Member];
    r.delivery.committed(a.conn, ROOM, "first", 1);
    r.delivery.committed(b.conn, ROOM, "retry", 1);
    r.delivery.committed(a.conn, ROOM, "again", 1);
    r.delivery.deliver(ROOM, [chatEntry(1, 1)]);
    expect(a.peer.inbox).toEqual([chat(1), ack("first", 1), ack("again", 1)]);
    expect(b.peer.inbox).toEqual([chat(1), ack("retry", 1)]);
  });

  it("sends an ack for a seq already delivered at once", () => {
    const r = rig();
    const a = r.members[0] as Member;
    r.delivery.deliver(ROOM, [chatEntry(1, 1), chatEntry(2, 2)]);
    r.delivery.committed(a.conn, ROOM, "old", 1);
    expect(a.peer.inbox).toEqual([chat(1), chat(2), ack("old", 1)]);
    expect(r.replica.acks.size).toBe(0);
  });

  it("sends an ack at once for a room the connection is no longer in", () => {
    const r = rig();
    const a = r.members[0] as Member;
    r.delivery.committed(a.conn, "elsewhere", "moved", 9);
    expect(a.peer.inbox).toEqual([ack("moved", 9)]);
  });

  it("keeps a pending connection's acks in lateAcks, for after its welcome", () => {
    const r = rig();
    const pending = r.add("pending");
    r.delivery.deliver(ROOM, [chatEntry(1, 1)]);
    r.delivery.committed(pending.conn, ROOM, "delivered", 1);
    r.delivery.committed(pending.conn, ROOM, "owed", 2);
    expect(pending.conn.lateAcks).toEqual([{ id: "delivered", seq: 1 }]);
    r.delivery.deliver(ROOM, [chatEntry(2, 2)]);
    expect(pending.conn.lateAcks).toEqual([
      { id: "delivered", seq: 1 },
      { id: "owed", seq: 2 },
    ]);
    expect(pending.peer.inbox).toEqual([]);
  });
});

describe("Delivery out of step with the log", () => {
  it("resyncs on a gap in entry numbers: members closed with 1011, the replica forgotten", () => {
    const r = rig();
    r.delivery.committed(r.members[0]?.conn as Connection, ROOM, "owed", 2);
    r.delivery.deliver(ROOM, [chatEntry(1, 1)]);
    r.delivery.deliver(ROOM, [chatEntry(3, 2)]);
    for (const m of r.members) {
      expect(m.peer.inbox).toEqual([chat(1)]);
      expect(m.peer.closedWith).toBe(CLOSE.internal);
      expect(m.conn.state).toBe("closed");
    }
    expect(r.replica.broken).toBe(true);
    expect(r.replica.members.size).toBe(0);
    expect(r.replica.acks.size).toBe(0);
    expect(r.replicas.get(ROOM)).toBeUndefined();
    expect(r.unloads).toEqual([ROOM]);
  });

  it("resyncs on a gap inside one batch, after delivering what came before it", () => {
    const r = rig();
    r.delivery.deliver(ROOM, [chatEntry(1, 1), chatEntry(3, 2), chatEntry(4, 3)]);
    expect(r.members[0]?.peer.inbox).toEqual([chat(1)]);
    expect(r.members[0]?.peer.closedWith).toBe(CLOSE.internal);
    expect(r.unloads).toEqual([ROOM]);
  });

  it("resyncs on a gap in chat seqs, publishing nothing of the chat", () => {
    const r = rig();
    r.delivery.deliver(ROOM, [chatEntry(1, 2)]);
    for (const m of r.members) {
      expect(m.peer.inbox).toEqual([]);
      expect(m.peer.closedWith).toBe(CLOSE.internal);
    }
    expect(r.replica.lastSeq).toBe(0);
    expect(r.replicas.get(ROOM)).toBeUndefined();
    expect(r.unloads).toEqual([ROOM]);
  });

  it("delivers nothing more to a resynced replica, and the next acquire loads a fresh one", () => {
    const r = rig();
    r.delivery.deliver(ROOM, [chatEntry(2, 1)]);
    r.delivery.deliver(ROOM, [chatEntry(1, 1)]);
    expect(r.replica.lastN).toBe(0);
    const fresh = r.replicas.acquire(ROOM);
    expect(fresh).not.toBe(r.replica);
    expect(r.replicas.get(ROOM)).toBe(fresh);
  });
});

describe("Delivery in a big room", () => {
  it("holds presence, and the welcomes behind it, until the window ends", () => {
    const r = rig({ members: 3, limits: BIG_ROOM });
    const inbox = r.members[0]?.peer.inbox as ServerMessage[];
    r.delivery.deliver(ROOM, [join(1, "ann")]);
    const welcomed: string[] = [];
    r.replica.at(1, () => welcomed.push("ann"));
    expect(inbox).toEqual([]);
    expect(welcomed).toEqual([]);
    expect(r.timers.map((x) => x.ms)).toEqual([25]);

    r.advance(10);
    r.delivery.deliver(ROOM, [join(2, "bob")]);
    expect(inbox).toEqual([]);
    expect(r.timers.length).toBe(1);

    r.advance(14);
    expect(inbox).toEqual([]);
    r.advance(1);
    expect(inbox).toEqual([presence(joined("ann"), joined("bob"))]);
    expect(welcomed).toEqual(["ann"]);
    expect(r.timers).toEqual([]);
  });

  it("sets the timer again when it fires before the window has ended", () => {
    const r = rig({ members: 3, limits: BIG_ROOM });
    r.delivery.deliver(ROOM, [join(1, "ann")]);
    const first = r.timers.pop();
    r.clock.t += 10;
    first?.fn();
    expect(r.members[0]?.peer.inbox).toEqual([]);
    expect(r.timers.map((x) => x.ms)).toEqual([15]);
    r.advance(15);
    expect(r.members[0]?.peer.inbox).toEqual([presence(joined("ann"))]);
  });

  it("starts the window when the engine says the event happened", () => {
    const r = rig({ members: 3, limits: BIG_ROOM });
    r.delivery.deliver(ROOM, [join(1, "ann", r.clock.t - 25)]);
    expect(r.members[0]?.peer.inbox).toEqual([presence(joined("ann"))]);
    expect(r.timers).toEqual([]);
  });

  it("flushes held presence before a chat, which is never held", () => {
    const r = rig({ members: 3, limits: BIG_ROOM });
    r.delivery.deliver(ROOM, [join(1, "ann")]);
    r.advance(5);
    r.delivery.deliver(ROOM, [chatEntry(2, 1)]);
    expect(r.members[0]?.peer.inbox).toEqual([presence(joined("ann")), chat(1)]);
    r.advance(100);
    expect(r.members[0]?.peer.inbox).toEqual([presence(joined("ann")), chat(1)]);
  });

  it("publishes everything held at once on release(true), and only what is due on release(false)", () => {
    const r = rig({ members: 3, limits: BIG_ROOM });
    r.delivery.deliver(ROOM, [join(1, "ann")]);
    r.delivery.release(false);
    expect(r.members[0]?.peer.inbox).toEqual([]);
    r.delivery.release(true);
    expect(r.members[0]?.peer.inbox).toEqual([presence(joined("ann"))]);
  });
});

describe("Delivery to slow readers", () => {
  it("closes a member with more than slowConsumerBytes unsent with 1008, and only that one", () => {
    const r = rig({ members: 3 });
    const [slow, atLimit, fine] = r.members as [Member, Member, Member];
    slow.peer.buffered = r.limits.slowConsumerBytes + 1;
    atLimit.peer.buffered = r.limits.slowConsumerBytes;
    r.delivery.deliver(ROOM, [chatEntry(1, 1)]);
    expect(slow.peer.closedWith).toBe(CLOSE.policy);
    expect(slow.conn.state).toBe("closed");
    expect(r.replica.members.has(slow.conn.id)).toBe(false);
    expect(atLimit.peer.closedWith).toBeUndefined();
    expect(fine.peer.closedWith).toBeUndefined();
    r.delivery.deliver(ROOM, [chatEntry(2, 2)]);
    expect(fine.peer.inbox).toEqual([chat(1), chat(2)]);
  });

  it("leaves a pending connection alone, whatever it has buffered", () => {
    const r = rig();
    const pending = r.add("pending");
    pending.peer.buffered = r.limits.slowConsumerBytes * 2;
    r.delivery.deliver(ROOM, [chatEntry(1, 1)]);
    expect(pending.peer.closedWith).toBeUndefined();
  });

  it("checks backlogs at most every 50 ms", () => {
    const r = rig();
    const m = r.members[0] as Member;
    r.delivery.deliver(ROOM, [chatEntry(1, 1)]);
    m.peer.buffered = r.limits.slowConsumerBytes + 1;
    r.clock.t += 49;
    r.delivery.deliver(ROOM, [chatEntry(2, 2)]);
    expect(m.peer.closedWith).toBeUndefined();
    r.clock.t += 1;
    r.delivery.deliver(ROOM, [chatEntry(3, 3)]);
    expect(m.peer.closedWith).toBe(CLOSE.policy);
  });
});

describe("Delivery of typing and takeovers", () => {
  it("relays typing to every member but the typer", () => {
    const r = rig();
    const [typer, other] = r.members as [Member, Member];
    const wire = encode({ type: "typing", room: ROOM, nick: "ann" });
    r.delivery.deliver(ROOM, [{ n: 1, kind: "typing", from: typer.conn.id, wire }]);
    expect(typer.peer.inbox).toEqual([]);
    expect(other.peer.inbox).toEqual([{ type: "typing", room: ROOM, nick: "ann" }]);
  });

  it("sends presence held before a typing event first", () => {
    const r = rig();
    const wire = encode({ type: "typing", room: ROOM, nick: "ann" });
    r.delivery.deliver(ROOM, [
      join(1, "ann"),
      { n: 2, kind: "typing", from: "elsewhere", wire },
      join(3, "bob"),
    ]);
    expect(r.members[0]?.peer.inbox).toEqual([
      presence(joined("ann")),
      { type: "typing", room: ROOM, nick: "ann" },
      presence(joined("bob")),
    ]);
  });

  it("closes the connection a resumed session replaced with 4001, without a leave", () => {
    const r = rig();
    const [stale, other] = r.members as [Member, Member];
    stale.conn.claimed = true;
    r.delivery.deliver(ROOM, [{ n: 1, kind: "replaced", conn: stale.conn.id }]);
    expect(stale.peer.closedWith).toBe(CLOSE.replaced);
    expect(other.peer.closedWith).toBeUndefined();
    expect(r.leaves).toEqual([]);
  });
});

describe("Delivery, as a property", () => {
  type Op = { kind: "presence"; event: PresenceEvent } | { kind: "chat" };
  const nick = fc.constantFrom("ann", "Bob", "cy", "Dee");
  const opArb: fc.Arbitrary<Op> = fc.oneof(
    fc.record({ kind: fc.constant("chat" as const) }),
    nick.map((n) => ({ kind: "presence" as const, event: { event: "join" as const, nick: n } })),
    nick.map((n) => ({ kind: "presence" as const, event: { event: "leave" as const, nick: n } })),
    fc.tuple(nick, nick).map(([from, to]) => ({
      kind: "presence" as const,
      event: { event: "nick" as const, from, nick: to },
    })),
  );

  it("a member receives every presence event and every chat once, in the log's order", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(opArb, fc.boolean(), fc.integer({ min: 0, max: 40 })), { maxLength: 60 }),
        fc.boolean(),
        fc.boolean(),
        (steps, big, redeliver) => {
          const r = rig({ members: 3, limits: big ? BIG_ROOM : { presenceBatchMs: 25 } });
          const expected: Array<PresenceEvent | number> = [];
          const all: RoomEntry[] = [];
          let batch: RoomEntry[] = [];
          let seq = 0;
          const flush = (wait: number) => {
            r.delivery.deliver(ROOM, batch);
            // An engine may hand an entry over twice (a replay): it must still arrive once.
            if (redeliver) r.delivery.deliver(ROOM, all.slice(-3));
            batch = [];
            r.advance(wait);
          };
          for (const [op, endsBatch, wait] of steps) {
            const n = all.length + 1;
            const entry: RoomEntry =
              op.kind === "chat" ? chatEntry(n, ++seq) : { n, kind: "presence", event: op.event };
            expected.push(op.kind === "chat" ? seq : op.event);
            all.push(entry);
            batch.push(entry);
            if (endsBatch) flush(wait);
          }
          flush(0);
          r.advance(1000);

          for (const m of r.members) {
            expect(m.peer.closedWith).toBeUndefined();
            const received = m.peer.inbox.flatMap((msg): Array<PresenceEvent | number> => {
              if (msg.type === "chat") return [msg.seq];
              if (msg.type === "presence") return msg.events;
              throw new Error(`unexpected ${msg.type}`);
            });
            expect(received).toEqual(expected);
            const chats = received.filter((x) => typeof x === "number");
            expect(new Set(chats).size).toBe(seq);
          }
          expect(r.replica.held).toEqual([]);
        },
      ),
      { numRuns: 200 },
    );
  });
});
