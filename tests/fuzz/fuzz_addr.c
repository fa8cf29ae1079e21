/*
 * fuzz_addr.c - libFuzzer target for the envelope address and host name
 * parsers of addr.h, fed what an SMTP client may send in MAIL FROM, RCPT
 * TO and HELO.  Besides "no crash", checks: a parsed address is
 * local@domain with a lower-case, valid domain within the RFC 5321 limits
 * and parses again to itself; host names accepted by hostname_valid()
 * have LDH labels of 1..63 bytes; literals are bracketed addresses.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "arena.h"
#include "cidr.h"

#include "fuzz.h"

static int
valid_host_chars(const char *s)
{
	size_t	 label = 0, total = 0;
	char	 prev = '.';

	for (; *s != '\0'; s++) {
		if (++total > 253)
			return 0;
		if (*s == '.') {
			if (label == 0 || prev == '-')
				return 0;
			label = 0;
		} else if (isalnum((unsigned char)*s) || *s == '-' ||
		    *s == '_') {
			if (label == 0 && *s == '-')
				return 0;
			if (++label > 63)
				return 0;
		} else
			return 0;
		prev = *s;
	}
	return total > 0 && prev != '-';
}

static void
check_hostname(const char *s)
{
	int	 v = hostname_valid(s);

	FUZZ_ASSERT(v == 0 || v == 1);
	FUZZ_ASSERT(v == valid_host_chars(s));
	if (*s != '\0') {
		int f = hostname_is_fqdn(s);
		const char *dot = strchr(s, '.');

		FUZZ_ASSERT(f == (dot != NULL && dot != s &&
		    dot[1] != '\0'));
	}
}

static void
check_literal(const char *s)
{
	struct ipaddr	 a;
	size_t		 n = strlen(s);

	if (addr_is_literal(s)) {
		FUZZ_ASSERT(n >= 3 && s[0] == '[' && s[n - 1] == ']');
		FUZZ_ASSERT(ipaddr_parse(s, &a) == RC_OK);
	}
}

static void
check_addr(struct arena *ar, const char *s)
{
	struct mailaddr		 m, m2;
	const char		*why = NULL, *why2 = NULL;
	enum addr_status	 st, st2;
	size_t			 ll, dl;

	st = addr_parse(ar, s, &m, &why);
	switch (st) {
	case ADDR_NULL:
		FUZZ_ASSERT(m.local != NULL && *m.local == '\0');
		FUZZ_ASSERT(m.domain != NULL && *m.domain == '\0');
		FUZZ_ASSERT(m.addr != NULL && *m.addr == '\0');
		break;
	case ADDR_BAD:
		FUZZ_ASSERT(why != NULL && *why != '\0');
		break;
	case ADDR_NOMEM:
		FUZZ_ASSERT(!"ADDR_NOMEM with a 1 MiB arena");
		break;
	case ADDR_OK:
		FUZZ_ASSERT(m.local != NULL && m.domain != NULL &&
		    m.addr != NULL);
		ll = strlen(m.local);
		dl = strlen(m.domain);
		FUZZ_ASSERT(ll >= 1 && ll <= 64);
		FUZZ_ASSERT(dl >= 1 && dl <= 255);
		FUZZ_ASSERT(strlen(m.addr) == ll + 1 + dl);
		FUZZ_ASSERT(strlen(m.addr) <= 256);
		FUZZ_ASSERT(strncmp(m.addr, m.local, ll) == 0 &&
		    m.addr[ll] == '@' && strcmp(m.addr + ll + 1, m.domain) ==
		    0);
		for (const char *p = m.domain; *p != '\0'; p++)
			FUZZ_ASSERT(!isupper((unsigned char)*p));
		for (const char *p = m.addr; *p != '\0'; p++)
			FUZZ_ASSERT((unsigned char)*p >= 0x20 &&
			    (unsigned char)*p < 0x7f);
		if (m.domain[0] == '[')
			FUZZ_ASSERT(addr_is_literal(m.domain));
		else
			FUZZ_ASSERT(hostname_valid(m.domain));
		/* the normalised form is a fixed point, with or without <> */
		st2 = addr_parse(ar, m.addr, &m2, &why2);
		FUZZ_ASSERT(st2 == ADDR_OK);
		FUZZ_ASSERT(strcmp(m2.addr, m.addr) == 0);
		FUZZ_ASSERT(strcmp(m2.local, m.local) == 0);
		FUZZ_ASSERT(strcmp(m2.domain, m.domain) == 0);
		{
			char *br = malloc(strlen(m.addr) + 3);

			if (br == NULL)
				abort();
			br[0] = '<';
			strcpy(br + 1, m.addr);
			strcat(br, ">");
			FUZZ_ASSERT(addr_parse(ar, br, &m2, &why2) == ADDR_OK);
			FUZZ_ASSERT(strcmp(m2.addr, m.addr) == 0);
			free(br);
		}
		break;
	default:
		FUZZ_ASSERT(!"unknown addr_status");
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
	struct arena	*ar;
	char		*s;

	s = fuzz_cstr(data, size);
	ar = arena_new(1u << 20);
	if (ar == NULL)
		abort();
	check_addr(ar, s);
	check_hostname(s);
	check_literal(s);
	arena_free(ar);
	free(s);
	return 0;
}
