/**
 * The engine of several processes sharing one Redis. Writes go through Lua scripts (seq, nick claims,
 * dedupe), so each room changes atomically; every change is also appended to the room's stream, and
 * what a process delivers comes only from reading those streams in order, so every member on every
 * process sees one order. Sessions, dedupe ids and the rooms in use live in Redis too.
 *
 * No command waits longer than `commandTimeoutMs` (redis-link.ts): a hung Redis is an outage. A
 * command that timed out may still run later, so each kind is made safe for that: a chat by its id
 * (chat-batch.ts), a claim by a leave sent right behind it, a rename by adopting its late outcome, a
 * leave by retrying it until it lands (claims.ts); heartbeats are judged by Redis's clock, with a
 * grace after Redis itself was silent (scripts.ts). After Redis answers again, after this process
 * was swept, and every `reconcileIntervalMs`, the process reconciles its users with Redis (claims.ts).
 */
import { nickKey, nickVariant } from "../../../protocol";
import {
  type ChangeOutcome,
  type ChangePage,
  type ChangeRequest,
  type Claim,
  type Done,
  type Engine,
  type EngineConn,
  type EngineSink,
  type EnterRequest,
  type Kick,
  NickTakenError,
  type Page,
  type Post,
  type PostMeta,
  type RenameOutcome,
  type RoomCount,
  type RoomSnapshot,
} from "../../chat/engine";
import { describeError, type Logger, silentLogger } from "../../chat/log";
import { Metrics } from "../../chat/metrics";
import { newTokenPart, randomToken, secretOf, sidOf, tokenOf } from "../../chat/tokens";
import { ChatBatch } from "./chat-batch";
import { Claims } from "./claims";
import { Inflight } from "./inflight";
import { KeySpace } from "./key-space";
import { ProcessPresence } from "./process-presence";
import { RedisHistory } from "./redis-history";
import { RedisLink, RedisUnavailable, sleep } from "./redis-link";
import { RedisUsers } from "./redis-users";
import { clusterRooms } from "./room-list";
import { type ClaimReply, RoomScripts, type UserClaimReply } from "./room-scripts";
import { StreamFollower } from "./stream-follower";
import { BLOCK_MS } from "./stream-reader";
import type { ClusterLogin, HostPort, RedisTarget } from "./wire-client";

export interface RedisEngineOptions {
  /** One Redis... */
  url?: string | undefined;
  /** ...or the seed nodes of a Redis Cluster, and how to log in to its nodes. */
  cluster?: HostPort[] | undefined;
  clusterLogin?: ClusterLogin | undefined;
  /**
   * Hash-tag partitions the rooms are spread over (key-space.ts): 16 by default on a cluster; on one
   * Redis 1 (the plain layout), unless more are asked for.
   */
  partitions?: number | undefined;
  /** Replicas that must hold a chat or a change before it is acknowledged (WAIT); 0: none. */
  minReplicas?: number | undefined;
  resumeTtlMs: number;
  dedupeWindow: number;
  /** Resumable sessions one client address may hold (unlimited when absent). */
  maxSessionsPerClient?: number | undefined;
  /** Messages kept in each room's history (0: all); trimmed as chats are stored. */
  retentionMaxMessages?: number | undefined;
  /** Messages older than this leave each room's history (0: never), as chats are stored. */
  retentionMaxAgeMs?: number | undefined;
  /** Key prefix, so several chats (or tests) can share one Redis. */
  prefix?: string;
  /** A process whose heartbeat is this old is dead: its users leave every room. */
  presenceTtlMs?: number;
  /** Stream entries kept per room (approximately): a reader further behind resyncs its clients. */
  streamMaxLen?: number;
  /** Longest a Redis command may take before it counts as failed (REDIS_COMMAND_TIMEOUT_MS). */
  commandTimeoutMs?: number;
  /** How often this process reconciles its users with Redis, besides after Redis answers again. */
  reconcileIntervalMs?: number;
  now?: () => number;
  schedule?: (fn: () => void) => void;
  log?: Logger;
  metrics?: Metrics;
}

/** Partitions on a cluster unless REDIS_PARTITIONS says otherwise: spread over a few primaries. */
const DEFAULT_CLUSTER_PARTITIONS = 16;

/** Nickname variants tried per claim script. */
const CANDIDATES = 16;

