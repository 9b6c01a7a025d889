/** The v2 client library (client/v2) against a real server on loopback: rooms, counts, sync after a drop, changes, pending posts, identity. */
import { afterEach, describe, expect, it } from "bun:test";
import {
  ChatClientV2,
  type ChatClientV2Options,
  ChatError,
  type ClientV2Events,
  type IdentityStore,
  type RoomView,
} from "../client/v2";
import type { RunningServer } from "../server";
import { TcpGate } from "./e2e/tcp-gate";
import { startTestServer, stopAllServers } from "./support/test-server";

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
  await stopAllServers();
});

async function serve(env: Record<string, string> = {}): Promise<RunningServer> {
  const server = startTestServer({ RATE_LIMIT: "0", ...env });
  await server.ready;
  return server;
}

async function gateTo(server: RunningServer): Promise<TcpGate> {
  const gate = await TcpGate.start({ host: "127.0.0.1", port: server.server.port as number });
  cleanups.push(() => gate.close());
  return gate;
}

function memoryStore(token?: string): IdentityStore & { token: string | undefined } {
  return {
    token,
    get() {
      return this.token;
    },
    set(t: string) {
      this.token = t;
    },
  };
}

/** Every socket a client opens, with what went out and what came in. */
interface Wire {
  sent: Array<Record<string, unknown>>;
  received: string[];
  sockets: WebSocket[];
}

function tracked(wire: Wire): typeof WebSocket {
  class Tracked extends WebSocket {
    constructor(url: string | URL) {
      super(url);
      wire.sockets.push(this);
      this.addEventListener("message", (ev) => wire.received.push(String(ev.data)));
    }
    override send(data: string | ArrayBufferLike | Blob | ArrayBufferView): void {
      wire.sent.push(JSON.parse(String(data)));
      super.send(data);
    }
  }
  return Tracked as unknown as typeof WebSocket;
}

interface Client {
  c: ChatClientV2;
  wire: Wire;
  malformed: string[];
  posts: Array<ClientV2Events["post"]>;
  /** Every error but dropped frames, which go to `malformed` (their reason). */
  problems: Array<ClientV2Events["error"]>;
  states: Array<ClientV2Events["state"]>;
  store: IdentityStore | undefined;
}

function client(base: string | URL, options: Partial<ChatClientV2Options> = {}): Client {
  const wire: Wire = { sent: [], received: [], sockets: [] };
  const malformed: string[] = [];
  const c = new ChatClientV2({
    url: base,
    heartbeatMs: 0,
    backoff: { baseMs: 20, maxMs: 100 },
    WebSocket: tracked(wire),
    ...options,
  });
  const out: Client = { c, wire, malformed, posts: [], problems: [], states: [], store: options.identity };
  c.on("post", (p) => out.posts.push(p));
  c.on("error", (e) => {
    if (e.code === "invalid_frame") malformed.push((e.cause as { reason: string }).reason);
    else out.problems.push(e);
  });
  c.on("state", (s) => out.states.push(s));
  cleanups.push(() => c.close());
  c.connect();
  return out;
}

/** Polls `fn` until it returns something truthy. */
async function until<T>(fn: () => T | undefined | false | null, what: string, ms = 5000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const value = fn();
    if (value) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(5);
  }
}

async function ready(x: Client): Promise<Client> {
  await until(() => x.c.state === "connected", "connected");
  return x;
}

/** The room's view once it is synced and `test` holds. */
function viewWhen(x: Client, room: string, test: (v: RoomView) => boolean, what: string): Promise<RoomView> {
  return until(() => {
    const v = x.c.view(room);
    return v && test(v) ? v : undefined;
  }, `${what} (${room})`);
}

const texts = (v: RoomView) => v.posts.map((p) => p.text);
const seqs = (v: RoomView) => v.posts.map((p) => p.seq);
const chatsSent = (x: Client, id: string) =>
  x.wire.sent.filter((m) => m.type === "chat" && m.id === id).length;

