/*
 * test_geoip.c - the GeoIP check through the pipeline: country per
 * client (IPv4, IPv6, registered_country fallback, unknown address),
 * geoip.scores points and reasons, no points for internal, whitelisted or
 * authenticated clients, config errors, and a database file replaced on
 * disk being picked up without a reload (also under concurrent lookups).
 * The databases are written at run time by tests/data/geoip/make-mmdb.pl.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>

#include "ctx.h"
#include "pipeline.h"
#include "unit.h"
#include "util.h"

#define MKDB	"tests/data/geoip/make-mmdb.pl"

static char	 dir[64];
static char	 db_default[128];	/* RO CN DE US, @NL */
static char	 db_moved[128];		/* 192.0.2.0/24 -> RO */
static char	 db_city[128];

/* Runs make-mmdb.pl ARGS (the output file first). */
static void
mkdb(const char *args)
{
	char	 cmd[512];

	(void)snprintf(cmd, sizeof(cmd), "perl %s %s >&2", MKDB, args);
	if (system(cmd) != 0)
		fail_msg("%s failed (run the tests from the top directory)",
		    cmd);
}

static void
copy_file(const char *from, const char *to)
{
	char	 buf[8192];
	ssize_t	 n;
	int	 in, out;

	in = open(from, O_RDONLY);
	assert_true(in >= 0);
	out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(out >= 0);
	while ((n = read(in, buf, sizeof(buf))) > 0)
		assert_int_equal(write(out, buf, (size_t)n), n);
	close(in);
	assert_int_equal(close(out), 0);
}

/* What geoipupdate does: write a new file, rename it over the old. */
static void
replace_with(const char *src, const char *dst)
{
	char	 tmp[160];

	(void)snprintf(tmp, sizeof(tmp), "%s.new", dst);
	copy_file(src, tmp);
	assert_int_equal(rename(tmp, dst), 0);
}

