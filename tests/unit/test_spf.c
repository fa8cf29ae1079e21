/*
 * test_spf.c - SPF (RFC 7208): record syntax, record selection, macro
 * expansion (the section 7.4 examples), and check_host() against an
 * in-memory zone: results, include and redirect, the lookup and void
 * lookup limits, DNS errors, and every place where libspf2 answers
 * differently from the RFC.
 */
#include <arpa/inet.h>
#include <strings.h>

#include "cidr.h"
#include "spf.h"
#include "unit.h"

/* ---- record syntax -------------------------------------------------- */

struct syn_row {
	const char	*rec;
	int		 ok;
};

static void
test_syntax(void **st)
{
	static const struct syn_row rows[] = {
		{ "v=spf1", 1 },
		{ "v=spf1 ", 1 },
		{ "V=SPF1 IP4:192.0.2.1 -ALL", 1 },
		{ "v=spf1  +a  -mx ~ptr ?all  ", 1 },
		{ "v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 -all", 1 },
		{ "v=spf1 ip4:0.0.0.0/0 ip6:::/0", 1 },		/* libspf2: no */
		{ "v=spf1 a/0 a//0 mx/0//0 a:b.example/24//64", 1 },
		{ "v=spf1 ip6:::ffff:192.0.2.1", 1 },
		{ "v=spf1 include:_spf.example.com exists:%{i}.x.example", 1 },
		{ "v=spf1 exists:%{l,/}.x.example", 1 },	/* libspf2: no */
		{ "v=spf1 exists:%{ir}.%{v}._spf.%{d2}", 1 },
		{ "v=spf1 exists:%{s}", 1 },
		{ "v=spf1 a:%{d}", 1 },
		{ "v=spf1 a:example.com. -all", 1 },
		{ "v=spf1 a:foo-bar.example.x-y", 1 },
		{ "v=spf1 redirect=_spf.%{d}", 1 },
		{ "v=spf1 exp=explain.%{d} -all", 1 },
		{ "v=spf1 foo.bar=baz -all", 1 },		/* libspf2: no */
		{ "v=spf1 foo= x-y_z=%{c}%{r}%{t}%%%_%-", 1 },
		{ "v=spf1 Include:FOO.example Redirect=x.example", 1 },
		{ "v=spf1 exists:%{d01}.x.example", 1 },

		{ "v=spf10", 0 },
		{ "v=spf2 -all", 0 },
		{ "spf1 -all", 0 },
		{ "v=spf1\t-all", 0 },
		{ "v=spf1 -all\r\n", 0 },
		{ "v=spf1 ip4:192.0.2.1\xc3\xa9", 0 },
		{ "v=spf1 foo", 0 },
		{ "v=spf1 -foo:bar.example", 0 },
		{ "v=spf1 all:x.example", 0 },
		{ "v=spf1 all/24", 0 },
		{ "v=spf1 include:", 0 },			/* libspf2: ok */
		{ "v=spf1 include", 0 },
		{ "v=spf1 exists", 0 },
		{ "v=spf1 a:", 0 },
		{ "v=spf1 a:foo", 0 },
		{ "v=spf1 a:.example.com", 0 },
		{ "v=spf1 a:foo..example.com", 0 },
		{ "v=spf1 a:example.com..", 0 },
		{ "v=spf1 a:host.1", 0 },
		{ "v=spf1 a:host.-com", 0 },
		{ "v=spf1 a:%{d}com", 0 },
		{ "v=spf1 include:example.com/24", 0 },
		{ "v=spf1 exists:example.com/24", 0 },
		{ "v=spf1 ptr/24", 0 },
		{ "v=spf1 a/33", 0 },
		{ "v=spf1 a//129", 0 },
		{ "v=spf1 a/024", 0 },
		{ "v=spf1 a/", 0 },
		{ "v=spf1 a:example.com/", 0 },
		{ "v=spf1 a:example.com/24/64", 0 },
		{ "v=spf1 ip4:192.0.2.1/33", 0 },
		{ "v=spf1 ip4:192.0.2.1/", 0 },
		{ "v=spf1 ip4:192.0.2.1//24", 0 },
		{ "v=spf1 ip4:192.0.2", 0 },
		{ "v=spf1 ip4:192.0.2.256", 0 },
		{ "v=spf1 ip4:01.2.3.4", 0 },
		{ "v=spf1 ip4:", 0 },
		{ "v=spf1 ip4", 0 },
		{ "v=spf1 ip6:::1/129", 0 },
		{ "v=spf1 ip6:192.0.2.1", 0 },
		{ "v=spf1 ip6:2001:db8::g", 0 },
		{ "v=spf1 redirect=a.example redirect=b.example", 0 },
		{ "v=spf1 exp=a.example exp=b.example", 0 },
		{ "v=spf1 redirect=", 0 },
		{ "v=spf1 -redirect=a.example", 0 },
		{ "v=spf1 =a.example", 0 },
		{ "v=spf1 exists:%{x}.example.com", 0 },	/* libspf2: ok */
		{ "v=spf1 exists:%{d", 0 },
		{ "v=spf1 exists:%{d}.x%", 0 },
		{ "v=spf1 exists:%x.example.com", 0 },
		{ "v=spf1 exists:%{d0}.example.com", 0 },
		{ "v=spf1 exists:%{d2x}.example.com", 0 },
		{ "v=spf1 exists:%{c}.example.com", 0 },
		{ "v=spf1 a:%{r}.example.com", 0 },
		{ "v=spf1 redirect=%{t}.example.com", 0 },
		{ "v=spf1 foo=%{z}", 0 },
		{ "v=spf1 foo=%", 0 },
		{ "v=spf1 1foo=bar", 0 },
	};
	struct arena		*ar = arena_new(1u << 20);
	struct spf_record	 r;
	const char		*why;
	size_t			 i;
	enum rc			 rc;

	(void)st;
	assert_non_null(ar);
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		rc = spf_record_parse(ar, rows[i].rec, strlen(rows[i].rec), &r,
		    &why);
		if ((rc == RC_OK) != rows[i].ok)
			fail_msg("syntax row '%s': rc=%d why=%s", rows[i].rec,
			    rc, why != NULL ? why : "-");
		if (rc != RC_OK && why == NULL)
			fail_msg("syntax row '%s': no reason", rows[i].rec);
	}
	/* a NUL inside the record (libspf2 stops reading there) */
	rc = spf_record_parse(ar, "v=spf1 ip4:192.0.2.1\0 -all", 26, &r, &why);
	assert_int_equal(rc, RC_PERM);
	arena_free(ar);
}

