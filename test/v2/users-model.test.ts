/**
 * Model test of v2 in the core: random opens and closes of several tabs of a few users, joins,
 * parts, direct rooms, posts (some mentioning others), read markers and renames, checked after every
 * step against a deliberately simpler model: who is in which room, every tab's view of its rooms
 * (members from welcome/joined plus presence applied in order, posts gapless), and, at every
 * arrival, the exact unread and mention counts of each room.
 */
import { describe, expect, it } from "bun:test";
import fc from "fast-check";
import { nickKey, type v2 } from "../../protocol";
import type { Connection } from "../../server/chat/connection";
import type { ChatHub } from "../../server/chat/hub";
import type { FakeNet, FakePeer } from "../support/fake-net";
import {
  clusterForModels,
  onSystem,
  overLocal,
  overRedis,
  redisForModels,
  type System,
} from "../support/v2-systems";

const available = redisForModels();
const onCluster = clusterForModels();

const USERS = ["u1", "u2", "u3"];
const FIRST_NICK: Record<string, string> = { u1: "ann", u2: "bob", u3: "cat" };
const NICKS = ["ann", "bob", "cat", "dan", "Ann"];
const ROOMS = ["r1", "r2", "r3"];
const SLOTS = 5;

type Action =
  | { k: "open"; slot: number; user: number }
  | { k: "close"; slot: number }
  | { k: "join"; slot: number; room: number }
  | { k: "part"; slot: number; room: number }
  | { k: "chat"; slot: number; room: number; mention: number }
  | { k: "read"; slot: number; room: number; back: number }
  | { k: "nick"; slot: number; nick: number }
  | { k: "dm"; slot: number; user: number };

const slot = fc.nat(SLOTS - 1);
const open = fc.record({ k: fc.constant("open" as const), slot, user: fc.nat(USERS.length - 1) });
const action: fc.Arbitrary<Action> = fc.oneof(
  open,
  open,
  open,
  fc.record({ k: fc.constant("close" as const), slot }),
  fc.record({ k: fc.constant("join" as const), slot, room: fc.nat(ROOMS.length - 1) }),
  fc.record({ k: fc.constant("part" as const), slot, room: fc.nat(ROOMS.length - 1) }),
  fc.record({
    k: fc.constant("chat" as const),
    slot,
    room: fc.nat(ROOMS.length - 1),
    mention: fc.nat(NICKS.length),
  }),
  fc.record({
    k: fc.constant("chat" as const),
    slot,
    room: fc.nat(ROOMS.length - 1),
    mention: fc.nat(NICKS.length),
  }),
  fc.record({ k: fc.constant("read" as const), slot, room: fc.nat(ROOMS.length - 1), back: fc.nat(3) }),
  fc.record({ k: fc.constant("nick" as const), slot, nick: fc.nat(NICKS.length - 1) }),
  fc.record({ k: fc.constant("dm" as const), slot, user: fc.nat(USERS.length - 1) }),
);

// ---- the model ----

interface Post {
  seq: number;
  author: string;
  mentions: string[];
}

class Model {
  nick = new Map(USERS.map((u) => [u, FIRST_NICK[u] as string]));
  rooms = new Map(USERS.map((u) => [u, new Map<string, number>()])); // user -> room -> readSeq
  posts = new Map<string, Post[]>();
  slots: Array<string | undefined> = new Array(SLOTS).fill(undefined);
  /** Direct rooms by the sorted pair, named as the server named them. */
  dms = new Map<string, string>();

