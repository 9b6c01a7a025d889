/**
 * Guarantee 6 on a Redis Cluster (3 primaries, 3 replicas): three `server.ts` children with
 * REDIS_CLUSTER behave as one chat server with rooms on every primary (cluster.test.ts on one Redis):
 * broadcast in one gapless order, presence, nick races, history, resume on another process.
 *
 * Failures (failover.test.ts on one Redis), with REDIS_MIN_REPLICAS=1 and clients that resend by id
 * until acknowledged: a primary SIGKILLed under traffic loses nothing acknowledged and leaves no client
 * with a silent gap, and chats come back once the old primary rejoins as a replica; writes that the
 * promoted replica never got (cut off from its primary, then promoted) send every client back to
 * start over under a new epoch, so no seq is silently reused; joins and leaves lost that way are put
 * right. Then what these found wrong in the engine, each in a test of its own: a primary's failover
 * stops every process for every room (chats refused, newcomers closed, /healthz 500), and a room's
 * scripts run on the wrong node while its slot moves (acks with seqs the room had already given out,
 * and the move itself fails).
 *
 * One cluster for the file: the failovers and slot moves change its topology, so they come last, each
 * group with processes of its own. Rooms are picked (support/cluster-processes.ts, Placement) so they
 * land on the primaries a test needs.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "bun:test";
import { killAllServerProcesses, killHard, type ServerProcess, spawnServer } from "../support/server-process";
import { type ConnectOptions, closeAllClients, connect, type TestClient } from "../support/test-client";
import { eventually, sleep } from "../support/timing";
import { closeAllV2Clients } from "../support/v2-client";
import { allMessages, gapless, PRESENCE_TTL_SECONDS, roomsFrom, userList } from "./support/cluster";
import {
  bySeq,
  Placement,
  Reader,
  SyncReader,
  viewDiff,
  Writer,
  waitUntil,
} from "./support/cluster-processes";
import { type ClusterNode, RedisCluster, redisClusterAvailable } from "./support/redis-cluster";

const available = redisClusterAvailable();
let cluster: RedisCluster;

beforeAll(async () => {
  if (!available) return;
  cluster = await RedisCluster.start({ primaries: 3, replicasPerPrimary: 1 });
}, 60_000);

afterAll(async () => {
  await closeAllClients();
  await closeAllV2Clients();
  await killAllServerProcesses();
  await cluster?.stop();
});

/** Chat processes on the cluster (three by default). */
function spawnProcesses(env: Record<string, string> = {}, count = 3): Promise<ServerProcess[]> {
  return Promise.all(
    Array.from({ length: count }, () =>
      spawnServer({
        REDIS_CLUSTER: cluster.seedsEnv,
        PRESENCE_TTL_SECONDS: String(PRESENCE_TTL_SECONDS),
        RATE_LIMIT: "0",
        ...env,
      }),
    ),
  );
}

async function stopProcesses(procs: ServerProcess[]): Promise<void> {
  await closeAllClients();
  await closeAllV2Clients();
  await Promise.all(procs.map((p) => killHard(p)));
}

/** Longer than the test client's defaults: the machine may be slow and shared. */
const SLOW = 10_000;

function join(base: URL, options: ConnectOptions = {}): Promise<TestClient> {
  return connect(base, { timeoutMs: SLOW, ...options });
}

/** Sends `count` chats with ids `${tag}-N` at once; resolves to their acks once the last one came. */
async function postAll(
  c: TestClient,
  tag: string,
  count: number,
): Promise<Array<{ id: string; seq: number }>> {
  for (let i = 1; i <= count; i++) c.send({ type: "chat", text: `${tag}-${i}`, id: `${tag}-${i}` });
  await c.waitFor("ack", (a) => a.id === `${tag}-${count}`, SLOW);
  return c.all("ack").filter((a) => a.id.startsWith(`${tag}-`));
}

/** The last lines a process printed, for failure messages. */
function tail(proc: ServerProcess, lines = 30): string {
  return proc.output.join("").trimEnd().split("\n").slice(-lines).join("\n");
}

