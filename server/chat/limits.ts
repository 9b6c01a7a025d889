/** The limits the chat core enforces, taken from the configuration (server/config.ts holds the defaults). */
import type { Config } from "../settings";
import type { RateLimits } from "./rate-limit";

export interface ChatLimits extends RateLimits {
  /** Bytes a socket may have unsent before it is closed with 1008 as too slow. */
  slowConsumerBytes: number;
  /**
   * In a room of at least `presenceBatchMinMembers`, presence events (and the welcomes behind them)
   * wait up to this long to share one message: a join storm then costs one send per member per
   * window instead of one per join. 0 sends them at once. Chats are never held.
   */
  presenceBatchMs: number;
  presenceBatchMinMembers: number;
  /** How long a resume token stays valid after its connection ends. */
  resumeTtlMs: number;
  /** Client message references remembered per session for dedupe. */
  dedupeWindow: number;
  /** Unsent bytes all connections of one client address may hold together. */
  bufferedBytesPerClient: number;
  /** History bytes one client address may read a second (0: unlimited), and at once. */
  historyBytesPerSecond: number;
  historyBytesBurst: number;
  /** Rooms a v2 user may be a member of (direct rooms included). */
  maxRoomsPerUser: number;
  /** How long after posting its author may edit a post; 0: any time. */
  editWindowMs: number;
}

/** The configuration fields the limits come from (a type only: the core reads no configuration). */
export type LimitSettings = Pick<
  Config,
  | "rateLimit"
  | "rateBurst"
  | "controlRateLimit"
  | "controlRateBurst"
  | "frameRateLimit"
  | "frameRateBurst"
  | "floodCloseAfter"
  | "slowConsumerBytes"
  | "presenceBatchMs"
  | "presenceBatchMinMembers"
  | "resumeTtlSeconds"
  | "bufferedBytesPerIp"
  | "historyBytesPerSecond"
  | "historyBytesBurst"
  | "maxRoomsPerUser"
  | "editWindowSeconds"
>;

/** Not a setting: a retry comes soon after its original, and 1,000 covers any client's outbox. */
export const DEDUPE_WINDOW = 1000;

export function chatLimits(s: LimitSettings): ChatLimits {
  return {
    rateLimit: s.rateLimit,
    rateBurst: s.rateBurst,
    controlRate: s.controlRateLimit,
    controlBurst: s.controlRateBurst,
    frameRate: s.frameRateLimit,
    frameBurst: s.frameRateBurst,
    floodCloseAfter: s.floodCloseAfter,
    slowConsumerBytes: s.slowConsumerBytes,
    presenceBatchMs: s.presenceBatchMs,
    presenceBatchMinMembers: s.presenceBatchMinMembers,
    resumeTtlMs: s.resumeTtlSeconds * 1000,
    dedupeWindow: DEDUPE_WINDOW,
    bufferedBytesPerClient: s.bufferedBytesPerIp,
    historyBytesPerSecond: s.historyBytesPerSecond,
    historyBytesBurst: s.historyBytesBurst,
    maxRoomsPerUser: s.maxRoomsPerUser,
    editWindowMs: s.editWindowSeconds * 1000,
  };
}
