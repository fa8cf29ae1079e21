/*
 * check_geoip.c - client country from a MaxMind DB (group "geoip").
 *
 * At connect, looks the client address up in a GeoIP2/GeoLite2 Country or
 * City database (libmaxminddb, mmap), records the country in the
 * connection (logged as country=XX for every client the database knows,
 * internal ones included) and, for inbound clients only, adds the points
 * geoip.scores gives that country (reason geoip:XX=points).  The country
 * is country.iso_code, else registered_country.iso_code; an address the
 * database does not know gets no country and no points.
 *
 * The database is reopened by every config load (reload) and, without a
 * reload, when the file is replaced on disk: geoipupdate writes a new
 * file and renames it over the old one.  At most once a second a lookup
 * stat()s the path; a new inode, size or mtime opens the new file and
 * swaps it in.  Lookups hold a reference to the database they use, so the
 * old one is closed (unmapped) when its last lookup is done.
 *
 * Thread-safe: the compiled scores are read-only; the current database
 * pointer is guarded by a mutex, the reference counts are atomic, and one
 * thread at a time checks the file (trylock: the others go on with the
 * database they have).  libmaxminddb lookups are thread-safe.
 */
#include <errno.h>
#include <maxminddb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>

#include "cfg.h"
#include "ctx.h"
#include "log.h"
#include "util.h"

#define NCODES		(26 * 26)	/* two letters A-Z */
#define CHECK_EVERY_MS	1000	/* stat() the file at most this often */

/* One open database; freed by the last geoip_db_release(). */
struct geoip_db {
	MMDB_s		 mmdb;
	atomic_int	 refs;
};

/* What identifies the file on disk ("ok" = 0: stat failed, errnum). */
struct file_id {
	int		 ok;
	int		 errnum;
	int		 regular;	/* a regular file */
	dev_t		 dev;
	ino_t		 ino;
	off_t		 size;
	struct timespec	 mtime;
};

/* The part that changes while serving. */
struct geoip_live {
	pthread_mutex_t	 lock;		/* guards db */
	struct geoip_db	*db;
	pthread_mutex_t	 check_lock;	/* one file check at a time; and seen */
	struct file_id	 seen;		/* the file last acted on */
	_Atomic uint64_t next_check;	/* now_ms() of the next check */
};

struct geoip_conf {
	char		*path;
	struct geoip_live *live;
	int32_t		 score[NCODES];	/* hundredths */
	unsigned char	 has_score[NCODES];
};

static int
code_index(const char *cc)
{
	if (cc[0] < 'A' || cc[0] > 'Z' || cc[1] < 'A' || cc[1] > 'Z' ||
	    cc[2] != '\0')
		return -1;
	return (cc[0] - 'A') * 26 + (cc[1] - 'A');
}

static void
file_id_get(const char *path, struct file_id *id)
{
	struct stat	 st;

	memset(id, 0, sizeof(*id));
	if (stat(path, &st) != 0) {
		id->errnum = errno;
		return;
	}
	id->ok = 1;
	id->regular = S_ISREG(st.st_mode);
	id->dev = st.st_dev;
	id->ino = st.st_ino;
	id->size = st.st_size;
	id->mtime = st.st_mtim;
}

static int
file_id_eq(const struct file_id *a, const struct file_id *b)
{
	if (!a->ok || !b->ok)
		return a->ok == b->ok;
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	    a->mtime.tv_sec == b->mtime.tv_sec &&
	    a->mtime.tv_nsec == b->mtime.tv_nsec;
}

static void
geoip_db_release(struct geoip_db *db)
{
	if (db == NULL)
		return;
	if (atomic_fetch_sub(&db->refs, 1) == 1) {
		MMDB_close(&db->mmdb);
		free(db);
	}
}

