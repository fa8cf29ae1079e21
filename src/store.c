/*
 * store.c - the state store's generic half (see store.h): key checks and
 * shaping, the record text form, the clock, metrics, and dispatch to the
 * backend (store_lmdb.c, store_redis.c).
 *
 * Thread-safe: a struct store is read-only after store_open, the clock
 * offset is atomic, and the backends lock what they share.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "metrics.h"
#include "store.h"

struct store {
	const struct store_ops	*ops;
	void			*h;
};

static atomic_llong	 clock_offset;

uint64_t
store_now(void)
{
	long long	 t;

	t = (long long)time(NULL) + atomic_load(&clock_offset);
	return t > 0 ? (uint64_t)t : 0;
}

void
store_set_clock_offset(int64_t seconds)
{
	atomic_store(&clock_offset, (long long)seconds);
}

/*
 * Reads one decimal field ending at a space (sep) or at the end (last).
 * Digits only (a leading '-' if neg), at most max in magnitude.
 */
static int
field(const char **pp, const char *end, int neg, uint64_t max, int last,
    uint64_t *out, int *minus)
{
	const char	*p = *pp;
	uint64_t	 v = 0;
	int		 n = 0;

	*minus = 0;
	if (neg && p < end && *p == '-') {
		*minus = 1;
		p++;
	}
	for (; p < end && *p >= '0' && *p <= '9'; p++, n++) {
		unsigned d = (unsigned)(*p - '0');

		if (v > (max - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	if (n == 0)
		return -1;
	if (last) {
		if (p != end)
			return -1;
	} else {
		if (p >= end || *p != ' ')
			return -1;
		p++;
	}
	*pp = p;
	*out = v;
	return 0;
}

int
store_rec_parse(const char *s, size_t len, struct store_rec *r)
{
	const char	*p = s, *end = s + len;
	uint64_t	 first, last, expires, count, value;
	int		 minus;

	if (len < 2 || s[0] != '1' || s[1] != ' ')
		return -1;
	p += 2;
	if (field(&p, end, 0, UINT64_MAX, 0, &first, &minus) != 0 ||
	    field(&p, end, 0, UINT64_MAX, 0, &last, &minus) != 0 ||
	    field(&p, end, 0, UINT64_MAX, 0, &expires, &minus) != 0 ||
	    field(&p, end, 0, UINT32_MAX, 0, &count, &minus) != 0)
		return -1;
	/* INT32_MIN has one more unit than INT32_MAX */
	if (field(&p, end, 1, (uint64_t)INT32_MAX + 1, 1, &value, &minus) !=
	    0 || (!minus && value > INT32_MAX))
		return -1;
	r->first = first;
	r->last = last;
	r->expires = expires;
	r->count = (uint32_t)count;
	r->value = minus ? (int32_t)(-(int64_t)value) : (int32_t)value;
	return 0;
}

int
store_rec_format(const struct store_rec *r, char *out, size_t size)
{
	int	 n;

	n = snprintf(out, size, "1 %llu %llu %llu %lu %ld",
	    (unsigned long long)r->first, (unsigned long long)r->last,
	    (unsigned long long)r->expires, (unsigned long)r->count,
	    (long)r->value);
	if (n < 0 || (size_t)n >= size)
		return -1;
	return n;
}

/* 64-bit FNV-1a. */
static uint64_t
fnv1a64(const char *s)
{
	uint64_t	 h = 0xcbf29ce484222325ULL;

	for (; *s != '\0'; s++) {
		h ^= (uint8_t)*s;
		h *= 0x100000001b3ULL;
	}
	return h;
}

void
store_key_shape(const char *key, char *out)
{
	size_t	 n = strlen(key);

	if (n <= STORE_KEY_MAX) {
		memcpy(out, key, n + 1);
		return;
	}
	/* STORE_KEY_MAX - 17 bytes, '#', 16 hex digits: STORE_KEY_MAX */
	memcpy(out, key, STORE_KEY_MAX - 17);
	(void)snprintf(out + STORE_KEY_MAX - 17, 18, "#%016llx",
	    (unsigned long long)fnv1a64(key));
}

/* Keys and prefixes: printable bytes, no space or control (UTF-8 bytes
 * of internationalised addresses are allowed). */
static int
key_ok(const char *k, int empty_ok)
{
	const unsigned char	*p = (const unsigned char *)k;

	if (k == NULL || (*p == '\0' && !empty_ok))
		return 0;
	for (; *p != '\0'; p++)
		if (*p < 0x21 || *p == 0x7f)
			return 0;
	return 1;
}

static double
mono(void)
{
	struct timespec	 ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Metrics for one operation; NOTFOUND is an answer, not an error. */
static enum rc
done(const char *op, double t0, enum rc rc)
{
	metrics_observe(M.store_seconds, op, mono() - t0);
	if (rc != RC_OK && rc != RC_NOTFOUND)
		metrics_inc(M.store_errors, op, 1);
	return rc;
}

static enum rc
bad_key(const char *op, double t0, struct err *e)
{
	err_set(e, "store: %s: invalid key (empty, or a space or control "
	    "character)", op);
	return done(op, t0, RC_INVAL);
}

struct store *
store_open(const struct store_conf *conf, unsigned flags, struct err *e)
{
	struct store	*st;

	if ((st = calloc(1, sizeof(*st))) == NULL) {
		err_set(e, "store: out of memory");
		return NULL;
	}
	switch (conf->backend) {
	case STORE_LMDB:
		st->ops = &store_lmdb;
		break;
	case STORE_REDIS:
		st->ops = &store_redis;
		break;
	}
	if (st->ops == NULL) {
		err_set(e, "store: unknown backend %d", (int)conf->backend);
		free(st);
		return NULL;
	}
	if ((st->h = st->ops->open(conf, flags, e)) == NULL) {
		free(st);
		return NULL;
	}
	return st;
}

void
store_close(struct store *st)
{
	if (st == NULL)
		return;
	st->ops->close(st->h);
	free(st);
}

const char *
store_backend_name(const struct store *st)
{
	return st->ops->name;
}

enum rc
store_get(struct store *st, const char *key, struct store_rec *r,
    struct err *e)
{
	char	 k[STORE_KEY_MAX + 1];
	double	 t0 = mono();

	if (!key_ok(key, 0))
		return bad_key("get", t0, e);
	store_key_shape(key, k);
	return done("get", t0, st->ops->get(st->h, k, r, e));
}

enum rc
store_put(struct store *st, const char *key, const struct store_rec *r,
    struct err *e)
{
	char	 k[STORE_KEY_MAX + 1];
	double	 t0 = mono();

	if (!key_ok(key, 0))
		return bad_key("put", t0, e);
	store_key_shape(key, k);
	return done("put", t0, st->ops->put(st->h, k, r, e));
}

enum rc
store_del(struct store *st, const char *key, struct err *e)
{
	char	 k[STORE_KEY_MAX + 1];
	double	 t0 = mono();

	if (!key_ok(key, 0))
		return bad_key("del", t0, e);
	store_key_shape(key, k);
	return done("del", t0, st->ops->del(st->h, k, e));
}

enum rc
store_incr(struct store *st, const char *key, unsigned ttl, uint32_t *count,
    struct err *e)
{
	char	 k[STORE_KEY_MAX + 1];
	double	 t0 = mono();

	if (!key_ok(key, 0))
		return bad_key("incr", t0, e);
	if (ttl == 0) {
		err_set(e, "store: incr: a window of 0 seconds");
		return done("incr", t0, RC_INVAL);
	}
	store_key_shape(key, k);
	return done("incr", t0, st->ops->incr(st->h, k, ttl, count, e));
}

enum rc
store_scan(struct store *st, const char *prefix, store_scan_fn fn, void *arg,
    struct err *e)
{
	double	 t0 = mono();

	if (!key_ok(prefix, 1))
		return bad_key("scan", t0, e);
	return done("scan", t0, st->ops->scan(st->h, prefix, fn, arg, e));
}

enum rc
store_purge(struct store *st, size_t *removed, struct err *e)
{
	size_t	 n = 0;
	double	 t0 = mono();
	enum rc	 rc;

	rc = st->ops->purge(st->h, &n, e);
	if (removed != NULL)
		*removed = n;
	return done("purge", t0, rc);
}
