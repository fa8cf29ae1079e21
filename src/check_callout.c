/*
 * check_callout.c - recipient verification callouts at RCPT (group
 * "callout").
 *
 * For a recipient of a configured domain, the cached answer is used while
 * fresh (known: callout.positive_ttl, asked again after
 * positive_refresh; unknown: negative_ttl / negative_refresh); otherwise
 * the internal MTA is asked (smtpc.h) and the answer cached.  2xx: the
 * recipient passes; 5xx: 550 5.1.1; anything else: 450 4.1.1 (or accept,
 * on_error), except that a stale cached answer is used when the target
 * cannot answer.  The recipients of one transaction share one connection
 * per target (closed at end of headers or of the message); at most
 * callout.max_connections sessions per target run at once; a target that
 * cannot be reached is not tried again for callout.down_interval.  The
 * dictionary-attack brake: a client IP that sent callout.brake_limit
 * unknown recipients within callout.brake_window gets 421 4.7.0 for every
 * later recipient, without a callout.
 *
 * Conf is read-only after setup except the per-target counters, which are
 * guarded by the target's mutex: thread-safe.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "ctx.h"
#include "greylist.h"
#include "log.h"
#include "metrics.h"
#include "smtpc.h"
#include "store.h"
#include "util.h"

#define CLOSE_MS	1000	/* QUIT at the end waits at most this */

struct co_target {
	char		*domain;	/* lower-case */
	char		*host;
	unsigned	 port;
	char		 label[300];	/* host:port, for logs and metrics */
	pthread_mutex_t	 lock;
	pthread_cond_t	 cond;
	unsigned	 active;	/* sessions open now */
	uint64_t	 down_until;	/* now_ms() before which it is down */
	int		 sync_ok;	/* lock and cond initialised */
};

struct co_conf {
	struct co_target *targets;
	size_t		 ntargets;
	char		*helo;		/* "" = the MTA's name (macro j) */
	uint64_t	 timeout_ms, max_time_ms, down_ms;
	unsigned	 pos_ttl, neg_ttl, pos_refresh, neg_refresh;
	unsigned	 max_conn, brake_limit, brake_window;
};

/* Per message: one open session per target. */
struct co_sess {
	struct co_target	*tg;
	struct smtpc		*s;
};

struct co_msg {
	struct co_sess	*v;
	size_t		 n;
};

static void
co_teardown(void *p)
{
	struct co_conf	*cc = p;
	size_t		 i;

	if (cc == NULL)
		return;
	for (i = 0; i < cc->ntargets; i++) {
		free(cc->targets[i].domain);
		free(cc->targets[i].host);
		if (cc->targets[i].sync_ok) {
			(void)pthread_mutex_destroy(&cc->targets[i].lock);
			(void)pthread_cond_destroy(&cc->targets[i].cond);
		}
	}
	free(cc->targets);
	free(cc->helo);
	free(cc);
}

static int
co_setup(const struct cfg *cfg, const config_setting_t *g, void **conf,
    struct err *e)
{
	const config_setting_t	*l = config_setting_get_member(g, "domains");
	struct co_conf		*cc;
	struct co_target	*tg;
	size_t			 i, j, n;

	(void)cfg;
	if ((cc = calloc(1, sizeof(*cc))) == NULL) {
		err_set(e, "out of memory");
		return -1;
	}
	*conf = cc;
	cc->timeout_ms = cv_duration(g, "callout.timeout") * 1000;
	cc->max_time_ms = cv_duration(g, "callout.max_time") * 1000;
	cc->down_ms = cv_duration(g, "callout.down_interval") * 1000;
	cc->pos_ttl = (unsigned)cv_duration(g, "callout.positive_ttl");
	cc->neg_ttl = (unsigned)cv_duration(g, "callout.negative_ttl");
	cc->pos_refresh = (unsigned)cv_duration(g, "callout.positive_refresh");
	cc->neg_refresh = (unsigned)cv_duration(g, "callout.negative_refresh");
	cc->max_conn = (unsigned)cv_int(g, "callout.max_connections");
	cc->brake_limit = (unsigned)cv_int(g, "callout.brake_limit");
	cc->brake_window = (unsigned)cv_duration(g, "callout.brake_window");
	if ((cc->helo = strdup(cv_string(g, "callout.helo"))) == NULL) {
		err_set(e, "out of memory");
		return -1;
	}
	n = l != NULL ? (size_t)config_setting_length(l) : 0;
	if (n == 0) {
		err_set(e, "setting 'callout.domains': no domain to verify "
		    "(set callout.enabled = false to turn callouts off)");
		return -1;
	}
	if ((cc->targets = calloc(n, sizeof(*cc->targets))) == NULL) {
		err_set(e, "out of memory");
		return -1;
	}
	for (i = 0; i < n; i++) {
		const config_setting_t *d = config_setting_get_elem(l,
		    (unsigned)i);

		tg = &cc->targets[i];
		cc->ntargets++;
		tg->domain = strdup(cv_string(d, "callout.domains.[].domain"));
		tg->host = strdup(cv_string(d, "callout.domains.[].host"));
		if (tg->domain == NULL || tg->host == NULL) {
			err_set(e, "out of memory");
			return -1;
		}
		str_lower(tg->domain);
		tg->port = (unsigned)cv_int(d, "callout.domains.[].port");
		if (*tg->domain == '\0' || *tg->host == '\0') {
			err_set(e, "setting 'callout.domains.[%zu]': domain and "
			    "host are required", i);
			return -1;
		}
		for (j = 0; j < i; j++)
			if (strcmp(cc->targets[j].domain, tg->domain) == 0) {
				err_set(e, "setting 'callout.domains.[%zu]': "
				    "domain '%s' is listed twice", i,
				    tg->domain);
				return -1;
			}
		(void)snprintf(tg->label, sizeof(tg->label), "%s:%u",
		    tg->host, tg->port);
		if (pthread_mutex_init(&tg->lock, NULL) != 0 ||
		    pthread_cond_init(&tg->cond, NULL) != 0) {
			err_set(e, "cannot initialise a mutex");
			return -1;
		}
		tg->sync_ok = 1;
	}
	return 0;
}

