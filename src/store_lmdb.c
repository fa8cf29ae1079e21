/*
 * store_lmdb.c - the embedded store backend on LMDB (see store.h).
 *
 * One environment per store_open, one unnamed database; records are kept
 * in their text form (store_rec_format) under the shaped key.  Every
 * operation is one transaction; expired records are invisible and are
 * deleted by store_purge or by the purger thread (STORE_PURGER), in write
 * transactions of at most PURGE_DELS deletions so writers never wait long.
 *
 * The map never grows past store.max_size.  Near the end of the map LMDB
 * can fail even a delete (copy-on-write needs free pages), so new keys are
 * refused once the live pages pass HEADROOM_PCT of the map; updates of
 * existing keys and deletions still go through, and purged pages are
 * reused, so the file stops growing.
 *
 * Thread-safe: MDB_NOTLS ties read transactions to their MDB_txn, not to
 * the thread, since libmilter runs many threads; LMDB serialises writers.
 * A file may be open once in a process (LMDB's fcntl locks are
 * per-process): a second store_open of the same file fails.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <lmdb.h>

#include "log.h"
#include "store.h"
#include "util.h"

#define MAP_DEFAULT	(1ULL << 30)	/* max_size 0: 1 GB */
#define MAX_READERS	512		/* concurrent read transactions */
#define HEADROOM_PCT	90	/* % in use past which new keys wait */
#define PURGE_DELS	1000	/* deletions per purge transaction */
#define PURGE_SEEN	10000	/* records read per purge transaction */
#define PURGE_EVERY_MS	60000	/* purger period */
#define PURGE_WAKE_MS	5000	/* a wake-up runs at most this often */
#define SCAN_BATCH	256	/* records copied per scan transaction */
#define LMDB_KEY_MAX	511	/* mdb_env_get_maxkeysize() of the
				 * default build: no longer key exists */

struct lmdb {
	MDB_env		*env;
	MDB_dbi		 dbi;
	char		*path;
	size_t		 mapsize;	/* bytes */
	size_t		 psize;		/* page size */
	dev_t		 dev;
	ino_t		 ino;
	struct lmdb	*next;		/* registry of open files */

	int		 purger;	/* thread running */
	pthread_t	 thread;
	pthread_mutex_t	 lock;		/* stop, wake */
	pthread_cond_t	 cond;
	int		 stop;
	int		 wake;
};

/* Files open in this process, by device and inode. */
static pthread_mutex_t	 reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct lmdb	*reg_head;

static enum rc
fail(struct lmdb *l, int rc, struct err *e)
{
	err_set(e, "store: lmdb %s: %s", l->path, mdb_strerror(rc));
	return rc == ENOMEM ? RC_NOMEM : RC_TEMP;
}

static void
wake_purger(struct lmdb *l)
{
	if (!l->purger)
		return;
	(void)pthread_mutex_lock(&l->lock);
	l->wake = 1;
	(void)pthread_cond_signal(&l->cond);
	(void)pthread_mutex_unlock(&l->lock);
}

static enum rc
full(struct lmdb *l, struct err *e)
{
	err_set(e, "store full (store.max_size = %zu bytes); expired records "
	    "are purged %s", l->mapsize, l->purger ? "in the background" :
	    "by store_purge only (no purger running)");
	wake_purger(l);
	return RC_TEMP;
}

/* An LMDB error of a write: a full map has its own message. */
static enum rc
wfail(struct lmdb *l, int rc, struct err *e)
{
	return rc == MDB_MAP_FULL ? full(l, e) : fail(l, rc, e);
}

/*
 * Past the headroom: the pages in use (both trees and the two meta pages;
 * free pages are not counted, LMDB reuses them) fill more than
 * HEADROOM_PCT of the map.  mdb_stat reads the transaction's own root
 * records: constant time.
 */
