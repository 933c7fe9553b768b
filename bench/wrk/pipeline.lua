-- wrk script for the pipelined workloads (TechEmpower's plaintext shape):
--
--   wrk -t1 -c64 -d3s --latency -s bench/wrk/pipeline.lua http://127.0.0.1:PORT/ -- 16
--
-- Every write sends DEPTH copies of the request (wrk's method, path and headers) in one buffer.
-- wrk parses that buffer once at start-up, finds DEPTH requests in it, then counts each response
-- it parses (its "N requests in" and Requests/sec lines count responses) and writes the next
-- DEPTH on a connection only when all DEPTH answers to its last write are in. wrk's latency
-- figures are per round trip (from a write to the last of its DEPTH responses); they include
-- wrk's coordinated-omission correction, so their sample count is not the number of writes.
--
-- This script counts the writes itself (request() runs once per write) and prints at the end
-- one line that bench/run reads:
--
--   pipeline: depth 16, 1234560 responses to 77164 writes (16.00 per write)
--
-- A figure well below DEPTH per write means responses were lost or not counted (the writes
-- still in flight when wrk stops, at most one per connection, pull it a little below DEPTH).
--
-- `-- 16 check [BODY]` also counts every response in Lua (a response() callback, which makes
-- wrk hand headers and bodies to Lua and so costs client CPU: for verifying, not for
-- measuring), with how many were not status 200 or, when BODY is given, not exactly BODY.

-- Globals of each thread's Lua state (wrk runs init() and response() in one state per thread,
-- setup() and done() in another, its main one): done() reads them back with thread:get().
depth, check, expect = 16, false, nil
responses, bad, writes = 0, 0, 0
local req = nil

local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

function init(args)
   depth = tonumber(args[1]) or 16
   check = args[2] == "check"
   expect = args[3]
   local r = {}
   for i = 1, depth do
      r[i] = wrk.format()
   end
   req = table.concat(r)
   if check then
      -- Defined only here: wrk looks for a response() function after init() has run, and
      -- parses headers and bodies for Lua only when there is one.
      response = function(status, headers, body)
         responses = responses + 1
         if status ~= 200 or (expect ~= nil and body ~= expect) then
            bad = bad + 1
         end
      end
   end
end

function request()
   writes = writes + 1
   return req
end

function done(summary, latency, requests)
   local writes_total, counted, wrong = 0, 0, 0
   for _, t in ipairs(threads) do
      writes_total = writes_total + (t:get("writes") or 0)
      counted = counted + (t:get("responses") or 0)
      wrong = wrong + (t:get("bad") or 0)
   end
   local t1 = threads[1]
   if t1 then
      depth, check, expect = t1:get("depth"), t1:get("check"), t1:get("expect")
   end
   -- wrk calls request() once more on the first thread at start-up, to count the requests in
   -- the buffer; that call sends nothing.
   writes_total = math.max(0, writes_total - 1)
   local per = writes_total > 0 and summary.requests / writes_total or 0
   io.write(string.format("pipeline: depth %d, %d responses to %d writes (%.2f per write)\n",
                          depth, summary.requests, writes_total, per))
   if check then
      io.write(string.format("pipeline check: lua counted %d responses, %d not 200%s\n",
                             counted, wrong, expect and " or not the expected body" or ""))
   end
end
