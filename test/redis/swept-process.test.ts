/**
 * A process presumed dead while it was only cut off (here: SIGSTOP for three expiries) is swept by
 * the others: its users leave every list. When it comes back it claims them again, with join events,
 * instead of closing them all with 1011; only a user whose nickname someone else took meanwhile is
 * sent back (1011, its room on that process) to come back under another name.
 */
import { afterAll, afterEach, describe, expect, it } from "bun:test";
import { killAllServerProcesses, type ServerProcess } from "../support/server-process";
import { closeAllClients, connect } from "../support/test-client";
import { eventually, sleep } from "../support/timing";
import { PRESENCE_TTL_SECONDS, spawnCluster, until, userList } from "./support/cluster";
import { RedisView } from "./support/hubs";
import { RedisProcess, redisAvailable } from "./support/redis-server";

const available = redisAvailable();
const redises: RedisProcess[] = [];

afterEach(async () => {
  await closeAllClients();
  await killAllServerProcesses();
});

afterAll(async () => {
  await Promise.all(redises.map((r) => r.stop()));
});

describe.skipIf(!available)("a process swept while it was cut off", () => {
  it("claims its users again when it comes back, instead of dropping them", async () => {
    const redis = await RedisProcess.start();
    redises.push(redis);
    const view = new RedisView(redis.url, "chat:");
    const [p0, p1] = (await spawnCluster(redis, 2)) as [ServerProcess, ServerProcess];
    const obs = await connect(p0.url, { room: "keep", nick: "obs" });
    const kept = await connect(p1.url, { room: "keep", nick: "kept" });
    const watcher = await connect(p0.url, { room: "take", nick: "watcher" });
    const victim = await connect(p1.url, { room: "take", nick: "victim" });
    await eventually(() => userList(obs).includes("kept"), "kept in obs's list");
    await eventually(() => userList(watcher).includes("victim"), "victim in watcher's list");

    p1.proc.kill("SIGSTOP");
    await obs.waitFor(
      "presence",
      (p) => p.events.some((e) => e.event === "leave" && e.nick === "kept"),
      PRESENCE_TTL_SECONDS * 1000 + 3000,
    );
    // Meanwhile someone else takes victim's nickname.
    const thief = await connect(p0.url, { room: "take", nick: "victim" });
    expect(thief.welcome.nick).toBe("victim");
    await sleep(PRESENCE_TTL_SECONDS * 1000);
    p1.proc.kill("SIGCONT");

    // kept is claimed again: back in every list, still connected, its session held (no expiry).
    await obs.waitFor("presence", (p) => p.events.some((e) => e.event === "join" && e.nick === "kept"), 5000);
    await eventually(() => userList(obs).join() === "kept,obs", "obs's list to show kept again");
    const entry = (await view.users("keep")).kept as string;
    expect(entry).toBeDefined();
    expect(await view.sessionTtl(entry.split("|")[2] as string)).toBe(-1);
    kept.send({ type: "chat", text: "still here", id: "k1" });
    await obs.waitFor("chat", (m) => m.text === "still here" && m.nick === "kept");
    expect(kept.closeCode).toBeUndefined();

    // victim's name is thief's now: victim is sent back, and comes back under another name.
    expect(await victim.closing(5000)).toBe(1011);
    const back = await connect(p1.url, { room: "take", resume: victim.welcome.resumeToken });
    expect(back.welcome.nick).toBe("victim-2");
    await until(
      async () => JSON.stringify(await view.nicks("take")) === '["victim","victim-2","watcher"]',
      "take's users hash to settle",
    );
    await eventually(
      () => userList(watcher).join() === "victim,victim-2,watcher",
      "watcher's list to settle",
    );
    expect(thief.closeCode).toBeUndefined();
    view.close();
  }, 30_000);
});
