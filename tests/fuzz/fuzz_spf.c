/*
 * fuzz_spf.c - libFuzzer target for SPF (spf.h): the record parser on
 * published (untrusted) TXT data, the macro expander, and check_host()
 * over a zone made from the input.
 *
 * Input: lines.  Line 0 is the local part of the sender; the other lines
 * are TXT records.  The fake DNS answers a TXT question with the record a
 * hash of the name picks (sometimes also a second one, sometimes none),
 * A/AAAA/MX/PTR questions with a few records or none by the same hash,
 * and some names with SERVFAIL or a timeout.  Invariants: no crash, a
 * result in range, at most 11 DNS terms and 3 void lookups counted (the
 * one past the limit stops the evaluation), an error result has a reason,
 * an expansion is NUL-terminated and at most 253 bytes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "cidr.h"
#include "spf.h"

#include "fuzz.h"

#define LINES_MAX	32

struct zone {
	const char	*line[LINES_MAX];
	size_t		 len[LINES_MAX];
	size_t		 n;
	unsigned	 queries;
	uint8_t		 buf[4][600];
	const uint8_t	*rr[4];
	size_t		 rlen[4];
};

static unsigned
hash(const char *s, int type)
{
	unsigned	 h = 2166136261u ^ (unsigned)type;

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)(*s | 0x20)) * 16777619u;
	return h;
}

static size_t
txt(const char *s, size_t n, uint8_t *out, size_t max)
{
	size_t	 o = 0;

	while (n > 0 && o + 1 < max) {
		size_t l = n > 255 ? 255 : n;

		if (l > max - o - 1)
			l = max - o - 1;
		out[o++] = (uint8_t)l;
		memcpy(out + o, s, l);
		o += l;
		s += l;
		n -= l;
	}
	return o;
}

static void
lookup(void *arg, const char *name, int type, struct spf_answer *a)
{
	struct zone	*z = arg;
	unsigned	 h = hash(name, type);
	size_t		 i, n = h % 3;

	z->queries++;
	FUZZ_ASSERT(strlen(name) <= SPF_DOMAIN_MAX + 1);
	memset(a, 0, sizeof(*a));
	a->rr = z->rr;
	a->len = z->rlen;
	if (h % 23 == 0) {
		a->status = h % 2 ? DNS_SERVFAIL : DNS_TIMEOUT;
		return;
	}
	for (i = 0; i < n; i++) {
		unsigned	 k = (h >> (8 * i)) & 0xff;
		uint8_t		*b = z->buf[i];

		switch (type) {
		case DNS_T_A:
			b[0] = 192;
			b[1] = 0;
			b[2] = 2;
			b[3] = (uint8_t)(k % 8);
			z->rlen[i] = 4;
			break;
		case DNS_T_AAAA:
			memset(b, 0, 16);
			b[0] = 0x20;
			b[1] = 0x01;
			b[2] = 0x0d;
			b[3] = 0xb8;
			b[15] = (uint8_t)(k % 8);
			z->rlen[i] = 16;
			break;
		case SPF_T_MX:
			b[0] = 0;
			b[1] = 10;
			memcpy(b + 2, "\x02mx\x01x\x07" "example\x00", 14);
			b[4] = (uint8_t)('0' + k % 4);
			z->rlen[i] = 16;
			break;
		case DNS_T_PTR:
			memcpy(b, "\x01h\x01x\x07" "example\x00", 13);
			b[1] = (uint8_t)('a' + k % 3);
			z->rlen[i] = 13;
			break;
		case DNS_T_TXT:
			if (z->n == 0)
				return;
			k %= z->n;
			z->rlen[i] = txt(z->line[k], z->len[k], b,
			    sizeof(z->buf[i]));
			break;
		default:
			FUZZ_ASSERT(0);
		}
		z->rr[i] = b;
	}
	a->n = n;
	a->status = n > 0 ? DNS_OK : h % 5 == 0 ? DNS_NODATA : DNS_NXDOMAIN;
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
	static const char *const ips[] = { "192.0.2.3", "2001:db8::3",
	    "::ffff:192.0.2.5" };
	struct zone		 z;
	struct spf_eval		 ev;
	struct spf_record	 rec;
	struct arena		*ar;
	const char		*p = (const char *)data, *end = p + size, *nl;
	const char		*why;
	char			 sender[128], buf[600];
	enum spf_result		 r;
	size_t			 i;

	memset(&z, 0, sizeof(z));
	nl = memchr(p, '\n', size);
	(void)snprintf(sender, sizeof(sender), "%.*s@example.org",
	    (int)((nl != NULL ? nl : end) - p > 60 ? 60 : (nl != NULL ? nl :
	    end) - p), p);
	p = nl != NULL ? nl + 1 : end;
	while (p < end && z.n < LINES_MAX) {
		nl = memchr(p, '\n', (size_t)(end - p));
		z.line[z.n] = p;
		z.len[z.n] = (size_t)((nl != NULL ? nl : end) - p);
		z.n++;
		p = nl != NULL ? nl + 1 : end;
	}
	ar = arena_new(8u << 20);
	if (ar == NULL)
		return 0;
	/* every record through the parser */
	for (i = 0; i < z.n; i++)
		if (spf_record_parse(ar, z.line[i], z.len[i], &rec, &why) !=
		    RC_OK)
			FUZZ_ASSERT(why != NULL);
	for (i = 0; i < sizeof(ips) / sizeof(ips[0]); i++) {
		memset(&ev, 0, sizeof(ev));
		ev.lookup = lookup;
		ev.lookup_arg = &z;
		ev.arena = ar;
		ev.sender = sender;
		ev.helo = "mx.example.org";
		FUZZ_ASSERT(ipaddr_parse(ips[i], &ev.ip) == RC_OK);
		r = spf_check_host(&ev, "example.org");
		FUZZ_ASSERT(r >= SPF_NONE && r <= SPF_PERMERROR);
		FUZZ_ASSERT(ev.lookups <= SPF_LOOKUP_MAX + 1);
		FUZZ_ASSERT(ev.voids <= SPF_VOID_MAX + 1);
		if (r == SPF_PERMERROR || (r == SPF_TEMPERROR && !ev.nomem))
			FUZZ_ASSERT(ev.why[0] != '\0');
	}
	/* the records' text as macro-strings */
	for (i = 0; i < z.n && i < 4; i++) {
		char	*spec = strndup(z.line[i], z.len[i]);

		if (spec == NULL)
			break;
		if (spf_expand(&ev, spec, "example.org", buf, sizeof(buf)) ==
		    RC_OK) {
			size_t		 n;
			const char	*dot;

			FUZZ_ASSERT(memchr(buf, '\0', sizeof(buf)) != NULL);
			/* cut to 253 bytes unless one label is longer */
			n = strlen(buf);
			if (n > 0 && buf[n - 1] == '.')
				n--;
			dot = strchr(buf, '.');
			FUZZ_ASSERT(n <= SPF_DOMAIN_MAX || dot == NULL ||
			    dot == buf + n);
		}
		free(spec);
	}
	arena_free(ar);
	return 0;
}