describe.skipIf(!available)("three processes on a Redis Cluster", () => {
  let procs: ServerProcess[] = [];
  const url = (i: number) => (procs[i % procs.length] as ServerProcess).url;

  beforeAll(async () => {
    procs = await spawnProcesses();
  }, 30_000);

  afterAll(async () => {
    await stopProcesses(procs);
  });

  it("broadcasts every message to every member on every process, once, in one gapless seq order per room", async () => {
    const placement = await Placement.of(cluster);
    const rooms = placement.rooms("bcast").flat();
    expect(new Set(rooms.map((r) => placement.primaryOf(r).port)).size).toBe(3);
    const clients: TestClient[] = [];
    for (const room of rooms) {
      for (let i = 0; i < 3; i++) clients.push(await join(url(i), { room, nick: `w${i}` }));
    }
    const perClient = 30;
    const acks = await Promise.all(clients.map((c, i) => postAll(c, `m${i}`, perClient)));
    for (const room of rooms) {
      const members = clients.filter((c) => c.welcome.room === room);
      const total = perClient * members.length;
      for (const c of members) {
        await c.waitUntil((x) => x.chats(room).length >= total, `${total} chats in ${room}`, 10_000);
      }
      const reference = (members[0] as TestClient).chats(room);
      expect(reference.map((m) => m.seq)).toEqual(Array.from({ length: total }, (_, k) => k + 1));
      for (const c of members) expect(c.chats(room)).toEqual(reference);
      const texts = bySeq(reference);
      for (const [i, c] of clients.entries()) {
        if (c.welcome.room !== room) continue;
        for (const a of acks[i] ?? []) expect(texts.get(a.seq)).toBe(a.id);
      }
      // And the history agrees, from every process.
      for (const i of [0, 1, 2]) expect(await allMessages(url(i), room)).toEqual(reference);
    }
  }, 30_000);

  it("converges presence across processes and partitions: joins, renames and leaves, who, the room list", async () => {
    const placement = await Placement.of(cluster);
    const presenceRooms = placement.rooms("presence").flat();
    await Promise.all(
      presenceRooms.map(async (room) => {
        const ann = await join(url(0), { room, nick: "ann" });
        const bob = await join(url(1), { room, nick: "bob" });
        expect(bob.welcome.users).toEqual(["ann", "bob"]);
        const cat = await join(url(2), { room, nick: "cat" });
        bob.send({ type: "nick", nick: "bobby" });
        for (const c of [ann, cat]) {
          await c.next(
            "presence",
            (p) => p.events.some((e) => e.event === "nick" && e.nick === "bobby"),
            SLOW,
          );
        }
        await bob.close();
        for (const c of [ann, cat]) {
          await c.next(
            "presence",
            (p) => p.events.some((e) => e.event === "leave" && e.nick === "bobby"),
            SLOW,
          );
          expect(userList(c)).toEqual(["ann", "cat"]);
          c.send({ type: "who" });
          expect((await c.next("users", () => true, SLOW)).users).toEqual(["ann", "cat"]);
        }
      }),
    );
    for (const i of [0, 1, 2]) {
      const listed = (await roomsFrom(url(i))).filter((r) => presenceRooms.includes(r.room));
      expect(listed.map((r) => r.users)).toEqual([2, 2, 2]);
    }
  }, 20_000);

  it("gives a nickname claimed at once on every process to exactly one connection, in every partition", async () => {
    const placement = await Placement.of(cluster);
    const raceRooms = placement.rooms("race").flat();
    await Promise.all(
      raceRooms.map(async (room) => {
        const racers = await Promise.all(
          Array.from({ length: 12 }, (_, i) => join(url(i), { room, nick: "racer" })),
        );
        const nicks = racers.map((c) => c.welcome.nick);
        expect(nicks.filter((n) => n === "racer")).toHaveLength(1);
        expect(new Set(nicks.map((n) => n.toLowerCase())).size).toBe(racers.length);
        for (const c of racers) c.send({ type: "nick", nick: "Crown" });
        const outcomes = await Promise.all(
          racers.map((c) =>
            Promise.race([
              c.waitFor("error", (e) => e.code === "nick_taken", SLOW).then(() => "taken"),
              c
                .waitFor(
                  "presence",
                  (p) => p.events.some((e) => e.event === "nick" && e.nick === "Crown"),
                  SLOW,
                )
                .then((p) =>
                  p.events.some((e) => e.event === "nick" && e.from === c.welcome.nick) ? "won" : "saw",
                ),
            ]),
          ),
        );
        expect(outcomes.filter((o) => o === "won")).toHaveLength(1);
        for (const c of racers)
          await c.waitUntil((x) => userList(x).includes("Crown"), "the winner in the list", SLOW);
        const reference = userList(racers[0] as TestClient);
        for (const c of racers) {
          expect(userList(c).filter((n) => n.toLowerCase() === "crown")).toHaveLength(1);
          expect(userList(c)).toEqual(reference);
        }
      }),
    );
  }, 30_000);

  it("answers history, since and the REST API the same from every process", async () => {
    const placement = await Placement.of(cluster);
    const historyRooms = placement.rooms("history").flat();
    await Promise.all(
      historyRooms.map(async (room, r) => {
        const writer = await join(url(r), { room });
        await postAll(writer, "h", 120);
        const pages = await Promise.all([0, 1, 2].map((i) => allMessages(url(i), room)));
        expect(pages[0]?.map((m) => m.seq)).toEqual(Array.from({ length: 120 }, (_, k) => k + 1));
        expect(pages[0]?.map((m) => m.text)).toEqual(Array.from({ length: 120 }, (_, k) => `h-${k + 1}`));
        expect(pages[1]).toEqual(pages[0] as never);
        expect(pages[2]).toEqual(pages[0] as never);
        const reader = await join(url(r + 1), { room, since: 100 });
        expect(reader.welcome.history.map((m) => m.seq)).toEqual(
          Array.from({ length: 20 }, (_, k) => k + 101),
        );
        expect(reader.welcome.lastSeq).toBe(120);
        const fresh = await join(url(r + 2), { room });
        expect(fresh.welcome.history.map((m) => m.seq)).toEqual(Array.from({ length: 50 }, (_, k) => k + 71));
        expect(fresh.welcome.historyTruncated).toBe(true);
        fresh.send({ type: "history", before: 71, limit: 30 });
        const older = await fresh.next("history", () => true, SLOW);
        expect(older.messages.map((m) => m.seq)).toEqual(Array.from({ length: 30 }, (_, k) => k + 41));
        expect(older.hasMore).toBe(true);
      }),
    );
  }, 30_000);

  it("resumes a session on another process, taking over a stale connection with 4001", async () => {
    const placement = await Placement.of(cluster);
    await Promise.all(
      placement
        .rooms("resume")
        .flat()
        .map(async (room) => {
          const watcher = await join(url(2), { room, nick: "watcher" });
          const first = await join(url(0), { room, nick: "rita" });
          await postAll(first, "r", 3);
          const second = await join(url(1), { room, resume: first.welcome.resumeToken, since: 0 });
          expect(second.welcome.nick).toBe("rita");
          expect(second.welcome.history.map((m) => m.text)).toEqual(["r-1", "r-2", "r-3"]);
          expect(await first.closing(SLOW)).toBe(4001);
          // A retried id is not stored twice, whichever process it comes through.
          second.send({ type: "chat", text: "r-3", id: "r-3" });
          expect((await second.next("ack", (a) => a.id === "r-3", SLOW)).seq).toBe(3);
          second.send({ type: "chat", text: "after", id: "r-4" });
          await watcher.waitFor("chat", (m) => m.text === "after", SLOW);
          expect(watcher.chats().map((m) => m.seq)).toEqual([1, 2, 3, 4]);
          const events = watcher.all("presence").flatMap((p) => p.events);
          expect(events.filter((e) => "nick" in e && e.nick === "rita").map((e) => e.event)).toEqual([
            "join",
          ]);
          await second.close();
          await watcher.next(
            "presence",
            (p) => p.events.some((e) => e.event === "leave" && e.nick === "rita"),
            SLOW,
          );
          const third = await join(url(2), { room, resume: second.welcome.resumeToken });
          expect(third.welcome.nick).toBe("rita");
          await eventually(() => userList(watcher).includes("rita"), "rita back in the watcher's list", SLOW);
        }),
    );
  }, 20_000);
});

