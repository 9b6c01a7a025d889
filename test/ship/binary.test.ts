/**
 * The single binary (`npm run build`): compiled once for this file, copied into an empty directory
 * and run there with a bare environment (no node_modules, no sources within reach), it serves the
 * page compressed, speaks protocol v1 and v2, keeps its SQLite file in its working directory, and
 * answers --help and --version as `bun server.ts` does.
 */
import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { chmod, copyFile, mkdir, mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { brotliDecompressSync } from "node:zlib";
import type { Subprocess } from "bun";
import packageJson from "../../package.json" with { type: "json" };
import { buildBinary } from "../../server/build/build-binary";
import { SETTING_LIST } from "../../server/settings";
import { closeAllClients, connect } from "../support/test-client";
import { closeAllV2Clients, connectV2 } from "../support/v2-client";

const ROOT = join(import.meta.dir, "..", "..");
/** A compile takes a few seconds (page build, bundle, copy of the runtime); a start well under one. */
const BUILD_MS = 120_000;

let work: string;
let binary: string;
let runDir: string;
let server: Subprocess<"ignore", "pipe", "pipe"> | undefined;
let url: URL;
const output: string[] = [];

/** Runs the binary in `runDir` with only these variables, to its end, and returns what it printed. */
async function runOnce(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const proc = Bun.spawn([binary, ...args], { cwd: runDir, env: {}, stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  return { code, stdout, stderr };
}

/** Starts the binary on a free port in `runDir` and resolves with its URL once it says "listening on". */
async function startBinary(): Promise<URL> {
  const proc = Bun.spawn([binary], {
    cwd: runDir,
    // Nothing inherited: no NODE_PATH, no DB_PATH of the test run, no HOME with a bun install.
    env: { PORT: "0", HOST: "127.0.0.1", LOG_LEVEL: "warn", HOME: runDir },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  server = proc;
  new Response(proc.stderr).text().then((text) => output.push(text));
  const reader = proc.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  const deadline = setTimeout(() => proc.kill(9), 10_000);
  for (;;) {
    const { done, value } = await reader.read();
    if (done) throw new Error(`the binary exited before listening: ${seen}${output.join("")}`);
    seen += value;
    const match = /^listening on (http:\/\/\S+)$/m.exec(seen);
    if (match) {
      clearTimeout(deadline);
      // Keep reading so a full pipe never blocks the server.
      (async () => {
        for (;;) if ((await reader.read()).done) return;
      })();
      return new URL(match[1] as string);
    }
  }
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "chat-binary-"));
  const built = await buildBinary(join(work, "build", "chat-server"));
  console.log(`binary: ${built.bytes} bytes, built in ${Math.round(built.ms)} ms`);
  runDir = join(work, "run");
  binary = join(runDir, "chat-server");
  await mkdir(runDir);
  await copyFile(built.outfile, binary);
  await chmod(binary, 0o755);
  url = await startBinary();
}, BUILD_MS);

afterAll(async () => {
  await closeAllClients();
  await closeAllV2Clients();
  if (server) {
    server.kill("SIGTERM");
    await server.exited;
  }
  if (work) await rm(work, { recursive: true, force: true });
});

describe("the binary in an empty directory", () => {
  it("starts from a directory holding nothing but itself", async () => {
    expect(await readdir(runDir)).toContain("chat-server");
    // No node_modules up the tree from the run directory, so nothing can be resolved at run time.
    for (let dir = runDir; dir !== "/"; dir = join(dir, "..")) {
      expect(await Bun.file(join(dir, "node_modules", "zod", "package.json")).exists()).toBe(false);
    }
    expect(url.hostname).toBe("127.0.0.1");
  });

  it("serves the page built in, compressed, with its CSP", async () => {
    const res = await fetch(new URL("/", url), { headers: { "Accept-Encoding": "br" }, decompress: false });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-encoding")).toBe("br");
    expect(res.headers.get("content-security-policy")).toContain("script-src 'sha256-");
    const html = brotliDecompressSync(new Uint8Array(await res.arrayBuffer())).toString("utf8");
    expect(html).toStartWith("<!doctype html>");
    expect(html).toContain("<script");
  });

  it("speaks v1: a welcome, then a chat comes back broadcast and acked", async () => {
    const ann = await connect(url, { room: "r", nick: "ann" });
    expect(ann.welcome).toMatchObject({ type: "welcome", protocol: 1, room: "r", nick: "ann", lastSeq: 0 });
    ann.send({ type: "chat", text: "hello from the binary", id: "m1" });
    const chat = await ann.next("chat");
    expect(chat).toMatchObject({ room: "r", seq: 1, nick: "ann", text: "hello from the binary" });
    expect(await ann.next("ack")).toEqual({ type: "ack", id: "m1", seq: 1 });
  });

  it("speaks v2: a welcome with the user", async () => {
    const [, welcome] = await connectV2(url, { nick: "bob" });
    expect(welcome).toMatchObject({ type: "welcome", protocol: 2, user: { nick: "bob" } });
  });

  it("keeps its SQLite file (DB_PATH's default) in its working directory", async () => {
    expect(await readdir(join(runDir, "data"))).toContain("chat.db");
  });
});

describe("the binary's command line", () => {
  it("--version prints the version and the protocols it speaks", async () => {
    const { code, stdout } = await runOnce(["--version"]);
    expect(code).toBe(0);
    expect(stdout).toContain(`bun-chat ${packageJson.version}\n`);
    expect(stdout).toContain("protocols: 1, 2\n");
  });

  it("--help prints the usage and every setting with its default, as `bun server.ts --help` does", async () => {
    const { code, stdout } = await runOnce(["--help"]);
    expect(code).toBe(0);
    expect(stdout).toContain("chat-server [--setting value]");
    for (const [, setting] of SETTING_LIST) expect(stdout).toContain(`  ${setting.env}  --`);
    expect(stdout).toContain("  PORT  --port  (default: 3000)");
    expect(stdout).toContain("  DB_PATH  --db-path  (default: data/chat.db)");
    const fromSource = Bun.spawnSync([process.execPath, "server.ts", "--help"], { cwd: ROOT });
    expect(fromSource.exitCode).toBe(0);
    expect(fromSource.stdout.toString().replaceAll("bun server.ts", "chat-server")).toBe(stdout);
  });

  it("refuses a flag no setting has, before starting anything", async () => {
    const { code, stderr } = await runOnce(["--prot", "3000"]);
    expect(code).toBe(2);
    expect(stderr).toContain("unknown flag --prot");
  });
});
