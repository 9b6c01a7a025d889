/**
 * Who a v2 user is, as units: identity tokens (`USERID.SIG`, HMAC-SHA256 of `identity:USERID`)
 * minted and checked, the key loaded once, and the `sub`/`mod` claims of access tokens.
 */
import { describe, expect, it } from "bun:test";
import fc from "fast-check";
import { TokenAuthority } from "../server/auth";
import { Identities, IdentitySigner } from "../server/identity";

const KEY = "identity-key-0123456789abcdef";

/** An independent HMAC-SHA256 (crypto.subtle, not node:crypto) of what a signature covers. */
async function subtleSig(key: string, userId: string): Promise<string> {
  const enc = new TextEncoder();
  const k = await crypto.subtle.importKey("raw", enc.encode(key), { name: "HMAC", hash: "SHA-256" }, false, [
    "sign",
  ]);
  const sig = new Uint8Array(await crypto.subtle.sign("HMAC", k, enc.encode(`identity:${userId}`)));
  return Buffer.from(sig).toString("base64url");
}

/** Changes the character at `i` to another base64url character. */
function swapAt(s: string, i: number): string {
  const c = s[i] === "A" ? "B" : "A";
  return s.slice(0, i) + c + s.slice(i + 1);
}

describe("IdentitySigner", () => {
  const signer = new IdentitySigner(KEY);

  it("mints 22-character base64url ids (128 bits) and USERID.SIG tokens that verify to the id", () => {
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const { userId, identityToken } = signer.mint();
      expect(userId).toMatch(/^[A-Za-z0-9_-]{22}$/);
      // 22 characters hold 132 bits; the last one carries 2 unused (zero) bits of 16 random bytes.
      expect(Buffer.from(userId, "base64url").length).toBe(16);
      expect(identityToken.startsWith(`${userId}.`)).toBe(true);
      expect(identityToken).toMatch(/^[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}$/);
      expect(signer.verify(identityToken)).toBe(userId);
      seen.add(userId);
    }
    expect(seen.size).toBe(200);
  });

  it("signs HMAC-SHA256(key, 'identity:' + userId) in base64url, as an independent implementation does", async () => {
    const { userId, identityToken } = signer.mint();
    expect(identityToken).toBe(`${userId}.${await subtleSig(KEY, userId)}`);
    // The same user always has the same token (valid until revoked).
    expect(signer.tokenFor(userId)).toBe(identityToken);
  });

  it("refuses forged, truncated, extended, re-targeted and malformed tokens", () => {
    const { userId, identityToken } = signer.mint();
    const other = signer.mint();
    const [, sig] = identityToken.split(".") as [string, string];
    const cases: Array<[string, string]> = [
      ["empty", ""],
      ["id only", userId],
      ["id and dot", `${userId}.`],
      ["truncated by one", identityToken.slice(0, -1)],
      ["truncated to half", identityToken.slice(0, 40)],
      ["extended by one", `${identityToken}A`],
      ["a third part", `${identityToken}.${sig}`],
      ["signature changed at the start", `${userId}.${swapAt(sig, 0)}`],
      ["signature changed in the middle", `${userId}.${swapAt(sig, 20)}`],
      ["signature of another user", `${userId}.${other.identityToken.split(".")[1]}`],
      ["id changed, signature kept", `${swapAt(userId, 5)}.${sig}`],
      ["another user's id with this signature", `${other.userId}.${sig}`],
      ["signed with another key", new IdentitySigner("another-key-0123456789abcdef").tokenFor(userId)],
      ["padding added", `${userId}.${sig}=`],
      ["standard base64 alphabet", `${userId}.${sig.replaceAll("-", "+").replaceAll("_", "/")}+`],
      ["dot moved", `${userId.slice(0, 21)}.${userId[21]}${sig}`],
      ["non-ASCII of the same length", `${userId}.${"é".repeat(43)}`],
      ["spaces around", ` ${identityToken} `.slice(0, identityToken.length)],
      ["very long", "A".repeat(10_000)],
    ];
    const accepted = cases.filter(([, token]) => signer.verify(token) !== undefined).map(([name]) => name);
    expect(accepted).toEqual([]);
  });

  it("verifies only what it minted: no random string of a token's shape passes", () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}$/), (token) => {
        expect(signer.verify(token)).toBeUndefined();
      }),
      { numRuns: 300 },
    );
  });

  it("refuses an empty key", () => {
    expect(() => new IdentitySigner("")).toThrow();
  });
});

