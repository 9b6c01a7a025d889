/**
 * Schemas of every message a v2 client sends; one strict object per `type`. Every request may carry
 * `id` (v1's ClientRef: 1-64 characters), which an error it causes echoes. Text, nick and id rules are
 * v1's own schemas; every string is well-formed Unicode.
 */
import { z } from "zod";
import { ChatText, ClientRef, NickName, Seq } from "../client-messages";
import { LIMITS } from "../limits";
import { charCount, isWellFormed, normalizeRoom } from "../names";
import { LIMITS_V2 } from "./limits";
import { isReactionEmoji, isValidRoomV2 } from "./names";

/** Raw bound on strings that get a semantic check after, as v1's: keeps hostile input cheap to refuse. */
const RAW_NAME_MAX = 256;

/** Every string on the wire is well-formed Unicode: a lone surrogate is bad_message, whatever the field. */
const wellFormed = [
  isWellFormed,
  { message: "must be well-formed Unicode (no lone surrogate)", params: { code: "bad_message" } },
] as const;

/**
 * A room of v2: a v1 room name (1-64 letters, digits, `_ - .`, checked after NFC) or a direct room's
 * name (`~` and 1-128 ASCII letters, digits, `_ - .`; see names.ts). Breaking the rule is room_invalid.
 */
export const RoomName = z
  .string()
  .refine(...wellFormed)
  .max(RAW_NAME_MAX)
  .refine((s) => isValidRoomV2(normalizeRoom(s)), {
    message: `room must be 1-${LIMITS.roomMax} letters, digits, _ - or ., or a direct room's ~name`,
    params: { code: "room_invalid" },
  });

/** Free text a person typed, of `min` to `max` characters: longer is too_large, as a chat text is. */
function typedText(min: number, max: number, what: string) {
  return z
    .string()
    .refine(...wellFormed)
    .max(max * 2, { message: `${what} is longer than ${max} characters` })
    .refine((s) => charCount(s) <= max, {
      message: `${what} is longer than ${max} characters`,
      params: { code: "too_large" },
    })
    .refine((s) => charCount(s) >= min, { message: `${what} is shorter than ${min} characters` });
}

/** A room topic: 0-200 characters, the empty one clearing it. */
export const Topic = typedText(0, LIMITS_V2.topicMax, "topic");

/** Why a moderator kicks or bans: 1-200 characters (absent when none is given). */
export const Reason = typedText(1, LIMITS_V2.reasonMax, "reason");

/** One emoji or one `:shortcode:`, 1-32 characters (see names.ts); anything else is bad_message. */
export const Emoji = z
  .string()
  .refine(...wellFormed)
  .max(LIMITS_V2.emojiMax * 2)
  .refine(isReactionEmoji, {
    message: `emoji must be one emoji or a :shortcode: of at most ${LIMITS_V2.emojiMax} characters`,
  });

/** The seq of a post: posts count from 1. */
export const PostSeq = z.int().min(1);

/** `since`, `sinceRev`, `before` and read markers: 0 is "nothing yet". */
export { Seq };

export const Kind = z.literal("action");

export const ChatRequest = z.strictObject({
  type: z.literal("chat"),
  room: RoomName,
  text: ChatText,
  id: ClientRef.optional(),
  kind: Kind.optional(),
  replyTo: PostSeq.optional(),
});
export type ChatRequest = z.infer<typeof ChatRequest>;

export const EditRequest = z.strictObject({
  type: z.literal("edit"),
  room: RoomName,
  seq: PostSeq,
  text: ChatText,
  id: ClientRef.optional(),
});
export type EditRequest = z.infer<typeof EditRequest>;

export const DeleteRequest = z.strictObject({
  type: z.literal("delete"),
  room: RoomName,
  seq: PostSeq,
  id: ClientRef.optional(),
});
export type DeleteRequest = z.infer<typeof DeleteRequest>;

export const ReactRequest = z.strictObject({
  type: z.literal("react"),
  room: RoomName,
  seq: PostSeq,
  emoji: Emoji,
  on: z.boolean(),
  id: ClientRef.optional(),
});
export type ReactRequest = z.infer<typeof ReactRequest>;

export const TopicRequest = z.strictObject({
  type: z.literal("topic"),
  room: RoomName,
  topic: Topic,
  id: ClientRef.optional(),
});
export type TopicRequest = z.infer<typeof TopicRequest>;

export const JoinRequest = z.strictObject({
  type: z.literal("join"),
  room: RoomName,
  id: ClientRef.optional(),
});
export type JoinRequest = z.infer<typeof JoinRequest>;

export const PartRequest = z.strictObject({
  type: z.literal("part"),
  room: RoomName,
  id: ClientRef.optional(),
});
export type PartRequest = z.infer<typeof PartRequest>;

export const DmRequest = z.strictObject({
  type: z.literal("dm"),
  nick: NickName,
  id: ClientRef.optional(),
});
export type DmRequest = z.infer<typeof DmRequest>;

export const SyncRequest = z.strictObject({
  type: z.literal("sync"),
  room: RoomName,
  since: Seq,
  sinceRev: Seq,
  id: ClientRef.optional(),
});
export type SyncRequest = z.infer<typeof SyncRequest>;

export const HistoryRequest = z.strictObject({
  type: z.literal("history"),
  room: RoomName,
  before: Seq.optional(),
  limit: z.int().min(1).max(LIMITS.historyMax).optional(),
  id: ClientRef.optional(),
});
export type HistoryRequest = z.infer<typeof HistoryRequest>;

export const WhoRequest = z.strictObject({
  type: z.literal("who"),
  room: RoomName,
  id: ClientRef.optional(),
});
export type WhoRequest = z.infer<typeof WhoRequest>;

export const TypingRequest = z.strictObject({
  type: z.literal("typing"),
  room: RoomName,
  id: ClientRef.optional(),
});
export type TypingRequest = z.infer<typeof TypingRequest>;

export const ReadRequest = z.strictObject({
  type: z.literal("read"),
  room: RoomName,
  seq: Seq,
  id: ClientRef.optional(),
});
export type ReadRequest = z.infer<typeof ReadRequest>;

export const NickRequest = z.strictObject({
  type: z.literal("nick"),
  nick: NickName,
  id: ClientRef.optional(),
});
export type NickRequest = z.infer<typeof NickRequest>;

export const KickRequest = z.strictObject({
  type: z.literal("kick"),
  room: RoomName,
  nick: NickName,
  reason: Reason.optional(),
  id: ClientRef.optional(),
});
export type KickRequest = z.infer<typeof KickRequest>;

export const BanRequest = z.strictObject({
  type: z.literal("ban"),
  room: RoomName,
  nick: NickName,
  /** Absent: for ever. */
  seconds: z.int().min(1).max(LIMITS_V2.banSecondsMax).optional(),
  reason: Reason.optional(),
  id: ClientRef.optional(),
});
export type BanRequest = z.infer<typeof BanRequest>;

export const ClientMessageV2 = z.discriminatedUnion("type", [
  ChatRequest,
  EditRequest,
  DeleteRequest,
  ReactRequest,
  TopicRequest,
  JoinRequest,
  PartRequest,
  DmRequest,
  SyncRequest,
  HistoryRequest,
  WhoRequest,
  TypingRequest,
  ReadRequest,
  NickRequest,
  KickRequest,
  BanRequest,
]);
export type ClientMessageV2 = z.infer<typeof ClientMessageV2>;
export type ClientMessageTypeV2 = ClientMessageV2["type"];
