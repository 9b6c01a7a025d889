/**
 * The Deno entry (`npm run start:deno`) beyond the protocol (the conformance suites run against it
 * too): it starts and fails as `bun server.ts` does, with the same configuration; its SQLite file
 * (node:sqlite) is the Bun server's format and lock; over a Redis Cluster it is one chat server with
 * Bun processes; its liveness is Deno's pings; and the topic map that stands for Bun's pub/sub.
 */
import { afterAll, afterEach, describe, expect, it } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { brotliDecompressSync } from "node:zlib";
import type { PresenceEvent } from "../../protocol";
import { DenoPeer, type DenoSocket } from "../../server/deno/deno-peer";
import { Topics } from "../../server/deno/topics";
import { RedisCluster, redisClusterAvailable } from "../redis/support/redis-cluster";
import { RedisProcess, redisAvailable } from "../redis/support/redis-server";
import { buildPage, denoCommand, killAllDenoServers, startDenoServer } from "../support/deno-server";
import { RawWebSocket } from "../support/raw-websocket";
import { killAllServerProcesses, spawnServer } from "../support/server-process";
import { closeAllClients, connect, type TestClient } from "../support/test-client";
import { closeAllV2Clients, connectV2 } from "../support/v2-client";

const ROOT = join(import.meta.dir, "..", "..");
const tmp = mkdtempSync(join(tmpdir(), "chat-deno-"));

