-- wrk script for HTTP/1.1 pipelining (bench/run.sh): each connection sends
-- DEPTH requests in one write and reads DEPTH responses; wrk counts every
-- response. The depth is the script's first argument (default 16):
--
--   wrk -t1 -c64 -d5s -s bench/pipeline.lua http://127.0.0.1:8888/ -- 16

init = function(args)
   local depth = tonumber(args[1]) or 16
   local requests = {}
   for i = 1, depth do
      requests[i] = wrk.format()
   end
   batch = table.concat(requests)
end

request = function()
   return batch
end
