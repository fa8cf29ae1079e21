-- Per-module dry run (blacklist = { dry_run = true; ... } and
-- thresholds.dry_run): those modules only log would=reject, with their
-- points marked (dry); the other modules (helo) still refuse.
local T = dofile(os.getenv("PORTERO_TESTDIR") .. "/lib.lua")

local n = 0

local function case(ip, helo, from, rcpt, want)
	local qid = string.format("4DryM%04d", n)
	local c

	n = n + 1
	c = T.connect("client.example.org", ip)
	T.helo(c, helo)
	T.mail(c, from, { "i", qid })
	T.rcpt(c, rcpt, want)
	if want == SMFIR_CONTINUE then
		T.data(c)
		T.expect_accept(c, qid)
	end
	mt.disconnect(c)
	return T.one({ qid .. ": " })
end

T.run(function()
	local l

	-- blacklisted client, sender, recipient: accepted, would=reject
	l = case("203.0.113.9", "mx.example.net", "<a@example.net>",
	    "<bob@corp.example>", SMFIR_CONTINUE)
	T.expect_field(l, "verdict", "accept")
	T.expect_field(l, "would", "reject")
	T.expect_field(l, "by", "blacklist")
	T.expect_field(l, "reason", "blacklist:client=0.0(dry)")
	l = case("192.0.2.50", "mail.example.com", "<x@spam.example>",
	    "<bob@corp.example>", SMFIR_CONTINUE)
	T.expect_field(l, "would", "reject")
	T.expect_field(l, "by", "blacklist")
	l = case("192.0.2.51", "mail.example.com", "<alice@example.com>",
	    "<nobody@corp.example>", SMFIR_CONTINUE)
	T.expect_field(l, "would", "reject")
	T.expect_field(l, "rcpt", "<nobody@corp.example>")

	-- the helo module is live: a HELO claiming to be us is refused
	l = case("192.0.2.52", "gw.portero.test", "<alice@example.com>",
	    "<bob@corp.example>", SMFIR_REPLYCODE)
	T.expect_field(l, "verdict", "reject")
	T.expect_field(l, "by", "helo")
	T.expect_no_field(l, "would")
	-- ... also from a (dry-run) blacklisted client
	l = case("203.0.113.10", "gw.portero.test", "<alice@example.com>",
	    "<bob@corp.example>", SMFIR_REPLYCODE)
	T.expect_field(l, "by", "helo")

	-- score 10 with thresholds.dry_run: accepted, would=reject by=policy
	l = case("192.0.2.53", "localhost", "<alice@example.com>",
	    "<bob@corp.example>", SMFIR_CONTINUE)
	T.expect_field(l, "verdict", "accept")
	T.expect_field(l, "score", "10.0")
	T.expect_field(l, "would", "reject")
	T.expect_field(l, "by", "policy")

	-- clean: no would
	l = case("192.0.2.54", "mail.example.com", "<alice@example.com>",
	    "<bob@corp.example>", SMFIR_CONTINUE)
	T.expect_no_field(l, "would")
	T.check(#T.find({ "verdict=reject" }) == 2, "2 refusals expected " ..
	    "(the HELO ones), found %d", #T.find({ "verdict=reject" }))
	T.expect_clean_log()
end)
