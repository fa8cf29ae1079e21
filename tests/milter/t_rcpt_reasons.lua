-- What a refused recipient's checks found belongs to that recipient's
-- decision line only: it must not show up (or count) in the decision line
-- of a later recipient or of the accepted message.
local T = dofile(os.getenv("PORTERO_TESTDIR") .. "/lib.lua")

T.run(function()
	local c = T.connect("mail.example.com", "192.0.2.120")
	T.helo(c, "mail.example.com")
	T.mail(c, "<alice@example.com>", { "i", "4RcptReason1" })
	T.rcpt(c, "<nobody@corp.example>", SMFIR_REPLYCODE)
	T.rcpt(c, "<bob@corp.example>")
	T.rcpt(c, "<NOBODY@corp.example>", SMFIR_REPLYCODE)
	T.data(c)
	T.expect_accept(c, "message with a refused recipient")
	mt.disconnect(c)

	local l = T.one({ "4RcptReason1: ", "rcpt=<nobody@corp.example>" })
	T.expect_field(l, "reason", "blacklist:recipient=0.0")
	l = T.one({ "4RcptReason1: ", "rcpt=<NOBODY@corp.example>" })
	T.expect_field(l, "reason", "blacklist:recipient=0.0")
	l = T.one({ "4RcptReason1: ", "verdict=accept" })
	T.expect_field(l, "rcpt", "<bob@corp.example>")
	T.expect_field(l, "reason", "")
	T.expect_no_field(l, "by")
end)
