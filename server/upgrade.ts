/**
 * The checks a WebSocket upgrade passes before the chat sees it: shutdown and capacity, the query,
 * the Origin, the access token (or, in protocol v2 without one, the identity token) and the
 * per-address limit. Each refusal is plain HTTP with a typed body. `v=2` in the query asks for
 * protocol v2; without it (or with `v=1`) the upgrade is v1's, checked as before v2 existed, plus
 * one check of v2's moderators: a nickname banned from the room is 403 forbidden (shared/PROTOCOL.md,
 * "Posts and changes"). A v1 upgrade without a nickname gets a guest name, which no ban holds.
 */
import {
  type ConnectParams,
  checkNickParam,
  LIMITS,
  normalizeRoom,
  parseConnectQuery,
  queryParam,
  type RefusalCode,
  v2,
} from "../protocol";
import type { TokenAuthority } from "./auth";
import type { V2Open } from "./chat/hub";
import { describeError, type Logger } from "./chat/log";
import type { Metrics } from "./chat/metrics";
import { addressKey, type ClientAddresses } from "./client-address";
import type { Config } from "./config";
import { refuse } from "./http";
import type { Identities } from "./identity";
import type { ConnectRate, IpLimit } from "./ip-limit";
import { clip, explainOrigin, requestScheme } from "./origin";

/** What an accepted upgrade carries to the socket. */
export interface Admitted {
  params: ConnectParams;
  ip: string;
  /** What the per-address limits count by: the IPv4 address or the IPv6 /64. */
  client: string;
  fixedNick: string | undefined;
  tokenExpiresAt: number | undefined;
  /**
   * Set when a check could not be made because the core's storage failed (the ban check of a v1
   * nickname): the socket is closed with 1011 as it opens, as the core closes a connection it cannot
   * serve, so a storage outage never lets a banned nickname in.
   */
  unchecked?: string;
  /**
   * Present exactly for a protocol v2 connection: its user; the identity token when the user was
   * minted at this upgrade (the welcome hands it out); whether it moderates; the nickname it asks for
   * (or its access token fixes) and the room `room=` adds, both normalized, when given.
   */
  v2?: V2Open;
}

/** The core's answers to who may connect: an identity token's user (known and not revoked), a banned v1 nick. */
export interface UserDirectory {
  userExists(userId: string): Promise<boolean>;
  /** Whether a ban in force in `room` holds this nickname out (a v1 nick's ban, or a v2 user's). */
  isBanned(room: string, nick: string): Promise<boolean>;
}

export interface UpgradeGate {
  config: Config;
  auth: TokenAuthority | undefined;
  perIp: IpLimit;
  connectRate: ConnectRate;
  addresses: ClientAddresses;
  metrics: Metrics;
  log: Logger;
  /** Open connections plus upgrades under way. */
  load: () => number;
  stopping: () => boolean;
  /** Protocol v2's identity tokens: present exactly when there is no AUTH_SECRET (`auth`). */
  identities: Identities | undefined;
  users: UserDirectory;
}

/** The query of a v2 upgrade: `room` and `nick` are optional; `since` and `resume` are v1's only. */
interface QueryV2 {
  room?: string;
  nick?: string;
  token?: string;
  identity?: string;
}

type ParsedV2 = { ok: true; value: QueryV2 } | { ok: false; error: { code: RefusalCode; message: string } };

const param = queryParam;

/** The protocol version asked for: 1 without `v`, undefined for a version that does not exist. */
export function requestedVersion(query: URLSearchParams): 1 | 2 | undefined {
  const v = param(query, "v");
  if (v === undefined || v === "1") return 1;
  return v === "2" ? 2 : undefined;
}

/** Checks the query of a v2 upgrade: the room by v2's rules (direct rooms included), the nick by v1's. */
export function parseConnectQueryV2(query: URLSearchParams): ParsedV2 {
  const value: QueryV2 = {};
  const rawRoom = param(query, "room");
  if (rawRoom !== undefined) {
    const room = normalizeRoom(rawRoom);
    if (!v2.isValidRoomV2(room)) {
      return {
        ok: false,
        error: {
          code: "room_invalid",
          message: `room must be 1-${LIMITS.roomMax} letters, digits, _ - or .`,
        },
      };
    }
    value.room = room;
  }
  const rawNick = param(query, "nick");
  if (rawNick !== undefined) {
    const nick = checkNickParam(rawNick);
    if (!nick.ok) return nick;
    value.nick = nick.value;
  }
  const token = param(query, "token");
  if (token !== undefined) value.token = token;
  const identity = param(query, "identity");
  if (identity !== undefined) value.identity = identity;
  return { ok: true, value };
}

