/*
 * check_content.c - the "content" module (SPEC section 2, DATA stage):
 * Postfix-style header_checks, mime_header_checks, nested_header_checks
 * and body_checks tables (ruletable.h), blocked attachment extensions
 * and the GTUBE test string, on the message the pipeline keeps in
 * msg->spool, walked once with mime.h at the end of the message.
 *
 * Like Postfix's own tables, it applies to all mail, outbound included
 * (sites use header_checks IGNORE to clean outbound headers).  The first
 * REJECT, DEFER, 4NN/5NN or DISCARD ends the walk; HOLD is remembered
 * and the walk goes on (a later refusal wins); WARN and INFO log; SCORE
 * adds spam points; IGNORE/REPLACE/PREPEND edit top-level header fields
 * (a milter cannot edit MIME part headers or body lines: there they only
 * log).  A rule match that hits a PCRE2 limit is an error: the module's
 * on_error applies (tempfail by default), never "no match".  Body lines
 * are kept and looked up together (one prefilter scan for them all),
 * before the next header field and at the end, so rules still apply in
 * message order.
 *
 * The tables are compiled once per config snapshot and read-only; each
 * message has its own match scratch.  Thread-safe.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cfg.h"
#include "ctx.h"
#include "log.h"
#include "metrics.h"
#include "mime.h"
#include "ruletable.h"
#include "spool.h"
#include "util.h"

/* The GTUBE string (SpamAssassin's test pattern), as mail carries it. */
static const char gtube[] =
    "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X";
#define GTUBE_POINTS	100000		/* 1000.00 */
/* All rule lookups of one message together: beyond, an error (on_error).
 * Normal mail takes milliseconds; this bounds what crafted mail can cost
 * a worker, well under Postfix's milter_content_timeout (300 s). */
#define RULES_MS	10000
/* Body lines looked up together (bytes, with a '\n' each). */
#define BODY_BATCH	(256 * 1024)

enum table_id { T_HEADER, T_MIME, T_NESTED, T_BODY, T_MAX };

static const char *const table_keys[T_MAX] = { "header_checks",
    "mime_header_checks", "nested_header_checks", "body_checks" };

struct ct_conf {
	struct ruletable	*tab[T_MAX];	/* NULL: none */
	int			 fallback[T_MAX]; /* not set: header_checks */
	struct strlist		 exts;
	int			 gtube;
	struct mime_limits	 lim;
	enum action		 limit_action;
	size_t			 body_limit;	/* body_checks per segment */
};

/* Top-level header fields, kept at STAGE_HEADER in the message state. */
struct ct_hdr {
	struct ct_hdr	*next;
	const char	*name, *value;
	unsigned	 idx;		/* instance among fields of name */
};

struct ct_msg {
	struct ct_hdr	*hdrs, **tail;
};

/* One walk at the end of the message. */
struct walk {
	const struct ct_conf	*cc;
	struct txn		*t;
	struct rule_scratch	*scr[T_MAX];
	struct buf		 text;		/* rule action text */
	struct buf		 line;		/* "Name: value" */
	struct rule_batch	 body;		/* body lines not looked up yet */
	int			 body_rc;	/* what stopped the batch */
	size_t			 body_seen;	/* body_checks bytes in segment */
	int			 hold;		/* a HOLD rule matched */
	const char		*hold_text;
	int			 failed;	/* CR_ERROR: t->error says why */
	int			 gtube;
};

#define WALK_STOP	1	/* a final verdict was set */
#define WALK_ERROR	2

static void
ct_teardown(void *p)
{
	struct ct_conf	*cc = p;
	int		 i;

	if (cc == NULL)
		return;
	for (i = 0; i < T_MAX; i++)
		ruletable_free(cc->tab[i]);
	strlist_free(&cc->exts);
	free(cc);
}

/* "regexp:PATH", "pcre:PATH", or a bare PATH (read as pcre:).  Errors
 * name the config file and line of the setting. */
