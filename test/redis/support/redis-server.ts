/**
 * A private redis-server per test file: a free port on loopback, a temporary directory, killed after;
 * each node of redis-cluster.ts's clusters runs as one too.
 * Without /usr/bin/redis-server the Redis tests are skipped with a message, unless CI is set.
 */

import { afterAll, beforeAll } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RedisClient, type Subprocess } from "bun";

export const REDIS_BIN = process.env.REDIS_SERVER_BIN ?? "/usr/bin/redis-server";
export const HOST = "127.0.0.1";

/** True when the tests can run; logs why not, and throws under CI where skipping is not allowed. */
export function redisAvailable(): boolean {
  if (existsSync(REDIS_BIN)) return true;
  if (process.env.CI)
    throw new Error(`${REDIS_BIN} is missing and CI is set: the Redis tests cannot be skipped`);
  console.warn(`skipping the Redis tests: ${REDIS_BIN} is not installed (apt-get install redis-server)`);
  return false;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, HOST, () => {
      const address = srv.address();
      const port = typeof address === "object" && address ? address.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** How a redis-server is run; a cluster node's settings (redis-cluster.ts) come as `extra`. */
export interface RedisSettings {
  /** `appendonly yes` with `appendfsync always`: every acknowledged write is durable. */
  appendonly?: boolean;
  /** More arguments, after the common ones. */
  extra?: string[];
  /** The temporary directory's prefix. */
  dirPrefix?: string;
  /** `requirepass` (and `masterauth`): clients log in with it. */
  password?: string;
  /** A TLS port besides the plain one, with these PEM files (the plain port stays for the harness). */
  tls?: { port: number; cert: string; key: string; ca: string };
}

/**
 * One redis-server on a loopback port, in a temporary directory of its own (its data and redis.log):
 * a test file's private Redis, and each node of a test cluster.
 */
export class RedisProcess {
  private proc: Subprocess | undefined;
  readonly dir: string;

  constructor(
    readonly port: number,
    private readonly settings: RedisSettings = {},
  ) {
    this.dir = mkdtempSync(join(tmpdir(), settings.dirPrefix ?? "chat-redis-"));
  }

  get url(): string {
    const login =
      this.settings.password === undefined ? "" : `:${encodeURIComponent(this.settings.password)}@`;
    return `redis://${login}${HOST}:${this.port}`;
  }

  /** `host:port`. */
  get address(): string {
    return `${HOST}:${this.port}`;
  }

  get alive(): boolean {
    return this.proc !== undefined;
  }

  /** Starts redis-server on a free port. */
  static async start(settings: RedisSettings = {}): Promise<RedisProcess> {
    const redis = new RedisProcess(await freePort(), settings);
    await redis.resume();
    return redis;
  }

  /**
   * (Re)starts the server on the same port and directory, and waits until it answers; one that exits
   * or stays silent is killed, with its stderr and log's tail in the error.
   */
  async resume(): Promise<void> {
    const args = [
      REDIS_BIN,
      "--port",
      String(this.port),
      "--bind",
      HOST,
      "--dir",
      this.dir,
      "--logfile",
      "redis.log",
      "--save",
      "",
      "--appendonly",
      this.settings.appendonly ? "yes" : "no",
      "--appendfsync",
      "always",
      ...(this.settings.password === undefined
        ? []
        : ["--requirepass", this.settings.password, "--masterauth", this.settings.password]),
      ...(this.settings.tls === undefined
        ? []
        : [
            "--tls-port",
            String(this.settings.tls.port),
            "--tls-cert-file",
            this.settings.tls.cert,
            "--tls-key-file",
            this.settings.tls.key,
            "--tls-ca-cert-file",
            this.settings.tls.ca,
            "--tls-auth-clients",
            "no",
          ]),
      ...(this.settings.extra ?? []),
    ];
    const proc = Bun.spawn(args, { stdout: "ignore", stderr: "pipe" });
    this.proc = proc;
    const deadline = Date.now() + 10_000;
    while (!(await this.pings())) {
      if (proc.exitCode !== null || Date.now() > deadline) {
        const stderr = proc.exitCode !== null ? await new Response(proc.stderr as ReadableStream).text() : "";
        this.proc = undefined;
        proc.kill(9);
        throw new Error(
          `redis-server did not answer on port ${this.port} (exit ${proc.exitCode})\n${stderr}${this.logTail()}`,
        );
      }
      await Bun.sleep(20);
    }
  }

  /** Stops the server abruptly (SIGKILL); `resume` brings it back. */
  async kill(): Promise<void> {
    const proc = this.proc;
    this.proc = undefined;
    if (!proc) return;
    proc.kill(9);
    await proc.exited;
  }

  /** SIGKILL without waiting (an exit hook's last resort). */
  killNow(): void {
    this.proc?.kill(9);
  }

  /**
   * Freezes the server (SIGSTOP): its connections stay up, nothing is answered, and what is sent
   * meanwhile waits in its socket buffers until `unpause` (SIGCONT); then it all runs, late.
   */
  pause(): void {
    this.proc?.kill("SIGSTOP");
  }

  unpause(): void {
    this.proc?.kill("SIGCONT");
  }

  /** Kills the server and removes its directory. */
  async stop(): Promise<void> {
    this.unpause();
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }

  logTail(lines = 15): string {
    const file = join(this.dir, "redis.log");
    if (!existsSync(file)) return "";
    const tail = readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
    return `--- ${this.address} redis.log (last ${lines} lines) ---\n${tail}\n`;
  }

  private async pings(): Promise<boolean> {
    const client = new RedisClient(this.url, { autoReconnect: false, connectionTimeout: 500 });
    try {
      return (await client.send("PING", [])) === "PONG";
    } catch {
      return false;
    } finally {
      client.close();
    }
  }
}

/**
 * A test file's private redis-server: started before its tests, stopped after; skipped (or a failure
 * under CI) without redis-server. `url()` is for use inside the tests.
 */
export function privateRedis(options: { appendonly?: boolean } = {}): {
  available: boolean;
  url: () => string;
} {
  const available = redisAvailable();
  let redis: RedisProcess | undefined;
  beforeAll(async () => {
    if (available) redis = await RedisProcess.start(options);
  });
  afterAll(async () => {
    await redis?.stop();
  });
  return { available, url: () => (redis as RedisProcess).url };
}
