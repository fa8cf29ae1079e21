/*
 * check_lists.c - the whitelist and blacklist modules.
 *
 * whitelist (group "whitelist"): marks a connection (client network or
 * client name), a message (sender) or a recipient as exempt from inbound
 * checks and held refusals.  It runs first, and wins over the blacklist:
 * an entry there is an exception carved out of a blocked range.
 * blacklist (group "blacklist"): refuses a client, sender or recipient
 * (SPEC section 3 wording; client and sender refusals are held until RCPT).
 *
 * Entry syntax, matched case-insensitively:
 *   addresses: "user@example.org" exact; "example.org" or "@example.org"
 *              the domain; ".example.org" its subdomains; "user@" that
 *              local part in any domain.
 *   client names: "example.org" the name and its subdomains;
 *              ".example.org" subdomains only.
 * Conf is read-only after setup: thread-safe.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cfg.h"
#include "ctx.h"
#include "util.h"

struct lists_conf {
	struct cidr_list	 clients;
	struct strlist		 names, senders, rcpts;
};

static void
lower_all(struct strlist *l)
{
	size_t	 i;

	for (i = 0; i < l->n; i++)
		str_lower(l->v[i]);
}

static void
lists_teardown(void *p)
{
	struct lists_conf	*lc = p;

	if (lc == NULL)
		return;
	cidr_list_free(&lc->clients);
	strlist_free(&lc->names);
	strlist_free(&lc->senders);
	strlist_free(&lc->rcpts);
	free(lc);
}

static int
lists_setup(const config_setting_t *g, const char *grp, void **conf,
    struct err *e)
{
	struct lists_conf	*lc;
	char			 k[4][48];

	(void)snprintf(k[0], sizeof(k[0]), "%s.clients", grp);
	(void)snprintf(k[1], sizeof(k[1]), "%s.client_names", grp);
	(void)snprintf(k[2], sizeof(k[2]), "%s.senders", grp);
	(void)snprintf(k[3], sizeof(k[3]), "%s.recipients", grp);
	lc = calloc(1, sizeof(*lc));
	if (lc == NULL) {
		err_set(e, "out of memory");
		return -1;
	}
	if (cv_cidrs(g, k[0], &lc->clients, e) != RC_OK ||
	    cv_strlist(g, k[1], &lc->names, e) != RC_OK ||
	    cv_strlist(g, k[2], &lc->senders, e) != RC_OK ||
	    cv_strlist(g, k[3], &lc->rcpts, e) != RC_OK) {
		lists_teardown(lc);
		return -1;
	}
	lower_all(&lc->names);
	lower_all(&lc->senders);
	lower_all(&lc->rcpts);
	*conf = lc;
	return 0;
}

static int
whitelist_setup(const struct cfg *cfg, const config_setting_t *g,
    void **conf, struct err *e)
{
	(void)cfg;
	return lists_setup(g, "whitelist", conf, e);
}

static int
blacklist_setup(const struct cfg *cfg, const config_setting_t *g,
    void **conf, struct err *e)
{
	(void)cfg;
	return lists_setup(g, "blacklist", conf, e);
}

/* Does the domain d match entry pattern p (without '@')? */
static int
domain_match(const char *p, const char *d)
{
	if (p[0] == '.')
		return str_iendswith(d, p);
	return str_ieq(p, d);
}

int	lists_addr_match(const struct strlist *, const struct mailaddr *);
int	lists_name_match(const struct strlist *, const char *);

int
lists_addr_match(const struct strlist *l, const struct mailaddr *a)
{
	size_t	 i;

	if (a->addr == NULL || a->domain == NULL || *a->domain == '\0')
		return 0;
	for (i = 0; i < l->n; i++) {
		const char	*p = l->v[i];
		const char	*at = strchr(p, '@');
		size_t		 ll;

		if (at == NULL) {
			if (domain_match(p, a->domain))
				return 1;
		} else if (at == p) {
			if (domain_match(p + 1, a->domain))
				return 1;
		} else if (at[1] == '\0') {
			ll = (size_t)(at - p);
			if (strlen(a->local) == ll &&
			    strncasecmp(p, a->local, ll) == 0)
				return 1;
		} else if (str_ieq(p, a->addr))
			return 1;
	}
	return 0;
}

