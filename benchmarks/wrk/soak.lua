-- wrk script for benchmarks.bench_soak: paced answer sheets for a fixed time, every 202 counted
-- per body template, so the harness knows exactly which sheets the server took.
--
-- Environment:
--   BENCH_BODIES    answer-sheet templates, one per line, @@ID@@ where the unique token goes;
--                   template k's submission_id ends in "-t<k>" (k from 1, the line number)
--   BENCH_RATE      total requests/s to pace to, spread over wrk's threads
--   BENCH_THREADS   wrk's -t, so each thread takes its share of BENCH_RATE
--   BENCH_SECONDS   no new request after this many seconds (wrk's -d is set a little longer, so
--                   every request sent gets its answer and nothing is cut off mid-flight)
-- Prints one WRK_JSON line: counts, latency percentiles (us), answers by status, and the 202s
-- per template ("ok_by_template": {"<k>": n}).
local bodies_file = os.getenv("BENCH_BODIES")
local rate = tonumber(os.getenv("BENCH_RATE") or "0")
local nthreads = tonumber(os.getenv("BENCH_THREADS") or "1")
local seconds = tonumber(os.getenv("BENCH_SECONDS") or "60")
local counter = 0
local thread_tag = ""
local templates = {}
local ntemplates = 0
local threads = {}

-- Per thread (read by done() through thread:get).
ok_by_template = {}
by_status = {}
sent = 0

local ffi = require("ffi")
ffi.cdef[[
  typedef struct { long tv_sec; long tv_nsec; } soak_timespec;
  int clock_gettime(int clk_id, soak_timespec *tp);
]]
local ts = ffi.new("soak_timespec")
local function now_s()
  ffi.C.clock_gettime(1, ts)  -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
end

local function split(line)
  local parts, pos = {}, 1
  while true do
    local s, e = string.find(line, "@@ID@@", pos, true)
    if not s then break end
    parts[#parts + 1] = string.sub(line, pos, s - 1)
    pos = e + 1
  end
  parts[#parts + 1] = string.sub(line, pos)
  return parts
end

function setup(thread)
  thread:set("tag", string.format("%08x", math.random(0, 0x7fffffff)))
  threads[#threads + 1] = thread
end

function init(args)
  thread_tag = tag
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  for line in io.lines(bodies_file) do
    if #line > 0 then templates[#templates + 1] = split(line) end
  end
  ntemplates = #templates
end

local per_thread_rate = rate / nthreads
local started = nil  -- the first request's slot: the cutoff counts from here, never moved
local t0 = nil  -- the schedule's origin: moved forward when the server falls behind
local scheduled = 0

function request()
  counter = counter + 1
  sent = sent + 1
  local token = string.format("%s-%010d", thread_tag, counter)
  return wrk.format(nil, "/v1/submissions", nil,
    table.concat(templates[(counter % ntemplates) + 1], token))
end

-- Pacing as in submit.lua; after BENCH_SECONDS each connection waits out the run instead.
function delay()
  local now = now_s()
  if started == nil then started = now; t0 = now end
  if now - started >= seconds then return 3600 * 1000 end
  scheduled = scheduled + 1
  local due = t0 + scheduled / per_thread_rate
  if due < now - 1.0 then
    t0 = now - scheduled / per_thread_rate
    due = now
  end
  local wait_ms = (due - now) * 1000
  if wait_ms < 0 then return 0 end
  return math.floor(wait_ms)
end

function response(status, headers, body)
  by_status[status] = (by_status[status] or 0) + 1
  if status == 202 then
    local k = string.match(body, '"submission_id":"[^"]*%-t(%d+)"')
    if k then ok_by_template[k] = (ok_by_template[k] or 0) + 1 end
  end
end

local function json_counts(t)
  local parts = {}
  for k, v in pairs(t) do parts[#parts + 1] = string.format('"%s":%d', tostring(k), v) end
  return "{" .. table.concat(parts, ",") .. "}"
end

-- "sent" leaves out the one request() call wrk makes in the first thread's state before the run
-- (script_verify_request, to count pipelined requests): it is never sent.
function done(summary, latency, requests)
  local ok, statuses, total_sent = {}, {}, 0
  for _, thread in ipairs(threads) do
    for k, v in pairs(thread:get("ok_by_template") or {}) do ok[k] = (ok[k] or 0) + v end
    for k, v in pairs(thread:get("by_status") or {}) do statuses[k] = (statuses[k] or 0) + v end
    total_sent = total_sent + (thread:get("sent") or 0)
  end
  io.write(string.format('WRK_JSON {"requests":%d,"duration_us":%d,"non_2xx":%d,"connect_errors":%d,' ..
    '"read_errors":%d,"write_errors":%d,"timeouts":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,' ..
    '"max_us":%d,"sent":%d,"by_status":%s,"ok_by_template":%s}\n',
    summary.requests, summary.duration, summary.errors.status, summary.errors.connect,
    summary.errors.read, summary.errors.write, summary.errors.timeout, latency:percentile(50),
    latency:percentile(90), latency:percentile(99), latency.max, total_sent - 1,
    json_counts(statuses), json_counts(ok)))
end
