/** The v2 chat client: ChatClientV2 and the pure pieces it is made of. No zod anywhere in here. */

export * from "../resilient-socket";
export * from "./api";
export * from "./chat-client-v2";
export * from "./guards";
export * from "./room-model";
export * from "./words";
