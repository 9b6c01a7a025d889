/** Start-up configuration, the Origin check and access tokens: the server's front door. */
import { describe, expect, it } from "bun:test";
import { readFileSync } from "node:fs";
import fc from "fast-check";
import { TokenAuthority } from "../server/auth";
import { ConfigError, DEFAULT_CONFIG, loadConfig } from "../server/config";
import { originAllowed } from "../server/origin";
import { SETTING_LIST, settingsTableMarkdown } from "../server/settings";

function configError(env: Record<string, string>, argv: string[] = []): ConfigError {
  try {
    loadConfig(env, argv);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error(`expected a ConfigError for ${JSON.stringify(env)} ${argv.join(" ")}`);
}

describe("loadConfig", () => {
  it("defaults to the values of the spec's Running table", () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      port: 3000,
      host: "0.0.0.0",
      dbPath: "data/chat.db",
      redisUrl: undefined,
      allowedOrigins: [],
      authSecret: undefined,
      rateLimit: 10,
      rateBurst: 20,
      maxConnections: 100_000,
      maxPayload: 16_384,
    });
  });

  it("treats empty variables as unset", () => {
    const empty = { PORT: "", HOST: "", DB_PATH: "", ALLOWED_ORIGINS: "", AUTH_SECRET: "", RATE_LIMIT: "" };
    expect(loadConfig(empty)).toStrictEqual(loadConfig({}));
  });

  it("reads every variable it is given", () => {
    const config = loadConfig({
      PORT: "0",
      HOST: "127.0.0.1",
      DB_PATH: ":memory:",
      ALLOWED_ORIGINS: "https://chat.example, http://localhost:5173",
      AUTH_SECRET: "0123456789abcdef",
      RATE_LIMIT: "0.5",
      RATE_BURST: "3",
      MAX_CONNECTIONS: "7",
      MAX_PAYLOAD: "2048",
      LOG_LEVEL: "warn",
    });
    expect(config).toMatchObject({
      port: 0,
      host: "127.0.0.1",
      dbPath: ":memory:",
      allowedOrigins: ["https://chat.example", "http://localhost:5173"],
      authSecret: "0123456789abcdef",
      rateLimit: 0.5,
      rateBurst: 3,
      maxConnections: 7,
      maxPayload: 2048,
      logLevel: "warn",
    });
  });

  it("stops on each bad value with an error that names the variable", () => {
    const cases: Array<[string, string]> = [
      ["PORT", "abc"],
      ["PORT", "70000"],
      ["PORT", "-1"],
      ["PORT", "80.5"],
      ["RATE_LIMIT", "-1"],
      ["RATE_LIMIT", "fast"],
      ["RATE_BURST", "0"],
      ["MAX_CONNECTIONS", "x"],
      ["MAX_CONNECTIONS", "0"],
      ["MAX_PAYLOAD", "10"],
      ["ALLOWED_ORIGINS", "not-a-url"],
      ["ALLOWED_ORIGINS", "https://chat.example/path"],
      ["ALLOWED_ORIGINS", "https://chat.example/"],
      ["ALLOWED_ORIGINS", "https://ok.example,not-a-url"],
      ["LOG_LEVEL", "loud"],
      ["DB_SYNC", "sometimes"],
      ["AUTH_SECRET", "short"],
    ];
    for (const [variable, value] of cases) {
      const err = configError({ [variable]: value });
      expect(err.variable).toBe(variable);
      expect(err.message).toContain(variable);
    }
  });

  it("sets SQLite's synchronous from DB_SYNC, normal by default, in any case", () => {
    const base = { PORT: "0", DB_PATH: ":memory:" };
    expect(loadConfig(base).dbSync).toBe("normal");
    expect(loadConfig({ ...base, DB_SYNC: "OFF" }).dbSync).toBe("off");
    expect(loadConfig({ ...base, DB_SYNC: "full" }).dbSync).toBe("full");
  });

  it("lets --port 8080 and --port=8080 override PORT from the environment", () => {
    expect(loadConfig({ PORT: "3001" }, ["--port", "8080"]).port).toBe(8080);
    expect(loadConfig({ PORT: "3001" }, ["--port=8080"]).port).toBe(8080);
    expect(loadConfig({ PORT: "3001" }, []).port).toBe(3001);
    expect(loadConfig({}, ["--rate-limit=0", "--db-path", ":memory:"])).toMatchObject({
      rateLimit: 0,
      dbPath: ":memory:",
    });
  });

  it("checks flags as strictly as the environment", () => {
    expect(configError({}, ["--port=abc"]).variable).toBe("PORT");
    expect(configError({ PORT: "8080" }, ["--port", "99999"]).variable).toBe("PORT");
    expect(configError({}, ["--port"]).variable).toBe("PORT");
  });

  it("accepts every port from 0 to 65535 and nothing outside", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 65535 }), (port) => {
        expect(loadConfig({ PORT: String(port) }).port).toBe(port);
      }),
      { numRuns: 50 },
    );
    fc.assert(
      fc.property(fc.integer({ min: 65536, max: 10_000_000 }), (port) => {
        expect(configError({ PORT: String(port) }).variable).toBe("PORT");
      }),
      { numRuns: 20 },
    );
  });
});

