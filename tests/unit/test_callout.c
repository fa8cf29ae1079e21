/*
 * test_callout.c - recipient verification callouts through the pipeline
 * calls the milter makes, against an in-process stand-in for the
 * internal MTA (a thread on a loopback port that counts connections and
 * RCPT commands), with the cache in an LMDB store in a temporary file:
 * unknown / known / cached answers, refresh and stale answers, target
 * down / 4xx / silent, one connection for many recipients, the
 * dictionary-attack brake, on_error and outbound exemption.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <strings.h>
#include <sys/socket.h>

#include "ctx.h"
#include "pipeline.h"
#include "store.h"
#include "unit.h"
#include "util.h"

enum mta_mode { MTA_NORMAL, MTA_TEMPFAIL, MTA_HANG };

static struct {
	int			 fd;
	unsigned		 port;
	pthread_t		 tid;
	atomic_int		 mode;
	atomic_int		 conns;
	atomic_int		 rcpts;
	atomic_int		 stop;
} mta;

static char	 last_line[8192];
static char	 dbpath[64];

static void
sink(const char *line)
{
	(void)snprintf(last_line, sizeof(last_line), "%s", line);
}

static int
known(const char *arg)
{
	return strcasestr(arg, "<known@corp.example>") != NULL ||
	    strcasestr(arg, "<user") != NULL;
}

static void
serve(int fd)
{
	FILE	*in = fdopen(fd, "r+");
	char	 line[1024];

	if (in == NULL) {
		(void)close(fd);
		return;
	}
	if (atomic_load(&mta.mode) == MTA_HANG) {
		while (fgets(line, sizeof(line), in) != NULL)
			;
		(void)fclose(in);
		return;
	}
	(void)fputs("220-mta.test ESMTP stand-in\r\n220 ready\r\n", in);
	(void)fflush(in);
	while (fgets(line, sizeof(line), in) != NULL) {
		if (strncasecmp(line, "EHLO", 4) == 0)
			(void)fputs("250-mta.test\r\n250 8BITMIME\r\n", in);
		else if (strncasecmp(line, "RCPT", 4) == 0) {
			atomic_fetch_add(&mta.rcpts, 1);
			if (atomic_load(&mta.mode) == MTA_TEMPFAIL)
				(void)fputs("450 4.2.0 try later\r\n", in);
			else if (known(line))
				(void)fputs("250 2.1.5 Ok\r\n", in);
			else
				(void)fputs("550 5.1.1 User unknown\r\n", in);
		} else if (strncasecmp(line, "QUIT", 4) == 0) {
			(void)fputs("221 bye\r\n", in);
			(void)fflush(in);
			break;
		} else
			(void)fputs("250 Ok\r\n", in);
		(void)fflush(in);
	}
	(void)fclose(in);
}

static void *
mta_main(void *arg)
{
	int	 fd;

	(void)arg;
	while (!atomic_load(&mta.stop)) {
		if ((fd = accept(mta.fd, NULL, NULL)) < 0)
			continue;
		if (atomic_load(&mta.stop)) {
			(void)close(fd);
			break;
		}
		atomic_fetch_add(&mta.conns, 1);
		serve(fd);
	}
	return NULL;
}

static int
group_setup(void **state)
{
	struct sockaddr_in	 sin;
	socklen_t		 len = sizeof(sin);

	(void)state;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	mta.fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(mta.fd >= 0);
	assert_int_equal(bind(mta.fd, (struct sockaddr *)&sin, sizeof(sin)),
	    0);
	assert_int_equal(listen(mta.fd, 16), 0);
	assert_int_equal(getsockname(mta.fd, (struct sockaddr *)&sin, &len),
	    0);
	mta.port = ntohs(sin.sin_port);
	assert_int_equal(pthread_create(&mta.tid, NULL, mta_main, NULL), 0);
	return 0;
}

static int
group_teardown(void **state)
{
	struct sockaddr_in	 sin;
	int			 fd;

	(void)state;
	atomic_store(&mta.stop, 1);
	/* wake accept() */
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons((uint16_t)mta.port);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	(void)connect(fd, (struct sockaddr *)&sin, sizeof(sin));
	(void)pthread_join(mta.tid, NULL);
	(void)close(fd);
	(void)close(mta.fd);
	return 0;
}

static int
setup(void **state)
{
	(void)state;
	unit_store_begin(dbpath, sizeof(dbpath), "callout", sink);
	atomic_store(&mta.mode, MTA_NORMAL);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	unit_store_end(dbpath);
	return 0;
}

