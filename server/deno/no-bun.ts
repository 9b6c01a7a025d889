/**
 * What `import ... from "bun"` resolves to on Deno (deno.json maps it here), so the engine choice
 * (server/engines/choose.ts) and the Redis engine load there. Its Redis client is never made on
 * Deno: wire-client.ts takes ioredis where Bun is missing.
 */
export class RedisClient {
  constructor() {
    throw new Error("Bun's RedisClient does not exist on Deno");
  }
}
