/**
 * The chat page in real headless Chromium, as people use it: rooms with unread and mention pills,
 * direct messages, one user in two tabs and across a reload, a server restart, older history, the
 * phone layout, and hostile text that stays text.
 */
import { afterAll, beforeAll, describe, expect, it, setDefaultTimeout } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ChatClient } from "../../client";
import { startTestServer, stopTestServer } from "../support/test-server";
import {
  chromiumMissing,
  connected,
  dmRoom,
  eventually,
  Harness,
  messages,
  pill,
  say,
  texts,
} from "./page-helpers";
import { TcpGate } from "./tcp-gate";

setDefaultTimeout(20_000);

const missing = chromiumMissing("test/e2e/browser.test.ts");
const h = new Harness();
const dir = mkdtempSync(join(tmpdir(), "chat-e2e-"));

describe.skipIf(missing)("the chat page in Chromium", () => {
  beforeAll(() => h.launch());
  afterAll(async () => {
    await h.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("lets two people chat in two rooms, with unread and mention pills that follow", async () => {
    const server = h.serve();
    const alice = await h.open(await h.person(), server.url, "room=kitchen&nick=alice");
    const bob = await h.open(await h.person(), server.url, "room=kitchen&nick=bob");
    expect(await alice.textContent("#headline")).toMatch(/^connected\s+\S+$/);
    await eventually(
      () => texts(alice, "#userlist li"),
      (l) => l.join() === "alice,bob",
    );
    await say(alice, "hello bob");
    await eventually(
      () => messages(bob),
      (m) => m.includes("alice: hello bob"),
    );
    expect(await alice.$$eval("#chat li.msg.own", (els) => els.length)).toBe(1);

    // Both join #garden; alice goes back to #kitchen and bob talks in #garden.
    await say(alice, "/join garden");
    await say(bob, "/join garden");
    await eventually(
      () => texts(alice, "#room-name"),
      (t) => t[0] === "#garden",
    );
    await alice.click('#room-list li[data-room="kitchen"] .go');
    await eventually(
      () => texts(alice, "#room-name"),
      (t) => t[0] === "#kitchen",
    );
    await eventually(
      () => texts(bob, "#room-name"),
      (t) => t[0] === "#garden",
    );
    await say(bob, "the tomatoes are in");
    await say(bob, "and the basil");
    await eventually(
      () => pill(alice, "garden"),
      (p) => p === "2",
    );
    expect(await alice.title()).toBe("(2) #kitchen · bun-chat");
    await say(bob, "@alice come and see");
    await eventually(
      () => pill(alice, "garden"),
      (p) => p === "@1",
    );
    expect(await alice.title()).toBe("(1!) #kitchen · bun-chat");
    // The tab's icon carries a badge, drawn on a canvas.
    await eventually(
      () => alice.getAttribute("link[rel=icon]", "href"),
      (href) => href?.startsWith("data:image/png;base64,") === true,
    );
    // Opening the room reads it: the pill goes, and "New messages" marks where reading starts.
    await alice.click('#room-list li[data-room="garden"] .go');
    await eventually(
      () => pill(alice, "garden"),
      (p) => p === "",
    );
    expect(await texts(alice, "#chat li.sep.unread")).toEqual(["New messages"]);
    const order = await alice.$$eval("#chat > li", (els) =>
      els.map((li) => (li.classList.contains("unread") ? "U" : li.classList.contains("msg") ? "M" : "")),
    );
    expect(order.filter(Boolean).join("")).toBe("UMMM");
    expect(await alice.title()).toBe("#garden · bun-chat");
    // Bob's own posts never count for him.
    expect(await pill(bob, "garden")).toBe("");
  });

  it("opens a direct conversation with /msg, listed apart, and both sides can answer", async () => {
    const server = h.serve();
    const ann = await h.open(await h.person(), server.url, "room=lobby&nick=ann");
    const ben = await h.open(await h.person(), server.url, "room=lobby&nick=ben");
    await eventually(
      () => texts(ann, "#userlist li"),
      (l) => l.length === 2,
    );
    await say(ann, "/msg ben are you free at 3?");
    await eventually(
      () => texts(ann, "#room-name"),
      (t) => t[0] === "ben",
    );
    await eventually(
      () => messages(ann),
      (m) => m.join() === "ann: are you free at 3?",
    );
    const room = await eventually(
      () => dmRoom(ben, "ann"),
      (r) => r !== undefined,
    );
    expect(room).toStartWith("~");
    await eventually(
      () => pill(ben, room as string),
      (p) => p === "@1",
    );
    expect(await texts(ben, "#room-list li")).not.toContain("ann");
    await ben.click(`#dm-list li[data-room="${room}"] .go`);
    await eventually(
      () => messages(ben),
      (m) => m.join() === "ann: are you free at 3?",
    );
    await say(ben, "yes, see you then");
    await eventually(
      () => messages(ann),
      (m) => m.at(-1) === "ben: yes, see you then",
    );
    expect(new URL(ann.url()).searchParams.get("room")).toBeNull();
  });

  it("is one user in two tabs: same name, same rooms, reading in one clears the other", async () => {
    const server = h.serve();
    const zoe = await h.person();
    const tab1 = await h.open(zoe, server.url, "room=lobby&nick=zoe");
    await say(tab1, "/join dev");
    await eventually(
      () => texts(tab1, "#room-list li .name"),
      (l) => l.join() === "dev,lobby",
    );
    const tab2 = await h.open(zoe, server.url);
    expect(await tab2.textContent("#me-name")).toBe("zoe");
    await eventually(
      () => texts(tab2, "#room-list li .name"),
      (l) => l.join() === "dev,lobby",
    );
    expect(await tab2.isVisible("#name-dialog")).toBe(false);
    const other = await h.open(await h.person(), server.url, "room=lobby&nick=yan");
    await eventually(
      () => texts(other, "#userlist li"),
      (l) => l.join() === "yan,zoe",
    );
    await say(tab1, "from the first tab");
    await eventually(
      () => tab2.$$eval("#chat li.msg.own", (els) => els.map((el) => el.querySelector(".text")?.textContent)),
      (l) => l.includes("from the first tab"),
    );
    // Both tabs are on #dev; a post in #lobby is unread in both until one tab reads it. (A tab in
    // the background gets few animation frames, which Playwright's clicks wait for: bring it up.)
    await tab1.bringToFront();
    await tab1.click('#room-list li[data-room="dev"] .go');
    await tab2.bringToFront();
    await tab2.click('#room-list li[data-room="dev"] .go');
    await say(other, "one for zoe");
    for (const tab of [tab1, tab2]) {
      await eventually(
        () => pill(tab, "lobby"),
        (p) => p === "1",
      );
    }
    await tab1.bringToFront();
    await tab1.click('#room-list li[data-room="lobby"] .go');
    await eventually(
      () => pill(tab2, "lobby"),
      (p) => p === "",
    );
    expect(await texts(other, "#userlist li")).toEqual(["yan", "zoe"]);
  });

  it("keeps who you are and your rooms across a reload", async () => {
    const server = h.serve();
    const page = await h.open(await h.person(), server.url, "room=lobby&nick=kim");
    await say(page, "/join plans");
    await eventually(
      () => texts(page, "#room-name"),
      (t) => t[0] === "#plans",
    );
    await say(page, "/nick kimberly");
    await eventually(
      () => texts(page, "#me-name"),
      (t) => t[0] === "kimberly",
    );
    expect(new URL(page.url()).searchParams.get("nick")).toBeNull();
    await page.reload();
    await connected(page);
    expect(await page.textContent("#me-name")).toBe("kimberly");
    await eventually(
      () => texts(page, "#room-list li .name"),
      (l) => l.join() === "lobby,plans",
    );
    expect(await page.textContent("#room-name")).toBe("#plans");
  });

  it("reconnects by itself after the server restarts and shows what it missed, once", async () => {
    const db = join(dir, "restart.db");
    let server = startTestServer({ DB_PATH: db, RATE_LIMIT: "0" });
    const port = server.server.port as number;
    const gate = await TcpGate.start({ host: "127.0.0.1", port });
    try {
      const alice = await h.open(await h.person(), gate.url, "room=lobby&nick=alice");
      const firstId = await alice.textContent("#headline .conn-id");
      await say(alice, "before the restart");
      await eventually(
        () => messages(alice),
        (m) => m.includes("alice: before the restart"),
      );
      gate.shut();
      await stopTestServer(server);
      await eventually(
        () => texts(alice, "#headline"),
        (t) => /^disconnected/.test(t[0] ?? ""),
      );
      // The countdown is shown, not announced.
      expect(await alice.$eval("#headline", (el) => el.closest("[aria-live]"))).toBeNull();
      server = startTestServer({ DB_PATH: db, RATE_LIMIT: "0", PORT: String(port) });
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
        await eventually(
          () => messages(alice),
          (m) => m.length === 3,
        );
        expect(await messages(alice)).toEqual([
          "alice: before the restart",
          "carol: missed one",
          "carol: missed two",
        ]);
        expect(typeof firstId).toBe("string");
        carol.send("live again");
        await eventually(
          () => messages(alice),
          (m) => m.at(-1) === "carol: live again",
        );
        expect((await messages(alice)).length).toBe(4);
      } finally {
        carol.close();
      }
    } finally {
      await gate.close();
      await stopTestServer(server);
    }
  });

  it("loads older posts when the reader scrolls up", async () => {
    const server = h.serve();
    const poster = new ChatClient({ url: server.url, room: "long", nick: "poster", heartbeatMs: 0 });
    const entries = Array.from({ length: 420 }, (_, i) => poster.send(`line ${i + 1}`));
    await eventually(async () => entries.every((e) => e.state === "sent"), Boolean, 15_000);
    poster.close();
    const page = await h.open(await h.person(), server.url, "room=long&nick=reader");
    await eventually(
      () => messages(page),
      (m) => m.at(-1) === "poster: line 420",
    );
    const before = (await messages(page)).length;
    expect(before).toBeLessThan(420);
    expect(await page.$eval("#scroller", (el) => el.scrollHeight - el.scrollTop - el.clientHeight < 50)).toBe(
      true,
    );
    const all = await eventually(
      async () => {
        await page.$eval("#scroller", (el) => {
          el.scrollTop = 0;
        });
        return messages(page);
      },
      (m) => m.length === 420,
      10_000,
    );
    expect(all[0]).toBe("poster: line 1");
    expect(await page.isVisible("#start")).toBe(true);
  });

  it("fits a phone: one column, rooms and members slide in over it, no sideways scrolling", async () => {
    const server = h.serve();
    const phone = await h.person({ viewport: { width: 390, height: 844 } });
    const page = await h.open(phone, server.url, "room=phone&nick=a-rather-long-nickname");
    await say(page, "a long line without spaces: ".concat("x".repeat(300)));
    await eventually(
      () => messages(page),
      (m) => m.length === 1,
    );
    const layout = () =>
      page.evaluate(() => {
        const box = (sel: string) => document.querySelector(sel)?.getBoundingClientRect().toJSON();
        return {
          scrollWidth: document.documentElement.scrollWidth,
          sidebar: box("#sidebar"),
          members: box("#members"),
          scroller: box("#scroller"),
          input: box("#inputline"),
        };
      });
    const closed = await layout();
    expect(closed.scrollWidth).toBeLessThanOrEqual(390);
    expect(closed.sidebar.right).toBeLessThanOrEqual(0);
    expect(closed.members.left).toBeGreaterThanOrEqual(390);
    expect(closed.scroller.width).toBeGreaterThanOrEqual(380);
    expect(closed.input.bottom).toBeLessThanOrEqual(844);
    expect(closed.input.width).toBeGreaterThan(250);
    await page.click("#menu");
    await eventually(layout, (l) => l.sidebar.left === 0);
    expect(await page.getAttribute("#menu", "aria-expanded")).toBe("true");
    await page.keyboard.press("Escape");
    await eventually(layout, (l) => l.sidebar.right <= 0);
    await page.click("#members-toggle");
    await eventually(layout, (l) => Math.round(l.members.right) === 390);
    expect(await texts(page, "#userlist li")).toEqual(["a-rather-long-nickname"]);
    await page.mouse.click(30, 400); // the scrim
    await eventually(layout, (l) => l.members.left >= 390);
  });

  it("keeps hostile text inert in posts, topics and names, and makes only http(s) links", async () => {
    const server = h.serve();
    const alice = await h.open(await h.person(), server.url, "room=xss&nick=alice");
    const bob = await h.open(await h.person(), server.url, "room=xss&nick=bob");
    let dialogs = 0;
    for (const page of [alice, bob]) page.on("dialog", (d) => void d.dismiss().then(() => dialogs++));
    const payload =
      `<img src=x onerror="window.pwned=1;alert(1)"><script>window.pwned=2</script>` +
      `<b>bold</b> <a href="javascript:alert(3)">link</a> &amp; "quotes" ${"</li></ol>"}<svg onload=alert(4)>`;
    await say(alice, payload);
    await say(
      alice,
      "see javascript:alert(5) and JaVaScRiPt:alert(6) and data:text/html,x and https://example.com/ok",
    );
    await say(alice, `/topic ${payload.slice(0, 190)}`);
    await say(alice, "/nick <img src=x onerror=alert(7)>");
    await eventually(
      () => texts(bob, "#chat li.msg .text"),
      (l) => l.length === 2,
    );
    await eventually(
      () => texts(bob, "#topic"),
      (t) => t[0] === payload.slice(0, 190),
    );
    // A reaction that is not an emoji never leaves the page (and the server would refuse it).
    const seq = await bob.$eval("#chat li.msg", (li) => Number((li as HTMLElement).dataset.seq));
    await alice.evaluate((s) => {
      const ws = new WebSocket(`${location.origin.replace("http", "ws")}/ws?v=2&nick=mallory&room=xss`);
      ws.onopen = () =>
        ws.send(
          JSON.stringify({
            type: "react",
            room: "xss",
            seq: s,
            emoji: "<img src=x onerror=alert(8)>",
            on: true,
          }),
        );
    }, seq);
    await Bun.sleep(400); // room for an onerror or onload to fire, were any element created
    for (const page of [alice, bob]) {
      expect((await texts(page, "#chat li.msg .text"))[0]).toBe(payload);
      expect(
        await page.$$eval("#chat img, #chat script, #chat svg, #chat b, header img", (els) => els.length),
      ).toBe(0);
      const hrefs = await page.$$eval("#chat a", (els) =>
        els.map((a) => [a.getAttribute("href"), a.getAttribute("rel"), a.getAttribute("target")]),
      );
      expect(hrefs).toEqual([["https://example.com/ok", "noopener noreferrer", "_blank"]]);
      expect(await page.$$eval(".reaction", (els) => els.length)).toBe(0);
      expect(await page.evaluate(() => (window as { pwned?: number }).pwned)).toBeUndefined();
    }
    expect(await alice.textContent("#me-name")).toBe("alice");
    expect(await alice.textContent("#typing")).toContain("cannot be a name");
    expect(dialogs).toBe(0);
  });
});
