/*
 * test_pipeline.c - the check modules and the policy through the same
 * pipeline calls the milter makes: whitelist, blacklist, helo, sender,
 * thresholds, dry run, delayed (held) verdicts, reply text and the
 * decision line.  One table row per scenario.
 */
#include "ctx.h"
#include "pipeline.h"
#include "unit.h"

/* The base config, group by group; a row's extra config replaces the
 * groups it names. */
static const char *const base_groups[][2] = {
	{ "networks", "networks = { internal = [ \"10.99.0.0/16\" ]; };\n" },
	{ "whitelist", "whitelist = { clients = [ \"198.51.100.0/24\" ]; "
	    "client_names = [ \"good.example\" ]; senders = [ "
	    "\"friend@example.org\", \".trusted.example\" ]; recipients = [ "
	    "\"postmaster@corp.example\" ]; };\n" },
	{ "blacklist", "blacklist = { clients = [ \"203.0.113.0/24\", "
	    "\"2001:db8:bad::/48\" ]; client_names = [ \"bad.example\" ]; "
	    "senders = [ \"spammer@example.net\", \"@spam.example\", "
	    "\"bulk@\" ]; recipients = [ \"nobody@corp.example\" ]; };\n" },
	{ "helo", "helo = { our_names = [ \"gw.portero.test\" ]; "
	    "ours_action = \"reject\"; };\n" },
	{ "sender", "sender = { };\n" },
	{ "thresholds", "thresholds = { reject = 3.0; };\n" },
};

static void
build_cfg(char *out, size_t len, const char *extra)
{
	size_t	 i, off = 0;
	char	 key[32];

	out[0] = '\0';
	for (i = 0; i < sizeof(base_groups) / sizeof(base_groups[0]); i++) {
		(void)snprintf(key, sizeof(key), "%s =", base_groups[i][0]);
		if (strstr(extra, key) != NULL)
			continue;
		off += (size_t)snprintf(out + off, len - off, "%s",
		    base_groups[i][1]);
	}
	(void)snprintf(out + off, len - off, "%s", extra);
}

static struct cfg *
base_cfg(void)
{
	char		 text[4096];
	struct err	 e;
	struct cfg	*c;

	build_cfg(text, sizeof(text), "");
	c = unit_cfg(text, &e);
	assert_non_null(c);
	return c;
}

struct row {
	const char	*name;
	const char	*extra_cfg;
	const char	*client, *client_name, *helo, *from, *auth;
	const char	*rcpts[3];
	const char	*rcpt_codes;	/* per rcpt: '-' continue, else the
					 * first digit of the reply */
	enum action	 final;		/* at EOM (if a rcpt was accepted) */
	const char	*reply;		/* substring of the first refusal */
	const char	*logs;		/* substring of the last log line */
};