static struct ruletable *
load_table(const struct cfg *cfg, const config_setting_t *g,
    const char *key, const char *spec, const struct rule_limits *lim,
    struct err *e)
{
	const config_setting_t	*s = config_setting_get_member(g,
				    strchr(key, '.') + 1);
	enum rule_syntax	 syn = RULE_PCRE;
	struct ruletable	*rt;
	int			 line = s != NULL ?
				    config_setting_source_line(s) : 0;

	if (strncmp(spec, "regexp:", 7) == 0) {
		syn = RULE_REGEXP;
		spec += 7;
	} else if (strncmp(spec, "pcre:", 5) == 0)
		spec += 5;
	if (access(spec, R_OK) != 0) {
		err_set(e, "%s:%d: setting '%s': cannot read '%s': %s",
		    cfg->path, line, key, spec, strerror(errno));
		return NULL;
	}
	if ((rt = ruletable_load(spec, syn, lim, e)) == NULL)
		err_prefix(e, "%s:%d: setting '%s'", cfg->path, line, key);
	return rt;
}

static enum action
limit_action(const char *s)
{
	if (strcmp(s, "tempfail") == 0)
		return ACT_TEMPFAIL;
	if (strcmp(s, "accept") == 0)
		return ACT_ACCEPT;
	if (strcmp(s, "quarantine") == 0)
		return ACT_QUARANTINE;
	return ACT_REJECT;
}

static int
ct_setup(const struct cfg *cfg, const config_setting_t *g, void **conf,
    struct err *e)
{
	struct ct_conf		*cc;
	struct rule_limits	 rl;
	const char		*spec;
	char			 key[64];
	int			 i;

	if ((cc = calloc(1, sizeof(*cc))) == NULL) {
		err_set(e, "out of memory");
		return -1;
	}
	*conf = cc;
	mime_init();
	rule_limits_default(&rl);
	rl.match_limit = (uint32_t)cv_int(g, "content.match_limit");
	rl.no_prefilter = !cv_bool(g, "content.prefilter");
	for (i = 0; i < T_MAX; i++) {
		(void)snprintf(key, sizeof(key), "content.%s", table_keys[i]);
		spec = cv_string(g, key);
		/* like Postfix, the MIME and nested header tables default
		 * to header_checks; set them to "" to have none */
		if ((i == T_MIME || i == T_NESTED) && (g == NULL ||
		    config_setting_get_member(g, table_keys[i]) == NULL)) {
			cc->fallback[i] = 1;
			continue;
		}
		if (*spec == '\0')
			continue;
		rl.batch = i == T_BODY;
		if ((cc->tab[i] = load_table(cfg, g, key, spec, &rl, e)) ==
		    NULL)
			return -1;
		log_msg(LOG_INFO, "%s: %zu rules, %zu patterns in the "
		    "prefilter", ruletable_name(cc->tab[i]),
		    ruletable_count(cc->tab[i]),
		    ruletable_prefiltered(cc->tab[i]));
		if (*ruletable_warnings(cc->tab[i]) != '\0')
			log_msg(LOG_WARNING, "%s", ruletable_warnings(
			    cc->tab[i]));
	}
	if (cv_strlist(g, "content.blocked_extensions", &cc->exts, e) !=
	    RC_OK)
		return -1;
	for (i = 0; (size_t)i < cc->exts.n; i++)
		if (cc->exts.v[i][0] == '.')	/* tolerate ".exe" */
			memmove(cc->exts.v[i], cc->exts.v[i] + 1,
			    strlen(cc->exts.v[i]));
	cc->gtube = cv_bool(g, "content.gtube");
	mime_limits_default(&cc->lim);
	cc->lim.max_depth = (unsigned)cv_int(g, "content.mime_max_depth");
	cc->lim.max_parts = (unsigned)cv_int(g, "content.mime_max_parts");
	cc->limit_action = limit_action(cv_string(g,
	    "content.mime_limit_action"));
	cc->body_limit = (size_t)cv_size(g, "content.body_checks_size_limit");
	return 0;
}

/* The table for a header kind: part and nested tables fall back to
 * header_checks when not set (Postfix's defaults). */