/* port 0: the stand-in's; else that (closed) port */
static struct cfg *
co_cfg(unsigned port, const char *extra)
{
	char		 text[2048];
	struct err	 e;
	struct cfg	*c;

	(void)snprintf(text, sizeof(text),
	    "networks = { internal = [ \"10.99.0.0/16\" ]; };\n"
	    "store = { path = \"%s\"; max_size = \"16M\"; };\n"
	    "callout = { domains = ( { domain = \"corp.example\"; host = "
	    "\"127.0.0.1\"; port = %u; } ); timeout = 1; max_time = 2; "
	    "%s };\n", dbpath, port != 0 ? port : mta.port,
	    extra);
	c = unit_cfg(text, &e);
	if (c == NULL)
		fail_msg("%s", e.msg);
	cfg_install(cfg_ref(c));
	return c;
}

/*
 * One transaction from client with the recipients; codes gets each RCPT
 * reply's code ("-" for continue), space-separated.
 */
static void
session(struct cfg *cfg, const char *client, const char *const *rcpts,
    size_t n, char *codes, size_t clen)
{
	struct conn_ctx	*c = conn_ctx_new(cfg_ref(cfg));
	struct verdict	 v;
	size_t		 i, o = 0;
	int		 accepted = 0;

	assert_non_null(c);
	codes[0] = '\0';
	pipeline_connect(c, NULL, client, &v);
	pipeline_helo(c, "mx.example.test", &v);
	pipeline_mail(c, "<a@example.com>", NULL, &v);
	for (i = 0; i < n; i++) {
		pipeline_rcpt(c, rcpts[i], &v);
		o += (size_t)snprintf(codes + o, clen - o, "%s%s",
		    i ? " " : "", v.action == ACT_CONTINUE ? "-" :
		    v.code != NULL ? v.code : "?");
		accepted += v.action == ACT_CONTINUE;
		assert_true(o < clen);
	}
	if (accepted) {
		pipeline_eom(c, &v);
		pipeline_msg_end(c);
	} else
		pipeline_abort(c);
	cfg_release(c->cfg);
	conn_ctx_free(c);
}

static void
one(struct cfg *cfg, const char *client, const char *rcpt, const char *want)
{
	char	 codes[64];

	session(cfg, client, &rcpt, 1, codes, sizeof(codes));
	if (strcmp(codes, want) != 0)
		fail_msg("%s: got %s, want %s (%s)", rcpt, codes, want,
		    last_line);
}

static void
test_unknown_known_cached(void **state)
{
	struct cfg	*cfg = co_cfg(0, "");
	int		 c0 = atomic_load(&mta.conns);

	(void)state;
	one(cfg, "192.0.2.10", "<nobody@corp.example>", "550");
	assert_non_null(strstr(last_line, "code=550 dsn=5.1.1 by=callout"));
	assert_non_null(strstr(last_line, "callout=reject"));
	one(cfg, "192.0.2.10", "<Known@Corp.Example>", "-");
	assert_non_null(strstr(last_line, "callout=accept"));
	assert_int_equal(atomic_load(&mta.conns), c0 + 2);
	/* both answered from the cache: no new connection */
	one(cfg, "192.0.2.11", "<known@corp.example>", "-");
	assert_non_null(strstr(last_line, "callout=accept-cached"));
	one(cfg, "192.0.2.11", "<nobody@corp.example>", "550");
	assert_non_null(strstr(last_line, "callout=reject-cached"));
	assert_int_equal(atomic_load(&mta.conns), c0 + 2);
	/* other domains are not verified */
	one(cfg, "192.0.2.11", "<x@other.example>", "-");
	assert_int_equal(atomic_load(&mta.conns), c0 + 2);
	cfg_release(cfg);
}

static void
test_refresh_and_stale(void **state)
{
	struct cfg	*cfg = co_cfg(0, "positive_refresh = 100; "
	    "negative_refresh = 100;");
	struct cfg	*down;
	int		 c0 = atomic_load(&mta.conns);

	(void)state;
	one(cfg, "192.0.2.10", "<known@corp.example>", "-");
	one(cfg, "192.0.2.10", "<gone@corp.example>", "550");
	store_set_clock_offset(150);
	/* older than the refresh age: asked again */
	one(cfg, "192.0.2.10", "<known@corp.example>", "-");
	assert_int_equal(atomic_load(&mta.conns), c0 + 3);
	cfg_release(cfg);
	/* target unreachable: a stale answer beats a tempfail */
	store_set_clock_offset(300);
	down = co_cfg(1, "positive_refresh = 100; negative_refresh = 100;");
	one(down, "192.0.2.10", "<known@corp.example>", "-");
	assert_non_null(strstr(last_line, "callout=accept-stale"));
	one(down, "192.0.2.10", "<gone@corp.example>", "550");
	cfg_release(down);
}