  online(user: string): boolean {
    return this.slots.includes(user);
  }
  lastSeq(room: string): number {
    return this.posts.get(room)?.length ?? 0;
  }
  /** Online users in `room`: userId -> nick. */
  present(room: string): Map<string, string> {
    const out = new Map<string, string>();
    for (const u of USERS)
      if (this.online(u) && this.rooms.get(u)?.has(room)) out.set(u, this.nick.get(u) as string);
    return out;
  }
  nickFreeFor(user: string, nick: string, inRooms: Iterable<string>): boolean {
    for (const room of inRooms) {
      for (const [u, n] of this.present(room)) if (u !== user && nickKey(n) === nickKey(nick)) return false;
    }
    return true;
  }
  counts(user: string, room: string): { unread: number; mentions: number } {
    const read = this.rooms.get(user)?.get(room) ?? 0;
    const after = (this.posts.get(room) ?? []).filter((p) => p.seq > read && p.author !== user);
    return { unread: after.length, mentions: after.filter((p) => p.mentions.includes(user)).length };
  }
}

// ---- a tab's own view, rebuilt from what it received ----

interface View {
  rooms: Map<string, { users: Set<string>; lastSeq: number }>;
  gaps: string[];
  nick: string;
}

function viewOf(inbox: readonly v2.ServerMessageV2[]): View {
  const view: View = { rooms: new Map(), gaps: [], nick: "" };
  const state = (s: v2.RoomState) => ({ users: new Set(s.users), lastSeq: s.lastSeq });
  for (const m of inbox) {
    if (m.type === "welcome") {
      view.nick = m.user.nick;
      for (const s of m.rooms) view.rooms.set(s.room, state(s));
    } else if (m.type === "joined") view.rooms.set(m.room, state(m));
    else if (m.type === "parted") view.rooms.delete(m.room);
    else if (m.type === "presence") {
      const r = view.rooms.get(m.room);
      for (const e of m.events) {
        if (e.event === "join") r?.users.add(e.nick);
        else if (e.event === "leave") r?.users.delete(e.nick);
        else {
          r?.users.delete(e.from);
          r?.users.add(e.nick);
        }
      }
    } else if (m.type === "chat") {
      const r = view.rooms.get(m.room);
      if (r && m.seq !== r.lastSeq + 1) view.gaps.push(`${m.room}: ${m.seq} after ${r.lastSeq}`);
      if (r) r.lastSeq = m.seq;
    }
  }
  return view;
}

// ---- running one sequence ----

