/*
 * test_greylist.c - greylisting through the pipeline calls the milter
 * makes, on an LMDB store in a temporary file: first attempt, early retry,
 * pass after the delay, retry window, auto-whitelist, selective and
 * always modes, SPF-validated origin, exempt clients, fail-open when the
 * store cannot be opened; and the sender normalisation table.
 */
#include <sys/stat.h>

#include "ctx.h"
#include "greylist.h"
#include "pipeline.h"
#include "store.h"
#include "unit.h"

#define ALWAYS	"mode = \"always\"; auto_whitelist = 2;"

static char	 last_line[8192];
static char	 dbpath[64];

static void
sink(const char *line)
{
	(void)snprintf(last_line, sizeof(last_line), "%s", line);
}

static int
setup(void **state)
{
	(void)state;
	unit_store_begin(dbpath, sizeof(dbpath), "grey", sink);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	unit_store_end(dbpath);
	return 0;
}

static struct cfg *
grey_cfg(const char *greylist, const char *extra)
{
	char		 text[2048];
	struct err	 e;
	struct cfg	*c;

	/* extra may bring its own thresholds */
	(void)snprintf(text, sizeof(text),
	    "networks = { internal = [ \"10.99.0.0/16\" ]; };\n"
	    "store = { path = \"%s\"; max_size = \"16M\"; };\n"
	    "whitelist = { clients = [ \"198.51.100.0/24\" ]; recipients = "
	    "[ \"postmaster@corp.example\" ]; };\n"
	    "helo = { non_fqdn = 5.0; };\n%s"
	    "greylist = { delay = 60; retry_window = 600; expire = 3600; "
	    "%s };\n%s", dbpath, strstr(extra, "thresholds") != NULL ? "" :
	    "thresholds = { greylist = 4.0; reject = 10.0; };\n", greylist,
	    extra);
	c = unit_cfg(text, &e);
	if (c == NULL)
		fail_msg("%s", e.msg);
	cfg_install(cfg_ref(c));
	return c;
}

/*
 * One transaction: connect, HELO, MAIL, one RCPT; returns the RCPT
 * reply's first digit ('-' for continue).  spf: forced SPF result.
 */
static char
attempt_auth(struct cfg *cfg, const char *client, const char *helo,
    const char *from, const char *auth, const char *rcpt, const char *spf,
    char *reply, size_t rlen)
{
	struct conn_ctx	*c = conn_ctx_new(cfg_ref(cfg));
	struct verdict	 v;
	char		 d = '-';

	assert_non_null(c);
	pipeline_connect(c, NULL, client, &v);
	pipeline_helo(c, helo, &v);
	pipeline_mail(c, from, auth, &v);
	assert_non_null(c->msg);
	if (spf != NULL)
		c->msg->spf = spf;
	pipeline_rcpt(c, rcpt, &v);
	if (v.action != ACT_CONTINUE && v.code != NULL) {
		d = v.code[0];
		if (reply != NULL)
			(void)snprintf(reply, rlen, "%s %s %s", v.code, v.dsn,
			    v.text);
	}
	if (d == '-') {
		pipeline_eom(c, &v);
		pipeline_msg_end(c);
	} else
		pipeline_abort(c);
	cfg_release(c->cfg);
	conn_ctx_free(c);
	return d;
}

static char
attempt(struct cfg *cfg, const char *client, const char *helo,
    const char *from, const char *rcpt, const char *spf, char *reply,
    size_t rlen)
{
	return attempt_auth(cfg, client, helo, from, NULL, rcpt, spf, reply,
	    rlen);
}

/*
 * Selective mode, one row per case: the score so far (5.0, from the
 * non-FQDN HELO) against thresholds.greylist, and the exemptions.
 */
static void
test_selection(void **state)
{
	static const struct {
		const char	*thresholds, *client, *auth, *rcpt;
		char		 want;
	} rows[] = {
		/* reaching the threshold exactly is enough */
		{ "greylist = 5.0;", "192.0.2.10", NULL, "<b@corp.example>",
		    '4' },
		{ "greylist = 6.0;", "192.0.2.10", NULL, "<b@corp.example>",
		    '-' },
		/* a whitelisted recipient, authenticated or internal
		 * clients: never */
		{ "greylist = 2.0;", "192.0.2.10", NULL,
		    "<postmaster@corp.example>", '-' },
		{ "greylist = 2.0;", "192.0.2.10", "user", "<b@corp.example>",
		    '-' },
		{ "greylist = 0.0;", "10.99.0.5", NULL, "<b@corp.example>",
		    '-' },
		/* a score refusal comes first: it is final */
		{ "greylist = 2.0; reject = 5.0;", "192.0.2.10", NULL,
		    "<b@corp.example>", '5' },
	};
	char		 extra[128];
	struct cfg	*cfg;
	size_t		 i;
	char		 got;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		(void)snprintf(extra, sizeof(extra), "thresholds = { %s };\n",
		    rows[i].thresholds);
		cfg = grey_cfg("", extra);
		got = attempt_auth(cfg, rows[i].client, "localhost",
		    "<a@localhost>", rows[i].auth, rows[i].rcpt, NULL, NULL,
		    0);
		cfg_release(cfg);
		if (got != rows[i].want)
			fail_msg("row %zu: got '%c', want '%c' (%s)", i, got,
			    rows[i].want, last_line);
	}
}

