/** The client library against a real server on loopback: events, outbox, user list, reconnection and resume. */
import { afterEach, describe, expect, it } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import WsWebSocket from "ws";
import {
  backoffDelay,
  ChatClient,
  type ChatClientOptions,
  ChatError,
  type ClientEvents,
  type InvalidFrame,
  parseCommand,
  Roster,
  type SocketClass,
} from "../client";
import type { ChatMessage } from "../protocol";
import { type RunningServer, startServer } from "../server";
import { silentLogger } from "../server/chat/log";
import { loadConfig } from "../server/config";
import { TcpGate } from "./e2e/tcp-gate";

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

function tempDb(): string {
  const dir = mkdtempSync(join(tmpdir(), "chat-client-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, "chat.db");
}

/** A server on 127.0.0.1; `port` and `db` reuse an earlier one's, as a restart does. */
function serve(db: string, port = 0, more: Record<string, string> = {}): RunningServer {
  const env = { PORT: String(port), HOST: "127.0.0.1", DB_PATH: db, RATE_LIMIT: "0", ...more };
  const running = startServer(loadConfig(env), silentLogger);
  cleanups.push(() => running.stop());
  return running;
}

function client(url: string | URL, options: Partial<ChatClientOptions> = {}): ChatClient {
  const c = new ChatClient({
    url,
    room: "lobby",
    heartbeatMs: 0,
    backoff: { baseMs: 20, maxMs: 100 },
    ...options,
  });
  cleanups.push(() => c.close());
  return c;
}

/** The next event of `type` that passes `test`. */
function next<K extends keyof ClientEvents>(
  c: ChatClient,
  type: K,
  test: (value: ClientEvents[K]) => boolean = () => true,
  ms = 5000,
): Promise<ClientEvents[K]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`no ${String(type)} event within ${ms} ms`));
    }, ms);
    const off = c.on(type, (value) => {
      if (!test(value)) return;
      clearTimeout(timer);
      off();
      resolve(value);
    });
  });
}

async function until(condition: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(5);
  }
}

/** Everything a client would show: the welcome's history, then missed and live messages. */
function shown(c: ChatClient): ChatMessage[] {
  const list: ChatMessage[] = [];
  c.on("welcome", (e) => {
    if (e.reset) list.splice(0, list.length, ...e.message.history);
    else list.push(...e.missed);
  });
  c.on("chat", (m) => list.push(m));
  return list;
}

async function connected(c: ChatClient): Promise<ChatClient> {
  if (!c.connected) await next(c, "welcome");
  return c;
}

/** Sends and waits for the ack. */
async function say(c: ChatClient, text: string): Promise<number> {
  const entry = c.send(text);
  await until(() => entry.state === "sent", `ack of ${text}`);
  return entry.seq as number;
}

function expectGapless(messages: ChatMessage[], from: number, to: number): void {
  expect(messages.map((m) => m.seq)).toEqual(Array.from({ length: to - from + 1 }, (_, i) => from + i));
}

