/*
 * fuzz_cidr.c - libFuzzer target for the address and network parsers of
 * cidr.h (client addresses from Postfix, network lists from the config).
 * The input is split into lines; each line is parsed as an address and as
 * a CIDR.  Checks: formatting an address and parsing it back is exact; a
 * CIDR has its host bits clear, a sane prefix length and contains the
 * address it was written with; cidr_match() agrees with a bit-by-bit
 * comparison for every (network, address) pair; cidr_list_match() is the
 * "or" of cidr_match(); ipaddr_net_fmt() gives a network holding the
 * address; an IPv4 address gets an IPv4 prefix length however it is
 * wrapped ("[...]", "IPv6:").
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cidr.h"
#include "err.h"

#include "fuzz.h"

#define NMAX	16

static const uint8_t v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff,
    0xff };

static int
bit(const uint8_t *b, unsigned i)
{
	return (b[i / 8] >> (7 - i % 8)) & 1;
}

/* Reference: the first plen bits of a equal those of the network. */
static int
ref_match(const struct cidr *c, const struct ipaddr *a)
{
	unsigned	 i;

	for (i = 0; i < c->plen; i++)
		if (bit(c->addr.b, i) != bit(a->b, i))
			return 0;
	return 1;
}

static void
check_addr(const char *s, const struct ipaddr *a)
{
	static const unsigned	 v4p[] = { 0, 1, 8, 17, 24, 31, 32 };
	static const unsigned	 v6p[] = { 0, 1, 48, 64, 65, 127, 128 };
	struct ipaddr		 b;
	struct cidr		 c;
	struct err		 e;
	char			 buf[64];
	size_t			 i;

	(void)s;
	FUZZ_ASSERT(a->v4 == (memcmp(a->b, v4mapped, 12) == 0));
	FUZZ_ASSERT(ipaddr_eq(a, a));
	memset(buf, 'X', sizeof(buf));
	ipaddr_fmt(a, buf, INET6_ADDRSTRLEN);
	FUZZ_ASSERT(memchr(buf, '\0', INET6_ADDRSTRLEN) != NULL);
	FUZZ_ASSERT(ipaddr_parse(buf, &b) == RC_OK);
	FUZZ_ASSERT(ipaddr_eq(a, &b) && a->v4 == b.v4);
	for (i = 0; i < sizeof(v4p) / sizeof(v4p[0]); i++) {
		ipaddr_net_fmt(a, v4p[i], v6p[i], buf, sizeof(buf));
		err_clear(&e);
		FUZZ_ASSERT(cidr_parse(buf, &c, &e) == RC_OK);
		FUZZ_ASSERT(c.plen == (a->v4 ? 96 + v4p[i] : v6p[i]));
		FUZZ_ASSERT(cidr_match(&c, a));
	}
}

static void
check_cidr(const char *s, const struct cidr *c)
{
	struct ipaddr	 host, other;
	char		 tmp[256];
	const char	*slash = strchr(s, '/');
	size_t		 n = slash != NULL ? (size_t)(slash - s) : strlen(s);
	unsigned	 i;

	FUZZ_ASSERT(c->plen <= 128);
	/*
	 * An address written in IPv4 notation is an IPv4 network, its
	 * prefix length 0..32 (96..128 here) whatever wraps it: "[...]" or
	 * the "IPv6:" tag of SMTP literals.  Only IPv6 notation (a ':' in
	 * the address itself, e.g. "::ffff:192.0.2.0/120") counts bits of
	 * the 128-bit space.
	 */
	if (n < sizeof(tmp)) {
		const char *h = tmp;
		size_t hn = n;

		memcpy(tmp, s, n);
		tmp[n] = '\0';
		if (hn >= 2 && h[0] == '[' && h[hn - 1] == ']') {
			h++;
			hn -= 2;
		}
		if (hn >= 5 && strncasecmp(h, "IPv6:", 5) == 0) {
			h += 5;
			hn -= 5;
		}
		if (memchr(h, ':', hn) == NULL)
			FUZZ_ASSERT(c->addr.v4 && c->plen >= 96);
	}
	/* host bits are clear */
	for (i = c->plen; i < 128; i++)
		FUZZ_ASSERT(bit(c->addr.b, i) == 0);
	FUZZ_ASSERT(cidr_match(c, &c->addr));
	/* the address it was written with is inside */
	FUZZ_ASSERT(n < sizeof(tmp));
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	FUZZ_ASSERT(ipaddr_parse(tmp, &host) == RC_OK);
	FUZZ_ASSERT(cidr_match(c, &host));
	/* flipping a network bit leaves it, a host bit does not */
	if (c->plen > 0) {
		other = host;
		i = c->plen - 1;
		other.b[i / 8] ^= (uint8_t)(0x80 >> (i % 8));
		FUZZ_ASSERT(!cidr_match(c, &other));
	}
	if (c->plen < 128) {
		other = host;
		i = c->plen;
		other.b[i / 8] ^= (uint8_t)(0x80 >> (i % 8));
		FUZZ_ASSERT(cidr_match(c, &other));
	}
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_quiet(argc, argv);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ipaddr		 addrs[NMAX];
	struct cidr		 nets[NMAX], c;
	struct cidr_list	 l;
	struct err		 e;
	size_t			 na = 0, nn = 0, i, j;
	char			*buf, *line, *next;
	int			 any;

	buf = fuzz_cstr(data, size);
	for (line = buf; line != NULL; line = next) {
		next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		if (ipaddr_parse(line, &addrs[na]) == RC_OK) {
			check_addr(line, &addrs[na]);
			if (na < NMAX - 1)
				na++;
		}
		err_clear(&e);
		if (cidr_parse(line, &c, &e) == RC_OK) {
			check_cidr(line, &c);
			if (nn < NMAX)
				nets[nn++] = c;
		} else
			FUZZ_ASSERT(e.msg[0] != '\0' &&
			    memchr(e.msg, '\0', sizeof(e.msg)) != NULL);
	}
	FUZZ_ASSERT(ipaddr_parse(NULL, &addrs[na]) != RC_OK);
	l.v = nets;
	l.n = nn;
	for (i = 0; i < na; i++) {
		any = 0;
		for (j = 0; j < nn; j++) {
			int m = cidr_match(&nets[j], &addrs[i]);

			FUZZ_ASSERT(m == ref_match(&nets[j], &addrs[i]));
			any |= m;
		}
		FUZZ_ASSERT(cidr_list_match(&l, &addrs[i]) == any);
	}
	free(buf);
	return 0;
}
