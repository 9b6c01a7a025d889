/**
 * Hundreds of clients at once over several rooms, some leaving, renaming and moving midway:
 * guarantees 1 (same gapless stream for everyone in a room) and 4 (user lists converge).
 */

import { afterAll, describe, expect, it } from "bun:test";
import type { ChatMessage } from "../protocol";
import { closeAllClients, connect, type TestClient } from "./support/test-client";
import { startTestServer, stopAllServers } from "./support/test-server";
import { eventually } from "./support/timing";
import { usersFrom } from "./support/user-list";

afterAll(async () => {
  await closeAllClients();
  await stopAllServers();
});

const ROOMS = 6;
const PER_ROOM = 50;
/** Messages each client sends before and after the midway changes. */
const BEFORE = 4;
const AFTER = 4;
const LONG_WAIT_MS = 20_000;

type Role = "stays" | "renames" | "leaves" | "moves";

interface Member {
  client: TestClient;
  role: Role;
  /** Room at the start and at the end (a mover goes to the next room). */
  from: string;
  to: string;
  nick: string;
  finalNick: string;
  /** Ids this client sent, each with the room it went to and the nick it was sent under. */
  sent: Array<{ id: string; room: string; nick: string }>;
}

function roleOf(j: number): Role {
  if (j < 40) return "stays";
  if (j < 44) return "renames";
  if (j < 48) return "leaves";
  return "moves";
}

const roomName = (r: number) => `room-${r % ROOMS}`;

function chatsIn(client: TestClient, room: string): ChatMessage[] {
  return client.all("chat").filter((m) => m.room === room);
}

/** The newest seq a client knows of in a room: from its live stream or from a welcome into it. */
function newestSeq(client: TestClient, room: string): number {
  const welcome = client
    .all("welcome")
    .filter((w) => w.room === room)
    .at(-1);
  return Math.max(welcome?.lastSeq ?? 0, chatsIn(client, room).at(-1)?.seq ?? 0);
}

/** Acks that arrived before the client had seen their chat, live or in a welcome's history. */
function acksBeforeTheirChat(client: TestClient): string[] {
  const seen = new Set<string>();
  const early: string[] = [];
  for (const m of client.received) {
    if (m.type === "chat") seen.add(m.text);
    if (m.type === "welcome") for (const h of m.history) seen.add(h.text);
    if (m.type === "ack" && !seen.has(m.id)) early.push(m.id);
  }
  return early;
}

/** A client's own picture of its room: welcome `users`, then every presence event since, in order. */
function userListOf(client: TestClient, room: string): string[] {
  return usersFrom(client.received, room).sort();
}

function expectGapless(seqs: number[], from: number, to: number, who: string): void {
  const expected = Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);
  expect({ who, seqs }).toEqual({ who, seqs: expected });
}

