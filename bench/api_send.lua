-- bench/api_send.lua — the wrk script of bench/api.sh: every request is POST /emails with the same
-- JSON body (a text email of API_TEXT_BYTES octets, default 2048) and the Bearer key in API_KEY.
-- Each thread counts the answers by status; done() prints them and the latency distribution as
-- "key value" lines that api.sh parses:
--   api_requests N          answers received (any status)
--   api_status_<code> N     answers with that status, one line per status seen
--   api_errors_<kind> N     wrk's socket errors: connect, read, write, timeout
--   api_lat_p50_ms X ...    latency percentiles (ms) of wrk's distribution: p50, p90, p99, max
--   api_first_error <code> <body>   the first non-200 answer (status and up to 200 octets of body)
-- Environment: API_KEY (required), API_FROM, API_TO, API_TEXT_BYTES.

local key = os.getenv("API_KEY") or error("API_KEY is not set")
local from = os.getenv("API_FROM") or "demo@bench.test"
local to = os.getenv("API_TO") or "rcpt@sink.test"
local size = tonumber(os.getenv("API_TEXT_BYTES") or "2048")

-- A plain-text body of lines of 72 "x" and a newline, cut to exactly `size` octets. In JSON each
-- newline is written \n (two characters), the text itself is `size` octets once decoded.
local function text_body(n)
	local parts, len = {}, 0
	local line = string.rep("x", 72)
	while len + 73 <= n do
		parts[#parts + 1] = line .. "\\n"
		len = len + 73
	end
	if len < n then parts[#parts + 1] = string.rep("x", n - len) end
	return table.concat(parts)
end

wrk.method = "POST"
wrk.path = "/emails"
wrk.headers["Authorization"] = "Bearer " .. key
wrk.headers["Content-Type"] = "application/json"
wrk.body = string.format('{"from":"%s","to":"%s","subject":"bench api.sh %d-octet text","text":"%s"}',
	from, to, size, text_body(size))

-- ---- per thread ----
local threads = {}

function setup(thread)
	threads[#threads + 1] = thread
end

function init(args)
	statuses = {}
	first_error = ""
end

function response(status, headers, body)
	statuses[status] = (statuses[status] or 0) + 1
	if status ~= 200 and first_error == "" then
		first_error = tostring(status) .. " " .. string.sub(string.gsub(body or "", "[\r\n]", " "), 1, 200)
	end
end

-- ---- at the end (the main state) ----
function done(summary, latency, requests)
	local total, err1 = {}, ""
	for _, t in ipairs(threads) do
		local s = t:get("statuses")
		for code, n in pairs(s) do
			total[code] = (total[code] or 0) + n
		end
		local e = t:get("first_error")
		if err1 == "" and e ~= nil and e ~= "" then err1 = e end
	end
	io.write(string.format("api_requests %d\n", summary.requests))
	io.write(string.format("api_duration_s %.3f\n", summary.duration / 1e6))
	local codes = {}
	for code in pairs(total) do codes[#codes + 1] = code end
	table.sort(codes)
	for _, code in ipairs(codes) do
		io.write(string.format("api_status_%d %d\n", code, total[code]))
	end
	for _, kind in ipairs({ "connect", "read", "write", "timeout" }) do
		io.write(string.format("api_errors_%s %d\n", kind, summary.errors[kind]))
	end
	io.write(string.format("api_errors_status %d\n", summary.errors.status))
	for _, p in ipairs({ 50, 90, 99 }) do
		io.write(string.format("api_lat_p%d_ms %.3f\n", p, latency:percentile(p) / 1000))
	end
	io.write(string.format("api_lat_max_ms %.3f\n", latency.max / 1000))
	io.write(string.format("api_lat_mean_ms %.3f\n", latency.mean / 1000))
	if err1 ~= "" then io.write("api_first_error " .. err1 .. "\n") end
end
