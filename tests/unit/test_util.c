/*
 * test_util.c - number, duration, size, mode and score parsing.
 */
#include "unit.h"
#include "util.h"

struct row {
	const char		*in;
	int			 ok;
	unsigned long long	 want;
};

static void
test_duration(void **st)
{
	static const struct row rows[] = {
		{ "0", 1, 0 }, { "90", 1, 90 }, { "90s", 1, 90 },
		{ "5m", 1, 300 }, { "4h", 1, 14400 }, { "36d", 1, 3110400 },
		{ "2w", 1, 1209600 }, { "5M", 1, 300 }, { "", 0, 0 },
		{ "m", 0, 0 }, { "5x", 0, 0 }, { "-5", 0, 0 }, { "5 m", 0, 0 },
		{ "1.5h", 0, 0 }, { "99999999999999999999999", 0, 0 },
		{ "999999999999999999w", 0, 0 },
	};
	size_t	 i;

	(void)st;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		unsigned long long v = 12345;
		enum rc rc = parse_duration(rows[i].in, ~0ULL >> 1, &v);

		if ((rc == RC_OK) != rows[i].ok || (rows[i].ok &&
		    v != rows[i].want))
			fail_msg("duration row '%s': rc=%d v=%llu", rows[i].in,
			    rc, v);
	}
}

static void
test_size(void **st)
{
	static const struct row rows[] = {
		{ "512", 1, 512 }, { "64K", 1, 65536 }, { "1M", 1, 1048576 },
		{ "50M", 1, 52428800 }, { "1G", 1, 1073741824 },
		{ "1g", 1, 1073741824 }, { "1T", 0, 0 }, { "M", 0, 0 },
		{ "18446744073709551615G", 0, 0 },
	};
	size_t	 i;

	(void)st;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		unsigned long long v = 0;
		enum rc rc = parse_size(rows[i].in, ~0ULL >> 1, &v);

		if ((rc == RC_OK) != rows[i].ok || (rows[i].ok &&
		    v != rows[i].want))
			fail_msg("size row '%s'", rows[i].in);
	}
}

static void
test_uint_bounds(void **st)
{
	unsigned long long	 v;

	(void)st;
	assert_int_equal(parse_uint("10", 1, 10, &v), RC_OK);
	assert_int_equal(v, 10);
	assert_int_equal(parse_uint("11", 1, 10, &v), RC_INVAL);
	assert_int_equal(parse_uint("0", 1, 10, &v), RC_INVAL);
	assert_int_equal(parse_uint("18446744073709551615", 0, ~0ULL, &v),
	    RC_OK);
	assert_int_equal(parse_uint("18446744073709551616", 0, ~0ULL, &v),
	    RC_INVAL);
	assert_int_equal(parse_uint("+1", 0, 10, &v), RC_INVAL);
	assert_int_equal(parse_uint(" 1", 0, 10, &v), RC_INVAL);
}

static void
test_mode(void **st)
{
	unsigned	 m;

	(void)st;
	assert_int_equal(parse_mode("0660", &m), RC_OK);
	assert_int_equal(m, 0660);
	assert_int_equal(parse_mode("660", &m), RC_OK);
	assert_int_equal(m, 0660);
	assert_int_equal(parse_mode("0680", &m), RC_INVAL);
	assert_int_equal(parse_mode("", &m), RC_INVAL);
	assert_int_equal(parse_mode("077777", &m), RC_INVAL);
}

static void
test_score(void **st)
{
	static const struct {
		double		 in;
		int32_t		 hundredths;
		const char	*text;
	} rows[] = {
		{ 2.5, 250, "2.5" }, { 12.25, 1225, "12.25" },
		{ -5, -500, "-5.0" }, { 0, 0, "0.0" }, { 0.01, 1, "0.01" },
		{ -0.5, -50, "-0.5" }, { 10, 1000, "10.0" },
	};
	char	 buf[16];
	int32_t	 s;
	size_t	 i;

	(void)st;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		assert_int_equal(score_from_double(rows[i].in, &s), RC_OK);
		assert_int_equal(s, rows[i].hundredths);
		score_fmt(s, buf, sizeof(buf));
		assert_string_equal(buf, rows[i].text);
	}
	assert_int_equal(score_from_double(1e9, &s), RC_INVAL);
}

static void
test_strings(void **st)
{
	char	 b[4];

	(void)st;
	assert_int_equal(str_copy(b, "abc", sizeof(b)), 0);
	assert_int_equal(str_copy(b, "abcd", sizeof(b)), -1);
	assert_string_equal(b, "abc");
	assert_true(str_ieq("Example.ORG", "example.org"));
	assert_false(str_ieq("example.org", "example.or"));
	assert_true(str_iendswith("mx.Example.org", ".example.ORG"));
	assert_false(str_iendswith("org", "example.org"));
}

static void
test_ere_bounded(void **st)
{
	static const char *const good[] = {
		"(^|[.-])(dsl|dyn|dynamic|dhcp|pool|cable|ppp|customer|"
		    "residential)[0-9]*[.-]",
		"^x-.*-script$", "a+b+c?", "[{}+*]+", "[]{]", "a\\++", "",
	};
	static const char *const bad[][2] = {
		{ "(a|@b++)~c", "repetition of a repetition" },
		{ "a*?", "repetition of a repetition" },
		{ "(a{2}){50}", "bounds" },
		{ "a+b+c+d+e+f+g+h+i+", "more than 8" },
	};
	char		 longre[300];
	struct err	 e;
	size_t		 i;

	(void)st;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (ere_bounded(good[i], &e) != 0)
			fail_msg("'%s' refused: %s", good[i], e.msg);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err_clear(&e);
		if (ere_bounded(bad[i][0], &e) == 0 || strstr(e.msg,
		    bad[i][1]) == NULL)
			fail_msg("'%s': got '%s'", bad[i][0], e.msg);
	}
	memset(longre, 'a', sizeof(longre) - 1);
	longre[sizeof(longre) - 1] = '\0';
	assert_int_equal(ere_bounded(longre, &e), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_duration),
		cmocka_unit_test(test_size),
		cmocka_unit_test(test_uint_bounds),
		cmocka_unit_test(test_mode),
		cmocka_unit_test(test_score),
		cmocka_unit_test(test_strings),
		cmocka_unit_test(test_ere_bounded),
	};

	return cmocka_run_group_tests_name("util", tests, NULL, NULL);
}
