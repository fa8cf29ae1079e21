/*
 * check_dnsbl.c - DNS block lists and DNS allow lists (groups "dnsbl" and
 * "dnswl", lists of zones).
 *
 * At connect, every zone of both lists is asked at once through the
 * stage's DNS batch (reversed IPv4 octets or IPv6 nibbles + zone, type
 * A).  An answer in 127.0.0.0/8 is a listing; NXDOMAIN or NODATA is not.
 * An answer outside 127.0.0.0/8 or in 127.255.255.0/24 (what lists return
 * to resolvers they block) is an error, never a listing, and is logged
 * loudly once per zone per ten minutes.  A listing scores the zone's score,
 * or the highest score among its codes that match (exact "127.0.0.2", or a
 * bit mask for bitmask zones).  The DNSBL zone that scored most names the
 * refusal ("blocked using ZONE") when the score reaches thresholds.reject
 * at connect.  A DNSWL listing adds its (negative) score and, with
 * whitelist = true, exempts the client from score refusals.  A zone whose
 * lookup fails follows its on_error: "accept" (default) skips it, and
 * "tempfail" holds a 451 for RCPT.  Conf is read-only after setup; the
 * per-zone log throttle is atomic: thread-safe.
 */
#include <arpa/inet.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cfg.h"
#include "ctx.h"
#include "dns.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

#define ERROR_LOG_GAP	600	/* seconds between loud logs of a zone */

struct code {
	uint32_t	 addr;		/* host order; 0 with a mask */
	uint32_t	 mask;		/* 0: exact match */
	int32_t		 score;
};

struct zone {
	char		*zone;
	int32_t		 score;
	int		 dry_run, tempfail, whitelist;
	struct code	*codes;
	size_t		 ncodes;
	atomic_llong	 last_error_log;
};

struct lists_conf {
	int		 allow;		/* dnswl */
	struct zone	*zones;
	size_t		 nzones;
};

static void
dnsl_teardown(void *p)
{
	struct lists_conf	*lc = p;
	size_t			 i;

	if (lc == NULL)
		return;
	for (i = 0; i < lc->nzones; i++) {
		free(lc->zones[i].zone);
		free(lc->zones[i].codes);
	}
	free(lc->zones);
	free(lc);
}

static int
parse_codes(struct zone *z, const config_setting_t *list, const char *grp,
    struct err *e)
{
	int		 i, n = list != NULL ? config_setting_length(list) : 0;
	char		 key[64];
	struct in_addr	 in;

	if (n == 0)
		return 0;
	z->codes = calloc((size_t)n, sizeof(*z->codes));
	if (z->codes == NULL) {
		err_set(e, "out of memory");
		return -1;
	}
	for (i = 0; i < n; i++) {
		const config_setting_t	*el = config_setting_get_elem(list,
					    (unsigned)i);
		const char		*code;
		long long		 mask;
		struct code		*c = &z->codes[z->ncodes];

		(void)snprintf(key, sizeof(key), "%s.[].codes.[].score", grp);
		c->score = cv_score(el, key);
		if (config_setting_lookup_int64(el, "mask", &mask) ==
		    CONFIG_TRUE) {
			c->mask = (uint32_t)mask;
		} else if (config_setting_lookup_string(el, "code", &code) ==
		    CONFIG_TRUE && inet_pton(AF_INET, code, &in) == 1 &&
		    (ntohl(in.s_addr) >> 24) == 127) {
			c->addr = ntohl(in.s_addr);
		} else {
			err_set(e, "%s:%d: setting '%s' zone '%s': each code "
			    "needs code = \"127.x.y.z\" or mask = N",
			    config_setting_source_file(el) != NULL ?
			    config_setting_source_file(el) : "?",
			    config_setting_source_line(el), grp, z->zone);
			return -1;
		}
		z->ncodes++;
	}
	return 0;
}

static int
dnsl_setup(const config_setting_t *list, int allow, void **conf,
    struct err *e)
{
	const char		*grp = allow ? "dnswl" : "dnsbl";
	struct lists_conf	*lc;
	int			 i, n = config_setting_length(list);
	char			 key[64];

