/**
 * The Lua scripts behind the Redis backend. Every write to a room goes through one of them, so the
 * room's counters, its user hash and its stream change together: a snapshot (one script) is always
 * consistent with a stream position, and the stream is the one total order every process replays.
 *
 * Keys (P is the prefix): P room:R:meta {seq, n, epoch, rev, topic} · P room:R:log stream · P room:R:users
 * {nickKey -> "proc|conn|session|nick"} · P room:R:msgs zset seq -> chat JSON · P sess:T {room, nick,
 * key} · P sess:T:ids {room NUL id -> seq} · P sess:T:idq (their order) · P procs set · P proc:ID
 * (heartbeat, PX) · P proc:ID:rooms set · P guest counter · P rooms zset room -> users (rooms with
 * any) · P beat:last (Redis time of the newest heartbeat of any process) · P sweep:after (no sweeping
 * before this Redis time). Keys are built in Lua from the prefix; on a Redis Cluster every key of a
 * script shares the prefix's hash tag, and the script declares that partition's fence keys
 * (key-space.ts): one slot, and never run while that slot migrates.
 *
 * v2 users (one claim per room and user, shared by all its connections on every process): P room:R:users
 * holds the user's entry as "|@||nick" (no process, connection or session of its own) · P room:R:owners
 * {userId -> nickKey} · P room:R:uc:U set of "proc|conn" (the connections sharing user U's claim) ·
 * P room:R:pc:ID {conn -> userId} (process ID's connections in user claims, for its sweep and
 * reconcile) · P room:R:own:U and P room:R:men:U zsets of seqs (U's own posts, the posts that mention U:
 * what unread counts subtract and mentions count), trimmed with the room's history · P room:R:mid zset
 * seq -> "seq|U" (the v2 users each post mentions, so a delete can take them out of their counts).
 * Changes (edits, deletes, reactions, topics): change-scripts.ts.
 *
 * A post's text is kept in one place only, its member of P room:R:msgs: the stream's chat entry
 * names its seq (k 'c', s), and each process reads the posts its stream entries name
 * (stream-follower.ts). So a delete, which rewrites that member, leaves the text nowhere: entries
 * taken out of a stream (XDEL) stay in its memory, and in DUMP, until their whole node goes.
 * Retention moves the posts it trims to P room:R:trimmed (zset seq -> JSON, the newest MAXLEN +
 * 1000: every chat the stream may still name), where processes behind it read them.
 * `append` returns the entry's number n: the core waits for that entry before a welcome.
 */

