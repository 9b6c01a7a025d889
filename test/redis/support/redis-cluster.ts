/**
 * A private Redis Cluster per test file: `primaries * (1 + replicasPerPrimary)` redis-server processes with
 * `--cluster-enabled yes` on free loopback ports, each in its own temporary directory (its nodes.conf, its
 * log), joined by `redis-cli --cluster create`, killed and removed by `stop()`.
 *
 * Every change (start, failover, slot moves, restarts) waits until the cluster is *settled*: every live node
 * says `cluster_state:ok` with all 16384 slots ok, every live node has the same slot -> primary map, no slot is
 * half-migrated, no live node is flagged as failed by another, and every live replica is online at its
 * primary. Waits poll with deadlines; a timeout's error carries what the nodes said and their logs' tails.
 *
 * Settings chosen for tests (2 shared cores):
 * - `cluster-node-timeout` 1000 ms by default: a killed primary is failed over in about 2 s.
 * - `cluster-require-full-coverage no`: while a primary is down, only its own slots fail (CLUSTERDOWN); the
 *   other shards keep answering. With `yes` every node refuses every command from the moment the dead primary
 *   is flagged FAIL until its replica is promoted, so a test of one shard's failover would see the whole
 *   cluster go down, which is neither what a test wants to isolate nor what a deployment should run with.
 *   Because of it `cluster_state:ok` alone does not mean the slots are served: settling checks
 *   `cluster_slots_ok:16384` as well.
 * - `cluster-replica-validity-factor 0`: a replica always stands for election, however long since it last
 *   heard from its primary (a paused or slow test machine must not leave a shard without a primary).
 * - `repl-diskless-sync-delay 0`: a replica's first full sync starts at once (the default waits 5 s).
 * - `cluster-port` set explicitly to a free port, because the default bus port (port + 10000) can be above
 *   65535 or taken for a port picked from the ephemeral range.
 */

import { existsSync } from "node:fs";
import { RedisClient } from "bun";
import { freePort, HOST, RedisProcess, redisAvailable } from "./redis-server";

export const REDIS_CLI_BIN = process.env.REDIS_CLI_BIN ?? "/usr/bin/redis-cli";
export const SLOTS = 16384;

/** True when the cluster tests can run (redis-server and redis-cli); throws under CI where skipping is not allowed. */
export function redisClusterAvailable(): boolean {
  if (!redisAvailable()) return false;
  if (existsSync(REDIS_CLI_BIN)) return true;
  if (process.env.CI)
    throw new Error(`${REDIS_CLI_BIN} is missing and CI is set: the Redis Cluster tests cannot be skipped`);
  console.warn(
    `skipping the Redis Cluster tests: ${REDIS_CLI_BIN} is not installed (apt-get install redis-tools)`,
  );
  return false;
}

export interface ClusterOptions {
  primaries?: number;
  replicasPerPrimary?: number;
  /** `appendonly yes` with `appendfsync always` on every node. */
  appendonly?: boolean;
  /** `cluster-node-timeout`: how long a silent node takes to be flagged as failing. */
  nodeTimeoutMs?: number;
  /** `cluster-require-full-coverage`; false by default (see the file's comment). */
  requireFullCoverage?: boolean;
  /** Deadline for forming the cluster and for each later settling wait. */
  timeoutMs?: number;
}

/** One node as the cluster sees it (parsed from CLUSTER NODES). */
export interface ClusterNode {
  id: string;
  host: string;
  port: number;
  /** `host:port`, the form of a seed and of ioredis's node keys. */
  address: string;
  role: "primary" | "replica";
  /** For a replica, the id of its primary. */
  primaryId: string | null;
  /** Flagged `fail` or `fail?` by the node that was asked. */
  failing: boolean;
  /** Inclusive slot ranges owned (primaries only). */
  slots: Array<[number, number]>;
  /** Slots this node is migrating to (`to`) or importing from (`from`) another node id. */
  migrating: Array<{ slot: number; to: string }>;
  importing: Array<{ slot: number; from: string }>;
}

