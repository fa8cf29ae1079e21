/*
 * check_rdns.c - reverse DNS of the client (group "rdns").
 *
 * At connect the PTR question goes into the stage's batch with the DNS
 * lists.  Then: no PTR (NXDOMAIN or no record) scores rdns.missing; a PTR
 * whose names do not resolve back to the client (forward-confirmed
 * reverse DNS, one more batch of A/AAAA questions) scores rdns.mismatch;
 * a name that looks generic or dynamic scores rdns.generic: the client's
 * address written into the name (192-0-2-7, 192.0.2.7, 7-2-0-192,
 * 7.2.0.192, c0000207 or 3221225991) or one of rdns.generic_patterns
 * (POSIX extended regular expressions, case-insensitive).  A lookup that
 * fails (timeout, SERVFAIL) is an error: on_error "accept" (default) skips
 * the check.  Conf is read-only after setup: thread-safe (regexec() on a
 * compiled pattern is).
 */
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cfg.h"
#include "ctx.h"
#include "dns.h"
#include "util.h"

#define PTR_MAX		4	/* PTR names checked */

struct rdns_conf {
	int32_t		 missing, mismatch, generic;
	regex_t		*re;
	size_t		 nre;
};

static void
rdns_teardown(void *p)
{
	struct rdns_conf	*rc = p;
	size_t			 i;

	if (rc == NULL)
		return;
	for (i = 0; i < rc->nre; i++)
		regfree(&rc->re[i]);
	free(rc->re);
	free(rc);
}

static int
rdns_setup(const struct cfg *cfg, const config_setting_t *g, void **conf,
    struct err *e)
{
	struct rdns_conf	*rc;
	struct strlist		 pats;
	char			 why[128];
	size_t			 i;
	int			 r;

	(void)cfg;
	rc = calloc(1, sizeof(*rc));
	if (rc == NULL) {
		err_set(e, "out of memory");
		return -1;
	}
	*conf = rc;
	rc->missing = cv_score(g, "rdns.missing");
	rc->mismatch = cv_score(g, "rdns.mismatch");
	rc->generic = cv_score(g, "rdns.generic");
	if (cv_strlist(g, "rdns.generic_patterns", &pats, e) != RC_OK)
		return -1;
	rc->re = calloc(pats.n > 0 ? pats.n : 1, sizeof(*rc->re));
	if (rc->re == NULL) {
		strlist_free(&pats);
		err_set(e, "out of memory");
		return -1;
	}
	for (i = 0; i < pats.n; i++) {
		if (ere_bounded(pats.v[i], e) != 0) {
			err_prefix(e, "setting 'rdns.generic_patterns[%zu]': "
			    "'%.60s'", i, pats.v[i]);
			strlist_free(&pats);
			return -1;
		}
		r = regcomp(&rc->re[i], pats.v[i], REG_EXTENDED | REG_ICASE |
		    REG_NOSUB);
		if (r != 0) {
			(void)regerror(r, &rc->re[i], why, sizeof(why));
			err_set(e, "setting 'rdns.generic_patterns[%zu]': "
			    "'%s': %s", i, pats.v[i], why);
			strlist_free(&pats);
			return -1;
		}
		rc->nre++;
	}
	strlist_free(&pats);
	return 0;
}

static void
rdns_start(const void *conf, struct txn *t, enum stage st,
    struct dns_batch *b)
{
	char	 name[128];

	(void)conf;
	(void)st;
	if (!t->conn->has_ip)
		return;
	if (dns_reverse_name(&t->conn->ip, t->conn->ip.v4 ? "in-addr.arpa" :
	    "ip6.arpa", name, sizeof(name)) == 0)
		txn_state_set(t, dns_batch_add(b, name, DNS_T_PTR));
}

/* The client's IPv4 address written into the name in a usual form. */
static int
embeds_address(const struct ipaddr *ip, const char *name)
{
	const uint8_t	*o = ip->b + 12;
	char		 f[6][32];
	size_t		 i;

	if (!ip->v4)
		return 0;
	(void)snprintf(f[0], sizeof(f[0]), "%u-%u-%u-%u", o[0], o[1], o[2],
	    o[3]);
	(void)snprintf(f[1], sizeof(f[1]), "%u.%u.%u.%u", o[0], o[1], o[2],
	    o[3]);
	(void)snprintf(f[2], sizeof(f[2]), "%u-%u-%u-%u", o[3], o[2], o[1],
	    o[0]);
	(void)snprintf(f[3], sizeof(f[3]), "%u.%u.%u.%u", o[3], o[2], o[1],
	    o[0]);
	(void)snprintf(f[4], sizeof(f[4]), "%02x%02x%02x%02x", o[0], o[1],
	    o[2], o[3]);
	(void)snprintf(f[5], sizeof(f[5]), "%u", (unsigned)o[0] << 24 |
	    (unsigned)o[1] << 16 | (unsigned)o[2] << 8 | o[3]);
	for (i = 0; i < 6; i++)
		if (strcasestr(name, f[i]) != NULL)
			return 1;
	return 0;
}

