-- milter.max_connections = 2: a third simultaneous connection is refused
-- at connect with a tempfail and a decision line (verdict=tempfail); once
-- a connection closes, its slot is free again.
local T = dofile(os.getenv("PORTERO_TESTDIR") .. "/lib.lua")

local function full_message(c, qid)
	T.helo(c, "mail.example.com")
	T.mail(c, "<alice@example.com>", { "i", qid })
	T.rcpt(c, "<bob@corp.example>")
	T.data(c)
	T.expect_accept(c, qid)
	T.one({ qid .. ": ", "verdict=accept" })
end

local function expect_tempfail(c, what)
	local r = mt.getreply(c)

	-- a tempfail with a reply text is sent as SMFIR_REPLYCODE (451)
	T.check(r == SMFIR_TEMPFAIL or r == SMFIR_REPLYCODE, "%s: tempfail " ..
	    "expected at connect, got %s", what, T.rname(r))
end

T.run(function()
	local c1 = T.connect("one.example.com", "192.0.2.101")
	T.expect(c1, SMFIR_CONTINUE, "connection 1")
	local c2 = T.connect("two.example.com", "192.0.2.102")
	T.expect(c2, SMFIR_CONTINUE, "connection 2")

	local c3 = T.connect("three.example.com", "192.0.2.103")
	expect_tempfail(c3, "connection 3 of 2")
	local l = T.one({ "[192.0.2.103] verdict=" })
	T.expect_field(l, "queue", "NOQUEUE")
	T.expect_field(l, "verdict", "tempfail")
	T.expect_field(l, "code", "451")
	T.expect_field(l, "dsn", "4.3.2")
	T.expect_field(l, "by", "max_connections")
	mt.disconnect(c3)

	-- the reply text carries the connection id of the decision line
	local res = T.mtclient({
	    { "connect", "four.example.com", "4", "25", "192.0.2.104" },
	    { "helo", "four.example.com" } })
	local r = T.reply_of(res, 1)
	T.check(r ~= nil and r.cmd == "y", "connection 4: REPLYCODE " ..
	    "expected:\n%s", res.raw)
	l = T.one({ "[192.0.2.104] verdict=" })
	local code, dsn, text = T.split_reply(r.data)
	T.check(code == "451" and dsn == "4.3.2" and text:find("%[id=" ..
	    T.field(l, "conn") .. "%]$"), "reply %q does not match:\n    %s",
	    r.data, l)

	-- the two open connections still work
	full_message(c2, "4MaxC2")
	full_message(c1, "4MaxC1")

	-- closing one frees a slot (the close is seen asynchronously)
	mt.disconnect(c1)
	local c5, ok
	for _ = 1, 40 do
		c5 = T.connect("five.example.com", "192.0.2.105")
		if mt.getreply(c5) == SMFIR_CONTINUE then
			ok = true
			break
		end
		mt.disconnect(c5)
		mt.sleep(0.1)
	end
	T.check(ok, "no slot freed after closing a connection")
	full_message(c5, "4MaxC5")
	mt.disconnect(c2)
	mt.disconnect(c5)
	T.expect_clean_log()
end)
