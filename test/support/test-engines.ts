/**
 * The engines a socket-level suite runs on: the local one, and Redis (a private redis-server for the
 * file) when `redis-server` is installed, in its plain layout and with its rooms spread over 4 hash
 * tags (the layout a cluster uses, key-space.ts). Call at the top of a test file; it registers the hooks.
 */
import { afterAll, beforeAll } from "bun:test";
import { RedisProcess, redisAvailable } from "../redis/support/redis-server";
import type { TestEngine } from "./test-server";

export function testEngines(): Array<[string, () => TestEngine]> {
  const engines: Array<[string, () => TestEngine]> = [["local", () => ({ kind: "local" })]];
  let redis: RedisProcess | undefined;
  if (redisAvailable()) {
    engines.push(["redis", () => ({ kind: "redis", url: (redis as RedisProcess).url })]);
    engines.push([
      "redis, 4 partitions",
      () => ({ kind: "redis", url: (redis as RedisProcess).url, partitions: 4 }),
    ]);
  }
  beforeAll(async () => {
    if (engines.length > 1) redis = await RedisProcess.start();
  });
  afterAll(async () => {
    await redis?.stop();
  });
  return engines;
}