/** Thrown at start when Redis cannot be reached; serve-main.ts reports it as a configuration error. */
export class RedisUnreachable extends Error {
  override name = "RedisUnreachable";

  constructor(
    message: string,
    /** The setting that named what could not be reached: REDIS_URL or REDIS_CLUSTER. */
    readonly setting: "REDIS_URL" | "REDIS_CLUSTER",
  ) {
    super(message);
  }
}

export class RedisEngine<C extends EngineConn> implements Engine<C> {
  /** This process in Redis: its heartbeat key and the owner field of its users. */
  readonly procId = randomToken(9);
  private readonly maxSessionsPerClient: number | undefined;
  private readonly onCluster: boolean;
  readonly ready: Promise<void>;
  private sink!: EngineSink<C>;
  private readonly link: RedisLink;
  private readonly claims: Claims<C>;
  private readonly log: Logger;
  private readonly reconcileIntervalMs: number;
  private timers: Array<ReturnType<typeof setTimeout>> = [];
  private every: ReturnType<typeof setInterval> | undefined;
  private stopped = false;
  private readonly inflight: Inflight;
  private readonly scripts: RoomScripts;
  private readonly history_: RedisHistory;
  private readonly batch: ChatBatch<C>;
  private readonly presence: ProcessPresence;
  private readonly follower: StreamFollower;
  private readonly keys: KeySpace;
  private readonly now: () => number;
  /** v2's users, memberships and read markers, in Redis; its events reach every process. */
  readonly users: RedisUsers;

  constructor(o: RedisEngineOptions) {
    const target: RedisTarget =
      o.cluster && o.cluster.length > 0
        ? { cluster: o.cluster, login: o.clusterLogin }
        : { url: o.url ?? "redis://127.0.0.1:6379" };
    const onCluster = "cluster" in target;
    this.onCluster = onCluster;
    const partitions = o.partitions ?? (onCluster ? DEFAULT_CLUSTER_PARTITIONS : 1);
    this.keys = new KeySpace(o.prefix ?? "chat:", partitions, onCluster || partitions > 1);
    this.log = o.log ?? silentLogger;
    const metrics = o.metrics ?? new Metrics();
    const now = o.now ?? Date.now;
    this.now = now;
    const timeoutMs = o.commandTimeoutMs ?? 2000;
    this.reconcileIntervalMs = o.reconcileIntervalMs ?? 30_000;
    this.link = new RedisLink({ ...target, timeoutMs, log: this.log, name: "main" });
    this.inflight = new Inflight(this.log);
    const maxLen = String(o.streamMaxLen ?? 10_000);
    this.maxSessionsPerClient = o.maxSessionsPerClient;
    const limits = {
      resumeTtlMs: o.resumeTtlMs,
      dedupeWindow: o.dedupeWindow,
      retentionMaxMessages: o.retentionMaxMessages ?? 0,
      retentionMaxAgeMs: o.retentionMaxAgeMs ?? 0,
      minReplicas: o.minReplicas ?? 0,
    };
    this.scripts = new RoomScripts(this.link, this.keys, maxLen, this.procId, limits);
    this.history_ = new RedisHistory(this.link, this.keys);
    const base = { log: this.log, inflight: this.inflight, metrics, now };
    this.batch = new ChatBatch<C>({
      ...base,
      scripts: this.scripts,
      sink: () => this.sink,
      schedule: o.schedule ?? ((fn) => setTimeout(fn, 0)),
    });
    this.follower = new StreamFollower({
      link: this.link,
      keys: this.keys,
      // XREAD BLOCK holds its own connection for up to BLOCK_MS before it answers.
      readerLink: () =>
        new RedisLink({ ...target, timeoutMs: timeoutMs + BLOCK_MS, log: this.log, name: "reader" }),
      procId: this.procId,
      ...base,
      deliver: (room, entries) => {
        for (const e of entries) {
          if (e.kind === "replaced") this.claims.replaced(room, e.conn);
          else if (e.kind === "presence" && e.userId !== undefined && e.event.event === "nick")
            this.claims.userRenamed(room, e.userId, e.event.nick);
        }
        this.sink.deliver(room, entries);
      },
      resync: (room, why, backwards) => {
        if (!backwards) return this.sink.resync(room, why);
        // A new history generation first, so the members' reload meets it (scripts.ts NEW_EPOCH).
        this.inflight.track(
          this.scripts
            .newEpoch(room, backwards.epoch)
            .catch((err) => this.log.log("warn", "redis_new_epoch_failed", { room, ...describeError(err) }))
            .finally(() => this.sink.resync(room, why)),
        );
      },
    });
    this.presence = new ProcessPresence({
      ...base,
      link: this.link,
      keys: this.keys,
      procId: this.procId,
      maxLen,
      ttlMs: o.presenceTtlMs ?? 5000,
      resumeTtlMs: o.resumeTtlMs,
      swept: () => this.reconcile(),
    });
    this.claims = new Claims<C>({
      link: this.link,
      scripts: this.scripts,
      keys: this.keys,
      procId: this.procId,
      inflight: this.inflight,
      log: this.log,
      evict: (conn, why) => this.sink.evict(conn, why),
      unregistered: () => this.beatNow(),
    });
    this.users = new RedisUsers({
      ...base,
      link: this.link,
      keys: this.keys,
      procId: this.procId,
      run: (work, done) =>
        this.run(async () => {
          await this.ready;
          return work();
        }, done),
      local: (userId, event) => this.sink.user(userId, event),
    });
    // Redis answers again: beat at once (the others may be waiting to call this process dead), and put
    // right what was lost or ran late meanwhile, now and once more when whatever a dropped connection
    // left in Redis's buffers has surely run.
    this.link.onRecovered(() => {
      this.beatNow();
      this.later(0, () => this.reconcile());
      this.later(Math.max(1000, 2 * timeoutMs), () => this.reconcile());
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
      const [lastSeq, lastN, lastId, users, recent, epoch, flatOwners, lastRev, topic] =
        await this.scripts.snapshot(room);
      this.follower.loaded(follow, lastId, lastN, epoch);
      const owners = new Map<string, string>();
      for (let i = 0; i + 1 < flatOwners.length; i += 2)
        owners.set(flatOwners[i + 1] as string, flatOwners[i] as string);
      return {
        epoch,
        lastSeq,
        lastN,
        lastRev,
        topic,
        users: users.map((entry) => entry.split("|").slice(3).join("|")),
        owners,
        recent: recent.map((raw) => JSON.parse(raw)).reverse(),
      };
    }, done);
  }

