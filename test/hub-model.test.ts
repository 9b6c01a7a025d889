/**
 * Model-based test of the chat core: random connect / resume / join / nick / chat / typing / who /
 * disconnect over several clients and rooms, checked after every step against a deliberately simpler
 * model of who is where and who must receive what. Written once, run against each engine: the local
 * one (one hub), and Redis (two hubs, "processes", sharing one redis-server, each slot on either).
 */
import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import fc from "fast-check";
import type { ServerMessage } from "../protocol";
import type { Connection } from "../server/chat/connection";
import type { ChatHub } from "../server/chat/hub";
import { MemoryStore } from "../server/engines/local/memory-store";
import { RedisCluster, redisClusterAvailable } from "./redis/support/redis-cluster";
import { RedisProcess, redisAvailable } from "./redis/support/redis-server";
import {
  comparable,
  Model,
  type ModelClient,
  NICKS,
  ROOMS,
  receivedSince,
  SLOTS,
} from "./support/chat-model";
import { FakeNet, type FakePeer } from "./support/fake-net";
import { localHub, redisHub } from "./support/hubs";
import { usersFrom } from "./support/user-list";

const available = redisAvailable();
const clusterAvailable = redisClusterAvailable();
let cluster: RedisCluster | undefined;
let redis: RedisProcess | undefined;
beforeAll(async () => {
  if (available) redis = await RedisProcess.start();
});
afterAll(async () => {
  await redis?.stop();
});

// ---- the system under test: one or more hubs, each on its own fake network ----

interface Real {
  hubs: ChatHub[];
  nets: FakeNet[];
  hubOf: number[];
  peers: Array<FakePeer | undefined>;
  conns: Array<Connection | undefined>;
  seen: number[];
  clock: { now: number };
}

/** Lets every write finish and every hub deliver every log, then returns what each slot received. */
async function settle(real: Real): Promise<Map<number, ServerMessage[]>> {
  for (let round = 0; round < 2; round++) for (const hub of real.hubs) await hub.quiesce();
  return receivedSince(real.peers, real.seen);
}

/** Each open slot's user list, as the client itself builds it. */
function userLists(real: Real): Map<number, string[]> {
  const lists = new Map<number, string[]>();
  real.peers.forEach((p, i) => {
    if (p && p.closedWith === undefined) lists.set(i, usersFrom(p.inbox));
  });
  return lists;
}

async function check(model: Model, real: Real): Promise<void> {
  const got = await settle(real);
  const slots = new Set([...got.keys(), ...model.expect.keys()]);
  for (const slot of slots) {
    expect({ slot, msgs: (got.get(slot) ?? []).map(comparable) }).toEqual({
      slot,
      msgs: model.expect.get(slot) ?? [],
    });
  }
  model.expect.clear();
  for (const [slot, users] of userLists(real)) {
    const c = model.clients[slot] as ModelClient;
    expect([...users].sort()).toEqual(model.users(c.room).sort());
  }
  // Each hub lists every room with users on any process, with the room's users on every process.
  const modelRooms = ROOMS.map((r) => `${r}:${model.members(r).length}`).filter((r) => !r.endsWith(":0"));
  for (const [hub, h] of real.hubs.entries()) {
    const rooms = (await h.roomList()).map((r) => `${r.room}:${r.users}`);
    expect({ hub, rooms: rooms.sort() }).toEqual({ hub, rooms: [...modelRooms].sort() });
  }
}

type Cmd = fc.AsyncCommand<Model, Real>;

function connect(
  real: Real,
  slot: number,
  hub: number,
  params: { room: string; nick?: string; resume?: string },
): void {
  const at = hub % real.hubs.length;
  const peer = (real.nets[at] as FakeNet).peer();
  const h = real.hubs[at] as ChatHub;
  real.peers[slot] = peer;
  real.hubOf[slot] = at;
  real.seen[slot] = 0;
  const conn = h.open(peer, params);
  real.conns[slot] = conn;
  peer.onClose = (code) => h.close(conn, code);
}

/** The token the real server gave a slot, read from its latest welcome. */
function tokenOf(real: Real, slot: number): string {
  const welcomes = (real.peers[slot]?.inbox ?? []).filter((m) => m.type === "welcome");
  const last = welcomes[welcomes.length - 1];
  return last?.type === "welcome" ? last.resumeToken : "";
}