/** Sends and waits until the post is acked (not pending) and held. */
async function post(x: Client, room: string, text: string): Promise<number> {
  const id = x.c.send(room, text);
  const v = await viewWhen(
    x,
    room,
    (v) => !v.pending.some((p) => p.id === id) && v.posts.some((p) => p.text === text),
    `ack of ${text}`,
  );
  return (v.posts.find((p) => p.text === text) as { seq: number }).seq;
}

async function twoUsers(server: RunningServer | string): Promise<{ ann: Client; bob: Client }> {
  const base = typeof server === "string" ? server : server.url;
  const ann = await ready(client(base, { nick: "ann", room: "lobby", identity: memoryStore() }));
  const bob = await ready(client(base, { nick: "bob", room: "lobby", identity: memoryStore() }));
  await viewWhen(ann, "lobby", (v) => v.users.includes("bob"), "bob in lobby");
  return { ann, bob };
}

describe("ChatClientV2", () => {
  it("two users in two rooms: posts, unread and mention counts, markRead clears them", async () => {
    const server = await serve();
    const { ann, bob } = await twoUsers(server);
    ann.c.join("dev");
    bob.c.join("dev");
    await viewWhen(ann, "dev", (v) => v.users.length === 2, "both in dev");
    expect(ann.c.rooms().sort()).toEqual(["dev", "lobby"]);

    await post(bob, "lobby", "hi @ann");
    await post(bob, "dev", "plain one");
    await post(bob, "dev", "plain two");
    const lobby = await viewWhen(ann, "lobby", (v) => v.posts.length === 1, "lobby post");
    const dev = await viewWhen(ann, "dev", (v) => v.posts.length === 2, "dev posts");
    expect(texts(lobby)).toEqual(["hi @ann"]);
    expect([lobby.unread, lobby.mentions]).toEqual([1, 1]);
    expect([dev.unread, dev.mentions]).toEqual([2, 0]);
    // Own posts never count.
    expect([bob.c.view("lobby")?.unread, bob.c.view("dev")?.unread]).toEqual([0, 0]);
    // Live posts are announced once each, with whether they mention us.
    expect(ann.posts.map((p) => [p.post.text, p.mentionsMe, p.own])).toEqual([
      ["hi @ann", true, false],
      ["plain one", false, false],
      ["plain two", false, false],
    ]);

    // Backwards does nothing; past the end clamps to lastSeq; the marker reaches the server.
    ann.c.markRead("dev", 0);
    expect(ann.c.view("dev")?.readSeq).toBe(dev.readSeq);
    ann.c.markRead("lobby", lobby.lastSeq);
    ann.c.markRead("dev", 10_000);
    expect(ann.c.view("lobby")).toMatchObject({ unread: 0, mentions: 0, readSeq: lobby.lastSeq });
    expect(ann.c.view("dev")).toMatchObject({ unread: 0, readSeq: dev.lastSeq });
    await until(
      () => ann.wire.received.filter((f) => JSON.parse(f).type === "read").length >= 2,
      "read echoes",
    );
    const reads = ann.wire.sent.filter((m) => m.type === "read");
    expect(reads.map((m) => [m.room, m.seq])).toEqual([
      ["lobby", lobby.lastSeq],
      ["dev", dev.lastSeq],
    ]);

    // A mention after the marker counts again, and another tab of ann starts from the server's counts.
    await post(bob, "lobby", "@ANN again");
    await viewWhen(ann, "lobby", (v) => v.unread === 1 && v.mentions === 1, "second mention");
    const store = memoryStore(ann.store?.get());
    const tab = await ready(client(server.url, { identity: store }));
    expect(tab.c.userId).toBe(ann.c.userId as string);
    expect(tab.c.view("lobby")).toMatchObject({ unread: 1, mentions: 1 });
    expect(tab.c.view("dev")).toMatchObject({ unread: 0, mentions: 0 });
    for (const x of [ann, bob, tab]) expect(x.malformed).toEqual([]);
  });

  it("after a drop, a reconnect syncs exactly what was missed: posts once, changes folded, counts right", async () => {
    const server = await serve();
    const gate = await gateTo(server);
    const ann = await ready(client(gate.url, { nick: "ann", room: "lobby" }));
    const bob = await ready(client(server.url, { nick: "bob", room: "lobby" }));
    const s1 = await post(bob, "lobby", "one");
    const s2 = await post(bob, "lobby", "two");
    const s3 = await post(bob, "lobby", "three");
    await viewWhen(ann, "lobby", (v) => v.posts.length === 3, "three posts");

    gate.shut();
    await until(() => ann.c.state === "reconnecting", "reconnecting");
    for (const t of ["four", "five", "six"]) await post(bob, "lobby", t);
    bob.c.edit("lobby", s2, "two, edited");
    bob.c.remove("lobby", s3);
    bob.c.react("lobby", s1, "👍", true);
    bob.c.setTopic("lobby", "missed topic");
    await viewWhen(bob, "lobby", (v) => v.topic === "missed topic", "bob's topic");
    const missed = ann.posts.length;
    gate.open();

    const v = await viewWhen(ann, "lobby", (v) => v.posts.length === 6 && v.topic === "missed topic", "sync");
    expect(seqs(v)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(texts(v)).toEqual(["one", "two, edited", "", "four", "five", "six"]);
    expect(v.posts[2]?.deleted).toBe(true);
    expect(v.posts[1]?.editedAt).toBeString();
    expect(v.posts[0]?.reactions).toEqual([{ emoji: "👍", nicks: ["bob"] }]);
    // Five of bob's posts are unread (one was deleted); nothing synced is announced as live.
    expect(v.unread).toBe(5);
    expect(ann.posts.length).toBe(missed);
    // The sync asked for what came after what ann held.
    const syncs = ann.wire.sent.filter((m) => m.type === "sync");
    expect(syncs.at(-1)).toMatchObject({ room: "lobby", since: 3 });
    expect(ann.states.some((s) => s.state === "reconnecting" && typeof s.retryInMs === "number")).toBe(true);

    // Live again: a new post and a change arrive once.
    const s7 = await post(bob, "lobby", "seven");
    bob.c.react("lobby", s7, "🎉", true);
    const after = await viewWhen(ann, "lobby", (v) => v.posts.at(-1)?.reactions !== undefined, "live");
    expect(seqs(after)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(ann.posts.map((p) => p.post.text).slice(missed)).toEqual(["seven"]);
    expect(ann.malformed).toEqual([]);
  });

  it("edits, deletes and reactions fold into both users' views", async () => {
    const server = await serve();
    const { ann, bob } = await twoUsers(server);
    const s1 = await post(ann, "lobby", "first");
    const s2 = await post(bob, "lobby", "second");
    await viewWhen(ann, "lobby", (v) => v.posts.length === 2, "two posts");

    ann.c.react("lobby", s2, "👍", true);
    bob.c.react("lobby", s2, "👍", true);
    bob.c.react("lobby", s2, ":tada:", true);
    ann.c.edit("lobby", s1, "first (fixed)");
    await viewWhen(
      ann,
      "lobby",
      (v) => v.posts[1]?.reactions?.length === 2 && v.posts[0]?.editedAt !== undefined,
      "folds",
    );
    for (const x of [ann, bob]) {
      const v = await viewWhen(x, "lobby", (v) => v.posts[1]?.reactions?.length === 2, "reactions");
      expect(v.posts[1]?.reactions).toEqual([
        { emoji: "👍", nicks: ["ann", "bob"] },
        { emoji: ":tada:", nicks: ["bob"] },
      ]);
    }
    // Taking a reaction back; the last one taking it back removes the emoji.
    ann.c.react("lobby", s2, "👍", false);
    bob.c.react("lobby", s2, ":tada:", false);
    const v = await viewWhen(
      bob,
      "lobby",
      (v) => v.posts[1]?.reactions?.length === 1 && v.posts[1].reactions[0]?.nicks.length === 1,
      "reactions taken back",
    );
    expect(v.posts[1]?.reactions).toEqual([{ emoji: "👍", nicks: ["bob"] }]);
    expect(v.posts[0]).toMatchObject({ text: "first (fixed)" });

    // Only the author edits: bob's edit of ann's post is refused in people's words.
    bob.c.edit("lobby", s1, "hijacked");
    const problem = await until(() => bob.problems.find((p) => p.code === "forbidden"), "forbidden");
    expect(problem.message).toBe(
      "You can only edit your own messages (and only for a while after sending them).",
    );
    expect(problem.room).toBe("lobby");

    ann.c.remove("lobby", s1);
    const gone = await viewWhen(bob, "lobby", (v) => v.posts[0]?.deleted === true, "deleted");
    expect(gone.posts[0]).toMatchObject({ text: "", deleted: true });
    expect(gone.posts[0]?.editedAt).toBeUndefined();
    expect(gone.lastRev).toBeGreaterThanOrEqual(7);
    expect(gone.unread).toBe(0);
  });

  it("a post sent but not acked before a drop is re-sent once after the reconnect and stored once", async () => {
    const server = await serve();
    const gate = await gateTo(server);
    const ann = await ready(client(gate.url, { nick: "ann", room: "lobby" }));
    const bob = await ready(client(server.url, { nick: "bob", room: "lobby" }));

    gate.mute(); // the server stores and acks, ann hears nothing
    const id = ann.c.send("lobby", "while muted");
    expect(ann.c.view("lobby")?.pending).toEqual([
      { id, room: "lobby", text: "while muted", state: "sending" },
    ]);
    await viewWhen(bob, "lobby", (v) => v.posts.some((p) => p.text === "while muted"), "stored");
    expect(ann.c.view("lobby")?.pending.length).toBe(1);
    gate.open();
    gate.cut();

    const v = await viewWhen(
      ann,
      "lobby",
      (v) => v.pending.length === 0 && v.posts.some((p) => p.text === "while muted"),
      "acked after reconnect",
    );
    expect(chatsSent(ann, id)).toBe(2);
    expect(v.posts.filter((p) => p.text === "while muted").length).toBe(1);

    // Sent while offline: goes once, after the welcome.
    gate.shut();
    await until(() => ann.c.state === "reconnecting", "reconnecting");
    const id2 = ann.c.send("lobby", "while offline");
    expect(chatsSent(ann, id2)).toBe(0);
    gate.open();
    await viewWhen(ann, "lobby", (v) => v.pending.length === 0 && v.posts.length === 2, "offline post acked");
    expect(chatsSent(ann, id2)).toBe(1);

    const res = await fetch(new URL("/api/rooms/lobby/messages?v=2", server.url));
    const body = (await res.json()) as { messages: Array<{ text: string }> };
    expect(body.messages.map((m) => m.text)).toEqual(["while muted", "while offline"]);
    expect(bob.c.view("lobby")?.posts.map((p) => p.text)).toEqual(["while muted", "while offline"]);
  });

  it("keeps the identity: a second client with the same store is the same user, in the same rooms", async () => {
    const server = await serve();
    const store = memoryStore();
    const first = await ready(client(server.url, { nick: "zoe", room: "lobby", identity: store }));
    expect(store.token).toBeString();
    first.c.join("dev");
    await viewWhen(first, "dev", () => true, "dev joined");
    const second = await ready(client(server.url, { nick: "other", identity: store }));
    expect(second.c.userId).toBe(first.c.userId as string);
    expect(second.c.nick).toBe("zoe");
    expect(second.c.rooms().sort()).toEqual(["dev", "lobby"]);
    // No `nick=` once an identity exists, and `room=` only on the first visit.
    const url = new URL(second.wire.sockets[0]?.url as string);
    expect([
      url.searchParams.get("v"),
      url.searchParams.has("identity"),
      url.searchParams.has("nick"),
    ]).toEqual(["2", true, false]);

    // A rename reaches every tab of the user.
    second.c.rename("zoe2");
    await until(() => first.c.nick === "zoe2", "rename seen by the first tab");
    expect(second.c.nick).toBe("zoe2");
  });

  it("a revoked identity (1008) or one refused with 401 is forgotten: the client comes back as a new user", async () => {
    const admin = "admin-token-of-sixteen+";
    const server = await serve({ ADMIN_TOKEN: admin });
    const store = memoryStore();
    const x = await ready(client(server.url, { nick: "kim", room: "lobby", identity: store }));
    const oldUser = x.c.userId as string;
    const oldToken = store.token;
    const res = await fetch(new URL(`/api/identities/${encodeURIComponent(oldUser)}`, server.url), {
      method: "DELETE",
      headers: { authorization: `Bearer ${admin}` },
    });
    expect(res.status).toBe(204);
    await until(() => x.c.userId !== oldUser && x.c.state === "connected", "a new user");
    // Straight back as a new user: no attempt with the revoked identity in between.
    expect(x.wire.sockets.length).toBe(2);
    expect(store.token).toBeString();
    expect(store.token).not.toBe(oldToken);
    expect(x.c.nick).toBe("kim");
    expect(x.problems.map((p) => p.code)).toContain("identity_lost");

    // A token the server never minted: 401 before the upgrade.
    const bogus = memoryStore("not-a-token");
    const y = await ready(client(server.url, { nick: "lee", identity: bogus }));
    expect(bogus.token).not.toBe("not-a-token");
    expect(y.c.nick).toBe("lee");
    expect(y.problems.map((p) => p.code)).toEqual(["identity_lost"]);
  });

  it("in a browser (a refusal says nothing), an identity refused twice is tested once without it; a server that is down costs nothing", async () => {
    const server = await serve();
    const gate = await gateTo(server);
    /** A WebSocket whose error events carry no message, as a browser's. */
    const wire: Wire = { sent: [], received: [], sockets: [] };
    const Base = tracked(wire);
    class Browserish extends Base {
      override set onerror(fn: ((ev: Event) => unknown) | null) {
        super.onerror = fn && (() => fn(new Event("error")));
      }
      override get onerror() {
        return super.onerror;
      }
    }
    const make = (store: IdentityStore) =>
      new ChatClientV2({
        url: gate.url,
        nick: "ivy",
        identity: store,
        heartbeatMs: 0,
        WebSocket: Browserish,
        backoff: { baseMs: 20, maxMs: 40 },
      });

    // The server is unreachable for a while: the identity survives the attempts made without it.
    const known = memoryStore();
    const first = make(known);
    cleanups.push(() => first.close());
    first.connect();
    await until(() => first.state === "connected", "first connect");
    const user = first.userId;
    const token = known.token;
    gate.shut();
    await until(() => wire.sockets.length >= 8, "attempts while down");
    gate.open();
    await until(() => first.state === "connected", "back");
    expect(first.userId).toBe(user as string);
    expect(known.token).toBe(token as string);
    first.close();

    // A token the server refuses (401, unseen): two attempts with it, then one without, which gets in.
    const before = wire.sockets.length;
    const stale = memoryStore("stale-token");
    const second = make(stale);
    cleanups.push(() => second.close());
    const problems: string[] = [];
    second.on("error", (p) => problems.push(p.code));
    second.connect();
    await until(() => second.state === "connected", "a new user");
    const urls = wire.sockets.slice(before).map((ws) => new URL(ws.url).searchParams.has("identity"));
    expect(urls).toEqual([true, true, false]);
    expect(stale.token).not.toBe("stale-token");
    expect(problems).toEqual(["identity_lost"]);
  });

  it("notices a path that went silent (heartbeat) and comes back", async () => {
    const server = await serve();
    const gate = await gateTo(server);
    const x = await ready(client(gate.url, { nick: "ann", room: "lobby", heartbeatMs: 100, timeoutMs: 200 }));
    const bob = await ready(client(server.url, { nick: "bob", room: "lobby" }));
    gate.mute();
    await post(bob, "lobby", "unheard");
    await until(() => x.wire.sockets.length === 2, "a new socket after the silence", 3000);
    gate.open();
    await viewWhen(x, "lobby", (v) => v.posts.some((p) => p.text === "unheard"), "synced");
    expect(x.wire.sent.some((m) => m.type === "who")).toBe(true);
  });

  it("refuses over-long and empty text before sending; 4000 characters (astral ones count once) go", async () => {
    const server = await serve();
    const { ann, bob } = await twoUsers(server);
    const long = ann.c.send("lobby", "x".repeat(4001));
    const blank = ann.c.send("lobby", "  \n ");
    expect(ann.problems.map((p) => [p.code, p.id])).toEqual([
      ["too_large", long],
      ["bad_message", blank],
    ]);
    expect(ann.problems[0]?.message).toContain("4,000 characters");
    expect(ann.c.view("lobby")?.pending).toEqual([]);
    expect(ann.wire.sent.filter((m) => m.type === "chat")).toEqual([]);

    const emoji = "😀".repeat(4000);
    await post(ann, "lobby", emoji);
    await viewWhen(bob, "lobby", (v) => v.posts[0]?.text === emoji, "4000 emoji");
  });

  it("drops malformed frames without throwing, and goes on", async () => {
    const server = await serve();
    const { ann, bob } = await twoUsers(server);
    const ws = ann.wire.sockets.at(-1) as WebSocket;
    const inject = (data: unknown) => ws.onmessage?.(new MessageEvent("message", { data }));
    inject("not json");
    inject(new ArrayBuffer(3));
    inject(
      JSON.stringify({
        type: "chat",
        room: "lobby",
        seq: "7",
        nick: "eve",
        text: "x",
        sentAt: "",
        userId: "u",
      }),
    );
    inject(
      JSON.stringify({ type: "sync", room: "lobby", posts: [{ seq: 1 }], changes: [], truncated: false }),
    );
    inject(JSON.stringify({ type: "nonsense" }));
    inject(JSON.stringify([1, 2]));
    expect(ann.malformed).toEqual([
      "not JSON",
      "not a text frame",
      "chat: seq: not a whole number >= 1",
      "sync: posts: [0] nick: missing",
      'unknown type "nonsense"',
      "not a JSON object",
    ]);
    expect(ann.c.view("lobby")?.posts).toEqual([]);
    await post(bob, "lobby", "still works");
    await viewWhen(ann, "lobby", (v) => v.posts.length === 1, "a post after the garbage");
  });

  it("typing notices expire; loadOlder pages back; a DM and a kick change the room list", async () => {
    const admin = "admin-token-of-sixteen+";
    const server = await serve({ ADMIN_TOKEN: admin });
    const bob = await ready(client(server.url, { nick: "bob", room: "lobby" }));
    for (let i = 1; i <= 130; i++) bob.c.send("lobby", `m${i}`);
    await viewWhen(bob, "lobby", (v) => v.pending.length === 0 && v.posts.length === 130, "130 posts");
    const ann = await ready(client(server.url, { nick: "ann", room: "lobby", keepPosts: 20, typingMs: 200 }));
    const first = await viewWhen(ann, "lobby", (v) => v.posts.length === 20, "newest 20");
    expect(first.hasOlder).toBe(true);
    expect(seqs(first)[0]).toBe(111);
    await ann.c.loadOlder("lobby");
    expect(ann.c.view("lobby")).toMatchObject({ hasOlder: true });
    expect(seqs(ann.c.view("lobby") as RoomView)[0]).toBe(11);
    await ann.c.loadOlder("lobby");
    const all = ann.c.view("lobby") as RoomView;
    expect(seqs(all)).toEqual(Array.from({ length: 130 }, (_, i) => i + 1));
    expect(all.hasOlder).toBe(false);

    bob.c.typing("lobby");
    bob.c.typing("lobby"); // throttled: one notice
    await viewWhen(ann, "lobby", (v) => v.typing.includes("bob"), "typing");
    await viewWhen(ann, "lobby", (v) => v.typing.length === 0, "typing expired");
    expect(bob.wire.sent.filter((m) => m.type === "typing").length).toBe(1);

    const added = new Promise<ClientV2Events["rooms"]>((resolve) => bob.c.on("rooms", resolve));
    ann.c.dm("bob");
    const event = await added;
    const dm = event.added as string;
    expect(dm.startsWith("~")).toBe(true);
    expect(bob.c.view(dm)?.dm).toBe("ann");
    await viewWhen(ann, dm, (v) => v.dm === "bob", "ann's dm");

    const kicked = new Promise<ClientV2Events["rooms"]>((resolve) =>
      ann.c.on("rooms", (e) => e.kicked && resolve(e)),
    );
    const res = await fetch(new URL("/api/rooms/lobby/kick", server.url), {
      method: "POST",
      headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" },
      body: JSON.stringify({ nick: "ann", reason: "testing" }),
    });
    expect(res.status).toBe(204);
    expect(await kicked).toMatchObject({ removed: "lobby", kicked: { by: "admin", reason: "testing" } });
    expect(ann.c.rooms()).toEqual([dm]);
  });

  it("does not reconnect after close(), whether connected or waiting to retry", async () => {
    const server = await serve();
    const x = await ready(client(server.url, { nick: "ann" }));
    x.c.close();
    expect(x.c.state).toBe("offline");
    await Bun.sleep(150);
    expect(x.wire.sockets.length).toBe(1);
    expect(x.wire.sockets[0]?.readyState).toBe(WebSocket.CLOSED);
    expect(x.states.at(-1)).toEqual({ state: "offline" });

    const gate = await gateTo(server);
    const y = await ready(client(gate.url, { nick: "bob", backoff: { baseMs: 100, maxMs: 100 } }));
    gate.shut();
    await until(() => y.c.state === "reconnecting" && y.states.at(-1)?.retryInMs !== undefined, "waiting");
    const opened = y.wire.sockets.length;
    y.c.close();
    gate.open();
    await Bun.sleep(300);
    expect(y.wire.sockets.length).toBe(opened);
    expect(y.c.state).toBe("offline");
  });
});

describe("ChatClientV2's promises and its one error type", () => {
  it("fires no event inside the constructor: connects in a microtask, a listener added after `new` sees it all", async () => {
    const server = await serve();
    const c = new ChatClientV2({ url: server.url, nick: "ann", heartbeatMs: 0 });
    cleanups.push(() => c.close());
    const states: string[] = [];
    c.on("state", (s) => states.push(s.state));
    const me = await c.ready();
    expect(states).toEqual(["connecting", "connected"]);
    expect(me).toEqual({ userId: c.userId as string, nick: "ann", rooms: [] });
  });

  it("join, post and part as promises: the view, the ack's seq, the unread count it makes", async () => {
    const server = await serve();
    const ann = client(server.url, { nick: "ann" });
    const bob = client(server.url, { nick: "bob" });
    await Promise.all([ann.c.ready(), bob.c.ready()]);
    const joined = await ann.c.join("dev");
    expect(joined).toMatchObject({ room: "dev", users: ["ann"], unread: 0 });
    expect(await ann.c.join("dev")).toMatchObject({ room: "dev" }); // held: at once
    await bob.c.join("dev");

    const posting = bob.c.post("dev", "hi @ann");
    expect([posting.state, posting.room, posting.text]).toEqual(["sending", "dev", "hi @ann"]);
    expect(bob.c.view("dev")?.pending.map((p) => p.id)).toEqual([posting.id]);
    const ack = await posting;
    expect(ack).toEqual({ id: posting.id, room: "dev", seq: 1 });
    expect([posting.state, posting.seq]).toEqual(["sent", 1]);
    const seen = await viewWhen(ann, "dev", (v) => v.posts.length === 1, "bob's post");
    expect(seen.posts[0]).toMatchObject({ seq: ack.seq, text: "hi @ann" });
    expect([seen.unread, seen.mentions]).toEqual([1, 1]);

    await ann.c.part("dev");
    expect(ann.c.rooms()).toEqual([]);
    expect(ann.problems).toEqual([]);
  });

  it("refusals reject with a ChatError, the same object as the error event: the server's and the client's own", async () => {
    const server = await serve({ RATE_LIMIT: "1", RATE_BURST: "1" });
    const ann = client(server.url, { nick: "ann", room: "lobby" });
    await ann.c.ready();
    await viewWhen(ann, "lobby", () => true, "lobby");

    // From the server: a dm to no one online, a post over the rate.
    const dm = await ann.c.dm("nobody").catch((e: unknown) => e);
    expect(dm).toBeInstanceOf(ChatError);
    expect(dm).toMatchObject({ code: "not_found", message: "No one by that name is online in your rooms." });
    expect(ann.problems.at(-1)).toBe(dm as ChatError);
    const posts = [ann.c.post("lobby", "one"), ann.c.post("lobby", "two")];
    const refused = (await Promise.allSettled(posts))[1] as PromiseRejectedResult;
    expect(refused.reason).toMatchObject({ code: "rate_limited", id: posts[1]?.id, room: "lobby" });
    expect(ann.problems.at(-1)).toBe(refused.reason);
    const failed = ann.c.view("lobby")?.pending.find((p) => p.id === posts[1]?.id);
    expect(failed).toMatchObject({ state: "failed", reason: refused.reason.message });
    expect(failed?.error).toBe(refused.reason);

    // The client's own, with the protocol's codes where there is one.
    expect(await ann.c.join("no spaces here").catch((e: ChatError) => e.code)).toBe("room_invalid");
    expect(await ann.c.post("lobby", " ").catch((e: ChatError) => e.code)).toBe("bad_message");
    expect(await ann.c.post("elsewhere", "hi").catch((e: ChatError) => e.code)).toBe("not_found");
    expect(ann.problems.map((p) => p.code).slice(-3)).toEqual(["room_invalid", "bad_message", "not_found"]);

    // A retry is a new promise; a discard rejects it without an error event (it was asked for).
    const retried = ann.c.retry("lobby", posts[1]?.id as string);
    const count = ann.problems.length;
    ann.c.discard("lobby", posts[1]?.id as string);
    expect(await retried?.catch((e: ChatError) => e.code)).toBe("discarded");
    expect(ann.problems.length).toBe(count);
  });

  it("a join sent just before a drop is settled by the next welcome", async () => {
    const server = await serve();
    const gate = await gateTo(server);
    const ann = await ready(client(gate.url, { nick: "ann", room: "lobby" }));
    gate.mute(); // the server joins ann to dev, ann hears nothing
    const joining = ann.c.join("dev");
    await until(() => ann.wire.sent.some((m) => m.type === "join"), "the join sent");
    await Bun.sleep(50);
    gate.open();
    gate.cut();
    const view = await joining;
    expect(view.room).toBe("dev");
    expect(ann.wire.sockets.length).toBe(2);
  });

  it("ready() rejects once closed, or when its signal aborts", async () => {
    const server = await serve();
    const c = new ChatClientV2({ url: server.url, nick: "ann", autoConnect: false });
    const waiting = c.ready();
    expect(await c.ready({ signal: AbortSignal.timeout(10) }).catch((e: ChatError) => e.code)).toBe(
      "aborted",
    );
    c.close();
    expect(await waiting.catch((e: ChatError) => e.code)).toBe("closed");
    expect(c.state).toBe("offline");
  });
});
