-- wrk script: GET the URL given on wrk's command line, as a crowd of readers would.
--
-- Environment:
--   BENCH_ACCEPT_ENCODING  sent as Accept-Encoding when set (e.g. "gzip"); by default none,
--                          as a plain client
-- Prints one WRK_JSON line with the summary (counts, latency percentiles in microseconds), the
-- same fields as submit.lua.
local accept = os.getenv("BENCH_ACCEPT_ENCODING")
if accept and accept ~= "" then
  wrk.headers["Accept-Encoding"] = accept
end

function done(summary, latency, requests)
  local statuses = summary.errors.status
  io.write(string.format('WRK_JSON {"requests":%d,"duration_us":%d,"non_2xx":%d,"connect_errors":%d,' ..
    '"read_errors":%d,"write_errors":%d,"timeouts":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, statuses, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.timeout, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max))
end
