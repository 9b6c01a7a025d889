/** The chat page in real headless Chromium: chat, rename, presence, literal text, reconnect after a restart. */
import { afterAll, beforeAll, describe, expect, it, setDefaultTimeout } from "bun:test";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Browser, chromium, type Page } from "playwright-core";
import { ChatClient } from "../../client";
import { type RunningServer, startServer } from "../../server";
import { silentLogger } from "../../server/chat/log";
import { loadConfig } from "../../server/config";
import { TcpGate } from "./tcp-gate";

setDefaultTimeout(15_000);

const CHROMIUM = "/usr/bin/chromium";
const FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
const missing = !existsSync(CHROMIUM);
if (missing) {
  const why = `${CHROMIUM} is missing; install Debian's chromium package to run the browser tests`;
  if (process.env.CI) {
    it("finds Chromium", () => {
      throw new Error(why);
    });
  } else console.warn(`skipping test/e2e/browser.test.ts: ${why}`);
}

const dir = mkdtempSync(join(tmpdir(), "chat-e2e-"));
let dbCount = 0;
let browser: Browser;
const servers: RunningServer[] = [];

function serve(db = join(dir, `chat-${++dbCount}.db`), port = 0): RunningServer {
  const env = { PORT: String(port), HOST: "127.0.0.1", DB_PATH: db, RATE_LIMIT: "0" };
  const running = startServer(loadConfig(env), silentLogger);
  servers.push(running);
  return running;
}

async function open(
  base: string | URL,
  query: string,
  viewport = { width: 1280, height: 800 },
): Promise<Page> {
  const page = await browser.newPage({ viewport });
  page.on("pageerror", (err) => console.error("page error:", err));
  await page.goto(new URL(`/?${query}`, base).toString());
  await connected(page);
  return page;
}

function connected(page: Page): Promise<unknown> {
  return page.waitForFunction(() =>
    /^connected\s+\S+/.test(document.querySelector("#headline")?.textContent?.trim() ?? ""),
  );
}

function texts(page: Page, selector: string): Promise<string[]> {
  return page.$$eval(selector, (els) => els.map((el) => (el.textContent ?? "").trim()));
}

/** Polls `read` until `ok` holds, failing with the last value seen. */
async function eventually<T>(read: () => Promise<T>, ok: (value: T) => boolean, ms = 5000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await read();
    if (ok(value)) return value;
    if (Date.now() > deadline) throw new Error(`still ${JSON.stringify(value)} after ${ms} ms`);
    await Bun.sleep(25);
  }
}

async function say(page: Page, line: string): Promise<void> {
  await page.fill("#inputline", line);
  await page.press("#inputline", "Enter");
}

/** Text of each chat message line (nick and text), in order. */
function messages(page: Page): Promise<string[]> {
  return page.$$eval("#chat li.msg", (els) =>
    els.map((li) => `${li.querySelector(".nick")?.textContent}: ${li.querySelector(".text")?.textContent}`),
  );
}

