/**
 * Model-based test of the chat logic: random connect / resume / join / nick / chat / typing / who /
 * disconnect over several clients and rooms, checked after every step against a deliberately
 * simpler model of who is where and who must receive what.
 */
import { describe, expect, it } from "bun:test";
import fc from "fast-check";
import type { ServerMessage } from "../protocol";
import { ChatHub, type Connection } from "../server/hub";
import { MemoryStore } from "../server/memory-store";
import type { ChatStore } from "../server/store";
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
import { usersFrom } from "./support/user-list";

// ---- the system under test: the hub on a fake network ----

interface Real {
  hub: ChatHub;
  net: FakeNet;
  peers: Array<FakePeer | undefined>;
  conns: Array<Connection | undefined>;
  seen: number[];
  clock: { now: number };
}

/** Runs the turn's flush and returns what each slot received since the last step. */
function settle(real: Real): Map<number, ServerMessage[]> {
  real.hub.flush();
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

function check(model: Model, real: Real): void {
  const got = settle(real);
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
  const rooms = real.hub.roomList().map((r) => `${r.room}:${r.users}`);
  const modelRooms = ROOMS.map((r) => `${r}:${model.members(r).length}`).filter((r) => !r.endsWith(":0"));
  expect(rooms.sort()).toEqual(modelRooms.sort());
}

type Cmd = fc.Command<Model, Real>;

function connect(real: Real, slot: number, params: { room: string; nick?: string; resume?: string }): void {
  const peer = real.net.peer();
  real.peers[slot] = peer;
  real.seen[slot] = 0;
  const conn = real.hub.open(peer, params);
  real.conns[slot] = conn;
  peer.onClose = (code) => real.hub.close(conn, code);
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
    readonly room: string,
    readonly nick: string | undefined,
  ) {}
  check = (m: Readonly<Model>) =>
    !m.clients[this.slot]?.open && (this.nick === undefined || !this.nick.includes(" "));
  run(m: Model, r: Real): void {
    const nick = this.nick === undefined ? m.guestNick(this.room) : m.freeNick(this.room, this.nick);
    m.presence(this.room, { event: "join", nick });
    m.clients[this.slot] = { open: true, room: this.room, nick, token: "", lastTyping: -1e9, ids: new Map() };
    m.welcome(this.slot);
    connect(
      r,
      this.slot,
      this.nick === undefined ? { room: this.room } : { room: this.room, nick: this.nick },
    );
    check(m, r);
    (m.clients[this.slot] as ModelClient).token = tokenOf(r, this.slot);
  }
  toString = () => `connect(${this.slot}, ${this.room}, ${this.nick})`;
}

/** A new connection in `slot` presenting the resume token `from` was given. */
class Resume implements Cmd {
  constructor(
    readonly slot: number,
    readonly from: number,
  ) {}
  check = (m: Readonly<Model>) => {
    const src = m.clients[this.from];
    return src !== undefined && src.token !== "" && (this.slot === this.from || !m.clients[this.slot]?.open);
  };
  run(m: Model, r: Real): void {
    const src = m.clients[this.from] as ModelClient;
    const token = src.token;
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
    const stale = r.peers[this.from];
    connect(r, this.slot, { room: src.room, resume: token });
    if (src.open) expect(stale === undefined || stale.closedWith === 4001).toBe(true);
    check(m, r);
  }
  toString = () => `resume(${this.slot} <- ${this.from})`;
}

