-- Malformed input through miltertest: unbalanced brackets, control and
-- 8-bit bytes in addresses and names, an empty and a 300-character HELO,
-- missing macros.  Each gets a clean verdict, the daemon survives, and the
-- log holds no raw control characters (escaped as \xNN).
local T = dofile(os.getenv("PORTERO_TESTDIR") .. "/lib.lua")

local n = 0

-- One message; returns its EOM decision line.
local function message(name, ip, helo, from, rcpts)
	local qid = string.format("4Mal%04d", n)
	local c

	n = n + 1
	c = T.connect(name, ip)
	T.expect(c, SMFIR_CONTINUE, "connect " .. ip)
	T.helo(c, helo)
	T.mail(c, from, { "i", qid })
	for _, r in ipairs(rcpts or { "<bob@corp.example>" }) do
		T.rcpt(c, r, SMFIR_CONTINUE)
	end
	T.data(c)
	T.expect_accept(c, qid)
	mt.disconnect(c)
	return T.one({ qid .. ": " }), qid
end

T.run(function()
	local l

	-- unbalanced angle brackets: invalid sender (2.0), still accepted
	l = message("a.example.com", "192.0.2.70", "a.example.com",
	    "<alice@example.com")
	T.expect_field(l, "reason", "sender:invalid=2.0")
	T.expect_field(l, "from", "<\\x3calice@example.com>")
	l = message("a.example.com", "192.0.2.70", "a.example.com",
	    "alice@example.com>")
	T.expect_field(l, "reason", "sender:invalid=2.0")
	T.expect_field(l, "from", "<alice@example.com\\x3e>")
	-- ... in recipients: logged as given
	l = message("a.example.com", "192.0.2.70", "a.example.com",
	    "<alice@example.com>", { "<bob@corp.example", "carol@corp.example>",
	    "<>", "<<>>", "<@>", "<a@>" })
	T.expect_field(l, "rcpt", "<\\x3cbob@corp.example>," ..
	    "<carol@corp.example\\x3e>,<\\x3c\\x3e>,<\\x3c\\x3c\\x3e\\x3e>," ..
	    "<\\x3c@\\x3e>,<\\x3ca@\\x3e>")
	-- a blacklisted address with broken syntax is not matched, only
	-- scored
	l = message("a.example.com", "192.0.2.70", "a.example.com",
	    "<spammer@example.net")
	T.expect_field(l, "reason", "sender:invalid=2.0")

	-- control and 8-bit bytes in the sender, recipient, HELO, client name
	l = message("\1evil\255.example", "192.0.2.71", "he\1lo\255",
	    "<us\1er\255@example.com>", { "<rc\1pt\255@corp.example>",
	    "<bob@corp.example>" })
	T.expect_field(l, "client", "\\x01evil\\xff.example[192.0.2.71]")
	T.expect_field(l, "helo", "<he\\x01lo\\xff>")
	T.expect_field(l, "from", "<\\x3cus\\x01er\\xff@example.com\\x3e>")
	T.expect_field(l, "rcpt", "<\\x3crc\\x01pt\\xff@corp.example\\x3e>," ..
	    "<bob@corp.example>")
	T.expect_field(l, "reason", "helo:invalid=1.0 sender:invalid=2.0")
	-- bytes that break a log line or a key=value field
	l = message("x.example", "192.0.2.72", "a\r\nb c\"d\\e",
	    "<\"a\\\"b\"@example.com>", { "<x\ty@corp.example>" })
	T.expect_field(l, "helo", "<a\\x0d\\x0ab\\x20c\\x22d\\x5ce>")
	T.expect_field(l, "from", "<\\x22a\\x5c\\x22b\\x22@example.com>")

	-- empty HELO, 300-character HELO
	l = message("a.example.com", "192.0.2.73", "", "<alice@example.com>")
	T.expect_field(l, "reason", "helo:invalid=1.0")
	T.expect_field(l, "helo", "<>")
	l = message("a.example.com", "192.0.2.74", string.rep("h", 296) ..
	    ".com", "<alice@example.com>")
	T.expect_field(l, "reason", "helo:invalid=1.0")
	T.check(#T.field(l, "helo") <= 300, "helo= not cut: %d bytes",
	    #T.field(l, "helo"))
	-- a 300-character HELO made of valid 63-byte labels
	local long = string.rep(string.rep("a", 63) .. ".", 4) ..
	    string.rep("b", 40)
	l = message("a.example.com", "192.0.2.74", long, "<alice@example.com>")
	T.expect_field(l, "reason", "helo:invalid=1.0")

	-- long addresses (miltertest's own buffer is 1 KB: 900 bytes here;
	-- mtclient.py sends 10 KB in t_malformed_raw)
	l = message("a.example.com", "192.0.2.75", "a.example.com",
	    "<" .. string.rep("x", 900) .. "@example.com>",
	    { "<" .. string.rep("y", 900) .. "@corp.example>" })
	T.expect_field(l, "reason", "sender:invalid=2.0")
	T.check(#l < 2000, "decision line not bounded: %d bytes", #l)

	-- no macros at all: no j, no {i}, no {daemon_addr}, no {auth_*}
	local c = T.connect("plain.example.com", "192.0.2.76")
	T.helo(c, "[192.0.2.25]")
	T.mail(c, "<alice@example.com>")
	T.rcpt(c, "<bob@corp.example>")
	T.data(c)
	T.expect_accept(c, "no macros")
	l = T.one({ "client=plain.example.com[192.0.2.76]" })
	T.expect_field(l, "queue", "NOQUEUE")
	T.expect_field(l, "reason", "helo:literal_mismatch=1.0")
	mt.disconnect(c)
	-- empty macro values count as missing
	c = T.connect("empty.example.com", "192.0.2.77",
	    { "j", "", "{daemon_addr}", "", "{daemon_name}", "" })
	T.helo(c, "empty.example.com")
	T.mail(c, "<alice@example.com>", { "i", "", "{auth_authen}", "" })
	T.rcpt(c, "<bob@corp.example>")
	T.data(c)
	T.expect_accept(c, "empty macros")
	l = T.one({ "client=empty.example.com[192.0.2.77]" })
	T.expect_field(l, "queue", "NOQUEUE")
	T.expect_field(l, "dir", "in")
	mt.disconnect(c)
	-- client names Postfix uses for "no name"
	for i, name in ipairs({ "unknown", "[192.0.2.78]", "" }) do
		c = T.connect(name, "192.0.2.78")
		T.helo(c, "x.example.com")
		T.mail(c, "<alice@example.com>", { "i", "4MalName" .. i })
		T.rcpt(c, "<bob@corp.example>")
		T.data(c)
		T.expect_accept(c, "client name " .. name)
		T.expect_field(T.one({ "4MalName" .. i .. ": " }), "client",
		    "unknown[192.0.2.78]")
		mt.disconnect(c)
	end
	-- a connection that ends without a message, or in the middle of one
	c = T.connect("quit.example.com", "192.0.2.79")
	mt.disconnect(c)
	c = T.connect("abort.example.com", "192.0.2.79")
	T.helo(c, "abort.example.com")
	T.mail(c, "<alice@example.com>")
	T.rcpt(c, "<bob@corp.example>")
	mt.abort(c)
	T.mail(c, "<alice@example.com>", { "i", "4MalAfterAbort" })
	T.rcpt(c, "<bob@corp.example>")
	T.data(c)
	T.expect_accept(c, "message after abort")
	T.expect_field(T.one({ "4MalAfterAbort: " }), "id",
	    T.field(T.one({ "4MalAfterAbort: " }), "conn") .. ".2")
	mt.disconnect(c, false)

	T.expect_clean_log()
end)
