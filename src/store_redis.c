/*
 * store_redis.c - the shared store backend on Redis through hiredis (see
 * store.h).
 *
 * Keys are store.redis.prefix + the shaped key; values are the record's
 * text form, written with a TTL so Redis expires them itself.  Servers are
 * tried in order (failover).  A server that fails to connect or to answer
 * is marked down for a backoff (1 s, doubling to 30 s, reset by a
 * success); while it is down one caller at a time probes it and the
 * others go on to the next server, and when every server is down an
 * operation fails at once: a dead Redis never makes mail wait more than
 * one timeout.  Idle connections are kept in a small pool; a connection
 * that saw an I/O or protocol error is freed, never reused.
 *
 * Thread-safe: the pool and the servers' state are under one mutex, held
 * only to take or give back a connection; commands run on a connection
 * owned by the calling thread.  hiredis writes with write(2): the process
 * must ignore SIGPIPE (main.c does; libmilter does too).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <hiredis/hiredis.h>

#include "buf.h"
#include "store.h"
#include "util.h"

#define TIMEOUT_DEFAULT	500	/* ms, timeout_ms 0 */
#define POOL_DEFAULT	8	/* idle connections kept, pool 0 */
#define BACKOFF_FIRST	1000	/* ms */
#define BACKOFF_MAX	30000	/* ms */
#define TTL_MAX		2147483647ULL	/* seconds; Redis takes
					 * more, no record needs it */
#define SCAN_COUNT	"1000"

#define T(x)		(1u << (x))	/* reply type masks */

/*
 * The fixed-window counter, atomic on the server.  ARGV: now, ttl,
 * now + ttl (decimal, computed by the caller so the times follow
 * store_now()).  A live record gets count + 1 and last = now and keeps its
 * TTL; an absent, expired or unparsable one starts a new window.
 */
static const char incr_lua[] =
    "local v = redis.call('GET', KEYS[1])\n"
    "if v then\n"
    "  local f, l, x, c, val = string.match(v,\n"
    "      '^1 (%d+) (%d+) (%d+) (%d+) (%-?%d+)$')\n"
    "  if f and tonumber(x) > tonumber(ARGV[1]) and\n"
    "      tonumber(c) <= 4294967295 then\n"
    "    c = tonumber(c)\n"
    "    if c < 4294967295 then c = c + 1 end\n"
    "    redis.call('SET', KEYS[1], '1 ' .. f .. ' ' .. ARGV[1] .. ' ' ..\n"
    "        x .. ' ' .. string.format('%d', c) .. ' ' .. val, 'KEEPTTL')\n"
    "    return c\n"
    "  end\n"
    "end\n"
    "redis.call('SET', KEYS[1], '1 ' .. ARGV[1] .. ' ' .. ARGV[1] .. ' ' ..\n"
    "    ARGV[3] .. ' 1 0', 'EX', ARGV[2])\n"
    "return 1\n";

struct server {
	char		*label;		/* as configured */
	char		*host;		/* NULL for a unix socket */
	char		*path;		/* unix socket */
	int		 port;
	/* under redis.lock */
	unsigned	 backoff_ms;	/* 0: up */
	uint64_t	 down_until;	/* now_ms() */
	int		 probing;	/* a caller is trying it */
	struct err	 why;		/* last error */
};

struct conn {
	redisContext	*c;
	size_t		 srv;
	int		 pooled;	/* from the pool: may be stale */
	int		 probe;		/* first try of a server that
					 * was down: its answer decides */
};

struct redis {
	struct server	*srv;
	size_t		 nsrv;
	char		*prefix;
	size_t		 plen;
	char		*password;
	int		 db;
	struct timeval	 tv;

	pthread_mutex_t	 lock;		/* servers' state, idle */
	struct conn	*idle;		/* stack */
	size_t		 nidle;
	size_t		 maxidle;
};

/* A new connection to s, authenticated and on the right db; NULL with
 * why set. */
