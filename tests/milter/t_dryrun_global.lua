-- Global dry run (dry_run = true): nothing is refused; every message is
-- accepted and its decision line says what would have happened
-- (verdict=accept would=reject by=CHECK).
local T = dofile(os.getenv("PORTERO_TESTDIR") .. "/lib.lua")

local n = 0

local function case(ip, helo, from, rcpts, want_by)
	local qid = string.format("4Dry%04d", n)
	local c, l

	n = n + 1
	c = T.connect("client.example.org", ip)
	T.expect(c, SMFIR_CONTINUE, "connect")
	T.helo(c, helo)
	T.mail(c, from, { "i", qid })
	for _, r in ipairs(rcpts) do
		T.rcpt(c, r, SMFIR_CONTINUE)
	end
	T.data(c)
	T.expect_accept(c, qid)
	T.expect_unmodified(c, qid)
	mt.disconnect(c)
	l = T.one({ qid .. ": " })
	T.expect_field(l, "verdict", "accept")
	if want_by == nil then
		T.expect_no_field(l, "would")
		T.expect_no_field(l, "by")
	else
		T.expect_field(l, "would", "reject")
		T.expect_field(l, "by", want_by)
	end
	T.expect_no_field(l, "code")
	return l
end

T.run(function()
	local l

	l = case("203.0.113.9", "mx.example.net", "<a@example.net>",
	    { "<bob@corp.example>", "<carol@corp.example>" }, "blacklist")
	T.expect_field(l, "rcpt", "<bob@corp.example>,<carol@corp.example>")
	T.check(T.field(l, "reason"):find("blacklist:client", 1, true),
	    "the dry-run finding is not in reason: %s", l)
	case("192.0.2.20", "mail.example.com", "<spammer@example.net>",
	    { "<bob@corp.example>" }, "blacklist")
	l = case("192.0.2.21", "mail.example.com", "<alice@example.com>",
	    { "<bob@corp.example>", "<nobody@corp.example>" }, "blacklist")
	T.expect_field(l, "rcpt", "<bob@corp.example>,<nobody@corp.example>")
	case("192.0.2.22", "gw.portero.test", "<alice@example.com>",
	    { "<bob@corp.example>" }, "helo")
	case("192.0.2.23", "mail.example.com", "<alice@example.com>",
	    { "<bob@corp.example>" }, nil)
	T.check(#T.find({ "verdict=reject" }) == 0,
	    "dry run refused something")
	T.expect_clean_log()
end)
