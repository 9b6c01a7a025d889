/**
 * Peers that stop cooperating, in a busy room: a dead one (handshake, then silence: no reads, no
 * pongs) is dropped within the heartbeat deadline while a live idle one stays; a slow reader is
 * closed with 1008 while the fast members get everything, and comes back with `since` for the rest.
 */
import { afterEach, describe, expect, it } from "bun:test";
import { decodeServerMessage, type PresenceEvent, type ServerMessage } from "../../protocol";
import { RawWebSocket } from "../support/raw-websocket";
import { closeAllClients, connect, type TestClient } from "../support/test-client";
import { startTestServer, stopAllServers } from "../support/test-server";
import { eventually, sleep } from "../support/timing";

afterEach(async () => {
  await closeAllClients();
  await stopAllServers();
});

function leaveOf(nick: string): (p: { events: PresenceEvent[] }) => boolean {
  return (p) => p.events.some((e) => e.event === "leave" && e.nick === nick);
}

function range(from: number, to: number): number[] {
  return Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);
}

async function who(client: TestClient): Promise<string[]> {
  client.send({ type: "who" });
  return (await client.next("users")).users;
}

describe("dead peer", () => {
  const INTERVAL = 0.2;
  const TIMEOUT = 1;

  it("is dropped and leaves everyone's user list within the heartbeat deadline; a live idle one stays", async () => {
    const srv = startTestServer({
      HEARTBEAT_INTERVAL_SECONDS: String(INTERVAL),
      HEARTBEAT_TIMEOUT_SECONDS: String(TIMEOUT),
      RATE_LIMIT: "0",
    });
    const chatter = await connect(srv.url, { room: "busy", nick: "chatter" });
    // Answers pings (Bun's client does) but sends nothing else for the whole test.
    const idle = await connect(srv.url, { room: "busy", nick: "idle" });
    let chats = 0;
    const talking = setInterval(() => chatter.send({ type: "chat", text: `tick ${++chats}` }), 200);
    try {
      await chatter.waitUntil(() => chatter.count("chat") >= 2, "the room to get busy");
      // Timed from before the connect: the server last heard of it at the upgrade, not earlier.
      const silentSince = performance.now();
      const dead = await RawWebSocket.open(srv.url, { room: "busy", nick: "dead" });
      dead.pause(); // never reads again, never answers a ping
      await chatter.next("presence", (p) => p.events.some((e) => e.event === "join" && e.nick === "dead"));

      await chatter.next("presence", leaveOf("dead"), (TIMEOUT + 3) * 1000);
      const dropMs = performance.now() - silentSince;
      await idle.next("presence", leaveOf("dead"));
      console.log(
        `dead peer: dropped after ${dropMs.toFixed(0)} ms (interval ${INTERVAL} s, timeout ${TIMEOUT} s), ` +
          `${chats} chats sent to the room so far`,
      );
      // Not before the timeout (it is the heartbeat that drops it), and by timeout + two intervals + slack.
      expect(dropMs).toBeGreaterThanOrEqual(TIMEOUT * 1000 - 5);
      expect(dropMs).toBeLessThan((TIMEOUT + 2 * INTERVAL) * 1000 + 600);
      expect(await who(chatter)).toEqual(["chatter", "idle"]);
      expect(await who(idle)).toEqual(["chatter", "idle"]);
      dead.resume();
      await dead.ended;

      // The idle client has now been silent for over two timeouts, answering only pings: still here.
      const idleFor = performance.now() - silentSince;
      if (idleFor < 2.2 * TIMEOUT * 1000) await sleep(2.2 * TIMEOUT * 1000 - idleFor);
      expect(idle.closeCode).toBeUndefined();
      expect(idle.all("presence").some(leaveOf("idle"))).toBe(false);
      expect(chatter.all("presence").some(leaveOf("idle"))).toBe(false);
      expect(await who(chatter)).toEqual(["chatter", "idle"]);
    } finally {
      clearInterval(talking);
    }
  }, 15_000);
});