/** Everyone in one room under traffic: writers, v1 readers and a v2 reader, spread over the processes. */
interface Crowd {
  room: string;
  writers: Writer[];
  readers: Reader[];
  syncReaders: SyncReader[];
}

/** Every crowd made by the test running, halted when it ends (passed or not). */
const crowds: Crowd[] = [];

function crowd(room: string, servers: () => ServerProcess[], tag: string, writers = 2): Crowd {
  const c: Crowd = {
    room,
    writers: Array.from({ length: writers }, (_, i) => new Writer(servers, room, `${tag}w${i}`, i)),
    readers: [0, 1, 2].map((i) => new Reader(servers, room, `${tag}r${i}`, i)),
    syncReaders: [new SyncReader(servers, room, `${tag}v`, 2)],
  };
  crowds.push(c);
  return c;
}

async function startCrowd(c: Crowd): Promise<void> {
  for (const r of c.readers) await r.start();
  for (const r of c.syncReaders) await r.start();
  for (const w of c.writers) await w.start();
}

function haltCrowds(): void {
  for (const c of crowds.splice(0)) for (const x of [...c.writers, ...c.readers, ...c.syncReaders]) x.halt();
}

const acked = (c: Crowd) => c.writers.reduce((n, w) => n + w.ackedCount, 0);

/**
 * Once the writers stopped, checks the room: the history (from `base`) is 1..n; every acknowledged
 * chat is in it under its acked seq, once; every reader reaches n and holds exactly the history (texts
 * included), with no silent gap on the way. Returns a summary line.
 */
