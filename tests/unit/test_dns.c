/*
 * test_dns.c - DNS name helpers: DNSBL query names (reversed IPv4 octets,
 * IPv6 nibbles), wire-format names from PTR answers, and a resolver that
 * cannot reach anything answering timeout within its deadline.
 */
#include "cidr.h"
#include "dns.h"
#include "unit.h"
#include "util.h"

static void
test_reverse(void **st)
{
	struct ipaddr	 a;
	char		 buf[256];

	(void)st;
	assert_int_equal(ipaddr_parse("192.0.2.7", &a), RC_OK);
	assert_int_equal(dns_reverse_name(&a, "zen.example", buf,
	    sizeof(buf)), 0);
	assert_string_equal(buf, "7.2.0.192.zen.example");
	assert_int_equal(ipaddr_parse("::ffff:192.0.2.7", &a), RC_OK);
	assert_int_equal(dns_reverse_name(&a, "zen.example", buf,
	    sizeof(buf)), 0);
	assert_string_equal(buf, "7.2.0.192.zen.example");
	assert_int_equal(ipaddr_parse("2001:db8::7", &a), RC_OK);
	assert_int_equal(dns_reverse_name(&a, "zen.example", buf,
	    sizeof(buf)), 0);
	assert_string_equal(buf, "7.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0."
	    "0.0.8.b.d.0.1.0.0.2.zen.example");
	/* too small a buffer is refused, not cut */
	assert_int_equal(dns_reverse_name(&a, "zen.example", buf, 40), -1);
	assert_int_equal(ipaddr_parse("192.0.2.7", &a), RC_OK);
	assert_int_equal(dns_reverse_name(&a, "zen.example", buf, 10), -1);
}

static void
test_wire_names(void **st)
{
	static const uint8_t	 ok[] = "\x02mx\x07" "example\x03org\x00";
	static const uint8_t	 bad_len[] = "\x05mx";
	static const uint8_t	 long_label[] = "\x40xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";
	char			 buf[256];

	(void)st;
	assert_int_equal(dns_name_from_wire(ok, sizeof(ok) - 1, buf,
	    sizeof(buf)), 0);
	assert_string_equal(buf, "mx.example.org");
	assert_int_equal(dns_name_from_wire(bad_len, 3, buf, sizeof(buf)), -1);
	assert_int_equal(dns_name_from_wire(long_label, sizeof(long_label) - 1,
	    buf, sizeof(buf)), -1);
	assert_int_equal(dns_name_from_wire(ok, sizeof(ok) - 1, buf, 8), -1);
	/* found by fuzzing: a NUL or a dot inside a label */
	assert_int_equal(dns_name_from_wire((const uint8_t *)"\x02m\x00\x03org",
	    7, buf, sizeof(buf)), -1);
	assert_int_equal(dns_name_from_wire((const uint8_t *)"\x03a.b\x03org",
	    8, buf, sizeof(buf)), -1);
}

/* A forwarder where nothing listens: every question ends by the deadline
 * without an answer. */
static void
test_timeout(void **st)
{
	char			*servers[] = { "127.0.0.1@9" };
	struct dns_conf		 c = { 1, servers, 1, 300 };
	struct dns		*d;
	struct dns_batch	*b;
	struct dns_query	*q1, *q2;
	struct err		 e;
	uint64_t		 t0;

	(void)st;
	d = dns_new(&c, &e);
	assert_non_null(d);
	b = dns_batch_new(d);
	q1 = dns_batch_add(b, "7.2.0.192.zen.example", DNS_T_A);
	q2 = dns_batch_add(b, "example.org", DNS_T_TXT);
	assert_non_null(q1);
	assert_non_null(q2);
	t0 = now_ms();
	dns_batch_wait(b);
	assert_true(now_ms() - t0 < 1000);
	assert_int_not_equal(dns_query_status(q1), DNS_OK);
	assert_int_equal(dns_query_count(q1), 0);
	dns_batch_free(b);
	dns_free(d);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reverse),
		cmocka_unit_test(test_wire_names),
		cmocka_unit_test(test_timeout),
	};

	metrics_init();
	return cmocka_run_group_tests_name("dns", tests, NULL, NULL);
}
