-- wrk script for benchmarks/seckill_burst.py: each request signed in as a member drawn at
-- random (session cookies from $CLICK_COOKIES, one per line), so members click again while
-- units are left, as impatient shoppers do; at the end one line "RESULT {json}": requests, seconds, p50/p99 (ms), socket errors,
-- and the count per HTTP status.
local threads = {}
function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end
function init(args)
  cookies = {}
  for line in io.lines(os.getenv("CLICK_COOKIES")) do cookies[#cookies + 1] = line end
  math.randomseed(id + 1)
  statuses = {}
  path = os.getenv("CLICK_PATH")
end
function request()
  local cookie = cookies[math.random(#cookies)]
  return wrk.format("GET", path, {["Cookie"] = "session=" .. cookie, ["Accept"] = "application/json"})
end
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
function done(summary, latency, requests)
  local totals = {}
  for _, thread in ipairs(threads) do
    for code, n in pairs(thread:get("statuses")) do totals[code] = (totals[code] or 0) + n end
  end
  local parts = {}
  for code, n in pairs(totals) do parts[#parts + 1] = string.format('"%d": %d', code, n) end
  io.write(string.format('RESULT {"requests": %d, "seconds": %f, "p50": %f, "p99": %f, "errors": %d, "statuses": {%s}}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1e3, latency:percentile(99) / 1e3,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    table.concat(parts, ", ")))
end
