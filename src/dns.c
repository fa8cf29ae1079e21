/*
 * dns.c - the DNS layer on libunbound (see dns.h).
 *
 * One ub_ctx per resolver in threaded async mode, and one thread of ours
 * that waits on ub_fd() and runs ub_process(), so every callback runs in
 * that thread.  A batch is shared between its owner and its outstanding
 * questions: it is freed when the owner has let go and no callback can
 * still touch it.  A question cancelled with ub_cancel() gets no callback;
 * one whose cancel fails is being delivered and drops its own reference.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <unbound.h>

#include "cidr.h"
#include "dns.h"
#include "metrics.h"
#include "util.h"

#define BATCH_MAX	64	/* questions in one batch */

/* Reverse zones of the documentation ranges (RFC 5737, RFC 3849), which
 * libunbound otherwise answers itself with NXDOMAIN. */
static const char *const doc_zones[] = {
	"2.0.192.in-addr.arpa. nodefault",
	"100.51.198.in-addr.arpa. nodefault",
	"113.0.203.in-addr.arpa. nodefault",
	"8.b.d.0.1.0.0.2.ip6.arpa. nodefault",
};

#define CACHE_SLOTS	8192	/* answers kept by portero, direct-mapped */
#define CACHE_TTL_MAX	3600	/* seconds */

/* One answer, shared by the cache and the questions that use it. */
struct answer {
	atomic_int	 refs;
	enum dns_status	 status;
	uint64_t	 expires;	/* now_ms() */
	size_t		 n;
	size_t		*len;
	uint8_t		**data;
};

struct slot {
	char		 name[256];
	int		 rrtype;
	struct answer	*a;
};

struct dns {
	struct ub_ctx	*ub;
	pthread_t	 thread;
	atomic_int	 stop;
	unsigned	 timeout_ms;
	/*
	 * libunbound answers from its cache through two threads and pipes
	 * (~0.05 ms a question, and it queues under load): answers with a
	 * TTL are also kept here and served without leaving the caller.
	 */
	pthread_mutex_t	 cache_lock;
	struct slot	*cache;
};

struct dns_query {
	struct dns_batch	*batch;
	char			 name[256];
	int			 rrtype;
	int			 async_id;
	int			 asked;		/* a callback may come */
	enum dns_status		 status;
	struct answer		*ans;		/* NULL unless DNS_OK */
};

struct dns_batch {
	struct dns	*dns;
	pthread_mutex_t	 lock;
	pthread_cond_t	 done;
	int		 refs;		/* owner + questions still asked */
	int		 pending;	/* questions without an answer */
	size_t		 n;
	struct dns_query q[BATCH_MAX];
};

const char *
dns_status_name(enum dns_status s)
{
	switch (s) {
	case DNS_PENDING:
		return "pending";
	case DNS_OK:
		return "ok";
	case DNS_NXDOMAIN:
		return "nxdomain";
	case DNS_NODATA:
		return "nodata";
	case DNS_SERVFAIL:
		return "servfail";
	case DNS_TIMEOUT:
		return "timeout";
	case DNS_ERROR:
		return "error";
	}
	return "error";
}

static void
answer_unref(struct answer *a)
{
	if (a != NULL && atomic_fetch_sub(&a->refs, 1) == 1)
		free(a);
}

/* A copy of a libunbound result in one allocation (refs = 1). */
static struct answer *
answer_new(enum dns_status st, const struct ub_result *r)
{
	struct answer	*a;
	size_t		 n = 0, bytes = 0, i;
	uint8_t		*p;

	if (st == DNS_OK)
		for (; r->data[n] != NULL; n++)
			bytes += (size_t)r->len[n];
	a = malloc(sizeof(*a) + n * (sizeof(size_t) + sizeof(uint8_t *)) +
	    bytes);
	if (a == NULL)
		return NULL;
	atomic_init(&a->refs, 1);
	a->status = st;
	a->n = n;
	a->len = (size_t *)(void *)(a + 1);
	a->data = (uint8_t **)(void *)(a->len + n);
	p = (uint8_t *)(a->data + n);
	for (i = 0; i < n; i++) {
		a->len[i] = (size_t)r->len[i];
		a->data[i] = p;
		memcpy(p, r->data[i], a->len[i]);
		p += a->len[i];
	}
	a->expires = now_ms() + (uint64_t)(r->ttl > CACHE_TTL_MAX ?
	    CACHE_TTL_MAX : r->ttl > 0 ? r->ttl : 0) * 1000;
	return a;
}

