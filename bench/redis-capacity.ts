/**
 * What the capacity model of docs/SCALING.md needs from Redis and could not take from the suite:
 * memory per room, per member and per message, and what one partition reader costs Redis per room
 * it follows.
 *
 *   bun bench/redis-capacity.ts [--messages N] [--rooms N] [--members N] [--keys 10,100,1000,10000] [--out FILE]
 *
 * Starts a private redis-server (as scenario 6: append-only file, fsync every second) and one of our
 * processes on it (`REDIS_URL`, the plain layout; a cluster partition holds the same keys under a
 * `{N}` tag), drives it with plain v1 WebSocket clients, and reads `INFO memory` (used_memory) and
 * `MEMORY USAGE key SAMPLES 0` after each step:
 *   1. rooms: `rooms` clients, each alone in its own room (joined), then one chat in each, then all gone;
 *   2. members: `members` clients in one room;
 *   3. messages: one client sends `messages` chats of 64 characters (the bench's text length), each
 *      with an id, then 2,000 more of 1,000 characters: per message, and per byte of text;
 *   4. the partition reader: XREAD over K streams (K = --keys), non-blocking and woken by one XADD,
 *      timed by Redis (INFO commandstats) and by the redis-server's CPU (/proc);
 *   5. idle processes: `--idle-processes` processes with REDIS_PARTITIONS=16 and no clients, for
 *      `--idle-seconds`: the heartbeats and sweeps every process runs in every partition.
 */
import { writeFileSync } from "node:fs";
import { RedisClient } from "bun";
import { cpuSeconds, installCleanup, killAll } from "./processes";
import { redisServerPath, startRedis } from "./redis";
import { SERVERS, startTarget } from "./servers";

interface Options {
  rooms: number;
  members: number;
  messages: number;
  keys: number[];
  idleProcesses: number;
  idleSeconds: number;
  out: string | undefined;
}

function parseArgs(argv: string[]): Options {
  const o: Options = {
    rooms: 1000,
    members: 1000,
    messages: 20_000,
    keys: [10, 100, 1000, 10_000],
    idleProcesses: 3,
    idleSeconds: 10,
    out: undefined,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${arg} needs a value`);
      return v;
    };
    if (arg === "--rooms") o.rooms = Number(value());
    else if (arg === "--members") o.members = Number(value());
    else if (arg === "--messages") o.messages = Number(value());
    else if (arg === "--keys") o.keys = value().split(",").map(Number);
    else if (arg === "--idle-processes") o.idleProcesses = Number(value());
    else if (arg === "--idle-seconds") o.idleSeconds = Number(value());
    else if (arg === "--out") o.out = value();
    else throw new Error(`unknown argument ${arg}`);
  }
  return o;
}

/** One v1 client: connects, waits for its welcome, sends chats with ids and counts their acks. */
class Client {
  private ws!: WebSocket;
  private acked = 0;
  private waiters: Array<{ n: number; resolve: () => void }> = [];

  static async open(port: number, room: string, nick: string): Promise<Client> {
    const c = new Client();
    const url = `ws://127.0.0.1:${port}/ws?room=${encodeURIComponent(room)}&nick=${encodeURIComponent(nick)}`;
    await new Promise<void>((resolve, reject) => {
      const ws = new WebSocket(url);
      c.ws = ws;
      const timer = setTimeout(() => reject(new Error(`no welcome for ${nick} in ${room}`)), 20_000);
      ws.onmessage = (e) => {
        const msg = JSON.parse(String(e.data)) as { type: string; code?: string };
        if (msg.type === "welcome") {
          clearTimeout(timer);
          resolve();
        } else if (msg.type === "ack") {
          c.acked++;
          c.waiters = c.waiters.filter((w) => {
            if (c.acked < w.n) return true;
            w.resolve();
            return false;
          });
        } else if (msg.type === "error") reject(new Error(`${nick}: ${JSON.stringify(msg)}`));
      };
      ws.onerror = () => reject(new Error(`${nick}: socket error`));
    });
    return c;
  }

  /** Sends `count` chats of `text`, at most `window` unacknowledged; resolves once all are acked. */
  async send(count: number, text: string, window = 64): Promise<void> {
    const base = this.acked;
    for (let i = 0; i < count; i++) {
      if (i - (this.acked - base) >= window) await this.until(base + i - window + 1);
      this.ws.send(JSON.stringify({ type: "chat", text, id: crypto.randomUUID() }));
    }
    await this.until(base + count);
  }

  private until(n: number): Promise<void> {
    if (this.acked >= n) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ n, resolve }));
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.ws.onclose = () => resolve();
      this.ws.close(1000);
    });
  }
}

