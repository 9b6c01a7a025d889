/** Several `server.ts` processes on one private redis-server, and a client that follows a room across failures. */

import type { ChatMessage } from "../../../protocol";
import type { RoomCount } from "../../../server/chat/engine";
import { spawnServer } from "../../support/server-process";
import { connect, type TestClient } from "../../support/test-client";
import { sleep } from "../../support/timing";
import { usersFrom } from "../../support/user-list";
import { Following } from "./following";
import type { RedisProcess } from "./redis-server";

/** Presence expiry the cluster tests run with: a killed process's users leave within about this. */
export const PRESENCE_TTL_SECONDS = 1.5;

export function spawnCluster(redis: RedisProcess, count: number, env: Record<string, string> = {}) {
  return Promise.all(
    Array.from({ length: count }, () =>
      spawnServer({
        REDIS_URL: redis.url,
        PRESENCE_TTL_SECONDS: String(PRESENCE_TTL_SECONDS),
        RATE_LIMIT: "0",
        ...env,
      }),
    ),
  );
}

/** A room's whole history through one process's HTTP API, paging back with `before`. */
export async function allMessages(base: URL, room: string): Promise<ChatMessage[]> {
  const out: ChatMessage[] = [];
  let before = "";
  for (;;) {
    const res = await fetch(new URL(`/api/rooms/${room}/messages?limit=200${before}`, base));
    if (res.status !== 200) throw new Error(`history answered ${res.status}`);
    const page = (await res.json()) as { messages: ChatMessage[]; hasMore: boolean };
    out.unshift(...page.messages);
    if (!page.hasMore || page.messages.length === 0) return out;
    before = `&before=${page.messages[0]?.seq}`;
  }
}

/** `GET /api/rooms` answered by one process. */
export async function roomsFrom(base: URL): Promise<RoomCount[]> {
  const res = await fetch(new URL("/api/rooms", base));
  if (res.status !== 200) throw new Error(`/api/rooms answered ${res.status}`);
  return (await res.json()) as RoomCount[];
}

/** Polls an async `condition` every 20 ms until it is true, or fails naming `what`. */
export async function until(
  condition: () => Promise<boolean>,
  what: string,
  timeoutMs = 5000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** The user list a client holds: welcome users plus presence events applied in order. */
export function userList(client: TestClient): string[] {
  return usersFrom([client.welcome, ...client.received]).sort();
}

/**
 * A reader that stays in a room whatever happens: when its connection closes it reconnects (to the
 * next process that answers) with `resume` and `since`. `seqs` is every chat seq it was shown, in
 * order, welcome histories included: gapless and strictly increasing unless something was lost.
 */
export class Follower extends Following<TestClient> {
  readonly seqs: number[] = [];
  protected readonly reconnectTries = 200;
  private token: string | undefined;

  /** The newest seq shown so far, the open connection included. */
  get lastSeq(): number {
    const live = this.live;
    return live?.chats(this.room).at(-1)?.seq ?? live?.welcome.history.at(-1)?.seq ?? this.seqs.at(-1) ?? 0;
  }

  protected gaveUp(): void {
    throw new Error(`${this.nick} could not reconnect`);
  }

  protected async attach(): Promise<void> {
    const since = this.seqs.at(-1);
    const client = await connect(this.nextServer().url, {
      room: this.room,
      nick: this.nick,
      ...(since === undefined ? {} : { since }),
      ...(this.token ? { resume: this.token } : {}),
      timeoutMs: 1500,
    });
    this.token = client.welcome.resumeToken;
    this.client = client;
  }

  /** Appends what one connection showed: its welcome history, then its live chats. */
  protected absorb(client: TestClient): void {
    for (const m of client.welcome.history) this.seqs.push(m.seq);
    for (const m of client.chats(this.room)) this.seqs.push(m.seq);
  }
}

/** Fails with the first place where `seqs` is not 1, 2, 3, ..., n. */
export function gapless(seqs: number[]): { firstBreak: number | null; count: number } {
  const i = seqs.findIndex((s, k) => s !== k + 1);
  return { firstBreak: i === -1 ? null : i, count: seqs.length };
}