static size_t
slot_of(const char *name, int rrtype)
{
	uint32_t	 h = 2166136261u ^ (uint32_t)rrtype;

	for (; *name != '\0'; name++) {
		h ^= (uint8_t)(*name | 0x20);	/* names compare caselessly */
		h *= 16777619u;
	}
	return h % CACHE_SLOTS;
}

/* A fresh cached answer with one more reference, or NULL. */
static struct answer *
cache_get(struct dns *d, const char *name, int rrtype)
{
	struct slot	*sl = &d->cache[slot_of(name, rrtype)];
	struct answer	*a = NULL;

	(void)pthread_mutex_lock(&d->cache_lock);
	if (sl->a != NULL && sl->rrtype == rrtype &&
	    strcasecmp(sl->name, name) == 0 && sl->a->expires > now_ms()) {
		a = sl->a;
		atomic_fetch_add(&a->refs, 1);
	}
	(void)pthread_mutex_unlock(&d->cache_lock);
	return a;
}

static void
cache_put(struct dns *d, const char *name, int rrtype, struct answer *a)
{
	struct slot	*sl = &d->cache[slot_of(name, rrtype)];
	struct answer	*old;

	if (a->expires <= now_ms() || (a->status != DNS_OK &&
	    a->status != DNS_NXDOMAIN && a->status != DNS_NODATA))
		return;
	atomic_fetch_add(&a->refs, 1);
	(void)pthread_mutex_lock(&d->cache_lock);
	old = sl->a;
	(void)str_copy(sl->name, name, sizeof(sl->name));
	sl->rrtype = rrtype;
	sl->a = a;
	(void)pthread_mutex_unlock(&d->cache_lock);
	answer_unref(old);
}

static void *
dns_thread(void *arg)
{
	struct dns	*d = arg;
	struct pollfd	 pfd;

	pfd.fd = ub_fd(d->ub);
	pfd.events = POLLIN;
	while (!atomic_load(&d->stop)) {
		if (poll(&pfd, 1, 100) > 0)
			(void)ub_process(d->ub);
	}
	return NULL;
}

struct dns *
dns_new(const struct dns_conf *c, struct err *e)
{
	struct dns	*d;
	size_t		 i;
	int		 rc;

	d = calloc(1, sizeof(*d));
	if (d == NULL || (d->ub = ub_ctx_create()) == NULL) {
		free(d);
		err_set(e, "dns: cannot create the resolver");
		return NULL;
	}
	d->timeout_ms = c->timeout_ms;
	d->cache = calloc(CACHE_SLOTS, sizeof(*d->cache));
	if (d->cache == NULL) {
		ub_ctx_delete(d->ub);
		free(d);
		err_set(e, "dns: out of memory");
		return NULL;
	}
	(void)pthread_mutex_init(&d->cache_lock, NULL);
	/* no /etc/hosts, no /etc/resolv.conf: only what the config says */
	rc = ub_ctx_async(d->ub, 1);
	/* room for many connections' questions at once: libunbound's
	 * library defaults (16 ports, 1 MB caches) are for one client */
	if (rc == 0)
		rc = ub_ctx_set_option(d->ub, "outgoing-range:", "1024");
	if (rc == 0)
		rc = ub_ctx_set_option(d->ub, "num-queries-per-thread:",
		    "1024");
	if (rc == 0)
		rc = ub_ctx_set_option(d->ub, "msg-cache-size:", "16m");
	if (rc == 0)
		rc = ub_ctx_set_option(d->ub, "rrset-cache-size:", "32m");
	if (rc == 0 && c->forward) {
		rc = ub_ctx_set_option(d->ub, "do-not-query-localhost:", "no");
		/* the forwarders answer for private and documentation
		 * ranges too (an internal resolver knows the PTRs of the
		 * LAN): no locally served RFC 6303 zones */
		if (rc == 0)
			rc = ub_ctx_set_option(d->ub, "unblock-lan-zones:",
			    "yes");
		if (rc == 0)
			rc = ub_ctx_set_option(d->ub, "insecure-lan-zones:",
			    "yes");
		for (i = 0; rc == 0 && i < NELEM(doc_zones); i++)
			rc = ub_ctx_set_option(d->ub, "local-zone:",
			    doc_zones[i]);
		for (i = 0; rc == 0 && i < c->nservers; i++)
			rc = ub_ctx_set_fwd(d->ub, c->servers[i]);
	}
	if (rc != 0) {
		err_set(e, "dns: %s", ub_strerror(rc));
		goto fail;
	}
	if (pthread_create(&d->thread, NULL, dns_thread, d) != 0) {
		err_set(e, "dns: cannot start the resolver thread");
		goto fail;
	}
	return d;
fail:
	ub_ctx_delete(d->ub);
	(void)pthread_mutex_destroy(&d->cache_lock);
	free(d->cache);
	free(d);
	return NULL;
}