static int
crowded(struct lmdb *l, MDB_txn *txn)
{
	MDB_stat	 s, f;
	size_t		 pages;

	if (mdb_stat(txn, l->dbi, &s) != 0 || mdb_stat(txn, 0, &f) != 0)
		return 1;
	pages = s.ms_branch_pages + s.ms_leaf_pages + s.ms_overflow_pages +
	    f.ms_branch_pages + f.ms_leaf_pages + f.ms_overflow_pages + 2;
	return pages * 100 > l->mapsize / l->psize * HEADROOM_PCT;
}

/* A live record from an LMDB value: 1, or 0 if unparsable or expired. */
static int
live(const MDB_val *v, uint64_t now, struct store_rec *r)
{
	return store_rec_parse(v->mv_data, v->mv_size, r) == 0 &&
	    r->expires > now;
}

static enum rc
lmdb_get(void *h, const char *key, struct store_rec *r, struct err *e)
{
	struct lmdb	*l = h;
	MDB_txn		*txn;
	MDB_val		 k, v;
	struct store_rec tmp;
	int		 rc, ok;

	rc = mdb_txn_begin(l->env, NULL, MDB_RDONLY, &txn);
	if (rc != 0)
		return fail(l, rc, e);
	k.mv_size = strlen(key);
	k.mv_data = (void *)(uintptr_t)key;
	rc = mdb_get(txn, l->dbi, &k, &v);
	ok = rc == 0 && live(&v, store_now(), &tmp);
	mdb_txn_abort(txn);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return fail(l, rc, e);
	if (!ok)
		return RC_NOTFOUND;
	*r = tmp;
	return RC_OK;
}

/* Deletes key; *was_live says whether a live record went. */
static enum rc
del_key(struct lmdb *l, const char *key, int *was_live, struct err *e)
{
	MDB_txn		*txn;
	MDB_val		 k, v;
	struct store_rec r;
	int		 rc;

	*was_live = 0;
	rc = mdb_txn_begin(l->env, NULL, 0, &txn);
	if (rc != 0)
		return wfail(l, rc, e);
	k.mv_size = strlen(key);
	k.mv_data = (void *)(uintptr_t)key;
	rc = mdb_get(txn, l->dbi, &k, &v);
	if (rc == MDB_NOTFOUND) {
		mdb_txn_abort(txn);
		return RC_OK;
	}
	if (rc == 0) {
		*was_live = live(&v, store_now(), &r);
		rc = mdb_del(txn, l->dbi, &k, NULL);
	}
	if (rc != 0) {
		mdb_txn_abort(txn);
		return wfail(l, rc, e);
	}
	rc = mdb_txn_commit(txn);
	return rc != 0 ? wfail(l, rc, e) : RC_OK;
}

static enum rc
lmdb_del(void *h, const char *key, struct err *e)
{
	enum rc	 rc;
	int	 was_live;

	rc = del_key(h, key, &was_live, e);
	if (rc == RC_OK && !was_live)
		return RC_NOTFOUND;
	return rc;
}

/* Writes the record in txn (then committed or aborted here). */
static enum rc
write_rec(struct lmdb *l, MDB_txn *txn, MDB_val *k, const struct store_rec *r,
    struct err *e)
{
	char	 text[STORE_REC_MAX];
	MDB_val	 v;
	int	 n, rc;

	if ((n = store_rec_format(r, text, sizeof(text))) < 0) {
		mdb_txn_abort(txn);
		err_set(e, "store: lmdb %s: record does not fit", l->path);
		return RC_INVAL;
	}
	v.mv_size = (size_t)n;
	v.mv_data = text;
	rc = mdb_put(txn, l->dbi, k, &v, 0);
	if (rc != 0) {
		mdb_txn_abort(txn);
		return wfail(l, rc, e);
	}
	rc = mdb_txn_commit(txn);
	return rc != 0 ? wfail(l, rc, e) : RC_OK;
}

