-- Score threshold: a total >= thresholds.reject refuses every RCPT with
-- "550 5.7.1 Message rejected as spam" (by=policy), whatever stage the
-- points came from; below it the message is accepted.
local T = dofile(os.getenv("PORTERO_TESTDIR") .. "/lib.lua")

local n = 0

local function case(helo, from, want, rcpt)
	local qid = string.format("4Thr%04d", n)
	local c

	n = n + 1
	c = T.connect("client.example.org", "192.0.2.40")
	T.helo(c, helo)
	T.mail(c, from, { "i", qid })
	T.rcpt(c, rcpt or "<bob@corp.example>", want)
	if want == SMFIR_REPLYCODE then
		T.rcpt(c, "<carol@corp.example>", want)
		T.check(#T.find({ qid .. ": ", "verdict=reject" }) == 2,
		    "each refused RCPT needs its own decision line")
	else
		T.data(c)
		T.expect_accept(c, helo .. " " .. from)
	end
	mt.disconnect(c)
	return T.wait({ qid .. ": " })[1]
end

T.run(function()
	local l

	-- 6 + 4 = 10: exactly the threshold
	l = case("localhost", "<user@localhost>", SMFIR_REPLYCODE)
	T.expect_field(l, "verdict", "reject")
	T.expect_field(l, "code", "550")
	T.expect_field(l, "dsn", "5.7.1")
	T.expect_field(l, "by", "policy")
	T.expect_field(l, "score", "10.0")
	T.expect_field(l, "reason", "helo:non_fqdn=6.0 sender:non_fqdn=4.0")
	-- 6 + 0, 3 + 4, 3 + 5: below
	l = case("localhost", "<user@example.com>", SMFIR_CONTINUE)
	T.expect_field(l, "score", "6.0")
	T.expect_field(l, "verdict", "accept")
	l = case("bad_host!", "<user@localhost>", SMFIR_CONTINUE)
	T.expect_field(l, "score", "7.0")
	l = case("bad_host!", "<user@@example.com>", SMFIR_CONTINUE)
	T.expect_field(l, "score", "8.0")
	T.expect_field(l, "reason", "helo:invalid=3.0 sender:invalid=5.0")
	-- 6 + 5 = 11
	l = case("localhost", "<broken", SMFIR_REPLYCODE)
	T.expect_field(l, "score", "11.0")
	-- the threshold reached at HELO alone (held, refused at RCPT)
	l = case("192.0.2.1", "<user@example.com>", SMFIR_REPLYCODE)
	T.expect_field(l, "reason", "helo:bare_ip=10.0")
	T.expect_field(l, "by", "policy")
	l = case("gw.portero.test", "<user@example.com>", SMFIR_REPLYCODE)
	T.expect_field(l, "reason", "helo:ours=10.0")
	T.expect_field(l, "by", "policy")
	-- whitelisted recipients are exempt
	l = case("localhost", "<user@localhost>", SMFIR_CONTINUE,
	    "<postmaster@corp.example>")
	T.expect_field(l, "verdict", "accept")
	-- outbound: no scoring at all
	local c = T.connect("app.corp.example", "10.99.0.5")
	T.helo(c, "localhost")
	T.mail(c, "<user@localhost>", { "i", "4ThrOut1" })
	T.rcpt(c, "<bob@example.com>")
	T.data(c)
	T.expect_accept(c, "outbound")
	l = T.one({ "4ThrOut1: " })
	T.expect_field(l, "score", "0.0")
	T.expect_field(l, "dir", "out")
	mt.disconnect(c)

	-- the reply text
	local res = T.mtclient({
	    { "connect", "client.example.org", "4", "25", "192.0.2.41" },
	    { "helo", "localhost" },
	    { "macro", "M", "i", "4ThrText1" },
	    { "mail", "<user@localhost>" },
	    { "rcpt", "<bob@corp.example>" } })
	local r = T.reply_of(res, 5)
	T.check(r ~= nil and r.cmd == "y", "REPLYCODE expected: %s", res.raw)
	local code, dsn, text = T.split_reply(r.data)
	l = T.one({ "4ThrText1: " })
	T.check(code == "550" and dsn == "5.7.1" and text ==
	    "Message rejected as spam [id=" .. T.field(l, "id") .. "]",
	    "reply %q does not match the decision line:\n    %s", r.data, l)
	T.expect_clean_log()
end)
