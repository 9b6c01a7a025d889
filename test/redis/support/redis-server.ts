/**
 * A private redis-server per test file: a free port on loopback, a temporary directory, killed after.
 * Without /usr/bin/redis-server the Redis tests are skipped with a message, unless CI is set.
 */

import { afterAll, beforeAll } from "bun:test";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RedisClient, type Subprocess } from "bun";

export const REDIS_BIN = process.env.REDIS_SERVER_BIN ?? "/usr/bin/redis-server";

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
    srv.listen(0, "127.0.0.1", () => {
      const address = srv.address();
      const port = typeof address === "object" && address ? address.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export class RedisProcess {
  private proc: Subprocess | undefined;
  readonly dir = mkdtempSync(join(tmpdir(), "chat-redis-"));

  private constructor(
    readonly port: number,
    private readonly appendonly: boolean,
  ) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Starts redis-server; `appendonly` with `appendfsync always` makes every acked write durable. */
  static async start(options: { appendonly?: boolean } = {}): Promise<RedisProcess> {
    const redis = new RedisProcess(await freePort(), options.appendonly ?? false);
    await redis.resume();
    return redis;
  }

  /** (Re)starts the server on the same port and directory, and waits until it answers. */
  async resume(): Promise<void> {
    const args = [
      REDIS_BIN,
      "--port",
      String(this.port),
      "--bind",
      "127.0.0.1",
      "--save",
      "",
      "--appendonly",
      this.appendonly ? "yes" : "no",
      "--appendfsync",
      "always",
      "--dir",
      this.dir,
    ];
    this.proc = Bun.spawn(args, { stdout: "ignore", stderr: "ignore" });
    const deadline = Date.now() + 5000;
    for (;;) {
      if (await this.pings()) return;
      if (Date.now() > deadline) throw new Error(`redis-server did not answer on port ${this.port}`);
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

  async stop(): Promise<void> {
    this.unpause();
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
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
