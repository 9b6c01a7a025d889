/** The hubs a model test drives: one over the local engine, or two "processes" sharing a redis-server. */
import { afterAll, beforeAll } from "bun:test";
import type { ChatHub } from "../../server/chat/hub";
import { RedisCluster, redisClusterAvailable } from "../redis/support/redis-cluster";
import { RedisProcess, redisAvailable } from "../redis/support/redis-server";
import { FakeNet } from "./fake-net";
import { localHub, redisHub } from "./hubs";

/** Model runs send fast: no rate limits. */
const UNLIMITED = { rateLimit: 0, controlRate: 0, frameRate: 0 };

let redis: RedisProcess | undefined;

/** Starts a private redis-server for the file's model runs over Redis (if installed); true when there is one. */
export function redisForModels(): boolean {
  const available = redisAvailable();
  beforeAll(async () => {
    if (available) redis = await RedisProcess.start();
  });
  afterAll(async () => {
    await redis?.stop();
  });
  return available;
}

/** The hubs under test, each a process on its own network: one over the local engine, or two sharing a Redis. */
export interface System {
  hubs: ChatHub[];
  nets: FakeNet[];
  settle(): Promise<void>;
}

export function overLocal(): System {
  const net = new FakeNet();
  const hub = localHub({ fanout: net, limits: UNLIMITED });
  return {
    hubs: [hub],
    nets: [net],
    async settle() {
      for (let i = 0; i < 4; i++) hub.flush();
    },
  };
}

let cluster: RedisCluster | undefined;

/** Starts a private Redis Cluster (3 primaries, 3 replicas) for the file's model runs on it; true when there is one. */
export function clusterForModels(): boolean {
  const available = redisClusterAvailable();
  beforeAll(async () => {
    if (available) cluster = await RedisCluster.start();
  }, 60_000);
  afterAll(async () => {
    await cluster?.stop();
  });
  return available;
}

let runs = 0;
/** Two processes sharing a Redis (`onCluster`: the file's Redis Cluster instead). */
export async function overRedis(broken = false, onCluster = false): Promise<System> {
  const prefix = `v2model${++runs}:`;
  const nets = [new FakeNet(), new FakeNet()];
  const hubs = nets.map((fanout, i) =>
    redisHub({
      url: onCluster ? "" : (redis as RedisProcess).url,
      cluster: onCluster ? (cluster as RedisCluster).startupNodes : undefined,
      prefix: broken && i === 1 ? `${prefix}x:` : prefix,
      fanout,
      limits: UNLIMITED,
    }),
  );
  await Promise.all(hubs.map((h) => h.ready));
  return {
    hubs,
    nets,
    async settle() {
      for (let round = 0; round < 3; round++) for (const hub of hubs) await hub.quiesce();
    },
  };
}

/** Runs `body` on a fresh system, then shuts its hubs down whatever happened. */
export async function onSystem(
  make: () => System | Promise<System>,
  body: (sys: System) => Promise<void>,
): Promise<void> {
  const sys = await make();
  try {
    await body(sys);
  } finally {
    for (const h of sys.hubs) h.shutdown();
    await Promise.all(sys.hubs.map((h) => h.stop()));
  }
}
