/*
 * store.h - greylisting and callout state: one interface, two backends.
 *
 * A record is a small fixed set of numbers under a text key, with an
 * absolute expiry time.  Both backends keep the same records with the same
 * meaning:
 *   - LMDB (embedded, one environment per process, MDB_NOTLS so libmilter's
 *     threads may each run transactions; expired records are invisible to
 *     readers and purged by a background thread; the file never grows past
 *     store.max_size: a full map is an error, callers fail open);
 *   - Redis through hiredis (several gateways sharing state; every key is
 *     written with a TTL so Redis expires it; a small connection pool,
 *     timeouts, reconnect with backoff, servers tried in order).
 *
 * Values are stored as short text ("1 FIRST LAST EXPIRES COUNT VALUE") so an
 * administrator can read them with redis-cli; a value that does not parse
 * reads as absent.  Keys longer than STORE_KEY_MAX are shortened the same
 * way by both backends (prefix + hash).  Every function is thread-safe and
 * bounded in time (Redis: store_conf.timeout_ms per command).
 *
 * Key namespaces used by the checks (the backend does not care):
 *   "g|ORIGIN|SENDER|RCPT"   greylist triplet (ORIGIN: client network
 *                            "192.0.2.0/24" or "spf:DOMAIN")
 *   "w|ORIGIN"               auto-whitelisted (count) or manual (value 1)
 *   "c|RCPT"                 callout result (value 1 known, 0 unknown)
 *   "b|IP"                   dictionary-attack brake counter
 */
#ifndef PORTERO_STORE_H
#define PORTERO_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define STORE_KEY_MAX	400	/* longer keys are shortened with a hash */

enum store_backend {
	STORE_LMDB,
	STORE_REDIS
};

struct store_conf {
	enum store_backend	 backend;
	char			*path;		/* LMDB file (MDB_NOSUBDIR) */
	unsigned long long	 max_size;	/* LMDB map size, bytes */
	char			**servers;	/* Redis "host:port" or
						 * "unix:/path", in order */
	size_t			 nservers;
	char			*prefix;	/* Redis key prefix */
	int			 db;		/* Redis SELECT */
	char			*password;	/* Redis AUTH, NULL if none */
	unsigned		 timeout_ms;	/* Redis connect/command */
	unsigned		 pool;		/* Redis connections kept */
};

struct store_rec {
	uint64_t	first;		/* unix seconds */
	uint64_t	last;		/* unix seconds */
	uint64_t	expires;	/* unix seconds, absolute */
	uint32_t	count;
	int32_t		value;		/* record-specific */
};

/* Open flags. */
#define STORE_PURGER	0x01	/* LMDB: run the background purge thread */
#define STORE_NOSYNC	0x02	/* LMDB: no fsync at commit (bulk loads,
				 * bench): a system crash may lose the
				 * last commits; never for the milter */

struct store;

/* Opens the backend; NULL with e set ("store: lmdb /path: why"). */
struct store	*store_open(const struct store_conf *, unsigned flags,
		    struct err *);
void		 store_close(struct store *);
const char	*store_backend_name(const struct store *);

/*
 * RC_OK (rec filled), RC_NOTFOUND (absent or expired), or an error
 * (RC_TEMP: backend unreachable or failed; RC_NOMEM) with e set.
 */
enum rc		 store_get(struct store *, const char *key,
		    struct store_rec *, struct err *);
/* Writes rec under key; rec->expires must be in the future (else the
 * record is deleted).  RC_OK or an error (a full LMDB map is RC_TEMP with
 * "store full" in e, and wakes the purger). */
enum rc		 store_put(struct store *, const char *key,
		    const struct store_rec *, struct err *);
/* RC_OK if deleted, RC_NOTFOUND if absent, or an error. */
enum rc		 store_del(struct store *, const char *key, struct err *);
/*
 * Counter with a fixed window: an absent or expired record is created
 * with count 1 and expires = now + ttl; otherwise count is incremented and
 * the expiry kept.  The new count is put in *count.  Atomic on both
 * backends (LMDB: one write transaction; Redis: one Lua script run by
 * EVAL, so the record keeps the text form and its times follow
 * store_now()).  ttl 0 is RC_INVAL.
 */
enum rc		 store_incr(struct store *, const char *key, unsigned ttl,
		    uint32_t *count, struct err *);
/*
 * Calls fn for every live record whose key starts with prefix (keys as
 * given to store_put, without the Redis prefix), in no particular order
 * for Redis, key order for LMDB.  fn returns 0 to go on, non-zero to stop.
 * Records written or deleted by fn's caller meanwhile may or may not be
 * seen.
 */
typedef int	(*store_scan_fn)(const char *key, const struct store_rec *,
		    void *arg);
enum rc		 store_scan(struct store *, const char *prefix,
		    store_scan_fn fn, void *arg, struct err *);
/* Deletes expired records now (LMDB; Redis expires keys itself: RC_OK,
 * 0 removed).  *removed may be NULL. */
enum rc		 store_purge(struct store *, size_t *removed, struct err *);

/* 1 if spec is a valid store.redis.servers entry ("host:port",
 * "[v6]:port", "host" or "unix:/path"). */
int		 store_redis_server_valid(const char *spec);

/* Wall-clock seconds (the records' time base); tests may shift it. */
uint64_t	 store_now(void);
void		 store_set_clock_offset(int64_t seconds);

/* Record text form, shared by both backends (exposed for tests/fuzz):
 * store_rec_format returns the length written (< STORE_REC_MAX) or -1 if
 * it does not fit; store_rec_parse returns 0 or -1. */
#define STORE_REC_MAX	96	/* longest text form, with its NUL */
int		 store_rec_format(const struct store_rec *, char *, size_t);
int		 store_rec_parse(const char *, size_t, struct store_rec *);
/* The key a backend stores for key (shortened when too long) into out
 * (STORE_KEY_MAX + 1 bytes). */
void		 store_key_shape(const char *key, char *out);

/*
 * Backend interface, for store.c, store_lmdb.c and store_redis.c only.
 * store.c checks keys, shapes them (store_key_shape) and times every call,
 * so a backend gets valid keys of at most STORE_KEY_MAX bytes and a scan
 * prefix that may be "".  open returns the backend's handle.
 */
struct store_ops {
	const char	*name;
	void		*(*open)(const struct store_conf *, unsigned flags,
			    struct err *);
	void		 (*close)(void *);
	enum rc		 (*get)(void *, const char *key,
			    struct store_rec *, struct err *);
	enum rc		 (*put)(void *, const char *key,
			    const struct store_rec *, struct err *);
	enum rc		 (*del)(void *, const char *key, struct err *);
	enum rc		 (*incr)(void *, const char *key, unsigned ttl,
			    uint32_t *, struct err *);
	enum rc		 (*scan)(void *, const char *prefix,
			    store_scan_fn, void *, struct err *);
	enum rc		 (*purge)(void *, size_t *, struct err *);
};
extern const struct store_ops store_lmdb;	/* store_lmdb.c */
extern const struct store_ops store_redis;	/* store_redis.c */

#endif
