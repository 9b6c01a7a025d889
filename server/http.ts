/**
 * The plain HTTP routes: the page, health, metrics, rooms and message history as JSON, the origin
 * check a page runs when its socket keeps failing, and the admin API (admin.ts). Direct rooms
 * (`~...`, protocol v2) are never listed nor served here.
 */
import { isValidRoom, LIMITS, normalizeRoom, parseSeqParam, type RefusalCode, v2 } from "../protocol";
import { type AdminContext, routeAdmin } from "./admin";
import { monotonicNow } from "./chat/clock";
import type { ChatHub } from "./chat/hub";
import { explainOrigin, requestScheme } from "./origin";

export interface HttpContext {
  hub: ChatHub;
  startedAt: number;
  /** The browser page; served at `/` (the request carries Accept-Encoding and If-None-Match). */
  page: (req: Request) => Response | Promise<Response>;
  admin: AdminContext;
  /** ALLOWED_ORIGINS, for `/api/origin-check`; absent: none (same origin only). */
  allowedOrigins?: readonly string[];
}

const JSON_HEADERS = { "content-type": "application/json; charset=utf-8", "cache-control": "no-store" };

export function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), { status, headers: JSON_HEADERS });
}

export function refuse(
  status: number,
  error: RefusalCode | "not_found" | "method_not_allowed",
  message: string,
) {
  return json({ error, message }, status);
}

const MESSAGES_ROUTE = /^\/api\/rooms\/([^/]+)\/messages$/;

export function routeHttp(req: Request, url: URL, ctx: HttpContext): Response | Promise<Response> {
  const admin = routeAdmin(req, url.pathname, ctx.admin);
  if (admin) return admin;
  if (req.method !== "GET" && req.method !== "HEAD") {
    return refuse(405, "method_not_allowed", `${req.method} is not supported here`);
  }
  const path = url.pathname;
  if (path === "/" || path === "/index.html") return ctx.page(req);
  if (path === "/healthz") return health(ctx);
  if (path === "/metrics") return metrics(ctx);
  if (path === "/api/rooms") return rooms(ctx);
  if (path === "/api/origin-check") return originCheck(req, url, ctx.allowedOrigins ?? []);
  const match = MESSAGES_ROUTE.exec(path);
  if (match) return messages(match[1] as string, url.searchParams, ctx.hub);
  return refuse(404, "not_found", `nothing at ${path}`);
}

/** The gauges of /healthz and /metrics; the room list may come from the broker, hence async. */
async function gauges(
  ctx: HttpContext,
): Promise<{ connections: number; rooms: number; uptimeSeconds: number }> {
  const rooms = (await ctx.hub.roomList()).length;
  return {
    connections: ctx.hub.connectionCount,
    rooms,
    uptimeSeconds: Math.floor((monotonicNow() - ctx.startedAt) / 1000),
  };
}

async function health(ctx: HttpContext): Promise<Response> {
  return json({ status: "ok", ...(await gauges(ctx)) });
}

async function metrics(ctx: HttpContext): Promise<Response> {
  const text = ctx.hub.metrics.render(await gauges(ctx));
  return new Response(text, { headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" } });
}

/** Public rooms only: a direct room's name (and that it is in use) is its two users' business. */
async function rooms(ctx: HttpContext): Promise<Response> {
  const list = await ctx.hub.roomList();
  return json(list.filter((r) => !r.room.startsWith(v2.DIRECT_ROOM_PREFIX)));
}

/**
 * `GET /api/origin-check?origin=...`: whether a page at that origin may open a socket here, by the
 * upgrade's own rule and this request's Host and scheme (a proxy treats both requests alike), with
 * what to configure when not. Without `origin`, the request's Origin header is checked.
 */
function originCheck(req: Request, url: URL, allowed: readonly string[]): Response {
  const origin = url.searchParams.get("origin") || req.headers.get("origin");
  if (origin === null)
    return refuse(400, "bad_request", "origin is required, e.g. ?origin=https://chat.example.com");
  return json(
    explainOrigin({
      origin,
      host: req.headers.get("host"),
      allowed,
      scheme: requestScheme(req.headers.get("x-forwarded-proto"), url),
      forwardedHost: req.headers.get("x-forwarded-host"),
    }),
  );
}

async function messages(rawRoom: string, query: URLSearchParams, hub: ChatHub): Promise<Response> {
  let room: string;
  try {
    room = normalizeRoom(decodeURIComponent(rawRoom));
  } catch {
    return refuse(400, "room_invalid", "room is not valid percent-encoding");
  }
  if (room.startsWith(v2.DIRECT_ROOM_PREFIX)) return refuse(404, "not_found", "no such room here");
  if (!isValidRoom(room))
    return refuse(400, "room_invalid", `room must be 1-${LIMITS.roomMax} letters, digits, _ - or .`);
  let before = Number.MAX_SAFE_INTEGER;
  const rawBefore = query.get("before");
  if (rawBefore !== null && rawBefore !== "") {
    const n = parseSeqParam(rawBefore);
    if (n === undefined) return refuse(400, "bad_request", "before must be an integer >= 0");
    before = n;
  }
  let limit: number = LIMITS.historyDefault;
  const rawLimit = query.get("limit");
  if (rawLimit !== null && rawLimit !== "") {
    const n = parseSeqParam(rawLimit);
    if (n === undefined || n < 1 || n > LIMITS.historyMax) {
      return refuse(400, "bad_request", `limit must be an integer from 1 to ${LIMITS.historyMax}`);
    }
    limit = n;
  }
  // v1's shape unless `v=2` asks for folded posts (edits, reactions, `deleted`), as v2's history.
  const version = query.get("v");
  if (version !== null && version !== "" && version !== "1" && version !== "2") {
    return refuse(400, "bad_request", "v must be 1 or 2");
  }
  if (version === "2") {
    const folded = await hub.history(room, before, limit, 2);
    return json({ messages: folded.messages, hasMore: folded.more });
  }
  const page = await hub.history(room, before, limit);
  return json({ messages: page.messages, hasMore: page.more });
}
