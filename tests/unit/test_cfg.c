/*
 * test_cfg.c - config validation: good files load, bad files are refused
 * with "file:line: setting 'x.y': why", reload snapshot reference counts.
 */
#include <sys/stat.h>

#include "check.h"
#include "unit.h"

static void
test_good(void **st)
{
	static const char *good[] = {
		"",
		"milter = { socket = \"inet:8891@127.0.0.1\"; timeout = 30; };",
		"milter = { timeout = \"2m\"; socket_mode = \"0600\"; };",
		"networks = { internal = [ \"10.0.0.0/8\", \"2001:db8::/32\" ]; };",
		"thresholds = { reject = 12; greylist = 4.5; };",
		"dry_run = true; helo = { dry_run = true; on_error = \"accept\"; };",
		"dnsbl = ( { zone = \"zen.example\"; score = 3.0; codes = ( { "
		    "code = \"127.0.0.2\"; score = 20.0; } ); } );",
		"geoip = { enabled = false; database = \"/nonexistent.mmdb\"; "
		    "scores = { RO = 2.0; CN = 3; }; };",
		"greylist = { delay = \"5m\"; retry_window = \"2d\"; expire = "
		    "\"36d\"; };",
		"content = { enabled = false; max_size = \"50M\"; };",
		"dnsbl = ( );",
		"dns = { mode = \"forward\"; forward = [ \"127.0.0.1\", "
		    "\"127.0.0.1@5353\", \"::1@53\" ]; timeout = 1; };",
	};
	struct err	 e;
	struct cfg	*c;
	size_t		 i;

	(void)st;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		c = unit_cfg(good[i], &e);
		if (c == NULL)
			fail_msg("good row %zu refused: %s", i, e.msg);
		cfg_release(c);
	}
}

