/**
 * Schemas of every message a v2 server sends; one strict object per `type`. As v1's server schemas,
 * they bound every string and list but do not judge names: a client checks the shape of what it is
 * told. `presence`, `users`, `ack` and `typing` are v1's schemas; `error` is v1's with `not_found`.
 */
import { z } from "zod";
import { LIMITS } from "../limits";
import {
  Ack,
  ChatMessage as ChatMessageV1,
  ErrorMessage as ErrorMessageV1,
  Presence,
  Typing,
  Users,
  Welcome as WelcomeV1,
} from "../server-messages";
import { ERROR_CODES_V2 } from "./codes";
import { LIMITS_V2, PROTOCOL_VERSION_V2 } from "./limits";

export { Ack, Presence, Typing, Users };

// v1's building blocks, taken from its schemas so the two versions cannot drift apart.
/** A name, id or token from the server: 1-512 UTF-16 units. */
const Name = ChatMessageV1.shape.nick;
/** A post's seq or a change's rev: from 1. */
const Positive = ChatMessageV1.shape.seq;
/** A counter that may still be 0 (`lastSeq`, `lastRev`, `readSeq`). */
const Count = WelcomeV1.shape.lastSeq;
/** ISO 8601, UTC, milliseconds. */
const Instant = ChatMessageV1.shape.sentAt;
/** A post's text, never empty: 1-8000 UTF-16 units (4000 characters). */
const PostText = ChatMessageV1.shape.text;
const UserList = Users.shape.users;

/** A count capped at 1000 (`unread`, `mentions`). */
const Capped = z.int().min(0).max(LIMITS_V2.unreadMax);
const TopicText = z.string().max(LIMITS_V2.topicMax * 2);
const ReasonText = z
  .string()
  .min(1)
  .max(LIMITS_V2.reasonMax * 2);
const EmojiText = z
  .string()
  .min(1)
  .max(LIMITS_V2.emojiMax * 2);
/** The nicks a post mentions; absent, never empty, when it mentions none. */
const Mentions = z.array(Name).min(1).max(LIMITS_V2.mentionsMax);
const Kind = z.literal("action");

const roomStateFields = {
  room: Name,
  topic: TopicText,
  users: UserList,
  lastSeq: Count,
  lastRev: Count,
  readSeq: Count,
  /** Posts after `readSeq` by others and not deleted, counted up to 1000. */
  unread: Capped,
  /** Those of them that mention this user, up to 1000. */
  mentions: Capped,
  /** The other user of a direct room. */
  dm: z.strictObject({ nick: Name }).optional(),
  /** The room's history generation, as v1's welcome `epoch`: a new one means seqs started over. */
  epoch: Name.optional(),
};

/** What a client knows of one of its rooms: in the welcome's `rooms`, and flattened into `joined`. */
export const RoomState = z.strictObject(roomStateFields);
export type RoomState = z.infer<typeof RoomState>;

export const Reaction = z.strictObject({
  emoji: EmojiText,
  /** Who reacted so, in the order they did; a reaction nobody holds any more is left out. */
  nicks: z.array(Name).min(1).max(LIMITS.usersMax),
});
export type Reaction = z.infer<typeof Reaction>;

/**
 * A post as it stands now, its changes applied. `text` is empty exactly when `deleted` is true (a
 * post's text is never empty otherwise); the optional fields are absent when they do not apply.
 */
export const FoldedPost = z
  .strictObject({
    seq: Positive,
    nick: Name,
    userId: Name,
    text: z.string().max(LIMITS.textMax * 2),
    sentAt: Instant,
    kind: Kind.optional(),
    replyTo: Positive.optional(),
    mentions: Mentions.optional(),
    editedAt: Instant.optional(),
    deleted: z.literal(true).optional(),
    /** In first-reaction order, at most 20 distinct emoji. */
    reactions: z.array(Reaction).min(1).max(LIMITS_V2.reactionsPerPost).optional(),
  })
  .refine((post) => (post.deleted === true) === (post.text === ""), {
    message: "text must be empty exactly when the post is deleted",
  });
export type FoldedPost = z.infer<typeof FoldedPost>;

const FoldedPosts = z.array(FoldedPost).max(LIMITS_V2.syncMax);