static enum rc
lmdb_put(void *h, const char *key, const struct store_rec *r, struct err *e)
{
	struct lmdb	*l = h;
	MDB_txn		*txn;
	MDB_val		 k, v;
	int		 rc, was_live;

	if (r->expires <= store_now())
		return del_key(l, key, &was_live, e);
	rc = mdb_txn_begin(l->env, NULL, 0, &txn);
	if (rc != 0)
		return wfail(l, rc, e);
	k.mv_size = strlen(key);
	k.mv_data = (void *)(uintptr_t)key;
	if (crowded(l, txn)) {
		rc = mdb_get(txn, l->dbi, &k, &v);
		if (rc != 0) {
			mdb_txn_abort(txn);
			return rc == MDB_NOTFOUND ? full(l, e) :
			    fail(l, rc, e);
		}
	}
	return write_rec(l, txn, &k, r, e);
}

static enum rc
lmdb_incr(void *h, const char *key, unsigned ttl, uint32_t *count,
    struct err *e)
{
	struct lmdb	*l = h;
	MDB_txn		*txn;
	MDB_val		 k, v;
	struct store_rec r;
	uint64_t	 now = store_now();
	enum rc		 ret;
	int		 rc;

	rc = mdb_txn_begin(l->env, NULL, 0, &txn);
	if (rc != 0)
		return wfail(l, rc, e);
	k.mv_size = strlen(key);
	k.mv_data = (void *)(uintptr_t)key;
	rc = mdb_get(txn, l->dbi, &k, &v);
	if (rc != 0 && rc != MDB_NOTFOUND) {
		mdb_txn_abort(txn);
		return fail(l, rc, e);
	}
	if (rc == 0 && live(&v, now, &r)) {
		if (r.count < UINT32_MAX)	/* saturates */
			r.count++;
		r.last = now;
	} else {
		if (rc == MDB_NOTFOUND && crowded(l, txn)) {
			mdb_txn_abort(txn);
			return full(l, e);
		}
		r.first = r.last = now;
		r.expires = now + ttl;
		r.count = 1;
		r.value = 0;
	}
	ret = write_rec(l, txn, &k, &r, e);
	if (ret == RC_OK)
		*count = r.count;
	return ret;
}

struct scan_item {
	char		 key[STORE_KEY_MAX + 1];
	struct store_rec rec;
};

/*
 * Puts the cursor on the first key after last (lastlen bytes, the key a
 * batch ended on), or when lastlen is 0 on the first key from prefix (or
 * the first of all); mdb_cursor_get's result.
 */
static int
resume(MDB_cursor *cur, const char *last, size_t lastlen, const char *prefix,
    size_t plen, MDB_val *k, MDB_val *v)
{
	int	 rc;

	if (lastlen > 0) {
		k->mv_size = lastlen;
		k->mv_data = (void *)(uintptr_t)last;
		rc = mdb_cursor_get(cur, k, v, MDB_SET_RANGE);
		if (rc == 0 && k->mv_size == lastlen &&
		    memcmp(k->mv_data, last, lastlen) == 0)
			rc = mdb_cursor_get(cur, k, v, MDB_NEXT);
		return rc;
	}
	if (plen > 0) {
		k->mv_size = plen;
		k->mv_data = (void *)(uintptr_t)prefix;
		return mdb_cursor_get(cur, k, v, MDB_SET_RANGE);
	}
	return mdb_cursor_get(cur, k, v, MDB_FIRST);
}

/*
 * Copies up to SCAN_BATCH live records after *last (or from prefix) in one
 * read transaction, so fn runs with no transaction open (it may write) and
 * no reader holds old pages for long.  *end is set when the prefix's range
 * is exhausted.
 */
static enum rc
scan_batch(struct lmdb *l, const char *prefix, char *last, size_t *lastlen,
    struct scan_item *it, size_t *n, int *end, struct err *e)
{
	MDB_txn		*txn;
	MDB_cursor	*cur;
	MDB_val		 k, v;
	size_t		 plen = strlen(prefix);
	uint64_t	 now = store_now();
	int		 rc;

