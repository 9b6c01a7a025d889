/**
 * The v2 chat client, `@bun-chat/client/v2`: ChatClientV2 and the pure pieces it is made of, and the
 * error and send types it shares with v1. No zod anywhere in here.
 */

export * from "../chat-error";
export * from "../resilient-socket";
export * from "../sending";
export type { ReadyOptions } from "../waiters";
export * from "./api";
export * from "./chat-client-v2";
export * from "./guards";
export * from "./room-model";
export * from "./words";