async function checkRoom(c: Crowd, base: URL, procs: ServerProcess[]): Promise<string> {
  const history = await allMessages(base, c.room);
  const last = history.length;
  expect({ room: c.room, ...gapless(history.map((m) => m.seq)) }).toEqual({
    room: c.room,
    firstBreak: null,
    count: last,
  });
  const stored = bySeq(history);
  for (const w of c.writers) {
    const { acked, problems } = w.acks();
    const lost = [...acked].filter(([id, seq]) => stored.get(seq) !== id).map(([id, seq]) => `${id}@${seq}`);
    expect({ writer: w.nick, lost, problems }).toEqual({ writer: w.nick, lost: [], problems: [] });
    const ids = history.filter((m) => m.text.startsWith(`${w.nick}-`)).map((m) => m.text);
    expect({ writer: w.nick, duplicates: ids.length - new Set(ids).size }).toEqual({
      writer: w.nick,
      duplicates: 0,
    });
  }
  const all = [...c.readers, ...c.syncReaders];
  await waitUntil(
    () => all.every((r) => r.lastSeq >= last),
    `every reader of ${c.room} to reach seq ${last}`,
    15_000,
    () =>
      `${all.map((r) => `${r.nick}:${r.lastSeq}`).join(" ")}\n${procs.map((p) => tail(p, 10)).join("\n")}`,
  );
  for (const r of all) await r.stop();
  for (const r of all) {
    expect({ reader: r.nick, problems: r.problems, diff: viewDiff(r.view, stored) }).toEqual({
      reader: r.nick,
      problems: [],
      diff: [],
    });
  }
  return (
    `${c.room}: ${last} stored, ${c.writers.map((w) => w.ackedCount).join("+")} acked, ` +
    `resends ${c.writers.map((w) => w.resends).join("/")}, ` +
    `reader closes ${all.map((r) => r.closes.join(",") || "-").join(" ")}, ` +
    `resets ${all.map((r) => r.resetWhy.join(",") || "-").join(" / ")}`
  );
}

/** Presence converges: every open v1 connection of the crowd lists exactly `want`, as does /api/rooms. */
async function checkPresence(
  c: Crowd,
  procs: ServerProcess[],
  want: string[],
  timeoutMs: number,
): Promise<void> {
  const lists = () =>
    [...c.writers, ...c.readers].map((x) => ({
      nick: x.nick,
      users: x.live ? userList(x.live) : ["(closed)"],
    }));
  await waitUntil(
    () => lists().every((l) => JSON.stringify(l.users) === JSON.stringify(want)),
    `the user lists of ${c.room} to converge on ${want.join(",")}`,
    timeoutMs,
    () => `${JSON.stringify(lists())}\n${procs.map((p) => tail(p, 10)).join("\n")}`,
  );
  for (const p of procs) {
    // While a process counts Redis as unavailable, /api/rooms answers 500: asked again.
    await waitUntil(
      async () =>
        (await roomsFrom(p.url).catch(() => [])).find((r) => r.room === c.room)?.users === want.length,
      `${p.url.host} to count ${want.length} users in ${c.room}`,
      timeoutMs,
    );
  }
}

/** The nicks of a crowd (what its room lists once quiet). */
function members(c: Crowd): string[] {
  return [...c.writers, ...c.readers, ...c.syncReaders].map((x) => x.nick).sort();
}

/** Logs each writer's failures relative to `t0`, for the timeline of a failure. */
function logFailures(list: Crowd[], t0: number): void {
  for (const c of list)
    for (const w of c.writers)
      for (const f of w.failures)
        console.log(`  ${c.room} ${w.nick} +${f.at - t0} ms ${f.what.slice(0, 100)}`);
}