static redisContext *
connect_srv(struct redis *r, struct server *s, struct err *why)
{
	redisContext	*c;
	redisReply	*rep;
	const char	*argv[2];
	char		 db[16];

	if (s->path != NULL)
		c = redisConnectUnixWithTimeout(s->path, r->tv);
	else
		c = redisConnectWithTimeout(s->host, s->port, r->tv);
	if (c == NULL) {
		err_set(why, "out of memory");
		return NULL;
	}
	if (c->err) {
		err_set(why, "%s", c->errstr);
		redisFree(c);
		return NULL;
	}
	if (redisSetTimeout(c, r->tv) != REDIS_OK) {
		err_set(why, "cannot set the timeout");
		redisFree(c);
		return NULL;
	}
	if (r->password != NULL) {
		argv[0] = "AUTH";
		argv[1] = r->password;
		rep = redisCommandArgv(c, 2, argv, NULL);
		if (rep == NULL || rep->type != REDIS_REPLY_STATUS) {
			err_set(why, "AUTH: %s", rep == NULL ? c->errstr :
			    rep->type == REDIS_REPLY_ERROR ? rep->str :
			    "unexpected reply");
			freeReplyObject(rep);
			redisFree(c);
			return NULL;
		}
		freeReplyObject(rep);
	}
	if (r->db != 0) {
		(void)snprintf(db, sizeof(db), "%d", r->db);
		argv[0] = "SELECT";
		argv[1] = db;
		rep = redisCommandArgv(c, 2, argv, NULL);
		if (rep == NULL || rep->type != REDIS_REPLY_STATUS) {
			err_set(why, "SELECT: %s", rep == NULL ?
			    c->errstr : rep->type == REDIS_REPLY_ERROR ?
			    rep->str : "unexpected reply");
			freeReplyObject(rep);
			redisFree(c);
			return NULL;
		}
		freeReplyObject(rep);
	}
	return c;
}

/* Pops the newest idle connection to server i, or NULL; called locked. */
static redisContext *
idle_pop(struct redis *r, size_t i)
{
	redisContext	*c;
	size_t		 j;

	for (j = r->nidle; j-- > 0;)
		if (r->idle[j].srv == i) {
			c = r->idle[j].c;
			memmove(&r->idle[j], &r->idle[j + 1],
			    (r->nidle - j - 1) * sizeof(r->idle[0]));
			r->nidle--;
			return c;
		}
	return NULL;
}

/* Takes up to max of server i's idle connections; called locked. */
static size_t
idle_take(struct redis *r, size_t i, redisContext **out, size_t max)
{
	size_t	 j, k = 0, n = 0;

	for (j = 0; j < r->nidle; j++) {
		if (r->idle[j].srv == i && n < max)
			out[n++] = r->idle[j].c;
		else
			r->idle[k++] = r->idle[j];
	}
	r->nidle = k;
	return n;
}

static void
idle_flush(struct redis *r, size_t i)
{
	redisContext	*c[64];
	size_t		 n, j;

	do {
		(void)pthread_mutex_lock(&r->lock);
		n = idle_take(r, i, c, NELEM(c));
		(void)pthread_mutex_unlock(&r->lock);
		for (j = 0; j < n; j++)
			redisFree(c[j]);
	} while (n == NELEM(c));
}

static void
mark_up(struct redis *r, size_t i)
{
	struct server	*s = &r->srv[i];

	(void)pthread_mutex_lock(&r->lock);
	s->backoff_ms = 0;
	s->down_until = 0;
	s->probing = 0;
	(void)pthread_mutex_unlock(&r->lock);
}

/*
 * Server i failed: down for the backoff, which doubles only when a probe
 * fails (many connections failing together count once).
 */
static void
mark_down(struct redis *r, size_t i, int probe, const char *why)
{
	struct server	*s = &r->srv[i];

	(void)pthread_mutex_lock(&r->lock);
	if (s->backoff_ms == 0 || probe) {
		if (s->backoff_ms == 0)
			s->backoff_ms = BACKOFF_FIRST;
		else if (s->backoff_ms * 2 > BACKOFF_MAX)
			s->backoff_ms = BACKOFF_MAX;
		else
			s->backoff_ms *= 2;
		s->down_until = now_ms() + s->backoff_ms;
	}
	if (probe)
		s->probing = 0;
	err_set(&s->why, "%s", why);
	(void)pthread_mutex_unlock(&r->lock);
	idle_flush(r, i);
}