/**
 * Checks an upgrade request from `peer` (the socket's address): the admitted connection (holding a
 * per-address slot), or the refusal to send.
 */
export async function admit(
  gate: UpgradeGate,
  req: Request,
  url: URL,
  peer: string,
): Promise<{ ok: true; value: Admitted } | { ok: false; response: Response }> {
  const ip = gate.addresses.resolve(peer, req.headers.get("x-forwarded-for"));
  const client = addressKey(ip);
  const refuseWith: Refuser = (status, code, message, fields) => {
    gate.metrics.refusal(code);
    const origin = req.headers.get("origin");
    const host = req.headers.get("host");
    gate.log.log("info", "upgrade_refused", {
      code,
      ip,
      origin: origin === null ? undefined : clip(origin),
      host: host === null ? undefined : clip(host),
      ...fields,
    });
    return { ok: false as const, response: refuse(status, code, message) };
  };
  if (!isUpgrade(req)) {
    return { ok: false, response: refuse(400, "bad_request", "expected a WebSocket upgrade") };
  }
  if (!gate.connectRate.take(client, performance.now())) {
    return refuseWith(429, "rate_limited", "too many new connections from your address; slow down");
  }
  const busy = () => {
    if (gate.stopping()) return refuseWith(503, "server_busy", "the server is shutting down");
    if (gate.load() >= gate.config.maxConnections) {
      return refuseWith(503, "server_busy", "the server is at its connection limit; try again later");
    }
    return undefined;
  };
  const early = busy();
  if (early) return early;
  const version = requestedVersion(url.searchParams);
  if (version === undefined) return refuseWith(400, "bad_request", "v must be 1 or 2");
  if (version === 2) return admitV2(gate, req, url, ip, client, refuseWith, busy);
  const parsed = parseConnectQuery(url.searchParams);
  if (!parsed.ok) return refuseWith(400, parsed.error.code, parsed.error.message);
  const foreign = checkOrigin(gate, req, url, refuseWith);
  if (foreign) return foreign;
  let fixedNick: string | undefined;
  let tokenExpiresAt: number | undefined;
  if (gate.auth) {
    const token = parsed.value.token;
    const verified = token === undefined ? undefined : await gate.auth.verify(token, Date.now() / 1000);
    if (!verified?.ok)
      return refuseWith(401, "unauthorized", verified ? verified.reason : "a token is required");
    fixedNick = verified.claims.nick;
    tokenExpiresAt = verified.claims.exp * 1000;
  }
  // After the cheap checks: this one asks the core (and, with Redis, the broker).
  const nick = fixedNick ?? parsed.value.nick;
  let unchecked: string | undefined;
  if (nick !== undefined) {
    try {
      if (await gate.users.isBanned(parsed.value.room, nick))
        return refuseWith(403, "forbidden", "you are banned from this room");
    } catch (err) {
      gate.log.log("warn", "ban_check_failed", { room: parsed.value.room, ...describeError(err) });
      unchecked = "the server could not check bans; try again";
    }
  }
  // Checked again: others may have connected while the token and the bans were being checked.
  const late = busy();
  if (late) return late;
  if (!gate.perIp.acquire(client))
    return refuseWith(503, "server_busy", "too many connections from your address");
  const value: Admitted = { params: parsed.value, ip, client, fixedNick, tokenExpiresAt };
  if (unchecked !== undefined) value.unchecked = unchecked;
  return { ok: true, value };
}

type Refuser = (
  status: number,
  code: RefusalCode,
  message: string,
  /** More for the log line (never for the answer). */
  fields?: Record<string, unknown>,
) => { ok: false; response: Response };

/**
 * The Origin check (originAllowed, through explainOrigin): undefined when it passes, else the 403,
 * logged with the origin, the Host (and X-Forwarded-Host) compared, the scheme, and what to set.
 */
