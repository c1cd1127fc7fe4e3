-- wrk script of `make bench`: every request is a line of a file that bench/vote_path.py wrote
-- (a distinct ballot and vote token, or a distinct signed SMS), so no vote repeats another.
--
--   wrk ... -s bench/requests.lua <url> -- <requests file> <threads> <cycle|once> [rate per thread]
--
-- File lines: id <TAB> method <TAB> path <TAB> header: value|header: value <TAB> body
-- Thread t takes lines t, t + threads, t + 2 threads ... `once`: when they run out, the thread sends
-- GET /bench-ran-out, a 404 that changes nothing (bench/vote_path.py sizes the file so that this does
-- not happen, and says so if it did);
-- `cycle`: it starts over (the bare framework keeps no state, so repeats cost it nothing).
-- With a rate (requests per second, per wrk thread), the thread sends at that arrival rate: each request
-- takes the next slot of the thread's schedule (slots 1/rate apart, from a monotonic clock), waiting for
-- it if it is early. A connection whose answer came late sends at once, and slots missed by more than a
-- tenth of a second are dropped rather than sent in a burst, so the rate is met as long as the server
-- keeps up, and honestly missed when it does not. Without one, a connection sends as soon as its answer
-- came (a closed loop: the peak).
-- Threads start at different moments (each first reads the file), and wrk divides every answer by one
-- duration: each thread notes its first request and its last answer instead, and its rate of 2xx
-- answers over that span is written out (summed over the threads, the rate of the run).
-- Answers slower than 50 ms are written out too, as `slow <when it was sent: CLOCK_MONOTONIC ms> <latency
-- ms>`, with each thread's `first_ms` (its first request), so that a tail can be told apart: spread evenly,
-- or in bursts, and when in the run (one clock for all threads, and the one Python's time.monotonic() reads).
-- Each request carries `X-Request-ID: <id>`; stagevote echoes it, so the script knows which requests
-- were never answered when wrk stopped, and writes them (and the counts) to $STAGEVOTE_WRK_OUT.

local ffi = require("ffi")
ffi.cdef [[
   typedef struct { long tv_sec; long tv_nsec; } stagevote_timespec;
   int clock_gettime(int clock, stagevote_timespec *now);
]]
local CLOCK_MONOTONIC = 1
local now_buffer = ffi.new("stagevote_timespec")

local function now_us()
   ffi.C.clock_gettime(CLOCK_MONOTONIC, now_buffer)
   return tonumber(now_buffer.tv_sec) * 1000000 + tonumber(now_buffer.tv_nsec) / 1000
end

local threads = {}
ids = {}

function setup(thread)
   thread:set("id", #threads)
   table.insert(threads, thread)
end

function init(args)
   local path, count, mode = args[1], tonumber(args[2]), args[3]
   local rate = tonumber(args[4] or "0")
   interval_us = rate > 0 and 1000000 / rate or 0
   next_slot_us = nil
   cycle = mode == "cycle"
   items = {}
   local n = 0
   for line in io.lines(path) do
      if n % count == id then
         local rid, method, target, headers, body = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$")
         local h = { ["X-Request-ID"] = rid }
         for name, value in headers:gmatch("([^:|]+): ([^|]*)") do h[name] = value end
         table.insert(items, wrk.format(method, target, h, body))
         table.insert(ids, rid)
      end
      n = n + 1
   end
   position, sent, answered, created, ok, refused, exhausted = 0, 0, 0, 0, 0, 0, 0
   first_us, last_us = 0, 0
   sent_at, slow = {}, {}
   waiting = {}
   ran_out = wrk.format("GET", "/bench-ran-out")
end

function request()
   position = position + 1
   if position > #items then
      if not cycle then
         exhausted = exhausted + 1
         return ran_out
      end
      position = 1
   end
   sent = sent + 1
   local now = now_us()
   if first_us == 0 then first_us = now end
   if not cycle then
      waiting[ids[position]] = true
      sent_at[ids[position]] = now
   end
   return items[position]
end

function delay()
   if interval_us == 0 then return 0 end
   local now = now_us()
   if next_slot_us == nil or next_slot_us < now - 100000 then next_slot_us = now end
   local wait_ms = (next_slot_us - now) / 1000
   next_slot_us = next_slot_us + interval_us
   return wait_ms > 0 and math.floor(wait_ms + 0.5) or 0
end

function response(status, headers, body)
   answered = answered + 1
   last_us = now_us()
   if status == 201 then
      created = created + 1
   elseif status >= 200 and status < 300 then
      ok = ok + 1
   else
      refused = refused + 1
   end
   local rid = headers["x-request-id"]
   if rid then
      waiting[rid] = nil
      local at = sent_at[rid]
      if at then
         sent_at[rid] = nil
         if last_us - at > 50000 then
            table.insert(slow, string.format("%d %d", at / 1000, (last_us - at) / 1000))
         end
      end
   end
end

function done(summary, latency, requests)
   local out = io.open(os.getenv("STAGEVOTE_WRK_OUT"), "w")
   out:write(string.format("duration_us %d\n", summary.duration))
   out:write(string.format("p50_us %d\np99_us %d\n", latency:percentile(50), latency:percentile(99)))
   out:write(string.format("errors %d\n", summary.errors.connect + summary.errors.read + summary.errors.write
      + summary.errors.timeout))
   for _, thread in ipairs(threads) do
      for _, name in ipairs({ "sent", "answered", "created", "ok", "refused", "exhausted" }) do
         out:write(string.format("%s %d\n", name, thread:get(name)))
      end
      local span_us = thread:get("last_us") - thread:get("first_us")
      if span_us > 0 then  -- 2xx answers per second, in thousandths
         local good = thread:get("created") + thread:get("ok")
         out:write(string.format("rate_milli %d\n", math.floor(good * 1e9 / span_us + 0.5)))
      end
      out:write(string.format("first_ms %d\n", thread:get("first_us") / 1000))
      for rid, _ in pairs(thread:get("waiting")) do out:write("waiting " .. rid .. "\n") end
      for _, line in ipairs(thread:get("slow")) do out:write("slow " .. line .. "\n") end
   end
   out:close()
end
