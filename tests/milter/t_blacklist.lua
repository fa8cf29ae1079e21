-- Blacklists (client address, client name, sender, recipient) and
-- whitelists.  Client and sender refusals are held until RCPT (delayed
-- reject): connect, HELO and MAIL continue, every RCPT is refused with its
-- own decision line, whitelisted recipients are exempt and accepted.
local T = dofile(os.getenv("PORTERO_TESTDIR") .. "/lib.lua")

-- Checks a refused-RCPT decision line.
local function refused(qid, rcpt, code, extra)
	local l = T.one({ qid .. ": ", "rcpt=<" .. rcpt .. ">" })

	T.expect_field(l, "verdict", "reject")
	T.expect_field(l, "code", code)
	T.expect_field(l, "dsn", "5.7.1")
	T.expect_field(l, "by", "blacklist")
	T.expect_field(l, "dir", "in")
	T.check(T.field(l, "id"):match("^%x+%.%d+$"), "bad id= in %s", l)
	if extra ~= nil then
		T.check(T.field(l, "reason"):find(extra, 1, true),
		    "reason should contain %s: %s", extra, l)
	end
	return l
end

-- A whole message from client (name, ip) with sender from and recipients
-- rcpts = { {addr, expected reply}, ... }; returns the connection.
local function message(name, ip, helo, qid, from, rcpts)
	local c = T.connect(name, ip)
	local accepted = 0

	T.expect(c, SMFIR_CONTINUE, "connect " .. ip .. " (delayed reject)")
	T.helo(c, helo)
	T.mail(c, from, { "i", qid })
	for _, r in ipairs(rcpts) do
		T.rcpt(c, r[1], r[2])
		if r[2] == SMFIR_CONTINUE then
			accepted = accepted + 1
		end
	end
	if accepted > 0 then
		T.data(c)
		T.expect_accept(c, qid)
		T.expect_unmodified(c, qid)
	end
	return c
end

local REJ, CONT = SMFIR_REPLYCODE, SMFIR_CONTINUE

