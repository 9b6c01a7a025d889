/**
 * The model-based test of test/hub-model.test.ts run against the Redis implementation: the same model
 * and commands, over two RedisHubs ("processes") sharing one redis-server, each client slot connected
 * through either. Async: after each command, both hubs settle (writes answered, streams replayed).
 */
import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import fc from "fast-check";
import type { ServerMessage } from "../../protocol";
import type { RedisConnection } from "../../server/redis/redis-connection";
import { RedisHub } from "../../server/redis/redis-hub";
import {
  comparable,
  Model,
  type ModelClient,
  NICKS,
  ROOMS,
  receivedSince,
  SLOTS,
} from "../support/chat-model";
import { FakeNet, type FakePeer } from "../support/fake-net";
import { usersFrom } from "../support/user-list";
import { RedisProcess, redisAvailable } from "./support/redis-server";

const available = redisAvailable();
let redis: RedisProcess | undefined;
beforeAll(async () => {
  if (available) redis = await RedisProcess.start();
});
afterAll(async () => {
  await redis?.stop();
});

// ---- the system under test: two Redis hubs, each on its own fake network ----

interface Real {
  hubs: RedisHub[];
  nets: FakeNet[];
  hubOf: number[];
  peers: Array<FakePeer | undefined>;
  conns: Array<RedisConnection | undefined>;
  seen: number[];
  clock: { now: number };
}

/** Lets every write finish and both hubs replay every stream, then returns what each slot received. */
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
  // Each process lists every room with users on any process, with the room's users on every process.
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
  const peer = (real.nets[hub] as FakeNet).peer();
  const h = real.hubs[hub] as RedisHub;
  real.peers[slot] = peer;
  real.hubOf[slot] = hub;
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
  }
  toString = () => `resume(${this.slot}@${this.hub} <- ${this.from})`;
}

abstract class OnOpen implements Cmd {
  constructor(readonly slot: number) {}
  check = (m: Readonly<Model>) => m.clients[this.slot]?.open === true;
  abstract run(m: Model, r: Real): Promise<void>;
  send(r: Real, msg: object): void {
    const hub = r.hubs[r.hubOf[this.slot] as number] as RedisHub;
    hub.receive(r.conns[this.slot] as RedisConnection, JSON.stringify(msg));
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
    (r.hubs[r.hubOf[this.slot] as number] as RedisHub).close(r.conns[this.slot] as RedisConnection, 1000);
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

/** Two hubs on one Redis; `split` gives the second its own key prefix: two chats that never meet. */
async function setup(split: boolean): Promise<{ model: Model; real: Real }> {
  const model = new Model();
  const clock = { now: model.now };
  const prefix = `model${++runs}:`;
  const nets = [new FakeNet(), new FakeNet()];
  const hubs = nets.map(
    (net, i) =>
      new RedisHub({
        url: (redis as RedisProcess).url,
        fanout: net,
        prefix: split && i === 1 ? `${prefix}other:` : prefix,
        now: () => clock.now,
        schedule: () => {},
        limits: { rateLimit: 0 },
      }),
  );
  await Promise.all(hubs.map((h) => h.ready));
  return { model, real: { hubs, nets, hubOf: [], peers: [], conns: [], seen: [], clock } };
}

function property(split = false) {
  return fc.asyncProperty(commands, async (cmds) => {
    const s = await setup(split);
    try {
      await fc.asyncModelRun(() => s, cmds);
    } finally {
      for (const h of s.real.hubs) h.shutdown();
      await Promise.all(s.real.hubs.map((h) => h.stop()));
    }
  });
}

describe.skipIf(!available)("Redis chat logic against the single-process model", () => {
  it("agrees with the model across two processes: user lists, nicknames, deliveries, seq, resume", async () => {
    await fc.assert(property(), { numRuns: 200, seed: 42 });
  }, 120_000);

  it("also holds for random seeds", async () => {
    await fc.assert(property(), { numRuns: 50 });
  }, 120_000);

  it("catches processes that do not share their state (each its own key prefix)", async () => {
    await expect(fc.assert(property(true), { numRuns: 60, seed: 7 })).rejects.toThrow();
  }, 120_000);
});
