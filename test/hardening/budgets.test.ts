/**
 * Memory and CPU a client address may take: every send counts toward the slow-reader limit (not only
 * broadcasts), an address's connections share one budget of unsent bytes, and history is budgeted
 * in bytes per address, so other users' latency stays flat while one address hammers history.
 */
import { afterEach, describe, expect, it } from "bun:test";
import { FakeNet } from "../support/fake-net";
import { localHub } from "../support/hubs";
import { RawWebSocket } from "../support/raw-websocket";
import { closeAllClients, connect } from "../support/test-client";
import { startTestServer, stopAllServers } from "../support/test-server";
import { eventually } from "../support/timing";

afterEach(async () => {
  await closeAllClients();
  await stopAllServers();
});

const BIG = "x".repeat(3000);
/** Another client address, as a trusted proxy (127.0.0.1 in these tests) reports it. */
const ELSEWHERE = { "X-Forwarded-For": "203.0.113.9" };

/** A room `big` holding `count` messages of 3,000 characters. */
async function bigRoom(url: URL, count: number): Promise<void> {
  const filler = await connect(url, { room: "big", nick: "filler" });
  for (let i = 1; i <= count; i++) filler.send({ type: "chat", text: `${i} ${BIG}`, id: `f${i}` });
  await filler.waitFor("ack", (a) => a.id === `f${count}`, 10_000);
  await filler.close();
}

function closeCode(ws: RawWebSocket): number | undefined {
  const last = ws.frames().at(-1);
  return last?.opcode === 8 ? last.payload.readUInt16BE(0) : undefined;
}

describe("replies to one connection, in the core", () => {
  it("close a connection past SLOW_CONSUMER_BYTES with 1008 whatever filled its buffer, not only broadcasts", () => {
    const net = new FakeNet();
    const hub = localHub({ fanout: net, limits: { slowConsumerBytes: 64 * 1024 } });
    const peer = net.peer();
    const conn = hub.open(peer, { room: "r", nick: "ann" });
    peer.onClose = (code) => hub.close(conn, code);
    hub.flush();
    expect(peer.inbox.map((m) => m.type)).toEqual(["welcome"]);
    peer.buffered = 64 * 1024 + 1;
    hub.receive(conn, JSON.stringify({ type: "who" }));
    expect(peer.closedWith).toBe(1008);
  });

  it("close the most backlogged connection of an address once its connections together hold more than their share", () => {
    const net = new FakeNet();
    const hub = localHub({
      fanout: net,
      limits: { bufferedBytesPerClient: 100_000, historyBytesPerSecond: 0 },
    });
    const peers = [0, 1, 2].map(() => net.peer());
    const conns = peers.map((peer, i) => {
      const conn = hub.open(peer, { room: "r", nick: `u${i}`, client: "198.51.100.1" });
      peer.onClose = (code) => hub.close(conn, code);
      return conn;
    });
    const other = net.peer();
    hub.open(other, { room: "r", nick: "other", client: "198.51.100.2" });
    hub.flush();
    [peers[0], peers[1], peers[2]].forEach((p, i) => {
      if (p) p.buffered = [20_000, 50_000, 40_000][i] as number;
    });
    other.buffered = 90_000;
    hub.enforceShares();
    expect(peers.map((p) => p.closedWith)).toEqual([undefined, 1008, undefined]);
    expect(other.closedWith).toBeUndefined();
    expect(conns).toHaveLength(3);
  });
});

