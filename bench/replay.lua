-- wrk script for `make bench`: replays pre-signed Stripe deliveries, each at most once.
--
-- BENCH_EVENTS_FILE holds one delivery a line: "<Stripe-Signature>\t<JSON body>".
-- BENCH_WRK_THREADS is wrk's -t: thread k of n takes lines k, k+n, k+2n... so no two threads
-- send the same event. A thread that runs out starts over (counted as "wrapped": those repeats
-- are duplicates, which the run reports so the file can be made larger).

local threads = {}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

local requests = {}
local index = 0
non2xx = 0
wrapped = 0

function init(args)
  local file = os.getenv("BENCH_EVENTS_FILE")
  local nthreads = tonumber(os.getenv("BENCH_WRK_THREADS") or "1")
  local headers = { ["Content-Type"] = "application/json" }
  local line_no = 0
  for line in io.lines(file) do
    if line_no % nthreads == id then
      local signature, body = line:match("^([^\t]+)\t(.+)$")
      headers["Stripe-Signature"] = signature
      requests[#requests + 1] = wrk.format("POST", nil, headers, body)
    end
    line_no = line_no + 1
  end
  if #requests == 0 then
    error("no requests for thread " .. id .. " in " .. tostring(file))
  end
end

function request()
  index = index + 1
  if index > #requests then
    index = 1
    wrapped = wrapped + 1
  end
  return requests[index]
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
  end
end

function done(summary, latency, requests)
  local non, wraps = 0, 0
  for _, thread in ipairs(threads) do
    non = non + thread:get("non2xx")
    wraps = wraps + thread:get("wrapped")
  end
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d p50_us=%d p90_us=%d p99_us=%d max_us=%d non2xx=%d " ..
    "connect_errors=%d read_errors=%d write_errors=%d timeouts=%d wrapped=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, non, e.connect, e.read, e.write, e.timeout, wraps))
end