static void
unreachable(struct redis *r, struct err *e)
{
	struct buf	 b;
	size_t		 i;

	buf_init(&b, ERR_MAX);
	(void)buf_puts(&b, "store: redis: no server reachable (");
	(void)pthread_mutex_lock(&r->lock);
	for (i = 0; i < r->nsrv; i++)
		(void)buf_printf(&b, "%s%s: %s", i > 0 ? "; " : "",
		    r->srv[i].label, r->srv[i].why.msg[0] != '\0' ?
		    r->srv[i].why.msg : "down");
	(void)pthread_mutex_unlock(&r->lock);
	if (buf_putc(&b, ')') != RC_OK)
		buf_mark_cut(&b, "...)");
	err_set(e, "%s", b.data != NULL ? buf_str(&b) :
	    "store: redis: no server reachable");
	buf_free(&b);
}

/*
 * A connection to the first usable server: an idle one, or a new one.  A
 * server whose backoff has passed is probed by one caller; the others
 * skip it until the probe's command is answered (mark_up) or fails.
 */
static enum rc
conn_get(struct redis *r, struct conn *cn, struct err *e)
{
	struct server	*s;
	struct err	 why;
	size_t		 i;

	for (i = 0; i < r->nsrv; i++) {
		s = &r->srv[i];
		cn->srv = i;
		cn->pooled = cn->probe = 0;
		(void)pthread_mutex_lock(&r->lock);
		if (s->backoff_ms != 0) {
			if (s->probing || now_ms() < s->down_until) {
				(void)pthread_mutex_unlock(&r->lock);
				continue;
			}
			s->probing = cn->probe = 1;
		} else if ((cn->c = idle_pop(r, i)) != NULL) {
			(void)pthread_mutex_unlock(&r->lock);
			cn->pooled = 1;
			return RC_OK;
		}
		(void)pthread_mutex_unlock(&r->lock);
		err_clear(&why);
		if ((cn->c = connect_srv(r, s, &why)) != NULL)
			return RC_OK;
		mark_down(r, i, cn->probe, why.msg);
	}
	unreachable(r, e);
	return RC_TEMP;
}

/*
 * Back to the pool, if there is room or an idle connection to a later
 * server to make room (after a failover, the first server's connections
 * are the ones to keep).
 */
static void
conn_put(struct redis *r, struct conn *cn)
{
	redisContext	*drop = cn->c;
	size_t		 i;

	(void)pthread_mutex_lock(&r->lock);
	if (r->srv[cn->srv].backoff_ms == 0) {
		if (r->nidle < r->maxidle) {
			r->idle[r->nidle++] = *cn;
			drop = NULL;
		} else
			for (i = 0; i < r->nidle; i++)
				if (r->idle[i].srv > cn->srv) {
					drop = r->idle[i].c;
					r->idle[i] = *cn;
					break;
				}
	}
	(void)pthread_mutex_unlock(&r->lock);
	if (drop != NULL)
		redisFree(drop);
	cn->c = NULL;
}

/*
 * Runs one command and returns its reply (*out, freed by the caller) if
 * its type is in types.  An error reply is RC_TEMP with its text (the
 * connection stays good); a broken connection or an unexpected reply
 * type frees the connection.  A connection that finds the server gone
 * (EOF, reset) is retried: a pooled one on a new connection (Redis may
 * have restarted or closed idle clients), a new one on the next server.
 * A timeout is not retried, so a command waits at most one timeout
 * (plus connects).  A retried INCR may, rarely, count twice.
 */
