/*
 * check_greylist.c - greylisting at RCPT (group "greylist").
 *
 * The triplet is (origin, normalised sender, recipient); the origin is the
 * client network (greylist.ipv4_prefix / ipv6_prefix), or "spf:DOMAIN"
 * when SPF passed for the sender's domain (large providers retry from
 * other networks: their retry still matches).  A first attempt is
 * refused with 451 4.7.1 for greylist.delay; a retry after the delay and
 * within greylist.retry_window passes, and the triplet then lives for
 * greylist.expire after each use.  An origin that passed
 * greylist.auto_whitelist times (once per message) is whitelisted for
 * greylist.expire.  Mode "selective" greylists only transactions whose
 * score reached thresholds.greylist, clients of greylist.countries and
 * greylist.networks; "always" greylists every inbound transaction.
 * Internal, authenticated, whitelisted and DNSWL-whitelisted clients are
 * never greylisted.  A store failure fails open (on_error, default
 * accept).  Conf is read-only after setup: thread-safe.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "ctx.h"
#include "greylist.h"
#include "log.h"
#include "metrics.h"
#include "store.h"
#include "util.h"

#define KEY_LEN		1200	/* origin + two bounded addresses */
#define WHITE_REFRESH	3600	/* rewrite a whitelist entry at most hourly */

struct grey_conf {
	int		 always;
	int		 spf_domain;
	unsigned	 delay, retry_window, expire, awl;
	unsigned	 v4prefix, v6prefix;
	struct strlist	 countries;
	struct cidr_list networks;
};

/* Per message: origins already counted towards the auto-whitelist. */
struct grey_msg {
	int	 counted;
};

static void
grey_teardown(void *p)
{
	struct grey_conf	*gc = p;

	if (gc == NULL)
		return;
	strlist_free(&gc->countries);
	cidr_list_free(&gc->networks);
	free(gc);
}

static int
grey_setup(const struct cfg *cfg, const config_setting_t *g, void **conf,
    struct err *e)
{
	struct grey_conf	*gc;
	size_t			 i;

	(void)cfg;
	if ((gc = calloc(1, sizeof(*gc))) == NULL) {
		err_set(e, "out of memory");
		return -1;
	}
	*conf = gc;
	gc->always = strcmp(cv_string(g, "greylist.mode"), "always") == 0;
	gc->spf_domain = cv_bool(g, "greylist.spf_domain");
	gc->delay = (unsigned)cv_duration(g, "greylist.delay");
	gc->retry_window = (unsigned)cv_duration(g, "greylist.retry_window");
	gc->expire = (unsigned)cv_duration(g, "greylist.expire");
	gc->awl = (unsigned)cv_int(g, "greylist.auto_whitelist");
	gc->v4prefix = (unsigned)cv_int(g, "greylist.ipv4_prefix");
	gc->v6prefix = (unsigned)cv_int(g, "greylist.ipv6_prefix");
	if (gc->retry_window <= gc->delay) {
		err_set(e, "setting 'greylist.retry_window' (%u s) must be "
		    "longer than 'greylist.delay' (%u s)", gc->retry_window,
		    gc->delay);
		return -1;
	}
	if (cv_strlist(g, "greylist.countries", &gc->countries, e) != RC_OK ||
	    cv_cidrs(g, "greylist.networks", &gc->networks, e) != RC_OK)
		return -1;
	for (i = 0; i < gc->countries.n; i++) {
		const char *cc = gc->countries.v[i];

		/* ISO 3166-1 alpha-2, as the GeoIP database spells them */
		if (strlen(cc) != 2 || cc[0] < 'A' || cc[0] > 'Z' ||
		    cc[1] < 'A' || cc[1] > 'Z') {
			err_set(e, "setting 'greylist.countries': '%s' is not "
			    "an ISO 3166-1 alpha-2 code in capitals (e.g. "
			    "\"RO\")", cc);
			return -1;
		}
	}
	return 0;
}