describe("ChatClient on a live server", () => {
  it("gets its welcome, sends a message and sees its ack with the seq everyone got", async () => {
    const server = serve(tempDb());
    const alice = await connected(client(server.url, { nick: "alice" }));
    const bob = await connected(client(server.url, { nick: "bob" }));
    const bobSees = next(bob, "chat");
    const entry = alice.send("hello bob");
    expect(entry.state).toBe("sending");
    const got = await bobSees;
    await until(() => entry.state === "sent", "ack");
    expect(got).toMatchObject({ nick: "alice", text: "hello bob", room: "lobby" });
    expect(entry.seq).toBe(got.seq);
    expect(alice.state).toEqual({ status: "connected", connectionId: alice.connectionId as string });
    expect(alice.nickname).toBe("alice");
  });

  it("keeps the user list from the welcome and presence events, equal to the server's", async () => {
    const server = serve(tempDb());
    const alice = await connected(client(server.url, { nick: "alice" }));
    expect(alice.users).toEqual(["alice"]);
    const bob = await connected(client(server.url, { nick: "Bob" }));
    const carol = await connected(client(server.url, { nick: "carol" }));
    await until(() => alice.users.length === 3, "alice to see three users");
    expect(alice.users).toEqual(["alice", "Bob", "carol"]);
    expect(bob.users).toEqual(["alice", "Bob", "carol"]);

    bob.nick("zed");
    await until(() => bob.nickname === "zed", "bob's own rename");
    await until(() => alice.users.includes("zed"), "alice to see the rename");
    expect(alice.users).toEqual(["alice", "carol", "zed"]);

    carol.close();
    await until(() => alice.users.length === 2, "alice to see carol leave");
    await until(() => bob.users.length === 2, "bob to see carol leave");
    expect(alice.users).toEqual(["alice", "zed"]);
    expect(bob.users).toEqual(alice.users);

    const asked = next(alice, "users");
    expect(alice.who()).toBe(true);
    expect((await asked).users).toEqual(alice.users as string[]);
  });

  it("reports nick_taken from the server and keeps the old nickname", async () => {
    const server = serve(tempDb());
    const alice = await connected(client(server.url, { nick: "alice" }));
    await connected(client(server.url, { nick: "bob" }));
    const error = next(alice, "error");
    alice.input("/nick BOB");
    expect((await error).code).toBe("nick_taken");
    expect(alice.nickname).toBe("alice");
  });

  it("refuses locally what the server would refuse, with the server's codes", async () => {
    const server = serve(tempDb());
    const alice = await connected(client(server.url, { nick: "alice" }));
    const blank = alice.send("   ");
    expect(blank.state).toBe("failed");
    expect(blank.error?.code).toBe("bad_message");
    expect(alice.send("x".repeat(4001)).error?.code).toBe("too_large");
    const error = next(alice, "error");
    expect(alice.nick("two words")).toBe(false);
    expect((await error).code).toBe("nick_invalid");
  });

  it("moves to another room with /join and starts a fresh view there", async () => {
    const server = serve(tempDb());
    const alice = await connected(client(server.url, { nick: "alice" }));
    await say(alice, "in the lobby");
    const welcome = next(alice, "welcome");
    alice.input("/join kitchen");
    const e = await welcome;
    expect(e.reset).toBe(true);
    expect(e.message.room).toBe("kitchen");
    expect(e.message.history).toEqual([]);
    expect(alice.room).toBe("kitchen");
    expect(alice.lastSeq).toBe(0);
  });

  it("loads older history on request", async () => {
    const server = serve(tempDb());
    const alice = await connected(client(server.url, { nick: "alice" }));
    for (let i = 1; i <= 5; i++) await say(alice, `m${i}`);
    const page = next(alice, "history");
    alice.history(4, 2);
    const h = await page;
    expect(h.messages.map((m) => m.text)).toEqual(["m2", "m3"]);
    expect(h.hasMore).toBe(true);
  });

  it("reconnects after a restart on the same port and database: nothing missed, nothing twice", async () => {
    const db = tempDb();
    let server = serve(db);
    const port = server.server.port as number;
    // A fixed first delay of one second: the messages below land while alice is away.
    const alice = await connected(
      client(server.url, { nick: "alice", backoff: { baseMs: 1000 }, random: () => 1 }),
    );
    const aliceSaw = shown(alice);
    const bob = await connected(client(server.url, { nick: "bob" }));
    for (let i = 1; i <= 3; i++) await say(bob, `before ${i}`);
    await until(() => aliceSaw.length === 3, "alice to see the first messages");
    const firstId = alice.connectionId;

    await server.stop();
    await until(() => alice.state.status === "waiting", "alice to notice the drop");
    server = serve(db, port);
    const carol = await connected(client(server.url, { nick: "carol" }));
    for (let i = 1; i <= 3; i++) await say(carol, `missed ${i}`);
    expect(alice.connected).toBe(false);

    const back = await next(alice, "welcome", () => true, 5000);
    expect(back.reset).toBe(false);
    expect(back.resumed).toBe(true);
    expect(back.missed.map((m) => m.text)).toEqual(["missed 1", "missed 2", "missed 3"]);
    expect(alice.nickname).toBe("alice");
    expect(alice.connectionId).not.toBe(firstId);

    await say(carol, "after");
    await until(() => aliceSaw.length === 7, "alice to see the live message");
    expectGapless(aliceSaw, 1, 7);
    expect(aliceSaw.map((m) => m.text).at(-1)).toBe("after");
  });

  it("starts its view over when the server's history was lost, even with more messages than it saw", async () => {
    const first = tempDb();
    let server = serve(first);
    const port = server.server.port as number;
    const alice = await connected(
      client(server.url, { nick: "alice", backoff: { baseMs: 1000 }, random: () => 1 }),
    );
    for (let i = 1; i <= 2; i++) await say(alice, `old ${i}`);
    await server.stop();
    await until(() => alice.state.status === "waiting", "alice to notice the drop");
    // The same port, a new database: the room's seqs start again, under a new epoch.
    server = serve(tempDb(), port);
    const bob = await connected(client(server.url, { nick: "bob" }));
    for (let i = 1; i <= 3; i++) await say(bob, `new ${i}`);
    const back = await next(alice, "welcome", () => true, 5000);
    expect(back.message.epoch).toBeDefined();
    // lastSeq (3) is past what alice saw (2): only the epoch tells her those are other messages.
    expect(back.message.lastSeq).toBeGreaterThan(2);
    expect(back.reset).toBe(true);
    // Nothing of the new history is taken for messages alice missed from the old one.
    expect(back.missed).toEqual([]);
  });

  it("delivers messages written while the server was down exactly once, in order", async () => {
    const db = tempDb();
    let server = serve(db);
    const port = server.server.port as number;
    const alice = await connected(
      client(server.url, { nick: "alice", backoff: { baseMs: 100, maxMs: 200 } }),
    );
    await say(alice, "first");
    await server.stop();
    await until(() => !alice.connected, "alice to notice the drop");
    const queued = [alice.send("queued 1"), alice.send("queued 2")];
    expect(queued.map((e) => e.state)).toEqual(["sending", "sending"]);
    expect(alice.pending).toHaveLength(2);

    server = serve(db, port);
    await until(() => queued.every((e) => e.state === "sent"), "acks of the queued messages");
    expect(queued.map((e) => e.seq)).toEqual([2, 3]);
    expect(alice.pending).toHaveLength(0);
    const bob = await connected(client(server.url, { nick: "bob" }));
    const page = next(bob, "history");
    bob.history();
    expect((await page).messages.map((m) => m.text)).toEqual(["first", "queued 1", "queued 2"]);
  });

  it("resends an unacked message after a drop under the same id; the server stores it once", async () => {
    const server = serve(tempDb());
    const gate = await TcpGate.start({ host: "127.0.0.1", port: server.server.port as number });
    cleanups.push(() => gate.close());
    const alice = await connected(client(gate.url, { nick: "alice" }));
    const aliceSaw = shown(alice);
    const bob = await connected(client(server.url, { nick: "bob" }));

    gate.mute(); // the server stores the message and acks it, but alice hears nothing
    const bobSees = next(bob, "chat");
    const entry = alice.send("only once");
    const box = alice.pending.find((e) => e.id === entry.id);
    expect((await bobSees).text).toBe("only once");
    await Bun.sleep(50);
    expect(entry.state).toBe("sending");

    gate.open();
    gate.cut();
    await until(() => entry.state === "sent", "the ack after the resend");
    expect(box?.attempts).toBe(2);
    expect(entry.seq).toBe(1);
    expect(aliceSaw.map((m) => m.text)).toEqual(["only once"]);
    const page = next(bob, "history");
    bob.history();
    expect((await page).messages.map((m) => m.text)).toEqual(["only once"]);
  });

  it("gives up on a socket that went silent and comes back by itself", async () => {
    const server = serve(tempDb());
    const gate = await TcpGate.start({ host: "127.0.0.1", port: server.server.port as number });
    cleanups.push(() => gate.close());
    const alice = await connected(client(gate.url, { nick: "alice", heartbeatMs: 100, timeoutMs: 200 }));
    const first = alice.connectionId;
    gate.mute();
    await next(alice, "state", (s) => s.status === "waiting", 2000);
    gate.open();
    await next(alice, "welcome", () => true, 2000);
    expect(alice.connectionId).not.toBe(first);
    expect(alice.nickname).toBe("alice");
  });

  it("stops for good when another connection resumes its session (4001)", async () => {
    const server = serve(tempDb());
    const alice = client(server.url, { nick: "alice" });
    const { message } = await next(alice, "welcome");
    const url = `ws://127.0.0.1:${server.server.port}/ws?room=lobby&resume=${encodeURIComponent(message.resumeToken)}`;
    const other = new WebSocket(url);
    cleanups.push(() => other.close());
    const welcome = await new Promise<{ nick: string }>((resolve) => {
      other.onmessage = (e) => resolve(JSON.parse(String(e.data)));
    });
    expect(welcome.nick).toBe("alice");
    const closed = await next(alice, "state", (s) => s.status === "closed");
    expect(closed).toMatchObject({ status: "closed", code: 4001 });
    await Bun.sleep(100);
    expect(alice.state.status).toBe("closed");
  });
});