async function openAll(port: number, specs: Array<[room: string, nick: string]>): Promise<Client[]> {
  const out: Client[] = [];
  for (let i = 0; i < specs.length; i += 100) {
    out.push(
      ...(await Promise.all(specs.slice(i, i + 100).map(([room, nick]) => Client.open(port, room, nick)))),
    );
  }
  return out;
}

function sum(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0);
}

function text(length: number): string {
  return "x".repeat(length);
}

async function main(): Promise<void> {
  installCleanup();
  const o = parseArgs(process.argv.slice(2));
  const bin = redisServerPath();
  if (!bin) throw new Error("no redis-server here (set REDIS_SERVER to its path)");
  const redis = await startRedis(bin);
  const r = new RedisClient(redis.url);
  const used = async () => {
    // Let presence batches, heartbeats and lazy frees settle first.
    await Bun.sleep(400);
    const info = String(await r.send("INFO", ["memory"]));
    return Number(/used_memory:(\d+)/.exec(info)?.[1]);
  };
  const keysOf = async (pattern: string) => {
    const out: string[] = [];
    let cursor = "0";
    do {
      const [next, batch] = (await r.send("SCAN", [cursor, "MATCH", pattern, "COUNT", "1000"])) as [
        string,
        string[],
      ];
      cursor = next;
      out.push(...batch);
    } while (cursor !== "0");
    return out.sort();
  };
  const usage = async (keys: string[]) => {
    const out: Record<string, number> = {};
    for (const k of keys) out[k] = Number(await r.send("MEMORY", ["USAGE", k, "SAMPLES", "0"]));
    return out;
  };
  const report: Record<string, unknown> = {
    redisVersion: redis.version,
    bun: Bun.version,
    startedAt: new Date().toISOString(),
  };
  const log = (line: string) => console.log(line);
  log(`private redis-server ${redis.version} on ${redis.url}`);

  const server = await startTarget(SERVERS.ours, { env: { REDIS_URL: redis.url } });
  try {
    const m0 = await used();
    log(`empty (one process registered): used_memory ${m0} B`);

    // 1. rooms, each with one member, then one chat each, then everyone gone.
    const loners = await openAll(
      server.port,
      Array.from({ length: o.rooms }, (_, i) => [`lone-${i}`, `n${i}`] as [string, string]),
    );
    const m1 = await used();
    await Promise.all(loners.map((c) => c.send(1, text(64))));
    const m2 = await used();
    const roomKeys = await usage(await keysOf("*lone-7:*"));
    await Promise.all(loners.map((c) => c.close()));
    const m3 = await used();
    const rooms = {
      rooms: o.rooms,
      perRoomWithOneMember: (m1 - m0) / o.rooms,
      perRoomAfterOneChat: (m2 - m0) / o.rooms,
      perEmptyRoomWithOneChat: (m3 - m0) / o.rooms,
      keysOfOneRoom: roomKeys,
    };
    report.rooms = rooms;
    log(
      `rooms (${o.rooms}): ${rooms.perRoomWithOneMember.toFixed(0)} B per room with one member, ` +
        `${rooms.perRoomAfterOneChat.toFixed(0)} B after one chat, ${rooms.perEmptyRoomWithOneChat.toFixed(0)} B once empty (sessions kept for resume)`,
    );
    log(`  keys of one room: ${JSON.stringify(roomKeys)}`);

    // 2. members of one room.
    const before = await used();
    const crowd = await openAll(
      server.port,
      Array.from({ length: o.members }, (_, i) => ["crowd", `c${i}`] as [string, string]),
    );
    const after = await used();
    const crowdKeys = await usage(await keysOf("*room:crowd:*"));
    await Promise.all(crowd.map((c) => c.close()));
    const gone = await used();
    const members = {
      members: o.members,
      perMember: (after - before) / o.members,
      perEndedSession: (gone - before) / o.members,
      keysOfTheRoom: crowdKeys,
    };
    report.members = members;
    log(
      `members (${o.members} in one room): ${members.perMember.toFixed(0)} B per member; ` +
        `${members.perEndedSession.toFixed(0)} B per member once gone (its session, kept for resume, and the room's log)`,
    );

    // 3. messages in one room, from one client.
    const writer = await Client.open(server.port, "hist", "w");
    const steps: Array<{ messages: number; usedMemory: number; keys: Record<string, number> }> = [];
    const w0 = await used();
    steps.push({ messages: 0, usedMemory: w0, keys: await usage(await keysOf("*hist*")) });
    let sent = 0;
    for (const upTo of [1000, 5000, 10_000, o.messages].filter(
      (n, i, a) => n <= o.messages && a.indexOf(n) === i,
    )) {
      await writer.send(upTo - sent, text(64));
      sent = upTo;
      steps.push({ messages: sent, usedMemory: await used(), keys: await usage(await keysOf("*hist*")) });
    }
    // The writer's dedupe ids (its session's `ids` hash and `idq` list): the largest of each.
    const largest = async (suffix: string, count: string) => {
      const sizes = await usage(await keysOf(`*sess:*:${suffix}`));
      const [key, bytes] = Object.entries(sizes).sort((a, b) => b[1] - a[1])[0] ?? ["", 0];
      return { bytes, entries: Number(await r.send(count, [key])) };
    };
    const ids = await largest("ids", "HLEN");
    const idq = await largest("idq", "LLEN");
    const dedupe = {
      idsBytes: ids.bytes,
      idsEntries: ids.entries,
      idqBytes: idq.bytes,
      idqEntries: idq.entries,
    };
    const long = 2000;
    const l0 = await used();
    await writer.send(long, text(1000));
    const l1 = await used();
    await writer.close();
    const first = steps[0] as (typeof steps)[number];
    const last = steps[steps.length - 1] as (typeof steps)[number];
    const mid = steps.find((s) => s.messages === 10_000) ?? last;
    const messages = {
      textLength: 64,
      steps,
      perMessage: (last.usedMemory - first.usedMemory) / last.messages,
      perMessageUpTo10k: (mid.usedMemory - first.usedMemory) / mid.messages,
      perMessageBeyond10k:
        last.messages > mid.messages
          ? (last.usedMemory - mid.usedMemory) / (last.messages - mid.messages)
          : Number.NaN,
      perMessageOf1000Chars: (l1 - l0) / long,
      perTextByte:
        ((l1 - l0) / long - (last.usedMemory - mid.usedMemory) / Math.max(1, last.messages - mid.messages)) /
        (1000 - 64),
    };
    report.messages = messages;
    report.dedupe = dedupe;
    log(
      `messages (64 characters, one sender): ${messages.perMessage.toFixed(1)} B each over ${last.messages}; ` +
        `${messages.perMessageUpTo10k.toFixed(1)} B up to 10,000 (stream and dedupe ids growing), ${messages.perMessageBeyond10k.toFixed(1)} B beyond (history only); ` +
        `1,000 characters: ${messages.perMessageOf1000Chars.toFixed(1)} B each`,
    );
    log(
      `dedupe ids of one session that sent ${sent}: ${dedupe.idsEntries} ids, ${dedupe.idsBytes} B (hash) + ${dedupe.idqBytes} B (list), ` +
        `${((dedupe.idsBytes + dedupe.idqBytes) / Math.max(1, dedupe.idsEntries)).toFixed(0)} B per id`,
    );
    for (const s of steps)
      log(`  after ${s.messages}: used_memory ${s.usedMemory}; ${JSON.stringify(s.keys)}`);
  } finally {
    await server.stop();
  }

  // 4. The partition reader: one XREAD over K streams, as a process follows the rooms of one partition.
  const reader = new RedisClient(redis.url);
  const xread: Array<Record<string, number>> = [];
  for (const k of o.keys) {
    await r.send("FLUSHALL", []);
    const keys = Array.from({ length: k }, (_, i) => `x:${i}`);
    for (let i = 0; i < k; i += 1000) {
      const chunk = keys.slice(i, i + 1000);
      await Promise.all(chunk.map((key) => r.send("XADD", [key, "*", "k", "c"])));
    }
    const ids = (await Promise.all(keys.map((key) => r.send("XINFO", ["STREAM", key])))).map(
      (info) => (info as Record<string, string>)["last-generated-id"] as string,
    );
    const rounds = Math.max(20, Math.min(2000, Math.round(200_000 / k)));
    // Non-blocking: the cost of looking at K streams with nothing new.
    await r.send("CONFIG", ["RESETSTAT"]);
    let cpu0 = cpuSeconds(redis.pid);
    let t0 = performance.now();
    for (let i = 0; i < rounds; i++)
      await reader.send("XREAD", ["COUNT", "1000", "STREAMS", ...keys, ...ids]);
    const idleWall = (performance.now() - t0) / rounds;
    const idleCpu = ((cpuSeconds(redis.pid) - cpu0) * 1e6) / rounds;
    const idleStats = String(await r.send("INFO", ["commandstats"]));
    const idleUsec = Number(/cmdstat_xread:calls=\d+,usec=\d+,usec_per_call=([\d.]+)/.exec(idleStats)?.[1]);
    // Blocking, woken by one XADD to one of the K streams: one reader wake-up as a chat causes it.
    await r.send("CONFIG", ["RESETSTAT"]);
    const last = [...ids];
    cpu0 = cpuSeconds(redis.pid);
    t0 = performance.now();
    for (let i = 0; i < rounds; i++) {
      const target = i % k;
      const read = reader.send("XREAD", ["COUNT", "1000", "BLOCK", "5000", "STREAMS", ...keys, ...last]);
      await Bun.sleep(0);
      await r.send("XADD", [keys[target] as string, "*", "k", "c"]);
      const reply = (await read) as Record<string, Array<[string, string[]]>> | null;
      const got = reply?.[keys[target] as string];
      if (!got?.length) throw new Error("XREAD woke without the new entry");
      last[target] = (got[got.length - 1] as [string, string[]])[0];
    }
    const wakeWall = (performance.now() - t0) / rounds;
    const wakeCpu = ((cpuSeconds(redis.pid) - cpu0) * 1e6) / rounds;
    const wakeStats = String(await r.send("INFO", ["commandstats"]));
    const wakeUsec = Number(/cmdstat_xread:calls=\d+,usec=\d+,usec_per_call=([\d.]+)/.exec(wakeStats)?.[1]);
    xread.push({
      keys: k,
      rounds,
      idleUsec,
      idleCpu,
      idleWall: idleWall * 1000,
      wakeUsec,
      wakeCpu,
      wakeWall: wakeWall * 1000,
    });
    log(
      `XREAD over ${k} streams: idle ${idleUsec.toFixed(1)} µs in Redis (${idleCpu.toFixed(0)} µs of its CPU, ${(idleWall * 1000).toFixed(0)} µs round trip); ` +
        `woken by an XADD ${wakeUsec.toFixed(1)} µs per XREAD in Redis (${wakeCpu.toFixed(0)} µs of its CPU per XADD + wake, ${(wakeWall * 1000).toFixed(0)} µs round trip)`,
    );
  }
  reader.close();
  report.xread = xread;

  // 5. Idle processes on 16 partitions: what every process costs every partition, clients or none.
  await r.send("FLUSHALL", []);
  const partitions = 16;
  const idle = await Promise.all(
    Array.from({ length: o.idleProcesses }, () =>
      startTarget(SERVERS.ours, { env: { REDIS_URL: redis.url, REDIS_PARTITIONS: String(partitions) } }),
    ),
  );
  try {
    await Bun.sleep(2000);
    await r.send("CONFIG", ["RESETSTAT"]);
    const cpu0 = cpuSeconds(redis.pid);
    await Bun.sleep(o.idleSeconds * 1000);
    const redisCpu = cpuSeconds(redis.pid) - cpu0;
    const stats = String(await r.send("INFO", ["commandstats"]));
    const calls = [...stats.matchAll(/cmdstat_(\w+):calls=(\d+),usec=(\d+)/g)].map((m) => ({
      command: m[1] as string,
      calls: Number(m[2]),
      usec: Number(m[3]),
    }));
    const scripts = calls.filter((c) => /^(evalsha|eval|fcall)$/.test(c.command));
    const scriptCalls = sum(scripts.map((c) => c.calls));
    const scriptUsec = sum(scripts.map((c) => c.usec));
    const perProcess = {
      processes: o.idleProcesses,
      partitions,
      seconds: o.idleSeconds,
      scriptsPerSecondPerProcess: scriptCalls / o.idleSeconds / o.idleProcesses,
      usecPerScript: scriptCalls > 0 ? scriptUsec / scriptCalls : Number.NaN,
      redisCpuUsPerSecondPerProcess: (redisCpu * 1e6) / o.idleSeconds / o.idleProcesses,
      commands: calls,
    };
    report.idle = perProcess;
    log(
      `idle: ${o.idleProcesses} processes on ${partitions} partitions: ${perProcess.scriptsPerSecondPerProcess.toFixed(1)} scripts/s per process ` +
        `(${(perProcess.scriptsPerSecondPerProcess / partitions).toFixed(2)} per partition), ${perProcess.usecPerScript.toFixed(1)} µs each in Redis; ` +
        `Redis CPU ${perProcess.redisCpuUsPerSecondPerProcess.toFixed(0)} µs a second per process`,
    );
  } finally {
    await Promise.all(idle.map((t) => t.stop()));
  }
  r.close();
  await redis.stop();
  if (o.out) writeFileSync(o.out, `${JSON.stringify(report, null, 2)}\n`);
}

main().then(
  () => {
    killAll();
    process.exit(0);
  },
  (err: unknown) => {
    console.error(err instanceof Error ? (err.stack ?? err.message) : err);
    killAll();
    process.exit(1);
  },
);
