-- Headers and body pass through unchanged: many headers, folded and long
-- ones, several body chunks; EOM accepts and requests no change, inbound
-- and outbound.
local T = dofile(os.getenv("PORTERO_TESTDIR") .. "/lib.lua")

local function message(c, qid)
	local headers = {
	    { "Received", "from a.example (a.example [192.0.2.1]) by " ..
	      "mx.example.com with ESMTP id 123;\r\n\tMon, 1 Jan 2026 " ..
	      "00:00:00 +0000" },
	    { "From", "Alice <alice@example.com>" },
	    { "To", "Bob <bob@corp.example>" },
	    { "Subject", "=?UTF-8?B?w6l0w6k=?=" },
	    { "Message-ID", "<1234@example.com>" },
	    { "X-Mailer", "test" },
	    { "X-Long", string.rep("x", 900) },
	    { "MIME-Version", "1.0" },
	    { "Content-Type", "text/plain; charset=utf-8" } }
	local size = 0
	local err

	for _, h in ipairs(headers) do
		err = mt.header(c, h[1], h[2])
		T.check(err == nil, "header %s: %s", h[1], tostring(err))
		size = size + #h[1] + #h[2] + 4
	end
	T.check(mt.eoh(c) == nil, "eoh failed")
	for i = 1, 5 do
		local chunk = string.rep("line " .. i .. "\r\n", 200)
		T.check(mt.bodystring(c, chunk) == nil, "body chunk %d", i)
		size = size + #chunk
	end
	T.check(mt.eom(c) == nil, "eom failed")
	T.expect_accept(c, qid)
	T.expect_unmodified(c, qid)
	local l = T.one({ qid .. ": " })
	T.expect_field(l, "verdict", "accept")
	T.expect_field(l, "size", tostring(size))
	return l
end

T.run(function()
	local c = T.connect("mail.example.com", "192.0.2.140")
	T.helo(c, "mail.example.com")
	T.mail(c, "<alice@example.com>", { "i", "4Pass1" })
	T.rcpt(c, "<bob@corp.example>")
	T.expect_field(message(c, "4Pass1"), "dir", "in")
	mt.disconnect(c)

	c = T.connect("app.corp.example", "10.99.2.2")
	T.helo(c, "app.corp.example")
	T.mail(c, "<alice@corp.example>", { "i", "4Pass2" })
	T.rcpt(c, "<someone@example.com>")
	T.expect_field(message(c, "4Pass2"), "dir", "out")
	mt.disconnect(c)

	c = T.connect("mail.example.com", "192.0.2.141")
	T.helo(c, "mail.example.com")
	T.mail(c, "<alice@example.com>", { "{auth_authen}", "alice",
	    "i", "4Pass3" })
	T.rcpt(c, "<someone@example.com>")
	T.expect_field(message(c, "4Pass3"), "dir", "out")
	mt.disconnect(c)
end)
