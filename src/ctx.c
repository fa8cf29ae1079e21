/*
 * ctx.c - connection and message contexts, and the txn_* helpers checks
 * use to report.  A context belongs to one libmilter thread: no locking.
 * Allocation failures are remembered in txn->nomem so the pipeline can
 * answer tempfail instead of losing a reason silently.
 */
#include <ctype.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "cfg.h"
#include "ctx.h"
#include "log.h"
#include "util.h"

#define CONN_ARENA_LIMIT	(1u << 20)	/* bytes per connection */
#define MSG_ARENA_LIMIT		(32u << 20)	/* bytes per message */
#define QID_MAX			64		/* bytes of a queue id */

static atomic_uint_fast32_t conn_seq;
static pthread_once_t conn_seq_once = PTHREAD_ONCE_INIT;

/* Connection ids continue from a random point per process, so ids differ
 * across restarts of the milter child and stay unique within one. */
static void
conn_seq_init(void)
{
	uint32_t	 seed;

	if (getrandom(&seed, sizeof(seed), 0) != (ssize_t)sizeof(seed))
		seed = (uint32_t)now_ms() ^ (uint32_t)getpid() << 16;
	atomic_store(&conn_seq, seed);
}

struct conn_ctx *
conn_ctx_new(struct cfg *cfg)
{
	struct conn_ctx	*c;
	uint32_t	 n;

	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	c->arena = arena_new(CONN_ARENA_LIMIT);
	if (c->arena == NULL) {
		free(c);
		return NULL;
	}
	c->cfg = cfg;
	(void)pthread_once(&conn_seq_once, conn_seq_init);
	n = (uint32_t)atomic_fetch_add(&conn_seq, 1);
	(void)snprintf(c->id, sizeof(c->id), "%08x", (unsigned)n);
	c->start_ms = now_ms();
	c->client_addr = "";
	c->pending.action = ACT_CONTINUE;
	c->would.action = ACT_CONTINUE;
	return c;
}

void
conn_ctx_free(struct conn_ctx *c)
{
	if (c == NULL)
		return;
	msg_ctx_free(c->msg);
	arena_free(c->arena);
	free(c);
}

struct msg_ctx *
msg_ctx_new(struct conn_ctx *c)
{
	struct msg_ctx	*m;

	m = calloc(1, sizeof(*m));
	if (m == NULL)
		return NULL;
	m->arena = arena_new(MSG_ARENA_LIMIT);
	if (m->arena == NULL) {
		free(m);
		return NULL;
	}
	m->conn = c;
	c->nmsg++;
	(void)snprintf(m->id, sizeof(m->id), "%s.%u", c->id, c->nmsg);
	m->start_ms = now_ms();
	m->queue_id = "NOQUEUE";
	m->rcpt_tail = &m->rcpts;
	m->edit_tail = &m->edits;
	m->pending.action = ACT_CONTINUE;
	m->would.action = ACT_CONTINUE;
	return m;
}

void
msg_ctx_free(struct msg_ctx *m)
{
	size_t	 i;

	if (m == NULL)
		return;
	if (m->conn != NULL && m->conn->msg == m)
		m->conn->msg = NULL;
	if (m->conn != NULL && m->conn->cfg != NULL)
		for (i = 0; i < m->conn->cfg->nchecks && i < NELEM(m->state);
		    i++) {
			const struct check_inst *ci = &m->conn->cfg->checks[i];

			if (m->state[i] != NULL && ci->ops->msg_end != NULL)
				ci->ops->msg_end(ci->conf, m->state[i]);
		}
	spool_free(m->spool);
	arena_free(m->arena);
	free(m);
}

/*
 * Postfix queue ids are [0-9A-Za-z] (long ones included); anything else
 * in the macro is kept escaped, so it can never forge a log line.
 */
void
msg_set_queue_id(struct msg_ctx *m, const char *qid)
{
	struct buf	 b;
	size_t		 i;
	int		 plain = 1;
	char		*p;

	if (qid == NULL || *qid == '\0' || strcmp(m->queue_id, qid) == 0)
		return;
	for (i = 0; qid[i] != '\0' && plain; i++)
		plain = isalnum((unsigned char)qid[i]) && i < QID_MAX;
	if (plain) {
		p = arena_strdup(m->arena, qid);
	} else {
		/* escaped and cut: at most QID_MAX bytes in the log */
		buf_init(&b, QID_MAX);
		if (log_escape(&b, qid, QID_MAX) != RC_OK)
			buf_mark_cut(&b, "...");
		p = arena_strdup(m->arena, buf_str(&b));
		buf_free(&b);
	}
	if (p != NULL)
		m->queue_id = p;
}

