/**
 * Identity tokens of protocol v2 users (shared/PROTOCOL.md, "Users"): without an access token, the
 * server mints a user on its first connection and hands it `USERID.SIG`, where USERID is 128 random
 * bits in base64url (22 characters) and SIG the base64url HMAC-SHA256 of `identity:USERID` under the
 * identity key. A token is checked by its signature alone (in constant time); whether its user still
 * exists (not revoked) is the core's to say, so revoking needs no list of tokens here.
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import { randomToken } from "./chat/tokens";

/** A user minted at an upgrade: its id, and the token that names it from then on. */
export interface MintedIdentity {
  userId: string;
  identityToken: string;
}

/** 16 random bytes in base64url, without padding. */
const USER_ID = /^[A-Za-z0-9_-]{22}$/;
/** A SHA-256 digest in base64url, without padding. */
const SIG_LENGTH = 43;
/** Longer query values are not tokens: refused without hashing anything. */
const TOKEN_MAX = 22 + 1 + SIG_LENGTH;

/** Signs and checks identity tokens with one key. */
export class IdentitySigner {
  readonly #key: Buffer;

  constructor(key: string) {
    if (key === "") throw new Error("an identity key must not be empty");
    this.#key = Buffer.from(key, "utf8");
  }

  /** A new user: a random id and its token. */
  mint(): MintedIdentity {
    const userId = randomToken(16);
    return { userId, identityToken: this.tokenFor(userId) };
  }

  /** The token of `userId` (the same one every time: a token is valid until its user is revoked). */
  tokenFor(userId: string): string {
    return `${userId}.${this.sign(userId)}`;
  }

  /** The user a token names when it is well formed and signed with this key; undefined otherwise. */
  verify(token: string): string | undefined {
    if (token.length !== TOKEN_MAX) return undefined;
    const dot = token.indexOf(".");
    if (dot !== 22) return undefined;
    const userId = token.slice(0, dot);
    if (!USER_ID.test(userId)) return undefined;
    const given = Buffer.from(token.slice(dot + 1), "utf8");
    const expected = Buffer.from(this.sign(userId), "utf8");
    // Equal lengths are public (a signature's length is fixed); the comparison of bytes is constant time.
    if (given.length !== expected.length) return undefined;
    return timingSafeEqual(given, expected) ? userId : undefined;
  }

  private sign(userId: string): string {
    return createHmac("sha256", this.#key).update(`identity:${userId}`, "utf8").digest("base64url");
  }
}

/** Where the key comes from when IDENTITY_SECRET is not set: the engine keeps one (core API). */
export interface IdentityKeySource {
  identityKey(): Promise<string>;
}

/**
 * The server's identity signer, loaded once at start: from IDENTITY_SECRET when it is set, else from
 * the engine's stored key once the engine is ready.
 */
export class Identities {
  /** Resolves once the key is loaded; rejects when it cannot be (then no v2 user can be minted or checked). */
  readonly ready: Promise<void>;
  readonly #signer: Promise<IdentitySigner>;

  constructor(secret: string | undefined, engineReady: Promise<void>, source: IdentityKeySource) {
    this.#signer =
      secret !== undefined
        ? Promise.resolve(new IdentitySigner(secret))
        : engineReady.then(async () => new IdentitySigner(await source.identityKey()));
    this.ready = this.#signer.then(() => undefined);
    // Whoever needs the key awaits it and sees the failure; this keeps it from being "unhandled" meanwhile.
    this.ready.catch(() => undefined);
  }

  async mint(): Promise<MintedIdentity> {
    return (await this.#signer).mint();
  }

  /** The user an identity token names, when its signature is right; undefined otherwise. */
  async verify(token: string): Promise<string | undefined> {
    return (await this.#signer).verify(token);
  }
}