/** The answer of a failover: the replica promoted in place of the killed primary and how long it took. */
export interface Failover {
  killed: ClusterNode;
  promoted: ClusterNode;
  /** `Date.now()` when the primary was killed. */
  killedAt: number;
  /** From SIGKILL to a settled cluster (every node agrees the replica owns the slots). */
  ms: number;
}

/** Runs a command on one node of a cluster; no redirections are followed (what a test wants to see). */
export async function nodeCommand(port: number, command: string, args: string[] = []): Promise<unknown> {
  const client = new RedisClient(`redis://${HOST}:${port}`, {
    autoReconnect: false,
    connectionTimeout: 1000,
  });
  try {
    return await withTimeout(
      client.send(command, args),
      5000,
      `${command} ${args.join(" ")} on port ${port}`,
    );
  } finally {
    client.close();
  }
}

/** Splits `key:value` lines (CLUSTER INFO, INFO sections) into a record. */
export function infoFields(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    const colon = line.indexOf(":");
    if (colon > 0 && !line.startsWith("#")) out[line.slice(0, colon)] = line.slice(colon + 1);
  }
  return out;
}

/** Parses CLUSTER NODES. */
export function parseClusterNodes(text: string): ClusterNode[] {
  const nodes: ClusterNode[] = [];
  for (const line of text.split("\n")) {
    const fields = line.trim().split(" ");
    if (fields.length < 8) continue;
    const [id = "", addressField = "", flagsField = "", primary = "-"] = fields;
    const hostPort = addressField.split("@")[0] ?? "";
    const colon = hostPort.lastIndexOf(":");
    const host = hostPort.slice(0, colon) || HOST;
    const port = Number(hostPort.slice(colon + 1));
    const flags = flagsField.split(",");
    const node: ClusterNode = {
      id,
      host,
      port,
      address: `${host}:${port}`,
      role: flags.includes("master") ? "primary" : "replica",
      primaryId: primary === "-" ? null : primary,
      failing: flags.includes("fail") || flags.includes("fail?"),
      slots: [],
      migrating: [],
      importing: [],
    };
    for (const token of fields.slice(8)) {
      const migrating = /^\[(\d+)->-(\w+)\]$/.exec(token);
      const importing = /^\[(\d+)-<-(\w+)\]$/.exec(token);
      if (migrating) node.migrating.push({ slot: Number(migrating[1]), to: migrating[2] ?? "" });
      else if (importing) node.importing.push({ slot: Number(importing[1]), from: importing[2] ?? "" });
      else {
        const [start, end] = token.split("-").map(Number);
        if (start !== undefined && Number.isInteger(start)) node.slots.push([start, end ?? start]);
      }
    }
    nodes.push(node);
  }
  return nodes.sort((a, b) => a.port - b.port);
}

export function ownsSlot(node: ClusterNode, slot: number): boolean {
  return node.slots.some(([start, end]) => slot >= start && slot <= end);
}

export function slotCount(node: ClusterNode): number {
  return node.slots.reduce((sum, [start, end]) => sum + end - start + 1, 0);
}

/**
 * A cluster node: a redis-server with the settings of the file's comment and its own bus port. Its
 * nodes.conf stays in its directory, so a restarted node rejoins as what the cluster says it is.
 */
function clusterNode(port: number, busPort: number, options: NodeOptions): RedisProcess {
  return new RedisProcess(port, {
    appendonly: options.appendonly,
    dirPrefix: "chat-redis-cluster-",
    extra: [
      "--cluster-enabled",
      "yes",
      "--cluster-config-file",
      "nodes.conf",
      "--cluster-port",
      String(busPort),
      "--cluster-node-timeout",
      String(options.nodeTimeoutMs),
      "--cluster-require-full-coverage",
      options.requireFullCoverage ? "yes" : "no",
      "--cluster-replica-validity-factor",
      "0",
      "--repl-diskless-sync-delay",
      "0",
    ],
  });
}

type NodeOptions = Required<Omit<ClusterOptions, "primaries" | "replicasPerPrimary" | "timeoutMs">>;

/** Every cluster started and not stopped, killed if the test process exits without `stop()`. */
const running = new Set<RedisCluster>();
process.on("exit", () => {
  for (const cluster of running) cluster.killNow();
});

