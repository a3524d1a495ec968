-- wrk script: POST a realistic answer sheet with a unique submission_id per request.
-- CAMPAIGN and LINK come from the environment so one script serves every target.
local campaign = os.getenv("BENCH_CAMPAIGN") or "bench"
local link = os.getenv("BENCH_LINK") or "BenchLk1"
local counter = 0
local thread_tag = ""

function setup(thread)
  thread:set("tag", string.format("%08x", math.random(0, 0x7fffffff)))
end

function init(args)
  thread_tag = tag or string.format("%08x", math.random(0, 0x7fffffff))
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

local template = '{"submission_id":"%s-%012d","campaign":"' .. campaign .. '","link_code":"' .. link ..
  '","questionnaire_version":"2023.1","started_at":"2023-09-14T10:01:02+08:00",' ..
  '"submitted_at":"2023-09-14T10:09:40+08:00","respondent":{"province":"44","city":"4401",' ..
  '"age_group":"25-34"},"device_id":"%s-%012d","answers":{"q1":4,"q2":"b","q3":["a","c"],' ..
  '"q4":"free text"},"opinion":"希望加强个人信息保护"}'

function request()
  counter = counter + 1
  return wrk.format(nil, "/v1/submissions", nil, string.format(template, thread_tag, counter, thread_tag, counter))
end

function done(summary, latency, requests)
  local statuses = summary.errors.status
  io.write(string.format('WRK_JSON {"requests":%d,"duration_us":%d,"non_2xx":%d,"connect_errors":%d,' ..
    '"read_errors":%d,"timeouts":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, statuses, summary.errors.connect, summary.errors.read,
    summary.errors.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max))
end
