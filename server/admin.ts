/**
 * The HTTP admin API of protocol v2 (shared/PROTOCOL.md, "Moderators"): routes under `/api/` that
 * answer only when ADMIN_TOKEN is set and the request carries `Authorization: Bearer ADMIN_TOKEN`
 * (compared in constant time); anything else gets 401 before a route looks at the request.
 *
 * Each route is a row of ROUTES: method, path pattern, handler. A path that matches a row's pattern
 * is an admin path whatever the method: it is authorized first, then a method no row of that path
 * takes is 405. The moderator routes are rows already; those not built yet answer 404.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { Logger } from "./chat/log";
import { refuse } from "./http";

/** What the admin routes ask of the core. */
export interface AdminHub {
  /** Closes the user's live connections and makes its identity token stop working; false when unknown. */
  revokeUser(userId: string): Promise<boolean>;
}

export interface AdminContext {
  /** ADMIN_TOKEN; undefined: the API answers 401 to everything. */
  token: string | undefined;
  hub: AdminHub;
  log: Logger;
}

/** One matched route: the decoded path parameters, in the order of the pattern's groups. */
type Handler = (ctx: AdminContext, req: Request, params: string[]) => Promise<Response>;

interface Route {
  method: "GET" | "POST" | "PUT" | "DELETE";
  pattern: RegExp;
  /** For logs: the route without its parameters. */
  name: string;
  handle: Handler;
}

/** Path parameters (a user id, a room) are at most this long once decoded. */
const PARAM_MAX = 512;

const notBuilt: Handler = async (_ctx, req) =>
  refuse(404, "not_found", `${req.method} ${new URL(req.url).pathname} is not served yet`);

const ROUTES: readonly Route[] = [
  {
    method: "DELETE",
    pattern: /^\/api\/identities\/([^/]+)$/,
    name: "DELETE /api/identities/:userId",
    handle: revokeIdentity,
  },
  // The moderator routes of the spec's "Moderators" table.
  {
    method: "DELETE",
    pattern: /^\/api\/rooms\/([^/]+)\/messages\/([^/]+)$/,
    name: "DELETE /api/rooms/:room/messages/:seq",
    handle: notBuilt,
  },
  {
    method: "PUT",
    pattern: /^\/api\/rooms\/([^/]+)\/topic$/,
    name: "PUT /api/rooms/:room/topic",
    handle: notBuilt,
  },
  {
    method: "POST",
    pattern: /^\/api\/rooms\/([^/]+)\/kick$/,
    name: "POST /api/rooms/:room/kick",
    handle: notBuilt,
  },
  {
    method: "POST",
    pattern: /^\/api\/rooms\/([^/]+)\/bans$/,
    name: "POST /api/rooms/:room/bans",
    handle: notBuilt,
  },
  {
    method: "DELETE",
    pattern: /^\/api\/rooms\/([^/]+)\/bans\/([^/]+)$/,
    name: "DELETE /api/rooms/:room/bans/:userId",
    handle: notBuilt,
  },
];

/** True when `path` is an admin path (for any method): http.ts leaves those to `routeAdmin`. */
export function isAdminPath(path: string): boolean {
  return ROUTES.some((r) => r.pattern.test(path));
}

/** Answers a request to an admin path; undefined when `path` is not one (another router's then). */
export function routeAdmin(req: Request, path: string, ctx: AdminContext): Promise<Response> | undefined {
  const matching = ROUTES.filter((r) => r.pattern.test(path));
  if (matching.length === 0) return undefined;
  return answer(req, path, matching, ctx);
}

async function answer(req: Request, path: string, matching: Route[], ctx: AdminContext): Promise<Response> {
  if (!authorized(ctx.token, req.headers.get("authorization"))) {
    ctx.log.log("info", "admin_refused", { method: req.method });
    return refuse(401, "unauthorized", "the admin API needs Authorization: Bearer ADMIN_TOKEN");
  }
  const route = matching.find((r) => r.method === req.method);
  if (!route) return refuse(405, "method_not_allowed", `${req.method} is not supported here`);
  const groups = (route.pattern.exec(path) as RegExpExecArray).slice(1);
  const params: string[] = [];
  for (const raw of groups) {
    let value: string;
    try {
      value = decodeURIComponent(raw as string);
    } catch {
      return refuse(400, "bad_request", "a path parameter is not valid percent-encoding");
    }
    if (value.length > PARAM_MAX) return refuse(400, "bad_request", "a path parameter is too long");
    params.push(value);
  }
  const response = await route.handle(ctx, req, params);
  ctx.log.log("info", "admin_request", { route: route.name, status: response.status });
  return response;
}

/**
 * `Authorization: Bearer TOKEN` (the scheme in any case, RFC 7235) against ADMIN_TOKEN. Both sides
 * are hashed first so that the constant-time comparison always sees equal lengths and the token's
 * length does not show either.
 */
export function authorized(expected: string | undefined, header: string | null): boolean {
  if (expected === undefined || expected === "" || header === null) return false;
  const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
  if (!match) return false;
  const digest = (s: string) => createHash("sha256").update(s, "utf8").digest();
  return timingSafeEqual(digest(match[1] as string), digest(expected));
}

/** `DELETE /api/identities/:userId`: revokes the user, closing its connections. */
async function revokeIdentity(ctx: AdminContext, _req: Request, [userId]: string[]): Promise<Response> {
  if (!userId || !(await ctx.hub.revokeUser(userId)))
    return refuse(404, "not_found", "no such user (or it was revoked already)");
  ctx.log.log("info", "identity_revoked", { userId });
  return new Response(null, { status: 204 });
}
