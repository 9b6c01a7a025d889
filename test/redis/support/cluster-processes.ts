/**
 * Chat processes on a Redis Cluster (test/redis/support/redis-cluster.ts): where rooms live, writers
 * that resend until acknowledged, and readers (v1 and v2) that check every message they were shown
 * against the room's history, text included, across 1011 closes, reconnects and new epochs.
 *
 * The readers here are stricter than cluster.ts's Follower, which checks seqs only: after a failover
 * that lost the newest writes, a seq can be used again for another message (under a new epoch), and
 * only the text tells a reader that kept the lost one from one that is complete.
 */

import { KeySpace } from "../../../server/engines/redis/key-space";
import type { ServerProcess } from "../../support/server-process";
import { connect, type TestClient } from "../../support/test-client";
import { sleep } from "../../support/timing";
import { type Of, V2Client, v2Url } from "../../support/v2-client";
import { type Followed, Following } from "./following";
import { type ClusterNode, ownsSlot, type RedisCluster } from "./redis-cluster";

/** The key space of the engine on a cluster: the default prefix and 16 partitions. */
export const CLUSTER_KEYS = new KeySpace("chat:", 16, true);

/** Where rooms live now: the slot of each partition and the primary owning it. */
export class Placement {
  private constructor(
    private readonly slots: number[],
    private readonly primaries: ClusterNode[],
  ) {}

  static async of(cluster: RedisCluster): Promise<Placement> {
    const slots = await Promise.all(
      CLUSTER_KEYS.partitions.map((prefix) => cluster.keySlot(KeySpace.fence(prefix)[0])),
    );
    return new Placement(slots, await cluster.primaries());
  }

  /** The slot of the room's partition (every key of the room is in it). */
  slotOf(room: string): number {
    return this.slots[CLUSTER_KEYS.partitions.indexOf(CLUSTER_KEYS.room(room))] as number;
  }

  /** The primary that serves the room. */
  primaryOf(room: string): ClusterNode {
    const slot = this.slotOf(room);
    const owner = this.primaries.find((n) => ownsSlot(n, slot));
    if (!owner) throw new Error(`no primary owns slot ${slot}`);
    return owner;
  }

  get primaryPorts(): number[] {
    return this.primaries.map((p) => p.port);
  }

  /**
   * `perPrimary` room names `${stem}-N` for each primary, in the order of `primaryPorts`, so a test's
   * rooms land on every primary. No two of them share a partition, and none is in a slot of `avoid`.
   */
  rooms(stem: string, perPrimary = 1, avoid: ReadonlySet<number> = new Set()): string[][] {
    const out = this.primaries.map(() => [] as string[]);
    const used = new Set<string>();
    for (let i = 0; out.some((rooms) => rooms.length < perPrimary); i++) {
      if (i > 10_000) throw new Error(`cannot place ${perPrimary} rooms on each primary`);
      const room = `${stem}-${i}`;
      const partition = CLUSTER_KEYS.room(room);
      if (used.has(partition) || avoid.has(this.slotOf(room))) continue;
      const at = this.primaries.indexOf(this.primaryOf(room));
      const list = out[at] as string[];
      if (list.length >= perPrimary) continue;
      list.push(room);
      used.add(partition);
    }
    return out;
  }
}

/** What a reader saw that the protocol forbids; empty when all was well. */
export type Problems = string[];

/**
 * What both readers keep: the room as it was shown (seq -> text), the problems seen, and the views
 * started over.
 */
abstract class FollowingReader<C extends Followed> extends Following<C> {
  readonly view = new Map<number, string>();
  readonly problems: Problems = [];
  /** Views started over (a new epoch, or a room behind what was shown), and why. */
  resets = 0;
  readonly resetWhy: string[] = [];
  epoch: string | undefined;
  protected readonly reconnectTries = 300;

  /** Retrying for a while: a process may refuse connections while Redis is unavailable. */
  protected override attachFirst(): Promise<void> {
    return retrying(() => this.attach(), `${this.nick} to connect`);
  }

