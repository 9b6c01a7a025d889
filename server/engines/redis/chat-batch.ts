/**
 * Chats wait for the end of the turn, then go to Redis as one script per room: a burst costs one round
 * trip and keeps the order it was sent in. A failed write answers `internal`; the client may send the
 * same id again, and the dedupe in the script makes that safe.
 *
 * A write that timed out (redis-link.ts) is a failed write too, though it may still run in Redis
 * later. Then the chat appears in the room's log (everyone sees it, its sender included) while its
 * sender holds an `internal` error for its id; the late answer is dropped, so no ack ever follows an
 * error by itself. The retry with the same id is answered by the dedupe with the seq the chat got:
 * an `error`, then one `ack` for the retry, always in that order. A chat without an id cannot be
 * retried safely: sent again, it is stored twice.
 */
import type { EngineConn, EngineSink, PostMeta } from "../../chat/engine";
import { describeError, type Logger } from "../../chat/log";
import type { Metrics } from "../../chat/metrics";
import { sidOf } from "../../chat/tokens";
import type { Inflight } from "./inflight";
import type { ChatArgs, RoomScripts } from "./room-scripts";

interface PendingChat<C> {
  conn: C;
  id: string | undefined;
  args: ChatArgs;
}

export interface ChatBatchDeps<C extends EngineConn> {
  scripts: RoomScripts;
  sink: () => EngineSink<C>;
  inflight: Inflight;
  metrics: Metrics;
  log: Logger;
  now: () => number;
  /** Runs the flush after the current turn. */
  schedule: (fn: () => void) => void;
}

export class ChatBatch<C extends EngineConn> {
  private pending = new Map<string, Array<PendingChat<C>>>();
  private flushScheduled = false;
  private stopping = false;

  constructor(private readonly d: ChatBatchDeps<C>) {}

  /** A flush is due: chats are waiting for the end of the turn. */
  get scheduled(): boolean {
    return this.flushScheduled;
  }

  /**
   * Queues a chat from a connection in a room; it is stored at the next flush. A v2 post (`meta`)
   * carries its fields after v1's, in the order v2's chat message has them.
   */
  add(conn: C, room: string, text: string, id: string | undefined, meta?: PostMeta): void {
    const sentAt = new Date(this.d.now()).toISOString();
    // The script puts the seq between head and tail: the stored JSON is exactly what clients get.
    const head = `{"type":"chat","room":${JSON.stringify(room)},"seq":`;
    let tail = `,"nick":${JSON.stringify(conn.nick)},"text":${JSON.stringify(text)},"sentAt":"${sentAt}"`;
    if (meta) tail += v2Fields(meta);
    tail += "}";
    // A v2 user's ids are its own, whichever of its connections sends them (as the local engine's).
    const args: ChatArgs = meta
      ? [
          `u:${meta.userId}`,
          id ?? "",
          head,
          tail,
          String(meta.mentionIds?.length ?? 0),
          ...(meta.mentionIds ?? []),
        ]
      : [sidOf(conn.session), id ?? "", head, tail];
    const batch = this.pending.get(room) ?? [];
    batch.push({ conn, id, args });
    this.pending.set(room, batch);
    this.wake();
  }

  /** Sends this turn's chats to Redis, one script per room. */
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

  private async commit(room: string, batch: Array<PendingChat<C>>): Promise<void> {
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
      for (const p of batch) this.d.sink().failed(p.conn, p.id);
      return;
    }
    batch.forEach((p, i) => {
      this.d.sink().committed(p.conn, room, p.id, Math.abs(seqs[i] ?? 0));
    });
  }
}

/** What a v2 post adds to the stored JSON: each field only when it applies (an empty mentions list is none). */
function v2Fields(meta: PostMeta): string {
  let out = `,"userId":${JSON.stringify(meta.userId)}`;
  if (meta.kind === "action") out += `,"kind":"action"`;
  if (meta.replyTo !== undefined) out += `,"replyTo":${meta.replyTo}`;
  if (meta.mentions !== undefined && meta.mentions.length > 0)
    out += `,"mentions":${JSON.stringify(meta.mentions)}`;
  return out;
}