describe("the settings table", () => {
  it("the README's configuration table is the settings table", () => {
    // On a difference, paste the output of
    // bun -e 'console.log((await import("./server/settings")).settingsTableMarkdown())' into README.md.
    const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8").split("\n");
    const section = readme.indexOf("## Configuration");
    expect(section).toBeGreaterThan(-1);
    const start = readme.findIndex((line, i) => i > section && line.startsWith("|"));
    expect(start).toBeGreaterThan(section);
    const end = readme.findIndex((line, i) => i > start && !line.startsWith("|"));
    const table = readme.slice(start, end === -1 ? readme.length : end);
    expect(table.join("\n")).toBe(settingsTableMarkdown());
  });

  it("every setting's default parses back to itself", () => {
    for (const [key, setting] of SETTING_LIST) {
      const text = setting.format(setting.default);
      // A set default is shown as its text; only an unset one needs words of its own.
      expect(setting.shown === undefined).toBe(text !== "");
      if (text !== "") expect(setting.parse(text)).toStrictEqual(setting.default);
      const loaded: unknown = loadConfig({ [setting.env]: text })[key];
      expect(loaded).toStrictEqual(setting.default);
    }
  });

  it("every Config key is covered by exactly one setting, read from the variable of its own name", () => {
    // The table's type already makes a Config field without a setting, or the reverse, a compile error.
    const keys: string[] = SETTING_LIST.map(([key]) => key);
    const envs = SETTING_LIST.map(([, setting]) => setting.env);
    expect(new Set(keys).size).toBe(keys.length);
    expect(new Set(envs).size).toBe(envs.length);
    expect(keys.toSorted()).toStrictEqual(Object.keys(loadConfig({})).toSorted());
    for (const [key, setting] of SETTING_LIST) {
      expect(setting.env).toBe(key.replaceAll(/[A-Z]/g, (c) => `_${c}`).toUpperCase());
    }
  });

  it("gives the defaults as DEFAULT_CONFIG, which no one can change for everyone", () => {
    expect(DEFAULT_CONFIG).toStrictEqual(loadConfig({}));
    expect(Object.isFrozen(DEFAULT_CONFIG)).toBe(true);
    loadConfig({}).allowedOrigins.push("https://changed.example");
    expect(loadConfig({}).allowedOrigins).toStrictEqual([]);
  });

  it("keeps the error messages people may already search for", () => {
    const cases: Array<[Record<string, string>, string]> = [
      [{ PORT: "abc" }, 'PORT: expected a whole number, got "abc"'],
      [{ PORT: "70000" }, "PORT: expected 0..65535, got 70000"],
      [{ RATE_LIMIT: "fast" }, 'RATE_LIMIT: expected a number, got "fast"'],
      [{ PRESENCE_TTL_SECONDS: "0.1" }, "PRESENCE_TTL_SECONDS: expected 0.5..3600, got 0.1"],
      [
        { ALLOWED_ORIGINS: "not-a-url" },
        'ALLOWED_ORIGINS: "not-a-url" is not an origin like https://chat.example',
      ],
      [
        { ALLOWED_ORIGINS: "https://chat.example/" },
        'ALLOWED_ORIGINS: "https://chat.example/" must be written exactly as https://chat.example',
      ],
      [{ REDIS_URL: "http://x" }, 'REDIS_URL: expected a URL like redis://host:6379, got "http://x"'],
      [{ AUTH_SECRET: "short" }, "AUTH_SECRET: use at least 16 characters"],
      [{ DB_SYNC: "sometimes" }, "DB_SYNC: expected one of off, normal, full"],
      [{ LOG_LEVEL: "loud" }, "LOG_LEVEL: expected one of debug, info, warn, error"],
    ];
    for (const [env, message] of cases) expect(configError(env).message).toBe(message);
  });

  it("takes a secret exactly as given, so a blank one is refused rather than leaving the server open", () => {
    const secrets = [
      ["AUTH_SECRET", "authSecret"],
      ["ADMIN_TOKEN", "adminToken"],
      ["IDENTITY_SECRET", "identitySecret"],
    ] as const;
    for (const [variable, key] of secrets) {
      expect(configError({ [variable]: " ".repeat(3) }).variable).toBe(variable);
      expect(configError({ [variable]: "a".repeat(15) }).variable).toBe(variable);
      expect(loadConfig({ [variable]: " 0123456789abcdef " })[key]).toBe(" 0123456789abcdef ");
    }
  });
});