static int
table_for(const struct ct_conf *cc, enum mime_hdr_kind k)
{
	int	 i = k == MIME_HDR_PART ? T_MIME : k == MIME_HDR_NESTED ?
		    T_NESTED : T_HEADER;

	return cc->fallback[i] ? T_HEADER : i;
}

/* An arena copy; "" (and nomem set) when memory ran out. */
static const char *
copy(struct walk *w, const char *s)
{
	const char	*p = arena_strdup(w->t->msg->arena, s);

	if (p == NULL)
		w->t->nomem = 1;
	return p != NULL ? p : "";
}

/* "body_checks:12": the rule, for reasons and the log. */
static const char *
where(struct walk *w, int tab, unsigned line)
{
	char	 b[96];

	(void)snprintf(b, sizeof(b), "%s:%u", table_keys[tab], line);
	return copy(w, b);
}

/* "Name: value" of PREPEND/REPLACE text, or -1. */
static int
split_field(struct walk *w, const char *text, const char **name,
    const char **value)
{
	const char	*colon = strchr(text, ':');
	char		*n;

	if (colon == NULL || colon == text)
		return -1;
	if ((n = arena_strndup(w->t->msg->arena, text,
	    (size_t)(colon - text))) == NULL) {
		w->t->nomem = 1;
		return -1;
	}
	*name = n;
	colon++;
	while (*colon == ' ' || *colon == '\t')
		colon++;
	*value = colon;
	return 0;
}

/* Final verdicts of a rule; returns WALK_STOP when one was set. */
static int
rule_verdict(struct walk *w, int tab, const struct rule_result *r)
{
	struct txn	*t = w->t;
	const char	*text = *r->text != '\0' ? copy(w, r->text) : NULL;
	const char	*code, *dsn;

	switch (r->action) {
	case RA_REJECT:
		txn_verdict(t, ACT_REJECT, "550", "5.7.1", text != NULL ?
		    text : "Message content rejected");
		break;
	case RA_DEFER:
		txn_verdict(t, ACT_TEMPFAIL, "450", "4.7.1", text != NULL ?
		    text : "Message content deferred");
		break;
	case RA_CODE:
		code = copy(w, r->code);
		dsn = *r->dsn != '\0' ? copy(w, r->dsn) :
		    r->code[0] == '4' ? "4.7.1" : "5.7.1";
		txn_verdict(t, r->code[0] == '4' ? ACT_TEMPFAIL : ACT_REJECT,
		    code, dsn, text != NULL ? text : "Message content rejected");
		break;
	case RA_DISCARD:
		txn_verdict(t, ACT_DISCARD, NULL, NULL, text != NULL ? text :
		    "Message content discarded");
		break;
	default:
		return 0;
	}
	t->msg->content = where(w, tab, r->line);
	metrics_inc(M.content, rule_action_name(r->action), 1);
	return WALK_STOP;
}

/* A lookup that failed (a limit, memory): on_error applies. */
static int
lookup_failed(struct walk *w, int tab, const struct err *e)
{
	metrics_inc(M.rule_errors, table_keys[tab], 1);
	txn_error(w->t, copy(w, e->msg));
	w->failed = 1;
	return WALK_ERROR;
}

/*
 * Acts on the rule that matched input s.  hdr: the top-level field the
 * input is (IGNORE/REPLACE/PREPEND edit it), or NULL.
 */
