/**
 * Resume tokens travel in URLs, where proxies log them: each one works once. Every resume hands out
 * a new token and the old one stops working, on every engine; and no log line ever holds a token.
 */
import { afterEach, describe, expect, it } from "bun:test";
import { jsonLogger } from "../../server/chat/log";
import { closeAllClients, connect } from "../support/test-client";
import { testEngines } from "../support/test-engines";
import { startTestServerOn, stopAllServers } from "../support/test-server";

afterEach(async () => {
  await closeAllClients();
  await stopAllServers();
});

const engines = testEngines();

describe.each(engines)("resume tokens, %s engine", (_name, engineOf) => {
  it("are new after every resume, and the one a resume used no longer resumes", async () => {
    const srv = startTestServerOn(engineOf());
    const a = await connect(srv.url, { room: "r", nick: "alice" });
    const first = a.welcome.resumeToken;
    const b = await connect(srv.url, { room: "r", resume: first });
    expect(b.welcome.nick).toBe("alice");
    const second = b.welcome.resumeToken;
    expect(second).not.toBe(first);
    await b.close();
    // The first token is spent: it starts a new session (a guest), the second one resumes.
    const stale = await connect(srv.url, { room: "r", resume: first });
    expect(stale.welcome.nick).not.toBe("alice");
    const c = await connect(srv.url, { room: "r", resume: second });
    expect(c.welcome.nick).toBe("alice");
    expect(c.welcome.resumeToken).not.toBe(second);
  });

  it("never appear in a log line, even at debug level", async () => {
    const lines: string[] = [];
    const srv = startTestServerOn(
      engineOf(),
      { LOG_LEVEL: "debug" },
      { log: jsonLogger("debug", (l) => lines.push(l)) },
    );
    const a = await connect(srv.url, { room: "r", nick: "alice" });
    await a.post("hello", 2);
    const tokens = [a.welcome.resumeToken];
    await a.close();
    const b = await connect(srv.url, { room: "r", resume: a.welcome.resumeToken });
    tokens.push(b.welcome.resumeToken);
    await connect(srv.url, { room: "no spaces allowed", resume: b.welcome.resumeToken }).catch(
      () => undefined,
    );
    await b.close();
    expect(lines.length).toBeGreaterThan(3);
    for (const token of tokens) expect(lines.filter((l) => l.includes(token))).toEqual([]);
  });
});