void
dns_free(struct dns *d)
{
	size_t	 i;

	if (d == NULL)
		return;
	atomic_store(&d->stop, 1);
	(void)pthread_join(d->thread, NULL);
	ub_ctx_delete(d->ub);
	for (i = 0; i < CACHE_SLOTS; i++)
		answer_unref(d->cache[i].a);
	(void)pthread_mutex_destroy(&d->cache_lock);
	free(d->cache);
	free(d);
}

struct dns_batch *
dns_batch_new(struct dns *d)
{
	struct dns_batch	*b;

	b = calloc(1, sizeof(*b));
	if (b == NULL)
		return NULL;
	b->dns = d;
	b->refs = 1;
	(void)pthread_mutex_init(&b->lock, NULL);
	(void)pthread_cond_init(&b->done, NULL);
	return b;
}

static void
batch_destroy(struct dns_batch *b)
{
	size_t	 i;

	for (i = 0; i < b->n; i++)
		answer_unref(b->q[i].ans);
	(void)pthread_mutex_destroy(&b->lock);
	(void)pthread_cond_destroy(&b->done);
	free(b);
}

/* Drops one reference; the caller holds the lock, which this releases. */
static void
batch_unref_unlock(struct dns_batch *b)
{
	int	 last = --b->refs == 0;

	(void)pthread_mutex_unlock(&b->lock);
	if (last)
		batch_destroy(b);
}

static enum dns_status
status_of(int err, const struct ub_result *r)
{
	if (err != 0 || r == NULL)
		return DNS_ERROR;
	if (r->havedata)
		return DNS_OK;
	if (r->nxdomain || r->rcode == 3)
		return DNS_NXDOMAIN;
	if (r->rcode == 0)
		return DNS_NODATA;
	return DNS_SERVFAIL;
}

static void
callback(void *arg, int err, struct ub_result *r)
{
	struct dns_query	*q = arg;
	struct dns_batch	*b = q->batch;

	enum dns_status		 st = status_of(err, r);
	struct answer		*a = r != NULL ? answer_new(st, r) : NULL;

	if (a != NULL)
		cache_put(b->dns, q->name, q->rrtype, a);
	if (r != NULL)
		ub_resolve_free(r);
	(void)pthread_mutex_lock(&b->lock);
	q->asked = 0;
	if (q->status == DNS_PENDING) {
		q->status = a != NULL || st != DNS_OK ? st : DNS_ERROR;
		q->ans = a;
		a = NULL;
		if (--b->pending == 0)
			(void)pthread_cond_signal(&b->done);
	}
	batch_unref_unlock(b);
	answer_unref(a);	/* answered after the deadline */
}

struct dns_query *
dns_batch_add(struct dns_batch *b, const char *name, int rrtype)
{
	struct dns_query	*q;
	int			 rc;

	if (b->n == BATCH_MAX)
		return NULL;
	q = &b->q[b->n++];
	q->batch = b;
	q->rrtype = rrtype;
	q->status = DNS_PENDING;
	if (str_copy(q->name, name, sizeof(q->name)) != 0) {
		q->status = DNS_ERROR;	/* a name no DNS can hold */
		return q;
	}
	q->ans = cache_get(b->dns, q->name, rrtype);
	if (q->ans != NULL) {
		q->status = q->ans->status;
		return q;
	}
	(void)pthread_mutex_lock(&b->lock);
	b->refs++;
	b->pending++;
	q->asked = 1;
	(void)pthread_mutex_unlock(&b->lock);
	rc = ub_resolve_async(b->dns->ub, q->name, rrtype, 1, q, callback,
	    &q->async_id);
	if (rc != 0) {
		(void)pthread_mutex_lock(&b->lock);
		q->asked = 0;
		q->status = DNS_ERROR;
		b->pending--;
		b->refs--;
		(void)pthread_mutex_unlock(&b->lock);
	}
	return q;
}

