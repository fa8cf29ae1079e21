/*
 * check_spam.c - the "spam" module: amavisd-new's spam levels on the
 * final score (the envelope checks' points plus the content's), at the
 * end of the message (SPEC section 2).
 *
 *   score >= tag_level   X-Spam-Status, X-Spam-Score, X-Spam-Level,
 *                        X-Spam-Report are added
 *   score >= tag2_level  X-Spam-Flag: YES, the Subject gets subject_tag,
 *                        X-Spam-Status says Yes
 *   score >= kill_level  kill_action: reject (550 5.7.1), discard,
 *                        quarantine, or tag only
 *
 * X-Spam-* fields that come with the message are removed (strip_headers)
 * from all mail: only portero's own reach a mailbox.  The levels apply to
 * inbound mail only (outbound and whitelisted mail has no spam score).  When this module is on, it is the
 * end-of-message score decision: thresholds.reject then applies only
 * before DATA.  Conf is read-only after setup: thread-safe.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "ctx.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

#define MAX_STARS	50

struct sp_conf {
	int32_t		 tag, tag2, kill;	/* hundredths */
	char		*subject_tag;
	enum action	 kill_action;		/* ACT_ACCEPT: tag only */
	int		 strip;
};

/* Fields seen in the header, kept in the message state. */
struct sp_seen {
	struct sp_seen	*next;
	const char	*name;
	unsigned	 n;
};

struct sp_msg {
	struct sp_seen	*seen;
	const char	*subject;	/* first Subject field, or NULL */
};

static void
sp_teardown(void *p)
{
	struct sp_conf	*sc = p;

	if (sc == NULL)
		return;
	free(sc->subject_tag);
	free(sc);
}

static int
sp_setup(const struct cfg *cfg, const config_setting_t *g, void **conf,
    struct err *e)
{
	struct sp_conf	*sc;
	const char	*ka;

	(void)cfg;
	if ((sc = calloc(1, sizeof(*sc))) == NULL ||
	    (sc->subject_tag = strdup(cv_string(g, "spam.subject_tag"))) ==
	    NULL) {
		free(sc);
		err_set(e, "out of memory");
		return -1;
	}
	*conf = sc;
	sc->tag = cv_score(g, "spam.tag_level");
	sc->tag2 = cv_score(g, "spam.tag2_level");
	sc->kill = cv_score(g, "spam.kill_level");
	sc->strip = cv_bool(g, "spam.strip_headers");
	ka = cv_string(g, "spam.kill_action");
	sc->kill_action = strcmp(ka, "discard") == 0 ? ACT_DISCARD :
	    strcmp(ka, "quarantine") == 0 ? ACT_QUARANTINE :
	    strcmp(ka, "tag") == 0 ? ACT_ACCEPT : ACT_REJECT;
	if (sc->tag2 < sc->tag || sc->kill < sc->tag2)
		log_msg(LOG_WARNING, "%s: spam levels are not in order "
		    "(tag_level <= tag2_level <= kill_level); each still "
		    "applies on its own", cfg->path);
	return 0;
}

static struct sp_msg *
msg_of(struct txn *t)
{
	struct sp_msg	*sm = txn_msg_state(t);

	if (sm == NULL) {
		if ((sm = arena_calloc(t->msg->arena, 1, sizeof(*sm))) == NULL)
			t->nomem = 1;
		else
			txn_msg_state_set(t, sm);
	}
	return sm;
}

/* Counts the field's instance; removes sender-made X-Spam-* fields. */
static enum cr_status
header(const struct sp_conf *sc, struct txn *t)
{
	struct sp_msg	*sm;
	struct sp_seen	*s;
	const char	*name = t->hdr_name;
	int		 spam = strncasecmp(name, "X-Spam-", 7) == 0;

	if (!spam && (!str_ieq(name, "Subject") ||
	    ((sm = txn_msg_state(t)) != NULL && sm->subject != NULL)))
		return CR_PASS;
	if ((sm = msg_of(t)) == NULL)
		return CR_ERROR;
	if (!spam) {
		if ((sm->subject = arena_strdup(t->msg->arena,
		    t->hdr_value)) == NULL) {
			t->nomem = 1;
			return CR_ERROR;
		}
		return CR_PASS;
	}
	if (!sc->strip || t->check->dry_run)
		return CR_PASS;
	for (s = sm->seen; s != NULL && !str_ieq(s->name, name); s = s->next)
		;
	if (s == NULL) {
		if ((s = arena_calloc(t->msg->arena, 1, sizeof(*s))) == NULL ||
		    (s->name = arena_strdup(t->msg->arena, name)) == NULL) {
			t->nomem = 1;
			return CR_ERROR;
		}
		s->next = sm->seen;
		sm->seen = s;
	}
	txn_header_remove(t, name, ++s->n);
	return CR_PASS;
}

/* "2.50", "-1.00": hundredths as amavisd-new prints scores. */
static void
fmt_score(int32_t v, char *b, size_t len)
{
	int64_t	 a = v < 0 ? -(int64_t)v : v;

	(void)snprintf(b, len, "%s%lld.%02lld", v < 0 ? "-" : "",
	    (long long)(a / 100), (long long)(a % 100));
}

/* A reason as a test name: "dnsbl:zen.example" with only characters a
 * header and a comma-separated list can carry. */
