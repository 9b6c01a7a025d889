/**
 * The HTTP admin API of protocol v2 (shared/PROTOCOL.md, "Moderators"): routes under `/api/` that
 * answer only when ADMIN_TOKEN is set and the request carries `Authorization: Bearer ADMIN_TOKEN`
 * (compared in constant time); anything else gets 401 before a route looks at the request.
 *
 * Each route is a row of ROUTES: method, path pattern, handler. A path that matches a row's pattern
 * is an admin path whatever the method: it is authorized first, then a method no row of that path
 * takes is 405.
 *
 * The moderator routes act as the user "admin". A room in their path is checked by v2's rules (a
 * direct room `~...` may be moderated too): else 400 room_invalid. Their JSON bodies (at most 16 KiB,
 * else 413 too_large) are checked by the same schemas and give the same error codes as the socket's
 * `topic`, `kick` and `ban` requests (bad_json, bad_message, nick_invalid, too_large); a field the
 * route does not take is bad_message. Success is 204 with no body; no such post, or no such user in
 * the room (or no such ban), is 404 not_found.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { z } from "zod";
import {
  decodeWith,
  isValidNick,
  nickKey,
  normalizeNick,
  normalizeRoom,
  parseSeqParam,
  v2,
} from "../protocol";
import type { Logger } from "./chat/log";
import { refuse } from "./http";

/** What the admin routes ask of the core. */
export interface AdminHub {
  /** Closes the user's live connections and makes its identity token stop working; false when unknown. */
  revokeUser(userId: string): Promise<boolean>;
  /** A `delete` change by "admin"; not_found when the room has no such post. */
  adminDelete(room: string, seq: number): Promise<"ok" | "not_found">;
  /** A `topic` change by "admin" (the topic already checked: 0-200 characters). */
  adminTopic(room: string, topic: string): Promise<"ok">;
  /** Kicks the user (or v1 connection) with that nick from the room; not_found when none is there. */
  adminKick(room: string, nick: string, reason?: string): Promise<"ok" | "not_found">;
  /** Kicks and bans for `seconds` (absent: for ever); not_found when no one with that nick is there. */
  adminBan(room: string, nick: string, seconds?: number, reason?: string): Promise<"ok" | "not_found">;
  /** Lifts the ban of a v2 user id, or of `v1:NICKKEY` (a v1 nick); false when there is none. */
  adminUnban(room: string, userId: string): Promise<boolean>;
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

/** Largest JSON body a moderator route reads, in bytes (as MAX_PAYLOAD's default for a frame). */
export const BODY_MAX = 16 * 1024;

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
    handle: deletePost,
  },
  {
    method: "PUT",
    pattern: /^\/api\/rooms\/([^/]+)\/topic$/,
    name: "PUT /api/rooms/:room/topic",
    handle: setTopic,
  },
  {
    method: "POST",
    pattern: /^\/api\/rooms\/([^/]+)\/kick$/,
    name: "POST /api/rooms/:room/kick",
    handle: kick,
  },
  {
    method: "POST",
    pattern: /^\/api\/rooms\/([^/]+)\/bans$/,
    name: "POST /api/rooms/:room/bans",
    handle: ban,
  },
  {
    method: "DELETE",
    pattern: /^\/api\/rooms\/([^/]+)\/bans\/([^/]+)$/,
    name: "DELETE /api/rooms/:room/bans/:userId",
    handle: unban,
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

/** The room of a moderator route's path, normalized, or the 400 its name earns. */
function roomOf(raw: string | undefined): { ok: true; room: string } | { ok: false; response: Response } {
  const room = normalizeRoom(raw ?? "");
  if (v2.isValidRoomV2(room)) return { ok: true, room };
  return {
    ok: false,
    response: refuse(400, "room_invalid", "room must be a v2 room: 1-64 letters, digits, _ - or ., or ~name"),
  };
}

type Body<S extends z.ZodType> = { ok: true; value: z.infer<S> } | { ok: false; response: Response };

/**
 * The request's JSON body checked by `schema`, a socket request's schema without `room` and `id`:
 * the body is given that request's `type` and decoded as a frame would be, so a field breaks the
 * same rule with the same code over HTTP as over the socket. At most BODY_MAX bytes of UTF-8.
 */
async function readBody<S extends z.ZodType>(req: Request, type: string, schema: S): Promise<Body<S>> {
  const bytes = await readCapped(req);
  if (bytes === undefined)
    return { ok: false, response: refuse(413, "too_large", `the body is over ${BODY_MAX} bytes`) };
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch {
    return { ok: false, response: refuse(400, "bad_json", "the body is not UTF-8 JSON") };
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed))
    return { ok: false, response: refuse(400, "bad_message", "the body must be a JSON object") };
  if (Object.hasOwn(parsed, "type"))
    return { ok: false, response: refuse(400, "bad_message", 'Unrecognized key: "type"') };
  const decoded = decodeWith(schema, JSON.stringify({ type, ...parsed }), true);
  if (!decoded.ok) return { ok: false, response: refuse(400, decoded.error.code, decoded.error.message) };
  return { ok: true, value: decoded.value };
}