static void
test_parsed(void **st)
{
	static const char	 rec[] = "v=spf1 -ip4:192.0.2.0/24 ~a:x.example/16"
	    "//48 ?mx ip6:2001:db8::/0 redirect=r.example ptr all";
	struct arena		*ar = arena_new(1u << 20);
	struct spf_record	 r;
	const char		*why;

	(void)st;
	assert_int_equal(spf_record_parse(ar, rec, sizeof(rec) - 1, &r, &why),
	    RC_OK);
	assert_int_equal(r.nterms, 6);
	assert_int_equal(r.terms[0].mech, SPF_M_IP4);
	assert_int_equal(r.terms[0].result, SPF_FAIL);
	assert_int_equal(r.terms[0].plen4, 24);
	assert_int_equal(r.terms[0].net.b[12], 192);
	assert_int_equal(r.terms[1].mech, SPF_M_A);
	assert_int_equal(r.terms[1].result, SPF_SOFTFAIL);
	assert_string_equal(r.terms[1].domain, "x.example");
	assert_int_equal(r.terms[1].plen4, 16);
	assert_int_equal(r.terms[1].plen6, 48);
	assert_int_equal(r.terms[2].mech, SPF_M_MX);
	assert_int_equal(r.terms[2].result, SPF_NEUTRAL);
	assert_null(r.terms[2].domain);
	assert_int_equal(r.terms[2].plen4, 32);
	assert_int_equal(r.terms[3].plen6, 0);
	assert_int_equal(r.terms[4].mech, SPF_M_PTR);
	assert_int_equal(r.terms[5].mech, SPF_M_ALL);
	assert_int_equal(r.terms[5].result, SPF_PASS);
	assert_string_equal(r.redirect, "r.example");
	assert_true(r.has_all);
	arena_free(ar);
}