describe.skipIf(!available)("a primary SIGKILLed under traffic, with REDIS_MIN_REPLICAS=1", () => {
  let procs: ServerProcess[] = [];
  const servers = () => procs;
  /** Processes a test started besides the three. */
  const extra: ServerProcess[] = [];

  beforeAll(async () => {
    procs = await spawnProcesses({ REDIS_MIN_REPLICAS: "1" });
  }, 30_000);

  afterEach(async () => {
    haltCrowds();
    await Promise.all(extra.splice(0).map((p) => killHard(p)));
  });

  afterAll(async () => {
    await stopProcesses(procs);
  });

  it("loses nothing acknowledged, leaves no client with a silent gap, and recovers once the node rejoins", async () => {
    const placement = await Placement.of(cluster);
    const [onVictim, elsewhere] = placement.rooms("fo", 2);
    const victim = placement.primaryOf((onVictim as string[])[0] as string);
    const all = [
      ...(onVictim as string[]).map((room, i) => crowd(room, servers, `a${i}`)),
      crowd((elsewhere as string[])[0] as string, servers, "b"),
    ];
    const victims = all.slice(0, 2);
    for (const c of all) await startCrowd(c);
    await waitUntil(() => all.every((c) => acked(c) >= 20), "traffic in every room", 15_000);

    const before = all.map(acked);
    const failover = await cluster.killPrimary(victim.port);
    const promotedAt = Date.now();
    const during = all.map(acked);
    // The new primary has no replica: WAIT answers 0, so chats there are refused (and resent) until
    // the old primary rejoins as its replica. Seen refused, it is restarted.
    await waitUntil(
      () => victims.some((c) => c.writers.some((w) => w.failures.some((f) => f.at > promotedAt))),
      "a chat refused by the promoted primary without a replica",
      15_000,
    );
    const refused = all.map(acked);
    const rejoined = await cluster.restart(victim.port);
    expect(rejoined.role).toBe("replica");
    const restartedAt = all.map(acked);
    await waitUntil(
      () => all.every((c, i) => acked(c) >= (restartedAt[i] as number) + 20),
      "chats acknowledged again in every room after the old primary rejoined",
      20_000,
      () =>
        `acked ${all.map(acked).join("/")} since ${restartedAt.join("/")}\n${procs.map((p) => tail(p, 15)).join("\n")}`,
    );
    for (const c of all) await Promise.all(c.writers.map((w) => w.stop()));
    console.log(
      `failover of ${failover.killed.address} to ${failover.promoted.address} in ${failover.ms} ms; acked ` +
        `before ${before.join("/")}, by its end ${during.join("/")}, while refused ${refused.join("/")}, ` +
        `by the rejoin ${restartedAt.join("/")}, at the end ${all.map(acked).join("/")}`,
    );
    for (const c of all) await checkPresence(c, procs, members(c), 15_000);
    for (const c of all) console.log(await checkRoom(c, (procs[0] as ServerProcess).url, procs));
    for (const p of procs) expect(p.proc.exitCode).toBeNull();
  }, 60_000);

  it("resyncs every client that saw writes the promoted replica never got (a new epoch), and loses nothing acknowledged", async () => {
    const placement = await Placement.of(cluster);
    const [[room]] = placement.rooms("lost", 1) as [[string]];
    const victim = placement.primaryOf(room);
    const replica = (await cluster.replicas()).find((n) => n.primaryId === victim.id);
    if (!replica) throw new Error(`${victim.address} has no replica`);
    const c = crowd(room, servers, "l");
    await startCrowd(c);
    await waitUntil(() => acked(c) >= 20, "traffic in the room", 15_000);
    // The blast comes through a fourth process: a chat's WAIT holds its process's connection to the
    // primary (everything that process reads there waits behind it), so the others, quiet, show it at once.
    const outsider = await spawnProcesses({ REDIS_MIN_REPLICAS: "1" }, 1);
    extra.push(...outsider);
    const blaster = await connect((outsider[0] as ServerProcess).url, { room, nick: "blaster" });
    await Promise.all(c.writers.map((w) => w.stop()));
    const readers = [...c.readers, ...c.syncReaders];
    const quietAt = (await allMessages((procs[0] as ServerProcess).url, room)).length;
    await waitUntil(
      () => readers.every((r) => r.lastSeq === quietAt),
      `every reader at seq ${quietAt}`,
      10_000,
    );

    // Cut the replica off (frozen, so it does not reconnect, and its link closed by the primary):
    // what the primary stores from now on reaches every reader and never the replica.
    const killed = await cluster.node(victim.port);
    const pausedAt = Date.now();
    cluster.pause(replica.port);
    let lostUpTo = 0;
    try {
      expect(await cluster.command(victim.port, "CLIENT", ["KILL", "TYPE", "replica"])).toBe(1);
      for (let i = 1; i <= 5; i++) blaster.send({ type: "chat", text: `blast-${i}`, id: `blast-${i}` });
      lostUpTo = quietAt + 5;
      await waitUntil(
        () => readers.every((r) => r.lastSeq >= lostUpTo),
        `every reader at seq ${lostUpTo}`,
        5000,
      );
      await cluster.kill(victim.port);
    } finally {
      cluster.unpause(replica.port);
    }
    const killedAt = Date.now();
    const cutMs = killedAt - pausedAt;
    const failover = await cluster.waitForFailover(killed, killedAt);
    expect(failover.promoted.id).toBe(replica.id);
    // The first writes after the failover come as one burst, more than were lost: the room is past
    // every seq the readers saw when they come back (so only the epoch tells them what happened).
    // A chat refused before it was sent (the process still counts Redis as silent) is sent again, by
    // its id, until stored: what is stored first is seen by the readers as the log going back.
    const resynced = () => readers.every((r) => r.closes.includes(1011));
    for (let round = 0; !resynced() && blaster.closeCode === undefined; round++) {
      if (round > 20) break;
      for (let i = 1; i <= 20; i++) blaster.send({ type: "chat", text: `burst-${i}`, id: `burst-${i}` });
      await waitUntil(() => resynced() || blaster.closeCode !== undefined, "the burst stored", 1000).catch(
        () => {},
      );
    }
    await waitUntil(
      () => readers.every((r) => r.closes.includes(1011)),
      "every reader sent back (1011) after the room's log went back",
      15_000,
      () => readers.map((r) => `${r.nick}:${r.closes.join(",")}`).join(" "),
    );
    for (const w of c.writers) await w.start();
    const promoted = acked(c);
    await cluster.restart(victim.port);
    await waitUntil(
      () => acked(c) >= promoted + 20,
      "chats acknowledged after the old primary rejoined",
      20_000,
    );
    await Promise.all(c.writers.map((w) => w.stop()));
    await blaster.close();
    logFailures([c], killedAt);

    // The scenario did lose writes: the blast (seen by everyone, never acknowledged) is gone.
    const history = await allMessages((procs[1] as ServerProcess).url, room);
    expect(history.filter((m) => m.text.startsWith("blast-"))).toEqual([]);
    expect(blaster.all("ack").filter((a) => a.id.startsWith("blast-"))).toEqual([]);
    // What the burst got acknowledged is stored under the acked seq.
    const stored = bySeq(history);
    expect(blaster.all("ack").filter((a) => stored.get(a.seq) !== a.id)).toEqual([]);
    await checkPresence(c, procs, members(c), 15_000);
    console.log(
      `lost writes up to seq ${lostUpTo}; replica cut off for ${cutMs} ms; failover in ${failover.ms} ms; ` +
        `epochs ${[...new Set(readers.map((r) => r.epoch))].join(",")}`,
    );
    console.log(await checkRoom(c, (procs[1] as ServerProcess).url, procs));
    // Each reader saw the lost seqs, so each started over (under a new epoch).
    for (const r of readers)
      expect({ reader: r.nick, resets: r.resets > 0 }).toEqual({ reader: r.nick, resets: true });
  }, 60_000);

  it("puts the user lists right after a failover lost a join and a leave", async () => {
    const placement = await Placement.of(cluster);
    const [[room]] = placement.rooms("who", 1) as [[string]];
    const victim = placement.primaryOf(room);
    const replica = (await cluster.replicas()).find((n) => n.primaryId === victim.id);
    if (!replica) throw new Error(`${victim.address} has no replica`);
    const c = crowd(room, servers, "p", 0);
    await startCrowd(c);
    const leaver = await connect((procs[1] as ServerProcess).url, { room, nick: "leaver" });
    const late = new Reader(servers, room, "late", 2);
    const before = [...members(c), "leaver"].sort();
    await waitUntil(
      () => c.readers.every((r) => r.live && JSON.stringify(userList(r.live)) === JSON.stringify(before)),
      "everyone listed",
      10_000,
    );
    const killed = await cluster.node(victim.port);
    cluster.pause(replica.port);
    try {
      expect(await cluster.command(victim.port, "CLIENT", ["KILL", "TYPE", "replica"])).toBe(1);
      await leaver.close();
      await late.start();
      // Everyone saw both; the replica got neither.
      const after = [...members(c), "late"].sort();
      await waitUntil(
        () => c.readers.every((r) => r.live && JSON.stringify(userList(r.live)) === JSON.stringify(after)),
        "the leave and the join seen everywhere",
        5000,
      );
      await cluster.kill(victim.port);
    } finally {
      cluster.unpause(replica.port);
    }
    const failover = await cluster.waitForFailover(killed);
    await cluster.restart(victim.port);
    c.readers.push(late);
    await checkPresence(c, procs, members(c), 15_000);
    console.log(
      `failover in ${failover.ms} ms; reader closes ${c.readers.map((r) => r.closes.join(",") || "-").join(" ")}`,
    );
  }, 60_000);

  it("keeps serving the rooms of the other primaries while one primary fails over", async () => {
    const placement = await Placement.of(cluster);
    const [[onVictim], [elsewhere]] = placement.rooms("iso", 1) as [[string], [string]];
    const victim = placement.primaryOf(onVictim);
    const hit = crowd(onVictim, servers, "h", 1);
    const spared = crowd(elsewhere, servers, "s", 2);
    await startCrowd(hit);
    await startCrowd(spared);
    await waitUntil(() => acked(hit) >= 10 && acked(spared) >= 10, "traffic in both rooms", 15_000);
    // From the kill to the rejoin: every process's /healthz, and newcomers to the spared room.
    let probing = true;
    const unhealthy: string[] = [];
    const refused: string[] = [];
    const probe = (async () => {
      for (let i = 0; probing; i++) {
        const proc = procs[i % procs.length] as ServerProcess;
        const health = await fetch(new URL("/healthz", proc.url)).catch(() => undefined);
        if (health?.status !== 200) unhealthy.push(`${proc.url.port}: ${health?.status ?? "no answer"}`);
        const newcomer = await connect(proc.url, { room: elsewhere, timeoutMs: 3000 }).catch(
          (err: Error) => err,
        );
        if (newcomer instanceof Error) refused.push(`${proc.url.port}: ${newcomer.message.slice(0, 60)}`);
        else await newcomer.close();
        await sleep(50);
      }
    })();
    const failover = await cluster.killPrimary(victim.port);
    // Without a replica the promoted primary refuses chats (WAIT answers 0): a few seconds of that.
    const promotedAt = Date.now();
    await waitUntil(
      () => hit.writers.some((w) => w.failures.filter((f) => f.at > promotedAt).length >= 2),
      "chats refused in the room of the promoted primary",
      15_000,
    );
    await cluster.restart(victim.port);
    const restartedAt = Date.now();
    probing = false;
    await probe;
    const spareAcked = acked(spared);
    await waitUntil(() => acked(spared) >= spareAcked + 10, "traffic after the rejoin", 15_000);
    for (const x of [hit, spared]) await Promise.all(x.writers.map((w) => w.stop()));
    logFailures([hit, spared], failover.killedAt);
    const failed = spared.writers.flatMap((w) =>
      w.failures.filter((f) => f.at >= failover.killedAt && f.at <= restartedAt).map((f) => f.what),
    );
    const spareLog = procs.flatMap((p) =>
      p.output
        .join("")
        .split("\n")
        .filter((l) => l.includes(elsewhere) && l.includes("redis_commit_failed")),
    );
    for (const line of spareLog.slice(0, 4)) console.log(`  ${line.slice(0, 300)}`);
    console.log(
      `failover in ${failover.ms} ms, rejoined ${restartedAt - failover.killedAt} ms after the kill; meanwhile ` +
        `${failed.length} chats refused in ${elsewhere}, ${refused.length} newcomers refused there, ${unhealthy.length} /healthz not 200`,
    );
    expect({
      room: elsewhere,
      chatsRefused: failed.slice(0, 3),
      newcomersRefused: refused,
      unhealthy,
    }).toEqual({
      room: elsewhere,
      chatsRefused: [],
      newcomersRefused: [],
      unhealthy: [],
    });
  }, 60_000);
});

