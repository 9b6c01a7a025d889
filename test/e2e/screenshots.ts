/**
 * Screenshots of the chat page with lived-in rooms, for a person to look at:
 * `bun test/e2e/screenshots.ts [DIR]` (default /tmp/screens) writes desktop and phone, light and
 * dark, a busy room with a day change, the sidebar with unread and mention pills, the message menu
 * with the reaction picker, the composer near its limit, the first-visit name dialog and a server
 * that refuses the page's origin. Yesterday's posts are stamped by running the in-process server a
 * day behind for a moment.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { type Browser, chromium, type Page } from "playwright-core";
import { ChatClientV2 } from "../../client/v2/chat-client-v2";
import type { RunningServer } from "../../server";
import { startTestServer, stopTestServer } from "../support/test-server";

const out = process.argv[2] ?? "/tmp/screens";
mkdirSync(out, { recursive: true });

const realNow = Date.now;
let offsetMs = 0;
// The engine reads the clock through this function: posts written while it runs late are "yesterday".
Date.now = () => realNow() + offsetMs;

const server = startTestServer({ RATE_LIMIT: "0" });
const browser: Browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"],
});
const settle = (ms = 150) => Bun.sleep(ms);

interface Bot {
  client: ChatClientV2;
  token(): string | undefined;
}

const bots: Bot[] = [];

async function bot(nick: string, rooms: string[], url: string | URL = server.url): Promise<Bot> {
  let token: string | undefined;
  const client = new ChatClientV2({
    url,
    nick,
    room: rooms[0],
    heartbeatMs: 0,
    identity: {
      get: () => token,
      set: (t) => {
        token = t || undefined;
      },
    },
  });
  client.connect();
  await until(() => client.rooms().includes(rooms[0] as string));
  for (const room of rooms.slice(1)) client.join(room);
  await until(() => rooms.every((r) => client.rooms().includes(r)));
  const b = { client, token: () => token };
  bots.push(b);
  return b;
}

async function until(ok: () => boolean, ms = 5000): Promise<void> {
  const deadline = realNow() + ms;
  while (!ok()) {
    if (realNow() > deadline) throw new Error("timed out setting the scene");
    await Bun.sleep(10);
  }
}

/** Posts and waits for the ack; returns the post's seq. */
async function say(b: Bot, room: string, text: string, opts: { kind?: "action"; replyTo?: number } = {}) {
  const id = b.client.send(room, text, opts);
  await until(() => !(b.client.view(room)?.pending.some((p) => p.id === id) ?? true));
  await settle(20);
  return b.client.view(room)?.posts.at(-1)?.seq ?? 0;
}

async function open(
  width: number,
  height: number,
  colorScheme: "light" | "dark",
  identity: string | undefined,
  query = "",
  url: string | URL = server.url,
): Promise<Page> {
  const context = await browser.newContext({ viewport: { width, height }, colorScheme });
  if (identity) {
    await context.addInitScript((token) => localStorage.setItem("bun-chat.identity", token), identity);
  }
  const page = await context.newPage();
  page.on("pageerror", (err) => console.error("page error:", err));
  await page.goto(new URL(`/${query}`, url).toString());
  return page;
}

function connected(page: Page): Promise<unknown> {
  return page.waitForFunction(() =>
    document.querySelector("#headline")?.textContent?.startsWith("connected"),
  );
}

async function shot(page: Page, name: string): Promise<void> {
  await settle(250);
  await page.screenshot({ path: join(out, `${name}.png`) });
}

let strict: RunningServer | undefined;
let hasty: RunningServer | undefined;

