/**
 * The database file against real server processes: a second server on the same DB_PATH refuses to
 * start (kill -9 of the first never blocks a restart), and a damaged file is refused at start with
 * how to recover, instead of serving `internal` for old pages and writing into the damaged file.
 */
import { afterAll, afterEach, describe, expect, it } from "bun:test";
import { closeSync, mkdtempSync, openSync, rmSync, statSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ChatMessage } from "../../protocol";
import { killAllServerProcesses, killHard, type ServerProcess, spawnServer } from "../support/server-process";
import { closeAllClients, connect } from "../support/test-client";

const ROOT = join(import.meta.dir, "..", "..");
const tmp = mkdtempSync(join(tmpdir(), "chat-storage-"));
let files = 0;
const dbPath = () => join(tmp, `chat-${++files}.db`);

afterEach(async () => {
  await closeAllClients();
});

afterAll(async () => {
  await killAllServerProcesses();
  rmSync(tmp, { recursive: true, force: true });
});

/**
 * Starts `server.ts` expecting it to refuse: its exit code, everything it printed, and how long it
 * took. A server that starts after all is killed at once (exit code 137).
 */
async function refusedStart(
  env: Record<string, string>,
): Promise<{ code: number; output: string; ms: number }> {
  const t0 = performance.now();
  const proc = Bun.spawn([process.execPath, "server.ts"], {
    cwd: ROOT,
    env: { PORT: "0", HOST: "127.0.0.1", LOG_LEVEL: "warn", ...env },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const timer = setTimeout(() => proc.kill(9), 15_000);
  const read = async (stream: ReadableStream<Uint8Array>) => {
    let text = "";
    const decoder = new TextDecoder();
    const reader = stream.getReader();
    for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) {
      text += decoder.decode(chunk.value, { stream: true });
      if (text.includes("listening on")) proc.kill(9);
    }
    return text;
  };
  const [code, out, err] = await Promise.all([proc.exited, read(proc.stdout), read(proc.stderr)]);
  clearTimeout(timer);
  return { code, output: out + err, ms: performance.now() - t0 };
}

async function historyOf(server: ServerProcess, room: string): Promise<ChatMessage[]> {
  const res = await fetch(new URL(`/api/rooms/${room}/messages?limit=200`, server.url));
  expect(res.status).toBe(200);
  return ((await res.json()) as { messages: ChatMessage[] }).messages;
}

async function stopGracefully(server: ServerProcess): Promise<void> {
  server.proc.kill("SIGTERM");
  expect(await server.proc.exited).toBe(0);
}

describe("two servers on one DB_PATH", () => {
  it("the second exits 1 at once naming the first's pid; the first serves on; kill -9 of the first never blocks a restart", async () => {
    const path = dbPath();
    const first = await spawnServer({ DB_PATH: path });
    const alice = await connect(first.url, { room: "r", nick: "alice" });
    await alice.post("before", 3);

    const second = await refusedStart({ DB_PATH: path });
    expect({ code: second.code, output: second.output.trim() }).toEqual({
      code: 1,
      output: `configuration error: DB_PATH: ${path} is in use by another server process (pid ${first.proc.pid})`,
    });
    // It fails fast: it does not wait out SQLite's busy timeout (5 s).
    expect(second.ms).toBeLessThan(3000);

    // The first one never noticed: it acks and stores as before.
    expect((await alice.post("after", 2)).map((a) => a.seq)).toEqual([4, 5]);

    await killHard(first);
    const restarted = await spawnServer({ DB_PATH: path });
    expect((await historyOf(restarted, "r")).map((m) => m.seq)).toEqual([1, 2, 3, 4, 5]);
    const bob = await connect(restarted.url, { room: "r", nick: "bob" });
    expect((await bob.post("restarted", 1)).map((a) => a.seq)).toEqual([6]);

    // And a graceful stop frees it as well.
    await stopGracefully(restarted);
    const again = await spawnServer({ DB_PATH: path });
    expect((await historyOf(again, "r")).length).toBe(6);
    await stopGracefully(again);
  }, 30_000);

  it("a server with DB_PATH=:memory: takes no lock: two run side by side", async () => {
    const a = await spawnServer({ DB_PATH: ":memory:" });
    const b = await spawnServer({ DB_PATH: ":memory:" });
    await stopGracefully(a);
    await stopGracefully(b);
  }, 20_000);
});

/** Overwrites `bytes` bytes at `offset` with pseudo-random garbage. */
function scribble(path: string, offset: number, bytes: number): void {
  const garbage = new Uint8Array(bytes);
  let x = 0x2545f491;
  for (let i = 0; i < bytes; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    garbage[i] = x & 0xff;
  }
  const fd = openSync(path, "r+");
  try {
    writeSync(fd, garbage, 0, bytes, offset);
  } finally {
    closeSync(fd);
  }
}

/** A database of several hundred pages written by a real server, which then stops cleanly. */
async function filledDatabase(): Promise<string> {
  const path = dbPath();
  const server = await spawnServer({ DB_PATH: path, RATE_LIMIT: "0" });
  const writers = await Promise.all(
    ["alpha", "beta", "gamma"].map((room) => connect(server.url, { room, nick: `${room}-w` })),
  );
  const text = "x".repeat(1500);
  for (const w of writers) {
    for (let i = 1; i <= 200; i++) w.send({ type: "chat", text: `${i} ${text}`, id: `m${i}` });
  }
  await Promise.all(writers.map((w) => w.waitFor("ack", (a) => a.id === "m200", 10_000)));
  await Promise.all(writers.map((w) => w.close()));
  await stopGracefully(server);
  expect(statSync(path).size).toBeGreaterThan(200 * 4096);
  return path;
}

describe("a damaged database file", () => {
  it("is refused at start with how to recover, whether the damage is in the middle or in the header", async () => {
    for (const where of ["middle", "header"] as const) {
      const path = await filledDatabase();
      const size = statSync(path).size;
      if (where === "middle") scribble(path, Math.floor(size / 2 / 4096) * 4096, 3 * 4096);
      else scribble(path, 0, 100);

      const refused = await refusedStart({ DB_PATH: path });
      expect({ where, code: refused.code }).toEqual({ where, code: 1 });
      expect(refused.output).toStartWith(`configuration error: DB_PATH: ${path} is damaged`);
      expect(refused.output).toContain(".recover");
      // Refusing wrote nothing: the file is as damaged as it was, and no second file was made of it.
      expect(statSync(path).size).toBe(size);
    }
  }, 60_000);

  it("can be recovered as the README says, and the recovered file serves every intact message", async () => {
    const sqlite3 = Bun.which("sqlite3");
    if (!sqlite3) {
      if (process.env.CI) throw new Error("sqlite3 (the command-line shell) is needed for this test");
      console.warn("skipped: no sqlite3 command-line shell");
      return;
    }
    const path = await filledDatabase();
    scribble(path, Math.floor(statSync(path).size / 2 / 4096) * 4096, 2 * 4096);
    const fixed = `${path}.recovered`;
    // .recover needs a sqlite3 built with the sqlite_dbpage table (Debian's is not); .dump then,
    // with its closing ROLLBACK (written when it met the damage) turned into a COMMIT.
    const hasRecover = Bun.spawnSync([sqlite3, ":memory:", "SELECT 1 FROM sqlite_dbpage"]).exitCode === 0;
    const recipe = hasRecover
      ? `"${sqlite3}" "${path}" .recover | "${sqlite3}" "${fixed}"`
      : `"${sqlite3}" "${path}" .dump | sed 's/^ROLLBACK; -- due to errors$/COMMIT;/' | "${sqlite3}" "${fixed}"`;
    const recover = Bun.spawnSync(["sh", "-c", recipe]);
    expect({ recipe, exit: recover.exitCode }).toEqual({ recipe, exit: 0 });
    const check = Bun.spawnSync([sqlite3, fixed, "PRAGMA integrity_check"]);
    expect(check.stdout.toString().trim()).toBe("ok");

    const server = await spawnServer({ DB_PATH: fixed });
    let total = 0;
    for (const room of ["alpha", "beta", "gamma"]) {
      const seqs = (await historyOf(server, room)).map((m) => m.seq);
      total += seqs.length;
      // What survived is in order with no duplicate; the newest message of each room is there.
      expect(seqs).toEqual([...new Set(seqs)].sort((a, b) => a - b));
      expect(seqs.at(-1)).toBe(200);
    }
    expect(total).toBeGreaterThan(300);
    const w = await connect(server.url, { room: "alpha", nick: "after" });
    expect((await w.post("fixed", 1)).map((a) => a.seq)).toEqual([201]);
    await stopGracefully(server);
  }, 30_000);
});
