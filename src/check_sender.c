/*
 * check_sender.c - MAIL FROM address checks (group "sender").
 *
 * Scores an address with bad syntax (sender.invalid) and a domain that is
 * not fully qualified (sender.non_fqdn).  The null sender is never scored.
 * sender.unknown_domain needs the DNS layer and is applied by it.  Conf is
 * read-only after setup: thread-safe.
 */
#include <stdlib.h>

#include "cfg.h"
#include "ctx.h"

struct sender_conf {
	int32_t	 invalid, non_fqdn;
};

static void
sender_teardown(void *p)
{
	free(p);
}

static int
sender_setup(const struct cfg *cfg, const config_setting_t *g, void **conf,
    struct err *e)
{
	struct sender_conf	*sc;

	(void)cfg;
	sc = calloc(1, sizeof(*sc));
	if (sc == NULL) {
		err_set(e, "out of memory");
		return -1;
	}
	sc->invalid = cv_score(g, "sender.invalid");
	sc->non_fqdn = cv_score(g, "sender.non_fqdn");
	*conf = sc;
	return 0;
}

static enum cr_status
sender_run(const void *conf, struct txn *t, enum stage st)
{
	const struct sender_conf	*sc = conf;
	const struct msg_ctx		*m = t->msg;

	(void)st;
	if (m->from_null)
		return CR_PASS;
	if (m->from_bad) {
		txn_score(t, "invalid", sc->invalid);
		return CR_FAIL;
	}
	if (m->from.domain[0] != '[' && !hostname_is_fqdn(m->from.domain)) {
		txn_score(t, "non_fqdn", sc->non_fqdn);
		return CR_FAIL;
	}
	return CR_PASS;
}

const struct check_ops check_sender = {
	.name = "sender",
	.group = "sender",
	.stages = STAGE_BIT(STAGE_MAIL),
	.flags = CHECK_INBOUND,
	.implemented = 1,
	.setup = sender_setup,
	.teardown = sender_teardown,
	.run = sender_run,
};
