/** Schemas of every message a client sends; one strict object per `type`. */
import { z } from "zod";
import { LIMITS } from "./limits";
import { charCount, isValidNick, isValidRoom, isWellFormed, normalizeNick, normalizeRoom } from "./names";

/** Raw bound on strings that get a semantic check after: keeps hostile input cheap to refuse. */
const RAW_NAME_MAX = 256;

/** Every string on the wire is well-formed Unicode: a lone surrogate is bad_message, whatever the field. */
const wellFormed = [
  isWellFormed,
  { message: "must be well-formed Unicode (no lone surrogate)", params: { code: "bad_message" } },
] as const;

export const ChatText = z
  .string()
  .refine(...wellFormed)
  .max(LIMITS.textMax * 2)
  .refine((s) => charCount(s) <= LIMITS.textMax, {
    message: `text is longer than ${LIMITS.textMax} characters`,
    params: { code: "too_large" },
  })
  .refine((s) => s.trim().length > 0, { message: "text is empty or only white space" });

export const ClientRef = z
  .string()
  .refine(...wellFormed)
  .min(1)
  .max(LIMITS.idMax);

export const NickName = z
  .string()
  .refine(...wellFormed)
  .max(RAW_NAME_MAX)
  .refine((s) => isValidNick(normalizeNick(s)), {
    message: `nickname must be 1-${LIMITS.nickMax} letters, digits, _ - or ., not mixing scripts`,
    params: { code: "nick_invalid" },
  });

export const RoomName = z
  .string()
  .refine(...wellFormed)
  .max(RAW_NAME_MAX)
  .refine((s) => isValidRoom(normalizeRoom(s)), {
    message: `room must be 1-${LIMITS.roomMax} letters, digits, _ - or .`,
    params: { code: "room_invalid" },
  });

export const Seq = z.int().min(0);

export const ChatRequest = z.strictObject({
  type: z.literal("chat"),
  text: ChatText,
  id: ClientRef.optional(),
});
export type ChatRequest = z.infer<typeof ChatRequest>;

export const NickRequest = z.strictObject({ type: z.literal("nick"), nick: NickName });
export type NickRequest = z.infer<typeof NickRequest>;

export const JoinRequest = z.strictObject({
  type: z.literal("join"),
  room: RoomName,
  since: Seq.optional(),
});
export type JoinRequest = z.infer<typeof JoinRequest>;

export const HistoryRequest = z.strictObject({
  type: z.literal("history"),
  before: Seq.optional(),
  limit: z.int().min(1).max(LIMITS.historyMax).optional(),
});
export type HistoryRequest = z.infer<typeof HistoryRequest>;

export const WhoRequest = z.strictObject({ type: z.literal("who") });
export type WhoRequest = z.infer<typeof WhoRequest>;

export const TypingRequest = z.strictObject({ type: z.literal("typing") });
export type TypingRequest = z.infer<typeof TypingRequest>;

export const ClientMessage = z.discriminatedUnion("type", [
  ChatRequest,
  NickRequest,
  JoinRequest,
  HistoryRequest,
  WhoRequest,
  TypingRequest,
]);
export type ClientMessage = z.infer<typeof ClientMessage>;
export type ClientMessageType = ClientMessage["type"];
