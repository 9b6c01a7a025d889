/**
 * The process around a server, for every entry (server.ts, server.deno.ts): signal handlers, the
 * configuration from the environment and flags, a failed start told as `configuration error: ...`,
 * and `listening on http://HOST:PORT` once it accepts connections.
 */
import { describeError } from "./chat/log";
import type { RunningChatServer } from "./chat-server";
import { type Config, ConfigError, loadConfig } from "./config";
import { RedisUnreachable } from "./engines/redis/redis-engine";

export interface MainOptions {
  /** Starts the server; throws (ConfigError, Redis unreachable, a port in use) when it cannot. */
  start(config: Config): RunningChatServer;
}

/** What a failed start says: the setting at fault, when there is one. */
function explain(err: unknown): unknown {
  if (err instanceof ConfigError) return `configuration error: ${err.message}`;
  if (err instanceof RedisUnreachable) return `configuration error: ${err.setting}: ${err.message}`;
  return err;
}

/** Runs a server until SIGINT or SIGTERM; exits 1 with a message when it cannot start. */
export async function serveMain(options: MainOptions): Promise<void> {
  let running: RunningChatServer | undefined;
  // Handlers first: a supervisor may signal as soon as it reads "listening", and without a handler
  // the default action would kill the process with nothing flushed.
  const shutdown = (signal: string) => {
    console.log(JSON.stringify({ t: new Date().toISOString(), level: "info", event: "shutdown", signal }));
    if (!running) process.exit(0);
    running.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on("SIGINT", () => shutdown("SIGINT"));
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  // Last line of defence: log and carry on rather than drop every user's connection.
  process.on("uncaughtException", (err) =>
    console.error(JSON.stringify({ level: "error", event: "uncaught", ...describeError(err) })),
  );
  process.on("unhandledRejection", (err) =>
    console.error(JSON.stringify({ level: "error", event: "unhandled_rejection", ...describeError(err) })),
  );
  try {
    const config = loadConfig(process.env, process.argv.slice(2));
    running = options.start(config);
    // Several processes over Redis: say "listening" only once this one is registered there.
    await running.ready;
  } catch (err) {
    console.error(explain(err));
    process.exit(1);
  }
  console.log(`listening on ${running.url.origin}`);
}
