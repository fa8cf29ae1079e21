/*
 * cfg.c - load, compile, install and reference-count config snapshots
 * (see cfg.h).  The current snapshot pointer is guarded by a mutex; the
 * reference counts are atomic.  Thread-safe.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <sys/socket.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "cfg.h"
#include "check.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

static pthread_mutex_t	 cur_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cfg	*cur;
static unsigned		 generation;

/* Last component of a schema path. */
static const char *
leaf(const char *key)
{
	const char	*dot = strrchr(key, '.');

	return dot != NULL ? dot + 1 : key;
}

static const config_setting_t *
member(const config_setting_t *base, const char *key)
{
	if (base == NULL)
		return NULL;
	return config_setting_get_member(base, leaf(key));
}

static const char *
def(const char *key)
{
	const char	*d = cfg_schema_default(key);

	return d != NULL ? d : "";
}

int
cv_bool(const config_setting_t *base, const char *key)
{
	const config_setting_t	*s = member(base, key);

	if (s != NULL)
		return config_setting_get_bool(s);
	return strcmp(def(key), "true") == 0;
}

long long
cv_int(const config_setting_t *base, const char *key)
{
	const config_setting_t		*s = member(base, key);
	unsigned long long		 v = 0;

	if (s != NULL)
		return config_setting_get_int64(s);
	(void)parse_uint(def(key), 0, ~0ULL >> 1, &v);
	return (long long)v;
}

int32_t
cv_score(const config_setting_t *base, const char *key)
{
	const config_setting_t	*s = member(base, key);
	double			 d;
	int32_t			 out = 0;

	if (s == NULL)
		d = strtod(def(key), NULL);
	else if (config_setting_type(s) == CONFIG_TYPE_FLOAT)
		d = config_setting_get_float(s);
	else
		d = (double)config_setting_get_int64(s);
	(void)score_from_double(d, &out);
	return out;
}

static unsigned long long
unit_value(const config_setting_t *base, const char *key, int duration)
{
	const config_setting_t	*s = member(base, key);
	const char		*str;
	char			 tmp[32];
	unsigned long long	 v = 0;

	if (s == NULL)
		str = def(key);
	else if (config_setting_type(s) == CONFIG_TYPE_STRING)
		str = config_setting_get_string(s);
	else {
		(void)snprintf(tmp, sizeof(tmp), "%lld",
		    (long long)config_setting_get_int64(s));
		str = tmp;
	}
	if (duration)
		(void)parse_duration(str, ~0ULL >> 1, &v);
	else
		(void)parse_size(str, ~0ULL >> 1, &v);
	return v;
}

unsigned long long
cv_duration(const config_setting_t *base, const char *key)
{
	return unit_value(base, key, 1);
}

unsigned long long
cv_size(const config_setting_t *base, const char *key)
{
	return unit_value(base, key, 0);
}

const char *
cv_string(const config_setting_t *base, const char *key)
{
	const config_setting_t	*s = member(base, key);

	if (s != NULL)
		return config_setting_get_string(s);
	return def(key);
}