describe("ChatClient's promises and its one error type", () => {
  it("fires no event inside the constructor: a listener added after `new` sees the first state", async () => {
    const server = serve(tempDb());
    const alice = client(server.url, { nick: "alice" });
    const states: string[] = [];
    alice.on("state", (s) => states.push(s.status));
    await alice.ready();
    expect(states).toEqual(["connecting", "connected"]);
  });

  it("ready() resolves with the welcome, at once when connected, and rejects once closed", async () => {
    const server = serve(tempDb());
    const alice = client(server.url, { nick: "alice" });
    const welcome = await alice.ready();
    expect(welcome).toMatchObject({ type: "welcome", room: "lobby", nick: "alice" });
    expect(await alice.ready()).toBe(welcome);

    const waiting = client(server.url, { nick: "bob", autoConnect: false }).ready();
    const late = client(server.url, { nick: "carol", autoConnect: false });
    const pending = late.ready();
    late.close();
    const closed = await pending.catch((e: unknown) => e);
    expect(closed).toBeInstanceOf(ChatError);
    expect(closed).toMatchObject({ code: "closed" });
    const aborted = await client(server.url, { nick: "dan", autoConnect: false })
      .ready({ signal: AbortSignal.timeout(20) })
      .catch((e: unknown) => e);
    expect(aborted).toMatchObject({ name: "ChatError", code: "aborted" });
    expect(await Promise.race([waiting.then(() => "ready"), Bun.sleep(50).then(() => "waiting")])).toBe(
      "waiting",
    );
  });

  it("send() resolves with the ack: the seq everyone got; its fields follow the message", async () => {
    const server = serve(tempDb());
    const alice = client(server.url, { nick: "alice" });
    const bob = await connected(client(server.url, { nick: "bob" }));
    // Sent before the welcome: waits in the outbox, then goes.
    const sending = alice.send("hello");
    expect([sending.state, sending.room, sending.text, sending.seq]).toEqual([
      "sending",
      "lobby",
      "hello",
      undefined,
    ]);
    const heard = next(bob, "chat");
    const ack = await sending;
    expect(ack).toEqual({ id: sending.id, room: "lobby", seq: (await heard).seq });
    expect([sending.state, sending.seq]).toEqual(["sent", ack.seq]);
  });

  it("a refusal rejects the send with a ChatError, the same object the error event and the entry carry", async () => {
    const server = serve(tempDb(), 0, { RATE_LIMIT: "1", RATE_BURST: "1" });
    const alice = await connected(client(server.url, { nick: "alice" }));
    const errors: ChatError[] = [];
    alice.on("error", (e) => errors.push(e));
    const sends = [alice.send("one"), alice.send("two"), alice.send("three")];
    const settled = await Promise.allSettled(sends);
    expect(settled.map((s) => s.status)).toEqual(["fulfilled", "rejected", "rejected"]);
    const refusal = (settled[1] as PromiseRejectedResult).reason;
    expect(refusal).toBeInstanceOf(ChatError);
    expect(refusal).toMatchObject({ code: "rate_limited", id: sends[1]?.id, room: "lobby" });
    expect(errors[0]).toBe(refusal);
    expect(sends[1]?.error).toBe(refusal);
    expect(sends[1]?.state).toBe("failed");

    // Refused before sending, with the server's codes; a discard rejects but is no error event.
    const blank = alice.send("   ");
    expect(await blank.catch((e: ChatError) => e.code)).toBe("bad_message");
    expect(errors.at(-1)?.code).toBe("bad_message");
    const count = errors.length;
    const discarded = alice.send("x".repeat(4001));
    expect(alice.discard(discarded.id)).toBe(true);
    expect(await discarded.catch((e: ChatError) => e.code)).toBe("too_large");
    const retried = alice.retry(sends[2]?.id as string);
    expect(retried?.id).toBe(sends[2]?.id as string);
    expect(alice.discard(sends[2]?.id as string)).toBe(true);
    expect(await retried?.catch((e: ChatError) => e.code)).toBe("discarded");
    expect(errors.length).toBe(count + 1);
  });

  it("says what to do where the runtime has no WebSocket, and takes ws's class instead", async () => {
    const server = serve(tempDb());
    const global = globalThis as { WebSocket?: unknown };
    const saved = global.WebSocket;
    delete global.WebSocket;
    try {
      expect(() => new ChatClient({ url: server.url, autoConnect: false })).toThrow(
        /pass one as the WebSocket option/,
      );
    } finally {
      global.WebSocket = saved;
    }
    const viaWs: SocketClass = WsWebSocket;
    const alice = client(server.url, { nick: "alice", WebSocket: viaWs });
    expect((await alice.ready()).nick).toBe("alice");
    expect((await alice.send("over ws")).seq).toBe(1);
  });
});