async function run(sys: System, actions: Action[]): Promise<void> {
  const model = new Model();
  const peers: Array<FakePeer | undefined> = [];
  const conns: Array<Connection | undefined> = [];
  const minted = new Set<string>();
  let chats = 0;
  const settle = () => sys.settle();
  /** Slot i is a tab on process i % hubs. */
  const hubOf = (i: number) => sys.hubs[i % sys.hubs.length] as ChatHub;
  const send = async (i: number, msg: object) => {
    hubOf(i).receive(conns[i] as Connection, JSON.stringify(msg));
    await settle();
  };
  const lastOf = (i: number) => peers[i]?.inbox2.at(-1);
  for (const a of actions) {
    const user = model.slots[a.slot];
    if (a.k === "open") {
      if (user !== undefined) continue;
      const u = USERS[a.user] as string;
      const hub = hubOf(a.slot);
      const peer = (sys.nets[a.slot % sys.nets.length] as FakeNet).peer(2);
      const first = !minted.has(u);
      minted.add(u);
      const conn = hub.open(peer, {
        room: "",
        v2: { userId: u, mod: false, nick: FIRST_NICK[u], identityToken: first ? `${u}.t` : undefined },
      });
      peer.onClose = (code) => hub.close(conn, code);
      peers[a.slot] = peer;
      conns[a.slot] = conn;
      model.slots[a.slot] = u;
      await settle();
      const welcome = peer.inbox2.find((m) => m.type === "welcome");
      expect(welcome?.type).toBe("welcome");
      if (welcome?.type !== "welcome") return;
      // Its nick may have had to change on arrival; the model follows the server's choice only then.
      if (welcome.user.nick !== model.nick.get(u)) {
        expect(model.nickFreeFor(u, model.nick.get(u) as string, model.rooms.get(u)?.keys() ?? [])).toBe(
          false,
        );
        model.nick.set(u, welcome.user.nick);
      }
      for (const s of welcome.rooms) {
        expect([s.room, s.unread, s.mentions]).toEqual([s.room, ...Object.values(model.counts(u, s.room))]);
        expect(s.readSeq).toBe(model.rooms.get(u)?.get(s.room) ?? -1);
      }
    } else if (user === undefined) {
      continue;
    } else if (a.k === "close") {
      peers[a.slot]?.close(1000);
      model.slots[a.slot] = undefined;
      await settle();
    } else if (a.k === "join") {
      const room = ROOMS[a.room] as string;
      const mine = model.rooms.get(user) as Map<string, number>;
      const free = model.nickFreeFor(user, model.nick.get(user) as string, [room]);
      await send(a.slot, { type: "join", room, id: "j" });
      if (mine.has(room)) expect(lastOf(a.slot)).toMatchObject({ type: "joined", room });
      else if (!free) expect(lastOf(a.slot)).toMatchObject({ type: "error", code: "nick_taken", id: "j" });
      else {
        mine.set(room, model.lastSeq(room));
        expect(lastOf(a.slot)).toMatchObject({ type: "joined", room, unread: 0, mentions: 0 });
      }
    } else if (a.k === "part") {
      const room = ROOMS[a.room] as string;
      const mine = model.rooms.get(user) as Map<string, number>;
      await send(a.slot, { type: "part", room, id: "p" });
      if (mine.delete(room)) expect(lastOf(a.slot)).toEqual({ type: "parted", room });
      else expect(lastOf(a.slot)).toMatchObject({ type: "error", code: "not_found", id: "p" });
    } else if (a.k === "chat") {
      const room = ROOMS[a.room] as string;
      const target = NICKS[a.mention];
      const text = target === undefined ? "hello" : `hi @${target}!`;
      const id = `c${++chats}`;
      await send(a.slot, { type: "chat", room, text, id });
      if (!model.rooms.get(user)?.has(room)) {
        expect(lastOf(a.slot)).toMatchObject({ type: "error", code: "not_found", id });
        continue;
      }
      const present = model.present(room);
      const mentions = [...present].filter(
        ([u, n]) => u !== user && target !== undefined && nickKey(n) === nickKey(target),
      );
      const posts = model.posts.get(room) ?? [];
      posts.push({ seq: posts.length + 1, author: user, mentions: mentions.map(([u]) => u) });
      model.posts.set(room, posts);
      expect(lastOf(a.slot)).toEqual({ type: "ack", id, seq: posts.length });
    } else if (a.k === "read") {
      const room = ROOMS[a.room] as string;
      const mine = model.rooms.get(user) as Map<string, number>;
      const seq = Math.max(0, model.lastSeq(room) - a.back);
      await send(a.slot, { type: "read", room, seq, id: "r" });
      if (!mine.has(room)) {
        expect(lastOf(a.slot)).toMatchObject({ type: "error", code: "not_found", id: "r" });
        continue;
      }
      const stored = Math.max(mine.get(room) as number, seq);
      mine.set(room, stored);
      expect(lastOf(a.slot)).toEqual({ type: "read", room, seq: stored });
    } else if (a.k === "nick") {
      const nick = NICKS[a.nick] as string;
      const before = peers[a.slot]?.inbox2.length ?? 0;
      await send(a.slot, { type: "nick", nick, id: "n" });
      if (nick === model.nick.get(user)) continue;
      if (model.nickFreeFor(user, nick, model.rooms.get(user)?.keys() ?? [])) model.nick.set(user, nick);
      else
        expect(peers[a.slot]?.inbox2.slice(before)).toContainEqual(
          expect.objectContaining({ code: "nick_taken" }),
        );
    } else if (a.k === "dm") {
      const nick = model.nick.get(USERS[a.user] as string) as string;
      // The server looks the nick up among the users online in the asker's rooms: the user asked
      // for, or another who took that nick while it was away (or both, in different rooms).
      const holders = new Set<string>();
      for (const r of model.rooms.get(user)?.keys() ?? [])
        for (const [u, n] of model.present(r)) if (nickKey(n) === nickKey(nick)) holders.add(u);
      const before = peers.map((p) => p?.inbox2.length ?? 0);
      await send(a.slot, { type: "dm", nick, id: "d" });
      if (holders.size === 0 || holders.has(user)) {
        const last = lastOf(a.slot);
        // Asking for oneself by one's own nick: not found (no one else holds it).
        expect(last).toMatchObject({ type: "error", code: "not_found", id: "d" });
        continue;
      }
      const joinedRoom = lastOf(a.slot);
      const other =
        holders.size === 1
          ? ([...holders][0] as string)
          : [...holders].find((u) =>
              model.slots.some(
                (slotUser, i) =>
                  slotUser === u &&
                  peers[i]?.inbox2
                    .slice(before[i])
                    .some(
                      (m) =>
                        m.type === "joined" && joinedRoom?.type === "joined" && m.room === joinedRoom.room,
                    ),
              ),
            );
      if (other === undefined) throw new Error(`no holder of ${nick} heard of the direct room`);
      const pair = [user, other].sort().join(" ");
      const joined = lastOf(a.slot);
      expect(joined?.type).toBe("joined");
      if (joined?.type !== "joined") return;
      const known = model.dms.get(pair);
      if (known !== undefined) expect(joined.room).toBe(known);
      model.dms.set(pair, joined.room);
      for (const u of [user, other]) {
        const mine = model.rooms.get(u) as Map<string, number>;
        if (!mine.has(joined.room)) mine.set(joined.room, model.lastSeq(joined.room));
      }
      expect(joined.dm).toEqual({ nick });
    }
    check(model, peers);
  }
  for (const p of peers) p?.close(1000);
  await settle();
}