  unload(room: string): void {
    this.follower.stop(room);
  }

  enter(conn: C, req: EnterRequest, done: Done<Claim>): void {
    if (req.user) {
      this.enterUser(conn, req.room, req.user, done);
      return;
    }
    this.run(async () => {
      await this.ready;
      // A session is `sid` in Redis; its token `sid.secret` gets a new secret on every resume.
      let token = conn.session === "" ? "" : sidOf(conn.session);
      let fresh = false;
      let wanted = req.wanted;
      let secret = conn.session === "" ? "" : secretOf(conn.session);
      if (req.resume !== undefined && token === "") {
        const sid = sidOf(req.resume);
        const s = await this.scripts.session(req.room, sid);
        const fixedOk = req.fixedNick === undefined || s.key === nickKey(req.fixedNick);
        const next = newTokenPart();
        if (
          s.room === req.room &&
          s.nick &&
          fixedOk &&
          s.secret !== null &&
          s.secret === secretOf(req.resume) &&
          (await this.scripts.rotate(req.room, sid, s.secret, next))
        ) {
          token = sid;
          secret = next;
          wanted = s.nick;
        }
      }
      if (token === "") {
        token = newTokenPart();
        secret = newTokenPart();
        fresh = true;
      }
      this.claims.claiming(conn, req.room);
      let reply: ClaimReply;
      try {
        reply = await this.claim(req.room, conn.id, token, wanted);
      } catch (err) {
        // Unless it was never sent, the claim may have run (or still run): give it back behind it.
        this.claims.enterFailed(conn, req.room, token, !(err instanceof RedisUnavailable));
        throw err;
      }
      if (reply[0] === "full") {
        this.claims.enterFailed(conn, req.room, token, false);
        throw new Error(`no free variant of ${wanted}`);
      }
      // A session that moved here from another partition is a new copy: it takes the secret along.
      if (!fresh && this.keys.partitions.length > 1) await this.scripts.rotate(req.room, token, "", secret);
      // A new session's hash exists once claimed: its first secret goes in now, before anyone has it.
      if (fresh) {
        await this.scripts.rotate(req.room, token, "", secret);
        if (this.maxSessionsPerClient !== undefined && req.client)
          await this.scripts.capSessions(req.room, req.client, token, Date.now(), this.maxSessionsPerClient);
      }
      this.claims.entered(conn, req.room, reply[1], token);
      return { nick: reply[1], session: tokenOf(token, secret), at: Number(reply[2]) };
    }, done);
  }