/** Helpers shared by every script: key names and appending one entry with its per-room number `n`. */
export const PRELUDE = `
local P = ARGV[1]
local function rk(room, part) return P .. 'room:' .. room .. ':' .. part end
local function sk(token, part) if part then return P .. 'sess:' .. token .. ':' .. part end return P .. 'sess:' .. token end
local function append(room, maxlen, ...)
  local n = redis.call('HINCRBY', rk(room, 'meta'), 'n', 1)
  redis.call('XADD', rk(room, 'log'), 'MAXLEN', '~', maxlen, '*', 'n', n, ...)
  return n
end
local function owner(v)
  local proc, conn, sess, nick = string.match(v, '^([^|]*)|([^|]*)|([^|]*)|(.*)$')
  return {proc = proc, conn = conn, sess = sess, nick = nick}
end
local function persistSession(token)
  redis.call('PERSIST', sk(token)); redis.call('PERSIST', sk(token, 'ids')); redis.call('PERSIST', sk(token, 'idq'))
end
local function expireSession(token, ttl)
  redis.call('PEXPIRE', sk(token), ttl); redis.call('PEXPIRE', sk(token, 'ids'), ttl); redis.call('PEXPIRE', sk(token, 'idq'), ttl)
end
-- P rooms follows the users hash of every room, in every script that adds or removes a user.
local function recount(room)
  local n = redis.call('HLEN', rk(room, 'users'))
  if n > 0 then redis.call('ZADD', P .. 'rooms', n, room) else redis.call('ZREM', P .. 'rooms', room) end
end
local function removeUser(room, maxlen, key, nick)
  redis.call('HDEL', rk(room, 'users'), key)
  append(room, maxlen, 'k', 'p', 'd', '{"event":"leave","nick":' .. cjson.encode(nick) .. '}')
  recount(room)
end
-- The entry of connection conn in a users hash: at key, else where its session says it is in room.
local function entryOf(room, key, conn, token)
  local users = rk(room, 'users')
  local function mine(k)
    if not k then return nil end
    local cur = redis.call('HGET', users, k)
    if not cur then return nil end
    local o = owner(cur)
    if o.conn ~= conn then return nil end
    return o
  end
  local o = mine(key)
  if o then return key, o end
  if token == '' then return nil end
  local s = redis.call('HMGET', sk(token), 'room', 'key')
  if s[1] ~= room or not s[2] then return nil end
  o = mine(s[2])
  if o then return s[2], o end
  return nil
end
-- v2: the key of user uid's connections in room, and of process proc's connections in user claims there.
local function uk(room, uid) return P .. 'room:' .. room .. ':uc:' .. uid end
local function pk(room, proc) return P .. 'room:' .. room .. ':pc:' .. proc end
-- A v2 user's entry in a users hash: no process, connection or session of its own.
local function isUserEntry(v) return string.sub(v, 1, 4) == '|@||' end
local function userEvent(room, maxlen, uid, json)
  return append(room, maxlen, 'k', 'p', 'u', uid, 'd', json)
end
-- The entry of user uid in room (its key and nick), if it has one.
local function userEntry(room, uid)
  local key = redis.call('HGET', rk(room, 'owners'), uid)
  if not key then return nil end
  local v = redis.call('HGET', rk(room, 'users'), key)
  if not v or not isUserEntry(v) then return nil end
  return key, owner(v).nick
end
-- Gives a user's claim up: its entry goes, with a leave event. Returns 1 if it had one.
local function dropUser(room, maxlen, uid)
  local key, nick = userEntry(room, uid)
  redis.call('HDEL', rk(room, 'owners'), uid)
  redis.call('DEL', uk(room, uid))
  if not key then return 0 end
  redis.call('HDEL', rk(room, 'users'), key)
  userEvent(room, maxlen, uid, '{"event":"leave","nick":' .. cjson.encode(nick) .. '}')
  recount(room)
  return 1
end
-- Takes connection conn of process proc out of user uid's claim; the last connection out gives
-- the claim up. Returns 1 if the user left.
local function dropConn(room, maxlen, proc, conn, uid)
  redis.call('HDEL', pk(room, proc), conn)
  if redis.call('SREM', uk(room, uid), proc .. '|' .. conn) == 1 and redis.call('SCARD', uk(room, uid)) == 0 then
    return dropUser(room, maxlen, uid)
  end
  return 0
end
-- Makes conn of proc one of user uid's connections in room.
local function holdConn(room, proc, conn, uid)
  redis.call('SADD', uk(room, uid), proc .. '|' .. conn)
  redis.call('HSET', pk(room, proc), conn, uid)
  redis.call('SADD', P .. 'proc:' .. proc .. ':rooms', room)
end
-- A new claim for user uid under key/nick (free: the caller checked), with a join event.
local function claimUser(room, maxlen, uid, key, nick)
  redis.call('HSET', rk(room, 'users'), key, '|@||' .. nick)
  redis.call('HSET', rk(room, 'owners'), uid, key)
  recount(room)
  return userEvent(room, maxlen, uid, '{"event":"join","nick":' .. cjson.encode(nick) .. '}')
end
-- Redis's own clock, in ms: heartbeats are judged by it, never by a process's.
local function clock()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
`;

/**
 * ARGV: P, room, maxlen, window, keep (messages kept in the room's history; 0: all), cutoff (an ISO
 * time: messages sent before it go; '' keeps them), then per message: session, clientId ('' for none), head, tail; a v2 post's session is 'u:' and its author's
 * id, and two more fields follow: m, then the m user ids its text mentions.
 * Stores each message (seq = HINCRBY) unless the session already sent that id in that room; a v2
 * post's seq also goes into its author's own-posts zset and into the mentions zset of each user it
 * mentions (never the author's), so counts never read the history.
 * Returns one number per message: its new seq, or minus the seq it got the first time.
 */
