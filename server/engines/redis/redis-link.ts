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
import { RedisClient } from "bun";
import { monotonicNow } from "../../chat/clock";
import { describeError, type Logger, silentLogger } from "../../chat/log";

/** Sent, but not answered within the timeout: it may still run in Redis. */
export class RedisTimeout extends Error {
  override name = "RedisTimeout";
}

/** Not sent: Redis is known not to answer (a command is overdue, or the link is reconnecting). */
export class RedisUnavailable extends Error {
  override name = "RedisUnavailable";
}

export interface LinkOptions {
  url: string;
  /** Longest a command may take before it counts as failed. */
  timeoutMs: number;
  /** Overdue this many timeouts: the connection is closed and opened again. */
  reconnectAfter?: number;
  log?: Logger;
  /** Names the link in logs. */
  name?: string;
}

/** A command's answer within the timeout, and (once sent) its answer whenever it comes. */
export interface Call {
  reply: Promise<unknown>;
  /** Undefined when the command was never sent. */
  late: Promise<unknown> | undefined;
}

/** Bun's client for the chat: fail at once while Redis is away, reconnect on its own. */
export function connectRedis(url: string, connectionTimeout = 2000): RedisClient {
  return new RedisClient(url, {
    enableOfflineQueue: false,
    autoReconnect: true,
    maxRetries: 1_000_000,
    connectionTimeout,
  });
}

export class RedisLink {
  readonly timeoutMs: number;
  private client: RedisClient;
  /** Commands sent and not answered yet (timed out or not): id -> when sent (monotonic). In send order. */
  private readonly pending = new Map<number, number>();
  /** Of those, the ones that timed out: while there is one, Redis is known not to answer. */
  private readonly overdue = new Set<number>();
  private nextId = 0;
  private failing = false;
  private closed = false;
  private reconnecting: Promise<void> | undefined;
  private readonly listeners: Array<() => void> = [];
  private readonly log: Logger;
  private readonly name: string;

  constructor(private readonly o: LinkOptions) {
    this.timeoutMs = o.timeoutMs;
    this.log = o.log ?? silentLogger;
    this.name = o.name ?? "main";
    this.client = connectRedis(o.url, this.connectTimeout());
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
    return this.failing;
  }

  send(command: string, args: string[]): Promise<unknown> {
    return this.call(command, args).reply;
  }

  /** Sends a command; `reply` fails within the timeout, `late` is its answer whenever it comes. */
  call(command: string, args: string[]): Call {
    const refused = this.refusal();
    if (refused) {
      this.fail();
      const reply = Promise.reject(refused);
      return { reply, late: undefined };
    }
    const id = this.nextId++;
    let raw: Promise<unknown>;
    try {
      raw = this.client.send(command, args);
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
        if (isConnectionError(err)) this.fail();
        else this.succeed();
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
    if (this.overdue.size === 0) return undefined;
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
        const fresh = connectRedis(this.o.url, this.connectTimeout());
        try {
          await fresh.connect();
          if (this.closed) fresh.close();
          else this.client = fresh;
          return;
        } catch {
          fresh.close();
          await Bun.sleep(Math.min(500, 50 * 2 ** attempt));
        }
      }
    })().finally(() => {
      this.reconnecting = undefined;
    });
  }

  private connectTimeout(): number {
    return Math.max(500, Math.min(this.o.timeoutMs, 10_000));
  }
}

function isConnectionError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code !== "string" || code !== "ERR_REDIS_SERVER_ERROR";
}

/**
 * Runs a script with EVAL. EVALSHA would save bytes, but after a Redis restart (script cache empty)
 * its NOSCRIPT retries could reorder pipelined writes; EVAL keeps them in the order they were sent.
 */
export function runScript(
  link: RedisLink,
  script: string,
  args: ReadonlyArray<string | number>,
): Promise<unknown> {
  return scriptCall(link, script, args).reply;
}

export function scriptCall(link: RedisLink, script: string, args: ReadonlyArray<string | number>): Call {
  return link.call("EVAL", [script, "0", ...args.map(String)]);
}

/** Stream ids ("ms-n") compared as numbers. */
export function streamIdAfter(a: string, b: string): boolean {
  const [am = "0", an = "0"] = a.split("-");
  const [bm = "0", bn = "0"] = b.split("-");
  const ams = Number(am);
  const bms = Number(bm);
  return ams !== bms ? ams > bms : Number(an) > Number(bn);
}