	lc = calloc(1, sizeof(*lc));
	if (lc == NULL || (n > 0 && (lc->zones = calloc((size_t)n,
	    sizeof(*lc->zones))) == NULL)) {
		free(lc);
		err_set(e, "out of memory");
		return -1;
	}
	lc->allow = allow;
	*conf = lc;
	for (i = 0; i < n; i++) {
		const config_setting_t	*el = config_setting_get_elem(list,
					    (unsigned)i);
		struct zone		*z = &lc->zones[lc->nzones];
		const char		*name;

		(void)snprintf(key, sizeof(key), "%s.[].zone", grp);
		name = cv_string(el, key);
		if (!hostname_valid(name) || !hostname_is_fqdn(name)) {
			err_set(e, "%s:%d: setting '%s[%d].zone': '%s' is not a "
			    "DNS zone", config_setting_source_file(el) != NULL ?
			    config_setting_source_file(el) : "?",
			    config_setting_source_line(el), grp, i, name);
			return -1;
		}
		z->zone = strdup(name);
		if (z->zone == NULL) {
			err_set(e, "out of memory");
			return -1;
		}
		lc->nzones++;
		(void)snprintf(key, sizeof(key), "%s.[].score", grp);
		z->score = cv_score(el, key);
		(void)snprintf(key, sizeof(key), "%s.[].dry_run", grp);
		z->dry_run = cv_bool(el, key);
		(void)snprintf(key, sizeof(key), "%s.[].on_error", grp);
		z->tempfail = strcmp(cv_string(el, key), "tempfail") == 0;
		if (allow)
			z->whitelist = cv_bool(el, "dnswl.[].whitelist");
		else if (parse_codes(z, config_setting_get_member(el, "codes"),
		    grp, e) != 0)
			return -1;
	}
	return 0;
}

static int
dnsbl_setup(const struct cfg *cfg, const config_setting_t *g, void **conf,
    struct err *e)
{
	(void)cfg;
	return dnsl_setup(g, 0, conf, e);
}

static int
dnswl_setup(const struct cfg *cfg, const config_setting_t *g, void **conf,
    struct err *e)
{
	(void)cfg;
	return dnsl_setup(g, 1, conf, e);
}

static void
dnsl_start(const void *conf, struct txn *t, enum stage st,
    struct dns_batch *b)
{
	const struct lists_conf	*lc = conf;
	struct dns_query	**qs;
	char			 name[512];
	size_t			 i;

	(void)st;
	if (!t->conn->has_ip || lc->nzones == 0)
		return;
	qs = arena_calloc(t->conn->arena, lc->nzones, sizeof(*qs));
	if (qs == NULL)
		return;
	for (i = 0; i < lc->nzones; i++)
		if (dns_reverse_name(&t->conn->ip, lc->zones[i].zone, name,
		    sizeof(name)) == 0)
			qs[i] = dns_batch_add(b, name, DNS_T_A);
	txn_state_set(t, qs);
}

/* Loud, but at most once per zone per ERROR_LOG_GAP. */
static void
zone_error(struct txn *t, struct zone *z, const char *what)
{
	long long	 now = (long long)time(NULL);
	long long	 last = atomic_load(&z->last_error_log);

	metrics_inc(M.dnsl_errors, z->zone, 1);
	if (now - last < ERROR_LOG_GAP ||
	    !atomic_compare_exchange_strong(&z->last_error_log, &last, now)) {
		log_conn(t->conn, LOG_DEBUG, "%s: %s", z->zone, what);
		return;
	}
	log_conn(t->conn, LOG_ERR, "%s: %s (is this resolver blocked by the "
	    "list? logged once per %d s)", z->zone, what, ERROR_LOG_GAP);
}

/*
 * Points of a listing from the A records of the answer; -1 if the answer
 * is an error code or not a list answer at all.
 */
static int
listing_points(const struct zone *z, const struct dns_query *q,
    int32_t *points)
{
	size_t		 i, n = dns_query_count(q), len;
	int		 matched = 0;
	int32_t		 best = 0;

	for (i = 0; i < n; i++) {
		const uint8_t	*d = dns_query_data(q, i, &len);
		uint32_t	 a;
		size_t		 k;

		if (d == NULL || len != 4)
			return -1;
		a = (uint32_t)d[0] << 24 | (uint32_t)d[1] << 16 |
		    (uint32_t)d[2] << 8 | d[3];
		if ((a >> 24) != 127 || (a >> 8) == 0x7fffff)
			return -1;
		for (k = 0; k < z->ncodes; k++) {
			const struct code *c = &z->codes[k];

			if ((c->mask != 0 && (a & c->mask) != 0) ||
			    (c->mask == 0 && c->addr == a)) {
				if (!matched || c->score > best)
					best = c->score;
				matched = 1;
			}
		}
	}
	*points = matched ? best : z->score;
	return 0;
}

