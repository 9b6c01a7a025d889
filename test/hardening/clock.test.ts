/**
 * Steps of the wall clock (libfaketime moves it under a running server) must not touch timeouts: a
 * +40 s step keeps every live client, a -1 h step still drops a dead one within the heartbeat
 * timeout. Skipped with a message without Debian's libfaketime, and a failure under CI.
 */
import { afterAll, describe, expect, it } from "bun:test";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RawWebSocket } from "../support/raw-websocket";
import { killAllServerProcesses, spawnServer } from "../support/server-process";
import { closeAllClients, connect } from "../support/test-client";
import { eventually } from "../support/timing";

const LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1";
const available = existsSync(LIB);
if (!available) {
  if (process.env.CI) throw new Error(`${LIB} is missing and CI is set (apt-get install faketime)`);
  console.warn("skipping the clock-step tests: libfaketime is not installed (apt-get install faketime)");
}

const dir = mkdtempSync(join(tmpdir(), "chat-clock-"));
afterAll(async () => {
  await closeAllClients();
  await killAllServerProcesses();
  rmSync(dir, { recursive: true, force: true });
});

/** A server whose wall clock follows the offset written in `file` (read again on every call). */
async function serverWithClock(file: string) {
  writeFileSync(file, "+0");
  return spawnServer({
    DB_PATH: ":memory:",
    LD_PRELOAD: LIB,
    FAKETIME_TIMESTAMP_FILE: file,
    FAKETIME_NO_CACHE: "1",
    FAKETIME_DONT_FAKE_MONOTONIC: "1",
    HEARTBEAT_INTERVAL_SECONDS: "0.2",
    HEARTBEAT_TIMEOUT_SECONDS: "2",
  });
}

describe.skipIf(!available)("a step of the wall clock", () => {
  it("forward by 40 s keeps every live client connected", async () => {
    const file = join(dir, "forward");
    const srv = await serverWithClock(file);
    const clients = await Promise.all(
      [1, 2, 3, 4, 5].map((i) => connect(srv.url, { room: "r", nick: `c${i}` })),
    );
    writeFileSync(file, "+40s");
    await Bun.sleep(1200);
    expect(clients.map((c) => c.closeCode)).toEqual([undefined, undefined, undefined, undefined, undefined]);
    await clients[0]?.post("still", 1);
  });

  it("back by an hour still drops a dead peer within the heartbeat timeout", async () => {
    const file = join(dir, "backward");
    const srv = await serverWithClock(file);
    const watcher = await connect(srv.url, { room: "r", nick: "watcher" });
    const dead = await RawWebSocket.open(srv.url, { room: "r", nick: "dead" });
    await watcher.next("presence", (p) => p.events.some((e) => e.event === "join" && e.nick === "dead"));
    dead.pause();
    writeFileSync(file, "-3600s");
    await eventually(
      () =>
        watcher.all("presence").some((p) => p.events.some((e) => e.event === "leave" && e.nick === "dead")),
      "the dead peer to be dropped",
      4000,
    );
    dead.destroy();
  });
});
