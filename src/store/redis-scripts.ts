/**
 * Lua scripts of the Redis store. JSON is never decoded in Lua (cjson rounds large numbers such as
 * seeds); the scripts only compare versions and tokens and keep the index sets in step with the
 * job hash, atomically.
 *
 * Key layout under the prefix P: `P job:<id>` hash {doc, status, v, w, createdAt, endedAt, idem};
 * `P status:<status>` zset of ids by createdAt; `P created` zset of all ids by createdAt;
 * `P ended` zset of terminal ids by endedAt; `P idem:<key>` string -> id. The create and delete
 * scripts build a few keys from P; with Redis Cluster use a hash-tagged prefix such as `{cg}:`.
 *
 * Statistics (see src/store/counters.ts): `P stats` hash of counters; `P contrib` hash id -> what
 * that job adds to them (`name\tn\n` lines), so a write, delete or expiry subtracts exactly what
 * the job had added; `P expires` zset of ids by the ms their TTL fires, so expired jobs leave the
 * counters too; `P corrupt` hash id -> error of quarantined (unreadable) jobs.
 */

const TERMINAL_LUA = `local terminal = { completed = true, failed = true, timed_out = true, cancelled = true }`;

/** Adds (sign 1) or subtracts (sign -1) a job's contribution text to the stats hash. */
const CONTRIB_LUA = `
local function contrib_apply(statsKey, text, sign)
  if not text then return end
  for k, n in string.gmatch(text, '([^\\t\\n]+)\\t(-?%d+)\\n') do
    if redis.call('HINCRBY', statsKey, k, sign * tonumber(n)) == 0 then redis.call('HDEL', statsKey, k) end
  end
end
local function contrib_drop(prefix, id)
  contrib_apply(prefix .. 'stats', redis.call('HGET', prefix .. 'contrib', id), -1)
  redis.call('HDEL', prefix .. 'contrib', id)
end
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
`;

/**
 * KEYS: job, status zset, created zset, ended zset, idem key.
 * ARGV: id, doc, status, createdAt, endedAt ('' unless terminal), token, idempotency key ('' none),
 *       ttl ('' keep, '0' delete at once, else ms), prefix, contribution text.
 * Returns {outcome, id, doc, token}; outcome is created | exists | duplicate.
 */
export const CREATE_LUA = `
${CONTRIB_LUA}
local id, doc, status, createdAt, endedAt, token, idem, ttl, prefix, contrib = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10]
if idem ~= '' then
  local holder = redis.call('GET', KEYS[5])
  if holder then
    local f = redis.call('HMGET', prefix .. 'job:' .. holder, 'doc', 'w')
    if f[1] then return { 'exists', holder, f[1], f[2] or '' } end
  end
end
local existing = redis.call('HMGET', KEYS[1], 'doc', 'w')
if existing[1] or redis.call('EXISTS', KEYS[1]) == 1 then
  if existing[2] == token then return { 'created', id, existing[1], token } end
  return { 'duplicate', id, '', '' }
end
redis.call('HSET', KEYS[1], 'doc', doc, 'status', status, 'v', '1', 'w', token, 'createdAt', createdAt, 'idem', idem)
redis.call('ZADD', KEYS[2], createdAt, id)
redis.call('ZADD', KEYS[3], createdAt, id)
if idem ~= '' then redis.call('SET', KEYS[5], id) end
redis.call('HSET', prefix .. 'contrib', id, contrib)
contrib_apply(prefix .. 'stats', contrib, 1)
if endedAt ~= '' then
  redis.call('HSET', KEYS[1], 'endedAt', endedAt)
  redis.call('ZADD', KEYS[4], endedAt, id)
  if ttl ~= '' and ttl ~= '0' then
    redis.call('PEXPIRE', KEYS[1], ttl)
    redis.call('ZADD', prefix .. 'expires', now_ms() + tonumber(ttl), id)
    if idem ~= '' then redis.call('PEXPIRE', KEYS[5], ttl) end
  end
end
return { 'created', id, doc, token }
`;

/**
 * Compare-and-set write of a whole job document, guarded by the version read before.
 * KEYS: job, old status zset, new status zset, created zset, ended zset, idem key (or the job key).
 * ARGV: expected version, doc, new status, id, createdAt, endedAt ('' unless terminal), token,
 *       ttl ('' keep, '0' delete at once, else ms), has idem ('1'/'0'), prefix, contribution text.
 * Returns ok | conflict | missing.
 */
