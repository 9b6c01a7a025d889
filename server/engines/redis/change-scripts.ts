/**
 * The Lua scripts of v2's changes (edits, deletes, reactions, topics) and kicks. A change is one
 * script: it checks the post's state, takes the room's next rev (never burned on a refusal), folds
 * the change into the stored post, keeps the change's wire message, and appends an entry naming
 * its rev to the room's stream, so every process delivers it in the room's one order. The fold is
 * core/posts.ts `applyChange`, written again in Lua; test/redis/changes.test.ts holds the two to
 * the same results.
 *
 * Keys (P is the prefix; see scripts.ts for the rest): P room:R:meta's `rev` (the room's newest rev)
 * and `topic` · P room:R:chg zset rev -> the change's wire message · P room:R:chx zset seq -> "rev",
 * or "rev edit" (the changes of each post: a delete redacts its edits, retention drops them with
 * it) · P room:R:del zset seq -> seq (deleted posts: unread counts subtract them). Changes of
 * trimmed posts go with them (when the next change is stored); a topic's stay.
 *
 * Stream entries: k 'x' (a change: r, its rev; processes read its message from P room:R:chg, as they
 * read posts from P room:R:msgs) and k 'kick' (d, the kick as JSON).
 */
import { PRELUDE } from "./scripts";

/**
 * A post as stored: v1's fields and v2's in the order chat messages have them, then what changes add;
 * a field it does not know last, by name. Values go through cjson (which writes "/" as "\\/": the same
 * value once parsed), whole numbers as integers, lists of strings whole (none is ever empty: cjson
 * would write an empty one as {}).
 */
const ENCODE_POST = `
local ORDER = {'type', 'room', 'seq', 'nick', 'text', 'sentAt', 'userId', 'kind', 'replyTo', 'mentions',
  'editedAt', 'deleted', 'reactions'}
local KNOWN = {}
for _, k in ipairs(ORDER) do KNOWN[k] = true end
local function value(k, v)
  if k == 'reactions' then
    local out = {}
    for i, r in ipairs(v) do
      out[i] = '{"emoji":' .. cjson.encode(r.emoji) .. ',"nicks":' .. cjson.encode(r.nicks) .. ',"ids":' .. cjson.encode(r.ids) .. '}'
    end
    return '[' .. table.concat(out, ',') .. ']'
  end
  if type(v) == 'number' and v == math.floor(v) and math.abs(v) < 2^53 then return string.format('%d', v) end
  return cjson.encode(v)
end
local function encodePost(p)
  local parts = {}
  for _, k in ipairs(ORDER) do
    if p[k] ~= nil then parts[#parts + 1] = '"' .. k .. '":' .. value(k, p[k]) end
  end
  local extra = {}
  for k in pairs(p) do if not KNOWN[k] then extra[#extra + 1] = k end end
  table.sort(extra)
  for _, k in ipairs(extra) do parts[#parts + 1] = cjson.encode(k) .. ':' .. value(k, p[k]) end
  return '{' .. table.concat(parts, ',') .. '}'
end
`;

/**
 * ARGV: P, room, maxlen, at (ISO: an edit's editedAt), head, tail (the change's wire message is head
 * .. rev .. tail), type, then: edit: seq, text · delete: seq · react: seq, emoji, on ('1'/'0'), userId,
 * nick, maxEmoji · topic: topic.
 * Returns {1, rev}, or {0, why}: 'gone' (no such post, or deleted), 'unchanged' (the reaction already
 * stood so), 'full' (a new emoji past maxEmoji).
 *
 * A delete leaves no trace of the text: the stored post loses it (and its mentions, reactions and
 * editedAt); its edits in P room:R:chg become this delete under their own revs (an edit's message
 * cannot have empty text, and its rev must stay); its seq leaves its author's own-posts zset and
 * the mentions zsets, and joins P room:R:del (so unread leaves it out). The stream never held it.
 */
