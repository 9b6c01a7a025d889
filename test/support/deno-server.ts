/**
 * The Deno server as a child process, as `npm run start:deno` runs it: the `deno run ...` of that
 * script (its permissions exactly), with the page built once per test process before the first one.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { drain } from "./server-process";

const ROOT = join(import.meta.dir, "..", "..");
const alive = new Set<Subprocess>();

/** The `deno run ...` command of package.json's start:deno, after its page build. */
export function denoCommand(): string[] {
  const scripts = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")).scripts as Record<
    string,
    string
  >;
  const script = scripts["start:deno"];
  const run = script?.split(" && ").find((part) => part.startsWith("deno run "));
  if (!run) throw new Error(`package.json's start:deno runs no "deno run ...": ${script}`);
  return run.split(" ");
}

let page: Promise<void> | undefined;

/** dist/page.json, as start:deno builds it: the Deno server serves it at GET /. */
export function buildPage(): Promise<void> {
  page ??= (async () => {
    const proc = Bun.spawn([process.execPath, "server/page-build.ts", "dist/page.json"], {
      cwd: ROOT,
      stdout: "ignore",
      stderr: "pipe",
    });
    if ((await proc.exited) !== 0)
      throw new Error(`page build failed: ${await new Response(proc.stderr).text()}`);
  })();
  return page;
}

export interface DenoServer {
  readonly url: URL;
  readonly proc: Subprocess<"ignore", "pipe", "pipe">;
  /** What it printed on stdout and stderr so far. */
  readonly output: string[];
  /** SIGTERM (the graceful stop) and its exit code. */
  stop(): Promise<number>;
}

/** Starts the Deno server with `env` over the test defaults; resolves at its `listening on` line. */
export async function startDenoServer(
  env: Record<string, string> = {},
  timeoutMs = 20_000,
): Promise<DenoServer> {
  await buildPage();
  const [cmd, ...args] = denoCommand();
  const proc = Bun.spawn([cmd === "deno" ? denoBinary() : (cmd as string), ...args], {
    cwd: ROOT,
    env: {
      // Where Deno keeps its cache; nothing of the chat's configuration comes from the test's own environment.
      ...pick(process.env, ["PATH", "HOME", "DENO_DIR", "XDG_CACHE_HOME"]),
      PORT: "0",
      HOST: "127.0.0.1",
      DB_PATH: ":memory:",
      LOG_LEVEL: "warn",
      // Tests drive many frames fast; the limits under test set their own values.
      FRAME_RATE_LIMIT: "0",
      CONTROL_RATE_LIMIT: "0",
      CONNECT_RATE_PER_IP: "0",
      ...env,
    },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  alive.add(proc);
  proc.exited.then(() => alive.delete(proc));
  const output: string[] = [];
  void drain(proc.stderr, output);
  try {
    const url = await new Promise<URL>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no "listening on" line: ${output.join("")}`)),
        timeoutMs,
      );
      proc.exited.then((code) => {
        clearTimeout(timer);
        reject(new Error(`deno exited with ${code}: ${output.join("")}`));
      });
      void drain(proc.stdout, output, (line) => {
        const match = /^listening on (http:\/\/\S+)$/.exec(line);
        if (!match) return;
        clearTimeout(timer);
        resolve(new URL(match[1] as string));
      });
    });
    return {
      url,
      proc,
      output,
      async stop() {
        proc.kill("SIGTERM");
        return await proc.exited;
      },
    };
  } catch (err) {
    proc.kill(9);
    throw err;
  }
}

function pick(from: Record<string, string | undefined>, names: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of names) {
    const value = from[name];
    if (value !== undefined) out[name] = value;
  }
  return out;
}

/** node_modules/.bin/deno (the npm package), so a Deno on PATH or none there changes nothing. */
function denoBinary(): string {
  return join(ROOT, "node_modules", ".bin", "deno");
}

/** For afterAll: no Deno process outlives the tests. */
export async function killAllDenoServers(): Promise<void> {
  const procs = [...alive];
  for (const proc of procs) proc.kill(9);
  await Promise.all(procs.map((p) => p.exited));
}