static const struct row rows[] = {
	{ "clean", "", "192.0.2.10", "mx.example.test", "mx.example.test",
	    "<a@example.com>", NULL, { "<b@corp.example>" }, "-",
	    ACT_ACCEPT, NULL, "verdict=accept reason=\"\" score=0.0 dir=in" },
	{ "blacklisted client, held to RCPT", "", "203.0.113.7",
	    "mx.example.test", "mx.example.test", "<a@example.com>", NULL,
	    { "<b@corp.example>", "<c@corp.example>" }, "55", ACT_ACCEPT,
	    "Service unavailable; client [203.0.113.7] blocked by local "
	    "policy [id=", "rcpt=<c@corp.example> verdict=reject code=554 "
	    "dsn=5.7.1 by=blacklist" },
	{ "blacklisted IPv6 client", "", "2001:db8:bad::25", NULL,
	    "mx.example.test", "<a@example.com>", NULL, { "<b@corp.example>" },
	    "5", ACT_ACCEPT, "client [2001:db8:bad::25] blocked", "code=554" },
	{ "blacklisted client name suffix", "", "192.0.2.10",
	    "mail.bad.example", "mail.bad.example", "<a@example.com>", NULL,
	    { "<b@corp.example>" }, "5", ACT_ACCEPT, "blocked by local",
	    "client=mail.bad.example[192.0.2.10]" },
	{ "postmaster exempt from held verdict", "", "203.0.113.7", NULL,
	    "mx.example.test", "<a@example.com>", NULL,
	    { "<nobody1@corp.example>", "<Postmaster@corp.example>" }, "5-",
	    ACT_ACCEPT, NULL, "rcpt=<Postmaster@corp.example> verdict=accept" },
	{ "whitelist wins over blacklist", "whitelist = { clients = [ "
	    "\"203.0.113.9\" ]; };", "203.0.113.9", NULL, "mx.example.test",
	    "<a@example.com>", NULL, { "<b@corp.example>" }, "-", ACT_ACCEPT,
	    NULL, "verdict=accept" },
	{ "blacklisted sender", "", "192.0.2.10", NULL, "mx.example.test",
	    "<Spammer@Example.NET>", NULL, { "<b@corp.example>" }, "5",
	    ACT_ACCEPT, "<Spammer@example.net>: Sender address rejected: "
	    "Access denied [id=", "code=550 dsn=5.7.1 by=blacklist" },
	{ "blacklisted sender domain", "", "192.0.2.10", NULL,
	    "mx.example.test", "<x@spam.example>", NULL, { "<b@corp.example>" },
	    "5", ACT_ACCEPT, "Sender address rejected", "by=blacklist" },
	{ "blacklisted local part", "", "192.0.2.10", NULL, "mx.example.test",
	    "<bulk@anywhere.example>", NULL, { "<b@corp.example>" }, "5",
	    ACT_ACCEPT, "Sender address rejected", "by=blacklist" },
	{ "blacklisted recipient only", "", "192.0.2.10", NULL,
	    "mx.example.test", "<a@example.com>", NULL,
	    { "<nobody@corp.example>", "<b@corp.example>" }, "5-", ACT_ACCEPT,
	    "<nobody@corp.example>: Recipient address rejected: Access denied",
	    "rcpt=<b@corp.example> verdict=accept" },
	{ "whitelisted sender subdomain wins over the sender blacklist",
	    "blacklist = { senders = [ \".trusted.example\" ]; };",
	    "192.0.2.10", NULL,
	    "mx.example.test", "<a@mail.trusted.example>", NULL,
	    { "<b@corp.example>" }, "-", ACT_ACCEPT, NULL, "verdict=accept" },
	{ "internal client is outbound", "", "10.99.1.2", NULL, "localhost",
	    "<spammer@example.net>", NULL, { "<x@example.org>" }, "-",
	    ACT_ACCEPT, NULL, "dir=out" },
	{ "authenticated client is outbound", "", "203.0.113.7", NULL,
	    "laptop", "<user@corp.example>", "user", { "<x@example.org>" },
	    "-", ACT_ACCEPT, NULL, "verdict=accept reason=\"\" score=0.0 "
	    "dir=out" },
	{ "local submission is outbound", "", NULL, NULL, NULL,
	    "<root@gw.example>", NULL, { "<x@example.org>" }, "-", ACT_ACCEPT,
	    NULL, "client=unknown[] " },
	{ "helo claims to be us (name)", "", "192.0.2.10", NULL,
	    "GW.portero.test", "<a@example.com>", NULL, { "<b@corp.example>" },
	    "5", ACT_ACCEPT, "Helo command rejected: Host claims to be us",
	    "reason=\"helo:ours=5.0\" score=5.0" },
	{ "helo claims to be us, scored", "helo = { our_names = [ "
	    "\"gw.portero.test\" ]; ours_action = \"score\"; ours = 1.0; };",
	    "192.0.2.10", NULL, "gw.portero.test", "<a@example.com>", NULL,
	    { "<b@corp.example>" }, "-", ACT_ACCEPT, NULL,
	    "verdict=accept reason=\"helo:ours=1.0\" score=1.0" },
	{ "helo bare ip", "", "192.0.2.10", NULL, "192.0.2.10",
	    "<a@example.com>", NULL, { "<b@corp.example>" }, "-", ACT_ACCEPT,
	    NULL, "reason=\"helo:bare_ip=1.0\"" },
	{ "helo literal mismatch", "", "192.0.2.10", NULL, "[192.0.2.99]",
	    "<a@example.com>", NULL, { "<b@corp.example>" }, "-", ACT_ACCEPT,
	    NULL, "reason=\"helo:literal_mismatch=1.0\"" },
	{ "helo literal match", "", "192.0.2.10", NULL, "[192.0.2.10]",
	    "<a@example.com>", NULL, { "<b@corp.example>" }, "-", ACT_ACCEPT,
	    NULL, "reason=\"\"" },
	{ "helo invalid", "", "192.0.2.10", NULL, "bad_host!",
	    "<a@example.com>", NULL, { "<b@corp.example>" }, "-", ACT_ACCEPT,
	    NULL, "reason=\"helo:invalid=1.0\"" },
	{ "helo non-fqdn", "", "192.0.2.10", NULL, "localhost",
	    "<a@example.com>", NULL, { "<b@corp.example>" }, "-", ACT_ACCEPT,
	    NULL, "reason=\"helo:non_fqdn=1.0\"" },
	{ "sender non-fqdn + helo = threshold", "", "192.0.2.10", NULL,
	    "localhost", "<a@localhost>", NULL, { "<b@corp.example>" }, "5",
	    ACT_ACCEPT, "Message rejected as spam [id=", "reason=\"helo:"
	    "non_fqdn=1.0 sender:non_fqdn=2.0\" score=3.0" },
	{ "sender invalid", "", "192.0.2.10", NULL, "mx.example.test",
	    "<a@b", NULL, { "<b@corp.example>" }, "-", ACT_ACCEPT, NULL,
	    "from=<\\x3ca@b> " },
	{ "null sender not scored", "", "192.0.2.10", NULL, "mx.example.test",
	    "<>", NULL, { "<b@corp.example>" }, "-", ACT_ACCEPT, NULL,
	    "from=<> rcpt=<b@corp.example> verdict=accept reason=\"\"" },
	{ "global dry run", "dry_run = true;", "203.0.113.7", NULL,
	    "mx.example.test", "<a@example.com>", NULL, { "<b@corp.example>" },
	    "-", ACT_ACCEPT, NULL, "verdict=accept would=reject by=blacklist" },
	{ "module dry run", "blacklist = { dry_run = true; senders = [ "
	    "\"a@example.com\" ]; };", "192.0.2.10", NULL, "mx.example.test",
	    "<a@example.com>", NULL, { "<b@corp.example>" }, "-", ACT_ACCEPT,
	    NULL, "verdict=accept would=reject by=blacklist" },
	{ "dry-run points do not count", "helo = { dry_run = true; invalid = "
	    "5.0; };", "192.0.2.10", NULL, "bad_host!", "<a@localhost>", NULL,
	    { "<b@corp.example>" }, "-", ACT_ACCEPT, NULL,
	    "reason=\"helo:invalid=5.0(dry) sender:non_fqdn=2.0\" score=2.0" },
	{ "threshold dry run", "thresholds = { reject = 1.0; dry_run = true; "
	    "};", "192.0.2.10", NULL, "localhost", "<a@example.com>", NULL,
	    { "<b@corp.example>" }, "-", ACT_ACCEPT, NULL,
	    "verdict=accept would=reject by=policy" },
	{ "whitelisted sender does not lift a client refusal", "",
	    "203.0.113.7", NULL, "mx.example.test", "<friend@example.org>",
	    NULL, { "<b@corp.example>" }, "5", ACT_ACCEPT,
	    "client [203.0.113.7] blocked", "by=blacklist" },
	{ "whitelisted sender skips scoring", "", "192.0.2.10", NULL,
	    "localhost", "<friend@example.org>", NULL, { "<b@corp.example>" },
	    "-", ACT_ACCEPT, NULL, "reason=\"helo:non_fqdn=1.0\" score=1.0" },
	{ "global dry run counts points", "dry_run = true;", "192.0.2.10",
	    NULL, "localhost", "<a@localhost>", NULL, { "<b@corp.example>" },
	    "-", ACT_ACCEPT, NULL, "verdict=accept would=reject by=policy "
	    "reason=\"helo:non_fqdn=1.0 sender:non_fqdn=2.0\" score=3.0" },
	{ "rcpt syntax garbage", "", "192.0.2.10", NULL, "mx.example.test",
	    "<a@example.com>", NULL, { "<\x01\xff>", "<b@corp.example>" },
	    "--", ACT_ACCEPT, NULL, "rcpt=<\\x3c\\x01\\xff\\x3e>,<b@corp" },
};

