/**
 * The room views this process keeps: one per room with members here or on their way in, made on first
 * use, loaded from a snapshot, forgotten when the last one leaves or when it falls out of step.
 */

import type { RedisConnection } from "./redis-connection";
import { roomKey } from "./redis-history";
import { streamIdAfter } from "./redis-link";
import { RoomView, type SnapshotReply } from "./room-view";

export type View = RoomView<RedisConnection>;

export class RoomViews {
  private readonly byName = new Map<string, View>();

  constructor(
    private readonly prefix: string,
    private readonly snapshot: (room: string) => Promise<SnapshotReply>,
    /** A view was loaded: the stream reader has one more stream to follow. */
    private readonly loaded: () => void,
  ) {}

  /** The room's view, made and loading if there is none in step; hold it until `release`. */
  acquire(room: string): View {
    let view = this.byName.get(room);
    if (!view || view.broken) {
      const fresh = new RoomView<RedisConnection>(room);
      fresh.ready = this.load(fresh);
      fresh.ready.catch(() => {});
      this.byName.set(room, fresh);
      view = fresh;
    }
    view.holds++;
    return view;
  }

  release(view: View): void {
    view.holds--;
    if (view.holds <= 0) this.forget(view);
  }

  /** Drops `view` if it is still the room's current one (a fresh view may have replaced it). */
  forget(view: View): void {
    if (this.byName.get(view.name) === view) this.byName.delete(view.name);
  }

  /** The views the stream reader follows: loaded and in step. */
  following(): View[] {
    return [...this.byName.values()].filter((v) => v.loaded && !v.broken);
  }

  /** The view whose stream is `key`, while it is followed. */
  byStreamKey(key: string): View | undefined {
    const view = this.byName.get(key.slice(this.prefix.length + "room:".length, -":log".length));
    return view?.loaded && !view.broken ? view : undefined;
  }

  streamKey(view: View): string {
    return roomKey(this.prefix, view.name, "log");
  }

  /** Runs `fn` once `view` has applied the stream entry `id` (at once if it already has). */
  at(view: View, id: string, fn: () => void): void {
    if (!streamIdAfter(id, view.lastId)) fn();
    else view.waiters.push({ at: id, run: fn });
  }

  private async load(view: View): Promise<void> {
    try {
      view.applySnapshot(await this.snapshot(view.name));
      this.loaded();
    } catch (err) {
      view.broken = true;
      throw err;
    }
  }
}
