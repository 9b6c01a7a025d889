/**
 * The engine of several processes sharing one Redis. Writes go through Lua scripts (seq, nick claims,
 * dedupe), so each room changes atomically; every change is also appended to the room's stream, and
 * what a process delivers comes only from reading those streams in order, so every member on every
 * process sees one order. Sessions, dedupe ids and the rooms in use live in Redis too.
 */
import type { RedisClient } from "bun";
import { nickKey, nickVariant, type PresenceEvent } from "../../../protocol";
import type {
  Claim,
  Done,
  Engine,
  EngineConn,
  EngineSink,
  EnterRequest,
  Page,
  RenameOutcome,
  RoomCount,
  RoomSnapshot,
} from "../../chat/engine";
import { describeError, type Logger, silentLogger } from "../../chat/log";
import { Metrics } from "../../chat/metrics";
import { randomToken } from "../../chat/tokens";
import { ChatBatch } from "./chat-batch";
import { Inflight } from "./inflight";
import { ProcessPresence } from "./process-presence";
import { RedisHistory } from "./redis-history";
import { connectRedis } from "./redis-link";
import { clusterRooms } from "./room-list";
import { type ClaimReply, RoomScripts } from "./room-scripts";
import { StreamFollower } from "./stream-follower";

export interface RedisEngineOptions {
  url: string;
  resumeTtlMs: number;
  dedupeWindow: number;
  /** Key prefix, so several chats (or tests) can share one Redis. */
  prefix?: string;
  /** A process whose heartbeat is this old is dead: its users leave every room. */
  presenceTtlMs?: number;
  /** Stream entries kept per room (approximately): a reader further behind resyncs its clients. */
  streamMaxLen?: number;
  now?: () => number;
  schedule?: (fn: () => void) => void;
  log?: Logger;
  metrics?: Metrics;
}

/** Nickname variants tried per claim script. */
const CANDIDATES = 16;

/** Thrown at start when Redis cannot be reached; server.ts reports it as a configuration error. */
export class RedisUnreachable extends Error {
  override name = "RedisUnreachable";
}

export class RedisEngine<C extends EngineConn> implements Engine<C> {
  /** This process in Redis: its heartbeat key and the owner field of its users. */
  readonly procId = randomToken(9);
  readonly ready: Promise<void>;
  private sink!: EngineSink<C>;
  private readonly client: RedisClient;
  private readonly log: Logger;
  private readonly inflight: Inflight;
  private readonly scripts: RoomScripts;
  private readonly history_: RedisHistory;
  private readonly batch: ChatBatch<C>;
  private readonly presence: ProcessPresence;
  private readonly follower: StreamFollower;
  private readonly prefix: string;

  constructor(o: RedisEngineOptions) {
    this.prefix = o.prefix ?? "chat:";
    this.log = o.log ?? silentLogger;
    const metrics = o.metrics ?? new Metrics();
    const now = o.now ?? Date.now;
    this.client = connectRedis(o.url);
    this.inflight = new Inflight(this.log);
    const maxLen = String(o.streamMaxLen ?? 10_000);
    const limits = { resumeTtlMs: o.resumeTtlMs, dedupeWindow: o.dedupeWindow };
    this.scripts = new RoomScripts(this.client, this.prefix, maxLen, this.procId, limits);
    this.history_ = new RedisHistory(this.client, this.prefix);
    const base = { log: this.log, inflight: this.inflight, metrics, now };
    this.batch = new ChatBatch<C>({
      ...base,
      scripts: this.scripts,
      sink: () => this.sink,
      schedule: o.schedule ?? ((fn) => setTimeout(fn, 0)),
    });
    this.follower = new StreamFollower({
      client: this.client,
      prefix: this.prefix,
      procId: this.procId,
      ...base,
      deliver: (room, entries) => this.sink.deliver(room, entries),
    });
    this.presence = new ProcessPresence({
      ...base,
      client: this.client,
      prefix: this.prefix,
      procId: this.procId,
      maxLen,
      ttlMs: o.presenceTtlMs ?? 5000,
      resumeTtlMs: o.resumeTtlMs,
      presumedDead: () => this.sink.lost("this server was presumed dead"),
    });
    this.ready = this.start();
    this.ready.catch(() => {});
  }

  bind(sink: EngineSink<C>): void {
    this.sink = sink;
  }

  load(room: string, done: Done<RoomSnapshot>): void {
    const follow = this.follower.start(room);
    this.run(async () => {
      await this.ready;
      const [lastSeq, lastN, lastId, users, recent] = await this.scripts.snapshot(room);
      this.follower.loaded(follow, lastId);
      return {
        lastSeq,
        lastN,
        users: users.map((entry) => entry.split("|").slice(3).join("|")),
        recent: recent.map((raw) => JSON.parse(raw)).reverse(),
      };
    }, done);
  }

  unload(room: string): void {
    this.follower.stop(room);
  }