static enum rc
command(struct redis *r, int argc, const char **argv, const size_t *argvlen,
    unsigned types, redisReply **out, struct err *e)
{
	struct conn	 cn;
	redisReply	*rep;
	struct err	 why;
	int		 attempt, timeout;
	enum rc		 rc;

	for (attempt = 0;; attempt++) {
		if ((rc = conn_get(r, &cn, e)) != RC_OK)
			return rc;
		errno = 0;
		rep = redisCommandArgv(cn.c, argc, argv, argvlen);
		if (rep == NULL) {
			timeout = cn.c->err == REDIS_ERR_IO &&
			    (errno == EAGAIN || errno == EWOULDBLOCK);
			if (timeout)
				err_set(&why, "%s: no answer within %ld ms",
				    argv[0],
				    (long)(r->tv.tv_sec * 1000 +
				    r->tv.tv_usec / 1000));
			else
				err_set(&why, "%s: %s", argv[0],
				    cn.c->err == REDIS_ERR_EOF ?
				    "connection closed" : cn.c->errstr);
			redisFree(cn.c);
			if (cn.pooled && !timeout)
				idle_flush(r, cn.srv);
			else
				mark_down(r, cn.srv, cn.probe, why.msg);
			if (!timeout && attempt < 2)
				continue;
			err_set(e, "store: redis %s: %s", r->srv[cn.srv].label,
			    why.msg);
			return RC_TEMP;
		}
		if (cn.probe)
			mark_up(r, cn.srv);	/* it answers */
		if (rep->type == REDIS_REPLY_ERROR) {
			err_set(e, "store: redis %s: %s: %s",
			    r->srv[cn.srv].label, argv[0], rep->str);
			freeReplyObject(rep);
			conn_put(r, &cn);
			return RC_TEMP;
		}
		if (rep->type < 0 || rep->type > 30 ||
		    (types & T(rep->type)) == 0) {
			err_set(e, "store: redis %s: %s: unexpected reply "
			    "(type %d)", r->srv[cn.srv].label, argv[0],
			    rep->type);
			freeReplyObject(rep);
			redisFree(cn.c);
			return RC_TEMP;
		}
		conn_put(r, &cn);
		*out = rep;
		return RC_OK;
	}
}

/* prefix + key, malloc'ed; *len set. */
static char *
rkey(struct redis *r, const char *key, size_t *len, struct err *e)
{
	size_t	 kl = strlen(key);
	char	*k;

	if ((k = malloc(r->plen + kl + 1)) == NULL) {
		err_set(e, "store: redis: out of memory");
		return NULL;
	}
	memcpy(k, r->prefix, r->plen);
	memcpy(k + r->plen, key, kl + 1);
	*len = r->plen + kl;
	return k;
}

/* VERB PREFIX+key (GET, DEL), a reply of one of types in *rep. */
static enum rc
key_command(struct redis *r, const char *verb, const char *key,
    unsigned types, redisReply **rep, struct err *e)
{
	const char	*argv[2];
	size_t		 argvlen[2];
	char		*k;
	enum rc		 rc;

	if ((k = rkey(r, key, &argvlen[1], e)) == NULL)
		return RC_NOMEM;
	argv[0] = verb;
	argvlen[0] = strlen(verb);
	argv[1] = k;
	rc = command(r, 2, argv, argvlen, types, rep, e);
	free(k);
	return rc;
}

static enum rc
redis_get(void *h, const char *key, struct store_rec *rec, struct err *e)
{
	struct redis		*r = h;
	struct store_rec	 tmp;
	redisReply		*rep;
	enum rc			 rc;

	rc = key_command(r, "GET", key, T(REDIS_REPLY_STRING) |
	    T(REDIS_REPLY_NIL), &rep, e);
	if (rc != RC_OK)
		return rc;
	rc = RC_NOTFOUND;
	if (rep->type == REDIS_REPLY_STRING &&
	    store_rec_parse(rep->str, rep->len, &tmp) == 0 &&
	    tmp.expires > store_now()) {
		*rec = tmp;
		rc = RC_OK;
	}
	freeReplyObject(rep);
	return rc;
}

/* DEL; *n is the number of keys deleted. */
static enum rc
del_key(struct redis *r, const char *key, long long *n, struct err *e)
{
	redisReply	*rep;
	enum rc		 rc;

	rc = key_command(r, "DEL", key, T(REDIS_REPLY_INTEGER), &rep, e);
	if (rc != RC_OK)
		return rc;
	*n = rep->integer;
	freeReplyObject(rep);
	return RC_OK;
}

static enum rc
redis_del(void *h, const char *key, struct err *e)
{
	long long	 n;
	enum rc		 rc;

	if ((rc = del_key(h, key, &n, e)) != RC_OK)
		return rc;
	return n > 0 ? RC_OK : RC_NOTFOUND;
}