/** The body's bytes, or undefined past BODY_MAX (a declared length says so before any is read). */
async function readCapped(req: Request): Promise<Uint8Array | undefined> {
  const declared = req.headers.get("content-length");
  if (declared !== null && Number(declared) > BODY_MAX) return undefined;
  if (!req.body) return new Uint8Array(0);
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = req.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > BODY_MAX) {
      await reader.cancel().catch(() => undefined);
      return undefined;
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.byteLength;
  }
  return bytes;
}

const TopicBody = v2.TopicRequest.omit({ room: true, id: true });
const KickBody = v2.KickRequest.omit({ room: true, id: true });
const BanBody = v2.BanRequest.omit({ room: true, id: true });

const noContent = () => new Response(null, { status: 204 });

/** `DELETE /api/rooms/:room/messages/:seq`: deletes a post (a `delete` change by "admin"). */
async function deletePost(ctx: AdminContext, _req: Request, [rawRoom, rawSeq]: string[]): Promise<Response> {
  const room = roomOf(rawRoom);
  if (!room.ok) return room.response;
  const seq = parseSeqParam(rawSeq ?? "");
  if (seq === undefined || seq < 1) return refuse(400, "bad_request", "seq must be an integer >= 1");
  if ((await ctx.hub.adminDelete(room.room, seq)) === "not_found")
    return refuse(404, "not_found", "no such post in this room");
  ctx.log.log("info", "admin_delete", { room: room.room, seq });
  return noContent();
}

/** `PUT /api/rooms/:room/topic` `{topic}`: sets the topic (the empty one clears it). */
async function setTopic(ctx: AdminContext, req: Request, [rawRoom]: string[]): Promise<Response> {
  const room = roomOf(rawRoom);
  if (!room.ok) return room.response;
  const body = await readBody(req, "topic", TopicBody);
  if (!body.ok) return body.response;
  await ctx.hub.adminTopic(room.room, body.value.topic);
  ctx.log.log("info", "admin_topic", { room: room.room });
  return noContent();
}

/** `POST /api/rooms/:room/kick` `{nick, reason?}`: kicks whoever holds that nick in the room. */
async function kick(ctx: AdminContext, req: Request, [rawRoom]: string[]): Promise<Response> {
  const room = roomOf(rawRoom);
  if (!room.ok) return room.response;
  const body = await readBody(req, "kick", KickBody);
  if (!body.ok) return body.response;
  const nick = normalizeNick(body.value.nick);
  if ((await ctx.hub.adminKick(room.room, nick, body.value.reason)) === "not_found")
    return refuse(404, "not_found", "no one with that nick in this room");
  ctx.log.log("info", "admin_kick", { room: room.room });
  return noContent();
}

/** `POST /api/rooms/:room/bans` `{nick, seconds?, reason?}`: kicks and bans (absent seconds: for ever). */
async function ban(ctx: AdminContext, req: Request, [rawRoom]: string[]): Promise<Response> {
  const room = roomOf(rawRoom);
  if (!room.ok) return room.response;
  const body = await readBody(req, "ban", BanBody);
  if (!body.ok) return body.response;
  const nick = normalizeNick(body.value.nick);
  const { seconds, reason } = body.value;
  if ((await ctx.hub.adminBan(room.room, nick, seconds, reason)) === "not_found")
    return refuse(404, "not_found", "no one with that nick in this room");
  ctx.log.log("info", "admin_ban", { room: room.room, seconds });
  return noContent();
}

/**
 * `DELETE /api/rooms/:room/bans/:userId`: lifts a ban. A v1 nickname's ban is `v1:NICKKEY`; `v1:NICK`
 * as the nick is written (`v1:Carl`) is taken too, tried as its key after the id as given.
 */
async function unban(ctx: AdminContext, _req: Request, [rawRoom, userId]: string[]): Promise<Response> {
  const room = roomOf(rawRoom);
  if (!room.ok) return room.response;
  const ids = userId ? [userId] : [];
  if (userId?.startsWith(V1_PREFIX)) {
    const nick = normalizeNick(userId.slice(V1_PREFIX.length));
    const key = `${V1_PREFIX}${nickKey(nick)}`;
    if (isValidNick(nick) && key !== userId) ids.push(key);
  }
  for (const id of ids) {
    if (await ctx.hub.adminUnban(room.room, id)) {
      ctx.log.log("info", "admin_unban", { room: room.room });
      return noContent();
    }
  }
  return refuse(404, "not_found", "no ban of that user in this room");
}

/** How a v1 nickname's ban is named among user ids. */
const V1_PREFIX = "v1:";
