/**
 * The local engine checkpoints its store only once nothing was committed for CHECKPOINT_IDLE_MS:
 * busy turns never pay for it. And SqliteStore's checkpoint moves the WAL into the database.
 */
import { describe, expect, it } from "bun:test";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { EngineConn, EngineSink } from "../server/chat/engine";
import { LocalEngine } from "../server/engines/local/local-engine";
import { CHECKPOINT_IDLE_MS } from "../server/engines/local/local-writer";
import { MemoryStore } from "../server/engines/local/memory-store";
import { SqliteStore } from "../server/engines/local/sqlite-store";

class CountingStore extends MemoryStore {
  checkpoints = 0;
  commits = 0;
  override commit(...args: Parameters<MemoryStore["commit"]>): void {
    super.commit(...args);
    this.commits++;
  }
  checkpoint(): void {
    this.checkpoints++;
  }
}

function harness() {
  const clock = { t: 0 };
  const timers: Array<{ at: number; fn: () => void }> = [];
  const store = new CountingStore();
  const engine = new LocalEngine<EngineConn>({
    store,
    resumeTtlMs: 60_000,
    dedupeWindow: 100,
    now: () => clock.t,
    schedule: () => {},
    timer: (fn, ms) => timers.push({ at: clock.t + ms, fn }),
  });
  const sink = { deliver() {}, committed() {}, failed() {}, resync() {}, evict() {}, user() {} };
  engine.bind(sink as EngineSink<EngineConn>);
  const conn: EngineConn = { id: "c1", session: "", nick: "" };
  engine.load("r", () => {});
  engine.enter(conn, { room: "r", wanted: "ann" }, (_err, claim) => {
    conn.session = claim?.session ?? "";
  });
  /** Moves the clock, running the timers that fall due. */
  const advance = (ms: number) => {
    clock.t += ms;
    for (;;) {
      const due = timers.findIndex((x) => x.at <= clock.t);
      if (due < 0) return;
      const [timer] = timers.splice(due, 1);
      timer?.fn();
    }
  };
  const post = (text: string) => {
    engine.chat(conn, "r", text, undefined);
    engine.flush(false);
  };
  return { store, advance, post, commits: () => store.commits };
}

describe("checkpoints when idle", () => {
  it("waits for CHECKPOINT_IDLE_MS of silence after the last commit, however long the traffic lasts", () => {
    const h = harness();
    h.post("first");
    for (let i = 0; i < 20; i++) {
      h.advance(CHECKPOINT_IDLE_MS / 2);
      h.post(`busy ${i}`);
    }
    expect(h.store.checkpoints).toBe(0);
    expect(h.commits()).toBeGreaterThan(20);
    h.advance(CHECKPOINT_IDLE_MS - 1);
    expect(h.store.checkpoints).toBe(0);
    h.advance(1);
    expect(h.store.checkpoints).toBe(1);
    h.advance(CHECKPOINT_IDLE_MS * 10);
    expect(h.store.checkpoints).toBe(1);
    h.post("again");
    h.advance(CHECKPOINT_IDLE_MS);
    expect(h.store.checkpoints).toBe(2);
  });

  it("SqliteStore: a checkpoint moves the WAL into the database file", () => {
    const dir = mkdtempSync(join(tmpdir(), "checkpoint-"));
    try {
      const path = join(dir, "chat.db");
      const store = new SqliteStore(path);
      const before = statSync(path).size;
      const rows = Array.from({ length: 2000 }, (_, i) => ({
        room: "r",
        seq: i + 1,
        nick: "ann",
        text: `message ${i} ${"x".repeat(100)}`,
        sentAt: 1,
        session: "s",
        clientId: null,
      }));
      store.commit(rows, []);
      expect(statSync(path).size).toBe(before);
      store.checkpoint();
      expect(statSync(path).size).toBeGreaterThan(before + 100_000);
      store.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