static void
test_select(void **st)
{
	const char	*recs[4];
	size_t		 lens[4], w = 99, i;

	(void)st;
	recs[0] = "hello";
	recs[1] = "v=spf1 -all";
	recs[2] = "v=spf10 +all";
	recs[3] = "V=SPF1";
	for (i = 0; i < 4; i++)
		lens[i] = strlen(recs[i]);
	assert_int_equal(spf_select(recs, lens, 3, &w), 1);
	assert_int_equal(w, 1);
	assert_int_equal(spf_select(recs, lens, 4, &w), 2);
	assert_int_equal(spf_select(recs + 2, lens + 2, 1, &w), 0);
	/* "v=spf1" then a NUL is not the version section */
	recs[0] = "v=spf1\0 -all";
	lens[0] = 12;
	assert_int_equal(spf_select(recs, lens, 1, &w), 0);
}

/* ---- an in-memory zone ---------------------------------------------- */

struct zrec {
	const char	*name;
	int		 type;		/* 0: every type */
	const char	*data;		/* text; "SERVFAIL", "TIMEOUT" */
	size_t		 len;		/* TXT bytes if not strlen(data) */
};

static const struct zrec zone[] = {
	{ "pass.test", DNS_T_TXT, "v=spf1 ip4:192.0.2.0/24 -all", 0 },
	{ "soft.test", DNS_T_TXT, "v=spf1 ~all", 0 },
	{ "neutral.test", DNS_T_TXT, "v=spf1 ?all", 0 },
	{ "empty.test", DNS_T_TXT, "v=spf1", 0 },
	{ "nospf.test", DNS_T_TXT, "hello world", 0 },
	{ "nospf.test", DNS_T_A, "192.0.2.1", 0 },
	{ "two.test", DNS_T_TXT, "v=spf1 -all", 0 },
	{ "two.test", DNS_T_TXT, "v=spf1 +all", 0 },
	{ "syntax.test", DNS_T_TXT, "v=spf1 ip4:192.0.2.300 -all", 0 },
	{ "nul.test", DNS_T_TXT, "v=spf1 ip4:192.0.2.7\0 -all", 26 },
	{ "split.test", DNS_T_TXT, "v=spf1 ip4:192.0.2.7 |-all", 0 },
	{ "nosp.test", DNS_T_TXT, "v=spf1 ip4:192.0.2.7|-all", 0 },
	{ "upper.test", DNS_T_TXT, "V=SPF1 IP4:192.0.2.7 -ALL", 0 },
	{ "inc.test", DNS_T_TXT, "v=spf1 include:pass.test -all", 0 },
	{ "incnx.test", DNS_T_TXT, "v=spf1 include:nx.test -all", 0 },
	{ "inctf.test", DNS_T_TXT, "v=spf1 include:tf.test -all", 0 },
	{ "incsoft.test", DNS_T_TXT, "v=spf1 include:soft.test ?all", 0 },
	{ "redir.test", DNS_T_TXT, "v=spf1 redirect=pass.test", 0 },
	{ "redirlast.test", DNS_T_TXT,
	    "v=spf1 redirect=pass.test ip4:198.51.100.1", 0 },
	{ "redirall.test", DNS_T_TXT, "v=spf1 redirect=pass.test ?all", 0 },
	{ "redirnx.test", DNS_T_TXT, "v=spf1 redirect=nx.test", 0 },
	{ "redirmac.test", DNS_T_TXT, "v=spf1 redirect=_spf.%{d}", 0 },
	{ "_spf.redirmac.test", DNS_T_TXT, "v=spf1 ip4:192.0.2.8 -all", 0 },
	{ "exists.test", DNS_T_TXT,
	    "v=spf1 exists:%{ir}._spf.%{d} -all", 0 },
	{ "7.2.0.192._spf.exists.test", DNS_T_A, "127.0.0.2", 0 },
	{ "lp.test", DNS_T_TXT, "v=spf1 exists:%{l}.users.%{o} -all", 0 },
	{ "alice.users.lp.test", DNS_T_A, "127.0.0.2", 0 },
	{ "a.test", DNS_T_TXT, "v=spf1 a a:net.a.test/24 -all", 0 },
	{ "a.test", DNS_T_A, "192.0.2.7", 0 },
	{ "a.test", DNS_T_AAAA, "2001:db8::7", 0 },
	{ "net.a.test", DNS_T_A, "198.51.100.200", 0 },
	{ "azero.test", DNS_T_TXT, "v=spf1 a:any.azero.test/0 -all", 0 },
	{ "any.azero.test", DNS_T_A, "203.0.113.1", 0 },
	{ "mx.test", DNS_T_TXT, "v=spf1 mx -all", 0 },
	{ "mx.test", SPF_T_MX, "mx1.mx.test", 0 },
	{ "mx.test", SPF_T_MX, "mx2.mx.test", 0 },
	{ "mx1.mx.test", DNS_T_A, "192.0.2.9", 0 },
	{ "mx2.mx.test", DNS_T_A, "192.0.2.10", 0 },
	{ "mxtf.test", DNS_T_TXT, "v=spf1 mx -all", 0 },
	{ "mxtf.test", SPF_T_MX, "slow.mxtf.test", 0 },
	{ "slow.mxtf.test", 0, "TIMEOUT", 0 },
	{ "mxmany.test", DNS_T_TXT, "v=spf1 mx ?all", 0 },
	{ "ptr.test", DNS_T_TXT, "v=spf1 ptr -all", 0 },
	{ "7.2.0.192.in-addr.arpa", DNS_T_PTR, "host.ptr.test", 0 },
	{ "7.2.0.192.in-addr.arpa", DNS_T_PTR, "other.example", 0 },
	{ "host.ptr.test", DNS_T_A, "192.0.2.7", 0 },
	{ "other.example", DNS_T_A, "192.0.2.7", 0 },
	{ "8.2.0.192.in-addr.arpa", 0, "SERVFAIL", 0 },
	{ "pmac.test", DNS_T_TXT, "v=spf1 exists:%{p}.ok.pmac.test -all", 0 },
	{ "host.ptr.test.ok.pmac.test", DNS_T_A, "127.0.0.2", 0 },
	{ "unknown.ok.pmac.test", DNS_T_A, "127.0.0.3", 0 },
	{ "zero.test", DNS_T_TXT, "v=spf1 ip4:0.0.0.0/0 -all", 0 },
	{ "ip6.test", DNS_T_TXT, "v=spf1 ip6:2001:db8::/32 -all", 0 },
	{ "tf.test", DNS_T_TXT, "TIMEOUT", 0 },
	{ "sf.test", 0, "SERVFAIL", 0 },
	{ "void2.test", DNS_T_TXT,
	    "v=spf1 a:nx1.void.test a:nx2.void.test -all", 0 },
	{ "void3.test", DNS_T_TXT,
	    "v=spf1 a:nx1.void.test mx:nx2.void.test exists:nx3.void.test "
	    "-all", 0 },
	{ "limit10.test", DNS_T_TXT, "v=spf1 include:neutral.test "
	    "include:neutral.test include:neutral.test include:neutral.test "
	    "include:neutral.test include:neutral.test include:neutral.test "
	    "include:neutral.test include:neutral.test include:neutral.test "
	    "-all", 0 },
	{ "limit11.test", DNS_T_TXT, "v=spf1 a include:limit10.test", 0 },
	{ "loop.test", DNS_T_TXT, "v=spf1 include:loop.test -all", 0 },
	{ "helo.test", DNS_T_TXT, "v=spf1 ip4:192.0.2.33 -all", 0 },
	{ NULL, 0, NULL, 0 }
};

