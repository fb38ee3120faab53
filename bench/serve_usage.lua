-- wrk script for bench/serve_bench.sh: GET /v1/usage of one customer's month,
-- rotating over customer keys so that no key reaches the per-key rate limit.
--   SERVE_BENCH_KEYS  file of "KEY CUSTOMER" lines (tally key create --role customer)
--   SERVE_BENCH_QUERY the rest of the query, e.g. period=2025-11&group_by=day
--   SERVE_BENCH_THREAD_RATE  requests/s each wrk thread sends (0 or unset: as
--                     fast as its connections get answers)
-- Each thread starts at its own offset in the list. done() prints the
-- status codes seen (wrk itself only counts "Non-2xx or 3xx responses").
--
-- With a rate, each thread sends its requests on a fixed schedule (one every
-- 1000/rate ms, whichever of its connections is free): delay() holds a
-- connection until the next slot. A request answered late makes the next
-- ones go at once until the schedule is caught up, so a slow server gets the
-- same load, not less. wrk times a request from when it is written, so a
-- slot that found every connection busy is not counted as waiting: the
-- CONNECTIONS must be enough that one usually is free (the bench prints the
-- achieved rate next to the target).
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

local thread_rate = tonumber(os.getenv("SERVE_BENCH_THREAD_RATE") or "0") or error("SERVE_BENCH_THREAD_RATE: not a number")

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

if thread_rate > 0 then
  local ffi = require("ffi")
  ffi.cdef[[
    typedef struct { long tv_sec; long tv_nsec; } serve_bench_timespec;
    int clock_gettime(int clock, serve_bench_timespec* now);
  ]]
  local now = ffi.new("serve_bench_timespec")
  local function now_ms()
    ffi.C.clock_gettime(1, now)  -- CLOCK_MONOTONIC
    return tonumber(now.tv_sec) * 1000 + tonumber(now.tv_nsec) / 1e6
  end
  local interval = 1000 / thread_rate
  local next_slot = nil
  function delay()
    local t = now_ms()
    next_slot = next_slot or t
    local wait = next_slot - t
    next_slot = next_slot + interval
    return wait > 0 and math.floor(wait) or 0
  end
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
