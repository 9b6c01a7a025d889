/**
 * The Redis clients under a RedisLink: Bun's own for one Redis (the fast path, as before), and
 * ioredis's Cluster for a Redis Cluster (Bun's client has no cluster mode: it reports MOVED as an
 * error); where there is no Bun (Deno), ioredis for one Redis too. Both answer in RESP3 shapes (maps as objects, WITHSCORES as pairs), so what reads a reply
 * does not care which one it came from. Neither queues commands while disconnected: the link fails
 * them at once (redis-link.ts).
 */
import { RedisClient } from "bun";
import { Cluster, Redis, ReplyError } from "ioredis";

export interface HostPort {
  host: string;
  port: number;
}

/** How to log in to a cluster's nodes (one Redis takes them in its URL). */
export interface ClusterLogin {
  username?: string | undefined;
  password?: string | undefined;
  /** TLS to every node; `ca`: the PEM of the CA that signed their certificates (else the system's). */
  tls?: { ca?: string | undefined } | undefined;
}

/** One Redis (`url`) or the seed nodes of a Redis Cluster. */
export type RedisTarget = { url: string } | { cluster: HostPort[]; login?: ClusterLogin | undefined };

export interface WireClient {
  connect(): Promise<void>;
  send(command: string, args: string[]): Promise<unknown>;
  /**
   * Sends `command`, then WAIT on the same node right behind it: resolves to its reply and the number
   * of replicas that acknowledged everything written before (WAIT's answer).
   */
  sendAndWait(
    command: string,
    args: string[],
    replicas: number,
    timeoutMs: number,
  ): Promise<[unknown, number]>;
  close(): void;
  /** An error Redis answered (the command ran, or was refused), not a connection's failure. */
  isReplyError(err: unknown): boolean;
}

export function wireClient(target: RedisTarget, connectTimeoutMs: number): WireClient {
  if (!("url" in target)) return new ClusterWire(target.cluster, connectTimeoutMs, target.login ?? {});
  const onBun = typeof (globalThis as { Bun?: unknown }).Bun !== "undefined";
  return onBun ? new BunWire(target.url, connectTimeoutMs) : new IoWire(target.url, connectTimeoutMs);
}

class BunWire implements WireClient {
  private readonly client: RedisClient;
  /** The connection of the writes that wait for replicas (made at the first). */
  private readonly waiter = lazily(
    () => {
      const client = this.open();
      return client.connect().then(
        () => client,
        (err) => {
          client.close();
          throw err;
        },
      );
    },
    (c) => c.close(),
  );

  constructor(
    private readonly url: string,
    private readonly connectionTimeout: number,
  ) {
    this.client = this.open();
  }

  private open(): RedisClient {
    return new RedisClient(this.url, {
      enableOfflineQueue: false,
      autoReconnect: true,
      maxRetries: 1_000_000,
      connectionTimeout: this.connectionTimeout,
    });
  }

  async connect(): Promise<void> {
    await this.client.connect();
  }

  send(command: string, args: string[]): Promise<unknown> {
    return this.client.send(command, args);
  }

  async sendAndWait(
    command: string,
    args: string[],
    replicas: number,
    timeoutMs: number,
  ): Promise<[unknown, number]> {
    // One connection answers in order: the WAIT, sent right behind, counts this write. A connection
    // of their own, so nothing else waits behind a WAIT.
    const waiter = await this.waiter.get();
    const reply = waiter.send(command, args);
    const acked = waiter.send("WAIT", [String(replicas), String(timeoutMs)]);
    return [await reply, Number(await acked)];
  }

  close(): void {
    this.client.close();
    this.waiter.drop();
  }

  isReplyError(err: unknown): boolean {
    return (err as { code?: unknown } | null)?.code === "ERR_REDIS_SERVER_ERROR";
  }
}

/**
 * ioredis's one-Redis and Cluster clients: connect (abandoned by a close), send, writes that wait for
 * replicas, close, reply errors.
 */
abstract class IoredisWire<T extends Redis | Cluster> implements WireClient {
  /** Rejects a connect still under way when the client is closed (ioredis would leave it pending). */
  private abandon: ((err: Error) => void) | undefined;
  /** The client of the writes that wait for replicas (made at the first). */
  private readonly waiter = lazily(
    () => {
      // Both classes have duplicate() (same options), but with signatures TypeScript cannot unite.
      const client = (this.client as unknown as { duplicate(): T }).duplicate();
      client.on("error", () => {});
      return client.connect().then(() => client);
    },
    (c) => c.disconnect(),
  );

  constructor(protected readonly client: T) {
    // ioredis reports node errors as events as well; the link reports what matters (commands failing).
    client.on("error", () => {});
  }