static enum rc
redis_put(void *h, const char *key, const struct store_rec *rec,
    struct err *e)
{
	struct redis	*r = h;
	redisReply	*rep;
	const char	*argv[5];
	size_t		 argvlen[5];
	char		 text[STORE_REC_MAX], ttl[24], *k;
	uint64_t	 now = store_now(), t;
	long long	 n;
	int		 len;
	enum rc		 rc;

	if (rec->expires <= now)
		return del_key(r, key, &n, e);
	if ((len = store_rec_format(rec, text, sizeof(text))) < 0) {
		err_set(e, "store: redis: record does not fit");
		return RC_INVAL;
	}
	t = rec->expires - now;
	(void)snprintf(ttl, sizeof(ttl), "%llu",
	    (unsigned long long)(t > TTL_MAX ? TTL_MAX : t));
	if ((k = rkey(r, key, &argvlen[1], e)) == NULL)
		return RC_NOMEM;
	argv[0] = "SET";
	argv[1] = k;
	argv[2] = text;
	argv[3] = "EX";
	argv[4] = ttl;
	argvlen[0] = 3;
	argvlen[2] = (size_t)len;
	argvlen[3] = 2;
	argvlen[4] = strlen(ttl);
	rc = command(r, 5, argv, argvlen, T(REDIS_REPLY_STATUS), &rep, e);
	free(k);
	if (rc == RC_OK)
		freeReplyObject(rep);
	return rc;
}

static enum rc
redis_incr(void *h, const char *key, unsigned ttl, uint32_t *count,
    struct err *e)
{
	struct redis	*r = h;
	redisReply	*rep;
	const char	*argv[7];
	size_t		 argvlen[7];
	char		 now[24], sttl[24], exp[24], *k;
	uint64_t	 t = store_now();
	enum rc		 rc;
	int		 i;

	(void)snprintf(now, sizeof(now), "%llu", (unsigned long long)t);
	(void)snprintf(sttl, sizeof(sttl), "%u", ttl);
	(void)snprintf(exp, sizeof(exp), "%llu", (unsigned long long)(t +
	    ttl));
	if ((k = rkey(r, key, &argvlen[3], e)) == NULL)
		return RC_NOMEM;
	argv[0] = "EVAL";
	argv[1] = incr_lua;
	argv[2] = "1";
	argv[3] = k;
	argv[4] = now;
	argv[5] = sttl;
	argv[6] = exp;
	for (i = 0; i < 7; i++)
		if (i != 3)
			argvlen[i] = strlen(argv[i]);
	rc = command(r, 7, argv, argvlen, T(REDIS_REPLY_INTEGER), &rep, e);
	free(k);
	if (rc != RC_OK)
		return rc;
	if (rep->integer < 1 || rep->integer > UINT32_MAX) {
		err_set(e, "store: redis: incr: count %lld out of range",
		    rep->integer);
		rc = RC_TEMP;
	} else
		*count = (uint32_t)rep->integer;
	freeReplyObject(rep);
	return rc;
}

/* A glob pattern matching keys that start with s (Redis MATCH). */
static char *
glob_prefix(const char *a, const char *b, struct err *e)
{
	size_t		 n = strlen(a) + strlen(b);
	char		*g, *q;
	const char	*p;
	int		 pass;

	if ((g = malloc(2 * n + 2)) == NULL) {
		err_set(e, "store: redis: out of memory");
		return NULL;
	}
	q = g;
	for (pass = 0; pass < 2; pass++)
		for (p = pass == 0 ? a : b; *p != '\0'; p++) {
			if (strchr("*?[]\\", *p) != NULL)
				*q++ = '\\';
			*q++ = *p;
		}
	*q++ = '*';
	*q = '\0';
	return g;
}

/* Calls fn for the live records among one SCAN batch's keys; *stop set if
 * fn asked to stop. */
