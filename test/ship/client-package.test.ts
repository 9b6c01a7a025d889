/**
 * The client as a package (`@bun-chat/client`, client/package.json): built and packed with `npm
 * pack` into a temporary directory, installed from the tarball into an empty project with no
 * network (its one dependency, zod, and `ws` for Node 20 come as tarballs packed from this
 * repository's node_modules), then used by a plain ESM program against a real server under Node 20
 * (with `ws`, and with `--experimental-websocket`) and under Bun, and type-checked as a TypeScript
 * consumer would (`moduleResolution: nodenext`, `skipLibCheck: false`).
 */
import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildClient } from "../../client/scripts/build";
import type { RunningServer } from "../../server";
import { startTestServer, stopAllServers } from "../support/test-server";

const ROOT = join(import.meta.dir, "..", "..");
const CLIENT = join(ROOT, "client");
/** Build (bundle and tsc), three `npm pack`s and an offline install take a few seconds each. */
const SETUP_MS = 120_000;
const RUN_MS = 30_000;

let work: string;
let app: string;
let tarball: string;
let server: RunningServer;

/** Runs a command to its end; throws with its output when it fails. */
async function run(cmd: string[], cwd: string): Promise<string> {
  const proc = Bun.spawn(cmd, {
    cwd,
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, NO_COLOR: "1" },
  });
  const [stdout, stderr, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  if (code !== 0) throw new Error(`${cmd.join(" ")} exited with ${code}:\n${stdout}\n${stderr}`);
  return stdout;
}

/** `npm pack` of each directory into `work`; the tarballs' paths. */
async function pack(dirs: string[], ...flags: string[]): Promise<string[]> {
  const out = await run(["npm", "pack", ...dirs, ...flags, "--pack-destination", work], work);
  return out
    .trim()
    .split("\n")
    .map((name) => join(work, name.trim()));
}

/**
 * The program a new user would write: v1 (ready, send and its ack, the broadcast, a refusal as a
 * ChatError) and v2 (ready, join, post and its ack, the unread and mention counts it makes).
 * Arguments: the server's URL, a tag for unique names, and `ws` to pass ws's WebSocket class.
 */
const PROGRAM = `
import { ChatClient, ChatError } from "@bun-chat/client";
import { ChatClientV2 } from "@bun-chat/client/v2";

const [url, tag, impl] = process.argv.slice(2);
const opts = impl === "ws" ? { WebSocket: (await import("ws")).default } : {};
const out = { runtime: typeof Bun === "object" ? "bun" : "node " + process.version };

const alice = new ChatClient({ url, room: "r-" + tag, nick: "alice-" + tag, ...opts });
const bob = new ChatClient({ url, room: "r-" + tag, nick: "bob-" + tag, ...opts });
const states = [];
alice.on("state", (s) => states.push(s.status));
out.welcome = (await alice.ready()).nick;
await bob.ready();
const heard = new Promise((resolve) => bob.on("chat", (m) => m.text === "hello" && resolve(m)));
const ack = await alice.send("hello");
out.v1 = { ack, broadcastSeq: (await heard).seq, states };
out.refused = await alice.send(" ").catch((err) => ({ chatError: err instanceof ChatError, code: err.code }));
alice.close();
bob.close();

const ann = new ChatClientV2({ url, nick: "ann-" + tag, ...opts });
const zed = new ChatClientV2({ url, nick: "zed-" + tag, ...opts });
out.ready = (await ann.ready()).nick;
await zed.ready();
const room = "v2-" + tag;
await ann.join(room);
await zed.join(room);
const counted = new Promise((resolve) =>
  ann.on("room", ({ view }) => view.room === room && view.unread > 0 && resolve(view)),
);
const posted = await zed.post(room, "hi @ann-" + tag);
const view = await counted;
out.v2 = { posted, unread: view.unread, mentions: view.mentions, seqs: view.posts.map((p) => p.seq) };
ann.close();
zed.close();
console.log(JSON.stringify(out));
`;

/** A TypeScript consumer: the declarations must type it exactly, through the package's `exports`. */
const CONSUMER = `
import { type Acked, ChatClient, ChatError, type ChatErrorCode, type Welcome } from "@bun-chat/client";
import { ChatClientV2, type RoomView, type Sending } from "@bun-chat/client/v2";

export async function main(url: string): Promise<number> {
  const chat = new ChatClient({ url, room: "lobby", nick: "ann" });
  chat.on("error", (e: ChatError) => {
    const code: ChatErrorCode = e.code;
    console.log(code, e.id, e.room, e.message);
  });
  const welcome: Welcome = await chat.ready({ signal: AbortSignal.timeout(5000) });
  const ack: Acked = await chat.send("hi from " + welcome.nick);
  const v2 = new ChatClientV2({ url, nick: "ann", WebSocket });
  const { userId } = await v2.ready();
  const view: RoomView = await v2.join("dev");
  const sending: Sending = v2.post("dev", "hello", { replyTo: ack.seq });
  const { seq } = await sending;
  // @ts-expect-error: a seq is a number
  const wrong: string = seq;
  return ack.seq + seq + view.unread + userId.length + wrong.length;
}
`;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), "client-package-"));
  // The package as `npm pack` sees it, staged here so that a run never touches client/dist.
  const stage = join(work, "package");
  mkdirSync(stage);
  await buildClient(join(stage, "dist"));
  for (const file of ["package.json", "README.md"]) copyFileSync(join(CLIENT, file), join(stage, file));
  [tarball] = (await pack([stage], "--ignore-scripts")) as [string];
  const deps = await pack([join(ROOT, "node_modules/zod"), join(ROOT, "node_modules/ws")]);

  app = join(work, "app");
  mkdirSync(app);
  writeFileSync(join(app, "package.json"), JSON.stringify({ name: "app", private: true, type: "module" }));
  await run(["npm", "install", "--offline", "--no-audit", "--no-fund", ...deps, tarball], app);
  writeFileSync(join(app, "program.mjs"), PROGRAM);

  server = startTestServer({ RATE_LIMIT: "0" });
  await server.ready;
}, SETUP_MS);

