-- wrk script for bench/device_api.py: one scenario per run, chosen by the arguments
-- after wrk's "--":
--   static   <host> <path> <body>
--   auth     <host> <path> <body> <file with one Authorization value per line>
--   activate <host> <path> <first identity> <identities per thread> <digits>
-- Every response's status is counted, so the driver can refuse a run with errors.

local threads = {}
local thread_count = 0

function setup(thread)
  -- Each thread gets its own slice of the identity pool and its own place in
  -- the credential list, so no two connections present the same identity.
  thread:set("thread_index", thread_count)
  thread_count = thread_count + 1
  table.insert(threads, thread)
end

function init(args)
  mode, host, path = args[1], args[2], args[3]
  statuses = {}
  sent = 0
  if mode == "auth" then
    body = args[4]
    authorizations = {}
    for line in io.lines(args[5]) do
      if line ~= "" then
        table.insert(authorizations, line)
      end
    end
    sent = thread_index * 7
  elseif mode == "activate" then
    local per_thread = tonumber(args[5])
    first = tonumber(args[4]) + thread_index * per_thread
    last = first + per_thread - 1
    digits = args[6]
  else
    body = args[4]
  end
end

local form = "application/x-www-form-urlencoded"

function request()
  local headers = { ["Host"] = host, ["Content-Type"] = form }
  local payload = body
  if mode == "auth" then
    headers["Authorization"] = authorizations[(sent % #authorizations) + 1]
  elseif mode == "activate" then
    local identity = first + sent
    if identity > last then
      -- Out of whitelisted identities: ask for one that cannot exist, so the
      -- run shows errors instead of silently repeating identities.
      identity = 0
    end
    payload = string.format("id=%0" .. digits .. "d", identity)
  end
  sent = sent + 1
  return wrk.format("POST", path, headers, payload)
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local merged = {}
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do
      merged[status] = (merged[status] or 0) + count
    end
  end
  local parts = {}
  for status, count in pairs(merged) do
    table.insert(parts, string.format('"%d": %d', status, count))
  end
  local errors = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, '
      .. '"socket_errors": %d, "timeouts": %d, "statuses": {%s}}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    errors.connect + errors.read + errors.write, errors.timeout, table.concat(parts, ", ")
  ))
end