static int
act(struct walk *w, int tab, const char *s, size_t len,
    const struct ct_hdr *hdr, const struct rule_result *rp)
{
	struct txn		*t = w->t;
	const struct rule_result r = *rp;
	const char		*name, *value;

	if (rule_verdict(w, tab, &r) != 0)
		return WALK_STOP;
	switch (r.action) {
	case RA_HOLD:
		if (!w->hold) {
			w->hold = 1;
			w->hold_text = *r.text != '\0' ? copy(w, r.text) :
			    "Message held for review";
			t->msg->content = where(w, tab, r.line);
		}
		break;
	case RA_WARN:
	case RA_INFO:
		log_conn(t->conn, LOG_INFO, "content: %s: %s %s: %.*s%s%s",
		    where(w, tab, r.line), r.action == RA_WARN ? "warning" :
		    "info", table_keys[tab], (int)(len > 200 ? 200 : len), s,
		    *r.text != '\0' ? ": " : "", r.text);
		break;
	case RA_SCORE:
		txn_score(t, where(w, tab, r.line), r.score);
		break;
	case RA_IGNORE:
		if (hdr != NULL && !t->check->dry_run)
			txn_header_remove(t, hdr->name, hdr->idx);
		break;
	case RA_REPLACE:
		if (hdr != NULL && !t->check->dry_run &&
		    split_field(w, copy(w, r.text), &name, &value) == 0) {
			txn_header_remove(t, hdr->name, hdr->idx);
			txn_header_add(t, name, value);
		}
		break;
	case RA_PREPEND:
		if (hdr != NULL && !t->check->dry_run &&
		    split_field(w, copy(w, r.text), &name, &value) == 0)
			txn_header_insert(t, name, value);
		break;
	default:
		return 0;	/* DUNNO, OK, unsupported */
	}
	if (r.action != RA_DUNNO && r.action != RA_OK)
		metrics_inc(M.content, rule_action_name(r.action), 1);
	if ((r.action == RA_IGNORE || r.action == RA_REPLACE ||
	    r.action == RA_PREPEND) && hdr == NULL)
		log_conn(t->conn, LOG_DEBUG, "content: %s: %s applies to "
		    "top-level header fields only", where(w, tab, r.line),
		    rule_action_name(r.action));
	return t->nomem ? WALK_ERROR : 0;
}

/* Looks one input up in a table and acts (see act()). */
static int
apply(struct walk *w, int tab, const char *s, size_t len,
    const struct ct_hdr *hdr)
{
	const struct ruletable	*rt = w->cc->tab[tab];
	struct rule_result	 r;
	struct err		 e;
	int			 m;

	if (rt == NULL)
		return 0;
	err_clear(&e);
	m = ruletable_match(rt, w->scr[tab], s, len, &r, &w->text, &e);
	if (m < 0)
		return lookup_failed(w, tab, &e);
	return m == 0 ? 0 : act(w, tab, s, len, hdr, &r);
}

static int
on_batch_match(void *arg, size_t i, const char *s, size_t len,
    const struct rule_result *r)
{
	struct walk	*w = arg;

	(void)i;
	w->body_rc = act(w, T_BODY, s, len, NULL, r);
	return w->body_rc;
}

/*
 * body_checks on the body lines kept so far, in order: one prefilter
 * scan for all of them (ruletable_match_batch()).  Before anything else
 * that may decide, so that the first rule to decide is the first in the
 * message: at each part or nested header field (a part's attachment
 * name comes after its fields) and at the end of the walk.
 */
static int
flush_body(struct walk *w)
{
	struct err	 e;
	int		 rc;

	if (w->body.n == 0)
		return 0;
	err_clear(&e);
	w->body_rc = 0;
	rc = ruletable_match_batch(w->cc->tab[T_BODY], w->scr[T_BODY],
	    &w->body, &w->text, on_batch_match, w, &e);
	rule_batch_reset(&w->body);
	if (rc < 0)
		return lookup_failed(w, T_BODY, &e);
	return rc > 0 ? w->body_rc : 0;
}

static int
on_header(void *arg, enum mime_hdr_kind k, unsigned depth, const char *f,
    size_t len)
{
	struct walk	*w = arg;
	int		 rc;

	(void)depth;
	w->body_seen = 0;		/* a new body segment follows */
	if (k == MIME_HDR_TOP)
		return 0;		/* done from the milter's fields */
	if ((rc = flush_body(w)) != 0)
		return rc;
	return apply(w, table_for(w->cc, k), f, len, NULL);
}