struct fake {
	const struct zrec	*zone;
	unsigned		 queries;
	uint8_t			 buf[32][300];
	const uint8_t		*rr[32];
	size_t			 len[32];
	char			 last[256];
};

static size_t
wire_name(const char *s, uint8_t *out)
{
	size_t	 o = 0;

	while (*s != '\0') {
		const char	*dot = strchr(s, '.');
		size_t		 l = dot != NULL ? (size_t)(dot - s) : strlen(s);

		out[o++] = (uint8_t)l;
		memcpy(out + o, s, l);
		o += l;
		s += l + (dot != NULL);
	}
	out[o++] = 0;
	return o;
}

/* TXT: strings split at '|' (one character-string each). */
static size_t
wire_txt(const char *s, size_t n, uint8_t *out)
{
	size_t	 o = 0, i = 0;

	while (i <= n) {
		size_t j = i;

		while (j < n && s[j] != '|')
			j++;
		out[o++] = (uint8_t)(j - i);
		memcpy(out + o, s + i, j - i);
		o += j - i;
		i = j + 1;
	}
	return o;
}

static void
fake_lookup(void *arg, const char *name, int type, struct spf_answer *a)
{
	struct fake		*f = arg;
	const struct zrec	*z;
	size_t			 n = 0, mx = 0;
	int			 known = 0;
	char			 host[64];

	f->queries++;
	(void)snprintf(f->last, sizeof(f->last), "%s/%d", name, type);
	memset(a, 0, sizeof(*a));
	a->rr = f->rr;
	a->len = f->len;
	/* mxmany.test: 11 MX records */
	if (strcasecmp(name, "mxmany.test") == 0 && type == SPF_T_MX) {
		for (mx = 0; mx < 11; mx++) {
			(void)snprintf(host, sizeof(host), "mx%zu.mx.test", mx);
			f->buf[mx][0] = 0;
			f->buf[mx][1] = 10;
			f->len[mx] = 2 + wire_name(host, f->buf[mx] + 2);
			f->rr[mx] = f->buf[mx];
		}
		a->n = 11;
		a->status = DNS_OK;
		return;
	}
	for (z = f->zone; z->name != NULL; z++) {
		if (strcasecmp(z->name, name) != 0)
			continue;
		known = 1;
		if (z->type != 0 && z->type != type)
			continue;
		if (strcmp(z->data, "TIMEOUT") == 0) {
			a->status = DNS_TIMEOUT;
			return;
		}
		if (strcmp(z->data, "SERVFAIL") == 0) {
			a->status = DNS_SERVFAIL;
			return;
		}
		switch (type) {
		case DNS_T_A:
			f->len[n] = 4;
			assert_int_equal(inet_pton(AF_INET, z->data,
			    f->buf[n]), 1);
			break;
		case DNS_T_AAAA:
			f->len[n] = 16;
			assert_int_equal(inet_pton(AF_INET6, z->data,
			    f->buf[n]), 1);
			break;
		case DNS_T_PTR:
			f->len[n] = wire_name(z->data, f->buf[n]);
			break;
		case SPF_T_MX:
			f->buf[n][0] = 0;
			f->buf[n][1] = 10;
			f->len[n] = 2 + wire_name(z->data, f->buf[n] + 2);
			break;
		case DNS_T_TXT:
			f->len[n] = wire_txt(z->data, z->len != 0 ? z->len :
			    strlen(z->data), f->buf[n]);
			break;
		}
		f->rr[n] = f->buf[n];
		n++;
	}
	a->n = n;
	a->status = n > 0 ? DNS_OK : known ? DNS_NODATA : DNS_NXDOMAIN;
}