describe("the settings of the spec's v2 Running table", () => {
  it("default to the spec's values", () => {
    expect(loadConfig({})).toMatchObject({
      redisCluster: [],
      redisMinReplicas: 0,
      adminToken: undefined,
      maxRoomsPerUser: 100,
      editWindowSeconds: 0,
      trustedProxies: [],
      identitySecret: undefined,
    });
  });

  it("read every value in range", () => {
    expect(
      loadConfig({
        REDIS_CLUSTER: "redis-1:7000, 10.0.0.2:7001,[::1]:7002",
        REDIS_MIN_REPLICAS: "16",
        MAX_ROOMS_PER_USER: "10000",
        EDIT_WINDOW_SECONDS: "31536000",
        TRUSTED_PROXIES:
          "10.0.0.0/8, 192.168.1.1, ::1, fd00::/8, ::ffff:10.0.0.1, 0.0.0.0/0, ::/0, 2001:db8::/128",
      }),
    ).toMatchObject({
      redisCluster: [
        { host: "redis-1", port: 7000 },
        { host: "10.0.0.2", port: 7001 },
        { host: "::1", port: 7002 },
      ],
      redisMinReplicas: 16,
      maxRoomsPerUser: 10000,
      editWindowSeconds: 31_536_000,
      trustedProxies: [
        "10.0.0.0/8",
        "192.168.1.1",
        "::1",
        "fd00::/8",
        "::ffff:10.0.0.1",
        "0.0.0.0/0",
        "::/0",
        "2001:db8::/128",
      ],
    });
    expect(loadConfig({ MAX_ROOMS_PER_USER: "1" }).maxRoomsPerUser).toBe(1);
  });

  it("stop on each bad value with an error that names the variable and the entry", () => {
    const cases: Array<[string, string]> = [
      ["REDIS_CLUSTER", "redis-1"],
      ["REDIS_CLUSTER", "redis-1:0"],
      ["REDIS_CLUSTER", "redis-1:70000"],
      ["REDIS_CLUSTER", "redis://redis-1:7000"],
      ["REDIS_CLUSTER", ":7000"],
      ["REDIS_CLUSTER", "a:1,,b:2"],
      ["REDIS_CLUSTER", "a b:1"],
      ["REDIS_CLUSTER", "::1:7000"],
      ["REDIS_CLUSTER_TLS", "yes"],
      ["REDIS_CLUSTER_TLS_CA", "/no/such/ca.pem"],
      ["REDIS_MIN_REPLICAS", "17"],
      ["REDIS_MIN_REPLICAS", "-1"],
      ["MAX_ROOMS_PER_USER", "0"],
      ["MAX_ROOMS_PER_USER", "10001"],
      ["EDIT_WINDOW_SECONDS", "31536001"],
      ["EDIT_WINDOW_SECONDS", "1.5"],
      ["TRUSTED_PROXIES", "10.0.0.256"],
      ["TRUSTED_PROXIES", "10.0.0"],
      ["TRUSTED_PROXIES", "010.0.0.1"],
      ["TRUSTED_PROXIES", "localhost"],
      ["TRUSTED_PROXIES", "10.0.0.0/33"],
      ["TRUSTED_PROXIES", "10.0.0.0/08"],
      ["TRUSTED_PROXIES", "10.0.0.0/"],
      ["TRUSTED_PROXIES", "10.0.0.0/8/8"],
      ["TRUSTED_PROXIES", "fd00::/129"],
      ["TRUSTED_PROXIES", "1::2::3"],
      ["TRUSTED_PROXIES", "fe80::1%eth0"],
      ["TRUSTED_PROXIES", "[::1]"],
      ["TRUSTED_PROXIES", "10.0.0.1,"],
      ["TRUSTED_PROXIES", "10.0.0.1, 10.0.0.x"],
    ];
    for (const [variable, value] of cases) {
      const err = configError({ [variable]: value });
      expect(err.variable).toBe(variable);
      expect(err.message).toStartWith(`${variable}: `);
    }
    expect(configError({ TRUSTED_PROXIES: "10.0.0.1, 10.0.0.x" }).message).toBe(
      'TRUSTED_PROXIES: "10.0.0.x" is not an IP address or CIDR like 10.0.0.0/8 or fd00::/8',
    );
    expect(configError({ TRUSTED_PROXIES: "fd00::/129" }).message).toBe(
      'TRUSTED_PROXIES: "fd00::/129": the prefix of an IPv6 CIDR is 0..128',
    );
  });

  it("takes the cluster's login as given (spaces and commas are part of a password)", () => {
    expect(
      loadConfig({
        REDIS_CLUSTER: "redis-1:7000",
        REDIS_CLUSTER_USERNAME: "chat",
        REDIS_CLUSTER_PASSWORD: " a, b ",
        REDIS_CLUSTER_TLS: "on",
        REDIS_CLUSTER_TLS_CA: import.meta.path,
      }),
    ).toMatchObject({
      redisClusterUsername: "chat",
      redisClusterPassword: " a, b ",
      redisClusterTls: "on",
      redisClusterTlsCa: import.meta.path,
    });
    expect(loadConfig({}).redisClusterTls).toBe("off");
  });

  it("refuses REDIS_URL and REDIS_CLUSTER together", () => {
    const err = configError({ REDIS_URL: "redis://localhost:6379", REDIS_CLUSTER: "localhost:7000" });
    expect(err.variable).toBe("REDIS_CLUSTER");
    expect(err.message).toContain("REDIS_URL");
    expect(
      loadConfig({ REDIS_URL: "redis://localhost:6379", REDIS_CLUSTER: " " }).redisCluster,
    ).toStrictEqual([]);
  });
});

