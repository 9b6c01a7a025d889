/**
 * How long a room's writes wait while redis-cli-style resharding moves its partition's slot, by how
 * many keys the partition holds: the figure behind README's "the wait grows with the number of keys
 * in the partition".
 *
 *   bun bench/redis-migration.ts [--keys 1000,10000,100000] [--rate 50] [--batch 100]
 *
 * Starts a private 3-primary Redis Cluster (no replicas) and one of our processes on it
 * (REDIS_CLUSTER). For each size: fills the room's partition with that many keys besides the room's
 * own (plain strings of 200 bytes under the partition's tag: a stand-in for other rooms, which
 * MIGRATE moves the same way, only with bigger values), then moves the slot to another primary as
 * `redis-cli --cluster reshard` does (IMPORTING, MIGRATING, MIGRATE `batch` keys at a time, then the
 * slot assigned) while one client chats at `rate` messages a second with an id each, sending again
 * whatever is refused, and a second process delivers the room to a reader. Prints the move's
 * duration, the longest wait from a chat's first send to its ack and to its delivery on the other
 * process, the refusals, and checks the room's history holds every acknowledged chat once, in order.
 */
import { Cluster } from "ioredis";
import { KeySpace } from "../server/engines/redis/key-space";
import { allMessages } from "../test/redis/support/cluster";
import { RedisCluster } from "../test/redis/support/redis-cluster";
import { type ServerProcess, spawnServer } from "../test/support/server-process";
import { connectUrl } from "../test/support/test-client";

interface Options {
  keys: number[];
  rate: number;
  batch: number;
}

function parseArgs(argv: string[]): Options {
  const o: Options = { keys: [1000, 10_000, 100_000], rate: 50, batch: 100 };
  for (let i = 0; i < argv.length; i++) {
    const [flag, value] = [argv[i], argv[i + 1] ?? ""];
    if (flag === "--keys") o.keys = value.split(",").map(Number);
    else if (flag === "--rate") o.rate = Number(value);
    else if (flag === "--batch") o.batch = Number(value);
    else throw new Error(`unknown flag ${flag}`);
    i++;
  }
  return o;
}

/** One chat from its first send to its ack, however many times it was sent. */
interface Sent {
  first: number;
  acked?: number;
  seq?: number;
  sends: number;
}

/** Chats at a steady rate; a refused one is sent again with the same id at once. */
class Writer {
  readonly sent = new Map<string, Sent>();
  refused = 0;
  private timer: ReturnType<typeof setInterval> | undefined;
  private n = 0;

  private constructor(private readonly ws: WebSocket) {
    ws.addEventListener("message", (e) => {
      const m = JSON.parse(String(e.data)) as { type: string; id?: string; seq?: number };
      const s = m.id === undefined ? undefined : this.sent.get(m.id);
      if (!s) return;
      if (m.type === "ack" && s.acked === undefined) {
        s.acked = performance.now();
        s.seq = m.seq;
      } else if (m.type === "error") {
        this.refused++;
        this.send(m.id as string);
      }
    });
  }

  /** Connected once the welcome came. */
  static async join(base: URL, room: string, nick: string): Promise<Writer> {
    return new Writer(await welcomed(base, room, nick));
  }

  close(): void {
    this.ws.close();
  }

  start(rate: number): void {
    this.timer = setInterval(() => {
      const id = `m${++this.n}`;
      this.sent.set(id, { first: performance.now(), sends: 0 });
      this.send(id);
    }, 1000 / rate);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private send(id: string): void {
    const s = this.sent.get(id) as Sent;
    s.sends++;
    this.ws.send(JSON.stringify({ type: "chat", text: id, id }));
  }
}

/** Notes when each chat (by text) reached it. */
class Reader {
  readonly got = new Map<string, number>();

  private constructor(private readonly ws: WebSocket) {
    ws.addEventListener("message", (e) => {
      const m = JSON.parse(String(e.data)) as { type: string; text?: string };
      if (m.type === "chat" && m.text !== undefined && !this.got.has(m.text))
        this.got.set(m.text, performance.now());
    });
  }

  static async join(base: URL, room: string, nick: string): Promise<Reader> {
    return new Reader(await welcomed(base, room, nick));
  }

