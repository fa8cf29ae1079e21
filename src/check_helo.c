/*
 * check_helo.c - HELO/EHLO name checks (group "helo").
 *
 * Scores, in order of precedence (one finding per HELO): a name that
 * claims to be us (one of helo.our_names, Postfix's own $myhostname from
 * the j macro, or our address as a literal) - score or reject per
 * helo.ours_action; an address literal that is not the client's address;
 * a bare IP address without brackets; invalid syntax; a name without a
 * dot.  Conf is read-only after setup: thread-safe.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cfg.h"
#include "ctx.h"
#include "util.h"

struct helo_conf {
	int32_t		 invalid, non_fqdn, bare_ip, literal_mismatch, ours;
	int		 ours_reject;
	struct strlist	 our_names;
};

static void
helo_teardown(void *p)
{
	struct helo_conf	*hc = p;

	if (hc == NULL)
		return;
	strlist_free(&hc->our_names);
	free(hc);
}

static int
helo_setup(const struct cfg *cfg, const config_setting_t *g, void **conf,
    struct err *e)
{
	struct helo_conf	*hc;

	(void)cfg;
	hc = calloc(1, sizeof(*hc));
	if (hc == NULL) {
		err_set(e, "out of memory");
		return -1;
	}
	hc->invalid = cv_score(g, "helo.invalid");
	hc->non_fqdn = cv_score(g, "helo.non_fqdn");
	hc->bare_ip = cv_score(g, "helo.bare_ip");
	hc->literal_mismatch = cv_score(g, "helo.literal_mismatch");
	hc->ours = cv_score(g, "helo.ours");
	hc->ours_reject = strcmp(cv_string(g, "helo.ours_action"),
	    "reject") == 0;
	if (cv_strlist(g, "helo.our_names", &hc->our_names, e) != RC_OK) {
		helo_teardown(hc);
		return -1;
	}
	*conf = hc;
	return 0;
}

/* Equal host names, ignoring case and one trailing dot on either. */
static int
name_eq(const char *a, const char *b)
{
	size_t	 la = strlen(a), lb = strlen(b);

	if (la > 0 && a[la - 1] == '.')
		la--;
	if (lb > 0 && b[lb - 1] == '.')
		lb--;
	return la == lb && la > 0 && strncasecmp(a, b, la) == 0;
}

static int
claims_us(const struct helo_conf *hc, const struct conn_ctx *c,
    const char *helo, const struct ipaddr *lit)
{
	struct ipaddr	 ours;
	size_t		 i;

	if (lit != NULL)
		return c->daemon_addr != NULL &&
		    ipaddr_parse(c->daemon_addr, &ours) == RC_OK &&
		    ipaddr_eq(&ours, lit) && !(c->has_ip &&
		    ipaddr_eq(&c->ip, lit));
	for (i = 0; i < hc->our_names.n; i++)
		if (name_eq(helo, hc->our_names.v[i]))
			return 1;
	return c->myhostname != NULL && name_eq(helo, c->myhostname);
}

static enum cr_status
helo_run(const void *conf, struct txn *t, enum stage st)
{
	const struct helo_conf	*hc = conf;
	const struct conn_ctx	*c = t->conn;
	const char		*h = c->helo;
	struct ipaddr		 lit;
	int			 is_lit;

	(void)st;
	is_lit = h[0] == '[';
	if (is_lit && ipaddr_parse(h, &lit) != RC_OK) {
		txn_score(t, "invalid", hc->invalid);
		return CR_FAIL;
	}
	if (claims_us(hc, c, h, is_lit ? &lit : NULL)) {
		txn_score(t, "ours", hc->ours);
		if (hc->ours_reject)
			txn_verdict(t, ACT_REJECT, "550", "5.7.1",
			    "Helo command rejected: Host claims to be us");
		return CR_FAIL;
	}
	if (is_lit) {
		if (c->has_ip && !ipaddr_eq(&c->ip, &lit)) {
			txn_score(t, "literal_mismatch", hc->literal_mismatch);
			return CR_FAIL;
		}
		return CR_PASS;
	}
	if (ipaddr_parse(h, &lit) == RC_OK) {
		txn_score(t, "bare_ip", hc->bare_ip);
		return CR_FAIL;
	}
	if (!hostname_valid(h)) {
		txn_score(t, "invalid", hc->invalid);
		return CR_FAIL;
	}
	if (!hostname_is_fqdn(h)) {
		txn_score(t, "non_fqdn", hc->non_fqdn);
		return CR_FAIL;
	}
	return CR_PASS;
}

const struct check_ops check_helo = {
	.name = "helo",
	.group = "helo",
	.stages = STAGE_BIT(STAGE_HELO),
	.flags = CHECK_INBOUND,
	.implemented = 1,
	.setup = helo_setup,
	.teardown = helo_teardown,
	.run = helo_run,
};
