/**
 * Model test of v2's posts and changes: random posts, edits, deletes, reactions, topics, kicks, bans
 * and re-joins by users with several tabs (one of them a moderator), checked after every step
 * against a simple model: every tab's folded view of each of its rooms (what it got when the room
 * appeared, a `sync` from 0, and the live stream since) equals the model's posts, topic and rev;
 * and a `sync` from an earlier point of a tab's stream, applied to its view as it was then,
 * reproduces the view it has now.
 */
import { describe, expect, it } from "bun:test";
import fc from "fast-check";
import type { v2 } from "../../protocol";
import type { Connection } from "../../server/chat/connection";
import type { FakeNet, FakePeer } from "../support/fake-net";
import { foldInto } from "../support/fold-change";
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
const NICK: Record<string, string> = { u1: "ann", u2: "bob", u3: "mo" };
const MOD = "u3";
const ROOMS = ["r1", "r2"];
const EMOJI = ["👍", ":tada:", "❤️"];
const TEXTS = ["fixed", "typo", "again"];
/** Tabs: user of each slot (two tabs for ann). */
const TABS = ["u1", "u1", "u2", "u3"];

type Action =
  | { k: "chat" | "edit" | "delete" | "topic"; tab: number; room: number; back: number; text: number }
  | { k: "react"; tab: number; room: number; back: number; emoji: number; on: boolean }
  | { k: "kick" | "ban"; tab: number; room: number; target: number }
  | { k: "join"; tab: number; room: number }
  | { k: "reopen"; tab: number };

const tab = fc.nat(TABS.length - 1);
const room = fc.nat(ROOMS.length - 1);
const back = fc.nat(3);
const text = fc.nat(TEXTS.length - 1);
const action: fc.Arbitrary<Action> = fc.oneof(
  fc.record({
    k: fc.constantFrom(
      "chat" as const,
      "chat" as const,
      "edit" as const,
      "delete" as const,
      "topic" as const,
    ),
    tab,
    room,
    back,
    text,
  }),
  fc.record({
    k: fc.constant("react" as const),
    tab,
    room,
    back,
    emoji: fc.nat(EMOJI.length - 1),
    on: fc.boolean(),
  }),
  fc.record({
    k: fc.constantFrom("kick" as const, "ban" as const),
    tab,
    room,
    target: fc.nat(USERS.length - 1),
  }),
  fc.record({ k: fc.constant("join" as const), tab, room }),
  fc.record({ k: fc.constant("reopen" as const), tab }),
);

// ---- the model ----

interface MPost {
  seq: number;
  author: string;
  text: string;
  deleted: boolean;
  edited: boolean;
  reactions: Array<{ emoji: string; users: string[] }>;
}

class Model {
  posts = new Map<string, MPost[]>(ROOMS.map((r) => [r, []]));
  rev = new Map<string, number>(ROOMS.map((r) => [r, 0]));
  topic = new Map<string, string>(ROOMS.map((r) => [r, ""]));
  members = new Map<string, Set<string>>(ROOMS.map((r) => [r, new Set(USERS)]));
  banned = new Map<string, Set<string>>(ROOMS.map((r) => [r, new Set()]));

  post(room: string, back: number): MPost | undefined {
    const list = this.posts.get(room) as MPost[];
    return list[list.length - 1 - back];
  }
  bump(room: string): void {
    this.rev.set(room, (this.rev.get(room) as number) + 1);
  }
  /** Folded as the wire shows it. */
  folded(room: string): unknown[] {
    return (this.posts.get(room) as MPost[]).map((p) => ({
      seq: p.seq,
      nick: NICK[p.author],
      text: p.text,
      ...(p.deleted ? { deleted: true } : {}),
      edited: p.edited && !p.deleted,
      reactions: p.reactions.map((r) => ({ emoji: r.emoji, nicks: r.users.map((u) => NICK[u]) })),
    }));
  }
}

// ---- a tab's folded view, rebuilt from what it received ----

interface RoomView {
  /** Where in the inbox this view of the room began (a welcome or a first `joined`). */
  origin: number;
  posts: Map<number, v2.FoldedPost>;
  lastRev: number;
  lastSeq: number;
  topic: string;
}