export const CHAT = `${PRELUDE}
local room, maxlen, window, keep, cutoff = ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6]
local out = {}
local touched = {}
local i = 7
while i <= #ARGV do
  local sess, cid, head, tail = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local uid, first, m = nil, 0, 0
  if string.sub(sess, 1, 2) == 'u:' then
    uid, m, first = string.sub(sess, 3), tonumber(ARGV[i + 4]), i + 5
    i = first + m
  else
    i = i + 4
  end
  local ref = room .. '\\0' .. cid
  local seen = false
  if cid ~= '' then seen = redis.call('HGET', sk(sess, 'ids'), ref) end
  if seen then
    out[#out + 1] = -tonumber(seen)
  else
    local seq = redis.call('HINCRBY', rk(room, 'meta'), 'seq', 1)
    local wire = head .. seq .. tail
    append(room, maxlen, 'k', 'c', 's', seq)
    redis.call('ZADD', rk(room, 'msgs'), seq, wire)
    if uid then
      local own = rk(room, 'own:' .. uid)
      redis.call('ZADD', own, seq, seq)
      touched[own] = true
      for j = first, first + m - 1 do
        if ARGV[j] ~= uid then
          local men = rk(room, 'men:' .. ARGV[j])
          redis.call('ZADD', men, seq, seq)
          redis.call('ZADD', rk(room, 'mid'), seq, seq .. '|' .. ARGV[j])
          touched[men] = true
          touched[rk(room, 'mid')] = true
        end
      end
    end
    if cid ~= '' then
      redis.call('HSET', sk(sess, 'ids'), ref, seq)
      redis.call('RPUSH', sk(sess, 'idq'), ref)
      if redis.call('LLEN', sk(sess, 'idq')) > window then
        redis.call('HDEL', sk(sess, 'ids'), redis.call('LPOP', sk(sess, 'idq')))
      end
    end
    out[#out + 1] = seq
  end
end
-- Retention by count (the newest keep stay; 0 keeps all) and by age (sent before cutoff go, at most
-- AGE_STEP a call: the rest with the next chats); the newest one always stays. What goes waits in
-- P room:R:trimmed, as long as the stream may still name it, for processes yet to read it. The
-- users' zsets written now are trimmed to the same seqs (the others when next written; counts
-- ignore what lies below the history anyway). ISO times in UTC compare as strings.
local msgs, trimmed, window = rk(room, 'msgs'), rk(room, 'trimmed'), tonumber(maxlen) + 1000
local cut = 0
if keep > 0 then cut = math.max(0, redis.call('ZCARD', msgs) - keep) end
if cutoff ~= '' then
  local stored = redis.call('ZCARD', msgs)
  local oldest = redis.call('ZRANGE', msgs, cut, cut + 99)
  for j = 1, #oldest do
    local at = string.match(oldest[j], '"sentAt":"([^"]*)"')
    if cut >= stored - 1 or not at or at >= cutoff then break end
    cut = cut + 1
  end
end
if cut > 0 then
  local gone = redis.call('ZRANGE', msgs, math.max(0, cut - window), cut - 1, 'WITHSCORES')
  for j = 1, #gone, 2 do redis.call('ZADD', trimmed, gone[j + 1], gone[j]) end
  redis.call('ZREMRANGEBYRANK', msgs, 0, cut - 1)
  if redis.call('ZCARD', trimmed) > window then redis.call('ZREMRANGEBYRANK', trimmed, 0, -(window + 1)) end
end
if (keep > 0 or cutoff ~= '') and next(touched) then
  local oldest = redis.call('ZRANGE', msgs, 0, 0, 'WITHSCORES')[2]
  for key in pairs(touched) do redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. oldest) end
end
return out
`;

/**
 * ARGV: P, room, recent. Returns {seq, n, lastStreamId, userValues, newest `recent` chats descending
 * (folded: as their changes left them), epoch, {userId, nick, ...} of the v2 users in the room, rev
 * (the newest change's, 0 for none), topic ('' for none)}.
 */