describe.skipIf(missing)("the chat page in Chromium", () => {
  beforeAll(async () => {
    browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS });
  });

  afterAll(async () => {
    await browser?.close();
    for (const s of servers) await s.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("lets two pages in one room chat, rename, and see each other come and go", async () => {
    const server = serve();
    const alice = await open(server.url, "room=kitchen&nick=alice");
    const bob = await open(server.url, "room=kitchen&nick=bob");
    expect(await alice.textContent("#headline")).toMatch(/^connected\s+[0-9a-z]+$/i);
    await eventually(
      () => texts(alice, "#userlist li"),
      (l) => l.join() === "alice,bob",
    );
    expect(await texts(bob, "#userlist li")).toEqual(["alice", "bob"]);

    await say(alice, "hello bob");
    await eventually(
      () => messages(bob),
      (m) => m.includes("alice: hello bob"),
    );
    expect(await alice.$$eval("#chat li.msg.own", (els) => els.length)).toBe(1);

    await say(bob, "/nick robert");
    await eventually(
      () => texts(alice, "#userlist li"),
      (l) => l.join() === "alice,robert",
    );
    expect(await texts(alice, "#chat li.event.rename > span")).toContain("bob is now known as robert");
    await say(alice, "/nick Robert");
    await eventually(
      () => texts(alice, "#chat li.event.error > span"),
      (l) => l.length === 1,
    );
    expect((await texts(alice, "#chat li.event.error > span"))[0]).toMatch(/already taken.*\(nick_taken\)/);
    await bob.fill("#inputline", "hi al");
    await eventually(
      () => texts(alice, "#typing"),
      (t) => t[0] === "robert is typing…",
    );
    await say(bob, "hi alice");
    await eventually(
      () => messages(alice),
      (m) => m.includes("robert: hi alice"),
    );
    expect(await texts(alice, "#typing")).toEqual([""]);
    expect(bob.url()).toContain("nick=robert");

    await bob.close();
    await eventually(
      () => texts(alice, "#userlist li"),
      (l) => l.join() === "alice",
    );
    expect(await texts(alice, "#chat li.event.leave > span")).toContain("← robert left");
    expect(await messages(alice)).toEqual(["alice: hello bob", "robert: hi alice"]);
    await alice.close();
  });

  it("shows a message full of HTML and script as literal text and runs none of it", async () => {
    const server = serve();
    const alice = await open(server.url, "room=xss&nick=alice");
    const bob = await open(server.url, "room=xss&nick=bob");
    let dialogs = 0;
    for (const page of [alice, bob]) page.on("dialog", (d) => void d.dismiss().then(() => dialogs++));
    const payload =
      `<img src=x onerror="window.pwned=1;alert(1)"><script>window.pwned=2</script>` +
      `<b>bold</b> <a href="javascript:alert(3)">link</a> &amp; "quotes" ${"</li></ol>"}<svg onload=alert(4)>`;
    await say(alice, payload);
    await eventually(
      () => texts(bob, "#chat li.msg .text"),
      (l) => l.length === 1,
    );
    await Bun.sleep(200); // room for an onerror or onload to fire, were any element created
    for (const page of [alice, bob]) {
      expect(await texts(page, "#chat li.msg .text")).toEqual([payload]);
      expect(
        await page.$$eval("#chat img, #chat script, #chat b, #chat a, #chat svg", (els) => els.length),
      ).toBe(0);
      expect(await page.evaluate(() => (window as { pwned?: number }).pwned)).toBeUndefined();
    }
    expect(dialogs).toBe(0);
    await alice.close();
    await bob.close();
  });

  it("reconnects by itself after the server restarts and shows what it missed, once", async () => {
    const db = join(dir, "restart.db");
    let server = serve(db);
    const port = server.server.port as number;
    const gate = await TcpGate.start({ host: "127.0.0.1", port });
    try {
      const alice = await open(gate.url, "room=lobby&nick=alice");
      const firstId = await alice.textContent("#headline .conn-id");
      await say(alice, "before the restart");
      await eventually(
        () => messages(alice),
        (m) => m.includes("alice: before the restart"),
      );

      // The page cannot reach the server until the gate opens: what is said meanwhile is missed.
      gate.shut();
      await server.stop();
      await eventually(
        () => texts(alice, "#headline"),
        (t) => /^disconnected/.test(t[0] ?? ""),
      );
      server = serve(db, port);
      const carol = new ChatClient({ url: server.url, room: "lobby", nick: "carol", heartbeatMs: 0 });
      try {
        for (const text of ["missed one", "missed two"]) {
          const entry = carol.send(text);
          await eventually(
            async () => entry.state,
            (s) => s === "sent",
          );
        }
        gate.open();
        await connected(alice);
        expect(await alice.textContent("#headline .conn-id")).not.toBe(firstId);
        await eventually(
          () => messages(alice),
          (m) => m.length === 3,
        );
        expect(await messages(alice)).toEqual([
          "alice: before the restart",
          "carol: missed one",
          "carol: missed two",
        ]);
        expect(await texts(alice, "#chat li.event.info > span")).toContain(
          "reconnected · 2 new messages while away",
        );
        await eventually(
          () => texts(alice, "#userlist li"),
          (l) => l.join() === "alice,carol",
        );
        carol.send("live again");
        await eventually(
          () => messages(alice),
          (m) => m.length === 4,
        );
        expect((await messages(alice)).at(-1)).toBe("carol: live again");
      } finally {
        carol.close();
      }
      await alice.close();
    } finally {
      await gate.close();
    }
  });

  it("falls back from a bad room or nickname in its URL and says why", async () => {
    const server = serve();
    const page = await open(
      server.url,
      `room=${encodeURIComponent("no room!")}&nick=${encodeURIComponent("two words")}`,
    );
    expect(await page.textContent("#room-name")).toBe("#default");
    expect(await page.textContent("#me-name")).toMatch(/^guest-\d+$/);
    const errors = await texts(page, "#chat li.event.error > span");
    expect(errors).toHaveLength(2);
    expect(errors[0]).toContain("is not a room name");
    expect(errors[1]).toContain("is not a nickname");
    await page.close();
  });

  it("loads older history when the reader scrolls up", async () => {
    const server = serve();
    const poster = new ChatClient({ url: server.url, room: "long", nick: "poster", heartbeatMs: 0 });
    const entries = Array.from({ length: 80 }, (_, i) => poster.send(`line ${i + 1}`));
    await eventually(async () => entries.every((e) => e.state === "sent"), Boolean);
    poster.close();
    const page = await open(server.url, "room=long&nick=reader");
    await eventually(
      () => messages(page),
      (m) => m.length === 50,
    );
    const atBottom = await page.$eval(
      "#scroller",
      (el) => el.scrollHeight - el.scrollTop - el.clientHeight < 50,
    );
    expect(atBottom).toBe(true);
    await page.$eval("#scroller", (el) => {
      el.scrollTop = 0;
    });
    const all = await eventually(
      () => messages(page),
      (m) => m.length === 80,
    );
    expect(all[0]).toBe("poster: line 1");
    expect(all.at(-1)).toBe("poster: line 80");
    await page.close();
  });

  it("fits a phone screen: no sideways scrolling, users and input in view", async () => {
    const server = serve();
    const page = await open(server.url, "room=phone&nick=a-rather-long-nickname", {
      width: 390,
      height: 844,
    });
    await say(page, "a long line without spaces: ".concat("x".repeat(300)));
    await eventually(
      () => messages(page),
      (m) => m.length === 1,
    );
    const layout = await page.evaluate(() => {
      const box = (sel: string) => document.querySelector(sel)?.getBoundingClientRect();
      return {
        scrollWidth: document.documentElement.scrollWidth,
        users: box("#userlist li"),
        messages: box("#scroller"),
        input: box("#inputline"),
      };
    });
    expect(layout.scrollWidth).toBeLessThanOrEqual(390);
    expect(layout.users?.top).toBeGreaterThanOrEqual(0);
    // The messages get the whole width; the users sit in a strip above them.
    expect(layout.messages?.width).toBeGreaterThanOrEqual(370);
    expect(layout.users?.bottom).toBeLessThanOrEqual((layout.messages?.top ?? 0) + 1);
    expect(layout.input?.bottom).toBeLessThanOrEqual(844);
    expect(layout.input?.width).toBeGreaterThan(200);
    await page.close();
  });
});
