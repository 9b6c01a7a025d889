/** The one parser of what a person types: a chat line or a slash command (/nick, /join, /who, /me, /help). */
import { isValidNick, isValidRoom, LIMITS, normalizeNick, normalizeRoom } from "../protocol";

export type Command =
  | { kind: "chat"; text: string }
  | { kind: "nick"; nick: string }
  | { kind: "join"; room: string }
  | { kind: "who" }
  | { kind: "help" }
  | { kind: "none" }
  | { kind: "invalid"; message: string };

export const HELP = [
  "/nick NAME: change your nickname",
  "/join ROOM: switch to another room",
  "/who: list the people in this room",
  "/me ACTION: say what you do (/me waves)",
  "//text: send a line that starts with /",
];

const ACTION_PREFIX = "/me ";

/** Parses one input line; never throws. Blank lines are `none`. */
export function parseCommand(line: string): Command {
  if (line.trim() === "") return { kind: "none" };
  if (!line.startsWith("/")) return { kind: "chat", text: line };
  if (line.startsWith("//")) return { kind: "chat", text: line.slice(1) };
  const match = /^\/(\S+)\s*(.*)$/su.exec(line) as RegExpExecArray;
  const name = (match[1] as string).toLowerCase();
  const arg = (match[2] as string).trim();
  switch (name) {
    case "me":
      return arg === "" ? usage("/me ACTION") : { kind: "chat", text: ACTION_PREFIX + arg };
    case "nick": {
      if (arg === "") return usage("/nick NAME");
      const nick = normalizeNick(arg);
      if (!isValidNick(nick)) {
        return invalid(`a nickname is 1-${LIMITS.nickMax} letters, digits, _ - or . (no spaces)`);
      }
      return { kind: "nick", nick };
    }
    case "join": {
      if (arg === "") return usage("/join ROOM");
      const room = normalizeRoom(arg.replace(/^#/, ""));
      if (!isValidRoom(room)) return invalid(`a room is 1-${LIMITS.roomMax} letters, digits, _ - or .`);
      return { kind: "join", room };
    }
    case "who":
      return { kind: "who" };
    case "help":
    case "?":
      return { kind: "help" };
    default:
      return invalid(
        `unknown command /${name}; /help lists them (start with // to send a line beginning with /)`,
      );
  }
}

/** The action of a `/me` line as sent on the wire, or undefined for an ordinary line. */
export function actionOf(text: string): string | undefined {
  return text.startsWith(ACTION_PREFIX) && text.length > ACTION_PREFIX.length
    ? text.slice(ACTION_PREFIX.length)
    : undefined;
}

function usage(form: string): Command {
  return invalid(`usage: ${form}`);
}

function invalid(message: string): Command {
  return { kind: "invalid", message };
}