function foldChange(view: RoomView, c: v2.Change): void {
  view.lastRev = Math.max(view.lastRev, c.rev);
  if (c.type === "topic") view.topic = c.topic;
  else foldInto(view.posts, c);
}

function applySync(view: RoomView, s: v2.Sync): void {
  for (const p of s.posts) view.posts.set(p.seq, p);
  for (const c of s.changes) foldChange(view, c);
  for (const p of s.posts) view.lastSeq = Math.max(view.lastSeq, p.seq);
}

function viewsOf(inbox: readonly v2.ServerMessageV2[]): Map<string, RoomView> {
  const views = new Map<string, RoomView>();
  let at = 0;
  const fresh = (s: v2.RoomState): RoomView => ({
    origin: at,
    posts: new Map(),
    lastRev: s.lastRev,
    lastSeq: s.lastSeq,
    topic: s.topic,
  });
  for (const [index, m] of inbox.entries()) {
    at = index;
    if (m.type === "welcome") for (const s of m.rooms) views.set(s.room, fresh(s));
    else if (m.type === "joined") {
      // Joined again (a join of a room it is in): what it knows of the room stays.
      const known = views.get(m.room);
      views.set(
        m.room,
        known ? { ...known, lastRev: m.lastRev, lastSeq: m.lastSeq, topic: m.topic } : fresh(m),
      );
    } else if (m.type === "parted" || m.type === "kicked") views.delete(m.room);
    else if (m.type === "sync") {
      const v = views.get(m.room);
      if (v) applySync(v, m);
    } else if (m.type === "chat") {
      const v = views.get(m.room);
      if (!v) continue;
      const { type: _t, room: _r, ...post } = m;
      v.posts.set(m.seq, post);
      v.lastSeq = m.seq;
    } else if (m.type === "edit" || m.type === "delete" || m.type === "reaction" || m.type === "topic") {
      const v = views.get(m.room);
      if (v) foldChange(v, m);
    }
  }
  return views;
}

function comparable(view: RoomView): unknown[] {
  return [...view.posts.values()]
    .sort((a, b) => a.seq - b.seq)
    .map((p) => ({
      seq: p.seq,
      nick: p.nick,
      text: p.text,
      ...(p.deleted ? { deleted: true } : {}),
      edited: p.editedAt !== undefined && !p.deleted,
      reactions: p.reactions ?? [],
    }));
}

// ---- running one sequence ----

