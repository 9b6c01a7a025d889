/**
 * RedisEngines without a hub, for tests of the engine itself: a sink that records what it is given,
 * plain connections, and a way to make one "process" die without a word (no retire: its heartbeat just
 * stops, as after kill -9), or go silent for a while and come back.
 */
import type { EngineConn, EngineSink, PostMeta, RoomEntry } from "../../../server/chat/engine";
import type { UserEvent } from "../../../server/chat/users";
import { RedisEngine, type RedisEngineOptions } from "../../../server/engines/redis/redis-engine";

export class Recorder implements EngineSink<EngineConn> {
  readonly logs = new Map<string, RoomEntry[]>();
  readonly commits = new Map<string, number>();
  readonly failures: string[] = [];
  readonly evictions: string[] = [];
  readonly userEvents: Array<{ userId: string; event: UserEvent }> = [];

  deliver(room: string, entries: readonly RoomEntry[]): void {
    const log = this.logs.get(room) ?? [];
    log.push(...entries);
    this.logs.set(room, log);
  }

  committed(conn: EngineConn, room: string, id: string | undefined, seq: number): void {
    this.commits.set(`${conn.id}/${room}/${id ?? seq}`, seq);
  }

  failed(conn: EngineConn, id: string | undefined): void {
    this.failures.push(`${conn.id}/${id}`);
  }

  resync(): void {}

  evict(conn: EngineConn, why: string): void {
    this.evictions.push(`${conn.id}: ${why}`);
  }

  user(userId: string, event: UserEvent): void {
    this.userEvents.push({ userId, event });
  }

  /** The presence entries of `room` as "event nick [userId]" lines. */
  presence(room: string): string[] {
    const out: string[] = [];
    for (const e of this.logs.get(room) ?? []) {
      if (e.kind !== "presence") continue;
      const ev = e.event;
      const what = ev.event === "nick" ? `nick ${ev.from}->${ev.nick}` : `${ev.event} ${ev.nick}`;
      out.push(e.userId === undefined ? what : `${what} [${e.userId}]`);
    }
    return out;
  }

  /** The chat entries of `room`. */
  chats(room: string): Array<Extract<RoomEntry, { kind: "chat" }>> {
    return (this.logs.get(room) ?? []).filter((e) => e.kind === "chat");
  }

  /** Number of the last entry delivered for `room`. */
  lastN(room: string): number {
    return this.logs.get(room)?.at(-1)?.n ?? 0;
  }
}

export interface TestEngine {
  engine: RedisEngine<EngineConn>;
  sink: Recorder;
}

export async function startEngine(
  url: string,
  prefix: string,
  options: Partial<RedisEngineOptions> = {},
): Promise<TestEngine> {
  const engine = new RedisEngine<EngineConn>({
    url,
    prefix,
    resumeTtlMs: 60_000,
    dedupeWindow: 100,
    schedule: (fn) => setTimeout(fn, 0),
    ...options,
  });
  const sink = new Recorder();
  engine.bind(sink);
  await engine.ready;
  return { engine, sink };
}

let conns = 0;

/** A connection as the core makes one: v2 ones carry their user's id. */
export function conn(nick: string, userId?: string): EngineConn {
  const c: EngineConn = { id: `c${++conns}-${nick}`, session: "", nick };
  if (userId !== undefined) c.userId = userId;
  return c;
}

/** A callback call as a promise. */
export function call<T>(f: (done: (err: unknown, value?: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => {
    f((err, value) => (err === undefined || err === null ? resolve(value as T) : reject(err)));
  });
}

/** Stores a chat and waits until it is committed: its seq. */
export async function post(
  t: TestEngine,
  c: EngineConn,
  room: string,
  text: string,
  meta?: PostMeta,
): Promise<number> {
  const id = `p${++conns}`;
  t.engine.chat(c, room, text, id, meta);
  const key = `${c.id}/${room}/${id}`;
  for (let i = 0; i < 500; i++) {
    const seq = t.sink.commits.get(key);
    if (seq !== undefined) return seq;
    if (t.sink.failures.includes(`${c.id}/${id}`)) throw new Error(`chat ${id} failed`);
    await Bun.sleep(2);
  }
  throw new Error(`chat ${id} was never committed`);
}

/** The engine's parts a test reaches into to stop its heartbeat, as if its process froze or died. */
interface Insides {
  presence: { stopTimers(): void; startTimers(): void };
  claims: { stop(): void };
  follower: { close(): Promise<void> };
  link: { close(): void };
  every: ReturnType<typeof setInterval> | undefined;
  stopped: boolean;
  batch: { stop(): void };
}

/** The process dies without a word: no more heartbeats, no retire; its keys stay for the others to sweep. */
export async function dieAbruptly(t: TestEngine): Promise<void> {
  const e = t.engine as unknown as Insides;
  e.stopped = true;
  e.batch.stop();
  e.presence.stopTimers();
  clearInterval(e.every);
  e.claims.stop();
  await e.follower.close();
  e.link.close();
}

/** The process stops beating (frozen, cut off) until `thaw`; meanwhile the others may sweep it. */
export function freeze(t: TestEngine): { thaw: () => void } {
  const e = t.engine as unknown as Insides;
  e.presence.stopTimers();
  return { thaw: () => e.presence.startTimers() };
}
