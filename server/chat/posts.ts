/**
 * A post as each protocol version sees it. v1 gets exactly v1's chat message (an action as `/me`
 * text, no v2 field); v2 gets the author's `userId` and what applies of `kind`, `replyTo`, `mentions`.
 * Posts by v1 connections have no user: v2 sees them under `v1:NICK`, which no v2 user id can be.
 */
import { type ChatMessage, encode, nickKey, type v2 } from "../../protocol";
import type { ChangeRequest, Post, StoredReaction } from "./engine";

/** The user id v2 shows for a post by a v1 connection. */
export function v1UserId(nick: string): string {
  return `v1:${nick}`;
}

function isPlainV1(post: Post): boolean {
  return post.userId === undefined && post.kind === undefined;
}

/** v1's view of a post: its current text, `(deleted)` for a deleted one, an action as `/me ...`. */
export function toV1(post: Post): ChatMessage {
  if (isPlainV1(post) && post.mentions === undefined && post.replyTo === undefined && !isChanged(post))
    return post;
  let text = post.kind === "action" ? `/me ${post.text}` : post.text;
  if (post.deleted) text = DELETED_TEXT_V1;
  return { type: "chat", room: post.room, seq: post.seq, nick: post.nick, text, sentAt: post.sentAt };
}

/** What v1 shows for a deleted post, so its seq stays in a gapless history. */
export const DELETED_TEXT_V1 = "(deleted)";

function isChanged(post: Post): boolean {
  return post.editedAt !== undefined || post.deleted === true || post.reactions !== undefined;
}

export function toV2(post: Post): v2.ChatMessage {
  const out: v2.ChatMessage = {
    type: "chat",
    room: post.room,
    seq: post.seq,
    nick: post.nick,
    text: post.text,
    sentAt: post.sentAt,
    userId: post.userId ?? v1UserId(post.nick),
  };
  if (post.kind !== undefined) out.kind = post.kind;
  if (post.replyTo !== undefined) out.replyTo = post.replyTo;
  if (post.mentions !== undefined && post.mentions.length > 0) out.mentions = post.mentions;
  return out;
}

/** A post folded with its changes, as v2's `sync`, `history` and HTTP show it. */
export function toFolded(post: Post): v2.FoldedPost {
  const out: v2.FoldedPost = {
    seq: post.seq,
    nick: post.nick,
    userId: post.userId ?? v1UserId(post.nick),
    text: post.text,
    sentAt: post.sentAt,
  };
  if (post.kind !== undefined) out.kind = post.kind;
  if (post.replyTo !== undefined) out.replyTo = post.replyTo;
  if (post.mentions !== undefined && post.mentions.length > 0) out.mentions = post.mentions;
  if (post.editedAt !== undefined) out.editedAt = post.editedAt;
  if (post.deleted) out.deleted = true;
  if (post.reactions !== undefined && post.reactions.length > 0) {
    out.reactions = post.reactions.map((r) => ({ emoji: r.emoji, nicks: r.nicks }));
  }
  return out;
}

/** The v1 frame of a logged post: the engine's own encoding when it is already v1's. */
export function v1Wire(post: Post, wire: string | undefined): string {
  if (isPlainV1(post) && post.mentions === undefined && post.replyTo === undefined)
    return wire ?? encode(post);
  return encode(toV1(post));
}

export function v2Wire(post: Post): string {
  return JSON.stringify(toV2(post));
}

/** `@name` at the start or after a character that cannot be part of a name. */
const MENTION_RE = /(?:^|[^\p{L}\p{N}_.-])@([\p{L}\p{N}\p{M}_.-]{1,64})/gu;

/**
 * The users a text names as `@nick`, by the same-name rule: their nicks as the room knows them, and
 * the ids of those who are v2 users other than `author`. A trailing `.` or `-` ends a sentence, not a name.
 */