describe("originAllowed", () => {
  const host = "chat.example:3000";

  it("allows a request with no Origin: it is not a browser", () => {
    expect(originAllowed(null, host, [])).toBe(true);
    expect(originAllowed(null, null, ["https://chat.example"])).toBe(true);
  });

  it("allows the page's own host when no allow-list is set", () => {
    expect(originAllowed("http://chat.example:3000", host, [])).toBe(true);
    expect(originAllowed("https://chat.example:3000", host, [])).toBe(true);
    expect(originAllowed("http://CHAT.example:3000", "chat.EXAMPLE:3000", [])).toBe(true);
    expect(originAllowed("https://chat.example", "chat.example", [])).toBe(true);
  });

  it("refuses other hosts, ports and schemes, and the opaque null origin, when no allow-list is set", () => {
    for (const origin of [
      "http://evil.example",
      "http://evil.example:3000",
      "http://chat.example.evil.example:3000",
      "http://host.evil.example",
      "http://evilchat.example:3000",
      "http://chat.example:3001",
      "http://chat.example",
      "null",
      "ftp://chat.example:3000",
      "ws://chat.example:3000",
      "file://chat.example:3000",
      "not a url",
      "",
    ]) {
      expect(originAllowed(origin, host, [])).toBe(false);
    }
    expect(originAllowed("http://chat.example:3000", null, [])).toBe(false);
  });

  it("with an allow-list, allows only exact matches", () => {
    const allowed = ["https://chat.example", "http://localhost:5173"];
    expect(originAllowed("https://chat.example", "anything", allowed)).toBe(true);
    expect(originAllowed("http://localhost:5173", "localhost:3000", allowed)).toBe(true);
    for (const origin of [
      "https://chat.example.evil.example",
      "https://evil-chat.example",
      "https://evil.chat.example",
      "https://xchat.example",
      "https://chat.exampl",
      "https://chat.example:443x",
      "https://chat.example:8443",
      "http://chat.example",
      "https://chat.example/",
      "http://localhost:51730",
      "http://localhost:517",
      "http://localhost",
      "localhost:5173",
      "chat.example",
      "//chat.example",
      "https://chat",
      "null",
      "",
    ]) {
      expect(originAllowed(origin, "chat.example", allowed)).toBe(false);
    }
    // The same host is not enough once a list is configured.
    expect(originAllowed("http://chat.example:3000", host, allowed)).toBe(false);
  });

  it("with an allow-list, refuses any origin that only contains, starts or ends like an allowed one", () => {
    const allowed = ["https://chat.example"];
    const junk = fc.string({ minLength: 1, maxLength: 8 });
    fc.assert(
      fc.property(junk, junk, (before, after) => {
        expect(originAllowed(before + allowed[0], "chat.example", allowed)).toBe(false);
        expect(originAllowed(allowed[0] + after, "chat.example", allowed)).toBe(false);
      }),
      { numRuns: 100 },
    );
    const origin = allowed[0] as string;
    fc.assert(
      fc.property(fc.nat(origin.length), fc.nat(origin.length), (a, b) => {
        const part = origin.slice(Math.min(a, b), Math.max(a, b));
        fc.pre(part !== origin);
        expect(originAllowed(part, "chat.example", allowed)).toBe(false);
      }),
      { numRuns: 100 },
    );
  });
});

