-- Malformed input miltertest cannot send, through mtclient.py: 10 KB
-- envelope values, NUL bytes inside strings, protocol steps out of order,
-- odd connection families.  Each session must end in a clean verdict (or,
-- for what libmilter itself refuses, a closed session) and the daemon must
-- keep serving, with no raw control characters in its log.
local T = dofile(os.getenv("PORTERO_TESTDIR") .. "/lib.lua")

local BIG = 10 * 1024

-- Steps for a complete message; overrides: t.name, t.fam, t.ip, t.helo,
-- t.from (a list of MAIL args), t.rcpt (list of lists), t.hname, t.hval,
-- t.body, t.macros (connect macros, flat list).
local function session(qid, t)
	local steps = {}
	local function add(s)
		steps[#steps + 1] = s
	end

	if t.macros ~= nil then
		add({ "macro", "C", table.unpack(t.macros) })
	end
	add({ "connect", t.name or "client.example.org", t.fam or "4", "25",
	    t.ip or "192.0.2.90" })
	add({ "helo", t.helo or "client.example.org" })
	add({ "macro", "M", "i", qid })
	add({ "mail", table.unpack(t.from or { "<alice@example.com>" }) })
	for _, r in ipairs(t.rcpt or { { "<bob@corp.example>" } }) do
		add({ "rcpt", table.unpack(r) })
	end
	add({ "header", t.hname or "Subject", t.hval or "test" })
	add({ "eoh" })
	add({ "body", t.body or "Hello.\r\n" })
	add({ "eom" })
	return steps
end

-- Runs a session that must be accepted; returns its decision line.
local function accepted(qid, t)
	local res = T.mtclient(session(qid, t))

	T.check(res.err == nil, "%s: %s\n%s", qid, tostring(res.err), res.raw)
	for _, r in ipairs(res.replies) do
		local want = r.step == "eom" and "a" or "c"
		T.check(r.cmd == want or (r.step == "eom" and r.cmd == "c"),
		    "%s: step %d (%s): '%s' expected, got '%s' %q", qid, r.num,
		    r.step, want, r.cmd, r.data)
	end
	T.check(#res.mods == 0, "%s: message modified:\n%s", qid, res.raw)
	local l = T.one({ qid .. ": " })
	T.expect_field(l, "verdict", "accept")
	T.check(#l < 4096, "%s: decision line of %d bytes", qid, #l)
	return l, res
end

local function alive(qid)
	accepted(qid, {})
end

T.run(function()
	local l, res, r

	-- 10 KB values
	l = accepted("4Raw01", { from = { "<" .. string.rep("a", BIG) ..
	    "@example.com>" } })
	T.expect_field(l, "reason", "sender:invalid=2.0")
	T.check(#T.field(l, "from") < 300, "from= not cut")
	l = accepted("4Raw02", { rcpt = { { "<" .. string.rep("b", BIG) ..
	    "@corp.example>" }, { "<bob@corp.example>" } } })
	T.check(l:find(",<bob@corp.example> verdict=", 1, true),
	    "second recipient missing after a long one: %s", l)
	l = accepted("4Raw03", { helo = string.rep("h", BIG) })
	T.expect_field(l, "reason", "helo:invalid=1.0")
	l = accepted("4Raw04", { name = string.rep("n", BIG) .. ".example" })
	T.check(#T.field(l, "client") < 300, "client= not cut")
	accepted("4Raw05", { hname = "X-" .. string.rep("h", BIG),
	    hval = string.rep("v", BIG) })
	l = accepted("4Raw06", { from = { "<alice@" .. string.rep("d", BIG) ..
	    ".example>" } })
	T.expect_field(l, "reason", "sender:invalid=2.0")
	l = accepted("4Raw07", { macros = { "j", string.rep("j", BIG),
	    "{daemon_addr}", string.rep("1", BIG) }, helo = "[192.0.2.90]" })
	T.expect_field(l, "reason", "")
	-- a very long address with a blacklisted domain is not refused for
	-- it (syntax: too long), only scored
	accepted("4Raw08", { from = { "<" .. string.rep("s", 300) ..
	    "@spam.example>" } })
	-- many MAIL parameters
	local params = { "<alice@example.com>" }
	for i = 1, 200 do
		params[#params + 1] = "X-P" .. i .. "=" .. string.rep("p", 40)
	end
	accepted("4Raw09", { from = params })
	-- a 300 KB body in one chunk... of the sizes libmilter takes (64 KB)
	l = accepted("4Raw10", { body = string.rep("B", 60000) })
	T.expect_field(l, "size", tostring(60000 + 7 + 4 + 4))

	-- NUL bytes inside strings
	l = accepted("4RawNul1", { helo = "mail\0evil.example",
	    from = { "<a\0b@example.com>" },
	    rcpt = { { "<bob@corp.example\0junk>" } },
	    hname = "Sub\0ject", hval = "v\0x", body = "a\0b\r\n" })
	T.expect_field(l, "helo", "<mail>")
	-- a NUL in the connect host name breaks libmilter's framing of the
	-- packet (it closes the session); the daemon must go on
	T.mtclient({ { "connect", "nul\0name.example", "4", "25",
	    "192.0.2.90" }, { "helo", "x.example" } })
	l = accepted("4RawNul2", { from = { "\0<alice@example.com>" } })
	T.expect_field(l, "from", "<>")

	-- 8-bit and control bytes
	l = accepted("4RawBin1", { helo = "\255\254\1\127",
	    from = { "<\127\1@\255.example>" }, rcpt = { { "<\n@\r>" } } })
	T.expect_field(l, "helo", "<\\xff\\xfe\\x01\\x7f>")

	-- connection families: unix socket and unknown (local submission)
	l = accepted("4RawFam1", { fam = "L", ip = "/var/spool/postfix/x" })
	T.expect_field(l, "dir", "out")
	res = T.mtclient({ { "connect", "local.example", "U" },
	    { "helo", "localhost" }, { "macro", "M", "i", "4RawFam2" },
	    { "mail", "<root@localhost>" }, { "rcpt", "<bob@corp.example>" },
	    { "header", "Subject", "x" }, { "eoh" }, { "body", "x" },
	    { "eom" } })
	T.check(res.err == nil, "family U: %s", res.raw)
	T.expect_field(T.one({ "4RawFam2: " }), "verdict", "accept")

	-- libmilter's own parsing of bad addresses: whatever it answers,
	-- the daemon must survive
	for i, ip in ipairs({ "999.1.1.1", "", "zzz", string.rep("1", BIG) }) do
		T.mtclient({ { "connect", "bad.addr.example", "4", "25", ip },
		    { "helo", "x.example" } })
		T.mtclient({ { "connect", "bad.addr.example", "6", "25", ip },
		    { "helo", "x.example" } })
	end
	alive("4RawAlive1")

	-- steps out of order: libmilter itself ignores RCPT or EOM without
	-- MAIL (no reply; the MTA would time out); if one reaches portero it
	-- must get a tempfail
	for _, st in ipairs({ { "rcpt", "<bob@corp.example>" }, { "eom" } }) do
		res = T.mtclient({
		    { "connect", "order.example.org", "4", "25", "192.0.2.91" },
		    { "helo", "order.example.org" }, { "timeout", "1" }, st })
		r = T.reply_of(res, 4)
		T.check((r == nil and res.err == "ERR timed out") or (r ~= nil and
		    (r.cmd == "t" or (r.cmd == "y" and r.data:find("^4")))),
		    "%s without MAIL: tempfail or no reply expected, got:\n%s",
		    st[1], res.raw)
	end
	-- MAIL without any argument, RCPT without any argument
	T.mtclient({
	    { "connect", "order.example.org", "4", "25", "192.0.2.92" },
	    { "helo", "order.example.org" }, { "mail" }, { "rcpt" },
	    { "eom" } })
	-- HELO twice with MAIL in between, MAIL twice without RCPT
	T.mtclient({
	    { "connect", "order.example.org", "4", "25", "192.0.2.93" },
	    { "helo", "a.example" }, { "mail", "<a@example.com>" },
	    { "helo", "b.example" }, { "mail", "<b@example.com>" },
	    { "mail", "<c@example.com>" }, { "rcpt", "<bob@corp.example>" },
	    { "abort" }, { "rcpt", "<bob@corp.example>" }, { "eom" } })
	-- connection closed in the middle of a message
	T.mtclient({
	    { "connect", "cut.example.org", "4", "25", "192.0.2.94" },
	    { "helo", "cut.example.org" }, { "mail", "<a@example.com>" },
	    { "rcpt", "<bob@corp.example>" }, { "header", "Subject", "x" } })
	alive("4RawAlive2")

	T.expect_clean_log()
end)
