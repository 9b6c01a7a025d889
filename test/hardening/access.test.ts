/**
 * Access control that tries to get in: Origin look-alikes, forged and broken tokens, a token's
 * nickname, the token CLI, tokens and bodies kept out of the logs, and the per-IP connection limit.
 */
import { afterEach, describe, expect, it } from "bun:test";
import { join } from "node:path";
import type { PresenceEvent } from "../../protocol";
import { TokenAuthority } from "../../server/auth";
import { jsonLogger } from "../../server/chat/log";
import { ConfigError } from "../../server/config";
import { mintToken } from "../../server/token-cli";
import { upgradeRequest } from "../support/http-upgrade";
import { RawWebSocket } from "../support/raw-websocket";
import { closeAllClients, connect, connectUrl, TestClient } from "../support/test-client";
import { startTestServer, stopAllServers } from "../support/test-server";
import { eventually } from "../support/timing";

afterEach(async () => {
  await closeAllClients();
  await stopAllServers();
});

const SECRET = "hardening-secret-0123456789";
const ROOT = join(import.meta.dir, "..", "..");

function b64url(text: string): string {
  return Buffer.from(text).toString("base64url");
}

function inAnHour(): number {
  return Math.floor(Date.now() / 1000) + 3600;
}

/** Asks for an upgrade with each Origin and returns those not refused with 403 forbidden. */
async function notForbidden(base: URL, origins: string[], headers: Record<string, string> = {}) {
  const out: Array<{ origin: string; status: number; error: string | undefined }> = [];
  for (const origin of origins) {
    const answer = await upgradeRequest(base, { room: "r" }, { ...headers, Origin: origin });
    if (
      answer.status !== 403 ||
      answer.body?.error !== "forbidden" ||
      typeof answer.body.message !== "string"
    ) {
      out.push({ origin, status: answer.status, error: answer.body?.error });
    }
  }
  return out;
}

function nickEvents(client: TestClient): PresenceEvent[] {
  return client.all("presence").flatMap((p) => p.events.filter((e) => e.event === "nick"));
}

describe("Origin", () => {
  it("without ALLOWED_ORIGINS, refuses other hosts, look-alikes, null, another scheme or port with 403", async () => {
    const srv = startTestServer();
    const host = srv.url.host; // 127.0.0.1:PORT
    const { hostname, port } = srv.url;
    const otherPort = String((Number(port) % 60000) + 1);
    const refused = [
      "http://evil.example",
      `http://evil.example:${port}`,
      `http://${hostname}.evil.example:${port}`,
      `http://${host}.evil.example`,
      `http://evil${host}`,
      `http://evil.${host}`,
      `http://${host}@evil.example`,
      "null",
      `https://${host}`,
      `ws://${host}`,
      `http://${hostname}:${otherPort}`,
      `http://${hostname}`,
      `http://localhost:${port}`,
      `http://${host}, http://evil.example`,
      "",
    ];
    expect(await notForbidden(srv.url, refused)).toEqual([]);
    expect(srv.hub.connectionCount).toBe(0);
    // The same origin passes, in any case, and so does a client that sends no Origin.
    expect((await upgradeRequest(srv.url, {}, { Origin: `http://${host}` })).status).toBe(101);
    expect((await upgradeRequest(srv.url, {}, { Origin: `HTTP://${host.toUpperCase()}` })).status).toBe(101);
    expect((await upgradeRequest(srv.url, {})).status).toBe(101);
  });

  it("behind a TLS proxy (X-Forwarded-Proto: https), takes the https origin and refuses the http one", async () => {
    const srv = startTestServer();
    const host = srv.url.host;
    const viaProxy = { "X-Forwarded-Proto": "https" };
    expect((await upgradeRequest(srv.url, {}, { ...viaProxy, Origin: `https://${host}` })).status).toBe(101);
    expect(await notForbidden(srv.url, [`http://${host}`, "https://evil.example", "null"], viaProxy)).toEqual(
      [],
    );
  });

  it("with ALLOWED_ORIGINS, accepts exact matches only: no substring, case, slash, scheme or port variant", async () => {
    const srv = startTestServer({ ALLOWED_ORIGINS: "https://chat.example,http://localhost:5173" });
    const refused = [
      "https://chat.example.evil.example",
      "https://evilchat.example",
      "https://evil.chat.example",
      "https://chat.example@evil.example",
      "http://chat.example",
      "https://chat.example:443",
      "https://chat.example:8443",
      "https://chat.example/",
      "HTTPS://CHAT.EXAMPLE",
      "https://chat.example,https://evil.example",
      "http://localhost:5174",
      "http://localhost",
      "https://localhost:5173",
      "null",
      `http://${srv.url.host}`,
      "",
    ];
    expect(await notForbidden(srv.url, refused)).toEqual([]);
    for (const origin of ["https://chat.example", "http://localhost:5173"]) {
      expect((await upgradeRequest(srv.url, {}, { Origin: origin })).status).toBe(101);
    }
  });
});

