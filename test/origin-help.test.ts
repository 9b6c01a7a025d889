/**
 * Help for a refused Origin (issue 13: behind a proxy that rewrites Host the page looped
 * "reconnecting" and the log said only `upgrade_refused forbidden`): `GET /api/origin-check` answers
 * by the upgrade's own rule with the Host it compared and what to configure, and the refused upgrade's
 * log line names the origin, the Host (and X-Forwarded-Host) and the setting.
 */
import { afterEach, describe, expect, it } from "bun:test";
import type { RunningServer } from "../server";
import { jsonLogger } from "../server/chat/log";
import { upgradeRequest } from "./support/http-upgrade";
import { startTestServer, stopAllServers } from "./support/test-server";

afterEach(async () => {
  await stopAllServers();
});

interface Verdict {
  allowed: boolean;
  origin: string;
  host: string | null;
  scheme: string;
  forwardedHost?: string;
  hint?: string;
}

/** `GET /api/origin-check?origin=...` with these headers (Host among them, as a proxy would set it). */
async function check(
  srv: RunningServer,
  origin: string | undefined,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: Verdict; text: string }> {
  const url = new URL("/api/origin-check", srv.url);
  if (origin !== undefined) url.searchParams.set("origin", origin);
  const res = await fetch(url, { headers });
  const text = await res.text();
  return { status: res.status, body: JSON.parse(text) as Verdict, text };
}

describe("GET /api/origin-check", () => {
  it("behind a proxy that rewrites Host: allowed false, the Host it saw, and what to set", async () => {
    const srv = startTestServer();
    // nginx's default: the page is at https://chat.example.com, the server sees Host: 127.0.0.1:3000.
    const { status, body } = await check(srv, "https://chat.example.com", {
      Host: "127.0.0.1:3000",
      "X-Forwarded-Proto": "https",
    });
    expect(status).toBe(200);
    expect(body).toMatchObject({
      allowed: false,
      origin: "https://chat.example.com",
      host: "127.0.0.1:3000",
      scheme: "https:",
    });
    expect(body.hint).toBe(
      "This server only accepts pages from its own address (it sees Host: 127.0.0.1:3000, but the page " +
        "is at chat.example.com). Set ALLOWED_ORIGINS=https://chat.example.com on the server, or make " +
        "your proxy pass the Host header (nginx: proxy_set_header Host $host;).",
    );
  });

  it("with a matching Host (the proxy passes it, or no proxy): allowed true and no hint", async () => {
    const srv = startTestServer();
    const direct = await check(srv, `http://${srv.url.host}`);
    expect(direct.body).toEqual({
      allowed: true,
      origin: `http://${srv.url.host}`,
      host: srv.url.host,
      scheme: "http:",
    });
    const proxied = await check(srv, "https://chat.example.com", {
      Host: "chat.example.com",
      "X-Forwarded-Proto": "https",
    });
    expect(proxied.body.allowed).toBe(true);
    expect(proxied.body.hint).toBeUndefined();
  });

  it("names X-Forwarded-Host without trusting it, and says when the proxy hid https", async () => {
    const srv = startTestServer();
    const forwarded = await check(srv, "https://chat.example.com", {
      Host: "backend:3000",
      "X-Forwarded-Host": "chat.example.com",
      "X-Forwarded-Proto": "https",
    });
    expect(forwarded.body.allowed).toBe(false);
    expect(forwarded.body.forwardedHost).toBe("chat.example.com");
    expect(forwarded.body.hint).toContain("X-Forwarded-Host: chat.example.com");
    // TLS ended at the proxy with no X-Forwarded-Proto: same host, other scheme.
    const tls = await check(srv, "https://chat.example.com", { Host: "chat.example.com" });
    expect(tls.body).toMatchObject({ allowed: false, scheme: "http:" });
    expect(tls.body.hint).toContain("X-Forwarded-Proto");
    expect(tls.body.hint).toContain("ALLOWED_ORIGINS=https://chat.example.com");
  });

  it("honours ALLOWED_ORIGINS: listed origins pass whatever the Host, others (even the same host) do not", async () => {
    const srv = startTestServer({ ALLOWED_ORIGINS: "https://chat.example.com,http://localhost:5173" });
    for (const origin of ["https://chat.example.com", "http://localhost:5173"]) {
      const { body } = await check(srv, origin, { Host: "backend:3000" });
      expect({ origin, allowed: body.allowed, hint: body.hint }).toEqual({
        origin,
        allowed: true,
        hint: undefined,
      });
    }
    const other = await check(srv, "https://evil.example");
    expect(other.body.allowed).toBe(false);
    expect(other.body.hint).toContain("ALLOWED_ORIGINS");
    expect(other.body.hint).toContain("https://evil.example");
    expect((await check(srv, `http://${srv.url.host}`)).body.allowed).toBe(false);
  });

  it("agrees with the upgrade itself, origin by origin", async () => {
    const envs: Array<Record<string, string>> = [{}, { ALLOWED_ORIGINS: "https://chat.example" }];
    for (const env of envs) {
      const srv = startTestServer(env);
      const host = srv.url.host;
      const origins = [
        `http://${host}`,
        `HTTP://${host.toUpperCase()}`,
        `https://${host}`,
        `http://${host}.evil.example`,
        `http://${host}@evil.example`,
        "https://chat.example",
        "https://chat.example/",
        "null",
        "",
      ];
      for (const origin of origins) {
        const upgrade = await upgradeRequest(srv.url, {}, { Origin: origin });
        const { body } = await check(srv, undefined, { Origin: origin });
        const viaParam = origin === "" ? body : (await check(srv, origin)).body;
        expect({ env, origin, route: viaParam.allowed }).toEqual({
          env,
          origin,
          route: upgrade.status === 101,
        });
        if (origin !== "") expect(body.allowed).toBe(viaParam.allowed);
      }
    }
  });

  it("echoes at most 200 characters of the origin, and wants one", async () => {
    const srv = startTestServer();
    const long = `https://${"a".repeat(5000)}.example`;
    const { status, body, text } = await check(srv, long);
    expect(status).toBe(200);
    expect(body.allowed).toBe(false);
    expect(body.origin.length).toBeLessThanOrEqual(200);
    expect(text).not.toContain("a".repeat(201));
    expect(text.length).toBeLessThan(1000);
    const none = await fetch(new URL("/api/origin-check", srv.url));
    expect(none.status).toBe(400);
    expect(((await none.json()) as { error: string }).error).toBe("bad_request");
  });

  it("explains an origin that is no web address (a page opened from a file)", async () => {
    const srv = startTestServer();
    const { body } = await check(srv, "null");
    expect(body.allowed).toBe(false);
    expect(body.hint).toContain("not a web address");
  });
});