describe("slow reader in a busy room", () => {
  it("is closed with 1008 while fast members get every message, and `since` brings back what it missed", async () => {
    const srv = startTestServer({ RATE_LIMIT: "0", SLOW_CONSUMER_BYTES: String(64 * 1024) });
    const slow = await RawWebSocket.open(srv.url, { room: "busy", nick: "slow" });
    slow.pause();
    const sender = await connect(srv.url, { room: "busy", nick: "sender" });
    const fast = [
      await connect(srv.url, { room: "busy", nick: "fast1" }),
      await connect(srv.url, { room: "busy", nick: "fast2" }),
      await connect(srv.url, { room: "busy", nick: "fast3" }),
    ];
    const everyone = [sender, ...fast];
    const text = "x".repeat(3000);
    const ROUND = 100;
    let sent = 0;
    let extraRounds = 1; // one more round after the slow reader is gone: messages it must catch up on
    const started = performance.now();
    for (let round = 1; round <= 80 && extraRounds >= 0; round++) {
      if (srv.hub.connectionCount === everyone.length) extraRounds--;
      for (let i = 0; i < ROUND; i++) sender.send({ type: "chat", text: `${++sent} ${text}` });
      const total = sent;
      for (const c of everyone) await c.waitUntil((x) => x.count("chat") >= total, `chat ${total}`, 10_000);
    }
    const seconds = (performance.now() - started) / 1000;
    expect(srv.hub.connectionCount).toBe(everyone.length);
    // Every fast member got every message, in order, with no gap, and saw the slow one leave.
    for (const c of everyone) {
      expect({ nick: c.welcome.nick, seqs: c.chats().map((m) => m.seq) }).toEqual({
        nick: c.welcome.nick,
        seqs: range(1, sent),
      });
      await c.next("presence", leaveOf("slow"));
      expect(c.closeCode).toBeUndefined();
    }

    slow.resume();
    await slow.ended;
    const frames = slow.frames();
    expect(frames.at(-1)?.opcode).toBe(8);
    expect(frames.at(-1)?.payload.readUInt16BE(0)).toBe(1008);
    const messages = frames
      .filter((f) => f.opcode === 1)
      .map((f) => decodeServerMessage(f.payload.toString()))
      .map((d) => (d.ok ? d.value : ({ type: "undecodable" } as unknown as ServerMessage)));
    const welcome = messages[0];
    if (welcome?.type !== "welcome") throw new Error(`the slow reader's first frame was ${welcome?.type}`);
    const seen = messages.flatMap((m) => (m.type === "chat" ? [m.seq] : []));
    expect(seen.length).toBeGreaterThan(0);
    expect(seen).toEqual(range(1, seen.length));
    const lastSeen = seen.length;
    console.log(
      `slow reader: closed with 1008 after ${lastSeen} of ${sent} messages ` +
        `(${(lastSeen * 3) / 1000} MB read late); ${sent} x ${everyone.length} delivered in ${seconds.toFixed(1)} s`,
    );
    expect(sent - lastSeen).toBeGreaterThanOrEqual(ROUND);
    expect(sent - lastSeen).toBeLessThanOrEqual(500);

    // Back with its resume token and `since`: exactly what it missed, then the live stream.
    const back = await connect(srv.url, {
      room: "busy",
      since: lastSeen,
      resume: welcome.resumeToken,
      timeoutMs: 10_000,
    });
    expect(back.welcome.nick).toBe("slow");
    expect(back.welcome.history.map((m) => m.seq)).toEqual(range(lastSeen + 1, sent));
    expect(back.welcome.historyTruncated).toBe(false);
    expect(back.welcome.lastSeq).toBe(sent);
    sender.send({ type: "chat", text: "live again", id: "live" });
    expect(await back.next("chat")).toMatchObject({ seq: sent + 1, text: "live again" });
    await eventually(() => fast.every((c) => c.count("chat") === sent + 1), "the fast members' last chat");
  }, 30_000);
});
