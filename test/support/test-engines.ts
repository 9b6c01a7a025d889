/**
 * The engines a socket-level suite runs on: the local one, and Redis (a private redis-server for the
 * file) when `redis-server` is installed, in its plain layout and with its rooms spread over 4 hash
 * tags (the layout a cluster uses, key-space.ts), and on a private Redis Cluster of 3 primaries and 3
 * replicas when redis-cli can make one. Call at the top of a test file; it registers the hooks.
 */
import { afterAll, beforeAll } from "bun:test";
import { RedisCluster, redisClusterAvailable } from "../redis/support/redis-cluster";
import { RedisProcess, redisAvailable } from "../redis/support/redis-server";
import type { TestEngine } from "./test-server";

export function testEngines(): Array<[string, () => TestEngine]> {
  const engines: Array<[string, () => TestEngine]> = [["local", () => ({ kind: "local" })]];
  let redis: RedisProcess | undefined;
  let cluster: RedisCluster | undefined;
  if (redisAvailable()) {
    engines.push(["redis", () => ({ kind: "redis", url: (redis as RedisProcess).url })]);
    engines.push([
      "redis, 4 partitions",
      () => ({ kind: "redis", url: (redis as RedisProcess).url, partitions: 4 }),
    ]);
  }
  const withCluster = redisClusterAvailable();
  if (withCluster)
    engines.push(["redis cluster", () => ({ kind: "cluster", seeds: (cluster as RedisCluster).seedsEnv })]);
  beforeAll(async () => {
    if (redisAvailable()) redis = await RedisProcess.start();
    if (withCluster) cluster = await RedisCluster.start();
  }, 60_000);
  afterAll(async () => {
    await redis?.stop();
    await cluster?.stop();
  });
  return engines;
}