export const SNAPSHOT = `${PRELUDE}
local room, recent = ARGV[2], tonumber(ARGV[3])
-- The room's history generation: made with its meta hash, so a Redis that lost its data makes a new one.
local t = redis.call('TIME')
redis.call('HSETNX', rk(room, 'meta'), 'epoch', t[1] .. '-' .. t[2])
local m = redis.call('HMGET', rk(room, 'meta'), 'seq', 'n', 'epoch', 'rev', 'topic')
local last = redis.call('XREVRANGE', rk(room, 'log'), '+', '-', 'COUNT', 1)
local lastId = '0-0'
if #last > 0 then lastId = last[1][1] end
local owners = {}
local flat = redis.call('HGETALL', rk(room, 'owners'))
for i = 1, #flat, 2 do
  local key, nick = userEntry(room, flat[i])
  if key then owners[#owners + 1] = flat[i]; owners[#owners + 1] = nick end
end
return {tonumber(m[1] or 0), tonumber(m[2] or 0), lastId, redis.call('HVALS', rk(room, 'users')),
  redis.call('ZREVRANGE', rk(room, 'msgs'), 0, recent - 1), m[3], owners, tonumber(m[4] or 0), m[5] or ''}
`;

/**
 * ARGV: P, room, maxlen, proc, conn, token, then candidate pairs (nickKey, nick) in order of
 * preference. If the session's entry in the room still belongs to this token, the new connection
 * takes it over silently ('r' entry, so its old process closes the stale connection with 4001).
 * Otherwise the first free candidate is claimed with a join. Keys are computed by the caller (nickKey
 * is not Lua's to compute), guest names too (GUEST hands out their numbers).
 * Returns {'j', nick, n} | {'r', nick, n} | {'full'}, n being the number of the entry logged.
 */
export const CLAIM = `${PRELUDE}
local room, maxlen, proc, conn, token = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local users = rk(room, 'users')
local function own(key, nick)
  redis.call('HSET', users, key, proc .. '|' .. conn .. '|' .. token .. '|' .. nick)
  redis.call('HSET', sk(token), 'room', room, 'nick', nick, 'key', key)
  persistSession(token)
  redis.call('SADD', P .. 'proc:' .. proc .. ':rooms', room)
  recount(room)
end
local s = redis.call('HMGET', sk(token), 'room', 'key')
if s[1] == room and s[2] then
  local cur = redis.call('HGET', users, s[2])
  if cur then
    local o = owner(cur)
    if o.sess == token then
      own(s[2], o.nick)
      local n = append(room, maxlen, 'k', 'r', 'f', o.conn, 'fp', o.proc)
      return {'r', o.nick, n}
    end
  end
end
for i = 7, #ARGV, 2 do
  if redis.call('HEXISTS', users, ARGV[i]) == 0 then
    own(ARGV[i], ARGV[i + 1])
    local n = append(room, maxlen, 'k', 'p', 'd', '{"event":"join","nick":' .. cjson.encode(ARGV[i + 1]) .. '}')
    return {'j', ARGV[i + 1], n}
  end
end
return {'full'}
`;

/**
 * ARGV: P, room, epoch. The room's log went back under this epoch (a failover lost its newest writes,
 * which some clients may have seen): a new epoch, unless another process made one already. Returns 1
 * if it made it. The seqs that were lost are used again, under the new epoch only.
 */
export const NEW_EPOCH = `${PRELUDE}
local room, epoch = ARGV[2], ARGV[3]
if redis.call('HGET', rk(room, 'meta'), 'epoch') ~= epoch then return 0 end
local t = redis.call('TIME')
redis.call('HSET', rk(room, 'meta'), 'epoch', t[1] .. '-' .. t[2])
return 1
`;

/** ARGV: P. The next guest number (guest-N names are claimed like any other, N by N). */
export const GUEST = `return redis.call('INCR', ARGV[1] .. 'guest')`;

