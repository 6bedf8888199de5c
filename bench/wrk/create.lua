-- POST /messenger with a new external_id every request.
-- BENCH_RUN makes the ids of each run (the warm-up included) new.
local run = os.getenv("BENCH_RUN")
local n = 0
request = function()
  n = n + 1
  local body = string.format('{"external_id":"new-%s-%d","access_token":"token-%d"}', run, n, n)
  return wrk.format("POST", wrk.path, {["Content-Type"] = "application/json", ["Authorization"] = wrk.headers["Authorization"]}, body)
end