T.run(function()
	local c, l

	-- client address: two refused recipients, one whitelisted recipient
	c = message("mx.example.net", "203.0.113.9", "mx.example.net",
	    "4BlClient01", "<alice@example.net>",
	    { { "<a@corp.example>", REJ }, { "<b@corp.example>", REJ },
	      { "<postmaster@corp.example>", CONT } })
	local l1 = refused("4BlClient01", "a@corp.example", "554",
	    "blacklist:client")
	local l2 = refused("4BlClient01", "b@corp.example", "554")
	T.check(T.field(l1, "id") == T.field(l2, "id"),
	    "refusals of one message have different ids: %s / %s",
	    T.field(l1, "id"), T.field(l2, "id"))
	l = T.one({ "4BlClient01: ", "verdict=accept" })
	T.expect_field(l, "rcpt", "<postmaster@corp.example>")
	T.expect_field(l, "id", T.field(l1, "id"))
	T.check(#T.find({ "4BlClient01: " }) == 3,
	    "3 decision lines expected for 4BlClient01, found %d",
	    #T.find({ "4BlClient01: " }))
	-- the client stays refused for the next message on the connection
	T.mail(c, "<alice@example.net>", { "i", "4BlClient02" })
	T.rcpt(c, "<c@corp.example>", REJ)
	refused("4BlClient02", "c@corp.example", "554")
	mt.disconnect(c)

	-- client names: the name and its subdomains, not look-alikes
	c = message("bad.example", "192.0.2.77", "bad.example", "4BlName01",
	    "<x@example.com>", { { "<a@corp.example>", REJ } })
	refused("4BlName01", "a@corp.example", "554")
	mt.disconnect(c)
	c = message("MX1.Bad.Example", "192.0.2.78", "mx1.bad.example",
	    "4BlName02", "<x@example.com>", { { "<a@corp.example>", REJ } })
	refused("4BlName02", "a@corp.example", "554")
	mt.disconnect(c)
	c = message("notbad.example", "192.0.2.79", "notbad.example",
	    "4BlName03", "<x@example.com>", { { "<a@corp.example>", CONT } })
	T.one({ "4BlName03: ", "verdict=accept" })
	mt.disconnect(c)

	-- senders: exact address (any case) and "@domain"
	c = message("mail.example.com", "192.0.2.80", "mail.example.com",
	    "4BlSnd01", "<spammer@example.net>",
	    { { "<a@corp.example>", REJ }, { "<postmaster@corp.example>", CONT } })
	refused("4BlSnd01", "a@corp.example", "550", "blacklist:sender")
	T.one({ "4BlSnd01: ", "verdict=accept", "rcpt=<postmaster@corp.example>" })
	-- a clean sender on the same connection is not held
	T.mail(c, "<alice@example.com>", { "i", "4BlSnd02" })
	T.rcpt(c, "<a@corp.example>", CONT)
	T.data(c)
	T.expect_accept(c, "clean sender after a blacklisted one")
	l = T.one({ "4BlSnd02: " })
	T.expect_field(l, "verdict", "accept")
	T.expect_field(l, "reason", "")
	mt.disconnect(c)
	c = message("mail.example.com", "192.0.2.81", "mail.example.com",
	    "4BlSnd03", "<SPAMMER@Example.NET>", { { "<a@corp.example>", REJ } })
	refused("4BlSnd03", "a@corp.example", "550")
	mt.disconnect(c)
	c = message("mail.example.com", "192.0.2.82", "mail.example.com",
	    "4BlSnd04", "<anyone@spam.example>", { { "<a@corp.example>", REJ } })
	refused("4BlSnd04", "a@corp.example", "550")
	mt.disconnect(c)

	-- recipients: refused at once, the others of the message accepted
	c = message("mail.example.com", "192.0.2.83", "mail.example.com",
	    "4BlRcpt01", "<alice@example.com>",
	    { { "<bob@corp.example>", CONT }, { "<nobody@corp.example>", REJ },
	      { "<NoBody@CORP.example>", REJ }, { "<carol@corp.example>", CONT } })
	refused("4BlRcpt01", "nobody@corp.example", "550", "blacklist:recipient")
	refused("4BlRcpt01", "NoBody@corp.example", "550")
	l = T.one({ "4BlRcpt01: ", "verdict=accept" })
	T.expect_field(l, "rcpt", "<bob@corp.example>,<carol@corp.example>")
	mt.disconnect(c)

	-- a whitelisted sender (forgeable) does not lift a client refusal...
	c = message("mx.example.net", "203.0.113.9", "mx.example.net",
	    "4WlSnd01", "<friend@example.org>", { { "<a@corp.example>", REJ } })
	refused("4WlSnd01", "a@corp.example", "554")
	mt.disconnect(c)
	-- ... but exempts the message from the other inbound checks
	c = message("mail.example.com", "192.0.2.84", "mail.example.com",
	    "4WlSnd02", "<Friend@Example.org>", { { "<nobody@corp.example>",
	    CONT } })
	T.one({ "4WlSnd02: ", "verdict=accept" })
	mt.disconnect(c)
	-- whitelisted clients win over the blacklists
	c = message("mx.example.net", "198.51.100.7", "localhost",
	    "4WlClient01", "<spammer@example.net>", { { "<a@corp.example>", CONT } })
	l = T.one({ "4WlClient01: ", "verdict=accept" })
	T.expect_field(l, "reason", "")
	mt.disconnect(c)
	c = message("good.example", "203.0.113.20", "good.example",
	    "4WlName01", "<spammer@example.net>", { { "<a@corp.example>", CONT } })
	T.one({ "4WlName01: ", "verdict=accept" })
	mt.disconnect(c)

	T.check(#T.find({ "verdict=reject" }) == 11,
	    "11 refused recipients expected, found %d",
	    #T.find({ "verdict=reject" }))
	T.expect_clean_log()
end)