/**
 * ARGV: P, room, maxlen, key, conn, ending ('1': the session ends), ttl ms, token, copies ('1': the
 * layout is partitioned, sessions are copied per partition). Removes the entry
 * only if this connection still owns it (a resumed one may have taken it over). The entry is looked
 * for at `key`, then where the session says it is: a rename that ran in Redis before its answer
 * reached the process moved it there. With `ending`, the session starts to expire unless another
 * connection holds it now (so also after a claim whose answer never came); without, and with
 * `copies`, a session still recorded in this room starts to expire too (a claim in this partition
 * persists it again). Returns 1 if it left.
 */
export const LEAVE = `${PRELUDE}
local room, maxlen, key, conn, ending, ttl, token, copies = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9]
local found, o = entryOf(room, key, conn, token)
local left = 0
if found then
  removeUser(room, maxlen, found, o.nick)
  left = 1
  if token == '' then token = o.sess end
end
if ending == '1' and token ~= '' then
  local s = redis.call('HMGET', sk(token), 'room', 'key')
  local held = false
  if s[1] and s[2] then
    local cur = redis.call('HGET', rk(s[1], 'users'), s[2])
    if cur then
      local h = owner(cur)
      held = h.sess == token and h.conn ~= conn
    end
  end
  if not held then expireSession(token, ttl) end
elseif copies == '1' and token ~= '' and redis.call('HGET', sk(token), 'room') == room then
  -- Partitioned (key-space.ts): a move to a room of another partition makes the session a copy
  -- there (its secret copied by the engine), and this one must neither outlive its use nor take a
  -- token whose secret moved on. Moving within the partition, the claim there persists it again.
  redis.call('HDEL', sk(token), 'secret')
  expireSession(token, ttl)
end
return left
`;

/**
 * ARGV: P, room, maxlen, oldKey, newKey, newNick, conn, token. The entry is found as LEAVE finds it.
 * Already under `newNick` (a retry of a rename that ran late): 'ok' with no event. The event names
 * the nickname Redis had. Returns {'ok'} | {'taken'} | {'gone'}.
 */
export const RENAME = `${PRELUDE}
local room, maxlen, oldKey, newKey, newNick, conn, token = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8]
local users = rk(room, 'users')
local key, o = entryOf(room, oldKey, conn, token)
if not key then return {'gone'} end
if o.nick == newNick then return {'ok'} end
if newKey ~= key and redis.call('HEXISTS', users, newKey) == 1 then return {'taken'} end
-- A ban in force on the new nick (as a v1 nick, or held by a banned v2 user) keeps it out.
local t = redis.call('TIME')
local nowMs = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function inForce(raw)
  if not raw then return false end
  local u = cjson.decode(raw)['until']
  return u == nil or u == cjson.null or u > nowMs
end
if inForce(redis.call('HGET', rk(room, 'bans'), 'v1:' .. newKey)) then return {'banned'} end
local holders = redis.call('HGET', rk(room, 'bannick'), newKey)
if holders then
  for _, uid in ipairs(cjson.decode(holders)) do
    if inForce(redis.call('HGET', rk(room, 'bans'), uid)) then return {'banned'} end
  end
end
redis.call('HDEL', users, key)
redis.call('HSET', users, newKey, o.proc .. '|' .. conn .. '|' .. o.sess .. '|' .. newNick)
redis.call('HSET', sk(o.sess), 'nick', newNick, 'key', newKey)
append(room, maxlen, 'k', 'p', 'd', '{"event":"nick","from":' .. cjson.encode(o.nick) .. ',"nick":' .. cjson.encode(newNick) .. '}')
return {'ok'}
`;

/**
 * ARGV: P, room, maxlen, proc, conn, userId, nickKey, nick. v2: the connection joins its
 * user's claim in the room. The user's first connection (anywhere) makes the claim with a join event;
 * later ones log nothing. Returns {'j', nick, n} (n: the join's entry), {'m', nick, n} (the claim
 * stood, under nick; n: the room's newest entry), or {'taken'} (someone else holds nickKey).
 */
