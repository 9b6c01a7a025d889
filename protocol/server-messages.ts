/** Schemas of every message the server sends; one strict object per `type`. */
import { z } from "zod";
import { ERROR_CODES } from "./codes";
import { LIMITS, PROTOCOL_VERSION } from "./limits";

const Name = z.string().min(1).max(LIMITS.opaqueMax);
const Opaque = z.string().max(LIMITS.opaqueMax);
const Count = z.int().min(0);
const UserList = z.array(Name).max(LIMITS.usersMax);

export const ChatMessage = z.strictObject({
  type: z.literal("chat"),
  room: Name,
  seq: z.int().min(1),
  nick: Name,
  text: z
    .string()
    .min(1)
    .max(LIMITS.textMax * 2),
  sentAt: z.iso.datetime({ precision: 3 }),
});
export type ChatMessage = z.infer<typeof ChatMessage>;

const ChatList = z.array(ChatMessage).max(LIMITS.sinceMax);

export const Welcome = z.strictObject({
  type: z.literal("welcome"),
  protocol: z.literal(PROTOCOL_VERSION),
  connectionId: Name,
  room: Name,
  nick: Name,
  users: UserList,
  history: ChatList,
  historyTruncated: z.boolean(),
  lastSeq: Count,
  resumeToken: Name,
  /**
   * The room's history generation: it changes when the room's history was lost or reset (a store
   * started afresh), so a client that saw other seqs under another epoch starts its view over.
   */
  epoch: Name.optional(),
});
export type Welcome = z.infer<typeof Welcome>;

export const PresenceEvent = z.discriminatedUnion("event", [
  z.strictObject({ event: z.literal("join"), nick: Name }),
  z.strictObject({ event: z.literal("leave"), nick: Name }),
  z.strictObject({ event: z.literal("nick"), from: Name, nick: Name }),
]);
export type PresenceEvent = z.infer<typeof PresenceEvent>;

export const Presence = z.strictObject({
  type: z.literal("presence"),
  room: Name,
  events: z.array(PresenceEvent).min(1).max(LIMITS.presenceEventsMax),
});
export type Presence = z.infer<typeof Presence>;

export const Users = z.strictObject({ type: z.literal("users"), room: Name, users: UserList });
export type Users = z.infer<typeof Users>;

export const History = z.strictObject({
  type: z.literal("history"),
  room: Name,
  messages: ChatList,
  hasMore: z.boolean(),
});
export type History = z.infer<typeof History>;

export const Ack = z.strictObject({
  type: z.literal("ack"),
  id: z.string().min(1).max(LIMITS.idMax),
  seq: z.int().min(1),
});
export type Ack = z.infer<typeof Ack>;

export const Typing = z.strictObject({ type: z.literal("typing"), room: Name, nick: Name });
export type Typing = z.infer<typeof Typing>;

export const ErrorMessage = z.strictObject({
  type: z.literal("error"),
  code: z.enum(ERROR_CODES),
  message: Opaque,
  id: z.string().min(1).max(LIMITS.idMax).optional(),
});
export type ErrorMessage = z.infer<typeof ErrorMessage>;

export const ServerMessage = z.discriminatedUnion("type", [
  Welcome,
  ChatMessage,
  Presence,
  Users,
  History,
  Ack,
  Typing,
  ErrorMessage,
]);
export type ServerMessage = z.infer<typeof ServerMessage>;
export type ServerMessageType = ServerMessage["type"];