  protected gaveUp(): void {
    this.problems.push(`${this.label} could not reconnect`);
  }

  protected get shownUpTo(): number {
    return this.view.size === 0 ? 0 : Math.max(...this.view.keys());
  }

  /** How problems name this reader. */
  protected abstract get label(): string;
}

/**
 * A v1 reader that stays in a room whatever happens: when its connection closes it reconnects (to the
 * next process in turn) with `resume` and `since`. It keeps the room as it was shown (seq -> text) and
 * notes every break of guarantee 1 or 3: a seq that is not the next one, a seq shown twice. It always
 * connects with `since` (0 at first: the whole room). A welcome under another epoch than the one it
 * has seen (or with a lastSeq below its `since`) starts the view over, as a client must: it
 * reconnects with since=0 and takes the room afresh.
 */
export class Reader extends FollowingReader<TestClient> {
  private token: string | undefined;

  protected get label(): string {
    return this.nick;
  }

  /** The newest seq shown, the open connection included. */
  get lastSeq(): number {
    const live = this.live;
    return live?.chats(this.room).at(-1)?.seq ?? live?.welcome.history.at(-1)?.seq ?? this.shownUpTo;
  }

  /** Connects; a welcome that starts the room over is taken as such (a fresh view, since=0). */
  protected async attach(): Promise<void> {
    for (;;) {
      const server = this.nextServer();
      // Always with since (0 at first): the whole room, as the rooms here stay under 500 chats.
      const since = this.shownUpTo;
      const client = await connect(server.url, {
        room: this.room,
        nick: this.nick,
        since,
        ...(this.token ? { resume: this.token } : {}),
        timeoutMs: 3000,
      });
      this.token = client.welcome.resumeToken;
      const w = client.welcome;
      const newEpoch = this.epoch !== undefined && w.epoch !== this.epoch;
      if (since > 0 && (newEpoch || w.lastSeq < since)) {
        this.resets++;
        this.resetWhy.push(newEpoch ? "epoch" : `lastSeq ${w.lastSeq} < since ${since}`);
        this.view.clear();
        this.epoch = w.epoch;
        await client.close();
        continue;
      }
      this.epoch = w.epoch;
      this.client = client;
      return;
    }
  }

  /** What one connection showed, in order: its welcome history, then its live chats. */
  protected absorb(client: TestClient): void {
    for (const m of [...client.welcome.history, ...client.chats(this.room)]) this.see(m.seq, m.text);
  }

  private see(seq: number, text: string): void {
    const expected = this.shownUpTo + 1;
    if (this.view.has(seq)) this.problems.push(`${this.nick}: seq ${seq} shown twice`);
    else if (seq !== expected) this.problems.push(`${this.nick}: seq ${seq} shown after ${expected - 1}`);
    this.view.set(seq, text);
  }
}

/**
 * The v2 reader: one user in one room, reconnecting with its identity token; after each (re)connect
 * it asks `sync` from what it has, and applies the answer and the live posts by seq (the spec allows
 * a post live just before the answer to be in it too). A gap in the live stream after the answer is a
 * problem; a new epoch starts the view over (sync from 0).
 */
export class SyncReader extends FollowingReader<V2Client> {
  private identity: string | undefined;

  protected get label(): string {
    return `${this.nick} (v2)`;
  }

  /** The newest seq it holds, the open connection's live posts included. */
  get lastSeq(): number {
    let last = this.shownUpTo;
    for (const m of this.live?.received ?? []) {
      if (m.type === "chat" && m.room === this.room && m.seq > last) last = m.seq;
      if (m.type === "sync" && m.room === this.room) for (const p of m.posts) last = Math.max(last, p.seq);
    }
    return last;
  }