afterAll(async () => {
  await stopAllServers();
  if (work) rmSync(work, { recursive: true, force: true });
});

/** Runs the program with `runtime` and returns what it printed. */
async function program(runtime: string[], tag: string, impl: "ws" | "global") {
  const out = await run([...runtime, "program.mjs", String(server.url), tag, impl], app);
  return JSON.parse(out) as {
    runtime: string;
    welcome: string;
    v1: { ack: { id: string; room: string; seq: number }; broadcastSeq: number; states: string[] };
    refused: { chatError: boolean; code: string };
    ready: string;
    v2: {
      posted: { id: string; room: string; seq: number };
      unread: number;
      mentions: number;
      seqs: number[];
    };
  };
}

function expectWorked(out: Awaited<ReturnType<typeof program>>, tag: string): void {
  expect(out.welcome).toBe(`alice-${tag}`);
  expect(out.v1.ack).toMatchObject({ room: `r-${tag}`, seq: 1 });
  expect(out.v1.broadcastSeq).toBe(out.v1.ack.seq);
  expect(out.v1.states).toEqual(["connecting", "connected", "closed"]);
  expect(out.refused).toEqual({ chatError: true, code: "bad_message" });
  expect(out.ready).toBe(`ann-${tag}`);
  expect(out.v2.posted).toMatchObject({ room: `v2-${tag}`, seq: 1 });
  expect(out.v2).toMatchObject({ unread: 1, mentions: 1, seqs: [1] });
}

describe("the client package", () => {
  it("packs the ESM build, its declarations and the README, and nothing else", async () => {
    const listing = await run(["tar", "-tzf", tarball], work);
    const files = listing.trim().split("\n").sort();
    expect(files).toContain("package/dist/index.js");
    expect(files).toContain("package/dist/v2/index.js");
    expect(files).toContain("package/dist/types/client/index.d.ts");
    expect(files).toContain("package/dist/types/client/v2/index.d.ts");
    expect(files).toContain("package/README.md");
    const stray = files.filter(
      (f) =>
        !/^package\/(package\.json|README\.md|dist\/.+\.(js|js\.map|d\.ts))$/.test(f) || /\.test\./.test(f),
    );
    expect(stray).toEqual([]);
  });

  it("imports no package it does not declare: zod, and only from the v1 entry", () => {
    const installed = join(app, "node_modules/@bun-chat/client");
    const manifest = JSON.parse(readFileSync(join(installed, "package.json"), "utf8"));
    expect(Object.keys(manifest.dependencies)).toEqual(["zod"]);
    const bare = (file: string) =>
      [...readFileSync(file, "utf8").matchAll(/^import\s[^"']*["']([^."'][^"']*)["']/gm)].map((m) => m[1]);
    const js = readdirSync(join(installed, "dist"), { recursive: true, encoding: "utf8" })
      .filter((f) => f.endsWith(".js"))
      .map((f) => join(installed, "dist", f));
    const imported = new Set(js.flatMap(bare));
    expect([...imported]).toEqual(["zod"]);
    // The v2 entry and the chunk it shares with v1 keep zod out of a v2-only bundle.
    for (const file of js.filter((f) => !f.endsWith("/dist/index.js"))) expect(bare(file)).toEqual([]);
  });

  it(
    "works under Node 20 with ws's WebSocket class",
    async () => {
      const out = await program(["node"], "node-ws", "ws");
      expect(out.runtime).toMatch(/^node v(2\d|[3-9]\d)\./);
      expectWorked(out, "node-ws");
    },
    RUN_MS,
  );

  it(
    "works under Node 20 with its own WebSocket (--experimental-websocket), no option",
    async () => {
      const out = await program(["node", "--experimental-websocket", "--no-warnings"], "node-own", "global");
      expectWorked(out, "node-own");
    },
    RUN_MS,
  );

  it(
    "works under Bun",
    async () => {
      const out = await program([process.execPath], "bun", "global");
      expect(out.runtime).toBe("bun");
      expectWorked(out, "bun");
    },
    RUN_MS,
  );

  it(
    "types a TypeScript consumer through its exports (nodenext, strict, skipLibCheck off)",
    async () => {
      writeFileSync(join(app, "consumer.ts"), CONSUMER);
      const tsconfig = {
        compilerOptions: {
          target: "ES2022",
          module: "nodenext",
          moduleResolution: "nodenext",
          strict: true,
          noEmit: true,
          skipLibCheck: false,
          lib: ["ES2023", "DOM"],
          types: [],
        },
        files: ["consumer.ts"],
      };
      writeFileSync(join(app, "tsconfig.json"), JSON.stringify(tsconfig));
      await run(["node", join(ROOT, "node_modules/typescript/bin/tsc"), "-p", app], app);
    },
    RUN_MS,
  );
});
