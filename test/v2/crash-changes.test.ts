/**
 * kill -9 during a storm of edits and reactions: after a restart every change a client saw (a change
 * is sent only once committed) is stored with the same rev, the revs are gapless, and the folded
 * posts equal the original posts with the whole change log replayed over them.
 */
import { afterAll, afterEach, describe, expect, it } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { v2 } from "../../protocol";
import { foldInto } from "../support/fold-change";
import { killAllServerProcesses, killHard, spawnServer } from "../support/server-process";
import { sleep } from "../support/timing";
import { closeAllV2Clients, connectV2, type Of, type V2Client } from "../support/v2-client";

const tmp = mkdtempSync(join(tmpdir(), "chat-crash-changes-"));
afterEach(async () => {
  await closeAllV2Clients();
});
afterAll(async () => {
  await killAllServerProcesses();
  rmSync(tmp, { recursive: true, force: true });
});

const POSTS = 20;
const EMOJI = ["👍", ":tada:", "❤️", ":eyes:"];

async function storm(c: V2Client, nick: string): Promise<void> {
  for (let k = 0; c.closeCode === undefined; k++) {
    const seq = 1 + (k % POSTS);
    if (nick === "ann" && k % 3 === 0) c.send({ type: "edit", room: "lobby", seq, text: `edit ${k}` });
    else
      c.send({
        type: "react",
        room: "lobby",
        seq,
        emoji: EMOJI[k % EMOJI.length] as string,
        on: k % 5 !== 0,
      });
    if (k % 20 === 19) await sleep(1);
  }
}

describe("kill -9 during a storm of changes", () => {
  it("keeps every change a client saw, gapless by rev, and folded history equals the replayed log", async () => {
    const env = { DB_PATH: join(tmp, "chat.db"), RATE_LIMIT: "0" };
    let server = await spawnServer(env);
    const [ann, wa] = await connectV2(server.url, { nick: "ann", room: "lobby" });
    const [bob, wb] = await connectV2(server.url, { nick: "bob", room: "lobby" });
    await ann.first("joined");
    await bob.first("joined");
    for (let i = 1; i <= POSTS; i++)
      await ann.ask({ type: "chat", room: "lobby", text: `post ${i}`, id: `p${i}` });
    const running = [storm(ann, "ann"), storm(bob, "bob")];
    await sleep(300);
    await killHard(server);
    await Promise.all(running);
    const seen = new Map<number, v2.Change>();
    for (const m of [...ann.received, ...bob.received]) {
      if (m.type === "edit" || m.type === "delete" || m.type === "reaction" || m.type === "topic")
        seen.set(m.rev, m);
    }
    expect(seen.size).toBeGreaterThan(20);

    server = await spawnServer(env);
    const [c] = await connectV2(server.url, { identity: wa.identityToken as string });
    const w = await c.first("welcome");
    const lastRev = w.rooms[0]?.lastRev ?? 0;
    expect(lastRev).toBeGreaterThanOrEqual(Math.max(...seen.keys()));
    // Every change, paged 500 at a time from rev 0, over the original posts.
    const changes: v2.Change[] = [];
    let original: v2.FoldedPost[] = [];
    for (let since = 0; ; ) {
      const s = (await c.ask({ type: "sync", room: "lobby", since: POSTS, sinceRev: since })) as Of<"sync">;
      changes.push(...s.changes);
      if (s.changes.length === 0 || !s.truncated) break;
      since = s.changes.at(-1)?.rev ?? since;
    }
    expect(changes.map((x) => x.rev)).toEqual(Array.from({ length: lastRev }, (_, i) => i + 1));
    for (const [rev, change] of seen) expect(changes[rev - 1]).toEqual(change);
    const current = (await c.ask({ type: "history", room: "lobby", limit: 200 })) as Of<"history">;
    original = current.messages.map((p) => ({
      seq: p.seq,
      nick: p.nick,
      userId: p.userId,
      sentAt: p.sentAt,
      text: `post ${p.seq}`,
    }));
    const replayed = new Map(original.map((p) => [p.seq, p]));
    for (const x of changes) foldInto(replayed, x);
    expect(current.messages).toEqual([...replayed.values()]);
    expect(wb.user.nick).toBe("bob");
  }, 60_000);
});