  protected async attach(): Promise<void> {
    const server = this.nextServer();
    const query: Record<string, string> = this.identity
      ? { identity: this.identity }
      : { nick: this.nick, room: this.room };
    const client = new V2Client(v2Url(server.url, query));
    try {
      const welcome = await client.first("welcome", 3000);
      this.identity ??= welcome.identityToken;
      const state =
        welcome.rooms.find((r) => r.room === this.room) ??
        (await client.until((m): m is Of<"joined"> => m.type === "joined" && m.room === this.room, 0, 3000));
      if (this.epoch !== undefined && state.epoch !== this.epoch) {
        this.resets++;
        this.resetWhy.push("epoch");
        this.view.clear();
      }
      this.epoch = state.epoch;
      client.send({ type: "sync", room: this.room, since: this.shownUpTo, sinceRev: 0 });
    } catch (err) {
      await client.close();
      throw err;
    }
    this.client = client;
  }

  /** Applies one connection's sync answer and live posts, in arrival order. */
  protected absorb(client: V2Client): void {
    let synced = false;
    const early: Array<{ seq: number; text: string }> = [];
    for (const m of client.received) {
      if (m.type === "sync" && m.room === this.room && !synced) {
        if (m.truncated) this.problems.push(`${this.nick} (v2): a truncated sync`);
        for (const p of m.posts) this.see(p.seq, p.text, true);
        for (const e of early) this.see(e.seq, e.text, true);
        synced = true;
      } else if (m.type === "chat" && m.room === this.room) {
        if (synced) this.see(m.seq, m.text, false);
        else early.push({ seq: m.seq, text: m.text });
      }
    }
    if (!synced && early.length > 0) this.problems.push(`${this.nick} (v2): posts but no sync answer`);
  }

  /** `overlap`: a post the answer and the live stream may both carry (same text). */
  private see(seq: number, text: string, overlap: boolean): void {
    const known = this.view.get(seq);
    if (known !== undefined) {
      if (known !== text) this.problems.push(`${this.nick} (v2): seq ${seq} shown as two texts`);
      else if (!overlap) this.problems.push(`${this.nick} (v2): seq ${seq} shown twice live`);
      return;
    }
    if (seq !== this.shownUpTo + 1)
      this.problems.push(`${this.nick} (v2): seq ${seq} shown after ${this.shownUpTo}`);
    this.view.set(seq, text);
  }
}

/**
 * Sends chats with ids `${nick}-1`, `${nick}-2`, ... one after another; each is sent again with the
 * same id after an error or a silence, and over a new connection (resume, next process in turn) when
 * the old one closed, until it is acknowledged. Every ack of every connection counts (late ones too).
 */
export class Writer {
  /** Ids sent at least once, in order. */
  readonly sent: string[] = [];
  errors = 0;
  resends = 0;
  /** What went wrong, with when (ms since the epoch): for failure messages and timelines. */
  readonly failures: Array<{ at: number; what: string }> = [];
  private readonly clients: TestClient[] = [];
  private client: TestClient | undefined;
  private token: string | undefined;
  private stopped = false;
  private running: Promise<void> = Promise.resolve();
  private turn = 0;
  /** The number of the chat in hand: a writer started again after `stop` goes on from there. */
  private k = 1;

  constructor(
    private readonly servers: () => ServerProcess[],
    readonly room: string,
    readonly nick: string,
    first = 0,
    private readonly pauseMs = 10,
  ) {
    this.turn = first;
  }

  get live(): TestClient | undefined {
    return this.client?.closeCode === undefined ? this.client : undefined;
  }

  /** id -> seq of every ack received; an id acknowledged with two seqs is a problem. */
  acks(): { acked: Map<string, number>; problems: Problems } {
    const acked = new Map<string, number>();
    const problems: Problems = [];
    for (const c of this.clients) {
      for (const a of c.all("ack")) {
        const before = acked.get(a.id);
        if (before !== undefined && before !== a.seq)
          problems.push(`${a.id} acknowledged with seq ${before} and ${a.seq}`);
        acked.set(a.id, a.seq);
      }
    }
    return { acked, problems };
  }