async function limitedSay(page: Page, line: string): Promise<void> {
  await page.fill("#inputline", line);
  await page.press("#inputline", "Enter");
}
try {
  // ---- yesterday evening ----
  offsetMs = -(20 * 3600_000);
  const ann = await bot("ann", ["lobby", "dev", "design"]);
  const carol = await bot("carol", ["lobby", "dev", "design"]);
  const bob = await bot("bob", ["lobby", "dev"]);
  carol.client.setTopic("lobby", "General chat for the team · be kind · build status lives in #dev");
  await say(carol, "lobby", "evening all 👋");
  await say(bob, "lobby", "hey carol");
  await say(ann, "lobby", "hi! staging deploy is finally done");
  await say(ann, "lobby", "took longer than expected, the migration locked the sessions table for ~4 min");
  await say(carol, "lobby", "ouch. anything user-facing?");
  await say(bob, "lobby", "a few 502s on the status page, nothing else");

  // ---- this morning ----
  offsetMs = -(3 * 3600_000);
  const dave = await bot("dave", ["lobby"]);
  const erin = await bot("erin", ["lobby"]);
  const frank = await bot("frank", ["lobby"]);
  await say(carol, "lobby", "morning! ☕");
  await say(
    erin,
    "lobby",
    "**heads up**: the staging DB restarts at `11:00` — expect ~2 min of *read-only* mode",
  );
  await say(ann, "lobby", "thanks erin 🙏");
  await say(
    carol,
    "lobby",
    "reminder for everyone: the retro doc for last week's outage is up. Please add your notes before Thursday — especially the timeline between the first alert and the rollback, because right now there is a 20 minute gap nobody can explain.",
  );
  const pr = await say(
    bob,
    "lobby",
    "@ann could you look at PR #482 before standup? it touches the session store you migrated yesterday",
  );
  await say(bob, "lobby", "https://code.example.test/team/app/pull/482");
  offsetMs = -(2 * 3600_000);
  await say(ann, "lobby", "on it — I'll review right after standup", { replyTo: pr });
  ann.client.markRead("lobby", ann.client.view("lobby")?.lastSeq ?? 0);
  await settle(700);
  offsetMs = -(90 * 60_000);
  await say(
    dave,
    "lobby",
    "found the failing test:\n```\nFAIL src/session/store.test.ts\n  × refresh() retries on 503 (52 ms)\n    Expected: 3 calls · Received: 1\n```",
  );
  await say(frank, "lobby", "grabs a coffee first", { kind: "action" });
  const catchSeq = await say(bob, "lobby", "ah, the backoff promise isn't awaited");
  for (const b of [carol, dave]) b.client.react("lobby", catchSeq, "👍", true);
  carol.client.react("lobby", catchSeq, "🎉", true);
  const good = await say(carol, "lobby", "good catch");
  carol.client.edit("lobby", good, "good catch, that explains the 52 ms");
  const oops = await say(erin, "lobby", "wrong channel, sorry");
  erin.client.remove("lobby", oops);
  offsetMs = 0;
  await say(dave, "lobby", "@ann pushed a fix to #482, can you re-run CI?");
  for (const text of [
    "CI #1207 failed on main ❌ session tests",
    "looking",
    "flaky one again? re-running",
    "nope, real failure",
    "deploy to staging is queued behind it",
    "CI #1208 passed on main ✅",
  ]) {
    await say(text === "looking" || text === "flaky one again? re-running" ? bob : carol, "dev", text);
  }
  await say(carol, "design", "@ann which icon set did we settle on?");
  carol.client.dm("ann");
  await until(() => carol.client.rooms().some((r) => carol.client.view(r)?.dm !== undefined));
  const dmRoom = carol.client.rooms().find((r) => carol.client.view(r)?.dm !== undefined) as string;
  await say(carol, dmRoom, "can you cover my on-call shift on Friday?");
  await settle(300);

  // ---- the page, as ann ----
  const token = ann.token();
  ann.client.close();
  const desk = await open(1280, 800, "light", token, "?room=lobby");
  await connected(desk);
  await settle(400);
  // People arriving while ann watches: one folded row.
  const late = [await bot("gina", ["lobby"]), await bot("hank", ["lobby"]), await bot("ivy", ["lobby"])];
  await settle(200);
  await say(late[0] as Bot, "lobby", "hi all, first day here 👋");
  bob.client.typing("lobby");
  await shot(desk, "desktop-light");

  const dark = await open(1280, 800, "dark", token, "?room=lobby");
  await connected(dark);
  await shot(dark, "desktop-dark");

  // The message menu and the reaction picker on bob's post.
  const row = desk.locator(`#chat li.msg[data-seq="${catchSeq}"]`);
  await row.hover();
  await desk.click(`#chat li.msg[data-seq="${catchSeq}"] [data-act="react"]`);
  await shot(desk, "desktop-reaction-picker");
  await desk.keyboard.press("Escape");

  // #dev: opened after its posts came, with the "New messages" line.
  await desk.click('#room-list li[data-room="dev"] .go');
  await shot(desk, "desktop-dev-unread");

  // The composer: a pasted multi-line text near the limit, replying to a post.
  await desk.click('#room-list li[data-room="lobby"] .go');
  await desk.locator(`#chat li.msg[data-seq="${pr}"]`).hover();
  await desk.click(`#chat li.msg[data-seq="${pr}"] [data-act="reply"]`);
  await desk.fill(
    "#inputline",
    `here's the patch:\n- retry(() => this.refresh(), 3);\n+ await retry(() => this.refresh(), { attempts: 3 });\n${"x".repeat(3700)}`,
  );
  await shot(desk, "desktop-composer");
  await desk.fill("#inputline", "");
  await desk.keyboard.press("Escape");

  // A tablet, upright.
  const tablet = await open(768, 1024, "light", token, "?room=lobby");
  await connected(tablet);
  await shot(tablet, "tablet-light");

  // Phones.
  const phone = await open(390, 844, "light", token, "?room=lobby");
  await connected(phone);
  await shot(phone, "phone-light");
  await phone.click("#menu");
  await shot(phone, "phone-sidebar-open");
  const phoneDark = await open(390, 844, "dark", token, "?room=lobby");
  await connected(phoneDark);
  await shot(phoneDark, "phone-dark");

  // A first visit: the name dialog over the empty frame.
  const first = await open(1280, 800, "light", undefined);
  await first.waitForSelector("#name-dialog[open]");
  await first.fill("#name-input", "zoë");
  await shot(first, "desktop-first-visit");

  // A strict server: the third quick post is refused and shown in place with Retry and Discard.
  hasty = startTestServer({ RATE_LIMIT: "0.1", RATE_BURST: "2" });
  const limited = await open(1280, 800, "light", undefined, "?nick=hasty&room=strict", hasty.url);
  await connected(limited);
  for (const line of ["one", "two", "three, too fast"]) await limitedSay(limited, line);
  await limited.waitForSelector("#outbox li.failed");
  await shot(limited, "desktop-failed-post");

  // A server that only takes pages from elsewhere: the page says what to configure.
  strict = startTestServer({ ALLOWED_ORIGINS: "https://chat.example.com" });
  const refused = await open(1280, 800, "light", undefined, "?nick=ann&room=lobby", strict.url);
  await refused.waitForSelector("#banner:not([hidden])", { timeout: 15_000 });
  await shot(refused, "desktop-origin-refused");
  console.log(`screenshots in ${out}`);
} finally {
  for (const b of bots) b.client.close();
  await browser.close();
  if (strict) await stopTestServer(strict);
  if (hasty) await stopTestServer(hasty);
  await stopTestServer(server);
  Date.now = realNow;
}