describe("replies to one connection", () => {
  it("close a reader that stopped reading with 1008 once history replies fill its buffer", async () => {
    const srv = startTestServer({
      RATE_LIMIT: "0",
      SLOW_CONSUMER_BYTES: String(64 * 1024),
      HISTORY_BYTES_PER_SECOND: "0",
    });
    await bigRoom(srv.url, 100);
    const idle = await RawWebSocket.open(srv.url, { room: "big", nick: "idle" });
    idle.pause();
    for (let i = 0; i < 40; i++) idle.sendText(JSON.stringify({ type: "history", limit: 200 }));
    await eventually(() => srv.hub.connectionCount === 0, "the idle reader to be closed", 10_000);
    idle.resume();
    await idle.ended;
    expect(closeCode(idle)).toBe(1008);
  }, 15_000);

  it("share one budget of unsent bytes per address: its most backlogged connection is closed first", async () => {
    const srv = startTestServer({
      RATE_LIMIT: "0",
      SLOW_CONSUMER_BYTES: String(16 * 1024 * 1024),
      BUFFERED_BYTES_PER_IP: String(512 * 1024),
      TRUSTED_PROXIES: "127.0.0.1",
      HISTORY_BYTES_PER_SECOND: "0",
    });
    await bigRoom(srv.url, 100);
    const idle = await Promise.all(
      [0, 1, 2, 3].map((i) => RawWebSocket.open(srv.url, { room: "big", nick: `idle${i}` })),
    );
    for (const ws of idle) ws.pause();
    const bystander = await connect(srv.url, { room: "calm", nick: "calm", headers: ELSEWHERE });
    for (let round = 0; round < 40; round++)
      for (const ws of idle) ws.sendText(JSON.stringify({ type: "history", limit: 200 }));
    await eventually(
      () => srv.hub.connectionCount < 5,
      "a connection of the greedy address to close",
      10_000,
    );
    // The other address is not touched, and is served at once.
    await bystander.post("still here", 1);
    expect(bystander.closeCode).toBeUndefined();
    for (const ws of idle) ws.resume();
    await eventually(() => idle.some((ws) => closeCode(ws) === 1008), "a 1008 close frame to arrive", 5000);
  });
});

describe("history budget per address", () => {
  it("answers rate_limited once an address has read its history budget, while another address is served", async () => {
    const srv = startTestServer({
      RATE_LIMIT: "0",
      HISTORY_BYTES_PER_SECOND: "1000",
      HISTORY_BYTES_BURST: String(64 * 1024),
      TRUSTED_PROXIES: "127.0.0.1",
    });
    await bigRoom(srv.url, 100);
    const greedy = await connect(srv.url, { room: "big", nick: "greedy" });
    greedy.send({ type: "history", limit: 200 });
    expect((await greedy.next("history")).messages).toHaveLength(100);
    greedy.send({ type: "history", limit: 200 });
    expect((await greedy.next("error")).code).toBe("rate_limited");
    const other = await connect(srv.url, { room: "big", nick: "other", headers: ELSEWHERE });
    other.send({ type: "history", limit: 200 });
    expect((await other.next("history")).messages).toHaveLength(100);
  });

  it("refuses history to a connection that is not reading what it was sent", async () => {
    const srv = startTestServer({
      RATE_LIMIT: "0",
      SLOW_CONSUMER_BYTES: String(4 * 1024 * 1024),
      HISTORY_BYTES_PER_SECOND: "0",
    });
    await bigRoom(srv.url, 100);
    const idle = await RawWebSocket.open(srv.url, { room: "big", nick: "idle" });
    idle.pause();
    for (let i = 0; i < 40; i++) idle.sendText(JSON.stringify({ type: "history", limit: 200 }));
    await Bun.sleep(500);
    idle.resume();
    await Bun.sleep(1500);
    const texts = idle
      .frames()
      .filter((f) => f.opcode === 1)
      .map((f) => JSON.parse(f.payload.toString()) as { type: string; code?: string });
    expect(texts.filter((m) => m.type === "history").length).toBeLessThan(40);
    expect(srv.hub.connectionCount).toBe(1);
    expect(texts.some((m) => m.type === "error" && m.code === "rate_limited")).toBe(true);
  });
});

describe("resumable sessions per address", () => {
  it("keeps at most MAX_SESSIONS_PER_IP, forgetting the oldest ended ones first", async () => {
    const srv = startTestServer({ MAX_SESSIONS_PER_IP: "3", TRUSTED_PROXIES: "127.0.0.1" });
    const tokens: string[] = [];
    for (let i = 0; i < 5; i++) {
      const c = await connect(srv.url, { room: "r", nick: `n${i}` });
      tokens.push(c.welcome.resumeToken);
      await c.close();
    }
    // Another address's sessions are its own.
    const elsewhere = await connect(srv.url, { room: "r", nick: "far", headers: ELSEWHERE });
    // Newest first: resuming one that was forgotten makes a new session, which counts too.
    const nicks: string[] = [];
    for (const resume of [...tokens].reverse()) {
      const c = await connect(srv.url, { room: "r", resume });
      nicks.push(c.welcome.nick);
      await c.close();
    }
    expect(nicks.slice(0, 3)).toEqual(["n4", "n3", "n2"]);
    expect(nicks.slice(3).some((n) => n === "n0" || n === "n1")).toBe(false);
    expect(elsewhere.closeCode).toBeUndefined();
  });
});
