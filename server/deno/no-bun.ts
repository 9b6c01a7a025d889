/**
 * What `import ... from "bun"` resolves to on Deno (deno.json maps it here), so the engine choice
 * (server/engines/choose.ts) and the modules it imports load there. Only the Redis engine uses Bun's
 * module, and the Deno entry refuses REDIS_URL before it would start (server/deno/deno-engine.ts).
 */
export class RedisClient {
  constructor() {
    throw new Error("Bun's RedisClient does not exist on Deno");
  }
}