static void
test_first_early_passed(void **state)
{
	struct cfg	*cfg = grey_cfg(ALWAYS, "");
	char		 reply[512];

	(void)state;
	assert_int_equal(attempt(cfg, "192.0.2.10", "mx.example.test",
	    "<a@example.com>", "<b@corp.example>", NULL, reply,
	    sizeof(reply)), '4');
	assert_non_null(strstr(reply, "451 4.7.1 Greylisted, please try "
	    "again later (in 60 seconds)"));
	assert_non_null(strstr(last_line, "greylist=new"));
	assert_non_null(strstr(last_line, "by=greylist"));
	/* 30 s later: still early, with the remaining wait */
	store_set_clock_offset(30);
	assert_int_equal(attempt(cfg, "192.0.2.10", "mx.example.test",
	    "<a@example.com>", "<b@corp.example>", NULL, reply,
	    sizeof(reply)), '4');
	assert_non_null(strstr(reply, "(in 30 seconds)"));
	assert_non_null(strstr(last_line, "greylist=early"));
	/* same /24, after the delay: passes; the message line says so */
	store_set_clock_offset(61);
	assert_int_equal(attempt(cfg, "192.0.2.77", "mx.example.test",
	    "<a@example.com>", "<b@corp.example>", NULL, NULL, 0), '-');
	assert_non_null(strstr(last_line, "verdict=accept"));
	assert_non_null(strstr(last_line, "greylist=passed"));
	/* a passed triplet stays passed */
	store_set_clock_offset(2000);
	assert_int_equal(attempt(cfg, "192.0.2.10", "mx.example.test",
	    "<a@example.com>", "<b@corp.example>", NULL, NULL, 0), '-');
	/* another network is a new triplet */
	assert_int_equal(attempt(cfg, "192.0.3.10", "mx.example.test",
	    "<a@example.com>", "<b@corp.example>", NULL, NULL, 0), '4');
	cfg_release(cfg);
}

static void
test_retry_window_and_expiry(void **state)
{
	struct cfg	*cfg = grey_cfg("mode = \"always\"; auto_whitelist "
	    "= 0;", "");

	(void)state;
	assert_int_equal(attempt(cfg, "192.0.2.10", "mx.example.test",
	    "<a@example.com>", "<b@corp.example>", NULL, NULL, 0), '4');
	/* a retry after the window is a first attempt again */
	store_set_clock_offset(700);
	assert_int_equal(attempt(cfg, "192.0.2.10", "mx.example.test",
	    "<a@example.com>", "<b@corp.example>", NULL, NULL, 0), '4');
	assert_non_null(strstr(last_line, "greylist=new"));
	store_set_clock_offset(700 + 61);
	assert_int_equal(attempt(cfg, "192.0.2.10", "mx.example.test",
	    "<a@example.com>", "<b@corp.example>", NULL, NULL, 0), '-');
	/* unused for longer than expire: forgotten */
	store_set_clock_offset(700 + 61 + 3601);
	assert_int_equal(attempt(cfg, "192.0.2.10", "mx.example.test",
	    "<a@example.com>", "<b@corp.example>", NULL, NULL, 0), '4');
	assert_non_null(strstr(last_line, "greylist=new"));
	cfg_release(cfg);
}

