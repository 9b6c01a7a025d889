/**
 * Follows the streams of the rooms in use here and replays each into this process's view of it, entry
 * by entry, delivering to the members here: chats and presence to the room's topic, typing to all but
 * the typer, owed acks after their chat, a 4001 to a connection a resume replaced. A gap in a stream
 * resyncs that room's members.
 */
import type { RedisClient } from "bun";
import { encode, type PresenceEvent } from "../../protocol";
import type { HubLimits } from "../hub";
import type { Logger } from "../log";
import type { Metrics } from "../metrics";
import type { Fanout } from "../peer";
import type { Connections } from "./connections";
import type { Inflight } from "./inflight";
import { type RedisConnection, safely } from "./redis-connection";
import { streamIdAfter } from "./redis-link";
import type { RoomViews, View } from "./room-views";
import { entryFields, type StreamEntry, StreamReader } from "./stream-reader";

export interface ReplayDeps {
  client: RedisClient;
  prefix: string;
  procId: string;
  inflight: Inflight;
  fanout: Fanout;
  metrics: Metrics;
  limits: HubLimits;
  log: Logger;
  views: RoomViews;
  connections: Connections;
}

export class StreamReplay {
  private reader: StreamReader | undefined;

  constructor(private readonly d: ReplayDeps) {}

  /** Starts reading, on `readerClient` (a connection of its own, which XREAD BLOCK holds). */
  follow(readerClient: RedisClient): void {
    const { views, log } = this.d;
    this.reader = new StreamReader(
      readerClient,
      this.wakeKey(),
      {
        streams: () => views.following().map((v) => ({ key: views.streamKey(v), lastId: v.lastId })),
        apply: (key, entries) => this.apply(key, entries),
      },
      log,
    );
    this.reader.start();
  }

  /** Interrupts the reader's blocking read, so it picks up a room just loaded. */
  wake(): void {
    const wake = this.d.client.send("XADD", [this.wakeKey(), "MAXLEN", "1", "*", "w", "1"]);
    this.d.inflight.track(wake.catch(() => {}));
  }

  async stop(): Promise<void> {
    await this.reader?.stop();
  }

  /** True while some followed room has entries not yet applied here, or a welcome waiting for one. */
  async behind(): Promise<boolean> {
    let behind = false;
    for (const view of this.d.views.following()) {
      const key = this.d.views.streamKey(view);
      const last = (await this.d.client.send("XREVRANGE", [key, "+", "-", "COUNT", "1"])) as StreamEntry[];
      const id = last[0]?.[0] ?? "0-0";
      if (streamIdAfter(id, view.lastId) || view.waiters.length > 0) behind = true;
    }
    return behind;
  }

  /** New entries of the stream `key`, in stream order. */
  apply(key: string, entries: StreamEntry[]): void {
    const view = this.d.views.byStreamKey(key);
    if (!view) return;
    let events: PresenceEvent[] = [];
    const flushEvents = () => {
      if (events.length === 0) return;
      this.publish(view, encode({ type: "presence", room: view.name, events }));
      events = [];
    };
    for (const [id, flat] of entries) {
      if (!streamIdAfter(id, view.lastId)) continue;
      const f = entryFields(flat);
      const n = Number(f.n);
      if (n !== view.lastN + 1) {
        flushEvents();
        this.resync(view, `entry ${n} follows ${view.lastN}: the stream was trimmed or reset`);
        return;
      }
      view.lastN = n;
      view.lastId = id;
      if (f.k === "p") {
        const event = JSON.parse(f.d as string) as PresenceEvent;
        view.applyPresence(event);
        events.push(event);
      } else {
        flushEvents();
        if (f.k === "c") {
          const seq = Number(f.s);
          if (seq !== view.lastSeq + 1) {
            this.resync(view, `seq ${seq} follows ${view.lastSeq}`);
            return;
          }
          view.applyChat(JSON.parse(f.d as string));
          this.publish(view, f.d as string);
          this.payAcks(view, seq);
        } else if (f.k === "r") {
          const stale = f.fp === this.d.procId ? view.members.get(f.f as string) : undefined;
          if (stale) this.d.connections.replaced(stale);
        } else if (f.k === "t") {
          this.typing(view, f.c as string, f.d as string);
        }
      }
      if (view.waiters.length > 0) {
        flushEvents();
        const due = view.waiters.filter((w) => !streamIdAfter(w.at, id));
        view.waiters = view.waiters.filter((w) => streamIdAfter(w.at, id));
        for (const w of due) w.run();
      }
    }
    flushEvents();
    this.closeSlowReaders(view);
  }

  /** An ack follows its chat: sent once this process has published that seq (or the welcome). */
  ackAfterReplay(conn: RedisConnection, room: string, id: string, seq: number): void {
    if (conn.state === "closed") return;
    const view = conn.view;
    if (view && view.name === room && view.loaded && seq > view.lastSeq) {
      const owed = view.acks.get(seq) ?? [];
      owed.push({ conn, id });
      view.acks.set(seq, owed);
    } else this.d.connections.ack(conn, id, seq);
  }

  private payAcks(view: View, seq: number): void {
    const owed = view.acks.get(seq);
    if (!owed) return;
    view.acks.delete(seq);
    for (const { conn, id } of owed) if (conn.state !== "closed") this.d.connections.ack(conn, id, seq);
  }

  private publish(view: View, data: string): void {
    if (view.members.size === 0) return;
    this.d.fanout.publish(view.topic, data);
    this.d.metrics.messagesOut += view.members.size;
  }

  private typing(view: View, from: string, data: string): void {
    if (view.members.size === 0) return;
    const typer = view.members.get(from);
    if (typer?.subscribed === view.topic)
      safely(() => typer.peer.publishOthers(view.topic, data), this.d.log);
    else this.d.fanout.publish(view.topic, data);
    this.d.metrics.messagesOut += view.members.size - (typer ? 1 : 0);
  }

  /** This process can no longer follow the room: its clients reconnect (with `since`) and get it all. */
  private resync(view: View, why: string): void {
    this.d.log.log("warn", "redis_room_resync", { room: view.name, why });
    view.broken = true;
    view.waiters = [];
    view.acks.clear();
    this.d.views.forget(view);
    for (const conn of [...view.members.values()]) this.d.connections.resync(conn, why);
  }

  private wakeKey(): string {
    return `${this.d.prefix}proc:${this.d.procId}:wake`;
  }

  private closeSlowReaders(view: View): void {
    for (const conn of view.members.values()) {
      if (conn.state === "live" && conn.peer.bufferedAmount() > this.d.limits.slowConsumerBytes)
        this.d.connections.dropSlowReader(conn);
    }
  }
}