/* Body lines are kept and looked up together (flush_body()). */
static int
on_body_line(void *arg, const char *line, size_t len)
{
	struct walk	*w = arg;
	enum rc		 r;
	int		 rc;

	if (w->cc->tab[T_BODY] == NULL || w->body_seen >= w->cc->body_limit)
		return 0;
	w->body_seen += len + 1;
	if ((r = rule_batch_add(&w->body, line, len)) == RC_OK)
		return 0;
	if (r == RC_NOMEM) {
		w->t->nomem = 1;
		return WALK_ERROR;
	}
	if ((rc = flush_body(w)) != 0)	/* full */
		return rc;
	if (rule_batch_add(&w->body, line, len) == RC_OK)
		return 0;
	return apply(w, T_BODY, line, len, NULL);	/* longer than all */
}

static int
on_attachment(void *arg, const char *name, const char *type,
    unsigned depth, int nested)
{
	struct walk	*w = arg;
	struct txn	*t = w->t;
	const char	*ext;
	char		 text[300];

	(void)type;
	(void)depth;
	(void)nested;
	if ((ext = mime_blocked_ext(name, w->cc->exts.v, w->cc->exts.n)) ==
	    NULL)
		return 0;
	(void)snprintf(text, sizeof(text), "Attachment type not allowed: %s",
	    name);
	txn_verdict(t, ACT_REJECT, "550", "5.7.1", copy(w, text));
	(void)snprintf(text, sizeof(text), "attachment:%s", name);
	t->msg->content = copy(w, text);
	metrics_inc(M.content, "attachment", 1);
	return WALK_STOP;
}

static int
on_text(void *arg, const char *type, const char *s, size_t len)
{
	struct walk	*w = arg;

	(void)type;
	if (w->cc->gtube && !w->gtube &&
	    memmem(s, len, gtube, sizeof(gtube) - 1) != NULL)
		w->gtube = 1;
	return 0;
}

/* header_checks on the top-level fields as the milter got them. */
static int
top_headers(struct walk *w, const struct ct_msg *cm)
{
	const struct ct_hdr	*h;
	int			 rc;

	if (cm == NULL || w->cc->tab[T_HEADER] == NULL)
		return 0;
	for (h = cm->hdrs; h != NULL; h = h->next) {
		buf_reset(&w->line);
		if (buf_printf(&w->line, "%s: %s", h->name, h->value) !=
		    RC_OK) {
			w->t->nomem = 1;
			return WALK_ERROR;
		}
		if ((rc = apply(w, T_HEADER, w->line.data, w->line.len, h)) !=
		    0)
			return rc;
	}
	return 0;
}

/* Keeps a top-level field with its instance number. */
static enum cr_status
keep_header(struct txn *t)
{
	struct ct_msg	*cm = txn_msg_state(t);
	struct ct_hdr	*h, *p;
	struct arena	*ar = t->msg->arena;

	if (cm == NULL) {
		if ((cm = arena_calloc(ar, 1, sizeof(*cm))) == NULL)
			goto nomem;
		cm->tail = &cm->hdrs;
		txn_msg_state_set(t, cm);
	}
	if ((h = arena_calloc(ar, 1, sizeof(*h))) == NULL ||
	    (h->name = arena_strdup(ar, t->hdr_name)) == NULL ||
	    (h->value = arena_strdup(ar, t->hdr_value)) == NULL)
		goto nomem;
	h->idx = 1;
	for (p = cm->hdrs; p != NULL; p = p->next)
		if (str_ieq(p->name, h->name))
			h->idx++;
	*cm->tail = h;
	cm->tail = &h->next;
	return CR_PASS;
nomem:
	t->nomem = 1;
	return CR_ERROR;
}

static void
mime_limit(struct walk *w, const struct mime_report *rep)
{
	struct txn	*t = w->t;
	char		 text[96];

	t->msg->content = rep->limit[0] == 'd' ? "mime:too-deep" :
	    rep->limit[0] == 'p' ? "mime:too-many-parts" :
	    "mime:header-too-long";
	metrics_inc(M.content, "mime", 1);
	(void)snprintf(text, sizeof(text), "Message structure not accepted "
	    "(%s)", rep->limit[0] == 'd' ? "nested too deeply" :
	    rep->limit[0] == 'p' ? "too many parts" : "header too long");
	switch (w->cc->limit_action) {
	case ACT_REJECT:
		txn_verdict(t, ACT_REJECT, "554", "5.6.0", copy(w, text));
		break;
	case ACT_TEMPFAIL:
		txn_verdict(t, ACT_TEMPFAIL, "451", "4.6.0", copy(w, text));
		break;
	case ACT_QUARANTINE:
		txn_verdict(t, ACT_QUARANTINE, NULL, NULL, copy(w, text));
		break;
	default:
		break;
	}
}