export function findMentions(
  text: string,
  users: ReadonlyMap<string, string>,
  owners: ReadonlyMap<string, string>,
  author: string,
): { nicks: string[]; ids: string[] } {
  const nicks: string[] = [];
  const ids: string[] = [];
  if (!text.includes("@")) return { nicks, ids };
  const seen = new Set<string>();
  for (const m of text.matchAll(MENTION_RE)) {
    let name = m[1] as string;
    let key = nickKey(name);
    while (!users.has(key) && /[.-]$/.test(name)) {
      name = name.slice(0, -1);
      key = nickKey(name);
    }
    const nick = users.get(key);
    if (nick === undefined || seen.has(key)) continue;
    seen.add(key);
    nicks.push(nick);
    const owner = owners.get(key);
    if (owner !== undefined && owner !== author) ids.push(owner);
  }
  return { nicks, ids };
}

/** What a change does to a post: the post as it then stands, or why it does nothing. */
export type Applied = { ok: true; post: Post } | { ok: false; why: "gone" | "unchanged" | "full" };

/**
 * Folds one change into a post (a copy; the argument is left as it was). Engines that fold in
 * JavaScript (local) use it; the Redis engine's script does the same in Lua. `at`: the change's time.
 */
export function applyChange(post: Post | undefined, req: ChangeRequest, at: string): Applied {
  if (req.type === "topic") return { ok: false, why: "unchanged" };
  if (!post || post.deleted) return { ok: false, why: "gone" };
  switch (req.type) {
    case "edit":
      return { ok: true, post: { ...post, text: req.text, editedAt: at } };
    case "delete": {
      const { reactions: _r, mentions: _m, editedAt: _e, ...rest } = post;
      return { ok: true, post: { ...rest, text: "", deleted: true } };
    }
    case "react": {
      const reactions = (post.reactions ?? []).map((r) => ({ ...r, nicks: [...r.nicks], ids: [...r.ids] }));
      const i = reactions.findIndex((r) => r.emoji === req.emoji);
      const held = i >= 0 && (reactions[i]?.ids.includes(req.userId) ?? false);
      if (held === req.on) return { ok: false, why: "unchanged" };
      if (req.on) {
        if (i < 0) {
          if (reactions.length >= req.maxEmoji) return { ok: false, why: "full" };
          reactions.push({ emoji: req.emoji, nicks: [req.nick], ids: [req.userId] });
        } else {
          reactions[i]?.nicks.push(req.nick);
          reactions[i]?.ids.push(req.userId);
        }
      } else {
        const r = reactions[i] as StoredReaction;
        const k = r.ids.indexOf(req.userId);
        r.ids.splice(k, 1);
        r.nicks.splice(k, 1);
        if (r.ids.length === 0) reactions.splice(i, 1);
      }
      const out: Post = { ...post, reactions };
      if (reactions.length === 0) delete out.reactions;
      return { ok: true, post: out };
    }
  }
}

/** The wire message of a stored change. */
export function changeMessage(room: string, rev: number, req: ChangeRequest, at: string): v2.Change {
  switch (req.type) {
    case "edit":
      return { type: "edit", room, rev, seq: req.seq, text: req.text, editedAt: at };
    case "delete":
      return { type: "delete", room, rev, seq: req.seq, by: req.by };
    case "react":
      return { type: "reaction", room, rev, seq: req.seq, emoji: req.emoji, nick: req.nick, on: req.on };
    case "topic":
      return { type: "topic", room, rev, topic: req.topic, nick: req.nick };
  }
}

/**
 * Folds a change as clients get it into a post: what a replica does to its copies of the newest
 * posts (it is not told reactors' ids, so it tells reactors apart by nick).
 */
export function foldWire(post: Post, change: v2.Change): Post {
  switch (change.type) {
    case "edit":
      return { ...post, text: change.text, editedAt: change.editedAt };
    case "delete": {
      const { reactions: _r, mentions: _m, editedAt: _e, ...rest } = post;
      return { ...rest, text: "", deleted: true };
    }
    case "reaction": {
      const req: ChangeRequest = {
        type: "react",
        seq: change.seq,
        emoji: change.emoji,
        on: change.on,
        userId: change.nick,
        nick: change.nick,
        maxEmoji: Number.POSITIVE_INFINITY,
      };
      const byNick = post.reactions?.map((r) => ({ ...r, ids: r.nicks }));
      const applied = applyChange({ ...post, reactions: byNick }, req, "");
      return applied.ok ? applied.post : post;
    }
    case "topic":
      return post;
  }
}
