/*
 * check_spf.c - SPF of the MAIL FROM identity, or of the HELO identity
 * for the null sender (group "spf"; RFC 7208 evaluation in spf_eval.c).
 *
 * At MAIL the identity's TXT question goes into the stage's DNS batch;
 * then check_host() runs, asking each further question through its own
 * batch (the next question depends on the last answer), each waiting at
 * most dns.timeout, all within SPF_BUDGET_TIMEOUTS times dns.timeout
 * (20 s at most) from the start of the stage, past which nothing more is
 * asked and the result is temperror.  Results: fail
 * refuses with 550 5.7.23 (spf.fail_action = "reject") or scores
 * spf.fail_score; softfail, neutral, none and permerror score their
 * spf.*_score; temperror gives 451 4.4.3 (on_error = "tempfail") or
 * nothing (on_error = "accept").  The result goes into the decision line
 * (spf=) and, at end of message, into an Authentication-Results header
 * (RFC 8601) whose authserv-id is Postfix's $myhostname (macro j).  An
 * inbound check: internal, authenticated and whitelisted clients are
 * not checked.  Conf is read-only after setup; per-message state lives
 * in the message arena: thread-safe.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "addr.h"
#include "cfg.h"
#include "ctx.h"
#include "dns.h"
#include "log.h"
#include "metrics.h"
#include "spf.h"
#include "util.h"

#define SPF_BUDGET_TIMEOUTS	4	/* evaluation time, in dns.timeout */
#define SPF_BUDGET_MAX_MS	20000

struct spf_conf {
	int	 reject;	/* fail_action = "reject" */
	int32_t	 fail, softfail, neutral, none, permerror;
};

/* What end of message needs: msg->state[check index]. */
struct spf_state {
	enum spf_result	 result;
	int		 helo;		/* the HELO identity was checked */
	const char	*identity;	/* the header's smtp.* value */
	unsigned	 ar_seen;	/* Authentication-Results so far */
};

/* check_host()'s questions through portero's DNS layer. */
struct glue {
	struct dns		*dns;
	struct dns_batch	*batch;		/* the last question */
	const struct dns_query	*pre;		/* TXT asked by spf_start */
	const char		*pre_name;
	uint64_t		 deadline;	/* now_ms() */
	unsigned		 budget_ms;
	int			 expired;	/* a question was cut short */
	const uint8_t		**rr;
	size_t			*len;
	size_t			 cap;
};

static void
spf_teardown(void *p)
{
	free(p);
}

static int
spf_setup(const struct cfg *cfg, const config_setting_t *g, void **conf,
    struct err *e)
{
	struct spf_conf	*sc;

	(void)cfg;
	sc = calloc(1, sizeof(*sc));
	if (sc == NULL) {
		err_set(e, "out of memory");
		return -1;
	}
	sc->reject = strcmp(cv_string(g, "spf.fail_action"), "reject") == 0;
	sc->fail = cv_score(g, "spf.fail_score");
	sc->softfail = cv_score(g, "spf.softfail_score");
	sc->neutral = cv_score(g, "spf.neutral_score");
	sc->none = cv_score(g, "spf.none_score");
	sc->permerror = cv_score(g, "spf.permerror_score");
	*conf = sc;
	return 0;
}

/* The identity's domain: the sender's, or HELO's for the null sender;
 * NULL when there is nothing to check. */
static const char *
identity_domain(const struct txn *t, int *helo)
{
	const struct msg_ctx	*m = t->msg;

	*helo = 0;
	if (m == NULL || m->from_bad || !t->conn->has_ip)
		return NULL;
	if (!m->from_null)
		return m->from.domain;
	*helo = 1;
	return t->conn->helo != NULL && *t->conn->helo != '\0' ?
	    t->conn->helo : NULL;
}

/* 4.3: only a multi-label domain name can have an SPF record. */
static int
domain_ok(const char *d)
{
	return hostname_valid(d) && hostname_is_fqdn(d);
}

static void
spf_start(const void *conf, struct txn *t, enum stage st,
    struct dns_batch *b)
{
	const char	*d;
	int		 helo;

	(void)conf;
	if (st != STAGE_MAIL)
		return;
	d = identity_domain(t, &helo);
	if (d != NULL && domain_ok(d))
		txn_state_set(t, dns_batch_add(b, d, DNS_T_TXT));
}