  connect(): Promise<void> {
    if (this.client.status === "ready") return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.abandon = reject;
      this.client.connect().then(() => resolve(), reject);
    }).finally(() => {
      this.abandon = undefined;
    });
  }

  send(command: string, args: string[]): Promise<unknown> {
    return this.client.call(command, ...args);
  }

  async sendAndWait(
    command: string,
    args: string[],
    replicas: number,
    timeoutMs: number,
  ): Promise<[unknown, number]> {
    // One pipeline goes to one node (on a cluster, the node of its keys): WAIT (no key) runs on the
    // node that wrote. On a client of their own, so nothing else sent there waits behind a WAIT.
    const client = await this.waiter.get();
    for (let attempt = 1; ; attempt++) {
      const results = await client
        .pipeline()
        .call(command, ...args)
        .call("WAIT", String(replicas), String(timeoutMs))
        .exec();
      if (!results) throw new Error("the pipeline was discarded");
      const [write, wait] = results;
      // ioredis follows a redirection in a pipeline only when every command got it, and WAIT never
      // does: so the write is sent again here, as ioredis would send it alone (a slot migrating:
      // KeySpace.fence; moved: the slots are read again first).
      if (write?.[0] && REDIRECTED.test(write[0].message) && attempt < REDIRECTIONS) {
        if (write[0].message.startsWith("MOVED") && client instanceof Cluster) client.refreshSlotsCache();
        await new Promise((resolve) => setTimeout(resolve, REDIRECT_DELAY_MS));
        continue;
      }
      if (write?.[0]) throw write[0];
      if (wait?.[0]) throw wait[0];
      return [write?.[1], Number(wait?.[1])];
    }
  }

  close(): void {
    this.abandon?.(new Error("the Redis client was closed while connecting"));
    this.client.disconnect();
    this.waiter.drop();
  }

  isReplyError(err: unknown): boolean {
    return err instanceof ReplyError;
  }
}

/** A write refused for where its slot is (or is going): it did not run, and may be sent again. */
const REDIRECTED = /^(ASK|MOVED|TRYAGAIN|CLUSTERDOWN)\b/;
/** As ClusterWire's ioredis options: 40 tries, 50 ms apart. */
const REDIRECTIONS = 40;
const REDIRECT_DELAY_MS = 50;

class ClusterWire extends IoredisWire<Cluster> {
  constructor(seeds: HostPort[], connectTimeout: number, login: ClusterLogin) {
    super(
      new Cluster(seeds, {
        lazyConnect: true,
        enableOfflineQueue: false,
        // A primary's failover takes 2-3 s here (cluster-node-timeout 1 s): redirections keep trying
        // for longer than that, so a command waits for the new primary rather than failing (the
        // link's own timeout still bounds the wait, and then the caller decides: a chat is retried
        // by its id, ...).
        retryDelayOnFailover: 200,
        retryDelayOnClusterDown: 200,
        retryDelayOnTryAgain: REDIRECT_DELAY_MS,
        retryDelayOnMoved: 0,
        maxRedirections: REDIRECTIONS,
        // Replicas and moved slots are learnt without waiting for a MOVED.
        slotsRefreshInterval: 2000,
        slotsRefreshTimeout: Math.max(1000, connectTimeout),
        clusterRetryStrategy: (times) => Math.min(1000, 50 * 2 ** Math.min(times, 5)),
        redisOptions: {
          protocol: 3,
          replyMapping: "resp3",
          connectTimeout,
          offlineQueue: false,
          maxRetriesPerRequest: 0,
          username: login.username,
          password: login.password,
          tls: login.tls && (login.tls.ca === undefined ? {} : { ca: login.tls.ca }),
        },
      }),
    );
  }
}

/** One Redis through ioredis, for runtimes without Bun's client. */
class IoWire extends IoredisWire<Redis> {
  constructor(url: string, connectTimeout: number) {
    super(
      new Redis(url, {
        lazyConnect: true,
        enableOfflineQueue: false,
        maxRetriesPerRequest: 0,
        connectTimeout,
        protocol: 3,
        replyMapping: "resp3",
        retryStrategy: (times) => Math.min(1000, 50 * 2 ** Math.min(times, 5)),
      }),
    );
  }
}

/** A client made at its first use (a failed making is tried again at the next), and dropped on close. */
function lazily<T>(make: () => Promise<T>, drop: (t: T) => void): { get(): Promise<T>; drop(): void } {
  let made: Promise<T> | undefined;
  return {
    get() {
      if (!made) {
        const attempt = make();
        attempt.catch(() => {
          if (made === attempt) made = undefined;
        });
        made = attempt;
      }
      return made;
    },
    drop() {
      made?.then(drop).catch(() => {});
      made = undefined;
    },
  };
}
