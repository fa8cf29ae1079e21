/*
 * test_cidr.c - address and network parsing and matching.
 */
#include "cidr.h"
#include "unit.h"

static void
test_parse(void **st)
{
	static const struct {
		const char	*in;
		int		 ok, v4;
		const char	*canon;
	} rows[] = {
		{ "192.0.2.7", 1, 1, "192.0.2.7" },
		{ "[192.0.2.7]", 1, 1, "192.0.2.7" },
		{ "2001:db8::7", 1, 0, "2001:db8::7" },
		{ "IPv6:2001:db8::7", 1, 0, "2001:db8::7" },
		{ "[IPv6:2001:DB8::7]", 1, 0, "2001:db8::7" },
		{ "::ffff:192.0.2.7", 1, 1, "192.0.2.7" },
		{ "192.0.2", 0, 0, NULL }, { "192.0.2.256", 0, 0, NULL },
		{ "", 0, 0, NULL }, { "[]", 0, 0, NULL },
		{ "example.org", 0, 0, NULL }, { "1.2.3.4 ", 0, 0, NULL },
		{ "IPv6:192.0.2.1", 0, 0, NULL },	/* found by fuzzing */
		{ "[IPv6:192.0.2.1]", 0, 0, NULL },
	};
	struct ipaddr	 a;
	char		 buf[64];
	size_t		 i;

	(void)st;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		int ok = ipaddr_parse(rows[i].in, &a) == RC_OK;

		if (ok != rows[i].ok)
			fail_msg("row '%s': ok=%d", rows[i].in, ok);
		if (!ok)
			continue;
		assert_int_equal(a.v4, rows[i].v4);
		ipaddr_fmt(&a, buf, sizeof(buf));
		assert_string_equal(buf, rows[i].canon);
	}
}

static void
test_match(void **st)
{
	static const struct {
		const char	*net, *addr;
		int		 match;
	} rows[] = {
		{ "192.0.2.0/24", "192.0.2.200", 1 },
		{ "192.0.2.0/24", "192.0.3.1", 0 },
		{ "192.0.2.7", "192.0.2.7", 1 },
		{ "192.0.2.7", "192.0.2.8", 0 },
		{ "0.0.0.0/0", "203.0.113.9", 1 },
		{ "0.0.0.0/0", "2001:db8::1", 0 },
		{ "10.0.0.0/8", "::ffff:10.1.2.3", 1 },
		{ "2001:db8::/32", "2001:db8:ffff::1", 1 },
		{ "2001:db8::/32", "2001:db9::1", 0 },
		{ "::/0", "2001:db8::1", 1 },
		{ "::1/128", "::1", 1 },
		{ "192.0.2.130/25", "192.0.2.129", 1 },	/* host bits cleared */
		{ "192.0.2.130/25", "192.0.2.1", 0 },
	};
	struct cidr	 c;
	struct ipaddr	 a;
	struct err	 e;
	size_t		 i;

	(void)st;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		assert_int_equal(cidr_parse(rows[i].net, &c, &e), RC_OK);
		assert_int_equal(ipaddr_parse(rows[i].addr, &a), RC_OK);
		if (cidr_match(&c, &a) != rows[i].match)
			fail_msg("row %s ~ %s", rows[i].net, rows[i].addr);
	}
}

static void
test_bad_cidr(void **st)
{
	static const char *bad[] = { "192.0.2.0/33", "2001:db8::/129",
	    "192.0.2.0/", "/24", "192.0.2.0/2a", "300.0.0.0/8", "foo/8",
	    "192.0.2.0/-1", "IPv6:192.0.2.1/32", "[192.0.2.0]/24",
	    "IPv6:2001:db8::/32" };
	struct cidr	 c;
	struct err	 e;
	size_t		 i;

	(void)st;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err_clear(&e);
		if (cidr_parse(bad[i], &c, &e) == RC_OK)
			fail_msg("'%s' accepted", bad[i]);
		assert_non_null(strstr(e.msg, bad[i]));
	}
}

static void
test_net_fmt(void **st)
{
	struct ipaddr	 a;
	char		 buf[64];

	(void)st;
	assert_int_equal(ipaddr_parse("192.0.2.77", &a), RC_OK);
	ipaddr_net_fmt(&a, 24, 64, buf, sizeof(buf));
	assert_string_equal(buf, "192.0.2.0/24");
	assert_int_equal(ipaddr_parse("2001:db8:1:2:3::9", &a), RC_OK);
	ipaddr_net_fmt(&a, 24, 64, buf, sizeof(buf));
	assert_string_equal(buf, "2001:db8:1:2::/64");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_match),
		cmocka_unit_test(test_bad_cidr),
		cmocka_unit_test(test_net_fmt),
	};

	return cmocka_run_group_tests_name("cidr", tests, NULL, NULL);
}
