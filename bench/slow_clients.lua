-- wrk script: each connection waits WHIRL_GAP_MS (default 60) between its
-- requests, as many slow keep-alive clients do (dormant connections' cost).
local gap = tonumber(os.getenv("WHIRL_GAP_MS") or "60")
function delay()
  return gap
end
