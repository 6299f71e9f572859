-- wrk script of the benchmark (docs/benchmarks.md). Everything comes from environment variables
-- that the driver sets, so one script serves every scenario:
--
--   WRK_MODE      static   : every request is WRK_METHOD with the body WRK_BODY
--                 random   : WRK_TEMPLATE with {n} a random number in [WRK_FIRST, WRK_LAST]
--                 sequence : WRK_TEMPLATE with {n} = WRK_FIRST, WRK_FIRST + 1, ... without
--                            repeats across threads; WRK_COUNT numbers in all, then the thread
--                            stops (so a bounded number of distinct requests is sent)
--                 lines    : each line of the file WRK_FILE is `<value>\t<body>`: the body, with
--                            the header WRK_LINE_HEADER set to the value (a signature made
--                            beforehand); each line sent once, split between threads, then the
--                            thread stops
--   WRK_WIDTH     {n} is zero-padded to this width
--   WRK_PLANS     comma-separated plan codes; {plan} is the ((n - 1) mod #plans)-th, as seeded
--   WRK_IDEMPOTENCY_PREFIX  when set, each request carries `Idempotency-Key: <prefix>{n}`
--
-- done() prints one line `BENCH_JSON {...}` with the counts and latency percentiles (us).
-- Other headers come from wrk's -H flags.

local mode = os.getenv("WRK_MODE") or "static"
local method = os.getenv("WRK_METHOD") or "POST"

wrk.method = method
if mode == "static" then
   wrk.body = os.getenv("WRK_BODY") or ""
end

local template = os.getenv("WRK_TEMPLATE") or ""
local first = tonumber(os.getenv("WRK_FIRST") or "1")
local last = tonumber(os.getenv("WRK_LAST") or "1")
local count = tonumber(os.getenv("WRK_COUNT") or "0")
local width = tonumber(os.getenv("WRK_WIDTH") or "6")
local idempotency_prefix = os.getenv("WRK_IDEMPOTENCY_PREFIX")
local line_file = os.getenv("WRK_FILE")
local line_header = os.getenv("WRK_LINE_HEADER") or "X-Value"
local plans = {}
for plan in string.gmatch(os.getenv("WRK_PLANS") or "plan_starter_m", "[^,]+") do
   plans[#plans + 1] = plan
end

-- Thread numbering (setup runs in the main Lua state, once per thread).
local threads_seen = 0
function setup(thread)
   thread:set("tid", threads_seen)
   threads_seen = threads_seen + 1
end

local function render(n)
   local padded = string.format("%0" .. width .. "d", n)
   local plan = plans[((n - 1) % #plans) + 1]
   local body = template:gsub("{n}", padded):gsub("{plan}", plan)
   local headers = nil
   if idempotency_prefix then
      headers = {}
      for k, v in pairs(wrk.headers) do headers[k] = v end
      headers["Idempotency-Key"] = idempotency_prefix .. padded
   end
   return wrk.format(method, nil, headers, body)
end

-- Per thread (init runs in the thread's own Lua state, after setup): its slice of the sequence,
-- or of the file's lines (every threads-th line).
-- wrk renders one request in thread 0 to check the script, so thread 0 skips its first number.
local next_n, end_n, exhausted
local lines
function init(args)
   local threads = tonumber(os.getenv("WRK_THREADS") or "1")
   local id = tid or 0
   math.randomseed(os.time() * 1000 + id)
   if mode == "sequence" then
      local per_thread = math.floor(count / threads)
      next_n = first + id * per_thread
      end_n = next_n + per_thread - 1
   elseif mode == "lines" then
      lines = {}
      local i = 0
      for line in io.lines(line_file) do
         if i % threads == id then lines[#lines + 1] = line end
         i = i + 1
      end
      next_n = 1
      end_n = #lines
   end
end

local function render_line(line)
   local tab = line:find("\t", 1, true)
   local headers = {}
   for k, v in pairs(wrk.headers) do headers[k] = v end
   headers[line_header] = line:sub(1, tab - 1)
   return wrk.format(method, nil, headers, line:sub(tab + 1))
end

if mode ~= "static" then
   function request()
      if mode == "random" then
         return render(math.random(first, last))
      end
      -- sequence, lines
      if next_n == nil then
         -- wrk verifies the script once in thread 0 before init: answer anything valid.
         return wrk.format("GET", "/healthz", {}, nil)
      end
      if next_n > end_n then
         if not exhausted then
            exhausted = true
            wrk.thread:stop()
         end
         -- Until the loop stops: a cheap request that provisions nothing.
         return wrk.format("GET", "/healthz", {}, nil)
      end
      local n = next_n
      next_n = next_n + 1
      if mode == "lines" then
         return render_line(lines[n])
      end
      return render(n)
   end
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
      '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
      '"latency_us":{"min":%d,"mean":%.1f,"p50":%d,"p90":%d,"p99":%d,"p999":%d,"max":%d}}\n',
      summary.requests, summary.duration, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency.min, latency.mean, latency:percentile(50), latency:percentile(90),
      latency:percentile(99), latency:percentile(99.9), latency.max))
end
