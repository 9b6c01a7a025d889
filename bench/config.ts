/** What each mode runs: sizes, durations and repetitions, chosen to fit its time budget on 2 cores. */
import type { ServerName } from "./servers";

export type Mode = "full" | "quick" | "smoke";

export interface ThroughputConfig {
  name: string;
  clients: number;
  rooms: number;
  /** Messages each client keeps in flight (closed loop). */
  window: number;
  /** "light": clients on Bun's own WebSocket instead of the bench generator's bare client. */
  client?: "light";
  /** Open loop instead: this many messages a second in all, spread over every client (unsaturated). */
  pace?: number;
  /** Only these servers (the CPU-per-delivery targets compare ours with raw Bun only). */
  servers?: ServerName[];
}

/** Two of our processes sharing one Redis, against one process with Redis and one with SQLite. */
export interface ClusterConfig {
  /** Server processes in the scaled-out variant; clients are spread over them evenly. */
  processes: number;
  reps: number;
  throughput: ThroughputConfig;
  latency: { members: number; rate: number; senders: number; warmupMs: number; measureMs: number };
  warmupMs: number;
  measureMs: number;
  workers: number;
}

/** One shape of the Redis Cluster scenario: a closed-loop throughput load and a paced latency load. */
export interface RedisClusterShape {
  /** e.g. "1000 in 100 rooms": the throughput load's clients and rooms. */
  name: string;
  clients: number;
  rooms: number;
  /** Messages each client keeps in flight (closed loop). */
  window: number;
  /** Fan-out latency: `members` spread over `rooms`, `senders` of them sending `rate` msg/s in all. */
  latency: { members: number; rooms: number; rate: number; senders: number };
}

/**
 * Our processes on a private Redis Cluster against one process on one Redis, and the cost of
 * REDIS_MIN_REPLICAS=1 on that cluster (bench/scenarios/redis-cluster.ts).
 */
export interface RedisClusterConfig {
  /** Chat processes on the cluster; clients are spread over them evenly. */
  processes: number;
  primaries: number;
  replicasPerPrimary: number;
  /** Which deployments run (see redis-cluster.ts's VARIANT_LABELS). */
  variants: Array<"single" | "cluster" | "cluster-wait" | "cluster-1">;
  reps: number;
  shapes: RedisClusterShape[];
  warmupMs: number;
  measureMs: number;
  latencyWarmupMs: number;
  latencyMeasureMs: number;
  workers: number;
}

export interface Plan {
  mode: Mode;
  /** Repetitions of each scenario; the servers' order rotates from one to the next. */
  reps: number;
  /** Attempts at a throughput or latency measurement while other processes load the machine. */
  attempts: number;
  servers: ServerName[];
  /** Characters of each chat text (the stamp included). */
  textLength: number;
  throughput: {
    configs: ThroughputConfig[];
    warmupMs: number;
    measureMs: number;
    workers: number;
    /** `servers` plus variants only this scenario compares (ours with storage off). */
    servers: ServerName[];
  };
  latency: {
    members: number;
    rate: number;
    senders: number;
    warmupMs: number;
    measureMs: number;
    workers: number;
  };
  scale: {
    connections: number;
    perRoom: number;
    workers: number;
    /** Source addresses in 127.0.0.0/8 the connections are spread over. */
    sources: string[];
    /** Handshakes each generator process keeps pending during the join storm. */
    concurrency: number;
    servers: ServerName[];
    reps: number;
  };
  resume: { clients: number; rooms: number; missed: number; servers: ServerName[] };
  http: {
    routes: string[];
    connections: number;
    seconds: number;
    servers: ServerName[];
    idleClients: number;
  };
  cluster: ClusterConfig;
  redisCluster: RedisClusterConfig;
}

const ALL: ServerName[] = ["ours", "raw-bun", "node-ws", "socket.io"];
const SOURCES = ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"];
const ROUTES = ["/healthz", "/api/rooms", "/"];

/** Server CPU per delivery against raw Bun with a light client and when nobody is saturated. */
const CPU_CHECKS: ThroughputConfig[] = (
  [
    { name: "32 in 1 room, light client", clients: 32, rooms: 1, window: 4, client: "light" },
    { name: "1000 in 100 rooms, light client", clients: 1000, rooms: 100, window: 2, client: "light" },
    { name: "32 in 1 room, paced 5,000 msg/s", clients: 32, rooms: 1, window: 0, pace: 5000 },
    { name: "1000 in 100 rooms, paced 10,000 msg/s", clients: 1000, rooms: 100, window: 0, pace: 10_000 },
  ] satisfies ThroughputConfig[]
).map((c): ThroughputConfig => ({ ...c, servers: ["ours", "raw-bun"] }));