static struct co_target *
target_of(const struct co_conf *cc, const char *domain)
{
	size_t	 i;

	for (i = 0; i < cc->ntargets; i++)
		if (strcmp(cc->targets[i].domain, domain) == 0)
			return &cc->targets[i];
	return NULL;
}

static void
release(struct co_target *tg)
{
	(void)pthread_mutex_lock(&tg->lock);
	tg->active--;
	(void)pthread_cond_signal(&tg->cond);
	(void)pthread_mutex_unlock(&tg->lock);
}

/*
 * Takes a session slot of the target; 0, or -1 with e set when the
 * target is down or every slot stays busy until the deadline.
 */
static int
acquire(const struct co_conf *cc, struct co_target *tg, uint64_t deadline,
    int *down, struct err *e)
{
	struct timespec	 ts;
	uint64_t	 now = now_ms(), wall;
	int		 rc = 0;

	*down = 0;
	(void)pthread_mutex_lock(&tg->lock);
	if (now < tg->down_until) {
		err_set(e, "callout %s: target down, not retried for %llu s",
		    tg->label, (unsigned long long)(tg->down_until - now +
		    999) / 1000);
		*down = 1;
		rc = -1;
	}
	while (rc == 0 && tg->active >= cc->max_conn) {
		if ((now = now_ms()) >= deadline) {
			err_set(e, "callout %s: %u sessions busy (callout."
			    "max_connections)", tg->label, cc->max_conn);
			rc = -1;
			break;
		}
		(void)clock_gettime(CLOCK_REALTIME, &ts);
		wall = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec /
		    1000000 + (deadline - now);
		ts.tv_sec = (time_t)(wall / 1000);
		ts.tv_nsec = (long)(wall % 1000) * 1000000;
		(void)pthread_cond_timedwait(&tg->cond, &tg->lock, &ts);
	}
	if (rc == 0)
		tg->active++;
	(void)pthread_mutex_unlock(&tg->lock);
	return rc;
}

static void
mark_down(const struct co_conf *cc, struct co_target *tg)
{
	(void)pthread_mutex_lock(&tg->lock);
	tg->down_until = now_ms() + cc->down_ms;
	(void)pthread_mutex_unlock(&tg->lock);
}

static void
close_sessions(struct co_msg *cm)
{
	size_t	 i;

	for (i = 0; cm != NULL && i < cm->n; i++)
		if (cm->v[i].s != NULL) {
			smtpc_close(cm->v[i].s, now_ms() + CLOSE_MS);
			cm->v[i].s = NULL;
			release(cm->v[i].tg);
		}
}

static void
co_msg_end(const void *conf, void *state)
{
	(void)conf;
	close_sessions(state);
}

/* The message's session slot for tg (created on first use). */
static struct co_sess *
session_of(const struct co_conf *cc, struct txn *t, struct co_target *tg)
{
	struct co_msg	*cm = txn_msg_state(t);

	if (cm == NULL) {
		cm = arena_calloc(t->msg->arena, 1, sizeof(*cm));
		if (cm == NULL || (cm->v = arena_calloc(t->msg->arena,
		    cc->ntargets, sizeof(*cm->v))) == NULL)
			return NULL;
		cm->n = cc->ntargets;
		txn_msg_state_set(t, cm);
	}
	return &cm->v[tg - cc->targets];
}