	*n = 0;
	*end = 0;
	rc = mdb_txn_begin(l->env, NULL, MDB_RDONLY, &txn);
	if (rc != 0)
		return fail(l, rc, e);
	rc = mdb_cursor_open(txn, l->dbi, &cur);
	if (rc != 0) {
		mdb_txn_abort(txn);
		return fail(l, rc, e);
	}
	rc = resume(cur, last, *lastlen, prefix, plen, &k, &v);
	for (; rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (k.mv_size < plen || memcmp(k.mv_data, prefix, plen) != 0 ||
		    k.mv_size > LMDB_KEY_MAX) {
			*end = 1;
			break;
		}
		memcpy(last, k.mv_data, k.mv_size);
		*lastlen = k.mv_size;
		if (k.mv_size <= STORE_KEY_MAX &&
		    live(&v, now, &it[*n].rec)) {
			memcpy(it[*n].key, k.mv_data, k.mv_size);
			it[*n].key[k.mv_size] = '\0';
			if (++*n == SCAN_BATCH)
				break;
		}
	}
	if (rc == MDB_NOTFOUND)
		*end = 1;
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return fail(l, rc, e);
	return RC_OK;
}

static enum rc
lmdb_scan(void *h, const char *prefix, store_scan_fn fn, void *arg,
    struct err *e)
{
	struct lmdb		*l = h;
	struct scan_item	*it;
	char			 last[LMDB_KEY_MAX];
	size_t			 lastlen = 0, n, i;
	enum rc			 rc = RC_OK;
	int			 end = 0, stop = 0;

	if ((it = calloc(SCAN_BATCH, sizeof(*it))) == NULL) {
		err_set(e, "store: lmdb %s: out of memory", l->path);
		return RC_NOMEM;
	}
	while (!end && !stop) {
		rc = scan_batch(l, prefix, last, &lastlen, it, &n, &end, e);
		if (rc != RC_OK)
			break;
		for (i = 0; i < n && !stop; i++)
			stop = fn(it[i].key, &it[i].rec, arg) != 0;
	}
	free(it);
	return rc;
}

/*
 * One purge transaction from after *last: deletes expired or unparsable
 * records (unparsable ones can never be read), at most PURGE_DELS of them
 * and looking at most at PURGE_SEEN; *more is set if it stopped early.
 */
static enum rc
purge_batch(struct lmdb *l, uint64_t now, char *last, size_t *lastlen,
    size_t *removed, int *more, struct err *e)
{
	MDB_txn		*txn;
	MDB_cursor	*cur;
	MDB_val		 k, v;
	struct store_rec r;
	size_t		 dels = 0, seen = 0;
	int		 rc;

	*more = 0;
	rc = mdb_txn_begin(l->env, NULL, 0, &txn);
	if (rc != 0)
		return wfail(l, rc, e);
	rc = mdb_cursor_open(txn, l->dbi, &cur);
	if (rc != 0) {
		mdb_txn_abort(txn);
		return fail(l, rc, e);
	}
	rc = resume(cur, last, *lastlen, "", 0, &k, &v);
	for (; rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (k.mv_size > LMDB_KEY_MAX) {
			rc = MDB_BAD_VALSIZE;
			break;
		}
		memcpy(last, k.mv_data, k.mv_size);
		*lastlen = k.mv_size;
		seen++;
		if (!live(&v, now, &r)) {
			/* the cursor then stands on the next record, which
			 * MDB_NEXT returns */
			if ((rc = mdb_cursor_del(cur, 0)) != 0)
				break;
			dels++;
		}
		if (dels >= PURGE_DELS || seen >= PURGE_SEEN) {
			*more = 1;
			break;
		}
	}
	mdb_cursor_close(cur);
	if (rc != 0 && rc != MDB_NOTFOUND) {
		mdb_txn_abort(txn);
		return wfail(l, rc, e);
	}
	rc = mdb_txn_commit(txn);
	if (rc != 0)
		return wfail(l, rc, e);
	*removed += dels;
	return RC_OK;
}