static char	 last_line[8192];
static int	 nlines;

static void
sink(const char *line)
{
	(void)snprintf(last_line, sizeof(last_line), "%s", line);
	nlines++;
}

static void
run_row(const struct row *r)
{
	char		 text[4096];
	struct err	 e;
	struct cfg	*cfg;
	struct conn_ctx	*c;
	struct verdict	 v;
	const char	*first_reply = NULL;
	int		 accepted = 0;
	size_t		 i;

	build_cfg(text, sizeof(text), r->extra_cfg);
	cfg = unit_cfg(text, &e);
	if (cfg == NULL)
		fail_msg("%s: config: %s", r->name, e.msg);
	c = conn_ctx_new(cfg);
	assert_non_null(c);
	c->myhostname = "gw.portero.test";
	nlines = 0;
	last_line[0] = '\0';
	pipeline_connect(c, r->client_name, r->client, &v);
	assert_int_equal(v.action, ACT_CONTINUE);	/* held, never here */
	if (r->helo != NULL) {
		pipeline_helo(c, r->helo, &v);
		assert_int_equal(v.action, ACT_CONTINUE);
	}
	pipeline_mail(c, r->from, r->auth, &v);
	assert_int_equal(v.action, ACT_CONTINUE);
	msg_set_queue_id(c->msg, "3zWlWK2Vxgzd8Wj");
	for (i = 0; i < 3 && r->rcpts[i] != NULL; i++) {
		char want = r->rcpt_codes[i];

		pipeline_rcpt(c, r->rcpts[i], &v);
		if (want == '-') {
			if (v.action != ACT_CONTINUE)
				fail_msg("%s: rcpt %zu refused: %s %s", r->name,
				    i, v.code, v.text);
			accepted++;
			continue;
		}
		if (v.action == ACT_CONTINUE || v.code == NULL ||
		    v.code[0] != want)
			fail_msg("%s: rcpt %zu: want %cxx, got %s", r->name, i,
			    want, v.code != NULL ? v.code : "continue");
		if (first_reply == NULL)
			first_reply = pipeline_reply_text(c, &v);
	}
	if (r->reply != NULL) {
		if (first_reply == NULL || strstr(first_reply, r->reply) ==
		    NULL)
			fail_msg("%s: reply '%s' lacks '%s'", r->name,
			    first_reply != NULL ? first_reply : "(none)",
			    r->reply);
		/* the reply's decision id is the message's */
		assert_non_null(strstr(first_reply, c->msg->id));
	}
	if (accepted > 0) {
		pipeline_header(c, "Subject", "hello", &v);
		pipeline_body(c, (const unsigned char *)"hi\r\n", 4, &v);
		pipeline_eom(c, &v);
		if (v.action != r->final)
			fail_msg("%s: final %s", r->name,
			    action_name(v.action));
		pipeline_msg_end(c);
	} else
		pipeline_abort(c);
	if (strstr(last_line, r->logs) == NULL)
		fail_msg("%s: log line '%s' lacks '%s'", r->name, last_line,
		    r->logs);
	assert_non_null(strstr(last_line, "3zWlWK2Vxgzd8Wj: conn="));
	conn_ctx_free(c);
	cfg_release(cfg);
}