static enum rc
scan_keys(struct redis *r, const redisReply *keys, const char *prefix,
    store_scan_fn fn, void *arg, int *stop, struct err *e)
{
	struct store_rec	 rec;
	redisReply		*rep;
	const char		**argv;
	size_t			*argvlen, i, n = keys->elements, plen;
	uint64_t		 now;
	const redisReply	*k, *v;
	enum rc			 rc;

	for (i = 0; i < n; i++)
		if (keys->element[i]->type != REDIS_REPLY_STRING) {
			err_set(e, "store: redis: SCAN: unexpected reply");
			return RC_TEMP;
		}
	argv = calloc(n + 1, sizeof(*argv));
	argvlen = calloc(n + 1, sizeof(*argvlen));
	if (argv == NULL || argvlen == NULL) {
		free(argv);
		free(argvlen);
		err_set(e, "store: redis: out of memory");
		return RC_NOMEM;
	}
	argv[0] = "MGET";
	argvlen[0] = 4;
	for (i = 0; i < n; i++) {
		argv[i + 1] = keys->element[i]->str;
		argvlen[i + 1] = keys->element[i]->len;
	}
	rc = command(r, (int)(n + 1), argv, argvlen, T(REDIS_REPLY_ARRAY),
	    &rep, e);
	free(argv);
	free(argvlen);
	if (rc != RC_OK)
		return rc;
	if (rep->elements != n) {
		err_set(e, "store: redis: MGET: %zu answers to %zu keys",
		    rep->elements, n);
		freeReplyObject(rep);
		return RC_TEMP;
	}
	now = store_now();
	plen = r->plen + strlen(prefix);
	for (i = 0; i < n && !*stop; i++) {
		k = keys->element[i];
		v = rep->element[i];
		/* the glob already matched; keys with a NUL or too long
		 * are not ours */
		if (k->len < plen || k->len > r->plen + STORE_KEY_MAX ||
		    memcmp(k->str, r->prefix, r->plen) != 0 ||
		    memcmp(k->str + r->plen, prefix, plen - r->plen) != 0 ||
		    strlen(k->str) != k->len)
			continue;
		if (v->type != REDIS_REPLY_STRING ||
		    store_rec_parse(v->str, v->len, &rec) != 0 ||
		    rec.expires <= now)
			continue;
		*stop = fn(k->str + r->plen, &rec, arg) != 0;
	}
	freeReplyObject(rep);
	return RC_OK;
}

/* SCAN may report a key twice (while Redis rehashes): fn may see it
 * twice. */
static enum rc
redis_scan(void *h, const char *prefix, store_scan_fn fn, void *arg,
    struct err *e)
{
	struct redis	*r = h;
	redisReply	*rep;
	const char	*argv[6];
	char		 cursor[24], *pat;
	enum rc		 rc = RC_OK;
	int		 stop = 0;

	if ((pat = glob_prefix(r->prefix, prefix, e)) == NULL)
		return RC_NOMEM;
	(void)str_copy(cursor, "0", sizeof(cursor));
	argv[0] = "SCAN";
	argv[1] = cursor;
	argv[2] = "MATCH";
	argv[3] = pat;
	argv[4] = "COUNT";
	argv[5] = SCAN_COUNT;
	do {
		rc = command(r, 6, argv, NULL, T(REDIS_REPLY_ARRAY), &rep, e);
		if (rc != RC_OK)
			break;
		if (rep->elements != 2 ||
		    rep->element[0]->type != REDIS_REPLY_STRING ||
		    rep->element[1]->type != REDIS_REPLY_ARRAY ||
		    str_copy(cursor, rep->element[0]->str, sizeof(cursor))
		    != 0) {
			freeReplyObject(rep);
			err_set(e, "store: redis: SCAN: unexpected reply");
			rc = RC_TEMP;
			break;
		}
		if (rep->element[1]->elements > 0)
			rc = scan_keys(r, rep->element[1], prefix, fn, arg,
			    &stop, e);
		freeReplyObject(rep);
	} while (rc == RC_OK && !stop && strcmp(cursor, "0") != 0);
	free(pat);
	return rc;
}

static enum rc
redis_purge(void *h, size_t *removed, struct err *e)
{
	(void)h;
	(void)e;
	*removed = 0;	/* Redis expires keys itself */
	return RC_OK;
}

/* "host:port", "[v6]:port", "host" (port 6379) or "unix:/path"; 0, -1 if
 * malformed, -2 if out of memory. */