  enter(conn: C, req: EnterRequest, done: Done<Claim>): void {
    this.run(async () => {
      await this.ready;
      let token = conn.session;
      let wanted = req.wanted;
      if (req.resume !== undefined && token === "") {
        const s = await this.scripts.session(req.resume);
        const fixedOk = req.fixedNick === undefined || s.key === nickKey(req.fixedNick);
        if (s.room === req.room && s.nick && fixedOk) {
          token = req.resume;
          wanted = s.nick;
        }
      }
      if (token === "") token = randomToken();
      const reply = await this.claim(req.room, conn.id, token, wanted);
      if (reply[0] === "full") throw new Error(`no free variant of ${wanted}`);
      return { nick: reply[1], session: token, at: Number(reply[2]) };
    }, done);
  }

  leave(conn: C, room: string, ending: boolean): void {
    // A leave must not overtake the chats waiting for this turn.
    this.batch.flush();
    this.leaveLater(room, nickKey(conn.nick), conn.id, ending);
  }

  chat(conn: C, room: string, text: string, id: string | undefined): void {
    this.batch.add(conn, room, text, id);
  }

  rename(conn: C, room: string, nick: string, done: Done<RenameOutcome>): void {
    this.batch.flush();
    const event: PresenceEvent = { event: "nick", from: conn.nick, nick };
    this.run(
      () =>
        this.scripts.rename(room, conn.id, nickKey(conn.nick), nickKey(nick), nick, JSON.stringify(event)),
      done,
    );
  }

  typing(conn: C, room: string, wire: string): void {
    this.batch.flush();
    this.inflight.track(
      this.scripts
        .typing(room, conn.id, wire)
        .catch((err) => this.log.log("warn", "redis_typing_failed", describeError(err))),
    );
  }

  history(room: string, before: number, limit: number, done: Done<Page>): void {
    this.run(async () => {
      await this.ready;
      return this.history_.before(room, before, limit);
    }, done);
  }

  async roomList(): Promise<RoomCount[]> {
    await this.ready;
    return clusterRooms(this.client, this.prefix);
  }

  flush(): void {
    this.batch.flush();
  }

  sweep(): void {
    this.inflight.track(this.presence.sweepDead());
  }

  /** Waits for pending writes, removes this process from Redis and disconnects. */
  async stop(): Promise<void> {
    this.batch.flush();
    this.batch.stop();
    this.presence.stopTimers();
    await this.inflight.settle(3000);
    try {
      await this.ready;
      await this.presence.retire();
    } catch (err) {
      this.log.log("warn", "redis_retire_failed", describeError(err));
    }
    await this.follower.close();
    this.client.close();
  }

  async quiesce(): Promise<void> {
    for (let round = 0; ; round++) {
      this.batch.flush();
      await this.inflight.settle(10_000);
      const behind = await this.follower.behind();
      if (!behind && this.inflight.size === 0 && !this.batch.scheduled) return;
      if (round > 2000) throw new Error("the Redis engine never became quiet");
      await Bun.sleep(2);
    }
  }

  /** Runs `work` in flight, then hands its outcome to `done` (outside the try: done's own errors are its own). */
  private run<T>(work: () => Promise<T>, done: Done<T>): void {
    this.inflight.track(
      work().then(
        (value) => done(undefined, value),
        (err) => done(err ?? new Error("failed")),
      ),
    );
  }

  /** Connects, registers this process, then follows the streams of the rooms in use here. */
  private async start(): Promise<void> {
    try {
      await this.client.connect();
    } catch (err) {
      throw new RedisUnreachable(`cannot reach Redis: ${describeError(err).error}`);
    }
    await this.presence.beat();
    this.follower.follow(await this.client.duplicate());
    this.presence.startTimers();
  }

  /** Tries the variants of `wanted` 16 at a time until one is free (a guest name never runs out). */
  private async claim(
    room: string,
    connId: string,
    token: string,
    wanted: string | undefined,
  ): Promise<ClaimReply> {
    let reply: ClaimReply = ["full"];
    for (let skip = 1; reply[0] === "full" && skip < 4096; skip += CANDIDATES) {
      const pairs =
        wanted === undefined
          ? undefined
          : Array.from({ length: CANDIDATES }, (_, i): [string, string] => {
              const nick = nickVariant(wanted, skip + i);
              return [nickKey(nick), nick];
            });
      reply = await this.scripts.claim(room, connId, token, pairs);
    }
    return reply;
  }

  /** Removes a users entry, retrying while Redis is away (a dead process's entries are swept instead). */
  private leaveLater(room: string, key: string, connId: string, ending: boolean): void {
    const work = async () => {
      for (let attempt = 0; attempt < 240; attempt++) {
        try {
          await this.scripts.leave(room, key, connId, ending);
          return;
        } catch (err) {
          if (attempt === 0) this.log.log("warn", "redis_leave_failed", { room, ...describeError(err) });
          await Bun.sleep(250);
        }
      }
    };
    this.inflight.track(work());
  }
}