describe("ChatClient against a misbehaving server", () => {
  it("reports a frame that does not decode and acts on none of it", async () => {
    const fake = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      fetch: (req, srv) => (srv.upgrade(req) ? undefined : new Response("no")),
      websocket: {
        open(ws) {
          ws.send("not json");
          ws.send(
            JSON.stringify({ type: "chat", room: "lobby", seq: 1, nick: "x", text: "<b>", sentAt: "now" }),
          );
          ws.send(JSON.stringify({ type: "surprise" }));
        },
        message() {},
      },
    });
    cleanups.push(() => fake.stop(true));
    const alice = client(fake.url, { nick: "alice" });
    const invalid: string[] = [];
    alice.on("error", (e) => invalid.push(`${e.code}: ${(e.cause as InvalidFrame).code}`));
    const chats: unknown[] = [];
    alice.on("chat", (m) => chats.push(m));
    await until(() => invalid.length === 3, "three invalid reports");
    expect(invalid).toEqual([
      "invalid_frame: bad_json",
      "invalid_frame: bad_message",
      "invalid_frame: bad_message",
    ]);
    expect(chats).toEqual([]);
    expect(alice.connected).toBe(false);
  });

  it("shows each seq once, even when a frame repeats one", async () => {
    const chat = (seq: number) =>
      JSON.stringify({
        type: "chat",
        room: "lobby",
        seq,
        nick: "x",
        text: `m${seq}`,
        sentAt: new Date().toISOString(),
      });
    const welcome = {
      type: "welcome",
      protocol: 1,
      connectionId: "c1",
      room: "lobby",
      nick: "alice",
      users: ["alice"],
      history: [],
      historyTruncated: false,
      lastSeq: 0,
      resumeToken: "t1",
    };
    const fake = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      fetch: (req, srv) => (srv.upgrade(req) ? undefined : new Response("no")),
      websocket: {
        open(ws) {
          for (const frame of [JSON.stringify(welcome), chat(1), chat(2), chat(1), chat(2), chat(3)])
            ws.send(frame);
        },
        message() {},
      },
    });
    cleanups.push(() => fake.stop(true));
    const alice = client(fake.url, { nick: "alice" });
    const seen: number[] = [];
    alice.on("chat", (m) => seen.push(m.seq));
    await until(() => seen.includes(3), "the third message");
    expect(seen).toEqual([1, 2, 3]);
    expect(alice.lastSeq).toBe(3);
  });
});