export class RedisCluster {
  private constructor(
    private readonly processes: RedisProcess[],
    private readonly timeoutMs: number,
  ) {}

  /** Starts the servers, creates the cluster and waits until it is settled. */
  static async start(options: ClusterOptions = {}): Promise<RedisCluster> {
    const primaries = options.primaries ?? 3;
    const replicas = options.replicasPerPrimary ?? 1;
    if (primaries < 3) throw new Error("redis-cli --cluster create needs at least 3 primaries");
    const count = primaries * (1 + replicas);
    const ports = await distinctFreePorts(count * 2);
    const nodeOptions: NodeOptions = {
      appendonly: options.appendonly ?? false,
      nodeTimeoutMs: options.nodeTimeoutMs ?? 1000,
      requireFullCoverage: options.requireFullCoverage ?? false,
    };
    const processes = Array.from({ length: count }, (_, i) =>
      clusterNode(ports[i] as number, ports[count + i] as number, nodeOptions),
    );
    const cluster = new RedisCluster(processes, options.timeoutMs ?? 30_000);
    running.add(cluster);
    try {
      await Promise.all(processes.map((p) => p.resume()));
      await cluster.redisCli(
        [
          "--cluster",
          "create",
          ...processes.map((p) => p.address),
          "--cluster-replicas",
          String(replicas),
          "--cluster-yes",
        ],
        60_000,
      );
      await cluster.settle("the new cluster", (nodes) => {
        const roles = nodes.filter((n) => n.role === "primary").length;
        return roles === primaries ? null : `${roles} primaries, expected ${primaries}`;
      });
      return cluster;
    } catch (error) {
      await cluster.stop();
      throw error;
    }
  }

  /** `host:port` of every node started (dead ones included): the form of REDIS_CLUSTER's items. */
  get seeds(): string[] {
    return this.processes.map((p) => p.address);
  }

  /** The value for `REDIS_CLUSTER=host:port,...`. */
  get seedsEnv(): string {
    return this.seeds.join(",");
  }

  /** The seeds as ioredis's `new Cluster(startupNodes)` takes them. */
  get startupNodes(): Array<{ host: string; port: number }> {
    return this.processes.map((p) => ({ host: HOST, port: p.port }));
  }

  /** Ports of the processes running now. */
  get livePorts(): number[] {
    return this.processes.filter((p) => p.alive).map((p) => p.port);
  }

  /** The cluster's nodes as a live node sees them (dead nodes are listed with `failing` once detected). */
  async nodes(): Promise<ClusterNode[]> {
    let lastError: unknown;
    for (const port of this.livePorts) {
      try {
        return parseClusterNodes(String(await nodeCommand(port, "CLUSTER", ["NODES"])));
      } catch (error) {
        lastError = error;
      }
    }
    throw new Error(`no live node answered CLUSTER NODES: ${lastError}`);
  }

  async primaries(): Promise<ClusterNode[]> {
    return (await this.nodes()).filter((n) => n.role === "primary" && slotCount(n) > 0);
  }

  async replicas(): Promise<ClusterNode[]> {
    return (await this.nodes()).filter((n) => n.role === "replica");
  }

  async node(idOrPort: string | number): Promise<ClusterNode> {
    const node = (await this.nodes()).find((n) => n.id === idOrPort || n.port === idOrPort);
    if (!node) throw new Error(`no cluster node ${idOrPort}`);
    return node;
  }

  /** CLUSTER KEYSLOT, asked of a live node. */
  async keySlot(key: string): Promise<number> {
    return Number(await nodeCommand(this.anyLivePort(), "CLUSTER", ["KEYSLOT", key]));
  }

  /** The primary owning the slot of `key`. */
  async primaryFor(key: string): Promise<ClusterNode> {
    return this.primaryForSlot(await this.keySlot(key));
  }

  async primaryForSlot(slot: number): Promise<ClusterNode> {
    const owner = (await this.primaries()).find((n) => ownsSlot(n, slot));
    if (!owner) throw new Error(`no primary owns slot ${slot}`);
    return owner;
  }

  /** Runs a command on the node at `port` (no redirection followed). */
  command(port: number, command: string, args: string[] = []): Promise<unknown> {
    return nodeCommand(port, command, args);
  }

