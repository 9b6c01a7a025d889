/**
 * The checks a WebSocket upgrade passes before the chat sees it: shutdown and capacity, the query,
 * the Origin, the access token and the per-address limit. Each refusal is plain HTTP with a typed body.
 */
import { type ConnectParams, parseConnectQuery, type RefusalCode } from "../protocol";
import type { TokenAuthority } from "./auth";
import type { Logger } from "./chat/log";
import type { Metrics } from "./chat/metrics";
import { addressKey, type ClientAddresses } from "./client-address";
import type { Config } from "./config";
import { refuse } from "./http";
import type { ConnectRate, IpLimit } from "./ip-limit";
import { originAllowed, requestScheme } from "./origin";

/** What an accepted upgrade carries to the socket. */
export interface Admitted {
  params: ConnectParams;
  ip: string;
  /** What the per-address limits count by: the IPv4 address or the IPv6 /64. */
  client: string;
  fixedNick: string | undefined;
  tokenExpiresAt: number | undefined;
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
  const refuseWith = (status: number, code: RefusalCode, message: string) => {
    gate.metrics.refusal(code);
    gate.log.log("info", "upgrade_refused", {
      code,
      ip,
      origin: req.headers.get("origin") ?? undefined,
      host: req.headers.get("host") ?? undefined,
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
  const parsed = parseConnectQuery(url.searchParams);
  if (!parsed.ok) return refuseWith(400, parsed.error.code, parsed.error.message);
  const scheme = requestScheme(req.headers.get("x-forwarded-proto"), url);
  if (
    !originAllowed(req.headers.get("origin"), req.headers.get("host"), gate.config.allowedOrigins, scheme)
  ) {
    return refuseWith(403, "forbidden", "this Origin may not connect");
  }
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
  // Checked again: others may have connected while the token was being verified.
  const late = busy();
  if (late) return late;
  if (!gate.perIp.acquire(client))
    return refuseWith(503, "server_busy", "too many connections from your address");
  return { ok: true, value: { params: parsed.value, ip, client, fixedNick, tokenExpiresAt } };
}

/** RFC 6455 4.2.1: `Upgrade: websocket` and a `Connection` header holding the token `Upgrade`. */
function isUpgrade(req: Request): boolean {
  if (req.headers.get("upgrade")?.trim().toLowerCase() !== "websocket") return false;
  const tokens = (req.headers.get("connection") ?? "").split(",").map((t) => t.trim().toLowerCase());
  return tokens.includes("upgrade");
}
