/**
 * The Lua scripts behind the Redis backend. Every write to a room goes through one of them, so the
 * room's counters, its user hash and its stream change together: a snapshot (one script) is always
 * consistent with a stream position, and the stream is the one total order every process replays.
 *
 * Keys (P is the prefix): P room:R:meta {seq, n} · P room:R:log stream · P room:R:users
 * {nickKey -> "proc|conn|session|nick"} · P room:R:msgs zset seq -> chat JSON · P sess:T {room, nick,
 * key} · P sess:T:ids {room NUL id -> seq} · P sess:T:idq (their order) · P procs set · P proc:ID
 * (heartbeat, PX) · P proc:ID:rooms set · P guest counter · P rooms zset room -> users (rooms with
 * any). Standalone Redis only (keys are built in Lua).
 * `append` returns the entry's number n: the core waits for that entry before a welcome.
 */

/** Helpers shared by every script: key names and appending one entry with its per-room number `n`. */
const PRELUDE = `
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
`;

/**
 * ARGV: P, room, maxlen, window, then per message: session, clientId ('' for none), head, tail.
 * Stores each message (seq = HINCRBY) unless the session already sent that id in that room.
 * Returns one number per message: its new seq, or minus the seq it got the first time.
 */
export const CHAT = `${PRELUDE}
local room, maxlen, window = ARGV[2], ARGV[3], tonumber(ARGV[4])
local out = {}
for i = 5, #ARGV, 4 do
  local sess, cid, head, tail = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local ref = room .. '\\0' .. cid
  local seen = false
  if cid ~= '' then seen = redis.call('HGET', sk(sess, 'ids'), ref) end
  if seen then
    out[#out + 1] = -tonumber(seen)
  else
    local seq = redis.call('HINCRBY', rk(room, 'meta'), 'seq', 1)
    local wire = head .. seq .. tail
    append(room, maxlen, 'k', 'c', 's', seq, 'd', wire)
    redis.call('ZADD', rk(room, 'msgs'), seq, wire)
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
return out
`;

/** ARGV: P, room, recent. Returns {seq, n, lastStreamId, userValues, newest `recent` chats descending}. */
export const SNAPSHOT = `${PRELUDE}
local room, recent = ARGV[2], tonumber(ARGV[3])
local m = redis.call('HMGET', rk(room, 'meta'), 'seq', 'n')
local last = redis.call('XREVRANGE', rk(room, 'log'), '+', '-', 'COUNT', 1)
local lastId = '0-0'
if #last > 0 then lastId = last[1][1] end
return {tonumber(m[1] or 0), tonumber(m[2] or 0), lastId, redis.call('HVALS', rk(room, 'users')),
  redis.call('ZREVRANGE', rk(room, 'msgs'), 0, recent - 1)}
`;

/**
 * ARGV: P, room, maxlen, proc, conn, token, guest ('1': wants a guest name), then candidate pairs
 * (nickKey, nick) in order of preference. If the session's entry in the room still belongs to this
 * token, the new connection takes it over silently ('r' entry, so its old process closes the stale
 * connection with 4001). Otherwise the first free candidate (or guest-N) is claimed with a join.
 * Returns {'j', nick, n} | {'r', nick, n} | {'full'}, n being the number of the entry logged.
 */
export const CLAIM = `${PRELUDE}
local room, maxlen, proc, conn, token, guest = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
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
local key, nick = false, false
if guest == '1' then
  repeat
    local g = redis.call('INCR', P .. 'guest')
    nick = 'guest-' .. g
    key = nick
  until redis.call('HEXISTS', users, key) == 0
else
  for i = 8, #ARGV, 2 do
    if redis.call('HEXISTS', users, ARGV[i]) == 0 then key, nick = ARGV[i], ARGV[i + 1]; break end
  end
end
if not key then return {'full'} end
own(key, nick)
local n = append(room, maxlen, 'k', 'p', 'd', '{"event":"join","nick":' .. cjson.encode(nick) .. '}')
return {'j', nick, n}
`;

/**
 * ARGV: P, room, maxlen, key, conn, ending ('1': the session ends), ttl ms. Removes the entry only
 * if this connection still owns it (a resumed one may have taken it over). Returns 1 if it left.
 */
export const LEAVE = `${PRELUDE}
local room, maxlen, key, conn, ending, ttl = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local cur = redis.call('HGET', rk(room, 'users'), key)
if not cur then return 0 end
local o = owner(cur)
if o.conn ~= conn then return 0 end
removeUser(room, maxlen, key, o.nick)
if ending == '1' then expireSession(o.sess, ttl) end
return 1
`;

/** ARGV: P, room, maxlen, oldKey, newKey, newNick, conn, eventJson. Returns {'ok'} | {'taken'} | {'gone'}. */
export const RENAME = `${PRELUDE}
local room, maxlen, oldKey, newKey, newNick, conn, data = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8]
local users = rk(room, 'users')
local cur = redis.call('HGET', users, oldKey)
if not cur then return {'gone'} end
local o = owner(cur)
if o.conn ~= conn then return {'gone'} end
if newKey ~= oldKey and redis.call('HEXISTS', users, newKey) == 1 then return {'taken'} end
redis.call('HDEL', users, oldKey)
redis.call('HSET', users, newKey, o.proc .. '|' .. conn .. '|' .. o.sess .. '|' .. newNick)
redis.call('HSET', sk(o.sess), 'nick', newNick, 'key', newKey)
append(room, maxlen, 'k', 'p', 'd', data)
return {'ok'}
`;

/** ARGV: P, room, maxlen, conn, typingJson. Typing rides the stream too, so it keeps the room's order. */
export const TYPING = `${PRELUDE}
return append(ARGV[2], ARGV[3], 'k', 't', 'c', ARGV[4], 'd', ARGV[5])
`;

/**
 * ARGV: P, proc, ttl ms, registered ('1' once this process has registered). Returns 0 when this
 * process was declared dead and swept meanwhile (its users were removed: it must resync them).
 */
export const HEARTBEAT = `${PRELUDE}
local proc, ttl, registered = ARGV[2], ARGV[3], ARGV[4]
if registered == '1' and redis.call('SISMEMBER', P .. 'procs', proc) == 0 then return 0 end
redis.call('SADD', P .. 'procs', proc)
redis.call('SET', P .. 'proc:' .. proc, '1', 'PX', ttl)
return 1
`;

/**
 * ARGV: P, maxlen, session ttl ms, only ('' for every dead process, or one process id to retire).
 * Removes the users of processes whose heartbeat expired, with a leave event each, and forgets
 * those processes. Returns the number of users removed.
 */
export const SWEEP = `${PRELUDE}
local maxlen, ttl, only = ARGV[2], ARGV[3], ARGV[4]
local removed = 0
local procs = redis.call('SMEMBERS', P .. 'procs')
if only ~= '' then procs = {only} end
for _, proc in ipairs(procs) do
  if only ~= '' or redis.call('EXISTS', P .. 'proc:' .. proc) == 0 then
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
    end
    redis.call('DEL', roomsKey, P .. 'proc:' .. proc)
    redis.call('SREM', P .. 'procs', proc)
  end
end
return removed
`;