static uint64_t
step(const struct co_conf *cc, uint64_t deadline)
{
	uint64_t	 d = now_ms() + cc->timeout_ms;

	return d < deadline ? d : deadline;
}

/*
 * Asks the target about rcpt on the message's session (opened if
 * needed).  *down is set when the target could not be reached.
 */
static enum smtpc_result
probe(const struct co_conf *cc, struct txn *t, struct co_target *tg,
    const char *rcpt, int *down, struct smtp_reply *rep, struct err *e)
{
	struct co_sess		*cs = session_of(cc, t, tg);
	enum smtpc_result	 res;
	uint64_t		 t0 = now_ms(), deadline = t0 + cc->max_time_ms;
	const char		*helo;
	int			 again;

	*down = 0;
	if (cs == NULL) {
		t->nomem = 1;
		err_set(e, "out of memory");
		return SMTPC_ERROR;
	}
	helo = *cc->helo != '\0' ? cc->helo : t->conn->myhostname != NULL ?
	    t->conn->myhostname : "localhost";
	for (again = cs->s != NULL; ; again = 0) {
		if (cs->s == NULL) {
			if (acquire(cc, tg, deadline, down, e) != 0)
				return SMTPC_ERROR;
			cs->tg = tg;
			cs->s = smtpc_open(tg->host, tg->port, helo,
			    step(cc, deadline), &res, rep, e);
			if (cs->s == NULL) {
				release(tg);
				if (res == SMTPC_ERROR) {
					mark_down(cc, tg);
					*down = 1;
				}
				break;
			}
		}
		res = smtpc_rcpt(cs->s, rcpt, step(cc, deadline), rep, e);
		if (!smtpc_usable(cs->s)) {
			smtpc_close(cs->s, 0);
			cs->s = NULL;
			release(tg);
			/* a kept session may have timed out at the target:
			 * one fresh try */
			if (res == SMTPC_ERROR && again && now_ms() < deadline)
				continue;
		}
		break;
	}
	metrics_observe(M.callout_seconds, tg->label,
	    (double)(now_ms() - t0) / 1000.0);
	return res;
}

static void
result(struct txn *t, const char *verify, const char *metric)
{
	t->rcpt->verify = verify;
	metrics_inc(M.callouts, metric, 1);
}

static enum cr_status
brake(struct txn *t)
{
	result(t, "brake", "brake");
	txn_verdict(t, ACT_TEMPFAIL, "421", "4.7.0",
	    "Too many unknown recipients, closing connection");
	return CR_FAIL;
}

static enum cr_status
unknown(const struct co_conf *cc, struct txn *t, struct store *st,
    int cached)
{
	struct err	 e;
	char		 key[80], ip[64];
	uint32_t	 n = 0;
	const char	*text;

	result(t, cached ? "reject-cached" : "reject", "reject");
	text = arena_printf(t->msg->arena, "<%s>: Recipient address "
	    "rejected: User unknown", t->rcpt->addr.addr);
	txn_verdict(t, ACT_REJECT, "550", "5.1.1", text != NULL ? text :
	    "Recipient address rejected: User unknown");
	if (cc->brake_limit == 0 || !t->conn->has_ip)
		return CR_FAIL;
	t->conn->unknown_rcpts++;
	ipaddr_fmt(&t->conn->ip, ip, sizeof(ip));
	(void)grey_key_brake(key, sizeof(key), ip);
	err_clear(&e);
	if (st != NULL && store_incr(st, key, cc->brake_window, &n, &e) !=
	    RC_OK)
		log_conn(t->conn, LOG_WARNING, "callout: brake counter: %s",
		    e.msg);
	if (n < t->conn->unknown_rcpts)
		n = t->conn->unknown_rcpts;
	if (n >= cc->brake_limit && !t->conn->brake) {
		t->conn->brake = 1;
		log_conn(t->conn, LOG_NOTICE, "callout: client %s sent %u "
		    "unknown recipients within %u s: later recipients get "
		    "421", ip, n, cc->brake_window);
	}
	return CR_FAIL;
}

/* The target could not say: 450 4.1.1, or accept (on_error). */
static enum cr_status
unverified(struct txn *t, const char *verify, const char *metric,
    const struct err *e)
{
	const char	*text;

	result(t, verify, metric);
	if (t->check->on_error == ON_ERROR_ACCEPT) {
		txn_error(t, arena_strdup(t->msg->arena, e->msg));
		return CR_ERROR;
	}
	metrics_inc(M.check_errors, "callout", 1);
	log_conn(t->conn, LOG_WARNING, "callout: %s; on_error=tempfail",
	    e->msg);
	text = arena_printf(t->msg->arena, "<%s>: Recipient address "
	    "rejected: unverified address", t->rcpt->addr.addr);
	txn_verdict(t, ACT_TEMPFAIL, "450", "4.1.1", text != NULL ? text :
	    "Recipient address rejected: unverified address");
	return CR_FAIL;
}

