/**
 * The room scripts of scripts.ts called with plain values: callers never build an ARGV list, and each
 * reply comes back typed. One instance per process: it carries the prefix, stream length and process id.
 */
import type { RedisClient } from "bun";
import { LIMITS } from "../../../protocol";
import { runScript } from "./redis-link";
import { CHAT, CLAIM, LEAVE, RENAME, SNAPSHOT, TYPING } from "./scripts";

/** What the snapshot script returns: seq, n, last stream id, user entries, newest chats descending. */
export type SnapshotReply = [number, number, string, string[], string[]];

/** A claim's outcome: joined ('j') or took over its own session's entry ('r'), or no candidate free. */
export type ClaimReply = [kind: "j" | "r", nick: string, at: number] | [kind: "full"];

/** Where a session stands in Redis: its room, nickname and nickname key; nulls once it expired. */
export interface SessionEntry {
  room: string | null;
  nick: string | null;
  key: string | null;
}

export class RoomScripts {
  constructor(
    private readonly client: RedisClient,
    private readonly prefix: string,
    private readonly maxLen: string,
    private readonly procId: string,
    private readonly limits: { resumeTtlMs: number; dedupeWindow: number },
  ) {}

  /** The room's counters, users and newest chats, consistent with one stream position. */
  async snapshot(room: string): Promise<SnapshotReply> {
    return (await runScript(this.client, SNAPSHOT, [this.prefix, room, LIMITS.sinceMax])) as SnapshotReply;
  }

  async session(token: string): Promise<SessionEntry> {
    const [room = null, nick = null, key = null] = (await this.client.send("HMGET", [
      `${this.prefix}sess:${token}`,
      "room",
      "nick",
      "key",
    ])) as Array<string | null>;
    return { room, nick, key };
  }

  /** Claims the first free of `candidates` ([nickKey, nick] pairs), or a guest name when there are none. */
  async claim(
    room: string,
    connId: string,
    token: string,
    candidates: Array<[string, string]> | undefined,
  ): Promise<ClaimReply> {
    const guest = candidates === undefined ? "1" : "0";
    const pairs = (candidates ?? []).flat();
    return (await this.onRoom(CLAIM, room, this.procId, connId, token, guest, ...pairs)) as ClaimReply;
  }

  /** Stores a batch of chats, each as [session, clientId or "", head, tail]; one seq each (negative: a repeat). */
  async chats(room: string, messages: Array<[string, string, string, string]>): Promise<number[]> {
    return (await this.onRoom(CHAT, room, this.limits.dedupeWindow, ...messages.flat())) as number[];
  }

  async rename(
    room: string,
    connId: string,
    oldKey: string,
    newKey: string,
    nick: string,
    event: string,
  ): Promise<"ok" | "taken" | "gone"> {
    const [outcome] = (await this.onRoom(RENAME, room, oldKey, newKey, nick, connId, event)) as [
      "ok" | "taken" | "gone",
    ];
    return outcome;
  }

  /** Gives up the users entry `key` if `connId` still holds it; `ending` starts its session's expiry. */
  async leave(room: string, key: string, connId: string, ending: boolean): Promise<void> {
    await this.onRoom(LEAVE, room, key, connId, ending ? "1" : "0", this.limits.resumeTtlMs);
  }

  async typing(room: string, connId: string, data: string): Promise<void> {
    await this.onRoom(TYPING, room, connId, data);
  }

  /** The scripts that append to a room's stream all start with P, room, maxlen. */
  private onRoom(script: string, room: string, ...rest: Array<string | number>): Promise<unknown> {
    return runScript(this.client, script, [this.prefix, room, this.maxLen, ...rest]);
  }
}