void
dns_batch_wait(struct dns_batch *b)
{
	dns_batch_wait_ms(b, b->dns->timeout_ms);
}

void
dns_batch_wait_ms(struct dns_batch *b, unsigned ms)
{
	struct timespec	 until;
	uint64_t	 ns;

	(void)clock_gettime(CLOCK_REALTIME, &until);
	ns = (uint64_t)until.tv_nsec + (uint64_t)ms * 1000000;
	until.tv_sec += (time_t)(ns / 1000000000);
	until.tv_nsec = (long)(ns % 1000000000);
	(void)pthread_mutex_lock(&b->lock);
	while (b->pending > 0)
		if (pthread_cond_timedwait(&b->done, &b->lock, &until) ==
		    ETIMEDOUT)
			break;
	(void)pthread_mutex_unlock(&b->lock);
}

void
dns_batch_free(struct dns_batch *b)
{
	size_t	 i;

	if (b == NULL)
		return;
	(void)pthread_mutex_lock(&b->lock);
	for (i = 0; i < b->n; i++) {
		struct dns_query *q = &b->q[i];

		if (q->status == DNS_PENDING)
			q->status = DNS_TIMEOUT;
		metrics_inc(M.dns_queries, dns_status_name(q->status), 1);
		if (!q->asked)
			continue;
		/* a successful cancel means no callback: drop its ref */
		if (ub_cancel(b->dns->ub, q->async_id) == 0) {
			q->asked = 0;
			b->refs--;
		}
	}
	batch_unref_unlock(b);
}

enum dns_status
dns_query_status(const struct dns_query *q)
{
	enum dns_status	 s;

	(void)pthread_mutex_lock(&q->batch->lock);
	s = q->status == DNS_PENDING ? DNS_TIMEOUT : q->status;
	(void)pthread_mutex_unlock(&q->batch->lock);
	return s;
}

size_t
dns_query_count(const struct dns_query *q)
{
	size_t	 n = 0;

	if (dns_query_status(q) == DNS_OK && q->ans != NULL)
		n = q->ans->n;
	return n;
}

const uint8_t *
dns_query_data(const struct dns_query *q, size_t i, size_t *len)
{
	if (i >= dns_query_count(q))
		return NULL;
	*len = q->ans->len[i];
	return q->ans->data[i];
}

int
dns_reverse_name(const struct ipaddr *a, const char *zone, char *buf,
    size_t len)
{
	static const char	 hex[] = "0123456789abcdef";
	size_t			 off = 0;
	int			 i, n;

	if (a->v4) {
		n = snprintf(buf, len, "%u.%u.%u.%u.%s", a->b[15], a->b[14],
		    a->b[13], a->b[12], zone);
		return n < 0 || (size_t)n >= len ? -1 : 0;
	}
	if (len < 64 + 1)
		return -1;
	for (i = 15; i >= 0; i--) {
		buf[off++] = hex[a->b[i] & 15];
		buf[off++] = '.';
		buf[off++] = hex[a->b[i] >> 4];
		buf[off++] = '.';
	}
	n = snprintf(buf + off, len - off, "%s", zone);
	return n < 0 || (size_t)n >= len - off ? -1 : 0;
}

int
dns_name_from_wire(const uint8_t *p, size_t len, char *buf, size_t blen)
{
	size_t	 i = 0, o = 0;

	while (i < len) {
		size_t l = p[i++];

		if (l == 0)
			break;
		if (l > 63 || i + l > len)
			return -1;
		if (o + l + 2 > blen)
			return -1;
		if (o > 0)
			buf[o++] = '.';
		/* a label with a dot, NUL or control byte cannot be shown
		 * as a host name without lying about it */
		for (size_t k = 0; k < l; k++)
			if (p[i + k] <= 0x20 || p[i + k] >= 0x7f ||
			    p[i + k] == '.')
				return -1;
		memcpy(buf + o, p + i, l);
		o += l;
		i += l;
	}
	if (blen == 0)
		return -1;
	buf[o] = '\0';
	return 0;
}

unsigned
dns_timeout_ms(const struct dns *d)
{
	return d->timeout_ms;
}
