/**
 * Failures with real processes: a server killed with SIGKILL (its users leave everyone's lists within
 * the expiry, its clients carry on elsewhere with nothing missed) and Redis killed for a few seconds
 * under traffic (no process dies, no client is left with a silent gap).
 */
import { afterAll, afterEach, describe, expect, it } from "bun:test";
import { killAllServerProcesses, killHard, type ServerProcess } from "../support/server-process";
import { closeAllClients, connect, type TestClient } from "../support/test-client";
import { eventually, sleep } from "../support/timing";
import {
  allMessages,
  Follower,
  gapless,
  PRESENCE_TTL_SECONDS,
  roomsFrom,
  spawnCluster,
  until,
  userList,
} from "./support/cluster";
import { RedisProcess, redisAvailable } from "./support/redis-server";

const available = redisAvailable();
const redises: RedisProcess[] = [];

async function freshRedis(): Promise<RedisProcess> {
  const redis = await RedisProcess.start({ appendonly: true });
  redises.push(redis);
  return redis;
}

afterEach(async () => {
  await closeAllClients();
  await killAllServerProcesses();
});

afterAll(async () => {
  await Promise.all(redises.map((r) => r.stop()));
});

/**
 * Sends chats with ids one after another, each retried (same id) until acknowledged, reconnecting
 * with its resume token to whichever process answers. Records every ack.
 */
class Writer {
  readonly acked = new Map<string, number>();
  errors = 0;
  private stopped = false;
  private client: TestClient | undefined;
  private token: string | undefined;
  private running: Promise<void> = Promise.resolve();

  constructor(
    private readonly servers: () => ServerProcess[],
    readonly room: string,
    readonly nick: string,
  ) {}

  start(): void {
    this.running = this.loop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.running;
  }

  private async loop(): Promise<void> {
    let turn = 0;
    for (let k = 1; !this.stopped; ) {
      const id = `${this.nick}-${k}`;
      try {
        if (!this.client || this.client.closeCode !== undefined) {
          const list = this.servers();
          const base = (list[turn++ % list.length] as ServerProcess).url;
          this.client = await connect(base, {
            room: this.room,
            nick: this.nick,
            ...(this.token ? { resume: this.token } : {}),
            timeoutMs: 1000,
          });
          this.token = this.client.welcome.resumeToken;
        }
        const client = this.client;
        client.send({ type: "chat", text: id, id });
        const reply = await Promise.race([
          client.next("ack", (a) => a.id === id, 1000),
          client.next("error", (e) => e.id === id, 1000),
        ]);
        if (reply.type === "ack") {
          this.acked.set(id, reply.seq);
          k++;
          await sleep(5);
        } else {
          this.errors++;
          await sleep(100);
        }
      } catch {
        this.errors++;
        await sleep(100);
      }
    }
  }
}

describe.skipIf(!available)("a server process killed with SIGKILL", () => {
  it("drops its users from the other processes' lists within the expiry; its clients lose nothing elsewhere", async () => {
    const redis = await freshRedis();
    const procs = await spawnCluster(redis, 2);
    const [survivor, victim] = procs as [ServerProcess, ServerProcess];
    const observer = await connect(survivor.url, { room: "kill", nick: "obs" });
    let order = [victim, survivor];
    const follower = new Follower(() => order, "kill", "vic");
    await follower.start(); // on the victim
    const doomed = await connect(victim.url, { room: "kill", nick: "doomed" });
    await doomed.post("d", 20);
    await observer.post("o", 10);
    await eventually(() => userList(observer).includes("doomed"), "doomed in the observer's list");

    await killHard(victim);
    const killedAt = Date.now();
    order = [survivor];
    const posting = observer.post("after", 20);
    await observer.waitFor(
      "presence",
      (p) => p.events.some((e) => e.event === "leave" && e.nick === "doomed"),
      10_000,
    );
    const leftAfterMs = Date.now() - killedAt;
    await posting;
    console.log(
      `SIGKILLed process's user left the other lists after ${leftAfterMs} ms (expiry ${PRESENCE_TTL_SECONDS} s)`,
    );
    expect(leftAfterMs).toBeLessThan(PRESENCE_TTL_SECONDS * 1000 + 1500);

    const history = await allMessages(survivor.url, "kill");
    expect(history.map((m) => m.seq)).toEqual(Array.from({ length: 50 }, (_, k) => k + 1));
    // Every message the killed process acknowledged is there.
    const texts = new Set(history.map((m) => m.text));
    for (let k = 1; k <= 20; k++) expect(texts.has(`d-${k}`)).toBe(true);
    await eventually(() => follower.lastSeq === 50, "the follower to catch up on the survivor", 10_000);
    // The room list forgets the swept user too: obs and vic (back on the survivor) remain.
    const kill = async () => (await roomsFrom(survivor.url)).find((r) => r.room === "kill")?.users;
    await until(async () => (await kill()) === 2, "the room list to count obs and vic only");
    await follower.stop();
    expect(gapless(follower.seqs)).toEqual({ firstBreak: null, count: 50 });
    expect(userList(observer)).not.toContain("doomed");
  });
});

describe.skipIf(!available)("Redis killed for a few seconds under traffic", () => {
  it("keeps every process up and leaves no client with a silent gap", async () => {
    const redis = await freshRedis();
    const procs = await spawnCluster(redis, 2);
    const followers = [0, 1, 2, 3].map(
      (i) => new Follower(() => [procs[i % 2], procs[(i + 1) % 2]] as ServerProcess[], "blip", `f${i}`),
    );
    for (const f of followers) await f.start();
    const writers = [0, 1].map(
      (i) => new Writer(() => [procs[i], procs[1 - i]] as ServerProcess[], "blip", `w${i}`),
    );
    for (const w of writers) w.start();

    await sleep(700);
    const ackedBefore = writers.reduce((n, w) => n + w.acked.size, 0);
    await redis.kill();
    await sleep(2500);
    await redis.resume();
    const resumedAt = writers.reduce((n, w) => n + w.acked.size, 0);
    await sleep(2000);
    for (const w of writers) await w.stop();
    const ackedAfter = writers.reduce((n, w) => n + w.acked.size, 0);
    console.log(
      `blip: ${ackedBefore} acked before, ${ackedAfter - resumedAt} after Redis came back; ` +
        `writer retries ${writers.map((w) => w.errors).join("/")}; follower reconnects ${followers.map((f) => f.closes.length).join("/")}`,
    );
    expect(ackedBefore).toBeGreaterThan(10);
    expect(ackedAfter - resumedAt).toBeGreaterThan(10);

    for (const p of procs) {
      expect(p.proc.exitCode).toBeNull();
      expect((await fetch(new URL("/healthz", p.url))).status).toBe(200);
    }
    const history = await allMessages(procs[0]?.url as URL, "blip");
    const last = history.length;
    expect(history.map((m) => m.seq)).toEqual(Array.from({ length: last }, (_, k) => k + 1));
    const seqOf = new Map(history.map((m) => [m.text, m.seq]));
    for (const w of writers) {
      const lost = [...w.acked].filter(([id, seq]) => seqOf.get(id) !== seq);
      expect({ writer: w.nick, lost }).toEqual({ writer: w.nick, lost: [] });
    }
    for (const f of followers) {
      await eventually(() => f.lastSeq === last, `${f.nick} to reach seq ${last}`, 10_000);
      await f.stop();
      // Whether it stayed connected or was told to resync (1011) and came back with since: 1..last, once each.
      expect({ follower: f.nick, ...gapless(f.seqs) }).toEqual({
        follower: f.nick,
        firstBreak: null,
        count: last,
      });
    }
  }, 30_000);
});
