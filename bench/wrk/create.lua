-- POST /messenger with a new external_id every request.
local n = 0
request = function()
  n = n + 1
  local body = string.format('{"external_id":"bench-new-%d-%d","access_token":"token-%d"}', math.random(1, 1000000000), n, n)
  return wrk.format("POST", wrk.path, {["Content-Type"] = "application/json", ["Authorization"] = wrk.headers["Authorization"]}, body)
end
