/**
 * What a line typed in the composer asks for: a post, a `/me` action, or a command (/nick, /join,
 * /part, /msg, /topic, /who, /help). Pure; messages are in people's words.
 */
import { LIMITS } from "../../protocol/limits";
import { charCount, isValidNick, isValidRoom, normalizeNick, normalizeRoom } from "../../protocol/names";

export type Command =
  | { kind: "post"; text: string }
  | { kind: "action"; text: string }
  | { kind: "nick"; nick: string }
  | { kind: "join"; room: string }
  | { kind: "part"; room?: string }
  | { kind: "msg"; nick: string; text?: string }
  | { kind: "topic"; topic: string }
  | { kind: "who" }
  | { kind: "help" }
  | { kind: "none" }
  | { kind: "invalid"; message: string };

export const TOPIC_MAX = 200;

export const HELP: ReadonlyArray<readonly [string, string]> = [
  ["/join ROOM", "join a room (or switch to it)"],
  ["/part", "leave this room"],
  ["/msg NAME [text]", "talk to someone privately"],
  ["/nick NAME", "change your name"],
  ["/me does something", "say what you are doing"],
  ["/topic TEXT", "set this room's topic"],
  ["/who", "list who is here"],
  ["//text", "send a line that starts with /"],
];

const NICK_RULE = `A name is 1–${LIMITS.nickMax} letters, digits, _ - or . (no spaces).`;
const ROOM_RULE = `A room name is 1–${LIMITS.roomMax} letters, digits, _ - or . (no spaces).`;

/** The nickname typed, checked; the reason in words when it cannot be one. */
export function checkNick(raw: string): { nick: string } | { problem: string } {
  const nick = normalizeNick(raw.replace(/^@/, ""));
  if (nick === "") return { problem: "Type a name first." };
  return isValidNick(nick) ? { nick } : { problem: `"${nick}" cannot be a name. ${NICK_RULE}` };
}

/** The room typed (a leading # is fine), checked. */
export function checkRoom(raw: string): { room: string } | { problem: string } {
  const room = normalizeRoom(raw.trim().replace(/^#/, ""));
  if (room === "") return { problem: "Type a room name first." };
  return isValidRoom(room) ? { room } : { problem: `"${room}" cannot be a room name. ${ROOM_RULE}` };
}

/** How many characters over the limit a text is (0 when it fits). */
export function overLimit(text: string): number {
  return Math.max(0, charCount(text) - LIMITS.textMax);
}

export function parseCommand(line: string): Command {
  if (line.trim() === "") return { kind: "none" };
  if (!line.startsWith("/")) return { kind: "post", text: line };
  if (line.startsWith("//")) return { kind: "post", text: line.slice(1) };
  const match = /^\/(\S+)(?:\s+([\s\S]*))?$/u.exec(line);
  if (!match) return { kind: "post", text: line };
  const name = (match[1] as string).toLowerCase();
  const arg = (match[2] ?? "").trim();
  switch (name) {
    case "me":
      return arg === "" ? usage("/me does something") : { kind: "action", text: arg };
    case "nick": {
      if (arg === "") return usage("/nick NAME");
      const checked = checkNick(arg);
      return "nick" in checked ? { kind: "nick", nick: checked.nick } : invalid(checked.problem);
    }
    case "join":
    case "j": {
      if (arg === "") return usage("/join ROOM");
      const checked = checkRoom(arg);
      return "room" in checked ? { kind: "join", room: checked.room } : invalid(checked.problem);
    }
    case "part":
    case "leave": {
      if (arg === "") return { kind: "part" };
      const checked = checkRoom(arg);
      return "room" in checked ? { kind: "part", room: checked.room } : invalid(checked.problem);
    }
    case "msg":
    case "query":
    case "dm": {
      const [who = "", ...rest] = arg.split(/\s+/u);
      if (who === "") return usage("/msg NAME [text]");
      const checked = checkNick(who);
      if (!("nick" in checked)) return invalid(checked.problem);
      const text = arg.slice(who.length).trim();
      return text === "" || rest.length === 0
        ? { kind: "msg", nick: checked.nick }
        : { kind: "msg", nick: checked.nick, text };
    }
    case "topic":
      if (charCount(arg) > TOPIC_MAX) return invalid(`A topic can be at most ${TOPIC_MAX} characters.`);
      return { kind: "topic", topic: arg };
    case "who":
    case "names":
      return { kind: "who" };
    case "help":
    case "?":
      return { kind: "help" };
    default:
      return invalid(`There is no /${name} command. Type /help to see them, or // to start a line with /.`);
  }
}

function usage(form: string): Command {
  return invalid(`Usage: ${form}`);
}

function invalid(message: string): Command {
  return { kind: "invalid", message };
}