async function run(sys: System, actions: Action[]): Promise<void> {
  const model = new Model();
  const peers: FakePeer[] = [];
  const conns: Connection[] = [];
  const hubOf = (i: number) => sys.hubs[i % sys.hubs.length];
  const settle = () => sys.settle();
  /** Per tab, the view (by its origin) each room was last synced from 0 for. */
  const synced: Array<Map<string, number>> = TABS.map(() => new Map());
  let ids = 0;
  const send = async (i: number, msg: object) => {
    hubOf(i)?.receive(conns[i] as Connection, JSON.stringify(msg));
    await settle();
  };
  const last = (i: number) => peers[i]?.inbox2.at(-1);
  /** Every room a tab sees for the first time is synced from 0, as a client would. */
  const syncNew = async () => {
    for (const [i, peer] of peers.entries()) {
      for (const [name, view] of viewsOf(peer.inbox2)) {
        if (synced[i]?.get(name) === view.origin) continue;
        synced[i]?.set(name, view.origin);
        await send(i, { type: "sync", room: name, since: 0, sinceRev: 0 });
      }
    }
  };
  const openTab = async (i: number, first: boolean) => {
    const user = TABS[i] as string;
    const peer = (sys.nets[i % sys.nets.length] as FakeNet).peer(2);
    const hub = hubOf(i);
    if (!hub) return;
    const conn = hub.open(peer, {
      room: "",
      v2: {
        userId: user,
        mod: user === MOD,
        nick: NICK[user],
        identityToken: first ? `${user}.t` : undefined,
      },
    });
    peer.onClose = (code) => hub.close(conn, code);
    peers[i] = peer;
    conns[i] = conn;
    synced[i] = new Map();
    await settle();
  };
  for (const [i, user] of TABS.entries()) await openTab(i, TABS.indexOf(user) === i);
  for (const [i, user] of TABS.entries()) {
    if (TABS.indexOf(user) === i) for (const r of ROOMS) await send(i, { type: "join", room: r });
  }
  await syncNew();

  for (const a of actions) {
    const user = TABS[a.tab] as string;
    const roomName = ROOMS[a.k === "reopen" ? 0 : a.room] as string;
    const member = model.members.get(roomName)?.has(user) ?? false;
    const id = `x${++ids}`;
    if (a.k === "reopen") {
      peers[a.tab]?.close(1000);
      await settle();
      await openTab(a.tab, false);
    } else if (a.k === "chat") {
      await send(a.tab, { type: "chat", room: roomName, text: `post ${ids}`, id });
      if (!member) expect(last(a.tab)).toMatchObject({ code: "not_found", id });
      else {
        const posts = model.posts.get(roomName) as MPost[];
        posts.push({
          seq: posts.length + 1,
          author: user,
          text: `post ${ids}`,
          deleted: false,
          edited: false,
          reactions: [],
        });
      }
    } else if (a.k === "topic") {
      await send(a.tab, { type: "topic", room: roomName, topic: TEXTS[a.text], id });
      if (!member) expect(last(a.tab)).toMatchObject({ code: "not_found", id });
      else {
        model.topic.set(roomName, TEXTS[a.text] as string);
        model.bump(roomName);
      }
    } else if (a.k === "edit" || a.k === "delete" || a.k === "react") {
      const target = model.post(roomName, a.back);
      const seq = target?.seq ?? (model.posts.get(roomName)?.length ?? 0) + 1;
      const before = peers[a.tab]?.inbox2.length ?? 0;
      if (a.k === "edit") await send(a.tab, { type: "edit", room: roomName, seq, text: TEXTS[a.text], id });
      else if (a.k === "delete") await send(a.tab, { type: "delete", room: roomName, seq, id });
      else if (a.k === "react")
        await send(a.tab, { type: "react", room: roomName, seq, emoji: EMOJI[a.emoji], on: a.on, id });
      const errors = (peers[a.tab]?.inbox2.slice(before) ?? []).filter((m) => m.type === "error");
      const code = (errors[0] as { code?: string } | undefined)?.code;
      if (!member || !target || target.deleted) expect([a.k, code]).toEqual([a.k, "not_found"]);
      else if (a.k === "edit" && target.author !== user) expect([a.k, code]).toEqual([a.k, "forbidden"]);
      else if (a.k === "delete" && target.author !== user && user !== MOD)
        expect([a.k, code]).toEqual([a.k, "forbidden"]);
      else {
        expect([a.k, code]).toEqual([a.k, undefined]);
        if (a.k === "edit") {
          target.text = TEXTS[a.text] as string;
          target.edited = true;
          model.bump(roomName);
        } else if (a.k === "delete") {
          target.text = "";
          target.deleted = true;
          target.reactions = [];
          model.bump(roomName);
        } else if (a.k === "react") {
          const emoji = EMOJI[a.emoji] as string;
          let r = target.reactions.find((x) => x.emoji === emoji);
          const held = r?.users.includes(user) ?? false;
          if (held !== a.on) {
            model.bump(roomName);
            if (a.on) {
              if (!r) {
                r = { emoji, users: [] };
                target.reactions.push(r);
              }
              r.users.push(user);
            } else if (r) {
              r.users = r.users.filter((u) => u !== user);
              if (r.users.length === 0) target.reactions = target.reactions.filter((x) => x !== r);
            }
          }
        }
      }
    } else if (a.k === "kick" || a.k === "ban") {
      const target = USERS[a.target] as string;
      const present = model.members.get(roomName)?.has(target) ?? false;
      await send(a.tab, { type: a.k, room: roomName, nick: NICK[target], id });
      if (!member) expect(last(a.tab)).toMatchObject({ code: "not_found", id });
      else if (user !== MOD) expect(last(a.tab)).toMatchObject({ code: "forbidden", id });
      else if (!present) expect(last(a.tab)).toMatchObject({ code: "not_found", id });
      else {
        model.members.get(roomName)?.delete(target);
        if (a.k === "ban") model.banned.get(roomName)?.add(target);
      }
    } else if (a.k === "join") {
      await send(a.tab, { type: "join", room: roomName, id });
      if (model.banned.get(roomName)?.has(user) && !member)
        expect(last(a.tab)).toMatchObject({ code: "forbidden", id });
      else model.members.get(roomName)?.add(user);
    }
    await syncNew();
    check(model, peers);
    // The server's own fold: a sync from 0 gives the model's posts.
    for (const name of ROOMS) {
      if (!model.members.get(name)?.has(user)) continue;
      const count = peers[a.tab]?.inbox2.length ?? 0;
      await send(a.tab, { type: "sync", room: name, since: 0, sinceRev: 0 });
      const answer = peers[a.tab]?.inbox2.slice(count).find((m) => m.type === "sync");
      expect(answer?.type).toBe("sync");
      if (answer?.type !== "sync") return;
      const view: RoomView = { origin: 0, posts: new Map(), lastRev: 0, lastSeq: 0, topic: "" };
      for (const p of answer.posts) view.posts.set(p.seq, p);
      expect([name, comparable(view)]).toEqual([name, model.folded(name)]);
    }
    // A sync from halfway through the acting tab's stream, applied to its view as it was then, gives its view now.
    const peer = peers[a.tab] as FakePeer;
    const half = viewsOf(peer.inbox2.slice(0, Math.floor(peer.inbox2.length / 2)));
    const now = viewsOf(peer.inbox2);
    for (const [name, then] of half) {
      // Only a view that was synced from 0 before the halfway point holds the room's history.
      const base = synced[a.tab]?.get(name);
      if (!now.has(name) || base !== then.origin || base !== now.get(name)?.origin) continue;
      if (
        !peer.inbox2
          .slice(then.origin, Math.floor(peer.inbox2.length / 2))
          .some((m) => m.type === "sync" && m.room === name)
      )
        continue;
      const count = peer.inbox2.length;
      // What it has, not what it was told exists: the newest post it holds.
      const since = Math.max(0, ...then.posts.keys());
      await send(a.tab, { type: "sync", room: name, since, sinceRev: since === 0 ? 0 : then.lastRev });
      const answer = peer.inbox2.slice(count).find((m) => m.type === "sync");
      expect(answer?.type).toBe("sync");
      if (answer?.type === "sync") applySync(then, answer);
      expect([name, comparable(then)]).toEqual([name, comparable(now.get(name) as RoomView)]);
    }
  }
  for (const p of peers) p.close(1000);
  await settle();
}