static enum cr_status
dnsl_run(const void *conf, struct txn *t, enum stage st)
{
	const struct lists_conf	*lc = conf;
	struct dns_query	**qs = txn_state(t);
	struct conn_ctx		*c = t->conn;
	int32_t			 points = 0, top = 0;
	const char		*top_zone = NULL;
	enum cr_status		 rs = CR_PASS;
	size_t			 i;

	(void)st;
	if (!c->has_ip || lc->nzones == 0)
		return CR_SKIP;
	/* no resolver (qs == NULL): every zone failed, per its on_error */
	for (i = 0; i < lc->nzones; i++) {
		struct zone	*z = &lc->zones[i];
		enum dns_status	 ds = qs != NULL && qs[i] != NULL ?
				    dns_query_status(qs[i]) : DNS_ERROR;

		switch (ds) {
		case DNS_NXDOMAIN:
		case DNS_NODATA:
			continue;
		case DNS_OK:
			if (listing_points(z, qs[i], &points) == 0)
				break;
			zone_error(t, z, "answer outside 127.0.0.0/8 or an "
			    "error code: not a listing");
			continue;
		case DNS_PENDING:
		case DNS_SERVFAIL:
		case DNS_TIMEOUT:
		case DNS_ERROR:
			metrics_inc(M.dnsl_errors, z->zone, 1);
			log_conn(c, LOG_INFO, "%s: lookup %s; %s", z->zone,
			    dns_status_name(ds), z->tempfail ? "tempfail" :
			    "skipped");
			if (z->tempfail && !z->dry_run)
				txn_verdict(t, ACT_TEMPFAIL, "451", "4.4.3",
				    "Temporary DNS failure, try again later");
			continue;
		}
		txn_score_ex(t, z->zone, points, z->dry_run);
		rs = CR_FAIL;
		if (lc->allow && z->whitelist && !z->dry_run)
			c->dnswl = 1;
		if (!lc->allow && !z->dry_run && (top_zone == NULL ||
		    points > top)) {
			top = points;
			top_zone = z->zone;
		}
	}
	if (top_zone != NULL && top > 0) {
		c->threshold_text = arena_printf(c->arena, "Service "
		    "unavailable; client [%s] blocked using %s",
		    c->client_addr, top_zone);
		if (c->threshold_text == NULL)
			t->nomem = 1;
	}
	return rs;
}

/*
 * Self-test of every zone: the conventional test entry 127.0.0.2 must be
 * listed and 127.0.0.1 must not.  A zone that fails is logged (it usually
 * means the resolver is blocked by the list, or the zone is gone) and its
 * health gauge drops to 0; scoring goes on as the answers say.
 */
static void
dnsl_periodic(const void *conf, struct cfg *cfg)
{
	const struct lists_conf	*lc = conf;
	struct dns_query	*q[2];
	struct dns_batch	*b;
	struct ipaddr		 probe[2];
	char			 name[512];
	size_t			 i;
	int			 k;

	if (lc->nzones == 0 || ipaddr_parse("127.0.0.2", &probe[0]) != RC_OK ||
	    ipaddr_parse("127.0.0.1", &probe[1]) != RC_OK)
		return;
	for (i = 0; i < lc->nzones; i++) {
		struct zone	*z = &lc->zones[i];
		enum dns_status	 listed, clean;
		int32_t		 pts;

		b = dns_batch_new(cfg_dns(cfg, NULL));
		if (b == NULL)
			return;
		for (k = 0; k < 2; k++)
			q[k] = dns_reverse_name(&probe[k], z->zone, name,
			    sizeof(name)) == 0 ? dns_batch_add(b, name,
			    DNS_T_A) : NULL;
		dns_batch_wait(b);
		listed = q[0] != NULL ? dns_query_status(q[0]) : DNS_ERROR;
		clean = q[1] != NULL ? dns_query_status(q[1]) : DNS_ERROR;
		if (listed == DNS_OK && listing_points(z, q[0], &pts) == 0 &&
		    (clean == DNS_NXDOMAIN || clean == DNS_NODATA)) {
			metrics_set_labeled(M.dnsl_healthy, z->zone, 1);
			log_msg(LOG_DEBUG, "%s: self-test passed", z->zone);
		} else {
			metrics_set_labeled(M.dnsl_healthy, z->zone, 0);
			log_msg(LOG_ERR, "%s: zone failed its self-test "
			    "(127.0.0.2: %s%s, 127.0.0.1: %s): is the zone "
			    "right, and is this resolver allowed to query it?",
			    z->zone, dns_status_name(listed), listed == DNS_OK &&
			    listing_points(z, q[0], &pts) != 0 ?
			    " with an error code" : "", dns_status_name(clean));
		}
		dns_batch_free(b);
	}
}

const struct check_ops check_dnsbl = {
	.name = "dnsbl",
	.group = "dnsbl",
	.stages = STAGE_BIT(STAGE_CONNECT),
	.flags = CHECK_INBOUND,
	.implemented = 1,
	.setup = dnsbl_setup,
	.teardown = dnsl_teardown,
	.start = dnsl_start,
	.run = dnsl_run,
	.periodic = dnsl_periodic,
};

const struct check_ops check_dnswl = {
	.name = "dnswl",
	.group = "dnswl",
	.stages = STAGE_BIT(STAGE_CONNECT),
	.flags = CHECK_INBOUND,
	.implemented = 1,
	.setup = dnswl_setup,
	.teardown = dnsl_teardown,
	.start = dnsl_start,
	.run = dnsl_run,
	.periodic = dnsl_periodic,
};
