/**
 * What following a room costs a process per quiet message, two ways: as the engine follows today
 * (a blocking XREAD woken by the entry, then the post fetched by its seq, then the read armed again:
 * stream-follower.ts) and as a pub/sub push carrying the post (what sharded pub/sub would do), each
 * through Bun's client and through ioredis (the cluster's client). The figure behind docs/SCALING.md's
 * "sharded pub/sub is the design to try".
 *
 *   bun bench/redis-follow.ts [--rate 500] [--seconds 5] [--reps 2]
 *
 * One private redis-server; a writer runs a script much like CHAT (a seq, a stream entry naming it,
 * the post in a zset) that also PUBLISHes the post, at `rate` a second, so Redis does the same work
 * whichever way is measured. The follower is a process of its own (this file, `--follow MODE URL`),
 * whose CPU is read from /proc.
 */
import { RedisClient } from "bun";
import { Redis } from "ioredis";
import { RedisProcess } from "../test/redis/support/redis-server";
import { cpuSeconds } from "./processes";

const MODES = ["bun-xread", "bun-sub", "ioredis-xread", "ioredis-sub"] as const;
type Mode = (typeof MODES)[number];

/** Counts the posts it receives; prints the count when told to stop (SIGTERM). */
async function follow(mode: Mode, url: string): Promise<void> {
  let got = 0;
  process.on("SIGTERM", () => {
    console.log(String(got));
    process.exit(0);
  });
  // One client shape for both libraries: a command and its reply.
  const open = async (): Promise<(cmd: string, args: string[]) => Promise<unknown>> => {
    if (mode.startsWith("bun")) {
      const c = new RedisClient(url);
      await c.connect();
      return (cmd, args) => c.send(cmd, args);
    }
    const c = new Redis(url, { protocol: 3, replyMapping: "resp3" });
    return (cmd, args) => c.call(cmd, ...args);
  };
  if (mode.endsWith("sub")) {
    const onPost = (post: string) => {
      JSON.parse(post);
      got++;
    };
    if (mode === "bun-sub") {
      const c = new RedisClient(url);
      await c.connect();
      await c.subscribe("live", onPost);
    } else {
      const c = new Redis(url);
      c.on("message", (_channel: string, post: string) => onPost(post));
      await c.subscribe("live");
    }
    await new Promise(() => {});
  }
  const reader = await open();
  const fetcher = await open();
  let last = "$";
  for (;;) {
    const reply = await reader("XREAD", ["BLOCK", "5000", "STREAMS", "log", last]);
    if (!reply) continue;
    // RESP3: {log: entries} from Bun's client; ioredis's resp3 mapping gives [log, entries] pairs.
    const entries = (
      Array.isArray(reply) ? (reply as unknown[][])[0]?.[1] : (reply as Record<string, unknown>).log
    ) as Array<[string, string[]]>;
    last = (entries.at(-1) as [string, string[]])[0];
    const seqs = entries.map(([, fields]) => fields[fields.indexOf("s") + 1] as string);
    const posts = (await fetcher("ZRANGEBYSCORE", [
      "msgs",
      seqs[0] as string,
      seqs.at(-1) as string,
    ])) as string[];
    for (const post of posts) JSON.parse(post);
    got += posts.length;
  }
}

const CHAT = `local seq = redis.call('HINCRBY', 'meta', 'seq', 1)
redis.call('XADD', 'log', 'MAXLEN', '~', 10000, '*', 'k', 'c', 's', seq)
local post = ARGV[1] .. seq .. ARGV[2]
redis.call('ZADD', 'msgs', seq, post)
redis.call('PUBLISH', 'live', post)
return seq`;

function flag(name: string, fallback: number): number {
  const at = process.argv.indexOf(name);
  return at > 0 ? Number(process.argv[at + 1]) : fallback;
}

if (process.argv[2] === "--follow") {
  await follow(process.argv[3] as Mode, process.argv[4] as string);
} else {
  const rate = flag("--rate", 500);
  const seconds = flag("--seconds", 5);
  const reps = flag("--reps", 2);
  const redis = await RedisProcess.start();
  const writer = new RedisClient(redis.url);
  await writer.connect();
  const head = '{"type":"chat","room":"r","seq":';
  const tail = `,"nick":"ann","text":"${"x".repeat(64)}","sentAt":"2026-12-02T00:00:00.000Z"}`;
  const results = new Map<Mode, number[]>(MODES.map((m) => [m, []]));
  try {
    for (let rep = 0; rep < reps; rep++) {
      for (const mode of MODES) {
        const follower = Bun.spawn([process.execPath, import.meta.path, "--follow", mode, redis.url], {
          stdout: "pipe",
          stderr: "inherit",
        });
        await Bun.sleep(800);
        const cpu0 = cpuSeconds(follower.pid);
        const t0 = performance.now();
        let sent = 0;
        while (performance.now() - t0 < seconds * 1000) {
          const due = Math.floor(((performance.now() - t0) * rate) / 1000);
          for (; sent < due; sent++) writer.send("EVAL", [CHAT, "0", head, tail]);
          await Bun.sleep(2);
        }
        await Bun.sleep(300);
        const cpu = cpuSeconds(follower.pid) - cpu0;
        follower.kill("SIGTERM");
        const got = Number((await new Response(follower.stdout).text()).trim());
        if (got !== sent) throw new Error(`${mode}: ${got} of ${sent} posts followed`);
        results.get(mode)?.push((cpu * 1e6) / sent);
      }
    }
  } finally {
    writer.close();
    await redis.stop();
  }
  console.log(`| way of following (${rate} msg/s, one room) | follower CPU per message (µs), each run |`);
  console.log("|---|---|");
  for (const [mode, us] of results) console.log(`| ${mode} | ${us.map((u) => u.toFixed(0)).join(", ")} |`);
}
