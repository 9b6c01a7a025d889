/**
 * Entering a room: a resume token reclaims its session's nickname, otherwise the first free variant of
 * the wanted one (or a guest name) is claimed in Redis. The welcome waits until this process has
 * replayed that claim, so it agrees with everything published here after it.
 */
import { CLOSE, LIMITS, nickKey, PROTOCOL_VERSION } from "../../protocol";
import { describeError, type Logger } from "../log";
import { randomToken } from "../session";
import type { Connections } from "./connections";
import { type RedisConnection, safely } from "./redis-connection";
import type { ClaimReply, RoomScripts } from "./room-scripts";
import type { RoomViews, View } from "./room-views";

export interface EnterOptions {
  since: number | undefined;
  resume?: string | undefined;
  /** Wanted nickname; undefined asks for a guest name. */
  wanted: string | undefined;
}

export interface RoomEntryDeps {
  scripts: RoomScripts;
  views: RoomViews;
  connections: Connections;
  log: Logger;
  /** The connection has its welcome: the frames it sent meanwhile may run now. */
  welcomed: (conn: RedisConnection) => void;
}

/** Nickname variants tried per claim script. */
const CANDIDATES = 16;

export class RoomEntry {
  constructor(private readonly d: RoomEntryDeps) {}

  /** Claims a nickname in `room` and schedules the welcome for when this process has replayed the claim. */
  async enter(conn: RedisConnection, room: string, opts: EnterOptions): Promise<void> {
    const { views, connections } = this.d;
    const view = views.acquire(room);
    try {
      await view.ready;
      let token = conn.session;
      let wanted = opts.wanted;
      if (opts.resume !== undefined && token === "") {
        const s = await this.d.scripts.session(opts.resume);
        const fixedOk = conn.fixedNick === undefined || s.key === nickKey(conn.fixedNick);
        if (s.room === room && s.nick && fixedOk) {
          token = opts.resume;
          wanted = s.nick;
        }
      }
      if (token === "") token = randomToken();
      const [kind, nick = "", at = "0-0"] = await this.claim(room, conn.id, token, wanted);
      if (kind === "full") throw new Error(`no free variant of ${wanted}`);
      conn.session = token;
      conn.nick = nick;
      conn.key = nickKey(nick);
      if (conn.state === "closed" || view.broken) {
        // Gone while we waited: give the entry back (a leave event, since others may have seen the join).
        connections.leaveLater(room, conn.key, conn.id, true);
        if (conn.state !== "closed") connections.resync(conn, "room replica went out of step");
        views.release(view);
        return;
      }
      conn.claimed = true;
      conn.view = view;
      view.members.set(conn.id, conn);
      views.at(view, at, () => this.welcome(conn, view, opts.since));
    } catch (err) {
      views.release(view);
      if (conn.state === "closed") return;
      this.d.log.log("error", "redis_enter_failed", { conn: conn.id, room, ...describeError(err) });
      connections.evict(conn, CLOSE.internal, "the chat store is unavailable; try again");
    }
  }

  /** Subscribes the connection to its room and sends the welcome, then the acks that waited for it. */
  welcome(conn: RedisConnection, view: View, since: number | undefined): void {
    if (conn.state === "closed" || conn.view !== view) return;
    const page =
      since === undefined ? view.latest(LIMITS.welcomeHistory) : view.after(since, LIMITS.sinceMax);
    if (conn.subscribed !== view.topic) {
      safely(() => conn.peer.subscribe(view.topic), this.d.log);
      conn.subscribed = view.topic;
    }
    conn.state = "live";
    this.d.connections.send(conn, {
      type: "welcome",
      protocol: PROTOCOL_VERSION,
      connectionId: conn.id,
      room: view.name,
      nick: conn.nick,
      users: view.sortedUsers(),
      history: page.messages,
      historyTruncated: page.more,
      lastSeq: view.lastSeq,
      resumeToken: conn.session,
    });
    const late = conn.lateAcks;
    conn.lateAcks = [];
    for (const { id, seq } of late) this.d.connections.send(conn, { type: "ack", id, seq });
    this.d.welcomed(conn);
  }

  /** Tries the variants of `wanted` 16 at a time until one is free (a guest name never runs out). */
  private async claim(
    room: string,
    connId: string,
    token: string,
    wanted: string | undefined,
  ): Promise<ClaimReply> {
    let reply: ClaimReply = ["full"];
    for (let skip = 0; reply[0] === "full" && skip < 4096; skip += CANDIDATES) {
      const pairs = wanted === undefined ? undefined : candidates(wanted, skip);
      reply = await this.d.scripts.claim(room, connId, token, pairs);
    }
    return reply;
  }
}

/** `nick`, `nick-2`, `nick-3`, ... (cut to the length limit), from the `skip`-th on, with their keys. */
function candidates(nick: string, skip: number): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (let i = skip; i < skip + CANDIDATES; i++) {
    let name = nick;
    if (i > 0) {
      const suffix = `-${i + 1}`;
      name = [...nick].slice(0, LIMITS.nickMax - suffix.length).join("") + suffix;
    }
    out.push([nickKey(name), name]);
  }
  return out;
}
