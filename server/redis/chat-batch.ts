/**
 * Chats wait for the end of the turn, then go to Redis as one script per room: a burst costs one round
 * trip and keeps the order it was sent in. A failed write answers `internal`; the client may send the
 * same id again, and the dedupe in the script makes that safe.
 */
import type { ChatRequest } from "../../protocol";
import { describeError, type Logger } from "../log";
import type { Metrics } from "../metrics";
import type { Connections } from "./connections";
import type { Inflight } from "./inflight";
import type { RedisConnection } from "./redis-connection";
import type { RoomScripts } from "./room-scripts";
import type { StreamReplay } from "./stream-replay";

interface PendingChat {
  conn: RedisConnection;
  id: string | undefined;
  args: [string, string, string, string];
}

export interface ChatBatchDeps {
  scripts: RoomScripts;
  connections: Connections;
  replay: StreamReplay;
  inflight: Inflight;
  metrics: Metrics;
  log: Logger;
  now: () => number;
  /** Runs the flush after the current turn. */
  schedule: (fn: () => void) => void;
}

export class ChatBatch {
  private pending = new Map<string, PendingChat[]>();
  private flushScheduled = false;
  private stopping = false;

  constructor(private readonly d: ChatBatchDeps) {}

  /** A flush is due: chats are waiting for the end of the turn. */
  get scheduled(): boolean {
    return this.flushScheduled;
  }

  /** Queues a chat from a connection in a room; it is stored at the next flush. */
  add(conn: RedisConnection, room: string, msg: ChatRequest): void {
    const sentAt = new Date(this.d.now()).toISOString();
    // The script puts the seq between head and tail: the stored JSON is exactly what clients get.
    const head = `{"type":"chat","room":${JSON.stringify(room)},"seq":`;
    const tail = `,"nick":${JSON.stringify(conn.nick)},"text":${JSON.stringify(msg.text)},"sentAt":"${sentAt}"}`;
    const batch = this.pending.get(room) ?? [];
    batch.push({ conn, id: msg.id, args: [conn.session, msg.id ?? "", head, tail] });
    this.pending.set(room, batch);
    this.wake();
  }

  /** Sends this turn's chats to Redis, one script per room; acks follow the replay of each message. */
  flush(): void {
    this.flushScheduled = false;
    if (this.pending.size === 0) return;
    const batches = this.pending;
    this.pending = new Map();
    for (const [room, batch] of batches) this.d.inflight.track(this.commit(room, batch));
  }

  /** No more flushes on their own: only explicit `flush` calls send what is left. */
  stop(): void {
    this.stopping = true;
  }

  private wake(): void {
    if (this.flushScheduled || this.stopping) return;
    this.flushScheduled = true;
    this.d.schedule(() => this.flush());
  }

  private async commit(room: string, batch: PendingChat[]): Promise<void> {
    let seqs: number[];
    try {
      seqs = await this.d.scripts.chats(
        room,
        batch.map((p) => p.args),
      );
      this.d.metrics.storeCommits++;
    } catch (err) {
      this.d.metrics.storeFailures++;
      this.d.log.log("error", "redis_commit_failed", { room, messages: batch.length, ...describeError(err) });
      for (const p of batch)
        this.d.connections.fail(p.conn, "internal", "the message could not be stored; send it again", p.id);
      return;
    }
    batch.forEach((p, i) => {
      if (p.id !== undefined) this.d.replay.ackAfterReplay(p.conn, room, p.id, Math.abs(seqs[i] ?? 0));
    });
  }
}