const SECRET = "a-secret-of-32-characters-length";

function base64url(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("base64url");
}

/** A token signed with the right key over any header and body: what a forger with the key could not make. */
async function signRaw(header: string, body: string, secret = SECRET): Promise<string> {
  const enc = new TextEncoder();
  const key = await crypto.subtle.importKey(
    "raw",
    enc.encode(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const h = base64url(enc.encode(header));
  const b = base64url(enc.encode(body));
  const sig = await crypto.subtle.sign("HMAC", key, enc.encode(`${h}.${b}`));
  return `${h}.${b}.${base64url(new Uint8Array(sig))}`;
}

describe("TokenAuthority", () => {
  const authority = new TokenAuthority(SECRET);
  const now = 1_700_000_000;

  /** Swaps one character in the middle of a part: the last base64url character may carry unused bits. */
  function tamper(part: string): string {
    const i = Math.floor(part.length / 2);
    const c = part[i] === "A" ? "B" : "A";
    return part.slice(0, i) + c + part.slice(i + 1);
  }

  it("verifies what it signed and gives back the claims", async () => {
    const token = await authority.sign({ nick: "alice", exp: now + 60 });
    expect(await authority.verify(token, now)).toStrictEqual({
      ok: true,
      claims: { nick: "alice", exp: now + 60 },
    });
  });

  it("round-trips any valid nickname and future expiry", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom("bob", "Zoë", "漢字", "𝔸lice", "a.b-c_d"),
        fc.integer({ min: 1, max: 1e9 }),
        async (nick, ttl) => {
          const token = await authority.sign({ nick, exp: now + ttl });
          expect(await authority.verify(token, now)).toStrictEqual({
            ok: true,
            claims: { nick, exp: now + ttl },
          });
        },
      ),
      { numRuns: 20 },
    );
  });

  it("refuses an expired token, including one expiring this very second", async () => {
    expect((await authority.verify(await authority.sign({ nick: "alice", exp: now - 1 }), now)).ok).toBe(
      false,
    );
    expect((await authority.verify(await authority.sign({ nick: "alice", exp: now }), now)).ok).toBe(false);
  });

  it("refuses a token whose body or signature was changed", async () => {
    const token = await authority.sign({ nick: "alice", exp: now + 60 });
    const [header, body, sig] = token.split(".") as [string, string, string];
    expect((await authority.verify(`${header}.${tamper(body)}.${sig}`, now)).ok).toBe(false);
    expect((await authority.verify(`${header}.${body}.${tamper(sig)}`, now)).ok).toBe(false);
    expect((await authority.verify(`${header}.${body}.`, now)).ok).toBe(false);
    // A body claiming more, with the original signature.
    const forged = btoa(JSON.stringify({ nick: "alice", exp: now + 1e9 })).replaceAll("=", "");
    expect((await authority.verify(`${header}.${forged}.${sig}`, now)).ok).toBe(false);
  });

  it("refuses a token signed with another secret", async () => {
    const other = new TokenAuthority("another-secret-of-32-characters!");
    const token = await other.sign({ nick: "alice", exp: now + 60 });
    expect((await authority.verify(token, now)).ok).toBe(false);
  });

  it("refuses a token whose header names another algorithm", async () => {
    const token = await authority.sign({ nick: "alice", exp: now + 60 });
    const [, body, sig] = token.split(".") as [string, string, string];
    for (const header of [{ alg: "none", typ: "JWT" }, { alg: "HS512", typ: "JWT" }, { alg: "RS256" }]) {
      const h = btoa(JSON.stringify(header)).replaceAll("=", "");
      expect((await authority.verify(`${h}.${body}.${sig}`, now)).ok).toBe(false);
      expect((await authority.verify(`${h}.${body}.`, now)).ok).toBe(false);
    }
  });

  it("checks its own signing against an independent HS256 implementation", async () => {
    const claims = { nick: "alice", exp: now + 60 };
    const token = await signRaw(JSON.stringify({ alg: "HS256", typ: "JWT" }), JSON.stringify(claims));
    expect(await authority.sign(claims)).toBe(token);
    expect(await authority.verify(token, now)).toStrictEqual({ ok: true, claims });
  });

  it("refuses a correctly signed token whose header names another algorithm or type", async () => {
    const body = JSON.stringify({ nick: "alice", exp: now + 60 });
    for (const header of [
      { alg: "none", typ: "JWT" },
      { alg: "HS512", typ: "JWT" },
      { alg: "HS256" },
      { typ: "JWT", alg: "HS256" },
      { alg: "HS256", typ: "JWT", kid: "x" },
    ]) {
      expect((await authority.verify(await signRaw(JSON.stringify(header), body), now)).ok).toBe(false);
    }
  });

  it("refuses a correctly signed token whose body is not JSON claims, without throwing", async () => {
    const header = JSON.stringify({ alg: "HS256", typ: "JWT" });
    for (const body of [
      "not json",
      "",
      "null",
      "[]",
      "42",
      '"alice"',
      '{"nick":"alice","exp":"soon"}',
      "{",
    ]) {
      expect((await authority.verify(await signRaw(header, body), now)).ok).toBe(false);
    }
  });

  it("refuses a signed token whose claims are missing or invalid", async () => {
    for (const claims of [{ nick: "no spaces", exp: now + 60 }, { nick: "alice" }, { exp: now + 60 }]) {
      const token = await authority.sign(claims as { nick: string; exp: number });
      expect((await authority.verify(token, now)).ok).toBe(false);
    }
  });

  it("answers garbage with not ok and never throws", async () => {
    for (const garbage of [
      "",
      ".",
      "..",
      "...",
      "a.b.c",
      "a.b",
      "!!!.@@@.###",
      "a.b.c.d",
      "\u0000.\u0001.\u0002",
    ]) {
      expect((await authority.verify(garbage, now)).ok).toBe(false);
    }
    const token = await authority.sign({ nick: "alice", exp: now + 60 });
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.string({ maxLength: 80 }),
          fc.tuple(fc.nat(), fc.string({ maxLength: 3 })).map(([at, s]) => {
            const i = at % token.length;
            return token.slice(0, i) + s + token.slice(i + 1);
          }),
        ),
        async (garbage) => {
          const result = await authority.verify(garbage, now);
          // The last base64url character of a part can carry unused bits, so a changed token may
          // still decode to the same signed bytes; it must never verify with other claims.
          if (result.ok) expect(result.claims).toStrictEqual({ nick: "alice", exp: now + 60 });
        },
      ),
      { numRuns: 200 },
    );
  });
});