void
strlist_free(struct strlist *l)
{
	size_t	 i;

	for (i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

/* Elements of a list setting, or of its space-separated default. */
static enum rc
list_items(const config_setting_t *base, const char *key, struct strlist *l,
    struct err *e)
{
	const config_setting_t	*s = member(base, key);
	const char		*d, *sp;
	int			 i, n;

	l->v = NULL;
	l->n = 0;
	if (s != NULL) {
		n = config_setting_length(s);
		if (n == 0)
			return RC_OK;
		l->v = calloc((size_t)n, sizeof(*l->v));
		if (l->v == NULL)
			goto nomem;
		for (i = 0; i < n; i++) {
			l->v[i] = strdup(config_setting_get_string_elem(s, i));
			if (l->v[i] == NULL)
				goto nomem;
			l->n++;
		}
		return RC_OK;
	}
	for (d = def(key), n = 0; *d != '\0'; n++) {
		d += strspn(d, " ");
		if (*d == '\0')
			break;
		d += strcspn(d, " ");
	}
	if (n == 0)
		return RC_OK;
	l->v = calloc((size_t)n, sizeof(*l->v));
	if (l->v == NULL)
		goto nomem;
	for (d = def(key); *d != '\0';) {
		d += strspn(d, " ");
		if (*d == '\0')
			break;
		sp = d + strcspn(d, " ");
		l->v[l->n] = strndup(d, (size_t)(sp - d));
		if (l->v[l->n] == NULL)
			goto nomem;
		l->n++;
		d = sp;
	}
	return RC_OK;
nomem:
	strlist_free(l);
	err_set(e, "%s: out of memory", key);
	return RC_NOMEM;
}

enum rc
cv_strlist(const config_setting_t *base, const char *key, struct strlist *l,
    struct err *e)
{
	return list_items(base, key, l, e);
}

enum rc
cv_cidrs(const config_setting_t *base, const char *key, struct cidr_list *l,
    struct err *e)
{
	struct strlist	 items;
	size_t		 i;
	enum rc		 rc;

	l->v = NULL;
	l->n = 0;
	rc = list_items(base, key, &items, e);
	if (rc != RC_OK || items.n == 0)
		return rc;
	l->v = calloc(items.n, sizeof(*l->v));
	if (l->v == NULL) {
		strlist_free(&items);
		err_set(e, "%s: out of memory", key);
		return RC_NOMEM;
	}
	for (i = 0; i < items.n; i++) {
		if (cidr_parse(items.v[i], &l->v[i], e) != RC_OK) {
			strlist_free(&items);
			cidr_list_free(l);
			return RC_INVAL;
		}
		l->n++;
	}
	strlist_free(&items);
	return RC_OK;
}

static void
cfg_free(struct cfg *c)
{
	size_t	 i;

	if (c == NULL)
		return;
	for (i = 0; i < c->nchecks; i++)
		if (c->checks[i].ops->teardown != NULL)
			c->checks[i].ops->teardown(c->checks[i].conf);
	cidr_list_free(&c->internal);
	for (i = 0; i < c->store.nservers; i++)
		free(c->store.servers[i]);
	free(c->store.servers);
	free(c->store.path);
	free(c->store.prefix);
	if (c->store.password != NULL)
		explicit_bzero(c->store.password, strlen(c->store.password));
	free(c->store.password);
	dns_free(c->resolver);
	(void)pthread_mutex_destroy(&c->dns_lock);
	for (i = 0; i < c->dns.nservers; i++)
		free(c->dns.servers[i]);
	free(c->dns.servers);
	free(c->path);
	free(c->milter.socket);
	free(c->milter.user);
	free(c->milter.group);
	free(c->milter.pidfile);
	free(c->metrics_listen);
	free(c->content.spool_dir);
	free(c);
}

/* Source line of a setting (0 when absent: its default is at fault). */
static int
line_of(const config_setting_t *base, const char *key)
{
	const config_setting_t	*s = member(base, key);

	return s != NULL ? config_setting_source_line(s) : 0;
}

static int
dup_str(char **dst, const char *src, struct err *e)
{
	*dst = strdup(src);
	if (*dst == NULL) {
		err_set(e, "out of memory");
		return -1;
	}
	return 0;
}

/* A forwarder as libunbound takes it: "IP" or "IP@PORT". */
static int
forwarder_valid(const char *s)
{
	char			 host[64];
	const char		*at = strchr(s, '@');
	size_t			 hl = at != NULL ? (size_t)(at - s) : strlen(s);
	unsigned long long	 port;
	struct ipaddr		 ip;

	if (hl >= sizeof(host))
		return 0;
	memcpy(host, s, hl);
	host[hl] = '\0';
	if (strchr(host, '[') != NULL || ipaddr_parse(host, &ip) != RC_OK)
		return 0;
	return at == NULL || parse_uint(at + 1, 1, 65535, &port) == RC_OK;
}

/* dns group: mode, forwarders ("127.0.0.1@5353", "[::1]:53" style is
 * libunbound's "addr@port"), timeout. */
static int
compile_dns(struct cfg *c, const config_setting_t *g, struct err *e)
{
	struct strlist	 l;
	size_t		 i;

	c->dns.forward = strcmp(cv_string(g, "dns.mode"), "forward") == 0;
	c->dns.timeout_ms = (unsigned)cv_duration(g, "dns.timeout") * 1000;
	if (cv_strlist(g, "dns.forward", &l, e) != RC_OK)
		return -1;
	c->dns.servers = l.v;
	c->dns.nservers = l.n;
	for (i = 0; i < l.n; i++) {
		if (!forwarder_valid(l.v[i])) {
			err_set(e, "%s:%d: setting 'dns.forward[%zu]': '%s' is "
			    "not IP or IP@PORT", c->path, line_of(g,
			    "dns.forward"), i, l.v[i]);
			return -1;
		}
	}
	if (c->dns.forward && c->dns.nservers == 0) {
		err_set(e, "%s:%d: setting 'dns.forward': mode \"forward\" "
		    "needs at least one server", c->path, line_of(g,
		    "dns.mode"));
		return -1;
	}
	return 0;
}

struct dns *
cfg_dns(struct cfg *c, struct err *e)
{
	struct dns	*d;

	(void)pthread_mutex_lock(&c->dns_lock);
	if (c->resolver == NULL)
		c->resolver = dns_new(&c->dns, e);
	d = c->resolver;
	(void)pthread_mutex_unlock(&c->dns_lock);
	return d;
}

/* store group: backend, LMDB file, Redis servers and password. */
static int
compile_store(struct cfg *c, const config_setting_t *g, struct err *e)
{
	const config_setting_t	*r = member(g, "store.redis");
	struct strlist		 l;
	const char		*pw;
	char			 buf[512];
	FILE			*fp;
	size_t			 n;

	c->store.backend = strcmp(cv_string(g, "store.backend"), "redis") ==
	    0 ? STORE_REDIS : STORE_LMDB;
	if (dup_str(&c->store.path, cv_string(g, "store.path"), e) ||
	    dup_str(&c->store.prefix, cv_string(r, "store.redis.prefix"), e))
		return -1;
	c->store.max_size = cv_size(g, "store.max_size");
	c->store.db = (int)cv_int(r, "store.redis.db");
	c->store.timeout_ms = (unsigned)cv_duration(r,
	    "store.redis.timeout") * 1000;
	c->store.pool = (unsigned)cv_int(r, "store.redis.pool");
	if (cv_strlist(r, "store.redis.servers", &l, e) != RC_OK)
		return -1;
	c->store.servers = l.v;
	c->store.nservers = l.n;
	for (n = 0; n < c->store.nservers; n++)
		if (!store_redis_server_valid(c->store.servers[n])) {
			err_set(e, "%s:%d: setting 'store.redis.servers': '%s' "
			    "is not HOST:PORT, [IPv6]:PORT, HOST or unix:/PATH",
			    c->path, line_of(r, "store.redis.servers"),
			    c->store.servers[n]);
			return -1;
		}
	if (c->store.backend == STORE_REDIS && c->store.nservers == 0) {
		err_set(e, "%s:%d: setting 'store.redis.servers': the redis "
		    "backend needs at least one server", c->path,
		    line_of(r, "store.redis.servers"));
		return -1;
	}
	pw = cv_string(r, "store.redis.password_file");
	if (*pw == '\0' || c->store.backend != STORE_REDIS)
		return 0;
	if ((fp = fopen(pw, "re")) == NULL) {
		err_set(e, "%s:%d: setting 'store.redis.password_file': %s: %s",
		    c->path, line_of(r, "store.redis.password_file"), pw,
		    strerror(errno));
		return -1;
	}
	n = fread(buf, 1, sizeof(buf) - 1, fp);
	(void)fclose(fp);
	buf[n] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	if (n == sizeof(buf) - 1 || buf[0] == '\0') {
		explicit_bzero(buf, sizeof(buf));
		err_set(e, "%s:%d: setting 'store.redis.password_file': %s: "
		    "the password must be one line of 1 to 510 bytes", c->path,
		    line_of(r, "store.redis.password_file"), pw);
		return -1;
	}
	c->store.password = strdup(buf);
	explicit_bzero(buf, sizeof(buf));
	if (c->store.password == NULL) {
		err_set(e, "out of memory");
		return -1;
	}
	return 0;
}

static atomic_int	 strict;

void
cfg_set_strict(int on)
{
	atomic_store(&strict, on);
}

int
cfg_strict(void)
{
	return atomic_load(&strict);
}

static pthread_mutex_t	 store_lock = PTHREAD_MUTEX_INITIALIZER;
static struct store	*store_proc;
static int		 store_off;
static uint64_t		 store_retry_ms;

struct store *
cfg_store(struct cfg *c, struct err *e)
{
	struct store	*st;

	(void)pthread_mutex_lock(&store_lock);
	if (store_proc == NULL && store_off)
		err_set(e, "store disabled (--no-store)");
	else if (store_proc == NULL && now_ms() < store_retry_ms)
		err_set(e, "store: not open (the last attempt failed; next "
		    "attempt within 10 s)");
	else if (store_proc == NULL) {
		store_proc = store_open(&c->store, STORE_PURGER, e);
		if (store_proc == NULL) {
			log_msg(LOG_ERR, "%s", e->msg);
			store_retry_ms = now_ms() + 10000;
		}
	}
	st = store_proc;
	(void)pthread_mutex_unlock(&store_lock);
	return st;
}

void
cfg_store_close(void)
{
	(void)pthread_mutex_lock(&store_lock);
	store_close(store_proc);
	store_proc = NULL;
	store_retry_ms = 0;
	(void)pthread_mutex_unlock(&store_lock);
}

int
cfg_store_disabled(void)
{
	int	 off;

	(void)pthread_mutex_lock(&store_lock);
	off = store_off;
	(void)pthread_mutex_unlock(&store_lock);
	return off;
}

void
cfg_store_disable(void)
{
	(void)pthread_mutex_lock(&store_lock);
	store_off = 1;
	(void)pthread_mutex_unlock(&store_lock);
}

/* Core (non-module) settings. */
static int
compile_core(struct cfg *c, const config_t *cf, struct err *e)
{
	const config_setting_t	*root = config_root_setting(cf);
	const config_setting_t	*g;
	struct sockaddr_storage	 ss;
	unsigned		 mode = 0;

	g = config_lookup(cf, "milter");
	if (dup_str(&c->milter.socket, cv_string(g, "milter.socket"), e) ||
	    dup_str(&c->milter.user, cv_string(g, "milter.user"), e) ||
	    dup_str(&c->milter.group, cv_string(g, "milter.group"), e) ||
	    dup_str(&c->milter.pidfile, cv_string(g, "milter.pidfile"), e))
		return -1;
	(void)parse_mode(cv_string(g, "milter.socket_mode"), &mode);
	c->milter.socket_mode = mode;
	c->milter.timeout = (unsigned)cv_duration(g, "milter.timeout");
	c->milter.backlog = (unsigned)cv_int(g, "milter.backlog");
	c->milter.max_connections = (unsigned)cv_int(g,
	    "milter.max_connections");
	c->milter.shutdown_timeout = (unsigned)cv_duration(g,
	    "milter.shutdown_timeout");
	if (strncmp(c->milter.socket, "unix:", 5) != 0 &&
	    strncmp(c->milter.socket, "local:", 6) != 0 &&
	    strncmp(c->milter.socket, "inet:", 5) != 0 &&
	    strncmp(c->milter.socket, "inet6:", 6) != 0) {
		err_set(e, "%s:%d: setting 'milter.socket': '%s' must start "
		    "with unix:, inet: or inet6:", c->path,
		    line_of(g, "milter.socket"), c->milter.socket);
		return -1;
	}

	g = config_lookup(cf, "log");
	c->log.level = log_level_parse(cv_string(g, "log.level"));
	c->log.facility = log_facility_parse(cv_string(g, "log.facility"));
	c->log.to_stderr = cv_bool(g, "log.stderr");

	if (cv_cidrs(config_lookup(cf, "networks"), "networks.internal",
	    &c->internal, e) != RC_OK)
		return -1;
	g = config_lookup(cf, "dns");
	if (compile_dns(c, g, e) != 0)
		return -1;
	if (compile_store(c, config_lookup(cf, "store"), e) != 0)
		return -1;
	g = config_lookup(cf, "thresholds");
	c->thresholds.greylist = cv_score(g, "thresholds.greylist");
	c->thresholds.reject = cv_score(g, "thresholds.reject");
	c->thresholds.dry_run = cv_bool(g, "thresholds.dry_run");
	c->dry_run = cv_bool(root, "dry_run");
	/* message buffering serves every content module (antivirus too),
	 * so it is read even when the content group is absent */
	g = config_lookup(cf, "content");
	c->content.max_size = cv_size(g, "content.max_size");
	c->content.memory_limit = cv_size(g, "content.memory_limit");
	if (dup_str(&c->content.spool_dir, cv_string(g, "content.spool_dir"),
	    e))
		return -1;
	g = config_lookup(cf, "metrics");
	if (dup_str(&c->metrics_listen, cv_string(g, "metrics.listen"), e))
		return -1;
	if (*c->metrics_listen != '\0' && metrics_listen_parse(
	    c->metrics_listen, &ss, e) != 0) {
		err_prefix(e, "%s:%d: setting 'metrics.listen'", c->path,
		    line_of(g, "metrics.listen"));
		return -1;
	}
	/* named users and groups must exist (the defaults are checked when
	 * the daemon drops privileges, so a test box needs neither) */
	g = config_lookup(cf, "milter");
	if (member(g, "milter.user") != NULL && *c->milter.user != '\0' &&
	    getpwnam(c->milter.user) == NULL) {
		err_set(e, "%s:%d: setting 'milter.user': no such user '%s'",
		    c->path, line_of(g, "milter.user"), c->milter.user);
		return -1;
	}
	if (member(g, "milter.group") != NULL && *c->milter.group != '\0' &&
	    getgrnam(c->milter.group) == NULL) {
		err_set(e, "%s:%d: setting 'milter.group': no such group '%s'",
		    c->path, line_of(g, "milter.group"), c->milter.group);
		return -1;
	}
	return 0;
}

/* A boolean member of a group (enabled, dry_run), def when absent. */
static int
group_bool(const config_setting_t *g, const char *name, int dflt)
{
	int	 v;

	if (config_setting_is_group(g) &&
	    config_setting_lookup_bool(g, name, &v) == CONFIG_TRUE)
		return v;
	return dflt;
}

static int
compile_checks(struct cfg *c, const config_t *cf, struct err *e)
{
	const struct check_ops *const	*opp;

	for (opp = check_table; *opp != NULL; opp++) {
		const struct check_ops	*ops = *opp;
		const config_setting_t	*g;
		struct check_inst	*ci;
		const char		*onerr;
		char			 key[64];

		if (ops->group != NULL) {
			g = config_lookup(cf, ops->group);
			if (g == NULL || (config_setting_is_list(g) &&
			    config_setting_length(g) == 0))
				continue;	/* absent or empty: off */
			if (!group_bool(g, "enabled", 1))
				continue;
		} else
			g = config_root_setting(cf);
		if (!ops->implemented) {
			log_msg(LOG_WARNING, "%s: module '%s' is configured "
			    "but not built into this version; its settings "
			    "have no effect", c->path, ops->name);
			continue;
		}
		if (c->nchecks >= CHECK_MAX) {
			err_set(e, "too many check modules");
			return -1;
		}
		ci = &c->checks[c->nchecks];
		ci->ops = ops;
		ci->module_dry_run = ops->group != NULL &&
		    group_bool(g, "dry_run", 0);
		ci->dry_run = c->dry_run || ci->module_dry_run;
		/* lists of entries (dnsbl, dnswl) carry on_error per entry
		 * and fail open as a whole (SPEC section 4) */
		if (ops->group != NULL && config_setting_is_list(g))
			ci->on_error = ON_ERROR_ACCEPT;
		else if (ops->group != NULL) {
			/* the group's value, else the module's own default */
			(void)snprintf(key, sizeof(key), "%s.on_error",
			    ops->group);
			onerr = cv_string(g, key);
			ci->on_error = strcmp(onerr, "accept") == 0 ?
			    ON_ERROR_ACCEPT : ON_ERROR_TEMPFAIL;
		} else
			ci->on_error = ON_ERROR_TEMPFAIL;
		if (ops->setup != NULL && ops->setup(c, g, &ci->conf, e) != 0) {
			/* a setup may hand over what it built before failing */
			if (ci->conf != NULL && ops->teardown != NULL)
				ops->teardown(ci->conf);
			ci->conf = NULL;
			/* messages that name file:line already say enough */
			if (strncmp(e->msg, c->path, strlen(c->path)) != 0)
				err_prefix(e, "%s: %s", c->path, ops->name);
			return -1;
		}
		c->nchecks++;
		c->keeps_content |= (ops->flags & CHECK_CONTENT) != 0;
	}
	return 0;
}

struct cfg *
cfg_load(const char *path, struct err *e)
{
	config_t	 cf;
	struct cfg	*c;
	FILE		*fp;

	config_init(&cf);
	c = calloc(1, sizeof(*c));
	if (c == NULL || (c->path = strdup(path)) == NULL) {
		err_set(e, "out of memory");
		goto fail;
	}
	atomic_init(&c->refs, 1);
	(void)pthread_mutex_init(&c->dns_lock, NULL);
	fp = fopen(path, "r");
	if (fp == NULL) {
		err_set(e, "%s: %s", path, strerror(errno));
		goto fail;
	}
	(void)fclose(fp);
	config_set_auto_convert(&cf, 0);
	if (config_read_file(&cf, path) != CONFIG_TRUE) {
		err_set(e, "%s:%d: %s", config_error_file(&cf) != NULL ?
		    config_error_file(&cf) : path, config_error_line(&cf),
		    config_error_text(&cf));
		goto fail;
	}
	if (cfg_schema_validate(&cf, e) != 0 ||
	    compile_core(c, &cf, e) != 0 || compile_checks(c, &cf, e) != 0)
		goto fail;
	config_destroy(&cf);
	return c;
fail:
	config_destroy(&cf);
	cfg_free(c);
	return NULL;
}

void
cfg_install(struct cfg *c)
{
	struct cfg	*old;

	(void)pthread_mutex_lock(&cur_lock);
	if (c != NULL)
		c->generation = ++generation;
	old = cur;
	cur = c;
	(void)pthread_mutex_unlock(&cur_lock);
	cfg_release(old);
}

struct cfg *
cfg_ref(struct cfg *c)
{
	if (c != NULL)
		atomic_fetch_add(&c->refs, 1);
	return c;
}

struct cfg *
cfg_acquire(void)
{
	struct cfg	*c;

	(void)pthread_mutex_lock(&cur_lock);
	c = cfg_ref(cur);
	(void)pthread_mutex_unlock(&cur_lock);
	return c;
}

void
cfg_release(struct cfg *c)
{
	if (c == NULL)
		return;
	if (atomic_fetch_sub(&c->refs, 1) == 1)
		cfg_free(c);
}

static int
strlist_differ(char **a, size_t na, char **b, size_t nb)
{
	size_t	 i;

	if (na != nb)
		return 1;
	for (i = 0; i < na; i++)
		if (strcmp(a[i], b[i]) != 0)
			return 1;
	return 0;
}

const void *
cfg_check_conf(const struct cfg *cfg, const char *name)
{
	size_t	 i;

	for (i = 0; i < cfg->nchecks; i++)
		if (strcmp(cfg->checks[i].ops->name, name) == 0)
			return cfg->checks[i].conf;
	return NULL;
}

const char *
cfg_restart_diff(const struct cfg *a, const struct cfg *b)
{
	if (strcmp(a->milter.socket, b->milter.socket) != 0)
		return "milter.socket";
	if (a->milter.socket_mode != b->milter.socket_mode)
		return "milter.socket_mode";
	if (strcmp(a->milter.user, b->milter.user) != 0)
		return "milter.user";
	if (strcmp(a->milter.group, b->milter.group) != 0)
		return "milter.group";
	if (strcmp(a->milter.pidfile, b->milter.pidfile) != 0)
		return "milter.pidfile";
	if (a->milter.backlog != b->milter.backlog)
		return "milter.backlog";
	if (a->milter.timeout != b->milter.timeout)
		return "milter.timeout";
	if (a->milter.shutdown_timeout != b->milter.shutdown_timeout)
		return "milter.shutdown_timeout";
	if (a->log.facility != b->log.facility)
		return "log.facility";
	if (a->log.to_stderr != b->log.to_stderr)
		return "log.stderr";
	if (strcmp(a->metrics_listen, b->metrics_listen) != 0)
		return "metrics.listen";
	if (a->store.backend != b->store.backend)
		return "store.backend";
	if (strcmp(a->store.path, b->store.path) != 0)
		return "store.path";
	if (a->store.max_size != b->store.max_size)
		return "store.max_size";
	if (strlist_differ(a->store.servers, a->store.nservers,
	    b->store.servers, b->store.nservers))
		return "store.redis.servers";
	if (strcmp(a->store.prefix, b->store.prefix) != 0)
		return "store.redis.prefix";
	if (a->store.db != b->store.db)
		return "store.redis.db";
	if ((a->store.password == NULL) != (b->store.password == NULL) ||
	    (a->store.password != NULL && strcmp(a->store.password,
	    b->store.password) != 0))
		return "store.redis.password_file";
	if (a->store.timeout_ms != b->store.timeout_ms)
		return "store.redis.timeout";
	if (a->store.pool != b->store.pool)
		return "store.redis.pool";
	return NULL;
}
