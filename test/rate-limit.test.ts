/** The token bucket and the per-connection gates that both hubs use. */
import { describe, expect, it } from "bun:test";
import { ConnectionLimits, gateOf, TokenBucket } from "../server/chat/rate-limit";

const LIMITS = {
  rateLimit: 2,
  rateBurst: 3,
  controlRate: 1,
  controlBurst: 1,
  frameRate: 0,
  frameBurst: 1,
  floodCloseAfter: 3,
};

describe("TokenBucket", () => {
  it("allows the burst at once, then the rate, and never saves more than the burst", () => {
    const b = new TokenBucket(2, 3, 0);
    expect([b.take(0), b.take(0), b.take(0), b.take(0)]).toEqual([true, true, true, false]);
    expect([b.take(500), b.take(500)]).toEqual([true, false]);
    expect([b.take(60_000), b.take(60_000), b.take(60_000), b.take(60_000)]).toEqual([
      true,
      true,
      true,
      false,
    ]);
  });

  it("never refuses with rate 0", () => {
    const b = new TokenBucket(0, 1, 0);
    for (let i = 0; i < 1000; i++) expect(b.take(0)).toBe(true);
  });
});

describe("ConnectionLimits", () => {
  it("gives each gate its own bucket", () => {
    const l = new ConnectionLimits(LIMITS, 0);
    expect([l.take("control", 0), l.take("chat", 0), l.take("frame", 0)]).toEqual(["ok", "ok", "ok"]);
    expect(l.take("control", 0)).toBe("refused");
  });

  it("says flooding once refusals in a row reach the limit, and passed() starts the count again", () => {
    const l = new ConnectionLimits(LIMITS, 0);
    l.take("control", 0);
    expect([l.take("control", 0), l.take("control", 0)]).toEqual(["refused", "refused"]);
    l.passed();
    expect([l.take("control", 0), l.take("control", 0), l.take("control", 0)]).toEqual([
      "refused",
      "refused",
      "flooding",
    ]);
  });

  it("maps chat to its own gate, nick/join/history/who to control, typing to none", () => {
    expect(["chat", "nick", "join", "history", "who", "typing"].map(gateOf)).toEqual([
      "chat",
      "control",
      "control",
      "control",
      "control",
      undefined,
    ]);
  });
});
