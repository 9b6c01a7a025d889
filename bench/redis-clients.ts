/**
 * What one Redis command costs this process in CPU through Bun's own client and through ioredis (the
 * client a Redis Cluster needs here), one at a time and many in flight, against a private
 * redis-server: `bun bench/redis-clients.ts [--commands N]`. Explains much of a cluster's per-message
 * cost in docs/SCALING.md.
 */
import { RedisClient } from "bun";
import { Redis } from "ioredis";
import { RedisProcess } from "../test/redis/support/redis-server";

const arg = process.argv.indexOf("--commands");
const N = arg > 0 ? Number(process.argv[arg + 1]) : 5000;

const redis = await RedisProcess.start();
const bun = new RedisClient(redis.url);
await bun.connect();
const io = new Redis(redis.url, { protocol: 3, replyMapping: "resp3", lazyConnect: true });
await io.connect();
const clients: Array<[string, (key: string) => Promise<unknown>]> = [
  ["Bun's RedisClient", (k) => bun.send("GET", [k])],
  ["ioredis", (k) => io.call("GET", k)],
];

function cpuMicros(since: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(since);
  return d.user + d.system;
}

try {
  const rows: Array<[string, string, string]> = [];
  // Twice each, in turn: the second round is the one reported (the first warms up).
  for (let round = 0; round < 2; round++) {
    for (const [name, send] of clients) {
      const a = process.cpuUsage();
      for (let i = 0; i < N; i++) await send(`k${i}`);
      const one = cpuMicros(a) / N;
      const b = process.cpuUsage();
      for (let j = 0; j < 10; j++) await Promise.all(Array.from({ length: N / 10 }, (_, i) => send(`k${i}`)));
      const many = cpuMicros(b) / N;
      if (round === 1) rows.push([name, one.toFixed(1), many.toFixed(1)]);
    }
  }
  console.log(`CPU of this process per GET, µs (${N} commands each way)`);
  console.log("client                 one at a time   500 in flight");
  for (const [name, one, many] of rows)
    console.log(`${name.padEnd(22)} ${one.padStart(13)}   ${many.padStart(13)}`);
} finally {
  bun.close();
  io.disconnect();
  await redis.stop();
}
