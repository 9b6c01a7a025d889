/**
 * Posts in the chat page, in real headless Chromium: a multi-line paste, the length limit, edit,
 * delete and reactions seen by another page, a reply that jumps to its original, a mention that
 * raises a desktop notification, the whole page by keyboard alone, the first visit's name dialog,
 * and a server that refuses the page's origin.
 */
import { afterAll, beforeAll, describe, expect, it, setDefaultTimeout } from "bun:test";
import type { Page } from "playwright-core";
import { chromiumMissing, eventually, Harness, messages, say, setHidden, texts } from "./page-helpers";

setDefaultTimeout(20_000);

const missing = chromiumMissing("test/e2e/browser-posts.test.ts");
const h = new Harness();

/** The seq of the newest post shown whose text is `text`. */
function seqOf(page: Page, text: string): Promise<number> {
  return page.$$eval(
    "#chat li.msg",
    (els, t) => {
      const li = (els as HTMLElement[]).findLast((el) => el.querySelector(".text")?.textContent === t);
      return Number(li?.dataset.seq ?? Number.NaN);
    },
    text,
  );
}

describe.skipIf(missing)("posts in the chat page", () => {
  beforeAll(() => h.launch());
  afterAll(() => h.close());

  it("sends a pasted multi-line text as one post, line breaks intact; Shift+Enter adds a line", async () => {
    const server = h.serve();
    const ann = await h.open(
      await h.person({ permissions: ["clipboard-read", "clipboard-write"] }),
      server.url,
      "room=r&nick=ann",
    );
    const bob = await h.open(await h.person(), server.url, "room=r&nick=bob");
    const pasted =
      "here's the patch:\n-  retry(() => this.refresh(), 3);\n+  await retry(() => this.refresh(), { attempts: 3 });";
    await ann.evaluate((t) => navigator.clipboard.writeText(t), pasted);
    await ann.focus("#inputline");
    await ann.keyboard.press("Control+V");
    expect(await ann.inputValue("#inputline")).toBe(pasted);
    await ann.keyboard.press("Shift+Enter");
    await ann.keyboard.type("(one post)");
    await ann.keyboard.press("Enter");
    const sent = `${pasted}\n(one post)`;
    await eventually(
      () => bob.$$eval("#chat li.msg .text", (els) => els.map((el) => (el as HTMLElement).innerText)),
      (l) => l.length === 1 && l[0] === sent,
    );
    expect(await ann.inputValue("#inputline")).toBe("");
  });

  it("counts characters near the limit and will not send an over-long message", async () => {
    const server = h.serve();
    const ann = await h.open(await h.person(), server.url, "room=r&nick=ann");
    await ann.fill("#inputline", "x".repeat(3000));
    expect(await ann.isVisible("#counter")).toBe(false);
    await ann.fill("#inputline", "x".repeat(3990));
    expect(await ann.textContent("#counter")).toBe("10 left");
    await ann.fill("#inputline", "x".repeat(4100));
    expect(await ann.textContent("#counter")).toBe("100 over");
    expect(await ann.isDisabled("#send")).toBe(true);
    await ann.press("#inputline", "Enter");
    expect(await ann.textContent("#typing")).toBe("That is 100 characters too long to send.");
    expect(await ann.inputValue("#inputline")).toHaveLength(4100);
    expect(await ann.$$eval("#chat li.msg, #outbox li", (els) => els.length)).toBe(0);
    // The box grows to about six lines, then scrolls.
    const height = await ann.$eval("#inputline", (el) => el.getBoundingClientRect().height);
    expect(height).toBeGreaterThan(100);
    expect(height).toBeLessThan(170);
  });

  it("shows edits, deletes and reactions to the other page, and who reacted", async () => {
    const server = h.serve();
    const ann = await h.open(await h.person(), server.url, "room=r&nick=ann");
    const bob = await h.open(await h.person(), server.url, "room=r&nick=bob");
    await say(ann, "the deploy is at 3");
    await say(ann, "oops, wrong room");
    await eventually(
      () => messages(bob),
      (m) => m.length === 2,
    );
    // Up in the empty composer edits the last post; Enter saves.
    await ann.focus("#inputline");
    await ann.keyboard.press("ArrowUp");
    await ann.waitForSelector("#chat textarea[data-editor]");
    await ann.keyboard.press("Escape");
    expect(await ann.$$eval("#chat textarea", (els) => els.length)).toBe(0);
    const first = await seqOf(ann, "the deploy is at 3");
    await ann.hover(`#chat li[data-seq="${first}"]`);
    await ann.click(`#chat li[data-seq="${first}"] [data-act="edit"]`);
    await ann.fill("#chat textarea[data-editor]", "the deploy is at 4");
    await ann.press("#chat textarea[data-editor]", "Enter");
    await eventually(
      () => texts(bob, "#chat li.msg .edited"),
      (l) => l.length === 1,
    );
    expect((await messages(bob))[0]).toBe("ann: the deploy is at 4");
    // Delete asks first.
    const second = await seqOf(ann, "oops, wrong room");
    await ann.hover(`#chat li[data-seq="${second}"]`);
    await ann.click(`#chat li[data-seq="${second}"] [data-act="delete"]`);
    expect(await texts(ann, `#chat li[data-seq="${second}"] .confirm span`)).toEqual([
      "Delete this message for everyone?",
    ]);
    await ann.click(`#chat li[data-seq="${second}"] [data-act="delete-yes"]`);
    await eventually(
      () => texts(bob, `#chat li[data-seq="${second}"] .text`),
      (l) => l[0] === "message deleted",
    );
    // Bob cannot edit or delete ann's post, but reacts to it.
    await bob.hover(`#chat li[data-seq="${first}"]`);
    expect(await bob.isVisible(`#chat li[data-seq="${first}"] [data-act="edit"]`)).toBe(false);
    await bob.click(`#chat li[data-seq="${first}"] [data-act="react"]`);
    await bob.click('.picker [data-emoji="🎉"]');
    const chip = `#chat li[data-seq="${first}"] .reaction[data-emoji="🎉"]`;
    await eventually(
      () => texts(ann, chip),
      (l) => l[0] === "🎉1",
    );
    expect(await ann.getAttribute(chip, "title")).toBe("bob reacted with 🎉");
    expect(await ann.getAttribute(chip, "aria-pressed")).toBe("false");
    await ann.click(chip);
    await eventually(
      () => texts(bob, chip),
      (l) => l[0] === "🎉2",
    );
    expect(await bob.getAttribute(chip, "title")).toBe("bob and ann reacted with 🎉");
    await bob.click(chip);
    await eventually(
      () => bob.getAttribute(chip, "title"),
      (t) => t === "ann reacted with 🎉",
    );
  });

  it("quotes the original in a reply, and a click on the quote jumps to it and flashes it", async () => {
    const server = h.serve();
    const ann = await h.open(await h.person(), server.url, "room=r&nick=ann");
    const bob = await h.open(await h.person(), server.url, "room=r&nick=bob");
    await say(ann, "who has the release checklist?");
    for (let i = 0; i < 40; i++) await say(ann, `filler ${i}`);
    await eventually(
      () => messages(bob),
      (m) => m.length === 41,
    );
    const original = await seqOf(bob, "who has the release checklist?");
    await bob.$eval(`#chat li[data-seq="${original}"]`, (el) => el.scrollIntoView());
    await bob.hover(`#chat li[data-seq="${original}"]`);
    await bob.click(`#chat li[data-seq="${original}"] [data-act="reply"]`);
    expect(await bob.textContent("#reply-text")).toContain("Replying to ann");
    await bob.keyboard.type("I do, it's in the wiki");
    await bob.keyboard.press("Enter");
    await eventually(
      () => texts(ann, "#chat .quote"),
      (l) => l.length === 1,
    );
    expect((await texts(ann, "#chat .quote"))[0]).toContain("who has the release checklist?");
    expect(await ann.isVisible(`#chat li[data-seq="${original}"]`)).toBe(true);
    const inView = () =>
      ann.$eval(`#chat li[data-seq="${original}"]`, (el) => {
        const r = el.getBoundingClientRect();
        const s = (document.getElementById("scroller") as HTMLElement).getBoundingClientRect();
        return r.top >= s.top && r.bottom <= s.bottom;
      });
    expect(await inView()).toBe(false);
    await ann.click("#chat .quote");
    await eventually(inView, Boolean);
    expect(await ann.$eval(`#chat li[data-seq="${original}"]`, (el) => el.classList.contains("flash"))).toBe(
      true,
    );
    expect(await ann.evaluate(() => (document.activeElement as HTMLElement).dataset.seq)).toBe(
      String(original),
    );
  });

  it("raises a desktop notification for a mention or a direct message while the tab is hidden", async () => {
    const server = h.serve();
    const ann = await h.open(
      await h.person({ permissions: ["notifications"] }),
      server.url,
      "room=r&nick=ann",
    );
    const bob = await h.open(await h.person(), server.url, "room=r&nick=bob");
    await ann.click("#bell");
    await eventually(
      () => ann.getAttribute("#bell", "aria-pressed"),
      (p) => p === "true",
    );
    const notes = () => ann.evaluate(() => (window as unknown as { __notes: unknown[] }).__notes);
    await say(bob, "@ann while you look: a mention");
    await eventually(
      () => messages(ann),
      (m) => m.length === 1,
    );
    expect(await notes()).toEqual([]); // visible: no notification
    await setHidden(ann, true);
    await say(bob, "no mention here");
    await say(bob, "@ann are you there?");
    await eventually(notes, (n) => n.length === 1);
    expect(await notes()).toEqual([["bob in #r", { body: "@ann are you there?", tag: "r" }]]);
    expect(await ann.title()).toBe("(1!) #r · bun-chat");
    await say(bob, "/msg ann private word");
    await eventually(notes, (n) => n.length === 2);
    expect((await notes())[1]).toMatchObject(["bob", { body: "private word" }]);
    // Back in view: the room is read and the title says so.
    await setHidden(ann, false);
    await eventually(
      () => ann.title(),
      (t) => t === "(1!) #r · bun-chat",
    );
    expect(await ann.$eval("#announcer", (el) => el.getAttribute("aria-live"))).toBe("polite");
  });

  it("can be used with the keyboard alone, with a visible focus", async () => {
    const server = h.serve();
    const bob = await h.open(await h.person(), server.url, "room=lobby&nick=bob");
    await say(bob, "/join dev");
    const ann = await h.open(await h.person(), server.url, "room=lobby&nick=ann");
    await say(bob, "/join lobby");
    await say(bob, "hello ann");
    const kb = ann.keyboard;
    // Joining a room: Tab to the + beside Rooms from the top of the page.
    await ann.evaluate(() => (document.activeElement as HTMLElement | null)?.blur());
    for (let i = 0; i < 10; i++) {
      await kb.press("Tab");
      if ((await ann.evaluate(() => document.activeElement?.id)) === "join-open") break;
    }
    const ring = await ann.evaluate(() => getComputedStyle(document.activeElement as Element).outlineStyle);
    expect(ring).not.toBe("none");
    await kb.press("Enter");
    await kb.type("dev");
    await kb.press("Enter");
    await eventually(
      () => texts(ann, "#room-name"),
      (t) => t[0] === "#dev",
    );
    expect(await ann.evaluate(() => document.activeElement?.id)).toBe("inputline");
    // Alt+Up/Down walks the rooms; Ctrl+K jumps.
    await kb.press("Alt+ArrowDown");
    await eventually(
      () => texts(ann, "#room-name"),
      (t) => t[0] === "#lobby",
    );
    await kb.press("Control+k");
    await kb.type("de");
    await kb.press("Enter");
    await eventually(
      () => texts(ann, "#room-name"),
      (t) => t[0] === "#dev",
    );
    await kb.press("Control+k");
    await kb.type("lob");
    await kb.press("Enter");
    await eventually(
      () => texts(ann, "#room-name"),
      (t) => t[0] === "#lobby",
    );
    // Into the messages: Shift+Tab to the list, arrows to a post, r to reply, Tab completes a nick.
    await ann.focus("#inputline");
    for (let i = 0; i < 6; i++) {
      await kb.press("Shift+Tab");
      if ((await ann.evaluate(() => document.activeElement?.id)) === "scroller") break;
    }
    await kb.press("ArrowUp");
    expect(await ann.evaluate(() => (document.activeElement as HTMLElement).dataset.nick)).toBe("bob");
    await kb.press("r");
    expect(await ann.textContent("#reply-text")).toContain("Replying to bob");
    await ann.focus("#inputline");
    await kb.type("thanks b");
    await kb.press("Tab");
    expect(await ann.inputValue("#inputline")).toBe("thanks bob ");
    await kb.press("Enter");
    await eventually(
      () => texts(bob, "#chat .quote"),
      (l) => l.length === 1,
    );
    // React from the keyboard: to the post, Tab to the menu, Enter, arrows in the picker, Enter.
    await ann.focus("#scroller");
    await kb.press("ArrowUp");
    await kb.press("ArrowUp");
    expect(await ann.evaluate(() => (document.activeElement as HTMLElement).dataset.nick)).toBe("bob");
    await kb.press("Tab");
    expect(await ann.evaluate(() => document.activeElement?.getAttribute("aria-label"))).toBe(
      "Add a reaction",
    );
    await kb.press("Enter");
    await kb.press("ArrowRight");
    await kb.press("Enter");
    await eventually(
      () => texts(bob, "#chat .reaction"),
      (l) => l.join() === "❤️1",
    );
    // Edit the own last post with Up; Esc leaves it as it was.
    await ann.focus("#inputline");
    await kb.press("ArrowUp");
    await kb.press("End");
    await kb.type("!");
    await kb.press("Enter");
    await eventually(
      () => messages(bob),
      (m) => m.at(-1) === "ann: thanks bob !",
    );
    expect(await ann.evaluate(() => document.activeElement?.id)).toBe("inputline");
  });

  it("asks a first-time visitor for a name, and says why one will not do", async () => {
    const server = h.serve();
    const page = await h.open(await h.person(), server.url, "", false);
    await page.waitForSelector("#name-dialog[open]");
    expect(await page.evaluate(() => document.activeElement?.id)).toBe("name-input");
    await page.keyboard.type("two words");
    await page.keyboard.press("Enter");
    expect(await page.textContent("#name-problem")).toContain("cannot be a name");
    await page.keyboard.press("Escape");
    expect(await page.isVisible("#name-dialog")).toBe(true);
    await page.fill("#name-input", "Zoë");
    await page.keyboard.press("Enter");
    await eventually(
      () => texts(page, "#me-name"),
      (t) => t[0] === "Zoë",
    );
    expect(await page.textContent("#room-name")).toBe("#default");
    await say(page, "hi");
    await eventually(
      () => messages(page),
      (m) => m.join() === "Zoë: hi",
    );
  });

  it("says what to configure when the server refuses the page's origin", async () => {
    const server = h.serve({ ALLOWED_ORIGINS: "https://chat.example.com" });
    const page = await h.open(await h.person(), server.url, "room=r&nick=ann", false);
    await page.waitForSelector("#banner:not([hidden])", { timeout: 15_000 });
    const banner = (await page.textContent("#banner")) ?? "";
    expect(banner).toContain("does not accept connections from this page's address");
    expect(banner).toContain("ALLOWED_ORIGINS");
    expect(await page.textContent("#headline")).toMatch(/^disconnected/);
  });
});