  get ackedCount(): number {
    return this.acks().acked.size;
  }

  async start(): Promise<void> {
    this.stopped = false;
    await retrying(() => this.ensure(), `${this.nick} to connect`);
    this.running = this.loop();
  }

  /** Stops once the chat in hand is answered (or given up); the connection stays open. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.running;
  }

  /** Stops at once and closes, for cleanup after a failure. */
  halt(): void {
    this.stopped = true;
    void this.client?.close();
  }

  private async ensure(): Promise<TestClient> {
    if (this.client && this.client.closeCode === undefined) return this.client;
    const list = this.servers();
    const server = list[this.turn++ % list.length] as ServerProcess;
    const client = await connect(server.url, {
      room: this.room,
      nick: this.nick,
      ...(this.token ? { resume: this.token } : {}),
      timeoutMs: 3000,
    });
    this.token = client.welcome.resumeToken;
    this.clients.push(client);
    this.client = client;
    return client;
  }

  private async loop(): Promise<void> {
    for (; !this.stopped; this.k++) {
      const id = `${this.nick}-${this.k}`;
      this.sent.push(id);
      // Until acknowledged; once stopping, a chat still unacknowledged is given up (it holds no claim).
      for (let attempt = 0; ; attempt++) {
        if (this.stopped && attempt > 0) return;
        let client: TestClient;
        try {
          client = await this.ensure();
        } catch (err) {
          this.errors++;
          this.failures.push({ at: Date.now(), what: `connect: ${String(err).slice(0, 120)}` });
          await sleep(100);
          continue;
        }
        if (attempt > 0) this.resends++;
        const from = client.received.length;
        client.send({ type: "chat", text: id, id });
        const outcome = await this.outcome(client, id, from, 5000);
        if (outcome === "ack") break;
        this.errors++;
        this.failures.push({ at: Date.now(), what: `${id}: ${outcome}` });
        if (outcome !== "closed") await sleep(100);
      }
      await sleep(this.pauseMs);
    }
  }

  /** Waits for this id's ack, an error naming it, the close, or the deadline. */
  private async outcome(client: TestClient, id: string, from: number, ms: number) {
    const deadline = Date.now() + ms;
    for (;;) {
      if (this.clients.some((c) => c.all("ack").some((a) => a.id === id))) return "ack";
      for (let i = from; i < client.received.length; i++) {
        const m = client.received[i];
        if (m?.type === "error" && m.id === id) return `error ${m.code} ${m.message}`;
      }
      if (client.closeCode !== undefined) return "closed";
      if (Date.now() > deadline) return "silent";
      await sleep(5);
    }
  }
}

/** Runs `attempt` until it succeeds, every 100 ms, for at most `timeoutMs`. */
export async function retrying<T>(attempt: () => Promise<T>, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await attempt();
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}: ${err}`);
      await sleep(100);
    }
  }
}

/** Polls `condition` every 25 ms until it is true, or fails naming `what` and `detail()` at the deadline. */
export async function waitUntil(
  condition: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs: number,
  detail: () => string = () => "",
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} ${detail()}`);
    await sleep(25);
  }
}

/** The messages of `history` keyed by seq (text), with a check that they are 1..n. */
export function bySeq(history: ReadonlyArray<{ seq: number; text: string }>): Map<number, string> {
  return new Map(history.map((m) => [m.seq, m.text]));
}

/** The entries of `view` that differ from `truth` (seq: shown -> stored), and what it lacks, briefly. */
export function viewDiff(view: ReadonlyMap<number, string>, truth: ReadonlyMap<number, string>): string[] {
  const out: string[] = [];
  for (const [seq, text] of truth) {
    const shown = view.get(seq);
    if (shown === undefined) out.push(`${seq} missing`);
    else if (shown !== text) out.push(`${seq}: shown ${shown}, stored ${text}`);
  }
  for (const seq of view.keys()) if (!truth.has(seq)) out.push(`${seq} shown, not stored`);
  return out.slice(0, 10);
}
