/**
 * A post as each protocol version sees it. v1 gets exactly v1's chat message (an action as `/me`
 * text, no v2 field); v2 gets the author's `userId` and what applies of `kind`, `replyTo`, `mentions`.
 * Posts by v1 connections have no user: v2 sees them under `v1:NICK`, which no v2 user id can be.
 */
import { type ChatMessage, encode, nickKey, type v2 } from "../../protocol";
import type { Post } from "./engine";

/** The user id v2 shows for a post by a v1 connection. */
export function v1UserId(nick: string): string {
  return `v1:${nick}`;
}

function isPlainV1(post: Post): boolean {
  return post.userId === undefined && post.kind === undefined;
}

export function toV1(post: Post): ChatMessage {
  if (isPlainV1(post) && !("mentions" in post) && !("replyTo" in post)) return post;
  return {
    type: "chat",
    room: post.room,
    seq: post.seq,
    nick: post.nick,
    text: post.kind === "action" ? `/me ${post.text}` : post.text,
    sentAt: post.sentAt,
  };
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

/** A post folded with its changes (issue 12 adds edits, deletes and reactions). */
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