describe("access tokens", () => {
  it("refuses missing, expired, forged, foreign, alg none and malformed tokens with 401 before the upgrade", async () => {
    const srv = startTestServer({ AUTH_SECRET: SECRET });
    const authority = new TokenAuthority(SECRET);
    const exp = inAnHour();
    const good = await authority.sign({ nick: "ann", exp });
    const [header, body, sig] = good.split(".") as [string, string, string];
    const flip = (s: string) => (s[0] === "A" ? "B" : "A") + s.slice(1);
    const claims = (c: object) => b64url(JSON.stringify(c));
    const cases: Array<[string, string | undefined]> = [
      ["missing", undefined],
      ["empty", ""],
      ["expired", await authority.sign({ nick: "ann", exp: Math.floor(Date.now() / 1000) - 1 })],
      ["signature changed", `${header}.${body}.${flip(sig)}`],
      ["claims changed, signature kept", `${header}.${claims({ nick: "admin", exp })}.${sig}`],
      ["expiry extended, signature kept", `${header}.${claims({ nick: "ann", exp: exp + 1e6 })}.${sig}`],
      ["signature removed", `${header}.${body}.`],
      [
        "signed with another secret",
        await new TokenAuthority("another-secret-0123456789").sign({ nick: "ann", exp }),
      ],
      ["alg none, no signature", `${b64url('{"alg":"none","typ":"JWT"}')}.${body}.`],
      ["alg none, signature kept", `${b64url('{"alg":"none","typ":"JWT"}')}.${body}.${sig}`],
      ["alg None", `${b64url('{"alg":"None","typ":"JWT"}')}.${body}.`],
      ["alg HS512 label", `${b64url('{"alg":"HS512","typ":"JWT"}')}.${body}.${sig}`],
      ["header keys reordered", `${b64url('{"typ":"JWT","alg":"HS256"}')}.${body}.${sig}`],
      ["an invalid nick, properly signed", await authority.sign({ nick: "<script>", exp })],
      [
        "exp as a string, properly signed",
        await authority.sign({ nick: "ann", exp: String(exp) as unknown as number }),
      ],
      ["garbage", "garbage"],
      ["two parts", `${header}.${body}`],
      ["four parts", `${good}.${sig}`],
      ["not base64", "!!!.@@@.###"],
      ["dots only", ".."],
      ["very long", "A".repeat(4000)],
    ];
    const answers: Array<[string, number, string | undefined]> = [];
    for (const [name, token] of cases) {
      const answer = await upgradeRequest(
        srv.url,
        token === undefined ? { room: "r" } : { room: "r", token },
      );
      answers.push([name, answer.status, answer.body?.error]);
    }
    expect(answers).toEqual(cases.map(([name]) => [name, 401, "unauthorized"]));
    expect(srv.hub.connectionCount).toBe(0);
    expect((await upgradeRequest(srv.url, { room: "r", token: good })).status).toBe(101);
  });

  it("keeps the token's nick: /nick is forbidden, the nick param ignored, join and resume keep it", async () => {
    const srv = startTestServer({ AUTH_SECRET: SECRET });
    const authority = new TokenAuthority(SECRET);
    const token = async (nick: string) => authority.sign({ nick, exp: inAnHour() });
    const ann = await connect(srv.url, { room: "r", nick: "admin", token: await token("ann") });
    const bob = await connect(srv.url, { room: "r", token: await token("bob") });
    expect(ann.welcome.nick).toBe("ann");
    for (const nick of ["anna", "ANN", "ann", "bob", "admin"]) {
      ann.send({ type: "nick", nick });
      expect((await ann.next("error")).code).toBe("forbidden");
    }
    ann.send({ type: "chat", text: "after the renames", id: "k" });
    expect((await bob.next("chat")).nick).toBe("ann");
    expect(nickEvents(bob)).toEqual([]);
    expect(nickEvents(ann)).toEqual([]);

    ann.send({ type: "join", room: "s" });
    expect((await ann.next("welcome")).nick).toBe("ann");
    // Another token's holder cannot take ann's session (and nick) with ann's resume token.
    const carol = await connect(srv.url, {
      room: "s",
      resume: ann.welcome.resumeToken,
      token: await token("carol"),
    });
    expect(carol.welcome.nick).toBe("carol");
    carol.send({ type: "who" });
    expect((await carol.next("users")).users).toEqual(["ann", "carol"]);
    expect(ann.closeCode).toBeUndefined();
  });

  it("accepts a token minted by the token CLI, as a function and as a command", async () => {
    const srv = startTestServer({ AUTH_SECRET: SECRET });
    const minted = await mintToken({ AUTH_SECRET: SECRET }, ["--nick", "cli-user", "--ttl", "60"]);
    expect((await connect(srv.url, { room: "r", token: minted })).welcome.nick).toBe("cli-user");

    const cli = Bun.spawnSync([process.execPath, "server/token-cli.ts", "--nick", "operator", "--ttl=120"], {
      cwd: ROOT,
      env: { ...process.env, AUTH_SECRET: SECRET },
    });
    expect({ exit: cli.exitCode, stderr: cli.stderr.toString() }).toEqual({ exit: 0, stderr: "" });
    const printed = cli.stdout.toString().trim();
    expect(printed).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
    expect((await connect(srv.url, { room: "r", token: printed })).welcome.nick).toBe("operator");

    const foreign = await mintToken({ AUTH_SECRET: "not-the-server-secret" }, ["--nick", "x"]);
    expect((await upgradeRequest(srv.url, { token: foreign })).status).toBe(401);
    await expect(mintToken({ AUTH_SECRET: SECRET }, ["--nick", "<b>"])).rejects.toBeInstanceOf(ConfigError);
    await expect(mintToken({ AUTH_SECRET: "short" }, ["--nick", "x"])).rejects.toBeInstanceOf(ConfigError);
  });
});

