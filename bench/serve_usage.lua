-- wrk script for bench/serve_bench.sh: GET /v1/usage of one customer's month,
-- rotating over customer keys so that no key reaches the per-key rate limit.
--   SERVE_BENCH_KEYS  file of "KEY CUSTOMER" lines (tally key create --role customer)
--   SERVE_BENCH_QUERY the rest of the query, e.g. period=2025-11&group_by=day
-- Each thread starts at its own offset in the list. done() prints the
-- status codes seen (wrk itself only counts "Non-2xx or 3xx responses").
local keys, customers = {}, {}
local query = os.getenv("SERVE_BENCH_QUERY") or "period=2025-11&group_by=day"
local path = os.getenv("SERVE_BENCH_KEYS") or error("SERVE_BENCH_KEYS is not set")
for line in io.lines(path) do
  local key, customer = line:match("^(%S+)%s+(%S+)$")
  if not key then error(path .. ": not a KEY CUSTOMER line: " .. line) end
  keys[#keys + 1] = key
  customers[#customers + 1] = customer
end
if #keys == 0 then error(path .. ": no keys") end

local threads = {}
local next_thread = 0
function setup(thread)
  thread:set("thread_index", next_thread)
  next_thread = next_thread + 1
  threads[#threads + 1] = thread
end

local i = 0
statuses = {}
function init(args)
  i = (thread_index or 0) * 7919 % #keys
end

function request()
  i = i % #keys + 1
  return wrk.format("GET", "/v1/usage?customer=" .. customers[i] .. "&" .. query,
                    { ["Authorization"] = "Bearer " .. keys[i] })
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("statuses")) do total[status] = (total[status] or 0) + n end
  end
  local parts = {}
  for status, n in pairs(total) do parts[#parts + 1] = status .. ": " .. n end
  table.sort(parts)
  io.write("statuses " .. table.concat(parts, ", ") .. "\n")
end
