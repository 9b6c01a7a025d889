/**
 * How the generator speaks to each server under test: the upgrade path, what makes a client ready,
 * how a chat is framed and how a received frame is classified, all on raw bytes.
 */
import type { GenConn } from "./ws-client";

export type DialectName = "chat-json" | "raw" | "socket.io";

export interface ClientSpec {
  room: string;
  nick?: string;
  since?: number;
  resume?: string;
  /** Source address in 127.0.0.0/8. */
  localAddress?: string;
  /** Another process of the same server (the cluster scenario); the target's port otherwise. */
  port?: number;
}

export const FRAME = { other: 0, chat: 1, welcome: 2, error: 3 } as const;
export type FrameKind = (typeof FRAME)[keyof typeof FRAME];

export interface Dialect {
  path(spec: ClientSpec): string;
  /** After the 101: sends any handshake; true when the client may chat at once. */
  opened(conn: GenConn): boolean;
  /** Classifies one text frame; may answer protocol frames (Engine.IO pings) itself. */
  classify(conn: GenConn, buf: Uint8Array, start: number, end: number): FrameKind;
  /** The welcome as an object, for the few fields the resume scenario reads. */
  welcome(buf: Uint8Array, start: number, end: number): WelcomeInfo;
  /** The frame that sends a chat message with this text. */
  chat(text: string): string;
}

export interface WelcomeInfo {
  lastSeq: number;
  resumeToken: string | undefined;
  history: number;
  truncated: boolean;
}

const C = (s: string) => s.charCodeAt(0);
const decoder = new TextDecoder();

function query(spec: ClientSpec): string {
  const q = new URLSearchParams({ room: spec.room });
  if (spec.nick !== undefined) q.set("nick", spec.nick);
  if (spec.since !== undefined) q.set("since", String(spec.since));
  if (spec.resume !== undefined) q.set("resume", spec.resume);
  return q.toString();
}

function welcomeFrom(value: unknown): WelcomeInfo {
  const w = (value ?? {}) as {
    lastSeq?: number;
    resumeToken?: string;
    history?: unknown[];
    historyTruncated?: boolean;
  };
  return {
    lastSeq: w.lastSeq ?? 0,
    resumeToken: w.resumeToken,
    history: Array.isArray(w.history) ? w.history.length : 0,
    truncated: w.historyTruncated === true,
  };
}

/** Our protocol, also spoken by the Node + ws baseline: `{"type":"…"` leads every frame. */
const chatJson: Dialect = {
  path: (spec) => `/ws?${query(spec)}`,
  opened: () => false,
  classify(_conn, buf, start, end) {
    // {"type":"chat" / "welcome" / "error": the 10th byte tells them apart.
    if (end - start < 12 || buf[start + 2] !== C("t")) return FRAME.other;
    const b = buf[start + 9];
    if (b === C("c") && buf[start + 10] === C("h")) return FRAME.chat;
    if (b === C("w")) return FRAME.welcome;
    if (b === C("e")) return FRAME.error;
    return FRAME.other;
  },
  welcome: (buf, start, end) => welcomeFrom(JSON.parse(decoder.decode(buf.subarray(start, end)))),
  chat: (text) => JSON.stringify({ type: "chat", text }),
};

/** The raw Bun limit: every frame is a chat message; subscribed as soon as the upgrade is done. */
const raw: Dialect = {
  path: (spec) => `/ws?${query(spec)}`,
  opened: () => true,
  classify: () => FRAME.chat,
  welcome: () => welcomeFrom(undefined),
  chat: (text) => text,
};

/**
 * Engine.IO v4 / Socket.IO v5 over a plain WebSocket: `0{…}` open → send `40` (connect to `/`),
 * `2` ping → `3` pong, `42[event,data]` events. The baseline emits `welcome` after joining its room.
 */
const socketIo: Dialect = {
  path: (spec) => `/socket.io/?EIO=4&transport=websocket&${query(spec)}`,
  opened: () => false,
  classify(conn, buf, start, end) {
    const b0 = buf[start];
    if (b0 === C("4") && buf[start + 1] === C("2")) {
      // 42["chat",…] or 42["welcome",…]
      const b = buf[start + 4];
      if (b === C("c")) return FRAME.chat;
      if (b === C("w")) return FRAME.welcome;
      if (b === C("e")) return FRAME.error;
      return FRAME.other;
    }
    if (b0 === C("2") && end - start === 1) conn.sendText("3");
    else if (b0 === C("0")) conn.sendText("40");
    else if (b0 === C("4") && buf[start + 1] === C("4")) return FRAME.error; // CONNECT_ERROR
    return FRAME.other;
  },
  welcome(buf, start, end) {
    const packet = JSON.parse(decoder.decode(buf.subarray(start + 2, end))) as unknown[];
    return welcomeFrom(packet[1]);
  },
  chat: (text) => `42${JSON.stringify(["chat", { text }])}`,
};

export const DIALECTS: Record<DialectName, Dialect> = {
  "chat-json": chatJson,
  raw,
  "socket.io": socketIo,
};
