/**
 * A connection to Redis on which no command waits longer than the command timeout: a Redis that is
 * down fails commands at once (no offline queue), and a Redis that hangs (connection up, no answers)
 * fails them within the timeout, so a hung Redis is an outage, not a wait.
 *
 * What a timeout means: the command was sent and no answer came in time. It may still run in Redis
 * later (it waits in Redis's socket buffer), so callers treat a timeout as "unknown outcome": a chat
 * is answered `internal` and its retry is deduplicated by id; a claim is given back with a leave sent
 * right behind it; a rename's late answer is adopted (redis-engine.ts). Replies come back in the order
 * commands were sent on one connection, so a command sent after another always runs after it.
 *
 * While a command is overdue, Redis is known not to answer: new commands fail at once without being
 * sent (`RedisUnavailable`: they certainly did not run), so nothing piles up behind a hung Redis and
 * little runs late when it wakes. When the overdue commands answer, the link is healthy again and the
 * `recovered` listeners run. A link overdue for `reconnectAfter` timeouts is closed and opened again,
 * in case the connection itself is dead without anyone having said so.
 */
import { monotonicNow } from "../../chat/clock";
import { describeError, type Logger, silentLogger } from "../../chat/log";
import { KeySpace } from "./key-space";
import { type RedisTarget, type WireClient, wireClient } from "./wire-client";

/** Sent, but not answered within the timeout: it may still run in Redis. */
export class RedisTimeout extends Error {
  override name = "RedisTimeout";
}

/** Not sent: Redis is known not to answer (a command is overdue, or the link is reconnecting). */
export class RedisUnavailable extends Error {
  override name = "RedisUnavailable";
}

/** A write acknowledged by fewer replicas than asked within its wait: it may be lost on a failover. */
export class RedisNotReplicated extends Error {
  override name = "RedisNotReplicated";
}

export type LinkOptions = RedisTarget & {
  /** Longest a command may take before it counts as failed. */
  timeoutMs: number;
  /** Overdue this many timeouts: the connection is closed and opened again. */
  reconnectAfter?: number;
  log?: Logger;
  /** Names the link in logs. */
  name?: string;
};

/** A command's answer within the timeout, and (once sent) its answer whenever it comes. */
export interface Call {
  reply: Promise<unknown>;
  /** Undefined when the command was never sent. */
  late: Promise<unknown> | undefined;
}

export class RedisLink {
  readonly timeoutMs: number;
  private client: WireClient;
  /** Commands sent and not answered yet (timed out or not): id -> when sent (monotonic). In send order. */
  private readonly pending = new Map<number, number>();
  /** Of those, the ones that timed out: while there is one, Redis is known not to answer. */
  private readonly overdue = new Set<number>();
  private nextId = 0;
  private failing = false;
  /** When a command last got an answer (monotonic). */
  private answeredAt = monotonicNow();
  private closed = false;
  private reconnecting: Promise<void> | undefined;
  private readonly listeners: Array<() => void> = [];
  private readonly log: Logger;
  private readonly name: string;

  constructor(private readonly o: LinkOptions) {
    this.timeoutMs = o.timeoutMs;
    this.log = o.log ?? silentLogger;
    this.name = o.name ?? "main";
    this.client = wireClient(o, this.connectTimeout());
  }

  /** Connects for the first time; rejects when Redis cannot be reached. */
  async connect(): Promise<void> {
    await this.client.connect();
  }

  /** Runs `fn` each time the link answers again after failures. */
  onRecovered(fn: () => void): void {
    this.listeners.push(fn);
  }

  /** True while the link has failed and not answered since. */
  get unhealthy(): boolean {
    // On a cluster, one node away (failing over) while the others answer is not an outage.
    if ("cluster" in this.o) return this.failing && monotonicNow() - this.answeredAt > this.timeoutMs;
    return this.failing;
  }

  send(command: string, args: string[]): Promise<unknown> {
    return this.call(command, args).reply;
  }