function check(model: Model, peers: FakePeer[]): void {
  expect(peers.flatMap((p) => p.invalid)).toEqual([]);
  TABS.forEach((user, i) => {
    const views = viewsOf(peers[i]?.inbox2 ?? []);
    const rooms = ROOMS.filter((r) => model.members.get(r)?.has(user));
    expect([i, [...views.keys()].sort()]).toEqual([i, rooms]);
    for (const r of rooms) {
      const v = views.get(r) as RoomView;
      expect([i, r, v.lastRev, v.topic] as unknown[]).toEqual([i, r, model.rev.get(r), model.topic.get(r)]);
      expect([i, r, comparable(v)]).toEqual([i, r, model.folded(r)]);
    }
  });
}

const actions = fc.array(action, { minLength: 5, maxLength: 40 });

const runOn = (make: () => System | Promise<System>, list: Action[]) =>
  onSystem(make, (sys) => run(sys, list));

describe("v2 posts and changes against a model", () => {
  it("local engine: every tab's folded view equals the model's, and sync reproduces it", async () => {
    await fc.assert(
      fc.asyncProperty(actions, (list) => runOn(overLocal, list)),
      { numRuns: 120 },
    );
  }, 120_000);

  it.skipIf(!available)(
    "Redis engine, tabs on two processes: the same",
    async () => {
      await fc.assert(
        fc.asyncProperty(actions, (list) => runOn(() => overRedis(), list)),
        { numRuns: 40 },
      );
    },
    120_000,
  );

  it.skipIf(!onCluster)(
    "Redis Cluster, tabs on two processes: the same",
    async () => {
      await fc.assert(
        fc.asyncProperty(actions, (list) => runOn(() => overRedis(false, true), list)),
        { numRuns: 20 },
      );
    },
    120_000,
  );
});
