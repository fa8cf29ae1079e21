-- The SMTP reply text of every refusal (SPEC section 3) ends with the
-- decision id, and that id is the id= of the decision line.  miltertest
-- cannot show reply text, so mtclient.py speaks the protocol here.
local T = dofile(os.getenv("PORTERO_TESTDIR") .. "/lib.lua")

-- Runs steps, checks that step number num got a REPLYCODE reply equal to
-- code dsn text "[id=...]", and that the decision line found by needles
-- has the same id and code.  Returns the id.
local function expect_text(steps, num, code, dsn, text, needles)
	local res = T.mtclient(steps)
	local r = T.reply_of(res, num)

	T.check(res.err == nil, "mtclient: %s\n%s", tostring(res.err), res.raw)
	T.check(r ~= nil, "no reply to step %d:\n%s", num, res.raw)
	T.check(r.cmd == "y", "step %d (%s): SMFIR_REPLYCODE expected, got " ..
	    "'%s'", num, r.step, r.cmd)
	local c, d, t = T.split_reply(r.data)
	T.check(c == code and d == dsn, "reply %q: %s %s expected", r.data,
	    code, dsn)
	local body, id = t:match("^(.*) %[id=([%x.]+)%]$")
	T.check(body == text, "reply text\n    %q expected, got\n    %q", text,
	    tostring(body or t))
	local l = T.one(needles)
	T.check(T.field(l, "id") == id or (T.field(l, "id") == nil and
	    T.field(l, "conn") == id), "reply id %s differs from the " ..
	    "decision line:\n    %s", id, l)
	T.expect_field(l, "code", code)
	T.expect_field(l, "dsn", dsn)
	return id, res
end