  /**
   * Sends a command; `reply` fails within the timeout, `late` is its answer whenever it comes. With
   * `replicas`, the command is followed by WAIT on its node: the answer counts only once that many
   * replicas hold it (else RedisNotReplicated: it ran, and may be lost should its primary fail).
   */
  call(command: string, args: string[], replicas = 0): Call {
    const refused = this.refusal();
    if (refused) {
      this.fail();
      const reply = Promise.reject(refused);
      return { reply, late: undefined };
    }
    const id = this.nextId++;
    let raw: Promise<unknown>;
    try {
      raw =
        replicas > 0
          ? this.client.sendAndWait(command, args, replicas, this.waitMs()).then(([reply, acked]) => {
              if (acked < replicas)
                throw new RedisNotReplicated(`${acked} of ${replicas} replicas acknowledged ${command}`);
              return reply;
            })
          : this.client.send(command, args);
    } catch (err) {
      this.fail();
      return { reply: Promise.reject(err), late: undefined };
    }
    this.pending.set(id, monotonicNow());
    const late = raw.then(
      (value) => {
        this.answered(id);
        this.succeed();
        return value;
      },
      (err) => {
        this.answered(id);
        if (this.client.isReplyError(err) || err instanceof RedisNotReplicated) this.succeed();
        else this.fail();
        throw err;
      },
    );
    late.catch(() => {});
    const reply = new Promise<unknown>((resolve, reject) => {
      const timer = setTimeout(() => {
        if (this.pending.has(id)) this.overdue.add(id);
        this.fail();
        reject(new RedisTimeout(`Redis did not answer ${command} within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      late.then(
        (value) => {
          clearTimeout(timer);
          resolve(value);
        },
        (err) => {
          clearTimeout(timer);
          reject(err);
        },
      );
    });
    return { reply, late };
  }

  /** Closes the connection for good. */
  close(): void {
    this.closed = true;
    this.client.close();
  }

  /** Why a command must not be sent now, if it must not. */
  private refusal(): Error | undefined {
    if (this.closed) return new RedisUnavailable("the Redis link is closed");
    if (this.reconnecting) return new RedisUnavailable("reconnecting to Redis");
    // On a cluster an overdue command says one node is away (failing over, say): the others still
    // answer, so nothing else is refused, and ioredis finds the node again by itself.
    if (this.overdue.size === 0 || "cluster" in this.o) return undefined;
    const oldest = this.pending.values().next();
    const silentMs = oldest.done ? 0 : Math.round(monotonicNow() - oldest.value);
    if (silentMs > this.timeoutMs * (this.o.reconnectAfter ?? 5)) this.reconnect();
    return new RedisUnavailable(`Redis has not answered for ${silentMs} ms`);
  }

  private answered(id: number): void {
    this.pending.delete(id);
    this.overdue.delete(id);
  }

  private fail(): void {
    this.failing = true;
  }

  private succeed(): void {
    this.answeredAt = monotonicNow();
    if (!this.failing) return;
    this.failing = false;
    this.log.log("info", "redis_link_recovered", { link: this.name });
    for (const fn of this.listeners) {
      try {
        fn();
      } catch (err) {
        this.log.log("error", "redis_recovery_failed", describeError(err));
      }
    }
  }

  /** Drops a connection that stopped answering and opens another (the old one's commands fail now). */
  private reconnect(): void {
    this.log.log("warn", "redis_link_reconnecting", { link: this.name });
    const stale = this.client;
    this.reconnecting = (async () => {
      stale.close();
      this.pending.clear();
      this.overdue.clear();
      for (let attempt = 0; !this.closed; attempt++) {
        const fresh = wireClient(this.o, this.connectTimeout());
        try {
          await fresh.connect();
          if (this.closed) fresh.close();
          else this.client = fresh;
          return;
        } catch {
          fresh.close();
          await sleep(Math.min(500, 50 * 2 ** attempt));
        }
      }
    })().finally(() => {
      this.reconnecting = undefined;
    });
  }

  /** WAIT's own timeout: well inside the command's, so "too few replicas" is an answer, not a timeout. */
  private waitMs(): number {
    return Math.max(10, Math.floor(this.timeoutMs / 2));
  }

  private connectTimeout(): number {
    return Math.max(500, Math.min(this.o.timeoutMs, 10_000));
  }
}

/**
 * Runs a script with EVAL. EVALSHA would save bytes, but after a Redis restart (script cache empty)
 * its NOSCRIPT retries could reorder pipelined writes; EVAL keeps them in the order they were sent.
 */
export function runScript(
  link: RedisLink,
  script: string,
  args: ReadonlyArray<string | number>,
  replicas = 0,
): Promise<unknown> {
  return scriptCall(link, script, args, replicas).reply;
}

/**
 * ARGV[1] is always the prefix of the partition the script works in (key-space.ts); every key the
 * script touches shares that prefix's hash tag. Its declared keys are the partition's fence: they
 * route it to that slot, and hold it back (TRYAGAIN) while the slot migrates (KeySpace.fence).
 */
export function scriptCall(
  link: RedisLink,
  script: string,
  args: ReadonlyArray<string | number>,
  replicas = 0,
): Call {
  const [a, b] = KeySpace.fence(String(args[0]));
  return link.call("EVAL", [script, "2", a, b, ...args.map(String)], replicas);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Stream ids ("ms-n") compared as numbers. */
export function streamIdAfter(a: string, b: string): boolean {
  const [am = "0", an = "0"] = a.split("-");
  const [bm = "0", bn = "0"] = b.split("-");
  const ams = Number(am);
  const bms = Number(bm);
  return ams !== bms ? ams > bms : Number(an) > Number(bn);
}
