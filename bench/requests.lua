-- wrk script of `make bench`: every request is a line of a file that bench/vote_path.py wrote
-- (a distinct ballot and vote token, or a distinct signed SMS), so no vote repeats another.
--
--   wrk ... -s bench/requests.lua <url> -- <requests file> <threads> <cycle|once> [delay ms]
--
-- File lines: id <TAB> method <TAB> path <TAB> header: value|header: value <TAB> body
-- Thread t takes lines t, t + threads, t + 2 threads ... `once`: when they run out, the thread sends
-- GET /bench-ran-out, a 404 that changes nothing (bench/vote_path.py sizes the file so that this does
-- not happen, and says so if it did);
-- `cycle`: it starts over (the bare framework keeps no state, so repeats cost it nothing).
-- Each request carries `X-Request-ID: <id>`; stagevote echoes it, so the script knows which requests
-- were never answered when wrk stopped, and writes them (and the counts) to $STAGEVOTE_WRK_OUT.

local threads = {}
ids = {}

function setup(thread)
   thread:set("id", #threads)
   table.insert(threads, thread)
end

function init(args)
   local path, count, mode = args[1], tonumber(args[2]), args[3]
   pause = tonumber(args[4] or "0")
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
   if not cycle then waiting[ids[position]] = true end
   return items[position]
end

function delay()
   return pause
end

function response(status, headers, body)
   answered = answered + 1
   if status == 201 then
      created = created + 1
   elseif status >= 200 and status < 300 then
      ok = ok + 1
   else
      refused = refused + 1
   end
   local rid = headers["x-request-id"]
   if rid then waiting[rid] = nil end
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
      for rid, _ in pairs(thread:get("waiting")) do out:write("waiting " .. rid .. "\n") end
   end
   out:close()
end
