/**
 * Per-address limits behind proxies and from IPv6 subscribers: X-Forwarded-For is believed only from
 * TRUSTED_PROXIES, an IPv6 /64 counts as one client, new connections a second are limited per
 * client, and an upgrade must say `Connection: Upgrade` (RFC 6455 4.2.1).
 */
import { afterEach, describe, expect, it } from "bun:test";
import { addressKey, ClientAddresses, parseCidr } from "../../server/client-address";
import { startTestServer, stopAllServers } from "../support/test-server";

afterEach(stopAllServers);

/** Opens a WebSocket with extra headers; resolves with "open" or the HTTP status of the refusal. */
function open(base: URL, headers: Record<string, string> = {}, sockets: WebSocket[] = []): Promise<string> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://${base.host}/ws?room=r`, { headers } as unknown as string[]);
    sockets.push(ws);
    ws.onopen = () => resolve("open");
    ws.onerror = () => resolve("refused");
  });
}

/** The raw answer's status line to an upgrade request written by hand. */
async function rawStatus(base: URL, lines: string[]): Promise<string> {
  const { promise, resolve } = Promise.withResolvers<string>();
  let raw = "";
  await Bun.connect({
    hostname: base.hostname,
    port: Number(base.port),
    socket: {
      open: (s) => {
        s.write(`${lines.join("\r\n")}\r\n\r\n`);
      },
      data: (s, chunk) => {
        raw += new TextDecoder().decode(chunk);
        if (raw.includes("\r\n")) {
          resolve(raw.split("\r\n")[0] as string);
          s.end();
        }
      },
      close: () => resolve(raw.split("\r\n")[0] ?? ""),
    },
  });
  return promise;
}

describe("client addresses", () => {
  it("believes X-Forwarded-For only from a trusted proxy, reading from the right past trusted hops", () => {
    const a = new ClientAddresses(["10.0.0.0/8", "fd00::/8"]);
    expect(a.resolve("10.1.2.3", "198.51.100.9, 203.0.113.7, 10.0.0.5")).toBe("203.0.113.7");
    expect(a.resolve("192.0.2.1", "203.0.113.7")).toBe("192.0.2.1");
    expect(a.resolve("fd00::1", "2001:db8::7")).toBe("2001:db8::7");
    expect(a.resolve("10.0.0.1", "not-an-ip")).toBe("10.0.0.1");
    expect(new ClientAddresses([]).resolve("10.0.0.1", "203.0.113.7")).toBe("10.0.0.1");
  });

  it("counts an IPv6 /64 as one client and an IPv4-mapped address as its IPv4", () => {
    expect(addressKey("2001:db8:1:2::1")).toBe(addressKey("2001:db8:1:2:ffff:ffff:ffff:ffff"));
    expect(addressKey("2001:db8:1:2::1")).not.toBe(addressKey("2001:db8:1:3::1"));
    expect(addressKey("::ffff:192.0.2.1")).toBe("192.0.2.1");
    expect(addressKey("192.0.2.1")).toBe("192.0.2.1");
  });

  it("parses addresses and CIDRs and refuses what is neither", () => {
    expect(parseCidr("10.0.0.0/8")?.bits).toBe(104);
    expect(parseCidr("::1")?.bits).toBe(128);
    for (const bad of ["10.0.0.0/33", "fd00::/129", "1.2.3", "2001:db8::1::2", "10.0.0.0/x"])
      expect(parseCidr(bad)).toBeUndefined();
  });
});

describe("per-address limits over the wire", () => {
  it("counts clients behind a trusted proxy by their forwarded address, not the proxy's", async () => {
    const srv = startTestServer({ MAX_CONNECTIONS_PER_IP: "2", TRUSTED_PROXIES: "127.0.0.1" });
    const sockets: WebSocket[] = [];
    const ann = { "X-Forwarded-For": "203.0.113.1" };
    const bob = { "X-Forwarded-For": "203.0.113.2" };
    expect(await open(srv.url, ann, sockets)).toBe("open");
    expect(await open(srv.url, ann, sockets)).toBe("open");
    expect(await open(srv.url, ann, sockets)).toBe("refused");
    expect(await open(srv.url, bob, sockets)).toBe("open");
    for (const s of sockets) s.close();
  });

  it("ignores X-Forwarded-For from an address that is not a trusted proxy", async () => {
    const srv = startTestServer({ MAX_CONNECTIONS_PER_IP: "2" });
    const sockets: WebSocket[] = [];
    expect(await open(srv.url, { "X-Forwarded-For": "203.0.113.1" }, sockets)).toBe("open");
    expect(await open(srv.url, { "X-Forwarded-For": "203.0.113.2" }, sockets)).toBe("open");
    expect(await open(srv.url, { "X-Forwarded-For": "203.0.113.3" }, sockets)).toBe("refused");
    for (const s of sockets) s.close();
  });

  it("counts two addresses of one IPv6 /64 as one client", async () => {
    const srv = startTestServer({ MAX_CONNECTIONS_PER_IP: "1", TRUSTED_PROXIES: "127.0.0.1" });
    const sockets: WebSocket[] = [];
    expect(await open(srv.url, { "X-Forwarded-For": "2001:db8:1:2::1" }, sockets)).toBe("open");
    expect(await open(srv.url, { "X-Forwarded-For": "2001:db8:1:2::99" }, sockets)).toBe("refused");
    expect(await open(srv.url, { "X-Forwarded-For": "2001:db8:1:3::1" }, sockets)).toBe("open");
    for (const s of sockets) s.close();
  });

  it("limits new connections a second per client with 429 rate_limited, and lets them in again later", async () => {
    const srv = startTestServer({ CONNECT_RATE_PER_IP: "5", CONNECT_BURST_PER_IP: "3" });
    const sockets: WebSocket[] = [];
    const first = [];
    for (let i = 0; i < 3; i++) first.push(await open(srv.url, {}, sockets));
    expect(first).toEqual(["open", "open", "open"]);
    const res = await fetch(new URL("/ws?room=r", srv.url), {
      headers: {
        Upgrade: "websocket",
        Connection: "Upgrade",
        "Sec-WebSocket-Key": btoa("0123456789abcdef"),
        "Sec-WebSocket-Version": "13",
      },
    });
    expect(res.status).toBe(429);
    expect(((await res.json()) as { error: string }).error).toBe("rate_limited");
    await Bun.sleep(250);
    expect(await open(srv.url, {}, sockets)).toBe("open");
    for (const s of sockets) s.close();
  });
});

describe("upgrade requests RFC 6455 refuses", () => {
  it("refuses an upgrade whose Connection header lacks the Upgrade token with 400", async () => {
    const srv = startTestServer();
    const head = (connection: string | undefined) => [
      "GET /ws?room=r HTTP/1.1",
      `Host: ${srv.url.host}`,
      "Upgrade: websocket",
      ...(connection === undefined ? [] : [`Connection: ${connection}`]),
      `Sec-WebSocket-Key: ${btoa("0123456789abcdef")}`,
      "Sec-WebSocket-Version: 13",
    ];
    expect(await rawStatus(srv.url, head(undefined))).toContain(" 400 ");
    expect(await rawStatus(srv.url, head("keep-alive"))).toContain(" 400 ");
    expect(await rawStatus(srv.url, head("keep-alive, Upgrade"))).toContain(" 101 ");
  });
});
