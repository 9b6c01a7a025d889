/**
 * What the page notes in each room's timeline besides posts: joins, leaves and renames (worked out
 * from the change of the room's user list, as the client reports lists, not events) and the answers
 * of commands such as /who. Kept per room, the newest few hundred.
 */
import type { RoomView } from "../v2/api";
import type { Note } from "./timeline-model";

const NOTES_MAX = 300;

type NewNote = Note extends infer N ? (N extends Note ? Omit<N, "id" | "at" | "afterSeq"> : never) : never;

export class RoomNotes {
  readonly #notes = new Map<string, Note[]>();
  readonly #users = new Map<string, readonly string[]>();
  #nextId = 0;

  of(room: string): readonly Note[] {
    return this.#notes.get(room) ?? [];
  }

  forget(room: string): void {
    this.#notes.delete(room);
    this.#users.delete(room);
  }

  /** Notes `note` after the newest post held in `view`. */
  add(view: RoomView, note: NewNote): void {
    const full = {
      ...note,
      id: ++this.#nextId,
      at: Date.now(),
      afterSeq: view.posts.at(-1)?.seq ?? view.lastSeq,
    } as Note;
    const list = this.#notes.get(view.room) ?? [];
    list.push(full);
    if (list.length > NOTES_MAX) list.splice(0, list.length - NOTES_MAX);
    this.#notes.set(view.room, list);
  }

  /**
   * Joins and leaves since the room's last user list. One name out and one in at the same moment is
   * told as a rename (what a `nick` change looks like in a list).
   */
  track(view: RoomView): void {
    const before = this.#users.get(view.room);
    this.#users.set(view.room, view.users);
    if (!before || before === view.users) return;
    const was = new Set(before);
    const now = new Set(view.users);
    const joined = view.users.filter((n) => !was.has(n));
    const left = before.filter((n) => !now.has(n));
    if (joined.length === 1 && left.length === 1) {
      this.add(view, { kind: "rename", from: left[0] as string, to: joined[0] as string });
      return;
    }
    for (const nick of left) this.add(view, { kind: "leave", nick });
    for (const nick of joined) this.add(view, { kind: "join", nick });
  }
}
