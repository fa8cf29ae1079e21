/*
 * pipeline.c - runs the checks of each stage in table order and folds
 * their results into one verdict (SPEC sections 2 to 4).
 *
 * Policy, in order: a check's final verdict wins; a check that could not
 * run answers per its on_error; a verdict from a dry-run module is only
 * remembered ("would"); verdicts found before RCPT are held and given at
 * each RCPT (delayed reject); whitelisted recipients are exempt from held
 * verdicts and inbound checks; finally the score is compared with
 * thresholds.reject.  Works on one connection's contexts: no shared state
 * except the metrics registry (thread-safe).
 */
#include <stdio.h>
#include <string.h>

#include "cfg.h"
#include "dns.h"
#include "log.h"
#include "metrics.h"
#include "pipeline.h"
#include "spool.h"
#include "util.h"

const struct verdict verdict_continue = { ACT_CONTINUE, NULL, NULL, NULL,
    NULL };
const struct verdict verdict_tempfail_local = { ACT_TEMPFAIL, "451",
    "4.3.0", "Temporary local problem", "policy" };

static const char *const stage_names[STAGE_MAX] = { "connect", "helo",
    "mail", "rcpt", "header", "eoh", "body", "eom" };

const char *
stage_name(enum stage s)
{
	return (unsigned)s < STAGE_MAX ? stage_names[s] : "?";
}

const char *
action_name(enum action a)
{
	switch (a) {
	case ACT_CONTINUE:
		return "continue";
	case ACT_ACCEPT:
		return "accept";
	case ACT_QUARANTINE:
		return "quarantine";
	case ACT_TEMPFAIL:
		return "tempfail";
	case ACT_REJECT:
		return "reject";
	case ACT_DISCARD:
		return "discard";
	}
	return "tempfail";
}

void
verdict_set(struct verdict *v, enum action a, const char *code,
    const char *dsn, const char *text, const char *by)
{
	v->action = a;
	v->code = code;
	v->dsn = dsn;
	v->text = text;
	v->decided_by = by;
}

static int
refusal(enum action a)
{
	return a == ACT_TEMPFAIL || a == ACT_REJECT || a == ACT_DISCARD ||
	    a == ACT_QUARANTINE;
}

/* Skip inbound checks for trusted or whitelisted traffic. */
static int
inbound_exempt(const struct txn *t)
{
	return t->conn->outbound || t->conn->whitelisted ||
	    (t->msg != NULL && t->msg->whitelisted) ||
	    (t->rcpt != NULL && t->rcpt->whitelisted);
}

/*
 * Held verdicts are waived only for a whitelisted recipient (postmaster)
 * or an outbound session: a whitelisted sender address, which anyone can
 * forge, does not lift a refusal of the client.
 */
static int
held_exempt(const struct txn *t)
{
	return t->conn->outbound || (t->rcpt != NULL && t->rcpt->whitelisted);
}

static void
remember_would(struct txn *t, const struct verdict *v)
{
	struct verdict	*w = t->msg != NULL ? &t->msg->would : &t->conn->would;

	if (w->action == ACT_CONTINUE)
		*w = *v;
	metrics_inc(M.dry_run, v->decided_by, 1);
}

/* A held verdict of the connection or message that applies at RCPT. */
static const struct verdict *
held(const struct txn *t)
{
	if (t->conn->pending.action != ACT_CONTINUE)
		return &t->conn->pending;
	if (t->msg != NULL && t->msg->pending.action != ACT_CONTINUE)
		return &t->msg->pending;
	return NULL;
}

/* The running check applies to this stage of this transaction. */
static int
applies(const struct txn *t, const struct check_inst *ci, enum stage st)
{
	if (!(ci->ops->stages & STAGE_BIT(st)))
		return 0;
	if ((ci->ops->flags & CHECK_OUTBOUND) && !t->conn->outbound)
		return 0;
	return !(ci->ops->flags & CHECK_INBOUND) || !inbound_exempt(t);
}

/*
 * Lets every check of the stage that asks DNS questions ask them, then
 * waits once for all answers (dns.timeout at most).  NULL when no check
 * asked anything.  Without a resolver the checks find no batch and fail
 * per their on_error.
 */
