/** What the browser tests share: Chromium (skipped when missing), servers, pages as users, polling. */

import { it } from "bun:test";
import { existsSync } from "node:fs";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";
import type { RunningServer } from "../../server";
import { startTestServer, stopTestServer } from "../support/test-server";

export const CHROMIUM = "/usr/bin/chromium";
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

/** True when the tests cannot run here; on CI a missing Chromium is a failure, elsewhere a skip. */
export function chromiumMissing(file: string): boolean {
  const missing = !existsSync(CHROMIUM);
  if (missing) {
    const why = `${CHROMIUM} is missing; install Debian's chromium package to run the browser tests`;
    if (process.env.CI) {
      it("finds Chromium", () => {
        throw new Error(why);
      });
    } else console.warn(`skipping ${file}: ${why}`);
  }
  return missing;
}

export class Harness {
  browser: Browser | undefined;
  private readonly servers: RunningServer[] = [];
  private readonly contexts: BrowserContext[] = [];

  async launch(): Promise<void> {
    this.browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS });
  }

  async close(): Promise<void> {
    for (const c of this.contexts) await c.close().catch(() => undefined);
    await this.browser?.close();
    for (const s of this.servers) await stopTestServer(s);
  }

  serve(env: Record<string, string> = {}): RunningServer {
    const server = startTestServer({ RATE_LIMIT: "0", ...env });
    this.servers.push(server);
    return server;
  }

  /** A browser context is one person: its own localStorage, so its own identity. */
  async person(
    opts: { viewport?: { width: number; height: number }; permissions?: string[]; hidden?: boolean } = {},
  ): Promise<BrowserContext> {
    const context = await (this.browser as Browser).newContext({
      viewport: opts.viewport ?? { width: 1280, height: 800 },
      permissions: opts.permissions ?? [],
    });
    // Visibility under the test's control (headless pages are always "visible"), and a record of
    // the notifications the page shows.
    await context.addInitScript(() => {
      const w = window as unknown as { __hidden: boolean; __notes: Array<[string, NotificationOptions?]> };
      w.__hidden = false;
      w.__notes = [];
      Object.defineProperty(document, "hidden", { get: () => w.__hidden });
      Object.defineProperty(document, "visibilityState", { get: () => (w.__hidden ? "hidden" : "visible") });
      if ("Notification" in window) {
        window.Notification = new Proxy(window.Notification, {
          construct(target, args: [string, NotificationOptions?]) {
            w.__notes.push(args);
            return Reflect.construct(target, args);
          },
        });
      }
    });
    this.contexts.push(context);
    return context;
  }

  /** A page of `context` at `/?query`, waiting until it is connected. */
  async open(context: BrowserContext, base: string | URL, query = "", wait = true): Promise<Page> {
    const page = await context.newPage();
    page.on("pageerror", (err) => console.error("page error:", err));
    await page.goto(new URL(`/${query ? `?${query}` : ""}`, base).toString());
    if (wait) await connected(page);
    return page;
  }
}

export function connected(page: Page): Promise<unknown> {
  return page.waitForFunction(() =>
    /^connected\s+\S+/.test(document.querySelector("#headline")?.textContent?.trim() ?? ""),
  );
}

export function texts(page: Page, selector: string): Promise<string[]> {
  return page.$$eval(selector, (els) => els.map((el) => (el.textContent ?? "").trim()));
}

/** Polls `read` until `ok` holds, failing with the last value seen. */
export async function eventually<T>(
  read: () => Promise<T>,
  ok: (value: T) => boolean,
  ms = 5000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await read();
    if (ok(value)) return value;
    if (Date.now() > deadline) throw new Error(`still ${JSON.stringify(value)} after ${ms} ms`);
    await Bun.sleep(25);
  }
}

/** Types a line in the composer and sends it with Enter. */
export async function say(page: Page, line: string): Promise<void> {
  await page.fill("#inputline", line);
  await page.press("#inputline", "Enter");
}

/** "nick: text" of each post in #chat, in order. */
export function messages(page: Page): Promise<string[]> {
  return page.$$eval("#chat li.msg", (els) =>
    els.map((li) => `${li.querySelector(".nick")?.textContent}: ${li.querySelector(".text")?.textContent}`),
  );
}

/** The pill of a room in the sidebar: its count and whether it is a mention pill. */
export function pill(page: Page, room: string): Promise<string> {
  return page.$eval(`#sidebar li[data-room="${room}"]`, (li) => {
    const p = li.querySelector(".pill");
    return p ? `${p.classList.contains("mention") ? "@" : ""}${p.textContent}` : "";
  });
}

/** The room of the sidebar entry for a direct conversation with `nick`. */
export function dmRoom(page: Page, nick: string): Promise<string | undefined> {
  return page.$$eval(
    "#dm-list li[data-room]",
    (els, who) =>
      (els as HTMLElement[]).find((li) => li.querySelector(".name")?.textContent === who)?.dataset.room,
    nick,
  );
}

export function setHidden(page: Page, hidden: boolean): Promise<void> {
  return page.evaluate((h) => {
    (window as unknown as { __hidden: boolean }).__hidden = h;
    document.dispatchEvent(new Event("visibilitychange"));
  }, hidden);
}
