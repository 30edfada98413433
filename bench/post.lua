-- wrk script: POST one prepared multipart body, report latency percentiles as JSON.
-- BODY_FILE and CONTENT_TYPE come from the environment (bench/run.py sets them).
local f = assert(io.open(os.getenv("BODY_FILE"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = os.getenv("CONTENT_TYPE")

if os.getenv("HONOUR_RETRY_AFTER") == "1" then
  -- Clients that wait as a 503 tells them to: for every 503, one of this thread's connections
  -- pauses Retry-After seconds before its next request (wrk's delay() cannot say which
  -- connection got the 503, so the pauses are right in number, not in place).
  local owed = {}
  function response(status, headers, body)
    if status == 503 then
      owed[#owed + 1] = 1000 * (tonumber(headers["retry-after"] or headers["Retry-After"]) or 1)
    end
  end
  function delay()
    return table.remove(owed, 1) or 0
  end
end

function done(summary, latency, requests)
  local non2xx = summary.errors.status
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "bytes": %d, "non2xx": %d, ' ..
    '"connect_errors": %d, "read_errors": %d, "write_errors": %d, "timeouts": %d, ' ..
    '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %.1f}\n',
    summary.requests, summary.duration, summary.bytes, non2xx,
    summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