static enum rc
lmdb_purge(void *h, size_t *removed, struct err *e)
{
	struct lmdb	*l = h;
	char		 last[LMDB_KEY_MAX];
	size_t		 lastlen = 0;
	uint64_t	 now = store_now();
	enum rc		 rc;
	int		 more = 1, dead;

	*removed = 0;
	while (more) {
		rc = purge_batch(l, now, last, &lastlen, removed, &more, e);
		if (rc != RC_OK)
			return rc;
	}
	/* reader slots of crashed processes (a milter child restarted) */
	(void)mdb_reader_check(l->env, &dead);
	return RC_OK;
}

static void *
purger_main(void *arg)
{
	struct lmdb	*l = arg;
	struct timespec	 ts;
	struct err	 e;
	uint64_t	 last_run = now_ms(), due, t0;
	size_t		 n;

	(void)pthread_mutex_lock(&l->lock);
	while (!l->stop) {
		due = last_run + PURGE_EVERY_MS;
		if (l->wake)
			due = last_run + PURGE_WAKE_MS;
		if (now_ms() < due) {
			ts.tv_sec = (time_t)(due / 1000);
			ts.tv_nsec = (long)(due % 1000) * 1000000;
			(void)pthread_cond_timedwait(&l->cond, &l->lock, &ts);
			continue;
		}
		l->wake = 0;
		(void)pthread_mutex_unlock(&l->lock);
		t0 = now_ms();
		err_clear(&e);
		if (lmdb_purge(l, &n, &e) != RC_OK)
			log_msg(LOG_WARNING, "store: purge: %s", e.msg);
		else if (n > 0)
			log_msg(LOG_DEBUG, "store: lmdb %s: purged %zu expired "
			    "records in %llu ms", l->path, n,
			    (unsigned long long)(now_ms() - t0));
		(void)pthread_mutex_lock(&l->lock);
		last_run = now_ms();
	}
	(void)pthread_mutex_unlock(&l->lock);
	return NULL;
}

static int
registered(dev_t dev, ino_t ino)
{
	struct lmdb	*p;

	for (p = reg_head; p != NULL; p = p->next)
		if (p->dev == dev && p->ino == ino)
			return 1;
	return 0;
}

static void
unregister(struct lmdb *l)
{
	struct lmdb	**pp;

	(void)pthread_mutex_lock(&reg_lock);
	for (pp = &reg_head; *pp != NULL; pp = &(*pp)->next)
		if (*pp == l) {
			*pp = l->next;
			break;
		}
	(void)pthread_mutex_unlock(&reg_lock);
}

/* Opens the environment and the database; called with reg_lock held. */
static int
env_open(struct lmdb *l, unsigned flags, struct err *e)
{
	MDB_txn		*txn;
	MDB_envinfo	 info;
	MDB_stat	 st;
	struct stat	 sb;
	unsigned	 mflags;
	int		 rc, fd, dead;

	if (stat(l->path, &sb) == 0 && registered(sb.st_dev, sb.st_ino)) {
		err_set(e, "store: lmdb %s: already open in this process",
		    l->path);
		return -1;
	}
	if ((rc = mdb_env_create(&l->env)) != 0) {
		(void)fail(l, rc, e);
		return -1;
	}
	/*
	 * MDB_NOMETASYNC: one fsync per commit (the data pages) instead of
	 * two.  The meta page is written after the data and flushed by the
	 * next commit or the kernel; after a crash LMDB opens with the
	 * newest meta page that made it to disk, which points at data that
	 * did: the database stays consistent, at worst the last commit is
	 * lost.  For greylisting that is one more temporary refusal.
	 */
	mflags = MDB_NOSUBDIR | MDB_NOTLS | MDB_NOMETASYNC;
	if (flags & STORE_NOSYNC)
		mflags |= MDB_NOSYNC;
	rc = mdb_env_set_mapsize(l->env, l->mapsize);
	if (rc == 0)
		rc = mdb_env_set_maxreaders(l->env, MAX_READERS);
	if (rc == 0)
		rc = mdb_env_open(l->env, l->path, mflags, 0600);
	if (rc == 0)
		rc = mdb_env_get_fd(l->env, &fd);
	if (rc == 0 && fstat(fd, &sb) == -1)
		rc = errno;
	if (rc == 0)
		rc = mdb_reader_check(l->env, &dead);
	if (rc == 0)
		rc = mdb_txn_begin(l->env, NULL, 0, &txn);
	if (rc == 0) {
		rc = mdb_dbi_open(txn, NULL, 0, &l->dbi);
		if (rc == 0)
			rc = mdb_txn_commit(txn);
		else
			mdb_txn_abort(txn);
	}
	if (rc == 0)
		rc = mdb_env_stat(l->env, &st);
	if (rc == 0)
		rc = mdb_env_info(l->env, &info);
	if (rc != 0) {
		(void)fail(l, rc, e);
		mdb_env_close(l->env);
		l->env = NULL;
		return -1;
	}
	l->psize = st.ms_psize;
	l->mapsize = info.me_mapsize;	/* larger if the file already is */
	l->dev = sb.st_dev;
	l->ino = sb.st_ino;
	l->next = reg_head;
	reg_head = l;
	return 0;
}

