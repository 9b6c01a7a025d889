/**
 * The Redis Cluster harness (support/redis-cluster.ts) and what ioredis's `Cluster` does under Bun against it:
 * hash tags, EVAL with declared keys, CROSSSLOT, pipelines, MOVED and ASK, streams and blocking reads, WAIT,
 * sharded pub/sub across a slot move and a failover, and commands during a primary's failover with several
 * option sets. One cluster for the file; the failover comes last because it changes the topology.
 * The findings are written up in notes/ioredis-cluster-findings.md (outside the repo).
 */
import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { Cluster, type ClusterOptions, Redis } from "ioredis";
import { eventually, sleep } from "../support/timing";
import {
  type ClusterNode,
  infoFields,
  ownsSlot,
  RedisCluster,
  redisClusterAvailable,
  SLOTS,
  slotCount,
} from "./support/redis-cluster";

const available = redisClusterAvailable();
let cluster: RedisCluster;
const clients: Array<{ disconnect(): void }> = [];

/** An ioredis Cluster on the harness's seeds, disconnected after the file. */
function connect(options: ClusterOptions = {}): Cluster {
  const client = new Cluster(cluster.startupNodes, options);
  client.on("error", () => {});
  clients.push(client);
  return client;
}

/** ioredis's slot -> ["host:port", ...] cache (not in its types). */
function slotCache(client: Cluster): string[][] {
  return (client as unknown as { slots: string[][] }).slots;
}

async function otherPrimary(than: ClusterNode): Promise<ClusterNode> {
  const other = (await cluster.primaries()).find((n) => n.id !== than.id);
  if (!other) throw new Error("no other primary");
  return other;
}

async function replicaOf(primary: ClusterNode): Promise<ClusterNode> {
  const replica = (await cluster.replicas()).find((n) => n.primaryId === primary.id && !n.failing);
  if (!replica) throw new Error(`${primary.address} has no replica`);
  return replica;
}

/** A rejection's error (fails if the promise resolves). */
async function failure(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error("expected a rejection");
}

beforeAll(async () => {
  if (available) cluster = await RedisCluster.start({ primaries: 3, replicasPerPrimary: 1 });
});

afterAll(async () => {
  for (const client of clients) client.disconnect();
  await cluster?.stop();
});