describe("logs", () => {
  it("never contain a token, a resume token or a message body, even at debug level", async () => {
    const lines: string[] = [];
    const srv = startTestServer(
      { AUTH_SECRET: SECRET, LOG_LEVEL: "debug" },
      { log: jsonLogger("debug", (line) => lines.push(line)) },
    );
    const marker = `MARKER${crypto.randomUUID().replaceAll("-", "")}`;
    const authority = new TokenAuthority(SECRET);
    const token = await authority.sign({ nick: "logger", exp: inAnHour() });
    const expired = await authority.sign({ nick: "logger", exp: 1 });
    const foreign = await new TokenAuthority("another-secret-0123456789").sign({
      nick: "x",
      exp: inAnHour(),
    });
    const secrets = [
      token,
      expired,
      foreign,
      ...[token, expired, foreign].map((t) => t.split(".")[2] as string),
    ];

    for (const t of [expired, foreign, `${token}x`]) {
      expect((await upgradeRequest(srv.url, { room: "r", token: t })).status).toBe(401);
    }
    expect((await upgradeRequest(srv.url, { room: "bad room", token })).status).toBe(400);
    expect((await fetch(new URL(`/ws?token=${token}`, srv.url))).status).toBe(400);
    const a = await connect(srv.url, { room: "r", token });
    const b = await connect(srv.url, {
      room: "r",
      token: await authority.sign({ nick: "other", exp: inAnHour() }),
    });
    secrets.push(a.welcome.resumeToken, b.welcome.resumeToken);
    a.send({ type: "chat", text: `hello ${marker}`, id: `id-${marker}` });
    await b.next("chat");
    a.send(`{"type":"chat","text":"${marker}"`); // bad_json
    a.send({ type: "chat", text: marker + "x".repeat(4000) }); // too_large
    a.send({ type: "nick", nick: marker }); // forbidden: the nick is the token's
    a.send({ type: "join", room: `no ${marker}` }); // room_invalid
    for (let i = 0; i < 4; i++) await a.next("error");
    const api = await fetch(new URL(`/api/rooms/r/messages?token=${token}`, srv.url));
    expect(await api.text()).toContain(marker);
    a.send(JSON.stringify({ type: "chat", text: marker.repeat(500) })); // over MAX_PAYLOAD: 1009
    expect(await a.closing()).toBe(1009);
    await b.close();
    await eventually(() => srv.hub.connectionCount === 0, "both connections to close");

    const events = lines.map((l) => (JSON.parse(l) as { event: string }).event);
    for (const e of ["upgrade_refused", "conn_open", "conn_close"]) expect(events).toContain(e);
    const leaks = lines.filter((l) => l.includes(marker) || secrets.some((s) => l.includes(s)));
    expect(leaks).toEqual([]);
  });
});

