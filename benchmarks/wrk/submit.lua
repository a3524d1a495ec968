-- wrk script: POST an answer sheet with a unique submission_id (and device_id) per request.
--
-- Environment:
--   BENCH_BODIES    a file of answer-sheet bodies, one per line, with @@ID@@ where the unique
--                   token goes (benchmarks.support.write_body_templates writes it from the demo
--                   generator); without it, one fixed template (BENCH_CAMPAIGN, BENCH_LINK)
--   BENCH_RATE      total requests/s to pace to, spread over wrk's threads (default: as fast as
--                   the server answers; wrk's own -c bounds the requests in flight)
--   BENCH_THREADS   wrk's -t, so each thread takes its share of BENCH_RATE
-- Prints one WRK_JSON line with the summary (counts, latency percentiles in microseconds).
local campaign = os.getenv("BENCH_CAMPAIGN") or "bench"
local link = os.getenv("BENCH_LINK") or "BenchLk1"
local bodies_file = os.getenv("BENCH_BODIES")
local rate = tonumber(os.getenv("BENCH_RATE") or "0")
local threads = tonumber(os.getenv("BENCH_THREADS") or "1")
local counter = 0
local thread_tag = ""
local templates = nil
local ntemplates = 0

local template = '{"submission_id":"@@ID@@","campaign":"' .. campaign .. '","link_code":"' .. link ..
  '","questionnaire_version":"2023.1","started_at":"2023-09-14T10:01:02+08:00",' ..
  '"submitted_at":"2023-09-14T10:09:40+08:00","respondent":{"province":"44","city":"4401",' ..
  '"age_group":"25-34"},"device_id":"d@@ID@@","answers":{"q1":4,"q2":"b","q3":["a","c"],' ..
  '"q4":"free text"},"opinion":"希望加强个人信息保护"}'

-- A body split at its placeholders: the request is the parts joined with the token.
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

local ffi = nil
local now_s = nil
if rate > 0 then
  ffi = require("ffi")
  ffi.cdef[[
    typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
    int clock_gettime(int clk_id, bench_timespec *tp);
  ]]
  local ts = ffi.new("bench_timespec")
  now_s = function()
    ffi.C.clock_gettime(1, ts)  -- CLOCK_MONOTONIC
    return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
  end
end
local per_thread_rate = 0
local t0 = nil
local scheduled = 0

-- Seeded from the kernel: unseeded, math.random gives every wrk run the same tags, so a second
-- run against the same stack resent the first run's ids (identical resends, counted once).
local function urandom_seed()
  local f = io.open("/dev/urandom", "rb")
  if not f then return os.time() end
  local bytes = f:read(4)
  f:close()
  local a, b, c, d = bytes:byte(1, 4)
  return ((a * 256 + b) * 256 + c) * 128 + d % 128
end
math.randomseed(urandom_seed())

function setup(thread)
  thread:set("tag", string.format("%08x", math.random(0, 0x7fffffff)))
end

function init(args)
  thread_tag = tag or string.format("%08x", math.random(0, 0x7fffffff))
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  templates = {}
  if bodies_file then
    for line in io.lines(bodies_file) do
      if #line > 0 then templates[#templates + 1] = split(line) end
    end
  end
  if #templates == 0 then templates[1] = split(template) end
  ntemplates = #templates
  if rate > 0 then per_thread_rate = rate / threads end
end

function request()
  counter = counter + 1
  local token = string.format("%s-%012d", thread_tag, counter)
  local parts = templates[(counter % ntemplates) + 1]
  local body = table.concat(parts, token)
  return wrk.format(nil, "/v1/submissions", nil, body)
end

-- Pacing: each request gets the next slot of this thread's schedule (slots 1/rate apart);
-- a connection waits for its slot. Behind schedule (a slow server), requests go at once.
local function pace()
  local now = now_s()
  if t0 == nil then t0 = now end
  scheduled = scheduled + 1
  local due = t0 + scheduled / per_thread_rate
  if due < now - 1.0 then  -- more than a second behind: restart the schedule, no burst
    t0 = now - scheduled / per_thread_rate
    due = now
  end
  local wait_ms = (due - now) * 1000
  if wait_ms < 0 then return 0 end
  return math.floor(wait_ms)
end
-- Defined only when pacing: wrk then waits delay() ms before each request of a connection.
if rate > 0 then delay = pace end

function done(summary, latency, requests)
  local statuses = summary.errors.status
  io.write(string.format('WRK_JSON {"requests":%d,"duration_us":%d,"non_2xx":%d,"connect_errors":%d,' ..
    '"read_errors":%d,"write_errors":%d,"timeouts":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, statuses, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.timeout, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max))
end