static void
cache_put(const struct co_conf *cc, struct txn *t, struct store *st,
    const char *key, int known, uint64_t now)
{
	struct store_rec	 r;
	struct err		 e;

	if (st == NULL)
		return;
	memset(&r, 0, sizeof(r));
	r.first = r.last = now;
	r.value = known;
	r.expires = now + (known ? cc->pos_ttl : cc->neg_ttl);
	err_clear(&e);
	if (store_put(st, key, &r, &e) != RC_OK)
		log_conn(t->conn, LOG_WARNING, "callout: caching %s: %s",
		    key + 2, e.msg);
}

static enum cr_status
co_run(const void *conf, struct txn *t, enum stage stg)
{
	const struct co_conf	*cc = conf;
	struct co_target	*tg;
	struct store		*st;
	struct store_rec	 r;
	struct smtp_reply	 rep;
	struct err		 e, se;
	enum smtpc_result	 res;
	char			 key[600], ip[64];
	uint64_t		 now, age;
	const char		*what;
	int			 stale = -1, down;
	enum rc			 rc;

	if (stg == STAGE_EOH) {
		/* the recipients are known: give the sessions back */
		close_sessions(txn_msg_state(t));
		return CR_SKIP;
	}
	if (t->rcpt == NULL || t->rcpt->addr.addr == NULL ||
	    (tg = target_of(cc, t->rcpt->addr.domain)) == NULL)
		return CR_SKIP;
	if (t->conn->brake)
		return brake(t);
	err_clear(&se);
	st = cfg_store(t->conn->cfg, &se);
	now = store_now();
	if (st != NULL && cc->brake_limit > 0 && t->conn->has_ip) {
		ipaddr_fmt(&t->conn->ip, ip, sizeof(ip));
		(void)grey_key_brake(key, sizeof(key), ip);
		if (store_get(st, key, &r, &se) == RC_OK &&
		    r.count >= cc->brake_limit) {
			t->conn->brake = 1;
			return brake(t);
		}
	}
	if (grey_key_callout(key, sizeof(key), t->rcpt->addr.addr) != 0)
		return CR_SKIP;		/* cannot be a valid address */
	str_lower(key);
	rc = st != NULL ? store_get(st, key, &r, &se) : RC_TEMP;
	if (rc == RC_OK && (r.value == 0 || r.value == 1)) {
		age = now > r.first ? now - r.first : 0;
		if (age < (r.value ? cc->pos_refresh : cc->neg_refresh)) {
			metrics_inc(M.callout_cache, "hit", 1);
			if (r.value == 0)
				return unknown(cc, t, st, 1);
			result(t, "accept-cached", "accept");
			return CR_PASS;
		}
		metrics_inc(M.callout_cache, "stale", 1);
		stale = r.value;
	} else
		metrics_inc(M.callout_cache, "miss", 1);

	err_clear(&e);
	memset(&rep, 0, sizeof(rep));
	res = probe(cc, t, tg, t->rcpt->addr.addr, &down, &rep, &e);
	if (t->nomem)
		return CR_ERROR;
	switch (res) {
	case SMTPC_ACCEPT:
		cache_put(cc, t, st, key, 1, now);
		result(t, "accept", "accept");
		return CR_PASS;
	case SMTPC_REJECT:
		cache_put(cc, t, st, key, 0, now);
		return unknown(cc, t, st, 0);
	default:
		break;
	}
	if (e.msg[0] == '\0')
		err_set(&e, "callout %s: %d %s", tg->label, rep.code,
		    rep.text);
	if (stale == 1) {
		log_conn(t->conn, LOG_INFO, "%s; using the cached answer",
		    e.msg);
		result(t, "accept-stale", "accept");
		return CR_PASS;
	}
	if (stale == 0) {
		log_conn(t->conn, LOG_INFO, "%s; using the cached answer",
		    e.msg);
		return unknown(cc, t, st, 1);
	}
	what = down ? "down" : res == SMTPC_TEMP ? "tempfail" : "error";
	return unverified(t, what, what, &e);
}

const struct check_ops check_callout = {
	.name = "callout",
	.group = "callout",
	.stages = STAGE_BIT(STAGE_RCPT) | STAGE_BIT(STAGE_EOH),
	.quiet_stages = STAGE_BIT(STAGE_EOH),
	.flags = CHECK_INBOUND | CHECK_STORE,
	.implemented = 1,
	.setup = co_setup,
	.teardown = co_teardown,
	.run = co_run,
	.msg_end = co_msg_end,
};
