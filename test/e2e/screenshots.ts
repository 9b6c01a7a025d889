/**
 * Screenshots of the chat page with a lived-in room, for a person to look at:
 * `bun test/e2e/screenshots.ts [DIR]` (default /tmp/screens) writes desktop and phone, light and dark.
 */
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type Page } from "playwright-core";
import { ChatClient } from "../../client";
import { startServer } from "../../server";
import { silentLogger } from "../../server/chat/log";
import { loadConfig } from "../../server/config";

const out = process.argv[2] ?? "/tmp/screens";
mkdirSync(out, { recursive: true });
const dir = mkdtempSync(join(tmpdir(), "chat-shots-"));
const server = startServer(
  loadConfig({ PORT: "0", HOST: "127.0.0.1", DB_PATH: join(dir, "chat.db"), RATE_LIMIT: "0" }),
  silentLogger,
);
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"],
});

const settle = () => Bun.sleep(150);

function bot(nick: string): ChatClient {
  return new ChatClient({ url: server.url, room: "general", nick, heartbeatMs: 0 });
}

async function page(
  width: number,
  height: number,
  colorScheme: "light" | "dark",
  nick: string,
): Promise<Page> {
  const p = await browser.newPage({ viewport: { width, height }, colorScheme });
  await p.goto(new URL(`/?room=general&nick=${nick}`, server.url).toString());
  await p.waitForFunction(() => document.querySelector("#headline")?.textContent?.startsWith("connected"));
  return p;
}

try {
  const old = bot("archivist");
  for (const text of [
    "Welcome to #general. Yesterday's notes are pinned in the wiki.",
    "Standup at 10:00.",
  ]) {
    old.send(text);
  }
  await settle();
  old.close();

  const alice = await page(1280, 800, "light", "alice");
  const bob = bot("bob");
  const carol = bot("carol");
  await settle();
  bob.send("morning all 👋");
  await settle();
  await alice.fill("#inputline", "hi bob! did the deploy go out?");
  await alice.press("#inputline", "Enter");
  await settle();
  bob.send("yes, 14:02 UTC. <b>no</b> issues so far & the dashboards look <i>calm</i>");
  carol.send("/me brings coffee ☕");
  await settle();
  carol.nick("caroline");
  await settle();
  const dave = bot("dave");
  await settle();
  dave.send(
    "a long line to see wrapping: Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua.",
  );
  await settle();
  dave.close();
  await alice.fill("#inputline", "/nick bob");
  await alice.press("#inputline", "Enter");
  await settle();
  bob.typing();
  await settle();

  await alice.screenshot({ path: join(out, "desktop-light.png") });
  const phone = await page(390, 844, "light", "erin");
  await settle();
  bob.send("erin joined from a phone");
  await settle();
  await phone.screenshot({ path: join(out, "phone-light.png") });
  const dark = await page(1280, 800, "dark", "frank");
  await settle();
  await dark.screenshot({ path: join(out, "desktop-dark.png") });
  const darkPhone = await page(390, 844, "dark", "grace");
  await settle();
  await darkPhone.screenshot({ path: join(out, "phone-dark.png") });

  server.stop();
  await Bun.sleep(800);
  await alice.screenshot({ path: join(out, "desktop-reconnecting.png") });
  bob.close();
  carol.close();

  // A strict server: the third quick message is refused with rate_limited and shown failed in place.
  const strict = startServer(
    loadConfig({ PORT: "0", HOST: "127.0.0.1", DB_PATH: ":memory:", RATE_LIMIT: "0.1", RATE_BURST: "2" }),
    silentLogger,
  );
  const limited = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  await limited.goto(new URL("/?room=strict&nick=hasty", strict.url).toString());
  await limited.waitForFunction(() =>
    document.querySelector("#headline")?.textContent?.startsWith("connected"),
  );
  for (const line of ["one", "two", "three, too fast"]) {
    await limited.fill("#inputline", line);
    await limited.press("#inputline", "Enter");
  }
  await settle();
  await limited.screenshot({ path: join(out, "desktop-rate-limited.png") });
  await strict.stop();
  console.log(`screenshots in ${out}`);
} finally {
  await browser.close();
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
}