describe.skipIf(!available)("a slot moved to another primary under traffic", () => {
  let procs: ServerProcess[] = [];
  const servers = () => procs;
  /** Slots an earlier test left as it could (keys on a node that does not own them, if it failed). */
  const touched = new Set<number>();

  beforeAll(async () => {
    procs = await spawnProcesses();
  }, 30_000);

  afterEach(() => haltCrowds());

  afterAll(async () => {
    await stopProcesses(procs);
  });

  // Scripts declare their partition's fence (key-space.ts): while the slot migrates they wait
  // (TRYAGAIN), never run on the target before the room's keys are there (the seq started over).
  it("runs a room's script against the room's own keys while its slot is being imported", async () => {
    const placement = await Placement.of(cluster);
    const [[room], [other]] = placement.rooms("ask", 1) as [[string], [string]];
    const slot = placement.slotOf(room);
    touched.add(slot);
    const to = placement.primaryOf(other);
    const ann = await join((procs[0] as ServerProcess).url, { room, nick: "ann" });
    await postAll(ann, "before", 5);
    // The slot half-moved, no key migrated yet: the whole room is still on its owner.
    const migration = await cluster.beginSlotMigration(slot, to.id);
    let refused = false;
    try {
      ann.send({ type: "chat", text: "during", id: "during" });
      const reply = await Promise.race([
        ann.next("ack", (a) => a.id === "during", SLOW),
        ann.next("error", (e) => e.id === "during", SLOW),
      ]);
      // Refused while the slot moves is fine (sent again below); stored, it takes the room's next seq.
      if (reply.type === "ack") expect({ ackedSeq: reply.seq }).toEqual({ ackedSeq: 6 });
      else refused = true;
      await migration.finish();
    } catch (err) {
      // Put the slot back on its owner (what the target got stays there, in a slot it does not own).
      for (const port of [to.port, migration.from.port])
        await cluster.command(port, "CLUSTER", ["SETSLOT", String(slot), "STABLE"]).catch(() => {});
      throw err;
    }
    if (refused) {
      // `internal` is an unknown outcome: the script may still run once the slot has moved (and be
      // acknowledged then); sent again, it is stored once.
      ann.send({ type: "chat", text: "during", id: "during" });
      await ann.waitUntil((c) => c.all("ack").some((a) => a.id === "during"), "the ack of during", SLOW);
      await Bun.sleep(300);
      expect(
        ann
          .all("ack")
          .filter((a) => a.id === "during")
          .map((a) => a.seq),
      ).toContain(6);
    }
    const history = await allMessages((procs[1] as ServerProcess).url, room);
    expect(history.map((m) => `${m.seq}:${m.text}`)).toEqual([
      ...Array.from({ length: 5 }, (_, k) => `${k + 1}:before-${k + 1}`),
      "6:during",
    ]);
  }, 30_000);

  it("loses nothing: every acknowledged chat stored, gapless, every reader complete", async () => {
    const placement = await Placement.of(cluster);
    const [[room], [other]] = placement.rooms("mv", 1, touched) as [[string], [string]];
    const slot = placement.slotOf(room);
    const from = placement.primaryOf(room);
    const to = placement.primaryOf(other);
    const c = crowd(room, servers, "m");
    await startCrowd(c);
    await waitUntil(() => acked(c) >= 30, "traffic in the room", 15_000);
    const before = acked(c);
    // The move as redis-cli makes it, a few keys at a time, with chats sent at every step (a slot
    // with many keys takes a while to move; what is tested is that chats then go where the room is).
    const sent = () => c.writers.reduce((n, w) => n + w.sent.length + w.resends, 0);
    const traffic = async (what: string) => {
      const at = sent();
      await waitUntil(() => sent() >= at + 10, `chats sent ${what}`, 10_000);
    };
    const started = Date.now();
    const ackedBefore = new Map(c.writers.flatMap((w) => [...w.acks().acked]));
    const topSeq = Math.max(...ackedBefore.values());
    const migration = await cluster.beginSlotMigration(slot, to.id);
    let keys: string[] = [];
    try {
      await traffic("with the slot half-moved");
      keys = (await cluster.command(from.port, "CLUSTER", [
        "GETKEYSINSLOT",
        String(slot),
        "1000",
      ])) as string[];
      await migration.migrateKeys(keys.slice(0, Math.ceil(keys.length / 2)));
      await traffic("with half the keys moved");
      await migration.finish();
    } catch (err) {
      // Say what the clients were told meanwhile: acks of chats sent during the move that name a seq
      // the room had given out before it.
      const reused = c.writers.flatMap((w) =>
        [...w.acks().acked]
          .filter(([id, seq]) => seq <= topSeq && !ackedBefore.has(id))
          .map(([id, seq]) => `${id}@${seq}`),
      );
      for (const port of [to.port, from.port])
        await cluster.command(port, "CLUSTER", ["SETSLOT", String(slot), "STABLE"]).catch(() => {});
      throw new Error(
        `moving slot ${slot} under traffic failed: ${err}\nacked during the move with seqs at or below ${topSeq}: ${reused.slice(0, 8).join(" ")}`,
      );
    }
    const movedMs = Date.now() - started;
    expect((await Placement.of(cluster)).primaryOf(room).id).toBe(to.id);
    await waitUntil(() => acked(c) >= before + 30, "chats acknowledged after the move", 15_000);
    // And back at once.
    const back = Date.now();
    await cluster.moveSlot(slot, from.id);
    const backMs = Date.now() - back;
    const moved = acked(c);
    await waitUntil(() => acked(c) >= moved + 30, "chats acknowledged after the move back", 15_000);
    await Promise.all(c.writers.map((w) => w.stop()));
    logFailures([c], started);
    console.log(
      `slot ${slot} (${keys.length} keys) moved ${from.address} -> ${to.address} in ${movedMs} ms under traffic, back in ${backMs} ms`,
    );
    await checkPresence(c, procs, members(c), 15_000);
    console.log(await checkRoom(c, (procs[0] as ServerProcess).url, procs));
  }, 60_000);

  it("loses nothing while redis-cli --cluster reshard moves the room's slot away and back", async () => {
    // redis-cli moves a primary's lowest slots first: the room is the one whose slot has the fewest
    // of its owner's slots below it, on a primary whose slots lie below another's (the slots moved
    // are then that other primary's lowest, and the same command moves them back).
    const placement = await Placement.of(cluster);
    const primaries = [...(await cluster.primaries())].sort((a, b) => lowest(a) - lowest(b));
    let best: { room: string; count: number; from: ClusterNode; to: ClusterNode } | undefined;
    for (const room of placement.rooms("rs", 4, touched).flat()) {
      const from = placement.primaryOf(room);
      const to = primaries[primaries.findIndex((p) => p.id === from.id) + 1];
      if (!to) continue;
      const count = slotsUpTo(from, placement.slotOf(room));
      if (!best || count < best.count) best = { room, count, from, to };
    }
    if (!best) throw new Error("no room to reshard");
    const { room, count, from, to } = best;
    touched.add(placement.slotOf(room));
    const c = crowd(room, servers, "r");
    await startCrowd(c);
    await waitUntil(() => acked(c) >= 30, "traffic in the room", 15_000);
    /** Reshards the slots to `dst`, which then serves the room, and chats go on: the move's ms. */
    const reshard = async (src: ClusterNode, dst: ClusterNode, what: string) => {
      const at = Date.now();
      await cluster.reshard({ from: src.id, to: dst.id, slots: count });
      const ms = Date.now() - at;
      expect((await Placement.of(cluster)).primaryOf(room).id).toBe(dst.id);
      const before = acked(c);
      await waitUntil(() => acked(c) >= before + 30, `chats acknowledged after ${what}`, 15_000);
      return ms;
    };
    const started = Date.now();
    const awayMs = await reshard(from, to, "the reshard");
    const backMs = await reshard(to, from, "the reshard back");
    await Promise.all(c.writers.map((w) => w.stop()));
    logFailures([c], started);
    console.log(
      `redis-cli resharded ${count} slots with the room's ${from.address} -> ${to.address} in ${awayMs} ms, back in ${backMs} ms`,
    );
    await checkPresence(c, procs, members(c), 15_000);
    console.log(await checkRoom(c, (procs[0] as ServerProcess).url, procs));
  }, 90_000);
});

/** A primary's lowest slot. */
function lowest(node: ClusterNode): number {
  return Math.min(...node.slots.map(([start]) => start));
}

/** How many of the node's slots are at or below `slot`. */
function slotsUpTo(node: ClusterNode, slot: number): number {
  return node.slots.reduce((n, [start, end]) => n + Math.max(0, Math.min(end, slot) - start + 1), 0);
}
