-- upload.lua: the wrk script of bench/run_serve_bench.sh. Every request is one small upload,
--   POST /v1/documents?filename=bench-R-T-N.txt
--   Content-Type: text/plain
-- (R: this wrk run, T: its thread, N: that thread's counter) with a body of about 1 KB of English
-- text whose first line is that name, so no two bodies are alike, within a run or across runs
-- against the same server (nothing can be skipped as already seen).
--
--   wrk -t2 -c64 -d10s --latency -s bench/serve/upload.lua http://127.0.0.1:8080/v1/documents
--
-- Environment (all optional):
--   UPLOAD_RUN_ID         R above (default: derived from the time and a random number)
--   UPLOAD_AUTHORIZATION  sent as the Authorization header, e.g. "Bearer TOKEN"
--   UPLOAD_LIMIT          stop once this many 2xx answers came back, over all threads: each thread
--                         stops after ceil(UPLOAD_LIMIT / UPLOAD_THREADS) of its own (wrk's threads
--                         share nothing); -d is then only the cap. A few more uploads than the
--                         limit may have been accepted: the ones still in flight when a thread
--                         stops are not counted.
--   UPLOAD_THREADS        wrk's -t, for UPLOAD_LIMIT (default 1)
--   UPLOAD_DONE_FILE      with UPLOAD_LIMIT: each thread that reached its share appends a line
--                         here. wrk itself still waits out -d; a caller that sees UPLOAD_THREADS
--                         lines can end it early with SIGINT (wrk then prints its report).
--   UPLOAD_COUNT          "1": count answers by status (also on with UPLOAD_LIMIT). Costs wrk a Lua
--                         call per answer, so timed runs leave it off.
--
-- done() prints one line after wrk's own report:
--   upload.lua: {"requests":..,"duration_us":..,"non2xx":..,"connect_errors":..,"read_errors":..,
--                "write_errors":..,"timeouts":..,"p50_us":..,"p99_us":..[,"ok":..,"statuses":{..}]}
-- "non2xx" is wrk's summary.errors.status: answers with a status of 400 or more (wrk's own
-- "Non-2xx or 3xx responses" line); "ok" and "statuses" only when answers were counted.

local auth = os.getenv("UPLOAD_AUTHORIZATION")
local limit_total = tonumber(os.getenv("UPLOAD_LIMIT") or "")
local nthreads = tonumber(os.getenv("UPLOAD_THREADS") or "") or 1
local counting = limit_total ~= nil or os.getenv("UPLOAD_COUNT") == "1"
local done_file = os.getenv("UPLOAD_DONE_FILE")
local run_id = os.getenv("UPLOAD_RUN_ID")
if not run_id or run_id == "" then
  math.randomseed(os.time())
  run_id = string.format("%d%04d", os.time() % 100000, math.random(0, 9999))
end

wrk.method = "POST"
wrk.headers["Content-Type"] = "text/plain"
if auth and auth ~= "" then
  wrk.headers["Authorization"] = auth
end

-- ~1 KB of text: 1,000 bytes of sentences after the naming line, rotated per request.
local sentences = {
  "The quick brown fox jumps over the lazy dog. ",
  "Sluice takes documents in, splits them into chunks and indexes them. ",
  "A queue between the stages keeps uploads apart from parsing and embedding. ",
  "Every upload is answered before any parsing starts. ",
  "Search combines keyword and vector scores over the indexed chunks. ",
  "Workers pick tasks from the topic and report their results. ",
}
local texts = {}
for i = 1, #sentences do
  local parts, len, j = {}, 0, i
  while len < 1000 do
    local s = sentences[(j - 1) % #sentences + 1]
    parts[#parts + 1] = s
    len = len + #s
    j = j + 1
  end
  texts[i] = string.sub(table.concat(parts), 1, 1000)
end

-- main state: the threads, for done()
local threads = {}
local next_id = 0
function setup(thread)
  next_id = next_id + 1
  thread:set("id", next_id)
  threads[#threads + 1] = thread
end

-- thread state
local counter = 0
ok = 0
statuses = {}
local my_limit = nil
function init(args)
  if limit_total then
    my_limit = math.ceil(limit_total / nthreads)
  end
end

function request()
  counter = counter + 1
  local name = string.format("bench-%s-%d-%d.txt", run_id, id or 0, counter)
  local body = name .. "\n" .. texts[counter % #texts + 1]
  return wrk.format(nil, "/v1/documents?filename=" .. name, nil, body)
end

if counting then
  function response(status, headers, body)
    local key = tostring(status)
    statuses[key] = (statuses[key] or 0) + 1
    if status >= 200 and status < 300 then
      ok = ok + 1
      if my_limit and ok == my_limit then
        if done_file and done_file ~= "" then
          local f = io.open(done_file, "a")
          if f then
            f:write(string.format("thread %d: %d\n", id or 0, ok))
            f:close()
          end
        end
        wrk.thread:stop()
      end
    end
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  local out = string.format(
    '{"requests":%d,"duration_us":%d,"non2xx":%d,"connect_errors":%d,"read_errors":%d,' ..
    '"write_errors":%d,"timeouts":%d,"p50_us":%d,"p99_us":%d',
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99))
  if counting then
    local total_ok, merged = 0, {}
    for _, t in ipairs(threads) do
      total_ok = total_ok + (t:get("ok") or 0)
      for k, v in pairs(t:get("statuses") or {}) do
        merged[k] = (merged[k] or 0) + v
      end
    end
    local parts = {}
    for k, v in pairs(merged) do
      parts[#parts + 1] = string.format('"%s":%d', k, v)
    end
    table.sort(parts)
    out = out .. string.format(',"ok":%d,"statuses":{%s}', total_ok, table.concat(parts, ","))
  end
  io.write("upload.lua: " .. out .. "}\n")
  if e.status > 0 then
    io.write(string.format("upload.lua: %d answers were not 2xx (status >= 400)\n", e.status))
  end
end
