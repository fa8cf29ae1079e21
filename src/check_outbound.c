/*
 * check_outbound.c - trace header cleanup of outbound mail (group
 * "outbound").
 *
 * For mail from internal or authenticated clients, every header field
 * whose name is listed in outbound.strip_headers is removed (milter
 * chgheader, at end of message, before the DKIM signature is made over
 * the result): Received (all of them: on outbound mail they name the
 * internal hosts), X-Originating-IP, X-Mailer, X-PHP-Originating-Script
 * by default.  An entry is a header name (case-insensitive) or "/ERE/"
 * (POSIX extended regex on the name, case-insensitive).  Inbound mail is
 * never touched.  Conf is read-only after setup: thread-safe.
 */
#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "ctx.h"
#include "outbound.h"
#include "util.h"

struct strip {
	char	*name;		/* NULL for a regex */
	regex_t	 re;
	int	 has_re;
};

struct ob_conf {
	struct strip	*v;
	size_t		 n;
};

/* Per message: instances seen of each stripped name. */
struct ob_seen {
	struct ob_seen	*next;
	const char	*name;
	unsigned	 n;
};

void
outbound_free(void *p)
{
	struct ob_conf	*oc = p;
	size_t		 i;

	if (oc == NULL)
		return;
	for (i = 0; i < oc->n; i++) {
		free(oc->v[i].name);
		if (oc->v[i].has_re)
			regfree(&oc->v[i].re);
	}
	free(oc->v);
	free(oc);
}

/* One strip_headers entry: "/ERE/" or a header name. */
static int
strip_init(struct strip *sp, const char *entry, struct err *e)
{
	size_t	 len = strlen(entry);
	char	*pat, msg[128];
	int	 rc;

	if (len >= 2 && entry[0] == '/' && entry[len - 1] == '/') {
		if ((pat = strndup(entry + 1, len - 2)) == NULL) {
			err_set(e, "out of memory");
			return -1;
		}
		if (ere_bounded(pat, e) != 0) {
			err_prefix(e, "'%.60s'", entry);
			free(pat);
			return -1;
		}
		rc = regcomp(&sp->re, pat, REG_EXTENDED | REG_ICASE |
		    REG_NOSUB);
		free(pat);
		if (rc != 0) {
			(void)regerror(rc, &sp->re, msg, sizeof(msg));
			err_set(e, "'%s': %s", entry, msg);
			return -1;
		}
		sp->has_re = 1;
		return 0;
	}
	if (len == 0 || strpbrk(entry, ": \t\r\n") != NULL) {
		err_set(e, "'%s' is not a header name or /regex/", entry);
		return -1;
	}
	if ((sp->name = strdup(entry)) == NULL) {
		err_set(e, "out of memory");
		return -1;
	}
	return 0;
}

void *
outbound_compile(char *const *entries, size_t n, struct err *e)
{
	struct ob_conf	*oc;
	size_t		 i;

	if ((oc = calloc(1, sizeof(*oc))) == NULL ||
	    (n > 0 && (oc->v = calloc(n, sizeof(*oc->v))) == NULL)) {
		free(oc);
		err_set(e, "out of memory");
		return NULL;
	}
	for (i = 0; i < n; i++) {
		if (strip_init(&oc->v[i], entries[i], e) != 0) {
			err_prefix(e, "setting 'outbound.strip_headers[%zu]'",
			    i);
			outbound_free(oc);
			return NULL;
		}
		oc->n++;
	}
	return oc;
}

static int
ob_setup(const struct cfg *cfg, const config_setting_t *g, void **conf,
    struct err *e)
{
	struct strlist	 l;

	(void)cfg;
	if (cv_strlist(g, "outbound.strip_headers", &l, e) != RC_OK)
		return -1;
	*conf = outbound_compile(l.v, l.n, e);
	strlist_free(&l);
	return *conf != NULL ? 0 : -1;
}

int
outbound_strip_match(const void *conf, const char *name)
{
	const struct ob_conf	*oc = conf;
	size_t			 i;

	for (i = 0; i < oc->n; i++) {
		if (oc->v[i].name != NULL && str_ieq(oc->v[i].name, name))
			return 1;
		if (oc->v[i].has_re && regexec(&oc->v[i].re, name, 0, NULL,
		    0) == 0)
			return 1;
	}
	return 0;
}

static enum cr_status
ob_run(const void *conf, struct txn *t, enum stage st)
{
	struct ob_seen	*s, **head;

	(void)st;
	if (t->hdr_name == NULL || !outbound_strip_match(conf, t->hdr_name))
		return CR_PASS;
	if (t->check->dry_run)
		return CR_PASS;		/* nothing removed in shadow mode */
	/* the instance number among fields of this name */
	head = (struct ob_seen **)&t->msg->state[t->idx];
	for (s = *head; s != NULL && !str_ieq(s->name, t->hdr_name);
	    s = s->next)
		;
	if (s == NULL) {
		if ((s = arena_calloc(t->msg->arena, 1, sizeof(*s))) == NULL ||
		    (s->name = arena_strdup(t->msg->arena, t->hdr_name)) ==
		    NULL) {
			t->nomem = 1;
			return CR_ERROR;
		}
		s->next = *head;
		*head = s;
	}
	s->n++;
	txn_header_remove(t, t->hdr_name, s->n);
	return CR_FAIL;
}

const struct check_ops check_outbound = {
	.name = "outbound",
	.group = "outbound",
	.stages = STAGE_BIT(STAGE_HEADER),
	.quiet_stages = STAGE_BIT(STAGE_HEADER),
	.flags = CHECK_OUTBOUND,
	.implemented = 1,
	.setup = ob_setup,
	.teardown = outbound_free,
	.run = ob_run,
};