export const Welcome = z.strictObject({
  type: z.literal("welcome"),
  protocol: z.literal(PROTOCOL_VERSION_V2),
  connectionId: Name,
  user: z.strictObject({ userId: Name, nick: Name }),
  /** Only when the server minted this user on this connection. */
  identityToken: Name.optional(),
  rooms: z.array(RoomState).max(LIMITS_V2.roomsBound),
});
export type Welcome = z.infer<typeof Welcome>;

export const Joined = z.strictObject({ type: z.literal("joined"), ...roomStateFields });
export type Joined = z.infer<typeof Joined>;

export const Parted = z.strictObject({ type: z.literal("parted"), room: Name });
export type Parted = z.infer<typeof Parted>;

/** v1's chat message, plus the author's `userId`, and `kind`, `replyTo`, `mentions` when they apply. */
export const ChatMessage = ChatMessageV1.extend({
  userId: Name,
  kind: Kind.optional(),
  replyTo: Positive.optional(),
  mentions: Mentions.optional(),
});
export type ChatMessage = z.infer<typeof ChatMessage>;

export const EditMessage = z.strictObject({
  type: z.literal("edit"),
  room: Name,
  rev: Positive,
  seq: Positive,
  text: PostText,
  editedAt: Instant,
});
export type EditMessage = z.infer<typeof EditMessage>;

export const DeleteMessage = z.strictObject({
  type: z.literal("delete"),
  room: Name,
  rev: Positive,
  seq: Positive,
  /** The nick of who deleted it: the author or a moderator. */
  by: Name,
});
export type DeleteMessage = z.infer<typeof DeleteMessage>;

export const ReactionMessage = z.strictObject({
  type: z.literal("reaction"),
  room: Name,
  rev: Positive,
  seq: Positive,
  emoji: EmojiText,
  nick: Name,
  on: z.boolean(),
});
export type ReactionMessage = z.infer<typeof ReactionMessage>;

export const TopicMessage = z.strictObject({
  type: z.literal("topic"),
  room: Name,
  rev: Positive,
  topic: TopicText,
  nick: Name,
});
export type TopicMessage = z.infer<typeof TopicMessage>;

/** A change, as sent live and as listed in a `sync` answer. */
export const Change = z.discriminatedUnion("type", [
  EditMessage,
  DeleteMessage,
  ReactionMessage,
  TopicMessage,
]);
export type Change = z.infer<typeof Change>;

export const Sync = z.strictObject({
  type: z.literal("sync"),
  room: Name,
  /** Folded, every seq after `since`, up to 500, ascending. */
  posts: FoldedPosts,
  /** Every change after `sinceRev`, up to 500, in `rev` order. */
  changes: z.array(Change).max(LIMITS_V2.syncMax),
  /** More was missed than this answer holds: page with `history`. */
  truncated: z.boolean(),
});
export type Sync = z.infer<typeof Sync>;

export const History = z.strictObject({
  type: z.literal("history"),
  room: Name,
  messages: FoldedPosts,
  hasMore: z.boolean(),
});
export type History = z.infer<typeof History>;

export const Kicked = z.strictObject({
  type: z.literal("kicked"),
  room: Name,
  by: Name,
  reason: ReasonText.optional(),
  /** The end of a timed ban; absent for a kick or a ban for ever. */
  until: Instant.optional(),
});
export type Kicked = z.infer<typeof Kicked>;

export const Read = z.strictObject({ type: z.literal("read"), room: Name, seq: Count });
export type Read = z.infer<typeof Read>;

export const ErrorMessage = ErrorMessageV1.extend({ code: z.enum(ERROR_CODES_V2) });
export type ErrorMessage = z.infer<typeof ErrorMessage>;

export const ServerMessageV2 = z.discriminatedUnion("type", [
  Welcome,
  Joined,
  Parted,
  ChatMessage,
  Sync,
  History,
  EditMessage,
  DeleteMessage,
  ReactionMessage,
  TopicMessage,
  Kicked,
  Read,
  Presence,
  Users,
  Ack,
  Typing,
  ErrorMessage,
]);
export type ServerMessageV2 = z.infer<typeof ServerMessageV2>;
export type ServerMessageTypeV2 = ServerMessageV2["type"];