static void
test_auto_whitelist(void **state)
{
	struct cfg	*cfg = grey_cfg(ALWAYS, "");
	const char	*senders[] = { "<alice@example.com>", "<bob@example.com>" };
	size_t		 i;

	(void)state;
	/* two passes (two messages) from 192.0.2.0/24 */
	for (i = 0; i < 2; i++) {
		store_set_clock_offset((int64_t)i * 100);
		assert_int_equal(attempt(cfg, "192.0.2.10", "mx.example.test",
		    senders[i], "<b@corp.example>", NULL, NULL, 0), '4');
		store_set_clock_offset((int64_t)i * 100 + 61);
		assert_int_equal(attempt(cfg, "192.0.2.10", "mx.example.test",
		    senders[i], "<b@corp.example>", NULL, NULL, 0), '-');
	}
	/* a new sender from the same network: accepted at once */
	assert_int_equal(attempt(cfg, "192.0.2.200", "mx.example.test",
	    "<new@example.net>", "<c@corp.example>", NULL, NULL, 0), '-');
	assert_non_null(strstr(last_line, "greylist=whitelisted"));
	/* not another network */
	assert_int_equal(attempt(cfg, "192.0.9.1", "mx.example.test",
	    "<new@example.net>", "<c@corp.example>", NULL, NULL, 0), '4');
	cfg_release(cfg);
}

static void
test_selective(void **state)
{
	struct cfg	*cfg = grey_cfg("networks = [ \"203.0.113.0/24\" ];",
	    "");

	(void)state;
	/* clean, low score: not greylisted, no greylist= field */
	assert_int_equal(attempt(cfg, "192.0.2.10", "mx.example.test",
	    "<a@example.com>", "<b@corp.example>", NULL, NULL, 0), '-');
	assert_null(strstr(last_line, "greylist="));
	/* score 5 (non-FQDN HELO) reaches thresholds.greylist = 4 */
	assert_int_equal(attempt(cfg, "192.0.2.10", "localhost",
	    "<a@example.com>", "<b@corp.example>", NULL, NULL, 0), '4');
	assert_non_null(strstr(last_line, "score=5.0"));
	assert_non_null(strstr(last_line, "greylist=new"));
	/* a listed network with a clean score */
	assert_int_equal(attempt(cfg, "203.0.113.5", "mx.example.test",
	    "<a@example.com>", "<b@corp.example>", NULL, NULL, 0), '4');
	cfg_release(cfg);
}

static void
test_exempt(void **state)
{
	struct cfg	*cfg = grey_cfg(ALWAYS, "");

	(void)state;
	/* internal, whitelisted, authenticated-like local: never */
	assert_int_equal(attempt(cfg, "10.99.1.1", "localhost",
	    "<a@example.com>", "<b@example.org>", NULL, NULL, 0), '-');
	assert_int_equal(attempt(cfg, "198.51.100.9", "mx.example.test",
	    "<a@example.com>", "<b@corp.example>", NULL, NULL, 0), '-');
	assert_null(strstr(last_line, "greylist="));
	cfg_release(cfg);
}

static void
test_spf_origin(void **state)
{
	struct cfg	*cfg = grey_cfg(ALWAYS, "");

	(void)state;
	assert_int_equal(attempt(cfg, "192.0.2.10", "mx.example.test",
	    "<a@bigmail.example>", "<b@corp.example>", "pass", NULL, 0), '4');
	store_set_clock_offset(61);
	/* the retry comes from another network of the same provider */
	assert_int_equal(attempt(cfg, "198.18.7.7", "mx.example.test",
	    "<a@bigmail.example>", "<b@corp.example>", "pass", NULL, 0), '-');
	assert_non_null(strstr(last_line, "greylist=passed"));
	/* without SPF pass the network counts */
	assert_int_equal(attempt(cfg, "198.18.7.7", "mx.example.test",
	    "<z@other.example>", "<b@corp.example>", "softfail", NULL, 0),
	    '4');
	cfg_release(cfg);
}

static void
test_normalised_sender_matches(void **state)
{
	struct cfg	*cfg = grey_cfg(ALWAYS, "");

	(void)state;
	assert_int_equal(attempt(cfg, "192.0.2.10", "mx.example.test",
	    "<prvs=1111aaaa=News+123@Example.com>", "<b@corp.example>", NULL,
	    NULL, 0), '4');
	store_set_clock_offset(61);
	/* a new BATV tag, another extension: the same triplet */
	assert_int_equal(attempt(cfg, "192.0.2.10", "mx.example.test",
	    "<prvs=2222bbbb=news+456@example.com>", "<b@corp.example>", NULL,
	    NULL, 0), '-');
	cfg_release(cfg);
}

/* A sender that cannot be a store key as it is must not slip past. */
static void
test_quoted_sender_greylisted(void **state)
{
	struct cfg	*cfg = grey_cfg(ALWAYS, "");

	(void)state;
	assert_int_equal(attempt(cfg, "192.0.2.10", "mx.example.test",
	    "<\"john doe\"@example.com>", "<b@corp.example>", NULL, NULL, 0),
	    '4');
	assert_non_null(strstr(last_line, "greylist=new"));
	store_set_clock_offset(61);
	assert_int_equal(attempt(cfg, "192.0.2.10", "mx.example.test",
	    "<\"john doe\"@example.com>", "<b@corp.example>", NULL, NULL, 0),
	    '-');
	cfg_release(cfg);
}

