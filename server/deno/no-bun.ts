/**
 * What `import ... from "bun"` resolves to on Deno (deno.json maps it here), so the engine choice
 * (server/engines/choose.ts) and the Redis engine load there. Only one Redis (REDIS_URL) uses Bun's
 * client, and the Deno entry refuses REDIS_URL before it would start (deno-engine.ts); a Redis
 * Cluster goes through ioredis, which Deno runs.
 */
export class RedisClient {
  constructor() {
    throw new Error("Bun's RedisClient does not exist on Deno");
  }
}
