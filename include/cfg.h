/*
 * cfg.h - configuration snapshots.
 *
 * cfg_load() parses a libconfig file, validates every setting against the
 * schema (cfg_schema.c), and compiles it - core settings and each enabled
 * check's private conf - into a new immutable struct cfg.  A snapshot is
 * never edited after loading; readers hold a reference for as long as they
 * use it (a connection holds one from connect to close).  cfg_install()
 * swaps the current snapshot atomically.  All functions are thread-safe.
 */
#ifndef PORTERO_CFG_H
#define PORTERO_CFG_H

#include <libconfig.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "cidr.h"
#include "dns.h"
#include "err.h"
#include "store.h"

#define CHECK_MAX	32

enum on_error {
	ON_ERROR_TEMPFAIL,
	ON_ERROR_ACCEPT
};

struct check_ops;

struct check_inst {
	const struct check_ops	*ops;
	void			*conf;		/* compiled by ops->setup */
	int			 dry_run;	/* module or global shadow mode */
	int			 module_dry_run; /* the module's own: its points
						 * do not count */
	enum on_error		 on_error;
};

struct strlist {
	char	**v;
	size_t	  n;
};

struct cfg {
	atomic_int	 refs;
	unsigned	 generation;
	char		*path;

	struct {
		char		*socket;
		unsigned	 socket_mode;
		char		*user, *group, *pidfile;
		unsigned	 timeout;		/* seconds */
		unsigned	 backlog;
		unsigned	 max_connections;
		unsigned	 shutdown_timeout;	/* seconds */
	} milter;
	struct {
		int	 level;		/* syslog priority */
		int	 facility;
		int	 to_stderr;
	} log;
	struct cidr_list internal;
	struct {
		int32_t	 greylist, reject;	/* hundredths */
		int	 dry_run;
	} thresholds;
	int		 dry_run;
	char		*metrics_listen;	/* "" = off */
	struct {
		uint64_t	 max_size;	/* bytes; 552 5.3.4 beyond */
		uint64_t	 memory_limit;	/* bytes kept in memory */
		char		*spool_dir;	/* temporary files beyond it */
	} content;

	struct check_inst checks[CHECK_MAX];
	size_t		 nchecks;
	int		 keeps_content;	/* a CHECK_CONTENT module is on */

	struct store_conf store;	/* restart-only: one store a process */
	struct dns_conf	 dns;
	struct dns	*resolver;	/* created on first use: cfg_dns() */
	pthread_mutex_t	 dns_lock;
};

/* Load and compile; NULL with e set to "file:line: setting 'x': why". */
struct cfg	*cfg_load(const char *path, struct err *e);
/* Install as current; takes over the caller's reference.  NULL drops
 * the current snapshot (at exit). */
void		 cfg_install(struct cfg *);
/* Current snapshot with one more reference (NULL before the first install). */
struct cfg	*cfg_acquire(void);
struct cfg	*cfg_ref(struct cfg *);
void		 cfg_release(struct cfg *);
/* The snapshot's resolver, created on first use (in the process that
 * serves mail, never in the supervisor); NULL with e set on failure. */
struct dns	*cfg_dns(struct cfg *, struct err *);
/*
 * The process's greylist/callout store, opened on first use with the
 * store settings of the snapshot that asks first (they are restart-only)
 * and kept until cfg_store_close().  NULL with e set when it cannot be
 * opened (tried again at most every 10 s) or after cfg_store_disable().
 */
struct store	*cfg_store(struct cfg *, struct err *);
void		 cfg_store_close(void);
/* portero-ctl test --no-store: greylisting skips, callouts run without
 * their cache. */
void		 cfg_store_disable(void);
int		 cfg_store_disabled(void);
/*
 * Strict loading (portero -t): problems a running daemon works around
 * (a DKIM key that cannot be loaded leaves its domain unsigned) are
 * errors instead.  Modules read it with cfg_strict() in setup.
 */
void		 cfg_set_strict(int);
int		 cfg_strict(void);
/* The compiled conf of the check named name when it is on, or NULL. */
const void	*cfg_check_conf(const struct cfg *, const char *name);
/* Names the first restart-only setting that differs, or NULL. */
const char	*cfg_restart_diff(const struct cfg *, const struct cfg *);

/*
 * Typed getters for module setup.  key is the full schema path of the
 * setting (e.g. "helo.non_fqdn", "dnsbl.[].score"); its last component is
 * looked up under base, and when absent the schema default applies.  The
 * schema has already checked types and ranges, so these cannot fail on a
 * loaded config.
 */
int		 cv_bool(const config_setting_t *base, const char *key);
long long	 cv_int(const config_setting_t *base, const char *key);
int32_t		 cv_score(const config_setting_t *base, const char *key);
unsigned long long cv_duration(const config_setting_t *base, const char *key);
unsigned long long cv_size(const config_setting_t *base, const char *key);
const char	*cv_string(const config_setting_t *base, const char *key);
/* Lists: absent or empty gives an empty list. */
enum rc		 cv_strlist(const config_setting_t *base, const char *key,
		    struct strlist *, struct err *);
enum rc		 cv_cidrs(const config_setting_t *base, const char *key,
		    struct cidr_list *, struct err *);
void		 strlist_free(struct strlist *);

/* cfg_schema.c: validates a parsed file; 0 if valid. */
int		 cfg_schema_validate(const config_t *, struct err *);
struct sch_key;
const struct sch_key *cfg_schema_find(const char *path);
const char	*cfg_schema_default(const char *path);
int		 cfg_schema_is_restart(const char *path);

#endif