export const CLAIM_USER = `${PRELUDE}
local room, maxlen, proc, conn, uid, key, nick = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8]
local held, heldNick = userEntry(room, uid)
if held then
  holdConn(room, proc, conn, uid)
  return {'m', heldNick, tonumber(redis.call('HGET', rk(room, 'meta'), 'n') or 0)}
end
if redis.call('HEXISTS', rk(room, 'users'), key) == 1 then return {'taken'} end
holdConn(room, proc, conn, uid)
return {'j', nick, claimUser(room, maxlen, uid, key, nick)}
`;

/**
 * ARGV: P, room, maxlen, proc, conn. v2: the connection leaves its user's claim; the last one out
 * logs the leave. Idempotent. Returns 1 if the user left.
 */
export const LEAVE_USER = `${PRELUDE}
local room, maxlen, proc, conn = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local uid = redis.call('HGET', pk(room, proc), conn)
if not uid then return 0 end
return dropConn(room, maxlen, proc, conn, uid)
`;

/**
 * ARGV: P, room, maxlen, proc, conn, userId, newKey, newNick. v2: renames the user's claim, if conn
 * is one of its connections: one nick event, with the user's id. Returns {'ok'} | {'taken'} | {'gone'}.
 */
export const RENAME_USER = `${PRELUDE}
local room, maxlen, proc, conn, uid, newKey, newNick = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8]
if redis.call('SISMEMBER', uk(room, uid), proc .. '|' .. conn) == 0 then return {'gone'} end
local key, nick = userEntry(room, uid)
if not key then return {'gone'} end
if nick == newNick then return {'ok'} end
local users = rk(room, 'users')
if newKey ~= key and redis.call('HEXISTS', users, newKey) == 1 then return {'taken'} end
-- A ban in force on the new nick (as a v1 nick, or held by a banned v2 user) keeps it out.
local t = redis.call('TIME')
local nowMs = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function inForce(raw)
  if not raw then return false end
  local u = cjson.decode(raw)['until']
  return u == nil or u == cjson.null or u > nowMs
end
if inForce(redis.call('HGET', rk(room, 'bans'), 'v1:' .. newKey)) then return {'banned'} end
local holders = redis.call('HGET', rk(room, 'bannick'), newKey)
if holders then
  for _, uid in ipairs(cjson.decode(holders)) do
    if inForce(redis.call('HGET', rk(room, 'bans'), uid)) then return {'banned'} end
  end
end
redis.call('HDEL', users, key)
redis.call('HSET', users, newKey, '|@||' .. newNick)
redis.call('HSET', rk(room, 'owners'), uid, newKey)
userEvent(room, maxlen, uid, '{"event":"nick","from":' .. cjson.encode(nick) .. ',"nick":' .. cjson.encode(newNick) .. '}')
return {'ok'}
`;

/** ARGV: P, room, maxlen, conn, typingJson. Typing rides the stream too, so it keeps the room's order. */
export const TYPING = `${PRELUDE}
return append(ARGV[2], ARGV[3], 'k', 't', 'c', ARGV[4], 'd', ARGV[5])
`;

/**
 * Judging heartbeats after Redis itself was away (frozen, down, restarted): every heartbeat key may
 * have expired meanwhile, the live processes' as much as the dead ones'. So when no process at all
 * has beaten for half an expiry (by Redis's clock), nobody is swept for one expiry from now: time for
 * every live process to beat again. A process alone late is still swept on time.
 */
const GRACE = `
local function graceAfterSilence(now, ttl)
  local last = tonumber(redis.call('GET', P .. 'beat:last') or '0')
  if now - last > ttl / 2 then
    local after = tonumber(redis.call('GET', P .. 'sweep:after') or '0')
    if after < now + ttl then redis.call('SET', P .. 'sweep:after', now + ttl) end
  end
end
`;

/**
 * ARGV: P, proc, ttl ms, registered ('1' once this process has registered). Returns 0 when this
 * process was declared dead and swept meanwhile (its users were removed: it must claim them again).
 */
