-- Link then unlink: accounts in turn, each linked on one visit and unlinked on the next.
-- ACCOUNTS, FIRST and APP come from the environment (set by bench/run.py): the warm-up and
-- the measured run use accounts of their own, so a request of one never meets the other's.
local accounts = tonumber(os.getenv("BENCH_LINK_ACCOUNTS"))
local first = tonumber(os.getenv("BENCH_LINK_FIRST"))
local app = os.getenv("BENCH_APP")
local prefix = os.getenv("BENCH_PREFIX")
local i = 0
local linked = {}
local checked = false
request = function()
  if not checked then
    -- wrk calls request() once before the run to check it, and never sends that request:
    -- had it been a link, the account's next visit would unlink an account never linked.
    checked = true
    return wrk.format("GET", prefix)
  end
  i = i + 1
  local k = i % accounts
  local ext = string.format("%09d", (first + k) * 4 + 1)  -- messenger accounts: every fourth id
  local path = prefix .. "/messenger/" .. ext .. "/applications"
  local h = {["Content-Type"] = "application/json", ["Authorization"] = wrk.headers["Authorization"]}
  if linked[k] then
    linked[k] = false
    return wrk.format("DELETE", path .. "/" .. app, h)
  end
  linked[k] = true
  return wrk.format("POST", path, h, '{"application":"' .. app .. '"}')
end
