/** A client's fold of a v2 change into the posts it holds (reactions as sets), for tests. */
import type { v2 } from "../../protocol";

/** Folds a change into the posts held, as a client does: idempotent, so a replay is harmless. */
export function foldInto(posts: Map<number, v2.FoldedPost>, c: v2.Change): void {
  if (c.type === "topic") return;
  const p = posts.get(c.seq);
  if (!p) return;
  if (c.type === "edit") posts.set(c.seq, { ...p, text: c.text, editedAt: c.editedAt });
  else if (c.type === "delete") {
    // As the server folds it: the post keeps its place (kind, replyTo) and loses what it said.
    const { reactions: _r, mentions: _m, editedAt: _e, ...rest } = p;
    posts.set(c.seq, { ...rest, text: "", deleted: true });
  } else {
    const reactions = (p.reactions ?? []).map((r) => ({ ...r, nicks: [...r.nicks] }));
    const r = reactions.find((x) => x.emoji === c.emoji);
    if (c.on && !r) reactions.push({ emoji: c.emoji, nicks: [c.nick] });
    else if (c.on && r && !r.nicks.includes(c.nick)) r.nicks.push(c.nick);
    else if (!c.on && r) r.nicks = r.nicks.filter((n) => n !== c.nick);
    const kept = reactions.filter((x) => x.nicks.length > 0);
    const { reactions: _old, ...rest } = p;
    posts.set(c.seq, kept.length > 0 ? { ...rest, reactions: kept } : rest);
  }
}