/* This recipient of this transaction is to be greylisted. */
static int
selected(const struct grey_conf *gc, const struct txn *t)
{
	const struct conn_ctx	*c = t->conn;
	const struct cfg	*cfg = c->cfg;
	int32_t			 score = txn_score_total(t);
	size_t			 i;

	if (!c->has_ip || c->dnswl)
		return 0;
	/* a score refusal follows: it is final, greylisting is not */
	if (score >= cfg->thresholds.reject && !cfg->dry_run &&
	    !cfg->thresholds.dry_run)
		return 0;
	if (gc->always || score >= cfg->thresholds.greylist)
		return 1;
	if (cidr_list_match(&gc->networks, &c->ip))
		return 1;
	for (i = 0; c->country != NULL && i < gc->countries.n; i++)
		if (str_ieq(gc->countries.v[i], c->country))
			return 1;
	return 0;
}

static void
outcome(struct txn *t, const char *what)
{
	t->rcpt->grey = what;
	metrics_inc(M.greylist, what, 1);
}

static enum cr_status
store_failed(struct txn *t, const char *op, const struct err *e)
{
	outcome(t, "error");
	txn_error(t, arena_printf(t->msg->arena, "%s: %s", op, e->msg));
	return CR_ERROR;
}

static enum cr_status
defer(struct txn *t, uint64_t wait)
{
	const char	*text;

	text = arena_printf(t->msg->arena, "Greylisted, please try again "
	    "later (in %llu seconds)", (unsigned long long)wait);
	txn_verdict(t, ACT_TEMPFAIL, "451", "4.7.1", text != NULL ? text :
	    "Greylisted, please try again later");
	return CR_FAIL;
}

/* Counts a pass of origin towards the auto-whitelist, once a message. */
static enum cr_status
count_pass(const struct grey_conf *gc, struct txn *t, struct store *st,
    const char *wkey, uint64_t now)
{
	struct grey_msg		*gm = txn_msg_state(t);
	struct store_rec	 w;
	struct err		 e;
	enum rc			 rc;

	if (gc->awl == 0)
		return CR_PASS;
	if (gm == NULL) {
		if ((gm = arena_calloc(t->msg->arena, 1, sizeof(*gm))) ==
		    NULL) {
			t->nomem = 1;
			return CR_ERROR;
		}
		txn_msg_state_set(t, gm);
	}
	if (gm->counted)
		return CR_PASS;
	gm->counted = 1;
	err_clear(&e);
	rc = store_get(st, wkey, &w, &e);
	if (rc == RC_NOTFOUND) {
		memset(&w, 0, sizeof(w));
		w.first = now;
	} else if (rc != RC_OK)
		return store_failed(t, "auto-whitelist", &e);
	w.count++;
	w.last = now;
	w.expires = now + gc->expire;
	if (store_put(st, wkey, &w, &e) != RC_OK)
		return store_failed(t, "auto-whitelist", &e);
	if (w.count == gc->awl)
		log_conn(t->conn, LOG_INFO, "greylist: %s auto-whitelisted "
		    "after %u passes", wkey + 2, w.count);
	return CR_PASS;
}