class Connect implements Cmd {
  constructor(
    readonly slot: number,
    readonly hub: number,
    readonly room: string,
    readonly nick: string | undefined,
  ) {}
  check = (m: Readonly<Model>) =>
    !m.clients[this.slot]?.open && (this.nick === undefined || !this.nick.includes(" "));
  async run(m: Model, r: Real): Promise<void> {
    const nick = this.nick === undefined ? m.guestNick(this.room) : m.freeNick(this.room, this.nick);
    m.presence(this.room, { event: "join", nick });
    m.clients[this.slot] = { open: true, room: this.room, nick, token: "", lastTyping: -1e9, ids: new Map() };
    m.welcome(this.slot);
    connect(
      r,
      this.slot,
      this.hub,
      this.nick === undefined ? { room: this.room } : { room: this.room, nick: this.nick },
    );
    await check(m, r);
    (m.clients[this.slot] as ModelClient).token = tokenOf(r, this.slot);
  }
  toString = () => `connect(${this.slot}@${this.hub}, ${this.room}, ${this.nick})`;
}

/** A new connection in `slot`, through either process, presenting the resume token `from` was given. */
class Resume implements Cmd {
  constructor(
    readonly slot: number,
    readonly from: number,
    readonly hub: number,
  ) {}
  check = (m: Readonly<Model>) => {
    const src = m.clients[this.from];
    return src !== undefined && src.token !== "" && (this.slot === this.from || !m.clients[this.slot]?.open);
  };
  async run(m: Model, r: Real): Promise<void> {
    const src = m.clients[this.from] as ModelClient;
    const token = src.token;
    const stale = src.open ? r.peers[this.from] : undefined;
    if (src.open) {
      // The stale connection is closed with 4001 and the new one takes its place silently.
      r.peers[this.from] = undefined;
      m.clients[this.from] = undefined;
      m.clients[this.slot] = { ...src, lastTyping: -1e9, ids: new Map(src.ids) };
    } else {
      const nick = m.freeNick(src.room, src.nick);
      m.presence(src.room, { event: "join", nick });
      m.clients[this.slot] = { ...src, open: true, nick, lastTyping: -1e9, ids: new Map(src.ids) };
      if (this.slot !== this.from) m.clients[this.from] = undefined;
    }
    m.welcome(this.slot);
    connect(r, this.slot, this.hub, { room: src.room, resume: token });
    await check(m, r);
    if (stale) expect(stale.closedWith).toBe(4001);
    // Every resume hands out a new token; the old one stops working.
    const rotated = tokenOf(r, this.slot);
    expect(rotated).not.toBe(token);
    (m.clients[this.slot] as ModelClient).token = rotated;
  }
  toString = () => `resume(${this.slot}@${this.hub} <- ${this.from})`;
}

abstract class OnOpen implements Cmd {
  constructor(readonly slot: number) {}
  check = (m: Readonly<Model>) => m.clients[this.slot]?.open === true;
  abstract run(m: Model, r: Real): Promise<void>;
  send(r: Real, msg: object): void {
    const hub = r.hubs[r.hubOf[this.slot] as number] as ChatHub;
    hub.receive(r.conns[this.slot] as Connection, JSON.stringify(msg));
  }
}
class Chat extends OnOpen {
  constructor(
    slot: number,
    readonly text: string,
    readonly id: string | undefined,
  ) {
    super(slot);
  }
  async run(m: Model, r: Real): Promise<void> {
    const c = m.clients[this.slot] as ModelClient;
    const dup = this.id === undefined ? undefined : c.ids.get(`${c.room}/${this.id}`);
    if (dup !== undefined && this.id !== undefined) {
      m.to(this.slot, { type: "ack", id: this.id, seq: dup });
    } else {
      const seq = (m.seq.get(c.room) ?? 0) + 1;
      m.seq.set(c.room, seq);
      const msg = { seq, nick: c.nick, text: this.text, sentAt: new Date(m.now).toISOString() };
      m.log.set(c.room, [...(m.log.get(c.room) ?? []), msg]);
      for (const i of m.members(c.room)) m.to(i, { type: "chat", room: c.room, ...msg });
      if (this.id !== undefined) {
        c.ids.set(`${c.room}/${this.id}`, seq);
        m.to(this.slot, { type: "ack", id: this.id, seq });
      }
    }
    this.send(
      r,
      this.id === undefined
        ? { type: "chat", text: this.text }
        : { type: "chat", text: this.text, id: this.id },
    );
    await check(m, r);
  }
  override toString = () => `chat(${this.slot}, ${JSON.stringify(this.text)}, ${this.id})`;
}

