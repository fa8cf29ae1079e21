-- 1000 recipients in one message: each RCPT answered, one decision line
-- at EOM that stays bounded and keeps its later fields (verdict, score,
-- dir, size); a refused client gets one line per recipient.
local T = dofile(os.getenv("PORTERO_TESTDIR") .. "/lib.lua")

local N = 1000

T.run(function()
	local c = T.connect("bulk.example.com", "192.0.2.110")
	T.helo(c, "bulk.example.com")
	T.mail(c, "<list@example.com>", { "i", "4ManyRcpt1" })
	for i = 1, N do
		T.rcpt(c, string.format("<user%04d@corp.example>", i))
	end
	T.rcpt(c, "<nobody@corp.example>", SMFIR_REPLYCODE)
	T.data(c)
	T.expect_accept(c, "1000 recipients")
	T.expect_unmodified(c, "1000 recipients")
	mt.disconnect(c)
	local l = T.one({ "4ManyRcpt1: ", "verdict=accept" })
	T.check(#l < 8192, "decision line of %d bytes", #l)
	T.check(l:find(" rcpt=<user0001@corp.example>,<user0002@corp.example>",
	    1, true), "recipient list does not start with the first ones: %s",
	    l:sub(1, 400))
	T.check(l:find("verdict=accept reason=\".-\" score=0.0 dir=in " ..
	    "size=%d+ ms=%d+$"), "later fields of the line lost: ...%s",
	    l:sub(-300))
	T.check(not l:find("nobody@", 1, true), "the refused recipient is " ..
	    "listed as accepted")
	local shown = select(2, l:gsub("@corp%.example>", ""))
	local more = tonumber(l:match(",%.%.%.%+(%d+)") or "0")
	T.check(shown + more == N, "%d recipients shown + %d more ~= %d",
	    shown, more, N)
	T.one({ "4ManyRcpt1: ", "rcpt=<nobody@corp.example>",
	    "verdict=reject" })

	-- a blocked client: every one of 1000 recipients refused and logged
	c = T.connect("bulk.example.net", "203.0.113.50")
	T.helo(c, "bulk.example.net")
	T.mail(c, "<list@example.net>", { "i", "4ManyRcpt2" })
	for i = 1, N do
		T.rcpt(c, string.format("<user%04d@corp.example>", i),
		    SMFIR_REPLYCODE)
	end
	mt.disconnect(c)
	local got = T.wait({ "4ManyRcpt2: ", "verdict=reject code=554" }, N)
	T.check(#got == N, "%d refusal lines expected, found %d", N, #got)
	T.expect_clean_log()
end)
