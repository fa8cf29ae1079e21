-- HELO checks: bare IP, address literal mismatch, non-FQDN, invalid
-- syntax, and "claims to be us" (our_names, the j macro, our address as a
-- literal) with ours_action = reject, held until RCPT.  The decision line
-- shows each finding with its points.
local T = dofile(os.getenv("PORTERO_TESTDIR") .. "/lib.lua")

local n = 0

-- One connection and message; returns the decision line for its RCPT
-- (refused) or EOM (accepted).
local function case(ip, helo, want_reason, want_reply, macros, rcpt)
	local qid = string.format("4Helo%04d", n)
	local c, l

	n = n + 1
	c = T.connect("client.example.org", ip, macros)
	T.expect(c, SMFIR_CONTINUE, "connect")
	T.helo(c, helo)
	T.mail(c, "<alice@example.com>", { "i", qid })
	T.rcpt(c, rcpt or "<bob@corp.example>", want_reply or SMFIR_CONTINUE,
	    nil)
	if (want_reply or SMFIR_CONTINUE) == SMFIR_CONTINUE then
		T.data(c)
		T.expect_accept(c, "HELO " .. helo)
	end
	mt.disconnect(c)
	l = T.one({ qid .. ": " })
	if want_reason ~= nil and T.field(l, "reason") ~= want_reason then
		T.fail("HELO %q from %s: reason=\"%s\" expected, got:\n    %s",
		    helo, ip, want_reason, l)
	end
	return l
end

T.run(function()
	local l

	-- scores (each 1.0 in default.conf); below the reject threshold
	l = case("192.0.2.1", "192.0.2.1", "helo:bare_ip=1.0")
	T.expect_field(l, "score", "1.0")
	T.expect_field(l, "verdict", "accept")
	T.expect_field(l, "helo", "<192.0.2.1>")
	case("192.0.2.1", "2001:db8::1", "helo:bare_ip=1.0")
	l = case("192.0.2.7", "[192.0.2.99]", "helo:literal_mismatch=1.0")
	T.expect_field(l, "helo", "<[192.0.2.99]>")
	case("192.0.2.7", "[IPv6:2001:db8::1]", "helo:literal_mismatch=1.0")
	case("192.0.2.99", "[192.0.2.99]", "")
	case("2001:db8::99", "[IPv6:2001:db8::99]", "")
	l = case("192.0.2.8", "localhost", "helo:non_fqdn=1.0")
	T.expect_field(l, "score", "1.0")
	T.expect_field(l, "dir", "in")
	case("192.0.2.8", "bad_host!", "helo:invalid=1.0")
	case("192.0.2.8", "[300.1.1.1]", "helo:invalid=1.0")
	case("192.0.2.8", "-bad.example.com", "helo:invalid=1.0")
	case("192.0.2.8", "mail.example.com", "")
	case("192.0.2.8", "mail.example.com.", "")
	-- from a blacklisted client (SPEC example): refused, still scored
	l = case("203.0.113.9", "[192.0.2.99]", nil, SMFIR_REPLYCODE)
	T.check(T.field(l, "reason"):find("helo:literal_mismatch=1.0", 1,
	    true), "helo:literal_mismatch=1.0 missing: %s", l)
	T.expect_field(l, "by", "blacklist")

	-- claims to be us: refused at RCPT
	for _, h in ipairs({ "gw.portero.test", "GW.Portero.Test." }) do
		l = case("192.0.2.9", h, "helo:ours=5.0", SMFIR_REPLYCODE)
		T.expect_field(l, "verdict", "reject")
		T.expect_field(l, "code", "550")
		T.expect_field(l, "dsn", "5.7.1")
		T.expect_field(l, "by", "helo")
		T.expect_field(l, "score", "5.0")
	end
	-- ... as Postfix's $myhostname (macro j)
	l = case("192.0.2.9", "mx.portero.test", "helo:ours=5.0",
	    SMFIR_REPLYCODE, { "j", "mx.portero.test" })
	-- without j the same name is just a name
	case("192.0.2.9", "mx.portero.test", "")
	-- ... as our address ({daemon_addr}) in a literal
	case("192.0.2.60", "[192.0.2.25]", "helo:ours=5.0", SMFIR_REPLYCODE,
	    { "{daemon_addr}", "192.0.2.25" })
	-- without {daemon_addr}: only a literal mismatch
	case("192.0.2.60", "[192.0.2.25]", "helo:literal_mismatch=1.0")
	-- the whitelisted recipient is exempt from the held refusal
	case("192.0.2.9", "gw.portero.test", "helo:ours=5.0", SMFIR_CONTINUE,
	    nil, "<postmaster@corp.example>")

	-- a second HELO (EHLO after STARTTLS) replaces the first one's
	-- findings and held verdict
	local c = T.connect("client.example.org", "192.0.2.61")
	T.helo(c, "gw.portero.test")
	T.helo(c, "mail.example.org")
	T.mail(c, "<alice@example.com>", { "i", "4HeloAgain1" })
	T.rcpt(c, "<bob@corp.example>")
	T.data(c)
	T.expect_accept(c, "second HELO")
	l = T.one({ "4HeloAgain1: " })
	T.expect_field(l, "reason", "")
	T.expect_field(l, "helo", "<mail.example.org>")
	mt.disconnect(c)
	c = T.connect("client.example.org", "192.0.2.62")
	T.helo(c, "localhost")
	T.helo(c, "bad_host!")
	T.mail(c, "<alice@example.com>", { "i", "4HeloAgain2" })
	T.rcpt(c, "<bob@corp.example>")
	T.data(c)
	T.expect_accept(c, "second HELO")
	T.expect_field(T.one({ "4HeloAgain2: " }), "reason", "helo:invalid=1.0")
	mt.disconnect(c)
	T.expect_clean_log()
end)