class Nick extends OnOpen {
  constructor(
    slot: number,
    readonly nick: string,
  ) {
    super(slot);
  }
  async run(m: Model, r: Real): Promise<void> {
    const c = m.clients[this.slot] as ModelClient;
    if (this.nick.includes(" ")) m.to(this.slot, { type: "error", code: "nick_invalid" });
    else if (m.taken(c.room, this.nick, this.slot)) m.to(this.slot, { type: "error", code: "nick_taken" });
    else if (this.nick !== c.nick) {
      m.presence(c.room, { event: "nick", from: c.nick, nick: this.nick });
      c.nick = this.nick;
    }
    this.send(r, { type: "nick", nick: this.nick });
    await check(m, r);
  }
  override toString = () => `nick(${this.slot}, ${this.nick})`;
}

class Join extends OnOpen {
  constructor(
    slot: number,
    readonly room: string,
  ) {
    super(slot);
  }
  async run(m: Model, r: Real): Promise<void> {
    const c = m.clients[this.slot] as ModelClient;
    if (this.room !== c.room) {
      m.presence(c.room, { event: "leave", nick: c.nick }, this.slot);
      c.room = this.room;
      c.nick = m.freeNick(this.room, c.nick, this.slot);
      m.presence(this.room, { event: "join", nick: c.nick }, this.slot);
    }
    m.welcome(this.slot);
    this.send(r, { type: "join", room: this.room });
    await check(m, r);
  }
  override toString = () => `join(${this.slot}, ${this.room})`;
}

class Typing extends OnOpen {
  async run(m: Model, r: Real): Promise<void> {
    const c = m.clients[this.slot] as ModelClient;
    if (m.now - c.lastTyping >= 1000) {
      c.lastTyping = m.now;
      for (const i of m.members(c.room, this.slot)) m.to(i, { type: "typing", room: c.room, nick: c.nick });
    }
    this.send(r, { type: "typing" });
    await check(m, r);
  }
  override toString = () => `typing(${this.slot})`;
}

class Who extends OnOpen {
  async run(m: Model, r: Real): Promise<void> {
    const c = m.clients[this.slot] as ModelClient;
    m.to(this.slot, { type: "users", room: c.room, users: m.users(c.room) });
    this.send(r, { type: "who" });
    await check(m, r);
  }
  override toString = () => `who(${this.slot})`;
}

class Disconnect extends OnOpen {
  async run(m: Model, r: Real): Promise<void> {
    const c = m.clients[this.slot] as ModelClient;
    c.open = false;
    m.presence(c.room, { event: "leave", nick: c.nick });
    const peer = r.peers[this.slot] as FakePeer;
    peer.closedWith = 1000;
    (r.hubs[r.hubOf[this.slot] as number] as ChatHub).close(r.conns[this.slot] as Connection, 1000);
    await check(m, r);
  }
  override toString = () => `disconnect(${this.slot})`;
}

class Tick implements Cmd {
  constructor(readonly ms: number) {}
  check = () => true;
  async run(m: Model, r: Real): Promise<void> {
    m.now += this.ms;
    r.clock.now = m.now;
    await check(m, r);
  }
  toString = () => `tick(${this.ms})`;
}

const slot = fc.nat({ max: SLOTS - 1 });
const room = fc.constantFrom(...ROOMS);
const nick = fc.constantFrom(...NICKS);
const hub = fc.nat({ max: 1 });
const text = fc.oneof(fc.constantFrom("hi", "<b>x</b>", "😀 ok"), fc.string({ minLength: 1, maxLength: 8 }));
const commands = fc.commands(
  [
    fc.tuple(slot, hub, room, nick).map(([s, h, rm, n]) => new Connect(s, h, rm, n)),
    fc.tuple(slot, slot, hub).map(([s, f, h]) => new Resume(s, f, h)),
    fc
      .tuple(slot, text, fc.option(fc.constantFrom("m1", "m2", "m3"), { nil: undefined }))
      .filter(([, t]) => t.trim().length > 0)
      .map(([s, t, id]) => new Chat(s, t, id)),
    fc.tuple(slot, fc.constantFrom(...NICKS.filter((n) => n !== undefined))).map(([s, n]) => new Nick(s, n)),
    fc.tuple(slot, room).map(([s, rm]) => new Join(s, rm)),
    slot.map((s) => new Typing(s)),
    slot.map((s) => new Who(s)),
    slot.map((s) => new Disconnect(s)),
    fc.constantFrom(300, 1200).map((ms) => new Tick(ms)),
  ],
  { maxCommands: 80, size: "max" },
);

let runs = 0;