describe.skipIf(!available)("a private Redis Cluster and ioredis's Cluster under Bun", () => {
  it("forms: 3 primaries with a replica each, every slot served, every node ok", async () => {
    const nodes = await cluster.nodes();
    const primaries = nodes.filter((n) => n.role === "primary");
    expect(primaries).toHaveLength(3);
    expect(
      nodes
        .filter((n) => n.role === "replica")
        .map((n) => n.primaryId)
        .sort(),
    ).toEqual(primaries.map((n) => n.id).sort());
    expect(primaries.reduce((sum, n) => sum + slotCount(n), 0)).toBe(SLOTS);
    expect(cluster.seeds).toHaveLength(6);
    expect(cluster.seedsEnv).toMatch(/^127\.0\.0\.1:\d+(,127\.0\.0\.1:\d+){5}$/);
    for (const port of cluster.livePorts) {
      const info = infoFields(String(await cluster.command(port, "CLUSTER", ["INFO"])));
      expect(info.cluster_state).toBe("ok");
      expect(info.cluster_known_nodes).toBe("6");
    }
  });

  it("puts keys with one hash tag on one slot, and primaryFor names the node that serves it", async () => {
    expect(await cluster.keySlot("foo")).toBe(12182);
    const slot = await cluster.keySlot("{room:42}");
    for (const key of ["{room:42}:messages", "{room:42}:members", "x{room:42}y"])
      expect(await cluster.keySlot(key)).toBe(slot);
    expect(await cluster.keySlot("{room:43}:messages")).not.toBe(slot);

    const owners = await Promise.all(Array.from({ length: 12 }, (_, i) => cluster.primaryFor(`{room:${i}}`)));
    expect(new Set(owners.map((n) => n.port)).size).toBe(3);

    const owner = await cluster.primaryFor("{room:42}:messages");
    expect(ownsSlot(owner, slot)).toBe(true);
    expect(await cluster.command(owner.port, "SET", ["{room:42}:messages", "1"])).toBe("OK");
    const elsewhere = await otherPrimary(owner);
    expect((await failure(cluster.command(elsewhere.port, "GET", ["{room:42}:messages"]))).message).toBe(
      `MOVED ${slot} ${owner.address}`,
    );
  });

  it("runs EVAL with declared keys of one tag (eval, call, defineCommand) and gets CROSSSLOT across tags", async () => {
    const io = connect();
    const script =
      "redis.call('rpush', KEYS[1], ARGV[1]); return {redis.call('incr', KEYS[2]), redis.call('llen', KEYS[1])}";
    expect(await io.eval(script, 2, "{room:1}:list", "{room:1}:seq", "a")).toEqual([1, 1]);
    expect(await io.call("EVAL", script, 2, "{room:1}:list", "{room:1}:seq", "b")).toEqual([2, 2]);

    // EVALSHA with a NOSCRIPT fallback: each primary loads the script on first use.
    io.defineCommand("bump", { numberOfKeys: 1, lua: "return redis.call('incr', KEYS[1])" });
    const bump = (key: string) => (io as unknown as { bump(key: string): Promise<number> }).bump(key);
    const tags = ["{room:0}", "{room:1}", "{room:2}", "{room:3}", "{room:4}", "{room:5}"];
    const ports = new Set<number>();
    for (const tag of tags) {
      expect(await bump(`${tag}:bumped`)).toBe(1);
      ports.add((await cluster.primaryFor(tag)).port);
    }
    expect(ports.size).toBe(3);

    const crossSlot = await failure(io.eval(script, 2, "{room:1}:list", "{room:2}:seq", "c"));
    expect(crossSlot.name).toBe("ReplyError");
    expect(crossSlot.message).toBe("CROSSSLOT Keys in request don't hash to the same slot");
    expect((await failure(io.mget("{room:1}:seq", "{room:2}:seq"))).message).toStartWith("CROSSSLOT");

    // A key the script builds itself is routed by nothing: it fails when another node owns it.
    const owner = await cluster.primaryFor("{room:1}");
    let foreign = "";
    for (let i = 0; !foreign; i++)
      if ((await cluster.primaryFor(`{room:${i}}`)).id !== owner.id) foreign = `{room:${i}}:seq`;
    const nonLocal = await failure(io.eval(`return redis.call('get', '${foreign}')`, 1, "{room:1}:seq"));
    expect(nonLocal.message).toStartWith("ERR Script attempted to access a non local key in a cluster node");
  });

  it("sends a pipeline or MULTI to one node only; auto-pipelining spans nodes", async () => {
    const io = connect();
    expect(await io.pipeline().set("{room:1}:p", "1").incr("{room:1}:p").exec()).toEqual([
      [null, "OK"],
      [null, 2],
    ]);
    expect(await io.multi().set("{room:1}:m", "1").incr("{room:1}:m").exec()).toEqual([
      [null, "OK"],
      [null, 2],
    ]);
    const tags = ["{room:0}", "{room:1}", "{room:2}", "{room:3}", "{room:4}"];
    const across = io.pipeline();
    for (const tag of tags) across.set(`${tag}:p2`, "x");
    expect((await failure(across.exec())).message).toBe(
      "All keys in the pipeline should belong to the same slots allocation group",
    );
    const auto = connect({ enableAutoPipelining: true });
    expect(await Promise.all(tags.map((tag) => auto.incr(`${tag}:auto`)))).toEqual([1, 1, 1, 1, 1]);
  });

  it("follows MOVED after moveSlot and updates its slot cache", async () => {
    const io = connect();
    const key = "{move}:k";
    await io.set(key, "v");
    const slot = await cluster.keySlot(key);
    const from = await cluster.primaryFor(key);
    const to = await otherPrimary(from);
    await cluster.moveSlot(slot, to.id);

    expect((await cluster.primaryFor(key)).id).toBe(to.id);
    expect(await cluster.command(to.port, "GET", [key])).toBe("v");
    expect((await failure(cluster.command(from.port, "GET", [key]))).message).toBe(
      `MOVED ${slot} ${to.address}`,
    );
    expect(slotCache(io)[slot]?.[0]).toBe(from.address);
    expect(await io.get(key)).toBe("v");
    expect(slotCache(io)[slot]?.[0]).toBe(to.address);
  });

  it("follows ASK while a slot is half-migrated; multi-key commands on it get TRYAGAIN", async () => {
    const io = connect();
    const [a, b] = ["{ask}:a", "{ask}:b"];
    await io.set(a, "A");
    await io.set(b, "B");
    const slot = await cluster.keySlot(a);
    const from = await cluster.primaryFor(a);
    const to = await otherPrimary(from);
    const migration = await cluster.beginSlotMigration(slot, to.id);
    let finished = false;
    try {
      await migration.migrateKeys([a]);
      expect((await failure(cluster.command(from.port, "GET", [a]))).message).toBe(
        `ASK ${slot} ${to.address}`,
      );
      expect(await cluster.command(from.port, "GET", [b])).toBe("B");
      // Without ASKING the importing node redirects back to the owner.
      expect((await failure(cluster.command(to.port, "GET", [a]))).message).toBe(
        `MOVED ${slot} ${from.address}`,
      );

      expect(await io.get(a)).toBe("A");
      expect(await io.get(b)).toBe("B");
      expect(slotCache(io)[slot]?.[0]).toBe(from.address);

      const quick = connect({ retryDelayOnTryAgain: 10, maxRedirections: 4 });
      const both = "return {redis.call('get', KEYS[1]), redis.call('get', KEYS[2])}";
      const tryAgain = await failure(quick.eval(both, 2, a, b));
      expect(tryAgain.message).toMatch(
        /^Too many Cluster redirections\. Last error: ReplyError: (TRYAGAIN|MOVED)/,
      );
      await migration.finish();
      finished = true;
      expect(await quick.eval(both, 2, a, b)).toEqual(["A", "B"]);
    } finally {
      if (!finished) await migration.finish();
    }
    expect((await cluster.primaryFor(a)).id).toBe(to.id);
  });

  // Why scripts declare a fence rather than the keys they touch (key-space.ts KeySpace.fence).
  it("on a migrating slot, a script stops halfway when it makes a key; a fenced one waits for the move", async () => {
    const k = (name: string) => `{mig}:${name}`;
    const [fenceA, fenceB] = [k("fence:a"), k("fence:b")];
    await cluster.command((await cluster.primaryFor(k("n"))).port, "SET", [k("n"), "0"]);
    await cluster.command((await cluster.primaryFor(k("n"))).port, "RPUSH", [k("list"), "x"]);
    const slot = await cluster.keySlot(k("n"));
    const from = await cluster.primaryFor(k("n"));
    const to = await otherPrimary(from);
    const migration = await cluster.beginSlotMigration(slot, to.id);
    let finished = false;
    try {
      const at = (port: number, ...args: string[]) => cluster.command(port, "EVAL", args);
      // Its declared keys all there, it makes a new one: stopped, with its first write kept.
      const makes = "redis.call('INCR', KEYS[1]); redis.call('SET', ARGV[1], 'new'); return 1";
      expect((await failure(at(from.port, makes, "1", k("n"), k("new")))).message).toMatch(/non local key/);
      expect(await cluster.command(from.port, "GET", [k("n")])).toBe("1");
      // Declared, but emptied and written again: the same.
      const refills =
        "redis.call('LPOP', KEYS[1]); redis.call('INCR', KEYS[2]); redis.call('RPUSH', KEYS[1], 'y'); return 1";
      expect((await failure(at(from.port, refills, "2", k("list"), k("n")))).message).toMatch(
        /non local key/,
      );
      expect(await cluster.command(from.port, "GET", [k("n")])).toBe("2");
      // Fenced (two keys no one writes): refused on both sides, before it runs.
      expect((await failure(at(from.port, makes, "2", fenceA, fenceB, k("n")))).message).toBe(
        `ASK ${slot} ${to.address}`,
      );
      const io = connect({ retryDelayOnTryAgain: 10, maxRedirections: 4 });
      const fenced = "return redis.call('INCR', ARGV[1])";
      // ioredis goes back and forth between the two (ASK, TRYAGAIN, MOVED) until it gives up.
      expect((await failure(io.eval(fenced, 2, fenceA, fenceB, k("n")))).message).toMatch(
        /^Too many Cluster redirections\. Last error: ReplyError: (TRYAGAIN|ASK|MOVED) /,
      );
      expect(await cluster.command(from.port, "GET", [k("n")])).toBe("2");
      // Once the slot has moved, it runs there, on the keys that moved with it.
      await migration.finish();
      finished = true;
      expect(await io.eval(fenced, 2, fenceA, fenceB, k("n"))).toBe(3);
    } finally {
      if (!finished) await migration.finish();
    }
  });

  it("moves slots with redis-cli --cluster reshard", async () => {
    const [from, to] = await cluster.primaries();
    if (!from || !to) throw new Error("two primaries expected");
    const before = slotCount(await cluster.node(to.id));
    await cluster.reshard({ from: from.id, to: to.id, slots: 20 });
    expect(slotCount(await cluster.node(to.id))).toBe(before + 20);
  });

  it("runs XADD/XRANGE/XREAD; XREAD BLOCK holds its node's shared connection, a duplicate() does not", async () => {
    const io = connect();
    const stream = "{st}:stream";
    const first = await io.xadd(stream, "*", "n", "1");
    await io.xadd(stream, "MAXLEN", "~", "1000", "*", "n", "2");
    const range = await io.xrange(stream, "-", "+");
    expect(range.map(([, fields]) => fields)).toEqual([
      ["n", "1"],
      ["n", "2"],
    ]);
    expect(range[0]?.[0]).toBe(first as string);
    const read = await io.xread("COUNT", 1, "STREAMS", stream, "0");
    expect(read?.[0]?.[1]).toHaveLength(1);

    // On the shared connection a GET for the same node waits behind the blocked read.
    const order: string[] = [];
    const blocked = io.xread("BLOCK", 500, "STREAMS", stream, "$").then((r) => {
      order.push("xread");
      return r;
    });
    await sleep(30);
    await io.get("{st}:other").then(() => order.push("get"));
    expect(await blocked).toBeNull();
    expect(order).toEqual(["xread", "get"]);

    // On a duplicate (its own connections to every primary) the GET goes first; an XADD wakes the reader.
    const reader = io.duplicate();
    clients.push(reader);
    order.length = 0;
    const woken = reader.xread("BLOCK", 5000, "STREAMS", stream, "$").then((r) => {
      order.push("xread");
      return r;
    });
    await sleep(30);
    await io.get("{st}:other").then(() => order.push("get"));
    await io.xadd(stream, "*", "n", "3");
    const entries = await woken;
    expect(order).toEqual(["get", "xread"]);
    expect(entries?.[0]?.[1]?.[0]?.[1]).toEqual(["n", "3"]);
  });

  it("WAIT counts the replica only on the connection that wrote: a pipeline with the write, or nodes()", async () => {
    const io = connect();
    const key = "{wait}:k";
    expect(await io.pipeline().set(key, "1").wait(1, 2000).exec()).toEqual([
      [null, "OK"],
      [null, 1],
    ]);
    const primary = await cluster.primaryFor(key);
    const replica = await replicaOf(primary);
    const own = io.nodes("master").find((n) => n.options.port === primary.port);
    const another = io.nodes("master").find((n) => n.options.port !== primary.port);
    if (!own || !another) throw new Error("ioredis has no connection to the primaries");
    cluster.pause(replica.port);
    try {
      expect(await io.pipeline().set(key, "2").wait(1, 200).exec()).toEqual([
        [null, "OK"],
        [null, 0],
      ]);
      expect(await own.wait(1, 100)).toBe(0);
      // Another node's connection wrote nothing: its WAIT says 1 at once, whatever happened to the write.
      expect(await another.wait(1, 100)).toBe(1);
    } finally {
      cluster.unpause(replica.port);
    }
    expect(await own.wait(1, 2000)).toBe(1);
  });

  it("delivers sharded pub/sub and re-subscribes when the channel's slot moves", async () => {
    const publisher = connect();
    const subscriber = connect({ shardedSubscribers: true });
    const received: string[] = [];
    subscriber.on("smessage", (channel: string, message: string) => received.push(`${channel} ${message}`));
    const channel = "{pubsub}:room";
    expect(await subscriber.ssubscribe(channel)).toBe(1);
    expect(await publisher.spublish(channel, "m1")).toBe(1);
    await eventually(() => received.includes(`${channel} m1`), "the first smessage");
    expect((await failure(subscriber.ssubscribe("{a}:x", "{b}:x"))).message).toBe(
      "Possible CROSSSLOT error: All channels must hash to the same slot",
    );

    // A plain connection to the owner sees Redis's unsolicited SUNSUBSCRIBE as ioredis's "moved" event.
    const owner = await cluster.primaryFor(channel);
    const raw = new Redis({ host: owner.host, port: owner.port });
    raw.on("error", () => {});
    clients.push(raw);
    let rawMoved = 0;
    raw.on("moved", () => rawMoved++);
    await raw.ssubscribe(channel);

    const to = await otherPrimary(owner);
    await cluster.moveSlot(await cluster.keySlot(channel), to.id);
    const movedAt = Date.now();
    let receivers = 0;
    for (let n = 0; receivers === 0 && Date.now() - movedAt < 5000; n++) {
      receivers = Number(await publisher.spublish(channel, `after-move-${n}`));
      if (!receivers) await sleep(20);
    }
    expect(receivers).toBe(1);
    await eventually(
      () => received.some((m) => m.startsWith(`${channel} after-move-`)),
      "an smessage after the move",
    );
    await eventually(() => rawMoved === 1, "the unsolicited SUNSUBSCRIBE on the plain connection");
  });

  it("rides a primary's failover: what commands see with each option set, and the sharded subscription", async () => {
    const key = "{fo}:k";
    const channel = "{fo}:room";
    const seed = connect();
    await seed.set(key, "0");
    const owner = await cluster.primaryFor(key);
    expect((await cluster.primaryFor(channel)).id).toBe(owner.id);

    type Outcome = { start: number; end: number; error?: string };
    const variants: Record<string, ClusterOptions> = {
      defaults: {},
      patient: { retryDelayOnFailover: 200, maxRedirections: 40 },
      commandTimeout: { redisOptions: { commandTimeout: 500 } },
      replicaReads: { scaleReads: "slave", slotsRefreshInterval: 200 },
    };
    const probes = Object.entries(variants).map(([name, options]) => ({
      name,
      io: connect(options),
      log: [] as Outcome[],
    }));
    const subscriber = connect({ shardedSubscribers: true });
    let resubscribes = 0;
    subscriber.on("-subscriber", () => resubscribes++);
    const received: string[] = [];
    subscriber.on("smessage", (_channel: string, message: string) => received.push(message));
    await subscriber.ssubscribe(channel);
    const publisher = connect();
    expect(await publisher.spublish(channel, "before")).toBe(1);
    // The replica must be in CLUSTER SLOTS (it is once it has replicated something) for replicaReads.
    const replicaReads = probes.find((p) => p.name === "replicaReads")?.io as Cluster;
    await eventually(() => replicaReads.nodes("slave").length > 0, "ioredis to learn of the replicas");

    let running = true;
    const publishes: Outcome[] = [];
    const publishing = (async () => {
      for (let n = 0; running; n++) {
        const start = Date.now();
        const receivers = await publisher.spublish(channel, `after-${n}`).catch(() => 0);
        publishes.push({
          start,
          end: Date.now(),
          ...(receivers === 1 ? {} : { error: `${receivers} receivers` }),
        });
        await sleep(20);
      }
    })();
    const loops = probes.map(async ({ name, io, log }) => {
      for (let i = 0; running; i++) {
        const start = Date.now();
        try {
          if (name === "replicaReads") await io.get(key);
          else await io.set(key, String(i));
          log.push({ start, end: Date.now() });
        } catch (error) {
          log.push({ start, end: Date.now(), error: (error as Error).message });
        }
        await sleep(20);
      }
    });
    await sleep(200);
    const failover = await cluster.killPrimary(owner.port);
    const replica = failover.promoted;
    expect(replica.id).not.toBe(owner.id);
    expect((await cluster.primaryFor(key)).id).toBe(replica.id);

    // The sharded subscription comes back on the promoted replica.
    await eventually(
      () => publishes.some((o) => o.start > failover.killedAt + failover.ms && !o.error),
      "an SPUBLISH with a receiver after the failover",
      10_000,
    );
    await eventually(() => received.some((m) => m.startsWith("after-")), "an smessage after the failover");
    await sleep(500);
    running = false;
    await Promise.all([...loops, publishing]);
    const lastUnheard = publishes.filter((o) => o.error).at(-1);
    const resubscribedMs = lastUnheard ? lastUnheard.end - failover.killedAt : 0;
    const summary: Record<string, unknown> = { failoverMs: failover.ms, resubscribedMs, resubscribes };
    for (const { name, log } of probes) {
      const after = log.filter((o) => o.end >= failover.killedAt);
      const errors = after.filter((o) => o.error);
      const firstOk = after.find((o) => !o.error && o.start >= failover.killedAt);
      summary[name] = {
        firstOkMs: firstOk ? firstOk.end - failover.killedAt : null,
        maxLatencyMs: Math.max(...after.map((o) => o.end - o.start)),
        errors: [...new Set(errors.map((o) => o.error))],
        errorCount: errors.length,
        ok: after.length - errors.length,
      };
    }
    console.log("failover as ioredis saw it:", JSON.stringify(summary, null, 1));

    const outcome = (name: string) => summary[name] as { errors: string[]; errorCount: number; ok: number };
    // Default options give up (16 redirections, 100 ms apart) before a 1 s node timeout's failover is done.
    expect(outcome("defaults").errors.some((e) => e.startsWith("Too many Cluster redirections."))).toBe(true);
    expect(outcome("defaults").ok).toBeGreaterThan(0);
    // 40 x 200 ms outlasts it: every write waits and succeeds.
    expect(outcome("patient").errorCount).toBe(0);
    expect(outcome("commandTimeout").errors).toContain("Command timed out");
    // Reads on the replica never see the primary die.
    expect(outcome("replicaReads").errorCount).toBe(0);
    // ioredis 6.0.0 re-creates the sharded subscriber of the dead node in a tight loop until the failover.
    expect(resubscribes).toBeGreaterThan(20);

    // The promoted replica has no replica of its own until the old primary comes back as one.
    const io = connect();
    expect(await io.pipeline().set(key, "x").wait(1, 100).exec()).toEqual([
      [null, "OK"],
      [null, 0],
    ]);
    const back = await cluster.restart(owner.port);
    expect(back.role).toBe("replica");
    expect(back.primaryId).toBe(replica.id);
    expect(await io.pipeline().set(key, "y").wait(1, 2000).exec()).toEqual([
      [null, "OK"],
      [null, 1],
    ]);
  });
});
