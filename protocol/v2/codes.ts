/** Error and close codes of wire protocol v2: v1's, plus `not_found` and the close code of a kick. */
import { CLOSE, ERROR_CODES } from "../codes";

/** v1's error codes and `not_found` (no such room, post or user here). */
export const ERROR_CODES_V2 = [...ERROR_CODES, "not_found"] as const;

export type ErrorCodeV2 = (typeof ERROR_CODES_V2)[number];

/** v1's close codes, and 4003: a v1 connection kicked from its room by a moderator. */
export const CLOSE_V2 = { ...CLOSE, kicked: 4003 } as const;

export type CloseCodeV2 = (typeof CLOSE_V2)[keyof typeof CLOSE_V2];
