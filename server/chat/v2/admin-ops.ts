/**
 * What the admin HTTP API does, in the core: the same rules and the same changes as a moderator's
 * requests on the socket, by an actor called `admin`, and the ban check v1 upgrades ask for.
 */
import { nickKey, type v2 } from "../../../protocol";
import type { Connection } from "../connection";
import type { Replica } from "../replica";
import type { Replicas } from "../replicas";
import type { UserStore } from "../users";
import type { Actor, ChangeRequests, Refusal } from "./change-requests";

/** The admin API acts as this moderator: `by` in the changes and kicks it makes. */
export const ADMIN: Actor = { nick: "admin", userId: undefined, mod: true };

export type AdminOutcome = "ok" | "not_found";

export class AdminOps {
  constructor(
    private readonly d: {
      replicas: Replicas;
      users: UserStore;
      changes: ChangeRequests;
      wallNow: () => number;
    },
  ) {}

  delete(room: string, seq: number): Promise<AdminOutcome> {
    return this.change(room, { type: "delete", room, seq });
  }

  topic(room: string, topic: string): Promise<AdminOutcome> {
    return this.change(room, { type: "topic", room, topic });
  }

  kick(room: string, nick: string, reason?: string): Promise<AdminOutcome> {
    return this.moderate(room, { nick, reason });
  }

  ban(room: string, nick: string, seconds?: number, reason?: string): Promise<AdminOutcome> {
    return this.moderate(room, { nick, reason, ban: { seconds } });
  }

  unban(room: string, userId: string): Promise<boolean> {
    return new Promise((resolve, reject) =>
      this.d.users.unban(room, userId, (err, found) => (err ? reject(err) : resolve(found === true))),
    );
  }

  /** Whether `nick` is banned from `room` now (a v1 connection asking to come in). */
  isBanned(room: string, nick: string): Promise<boolean> {
    return new Promise((resolve, reject) =>
      this.d.users.banned(room, { nickKey: nickKey(nick) }, this.d.wallNow(), (err, ban) =>
        err ? reject(err) : resolve(ban !== undefined),
      ),
    );
  }

  private change(
    room: string,
    msg: v2.ClientMessageV2 & { type: "delete" | "topic" },
  ): Promise<AdminOutcome> {
    return new Promise((resolve, reject) =>
      this.d.changes.apply(room, ADMIN, msg, (refusal) => settle(refusal, resolve, reject)),
    );
  }

  private moderate(
    room: string,
    kick: { nick: string; reason?: string | undefined; ban?: { seconds?: number | undefined } },
  ): Promise<AdminOutcome> {
    return new Promise((resolve, reject) => {
      const replica = this.d.replicas.acquire(room);
      replica.whenLoaded((err) => {
        if (err !== undefined) {
          this.d.replicas.release(replica);
          return reject(err);
        }
        this.d.changes.moderate(replica as Replica<Connection>, ADMIN, kick, (refusal) => {
          this.d.replicas.release(replica);
          settle(refusal, resolve, reject);
        });
      });
    });
  }
}

function settle(
  refusal: Refusal | undefined,
  resolve: (o: AdminOutcome) => void,
  reject: (e: Error) => void,
): void {
  if (!refusal) resolve("ok");
  else if (refusal.code === "not_found") resolve("not_found");
  else reject(new Error(refusal.message));
}