  /** SIGKILLs the primary at `port` and waits for its replica to be promoted and the cluster to settle. */
  async killPrimary(port: number): Promise<Failover> {
    const killed = await this.node(port);
    if (killed.role !== "primary" || slotCount(killed) === 0)
      throw new Error(
        `port ${port} is not a primary with slots (${killed.role}, ${slotCount(killed)} slots)`,
      );
    const started = Date.now();
    await this.process(port).kill();
    return this.waitForFailover(killed, started);
  }

  /** Waits until every live node agrees that a replica of `killed` owns its slots and the cluster is settled. */
  async waitForFailover(killed: ClusterNode, since = Date.now()): Promise<Failover> {
    const slot = killed.slots[0]?.[0] ?? 0;
    let promoted: ClusterNode | undefined;
    await this.settle(`the failover of ${killed.address}`, (nodes) => {
      promoted = nodes.find((n) => n.role === "primary" && ownsSlot(n, slot));
      if (!promoted || promoted.id === killed.id) return `slot ${slot} is still owned by ${killed.address}`;
      return null;
    });
    return { killed, promoted: promoted as ClusterNode, killedAt: since, ms: Date.now() - since };
  }

  /** SIGKILLs any node without waiting for anything. */
  async kill(port: number): Promise<void> {
    await this.process(port).kill();
  }

  /** Restarts a killed node with its nodes.conf; a former primary comes back as a replica of its successor. */
  async restart(port: number): Promise<ClusterNode> {
    await this.process(port).resume();
    await this.settle(`the restart of ${HOST}:${port}`, (nodes) => {
      const node = nodes.find((n) => n.port === port);
      if (!node || node.failing) return `${HOST}:${port} is not back in the cluster`;
      // A primary whose replica took over comes back as a primary of no slots, and turns into a
      // replica only once it has heard of the failover.
      if (node.role === "primary" && node.slots.length === 0) return `${HOST}:${port} is not a replica yet`;
      return null;
    });
    return this.node(port);
  }

  /** Freezes a node (SIGSTOP): its connections stay open, it answers nothing until `unpause`. */
  pause(port: number): void {
    this.process(port).pause();
  }

  unpause(port: number): void {
    this.process(port).unpause();
  }

  /** Moves `slots` slots from one primary to another with `redis-cli --cluster reshard`, keys included. */
  async reshard({ from, to, slots }: { from: string; to: string; slots: number }): Promise<void> {
    await this.redisCli(
      [
        "--cluster",
        "reshard",
        `${HOST}:${this.anyLivePort()}`,
        "--cluster-from",
        from,
        "--cluster-to",
        to,
        "--cluster-slots",
        String(slots),
        "--cluster-yes",
      ],
      60_000,
    );
    await this.settle(`the reshard of ${slots} slots from ${from} to ${to}`);
  }

  /** Moves one slot, with its keys, to the primary `toNodeId`; waits until every node agrees. */
  async moveSlot(slot: number, toNodeId: string): Promise<void> {
    const migration = await this.beginSlotMigration(slot, toNodeId);
    await migration.migrateKeys();
    await migration.finish();
  }

  /**
   * Starts moving a slot (IMPORTING on the target, then MIGRATING on the owner) and hands back the steps
   * left, so a test can act while the slot is half-moved: keys already migrated are answered by the owner
   * with `ASK slot host:port`, as are keys that exist on neither.
   */
  async beginSlotMigration(slot: number, toNodeId: string): Promise<SlotMigration> {
    const from = await this.primaryForSlot(slot);
    const to = await this.node(toNodeId);
    if (to.role !== "primary") throw new Error(`${to.address} is not a primary`);
    if (from.id === to.id) throw new Error(`slot ${slot} is already on ${to.address}`);
    await nodeCommand(to.port, "CLUSTER", ["SETSLOT", String(slot), "IMPORTING", from.id]);
    await nodeCommand(from.port, "CLUSTER", ["SETSLOT", String(slot), "MIGRATING", to.id]);
    return new SlotMigration(this, slot, from, to);
  }

