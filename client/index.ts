/** The chat client library: one ChatClient plus the pure pieces it is made of. */
export * from "./backoff";
export * from "./chat-client";
export * from "./client-events";
export * from "./commands";
export * from "./emitter";
export * from "./outbox";
export * from "./reconnecting-socket";
export * from "./roster";
export * from "./socket-url";
/** The v2 client (protocol v2, no zod): `import { ChatClientV2 } from "./client/v2"` keeps zod out of a bundle. */
export * as v2 from "./v2";