export const CHANGE = `${PRELUDE}${ENCODE_POST}
local room, maxlen, at, head, tail, kind = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local meta, msgs, chg, chx = rk(room, 'meta'), rk(room, 'msgs'), rk(room, 'chg'), rk(room, 'chx')
-- The change gets the next rev, is kept, and its rev goes into the stream.
local function store()
  local rev = redis.call('HINCRBY', meta, 'rev', 1)
  redis.call('ZADD', chg, rev, head .. rev .. tail)
  append(room, maxlen, 'k', 'x', 'r', rev)
  return rev
end
if kind == 'topic' then
  redis.call('HSET', meta, 'topic', ARGV[8])
  return {1, store()}
end

local seq = tonumber(ARGV[8])
local s = string.format('%d', seq)
local raw = redis.call('ZRANGEBYSCORE', msgs, s, s)[1]
if not raw then return {0, 'gone'} end
local p = cjson.decode(raw)
if p.deleted then return {0, 'gone'} end

if kind == 'edit' then
  p.text = ARGV[9]
  p.editedAt = at
elseif kind == 'delete' then
  p.text = ''
  p.deleted = true
  p.mentions, p.editedAt, p.reactions = nil, nil, nil
elseif kind == 'react' then
  local emoji, on, uid, nick, max = ARGV[9], ARGV[10] == '1', ARGV[11], ARGV[12], tonumber(ARGV[13])
  local rs = p.reactions or {}
  local i, k = nil, nil
  for j, r in ipairs(rs) do if r.emoji == emoji then i = j break end end
  if i then for j, id in ipairs(rs[i].ids) do if id == uid then k = j break end end end
  if (k ~= nil) == on then return {0, 'unchanged'} end
  if on and not i then
    if #rs >= max then return {0, 'full'} end
    rs[#rs + 1] = {emoji = emoji, nicks = {nick}, ids = {uid}}
  elseif on then
    table.insert(rs[i].nicks, nick)
    table.insert(rs[i].ids, uid)
  else
    table.remove(rs[i].nicks, k)
    table.remove(rs[i].ids, k)
    if #rs[i].ids == 0 then table.remove(rs, i) end
  end
  if #rs == 0 then p.reactions = nil else p.reactions = rs end
else
  return redis.error_reply('unknown change ' .. tostring(kind))
end

-- Encoded before anything is written: Redis keeps what a script wrote before an error.
local folded = encodePost(p)
local rev = store()
redis.call('ZREMRANGEBYSCORE', msgs, s, s)
redis.call('ZADD', msgs, s, folded)
if kind == 'edit' then redis.call('ZADD', chx, s, rev .. ' edit') else redis.call('ZADD', chx, s, rev) end

if kind == 'delete' then
  -- Its edits become this delete, under their own revs.
  for _, m in ipairs(redis.call('ZRANGEBYSCORE', chx, s, s)) do
    local r = string.match(m, '^(%d+) edit$')
    if r then
      redis.call('ZREMRANGEBYSCORE', chg, r, r)
      redis.call('ZADD', chg, r, head .. r .. tail)
      redis.call('ZREM', chx, m)
      redis.call('ZADD', chx, s, r)
    end
  end
  -- Counts: out of its author's own posts and its mentions, into the deleted.
  if p.userId then redis.call('ZREM', rk(room, 'own:' .. p.userId), s) end
  local mid = rk(room, 'mid')
  for _, m in ipairs(redis.call('ZRANGEBYSCORE', mid, s, s)) do
    redis.call('ZREM', rk(room, 'men:' .. string.sub(m, #s + 2)), s)
  end
  redis.call('ZREMRANGEBYSCORE', mid, s, s)
  redis.call('ZADD', rk(room, 'del'), s, s)
end

-- Retention: the changes of posts the history no longer holds go, and so do their marks.
local oldest = redis.call('ZRANGE', msgs, 0, 0, 'WITHSCORES')[2]
if oldest then
  local below = '(' .. oldest
  for _, m in ipairs(redis.call('ZRANGEBYSCORE', chx, '-inf', below)) do
    local r = string.match(m, '^%d+')
    redis.call('ZREMRANGEBYSCORE', chg, r, r)
  end
  redis.call('ZREMRANGEBYSCORE', chx, '-inf', below)
  redis.call('ZREMRANGEBYSCORE', rk(room, 'del'), '-inf', below)
end
return {1, rev}
`;

/** ARGV: P, room, maxlen, kick JSON. A kick rides the room's stream (never stored). Returns its n. */
export const KICK = `${PRELUDE}
return append(ARGV[2], ARGV[3], 'k', 'kick', 'd', ARGV[4])
`;
