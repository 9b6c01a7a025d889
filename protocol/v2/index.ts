/**
 * Wire protocol v2 (shared/PROTOCOL.md, "Wire protocol v2"): users, many rooms per connection, posts
 * and changes. Imported as `v2` from protocol/ (`v2.ChatRequest`, `v2.decodeClientMessageV2`). The
 * entry points carry `V2` in their names (unions, decoders, encode, limits, codes) so they sit beside
 * v1's without renaming; the schemas of single messages do not, the namespace says it.
 */
export * from "./client-messages";
export * from "./codes";
export * from "./decode";
export * from "./limits";
export * from "./names";
export * from "./server-messages";
