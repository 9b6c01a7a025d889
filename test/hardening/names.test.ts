/**
 * Look-alike nicknames over real sockets, on each engine: names that look the same are the same name
 * (case folding plus the confusable skeleton of UTS #39), and a name mixing scripts beyond UTS #39's
 * "highly restrictive" level is nick_invalid.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "bun:test";
import { RedisProcess, redisAvailable } from "../redis/support/redis-server";
import { upgradeRequest } from "../support/http-upgrade";
import { closeAllClients, connect, type TestClient } from "../support/test-client";
import {
  type StartOptions,
  startTestServerOn,
  stopAllServers,
  type TestEngine,
} from "../support/test-server";

afterEach(async () => {
  await closeAllClients();
  await stopAllServers();
});

async function who(client: TestClient): Promise<string[]> {
  client.send({ type: "who" });
  return (await client.next("users")).users;
}

/** Connects `holder`, then each look-alike in turn: each must get the next free NAME-n. */
async function expectOneName(url: URL, holder: string, lookAlikes: string[]): Promise<TestClient> {
  const first = await connect(url, { room: "r", nick: holder });
  expect(first.welcome.nick).toBe(holder);
  let n = 2;
  for (const nick of lookAlikes) {
    const c = await connect(url, { room: "r", nick });
    expect({ asked: nick, got: c.welcome.nick }).toEqual({ asked: nick, got: `${nick}-${n}` });
    n++;
  }
  return first;
}

// `аnn` below starts with a Cyrillic а (U+0430): mixed with Latin, so refused. Look-alikes that are
// valid names are in one script (or mix in only digits and the like):
const CYRILLIC_PACE = "\u0440\u0430\u0441\u0435"; // расе, all Cyrillic
const CYRILLIC_PAYPAL = "\u0440\u0430\u0443\u0440\u0430\u04cf"; // раураӏ, all Cyrillic (ӏ is a palochka)

const engines: Array<[string, () => TestEngine | undefined]> = [["local", () => ({ kind: "local" })]];
let redis: RedisProcess | undefined;
if (redisAvailable()) engines.push(["redis", () => (redis ? { kind: "redis", url: redis.url } : undefined)]);

describe.each(engines)("%s engine", (name, engineOf) => {
  beforeAll(async () => {
    if (name === "redis" && !redis) redis = await RedisProcess.start();
  });
  afterAll(async () => {
    if (name === "redis") await redis?.stop();
  });
  const start = (env: Record<string, string> = {}, options: StartOptions = {}) =>
    startTestServerOn(engineOf() as TestEngine, env, options);

  describe("look-alike nicknames are one name", () => {
    it("gives a look-alike of ann asked for on connect the next NICK-n: case, fullwidth, mathematical bold", async () => {
      const srv = start();
      await expectOneName(srv.url, "ann", ["Ann", "ANN", "ａｎｎ", "ＡＮＮ", "𝐚𝐧𝐧", "𝐀𝐍𝐍"]);
    });

    it("keeps a Cyrillic name that looks like a Latin one out of its room, and the other way round", async () => {
      const srv = start();
      await expectOneName(srv.url, "pace", [CYRILLIC_PACE, "PACE"]);
      const other = start();
      await expectOneName(other.url, CYRILLIC_PAYPAL, ["paypal", "PayPal"]);
    });

    it("treats small capitals as their letters", async () => {
      const srv = start();
      await expectOneName(srv.url, "suzy", ["ꜱᴜᴢʏ"]);
    });

    it("treats straße, strasse, ſtrasse and STRASSE as one name", async () => {
      const srv = start();
      await expectOneName(srv.url, "straße", ["strasse", "ſtrasse", "STRASSE", "STRAẞE"]);
    });

    it("treats the final sigma ς as σ and Σ", async () => {
      const srv = start();
      await expectOneName(srv.url, "λογος", ["λογοσ", "ΛΟΓΟΣ"]);
    });

    it("treats a stroke overlay, long or short, and a stroked letter as one", async () => {
      const srv = start();
      // đ (U+0111), d + U+0336 combining long stroke overlay, d + U+0335 short stroke overlay.
      await expectOneName(srv.url, "đan", ["d\u0336an", "d\u0335an"]);
    });

    it("answers a rename to a look-alike of someone else's name with nick_taken and keeps the name", async () => {
      const srv = start();
      const ann = await connect(srv.url, { room: "r", nick: "ann" });
      await connect(srv.url, { room: "r", nick: "pace" });
      await connect(srv.url, { room: "r", nick: "straße" });
      const bob = await connect(srv.url, { room: "r", nick: "bob" });
      for (const nick of ["ａｎｎ", "𝐚𝐧𝐧", "ANN", CYRILLIC_PACE, "ſtrasse", "STRASSE"]) {
        bob.send({ type: "nick", nick });
        const error = await bob.next("error");
        expect({ nick, code: error.code }).toEqual({ nick, code: "nick_taken" });
      }
      expect(await who(bob)).toEqual(["ann", "bob", "pace", "straße"]);
      // The holder may still take another form of its own name.
      ann.send({ type: "nick", nick: "Ann" });
      await ann.next("presence", (p) => p.events.some((e) => e.event === "nick" && e.nick === "Ann"));
    });

    it("lets names that only share letters with others in", async () => {
      const srv = start();
      const a = await connect(srv.url, { room: "r", nick: "ann" });
      for (const nick of ["anna", "an", "bob", "ánn", "ann_", "дим", "λόγος"]) {
        const c = await connect(srv.url, { room: "r", nick });
        expect(c.welcome.nick).toBe(nick);
      }
      expect(await who(a)).toHaveLength(8);
    });
  });

  describe("names mixing scripts", () => {
    it("refuses Latin mixed with Cyrillic or Greek on connect with 400 nick_invalid", async () => {
      const srv = start();
      // аnn: Cyrillic а + Latin nn; раураl: Cyrillic with a Latin l; pαypal: a Greek alpha.
      for (const nick of ["\u0430nn", "\u0440\u0430\u0443\u0440\u0430l", "p\u03b1ypal", "Жbob"]) {
        const answer = await upgradeRequest(srv.url, { room: "r", nick });
        expect({ nick, status: answer.status, error: answer.body?.error }).toEqual({
          nick,
          status: 400,
          error: "nick_invalid",
        });
      }
    });

    it("answers a rename to a mixed-script name with nick_invalid", async () => {
      const srv = start();
      const b = await connect(srv.url, { room: "r", nick: "bob" });
      for (const nick of ["\u0430nn", "b\u043eb", "漢字Жж", "한국カナ"]) {
        b.send({ type: "nick", nick });
        const error = await b.next("error");
        expect({ nick, code: error.code }).toEqual({ nick, code: "nick_invalid" });
      }
      expect(await who(b)).toEqual(["bob"]);
    });

    it("accepts one script with digits and _ - ., and Latin with Han and kana, Bopomofo or Hangul", async () => {
      const srv = start();
      const b = await connect(srv.url, { room: "r", nick: "bob" });
      for (const nick of [
        "дима_1990",
        "田中tanaka",
        "ひらがなカタカナ漢字abc",
        "ㄅㄆ漢字x",
        "한국어abc漢字",
      ]) {
        b.send({ type: "nick", nick });
        await b.next("presence", (p) => p.events.some((e) => e.event === "nick" && e.nick === nick));
      }
    });
  });
});