function checkOrigin(
  gate: UpgradeGate,
  req: Request,
  url: URL,
  refuseWith: Refuser,
): { ok: false; response: Response } | undefined {
  const origin = req.headers.get("origin");
  // Non-browser clients send no Origin; the check exists to stop other web pages, not them.
  if (origin === null) return undefined;
  const verdict = explainOrigin({
    origin,
    host: req.headers.get("host"),
    allowed: gate.config.allowedOrigins,
    scheme: requestScheme(req.headers.get("x-forwarded-proto"), url),
    forwardedHost: req.headers.get("x-forwarded-host"),
  });
  if (verdict.allowed) return undefined;
  return refuseWith(403, "forbidden", "this Origin may not connect", {
    reason: "origin",
    host: verdict.host ?? undefined,
    forwardedHost: verdict.forwardedHost,
    scheme: verdict.scheme,
    setting: "ALLOWED_ORIGINS",
    hint: verdict.hint,
  });
}

/**
 * The rest of a v2 upgrade, after the checks v1 shares (rate, capacity): the query, the Origin, then
 * who the user is (the access token's `sub` or `nick`; else the identity token's user, who must
 * exist and not be revoked; else a new user), then capacity again and the per-address limit.
 */
async function admitV2(
  gate: UpgradeGate,
  req: Request,
  url: URL,
  ip: string,
  client: string,
  refuseWith: Refuser,
  busy: () => { ok: false; response: Response } | undefined,
): Promise<{ ok: true; value: Admitted } | { ok: false; response: Response }> {
  const parsed = parseConnectQueryV2(url.searchParams);
  if (!parsed.ok) return refuseWith(400, parsed.error.code, parsed.error.message);
  const query = parsed.value;
  const foreign = checkOrigin(gate, req, url, refuseWith);
  if (foreign) return foreign;
  let fixedNick: string | undefined;
  let tokenExpiresAt: number | undefined;
  let who: V2Open;
  if (gate.auth) {
    const token = query.token;
    const verified = token === undefined ? undefined : await gate.auth.verifyUser(token, Date.now() / 1000);
    if (!verified?.ok)
      return refuseWith(401, "unauthorized", verified ? verified.reason : "a token is required");
    fixedNick = verified.claims.nick;
    tokenExpiresAt = verified.claims.exp * 1000;
    who = { userId: verified.userId, mod: verified.claims.mod === true, fixedNick: true };
  } else {
    const identities = gate.identities;
    if (!identities) throw new Error("no identity tokens and no access tokens: the gate is misconfigured");
    if (query.identity !== undefined) {
      const userId = await identities.verify(query.identity);
      if (userId === undefined) return refuseWith(401, "unauthorized", "the identity token is not valid");
      if (!(await gate.users.userExists(userId)))
        return refuseWith(401, "unauthorized", "the identity token's user is unknown or revoked");
      who = { userId, mod: false };
    } else {
      const minted = await identities.mint();
      who = { userId: minted.userId, identityToken: minted.identityToken, mod: false };
    }
  }
  const nick = fixedNick ?? query.nick;
  if (nick !== undefined) who.nick = nick;
  if (query.room !== undefined) who.room = query.room;
  // Checked again: others may have connected while the user was being checked.
  const late = busy();
  if (late) return late;
  if (!gate.perIp.acquire(client))
    return refuseWith(503, "server_busy", "too many connections from your address");
  // v1's params stay for the core's ConnectParams shape: the room (if any) and the wanted nick.
  const params: ConnectParams = { room: query.room ?? "" };
  if (nick !== undefined) params.nick = nick;
  return { ok: true, value: { params, ip, client, fixedNick, tokenExpiresAt, v2: who } };
}

/** RFC 6455 4.2.1: `Upgrade: websocket` and a `Connection` header holding the token `Upgrade`. */
function isUpgrade(req: Request): boolean {
  if (req.headers.get("upgrade")?.trim().toLowerCase() !== "websocket") return false;
  const tokens = (req.headers.get("connection") ?? "").split(",").map((t) => t.trim().toLowerCase());
  return tokens.includes("upgrade");
}