describe("the log line of a refused Origin", () => {
  it("names the origin, the Host and X-Forwarded-Host it compared, and ALLOWED_ORIGINS", async () => {
    const lines: string[] = [];
    const srv = startTestServer({}, { log: jsonLogger("info", (l) => lines.push(l)) });
    const headers = { Origin: "https://chat.example.com", "X-Forwarded-Host": "chat.example.com" };
    for (const v of ["1", "2"]) {
      lines.length = 0;
      expect((await upgradeRequest(srv.url, { v, room: "r" }, headers)).status).toBe(403);
      const refused = lines
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .filter((l) => l.event === "upgrade_refused");
      expect(refused).toHaveLength(1);
      expect(refused[0]).toMatchObject({
        level: "info",
        code: "forbidden",
        reason: "origin",
        origin: "https://chat.example.com",
        host: srv.url.host,
        forwardedHost: "chat.example.com",
        scheme: "http:",
        setting: "ALLOWED_ORIGINS",
      });
      expect(refused[0]?.hint).toContain("ALLOWED_ORIGINS=https://chat.example.com");
      expect(refused[0]?.hint).toContain(`Host: ${srv.url.host}`);
    }
  });

  it("cuts a long origin to 200 characters in the log", async () => {
    const lines: string[] = [];
    const srv = startTestServer({}, { log: jsonLogger("info", (l) => lines.push(l)) });
    const long = `https://${"b".repeat(3000)}.example`;
    expect((await upgradeRequest(srv.url, {}, { Origin: long })).status).toBe(403);
    const line = lines.find((l) => l.includes("upgrade_refused")) ?? "";
    expect(line).toContain('"origin":"https://bbb');
    expect(line).not.toContain("b".repeat(201));
  });
});