export const WRITE_LUA = `
${CONTRIB_LUA}
local expected, doc, status, id, createdAt, endedAt, token, ttl, hasIdem, prefix, contrib = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10], ARGV[11]
local cur = redis.call('HMGET', KEYS[1], 'v', 'w')
if not cur[1] then return 'missing' end
-- ioredis resends a command whose reply was lost with the connection: it already applied.
if cur[2] == token then return 'ok' end
if cur[1] ~= expected then return 'conflict' end
redis.call('HSET', KEYS[1], 'doc', doc, 'status', status, 'v', tostring(tonumber(cur[1]) + 1), 'w', token)
contrib_drop(prefix, id)
if not (endedAt ~= '' and ttl == '0') then
  redis.call('HSET', prefix .. 'contrib', id, contrib)
  contrib_apply(prefix .. 'stats', contrib, 1)
end
if KEYS[2] ~= KEYS[3] then
  redis.call('ZREM', KEYS[2], id)
  redis.call('ZADD', KEYS[3], createdAt, id)
end
if endedAt == '' then
  if KEYS[2] ~= KEYS[3] then
    redis.call('HDEL', KEYS[1], 'endedAt')
    redis.call('ZREM', KEYS[5], id)
    redis.call('PERSIST', KEYS[1])
    redis.call('ZREM', prefix .. 'expires', id)
    if hasIdem == '1' then redis.call('PERSIST', KEYS[6]) end
  end
  return 'ok'
end
if ttl == '0' then
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[3], id)
  redis.call('ZREM', KEYS[4], id)
  if hasIdem == '1' and redis.call('GET', KEYS[6]) == id then redis.call('DEL', KEYS[6]) end
  return 'ok'
end
redis.call('HSET', KEYS[1], 'endedAt', endedAt)
redis.call('ZADD', KEYS[5], endedAt, id)
if ttl ~= '' then
  redis.call('PEXPIRE', KEYS[1], ttl)
  redis.call('ZADD', prefix .. 'expires', now_ms() + tonumber(ttl), id)
  if hasIdem == '1' then redis.call('PEXPIRE', KEYS[6], ttl) end
end
return 'ok'
`;

/**
 * Deletes terminal jobs that ended before a cutoff and drops index entries of jobs already gone
 * (expired by their TTL). ARGV: prefix, cutoff, ids... Returns the ids of the job hashes it deleted.
 */
export const DELETE_LUA = `
${TERMINAL_LUA}
${CONTRIB_LUA}
local prefix, cutoff = ARGV[1], tonumber(ARGV[2])
local deleted = {}
for i = 3, #ARGV do
  local id = ARGV[i]
  local k = prefix .. 'job:' .. id
  local f = redis.call('HMGET', k, 'status', 'endedAt', 'idem')
  local status, ended, idem = f[1], tonumber(f[2]), f[3]
  local gone = not status
  if status and terminal[status] and ended and ended < cutoff then
    redis.call('DEL', k)
    deleted[#deleted + 1] = id
    if idem and idem ~= '' and redis.call('GET', prefix .. 'idem:' .. idem) == id then redis.call('DEL', prefix .. 'idem:' .. idem) end
    redis.call('ZREM', prefix .. 'status:' .. status, id)
    gone = true
  end
  if gone then
    if not status then
      for s, _ in pairs(terminal) do redis.call('ZREM', prefix .. 'status:' .. s, id) end
    end
    redis.call('ZREM', prefix .. 'created', id)
    redis.call('ZREM', prefix .. 'ended', id)
    redis.call('ZREM', prefix .. 'expires', id)
    contrib_drop(prefix, id)
  end
end
return deleted
`;

/**
 * Drops index entries of ids whose job hash no longer exists (expired terminal jobs), so queries
 * and statistics stop meeting them. ARGV: prefix, ids... Non-terminal index entries are kept: a
 * missing non-terminal job is data loss and is reported, not hidden. Returns how many it dropped.
 */
export const PRUNE_LUA = `
${TERMINAL_LUA}
${CONTRIB_LUA}
local prefix = ARGV[1]
local n = 0
for i = 2, #ARGV do
  local id = ARGV[i]
  if redis.call('EXISTS', prefix .. 'job:' .. id) == 0 then
    local inTerminal = false
    for s, _ in pairs(terminal) do
      if redis.call('ZREM', prefix .. 'status:' .. s, id) == 1 then inTerminal = true end
    end
    if inTerminal or redis.call('ZSCORE', prefix .. 'ended', id) then
      redis.call('ZREM', prefix .. 'created', id)
      redis.call('ZREM', prefix .. 'ended', id)
      n = n + 1
    end
    -- Whatever the job was, it no longer exists: it leaves the counters.
    redis.call('ZREM', prefix .. 'expires', id)
    contrib_drop(prefix, id)
  end
end
return n
`;

/**
 * Removes one job whatever its state or readability, with every index entry and its counters.
 * ARGV: prefix, id. Returns 1 if the job hash existed.
 */
export const DELETE_ONE_LUA = `
${TERMINAL_LUA}
${CONTRIB_LUA}
local prefix, id = ARGV[1], ARGV[2]
local k = prefix .. 'job:' .. id
local idem = redis.call('HGET', k, 'idem')
local existed = redis.call('DEL', k)
if idem and idem ~= '' and redis.call('GET', prefix .. 'idem:' .. idem) == id then redis.call('DEL', prefix .. 'idem:' .. idem) end
for _, s in ipairs({ 'queued', 'running', 'recovering', 'completed', 'failed', 'timed_out', 'cancelled' }) do redis.call('ZREM', prefix .. 'status:' .. s, id) end
redis.call('ZREM', prefix .. 'created', id)
redis.call('ZREM', prefix .. 'ended', id)
redis.call('ZREM', prefix .. 'expires', id)
contrib_drop(prefix, id)
redis.call('HDEL', prefix .. 'corrupt', id)
return existed
`;

/**
 * Quarantines an unreadable job: records why and takes it out of the counters.
 * ARGV: prefix, id, error. Returns 1 when newly quarantined.
 */
export const QUARANTINE_LUA = `
${CONTRIB_LUA}
local prefix, id, err = ARGV[1], ARGV[2], ARGV[3]
if redis.call('HSETNX', prefix .. 'corrupt', id, err) == 0 then return 0 end
contrib_drop(prefix, id)
return 1
`;
