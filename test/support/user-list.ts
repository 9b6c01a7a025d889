/** A client's own picture of who is in its room, built as every client must: welcome, then presence in order. */
import type { ServerMessage } from "../../protocol";

/**
 * Applies `welcome.users` and then each presence event in order. With `room`, a welcome for another
 * room empties the list and presence from another room is ignored (a client that moved on).
 * A list, not a set, so a duplicate join shows up as a duplicate.
 */
export function usersFrom(messages: readonly ServerMessage[], room?: string): string[] {
  let users: string[] = [];
  for (const m of messages) {
    if (m.type === "welcome") users = room === undefined || m.room === room ? [...m.users] : [];
    if (m.type !== "presence" || (room !== undefined && m.room !== room)) continue;
    for (const e of m.events) {
      if (e.event === "join") users.push(e.nick);
      if (e.event === "leave") users = users.filter((u) => u !== e.nick);
      if (e.event === "nick") users = users.map((u) => (u === e.from ? e.nick : u));
    }
  }
  return users;
}