/** How a run's hubs (with their networks) are made, healthy or deliberately broken. */
interface EngineUnderTest {
  make(clock: { now: number }, broken: boolean): Promise<Array<{ hub: ChatHub; net: FakeNet }>>;
}

/** Forgets a room's seq once it empties: the classic bug of keeping counters only in memory. */
class AmnesicStore extends MemoryStore {
  override lastSeq(): number {
    return 0;
  }
}

const local: EngineUnderTest = {
  async make(clock, broken) {
    const net = new FakeNet();
    const store = broken ? new AmnesicStore() : new MemoryStore();
    return [{ hub: localHub({ store, fanout: net, now: () => clock.now }), net }];
  },
};

/** Two hubs on one Redis; broken: the second has its own key prefix, two chats that never meet. */
const overRedis: EngineUnderTest = {
  async make(clock, broken) {
    const prefix = `model${++runs}:`;
    const made = [0, 1].map((i) => {
      const net = new FakeNet();
      const hub = redisHub({
        url: (redis as RedisProcess).url,
        prefix: broken && i === 1 ? `${prefix}other:` : prefix,
        fanout: net,
        now: () => clock.now,
      });
      return { hub, net };
    });
    await Promise.all(made.map((m) => m.hub.ready));
    return made;
  },
};

/** Two hubs on a Redis Cluster of 3 primaries and 3 replicas (rooms over 16 partitions). */
const overCluster: EngineUnderTest = {
  async make(clock, broken) {
    const prefix = `cmodel${++runs}:`;
    const made = [0, 1].map((i) => {
      const net = new FakeNet();
      const hub = redisHub({
        url: "",
        cluster: (cluster as RedisCluster).startupNodes,
        prefix: broken && i === 1 ? `${prefix}other:` : prefix,
        fanout: net,
        now: () => clock.now,
      });
      return { hub, net };
    });
    await Promise.all(made.map((m) => m.hub.ready));
    return made;
  },
};

async function setup(engine: EngineUnderTest, broken: boolean): Promise<{ model: Model; real: Real }> {
  const model = new Model();
  const clock = { now: model.now };
  const made = await engine.make(clock, broken);
  const hubs = made.map((m) => m.hub);
  const nets = made.map((m) => m.net);
  return { model, real: { hubs, nets, hubOf: [], peers: [], conns: [], seen: [], clock } };
}

function property(engine: EngineUnderTest, broken = false) {
  return fc.asyncProperty(commands, async (cmds) => {
    const s = await setup(engine, broken);
    try {
      await fc.asyncModelRun(() => s, cmds);
    } finally {
      for (const h of s.real.hubs) h.shutdown();
      await Promise.all(s.real.hubs.map((h) => h.stop()));
    }
  });
}

describe("chat core against its model, local engine", () => {
  it("agrees with the model on user lists, nicknames, deliveries, seq and resume", async () => {
    await fc.assert(property(local), { numRuns: 500, seed: 42 });
  }, 120_000);

  it("also holds for random seeds", async () => {
    await fc.assert(property(local), { numRuns: 100 });
  }, 120_000);

  it("catches a store that forgets each room's last seq", async () => {
    await expect(fc.assert(property(local, true), { numRuns: 300, seed: 7 })).rejects.toThrow();
  }, 120_000);
});

describe.skipIf(!clusterAvailable)("chat core against its model, two processes on a Redis Cluster", () => {
  beforeAll(async () => {
    cluster = await RedisCluster.start();
  }, 60_000);
  afterAll(async () => {
    await cluster?.stop();
  });

  it("agrees with the model across two processes: user lists, nicknames, deliveries, seq, resume", async () => {
    await fc.assert(property(overCluster), { numRuns: 60, seed: 42 });
  }, 120_000);

  it("catches processes that do not share their state (each its own key prefix)", async () => {
    await expect(fc.assert(property(overCluster, true), { numRuns: 40, seed: 7 })).rejects.toThrow();
  }, 120_000);
});

describe.skipIf(!available)("chat core against its model, Redis engine with two processes", () => {
  it("agrees with the model across two processes: user lists, nicknames, deliveries, seq, resume", async () => {
    await fc.assert(property(overRedis), { numRuns: 200, seed: 42 });
  }, 120_000);

  it("also holds for random seeds", async () => {
    await fc.assert(property(overRedis), { numRuns: 50 });
  }, 120_000);

  it("catches processes that do not share their state (each its own key prefix)", async () => {
    await expect(fc.assert(property(overRedis, true), { numRuns: 60, seed: 7 })).rejects.toThrow();
  }, 120_000);
});
