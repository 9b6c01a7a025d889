/** The composer's pure parts: what a typed line asks for, the length limit, nick completion, attention counts. */
import { describe, expect, it } from "bun:test";
import { attentionOf, pillOf, titleText } from "../client/page/attention";
import { checkNick, overLimit, parseCommand } from "../client/page/commands";
import { completeNick, rankNicks } from "../client/page/completion";

describe("commands", () => {
  it("reads posts, actions and // escapes, keeping line breaks", () => {
    expect(parseCommand("hello\nworld")).toEqual({ kind: "post", text: "hello\nworld" });
    expect(parseCommand("/me waves\nhi")).toEqual({ kind: "action", text: "waves\nhi" });
    expect(parseCommand("//shrug")).toEqual({ kind: "post", text: "/shrug" });
    expect(parseCommand("   ")).toEqual({ kind: "none" });
  });

  it("reads each command", () => {
    expect(parseCommand("/nick Ann")).toEqual({ kind: "nick", nick: "Ann" });
    expect(parseCommand("/join #dev")).toEqual({ kind: "join", room: "dev" });
    expect(parseCommand("/j dev")).toEqual({ kind: "join", room: "dev" });
    expect(parseCommand("/part")).toEqual({ kind: "part" });
    expect(parseCommand("/part dev")).toEqual({ kind: "part", room: "dev" });
    expect(parseCommand("/msg bob")).toEqual({ kind: "msg", nick: "bob" });
    expect(parseCommand("/msg @bob hi there")).toEqual({ kind: "msg", nick: "bob", text: "hi there" });
    expect(parseCommand("/topic Deploys on Fridays")).toEqual({ kind: "topic", topic: "Deploys on Fridays" });
    expect(parseCommand("/topic")).toEqual({ kind: "topic", topic: "" });
    expect(parseCommand("/WHO")).toEqual({ kind: "who" });
    expect(parseCommand("/help")).toEqual({ kind: "help" });
  });

  it("explains what is wrong in words, without codes", () => {
    const bad = [
      parseCommand("/nick two words"),
      parseCommand("/join no room!"),
      parseCommand("/msg"),
      parseCommand("/me"),
      parseCommand("/frobnicate"),
      parseCommand(`/topic ${"x".repeat(201)}`),
    ];
    for (const c of bad) {
      expect(c.kind).toBe("invalid");
      if (c.kind === "invalid") expect(c.message).not.toMatch(/[a-z]_[a-z]/);
    }
    expect(checkNick("")).toEqual({ problem: "Type a name first." });
  });

  it("measures the limit in characters, not UTF-16 units", () => {
    expect(overLimit("x".repeat(4000))).toBe(0);
    expect(overLimit("x".repeat(4001))).toBe(1);
    expect(overLimit("😀".repeat(4000))).toBe(0);
  });
});

describe("nick completion", () => {
  const users = ["ann", "anna", "bob", "me"];

  it("ranks the most recent speakers first and leaves the reader out", () => {
    const posts = [{ nick: "bob" }, { nick: "anna" }, { nick: "gone" }, { nick: "me" }];
    expect(rankNicks(users, posts, "me")).toEqual(["anna", "bob", "ann"]);
  });

  it("completes at the start of a line as an address, elsewhere as a word, and cycles", () => {
    const first = completeNick("an", 2, ["anna", "ann"]);
    expect(first?.value).toBe("anna: ");
    const second = completeNick(first?.value ?? "", first?.caret ?? 0, ["anna", "ann"], first?.state);
    expect(second?.value).toBe("ann: ");
    const mid = completeNick("thanks @b and more", 9, ["bob"]);
    expect(mid).toMatchObject({ value: "thanks @bob and more", caret: 12 });
    expect(completeNick("hello zz", 8, ["bob"])).toBeUndefined();
  });
});

describe("attention", () => {
  it("counts a direct room's unread posts as mentions", () => {
    const rooms = [
      { unread: 3, mentions: 1 },
      { unread: 2, mentions: 0, dm: "bob" },
    ];
    expect(attentionOf(rooms)).toEqual({ unread: 5, mentions: 3 });
    expect(pillOf({ unread: 4, mentions: 0 })).toEqual({ count: 4, mention: false });
    expect(pillOf({ unread: 4, mentions: 2 })).toEqual({ count: 2, mention: true });
    expect(pillOf({ unread: 0, mentions: 0 })).toBeUndefined();
  });

  it("writes the title with mentions marked apart from unread", () => {
    expect(titleText({ unread: 3, mentions: 0 }, "#lobby")).toBe("(3) #lobby · bun-chat");
    expect(titleText({ unread: 3, mentions: 2 }, "#lobby")).toBe("(2!) #lobby · bun-chat");
    expect(titleText({ unread: 0, mentions: 0 }, undefined)).toBe("bun-chat");
  });
});