describe("Identities", () => {
  it("uses IDENTITY_SECRET when set, without asking the engine", async () => {
    let asked = 0;
    const ids = new Identities(KEY, Promise.resolve(), {
      identityKey: async () => {
        asked++;
        return "engine-key";
      },
    });
    await ids.ready;
    const { userId, identityToken } = await ids.mint();
    expect(identityToken).toBe(new IdentitySigner(KEY).tokenFor(userId));
    expect(await ids.verify(identityToken)).toBe(userId);
    expect(asked).toBe(0);
  });

  it("otherwise loads the engine's key once, after the engine is ready", async () => {
    let asked = 0;
    let ready!: () => void;
    const engineReady = new Promise<void>((resolve) => {
      ready = resolve;
    });
    const ids = new Identities(undefined, engineReady, {
      identityKey: async () => {
        asked++;
        return "engine-key-0123456789";
      },
    });
    await Bun.sleep(5);
    expect(asked).toBe(0);
    ready();
    await ids.ready;
    const minted = await Promise.all([ids.mint(), ids.mint(), ids.mint()]);
    for (const m of minted) expect(await ids.verify(m.identityToken)).toBe(m.userId);
    expect(minted[0]?.identityToken).toBe(
      new IdentitySigner("engine-key-0123456789").tokenFor(minted[0]?.userId ?? ""),
    );
    expect(asked).toBe(1);
  });

  it("fails minting and checking when the key cannot be loaded, and no rejection goes unhandled", async () => {
    const ids = new Identities(undefined, Promise.resolve(), {
      identityKey: async () => {
        throw new Error("storage down");
      },
    });
    await expect(ids.ready).rejects.toThrow("storage down");
    await expect(ids.mint()).rejects.toThrow("storage down");
    await expect(ids.verify("x")).rejects.toThrow("storage down");
  });
});

describe("access tokens for v2: sub and mod", () => {
  const SECRET = "access-secret-0123456789";
  const authority = new TokenAuthority(SECRET);
  const now = 1_700_000_000;
  const exp = now + 60;

  it("v1's verify is unchanged: the claims are nick and exp, whatever else the token holds", async () => {
    const token = await authority.sign({ nick: "ann", exp, sub: "user-1", mod: true });
    expect(await authority.verify(token, now)).toStrictEqual({ ok: true, claims: { nick: "ann", exp } });
    // A sub v2 would refuse does not change v1's answer.
    const odd = await authority.sign({ nick: "ann", exp, sub: "" });
    expect(await authority.verify(odd, now)).toStrictEqual({ ok: true, claims: { nick: "ann", exp } });
  });

  it("the user is sub when present, else the nick; mod only when exactly true", async () => {
    const withSub = await authority.sign({ nick: "ann", exp, sub: "auth0|1234", mod: true });
    expect(await authority.verifyUser(withSub, now)).toStrictEqual({
      ok: true,
      claims: { nick: "ann", exp, sub: "auth0|1234", mod: true },
      userId: "auth0|1234",
    });
    const noSub = await authority.sign({ nick: "Zoë", exp });
    expect(await authority.verifyUser(noSub, now)).toStrictEqual({
      ok: true,
      claims: { nick: "Zoë", exp },
      userId: "Zoë",
    });
    for (const mod of ["true", 1, false, null, {}]) {
      const token = await authority.sign({ nick: "ann", exp, mod: mod as unknown as boolean });
      const verified = await authority.verifyUser(token, now);
      expect(verified.ok && verified.claims.mod === true).toBe(false);
      expect(verified.ok).toBe(true);
    }
    const long = "x".repeat(128);
    const at128 = await authority.verifyUser(await authority.sign({ nick: "ann", exp, sub: long }), now);
    expect(at128.ok && at128.userId).toBe(long);
    // 128 characters, not UTF-16 units.
    const astral = "𝔸".repeat(128);
    const wide = await authority.verifyUser(await authority.sign({ nick: "ann", exp, sub: astral }), now);
    expect(wide.ok && wide.userId).toBe(astral);
  });

  it("refuses a token whose sub is not a 1-128 character string rather than taking its nick", async () => {
    for (const sub of ["", "x".repeat(129), 42, true, null, ["a"], { id: "a" }, "\ud800"]) {
      const token = await authority.sign({ nick: "ann", exp, sub: sub as unknown as string });
      expect(await authority.verifyUser(token, now)).toEqual({ ok: false, reason: "bad sub claim" });
    }
  });

  it("refuses what v1 refuses: a forged, expired or nick-less token", async () => {
    const token = await authority.sign({ nick: "ann", exp, sub: "u" });
    expect((await authority.verifyUser(token, exp)).ok).toBe(false);
    expect((await new TokenAuthority("another-secret-0123456789").verifyUser(token, now)).ok).toBe(false);
    const noNick = await authority.sign({ exp, sub: "u" } as unknown as { nick: string; exp: number });
    expect((await authority.verifyUser(noNick, now)).ok).toBe(false);
  });
});