static struct hdr_edit *header_edit(struct txn *, const char *, const char *,
	    int);

static struct arena *
txn_arena(struct txn *t)
{
	return t->msg != NULL ? t->msg->arena : t->conn->arena;
}

void
txn_score(struct txn *t, const char *detail, int32_t points)
{
	txn_score_ex(t, detail, points, 0);
}

void
txn_score_ex(struct txn *t, const char *detail, int32_t points, int dry)
{
	struct reason	*r, **head;

	r = arena_calloc(txn_arena(t), 1, sizeof(*r));
	if (r == NULL || (detail = arena_strdup(txn_arena(t), detail)) ==
	    NULL) {
		t->nomem = 1;
		return;
	}
	r->check = t->check->ops->name;
	r->detail = detail;
	r->points = points;
	r->stage = t->stage;
	r->dry = t->check->module_dry_run || dry;
	head = t->msg != NULL ? &t->msg->reasons : &t->conn->reasons;
	while (*head != NULL)
		head = &(*head)->next;
	*head = r;
}

void
txn_verdict(struct txn *t, enum action a, const char *code, const char *dsn,
    const char *text)
{
	t->verdict.action = a;
	t->verdict.code = code;
	t->verdict.dsn = dsn;
	t->verdict.text = text;
	t->verdict.decided_by = t->check->ops->name;
}

void
txn_error(struct txn *t, const char *detail)
{
	t->error = detail;
}

void
txn_header_add(struct txn *t, const char *name, const char *value)
{
	header_edit(t, name, value, 0);
}

void
txn_header_insert(struct txn *t, const char *name, const char *value)
{
	header_edit(t, name, value, 1);
}

void
txn_header_remove(struct txn *t, const char *name, unsigned idx)
{
	struct hdr_edit	*e;

	if ((e = header_edit(t, name, "", 0)) == NULL)
		return;
	e->remove = 1;
	e->idx = idx;
}

void
txn_header_change(struct txn *t, const char *name, unsigned idx,
    const char *value)
{
	struct hdr_edit	*e;

	if ((e = header_edit(t, name, value, 0)) == NULL)
		return;
	e->change = 1;
	e->idx = idx;
}

static struct hdr_edit *
header_edit(struct txn *t, const char *name, const char *value, int top)
{
	struct hdr_edit	*e;

	if (t->msg == NULL) {
		t->nomem = 1;
		return NULL;
	}
	e = arena_calloc(t->msg->arena, 1, sizeof(*e));
	if (e == NULL) {
		t->nomem = 1;
		return NULL;
	}
	e->top = top;
	e->name = arena_strdup(t->msg->arena, name);
	e->value = arena_strdup(t->msg->arena, value);
	if (e->name == NULL || e->value == NULL) {
		t->nomem = 1;
		return NULL;
	}
	*t->msg->edit_tail = e;
	t->msg->edit_tail = &e->next;
	return e;
}

static int32_t
sum(const struct reason *r)
{
	int64_t	 s = 0;

	for (; r != NULL; r = r->next)
		if (!r->dry)
			s += r->points;
	if (s > INT32_MAX)
		s = INT32_MAX;
	if (s < INT32_MIN)
		s = INT32_MIN;
	return (int32_t)s;
}

int32_t
conn_score(const struct conn_ctx *c)
{
	return sum(c->reasons);
}

int32_t
msg_score(const struct msg_ctx *m)
{
	int64_t	 s = (int64_t)conn_score(m->conn) + sum(m->reasons);

	return s > INT32_MAX ? INT32_MAX : s < INT32_MIN ? INT32_MIN :
	    (int32_t)s;
}

int32_t
txn_score_total(const struct txn *t)
{
	return t->msg != NULL ? msg_score(t->msg) : conn_score(t->conn);
}

void *
txn_state(const struct txn *t)
{
	return t->state[t->idx];
}

void
txn_state_set(struct txn *t, void *p)
{
	t->state[t->idx] = p;
}

void *
txn_msg_state(const struct txn *t)
{
	if (t->msg == NULL || t->idx >= NELEM(t->msg->state))
		return NULL;
	return t->msg->state[t->idx];
}

void
txn_msg_state_set(struct txn *t, void *p)
{
	if (t->msg != NULL && t->idx < NELEM(t->msg->state))
		t->msg->state[t->idx] = p;
}