static void *
lmdb_open(const struct store_conf *conf, unsigned flags, struct err *e)
{
	struct lmdb	*l;
	long		 pg = sysconf(_SC_PAGESIZE);
	int		 rc;

	if (conf->path == NULL || *conf->path == '\0') {
		err_set(e, "store: lmdb: no store.path");
		return NULL;
	}
	if ((l = calloc(1, sizeof(*l))) == NULL ||
	    (l->path = strdup(conf->path)) == NULL) {
		free(l);
		err_set(e, "store: lmdb %s: out of memory", conf->path);
		return NULL;
	}
	l->mapsize = conf->max_size > 0 ? conf->max_size : MAP_DEFAULT;
	if (pg > 0)
		l->mapsize -= l->mapsize % (size_t)pg;
	(void)pthread_mutex_lock(&reg_lock);
	rc = env_open(l, flags, e);
	(void)pthread_mutex_unlock(&reg_lock);
	if (rc != 0) {
		free(l->path);
		free(l);
		return NULL;
	}
	if (flags & STORE_PURGER) {
		pthread_condattr_t	 ca;

		(void)pthread_mutex_init(&l->lock, NULL);
		(void)pthread_condattr_init(&ca);
		(void)pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		(void)pthread_cond_init(&l->cond, &ca);
		(void)pthread_condattr_destroy(&ca);
		if (pthread_create(&l->thread, NULL, purger_main, l) != 0) {
			err_set(e, "store: lmdb %s: cannot start the purge "
			    "thread", l->path);
			(void)pthread_cond_destroy(&l->cond);
			(void)pthread_mutex_destroy(&l->lock);
			unregister(l);
			mdb_env_close(l->env);
			free(l->path);
			free(l);
			return NULL;
		}
		l->purger = 1;
	}
	return l;
}

static void
lmdb_close(void *h)
{
	struct lmdb	*l = h;

	if (l == NULL)
		return;
	if (l->purger) {
		(void)pthread_mutex_lock(&l->lock);
		l->stop = 1;
		(void)pthread_cond_signal(&l->cond);
		(void)pthread_mutex_unlock(&l->lock);
		(void)pthread_join(l->thread, NULL);
		(void)pthread_cond_destroy(&l->cond);
		(void)pthread_mutex_destroy(&l->lock);
	}
	unregister(l);
	mdb_env_close(l->env);
	free(l->path);
	free(l);
}

const struct store_ops store_lmdb = {
	.name = "lmdb",
	.open = lmdb_open,
	.close = lmdb_close,
	.get = lmdb_get,
	.put = lmdb_put,
	.del = lmdb_del,
	.incr = lmdb_incr,
	.scan = lmdb_scan,
	.purge = lmdb_purge,
};
