/**
 * A private redis-server for the cluster scenario: its own port on 127.0.0.1 and its own directory,
 * persistence as the README advises (append-only file, fsync every second), stopped at the end.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RedisClient } from "bun";
import { stop, track } from "./processes";

export interface RunningRedis {
  pid: number;
  port: number;
  url: string;
  version: string;
  /** Empties every database between runs, so each run starts from a fresh Redis. */
  flush(): Promise<void>;
  stop(): Promise<void>;
}

/** `REDIS_SERVER`, else redis-server on the PATH or in /usr/bin; undefined when there is none. */
export function redisServerPath(): string | undefined {
  const fromEnv = process.env.REDIS_SERVER;
  if (fromEnv) return existsSync(fromEnv) ? fromEnv : undefined;
  return (
    Bun.which("redis-server") ?? (existsSync("/usr/bin/redis-server") ? "/usr/bin/redis-server" : undefined)
  );
}

/** A port nobody listens on right now (the OS's pick); redis-server is retried if it loses the race. */
function freePort(): number {
  const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = probe.port;
  probe.stop(true);
  return port;
}

async function command(url: string, name: string, args: string[] = []): Promise<unknown> {
  const client = new RedisClient(url, { autoReconnect: false, connectionTimeout: 2000 });
  try {
    return await client.send(name, args);
  } finally {
    client.close();
  }
}

async function startOnce(bin: string, dir: string, port: number): Promise<RunningRedis | string> {
  const proc = track(
    Bun.spawn({
      cmd: [
        bin,
        "--bind",
        "127.0.0.1",
        "--port",
        String(port),
        "--save",
        "",
        "--appendonly",
        "yes",
        "--appendfsync",
        "everysec",
        "--dir",
        dir,
        "--loglevel",
        "warning",
      ],
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
    }),
  );
  const output = new Response(proc.stdout as ReadableStream<Uint8Array>).text().catch(() => "");
  const url = `redis://127.0.0.1:${port}`;
  // Ready once it answers PING; a lost port race shows as an early exit.
  for (const until = performance.now() + 10_000; performance.now() < until; ) {
    if (proc.exitCode !== null || proc.signalCode !== null) return (await output).trim().slice(-500);
    try {
      if ((await command(url, "PING")) === "PONG") {
        const info = String(await command(url, "INFO", ["server"]));
        return {
          pid: proc.pid,
          port,
          url,
          version: /redis_version:(\S+)/.exec(info)?.[1] ?? "?",
          flush: async () => {
            await command(url, "FLUSHALL");
          },
          stop: () => stop(proc, "SIGTERM", 3000),
        };
      }
    } catch {
      // not listening yet
    }
    await Bun.sleep(50);
  }
  proc.kill("SIGKILL");
  return "did not answer PING within 10 s";
}

/** Starts redis-server on a free port; stop() also removes its directory. */
export async function startRedis(bin: string): Promise<RunningRedis> {
  const dir = mkdtempSync(join(tmpdir(), "bench-redis-"));
  let why = "";
  try {
    for (let attempt = 0; attempt < 3; attempt++) {
      const started = await startOnce(bin, dir, freePort());
      if (typeof started !== "string") {
        return {
          ...started,
          async stop() {
            await started.stop();
            rmSync(dir, { recursive: true, force: true });
          },
        };
      }
      why = started;
    }
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  rmSync(dir, { recursive: true, force: true });
  throw new Error(`redis-server did not start: ${why}`);
}