const FULL: Plan = {
  mode: "full",
  reps: 3,
  attempts: 3,
  servers: ALL,
  textLength: 64,
  throughput: {
    configs: [
      { name: "16 in 1 room", clients: 16, rooms: 1, window: 8 },
      { name: "32 in 1 room", clients: 32, rooms: 1, window: 4 },
      { name: "64 in 1 room", clients: 64, rooms: 1, window: 4 },
      { name: "1000 in 100 rooms", clients: 1000, rooms: 100, window: 2 },
      ...CPU_CHECKS,
    ],
    warmupMs: 700,
    measureMs: 2000,
    workers: 1,
    servers: [...ALL, "ours-memory"],
  },
  latency: { members: 1000, rate: 100, senders: 10, warmupMs: 1000, measureMs: 4000, workers: 1 },
  scale: {
    connections: 19_500,
    perRoom: 100,
    workers: 4,
    sources: SOURCES,
    concurrency: 128,
    servers: ALL,
    reps: 3,
  },
  resume: { clients: 1000, rooms: 10, missed: 100, servers: ["ours", "node-ws"] },
  http: { routes: ROUTES, connections: 32, seconds: 2, servers: ["ours", "raw-bun"], idleClients: 1000 },
  cluster: {
    processes: 2,
    reps: 3,
    // 16 in flight per client, not 4 as in scenario 1: each chat makes a round trip through Redis
    // before it is delivered, so a closed loop needs more in flight to keep the processes busy.
    throughput: { name: "32 in 1 room", clients: 32, rooms: 1, window: 16 },
    latency: { members: 200, rate: 100, senders: 10, warmupMs: 1000, measureMs: 3000 },
    warmupMs: 700,
    measureMs: 2000,
    workers: 1,
  },
  redisCluster: {
    processes: 3,
    primaries: 3,
    replicasPerPrimary: 1,
    variants: ["single", "cluster", "cluster-wait", "cluster-1"],
    reps: 3,
    shapes: [
      // Many rooms: spread over the 16 partitions, so over every primary; one sender per room when paced.
      {
        name: "1000 in 100 rooms",
        clients: 1000,
        rooms: 100,
        window: 2,
        latency: { members: 1000, rooms: 100, rate: 500, senders: 100 },
      },
      // One room: one partition, so one primary, read by every process.
      {
        name: "32 in 1 room",
        clients: 32,
        rooms: 1,
        window: 16,
        latency: { members: 200, rooms: 1, rate: 100, senders: 10 },
      },
    ],
    warmupMs: 700,
    measureMs: 2000,
    latencyWarmupMs: 1000,
    latencyMeasureMs: 3000,
    workers: 1,
  },
};

const QUICK: Plan = {
  ...FULL,
  mode: "quick",
  reps: 1,
  attempts: 2,
  throughput: {
    ...FULL.throughput,
    // 32 in one room is the headline figure (ours with storage on vs off); 1000 in 100 rooms the other shape.
    configs: FULL.throughput.configs.filter((c) => c.clients === 32 || c.rooms > 1),
    warmupMs: 300,
    measureMs: 1000,
  },
  latency: { ...FULL.latency, warmupMs: 500, measureMs: 2000 },
  scale: { ...FULL.scale, connections: 2000, workers: 2, servers: ["ours", "raw-bun"], reps: 1 },
  resume: { ...FULL.resume, clients: 200, rooms: 2 },
  http: { ...FULL.http, seconds: 1 },
  cluster: {
    ...FULL.cluster,
    reps: 1,
    latency: { ...FULL.cluster.latency, warmupMs: 500, measureMs: 1500 },
    warmupMs: 300,
    measureMs: 1000,
  },
  redisCluster: {
    ...FULL.redisCluster,
    // 1 process on the cluster (what the cluster costs without more processes) in full runs only.
    variants: ["single", "cluster", "cluster-wait"],
    reps: 1,
    warmupMs: 300,
    measureMs: 1000,
    latencyWarmupMs: 500,
    latencyMeasureMs: 1500,
  },
};

const SMOKE: Plan = {
  ...FULL,
  mode: "smoke",
  reps: 1,
  attempts: 1,
  throughput: {
    configs: [{ name: "16 in 1 room", clients: 16, rooms: 1, window: 2 }],
    warmupMs: 100,
    measureMs: 300,
    workers: 1,
    servers: [...ALL, "ours-memory"],
  },
  latency: { members: 50, rate: 50, senders: 5, warmupMs: 100, measureMs: 500, workers: 1 },
  scale: {
    ...FULL.scale,
    connections: 100,
    workers: 2,
    concurrency: 50,
    servers: ["ours", "raw-bun"],
    reps: 1,
  },
  resume: { clients: 20, rooms: 2, missed: 10, servers: ["ours"] },
  http: { routes: ["/healthz"], connections: 4, seconds: 1, servers: ["ours", "raw-bun"], idleClients: 10 },
  cluster: {
    processes: 2,
    reps: 1,
    throughput: { name: "16 in 1 room", clients: 16, rooms: 1, window: 2 },
    latency: { members: 20, rate: 50, senders: 4, warmupMs: 100, measureMs: 300 },
    warmupMs: 100,
    measureMs: 300,
    workers: 1,
  },
  redisCluster: {
    processes: 3,
    primaries: 3,
    replicasPerPrimary: 1,
    variants: ["single", "cluster", "cluster-wait"],
    reps: 1,
    shapes: [
      {
        name: "100 in 10 rooms",
        clients: 100,
        rooms: 10,
        window: 2,
        latency: { members: 100, rooms: 10, rate: 100, senders: 10 },
      },
      {
        name: "16 in 1 room",
        clients: 16,
        rooms: 1,
        window: 4,
        latency: { members: 20, rooms: 1, rate: 50, senders: 4 },
      },
    ],
    warmupMs: 100,
    measureMs: 300,
    latencyWarmupMs: 100,
    latencyMeasureMs: 300,
    workers: 1,
  },
};

export const PLANS: Record<Mode, Plan> = { full: FULL, quick: QUICK, smoke: SMOKE };