static struct dns_batch *
start_stage(struct txn *t, enum stage st)
{
	struct cfg		*cfg = t->conn->cfg;
	struct dns_batch	*b = NULL;
	struct dns		*d;
	struct err		 e;
	size_t			 i;

	for (i = 0; i < cfg->nchecks; i++) {
		const struct check_inst	*ci = &cfg->checks[i];

		if (ci->ops->start == NULL || !applies(t, ci, st))
			continue;
		if (b == NULL) {
			err_clear(&e);
			if ((d = cfg_dns(cfg, &e)) == NULL) {
				log_conn(t->conn, LOG_ERR, "%s", e.msg);
				return NULL;
			}
			if ((b = dns_batch_new(d)) == NULL)
				return NULL;
			t->dns_deadline = now_ms() + dns_timeout_ms(d);
		}
		t->check = ci;
		t->idx = i;
		ci->ops->start(ci->conf, t, st, b);
	}
	if (b != NULL)
		dns_batch_wait(b);
	return b;
}

/*
 * Runs every check of the stage.  At RCPT, a held verdict stops the run
 * just before the first inbound check (so no callout is made for a
 * blocked client).  Returns the final verdict in *out (ACT_CONTINUE if
 * none).
 */
static void
run_stage(struct txn *t, enum stage st, struct verdict *out)
{
	const struct cfg	*cfg = t->conn->cfg;
	const struct verdict	*h;
	struct dns_batch	*batch;
	uint64_t		 t0 = now_ms();
	size_t			 i;

	*out = verdict_continue;
	t->stage = st;
	batch = start_stage(t, st);
	for (i = 0; i < cfg->nchecks; i++) {
		const struct check_inst	*ci = &cfg->checks[i];
		enum cr_status		 rs;

		if (!(ci->ops->stages & STAGE_BIT(st)))
			continue;
		if (st == STAGE_RCPT && (ci->ops->flags & CHECK_INBOUND) &&
		    !held_exempt(t) && (h = held(t)) != NULL) {
			*out = *h;
			break;
		}
		if ((ci->ops->flags & CHECK_INBOUND) && inbound_exempt(t))
			continue;
		if ((ci->ops->flags & CHECK_OUTBOUND) && !t->conn->outbound)
			continue;
		t->check = ci;
		t->idx = i;
		t->verdict = verdict_continue;
		t->error = NULL;
		rs = ci->ops->run(ci->conf, t, st);
		if (t->nomem) {
			*out = verdict_tempfail_local;
			log_conn(t->conn, LOG_ERR, "%s: out of memory",
			    ci->ops->name);
			break;
		}
		if (rs == CR_ERROR) {
			metrics_inc(M.check_errors, ci->ops->name, 1);
			log_conn(t->conn, LOG_WARNING, "%s: check failed: %s; "
			    "on_error=%s", ci->ops->name, t->error != NULL ?
			    t->error : "error", ci->on_error ==
			    ON_ERROR_ACCEPT ? "accept" : "tempfail");
			if (ci->on_error == ON_ERROR_ACCEPT)
				continue;
			t->verdict = verdict_tempfail_local;
			t->verdict.decided_by = ci->ops->name;
		}
		if (t->verdict.action == ACT_CONTINUE)
			continue;
		if (ci->dry_run) {
			remember_would(t, &t->verdict);
			continue;
		}
		*out = t->verdict;
		break;
	}
	if (st == STAGE_RCPT && out->action == ACT_CONTINUE &&
	    !held_exempt(t) && (h = held(t)) != NULL)
		*out = *h;
	dns_batch_free(batch);
	metrics_observe(M.stage_seconds, stage_name(st),
	    (double)(now_ms() - t0) / 1000.0);
}

/* Score threshold (thresholds.reject) for inbound traffic. */
static void
apply_threshold(struct txn *t, struct verdict *out)
{
	const struct cfg	*cfg = t->conn->cfg;
	struct verdict		 v;

	if (out->action != ACT_CONTINUE || inbound_exempt(t) || t->conn->dnswl)
		return;
	if (txn_score_total(t) < cfg->thresholds.reject)
		return;
	if (t->stage <= STAGE_HELO && t->conn->threshold_text != NULL)
		verdict_set(&v, ACT_REJECT, "554", "5.7.1",
		    t->conn->threshold_text, "policy");
	else
		verdict_set(&v, ACT_REJECT, "550", "5.7.1",
		    "Message rejected as spam", "policy");
	if (cfg->dry_run || cfg->thresholds.dry_run) {
		remember_would(t, &v);
		return;
	}
	*out = v;
}

static void
txn_init(struct txn *t, struct conn_ctx *c)
{
	memset(t, 0, sizeof(*t));
	t->conn = c;
	t->msg = c->msg;
}