export const HEARTBEAT = `${PRELUDE}${GRACE}
local proc, ttl, registered = ARGV[2], tonumber(ARGV[3]), ARGV[4]
local now = clock()
graceAfterSilence(now, ttl)
redis.call('SET', P .. 'beat:last', now)
if registered == '1' and redis.call('SISMEMBER', P .. 'procs', proc) == 0 then return 0 end
redis.call('SADD', P .. 'procs', proc)
redis.call('SET', P .. 'proc:' .. proc, '1', 'PX', ttl)
return 1
`;

/**
 * ARGV: P, maxlen, session ttl ms, only ('' for every dead process, or one process id to retire),
 * self (the sweeping process, never swept by itself), presence ttl ms. Removes the users of processes
 * whose heartbeat expired, with a leave event each (a v2 user leaves only with its last connection),
 * and forgets those processes (not while the grace after a silence lasts). Returns the number of
 * users removed.
 */
export const SWEEP = `${PRELUDE}${GRACE}
local maxlen, ttl, only, self, presenceTtl = ARGV[2], ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6])
local removed = 0
local procs = redis.call('SMEMBERS', P .. 'procs')
if only ~= '' then
  procs = {only}
else
  local now = clock()
  graceAfterSilence(now, presenceTtl)
  if now < tonumber(redis.call('GET', P .. 'sweep:after') or '0') then return 0 end
end
for _, proc in ipairs(procs) do
  if only ~= '' or (proc ~= self and redis.call('EXISTS', P .. 'proc:' .. proc) == 0) then
    local roomsKey = P .. 'proc:' .. proc .. ':rooms'
    for _, room in ipairs(redis.call('SMEMBERS', roomsKey)) do
      local flat = redis.call('HGETALL', rk(room, 'users'))
      for i = 1, #flat, 2 do
        local o = owner(flat[i + 1])
        if o.proc == proc then
          removeUser(room, maxlen, flat[i], o.nick)
          expireSession(o.sess, ttl)
          removed = removed + 1
        end
      end
      -- Its connections in v2 users' claims: a user whose last connection it was leaves.
      local pc = redis.call('HGETALL', pk(room, proc))
      for i = 1, #pc, 2 do removed = removed + dropConn(room, maxlen, proc, pc[i], pc[i + 1]) end
    end
    redis.call('DEL', roomsKey, P .. 'proc:' .. proc)
    redis.call('SREM', P .. 'procs', proc)
  end
end
return removed
`;

/**
 * Puts one room's users hash in agreement with what this process holds there. ARGV: P, room, maxlen,
 * proc, session ttl ms, then per connection of this process in the room: conn, session, key, nick,
 * userId ('' for v1; session and userId '' for a connection whose claim is in flight: its entry, if
 * any, is left alone).
 * - An entry of this process for a connection not listed (its leave was lost, or its claim was given
 *   up after its answer never came) is removed with a leave event, and its session starts to expire;
 *   a connection not listed in a v2 user's claim leaves it (the last one out logs the leave).
 * - A listed connection without an entry (removed while this process was presumed dead) claims its
 *   nickname again with a join event if it is free; else the reply says 'r' (its session is held by
 *   another connection: resumed elsewhere) or 't' (someone else took the name). A v2 connection
 *   whose user still has its claim (held by its other connections) just joins it again ('j', silent).
 * - A listed connection whose entry has another nickname (a rename that ran after its answer was
 *   given up, or one by another connection of its user) gets 'a' and the nickname Redis has.
 * Does nothing while this process is not registered (a sweep may still remove it): {'unregistered'}.
 * Returns {'ok', removed, then kind, conn[, nick] ...}.
 */