struct eval_row {
	const char	*domain;
	const char	*ip;
	const char	*sender;	/* NULL: postmaster@domain */
	enum spf_result	 want;
	const char	*why;		/* substring of ev.why, or NULL */
};

static void
test_eval(void **st)
{
	static const struct eval_row rows[] = {
		{ "pass.test", "192.0.2.7", NULL, SPF_PASS, NULL },
		{ "pass.test", "198.51.100.1", NULL, SPF_FAIL, NULL },
		/* IPv4-mapped IPv6 is the IPv4 client (libspf2: fail) */
		{ "pass.test", "::ffff:192.0.2.7", NULL, SPF_PASS, NULL },
		/* no free pass for loopback (libspf2: pass) */
		{ "pass.test", "127.0.0.1", NULL, SPF_FAIL, NULL },
		{ "soft.test", "192.0.2.7", NULL, SPF_SOFTFAIL, NULL },
		{ "neutral.test", "192.0.2.7", NULL, SPF_NEUTRAL, NULL },
		{ "empty.test", "192.0.2.7", NULL, SPF_NEUTRAL, NULL },
		{ "nospf.test", "192.0.2.7", NULL, SPF_NONE, NULL },
		{ "nx.test", "192.0.2.7", NULL, SPF_NONE, NULL },
		{ "localhost", "192.0.2.7", NULL, SPF_NONE, NULL },
		{ "two.test", "192.0.2.7", NULL, SPF_PERMERROR,
		    "more than one SPF record" },
		{ "syntax.test", "192.0.2.7", NULL, SPF_PERMERROR,
		    "malformed ip4" },
		{ "nul.test", "192.0.2.7", NULL, SPF_PERMERROR, "NUL" },
		{ "split.test", "192.0.2.7", NULL, SPF_PASS, NULL },
		/* strings are joined without a space (3.3) */
		{ "nosp.test", "192.0.2.7", NULL, SPF_PERMERROR, NULL },
		{ "upper.test", "192.0.2.7", NULL, SPF_PASS, NULL },
		{ "inc.test", "192.0.2.7", NULL, SPF_PASS, NULL },
		{ "inc.test", "198.51.100.1", NULL, SPF_FAIL, NULL },
		{ "incnx.test", "192.0.2.7", NULL, SPF_PERMERROR,
		    "has no SPF record" },
		{ "inctf.test", "192.0.2.7", NULL, SPF_TEMPERROR, "timeout" },
		{ "incsoft.test", "192.0.2.7", NULL, SPF_NEUTRAL, NULL },
		{ "redir.test", "192.0.2.7", NULL, SPF_PASS, NULL },
		{ "redir.test", "198.51.100.1", NULL, SPF_FAIL, NULL },
		/* redirect comes after every mechanism (libspf2: fail) */
		{ "redirlast.test", "198.51.100.1", NULL, SPF_PASS, NULL },
		/* and not at all with "all" (libspf2: fail) */
		{ "redirall.test", "198.51.100.1", NULL, SPF_NEUTRAL, NULL },
		{ "redirnx.test", "192.0.2.7", NULL, SPF_PERMERROR,
		    "redirect=nx.test has no SPF record" },
		{ "redirmac.test", "192.0.2.8", NULL, SPF_PASS, NULL },
		{ "exists.test", "192.0.2.7", NULL, SPF_PASS, NULL },
		{ "exists.test", "192.0.2.8", NULL, SPF_FAIL, NULL },
		{ "lp.test", "192.0.2.99", "alice@lp.test", SPF_PASS, NULL },
		{ "lp.test", "192.0.2.99", "bob@lp.test", SPF_FAIL, NULL },
		{ "a.test", "192.0.2.7", NULL, SPF_PASS, NULL },
		{ "a.test", "2001:db8::7", NULL, SPF_PASS, NULL },
		{ "a.test", "198.51.100.9", NULL, SPF_PASS, NULL },
		{ "a.test", "198.51.101.9", NULL, SPF_FAIL, NULL },
		{ "azero.test", "192.0.2.77", NULL, SPF_PASS, NULL },
		{ "azero.test", "2001:db8::77", NULL, SPF_FAIL, NULL },
		{ "mx.test", "192.0.2.10", NULL, SPF_PASS, NULL },
		{ "mx.test", "192.0.2.11", NULL, SPF_FAIL, NULL },
		{ "mxtf.test", "192.0.2.11", NULL, SPF_TEMPERROR, NULL },
		{ "mxmany.test", "192.0.2.11", NULL, SPF_PERMERROR,
		    "more than 10 MX" },
		{ "ptr.test", "192.0.2.7", NULL, SPF_PASS, NULL },
		{ "ptr.test", "192.0.2.9", NULL, SPF_FAIL, NULL },
		/* a DNS error in ptr is no match, not temperror */
		{ "ptr.test", "192.0.2.8", NULL, SPF_FAIL, NULL },
		{ "pmac.test", "192.0.2.7", NULL, SPF_PASS, NULL },
		/* no validated name: %{p} is "unknown" */
		{ "pmac.test", "192.0.2.9", NULL, SPF_PASS, NULL },
		{ "zero.test", "203.0.113.5", NULL, SPF_PASS, NULL },
		{ "zero.test", "2001:db8::5", NULL, SPF_FAIL, NULL },
		{ "ip6.test", "2001:db8:1::1", NULL, SPF_PASS, NULL },
		{ "ip6.test", "192.0.2.7", NULL, SPF_FAIL, NULL },
		{ "tf.test", "192.0.2.7", NULL, SPF_TEMPERROR, "timeout" },
		{ "sf.test", "192.0.2.7", NULL, SPF_TEMPERROR, "servfail" },
		{ "void2.test", "192.0.2.7", NULL, SPF_FAIL, NULL },
		{ "void3.test", "192.0.2.7", NULL, SPF_PERMERROR,
		    "void lookups" },
		{ "limit10.test", "192.0.2.7", NULL, SPF_FAIL, NULL },
		{ "limit11.test", "192.0.2.7", NULL, SPF_PERMERROR,
		    "more than 10 DNS" },
		{ "loop.test", "192.0.2.7", NULL, SPF_PERMERROR,
		    "more than 10 DNS" },
		{ "helo.test", "192.0.2.33", "postmaster@helo.test", SPF_PASS,
		    NULL },
	};
	struct spf_eval		 ev;
	struct fake		 f;
	struct arena		*ar;
	enum spf_result		 r;
	char			 sender[128];
	size_t			 i;

	(void)st;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		ar = arena_new(1u << 22);
		assert_non_null(ar);
		memset(&f, 0, sizeof(f));
		f.zone = zone;
		memset(&ev, 0, sizeof(ev));
		ev.lookup = fake_lookup;
		ev.lookup_arg = &f;
		ev.arena = ar;
		assert_int_equal(ipaddr_parse(rows[i].ip, &ev.ip), RC_OK);
		(void)snprintf(sender, sizeof(sender), "postmaster@%s",
		    rows[i].domain);
		ev.sender = rows[i].sender != NULL ? rows[i].sender : sender;
		ev.helo = "mx.example.org";
		r = spf_check_host(&ev, rows[i].domain);
		if (r != rows[i].want)
			fail_msg("eval row %zu %s from %s: %s, want %s (%s)", i,
			    rows[i].domain, rows[i].ip, spf_result_name(r),
			    spf_result_name(rows[i].want), ev.why);
		if (rows[i].why != NULL && strstr(ev.why, rows[i].why) ==
		    NULL)
			fail_msg("eval row %zu %s: why '%s', want '%s'", i,
			    rows[i].domain, ev.why, rows[i].why);
		if (ev.lookups > SPF_LOOKUP_MAX + 1)
			fail_msg("eval row %zu: %u lookups", i, ev.lookups);
		arena_free(ar);
	}
}