static enum cr_status
grey_run(const void *conf, struct txn *t, enum stage stg)
{
	const struct grey_conf	*gc = conf;
	struct msg_ctx		*m = t->msg;
	struct store		*st;
	struct store_rec	 r;
	struct err		 e;
	char			 origin[128], wkey[160], key[KEY_LEN];
	char			*sender;
	uint64_t		 now;
	enum rc			 rc;

	(void)stg;
	if (t->rcpt == NULL || t->rcpt->addr.addr == NULL ||
	    !selected(gc, t) || cfg_store_disabled())
		return CR_SKIP;
	err_clear(&e);
	if ((st = cfg_store(t->conn->cfg, &e)) == NULL)
		return store_failed(t, "store", &e);

	if (gc->spf_domain && m->spf != NULL && strcmp(m->spf, "pass") == 0 &&
	    !m->from_null && !m->from_bad && *m->from.domain != '\0')
		(void)snprintf(origin, sizeof(origin), "spf:%.100s",
		    m->from.domain);
	else
		ipaddr_net_fmt(&t->conn->ip, gc->v4prefix, gc->v6prefix,
		    origin, sizeof(origin));
	(void)grey_key_white(wkey, sizeof(wkey), origin);
	now = store_now();

	/* a whitelisted origin (manual, or auto after enough passes) */
	rc = store_get(st, wkey, &r, &e);
	if (rc != RC_OK && rc != RC_NOTFOUND)
		return store_failed(t, "whitelist", &e);
	if (rc == RC_OK && (r.value == 1 || (gc->awl > 0 &&
	    r.count >= gc->awl))) {
		outcome(t, "whitelisted");
		if (r.value != 1 && r.last + WHITE_REFRESH <= now) {
			r.last = now;
			r.expires = now + gc->expire;
			if (store_put(st, wkey, &r, &e) != RC_OK)
				log_conn(t->conn, LOG_WARNING, "greylist: "
				    "refreshing %s: %s", origin, e.msg);
		}
		return CR_PASS;
	}

	sender = arena_alloc(m->arena, m->from_null || m->from_bad ? 3 :
	    strlen(m->from.addr) + 1);
	if (sender == NULL) {
		t->nomem = 1;
		return CR_ERROR;
	}
	if (m->from_null || m->from_bad)
		(void)strcpy(sender, "<>");
	else
		(void)grey_sender(m->from.addr, sender, strlen(m->from.addr) +
		    1);
	if (grey_key_triplet(key, sizeof(key), origin, sender,
	    t->rcpt->addr.addr) != 0) {
		outcome(t, "error");
		txn_error(t, "triplet too long");
		return CR_ERROR;
	}
	str_lower(key);		/* the recipient's local part too */
	rc = store_get(st, key, &r, &e);
	if (rc != RC_OK && rc != RC_NOTFOUND)
		return store_failed(t, "triplet", &e);
	if (rc == RC_NOTFOUND || (r.count == 0 &&
	    now > r.first + gc->retry_window)) {
		memset(&r, 0, sizeof(r));
		r.first = r.last = now;
		r.expires = now + gc->retry_window;
		if (gc->delay == 0)
			goto passed;
		if (store_put(st, key, &r, &e) != RC_OK)
			return store_failed(t, "triplet", &e);
		outcome(t, "new");
		return defer(t, gc->delay);
	}
	if (r.count == 0 && now < r.first + gc->delay) {
		outcome(t, "early");
		return defer(t, r.first + gc->delay - now);
	}
passed:
	r.count++;
	r.last = now;
	r.expires = now + gc->expire;
	if (store_put(st, key, &r, &e) != RC_OK)
		return store_failed(t, "triplet", &e);
	outcome(t, "passed");
	return count_pass(gc, t, st, wkey, now);
}

const struct check_ops check_greylist = {
	.name = "greylist",
	.group = "greylist",
	.stages = STAGE_BIT(STAGE_RCPT),
	.flags = CHECK_INBOUND | CHECK_STORE,
	.implemented = 1,
	.setup = grey_setup,
	.teardown = grey_teardown,
	.run = grey_run,
};

void
greylist_origin(const struct cfg *cfg, const struct ipaddr *ip, char *out,
    size_t outlen)
{
	const struct grey_conf	*gc = NULL;
	size_t			 i;

	for (i = 0; i < cfg->nchecks; i++)
		if (cfg->checks[i].ops == &check_greylist)
			gc = cfg->checks[i].conf;
	ipaddr_net_fmt(ip, gc != NULL ? gc->v4prefix : 24, gc != NULL ?
	    gc->v6prefix : 64, out, outlen);
}
