/** What server.ts needs from the chat logic: ChatHub (one process) and RedisHub (several) both provide it. */
import type { ConnectParams } from "../protocol";
import type { Metrics } from "./metrics";
import type { Peer } from "./peer";
import type { Page } from "./store";

/** One row of `GET /api/rooms`. */
export interface RoomCount {
  room: string;
  users: number;
}

export interface ChatService<C extends { readonly id: string } = { readonly id: string }> {
  readonly metrics: Metrics;
  readonly connectionCount: number;
  /** Rooms with at least one user, busiest first: ChatHub answers at once, RedisHub for the whole cluster. */
  roomList(): RoomCount[] | Promise<RoomCount[]>;
  open(peer: Peer, params: ConnectParams & { fixedNick?: string }): C;
  receive(conn: C, frame: string | ArrayBuffer | ArrayBufferView): void;
  close(conn: C, code: number): void;
  /** `force`: write and send everything now, holding nothing back (at shutdown). */
  flush(force?: boolean): void;
  shutdown(): void;
  sweep(): void;
}

/** A room's stored messages for `GET /api/rooms/:room/messages`: SQLite answers at once, Redis later. */
export interface HistorySource {
  before(room: string, before: number, limit: number): Page | Promise<Page>;
}