/* ---- macro expansion (RFC 7208 section 7.4) ------------------------- */

struct mac_row {
	const char	*ip;
	const char	*spec;
	const char	*want;
};

static void
test_expand(void **st)
{
	static const struct mac_row rows[] = {
		{ "192.0.2.3", "%{s}", "strong-bad@email.example.com" },
		{ "192.0.2.3", "%{o}", "email.example.com" },
		{ "192.0.2.3", "%{d}", "email.example.com" },
		{ "192.0.2.3", "%{d4}", "email.example.com" },
		{ "192.0.2.3", "%{d3}", "email.example.com" },
		{ "192.0.2.3", "%{d2}", "example.com" },
		{ "192.0.2.3", "%{d1}", "com" },
		{ "192.0.2.3", "%{dr}", "com.example.email" },
		{ "192.0.2.3", "%{d2r}", "example.email" },
		{ "192.0.2.3", "%{l}", "strong-bad" },
		{ "192.0.2.3", "%{l-}", "strong.bad" },
		{ "192.0.2.3", "%{lr}", "strong-bad" },
		{ "192.0.2.3", "%{lr-}", "bad.strong" },
		{ "192.0.2.3", "%{l1r-}", "strong" },
		{ "192.0.2.3", "%{ir}.%{v}._spf.%{d2}",
		    "3.2.0.192.in-addr._spf.example.com" },
		{ "192.0.2.3", "%{lr-}.lp._spf.%{d2}",
		    "bad.strong.lp._spf.example.com" },
		{ "192.0.2.3", "%{lr-}.lp.%{ir}.%{v}._spf.%{d2}",
		    "bad.strong.lp.3.2.0.192.in-addr._spf.example.com" },
		{ "192.0.2.3", "%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}",
		    "3.2.0.192.in-addr.strong.lp._spf.example.com" },
		{ "192.0.2.3", "%{d2}.trusted-domains.example.net",
		    "example.com.trusted-domains.example.net" },
		{ "2001:db8::cb01", "%{ir}.%{v}._spf.%{d2}",
		    "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1."
		    "0.0.2.ip6._spf.example.com" },
		{ "::ffff:192.0.2.3", "%{i}.%{v}", "192.0.2.3.in-addr" },
		{ "192.0.2.3", "%{S}", "strong-bad%40email.example.com" },
		{ "192.0.2.3", "%{h}", "mx.example.org" },
		{ "192.0.2.3", "%{l,-}", "strong.bad" },
		{ "192.0.2.3", "%{d/.}", "email.example.com" },
		{ "192.0.2.3", "%{l1r--------}", "strong" },
		{ "192.0.2.3", "%{l.-+,/_=.-+,/_=}", "strong.bad" },
		{ "192.0.2.3", "%{d999}", "email.example.com" },
		{ "192.0.2.3", "x%%y%_z%-", "x%y z%20" },
		{ "192.0.2.3", "%{p}", "unknown" },
	};
	struct spf_eval	 ev;
	struct fake	 f;
	struct arena	*ar = arena_new(1u << 20);
	char		 buf[600];
	size_t		 i;

	(void)st;
	assert_non_null(ar);
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		memset(&f, 0, sizeof(f));
		f.zone = zone;
		memset(&ev, 0, sizeof(ev));
		ev.lookup = fake_lookup;
		ev.lookup_arg = &f;
		ev.arena = ar;
		ev.sender = "strong-bad@email.example.com";
		ev.helo = "mx.example.org";
		assert_int_equal(ipaddr_parse(rows[i].ip, &ev.ip), RC_OK);
		if (spf_expand(&ev, rows[i].spec, "email.example.com", buf,
		    sizeof(buf)) != RC_OK || strcmp(buf, rows[i].want) != 0)
			fail_msg("expand row '%s': '%s', want '%s'",
			    rows[i].spec, buf, rows[i].want);
	}
	/* 7.3: a name over 253 bytes loses labels on the left */
	memset(&ev, 0, sizeof(ev));
	ev.arena = ar;
	ev.sender = "postmaster@example.com";
	assert_int_equal(ipaddr_parse("192.0.2.3", &ev.ip), RC_OK);
	{
		char	 spec[600];
		size_t	 o = 0;

		for (i = 0; i < 40; i++)
			o += (size_t)snprintf(spec + o, sizeof(spec) - o,
			    "label%02zu.", i);
		(void)snprintf(spec + o, sizeof(spec) - o, "%%{d}");
		assert_int_equal(spf_expand(&ev, spec, "example.com", buf,
		    sizeof(buf)), RC_OK);
		assert_true(strlen(buf) <= 253);
		assert_true(strlen(buf) > 240);
		assert_non_null(strstr(buf, "label39.example.com"));
		assert_true(strncmp(buf, "label", 5) == 0);
	}
	/* too long for the buffer */
	assert_int_equal(spf_expand(&ev, "%{s}%{s}%{s}", "example.com", buf,
	    20), RC_NOMEM);
	arena_free(ar);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_syntax),
		cmocka_unit_test(test_parsed),
		cmocka_unit_test(test_select),
		cmocka_unit_test(test_eval),
		cmocka_unit_test(test_expand),
	};

	return cmocka_run_group_tests_name("spf", tests, NULL, NULL);
}