static int
server_parse(struct server *s, const char *spec)
{
	unsigned long long	 port = 6379;
	const char		*colon, *end;
	size_t			 hl;

	if ((s->label = strdup(spec)) == NULL)
		return -2;
	if (strncmp(spec, "unix:", 5) == 0) {
		if (spec[5] != '/')
			return -1;
		return (s->path = strdup(spec + 5)) == NULL ? -2 : 0;
	}
	if (spec[0] == '[') {
		if ((end = strchr(spec, ']')) == NULL || end == spec + 1)
			return -1;
		hl = (size_t)(end - spec - 1);
		spec++;
		colon = end[1] == ':' ? end + 1 : NULL;
		if (colon == NULL && end[1] != '\0')
			return -1;
	} else {
		colon = strchr(spec, ':');
		if (colon != NULL && strchr(colon + 1, ':') != NULL)
			return -1;	/* a bare IPv6 address: use [] */
		hl = colon != NULL ? (size_t)(colon - spec) : strlen(spec);
	}
	if (hl == 0 || (colon != NULL &&
	    parse_uint(colon + 1, 1, 65535, &port) != RC_OK))
		return -1;
	if ((s->host = strndup(spec, hl)) == NULL)
		return -2;
	s->port = (int)port;
	return 0;
}

int
store_redis_server_valid(const char *spec)
{
	struct server	 s;
	int		 rc;

	memset(&s, 0, sizeof(s));
	rc = server_parse(&s, spec);
	free(s.label);
	free(s.host);
	free(s.path);
	return rc == 0;
}

static void
redis_close(void *h)
{
	struct redis	*r = h;
	size_t		 i;

	if (r == NULL)
		return;
	for (i = 0; i < r->nidle; i++)
		redisFree(r->idle[i].c);
	free(r->idle);
	for (i = 0; r->srv != NULL && i < r->nsrv; i++) {
		free(r->srv[i].label);
		free(r->srv[i].host);
		free(r->srv[i].path);
	}
	free(r->srv);
	free(r->prefix);
	if (r->password != NULL)
		explicit_bzero(r->password, strlen(r->password));
	free(r->password);
	(void)pthread_mutex_destroy(&r->lock);
	free(r);
}

/* Connections are made when first needed: a Redis down at start-up does
 * not stop the milter, its operations fail fast like any other outage. */
static void *
redis_open(const struct store_conf *conf, unsigned flags, struct err *e)
{
	struct redis	*r;
	unsigned	 ms;
	size_t		 i;
	int		 rc;

	(void)flags;
	if (conf->nservers == 0) {
		err_set(e, "store: redis: no server configured");
		return NULL;
	}
	if ((r = calloc(1, sizeof(*r))) == NULL) {
		err_set(e, "store: redis: out of memory");
		return NULL;
	}
	(void)pthread_mutex_init(&r->lock, NULL);
	r->nsrv = conf->nservers;
	r->maxidle = conf->pool > 0 ? conf->pool : POOL_DEFAULT;
	r->db = conf->db;
	ms = conf->timeout_ms > 0 ? conf->timeout_ms : TIMEOUT_DEFAULT;
	r->tv.tv_sec = (time_t)(ms / 1000);
	r->tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
	r->srv = calloc(r->nsrv, sizeof(*r->srv));
	r->idle = calloc(r->maxidle, sizeof(*r->idle));
	r->prefix = strdup(conf->prefix != NULL ? conf->prefix : "");
	if (r->srv == NULL || r->idle == NULL || r->prefix == NULL ||
	    (conf->password != NULL &&
	    (r->password = strdup(conf->password)) == NULL)) {
		err_set(e, "store: redis: out of memory");
		goto fail;
	}
	r->plen = strlen(r->prefix);
	for (i = 0; i < r->nsrv; i++) {
		rc = server_parse(&r->srv[i], conf->servers[i]);
		if (rc == -2)
			err_set(e, "store: redis: out of memory");
		else if (rc != 0)
			err_set(e, "store: redis: bad server \"%s\" (want "
			    "host:port, [ipv6]:port or unix:/path)",
			    conf->servers[i]);
		if (rc != 0)
			goto fail;
	}
	return r;
fail:
	redis_close(r);
	return NULL;
}

const struct store_ops store_redis = {
	.name = "redis",
	.open = redis_open,
	.close = redis_close,
	.get = redis_get,
	.put = redis_put,
	.del = redis_del,
	.incr = redis_incr,
	.scan = redis_scan,
	.purge = redis_purge,
};