static void
test_bad(void **st)
{
	static const struct {
		const char	*text;
		const char	*want;	/* substring of the error */
	} bad[] = {
		{ "milter = {\n  sokcet = \"x\";\n};", ":2: setting "
		    "'milter.sokcet': unknown setting" },
		{ "frobnicate = 1;", ":1: setting 'frobnicate': unknown" },
		{ "milter = { timeout = \"5 minutes\"; };", "'milter.timeout'" },
		{ "milter = { timeout = 0; };", "out of range" },
		{ "milter = { backlog = \"128\"; };", "expected an integer" },
		{ "milter = { max_connections = 0; };", "out of range" },
		{ "milter = { socket_mode = \"0999\"; };", "not an octal mode" },
		{ "milter = { socket = \"tcp:1@x\"; };", "must start with" },
		{ "networks = { internal = [ \"10.0.0.0/33\" ]; };",
		    "setting 'networks.internal[0]'" },
		{ "\n\nwhitelist = { clients = [ \"127.0.0.1\", \"nope\" ]; };",
		    ":3: setting 'whitelist.clients[1]': 'nope' is not" },
		{ "thresholds = { reject = \"high\"; };", "expected a number" },
		{ "thresholds = { reject = 100000.0; };", "out of range" },
		{ "log = { level = \"loud\"; };", "not one of" },
		{ "helo = { enabled = \"yes\"; };", "expected true or false" },
		{ "helo = { on_error = \"ignore\"; };", "not one of" },
		{ "geoip = { database = \"/nonexistent/geo.mmdb\"; };",
		    "cannot read '/nonexistent/geo.mmdb'" },
		{ "dnsbl = { zone = \"x\"; };", "expected a list of groups" },
		{ "dnsbl = ( { zone = \"x\"; bogus = 1; } );",
		    "'dnsbl[0].bogus': unknown" },
		{ "milter = \"x\";", "expected a group" },
		{ "milter = { socket = \"x\";\n", ":2: syntax error" },
		{ "milter = {\n socket = \"tcp:1@x\"; };", ":2: setting "
		    "'milter.socket': 'tcp:1@x' must start with" },
		{ "whitelist = { senders = [ \"\" ]; };", "empty string" },
		{ "content = { max_size = \"1T\"; };", "not a size" },
		{ "spam = { kill_action = \"bounce\"; };", "not one of" },
		{ "@include \"/nonexistent.conf\"", "" },
		{ "milter = {\n user = \"no-such-user-x\"; };", ":2: setting "
		    "'milter.user': no such user 'no-such-user-x'" },
		{ "milter = { group = \"no-such-group-x\"; };",
		    "'milter.group': no such group" },
		/* setups that fail after building part of their conf (the
		 * fuzzer found the leak) */
		{ "dnsbl = ( { zone = \"zen.example\"; score = 1.0; }, { zone = "
		    "\"bl.example\"; codes = ( { code = \"10.0.0.1\"; } ); } );",
		    "each code needs code = \"127.x.y.z\" or mask = N" },
		{ "rdns = { generic_patterns = [ \"(\" ]; };",
		    "setting 'rdns.generic_patterns[0]'" },
		{ "dns = { mode = \"forward\"; forward = [ \"not-an-ip\" ]; };",
		    "setting 'dns.forward[0]': 'not-an-ip' is not IP or IP@PORT" },
		{ "dns = { mode = \"forward\"; forward = [ \"127.0.0.1@0\" ]; };",
		    "'dns.forward[0]'" },
		{ "dns = { mode = \"forward\"; };", "needs at least one server" },
		{ "metrics = { listen = \"localhost\"; };",
		    ":1: setting 'metrics.listen': metrics.listen 'localhost' "
		    "is not host:port" },
		{ "metrics = { listen = \"127.0.0.1:99999\"; };",
		    "'metrics.listen'" },
		{ "store = { backend = \"redis\"; redis = { servers = [ "
		    "\"127.0.0.1:6379\", \"::1\" ]; }; };",
		    "setting 'store.redis.servers': '::1' is not HOST:PORT" },
		{ "store = { backend = \"redis\"; redis = { servers = [ ]; "
		    "}; };", "the redis backend needs at least one server" },
		{ "greylist = { countries = [ \"ro\" ]; };",
		    "'ro' is not an ISO 3166-1 alpha-2 code" },
		{ "greylist = { delay = \"3h\"; retry_window = \"2h\"; };",
		    "must be longer than 'greylist.delay'" },
		{ "callout = { domains = ( ); };", "no domain to verify" },
		{ "callout = { domains = ( { domain = \"a.example\"; host = "
		    "\"10.0.0.5\"; }, { domain = \"A.example\"; host = "
		    "\"10.0.0.6\"; } ); };", "domain 'a.example' is listed "
		    "twice" },
	};
	struct err	 e;
	struct cfg	*c;
	size_t		 i;

	(void)st;
	/* a DKIM key that cannot be read leaves its domain unsigned; only
	 * portero -t (strict) refuses the file */
	c = unit_cfg("dkim = { keys = ( { domain = \"a.example\"; selector = "
	    "\"s\"; key = \"/nonexistent.pem\"; } ); };", &e);
	assert_non_null(c);
	cfg_release(c);
	cfg_set_strict(1);
	c = unit_cfg("dkim = { keys = ( { domain = \"a.example\"; selector = "
	    "\"s\"; key = \"/nonexistent.pem\"; } ); };", &e);
	cfg_set_strict(0);
	assert_null(c);
	assert_non_null(strstr(e.msg, "dkim.keys.[0]: key file "
	    "/nonexistent.pem: No such file or directory"));
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		c = unit_cfg(bad[i].text, &e);
		if (c != NULL) {
			cfg_release(c);
			fail_msg("bad row %zu accepted: %s", i, bad[i].text);
		}
		if (strstr(e.msg, bad[i].want) == NULL)
			fail_msg("bad row %zu: error '%s' lacks '%s'", i, e.msg,
			    bad[i].want);
		/* every message names the file */
		assert_non_null(strstr(e.msg, "/tmp/portero-unit-"));
	}
}

static void
test_defaults(void **st)
{
	struct err	 e;
	struct cfg	*c = unit_cfg("", &e);

	(void)st;
	assert_non_null(c);
	assert_string_equal(c->milter.socket,
	    "unix:/var/spool/postfix/portero/portero.sock");
	assert_int_equal(c->milter.socket_mode, 0660);
	assert_int_equal(c->milter.timeout, 600);
	assert_int_equal(c->milter.max_connections, 1000);
	assert_int_equal(c->thresholds.reject, 1000);
	assert_int_equal(c->thresholds.greylist, 400);
	assert_string_equal(c->metrics_listen, "");
	/* list defaults come from the schema */
	assert_int_equal(c->internal.n, 2);
	{
		struct strlist	 l;
		struct ipaddr	 a;

		assert_int_equal(ipaddr_parse("127.0.0.1", &a), RC_OK);
		assert_true(cidr_list_match(&c->internal, &a));
		assert_int_equal(ipaddr_parse("::1", &a), RC_OK);
		assert_true(cidr_list_match(&c->internal, &a));
		assert_int_equal(cv_strlist(NULL, "dkim.oversign", &l, &e),
		    RC_OK);
		assert_int_equal(l.n, 1);
		assert_string_equal(l.v[0], "From");
		strlist_free(&l);
		assert_int_equal(cv_strlist(NULL, "content.blocked_extensions",
		    &l, &e), RC_OK);
		assert_int_equal(l.n, 24);
		assert_string_equal(l.v[16], "lnk");
		assert_string_equal(l.v[23], "vhd");
		strlist_free(&l);
	}
	/* absent groups: modules off; whitelist/blacklist/helo not set up */
	assert_int_equal(c->nchecks, 0);
	cfg_release(c);
}