static void
glue_lookup(void *arg, const char *name, int rrtype, struct spf_answer *a)
{
	struct glue		*g = arg;
	const struct dns_query	*q;
	size_t			 i, n;
	uint64_t		 now = now_ms(), left;

	memset(a, 0, sizeof(*a));
	dns_batch_free(g->batch);
	g->batch = NULL;
	if (g->pre != NULL && rrtype == DNS_T_TXT &&
	    strcasecmp(name, g->pre_name) == 0) {
		q = g->pre;
		g->pre = NULL;
	} else if (now >= g->deadline) {
		a->status = DNS_TIMEOUT;	/* the evaluation's time is up */
		g->expired = 1;
		return;
	} else {
		g->batch = dns_batch_new(g->dns);
		q = g->batch != NULL ? dns_batch_add(g->batch, name, rrtype) :
		    NULL;
		if (q == NULL) {
			a->status = DNS_ERROR;
			return;
		}
		/* dns.timeout, or what is left of the evaluation's time */
		left = g->deadline - now;
		dns_batch_wait_ms(g->batch, left < dns_timeout_ms(g->dns) ?
		    (unsigned)left : dns_timeout_ms(g->dns));
		if (left < dns_timeout_ms(g->dns) && dns_query_status(q) ==
		    DNS_TIMEOUT)
			g->expired = 1;
	}
	a->status = dns_query_status(q);
	n = dns_query_count(q);
	if (n > g->cap) {
		const uint8_t	**rr = realloc(g->rr, n * sizeof(*rr));
		size_t		 *len;

		if (rr != NULL)
			g->rr = rr;
		len = rr != NULL ? realloc(g->len, n * sizeof(*len)) : NULL;
		if (len == NULL) {
			a->status = DNS_ERROR;
			return;
		}
		g->len = len;
		g->cap = n;
	}
	for (i = 0; i < n; i++)
		g->rr[i] = dns_query_data(q, i, &g->len[i]);
	a->n = n;
	a->rr = g->rr;
	a->len = g->len;
}

static void
score(struct txn *t, const char *what, int32_t points)
{
	if (points != 0)
		txn_score(t, what, points);
}

/* The local part when it can stand in a header as is (a dot-atom). */
static int
plain_local(const char *s)
{
	if (*s == '\0' || *s == '.')
		return 0;
	for (; *s != '\0'; s++)
		if (!(s[0] >= 'a' && s[0] <= 'z') && !(s[0] >= 'A' &&
		    s[0] <= 'Z') && !(s[0] >= '0' && s[0] <= '9') &&
		    strchr("!#$&'*+-/=?^_`{|}~.", s[0]) == NULL)
			return 0;
	return s[-1] != '.';
}

static enum spf_result
evaluate(struct txn *t, const char *domain, const char *sender,
    struct spf_eval *ev)
{
	struct conn_ctx	*c = t->conn;
	struct glue	 g;
	struct err	 e;
	uint64_t	 budget, start;
	enum spf_result	 r;

	memset(&g, 0, sizeof(g));
	err_clear(&e);
	g.dns = cfg_dns(c->cfg, &e);
	if (g.dns == NULL) {
		txn_error(t, arena_strdup(t->msg->arena, e.msg));
		return SPF_TEMPERROR;
	}
	g.pre = txn_state(t);
	g.pre_name = domain;
	/* counted from the start of the stage, whose batch asked the
	 * first question */
	start = now_ms();
	if (t->dns_deadline > dns_timeout_ms(g.dns) && t->dns_deadline -
	    dns_timeout_ms(g.dns) < start)
		start = t->dns_deadline - dns_timeout_ms(g.dns);
	budget = (uint64_t)dns_timeout_ms(g.dns) * SPF_BUDGET_TIMEOUTS;
	g.budget_ms = budget < SPF_BUDGET_MAX_MS ? (unsigned)budget :
	    SPF_BUDGET_MAX_MS;
	g.deadline = start + g.budget_ms;
	memset(ev, 0, sizeof(*ev));
	ev->lookup = glue_lookup;
	ev->lookup_arg = &g;
	ev->arena = t->msg->arena;
	ev->ip = c->ip;
	ev->sender = sender;
	ev->helo = c->helo != NULL ? c->helo : "";
	r = spf_check_host(ev, domain);
	/* RFC 7208 4.6.4: past the time limit, temperror (questions
	 * refused for lack of time may have been skipped, as in ptr) */
	if (g.expired && r != SPF_TEMPERROR) {
		r = SPF_TEMPERROR;
		(void)snprintf(ev->why, sizeof(ev->why), "evaluation took "
		    "more than %u ms", g.budget_ms);
	}
	dns_batch_free(g.batch);
	free(g.rr);
	free(g.len);
	return r;
}

