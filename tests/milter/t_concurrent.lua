-- Concurrent connections (libmilter runs one thread per connection): 8
-- clients at once, each with several messages, mixed verdicts.  Every
-- message gets its own decision lines with its own ids; under TSan this
-- is the test that exercises the shared state.
local T = dofile(os.getenv("PORTERO_TESTDIR") .. "/lib.lua")

local CLIENTS, MSGS = 8, 5

T.run(function()
	local procs = {}

	for k = 1, CLIENTS do
		local steps = { { "connect", "c" .. k .. ".example.com", "4",
		    "25", k % 2 == 0 and "203.0.113.7" or "192.0.2.150" },
		    { "helo", k % 3 == 0 and "localhost" or "c.example.com" } }
		for m = 1, MSGS do
			local qid = string.format("4Conc%02dx%02d", k, m)
			for _, s in ipairs({ { "macro", "M", "i", qid },
			    { "mail", "<a" .. m .. "@example.com>" },
			    { "rcpt", "<postmaster@corp.example>" },
			    { "rcpt", "<b@corp.example>" },
			    { "header", "Subject", qid }, { "eoh" },
			    { "body", string.rep("x", 1000 * m) }, { "eom" } }) do
				steps[#steps + 1] = s
			end
		end
		local path = string.format("%s/conc.%d.txt", T.tmp, k)
		local f = assert(io.open(path, "wb"))
		for _, s in ipairs(steps) do
			local toks = { s[1] }
			for i = 2, #s do
				toks[#toks + 1] = T.esc(s[i])
			end
			f:write(table.concat(toks, " "), "\n")
		end
		f:close()
		procs[k] = assert(io.popen(string.format(
		    "python3 %s/mtclient.py '%s' < '%s' 2>&1", T.dir, T.sock,
		    path)))
	end
	for k = 1, CLIENTS do
		local out = procs[k]:read("a")
		procs[k]:close()
		T.check(not out:find("ERR", 1, true), "client %d: %s", k, out)
	end
	for k = 1, CLIENTS do
		for m = 1, MSGS do
			local qid = string.format("4Conc%02dx%02d", k, m)
			local l = T.one({ qid .. ": ", "verdict=accept" })
			-- even clients are blacklisted: only postmaster is taken
			T.expect_field(l, "rcpt", k % 2 == 0 and
			    "<postmaster@corp.example>" or
			    "<postmaster@corp.example>,<b@corp.example>")
			T.check(T.field(l, "id"):match("%." .. m .. "$"),
			    "%s: message %d of its connection expected: %s",
			    qid, m, l)
			T.expect_field(l, "reason", k % 2 == 0 and
			    (k % 3 == 0 and "blacklist:client=0.0 " ..
			    "helo:non_fqdn=1.0" or "blacklist:client=0.0") or
			    (k % 3 == 0 and "helo:non_fqdn=1.0" or ""))
			if k % 2 == 0 then
				T.one({ qid .. ": ", "verdict=reject code=554" })
			end
		end
	end
	T.expect_clean_log()
end)