/* Opens path; NULL with why set (static text or errno's). */
static struct geoip_db *
geoip_db_open(const char *path, const char **why)
{
	struct geoip_db	*db;
	int		 rc;

	db = calloc(1, sizeof(*db));
	if (db == NULL) {
		*why = "out of memory";
		return NULL;
	}
	errno = 0;
	rc = MMDB_open(path, MMDB_MODE_MMAP, &db->mmdb);
	if (rc != MMDB_SUCCESS) {
		*why = (rc == MMDB_FILE_OPEN_ERROR || rc == MMDB_IO_ERROR) &&
		    errno != 0 ? strerror(errno) : MMDB_strerror(rc);
		free(db);
		return NULL;
	}
	atomic_init(&db->refs, 1);
	return db;
}

/* Country or City databases have country.iso_code; others probably not. */
static int
type_has_country(const MMDB_s *m)
{
	const char	*t = m->metadata.database_type;

	return t != NULL && (strcasestr(t, "country") != NULL ||
	    strcasestr(t, "city") != NULL);
}

static void
describe(const MMDB_s *m, char *out, size_t len)
{
	time_t		 built = (time_t)m->metadata.build_epoch;
	struct tm	 tm;
	char		 day[16] = "?";

	if (gmtime_r(&built, &tm) != NULL)
		(void)strftime(day, sizeof(day), "%Y-%m-%d", &tm);
	(void)snprintf(out, len, "type %s, built %s",
	    m->metadata.database_type != NULL ? m->metadata.database_type :
	    "?", day);
}

static struct geoip_db *
geoip_db_acquire(struct geoip_live *l)
{
	struct geoip_db	*db;

	(void)pthread_mutex_lock(&l->lock);
	db = l->db;
	atomic_fetch_add(&db->refs, 1);
	(void)pthread_mutex_unlock(&l->lock);
	return db;
}

/*
 * At most once a second: if the file was replaced, open the new one and
 * swap it in.  A file that cannot be opened is logged once and the loaded
 * database stays in use.
 */
static void
refresh(const struct geoip_conf *gc)
{
	struct geoip_live	*l = gc->live;
	struct geoip_db		*db, *old;
	struct file_id		 id;
	uint64_t		 now = now_ms(), next;
	const char		*why;
	char			 desc[128];

	next = atomic_load(&l->next_check);
	if (now < next || !atomic_compare_exchange_strong(&l->next_check,
	    &next, now + CHECK_EVERY_MS))
		return;
	if (pthread_mutex_trylock(&l->check_lock) != 0)
		return;
	file_id_get(gc->path, &id);
	if (file_id_eq(&id, &l->seen))
		goto out;
	l->seen = id;
	if (!id.ok) {
		log_msg(LOG_WARNING, "geoip: cannot stat %s: %s; still using "
		    "the database loaded before", gc->path,
		    strerror(id.errnum));
		goto out;
	}
	db = id.regular ? geoip_db_open(gc->path, &why) : NULL;
	if (!id.regular)
		why = "not a regular file";
	if (db == NULL) {
		log_msg(LOG_ERR, "geoip: %s changed on disk but cannot be "
		    "opened: %s; still using the database loaded before",
		    gc->path, why);
		goto out;
	}
	if (!type_has_country(&db->mmdb))
		log_msg(LOG_WARNING, "geoip: %s: database type '%s' is not a "
		    "Country or City database", gc->path,
		    db->mmdb.metadata.database_type);
	describe(&db->mmdb, desc, sizeof(desc));
	(void)pthread_mutex_lock(&l->lock);
	old = l->db;
	l->db = db;
	(void)pthread_mutex_unlock(&l->lock);
	geoip_db_release(old);
	log_msg(LOG_INFO, "geoip: %s changed on disk, reopened (%s)",
	    gc->path, desc);
out:
	(void)pthread_mutex_unlock(&l->check_lock);
}