/** Every open tab's view of its rooms equals the model's. */
function check(model: Model, peers: Array<FakePeer | undefined>): void {
  model.slots.forEach((user, i) => {
    if (user === undefined) return;
    const view = viewOf(peers[i]?.inbox2 ?? []);
    expect(view.gaps).toEqual([]);
    const rooms = [...(model.rooms.get(user)?.keys() ?? [])].sort();
    expect([i, [...view.rooms.keys()].sort()]).toEqual([i, rooms]);
    for (const room of rooms) {
      const want = [...model.present(room).values()].sort();
      expect([i, room, [...(view.rooms.get(room)?.users ?? [])].sort()]).toEqual([i, room, want]);
      expect([i, room, view.rooms.get(room)?.lastSeq]).toEqual([i, room, model.lastSeq(room)]);
    }
  });
}

const actions = fc.array(action, { minLength: 10, maxLength: 60 });

const runOn = (make: () => System | Promise<System>, list: Action[]) =>
  onSystem(make, (sys) => run(sys, list));

describe("v2 users, rooms and markers against a model", () => {
  it("local engine: agrees with the model after every step", async () => {
    await fc.assert(
      fc.asyncProperty(actions, (list) => runOn(overLocal, list)),
      { numRuns: 200 },
    );
  }, 120_000);

  it.skipIf(!available)(
    "Redis engine, tabs on two processes: agrees with the model after every step",
    async () => {
      await fc.assert(
        fc.asyncProperty(actions, (list) => runOn(() => overRedis(), list)),
        { numRuns: 60 },
      );
    },
    120_000,
  );

  it.skipIf(!onCluster)(
    "Redis Cluster, tabs on two processes: agrees with the model after every step",
    async () => {
      await fc.assert(
        fc.asyncProperty(actions, (list) => runOn(() => overRedis(false, true), list)),
        { numRuns: 25 },
      );
    },
    120_000,
  );

  it.skipIf(!available)(
    "catches two processes that do not share their users (each its own key prefix)",
    async () => {
      await expect(
        fc.assert(
          fc.asyncProperty(actions, (list) => runOn(() => overRedis(true), list)),
          { numRuns: 60, seed: 7 },
        ),
      ).rejects.toThrow();
    },
    120_000,
  );
});