describe("many clients at once", () => {
  it(`${ROOMS * PER_ROOM} clients over ${ROOMS} rooms see identical gapless streams and agree on who is there`, async () => {
    const srv = startTestServer({ RATE_LIMIT: "0" });
    const plan = Array.from({ length: ROOMS * PER_ROOM }, (_, i) => {
      const r = i % ROOMS;
      const role = roleOf(Math.floor(i / ROOMS));
      const nick = `u${i}`;
      return {
        role,
        nick,
        from: roomName(r),
        to: role === "moves" ? roomName(r + 1) : roomName(r),
        finalNick: role === "renames" ? `${nick}-renamed` : nick,
      };
    });

    // Everyone connects at once.
    const clients = await Promise.all(
      plan.map((p) => connect(srv.url, { room: p.from, nick: p.nick, timeoutMs: LONG_WAIT_MS })),
    );
    const members: Member[] = plan.map((p, i) => ({ ...p, client: clients[i] as TestClient, sent: [] }));
    for (const m of members) expect(m.client.welcome.nick).toBe(m.nick);

    const send = (m: Member, phase: string, count: number, room: string, nick: string) => {
      for (let k = 1; k <= count; k++) {
        const id = `${m.nick}-${phase}${k}`;
        m.client.send({ type: "chat", text: id, id });
        m.sent.push({ id, room, nick });
      }
    };

    // Everyone sends at once.
    for (const m of members) send(m, "a", BEFORE, m.from, m.nick);

    // Midway, while the first burst is still being delivered: leave, rename, move, send again.
    const watcher = members[0] as Member;
    await watcher.client.waitUntil(
      (c) => c.count("chat") >= (PER_ROOM * BEFORE) / 4,
      "a quarter of the first burst",
      LONG_WAIT_MS,
    );
    const leaving: Array<Promise<number>> = [];
    for (const m of members) {
      if (m.role === "leaves") {
        leaving.push(m.client.close());
        continue;
      }
      if (m.role === "renames") m.client.send({ type: "nick", nick: m.finalNick });
      if (m.role === "moves") m.client.send({ type: "join", room: m.to });
      send(m, "b", AFTER, m.to, m.finalNick);
    }
    await Promise.all(leaving);

    // Each room's total is known: every first-burst message of its own members, every second-burst
    // message of those who end up in it.
    const total = new Map<string, number>();
    const add = (room: string, n: number) => total.set(room, (total.get(room) ?? 0) + n);
    for (const m of members) for (const s of m.sent) add(s.room, 1);

    const staying = members.filter((m) => m.role !== "leaves");
    await Promise.all(
      staying.map((m) =>
        m.client.waitUntil(
          (c) => newestSeq(c, m.to) >= (total.get(m.to) as number),
          `all ${total.get(m.to)} chats of ${m.to}`,
          LONG_WAIT_MS,
        ),
      ),
    );

    /** Seq of every message, by its text (= its id), from the reference streams. */
    const seqOf = new Map<string, number>();
    for (let r = 0; r < ROOMS; r++) {
      const room = roomName(r);
      const n = total.get(room) as number;
      const reference = chatsIn(
        (staying.find((m) => m.from === room && m.role === "stays") as Member).client,
        room,
      );
      for (const c of reference) seqOf.set(c.text, c.seq);
      expectGapless(
        reference.map((m) => m.seq),
        1,
        n,
        room,
      );

      // Each message sent to the room is in it exactly once, under the nick it was sent with.
      const expected = members.flatMap((m) => m.sent.filter((s) => s.room === room));
      expect(reference.map((m) => [m.text, m.nick]).sort()).toEqual(
        expected.map((s) => [s.id, s.nick]).sort(),
      );

      for (const m of members.filter((x) => x.from === room || x.to === room)) {
        const who = `${m.nick} (${m.role}) in ${room}`;
        const seen = chatsIn(m.client, room);
        if (m.role === "stays" || m.role === "renames") {
          expect({ who, same: seen }).toEqual({ who, same: reference });
        } else if (m.from === room) {
          // Left or moved away: what it saw is the beginning of the room's stream, and nothing after.
          expect({ who, prefix: seen }).toEqual({ who, prefix: reference.slice(0, seen.length) });
        } else {
          // Moved in: its welcome's lastSeq, then the live stream on from there.
          const welcome = m.client.all("welcome").find((w) => w.room === room);
          const last = welcome?.lastSeq ?? -1;
          expectGapless(
            seen.map((c) => c.seq),
            last + 1,
            n,
            who,
          );
          expect(welcome?.history.at(-1)?.seq ?? 0).toBe(last);
        }
      }
    }

    // Every sender that stayed got one ack per message, with the seq the room gave it.
    for (const m of staying) {
      const acks: Array<[string, number | undefined]> = m.client.all("ack").map((a) => [a.id, a.seq]);
      expect(acks).toEqual(m.sent.map((s) => [s.id, seqOf.get(s.id)]));
      expect({ nick: m.nick, early: acksBeforeTheirChat(m.client) }).toEqual({ nick: m.nick, early: [] });
    }

    // Once quiet, every user list agrees with who is connected.
    await eventually(
      () => srv.hub.connectionCount === staying.length,
      "the leavers to be gone",
      LONG_WAIT_MS,
    );
    for (let r = 0; r < ROOMS; r++) {
      const room = roomName(r);
      const inRoom = staying.filter((m) => m.to === room);
      const last = inRoom[0] as Member;
      // A chat flushed after every pending presence event: once all have it, they have those too.
      last.client.send({ type: "chat", text: `quiet ${room}` });
      await Promise.all(inRoom.map((m) => m.client.waitFor("chat", (c) => c.text === `quiet ${room}`)));
      const connected = inRoom.map((m) => m.finalNick).sort();
      for (const m of inRoom) {
        expect({ nick: m.nick, users: userListOf(m.client, room) }).toEqual({
          nick: m.nick,
          users: connected,
        });
      }
      last.client.send({ type: "who" });
      const users = await last.client.next("users");
      expect([...users.users].sort()).toEqual(connected);
      expect((await srv.hub.roomList()).find((x) => x.room === room)?.users).toBe(connected.length);
    }

    // Nothing from another room reached anyone: a mover heard its old room only until its new welcome.
    for (const m of members) {
      const movedAt = m.client.received.findIndex((x) => x.type === "welcome" && x.room === m.to);
      const foreign = m.client.received.filter(
        (c, i) => c.type === "chat" && c.room !== m.to && (c.room !== m.from || i > movedAt),
      );
      expect({ nick: m.nick, foreign }).toEqual({ nick: m.nick, foreign: [] });
    }
  }, 45_000);
});