afterEach(async () => {
  await closeAllClients();
  await closeAllV2Clients();
  await killAllDenoServers();
  await killAllServerProcesses();
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Runs a command to its end with exactly `env` (and what Deno needs to find its cache). */
async function runToEnd(cmd: string[], env: Record<string, string>) {
  const proc = Bun.spawn(cmd, {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", ...env },
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  return { code, stdout, stderr };
}

async function who(client: TestClient): Promise<string[]> {
  client.send({ type: "who" });
  return (await client.next("users")).users;
}

const deno = () => [join(ROOT, "node_modules", ".bin", "deno"), ...denoCommand().slice(1)];
const bun = () => [process.execPath, "server.ts"];

describe("the Deno entry", () => {
  it("runs exactly what npm run start:deno runs, with named permissions rather than -A", () => {
    const cmd = denoCommand();
    expect(cmd.slice(0, 2)).toEqual(["deno", "run"]);
    expect(cmd.at(-1)).toBe("server.deno.ts");
    expect(cmd).not.toContain("-A");
    expect(cmd).not.toContain("--allow-all");
  });

  it("says where it listens on a free port, and speaks v1 and v2", async () => {
    const srv = await startDenoServer();
    expect(srv.url.hostname).toBe("127.0.0.1");
    expect(Number(srv.url.port)).toBeGreaterThan(0);
    const ann = await connect(srv.url, { room: "r", nick: "ann" });
    const [bob] = await connectV2(srv.url, { nick: "bob", room: "r" });
    ann.send({ type: "chat", text: "hello", id: "m1" });
    expect(await ann.next("ack")).toEqual({ type: "ack", id: "m1", seq: 1 });
    expect(await bob.first("chat")).toMatchObject({ room: "r", seq: 1, nick: "ann", text: "hello" });
    expect(await srv.stop()).toBe(0);
  });

  it("refuses a bad setting, a port in use and an unknown flag as bun server.ts does, and tells its version", async () => {
    const bad: Array<Record<string, string>> = [
      { PORT: "abc" },
      { RATE_LIMIT: "-1" },
      { DB_SYNC: "sometimes" },
      // A cluster no node of which answers: the setting is named, on both.
      { REDIS_CLUSTER: "127.0.0.1:1" },
    ];
    for (const env of bad) {
      const [onDeno, onBun] = await Promise.all([runToEnd(deno(), env), runToEnd(bun(), env)]);
      expect(onDeno.code).toBe(1);
      expect({ env, stderr: onDeno.stderr.trim() }).toEqual({ env, stderr: onBun.stderr.trim() });
    }
    const holder = await startDenoServer();
    const port = { PORT: holder.url.port, HOST: "127.0.0.1", DB_PATH: ":memory:" };
    const [onDeno, onBun] = await Promise.all([runToEnd(deno(), port), runToEnd(bun(), port)]);
    expect(onDeno.code).toBe(1);
    expect(onDeno.stderr).toContain(`configuration error: PORT: ${holder.url.port} is in use on 127.0.0.1`);
    expect(onDeno.stderr.trim()).toBe(onBun.stderr.trim());
    const version = await runToEnd([...deno(), "--version"], {});
    expect(version.code).toBe(0);
    const onBunVersion = await runToEnd([...bun(), "--version"], {});
    // The same server and protocols; the runtime line names the runtime.
    expect(version.stdout.replace(/runtime: deno \S+/, "runtime: RUNTIME")).toBe(
      onBunVersion.stdout.replace(/runtime: bun \S+/, "runtime: RUNTIME"),
    );
    expect(version.stdout).toContain("runtime: deno ");
    const unknown = await runToEnd([...deno(), "--no-such-flag"], {});
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("unknown flag --no-such-flag");
  }, 30_000);

  it.if(redisAvailable())(
    "over one Redis (ioredis, as Deno has no Bun client), is one chat server with the Bun server",
    async () => {
      const redis = await RedisProcess.start();
      try {
        const env = { REDIS_URL: redis.url };
        const [onDeno, onBun] = await Promise.all([startDenoServer(env), spawnServer(env)]);
        const ann = await connect(onDeno.url, { room: "r", nick: "ann" });
        const bob = await connect(onBun.url, { room: "r", nick: "bob" });
        ann.send({ type: "chat", text: "hi", id: "m1" });
        expect(await ann.next("ack")).toEqual({ type: "ack", id: "m1", seq: 1 });
        expect(await bob.next("chat")).toMatchObject({ seq: 1, nick: "ann", text: "hi" });
        bob.send({ type: "chat", text: "yo" });
        expect(await ann.next("chat", (m) => m.text === "yo")).toMatchObject({ seq: 2, nick: "bob" });
        expect((await who(ann)).sort()).toEqual(["ann", "bob"]);
      } finally {
        await closeAllClients();
        await killAllDenoServers();
        await killAllServerProcesses();
        await redis.stop();
      }
    },
    60_000,
  );

  it.if(redisClusterAvailable())(
    "over a Redis Cluster (ioredis), is one chat server with the Bun server and another Deno process",
    async () => {
      const cluster = await RedisCluster.start();
      try {
        const env = { REDIS_CLUSTER: cluster.seedsEnv };
        const [deno1, deno2, onBun] = await Promise.all([
          startDenoServer(env),
          startDenoServer(env),
          spawnServer(env),
        ]);
        const ann = await connect(deno1.url, { room: "r", nick: "ann" });
        const bob = await connect(onBun.url, { room: "r", nick: "bob" });
        const [cat] = await connectV2(deno2.url, { nick: "cat", room: "r" });
        await cat.first("joined");
        ann.send({ type: "chat", text: "hi", id: "m1" });
        expect(await ann.next("ack")).toEqual({ type: "ack", id: "m1", seq: 1 });
        expect(await bob.next("chat")).toMatchObject({ seq: 1, nick: "ann", text: "hi" });
        expect(await cat.first("chat")).toMatchObject({ seq: 1, nick: "ann", text: "hi" });
        bob.send({ type: "chat", text: "yo" });
        expect(await ann.next("chat", (m) => m.text === "yo")).toMatchObject({ seq: 2, nick: "bob" });
        expect((await who(ann)).sort()).toEqual(["ann", "bob", "cat"]);
      } finally {
        await closeAllClients();
        await closeAllV2Clients();
        await killAllDenoServers();
        await killAllServerProcesses();
        await cluster.stop();
      }
    },
    60_000,
  );

  it("serves the page that start:deno builds, compressed, as the Bun server does", async () => {
    await buildPage();
    const srv = await startDenoServer();
    const res = await fetch(srv.url, { headers: { "accept-encoding": "br" }, decompress: false });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-encoding")).toBe("br");
    expect(res.headers.get("content-security-policy")).toContain("script-src 'sha256-");
    const html = brotliDecompressSync(Buffer.from(await res.arrayBuffer())).toString();
    expect(html).toContain('id="headline"');
    const again = await fetch(srv.url, { headers: { "if-none-match": res.headers.get("etag") ?? "" } });
    expect(again.status).toBe(304);
  });

  it("keeps its SQLite file as the Bun server does: one server at a time, and what Deno acked Bun serves after", async () => {
    const dbPath = join(tmp, "shared.db");
    const first = await startDenoServer({ DB_PATH: dbPath });
    const ann = await connect(first.url, { room: "r", nick: "ann" });
    await ann.post("m", 3);
    const epoch = ann.welcome.epoch;
    // node:sqlite's lock is the same lock file as bun:sqlite's: a Bun server is refused meanwhile.
    const refused = await runToEnd(bun(), { PORT: "0", DB_PATH: dbPath });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`is in use by another server process (pid ${first.proc.pid})`);
    expect(await first.stop()).toBe(0);
    expect(await ann.closing()).toBe(1001);

    const onBun = await spawnServer({ DB_PATH: dbPath });
    const late = await connect(onBun.url, { room: "r", nick: "late" });
    expect(late.welcome.history.map((m) => [m.seq, m.text])).toEqual([
      [1, "m-1"],
      [2, "m-2"],
      [3, "m-3"],
    ]);
    expect(late.welcome.epoch).toBe(epoch);
  }, 20_000);

  it("drops a peer that answers no ping within HEARTBEAT_TIMEOUT_SECONDS, in a busy room, and keeps an idle one", async () => {
    const TIMEOUT = 2;
    const srv = await startDenoServer({ HEARTBEAT_TIMEOUT_SECONDS: String(TIMEOUT), RATE_LIMIT: "0" });
    const chatter = await connect(srv.url, { room: "busy", nick: "chatter" });
    // Answers pings (Bun's client does) and sends nothing else.
    const idle = await connect(srv.url, { room: "busy", nick: "idle" });
    let chats = 0;
    const talking = setInterval(() => chatter.send({ type: "chat", text: `tick ${++chats}` }), 200);
    const leaveOf = (nick: string) => (p: { events: PresenceEvent[] }) =>
      p.events.some((e) => e.event === "leave" && e.nick === nick);
    try {
      const silentSince = performance.now();
      const dead = await RawWebSocket.open(srv.url, { room: "busy", nick: "dead" });
      dead.pause(); // never reads again, never answers a ping
      await chatter.next("presence", leaveOf("dead"), (TIMEOUT + 3) * 1000);
      const dropMs = performance.now() - silentSince;
      // Deno's own pings: the server sends a frame every 200 ms, which must not keep the dead peer in.
      expect(dropMs).toBeGreaterThanOrEqual(TIMEOUT * 1000 - 50);
      expect(dropMs).toBeLessThan(TIMEOUT * 1000 + 1500);
      dead.destroy();
      const idleFor = performance.now() - silentSince;
      if (idleFor < 2.2 * TIMEOUT * 1000) await Bun.sleep(2.2 * TIMEOUT * 1000 - idleFor);
      expect(idle.closeCode).toBeUndefined();
      expect(chatter.all("presence").some(leaveOf("idle"))).toBe(false);
    } finally {
      clearInterval(talking);
    }
  }, 20_000);
});

/** A socket that records what it was sent; `broken` ones throw, as a socket closing under us may. */
function fakeSocket(broken = false): DenoSocket & { sent: string[] } {
  const sent: string[] = [];
  return {
    sent,
    bufferedAmount: 0,
    send(data: string) {
      if (broken) throw new Error("socket gone");
      sent.push(data);
    },
    close() {},
  };
}

describe("Topics (fan-out on Deno)", () => {
  it("publishes to every subscriber of the topic once, and to no other topic", () => {
    const topics = new Topics<DenoPeer>();
    const [a, b, c] = [fakeSocket(), fakeSocket(), fakeSocket()];
    const peers = [a, b, c].map((s) => new DenoPeer(s, topics));
    peers[0]?.subscribe("room:r");
    peers[1]?.subscribe("room:r");
    peers[1]?.subscribe("room:r");
    peers[2]?.subscribe("room:s");
    topics.publish("room:r", "x");
    expect([a.sent, b.sent, c.sent]).toEqual([["x"], ["x"], []]);
  });

  it("leaves the sender out of publishOthers", () => {
    const topics = new Topics<DenoPeer>();
    const [a, b] = [fakeSocket(), fakeSocket()];
    const [pa, pb] = [new DenoPeer(a, topics), new DenoPeer(b, topics)];
    pa.subscribe("t");
    pb.subscribe("t");
    pa.publishOthers("t", "typing");
    expect([a.sent, b.sent]).toEqual([[], ["typing"]]);
  });

  it("goes on past a socket that throws: the others still get the frame", () => {
    const topics = new Topics<DenoPeer>();
    const [a, broken, c] = [fakeSocket(), fakeSocket(true), fakeSocket()];
    for (const s of [a, broken, c]) new DenoPeer(s, topics).subscribe("t");
    topics.publish("t", "x");
    expect([a.sent, c.sent]).toEqual([["x"], ["x"]]);
  });

  it("takes a closed socket out of every topic it followed, and forgets empty topics", () => {
    const topics = new Topics<DenoPeer>();
    const a = fakeSocket();
    const peer = new DenoPeer(a, topics);
    peer.subscribe("room:r");
    peer.subscribe("room2:r");
    peer.unsubscribe("room2:r");
    peer.subscribe("user:u");
    peer.left();
    topics.publish("room:r", "x");
    topics.publish("user:u", "y");
    expect(a.sent).toEqual([]);
    expect([topics.size("room:r"), topics.size("room2:r"), topics.size("user:u")]).toEqual([0, 0, 0]);
  });
});