static enum cr_status
spf_mail(const struct spf_conf *sc, struct txn *t)
{
	struct msg_ctx		*m = t->msg;
	struct spf_state	*ss;
	struct spf_eval		 ev;
	const char		*domain, *sender, *text, *why;
	size_t			 i;
	enum spf_result		 r;
	int			 helo;

	domain = identity_domain(t, &helo);
	if (domain == NULL)
		return CR_SKIP;
	ss = arena_calloc(m->arena, 1, sizeof(*ss));
	sender = helo ? arena_printf(m->arena, "postmaster@%s", domain) :
	    m->from.addr;
	if (ss == NULL || sender == NULL) {
		t->nomem = 1;
		return CR_ERROR;
	}
	memset(&ev, 0, sizeof(ev));
	if (!domain_ok(domain))
		r = SPF_NONE;
	else
		r = evaluate(t, domain, sender, &ev);
	if (ev.nomem) {
		t->nomem = 1;
		return CR_ERROR;
	}
	if (t->error != NULL)
		return CR_ERROR;	/* no resolver: on_error applies */
	ss->result = r;
	ss->helo = helo;
	ss->identity = helo ? domain : plain_local(m->from.local) ?
	    m->from.addr : domain;
	m->state[t->idx] = ss;
	m->spf = spf_result_name(r);
	/* the reason quotes record text and names, printable already */
	for (i = 0; ev.why[i] != '\0'; i++)
		if (ev.why[i] < 0x20 || ev.why[i] > 0x7e)
			ev.why[i] = '?';
	why = ev.why[0] != '\0' ? ev.why : r == SPF_TEMPERROR ?
	    "DNS error" : "-";
	log_conn(t->conn, LOG_DEBUG, "spf: %s for %s identity %s from %s: "
	    "%u DNS terms, %u void; %s", spf_result_name(r), helo ? "HELO" :
	    "MAIL FROM", domain, t->conn->client_addr, ev.lookups, ev.voids,
	    why);
	switch (r) {
	case SPF_PASS:
		return CR_PASS;
	case SPF_FAIL:
		if (!sc->reject) {
			score(t, "fail", sc->fail);
			return CR_FAIL;
		}
		text = arena_printf(m->arena, "SPF validation failed for %s",
		    domain);
		if (text == NULL) {
			t->nomem = 1;
			return CR_ERROR;
		}
		txn_verdict(t, ACT_REJECT, "550", "5.7.23", text);
		return CR_FAIL;
	case SPF_SOFTFAIL:
		score(t, "softfail", sc->softfail);
		return CR_FAIL;
	case SPF_NEUTRAL:
		score(t, "neutral", sc->neutral);
		return CR_NEUTRAL;
	case SPF_NONE:
		score(t, "none", sc->none);
		return CR_NEUTRAL;
	case SPF_PERMERROR:
		score(t, "permerror", sc->permerror);
		return CR_FAIL;
	case SPF_TEMPERROR:
		break;
	}
	/* RFC 7208 8.6: temporary, so 4.4.3 rather than the generic
	 * 4.3.0 of a failed check */
	metrics_inc(M.check_errors, "spf", 1);
	log_conn(t->conn, LOG_WARNING, "spf: temperror for %s: %s; "
	    "on_error=%s", domain, why, t->check->on_error ==
	    ON_ERROR_ACCEPT ? "accept" : "tempfail");
	if (t->check->on_error == ON_ERROR_ACCEPT)
		return CR_SKIP;
	txn_verdict(t, ACT_TEMPFAIL, "451", "4.4.3",
	    "Temporary SPF DNS failure, try again later");
	return CR_FAIL;
}

/* Our authserv-id: Postfix's $myhostname, or "localhost". */
static const char *
authserv_id(const struct txn *t)
{
	const char	*id = t->conn->myhostname;

	return id != NULL && hostname_valid(id) ? id : "localhost";
}

static enum cr_status
spf_eom(struct txn *t)
{
	const struct spf_state	*ss = t->msg->state[t->idx];
	const char		*id = authserv_id(t), *v;

	if (ss == NULL)
		return CR_SKIP;
	v = arena_printf(t->msg->arena, "%s; spf=%s smtp.%s=%s", id,
	    spf_result_name(ss->result), ss->helo ? "helo" : "mailfrom",
	    ss->identity);
	if (v == NULL) {
		t->nomem = 1;
		return CR_ERROR;
	}
	txn_header_insert(t, "Authentication-Results", v);
	return CR_PASS;
}

/*
 * RFC 8601 section 5: Authentication-Results fields that claim our
 * authserv-id and arrive from outside are forged; they are removed (at
 * end of message, before ours is added).
 */
static enum cr_status
spf_header(struct txn *t, const char *name, const char *value)
{
	struct spf_state	*ss = t->msg->state[t->idx];
	const char		*id = authserv_id(t);
	size_t			 n = strlen(id);

	if (ss == NULL || !str_ieq(name, "Authentication-Results"))
		return CR_SKIP;
	ss->ar_seen++;
	while (*value == ' ' || *value == '\t' || *value == '\r' ||
	    *value == '\n')
		value++;
	if (strncasecmp(value, id, n) == 0 && (value[n] == ';' ||
	    value[n] == ' ' || value[n] == '\t' || value[n] == '\r' ||
	    value[n] == '\n' || value[n] == '\0'))
		txn_header_remove(t, "Authentication-Results", ss->ar_seen);
	return CR_PASS;
}

static enum cr_status
spf_run(const void *conf, struct txn *t, enum stage st)
{
	if (t->msg == NULL)
		return CR_SKIP;
	if (st == STAGE_HEADER)
		return spf_header(t, t->hdr_name, t->hdr_value);
	return st == STAGE_EOM ? spf_eom(t) : spf_mail(conf, t);
}

const struct check_ops check_spf = {
	.name = "spf",
	.group = "spf",
	.stages = STAGE_BIT(STAGE_MAIL) | STAGE_BIT(STAGE_HEADER) |
	    STAGE_BIT(STAGE_EOM),
	.quiet_stages = STAGE_BIT(STAGE_HEADER),
	.flags = CHECK_INBOUND,
	.implemented = 1,
	.setup = spf_setup,
	.teardown = spf_teardown,
	.start = spf_start,
	.run = spf_run,
};
