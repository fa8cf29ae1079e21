-- Global dry run and the score threshold: a message whose score reaches
-- thresholds.reject is accepted, and its line says would=reject by=policy
-- with the real score (SPEC 5: "the module computes and logs what it
-- would have done").  Uses t_dryrun_global.conf (helo.non_fqdn = 10).
local T = dofile(os.getenv("PORTERO_TESTDIR") .. "/lib.lua")

T.run(function()
	local c = T.connect("client.example.org", "192.0.2.30")

	T.helo(c, "localhost")
	T.mail(c, "<alice@example.com>", { "i", "4DryScore1" })
	T.rcpt(c, "<bob@corp.example>", SMFIR_CONTINUE)
	T.data(c)
	T.expect_accept(c, "dry run, score 10")
	mt.disconnect(c)
	local l = T.one({ "4DryScore1: " })
	T.expect_field(l, "verdict", "accept")
	T.check(T.field(l, "reason"):find("helo:non_fqdn=10.0", 1, true),
	    "helo:non_fqdn=10.0 missing: %s", l)
	T.expect_field(l, "would", "reject")
	T.expect_field(l, "by", "policy")
end)
