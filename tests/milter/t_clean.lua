-- A clean inbound message: every stage continues, EOM accepts without
-- touching the message, and exactly one decision line is logged with the
-- Postfix queue id (a long one), the decision id, and every field.
local T = dofile(os.getenv("PORTERO_TESTDIR") .. "/lib.lua")

T.run(function()
	local qid = "3zWlWK2Vxgzd8Wj"
	local c = T.connect("mail.example.com", "192.0.2.10",
	    { "j", "mx.portero.test", "{daemon_addr}", "192.0.2.25" })
	T.expect(c, SMFIR_CONTINUE, "connect")
	T.helo(c, "mail.example.com")
	T.mail(c, "<alice@example.com>", { "i", qid })
	T.rcpt(c, "<bob@corp.example>")
	T.rcpt(c, "<Carol@Corp.Example>")
	T.data(c, { { "From", "Alice <alice@example.com>" },
	    { "To", "bob@corp.example" }, { "Subject", "hello" } },
	    "Hi Bob.\r\n")
	T.expect_accept(c, "clean message")
	T.expect_unmodified(c, "clean message")

	local l = T.one({ qid .. ": " })
	local conn = T.field(l, "conn")
	T.check(conn ~= nil and conn:match("^%x+$"), "conn= missing: %s", l)
	T.expect_field(l, "queue", qid)
	T.expect_field(l, "id", conn .. ".1")
	T.expect_field(l, "client", "mail.example.com[192.0.2.10]")
	T.expect_field(l, "helo", "<mail.example.com>")
	T.expect_field(l, "from", "<alice@example.com>")
	-- the domain is lower-cased, the local part kept
	T.expect_field(l, "rcpt", "<bob@corp.example>,<Carol@corp.example>")
	T.expect_field(l, "verdict", "accept")
	T.expect_no_field(l, "would")
	T.expect_no_field(l, "code")
	T.expect_field(l, "reason", "")
	T.expect_field(l, "score", "0.0")
	T.expect_field(l, "dir", "in")
	-- size: header lines as sent ("Name: value\r\n") plus the body
	local size = (4 + 25 + 4) + (2 + 16 + 4) + (7 + 5 + 4) + 9
	T.expect_field(l, "size", tostring(size))
	T.check(T.field(l, "ms") ~= nil and T.field(l, "ms"):match("^%d+$"),
	    "ms= missing or not a number: %s", l)
	-- field order of SPEC section 7
	T.check(l:find("^portero%[%d+%]: " .. qid .. ": conn=%x+ id=%x+%.1 " ..
	    "client=.- helo=.- from=.- rcpt=.- verdict=accept reason=\".-\" " ..
	    "score=.- dir=in size=%d+ ms=%d+$") ~= nil,
	    "decision line not in the documented order:\n    %s", l)

	-- a second message on the same connection: decision id .2
	local qid2 = "4XqAbC0mYz9Kp2LmNoPq"
	T.mail(c, "<>", { "i", qid2 })
	T.rcpt(c, "<bob@corp.example>")
	T.data(c)
	T.expect_accept(c, "second message (null sender)")
	l = T.one({ qid2 .. ": " })
	T.expect_field(l, "id", conn .. ".2")
	T.expect_field(l, "from", "<>")
	T.expect_field(l, "verdict", "accept")
	mt.disconnect(c)

	-- no {i} at all: NOQUEUE; no j, no {daemon_*} macros either
	c = T.connect("relay.example.org", "192.0.2.11")
	T.helo(c, "relay.example.org")
	T.mail(c, "<dave@example.org>")
	T.rcpt(c, "<bob@corp.example>")
	T.data(c)
	T.expect_accept(c, "message without {i}")
	l = T.one({ "client=relay.example.org[192.0.2.11]" })
	T.expect_field(l, "queue", "NOQUEUE")
	T.expect_field(l, "verdict", "accept")
	local conn2 = T.field(l, "conn")
	T.check(conn2 ~= conn, "two connections got the same id %s", conn)
	T.expect_field(l, "id", conn2 .. ".1")
	mt.disconnect(c)

	-- {i} first known at RCPT (Postfix's default): used from then on
	c = T.connect("late.example.org", "192.0.2.12")
	T.helo(c, "late.example.org")
	T.mail(c, "<erin@example.org>")
	T.rcpt(c, "<bob@corp.example>", SMFIR_CONTINUE, { "i", "4ZlateQid0001" })
	T.data(c)
	T.expect_accept(c, "message with {i} at RCPT")
	l = T.one({ "client=late.example.org[192.0.2.12]" })
	T.expect_field(l, "queue", "4ZlateQid0001")
	mt.disconnect(c)

	-- exactly one decision line per message, nothing else refused
	T.check(#T.find({ " verdict=" }) == 4,
	    "4 decision lines expected, found %d", #T.find({ " verdict=" }))
	T.check(#T.find({ "verdict=reject" }) == 0, "unexpected reject")
	T.expect_clean_log()
end)