static void
geoip_teardown(void *p)
{
	struct geoip_conf	*gc = p;

	if (gc == NULL)
		return;
	if (gc->live != NULL) {
		geoip_db_release(gc->live->db);
		(void)pthread_mutex_destroy(&gc->live->lock);
		(void)pthread_mutex_destroy(&gc->live->check_lock);
		free(gc->live);
	}
	free(gc->path);
	free(gc);
}

/* "file:line: setting 'geoip.x': " as the schema says it. */
static void
setting_err(struct err *e, const config_setting_t *s, const char *name,
    const char *why)
{
	const char	*file = config_setting_source_file(s);

	err_set(e, "%s:%d: setting 'geoip.%s': %s", file != NULL ? file : "?",
	    config_setting_source_line(s), name, why);
}

static int
parse_scores(struct geoip_conf *gc, const config_setting_t *g, struct err *e)
{
	const config_setting_t	*sc, *el;
	const char		*name;
	char			 key[64], why[160];
	int			 i, n, idx;

	sc = config_setting_get_member(g, "scores");
	if (sc == NULL)
		return 0;
	n = config_setting_length(sc);
	for (i = 0; i < n; i++) {
		el = config_setting_get_elem(sc, (unsigned)i);
		name = config_setting_name(el);
		idx = code_index(name);
		if (idx < 0) {
			(void)snprintf(key, sizeof(key), "scores.%.40s", name);
			(void)snprintf(why, sizeof(why), "'%.40s' is not a "
			    "country code: two capital letters (ISO 3166-1 "
			    "alpha-2, as the database has them), e.g. RO",
			    name);
			setting_err(e, el, key, why);
			return -1;
		}
		(void)snprintf(key, sizeof(key), "geoip.scores.%s", name);
		gc->score[idx] = cv_score(sc, key);
		gc->has_score[idx] = 1;
	}
	return 0;
}

static int
geoip_setup(const struct cfg *cfg, const config_setting_t *g, void **conf,
    struct err *e)
{
	struct geoip_conf	*gc;
	struct geoip_live	*l;
	const config_setting_t	*ds;
	const char		*why;
	char			 msg[ERR_MAX];

	(void)cfg;
	gc = calloc(1, sizeof(*gc));
	if (gc == NULL || (gc->path = strdup(cv_string(g,
	    "geoip.database"))) == NULL || (gc->live = l = calloc(1,
	    sizeof(*l))) == NULL) {
		err_set(e, "out of memory");
		goto fail;
	}
	(void)pthread_mutex_init(&l->lock, NULL);
	(void)pthread_mutex_init(&l->check_lock, NULL);
	ds = config_setting_get_member(g, "database");
	if (*gc->path == '\0') {
		setting_err(e, ds != NULL ? ds : g, "database", "a GeoIP2 or "
		    "GeoLite2 Country or City .mmdb file is required while "
		    "geoip is enabled");
		goto fail;
	}
	if (parse_scores(gc, g, e) != 0)
		goto fail;
	/* identify the file before opening it: a replacement in between
	 * is then seen as a change, never missed */
	file_id_get(gc->path, &l->seen);
	l->db = l->seen.regular ? geoip_db_open(gc->path, &why) : NULL;
	if (!l->seen.regular)
		why = l->seen.ok ? "not a regular file" :
		    strerror(l->seen.errnum);
	if (l->db == NULL) {
		(void)snprintf(msg, sizeof(msg), "cannot open MaxMind DB '%s': "
		    "%s", gc->path, why);
		setting_err(e, ds != NULL ? ds : g, "database", msg);
		goto fail;
	}
	if (!type_has_country(&l->db->mmdb))
		log_msg(LOG_WARNING, "geoip: %s: database type '%s' is not a "
		    "Country or City database; lookups may find no country",
		    gc->path, l->db->mmdb.metadata.database_type);
	atomic_init(&l->next_check, now_ms() + CHECK_EVERY_MS);
	*conf = gc;
	return 0;
fail:
	geoip_teardown(gc);
	return -1;
}

