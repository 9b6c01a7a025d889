/**
 * Frame-level protocol abuse from an independent client: bad_frames.py (Debian's python3-autobahn)
 * sends one invalid frame per connection and reports the close frame the server answered with.
 */
import { afterAll, describe, expect, it } from "bun:test";
import { join } from "node:path";
import { closeAllClients, connect } from "../support/test-client";
import { startTestServer, stopAllServers } from "../support/test-server";

afterAll(async () => {
  await closeAllClients();
  await stopAllServers();
});

/** Debian's interpreter: the python3 first on PATH does not see apt's packages. */
const PYTHON = "/usr/bin/python3";
const SCRIPT = join(import.meta.dir, "bad_frames.py");

function autobahnMissing(): string | undefined {
  try {
    const probe = Bun.spawnSync([PYTHON, "-c", "import autobahn"], { stdout: "ignore", stderr: "pipe" });
    return probe.exitCode === 0 ? undefined : probe.stderr.toString().trim().split("\n").at(-1);
  } catch (err) {
    return String(err);
  }
}

const missing = autobahnMissing();
if (missing !== undefined) {
  const why = `python3-autobahn is not usable with ${PYTHON} (${missing}); apt-get install python3-autobahn`;
  if (process.env.CI) throw new Error(`${why}: required when CI is set`);
  console.warn(`SKIPPING frame-abuse tests: ${why}`);
}

interface CaseResult {
  case: string;
  expected: number | number[];
  closeCode?: number | null;
  closeReason?: string;
  tcpClosedWithoutCloseFrame?: boolean;
  textFrames?: string[];
  error?: string;
}

describe("frame-level abuse (python3-autobahn)", () => {
  it.skipIf(missing !== undefined)(
    "answers every invalid frame with its RFC 6455 close code and goes on serving",
    async () => {
      const maxPayload = 8192;
      // A small per-IP limit: a slot leaked by any abused connection would refuse the client after.
      const srv = startTestServer({ MAX_PAYLOAD: String(maxPayload), MAX_CONNECTIONS_PER_IP: "8" });
      const watcher = await connect(srv.url, { room: "abuse", nick: "watcher" });
      const proc = Bun.spawn([PYTHON, SCRIPT, srv.url.hostname, srv.url.port, String(maxPayload)], {
        stdout: "pipe",
        stderr: "pipe",
      });
      const [out, err, code] = await Promise.all([
        new Response(proc.stdout).text(),
        new Response(proc.stderr).text(),
        proc.exited,
      ]);
      expect({ code, err }).toEqual({ code: 0, err: "" });
      const results = out
        .trim()
        .split("\n")
        .map((line) => JSON.parse(line) as CaseResult);

      const table = results.map((r) => `${String(r.closeCode ?? "-").padStart(5)}  ${r.case}`);
      console.log(`frame abuse: ${results.length} cases, closes seen:\n${table.join("\n")}`);
      expect(results.length).toBeGreaterThanOrEqual(30);
      for (const r of results) {
        const expected = Array.isArray(r.expected) ? r.expected : [r.expected];
        expect({
          case: r.case,
          error: r.error,
          closeCodeExpected: expected.includes(r.closeCode ?? -1),
        }).toEqual({
          case: r.case,
          error: undefined,
          closeCodeExpected: true,
        });
      }
      // The control case is a working client: it got its welcome and the answer to `who`.
      const control = results[0] as CaseResult;
      expect(control.textFrames?.some((t) => t.startsWith('{"type":"users"'))).toBe(true);

      // Every abused connection joined and left the room; nothing else reached the watcher.
      const events = () => watcher.all("presence").flatMap((p) => p.events);
      const count = (kind: string) => events().filter((e) => e.event === kind).length;
      await watcher.waitUntil(() => count("leave") === results.length, "a leave per abused connection");
      expect(count("join")).toBe(results.length);
      expect(watcher.received.slice(1).filter((m) => m.type !== "presence")).toEqual([]);
      expect(srv.hub.connectionCount).toBe(1);
      watcher.send({ type: "who" });
      expect((await watcher.next("users")).users).toEqual(["watcher"]);

      // The server still serves normal clients, up to the per-IP limit: every abused slot was given back.
      const after = await connect(srv.url, { room: "abuse", nick: "after" });
      const third = await connect(srv.url, { room: "abuse", nick: "third" });
      for (let i = 0; i < 5; i++) await connect(srv.url, { room: "abuse", nick: `more${i}` });
      after.send({ type: "chat", text: "still here", id: "alive" });
      expect(await after.next("ack")).toMatchObject({ id: "alive", seq: 1 });
      expect((await third.next("chat")).text).toBe("still here");
      expect(watcher.closeCode).toBeUndefined();
    },
    20_000,
  );
});