  /**
   * Polls until the cluster is settled (see the file's comment) and `check` (given the first live node's
   * view) returns null; on timeout throws with the last reason, every node's view and log tails.
   */
  async settle(what: string, check: (nodes: ClusterNode[]) => string | null = () => null): Promise<void> {
    const deadline = Date.now() + this.timeoutMs;
    let reason = "";
    for (;;) {
      try {
        reason = (await this.unsettled()) ?? check(await this.nodes()) ?? "";
        if (!reason) return;
      } catch (error) {
        reason = String(error);
      }
      if (Date.now() > deadline) {
        throw new Error(
          `${what}: not settled within ${this.timeoutMs} ms: ${reason}\n${await this.report()}`,
        );
      }
      await Bun.sleep(50);
    }
  }

  /** Why the cluster is not settled, or null when it is. */
  private async unsettled(): Promise<string | null> {
    const live = this.processes.filter((p) => p.alive);
    const views = await Promise.all(
      live.map(async (p) => ({
        port: p.port,
        info: infoFields(String(await nodeCommand(p.port, "CLUSTER", ["INFO"]))),
        nodes: parseClusterNodes(String(await nodeCommand(p.port, "CLUSTER", ["NODES"]))),
      })),
    );
    const liveIds = new Set<string>();
    for (const view of views) {
      const self = view.nodes.find((n) => n.port === view.port);
      if (self) liveIds.add(self.id);
    }
    let reference: string | undefined;
    for (const view of views) {
      const at = `${HOST}:${view.port}`;
      if (view.info.cluster_state !== "ok") return `${at} says cluster_state:${view.info.cluster_state}`;
      if (view.info.cluster_slots_ok !== String(SLOTS))
        return `${at} says cluster_slots_ok:${view.info.cluster_slots_ok}`;
      if (view.nodes.length < live.length)
        return `${at} knows ${view.nodes.length} of ${live.length} live nodes`;
      for (const node of view.nodes) {
        if (node.migrating.length || node.importing.length)
          return `${at} sees slots in migration on ${node.address}`;
        if (liveIds.has(node.id) && node.failing) return `${at} flags live ${node.address} as failing`;
      }
      const map = slotMap(view.nodes);
      if (reference === undefined) reference = map;
      else if (map !== reference) return `${at} disagrees on the slots: ${map} vs ${reference}`;
    }
    // Every live replica is online at its primary (so WAIT counts it).
    for (const view of views) {
      const self = view.nodes.find((n) => n.port === view.port);
      if (self?.role !== "replica") continue;
      const replication = infoFields(String(await nodeCommand(view.port, "INFO", ["replication"])));
      if (replication.master_link_status !== "up")
        return `replica ${self.address} has master_link_status:${replication.master_link_status}`;
      const primary = views[0]?.nodes.find((n) => n.id === self.primaryId);
      if (!primary) return `replica ${self.address} has an unknown primary ${self.primaryId}`;
      const primaryInfo = String(await nodeCommand(primary.port, "INFO", ["replication"]));
      if (!primaryInfo.includes(`port=${view.port},state=online`))
        return `replica ${self.address} is not online at ${primary.address}`;
    }
    return null;
  }

  /** Every live node's CLUSTER INFO state and CLUSTER NODES, and the logs' tails, for error messages. */
  async report(): Promise<string> {
    const parts: string[] = [];
    for (const p of this.processes) {
      if (!p.alive) {
        parts.push(`=== ${p.address}: killed ===\n${p.logTail(5)}`);
        continue;
      }
      try {
        const info = infoFields(String(await nodeCommand(p.port, "CLUSTER", ["INFO"])));
        const nodes = String(await nodeCommand(p.port, "CLUSTER", ["NODES"]));
        parts.push(
          `=== ${p.address}: cluster_state:${info.cluster_state} slots_ok:${info.cluster_slots_ok} ===\n${nodes}${p.logTail()}`,
        );
      } catch (error) {
        parts.push(`=== ${p.address}: ${error} ===\n${p.logTail()}`);
      }
    }
    return parts.join("\n");
  }