/* A two-letter code at path under entry into cc; 0 if absent. */
static int
iso_code(MMDB_entry_s *entry, const char *rec, char cc[3], int *err)
{
	MMDB_entry_data_s	 d;
	int			 rc;

	rc = MMDB_get_value(entry, &d, rec, "iso_code", NULL);
	if (rc == MMDB_LOOKUP_PATH_DOES_NOT_MATCH_DATA_ERROR)
		return 0;
	if (rc != MMDB_SUCCESS) {
		*err = rc;
		return 0;
	}
	if (!d.has_data || d.type != MMDB_DATA_TYPE_UTF8_STRING ||
	    d.data_size != 2)
		return 0;
	cc[0] = d.utf8_string[0];
	cc[1] = d.utf8_string[1];
	cc[2] = '\0';
	return code_index(cc) >= 0;
}

/*
 * Looks up a; 1 and the country in cc, 0 if the database does not know
 * it, -1 on error (why: static text).
 */
static int
lookup(const MMDB_s *m, const struct ipaddr *a, char cc[3], const char **why)
{
	struct sockaddr_storage	 ss;
	struct sockaddr_in	*sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)&ss;
	MMDB_lookup_result_s	 res;
	int			 mmerr = MMDB_SUCCESS;

	memset(&ss, 0, sizeof(ss));
	if (a->v4) {
		sin->sin_family = AF_INET;
		memcpy(&sin->sin_addr, a->b + 12, 4);
	} else {
		sin6->sin6_family = AF_INET6;
		memcpy(&sin6->sin6_addr, a->b, 16);
	}
	res = MMDB_lookup_sockaddr(m, (const struct sockaddr *)&ss, &mmerr);
	if (mmerr == MMDB_IPV6_LOOKUP_IN_IPV4_DATABASE_ERROR)
		return 0;
	if (mmerr != MMDB_SUCCESS) {
		*why = MMDB_strerror(mmerr);
		return -1;
	}
	if (!res.found_entry)
		return 0;
	if (iso_code(&res.entry, "country", cc, &mmerr) ||
	    (mmerr == MMDB_SUCCESS &&
	    iso_code(&res.entry, "registered_country", cc, &mmerr)))
		return 1;
	if (mmerr != MMDB_SUCCESS) {
		*why = MMDB_strerror(mmerr);
		return -1;
	}
	return 0;
}

static enum cr_status
geoip_run(const void *conf, struct txn *t, enum stage st)
{
	const struct geoip_conf	*gc = conf;
	struct conn_ctx		*c = t->conn;
	struct geoip_db		*db;
	const char		*why = NULL;
	char			 cc[3];
	int			 found, idx;

	(void)st;
	if (!c->has_ip)
		return CR_SKIP;
	refresh(gc);
	db = geoip_db_acquire(gc->live);
	found = lookup(&db->mmdb, &c->ip, cc, &why);
	geoip_db_release(db);
	if (found < 0) {
		txn_error(t, why);
		return CR_ERROR;
	}
	if (found == 0)
		return CR_PASS;
	c->country = arena_strdup(c->arena, cc);
	if (c->country == NULL) {
		t->nomem = 1;
		return CR_ERROR;
	}
	/* the country is logged for everyone; points only for inbound */
	if (c->outbound || c->whitelisted)
		return CR_PASS;
	idx = code_index(cc);
	if (!gc->has_score[idx] || gc->score[idx] == 0)
		return CR_PASS;
	txn_score(t, cc, gc->score[idx]);
	return CR_FAIL;
}

/*
 * Not CHECK_INBOUND: it runs for every client so that the country is
 * logged for internal and whitelisted ones too, and scores only inbound
 * ones itself.
 */
const struct check_ops check_geoip = {
	.name = "geoip",
	.group = "geoip",
	.stages = STAGE_BIT(STAGE_CONNECT),
	.flags = 0,
	.implemented = 1,
	.setup = geoip_setup,
	.teardown = geoip_teardown,
	.run = geoip_run,
};
