/**
 * Reads the streams of every room this process has members in, on its own connection (XREAD BLOCK
 * holds it), from the last id applied per room. After a Redis blip it simply reads on from those ids,
 * so nothing is skipped. A per-process wake stream interrupts the block when a room is added.
 * Its link's timeout is the block plus the command timeout: a read that times out is read again
 * from the same ids (what it would have returned comes with the next one).
 */
import { describeError, type Logger } from "../../chat/log";
import { type RedisLink, sleep } from "./redis-link";

/** One stream entry as RESP3 gives it: id and a flat field/value list. */
export type StreamEntry = [string, string[]];

export interface ReaderSource {
  /** The streams to read now: key and last id applied. */
  streams(): Array<{ key: string; lastId: string }>;
  /** New entries of one stream, in stream order; the next read waits for a promise returned. */
  apply(key: string, entries: StreamEntry[]): void | Promise<void>;
}

const BATCH = 1000;
/** How long one XREAD waits in Redis for new entries. */
export const BLOCK_MS = 5000;

export class StreamReader {
  private stopped = false;
  private wakeId = "0-0";
  private done: Promise<void> = Promise.resolve();
  /** Failed reads in a row: the wait before the next one grows with it. */
  failures = 0;

  constructor(
    private readonly link: RedisLink,
    private readonly wakeKey: string,
    private readonly source: ReaderSource,
    private readonly log: Logger,
  ) {}

  start(): void {
    this.done = this.loop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.link.close();
    await this.done;
  }

  private async loop(): Promise<void> {
    // A reader may start long after the process (its partition's first room): its link connects first.
    for (let attempt = 0; !this.stopped; attempt++) {
      try {
        await this.link.connect();
        break;
      } catch (err) {
        if (attempt === 0) this.log.log("warn", "redis_reader_failed", describeError(err));
        await sleep(Math.min(1000, 50 * 2 ** Math.min(attempt, 5)));
      }
    }
    while (!this.stopped) {
      const streams = this.source.streams();
      const keys = [this.wakeKey, ...streams.map((s) => s.key)];
      const ids = [this.wakeId, ...streams.map((s) => s.lastId)];
      let reply: Record<string, StreamEntry[]> | null;
      try {
        reply = (await this.link.send("XREAD", [
          "COUNT",
          String(BATCH),
          "BLOCK",
          String(BLOCK_MS),
          "STREAMS",
          ...keys,
          ...ids,
        ])) as Record<string, StreamEntry[]> | null;
        if (this.failures > 0) this.log.log("info", "redis_reader_resumed", { after: this.failures });
        this.failures = 0;
      } catch (err) {
        if (this.stopped) return;
        if (this.failures++ === 0) this.log.log("warn", "redis_reader_failed", describeError(err));
        await sleep(Math.min(1000, 50 * 2 ** Math.min(this.failures, 5)));
        continue;
      }
      if (!reply || this.stopped) continue;
      // Each stream's entries in order; the streams side by side (what they name is read at once).
      const applied: Array<Promise<void>> = [];
      for (const [key, entries] of Object.entries(reply)) {
        if (key === this.wakeKey) this.wakeId = entries.at(-1)?.[0] ?? this.wakeId;
        else applied.push(this.applyStream(key, entries));
      }
      await Promise.all(applied);
    }
  }

  private async applyStream(key: string, entries: StreamEntry[]): Promise<void> {
    try {
      await this.source.apply(key, entries);
    } catch (err) {
      this.log.log("error", "redis_apply_failed", { key, ...describeError(err) });
    }
  }
}

/** A flat [field, value, ...] list as an object. */
export function entryFields(flat: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) out[flat[i] as string] = flat[i + 1] as string;
  return out;
}
