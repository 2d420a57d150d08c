-- wrk at a fixed request rate (Debian ships wrk, not wrk2), with optional unique POST bodies.
--
--   wrk -t1 -c8 -d10s -s fixed_rate.lua URL -- RATE_PER_THREAD [METHOD BODY_TEMPLATE]
--
-- Each thread sends on its own schedule, one request every 1/RATE s whatever its connections are
-- doing; a request whose slot has passed goes at once and the schedule does not burst to catch
-- up (the achieved rate is reported). RATE 0 sends as fast as the connections allow. "{id}" in
-- BODY_TEMPLATE becomes a string unique to the request, "{id64}" one that is also valid base64
-- (etcd's JSON gateway takes keys in base64). wrk times a request from its send, so a
-- late send is not charged to the server (report the achieved rate beside the latencies).
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } rr_timespec;
int clock_gettime(int clk_id, rr_timespec *tp);
]]
local CLOCK_MONOTONIC = 1
local ts = ffi.new("rr_timespec")

local function now_ms()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

local threads = {}
function setup(thread)
  threads[#threads + 1] = thread
  thread:set("tid", #threads)
end

statuses = {}  -- per thread: responses by HTTP status, gathered in done()
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

local interval_ms, next_slot, method, template
local seq = 0

function init(args)
  math.randomseed(os.time() * 100 + (tid or 0))  -- LuaJIT's default seed repeats ids run after run
  local rate = tonumber(args[1] or "0")
  interval_ms = rate > 0 and 1000 / rate or nil
  method = args[2] or "GET"
  template = args[3]
end

function delay()
  if not interval_ms then return 0 end
  local now = now_ms()
  local slot = math.max(next_slot or now, now)
  next_slot = slot + interval_ms
  return slot - now
end

function request()
  if not template then return wrk.format(method) end
  seq = seq + 1
  local id = string.format("w%dx%dx%d", tid or 0, seq, math.random(1, 1e9))
  local id64 = id .. string.rep("A", (4 - #id % 4) % 4)
  local body = template:gsub("{id64}", id64):gsub("{id}", id)
  return wrk.format(method, nil, nil, body)
end

local PCTS = {1, 5, 10, 20, 30, 40, 50, 60, 70, 75, 80, 85, 90, 95, 97, 98, 99, 99.5, 99.9}

-- percentile(100) reads 0 in wrk 4.1: the maximum is latency.max.
function done(summary, latency, requests)
  local e = summary.errors
  local parts = {}
  for _, p in ipairs(PCTS) do
    parts[#parts + 1] = string.format("[%g, %d]", p, latency:percentile(p))
  end
  local by_status = {}
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do
      by_status[status] = (by_status[status] or 0) + count
    end
  end
  local codes = {}
  for status, count in pairs(by_status) do
    codes[#codes + 1] = string.format('"%d": %d', status, count)
  end
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "bytes": %d, "errors": {"connect": %d, "read": %d, ' ..
    '"write": %d, "status": %d, "timeout": %d}, "mean_us": %f, "max_us": %d, "statuses": {%s}, "percentiles_us": [%s]}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency.max, table.concat(codes, ", "), table.concat(parts, ", ")))
end