/* Holds a verdict found before RCPT. */
static void
hold(struct verdict *slot, enum stage *slot_stage, enum stage st,
    const struct verdict *v)
{
	if (v->action == ACT_CONTINUE || slot->action != ACT_CONTINUE)
		return;
	*slot = *v;
	if (slot_stage != NULL)
		*slot_stage = st;
}

void
pipeline_connect(struct conn_ctx *c, const char *name, const char *addr,
    struct verdict *out)
{
	struct txn	 t;
	struct verdict	 v;

	*out = verdict_continue;
	if (name != NULL && *name != '\0' && *name != '[' &&
	    strcmp(name, "unknown") != 0)
		c->client_name = arena_strndup(c->arena, name,
		    strnlen(name, 255));
	if (addr != NULL) {
		c->client_addr = arena_strndup(c->arena, addr,
		    strnlen(addr, 64));
		if (c->client_addr == NULL)
			c->client_addr = "";
		c->has_ip = ipaddr_parse(addr, &c->ip) == RC_OK;
	}
	/* no address: a local submission (sendmail command, pickup) */
	c->internal = addr == NULL || (c->has_ip &&
	    cidr_list_match(&c->cfg->internal, &c->ip));
	c->outbound = c->internal;
	txn_init(&t, c);
	run_stage(&t, STAGE_CONNECT, &v);
	apply_threshold(&t, &v);
	hold(&c->pending, &c->pending_stage, STAGE_CONNECT, &v);
}

/* Forget what an earlier HELO in this session contributed. */
static void
drop_helo_results(struct conn_ctx *c)
{
	struct reason	**rp = &c->reasons;

	while (*rp != NULL) {
		if ((*rp)->stage == STAGE_HELO)
			*rp = (*rp)->next;
		else
			rp = &(*rp)->next;
	}
	if (c->pending.action != ACT_CONTINUE &&
	    c->pending_stage == STAGE_HELO)
		c->pending = verdict_continue;
}

void
pipeline_helo(struct conn_ctx *c, const char *helo, struct verdict *out)
{
	struct txn	 t;
	struct verdict	 v;

	*out = verdict_continue;
	drop_helo_results(c);
	c->helo = arena_strndup(c->arena, helo, strnlen(helo, 255));
	if (c->helo == NULL)
		c->helo = "";
	txn_init(&t, c);
	run_stage(&t, STAGE_HELO, &v);
	apply_threshold(&t, &v);
	hold(&c->pending, &c->pending_stage, STAGE_HELO, &v);
}

void
pipeline_mail(struct conn_ctx *c, const char *from, const char *auth,
    struct verdict *out)
{
	struct msg_ctx		*m;
	struct txn		 t;
	struct verdict		 v;
	const char		*why;
	enum addr_status	 st;

	*out = verdict_continue;
	msg_ctx_free(c->msg);
	m = c->msg = msg_ctx_new(c);
	if (m == NULL)
		return;		/* RCPT without a message: tempfail */
	if (auth != NULL && *auth != '\0' && c->auth == NULL) {
		/* SMTP AUTH comes after connect and HELO: what inbound
		 * checks found about the client no longer applies */
		c->auth = arena_strndup(c->arena, auth, strnlen(auth, 255));
		c->outbound = 1;
		c->reasons = NULL;
		c->pending = verdict_continue;
		c->would = verdict_continue;
	}
	/* MAIL never answers (no-reply): a failure is held for RCPT */
	m->from_raw = arena_strndup(m->arena, from, strnlen(from, 4096));
	st = m->from_raw != NULL ? addr_parse(m->arena, m->from_raw,
	    &m->from, &why) : ADDR_NOMEM;
	if (st == ADDR_NOMEM) {
		m->pending = verdict_tempfail_local;
		return;
	}
	m->from_null = st == ADDR_NULL;
	m->from_bad = st == ADDR_BAD;
	txn_init(&t, c);
	run_stage(&t, STAGE_MAIL, &v);
	apply_threshold(&t, &v);
	hold(&m->pending, NULL, STAGE_MAIL, &v);
}

static void
count_decision(const struct verdict *v)
{
	metrics_inc(M.messages, action_name(v->action), 1);
	if (refusal(v->action))
		metrics_inc(M.refusals, v->decided_by != NULL ?
		    v->decided_by : "policy", 1);
}