static int
looks_generic(const struct rdns_conf *rc, const struct ipaddr *ip,
    const char *name)
{
	size_t	 i;

	if (embeds_address(ip, name))
		return 1;
	for (i = 0; i < rc->nre; i++)
		if (regexec(&rc->re[i], name, 0, NULL, 0) == 0)
			return 1;
	return 0;
}

/* Does any A/AAAA answer of the name equal the client address? */
static int
confirms(const struct dns_query *q, const struct ipaddr *ip)
{
	size_t		 i, n = dns_query_count(q), len;
	struct ipaddr	 a;

	for (i = 0; i < n; i++) {
		const uint8_t *d = dns_query_data(q, i, &len);

		memset(&a, 0, sizeof(a));
		if (len == 4) {
			a.b[10] = a.b[11] = 0xff;
			memcpy(a.b + 12, d, 4);
		} else if (len == 16)
			memcpy(a.b, d, 16);
		else
			continue;
		if (memcmp(a.b, ip->b, 16) == 0)
			return 1;
	}
	return 0;
}

static enum cr_status
rdns_run(const void *conf, struct txn *t, enum stage st)
{
	const struct rdns_conf	*rc = conf;
	const struct dns_query	*ptr = txn_state(t);
	struct conn_ctx		*c = t->conn;
	char			 names[PTR_MAX][256];
	struct dns_query	*fwd[PTR_MAX];
	struct dns_batch	*b;
	size_t			 i, n, len, good = 0;
	enum dns_status		 ds;
	uint64_t		 now;
	int			 confirmed = 0, generic = 0;

	(void)st;
	if (!c->has_ip)
		return CR_SKIP;
	if (ptr == NULL) {
		txn_error(t, "no DNS resolver");
		return CR_ERROR;
	}
	ds = dns_query_status(ptr);
	if (ds == DNS_NXDOMAIN || ds == DNS_NODATA) {
		txn_score(t, "missing", rc->missing);
		return CR_FAIL;
	}
	if (ds != DNS_OK) {
		txn_error(t, dns_status_name(ds));
		return CR_ERROR;
	}
	n = dns_query_count(ptr);
	b = dns_batch_new(cfg_dns(c->cfg, NULL));
	if (b == NULL) {
		t->nomem = 1;
		return CR_ERROR;
	}
	for (i = 0; i < n && good < PTR_MAX; i++) {
		const uint8_t *d = dns_query_data(ptr, i, &len);

		if (dns_name_from_wire(d, len, names[good],
		    sizeof(names[good])) != 0 || !hostname_valid(names[good]))
			continue;
		fwd[good] = dns_batch_add(b, names[good], c->ip.v4 ? DNS_T_A :
		    DNS_T_AAAA);
		good++;
	}
	/* the forward round shares the stage's dns.timeout */
	now = now_ms();
	dns_batch_wait_ms(b, t->dns_deadline > now ?
	    (unsigned)(t->dns_deadline - now) : 0);
	for (i = 0; i < good; i++) {
		if (fwd[i] != NULL && confirms(fwd[i], &c->ip))
			confirmed = 1;
		if (looks_generic(rc, &c->ip, names[i]))
			generic = 1;
	}
	dns_batch_free(b);
	if (good == 0) {
		txn_score(t, "missing", rc->missing);
		return CR_FAIL;
	}
	if (!confirmed)
		txn_score(t, "mismatch", rc->mismatch);
	if (generic)
		txn_score(t, "generic", rc->generic);
	return confirmed && !generic ? CR_PASS : CR_FAIL;
}

const struct check_ops check_rdns = {
	.name = "rdns",
	.group = "rdns",
	.stages = STAGE_BIT(STAGE_CONNECT),
	.flags = CHECK_INBOUND,
	.implemented = 1,
	.setup = rdns_setup,
	.teardown = rdns_teardown,
	.start = rdns_start,
	.run = rdns_run,
};
