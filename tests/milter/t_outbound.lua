-- Outbound traffic (networks.internal, or {auth_authen} set at MAIL) gets
-- no inbound checks: no blacklist, HELO or sender scoring; dir=out.  The
-- same input from an outside client is refused, to show the difference.
local T = dofile(os.getenv("PORTERO_TESTDIR") .. "/lib.lua")

-- One message with bad HELO, blacklisted sender and blacklisted recipient.
local function bad_message(c, helo, mailmacros)
	T.helo(c, helo)
	T.mail(c, "<spammer@example.net>", mailmacros)
end

T.run(function()
	local c, l

	-- internal IPv4 client
	c = T.connect("app1.corp.example", "10.99.1.2")
	bad_message(c, "localhost")
	T.rcpt(c, "<someone@example.com>")
	T.rcpt(c, "<nobody@corp.example>")	-- blacklisted recipient
	T.data(c)
	T.expect_accept(c, "internal client")
	T.expect_unmodified(c, "internal client")
	l = T.one({ "client=app1.corp.example[10.99.1.2]" })
	T.expect_field(l, "verdict", "accept")
	T.expect_field(l, "dir", "out")
	T.expect_field(l, "reason", "")
	T.expect_field(l, "score", "0.0")
	T.expect_field(l, "rcpt", "<someone@example.com>,<nobody@corp.example>")
	T.expect_no_field(l, "would")
	mt.disconnect(c)

	-- internal IPv6 client (::1/128)
	c = T.connect("localhost", "::1")
	bad_message(c, "bad_host!")
	T.rcpt(c, "<someone@example.com>")
	T.data(c)
	T.expect_accept(c, "internal IPv6 client")
	l = T.one({ "client=localhost[::1]" })
	T.expect_field(l, "dir", "out")
	T.expect_field(l, "reason", "")
	mt.disconnect(c)

	-- next to an internal network: inbound
	c = T.connect("outside.example", "10.98.255.255")
	bad_message(c, "mail.example.com")
	T.rcpt(c, "<someone@example.com>", SMFIR_REPLYCODE)
	l = T.one({ "client=outside.example[10.98.255.255]" })
	T.expect_field(l, "dir", "in")
	T.expect_field(l, "by", "blacklist")
	mt.disconnect(c)

	-- authenticated user on a blacklisted client address
	c = T.connect("dyn.example.net", "203.0.113.9")
	bad_message(c, "roadwarrior.example.net",
	    { "{auth_authen}", "alice", "{auth_type}", "PLAIN", "i", "4AuthQ1" })
	T.rcpt(c, "<someone@example.com>")
	T.rcpt(c, "<nobody@corp.example>")
	T.data(c)
	T.expect_accept(c, "authenticated client")
	T.expect_unmodified(c, "authenticated client")
	l = T.one({ "4AuthQ1: " })
	T.expect_field(l, "verdict", "accept")
	T.expect_field(l, "dir", "out")
	T.expect_no_field(l, "would")
	-- what connect/HELO checks found no longer applies once authenticated
	T.expect_field(l, "reason", "")
	T.expect_field(l, "score", "0.0")
	T.check(#T.find({ "4AuthQ1: ", "verdict=reject" }) == 0,
	    "a recipient of the authenticated client was refused")
	mt.disconnect(c)

	-- the same client and message without authentication: refused
	c = T.connect("dyn.example.net", "203.0.113.9")
	bad_message(c, "roadwarrior.example.net", { "i", "4NoAuthQ1" })
	T.rcpt(c, "<someone@example.com>", SMFIR_REPLYCODE)
	l = T.one({ "4NoAuthQ1: " })
	T.expect_field(l, "verdict", "reject")
	T.expect_field(l, "dir", "in")
	mt.disconnect(c)

	-- empty {auth_authen} is no authentication
	c = T.connect("dyn.example.net", "203.0.113.10")
	bad_message(c, "roadwarrior.example.net",
	    { "{auth_authen}", "", "i", "4EmptyAuth1" })
	T.rcpt(c, "<someone@example.com>", SMFIR_REPLYCODE)
	l = T.one({ "4EmptyAuth1: " })
	T.expect_field(l, "dir", "in")
	mt.disconnect(c)
	T.expect_clean_log()
end)