void
pipeline_rcpt(struct conn_ctx *c, const char *raw, struct verdict *out)
{
	struct msg_ctx		*m = c->msg;
	struct rcpt		*r;
	struct reason		**mark;
	struct txn		 t;
	const char		*why;
	enum addr_status	 st;

	*out = verdict_continue;
	if (m == NULL) {
		*out = verdict_tempfail_local;	/* RCPT without MAIL */
		return;
	}
	m->nrcpt_seen++;
	r = arena_calloc(m->arena, 1, sizeof(*r));
	if (r == NULL || (r->raw = arena_strndup(m->arena, raw,
	    strnlen(raw, 4096))) == NULL) {
		*out = verdict_tempfail_local;
		return;
	}
	st = addr_parse(m->arena, r->raw, &r->addr, &why);
	if (st == ADDR_NOMEM) {
		*out = verdict_tempfail_local;
		return;
	}
	if (st != ADDR_OK)
		r->addr.addr = NULL;
	/* what this recipient's checks add goes after here */
	for (mark = &m->reasons; *mark != NULL; mark = &(*mark)->next)
		;
	txn_init(&t, c);
	t.rcpt = r;
	run_stage(&t, STAGE_RCPT, out);
	apply_threshold(&t, out);
	if (out->action != ACT_CONTINUE && out->action != ACT_ACCEPT) {
		log_decision(c, m, r, out);
		count_decision(out);
		*mark = NULL;	/* a refused recipient leaves no trace */
		return;
	}
	*m->rcpt_tail = r;
	m->rcpt_tail = &r->next;
	m->nrcpt++;
}

int
pipeline_keeps_content(const struct cfg *cfg)
{
	return cfg->keeps_content;
}

/* Keeps content for the CHECK_CONTENT modules; on failure they find
 * spool_failed and answer per their on_error. */
static void
spool_put(struct conn_ctx *c, const void *p, size_t n)
{
	struct msg_ctx	*m = c->msg;
	const struct cfg *cfg = c->cfg;
	struct err	 e;
	enum rc		 rc;
	int		 was_file;

	if (m->spool_failed || !pipeline_keeps_content(cfg))
		return;
	if (m->spool == NULL && (m->spool = spool_new((size_t)
	    cfg->content.memory_limit, cfg->content.spool_dir)) == NULL) {
		log_conn(c, LOG_ERR, "content: out of memory");
		m->spool_failed = 1;
		return;
	}
	if (m->size > cfg->content.max_size)
		return;		/* refused at the end of this chunk */
	err_clear(&e);
	was_file = spool_in_file(m->spool);
	rc = spool_append(m->spool, p, n, &e);
	if (!was_file && spool_in_file(m->spool))
		metrics_inc(M.spooled, NULL, 1);
	if (rc != RC_OK) {
		log_conn(c, LOG_ERR, "content: %s", rc == RC_NOMEM ?
		    "out of memory" : e.msg);
		m->spool_failed = 1;
	}
}

/* Header fields come without their line end; continuation lines of a
 * folded field are separated by a bare "\n": the spool gets CRLF. */
static void
spool_header(struct conn_ctx *c, const char *name, const char *value)
{
	const char	*p, *nl;

	if (!pipeline_keeps_content(c->cfg))
		return;
	spool_put(c, name, strlen(name));
	spool_put(c, ": ", 2);
	for (p = value; (nl = strchr(p, '\n')) != NULL; p = nl + 1) {
		spool_put(c, p, (size_t)(nl - p) - (nl > p && nl[-1] == '\r'));
		spool_put(c, "\r\n", 2);
	}
	spool_put(c, p, strlen(p));
	spool_put(c, "\r\n", 2);
}

/* A verdict given before the end of the message is its decision. */
static void
decided_early(struct conn_ctx *c, const struct verdict *out)
{
	if (out->action == ACT_CONTINUE || out->action == ACT_ACCEPT)
		return;
	log_decision(c, c->msg, NULL, out);
	count_decision(out);
}

/*
 * content.max_size: beyond it nothing more is kept nor looked at, and
 * the message is refused at its end (552 5.3.4).  Not at the chunk that
 * crosses it: the client sends the rest of DATA anyway, and a reply to
 * every body chunk (no SMFIP_NR_BODY) costs every message a round trip
 * with the MTA.
 */
static int
too_big(struct conn_ctx *c)
{
	if (c->msg->too_big)
		return 1;
	if (c->msg->size <= c->cfg->content.max_size ||
	    !pipeline_keeps_content(c->cfg))
		return 0;
	c->msg->too_big = 1;
	metrics_inc(M.content, "too_big", 1);
	return 1;
}

