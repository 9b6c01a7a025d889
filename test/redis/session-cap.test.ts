/** MAX_SESSIONS_PER_IP over Redis: an address keeps at most that many resumable sessions, the oldest ended ones going first. */
import { afterEach, describe, expect, it } from "bun:test";
import { closeAllClients, connect } from "../support/test-client";
import { startTestServerOn, stopAllServers } from "../support/test-server";
import { eventually } from "../support/timing";
import { privateRedis } from "./support/redis-server";

const redis = privateRedis();
afterEach(async () => {
  await closeAllClients();
  await stopAllServers();
});

describe.skipIf(!redis.available)("resumable sessions per address, over Redis", () => {
  it("keeps at most MAX_SESSIONS_PER_IP, forgetting the oldest ended ones first", async () => {
    const srv = startTestServerOn(
      { kind: "redis", url: redis.url() },
      { MAX_SESSIONS_PER_IP: "3", TRUSTED_PROXIES: "127.0.0.1" },
    );
    const tokens: string[] = [];
    for (let i = 0; i < 5; i++) {
      const c = await connect(srv.url, { room: "r", nick: `n${i}` });
      tokens.push(c.welcome.resumeToken);
      await c.close();
      // Ended in Redis (its leave has run) before the next one counts against the cap.
      await eventually(() => srv.hub.connectionCount === 0, "the close to reach the server");
      await Bun.sleep(50);
    }
    const elsewhere = await connect(srv.url, {
      room: "r",
      nick: "far",
      headers: { "X-Forwarded-For": "203.0.113.9" },
    });
    const nicks: string[] = [];
    for (const resume of [...tokens].reverse()) {
      const c = await connect(srv.url, { room: "r", resume });
      nicks.push(c.welcome.nick);
      await c.close();
      await Bun.sleep(50);
    }
    expect(nicks.slice(0, 3)).toEqual(["n4", "n3", "n2"]);
    expect(nicks.slice(3).some((n) => n === "n0" || n === "n1")).toBe(false);
    expect(elsewhere.closeCode).toBeUndefined();
  });
});
