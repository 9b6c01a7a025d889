/**
 * Hand-written checks of what a v2 server sends (shared/PROTOCOL.md, "Wire protocol v2"), so the
 * browser bundle needs no zod. Each check looks at what the client relies on: the `type`, every
 * required field and its type, and the type of each optional field that is present. Extra fields are
 * let through (a newer server may add some). A frame that fails is dropped by the client, never thrown.
 */

export interface RoomStateFrame {
  room: string;
  topic: string;
  users: string[];
  lastSeq: number;
  lastRev: number;
  readSeq: number;
  unread: number;
  mentions: number;
  dm?: { nick: string };
  epoch?: string;
}

export interface ReactionFrame {
  emoji: string;
  nicks: string[];
}

export interface FoldedPostFrame {
  seq: number;
  nick: string;
  userId: string;
  text: string;
  sentAt: string;
  kind?: "action";
  replyTo?: number;
  mentions?: string[];
  editedAt?: string;
  deleted?: true;
  reactions?: ReactionFrame[];
}

export interface EditFrame {
  type: "edit";
  room: string;
  rev: number;
  seq: number;
  text: string;
  editedAt: string;
}
export interface DeleteFrame {
  type: "delete";
  room: string;
  rev: number;
  seq: number;
  by: string;
}
export interface ReactionChangeFrame {
  type: "reaction";
  room: string;
  rev: number;
  seq: number;
  emoji: string;
  nick: string;
  on: boolean;
}
export interface TopicFrame {
  type: "topic";
  room: string;
  rev: number;
  topic: string;
  nick: string;
}
export type ChangeFrame = EditFrame | DeleteFrame | ReactionChangeFrame | TopicFrame;

export type PresenceEventFrame =
  | { event: "join"; nick: string }
  | { event: "leave"; nick: string }
  | { event: "nick"; from: string; nick: string };

export type ServerFrame =
  | {
      type: "welcome";
      protocol: 2;
      connectionId: string;
      user: { userId: string; nick: string };
      identityToken?: string;
      rooms: RoomStateFrame[];
    }
  | ({ type: "joined" } & RoomStateFrame)
  | { type: "parted"; room: string }
  | ({ type: "chat"; room: string } & Omit<FoldedPostFrame, "editedAt" | "deleted" | "reactions">)
  | { type: "sync"; room: string; posts: FoldedPostFrame[]; changes: ChangeFrame[]; truncated: boolean }
  | { type: "history"; room: string; messages: FoldedPostFrame[]; hasMore: boolean }
  | ChangeFrame
  | { type: "kicked"; room: string; by: string; reason?: string; until?: string }
  | { type: "read"; room: string; seq: number }
  | { type: "presence"; room: string; events: PresenceEventFrame[] }
  | { type: "users"; room: string; users: string[] }
  | { type: "ack"; id: string; seq: number }
  | { type: "typing"; room: string; nick: string }
  | { type: "error"; code: string; message: string; id?: string };

export type ServerFrameType = ServerFrame["type"];

export type Guarded = { ok: true; frame: ServerFrame } | { ok: false; reason: string };

type Obj = Record<string, unknown>;
/** A check of one value: an empty string when it passes, else what is wrong. */
type Check = (value: unknown) => string;

const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

const str: Check = (v) => (typeof v === "string" ? "" : "not a string");
const bool: Check = (v) => (typeof v === "boolean" ? "" : "not a boolean");
const int =
  (min: number): Check =>
  (v) =>
    typeof v === "number" && Number.isSafeInteger(v) && v >= min ? "" : `not a whole number >= ${min}`;
const count = int(0);
const positive = int(1);
const literal =
  (want: unknown): Check =>
  (v) =>
    v === want ? "" : `not ${JSON.stringify(want)}`;
const list =
  (item: Check): Check =>
  (v) => {
    if (!Array.isArray(v)) return "not a list";
    for (let i = 0; i < v.length; i++) {
      const bad = item(v[i]);
      if (bad) return `[${i}] ${bad}`;
    }
    return "";
  };
const strings = list(str);
const optional = (check: Check): Check => {
  const wrapped: Check = (v) => (v === undefined ? "" : check(v));
  (wrapped as { optional?: true }).optional = true;
  return wrapped;
};