describe("connections per IP", () => {
  it("refuses the extra connection with 503 server_busy, per address, and frees a slot when one closes", async () => {
    const srv = startTestServer({ MAX_CONNECTIONS_PER_IP: "2", MAX_PAYLOAD: "1024" });
    const a = await connect(srv.url, { room: "r", nick: "a" });
    await connect(srv.url, { room: "r", nick: "b" });
    const busy = await upgradeRequest(srv.url, { room: "r" });
    expect({ status: busy.status, error: busy.body?.error }).toEqual({ status: 503, error: "server_busy" });
    expect(typeof busy.body?.message).toBe("string");

    // Another source address has slots of its own.
    const elsewhere = await RawWebSocket.open(
      srv.url,
      { room: "r", nick: "far" },
      { localAddress: "127.0.0.2" },
    );
    await eventually(() => srv.hub.connectionCount === 3, "the connection from 127.0.0.2");
    elsewhere.destroy();
    await eventually(() => srv.hub.connectionCount === 2, "the 127.0.0.2 connection to end");

    // A client that leaves frees its slot...
    await a.close();
    await eventually(() => srv.hub.connectionCount === 1, "a's close to reach the server");
    const c = await connect(srv.url, { room: "r", nick: "c" });
    expect((await upgradeRequest(srv.url, { room: "r" })).status).toBe(503);
    // ...and so does one the server closes (1009 for a frame over MAX_PAYLOAD).
    c.send({ type: "chat", text: "x".repeat(2000) });
    expect(await c.closing()).toBe(1009);
    await eventually(() => srv.hub.connectionCount === 1, "c's close to reach the server");
    expect((await connect(srv.url, { room: "r", nick: "d" })).welcome.nick).toBe("d");
  });

  it("never lets in more than MAX_CONNECTIONS_PER_IP even when they arrive at once", async () => {
    const srv = startTestServer({ MAX_CONNECTIONS_PER_IP: "2" });
    const clients = Array.from({ length: 8 }, () => new TestClient(connectUrl(srv.url, { room: "r" })));
    await Promise.all(
      clients.map((c) =>
        c.waitUntil((x) => x.count("welcome") > 0 || x.closeCode !== undefined, "welcome or refusal"),
      ),
    );
    expect(clients.filter((c) => c.count("welcome") > 0).length).toBe(2);
    expect(srv.hub.connectionCount).toBe(2);
  });
});