static void
test_store_unavailable_fails_open(void **state)
{
	struct cfg	*cfg;

	(void)state;
	(void)snprintf(dbpath, sizeof(dbpath), "/nonexistent-dir/x.lmdb");
	cfg = grey_cfg(ALWAYS, "");
	assert_int_equal(attempt(cfg, "192.0.2.10", "mx.example.test",
	    "<a@example.com>", "<b@corp.example>", NULL, NULL, 0), '-');
	assert_non_null(strstr(last_line, "verdict=accept"));
	assert_non_null(strstr(last_line, "greylist=error"));
	cfg_release(cfg);
	/* on_error = tempfail makes the same failure a 451 */
	cfg = grey_cfg("mode = \"always\"; on_error = \"tempfail\";", "");
	assert_int_equal(attempt(cfg, "192.0.2.10", "mx.example.test",
	    "<a@example.com>", "<b@corp.example>", NULL, NULL, 0), '4');
	assert_non_null(strstr(last_line, "code=451 dsn=4.3.0"));
	cfg_release(cfg);
	setup(NULL);
}

static void
test_sender_normalisation(void **state)
{
	static const char *const cases[][2] = {
		{ "User@Example.COM", "user@example.com" },
		{ "prvs=1234abcd=user@example.com", "user@example.com" },
		{ "PRVS=0123456789=User@example.com", "user@example.com" },
		{ "msprvs1=19abc=bounces-x@example.com",
		    "bounces-x@example.com" },
		{ "btv1==abcdef0123==carol@example.net", "carol@example.net" },
		{ "SRS0=HHH=TT=orig.example=alice@fwd.example",
		    "alice@orig.example" },
		{ "SRS0+HHH=TT=Orig.Example=Alice@fwd.example",
		    "alice@orig.example" },
		{ "SRS1=HHH=fwd1.example==HHH=TT=orig.example=bob@fwd2.example",
		    "bob@orig.example" },
		{ "list-bounces+bob=example.org@lists.example",
		    "list-bounces@lists.example" },
		{ "bounce-12345-678@mail.example", "bounce-#-#@mail.example" },
		{ "a1b22c333@x9.example", "a#b#c#@x9.example" },
		{ "SRS0=broken@fwd.example", "srs#=broken@fwd.example" },
		{ "prvs=@example.com", "prvs=@example.com" },
		{ "nolocal", "nolocal" },
		{ "", "" },
	};
	char	 out[128];
	size_t	 i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		(void)grey_sender(cases[i][0], out, sizeof(out));
		if (strcmp(out, cases[i][1]) != 0)
			fail_msg("%s: got '%s', want '%s'", cases[i][0], out,
			    cases[i][1]);
	}
	/* too small a buffer: nothing */
	assert_int_equal(grey_sender("abc@d", out, 5), 0);
	assert_string_equal(out, "");
}

static void
test_keys(void **state)
{
	char	 k[32];

	(void)state;
	assert_int_equal(grey_key_triplet(k, sizeof(k), "192.0.2.0/24",
	    "a@b", "c@d"), 0);
	assert_string_equal(k, "g|192.0.2.0/24|a@b|c@d");
	assert_int_equal(grey_key_triplet(k, 10, "192.0.2.0/24", "a@b",
	    "c@d"), -1);
	assert_int_equal(grey_key_callout(k, sizeof(k), "x@y"), 0);
	assert_string_equal(k, "c|x@y");
	/* bytes a store key cannot hold, from a quoted local part */
	assert_int_equal(grey_key_triplet(k, sizeof(k), "spf:d.example",
	    "\"a b|c\"@d", "e\tf@g"), 0);
	assert_string_equal(k, "g|spf:d.example|\"a_b_c\"@d|e_f@g");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sender_normalisation),
		cmocka_unit_test(test_keys),
		cmocka_unit_test_setup_teardown(test_first_early_passed, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_retry_window_and_expiry,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_auto_whitelist, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_selective, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_selection, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_exempt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_spf_origin, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_normalised_sender_matches,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_quoted_sender_greylisted,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_store_unavailable_fails_open, setup, teardown),
	};

	metrics_init();
	log_open("test_greylist", LOG_MAIL, 1);
	log_set_level(LOG_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
