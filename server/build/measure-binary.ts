/**
 * The binary's figures for the README: its size in bytes and its start time (spawn to the
 * `listening on` line, median of several runs, each in a fresh empty directory with a new SQLite
 * file). `bun server/build/measure-binary.ts [BINARY] [--runs N] [--source]`: BINARY defaults to
 * dist/chat-server; `--source` also times `bun server.ts` for comparison.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { DEFAULT_OUTFILE } from "./build-binary";

const ROOT = join(import.meta.dir, "..", "..");

/** Milliseconds from spawn to `listening on`, then stops the server. */
async function startTime(cmd: string[], cwd: string, dbPath: string): Promise<number> {
  const started = performance.now();
  const proc = Bun.spawn(cmd, {
    cwd,
    env: { PORT: "0", HOST: "127.0.0.1", LOG_LEVEL: "warn", DB_PATH: dbPath, PATH: process.env.PATH ?? "" },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "inherit",
  });
  const reader = proc.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) throw new Error(`${cmd.join(" ")} exited before listening: ${seen}`);
      seen += value;
      if (/^listening on /m.test(seen)) return performance.now() - started;
    }
  } finally {
    proc.kill("SIGTERM");
    await proc.exited;
  }
}

async function medianStart(label: string, cmd: string[], cwd: string | undefined, runs: number) {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const dir = await mkdtemp(join(tmpdir(), "chat-start-"));
    try {
      times.push(await startTime(cmd, cwd ?? dir, join(dir, "data", "chat.db")));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
  times.sort((a, b) => a - b);
  const median = times[Math.floor(times.length / 2)] as number;
  const all = times.map((t) => t.toFixed(0)).join(", ");
  console.log(`${label}: start median ${median.toFixed(0)} ms over ${runs} runs (${all})`);
}

const args = process.argv.slice(2);
const runsAt = args.indexOf("--runs");
const runs = runsAt === -1 ? 9 : Number(args[runsAt + 1]);
// Absolute: each run starts in its own empty directory.
const binary = resolve(
  args.find((a, i) => !a.startsWith("--") && args[i - 1] !== "--runs") ?? DEFAULT_OUTFILE,
);
console.log(`${binary}: ${Bun.file(binary).size} bytes`);
await medianStart(binary, [binary], undefined, runs);
if (args.includes("--source"))
  await medianStart("bun server.ts", [process.execPath, "server.ts"], ROOT, runs);