  /**
   * v2: the connection joins its user's claim in the room (made, with a join, by the user's first
   * connection anywhere). No session: a v2 user's chats are deduplicated by user (chat-batch.ts).
   */
  private enterUser(conn: C, room: string, user: { userId: string; nick: string }, done: Done<Claim>): void {
    this.run(async () => {
      await this.ready;
      this.claims.claiming(conn, room);
      let reply: UserClaimReply;
      try {
        reply = await this.scripts.claimUser(room, conn.id, user.userId, nickKey(user.nick), user.nick);
      } catch (err) {
        this.claims.enterFailed(conn, room, "", !(err instanceof RedisUnavailable), user.userId);
        throw err;
      }
      if (reply[0] === "taken") {
        this.claims.enterFailed(conn, room, "", false, user.userId);
        throw new NickTakenError(user.nick, room);
      }
      this.claims.entered(conn, room, reply[1], "", user.userId);
      return { nick: reply[1], session: "", at: Number(reply[2]) };
    }, done);
  }

  leave(conn: C, room: string, ending: boolean): void {
    // A leave must not overtake the chats waiting for this turn.
    this.batch.flush();
    this.claims.leave(conn, room, ending);
  }

  chat(conn: C, room: string, text: string, id: string | undefined, meta?: PostMeta): void {
    this.batch.add(conn, room, text, id, meta);
  }

  /**
   * Renames in Redis. The connection's leave, if it closes before the answer, finds the renamed entry
   * through its session (scripts.ts LEAVE). A rename that timed out and then ran anyway is adopted
   * when its late answer comes (or at the next reconcile): Redis and every list have the new name,
   * so the connection takes it too; its client saw `internal`, then its own `nick` event.
   */
  rename(conn: C, room: string, nick: string, done: Done<RenameOutcome>): void {
    this.batch.flush();
    const userId = this.claims.userOf(conn.id, room) ?? conn.userId;
    if (userId !== undefined) {
      this.renameUser(conn, room, userId, nick, done);
      return;
    }
    const from = conn.nick;
    const call = this.scripts.rename(room, conn.id, nickKey(from), nickKey(nick), nick, sidOf(conn.session));
    this.run(async () => {
      try {
        const outcome = await call.reply;
        if (outcome === "ok") this.claims.renamed(conn.id, nick);
        return outcome;
      } catch (err) {
        call.late?.then(
          (outcome) => {
            if (outcome !== "ok" || this.claims.nickOf(conn.id, room) !== from) return;
            this.log.log("info", "redis_rename_adopted", { conn: conn.id, room });
            this.claims.renamed(conn.id, nick);
            conn.nick = nick;
          },
          () => {},
        );
        throw err;
      }
    }, done);
  }

  /**
   * v2: renames the user's claim in the room. Its connections here take the name from the nick event
   * as the room's log brings it (so also when the answer timed out and the rename ran anyway).
   */
  private renameUser(conn: C, room: string, userId: string, nick: string, done: Done<RenameOutcome>): void {
    const call = this.scripts.renameUser(room, conn.id, userId, nickKey(nick), nick);
    this.run(async () => {
      const outcome = await call.reply;
      if (outcome === "ok") this.claims.userRenamed(room, userId, nick);
      return outcome;
    }, done);
  }

  post(room: string, seq: number, done: Done<Post | undefined>): void {
    this.run(async () => {
      await this.ready;
      return this.history_.post(room, seq);
    }, done);
  }

  /**
   * One script (change-scripts.ts CHANGE): checked, numbered, folded into the post, kept and logged
   * at once. Chats waiting for this turn go first, so the change keeps its place after them.
   */
  change(room: string, req: ChangeRequest, done: Done<ChangeOutcome>): void {
    this.batch.flush();
    const at = new Date(this.now()).toISOString();
    this.run(async () => {
      await this.ready;
      return this.scripts.change(room, req, at);
    }, done);
  }

