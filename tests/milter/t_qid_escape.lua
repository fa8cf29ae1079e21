-- The queue id comes from the MTA's {i} macro; like every other string a
-- milter is handed, it must go through the log escaping: no raw control
-- character (a newline would forge a log line) and a bounded length.
local T = dofile(os.getenv("PORTERO_TESTDIR") .. "/lib.lua")

T.run(function()
	local c = T.connect("mail.example.com", "192.0.2.130")
	T.helo(c, "mail.example.com")
	T.mail(c, "<alice@example.com>",
	    { "i", "4Q\1x\nportero[1]: FAKE: verdict=accept\255" })
	T.rcpt(c, "<bob@corp.example>")
	T.data(c)
	T.expect_accept(c, "queue id with control bytes")
	mt.disconnect(c)
	T.wait({ "client=mail.example.com[192.0.2.130]" })
	T.check(not T.log_text():find("\nportero[1]: FAKE:", 1, true),
	    "a newline in {i} forged a log line")
	T.expect_clean_log()

	c = T.connect("mail.example.com", "192.0.2.131")
	T.helo(c, "mail.example.com")
	T.mail(c, "<alice@example.com>", { "i", string.rep("Q", 600) })
	T.rcpt(c, "<bob@corp.example>")
	T.data(c)
	T.expect_accept(c, "long queue id")
	mt.disconnect(c)
	local l = T.one({ "client=mail.example.com[192.0.2.131]" })
	T.check(#T.field(l, "queue") <= 64, "queue id not bounded: %d bytes",
	    #T.field(l, "queue"))
end)
