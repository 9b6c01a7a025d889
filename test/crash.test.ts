/**
 * Guarantee 2 against a real process: kill -9 while clients write, restart on the same database,
 * and every acknowledged message is there, seqs are gapless, and new ones continue the sequence.
 */
import { afterAll, describe, expect, it } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ChatMessage } from "../protocol";
import { killAllServerProcesses, killHard, type ServerProcess, spawnServer } from "./support/server-process";
import { closeAllClients, connect, type TestClient } from "./support/test-client";
import { sleep } from "./support/timing";

const tmp = mkdtempSync(join(tmpdir(), "chat-crash-"));

afterAll(async () => {
  await closeAllClients();
  await killAllServerProcesses();
  rmSync(tmp, { recursive: true, force: true });
});

const ROUNDS = 4;
const ROOMS = ["alpha", "beta", "gamma"];
const WRITERS_PER_ROOM = 2;

/** One client identity kept across crashes: it reconnects with its resume token and retries. */
interface Writer {
  room: string;
  nick: string;
  resumeToken: string | undefined;
  /** Every id sent (the text is the id), and the seq of those acknowledged. */
  sent: string[];
  acked: Map<string, number>;
  client?: TestClient;
}

/** A room's whole history through the HTTP API, paging back with `before`. */
async function allMessages(base: URL, room: string): Promise<ChatMessage[]> {
  const out: ChatMessage[] = [];
  let before = "";
  for (;;) {
    const res = await fetch(new URL(`/api/rooms/${room}/messages?limit=200${before}`, base));
    expect(res.status).toBe(200);
    const page = (await res.json()) as { messages: ChatMessage[]; hasMore: boolean };
    out.unshift(...page.messages);
    if (!page.hasMore || page.messages.length === 0) return out;
    before = `&before=${page.messages[0]?.seq}`;
  }
}

/** What the restarted server holds must include every ack, once, gapless; returns the room's newest seq. */
async function checkRoom(server: ServerProcess, room: string, writers: Writer[]): Promise<number> {
  const messages = await allMessages(server.url, room);
  const n = messages.length;
  expect({ room, seqs: messages.map((m) => m.seq) }).toEqual({
    room,
    seqs: Array.from({ length: n }, (_, i) => i + 1),
  });
  const seqByText = new Map(messages.map((m) => [m.text, m.seq]));
  expect({ room, duplicates: n - seqByText.size }).toEqual({ room, duplicates: 0 });
  const sent = new Set(writers.flatMap((w) => w.sent));
  expect({ room, unknown: messages.filter((m) => !sent.has(m.text)) }).toEqual({ room, unknown: [] });
  for (const w of writers) {
    const lost = [...w.acked].filter(([id, seq]) => seqByText.get(id) !== seq);
    expect({ writer: w.nick, lost }).toEqual({ writer: w.nick, lost: [] });
  }
  return n;
}

/** Reconnects with the resume token and sends again what was never acknowledged: stored once only. */
async function reconnectAndRetry(server: ServerProcess, w: Writer, lastSeq: number): Promise<void> {
  const client = await connect(server.url, {
    room: w.room,
    nick: w.nick,
    ...(w.resumeToken ? { resume: w.resumeToken } : {}),
  });
  expect(client.welcome.nick).toBe(w.nick);
  expect(client.welcome.lastSeq).toBeGreaterThanOrEqual(lastSeq);
  w.client = client;
  w.resumeToken = client.welcome.resumeToken;
  const unacked = w.sent.filter((id) => !w.acked.has(id));
  for (const id of unacked) client.send({ type: "chat", text: id, id });
  for (const id of unacked) w.acked.set(id, (await client.waitFor("ack", (a) => a.id === id)).seq);
}

/** Writes as fast as the socket takes it, until the socket dies. */
async function stream(w: Writer, round: number): Promise<void> {
  const client = w.client as TestClient;
  for (let k = 0; client.closeCode === undefined && client.readyState === WebSocket.OPEN; k++) {
    const id = `${w.nick}-r${round}-${k}`;
    w.sent.push(id);
    client.send({ type: "chat", text: id, id });
    if (k % 25 === 24) await sleep(1);
  }
  for (const ack of client.all("ack")) w.acked.set(ack.id, ack.seq);
}

describe.each(["normal", "off"])("kill -9 mid-stream with DB_SYNC=%s", (sync) => {
  it(`keeps every acknowledged message through ${ROUNDS} crashes, gapless, and continues the sequence`, async () => {
    const env = { DB_PATH: join(tmp, `chat-${sync}.db`), DB_SYNC: sync, RATE_LIMIT: "0" };
    const writers: Writer[] = ROOMS.flatMap((room) =>
      Array.from({ length: WRITERS_PER_ROOM }, (_, i) => ({
        room,
        nick: `${room}-w${i}`,
        resumeToken: undefined,
        sent: [],
        acked: new Map(),
      })),
    );

    for (let round = 1; round <= ROUNDS + 1; round++) {
      const server = await spawnServer(env);
      const lastSeq = new Map<string, number>();
      for (const room of ROOMS) {
        lastSeq.set(
          room,
          await checkRoom(
            server,
            room,
            writers.filter((w) => w.room === room),
          ),
        );
      }
      // Retried messages are either the ones already stored (same seq) or new ones right after N.
      await Promise.all(writers.map((w) => reconnectAndRetry(server, w, lastSeq.get(w.room) as number)));
      for (const room of ROOMS) {
        const fresh = await checkRoom(
          server,
          room,
          writers.filter((w) => w.room === room),
        );
        expect(fresh).toBeGreaterThanOrEqual(lastSeq.get(room) as number);
        lastSeq.set(room, fresh);
      }
      if (round > ROUNDS) {
        // Every message ever sent is now stored exactly once.
        for (const w of writers)
          expect({ writer: w.nick, unacked: w.sent.filter((id) => !w.acked.has(id)) }).toEqual({
            writer: w.nick,
            unacked: [],
          });
        const probe = writers[0] as Writer;
        (probe.client as TestClient).send({ type: "chat", text: "after the last crash", id: "last" });
        const ack = await (probe.client as TestClient).waitFor("ack", (a) => a.id === "last");
        expect(ack.seq).toBe((lastSeq.get(probe.room) as number) + 1);
        server.proc.kill("SIGTERM");
        expect(await server.proc.exited).toBe(0);
        break;
      }

      const writing = writers.map((w) => stream(w, round));
      // Kill once every writer has had some acks, at a random point of the stream.
      await Promise.all(writers.map((w) => w.client?.waitUntil((c) => c.count("ack") >= 20, "20 acks")));
      await sleep(20 + Math.random() * 80);
      await killHard(server);
      await Promise.all(writing);
      const codes = await Promise.all(writers.map((w) => w.client?.closed));
      expect(codes.every((code) => code !== 1000 && code !== 1001)).toBe(true);
      const unacked = writers.reduce((sum, w) => sum + w.sent.filter((id) => !w.acked.has(id)).length, 0);
      expect(unacked).toBeGreaterThan(0);
    }
  }, 45_000);
});