T.run(function()
	local id, id2, res

	-- blacklisted client (delayed to RCPT); two refusals, one id
	id, res = expect_text({
	    { "macro", "C", "j", "mx.portero.test" },
	    { "connect", "mx.example.net", "4", "4711", "203.0.113.5" },
	    { "helo", "mx.example.net" },
	    { "macro", "M", "i", "4RtClient1" },
	    { "mail", "<a@example.net>" },
	    { "rcpt", "<x@corp.example>" },
	    { "rcpt", "<y@corp.example>" },
	    { "rcpt", "<postmaster@corp.example>" },
	    { "header", "Subject", "t" }, { "eoh" }, { "body", "x\r\n" },
	    { "eom" } }, 6, "554", "5.7.1",
	    "Service unavailable; client [203.0.113.5] blocked by local policy",
	    { "4RtClient1: ", "rcpt=<x@corp.example>" })
	T.check(id:match("^%x+%.1$"), "decision id %s is not CONN.1", id)
	local r7 = T.reply_of(res, 7)
	T.check(r7 ~= nil and r7.cmd == "y" and r7.data:find("[id=" .. id ..
	    "]", 1, true), "second refused RCPT: same reply and id " ..
	    "expected, got %s", r7 and r7.data or "nothing")
	T.check(T.reply_of(res, 8).cmd == "c", "whitelisted recipient not " ..
	    "accepted: '%s'", T.reply_of(res, 8).cmd)
	local eom = T.reply_of(res, 12)
	T.check(eom ~= nil and (eom.cmd == "a" or eom.cmd == "c"),
	    "EOM: accept expected, got %s", eom and eom.cmd or "nothing")
	T.check(#res.mods == 0, "EOM modified the message: %s", res.raw)

	-- blacklisted sender; the reply names the normalised address
	expect_text({
	    { "connect", "mail.example.com", "4", "4711", "192.0.2.10" },
	    { "helo", "mail.example.com" },
	    { "macro", "M", "i", "4RtSender1" },
	    { "mail", "<Spammer@EXAMPLE.net>", "SIZE=100" },
	    { "rcpt", "<x@corp.example>" } }, 5, "550", "5.7.1",
	    "<Spammer@example.net>: Sender address rejected: Access denied",
	    { "4RtSender1: " })

	-- blacklisted recipient; the second message of the connection is .2
	id, res = expect_text({
	    { "connect", "mail.example.com", "4", "4711", "192.0.2.10" },
	    { "helo", "mail.example.com" },
	    { "macro", "M", "i", "4RtRcpt1" },
	    { "mail", "<alice@example.com>" },
	    { "rcpt", "<bob@corp.example>" },
	    { "header", "Subject", "t" }, { "eoh" }, { "body", "x\r\n" },
	    { "eom" },
	    { "macro", "M", "i", "4RtRcpt2" },
	    { "mail", "<alice@example.com>" },
	    { "rcpt", "<nobody@corp.example>" } }, 12, "550", "5.7.1",
	    "<nobody@corp.example>: Recipient address rejected: Access denied",
	    { "4RtRcpt2: " })
	T.check(id:match("^%x+%.2$"), "decision id %s is not CONN.2", id)
	id2 = T.field(T.one({ "4RtRcpt1: " }), "id")
	T.check(id2 == id:gsub("%.2$", ".1"), "ids %s and %s are not of " ..
	    "one connection", id2, id)

	-- HELO that claims to be us: our_names, then the j macro
	expect_text({
	    { "connect", "mail.example.com", "4", "4711", "192.0.2.13" },
	    { "helo", "gw.portero.test" },
	    { "macro", "M", "i", "4RtHelo1" },
	    { "mail", "<alice@example.com>" },
	    { "rcpt", "<bob@corp.example>" } }, 5, "550", "5.7.1",
	    "Helo command rejected: Host claims to be us", { "4RtHelo1: " })
	expect_text({
	    { "macro", "C", "j", "mx.portero.test" },
	    { "connect", "mail.example.com", "4", "4711", "192.0.2.14" },
	    { "helo", "MX.portero.test" },
	    { "macro", "M", "i", "4RtHelo2" },
	    { "mail", "<alice@example.com>" },
	    { "rcpt", "<bob@corp.example>" } }, 6, "550", "5.7.1",
	    "Helo command rejected: Host claims to be us", { "4RtHelo2: " })

	-- a '%' in an address must not break the reply (libmilter formats it)
	res = T.mtclient({
	    { "connect", "mail.example.com", "4", "4711", "192.0.2.15" },
	    { "helo", "mail.example.com" },
	    { "macro", "M", "i", "4RtPct1" },
	    { "mail", "<a%b@spam.example>" },
	    { "rcpt", "<x@corp.example>" } })
	local r = T.reply_of(res, 5)
	T.check(r ~= nil and r.cmd == "y" and r.data:find("^550 5%.7%.1 <a%%"),
	    "sender with %%: 550 reply expected, got %s", r and r.data or res.raw)
	T.one({ "4RtPct1: ", "verdict=reject" })

	-- a quoted local part with a space is kept as given
	expect_text({
	    { "connect", "mail.example.com", "4", "4711", "192.0.2.16" },
	    { "helo", "mail.example.com" },
	    { "macro", "M", "i", "4RtQuoted1" },
	    { "mail", "<\"a b\"@spam.example>" },
	    { "rcpt", "<x@corp.example>" } }, 5, "550", "5.7.1",
	    "<\"a b\"@spam.example>: Sender address rejected: Access denied",
	    { "4RtQuoted1: " })
	-- control bytes make the sender invalid, not blacklisted
	res = T.mtclient({
	    { "connect", "mail.example.com", "4", "4711", "192.0.2.17" },
	    { "helo", "mail.example.com" },
	    { "macro", "M", "i", "4RtBytes1" },
	    { "mail", "<\1x\255@spam.example>" },
	    { "rcpt", "<x@corp.example>" } })
	r = T.reply_of(res, 5)
	T.check(r ~= nil and r.cmd == "c", "sender with control bytes: " ..
	    "continue expected, got %s", r and r.data or res.raw)
	-- an MTA that offers no "no reply" flags gets a reply at every step:
	-- connect, HELO and MAIL continue even when a refusal is held
	res = T.mtclient({
	    { "macro", "C", "j", "mx.portero.test" },
	    { "connect", "mx.example.net", "4", "4711", "203.0.113.6" },
	    { "helo", "mx.portero.test" },
	    { "macro", "M", "i", "4RtNoNR1" },
	    { "mail", "<spammer@example.net>" },
	    { "rcpt", "<x@corp.example>" },
	    { "rcpt", "<postmaster@corp.example>" },
	    { "header", "Subject", "t" }, { "eoh" }, { "body", "x\r\n" },
	    { "eom" } }, "77f")
	T.check(res.err == nil and #res.noreply == 0, "every step should " ..
	    "be answered:\n%s", res.raw)
	for _, num in ipairs({ 2, 3, 5, 7, 8, 9, 10 }) do
		r = T.reply_of(res, num)
		T.check(r ~= nil and r.cmd == "c", "step %d: continue " ..
		    "expected:\n%s", num, res.raw)
	end
	r = T.reply_of(res, 6)
	T.check(r ~= nil and r.cmd == "y" and r.data:find("^554 5%.7%.1 " ..
	    "Service unavailable; client %[203%.0%.113%.6%]"), "RCPT: the " ..
	    "held client refusal expected:\n%s", res.raw)
	r = T.reply_of(res, 11)
	T.check(r ~= nil and (r.cmd == "a" or r.cmd == "c"), "EOM: accept " ..
	    "expected:\n%s", res.raw)
	T.expect_clean_log()
end)
