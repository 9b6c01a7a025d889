/**
 * The chat client library, `@bun-chat/client`: the v1 ChatClient and the pure pieces it is made of,
 * the v2 ChatClientV2 (alone and without zod from `@bun-chat/client/v2`), and the one error type.
 */
export type { Ack, ChatMessage, ErrorCode, History, Presence, Typing, Users, Welcome } from "../protocol";
export * from "./backoff";
export * from "./chat-client";
export * from "./chat-error";
export * from "./client-events";
export * from "./commands";
export * from "./emitter";
export * from "./outbox";
export * from "./reconnecting-socket";
export type { WebSocketLike } from "./resilient-socket";
export * from "./roster";
export * from "./sending";
export * from "./socket-url";
export type {
  ChatClientV2Api,
  ChatClientV2Options,
  ClientPost,
  ClientV2Events,
  ConnectionState as ConnectionStateV2,
  IdentityStore,
  PendingPost,
  ReadyInfo,
  RoomView,
} from "./v2/api";
export { ChatClientV2 } from "./v2/chat-client-v2";
export type { ReadyOptions } from "./waiters";