export const RECONCILE = `${PRELUDE}
local room, maxlen, proc, ttl = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if redis.call('SISMEMBER', P .. 'procs', proc) == 0 then return {'unregistered'} end
local users = rk(room, 'users')
local listed = {}
for i = 6, #ARGV, 5 do listed[ARGV[i]] = true end
local found = {}
local removed, mine = 0, 0
local flat = redis.call('HGETALL', users)
for i = 1, #flat, 2 do
  local o = owner(flat[i + 1])
  if o.proc == proc then
    if listed[o.conn] then
      found[o.conn] = o.nick
      mine = mine + 1
    else
      removeUser(room, maxlen, flat[i], o.nick)
      expireSession(o.sess, ttl)
      removed = removed + 1
    end
  end
end
local inClaim = {}
local pc = redis.call('HGETALL', pk(room, proc))
for i = 1, #pc, 2 do
  if listed[pc[i]] then inClaim[pc[i]] = true
  else removed = removed + dropConn(room, maxlen, proc, pc[i], pc[i + 1]) end
end
local out = {'ok', removed}
local function note(what, conn, nick)
  out[#out + 1] = what; out[#out + 1] = conn
  if nick then out[#out + 1] = nick end
end
for i = 6, #ARGV, 5 do
  local conn, sess, key, nick, uid = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  if uid ~= '' then
    local heldKey, heldNick = userEntry(room, uid)
    if heldKey then
      if not inClaim[conn] then note('j', conn) end
      holdConn(room, proc, conn, uid)
      mine = mine + 1
      if heldNick ~= nick then note('a', conn, heldNick) end
    elseif redis.call('HEXISTS', users, key) == 0 then
      holdConn(room, proc, conn, uid)
      claimUser(room, maxlen, uid, key, nick)
      mine = mine + 1
      note('j', conn)
    else
      if inClaim[conn] then
        redis.call('HDEL', pk(room, proc), conn)
        redis.call('SREM', uk(room, uid), proc .. '|' .. conn)
      end
      note('t', conn)
    end
  elseif sess ~= '' then
    if found[conn] then
      if found[conn] ~= nick then note('a', conn, found[conn]) end
    else
      local cur = redis.call('HGET', users, key)
      if not cur then
        redis.call('HSET', users, key, proc .. '|' .. conn .. '|' .. sess .. '|' .. nick)
        local s = redis.call('HGET', sk(sess), 'room')
        if not s or s == room then redis.call('HSET', sk(sess), 'room', room, 'nick', nick, 'key', key) end
        persistSession(sess)
        append(room, maxlen, 'k', 'p', 'd', '{"event":"join","nick":' .. cjson.encode(nick) .. '}')
        mine = mine + 1
        note('j', conn)
      elseif owner(cur).sess == sess then
        note('r', conn)
      else
        note('t', conn)
      end
    end
  end
end
if mine > 0 or redis.call('HLEN', pk(room, proc)) > 0 then redis.call('SADD', P .. 'proc:' .. proc .. ':rooms', room)
else redis.call('SREM', P .. 'proc:' .. proc .. ':rooms', room) end
recount(room)
return out
`;

/**
 * ARGV: P, sid, from, to. A session's resume token is `sid.secret`; the secret lives in its hash.
 * Sets it to `to` only if it is `from` now (`from` '' for a session that has none yet). Returns 1 if set.
 */
export const ROTATE = `
local k = ARGV[1] .. 'sess:' .. ARGV[2]
local cur = redis.call('HGET', k, 'secret')
if (cur or '') ~= ARGV[3] then return 0 end
redis.call('HSET', k, 'secret', ARGV[4])
return 1
`;

/**
 * ARGV: P, client, sid, now ms, cap, keep ms. Counts a new session against its client address: past
 * `cap`, that address's oldest ended sessions (their keys expiring) are forgotten at once; live ones
 * stay. The per-address set itself expires `keep` ms after its last new session.
 */
export const SESSION_CAP = `
local P, client, sid, now, cap, keep = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6]
local z = P .. 'client:' .. client .. ':sess'
redis.call('ZADD', z, now, sid)
redis.call('PEXPIRE', z, keep)
local excess = redis.call('ZCARD', z) - cap
if excess <= 0 then return 0 end
local forgotten = 0
for _, s in ipairs(redis.call('ZRANGE', z, 0, excess + 99)) do
  if excess <= 0 then break end
  local k = P .. 'sess:' .. s
  local ttl = redis.call('PTTL', k)
  if ttl == -2 then
    redis.call('ZREM', z, s)
    excess = excess - 1
  elseif ttl > 0 then
    redis.call('DEL', k, k .. ':ids', k .. ':idq')
    redis.call('ZREM', z, s)
    excess = excess - 1
    forgotten = forgotten + 1
  end
end
return forgotten
`;