static int
setup_all(void **st)
{
	char	 args[256];

	(void)st;
	(void)snprintf(dir, sizeof(dir), "/tmp/portero-geoip-XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	(void)snprintf(db_default, sizeof(db_default), "%s/default.mmdb", dir);
	(void)snprintf(db_moved, sizeof(db_moved), "%s/moved.mmdb", dir);
	(void)snprintf(db_city, sizeof(db_city), "%s/city.mmdb", dir);
	mkdb(db_default);
	(void)snprintf(args, sizeof(args), "%s 192.0.2.0/24=RO", db_moved);
	mkdb(args);
	(void)snprintf(args, sizeof(args), "--city %s", db_city);
	mkdb(args);
	return 0;
}

static int
teardown_all(void **st)
{
	char	 cmd[128];

	(void)st;
	(void)snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* The base config, group by group; extra replaces the groups it names.
 * "@DB@" in the geoip group stands for the database path. */
static const char *const base_groups[][2] = {
	{ "networks", "networks = { internal = [ \"10.99.0.0/16\" ]; };\n" },
	{ "whitelist", "whitelist = { clients = [ \"198.51.100.7\" ]; };\n" },
	{ "thresholds", "thresholds = { reject = 50.0; };\n" },
	{ "geoip", "geoip = { database = \"@DB@\"; scores = { RO = 2.0; "
	    "CN = 3; US = -1.5; DE = 0; }; };\n" },
};

static struct cfg *
geoip_cfg(const char *db, const char *extra)
{
	char		 text[2048], out[2048], key[32], *at;
	struct err	 e;
	struct cfg	*c;
	size_t		 i, off = 0;

	if (extra == NULL)
		extra = "";
	for (i = 0; i < NELEM(base_groups); i++) {
		(void)snprintf(key, sizeof(key), "%s =", base_groups[i][0]);
		if (strstr(extra, key) != NULL)
			continue;
		off += (size_t)snprintf(text + off, sizeof(text) - off, "%s",
		    base_groups[i][1]);
	}
	(void)snprintf(text + off, sizeof(text) - off, "%s\n", extra);
	while ((at = strstr(text, "@DB@")) != NULL) {
		*at = '\0';
		(void)snprintf(out, sizeof(out), "%s%s%s", text, db, at + 4);
		(void)snprintf(text, sizeof(text), "%s", out);
	}
	c = unit_cfg(text, &e);
	if (c == NULL)
		fail_msg("config: %s", e.msg);
	return c;
}

/* Connects a client; returns the context (caller frees). */
static struct conn_ctx *
connect_client(struct cfg *cfg, const char *ip)
{
	struct conn_ctx	*c = conn_ctx_new(cfg);
	struct verdict	 v;

	assert_non_null(c);
	pipeline_connect(c, NULL, ip, &v);
	return c;
}

static void
line_of(const struct conn_ctx *c, char *out, size_t len)
{
	struct buf	 b;
	struct verdict	 v;

	verdict_set(&v, ACT_ACCEPT, NULL, NULL, NULL, NULL);
	buf_init(&b, 8192);
	assert_int_equal(decision_format(&b, c, NULL, NULL, &v), RC_OK);
	(void)snprintf(out, len, "%s", buf_str(&b));
	buf_free(&b);
}

struct row {
	const char	*name;
	const char	*extra;
	const char	*client;
	const char	*auth;		/* authenticate at MAIL */
	const char	*country;	/* NULL: none */
	int32_t		 score;		/* after connect, MAIL */
	const char	*logs;		/* in the decision line */
};

static const struct row rows[] = {
	{ "scored country", NULL, "203.0.113.7", NULL, "RO", 200,
	    "client=unknown[203.0.113.7] country=RO verdict=accept "
	    "reason=\"geoip:RO=2.0\" score=2.0" },
	{ "integer score", NULL, "198.51.100.1", NULL, "CN", 300,
	    "country=CN verdict=accept reason=\"geoip:CN=3.0\"" },
	{ "unlisted country: logged, no points", NULL, "192.0.2.10", NULL,
	    "DE", 0, "country=DE verdict=accept reason=\"\" score=0.0" },
	{ "IPv6, negative score", NULL, "2001:db8::25", NULL, "US", -150,
	    "client=unknown[2001:db8::25] country=US verdict=accept "
	    "reason=\"geoip:US=-1.5\"" },
	{ "IPv4-mapped IPv6 client", NULL, "::ffff:203.0.113.8", NULL, "RO",
	    200, "country=RO" },
	{ "registered_country when there is no country", NULL, "198.18.3.4",
	    NULL, "NL", 0, "country=NL" },
	{ "address not in the database", NULL, "100.64.1.1", NULL, NULL, 0,
	    "client=unknown[100.64.1.1] verdict=accept reason=\"\"" },
	{ "IPv6 address not in the database", NULL, "2001:db9::1", NULL,
	    NULL, 0, "client=unknown[2001:db9::1] verdict=accept" },
	{ "internal client: country, no points", NULL, "10.99.0.5", NULL,
	    NULL, 0, "dir=out" },
	{ "internal client in a scored country", "networks = { internal = [ "
	    "\"203.0.113.0/24\" ]; };", "203.0.113.7", NULL, "RO", 0,
	    "country=RO verdict=accept reason=\"\" score=0.0 dir=out" },
	{ "whitelisted client: country, no points", NULL, "198.51.100.7",
	    NULL, "CN", 0, "country=CN verdict=accept reason=\"\"" },
	{ "authenticated client: points dropped at MAIL", NULL,
	    "203.0.113.7", "alice", "RO", 0, "country=RO verdict=accept "
	    "reason=\"\" score=0.0 dir=out" },
	{ "module dry run", "geoip = { database = \"@DB@\"; dry_run = true; "
	    "scores = { RO = 2.0; }; };", "203.0.113.7", NULL, "RO", 0,
	    "reason=\"geoip:RO=2.0(dry)\" score=0.0" },
	{ "disabled module: no country", "geoip = { enabled = false; "
	    "database = \"@DB@\"; scores = { RO = 2.0; }; };", "203.0.113.7",
	    NULL, NULL, 0, "client=unknown[203.0.113.7] verdict=accept" },
};

static void
run_row(const struct row *r)
{
	struct cfg	*cfg;
	struct conn_ctx	*c;
	struct verdict	 v;
	char		 line[8192];
	uint64_t	 errs = metrics_value(M.check_errors, "geoip");

	cfg = geoip_cfg(db_default, r->extra);
	c = connect_client(cfg, r->client);
	if (r->auth != NULL) {
		pipeline_mail(c, "<a@example.org>", r->auth, &v);
		pipeline_abort(c);
	}
	if (r->country == NULL && c->country != NULL)
		fail_msg("%s: country %s, want none", r->name, c->country);
	if (r->country != NULL && (c->country == NULL ||
	    strcmp(c->country, r->country) != 0))
		fail_msg("%s: country %s, want %s", r->name,
		    c->country != NULL ? c->country : "(none)", r->country);
	if (conn_score(c) != r->score)
		fail_msg("%s: score %d, want %d", r->name, conn_score(c),
		    r->score);
	line_of(c, line, sizeof(line));
	if (strstr(line, r->logs) == NULL)
		fail_msg("%s: line '%s' lacks '%s'", r->name, line, r->logs);
	if (r->country == NULL && strstr(line, "country=") != NULL)
		fail_msg("%s: line '%s' has a country", r->name, line);
	if (metrics_value(M.check_errors, "geoip") != errs)
		fail_msg("%s: counted a check error", r->name);
	conn_ctx_free(c);
	cfg_release(cfg);
}

static void
test_rows(void **st)
{
	size_t	 i;

	(void)st;
	for (i = 0; i < NELEM(rows); i++)
		run_row(&rows[i]);
}

/* A score at connect over thresholds.reject refuses at RCPT. */
static void
test_threshold(void **st)
{
	struct cfg	*cfg;
	struct conn_ctx	*c;
	struct verdict	 v;

	(void)st;
	cfg = geoip_cfg(db_default, "thresholds = { reject = 2.0; };");
	c = connect_client(cfg, "203.0.113.7");
	pipeline_mail(c, "<a@example.org>", NULL, &v);
	pipeline_rcpt(c, "<b@corp.example>", &v);
	assert_int_equal(v.action, ACT_REJECT);
	assert_string_equal(v.code, "550");
	assert_string_equal(v.text, "Message rejected as spam");
	pipeline_abort(c);
	conn_ctx_free(c);
	cfg_release(cfg);
}

static void
test_city_database(void **st)
{
	struct cfg	*cfg;
	struct conn_ctx	*c;

	(void)st;
	cfg = geoip_cfg(db_city, NULL);
	c = connect_client(cfg, "203.0.113.7");
	assert_non_null(c->country);
	assert_string_equal(c->country, "RO");
	assert_int_equal(conn_score(c), 200);
	conn_ctx_free(c);
	cfg_release(cfg);
}

/* A local submission has no address: nothing to look up. */
static void
test_no_address(void **st)
{
	struct cfg	*cfg;
	struct conn_ctx	*c;

	(void)st;
	cfg = geoip_cfg(db_default, NULL);
	c = connect_client(cfg, NULL);
	assert_null(c->country);
	conn_ctx_free(c);
	cfg_release(cfg);
}

static void
expect_cfg_error(const char *name, const char *text, const char *want)
{
	struct err	 e;
	struct cfg	*c;

	c = unit_cfg(text, &e);
	if (c != NULL) {
		cfg_release(c);
		fail_msg("%s: config accepted", name);
	}
	if (strstr(e.msg, want) == NULL)
		fail_msg("%s: error '%s' lacks '%s'", name, e.msg, want);
}

static void
test_config_errors(void **st)
{
	char	 text[512], want[256], corrupt[160], empty[160];
	FILE	*fp;

	(void)st;
	expect_cfg_error("missing file", "geoip = { database = "
	    "\"/nonexistent/GeoLite2-Country.mmdb\"; };",
	    "setting 'geoip.database': cannot read "
	    "'/nonexistent/GeoLite2-Country.mmdb'");

	(void)snprintf(corrupt, sizeof(corrupt), "%s/corrupt.mmdb", dir);
	fp = fopen(corrupt, "w");
	assert_non_null(fp);
	(void)fputs("this is not a MaxMind DB\n", fp);
	(void)fclose(fp);
	(void)snprintf(text, sizeof(text), "geoip = { database = \"%s\"; };",
	    corrupt);
	(void)snprintf(want, sizeof(want), "setting 'geoip.database': cannot "
	    "open MaxMind DB '%s': ", corrupt);
	expect_cfg_error("corrupt file", text, want);

	(void)snprintf(empty, sizeof(empty), "%s/empty.mmdb", dir);
	fp = fopen(empty, "w");
	assert_non_null(fp);
	(void)fclose(fp);
	(void)snprintf(text, sizeof(text), "geoip = { database = \"%s\"; };",
	    empty);
	(void)snprintf(want, sizeof(want), "cannot open MaxMind DB '%s'",
	    empty);
	expect_cfg_error("empty file", text, want);

	(void)snprintf(text, sizeof(text), "geoip = { database = \"%s\"; };",
	    dir);
	(void)snprintf(want, sizeof(want), "cannot open MaxMind DB '%s': not "
	    "a regular file", dir);
	expect_cfg_error("a directory", text, want);

	expect_cfg_error("no database", "geoip = { scores = { RO = 1.0; }; };",
	    "setting 'geoip.database': a GeoIP2 or GeoLite2 Country or City "
	    ".mmdb file is required");

	(void)snprintf(text, sizeof(text), "geoip = { database = \"%s\";\n"
	    "  scores = { RO = 1.0;\n ro = 2.0; }; };", db_default);
	expect_cfg_error("lower-case country code", text,
	    ":3: setting 'geoip.scores.ro': 'ro' is not a country code");
	(void)snprintf(text, sizeof(text), "geoip = { database = \"%s\"; "
	    "scores = { ROM = 1.0; }; };", db_default);
	expect_cfg_error("three letters", text, "'ROM' is not a country code");
	(void)snprintf(text, sizeof(text), "geoip = { database = \"%s\"; "
	    "scores = { RO = \"high\"; }; };", db_default);
	expect_cfg_error("score not a number", text,
	    "setting 'geoip.scores.RO': expected a number");

	/* disabled: the file is not needed */
	{
		struct err	 e;
		struct cfg	*c = unit_cfg("geoip = { enabled = false; "
		    "database = \"/nonexistent/x.mmdb\"; };", &e);

		if (c == NULL)
			fail_msg("disabled geoip: %s", e.msg);
		cfg_release(c);
	}
}

static void
expect_country(struct cfg *cfg, const char *ip, const char *want)
{
	struct conn_ctx	*c = connect_client(cfg, ip);

	if (c->country == NULL || strcmp(c->country, want) != 0)
		fail_msg("%s: country %s, want %s", ip, c->country != NULL ?
		    c->country : "(none)", want);
	conn_ctx_free(c);
}

static void
sleep_ms(unsigned ms)
{
	struct timespec	 ts;

	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (long)(ms % 1000) * 1000000L;

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* geoipupdate renames a new file over the old one: seen within ~1 s. */
static void
test_file_replaced(void **st)
{
	char		 live[160], bad[160];
	struct cfg	*cfg;
	struct conn_ctx	*c;
	FILE		*fp;

	(void)st;
	(void)snprintf(live, sizeof(live), "%s/live.mmdb", dir);
	copy_file(db_default, live);
	cfg = geoip_cfg(live, NULL);
	expect_country(cfg, "192.0.2.10", "DE");

	replace_with(db_moved, live);
	sleep_ms(1100);
	c = connect_client(cfg, "192.0.2.10");
	assert_non_null(c->country);
	assert_string_equal(c->country, "RO");
	assert_int_equal(conn_score(c), 200);	/* RO's score applies */
	conn_ctx_free(c);

	/* a broken replacement is logged; the loaded database stays */
	(void)snprintf(bad, sizeof(bad), "%s/bad.mmdb", dir);
	fp = fopen(bad, "w");
	assert_non_null(fp);
	(void)fputs("garbage\n", fp);
	(void)fclose(fp);
	replace_with(bad, live);
	sleep_ms(1100);
	expect_country(cfg, "192.0.2.10", "RO");

	/* so does a removed file */
	assert_int_equal(unlink(live), 0);
	sleep_ms(1100);
	expect_country(cfg, "192.0.2.10", "RO");

	/* and a good file coming back is used */
	replace_with(db_default, live);
	sleep_ms(1100);
	expect_country(cfg, "192.0.2.10", "DE");

	/* a reload (new config snapshot) reads the file of the moment */
	replace_with(db_moved, live);
	{
		struct cfg *nc = geoip_cfg(live, NULL);

		expect_country(nc, "192.0.2.10", "RO");
		cfg_release(nc);
	}
	cfg_release(cfg);
}

/* Lookups from many threads while the file is replaced again and again
 * (for TSan and ASan: no race, no use of an unmapped database). */
struct worker {
	struct cfg	*cfg;
	_Atomic int	*stop;
	int		 bad;
	unsigned	 n;
};

static void *
worker_main(void *arg)
{
	struct worker	*w = arg;
	struct conn_ctx	*c;
	struct verdict	 v;

	while (!atomic_load(w->stop)) {
		c = conn_ctx_new(w->cfg);
		if (c == NULL) {
			w->bad++;
			break;
		}
		pipeline_connect(c, NULL, "192.0.2.10", &v);
		if (c->country == NULL || (strcmp(c->country, "DE") != 0 &&
		    strcmp(c->country, "RO") != 0))
			w->bad++;
		conn_ctx_free(c);
		w->n++;
	}
	return NULL;
}

static void
test_concurrent_replacement(void **st)
{
	char		 live[160];
	struct cfg	*cfg;
	struct worker	 w[4];
	pthread_t	 tid[4];
	_Atomic int	 stop = 0;
	int		 i;

	(void)st;
	(void)snprintf(live, sizeof(live), "%s/busy.mmdb", dir);
	copy_file(db_default, live);
	cfg = geoip_cfg(live, NULL);
	for (i = 0; i < 4; i++) {
		memset(&w[i], 0, sizeof(w[i]));
		w[i].cfg = cfg;
		w[i].stop = &stop;
		assert_int_equal(pthread_create(&tid[i], NULL, worker_main,
		    &w[i]), 0);
	}
	for (i = 0; i < 6; i++) {
		sleep_ms(400);
		replace_with(i % 2 == 0 ? db_moved : db_default, live);
	}
	sleep_ms(1100);
	atomic_store(&stop, 1);
	for (i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(tid[i], NULL), 0);
		assert_int_equal(w[i].bad, 0);
		assert_true(w[i].n > 0);
	}
	/* the last file written maps 192.0.2.0/24 to DE */
	expect_country(cfg, "192.0.2.10", "DE");
	cfg_release(cfg);
}

static void
sink(const char *line)
{
	(void)line;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rows),
		cmocka_unit_test(test_threshold),
		cmocka_unit_test(test_city_database),
		cmocka_unit_test(test_no_address),
		cmocka_unit_test(test_config_errors),
		cmocka_unit_test(test_file_replaced),
		cmocka_unit_test(test_concurrent_replacement),
	};

	log_open("test", LOG_MAIL, 1);
	log_set_level(LOG_CRIT);
	log_set_decision_sink(sink);
	metrics_init();
	return cmocka_run_group_tests_name("geoip", tests, setup_all,
	    teardown_all);
}