abstract class OnOpen implements Cmd {
  constructor(readonly slot: number) {}
  check = (m: Readonly<Model>) => m.clients[this.slot]?.open === true;
  abstract run(m: Model, r: Real): void;
  send(r: Real, msg: object): void {
    r.hub.receive(r.conns[this.slot] as Connection, JSON.stringify(msg));
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
  run(m: Model, r: Real): void {
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
    check(m, r);
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
  run(m: Model, r: Real): void {
    const c = m.clients[this.slot] as ModelClient;
    if (this.nick.includes(" ")) m.to(this.slot, { type: "error", code: "nick_invalid" });
    else if (m.taken(c.room, this.nick, this.slot)) m.to(this.slot, { type: "error", code: "nick_taken" });
    else if (this.nick !== c.nick) {
      m.presence(c.room, { event: "nick", from: c.nick, nick: this.nick });
      c.nick = this.nick;
    }
    this.send(r, { type: "nick", nick: this.nick });
    check(m, r);
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
  run(m: Model, r: Real): void {
    const c = m.clients[this.slot] as ModelClient;
    if (this.room !== c.room) {
      m.presence(c.room, { event: "leave", nick: c.nick }, this.slot);
      c.room = this.room;
      c.nick = m.freeNick(this.room, c.nick, this.slot);
      m.presence(this.room, { event: "join", nick: c.nick }, this.slot);
    }
    m.welcome(this.slot);
    this.send(r, { type: "join", room: this.room });
    check(m, r);
  }
  override toString = () => `join(${this.slot}, ${this.room})`;
}

class Typing extends OnOpen {
  run(m: Model, r: Real): void {
    const c = m.clients[this.slot] as ModelClient;
    if (m.now - c.lastTyping >= 1000) {
      c.lastTyping = m.now;
      for (const i of m.members(c.room, this.slot)) m.to(i, { type: "typing", room: c.room, nick: c.nick });
    }
    this.send(r, { type: "typing" });
    check(m, r);
  }
  override toString = () => `typing(${this.slot})`;
}

class Who extends OnOpen {
  run(m: Model, r: Real): void {
    const c = m.clients[this.slot] as ModelClient;
    m.to(this.slot, { type: "users", room: c.room, users: m.users(c.room) });
    this.send(r, { type: "who" });
    check(m, r);
  }
  override toString = () => `who(${this.slot})`;
}

class Disconnect extends OnOpen {
  run(m: Model, r: Real): void {
    const c = m.clients[this.slot] as ModelClient;
    c.open = false;
    m.presence(c.room, { event: "leave", nick: c.nick });
    const peer = r.peers[this.slot] as FakePeer;
    peer.closedWith = 1000;
    r.hub.close(r.conns[this.slot] as Connection, 1000);
    check(m, r);
  }
  override toString = () => `disconnect(${this.slot})`;
}

class Tick implements Cmd {
  constructor(readonly ms: number) {}
  check = () => true;
  run(m: Model, r: Real): void {
    m.now += this.ms;
    r.clock.now = m.now;
    check(m, r);
  }
  toString = () => `tick(${this.ms})`;
}

const slot = fc.nat({ max: SLOTS - 1 });
const room = fc.constantFrom(...ROOMS);
const nick = fc.constantFrom(...NICKS);
const text = fc.oneof(fc.constantFrom("hi", "<b>x</b>", "😀 ok"), fc.string({ minLength: 1, maxLength: 8 }));
const commands = fc.commands(
  [
    fc.tuple(slot, room, nick).map(([s, rm, n]) => new Connect(s, rm, n)),
    fc.tuple(slot, slot).map(([s, f]) => new Resume(s, f)),
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

function setup(store: ChatStore): { model: Model; real: Real } {
  const model = new Model();
  const clock = { now: model.now };
  const net = new FakeNet();
  const hub = new ChatHub({
    store,
    fanout: net,
    now: () => clock.now,
    schedule: () => {},
    limits: { rateLimit: 0 },
  });
  return { model, real: { hub, net, peers: [], conns: [], seen: [], clock } };
}

function property(makeStore: () => ChatStore) {
  return fc.property(commands, (cmds) => {
    fc.modelRun(() => setup(makeStore()), cmds);
  });
}

/** Forgets a room's seq once it empties: the classic bug of keeping counters only in memory. */
class AmnesicStore extends MemoryStore {
  override lastSeq(): number {
    return 0;
  }
}

describe("chat logic against its model", () => {
  it("agrees with the model on user lists, nicknames, deliveries and seq", () => {
    fc.assert(
      property(() => new MemoryStore()),
      { numRuns: 1000, seed: 42 },
    );
  });

  it("also holds for random seeds", () => {
    fc.assert(
      property(() => new MemoryStore()),
      { numRuns: 200 },
    );
  });

  it("catches a store that forgets each room's last seq", () => {
    expect(() =>
      fc.assert(
        property(() => new AmnesicStore()),
        { numRuns: 300, seed: 7 },
      ),
    ).toThrow();
  });
});