  changes(room: string, sinceRev: number, upTo: number, limit: number, done: Done<ChangePage>): void {
    this.run(async () => {
      await this.ready;
      return this.history_.changes(room, sinceRev, upTo, limit);
    }, done);
  }

  /** Logged in the room's stream, so every process hears it in the room's order; nothing is stored. */
  kick(room: string, kick: Kick): void {
    this.batch.flush();
    this.inflight.track(
      this.scripts
        .kick(room, kick)
        .catch((err) => this.log.log("warn", "redis_kick_failed", describeError(err))),
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
    return clusterRooms(this.link, this.keys);
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
    for (const t of this.timers) clearTimeout(t);
    this.timers = [];
    clearInterval(this.every);
    this.stopped = true;
    await this.inflight.settle(3000);
    // Leaves still retrying give up: retiring removes every user of this process anyway.
    this.claims.stop();
    try {
      await this.ready;
      await this.presence.retire();
    } catch (err) {
      this.log.log("warn", "redis_retire_failed", describeError(err));
    }
    await this.follower.close();
    this.link.close();
  }

  async quiesce(): Promise<void> {
    for (let round = 0; ; round++) {
      this.batch.flush();
      await this.inflight.settle(10_000);
      const behind = await this.follower.behind();
      if (!behind && this.inflight.size === 0 && !this.batch.scheduled) return;
      if (round > 2000) throw new Error("the Redis engine never became quiet");
      await sleep(2);
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
      await this.link.connect();
    } catch (err) {
      throw new RedisUnreachable(
        `cannot reach Redis: ${describeError(err).error}`,
        this.onCluster ? "REDIS_CLUSTER" : "REDIS_URL",
      );
    }
    await this.presence.beat();
    await this.users.listen(this.follower);
    this.follower.follow();
    this.presence.startTimers();
    // Periodically too (while Redis answers: its recovery starts one anyway).
    this.every = setInterval(() => {
      if (!this.link.unhealthy) this.reconcile();
    }, this.reconcileIntervalMs);
    this.every.unref?.();
  }

  /** Reconciles this process's users with Redis (claims.ts); a failure waits for the next occasion. */
  private reconcile(): void {
    if (this.stopped) return;
    this.inflight.track(
      this.claims
        .reconcile()
        .catch((err) => this.log.log("warn", "redis_reconcile_failed", describeError(err))),
    );
  }

  /** A heartbeat out of turn; a failure is the timer's next beat's to retry. */
  private beatNow(): void {
    if (this.stopped) return;
    this.inflight.track(this.presence.beat().catch(() => {}));
  }

  private later(ms: number, fn: () => void): void {
    if (this.stopped) return;
    const t = setTimeout(() => {
      this.timers = this.timers.filter((x) => x !== t);
      fn();
    }, ms);
    t.unref?.();
    this.timers.push(t);
  }

  /**
   * The next guest number from the chat's one counter; while the node holding it is away (a failover
   * on a cluster), a random one of 7 digits, so guests still get in (the claim keeps names unique in
   * the room either way).
   */
  private async guestNumber(): Promise<number> {
    try {
      return await this.scripts.nextGuest();
    } catch (err) {
      this.log.log("warn", "redis_guest_counter_failed", describeError(err));
      return 1_000_000 + Math.floor(Math.random() * 9_000_000);
    }
  }

  /**
   * Tries the variants of `wanted` 16 at a time until one is free; without `wanted`, guest-N names one
   * number at a time (a guest name never runs out). The first script also takes over the session's
   * own entry, if it still has one.
   */
  private async claim(
    room: string,
    connId: string,
    token: string,
    wanted: string | undefined,
  ): Promise<ClaimReply> {
    let reply: ClaimReply = ["full"];
    for (let skip = 1; reply[0] === "full" && skip < 4096; skip += CANDIDATES) {
      let pairs: Array<[string, string]>;
      if (wanted === undefined) {
        const nick = `guest-${await this.guestNumber()}`;
        pairs = [[nickKey(nick), nick]];
      } else {
        pairs = Array.from({ length: CANDIDATES }, (_, i): [string, string] => {
          const nick = nickVariant(wanted, skip + i);
          return [nickKey(nick), nick];
        });
      }
      reply = await this.scripts.claim(room, connId, token, pairs);
    }
    return reply;
  }
}