void
pipeline_header(struct conn_ctx *c, const char *name, const char *value,
    struct verdict *out)
{
	struct txn	 t;

	*out = verdict_continue;
	if (c->msg == NULL)
		return;
	c->msg->size += strlen(name) + strlen(value) + 4;
	spool_header(c, name, value);
	txn_init(&t, c);
	t.hdr_name = name;
	t.hdr_value = value;
	run_stage(&t, STAGE_HEADER, out);
	decided_early(c, out);
}

void
pipeline_eoh(struct conn_ctx *c, struct verdict *out)
{
	struct txn	 t;

	*out = verdict_continue;
	if (c->msg == NULL)
		return;
	spool_put(c, "\r\n", 2);
	if (!too_big(c)) {
		txn_init(&t, c);
		run_stage(&t, STAGE_EOH, out);
	}
	decided_early(c, out);
}

void
pipeline_body(struct conn_ctx *c, const unsigned char *p, size_t len,
    struct verdict *out)
{
	struct txn	 t;

	*out = verdict_continue;
	if (c->msg == NULL)
		return;
	c->msg->size += len;
	spool_put(c, p, len);
	if (!too_big(c)) {
		txn_init(&t, c);
		t.body = p;
		t.body_len = len;
		run_stage(&t, STAGE_BODY, out);
	}
	decided_early(c, out);
}

/* All accepted recipients are whitelisted: the message is exempt. */
static int
all_rcpts_whitelisted(const struct msg_ctx *m)
{
	const struct rcpt	*r;

	if (m->rcpts == NULL)
		return 0;
	for (r = m->rcpts; r != NULL; r = r->next)
		if (!r->whitelisted)
			return 0;
	return 1;
}

void
pipeline_eom(struct conn_ctx *c, struct verdict *out)
{
	struct msg_ctx	*m = c->msg;
	struct txn	 t;
	struct rcpt	 wl;

	if (m == NULL) {
		*out = verdict_tempfail_local;
		return;
	}
	if (too_big(c)) {
		verdict_set(out, ACT_REJECT, "552", "5.3.4",
		    "Message size exceeds fixed limit", "content");
		log_decision(c, m, NULL, out);
		count_decision(out);
		return;
	}
	txn_init(&t, c);
	if (all_rcpts_whitelisted(m)) {
		memset(&wl, 0, sizeof(wl));
		wl.whitelisted = 1;
		t.rcpt = &wl;	/* exempts inbound checks */
	}
	run_stage(&t, STAGE_EOM, out);
	/* with spam levels on, kill_level is the end-of-message threshold */
	if (cfg_check_conf(c->cfg, "spam") == NULL)
		apply_threshold(&t, out);
	if (out->action == ACT_CONTINUE)
		verdict_set(out, ACT_ACCEPT, NULL, NULL, NULL, NULL);
	log_decision(c, m, NULL, out);
	count_decision(out);
}

void
pipeline_msg_end(struct conn_ctx *c)
{
	msg_ctx_free(c->msg);
}

void
pipeline_abort(struct conn_ctx *c)
{
	if (c->msg != NULL && c->msg->nrcpt > 0)
		log_conn(c, LOG_DEBUG, "message aborted by the client after "
		    "%zu accepted recipient(s)", c->msg->nrcpt);
	msg_ctx_free(c->msg);
}

const char *
pipeline_reply_text(struct conn_ctx *c, const struct verdict *v)
{
	struct arena	*ar = c->msg != NULL ? c->msg->arena : c->arena;
	const char	*id = c->msg != NULL ? c->msg->id : c->id;
	const char	*s = v->text != NULL ? v->text : "";
	struct buf	 b;
	char		*p;
	size_t		 i;

	/* printable ASCII only; libmilter treats '%' as a format escape */
	buf_init(&b, 1024);
	for (i = 0; s[i] != '\0' && i < 400; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch == '%')
			(void)buf_puts(&b, "%%");
		else
			(void)buf_putc(&b, ch >= 0x20 && ch < 0x7f ?
			    (char)ch : '?');
	}
	(void)buf_printf(&b, "%s[id=%s]", b.len > 0 ? " " : "", id);
	p = arena_strdup(ar, buf_str(&b));
	buf_free(&b);
	return p != NULL ? p : "Temporary local problem";
}
