/*
 * test_addr.c - envelope address and host name syntax.
 */
#include "addr.h"
#include "unit.h"

static void
test_addr_rows(void **st)
{
	static const struct {
		const char		*in;
		enum addr_status	 want;
		const char		*addr, *domain;
	} rows[] = {
		{ "<user@Example.ORG>", ADDR_OK, "user@example.org",
		    "example.org" },
		{ "user@example.org", ADDR_OK, "user@example.org",
		    "example.org" },
		{ "<>", ADDR_NULL, "", "" },
		{ "", ADDR_NULL, "", "" },
		{ " <a@b.example> ", ADDR_OK, "a@b.example", "b.example" },
		{ "<@relay.example,@r2.example:u@example.org>", ADDR_OK,
		    "u@example.org", "example.org" },
		{ "<\"john doe\"@example.org>", ADDR_OK,
		    "\"john doe\"@example.org", "example.org" },
		{ "<\"a@b\"@example.org>", ADDR_OK, "\"a@b\"@example.org",
		    "example.org" },
		{ "<u@[192.0.2.1]>", ADDR_OK, "u@[192.0.2.1]", "[192.0.2.1]" },
		{ "<u@localhost>", ADDR_OK, "u@localhost", "localhost" },
		{ "<a@b", ADDR_BAD, NULL, NULL },
		{ "a@b>", ADDR_BAD, NULL, NULL },
		{ "<user>", ADDR_BAD, NULL, NULL },
		{ "<@example.org>", ADDR_BAD, NULL, NULL },
		{ "<user@>", ADDR_BAD, NULL, NULL },
		{ "<us..er@example.org>", ADDR_BAD, NULL, NULL },
		{ "<.user@example.org>", ADDR_BAD, NULL, NULL },
		{ "<us er@example.org>", ADDR_BAD, NULL, NULL },
		{ "<user@exa mple.org>", ADDR_BAD, NULL, NULL },
		{ "<user@-example.org>", ADDR_BAD, NULL, NULL },
		{ "<user@example..org>", ADDR_BAD, NULL, NULL },
		{ "<user@[300.1.1.1]>", ADDR_BAD, NULL, NULL },
		{ "<\"unterminated@example.org>", ADDR_BAD, NULL, NULL },
		{ "<u\x01@example.org>", ADDR_BAD, NULL, NULL },
		{ "<u@exa\xffmple.org>", ADDR_BAD, NULL, NULL },
		{ "<@relay.example>", ADDR_BAD, NULL, NULL },
	};
	struct arena	*ar = arena_new(1 << 20);
	struct mailaddr	 a;
	const char	*why;
	size_t		 i;

	(void)st;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		enum addr_status s = addr_parse(ar, rows[i].in, &a, &why);

		if (s != rows[i].want)
			fail_msg("row '%s': status %d want %d", rows[i].in, s,
			    rows[i].want);
		if (s == ADDR_BAD)
			assert_non_null(why);
		if (rows[i].addr != NULL) {
			assert_string_equal(a.addr, rows[i].addr);
			assert_string_equal(a.domain, rows[i].domain);
		}
	}
	arena_free(ar);
}

static void
test_long_inputs(void **st)
{
	struct arena	*ar = arena_new(1 << 20);
	struct mailaddr	 a;
	const char	*why;
	char		*big = malloc(20001);

	(void)st;
	/* 10 KB and 20 KB MAIL FROM: a clean "bad" verdict */
	memset(big, 'a', 20000);
	big[0] = '<';
	big[9000] = '@';
	big[19999] = '>';
	big[20000] = '\0';
	assert_int_equal(addr_parse(ar, big, &a, &why), ADDR_BAD);
	/* a 65-byte local part is over the RFC 5321 limit */
	memset(big, 'b', 65);
	strcpy(big + 65, "@example.org");
	assert_int_equal(addr_parse(ar, big, &a, &why), ADDR_BAD);
	big[1] = '@';
	free(big);
	arena_free(ar);
}

static void
test_hostnames(void **st)
{
	static const struct {
		const char	*in;
		int		 valid, fqdn;
	} rows[] = {
		{ "mx.example.org", 1, 1 }, { "MX.Example.Org.", 1, 1 },
		{ "localhost", 1, 0 }, { "a-b.example", 1, 1 },
		{ "-ab.example", 0, 0 }, { "ab-.example", 0, 0 },
		{ "a..b", 0, 0 }, { ".example", 0, 0 }, { "", 0, 0 },
		{ "bad_host!", 0, 0 }, { "ex ample.org", 0, 0 },
		{ "_dmarc.example.org", 1, 1 },
	};
	size_t	 i;

	(void)st;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		if (hostname_valid(rows[i].in) != rows[i].valid)
			fail_msg("valid row '%s'", rows[i].in);
		if (rows[i].valid && hostname_is_fqdn(rows[i].in) !=
		    rows[i].fqdn)
			fail_msg("fqdn row '%s'", rows[i].in);
	}
	assert_true(addr_is_literal("[192.0.2.1]"));
	assert_true(addr_is_literal("[IPv6:2001:db8::1]"));
	assert_false(addr_is_literal("192.0.2.1"));
	assert_false(addr_is_literal("[example.org]"));
}

static void
test_label_limit(void **st)
{
	char	 name[80];

	(void)st;
	memset(name, 'a', 63);
	strcpy(name + 63, ".org");
	assert_true(hostname_valid(name));
	memset(name, 'a', 64);
	strcpy(name + 64, ".org");
	assert_false(hostname_valid(name));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_addr_rows),
		cmocka_unit_test(test_long_inputs),
		cmocka_unit_test(test_hostnames),
		cmocka_unit_test(test_label_limit),
	};

	return cmocka_run_group_tests_name("addr", tests, NULL, NULL);
}