describe("parseCommand", () => {
  it("reads chat lines, /nick, /join, /who, /me and // escapes", () => {
    expect(parseCommand("hello")).toEqual({ kind: "chat", text: "hello" });
    expect(parseCommand("/nick  Zoë ")).toEqual({ kind: "nick", nick: "Zoë" });
    expect(parseCommand("/NICK bob")).toEqual({ kind: "nick", nick: "bob" });
    expect(parseCommand("/join #kitchen")).toEqual({ kind: "join", room: "kitchen" });
    expect(parseCommand("/who")).toEqual({ kind: "who" });
    expect(parseCommand("/me waves")).toEqual({ kind: "chat", text: "/me waves" });
    expect(parseCommand("//not a command")).toEqual({ kind: "chat", text: "/not a command" });
    expect(parseCommand("   ")).toEqual({ kind: "none" });
  });

  it("explains what it cannot run instead of sending it", () => {
    expect(parseCommand("/nick")).toMatchObject({ kind: "invalid", message: "usage: /nick NAME" });
    expect(parseCommand("/nick two words").kind).toBe("invalid");
    expect(parseCommand("/join no/slash").kind).toBe("invalid");
    expect(parseCommand("/dance")).toMatchObject({ kind: "invalid" });
  });
});

describe("Roster", () => {
  it("applies presence events in order, idempotently", () => {
    const roster = new Roster();
    roster.reset(["bob", "alice"]);
    roster.apply({ event: "join", nick: "Carol" });
    roster.apply({ event: "join", nick: "Carol" });
    roster.apply({ event: "nick", from: "bob", nick: "Bobby" });
    roster.apply({ event: "leave", nick: "alice" });
    roster.apply({ event: "leave", nick: "alice" });
    expect(roster.list()).toEqual(["Bobby", "Carol"]);
  });
});

describe("backoffDelay", () => {
  const options = { baseMs: 500, maxMs: 15_000, factor: 2 };
  it("doubles per attempt up to the ceiling, jittered within the upper half", () => {
    expect([0, 1, 2, 3, 10].map((n) => backoffDelay(n, options, () => 1))).toEqual([
      500, 1000, 2000, 4000, 15_000,
    ]);
    expect([0, 1, 10].map((n) => backoffDelay(n, options, () => 0))).toEqual([250, 500, 7500]);
  });
});