  /** Runs redis-cli; throws with its output when it fails or does not end within `timeoutMs`. */
  async redisCli(args: string[], timeoutMs: number): Promise<string> {
    const proc = Bun.spawn([REDIS_CLI_BIN, ...args], { stdout: "pipe", stderr: "pipe", stdin: "ignore" });
    const timer = setTimeout(() => proc.kill(9), timeoutMs);
    const [stdout, stderr, code] = await Promise.all([
      new Response(proc.stdout).text(),
      new Response(proc.stderr).text(),
      proc.exited,
    ]);
    clearTimeout(timer);
    // redis-cli --cluster prints [ERR] lines and may still exit 0 in some versions.
    if (code !== 0 || /^\[ERR\]/m.test(stdout)) {
      throw new Error(
        `redis-cli ${args.join(" ")} failed (exit ${code}${proc.signalCode ? `, ${proc.signalCode} after ${timeoutMs} ms` : ""})\n` +
          `${stdout}${stderr}\n${await this.report()}`,
      );
    }
    return stdout;
  }

  /** Kills every node and removes their directories. */
  async stop(): Promise<void> {
    running.delete(this);
    await Promise.all(this.processes.map((p) => p.stop()));
  }

  /** SIGKILLs every node synchronously (the exit hook's last resort). */
  killNow(): void {
    for (const p of this.processes) {
      p.unpause();
      p.killNow();
    }
  }

  private process(port: number): RedisProcess {
    const p = this.processes.find((candidate) => candidate.port === port);
    if (!p) throw new Error(`no node of this cluster on port ${port}`);
    return p;
  }

  private anyLivePort(): number {
    const port = this.livePorts[0];
    if (port === undefined) throw new Error("no node of the cluster is running");
    return port;
  }
}

/** A slot half-moved by `beginSlotMigration`: migrate its keys (some or all), then `finish`. */
export class SlotMigration {
  constructor(
    private readonly cluster: RedisCluster,
    readonly slot: number,
    readonly from: ClusterNode,
    readonly to: ClusterNode,
  ) {}

  /** MIGRATEs the given keys, or every key left in the slot, from the owner to the target. */
  async migrateKeys(keys?: string[]): Promise<number> {
    let moved = 0;
    for (;;) {
      const batch =
        keys ??
        ((await this.cluster.command(this.from.port, "CLUSTER", [
          "GETKEYSINSLOT",
          String(this.slot),
          "100",
        ])) as string[] | null) ??
        [];
      if (batch.length === 0) return moved;
      const reply = await this.cluster.command(this.from.port, "MIGRATE", [
        this.to.host,
        String(this.to.port),
        "",
        "0",
        "5000",
        "KEYS",
        ...batch,
      ]);
      if (reply !== "OK" && reply !== "NOKEY")
        throw new Error(`MIGRATE of slot ${this.slot} answered ${reply}`);
      moved += batch.length;
      if (keys) return moved;
    }
  }

  /**
   * Migrates the keys left, assigns the slot to the target (target first, then the former owner, then every
   * other primary) and waits until every node agrees.
   */
  async finish(): Promise<void> {
    await this.migrateKeys();
    const args = ["SETSLOT", String(this.slot), "NODE", this.to.id];
    await this.cluster.command(this.to.port, "CLUSTER", args);
    await this.cluster.command(this.from.port, "CLUSTER", args);
    for (const primary of await this.cluster.primaries()) {
      if (primary.id !== this.to.id && primary.id !== this.from.id)
        await this.cluster.command(primary.port, "CLUSTER", args);
    }
    await this.cluster.settle(`the move of slot ${this.slot} to ${this.to.address}`, (nodes) =>
      nodes.some((n) => n.id === this.to.id && ownsSlot(n, this.slot))
        ? null
        : `slot ${this.slot} is not on ${this.to.address} yet`,
    );
  }
}

/** The slot -> primary map of a view, as a comparable string ("id:0-5460,..."). */
function slotMap(nodes: ClusterNode[]): string {
  return nodes
    .filter((n) => n.slots.length > 0)
    .map((n) => `${n.id}:${n.slots.map(([s, e]) => (s === e ? `${s}` : `${s}-${e}`)).join(",")}`)
    .sort()
    .join(" ");
}

async function distinctFreePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await freePort());
  return [...ports];
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
