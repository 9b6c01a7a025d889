/**
 * The room replicas this process keeps: one per room with members here or on their way in, made on
 * first use and loaded from the engine's snapshot, dropped when the last one leaves or when it falls
 * out of step with the room's log.
 */

import type { Connection } from "./connection";
import type { Engine, EngineConn } from "./engine";
import { Replica } from "./replica";

export class Replicas {
  private readonly byName = new Map<string, Replica<Connection>>();

  constructor(private readonly engine: Engine<EngineConn>) {}

  /** The room's replica, made and loading if there is none in step; hold it until `release`. */
  acquire(room: string): Replica<Connection> {
    let replica = this.byName.get(room);
    if (!replica || replica.broken) {
      const fresh = new Replica<Connection>(room, this.engine.pages === undefined);
      this.byName.set(room, fresh);
      replica = fresh;
      this.engine.load(room, (err, snapshot) => {
        if (err !== undefined && err !== null) fresh.loadFailed(err);
        else if (snapshot) fresh.applySnapshot(snapshot);
      });
    }
    replica.holds++;
    return replica;
  }

  release(replica: Replica<Connection>): void {
    replica.holds--;
    if (replica.holds <= 0) this.forget(replica);
  }

  /** Drops `replica` if it is still the room's current one (a fresh one may have replaced it). */
  forget(replica: Replica<Connection>): void {
    if (this.byName.get(replica.name) !== replica) return;
    this.byName.delete(replica.name);
    this.engine.unload(replica.name);
  }

  /** The room's replica while it is loaded and in step. */
  get(room: string): Replica<Connection> | undefined {
    const replica = this.byName.get(room);
    return replica?.loaded && !replica.broken ? replica : undefined;
  }

  all(): IterableIterator<Replica<Connection>> {
    return this.byName.values();
  }
}