static void
test_down_tempfail_hang(void **state)
{
	struct cfg	*cfg = co_cfg(1, "");
	uint64_t	 t0;
	int		 c0;

	(void)state;
	one(cfg, "192.0.2.10", "<user1@corp.example>", "450");
	assert_non_null(strstr(last_line, "dsn=4.1.1"));
	assert_non_null(strstr(last_line, "callout=down"));
	/* down: the next recipient is answered at once */
	t0 = now_ms();
	one(cfg, "192.0.2.10", "<user2@corp.example>", "450");
	assert_true(now_ms() - t0 < 200);
	cfg_release(cfg);

	cfg = co_cfg(0, "");
	atomic_store(&mta.mode, MTA_TEMPFAIL);
	c0 = atomic_load(&mta.conns);
	one(cfg, "192.0.2.10", "<user3@corp.example>", "450");
	assert_non_null(strstr(last_line, "callout=tempfail"));
	/* a 4xx is not cached */
	one(cfg, "192.0.2.10", "<user3@corp.example>", "450");
	assert_int_equal(atomic_load(&mta.conns), c0 + 2);

	atomic_store(&mta.mode, MTA_HANG);
	t0 = now_ms();
	one(cfg, "192.0.2.10", "<user4@corp.example>", "450");
	/* timeout = 1 s bounds the silent target */
	assert_true(now_ms() - t0 < 1800);
	atomic_store(&mta.mode, MTA_NORMAL);
	cfg_release(cfg);

	/* on_error = accept lets the recipient through */
	cfg = co_cfg(1, "on_error = \"accept\";");
	one(cfg, "192.0.2.10", "<user5@corp.example>", "-");
	cfg_release(cfg);
}

static void
test_one_connection_for_50(void **state)
{
	struct cfg	*cfg = co_cfg(0, "brake_limit = 0;");
	const char	*rcpts[50];
	char		 names[50][40], codes[400], want[400];
	size_t		 i, o = 0;
	int		 c0 = atomic_load(&mta.conns);
	int		 r0 = atomic_load(&mta.rcpts);

	(void)state;
	for (i = 0; i < 50; i++) {
		(void)snprintf(names[i], sizeof(names[i]),
		    i % 2 ? "<user%zu@corp.example>" : "<nouser%zu@corp."
		    "example>", i);
		rcpts[i] = names[i];
		o += (size_t)snprintf(want + o, sizeof(want) - o, "%s%s",
		    i ? " " : "", i % 2 ? "-" : "550");
	}
	session(cfg, "192.0.2.10", rcpts, 50, codes, sizeof(codes));
	assert_string_equal(codes, want);
	assert_int_equal(atomic_load(&mta.conns), c0 + 1);
	assert_int_equal(atomic_load(&mta.rcpts), r0 + 50);
	cfg_release(cfg);
}

static void
test_brake(void **state)
{
	struct cfg	*cfg = co_cfg(0, "brake_limit = 3;");
	const char	*rcpts[] = { "<a1@corp.example>", "<a2@corp.example>",
	    "<a3@corp.example>", "<user1@corp.example>",
	    "<a4@corp.example>" };
	char		 codes[64];
	int		 r0;

	(void)state;
	session(cfg, "192.0.2.66", rcpts, 5, codes, sizeof(codes));
	/* the third unknown trips it: later ones get 421, no callout */
	r0 = atomic_load(&mta.rcpts);
	assert_string_equal(codes, "550 550 550 421 421");
	assert_non_null(strstr(last_line, "code=421 dsn=4.7.0"));
	/* a new connection from that client: still braked, no callout */
	one(cfg, "192.0.2.66", "<user2@corp.example>", "421");
	assert_int_equal(atomic_load(&mta.rcpts), r0);
	/* another client is not */
	one(cfg, "192.0.2.67", "<user2@corp.example>", "-");
	cfg_release(cfg);
}

static void
test_outbound_not_verified(void **state)
{
	struct cfg	*cfg = co_cfg(0, "");
	int		 c0 = atomic_load(&mta.conns);

	(void)state;
	one(cfg, "10.99.0.5", "<nobody@corp.example>", "-");
	assert_int_equal(atomic_load(&mta.conns), c0);
	cfg_release(cfg);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_unknown_known_cached,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_refresh_and_stale, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_down_tempfail_hang, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_one_connection_for_50,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_brake, setup, teardown),
		cmocka_unit_test_setup_teardown(test_outbound_not_verified,
		    setup, teardown),
	};

	metrics_init();
	log_open("test_callout", LOG_MAIL, 1);
	log_set_level(LOG_ERR);
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
