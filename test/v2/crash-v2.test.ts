/**
 * Guarantee 8 against a real process: users join rooms, post (mentioning each other) and move read
 * markers while the server is killed with kill -9; after a restart on the same database every
 * acknowledged join, post and marker is there, and every RoomState's unread and mention counts are
 * exact against the room's stored posts.
 */
import { afterAll, afterEach, describe, expect, it } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { killAllServerProcesses, killHard, spawnServer } from "../support/server-process";
import { sleep } from "../support/timing";
import { closeAllV2Clients, connectV2, type Of, type V2Client } from "../support/v2-client";

const tmp = mkdtempSync(join(tmpdir(), "chat-crash-v2-"));
afterEach(async () => {
  await closeAllV2Clients();
});
afterAll(async () => {
  await killAllServerProcesses();
  rmSync(tmp, { recursive: true, force: true });
});

const ROOMS = ["alpha", "beta", "gamma", "delta"];
const NICKS = ["ann", "bob", "cat"];
const ROUNDS = 3;

interface User {
  nick: string;
  token: string;
  userId: string;
  /** Rooms whose `joined` came, and markers whose `read` came back. */
  joined: Set<string>;
  read: Map<string, number>;
  /** Post id -> its acked seq. */
  acked: Map<string, { seq: number }>;
  client?: V2Client;
}

/** A room's stored posts, folded, through a v2 connection's history (paged back). */
async function posts(c: V2Client, room: string): Promise<Of<"history">["messages"]> {
  const out: Of<"history">["messages"] = [];
  let before: number | undefined;
  for (;;) {
    const page = (await c.ask({
      type: "history",
      room,
      limit: 200,
      ...(before ? { before } : {}),
    })) as Of<"history">;
    out.unshift(...page.messages);
    if (!page.hasMore || page.messages.length === 0) return out;
    before = page.messages[0]?.seq;
  }
}

/** Joins, posts and reads until the socket dies; records what was acknowledged. */
async function traffic(u: User, round: number): Promise<void> {
  const c = u.client as V2Client;
  let k = 0;
  const seen = new Set<unknown>();
  while (c.closeCode === undefined) {
    const room = ROOMS[(k + round) % ROOMS.length] as string;
    if (!u.joined.has(room)) c.send({ type: "join", room, id: `j-${room}` });
    else {
      const other = NICKS[k % NICKS.length];
      const id = `${u.nick}-${round}-${k}`;
      c.send({ type: "chat", room, text: `${id} hi @${other}`, id });
      if (k % 3 === 0) c.send({ type: "read", room, seq: Math.max(0, k - 2) });
    }
    k++;
    if (k % 10 === 0) await sleep(2);
    for (const m of c.received) {
      if (seen.has(m)) continue;
      seen.add(m);
      if (m.type === "joined") u.joined.add(m.room);
      else if (m.type === "ack") u.acked.set(m.id, { seq: m.seq });
      else if (m.type === "read") u.read.set(m.room, Math.max(u.read.get(m.room) ?? 0, m.seq));
    }
  }
}

describe("kill -9 while v2 users join, post and read", () => {
  it(`keeps every acknowledged join, post and read marker through ${ROUNDS} crashes, with exact counts`, async () => {
    const env = { DB_PATH: join(tmp, "chat.db"), RATE_LIMIT: "0" };
    const users: User[] = [];
    for (let round = 0; round <= ROUNDS; round++) {
      const server = await spawnServer(env);
      for (const [i, nick] of NICKS.entries()) {
        let u = users[i];
        const [c, w] = await connectV2(server.url, u ? { identity: u.token } : { nick });
        if (!u) {
          u = {
            nick,
            token: w.identityToken as string,
            userId: w.user.userId,
            joined: new Set(),
            read: new Map(),
            acked: new Map(),
          };
          users.push(u);
        }
        u.client = c;
        expect(w.user.nick).toBe(nick);
        const rooms = new Map(w.rooms.map((r) => [r.room, r]));
        // Every acknowledged join is there; a join in flight may have been stored too.
        for (const room of u.joined) expect([nick, room, rooms.has(room)]).toEqual([nick, room, true]);
        for (const room of rooms.keys()) u.joined.add(room);
        for (const [room, seq] of u.read) expect(rooms.get(room)?.readSeq ?? -1).toBeGreaterThanOrEqual(seq);
        for (const state of rooms.values()) {
          const stored = await posts(c, state.room);
          expect(stored.map((p) => p.seq)).toEqual(stored.map((_, j) => j + 1 + (stored[0]?.seq ?? 1) - 1));
          expect(stored.at(-1)?.seq ?? 0).toBe(state.lastSeq);
          const unread = stored.filter((p) => p.seq > state.readSeq && p.userId !== u.userId);
          const mentions = unread.filter((p) => p.mentions?.includes(nick));
          expect([nick, state.room, state.unread, state.mentions]).toEqual([
            nick,
            state.room,
            Math.min(1000, unread.length),
            Math.min(1000, mentions.length),
          ]);
        }
      }
      // Every acknowledged post is stored with its text and seq somewhere among the user's rooms.
      for (const u of users) {
        const all = new Map<string, number>();
        for (const room of u.joined)
          for (const p of await posts(u.client as V2Client, room))
            all.set(p.text.split(" ")[0] as string, p.seq);
        const lost = [...u.acked].filter(([id, { seq }]) => all.get(id) !== seq);
        expect({ user: u.nick, lost }).toEqual({ user: u.nick, lost: [] });
      }
      if (round === ROUNDS) break;
      const running = users.map((u) => traffic(u, round));
      await sleep(150 + round * 50);
      await killHard(server);
      await Promise.all(running);
    }
  }, 60_000);
});
