-- wrk script for benchmarks/notify_pipeline.py: POSTs the signed notifications of $NOTIFY_BODIES
-- (one url-encoded form a line) to $NOTIFY_PATH, each once: thread i of $NOTIFY_THREADS sends lines
-- i, i + n, ...
-- Past its last line a thread starts over and counts the repeats (a repeat is a duplicate, which
-- costs less: the benchmark refuses a run that had any). At the end one line "RESULT {json}":
-- requests, seconds, p50/p99 (ms), socket errors, repeats, the count per HTTP status and how many
-- answers were not "success".
local threads = {}
function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end
function init(args)
  local all = {}
  for line in io.lines(os.getenv("NOTIFY_BODIES")) do all[#all + 1] = line end
  bodies = {}
  for i = id + 1, #all, tonumber(os.getenv("NOTIFY_THREADS")) do bodies[#bodies + 1] = all[i] end
  next_body, repeats, refused = 1, 0, 0
  statuses = {}
  path = os.getenv("NOTIFY_PATH")
  headers = {["Content-Type"] = "application/x-www-form-urlencoded"}
end
function request()
  if next_body > #bodies then next_body, repeats = 1, repeats + 1 end
  local body = bodies[next_body]
  next_body = next_body + 1
  return wrk.format("POST", path, headers, body)
end
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if body ~= "success" then refused = refused + 1 end
end
function done(summary, latency, requests)
  local totals, repeated, not_success = {}, 0, 0
  for _, thread in ipairs(threads) do
    for code, n in pairs(thread:get("statuses")) do totals[code] = (totals[code] or 0) + n end
    repeated = repeated + thread:get("repeats")
    not_success = not_success + thread:get("refused")
  end
  local parts = {}
  for code, n in pairs(totals) do parts[#parts + 1] = string.format('"%d": %d', code, n) end
  io.write(string.format('RESULT {"requests": %d, "seconds": %f, "p50": %f, "p99": %f, "errors": %d, "repeats": %d, "not_success": %d, "statuses": {%s}}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1e3, latency:percentile(99) / 1e3,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    repeated, not_success, table.concat(parts, ", ")))
end
