/**
 * The Redis link's timeouts against a frozen redis-server (SIGSTOP): a command fails within the
 * timeout, what follows fails at once without being sent, a link overdue for long reconnects, and
 * it answers again (telling its listeners) once Redis does.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "bun:test";
import { RedisLink, RedisTimeout, RedisUnavailable } from "../../server/engines/redis/redis-link";
import { sleep } from "../support/timing";
import { RedisProcess, redisAvailable } from "./support/redis-server";

const available = redisAvailable();
let redis: RedisProcess;

beforeAll(async () => {
  if (available) redis = await RedisProcess.start();
});

afterAll(async () => {
  await redis?.stop();
});

/** What a promise settled with, and after how long. */
async function outcome(p: Promise<unknown>): Promise<{ value?: unknown; error?: string; ms: number }> {
  const start = Date.now();
  try {
    return { value: await p, ms: Date.now() - start };
  } catch (err) {
    return { error: (err as Error).name, ms: Date.now() - start };
  }
}

describe.skipIf(!available)("the Redis link", () => {
  afterEach(() => redis?.unpause());

  it("fails a command within the timeout while Redis hangs, then the next ones at once, and recovers", async () => {
    const link = new RedisLink({ url: redis.url, timeoutMs: 200 });
    await link.connect();
    let recovered = 0;
    link.onRecovered(() => recovered++);
    expect(await link.send("SET", ["k", "before"])).toBe("OK");

    redis.pause();
    const call = link.call("SET", ["k", "during"]);
    const first = await outcome(call.reply);
    expect(first.error).toBe(RedisTimeout.name);
    expect(first.ms).toBeGreaterThanOrEqual(190);
    expect(first.ms).toBeLessThan(700);
    const next = link.call("SET", ["k", "refused"]);
    expect(next.late).toBeUndefined();
    const refused = await outcome(next.reply);
    expect(refused.error).toBe(RedisUnavailable.name);
    expect(refused.ms).toBeLessThan(50);
    expect(link.unhealthy).toBe(true);

    redis.unpause();
    // The command that timed out still ran, late: its answer comes on `late`.
    expect(await call.late).toBe("OK");
    expect(await link.send("GET", ["k"])).toBe("during");
    expect(link.unhealthy).toBe(false);
    expect(recovered).toBe(1);
    link.close();
  });

  it("drops a connection that stays silent for `reconnectAfter` timeouts and opens another", async () => {
    const link = new RedisLink({ url: redis.url, timeoutMs: 100, reconnectAfter: 3 });
    await link.connect();
    redis.pause();
    const hung = link.call("PING", []);
    expect((await outcome(hung.reply)).error).toBe(RedisTimeout.name);
    await sleep(400);
    // Overdue past 3 timeouts: this refusal starts a reconnect, which drops the hung command.
    expect((await outcome(link.send("PING", []))).error).toBe(RedisUnavailable.name);
    expect((await outcome(hung.late as Promise<unknown>)).error).toBeDefined();
    redis.unpause();
    let answered: unknown;
    for (let i = 0; i < 50 && answered === undefined; i++) {
      answered = await link.send("PING", []).catch(() => undefined);
      if (answered === undefined) await sleep(50);
    }
    expect(answered).toBe("PONG");
    link.close();
  });
});
