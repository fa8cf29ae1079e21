/*
 * test_support.c - bounded buffer, arena limits, log escaping, metrics
 * rendering and message splitting.
 */
#include "arena.h"
#include "buf.h"
#include "ctx.h"
#include "testmsg.h"
#include "unit.h"

static void
test_buf_max(void **st)
{
	struct buf	 b;

	(void)st;
	buf_init(&b, 8);
	assert_string_equal(buf_str(&b), "");
	assert_int_equal(buf_puts(&b, "12345678"), RC_OK);
	assert_int_equal(buf_putc(&b, '9'), RC_INVAL);	/* full: refused */
	assert_string_equal(buf_str(&b), "12345678");	/* unchanged */
	buf_reset(&b);
	assert_int_equal(buf_printf(&b, "%d-%s", 42, "x"), RC_OK);
	assert_string_equal(buf_str(&b), "42-x");
	assert_int_equal(buf_printf(&b, "%s", "toolong"), RC_INVAL);
	assert_string_equal(buf_str(&b), "42-x");
	buf_free(&b);
}

static void
test_arena_limit(void **st)
{
	struct arena	*a = arena_new(16384);
	char		*p;
	int		 i, got = 0;

	(void)st;
	assert_non_null(a);
	p = arena_strdup(a, "hello");
	assert_string_equal(p, "hello");
	assert_null(arena_alloc(a, 20000));	/* over the limit */
	for (i = 0; i < 1000; i++)
		if (arena_alloc(a, 100) != NULL)
			got++;
	assert_true(got > 50 && got < 170);	/* bounded, ~16 KB */
	assert_true(arena_used(a) <= 16384);
	assert_null(arena_calloc(a, SIZE_MAX / 2, 4));	/* overflow */
	p = arena_printf(a, "%s", "");
	arena_free(a);
	arena_free(NULL);
}

static void
test_escape(void **st)
{
	struct buf	 b;
	char		 in[300];

	(void)st;
	buf_init(&b, 4096);
	assert_int_equal(log_escape(&b, "ok.example \"x\"\n<\\>\x01\xff", 256),
	    RC_OK);
	assert_string_equal(buf_str(&b), "ok.example\\x20\\x22x\\x22\\x0a"
	    "\\x3c\\x5c\\x3e\\x01\\xff");
	buf_reset(&b);
	memset(in, 'a', sizeof(in) - 1);
	in[sizeof(in) - 1] = '\0';
	assert_int_equal(log_escape(&b, in, 10), RC_OK);
	assert_string_equal(buf_str(&b), "aaaaaaaaaa...");
	buf_free(&b);
}

static void
test_decision_line_escapes(void **st)
{
	struct err	 e;
	struct cfg	*cfg = unit_cfg("", &e);
	struct conn_ctx	*c = conn_ctx_new(cfg);
	struct verdict	 v = { ACT_ACCEPT, NULL, NULL, NULL, NULL };
	struct buf	 b;

	(void)st;
	c->client_name = "evil\nname";
	c->client_addr = "192.0.2.1";
	c->helo = "h\r\nX-Injected: 1";
	buf_init(&b, 8192);
	assert_int_equal(decision_format(&b, c, NULL, NULL, &v), RC_OK);
	assert_null(strchr(buf_str(&b), '\n'));
	assert_null(strchr(buf_str(&b), '\r'));
	assert_non_null(strstr(buf_str(&b), "NOQUEUE: conn="));
	assert_non_null(strstr(buf_str(&b),
	    "client=evil\\x0aname[192.0.2.1] helo=<h\\x0d\\x0aX-Injected:"));
	buf_free(&b);
	conn_ctx_free(c);
	cfg_release(cfg);
}

static void
test_metrics_render(void **st)
{
	struct buf	 b;

	(void)st;
	metrics_inc(M.messages, "reject", 2);
	metrics_inc(M.messages, "accept", 1);
	metrics_observe(M.stage_seconds, "rcpt", 0.003);
	metrics_set(M.cfg_generation, 7);
	assert_int_equal(metrics_value(M.messages, "reject"), 2);
	buf_init(&b, 1 << 20);
	assert_int_equal(metrics_render(&b), RC_OK);
	assert_non_null(strstr(buf_str(&b),
	    "# TYPE portero_messages_total counter\n"));
	assert_non_null(strstr(buf_str(&b),
	    "portero_messages_total{verdict=\"reject\"} 2\n"));
	assert_non_null(strstr(buf_str(&b),
	    "portero_stage_seconds_bucket{stage=\"rcpt\",le=\"0.0025\"} 0\n"));
	assert_non_null(strstr(buf_str(&b),
	    "portero_stage_seconds_bucket{stage=\"rcpt\",le=\"0.005\"} 1\n"));
	assert_non_null(strstr(buf_str(&b),
	    "portero_stage_seconds_count{stage=\"rcpt\"} 1\n"));
	assert_non_null(strstr(buf_str(&b), "portero_config_generation 7\n"));
	buf_free(&b);
}

static void
test_testmsg(void **st)
{
	static const char msg[] = "From: a@example.com\n"
	    "Subject: folded\n  line two\r\n"
	    "X-Empty:\n"
	    "\n"
	    "body line 1\nbody line 2\r\nlast";
	struct arena	*a = arena_new(1 << 20);
	struct testmsg	 tm;

	(void)st;
	assert_int_equal(testmsg_parse(a, msg, sizeof(msg) - 1, &tm), RC_OK);
	assert_int_equal(tm.nhdrs, 3);
	assert_string_equal(tm.hdrs->name, "From");
	assert_string_equal(tm.hdrs->value, "a@example.com");
	assert_string_equal(tm.hdrs->next->value, "folded\r\n  line two");
	assert_string_equal(tm.hdrs->next->next->value, "");
	assert_int_equal(tm.body_len, strlen("body line 1\r\nbody line 2\r\n"
	    "last"));
	assert_memory_equal(tm.body, "body line 1\r\nbody line 2\r\nlast",
	    tm.body_len);
	/* no header at all: everything is body */
	assert_int_equal(testmsg_parse(a, "just text\n", 10, &tm), RC_OK);
	assert_int_equal(tm.nhdrs, 0);
	assert_int_equal(tm.body_len, 11);
	assert_int_equal(testmsg_parse(a, "", 0, &tm), RC_OK);
	assert_int_equal(tm.body_len, 0);
	arena_free(a);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_buf_max),
		cmocka_unit_test(test_arena_limit),
		cmocka_unit_test(test_escape),
		cmocka_unit_test(test_decision_line_escapes),
		cmocka_unit_test(test_metrics_render),
		cmocka_unit_test(test_testmsg),
	};

	log_open("test", LOG_MAIL, 1);
	log_set_level(LOG_ERR);
	metrics_init();
	return cmocka_run_group_tests_name("support", tests, NULL, NULL);
}