/** An object whose listed fields pass their checks (optional ones may be absent). */
function shape(fields: Record<string, Check>): Check {
  const entries = Object.entries(fields);
  return (v) => {
    if (!isObj(v)) return "not an object";
    for (const [key, check] of entries) {
      if (!(key in v) && !(check as { optional?: true }).optional) return `${key}: missing`;
      const bad = check(v[key]);
      if (bad) return `${key}: ${bad}`;
    }
    return "";
  };
}

const roomStateFields = {
  room: str,
  topic: str,
  users: strings,
  lastSeq: count,
  lastRev: count,
  readSeq: count,
  unread: count,
  mentions: count,
  dm: optional(shape({ nick: str })),
  epoch: optional(str),
};

const postFields = {
  seq: positive,
  nick: str,
  userId: str,
  text: str,
  sentAt: str,
  kind: optional(literal("action")),
  replyTo: optional(positive),
  mentions: optional(strings),
};

const foldedPost = shape({
  ...postFields,
  editedAt: optional(str),
  deleted: optional(literal(true)),
  reactions: optional(list(shape({ emoji: str, nicks: strings }))),
});

const changeShapes: Record<string, Check> = {
  edit: shape({ room: str, rev: positive, seq: positive, text: str, editedAt: str }),
  delete: shape({ room: str, rev: positive, seq: positive, by: str }),
  reaction: shape({ room: str, rev: positive, seq: positive, emoji: str, nick: str, on: bool }),
  topic: shape({ room: str, rev: positive, topic: str, nick: str }),
};

const change: Check = (v) => {
  if (!isObj(v)) return "not an object";
  const check = typeof v.type === "string" ? changeShapes[v.type] : undefined;
  return check ? check(v) : "type: not a change";
};

const presenceEvent: Check = (v) => {
  if (!isObj(v)) return "not an object";
  if (v.event === "join" || v.event === "leave") return shape({ nick: str })(v);
  if (v.event === "nick") return shape({ from: str, nick: str })(v);
  return "event: not join, leave or nick";
};

/** The check of each frame type, the `type` field aside. */
const FRAMES: Record<ServerFrameType, Check> = {
  welcome: shape({
    protocol: literal(2),
    connectionId: str,
    user: shape({ userId: str, nick: str }),
    identityToken: optional(str),
    rooms: list(shape(roomStateFields)),
  }),
  joined: shape(roomStateFields),
  parted: shape({ room: str }),
  chat: shape({ room: str, ...postFields }),
  sync: shape({ room: str, posts: list(foldedPost), changes: list(change), truncated: bool }),
  history: shape({ room: str, messages: list(foldedPost), hasMore: bool }),
  ...(changeShapes as Record<ChangeFrame["type"], Check>),
  kicked: shape({ room: str, by: str, reason: optional(str), until: optional(str) }),
  read: shape({ room: str, seq: count }),
  presence: shape({ room: str, events: list(presenceEvent) }),
  users: shape({ room: str, users: strings }),
  ack: shape({ id: str, seq: positive }),
  typing: shape({ room: str, nick: str }),
  error: shape({ code: str, message: str, id: optional(str) }),
};

/** Checks one parsed frame. */
export function guardFrame(value: unknown): Guarded {
  if (!isObj(value)) return { ok: false, reason: "not a JSON object" };
  const type = value.type;
  if (typeof type !== "string") return { ok: false, reason: "type: missing" };
  const check = Object.hasOwn(FRAMES, type) ? FRAMES[type as ServerFrameType] : undefined;
  if (!check) return { ok: false, reason: `unknown type ${JSON.stringify(type.slice(0, 40))}` };
  const bad = check(value);
  return bad ? { ok: false, reason: `${type}: ${bad}` } : { ok: true, frame: value as ServerFrame };
}

/** Parses and checks one frame as it comes off the socket (text frames only). */
export function parseFrame(data: unknown): Guarded {
  if (typeof data !== "string") return { ok: false, reason: "not a text frame" };
  let value: unknown;
  try {
    value = JSON.parse(data);
  } catch {
    return { ok: false, reason: "not JSON" };
  }
  return guardFrame(value);
}

/** Exposed for tests: each check by name. */
export const checks = { roomState: shape(roomStateFields), foldedPost, change };
