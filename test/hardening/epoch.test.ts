/**
 * A room's history generation (the welcome's `epoch`): the same across restarts on the same store,
 * new when the store started afresh, so a client that saw other seqs under the old one resets.
 */
import { afterAll, afterEach, describe, expect, it } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { closeAllClients, connect } from "../support/test-client";
import { startTestServer, stopAllServers, stopTestServer } from "../support/test-server";

const dir = mkdtempSync(join(tmpdir(), "chat-epoch-"));
afterEach(async () => {
  await closeAllClients();
  await stopAllServers();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function epochOf(db: string): Promise<string | undefined> {
  const srv = startTestServer({ DB_PATH: db });
  const c = await connect(srv.url, { room: "r" });
  const epoch = c.welcome.epoch;
  await c.close();
  await stopTestServer(srv);
  return epoch;
}

describe("epoch, local engine", () => {
  it("stays the same across restarts on one database, and is new for a new one", async () => {
    const db = join(dir, "a.db");
    const first = await epochOf(db);
    expect(first).toMatch(/^[\w-]{8,}$/);
    expect(await epochOf(db)).toBe(first);
    rmSync(db, { force: true });
    rmSync(`${db}-wal`, { force: true });
    rmSync(`${db}-shm`, { force: true });
    expect(await epochOf(db)).not.toBe(first);
    expect(await epochOf(join(dir, "b.db"))).not.toBe(first);
  });
});