static void
test_modules_on_off(void **st)
{
	struct err	 e;
	struct cfg	*c;

	(void)st;
	c = unit_cfg("helo = { }; sender = { enabled = false; }; "
	    "blacklist = { dry_run = true; }; dry_run = false;", &e);
	assert_non_null(c);
	assert_int_equal(c->nchecks, 2);
	assert_string_equal(c->checks[0].ops->name, "blacklist");
	assert_int_equal(c->checks[0].dry_run, 1);
	assert_string_equal(c->checks[1].ops->name, "helo");
	assert_int_equal(c->checks[1].dry_run, 0);
	assert_int_equal(c->checks[1].on_error, ON_ERROR_TEMPFAIL);
	cfg_release(c);
	/* each module's own on_error default (SPEC section 4) */
	c = unit_cfg("rdns = { }; helo = { };", &e);
	assert_non_null(c);
	assert_string_equal(c->checks[0].ops->name, "rdns");
	assert_int_equal(c->checks[0].on_error, ON_ERROR_ACCEPT);
	assert_string_equal(c->checks[1].ops->name, "helo");
	assert_int_equal(c->checks[1].on_error, ON_ERROR_TEMPFAIL);
	cfg_release(c);
	c = unit_cfg("helo = { on_error = \"accept\"; }; dry_run = true;", &e);
	assert_non_null(c);
	assert_int_equal(c->checks[0].dry_run, 1);
	assert_int_equal(c->checks[0].on_error, ON_ERROR_ACCEPT);
	cfg_release(c);
}

static void
test_install_refs(void **st)
{
	struct err	 e;
	struct cfg	*a = unit_cfg("", &e), *b = unit_cfg("", &e), *held;

	(void)st;
	cfg_install(a);
	held = cfg_acquire();		/* a connection in flight */
	assert_ptr_equal(held, a);
	cfg_install(b);			/* reload */
	assert_int_equal(atomic_load(&a->refs), 1);	/* still alive */
	assert_true(b->generation > a->generation);
	assert_ptr_equal(cfg_acquire(), b);
	cfg_release(b);
	cfg_release(held);		/* frees a (ASan checks) */
	cfg_install(NULL);
	assert_null(cfg_acquire());
}

static void
test_restart_diff(void **st)
{
	struct err	 e;
	struct cfg	*a = unit_cfg("milter = { socket = \"inet:1@127.0.0.1\"; };",
			    &e);
	struct cfg	*b = unit_cfg("milter = { socket = \"inet:2@127.0.0.1\"; };",
			    &e);
	struct cfg	*c = unit_cfg("milter = { socket = \"inet:1@127.0.0.1\"; "
			    "max_connections = 5; }; log = { level = \"debug\"; };"
			    " thresholds = { reject = 5; };", &e);
	struct cfg	*d = unit_cfg("milter = { socket = \"inet:1@127.0.0.1\"; "
			    "timeout = 10; };", &e);

	(void)st;
	assert_string_equal(cfg_restart_diff(a, b), "milter.socket");
	assert_null(cfg_restart_diff(a, c));
	assert_string_equal(cfg_restart_diff(a, d), "milter.timeout");
	cfg_release(d);
	cfg_release(a);
	cfg_release(b);
	cfg_release(c);
}

static void
test_unreadable_file(void **st)
{
	struct err	 e;
	struct cfg	*c;
	char		*f = unit_tmpfile("/^Subject: x/ DUNNO\n"), text[256];

	(void)st;
	(void)snprintf(text, sizeof(text), "content = { header_checks = "
	    "\"%s\"; };", f);
	c = unit_cfg(text, &e);
	assert_non_null(c);	/* readable: fine */
	cfg_release(c);
	if (geteuid() != 0) {	/* root reads anything */
		chmod(f, 0);
		c = unit_cfg(text, &e);
		assert_null(c);
		assert_non_null(strstr(e.msg, "cannot read"));
	}
	unit_rm(f);
	c = unit_cfg("milter = {};", &e);
	assert_non_null(c);
	cfg_release(c);
	assert_null(cfg_load("/nonexistent/portero.conf", &e));
	assert_non_null(strstr(e.msg, "/nonexistent/portero.conf"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good),
		cmocka_unit_test(test_bad),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_modules_on_off),
		cmocka_unit_test(test_install_refs),
		cmocka_unit_test(test_restart_diff),
		cmocka_unit_test(test_unreadable_file),
	};

	log_open("test", LOG_MAIL, 1);
	log_set_level(LOG_ERR);
	return cmocka_run_group_tests_name("cfg", tests, NULL, NULL);
}
