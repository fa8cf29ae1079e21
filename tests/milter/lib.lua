-- lib.lua - helpers shared by the t_*.lua milter tests (loaded with dofile).
--
-- run.sh starts the daemon and sets:
--   PORTERO_SOCK     milter socket ("unix:/tmp/.../portero.sock")
--   PORTERO_LOG      the daemon's stderr (its log, log.stderr = true)
--   PORTERO_TESTDIR  this directory (for mtclient.py)
--   PORTERO_TMP      the test's temporary directory
-- Every check raises error() with a message saying what was expected, what
-- came instead, and the decision lines logged so far.

local T = {}

T.sock = os.getenv("PORTERO_SOCK") or error("PORTERO_SOCK is not set")
T.logfile = os.getenv("PORTERO_LOG") or error("PORTERO_LOG is not set")
T.dir = os.getenv("PORTERO_TESTDIR") or "."
T.tmp = os.getenv("PORTERO_TMP") or "/tmp"

local rnames = {}
for _, n in ipairs({ "SMFIR_ACCEPT", "SMFIR_CONTINUE", "SMFIR_DISCARD",
    "SMFIR_REJECT", "SMFIR_TEMPFAIL", "SMFIR_REPLYCODE" }) do
	if _G[n] ~= nil then
		rnames[_G[n]] = n
	end
end

-- A milter reply (number) as a readable name.
function T.rname(r)
	if r == nil then
		return "nil"
	end
	if rnames[r] ~= nil then
		return rnames[r]
	end
	if type(r) == "number" and r >= 0 and r < 256 then
		return string.format("'%s'", string.char(math.floor(r)))
	end
	return tostring(r)
end

function T.log_text()
	local f = io.open(T.logfile, "rb")
	local s

	if f == nil then
		return ""
	end
	s = f:read("a")
	f:close()
	return s
end