static void
test_rows(void **st)
{
	size_t	 i;

	(void)st;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		run_row(&rows[i]);
}

/* A second HELO replaces what the first one contributed. */
static void
test_helo_twice(void **st)
{
	struct cfg	*cfg = base_cfg();
	struct conn_ctx	*c = conn_ctx_new(cfg);
	struct verdict	 v;

	(void)st;
	c->myhostname = "gw.portero.test";
	pipeline_connect(c, NULL, "192.0.2.10", &v);
	pipeline_helo(c, "gw.portero.test", &v);
	assert_int_equal(c->pending.action, ACT_REJECT);
	assert_int_equal(conn_score(c), 500);
	pipeline_helo(c, "mx.example.test", &v);
	assert_int_equal(c->pending.action, ACT_CONTINUE);
	assert_int_equal(conn_score(c), 0);
	conn_ctx_free(c);
	cfg_release(cfg);
}

/* Several messages on one connection: decision ids count up, message
 * state does not leak from one to the next. */
static void
test_two_messages(void **st)
{
	struct cfg	*cfg = base_cfg();
	struct conn_ctx	*c = conn_ctx_new(cfg);
	struct verdict	 v;
	char		 id1[32];

	(void)st;
	pipeline_connect(c, NULL, "192.0.2.10", &v);
	pipeline_mail(c, "<spammer@example.net>", NULL, &v);
	(void)snprintf(id1, sizeof(id1), "%s", c->msg->id);
	pipeline_rcpt(c, "<b@corp.example>", &v);
	assert_int_equal(v.action, ACT_REJECT);
	pipeline_abort(c);
	assert_null(c->msg);
	pipeline_mail(c, "<a@example.com>", NULL, &v);
	assert_string_not_equal(c->msg->id, id1);
	assert_non_null(strstr(c->msg->id, ".2"));
	pipeline_rcpt(c, "<b@corp.example>", &v);
	assert_int_equal(v.action, ACT_CONTINUE);
	pipeline_eom(c, &v);
	assert_int_equal(v.action, ACT_ACCEPT);
	pipeline_msg_end(c);
	conn_ctx_free(c);
	cfg_release(cfg);
}