static void
walk_free(struct walk *w)
{
	int	 i;

	for (i = 0; i < T_MAX; i++)
		rule_scratch_give(w->scr[i]);
	buf_free(&w->text);
	buf_free(&w->line);
	rule_batch_free(&w->body);
}

static enum cr_status
ct_run(const void *conf, struct txn *t, enum stage st)
{
	const struct ct_conf	*cc = conf;
	struct mime_visitor	 v;
	struct mime_report	 rep;
	struct walk		 w;
	struct err		 e;
	const unsigned char	*data;
	size_t			 len;
	int			 i, rc, f;

	if (st == STAGE_HEADER)
		return keep_header(t);
	if (t->msg->spool == NULL || t->msg->spool_failed) {
		txn_error(t, "message content not available");
		return CR_ERROR;
	}
	memset(&w, 0, sizeof(w));
	w.cc = cc;
	w.t = t;
	buf_init(&w.text, 1024);
	buf_init(&w.line, 1024 * 1024);
	rule_batch_init(&w.body, BODY_BATCH);
	for (i = 0; i < T_MAX; i++)
		if (cc->tab[i] != NULL) {
			if ((w.scr[i] = rule_scratch_take(cc->tab[i])) ==
			    NULL) {
				walk_free(&w);
				t->nomem = 1;
				return CR_ERROR;
			}
			rule_scratch_deadline(w.scr[i], RULES_MS);
		}
	err_clear(&e);
	if ((data = spool_data(t->msg->spool, &len, &e)) == NULL) {
		walk_free(&w);
		txn_error(t, arena_strdup(t->msg->arena, e.msg));
		return CR_ERROR;
	}
	rc = top_headers(&w, txn_msg_state(t));
	if (rc == 0) {
		memset(&v, 0, sizeof(v));
		v.header = on_header;
		v.body_line = cc->tab[T_BODY] != NULL ? on_body_line : NULL;
		v.attachment = cc->exts.n > 0 ? on_attachment : NULL;
		v.text = cc->gtube ? on_text : NULL;
		memset(&rep, 0, sizeof(rep));
		rc = mime_walk(data, len, &cc->lim, &v, &w, &rep, &e);
		if (rc <= 0 && !w.failed && !t->nomem) {
			/* the lines before the end or a failure */
			if ((f = flush_body(&w)) != 0)
				rc = f;
		}
		if (rc < 0) {
			txn_error(t, arena_strdup(t->msg->arena, e.msg));
			w.failed = 1;
		} else if (rc == 0 && rep.limit != NULL)
			mime_limit(&w, &rep);
	}
	if (w.gtube) {
		txn_score(t, "gtube", GTUBE_POINTS);
		metrics_inc(M.content, "gtube", 1);
		if (t->msg->content == NULL)
			t->msg->content = "gtube";
	}
	if (w.hold && t->verdict.action == ACT_CONTINUE && !w.failed)
		txn_verdict(t, ACT_QUARANTINE, NULL, NULL, w.hold_text);
	walk_free(&w);
	if (w.failed || t->nomem)
		return CR_ERROR;
	return t->verdict.action != ACT_CONTINUE || w.gtube ? CR_FAIL :
	    CR_PASS;
}

const struct check_ops check_content = {
	.name = "content",
	.group = "content",
	.stages = STAGE_BIT(STAGE_HEADER) | STAGE_BIT(STAGE_EOM),
	.quiet_stages = STAGE_BIT(STAGE_HEADER),
	.flags = CHECK_CONTENT,
	.implemented = 1,
	.setup = ct_setup,
	.teardown = ct_teardown,
	.run = ct_run,
};