  close(): void {
    this.ws.close();
  }
}

/** A v1 connection to `room`, once its welcome came. */
async function welcomed(base: URL, room: string, nick: string): Promise<WebSocket> {
  const ws = new WebSocket(connectUrl(base, { room, nick }));
  await new Promise<void>((resolve, reject) => {
    ws.addEventListener("message", (e) => {
      if ((JSON.parse(String(e.data)) as { type: string }).type === "welcome") resolve();
    });
    ws.addEventListener("close", () => reject(new Error(`${nick} closed before its welcome`)));
  });
  return ws;
}

/** Fills the partition's slot with `count` keys of 200 bytes, 1,000 a pipeline. */
async function fill(io: Cluster, prefix: string, count: number): Promise<void> {
  const value = "x".repeat(200);
  for (let at = 0; at < count; at += 1000) {
    const p = io.pipeline();
    for (let i = at; i < Math.min(count, at + 1000); i++) p.set(`${prefix}fill:${i}`, value);
    await p.exec();
  }
}

const o = parseArgs(process.argv.slice(2));
const cluster = await RedisCluster.start({ primaries: 3, replicasPerPrimary: 0 });
const io = new Cluster(cluster.startupNodes);
let server: ServerProcess | undefined;
let other: ServerProcess | undefined;
try {
  server = await spawnServer({ REDIS_CLUSTER: cluster.seedsEnv, RATE_LIMIT: "0" });
  other = await spawnServer({ REDIS_CLUSTER: cluster.seedsEnv, RATE_LIMIT: "0" });
  const keys = new KeySpace("chat:", 16, true);
  console.log(
    "| keys in the slot | move (ms) | longest send-to-ack (ms) | median (ms) | longest send-to-delivery on another process (ms) | refused | acked | history intact |",
  );
  console.log("|---:|---:|---:|---:|---:|---:|---:|---|");
  for (const [k, count] of o.keys.entries()) {
    const room = `mig-${k}`;
    const prefix = keys.room(room);
    await fill(io, prefix, count);
    const reader = await Reader.join(other.url, room, `r${k}`);
    const writer = await Writer.join(server.url, room, `w${k}`);
    writer.start(o.rate);
    await Bun.sleep(500);
    const slot = await cluster.keySlot(`${prefix}x`);
    const from = await cluster.primaryForSlot(slot);
    const to = (await cluster.primaries()).find((p) => p.id !== from.id);
    if (!to) throw new Error("no other primary");
    const started = performance.now();
    const migration = await cluster.beginSlotMigration(slot, to.id);
    for (;;) {
      const batch = (await cluster.command(from.port, "CLUSTER", [
        "GETKEYSINSLOT",
        String(slot),
        String(o.batch),
      ])) as string[];
      if (batch.length === 0) break;
      await migration.migrateKeys(batch);
    }
    await migration.finish();
    const moveMs = performance.now() - started;
    await Bun.sleep(1000);
    writer.stop();
    await Bun.sleep(2500);
    const all = [...writer.sent.values()];
    const waits = all.filter((s) => s.acked !== undefined).map((s) => (s.acked as number) - s.first);
    waits.sort((a, b) => a - b);
    const acked = new Map(
      [...writer.sent].filter(([, s]) => s.seq !== undefined).map(([id, s]) => [s.seq, id]),
    );
    const history = await allMessages(server.url, room);
    const intact =
      history.every((m, i) => m.seq === i + 1) &&
      [...acked].every(([seq, id]) => history[(seq as number) - 1]?.text === id) &&
      new Set(history.map((m) => m.text)).size === history.length;
    const median = waits[Math.floor(waits.length / 2)] ?? 0;
    const delivered = [...writer.sent].map(([id, s]) => (reader.got.get(id) ?? Number.NaN) - s.first);
    const longestDelivery = Math.max(...delivered);
    console.log(
      `| ${count} | ${moveMs.toFixed(0)} | ${(waits.at(-1) ?? 0).toFixed(0)} | ${median.toFixed(1)} | ${longestDelivery.toFixed(0)} | ${writer.refused} | ${acked.size}/${all.length} | ${intact ? "yes" : "NO"} |`,
    );
    writer.close();
    reader.close();
  }
} finally {
  io.disconnect();
  server?.proc.kill();
  other?.proc.kill();
  await cluster.stop();
}
