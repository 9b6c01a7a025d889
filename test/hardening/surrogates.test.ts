/**
 * Lone surrogates over real sockets: every string on the wire is well-formed Unicode, so a frame whose
 * text, id, nick or room holds a lone surrogate (JSON's `\ud800` escapes can carry one) is bad_message
 * and changes nothing: no live client sees it, history does not hold it, no seq is spent.
 */
import { afterEach, describe, expect, it } from "bun:test";
import { upgradeRequest } from "../support/http-upgrade";
import { closeAllClients, connect, type TestClient } from "../support/test-client";
import { startTestServer, stopAllServers } from "../support/test-server";

afterEach(async () => {
  await closeAllClients();
  await stopAllServers();
});

/** Strings with a lone surrogate: high, low, at either end, a pair the wrong way round, half a pair. */
const ILL_FORMED = [
  "\ud800",
  "\udfff",
  "a\ud800",
  "\udc00b",
  "x\ude00\ud83dy",
  "😀".slice(0, 1),
  "ok😀\ud83d",
];

/** A frame as JSON text: JSON.stringify writes a lone surrogate as a `\uXXXX` escape, so it arrives as one. */
const raw = (value: object) => JSON.stringify(value);

async function history(client: TestClient): Promise<Array<[number, string]>> {
  client.send({ type: "history", limit: 50 });
  return (await client.next("history")).messages.map((m) => [m.seq, m.text]);
}

async function httpHistory(base: URL, room: string): Promise<unknown[]> {
  const res = await fetch(new URL(`/api/rooms/${encodeURIComponent(room)}/messages`, base));
  expect(res.status).toBe(200);
  const body = (await res.json()) as { messages: unknown[] };
  return body.messages;
}

/** Everything `client` got after the welcome, but for errors: nothing a refused frame may cause. */
function besidesErrors(client: TestClient): string[] {
  return client.received.filter((m) => m.type !== "welcome" && m.type !== "error").map((m) => m.type);
}

describe("lone surrogates", () => {
  it("refuses chat text holding one with bad_message, echoing the id, and stores nothing", async () => {
    const srv = startTestServer({ RATE_LIMIT: "0" });
    const a = await connect(srv.url, { room: "r", nick: "ann" });
    const b = await connect(srv.url, { room: "r", nick: "bob" });
    await a.next("presence");
    ILL_FORMED.forEach((bad, i) => {
      a.send(raw({ type: "chat", text: `text ${bad} here`, id: `t${i}` }));
    });
    for (let i = 0; i < ILL_FORMED.length; i++) {
      expect(await a.next("error")).toMatchObject({ code: "bad_message", id: `t${i}` });
    }
    // The next real chat is the room's first: nothing was stored, no seq spent, nobody saw the others.
    a.send({ type: "chat", text: "fine", id: "ok" });
    expect(await a.next("ack")).toEqual({ type: "ack", id: "ok", seq: 1 });
    expect((await b.next("chat")).text).toBe("fine");
    expect(b.chats().map((m) => m.text)).toEqual(["fine"]);
    expect(await history(b)).toEqual([[1, "fine"]]);
    expect(await httpHistory(srv.url, "r")).toHaveLength(1);
    expect(a.all("ack")).toHaveLength(1);
  });

  it("refuses a chat whose id holds one with bad_message, without echoing that id, and stores nothing", async () => {
    const srv = startTestServer({ RATE_LIMIT: "0" });
    const a = await connect(srv.url, { room: "r", nick: "ann" });
    for (const bad of ILL_FORMED) {
      a.send(raw({ type: "chat", text: "hello", id: `id-${bad}` }));
      const error = await a.next("error");
      expect(error.code).toBe("bad_message");
      expect(error).not.toHaveProperty("id");
    }
    expect(a.all("ack")).toEqual([]);
    expect(await history(a)).toEqual([]);
  });

  it("never takes two ids that differ only in a lone surrogate: neither is sent, U+FFFD is a real id", async () => {
    const srv = startTestServer({ RATE_LIMIT: "0" });
    const a = await connect(srv.url, { room: "r", nick: "ann" });
    const b = await connect(srv.url, { room: "r", nick: "bob" });
    a.send(raw({ type: "chat", text: "one", id: "m\ud800" }));
    a.send(raw({ type: "chat", text: "two", id: "m\udbff" }));
    expect((await a.next("error")).code).toBe("bad_message");
    expect((await a.next("error")).code).toBe("bad_message");
    // What a replacement character stands for is an ordinary id, sent once however often it is resent.
    a.send({ type: "chat", text: "three", id: "m\ufffd" });
    a.send({ type: "chat", text: "three", id: "m\ufffd" });
    expect(await a.next("ack")).toEqual({ type: "ack", id: "m\ufffd", seq: 1 });
    expect(await a.next("ack")).toEqual({ type: "ack", id: "m\ufffd", seq: 1 });
    expect(await history(b)).toEqual([[1, "three"]]);
    expect(b.chats().map((m) => m.text)).toEqual(["three"]);
  });

  it("refuses a rename to a nick holding one with bad_message and keeps the name", async () => {
    const srv = startTestServer();
    const a = await connect(srv.url, { room: "r", nick: "ann" });
    const b = await connect(srv.url, { room: "r", nick: "bob" });
    for (const bad of ILL_FORMED) {
      a.send(raw({ type: "nick", nick: `ann${bad}` }));
      expect({ bad, code: (await a.next("error")).code }).toEqual({ bad, code: "bad_message" });
    }
    a.send({ type: "who" });
    expect((await a.next("users")).users).toEqual(["ann", "bob"]);
    expect(besidesErrors(b).filter((t) => t !== "presence")).toEqual([]);
    expect(b.all("presence").flatMap((p) => p.events)).toEqual([]);
  });

  it("refuses a join to a room holding one with bad_message and stays in the room", async () => {
    const srv = startTestServer();
    const a = await connect(srv.url, { room: "r", nick: "ann" });
    for (const bad of ILL_FORMED) {
      a.send(raw({ type: "join", room: `room${bad}` }));
      expect({ bad, code: (await a.next("error")).code }).toEqual({ bad, code: "bad_message" });
    }
    expect(a.all("welcome")).toHaveLength(1);
    a.send({ type: "chat", text: "still here" });
    expect((await a.next("chat")).room).toBe("r");
  });

  it("refuses a nick or room holding one on connect with 400", async () => {
    const srv = startTestServer();
    for (const bad of ILL_FORMED) {
      const nick = await upgradeRequest(srv.url, { room: "r", nick: `ann${bad}` });
      expect({ bad, status: nick.status, error: nick.body?.error }).toEqual({
        bad,
        status: 400,
        error: "nick_invalid",
      });
      const room = await upgradeRequest(srv.url, { room: `r${bad}`, nick: "ann" });
      expect({ bad, status: room.status, error: room.body?.error }).toEqual({
        bad,
        status: 400,
        error: "room_invalid",
      });
    }
  });

  it("refuses a frame with one in a key or in the type with bad_message", async () => {
    const srv = startTestServer();
    const a = await connect(srv.url, { room: "r", nick: "ann" });
    for (const frame of ['{"type":"who","\\ud800":1}', '{"type":"who\\ud800"}', '{"\\udfff":"who"}']) {
      a.send(frame);
      expect({ frame, code: (await a.next("error")).code }).toEqual({ frame, code: "bad_message" });
    }
  });
});