int
lists_name_match(const struct strlist *l, const char *name)
{
	size_t	 i, ln, lp;

	if (name == NULL)
		return 0;
	ln = strlen(name);
	for (i = 0; i < l->n; i++) {
		const char	*p = l->v[i];

		if (p[0] == '.') {
			if (str_iendswith(name, p))
				return 1;
			continue;
		}
		lp = strlen(p);
		if (str_ieq(name, p))
			return 1;
		if (ln > lp && name[ln - lp - 1] == '.' &&
		    str_iendswith(name, p))
			return 1;
	}
	return 0;
}

enum hit {
	HIT_NONE,
	HIT_CLIENT,
	HIT_SENDER,
	HIT_RCPT
};

/* Which list entry, if any, this stage of the transaction matches. */
static enum hit
lists_hit(const struct lists_conf *lc, const struct txn *t, enum stage st)
{
	const struct conn_ctx	*c = t->conn;

	switch (st) {
	case STAGE_CONNECT:
		if ((c->has_ip && cidr_list_match(&lc->clients, &c->ip)) ||
		    lists_name_match(&lc->names, c->client_name))
			return HIT_CLIENT;
		return HIT_NONE;
	case STAGE_MAIL:
		if (!t->msg->from_bad && lists_addr_match(&lc->senders,
		    &t->msg->from))
			return HIT_SENDER;
		return HIT_NONE;
	case STAGE_RCPT:
		if (lists_addr_match(&lc->rcpts, &t->rcpt->addr))
			return HIT_RCPT;
		return HIT_NONE;
	case STAGE_HELO:
	case STAGE_HEADER:
	case STAGE_EOH:
	case STAGE_BODY:
	case STAGE_EOM:
	case STAGE_MAX:
		break;
	}
	return HIT_NONE;
}

static enum cr_status
whitelist_run(const void *conf, struct txn *t, enum stage st)
{
	switch (lists_hit(conf, t, st)) {
	case HIT_NONE:
		return CR_PASS;
	case HIT_CLIENT:
		t->conn->whitelisted = 1;
		break;
	case HIT_SENDER:
		t->msg->whitelisted = 1;
		break;
	case HIT_RCPT:
		t->rcpt->whitelisted = 1;
		break;
	}
	return CR_FAIL;
}

static enum cr_status
blacklist_run(const void *conf, struct txn *t, enum stage st)
{
	struct arena	*ar = t->msg != NULL ? t->msg->arena : t->conn->arena;
	const char	*text = NULL, *code = "550", *what = "";

	switch (lists_hit(conf, t, st)) {
	case HIT_NONE:
		return CR_PASS;
	case HIT_CLIENT:
		what = "client";
		code = "554";
		text = arena_printf(ar, "Service unavailable; client [%s] "
		    "blocked by local policy", t->conn->client_addr);
		break;
	case HIT_SENDER:
		what = "sender";
		text = arena_printf(ar, "<%s>: Sender address rejected: Access "
		    "denied", t->msg->from.addr);
		break;
	case HIT_RCPT:
		what = "recipient";
		text = arena_printf(ar, "<%s>: Recipient address rejected: "
		    "Access denied", t->rcpt->addr.addr);
		break;
	}
	if (text == NULL)
		t->nomem = 1;
	txn_score(t, what, 0);
	txn_verdict(t, ACT_REJECT, code, "5.7.1", text);
	return CR_FAIL;
}

const struct check_ops check_whitelist = {
	.name = "whitelist",
	.group = "whitelist",
	.stages = STAGE_BIT(STAGE_CONNECT) | STAGE_BIT(STAGE_MAIL) |
	    STAGE_BIT(STAGE_RCPT),
	.flags = 0,
	.implemented = 1,
	.setup = whitelist_setup,
	.teardown = lists_teardown,
	.run = whitelist_run,
};

const struct check_ops check_blacklist = {
	.name = "blacklist",
	.group = "blacklist",
	.stages = STAGE_BIT(STAGE_CONNECT) | STAGE_BIT(STAGE_MAIL) |
	    STAGE_BIT(STAGE_RCPT),
	.flags = CHECK_INBOUND,
	.implemented = 1,
	.setup = blacklist_setup,
	.teardown = lists_teardown,
	.run = blacklist_run,
};