static enum rc
put_test(struct buf *b, const struct reason *r)
{
	const char	*p;
	enum rc		 rc = buf_puts(b, r->check);

	if (rc == RC_OK && r->detail != NULL && *r->detail != '\0')
		rc = buf_putc(b, ':');
	for (p = r->detail; rc == RC_OK && p != NULL && *p != '\0' &&
	    p - r->detail < 64; p++)
		rc = buf_putc(b, *p > ' ' && *p < 0x7f && *p != ',' ?
		    *p : '_');
	return rc;
}

/* tests=... for X-Spam-Status and the lines of X-Spam-Report. */
static enum rc
tests(const struct txn *t, struct buf *list, struct buf *report)
{
	const struct reason	*lists[2] = { t->conn->reasons,
	    t->msg->reasons };
	const struct reason	*r;
	char			 sc[24];
	enum rc			 rc = RC_OK;
	int			 i, first = 1;

	for (i = 0; i < 2; i++)
		for (r = lists[i]; r != NULL && rc == RC_OK; r = r->next) {
			if (r->dry)
				continue;
			if (!first)
				rc = buf_putc(list, ',');
			if (rc == RC_OK)
				rc = put_test(list, r);
			fmt_score(r->points, sc, sizeof(sc));
			if (rc == RC_OK)
				rc = buf_printf(report, "%s*%6s ",
				    first ? "\n\t" : "\n\t", sc);
			if (rc == RC_OK)
				rc = put_test(report, r);
			first = 0;
		}
	if (rc == RC_OK && first)
		rc = buf_puts(list, "none");
	return rc;
}

static enum cr_status
tag(const struct sp_conf *sc, struct txn *t, int32_t score, int spam)
{
	struct buf	 list, report, b;
	struct sp_msg	*sm = txn_msg_state(t);
	char		 s[24], req[24], stars[MAX_STARS + 1];
	int		 n;
	enum rc		 rc;

	fmt_score(score, s, sizeof(s));
	fmt_score(sc->tag2, req, sizeof(req));
	buf_init(&list, 8192);
	buf_init(&report, 16384);
	buf_init(&b, 16384);
	rc = tests(t, &list, &report);
	if (rc != RC_OK) {
		/* an endless list is cut, not an error */
		buf_mark_cut(&list, "...");
		buf_mark_cut(&report, "\n\t...");
	}
	rc = buf_printf(&b, "%s, score=%s required=%s tests=%s",
	    spam ? "Yes" : "No", s, req, buf_str(&list));
	if (rc == RC_OK)
		txn_header_add(t, "X-Spam-Status", buf_str(&b));
	txn_header_add(t, "X-Spam-Score", s);
	n = score <= 0 ? 0 : score / 100 > MAX_STARS ? MAX_STARS :
	    (int)(score / 100);
	memset(stars, '*', (size_t)n);
	stars[n] = '\0';
	txn_header_add(t, "X-Spam-Level", stars);
	buf_reset(&b);
	if (buf_printf(&b, "score=%s required=%s%s", s, req,
	    buf_str(&report)) == RC_OK)
		txn_header_add(t, "X-Spam-Report", buf_str(&b));
	if (spam) {
		txn_header_add(t, "X-Spam-Flag", "YES");
		buf_reset(&b);
		if (*sc->subject_tag != '\0' && buf_printf(&b, "%s%s",
		    sc->subject_tag, sm != NULL && sm->subject != NULL ?
		    sm->subject : "") == RC_OK) {
			if (sm != NULL && sm->subject != NULL)
				txn_header_change(t, "Subject", 1,
				    buf_str(&b));
			else
				txn_header_add(t, "Subject", buf_str(&b));
		}
	}
	buf_free(&list);
	buf_free(&report);
	buf_free(&b);
	return t->nomem ? CR_ERROR : CR_PASS;
}

/* Outbound, whitelisted (client, sender, or every recipient) mail has
 * no spam score: the levels do not apply. */
static int
exempt(const struct txn *t)
{
	return t->conn->outbound || t->conn->whitelisted ||
	    t->msg->whitelisted || (t->rcpt != NULL && t->rcpt->whitelisted);
}

static enum cr_status
sp_run(const void *conf, struct txn *t, enum stage st)
{
	const struct sp_conf	*sc = conf;
	int32_t			 score;
	enum cr_status		 rs;

	if (st == STAGE_HEADER)
		return header(sc, t);
	if (exempt(t))
		return CR_SKIP;
	score = txn_score_total(t);
	if (score < sc->tag)
		return CR_PASS;
	if (t->check->dry_run)
		rs = CR_PASS;		/* the headers would lie */
	else
		rs = tag(sc, t, score, score >= sc->tag2);
	if (rs == CR_ERROR)
		return rs;
	metrics_inc(M.spam, score >= sc->kill ? "kill" : score >= sc->tag2 ?
	    "tag2" : "tag", 1);
	if (score < sc->kill || sc->kill_action == ACT_ACCEPT)
		return score >= sc->tag2 ? CR_FAIL : CR_PASS;
	if (sc->kill_action == ACT_REJECT)
		txn_verdict(t, ACT_REJECT, "550", "5.7.1",
		    "Message rejected as spam");
	else
		txn_verdict(t, sc->kill_action, NULL, NULL,
		    "Message classified as spam");
	return CR_FAIL;
}

const struct check_ops check_spam = {
	.name = "spam",
	.group = "spam",
	.stages = STAGE_BIT(STAGE_HEADER) | STAGE_BIT(STAGE_EOM),
	.quiet_stages = STAGE_BIT(STAGE_HEADER),
	.implemented = 1,
	.setup = sp_setup,
	.teardown = sp_teardown,
	.run = sp_run,
};