function T.log_lines()
	local t = {}

	for l in T.log_text():gmatch("([^\n]*)\n") do
		t[#t + 1] = l
	end
	return t
end

-- All decision lines (those with " verdict="), for error messages.
function T.decisions_dump()
	local out = {}

	for _, l in ipairs(T.log_lines()) do
		if l:find(" verdict=", 1, true) then
			out[#out + 1] = "    " .. l
		end
	end
	if #out == 0 then
		return "    (no decision lines)"
	end
	if #out > 15 then
		local cut = {}
		for i = #out - 14, #out do
			cut[#cut + 1] = out[i]
		end
		out = cut
	end
	return table.concat(out, "\n")
end

function T.fail(fmt, ...)
	error(string.format(fmt, ...) .. "\n  decision lines so far:\n" ..
	    T.decisions_dump(), 0)
end

function T.check(cond, fmt, ...)
	if not cond then
		T.fail(fmt, ...)
	end
end

-- Decision lines containing every string in needles (plain search).
function T.find(needles)
	local res = {}

	for _, l in ipairs(T.log_lines()) do
		if l:find(" verdict=", 1, true) then
			local all = true
			for _, n in ipairs(needles) do
				if not l:find(n, 1, true) then
					all = false
					break
				end
			end
			if all then
				res[#res + 1] = l
			end
		end
	end
	return res
end

-- Waits (up to ~3 s) for n decision lines matching needles; returns them.
function T.wait(needles, n)
	local got

	n = n or 1
	for _ = 1, 60 do
		got = T.find(needles)
		if #got >= n then
			return got
		end
		mt.sleep(0.05)
	end
	T.fail("expected %d decision line(s) containing [%s], found %d", n,
	    table.concat(needles, "] ["), #got)
end

-- Exactly one matching decision line, waited for; returns it.
function T.one(needles)
	local got = T.wait(needles, 1)

	mt.sleep(0.05)
	got = T.find(needles)
	if #got ~= 1 then
		T.fail("expected exactly one decision line containing [%s], " ..
		    "found %d", table.concat(needles, "] ["), #got)
	end
	return got[1]
end

-- The value of key=... in a decision line (reason without its quotes).
function T.field(line, key)
	if key == "reason" then
		return line:match(' reason="(.-)" score=')
	end
	if key == "queue" then
		return line:match("^portero%[%d+%]: (%S+): conn=")
	end
	return line:match(" " .. key .. "=([^ ]*)")
end

function T.expect_field(line, key, want)
	local v = T.field(line, key)

	if v ~= want then
		T.fail("%s=%s expected, got %s=%s in:\n    %s", key, want, key,
		    tostring(v), line)
	end
end

function T.expect_no_field(line, key)
	if T.field(line, key) ~= nil then
		T.fail("no %s= expected in:\n    %s", key, line)
	end
end

-- Checks the last milter reply on conn.
function T.expect(conn, want, what)
	local r = mt.getreply(conn)

	if r ~= want then
		T.fail("%s: reply %s expected, got %s", what, T.rname(want),
		    T.rname(r))
	end
end

-- Opens a connection and sends connect macros (a flat name, value list)
-- and the connection information.
function T.connect(host, ip, macros)
	local conn = mt.connect(T.sock, 40, 0.25)
	local err

	if conn == nil then
		T.fail("mt.connect(%s) failed", T.sock)
	end
	if macros ~= nil and #macros > 0 then
		err = mt.macro(conn, SMFIC_CONNECT, table.unpack(macros))
		T.check(err == nil, "mt.macro(CONNECT): %s", tostring(err))
	end
	err = mt.conninfo(conn, host, ip)
	T.check(err == nil, "mt.conninfo(%s, %s): %s", tostring(host),
	    tostring(ip), tostring(err))
	return conn
end

function T.helo(conn, name)
	local err = mt.helo(conn, name)

	T.check(err == nil, "mt.helo(%q): %s", name, tostring(err))
	T.expect(conn, SMFIR_CONTINUE, "HELO " .. name)
end

-- MAIL FROM, with optional MAIL macros ({"i", "QID", ...}); MAIL always
-- continues (verdicts found there are held until RCPT).
function T.mail(conn, from, macros)
	local err

	if macros ~= nil then
		err = mt.macro(conn, SMFIC_MAIL, table.unpack(macros))
		T.check(err == nil, "mt.macro(MAIL): %s", tostring(err))
	end
	err = mt.mailfrom(conn, from)
	T.check(err == nil, "mt.mailfrom(%q): %s", from, tostring(err))
	T.expect(conn, SMFIR_CONTINUE, "MAIL FROM " .. from)
end

-- RCPT TO; want is the expected reply (SMFIR_CONTINUE by default).
function T.rcpt(conn, to, want, macros)
	local err

	if macros ~= nil then
		err = mt.macro(conn, SMFIC_RCPT, table.unpack(macros))
		T.check(err == nil, "mt.macro(RCPT): %s", tostring(err))
	end
	err = mt.rcptto(conn, to)
	T.check(err == nil, "mt.rcptto(%q): %s", to, tostring(err))
	T.expect(conn, want or SMFIR_CONTINUE, "RCPT TO " .. to)
end

-- Header, end of headers, one body chunk and end of message.
function T.data(conn, headers, body)
	local err

	for _, h in ipairs(headers or { { "From", "a@example.com" } }) do
		err = mt.header(conn, h[1], h[2])
		T.check(err == nil, "mt.header(%s): %s", h[1], tostring(err))
	end
	err = mt.eoh(conn)
	T.check(err == nil, "mt.eoh: %s", tostring(err))
	err = mt.bodystring(conn, body or "Hello.\r\n")
	T.check(err == nil, "mt.bodystring: %s", tostring(err))
	err = mt.eom(conn)
	T.check(err == nil, "mt.eom: %s", tostring(err))
end

-- EOM must accept: SMFIR_ACCEPT (or SMFIR_CONTINUE, the same for the MTA).
function T.expect_accept(conn, what)
	local r = mt.getreply(conn)

	if r ~= SMFIR_ACCEPT and r ~= SMFIR_CONTINUE then
		T.fail("%s: accept expected at EOM, got %s", what, T.rname(r))
	end
end

-- No message modification requested at EOM.  (MT_SMTPREPLY without
-- arguments is refused by this miltertest; expect_accept covers it.)
function T.expect_unmodified(conn, what)
	local ops = { { MT_HDRADD, "header added" },
	    { MT_HDRINSERT, "header inserted" },
	    { MT_HDRCHANGE, "header changed" },
	    { MT_HDRDELETE, "header deleted" },
	    { MT_BODYCHANGE, "body replaced" },
	    { MT_QUARANTINE, "quarantined" } }

	for _, op in ipairs(ops) do
		if mt.eom_check(conn, op[1]) then
			T.fail("%s: the message was modified (%s)", what, op[2])
		end
	end
end

-- Raw control characters (or bytes >= 0x7f) anywhere in the log.
function T.expect_clean_log()
	local n = 0

	for _, l in ipairs(T.log_lines()) do
		n = n + 1
		local pos = l:find("[%z\1-\31\127-\255]")
		if pos ~= nil then
			T.fail("log line %d has a raw byte 0x%02x at column " ..
			    "%d:\n    %q", n, l:byte(pos), pos, l)
		end
	end
end

-- Token escaping understood by mtclient.py.
function T.esc(s)
	if s == "" then
		return "-"
	end
	if s == "-" then
		return "\\x2d"
	end
	return (s:gsub(".", function(ch)
		local b = ch:byte()

		if b < 33 or b > 126 or b == 92 then
			return string.format("\\x%02x", b)
		end
		return nil
	end))
end

-- Runs mtclient.py with steps (a list of lists: { "rcpt", "<a@b>" }) and
-- optionally the protocol flags to offer (a hex string).
-- Returns the parsed output: { neg = {proto, acts}, replies = {...},
-- mods = {...}, err = "..." or nil, raw = "..." }.  Each reply or mod is
-- { num = step number, step = name, cmd = char, data = unescaped text }.
function T.mtclient(steps, proto)
	local path = string.format("%s/steps.%d.txt", T.tmp, math.random(1e9))
	local f = assert(io.open(path, "wb"))
	local res = { replies = {}, mods = {}, noreply = {}, raw = "" }

	for _, s in ipairs(steps) do
		local toks = { s[1] }
		for i = 2, #s do
			toks[#toks + 1] = T.esc(s[i])
		end
		f:write(table.concat(toks, " "), "\n")
	end
	f:close()
	local p = assert(io.popen(string.format("python3 %s/mtclient.py '%s' " ..
	    "%s < '%s' 2>&1", T.dir, T.sock, proto or "", path)))
	res.raw = p:read("a")
	p:close()
	os.remove(path)
	local function unesc(x)
		if x == "-" then
			return ""
		end
		return (x:gsub("\\x(%x%x)", function(h)
			return string.char(tonumber(h, 16))
		end))
	end
	for l in res.raw:gmatch("([^\n]*)\n") do
		local kind, num, step, cmd, data =
		    l:match("^(%u+) (%d+) (%S+) (%S) (%S+)$")
		if kind == "REPLY" or kind == "MOD" then
			local rec = { num = tonumber(num), step = step,
			    cmd = cmd, data = unesc(data) }
			if kind == "REPLY" then
				res.replies[#res.replies + 1] = rec
			else
				res.mods[#res.mods + 1] = rec
			end
		elseif l:match("^NOREPLY ") then
			local n2, s2 = l:match("^NOREPLY (%d+) (%S+)$")
			res.noreply[#res.noreply + 1] = { num = tonumber(n2),
			    step = s2 }
		elseif l:match("^NEG ") then
			local pr, ac = l:match("^NEG (%x+) (%x+)$")
			res.neg = { tonumber(pr, 16), tonumber(ac, 16) }
		elseif l:match("^ERR") then
			res.err = l
		elseif l ~= "" then
			res.err = res.err or ("unexpected output: " .. l)
		end
	end
	return res
end

-- The reply mtclient got for step number num (nil if none).
function T.reply_of(res, num)
	for _, r in ipairs(res.replies) do
		if r.num == num then
			return r
		end
	end
	return nil
end

-- A 'y' (SMFIR_REPLYCODE) reply's text, split: code, dsn, text.
function T.split_reply(data)
	local code, dsn, text

	data = data:gsub("%z$", "")
	code, dsn, text = data:match("^(%d%d%d) (%d%.%d+%.%d+) (.*)$")

	if code == nil then
		code, text = data:match("^(%d%d%d) (.*)$")
	end
	return code, dsn, text
end

-- Runs the test body; miltertest does not print Lua errors, so print the
-- message and a traceback here, then fail.
function T.run(fn)
	local ok, e = xpcall(fn, function(m)
		return debug.traceback(tostring(m), 2)
	end)

	io.stdout:flush()
	if not ok then
		io.stderr:write("FAIL: ", tostring(e), "\n")
		io.stderr:flush()
		error("test failed", 0)
	end
	print("PASS")
end

math.randomseed(os.time())

return T
