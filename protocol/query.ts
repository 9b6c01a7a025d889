/** The query string of `GET /ws`, checked before the upgrade. */
import type { RefusalCode } from "./codes";
import { DEFAULT_ROOM, LIMITS } from "./limits";
import { isValidNick, isValidRoom, normalizeNick, normalizeRoom } from "./names";

export interface ConnectParams {
  room: string;
  /** Normalized wanted nickname; absent means the server assigns `guest-N`. */
  nick?: string;
  since?: number;
  resume?: string;
  token?: string;
}

export type ParsedQuery =
  | { ok: true; value: ConnectParams }
  | { ok: false; error: { code: RefusalCode; message: string } };

const DIGITS = /^\d{1,16}$/;

/** Parses a non-negative integer query value; undefined when it is not one. */
export function parseSeqParam(raw: string): number | undefined {
  if (!DIGITS.test(raw)) return undefined;
  const n = Number(raw);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** Empty parameters count as absent, as browsers send `?room=` from empty fields. */
export function queryParam(query: URLSearchParams, name: string): string | undefined {
  const v = query.get(name);
  return v === null || v === "" ? undefined : v;
}
const param = queryParam;

type Checked = { ok: true; value: string } | { ok: false; error: { code: RefusalCode; message: string } };

/** A wanted nickname from a query, normalised, or why it is refused (both protocol versions). */
export function checkNickParam(raw: string): Checked {
  const nick = normalizeNick(raw);
  if (isValidNick(nick)) return { ok: true, value: nick };
  return {
    ok: false,
    error: {
      code: "nick_invalid",
      message: `nick must be 1-${LIMITS.nickMax} letters, digits, _ - or ., not mixing scripts`,
    },
  };
}

/**
 * Checks the query of `GET /ws`. Its values are well-formed Unicode by construction: URLSearchParams
 * holds USV strings, so a lone surrogate (or a percent-encoded one) arrives as U+FFFD, which no room
 * or nickname accepts.
 */
export function parseConnectQuery(query: URLSearchParams): ParsedQuery {
  const rawRoom = param(query, "room");
  const room = rawRoom === undefined ? DEFAULT_ROOM : normalizeRoom(rawRoom);
  if (!isValidRoom(room)) {
    return {
      ok: false,
      error: { code: "room_invalid", message: `room must be 1-${LIMITS.roomMax} letters, digits, _ - or .` },
    };
  }
  const value: ConnectParams = { room };
  const rawNick = param(query, "nick");
  if (rawNick !== undefined) {
    const nick = checkNickParam(rawNick);
    if (!nick.ok) return nick;
    value.nick = nick.value;
  }
  const rawSince = param(query, "since");
  if (rawSince !== undefined) {
    const since = parseSeqParam(rawSince);
    if (since === undefined) {
      return { ok: false, error: { code: "bad_request", message: "since must be an integer >= 0" } };
    }
    value.since = since;
  }
  const resume = param(query, "resume");
  // An unusable resume token is ignored, as an unknown one is.
  if (resume !== undefined && resume.length <= LIMITS.opaqueMax) value.resume = resume;
  const token = param(query, "token");
  if (token !== undefined) value.token = token;
  return { ok: true, value };
}