/* 1000 recipients are handled and all logged on one line. */
static void
test_many_rcpts(void **st)
{
	struct cfg	*cfg = base_cfg();
	struct conn_ctx	*c = conn_ctx_new(cfg);
	struct verdict	 v;
	char		 r[64];
	int		 i;

	(void)st;
	pipeline_connect(c, NULL, "192.0.2.10", &v);
	pipeline_mail(c, "<a@example.com>", NULL, &v);
	for (i = 0; i < 1000; i++) {
		(void)snprintf(r, sizeof(r), "<user%d@corp.example>", i);
		pipeline_rcpt(c, r, &v);
		assert_int_equal(v.action, ACT_CONTINUE);
	}
	assert_int_equal(c->msg->nrcpt, 1000);
	pipeline_eom(c, &v);
	assert_int_equal(v.action, ACT_ACCEPT);
	assert_non_null(strstr(last_line, "<user0@corp.example>"));
	assert_non_null(strstr(last_line, "verdict=accept"));	/* not cut */
	assert_non_null(strstr(last_line, ",...+"));
	pipeline_msg_end(c);
	conn_ctx_free(c);
	cfg_release(cfg);
}

static void
test_reply_text_sanitised(void **st)
{
	struct err	 e;
	struct cfg	*cfg = unit_cfg("", &e);
	struct conn_ctx	*c = conn_ctx_new(cfg);
	struct verdict	 v;
	const char	*t;

	(void)st;
	verdict_set(&v, ACT_REJECT, "550", "5.7.1", "100% bad\r\nX\x01", "x");
	t = pipeline_reply_text(c, &v);
	assert_non_null(strstr(t, "100%% bad??X? [id="));
	assert_null(strchr(t, '\r'));
	conn_ctx_free(c);
	cfg_release(cfg);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rows),
		cmocka_unit_test(test_helo_twice),
		cmocka_unit_test(test_two_messages),
		cmocka_unit_test(test_many_rcpts),
		cmocka_unit_test(test_reply_text_sanitised),
	};

	log_open("test", LOG_MAIL, 1);
	log_set_level(LOG_ERR);
	log_set_decision_sink(sink);
	metrics_init();
	return cmocka_run_group_tests_name("pipeline", tests, NULL, NULL);
}
