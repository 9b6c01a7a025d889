/** The servers under test: how each is started as its own process, and the handle the scenarios use. */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Subprocess } from "bun";
import type { DialectName } from "./generator/dialects";
import { stop, track } from "./processes";

export const ROOT = resolve(import.meta.dir, "..");
export const BUN = process.execPath;

export type ServerName = "ours" | "ours-memory" | "ours-deno" | "raw-bun" | "node-ws" | "socket.io";

export interface ServerDef {
  name: ServerName;
  /** What it is, for the tables. */
  label: string;
  dialect: DialectName;
  /** Keeps chat history, so the resume scenario applies. */
  history: boolean;
}

export const SERVERS: Record<ServerName, ServerDef> = {
  ours: { name: "ours", label: "ours (bun server.ts, SQLite on)", dialect: "chat-json", history: true },
  "ours-memory": {
    name: "ours-memory",
    label: "ours with DB_PATH=:memory: (storage off)",
    dialect: "chat-json",
    history: true,
  },
  "ours-deno": {
    name: "ours-deno",
    label: "ours on Deno (server.deno.ts, SQLite on through node:sqlite)",
    dialect: "chat-json",
    history: true,
  },
  "raw-bun": { name: "raw-bun", label: "raw Bun pub/sub (strings)", dialect: "raw", history: false },
  "node-ws": { name: "node-ws", label: "Node 20 + ws chat", dialect: "chat-json", history: true },
  "socket.io": { name: "socket.io", label: "Node 20 + Socket.IO chat", dialect: "socket.io", history: false },
};

export interface RunningTarget {
  def: ServerDef;
  proc: Subprocess;
  pid: number;
  hostname: string;
  port: number;
  /** The last lines the server printed, for error messages. */
  tail(): string;
  /** SIGTERM (graceful, so a CPU profile gets written), SIGKILL after a grace period; removes its files. */
  stop(): Promise<void>;
}

export interface StartOptions {
  /** Extra flags before the script for `bun` (e.g. `--cpu-prof`). */
  bunFlags?: string[];
  /** Extra environment for the server (e.g. `REDIS_URL`). */
  env?: Record<string, string>;
  timeoutMs?: number;
}

/**
 * The `deno run ...` of package.json's start:deno (its permissions), with the npm package's deno;
 * the page is not built for the bench (GET / then answers 404, which no scenario asks for).
 */
function denoCommand(): string[] {
  const scripts = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")).scripts as Record<
    string,
    string
  >;
  const run = scripts["start:deno"]?.split(" && ").find((part) => part.startsWith("deno run "));
  if (!run) throw new Error("package.json's start:deno runs no deno run ...");
  return [join(ROOT, "node_modules", ".bin", "deno"), ...run.split(" ").slice(1)];
}

function commandFor(
  def: ServerDef,
  dataDir: string,
  options: StartOptions,
): { cmd: string[]; env: Record<string, string> } {
  const base = { ...(process.env as Record<string, string>), PORT: "0", HOST: "127.0.0.1" };
  switch (def.name) {
    case "ours":
    case "ours-memory":
    case "ours-deno":
      return {
        cmd: def.name === "ours-deno" ? denoCommand() : [BUN, ...(options.bunFlags ?? []), "server.ts"],
        env: {
          ...base,
          // ours-memory: SQLite in memory, so nothing is written to disk (storage off).
          DB_PATH: def.name === "ours-memory" ? ":memory:" : join(dataDir, "chat.db"),
          // Every per-connection limit off: the generator sends far faster than a person types.
          RATE_LIMIT: "0",
          FRAME_RATE_LIMIT: "0",
          CONTROL_RATE_LIMIT: "0",
          CONNECT_RATE_PER_IP: "0",
          MAX_CONNECTIONS: "1000000",
          MAX_CONNECTIONS_PER_IP: "1000000",
          LOG_LEVEL: "warn",
          // One process on its own store unless the caller passes REDIS_URL (the cluster scenario).
          REDIS_URL: "",
          ...options.env,
        },
      };
    case "raw-bun":
      return { cmd: [BUN, ...(options.bunFlags ?? []), "bench/baselines/raw-bun.ts"], env: base };
    case "node-ws":
      return { cmd: ["node", "bench/baselines/node-ws.mjs"], env: base };
    case "socket.io":
      return { cmd: ["node", "bench/baselines/socketio.mjs"], env: base };
  }
}

/** Starts the server and resolves once it printed `listening on http://HOST:PORT`. */
export async function startTarget(def: ServerDef, options: StartOptions = {}): Promise<RunningTarget> {
  const dataDir = mkdtempSync(join(tmpdir(), `bench-${def.name}-`));
  const { cmd, env } = commandFor(def, dataDir, options);
  const proc = track(Bun.spawn({ cmd, cwd: ROOT, env, stdin: "ignore", stdout: "pipe", stderr: "pipe" }));
  const lines: string[] = [];
  const keep = (line: string) => {
    lines.push(line);
    if (lines.length > 40) lines.shift();
  };
  let onLine: ((line: string) => void) | undefined;
  const drain = async (stream: ReadableStream<Uint8Array>) => {
    const decoder = new TextDecoder();
    const reader = stream.getReader();
    let partial = "";
    for (;;) {
      const { value: chunk, done } = await reader.read();
      if (done) break;
      partial += decoder.decode(chunk, { stream: true });
      const parts = partial.split("\n");
      partial = parts.pop() ?? "";
      for (const line of parts) {
        keep(line);
        onLine?.(line);
      }
    }
  };
  void drain(proc.stdout as ReadableStream<Uint8Array>).catch(() => {});
  void drain(proc.stderr as ReadableStream<Uint8Array>).catch(() => {});
  const tail = () => lines.join("\n");
  const cleanup = () => rmSync(dataDir, { recursive: true, force: true });

  const timeoutMs = options.timeoutMs ?? 15_000;
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const url = await new Promise<URL>((resolveUrl, reject) => {
      timer = setTimeout(
        () => reject(new Error(`${def.name} did not start within ${timeoutMs} ms`)),
        timeoutMs,
      );
      const check = (line: string) => {
        const m = /listening on (http:\/\/\S+)/.exec(line);
        if (m) resolveUrl(new URL(m[1] as string));
      };
      for (const line of lines) check(line);
      onLine = check;
      proc.exited.then((code) => reject(new Error(`${def.name} exited with ${code} before listening`)));
    });
    onLine = undefined;
    return {
      def,
      proc,
      pid: proc.pid,
      hostname: url.hostname,
      port: Number(url.port),
      tail,
      async stop() {
        await stop(proc, "SIGTERM", 5000);
        cleanup();
      },
    };
  } catch (err) {
    proc.kill("SIGKILL");
    cleanup();
    throw new Error(`${err instanceof Error ? err.message : String(err)}\n${tail()}`);
  } finally {
    clearTimeout(timer);
  }
}
