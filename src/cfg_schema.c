/*
 * cfg_schema.c - the table of every configuration setting: type, bounds,
 * default, whether a change needs a restart.  cfg_schema_validate() walks a
 * parsed libconfig tree against it and reports the first problem as
 * "file:line: setting 'x.y': why".  The table is read-only: thread-safe.
 *
 * Paths name list elements "[]" and free-form group members "*" (e.g. the
 * country codes of geoip.scores).  List defaults are space-separated.  A setting of type SCH_FILE or SCH_DIR
 * must exist and be readable unless its module group says enabled = false.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cfg.h"
#include "cidr.h"
#include "util.h"

enum sch_type {
	SCH_GROUP,
	SCH_GROUPLIST,		/* ( { ... }, { ... } ) */
	SCH_BOOL,
	SCH_INT,
	SCH_FLOAT,		/* score: float or integer */
	SCH_STRING,
	SCH_DURATION,		/* integer seconds or "5m" */
	SCH_SIZE,		/* integer bytes or "50M" */
	SCH_MODE,		/* "0660" */
	SCH_ENUM,		/* string, one of arg "a|b|c" */
	SCH_STRLIST,
	SCH_CIDRLIST,
	SCH_FILE,		/* path, "" = none */
	SCH_DIR
};

#define SCH_RESTART	0x01	/* a reload cannot change it */

struct sch_key {
	const char	*path;
	enum sch_type	 type;
	const char	*def;		/* default, in config syntax */
	double		 min, max;	/* INT/FLOAT/DURATION/SIZE bounds */
	const char	*arg;		/* SCH_ENUM choices */
	unsigned	 flags;
};

#define DMAX	(400.0 * 86400)		/* longest duration: 400 days */
#define SMAX	(64.0 * 1073741824)	/* largest size: 64 GiB */
#define SCORE	-1000, 1000
#define ONERR	"tempfail|accept"
#define ACTIONS	"reject|discard|quarantine|tag"
/* A module group; onerr is its failure default (SPEC section 4). */
#define MODULE(g, onerr) \
	{ g, SCH_GROUP, NULL, 0, 0, NULL, 0 }, \
	{ g ".enabled", SCH_BOOL, "true", 0, 0, NULL, 0 }, \
	{ g ".dry_run", SCH_BOOL, "false", 0, 0, NULL, 0 }, \
	{ g ".on_error", SCH_ENUM, onerr, 0, 0, ONERR, 0 }

static const struct sch_key schema[] = {
	{ "dry_run", SCH_BOOL, "false", 0, 0, NULL, 0 },

	{ "milter", SCH_GROUP, NULL, 0, 0, NULL, 0 },
	/* inside Postfix's queue directory: chrooted smtpd and cleanup
	 * (Debian's default) reach it as unix:portero/portero.sock */
	{ "milter.socket", SCH_STRING,
	    "unix:/var/spool/postfix/portero/portero.sock", 0, 0, NULL,
	    SCH_RESTART },
	{ "milter.socket_mode", SCH_MODE, "0660", 0, 0, NULL, SCH_RESTART },
	{ "milter.user", SCH_STRING, "portero", 0, 0, NULL, SCH_RESTART },
	{ "milter.group", SCH_STRING, "postfix", 0, 0, NULL, SCH_RESTART },
	{ "milter.pidfile", SCH_STRING, "/run/portero/portero.pid", 0, 0,
	    NULL, SCH_RESTART },
	/* libmilter's wait for the MTA's next command: an SMTP client may
	 * idle up to smtpd_timeout (300 s) between commands */
	{ "milter.timeout", SCH_DURATION, "10m", 1, 7200, NULL, SCH_RESTART },
	{ "milter.backlog", SCH_INT, "128", 1, 65535, NULL, SCH_RESTART },
	{ "milter.max_connections", SCH_INT, "1000", 1, 100000, NULL, 0 },
	{ "milter.shutdown_timeout", SCH_DURATION, "15s", 0, 600, NULL,
	    SCH_RESTART },

	{ "log", SCH_GROUP, NULL, 0, 0, NULL, 0 },
	{ "log.level", SCH_ENUM, "info", 0, 0,
	    "debug|info|notice|warning|err", 0 },
	{ "log.facility", SCH_ENUM, "mail", 0, 0,
	    "mail|daemon|user|local0|local1|local2|local3|local4|local5|"
	    "local6|local7", SCH_RESTART },
	{ "log.stderr", SCH_BOOL, "false", 0, 0, NULL, SCH_RESTART },

	{ "dns", SCH_GROUP, NULL, 0, 0, NULL, 0 },
	{ "dns.mode", SCH_ENUM, "recursive", 0, 0, "recursive|forward", 0 },
	{ "dns.forward", SCH_STRLIST, "", 0, 0, NULL, 0 },
	{ "dns.timeout", SCH_DURATION, "2s", 1, 30, NULL, 0 },

	{ "store", SCH_GROUP, NULL, 0, 0, NULL, 0 },
	{ "store.backend", SCH_ENUM, "lmdb", 0, 0, "lmdb|redis", SCH_RESTART },
	{ "store.path", SCH_STRING, "/var/lib/portero/state.lmdb", 0, 0,
	    NULL, SCH_RESTART },
	{ "store.max_size", SCH_SIZE, "1G", 1048576, SMAX, NULL,
	    SCH_RESTART },
	{ "store.redis", SCH_GROUP, NULL, 0, 0, NULL, 0 },
	{ "store.redis.servers", SCH_STRLIST, "127.0.0.1:6379", 0, 0, NULL,
	    SCH_RESTART },
	{ "store.redis.prefix", SCH_STRING, "portero:", 0, 0, NULL,
	    SCH_RESTART },
	{ "store.redis.db", SCH_INT, "0", 0, 1000, NULL, SCH_RESTART },
	{ "store.redis.password_file", SCH_FILE, "", 0, 0, NULL,
	    SCH_RESTART },
	{ "store.redis.timeout", SCH_DURATION, "1s", 1, 10, NULL,
	    SCH_RESTART },
	{ "store.redis.pool", SCH_INT, "32", 1, 256, NULL, SCH_RESTART },

	{ "networks", SCH_GROUP, NULL, 0, 0, NULL, 0 },
	{ "networks.internal", SCH_CIDRLIST, "127.0.0.0/8 ::1/128", 0, 0,
	    NULL, 0 },

	{ "whitelist", SCH_GROUP, NULL, 0, 0, NULL, 0 },
	{ "whitelist.clients", SCH_CIDRLIST, "", 0, 0, NULL, 0 },
	{ "whitelist.client_names", SCH_STRLIST, "", 0, 0, NULL, 0 },
	{ "whitelist.senders", SCH_STRLIST, "", 0, 0, NULL, 0 },
	{ "whitelist.recipients", SCH_STRLIST, "", 0, 0, NULL, 0 },
	{ "blacklist", SCH_GROUP, NULL, 0, 0, NULL, 0 },
	{ "blacklist.enabled", SCH_BOOL, "true", 0, 0, NULL, 0 },
	{ "blacklist.dry_run", SCH_BOOL, "false", 0, 0, NULL, 0 },
	{ "blacklist.clients", SCH_CIDRLIST, "", 0, 0, NULL, 0 },
	{ "blacklist.client_names", SCH_STRLIST, "", 0, 0, NULL, 0 },
	{ "blacklist.senders", SCH_STRLIST, "", 0, 0, NULL, 0 },
	{ "blacklist.recipients", SCH_STRLIST, "", 0, 0, NULL, 0 },

	MODULE("geoip", "accept"),
	{ "geoip.database", SCH_FILE, "", 0, 0, NULL, 0 },
	{ "geoip.scores", SCH_GROUP, NULL, 0, 0, NULL, 0 },
	{ "geoip.scores.*", SCH_FLOAT, "0", SCORE, NULL, 0 },

	{ "dnsbl", SCH_GROUPLIST, NULL, 0, 0, NULL, 0 },
	{ "dnsbl.[].zone", SCH_STRING, "", 0, 0, NULL, 0 },
	{ "dnsbl.[].score", SCH_FLOAT, "0", SCORE, NULL, 0 },
	{ "dnsbl.[].dry_run", SCH_BOOL, "false", 0, 0, NULL, 0 },
	{ "dnsbl.[].on_error", SCH_ENUM, "accept", 0, 0, ONERR, 0 },
	{ "dnsbl.[].codes", SCH_GROUPLIST, NULL, 0, 0, NULL, 0 },
	{ "dnsbl.[].codes.[].code", SCH_STRING, "", 0, 0, NULL, 0 },
	{ "dnsbl.[].codes.[].mask", SCH_INT, "0", 1, 4294967295.0, NULL, 0 },
	{ "dnsbl.[].codes.[].score", SCH_FLOAT, "0", SCORE, NULL, 0 },
	{ "dnswl", SCH_GROUPLIST, NULL, 0, 0, NULL, 0 },
	{ "dnswl.[].zone", SCH_STRING, "", 0, 0, NULL, 0 },
	{ "dnswl.[].score", SCH_FLOAT, "0", SCORE, NULL, 0 },
	{ "dnswl.[].whitelist", SCH_BOOL, "false", 0, 0, NULL, 0 },
	{ "dnswl.[].dry_run", SCH_BOOL, "false", 0, 0, NULL, 0 },
	{ "dnswl.[].on_error", SCH_ENUM, "accept", 0, 0, ONERR, 0 },

	MODULE("rdns", "accept"),
	{ "rdns.missing", SCH_FLOAT, "1.5", SCORE, NULL, 0 },
	{ "rdns.mismatch", SCH_FLOAT, "1.0", SCORE, NULL, 0 },
	{ "rdns.generic", SCH_FLOAT, "1.0", SCORE, NULL, 0 },
	{ "rdns.generic_patterns", SCH_STRLIST,
	    "(^|[.-])(dsl|dyn|dynamic|dhcp|pool|cable|ppp|customer|"
	    "residential)[0-9]*[.-]", 0, 0, NULL, 0 },

	MODULE("helo", "tempfail"),
	{ "helo.invalid", SCH_FLOAT, "1.0", SCORE, NULL, 0 },
	{ "helo.non_fqdn", SCH_FLOAT, "1.0", SCORE, NULL, 0 },
	{ "helo.bare_ip", SCH_FLOAT, "1.0", SCORE, NULL, 0 },
	{ "helo.literal_mismatch", SCH_FLOAT, "1.0", SCORE, NULL, 0 },
	{ "helo.ours", SCH_FLOAT, "5.0", SCORE, NULL, 0 },
	{ "helo.ours_action", SCH_ENUM, "score", 0, 0, "score|reject", 0 },
	{ "helo.our_names", SCH_STRLIST, "", 0, 0, NULL, 0 },

	MODULE("sender", "tempfail"),
	{ "sender.invalid", SCH_FLOAT, "2.0", SCORE, NULL, 0 },
	{ "sender.non_fqdn", SCH_FLOAT, "2.0", SCORE, NULL, 0 },
	{ "sender.unknown_domain", SCH_FLOAT, "2.0", SCORE, NULL, 0 },

	MODULE("spf", "tempfail"),
	{ "spf.fail_action", SCH_ENUM, "reject", 0, 0, "reject|score", 0 },
	{ "spf.fail_score", SCH_FLOAT, "5.0", SCORE, NULL, 0 },
	{ "spf.softfail_score", SCH_FLOAT, "2.5", SCORE, NULL, 0 },
	{ "spf.neutral_score", SCH_FLOAT, "0.5", SCORE, NULL, 0 },
	{ "spf.none_score", SCH_FLOAT, "0.5", SCORE, NULL, 0 },
	{ "spf.permerror_score", SCH_FLOAT, "1.0", SCORE, NULL, 0 },

	MODULE("callout", "tempfail"),
	{ "callout.domains", SCH_GROUPLIST, NULL, 0, 0, NULL, 0 },
	{ "callout.domains.[].domain", SCH_STRING, "", 0, 0, NULL, 0 },
	{ "callout.domains.[].host", SCH_STRING, "", 0, 0, NULL, 0 },
	{ "callout.domains.[].port", SCH_INT, "25", 1, 65535, NULL, 0 },
	{ "callout.positive_ttl", SCH_DURATION, "31d", 0, DMAX, NULL, 0 },
	{ "callout.negative_ttl", SCH_DURATION, "3d", 0, DMAX, NULL, 0 },
	{ "callout.timeout", SCH_DURATION, "10s", 1, 25, NULL, 0 },
	{ "callout.max_time", SCH_DURATION, "20s", 1, 25, NULL, 0 },
	{ "callout.positive_refresh", SCH_DURATION, "7d", 0, DMAX, NULL, 0 },
	{ "callout.negative_refresh", SCH_DURATION, "3h", 0, DMAX, NULL, 0 },
	{ "callout.helo", SCH_STRING, "", 0, 0, NULL, 0 },
	{ "callout.max_connections", SCH_INT, "10", 1, 1000, NULL, 0 },
	{ "callout.down_interval", SCH_DURATION, "30s", 0, 3600, NULL, 0 },
	{ "callout.brake_limit", SCH_INT, "5", 0, 100000, NULL, 0 },
	{ "callout.brake_window", SCH_DURATION, "1h", 1, DMAX, NULL, 0 },

	MODULE("greylist", "accept"),
	{ "greylist.mode", SCH_ENUM, "selective", 0, 0, "selective|always",
	    0 },
	{ "greylist.delay", SCH_DURATION, "5m", 0, DMAX, NULL, 0 },
	{ "greylist.retry_window", SCH_DURATION, "2d", 60, DMAX, NULL, 0 },
	{ "greylist.expire", SCH_DURATION, "35d", 60, DMAX, NULL, 0 },
	{ "greylist.auto_whitelist", SCH_INT, "5", 0, 1000000, NULL, 0 },
	{ "greylist.ipv4_prefix", SCH_INT, "24", 0, 32, NULL, 0 },
	{ "greylist.ipv6_prefix", SCH_INT, "64", 0, 128, NULL, 0 },
	{ "greylist.countries", SCH_STRLIST, "", 0, 0, NULL, 0 },
	{ "greylist.networks", SCH_CIDRLIST, "", 0, 0, NULL, 0 },
	{ "greylist.spf_domain", SCH_BOOL, "true", 0, 0, NULL, 0 },

	{ "thresholds", SCH_GROUP, NULL, 0, 0, NULL, 0 },
	{ "thresholds.greylist", SCH_FLOAT, "4.0", SCORE, NULL, 0 },
	{ "thresholds.reject", SCH_FLOAT, "10.0", SCORE, NULL, 0 },
	{ "thresholds.dry_run", SCH_BOOL, "false", 0, 0, NULL, 0 },

	MODULE("antivirus", "tempfail"),
	{ "antivirus.database", SCH_DIR, "/var/lib/clamav", 0, 0, NULL, 0 },
	{ "antivirus.on_infected", SCH_ENUM, "reject", 0, 0, ACTIONS, 0 },
	{ "antivirus.scan_limit_action", SCH_ENUM, "tempfail", 0, 0,
	    "tempfail|accept|tag", 0 },
	/* "unix:PATH" or "inet:PORT@ADDR": scan with that clamd instead of
	 * portero's own scanner processes */
	{ "antivirus.clamd", SCH_STRING, "", 0, 0, NULL, 0 },
	{ "antivirus.scanners", SCH_INT, "2", 1, 64, NULL, 0 },
	/* concurrent scans of the milter; 0: twice the scanners */
	{ "antivirus.max_scans", SCH_INT, "0", 0, 1000, NULL, 0 },
	/* a scan's whole wait, under Postfix's milter_content_timeout */
	{ "antivirus.timeout", SCH_DURATION, "120s", 1, 290, NULL, 0 },
	{ "antivirus.check_interval", SCH_DURATION, "60s", 0, 86400, NULL,
	    0 },
	{ "antivirus.tmpdir", SCH_DIR, "", 0, 0, NULL, 0 },
	{ "antivirus.heuristic_alerts", SCH_BOOL, "true", 0, 0, NULL, 0 },
	/* libclamav limits for mail: the message itself is the top-level
	 * file, so max_file_size covers content.max_size */
	{ "antivirus.max_scan_size", SCH_SIZE, "100M", 1024, SMAX, NULL, 0 },
	{ "antivirus.max_file_size", SCH_SIZE, "50M", 1024, SMAX, NULL, 0 },
	{ "antivirus.max_recursion", SCH_INT, "16", 1, 100, NULL, 0 },
	{ "antivirus.max_files", SCH_INT, "1000", 1, 1000000, NULL, 0 },
	{ "antivirus.max_embedded_pe", SCH_SIZE, "10M", 1024, SMAX, NULL, 0 },
	{ "antivirus.max_scan_time", SCH_DURATION, "60s", 1, 3600, NULL, 0 },

	MODULE("content", "tempfail"),
	{ "content.max_size", SCH_SIZE, "50M", 1024, SMAX, NULL, 0 },
	{ "content.memory_limit", SCH_SIZE, "1M", 0, SMAX, NULL, 0 },
	{ "content.spool_dir", SCH_DIR, "/var/lib/portero", 0, 0, NULL, 0 },
	/* tables: "regexp:PATH", "pcre:PATH" or a bare PATH (pcre) */
	{ "content.header_checks", SCH_STRING, "", 0, 0, NULL, 0 },
	{ "content.mime_header_checks", SCH_STRING, "", 0, 0, NULL, 0 },
	{ "content.nested_header_checks", SCH_STRING, "", 0, 0, NULL, 0 },
	{ "content.body_checks", SCH_STRING, "", 0, 0, NULL, 0 },
	{ "content.body_checks_size_limit", SCH_SIZE, "51200", 0, SMAX, NULL,
	    0 },
	{ "content.match_limit", SCH_INT, "100000", 100, 100000000, NULL, 0 },
	{ "content.prefilter", SCH_BOOL, "true", 0, 0, NULL, 0 },
	{ "content.blocked_extensions", SCH_STRLIST, "exe scr pif com bat "
	    "cmd vbs vbe js jse wsf wsh hta cpl msi msp lnk reg ps1 jar scf "
	    "iso img vhd", 0, 0, NULL, 0 },
	{ "content.gtube", SCH_BOOL, "true", 0, 0, NULL, 0 },
	{ "content.mime_max_depth", SCH_INT, "20", 1, 1000, NULL, 0 },
	{ "content.mime_max_parts", SCH_INT, "1000", 1, 1000000, NULL, 0 },
	{ "content.mime_limit_action", SCH_ENUM, "reject", 0, 0,
	    "reject|tempfail|accept|quarantine", 0 },

	MODULE("spam", "tempfail"),
	{ "spam.tag_level", SCH_FLOAT, "1.0", SCORE, NULL, 0 },
	{ "spam.tag2_level", SCH_FLOAT, "5.0", SCORE, NULL, 0 },
	{ "spam.kill_level", SCH_FLOAT, "15.0", SCORE, NULL, 0 },
	{ "spam.subject_tag", SCH_STRING, "***SPAM*** ", 0, 0, NULL, 0 },
	{ "spam.kill_action", SCH_ENUM, "reject", 0, 0, ACTIONS, 0 },
	{ "spam.strip_headers", SCH_BOOL, "true", 0, 0, NULL, 0 },

	MODULE("dkim", "accept"),
	{ "dkim.sign_for", SCH_ENUM, "authenticated+internal", 0, 0,
	    "authenticated+internal|authenticated|internal", 0 },
	{ "dkim.keys", SCH_GROUPLIST, NULL, 0, 0, NULL, 0 },
	{ "dkim.keys.[].domain", SCH_STRING, "", 0, 0, NULL, 0 },
	{ "dkim.keys.[].selector", SCH_STRING, "", 0, 0, NULL, 0 },
	/* a key that cannot be loaded leaves its domain unsigned (SPEC
	 * section 4): checked by the module, an error only for -t */
	{ "dkim.keys.[].key", SCH_STRING, "", 0, 0, NULL, 0 },
	{ "dkim.keys.[].algorithm", SCH_ENUM, "rsa-sha256", 0, 0,
	    "rsa-sha256|ed25519-sha256", 0 },
	{ "dkim.keys.[].subdomains", SCH_BOOL, "false", 0, 0, NULL, 0 },
	{ "dkim.key_table", SCH_STRING, "", 0, 0, NULL, 0 },
	{ "dkim.signing_table", SCH_STRING, "", 0, 0, NULL, 0 },
	{ "dkim.allow_unsafe_keys", SCH_BOOL, "false", 0, 0, NULL, 0 },
	{ "dkim.envelope_fallback", SCH_BOOL, "false", 0, 0, NULL, 0 },
	{ "dkim.canonicalization", SCH_ENUM, "relaxed/relaxed", 0, 0,
	    "relaxed/relaxed|relaxed/simple|simple/relaxed|simple/simple", 0 },
	{ "dkim.oversign", SCH_STRLIST, "From", 0, 0, NULL, 0 },

	MODULE("outbound", "accept"),
	{ "outbound.strip_headers", SCH_STRLIST, "Received X-Originating-IP "
	    "X-Mailer X-PHP-Originating-Script", 0, 0, NULL, 0 },

	{ "metrics", SCH_GROUP, NULL, 0, 0, NULL, 0 },
	{ "metrics.listen", SCH_STRING, "", 0, 0, NULL, SCH_RESTART },
};

/*
 * Path of a setting: for the schema, list elements are "[]" ("dnsbl.[].
 * zone"); for messages (user = 1), real indices as the user wrote them
 * ("dnsbl[0].zone").
 */
static void
setting_path_fmt(const config_setting_t *s, int user, char *buf, size_t len)
{
	const config_setting_t	*chain[32];
	size_t			 n = 0, off = 0;

	for (; s != NULL && config_setting_parent(s) != NULL && n < 32;
	    s = config_setting_parent(s))
		chain[n++] = s;
	buf[0] = '\0';
	while (n-- > 0) {
		const char *name = config_setting_name(chain[n]);
		int w;

		if (name != NULL)
			w = snprintf(buf + off, len - off, "%s%s",
			    off ? "." : "", name);
		else if (user)
			w = snprintf(buf + off, len - off, "[%d]",
			    config_setting_index(chain[n]));
		else
			w = snprintf(buf + off, len - off, "%s[]",
			    off ? "." : "");
		if (w < 0 || (size_t)w >= len - off)
			return;
		off += (size_t)w;
	}
}

const struct sch_key *
cfg_schema_find(const char *path)
{
	size_t		 i;
	const char	*dot;
	char		 wild[256];

	for (i = 0; i < NELEM(schema); i++)
		if (strcmp(schema[i].path, path) == 0)
			return &schema[i];
	/* free-form member: "geoip.scores.RO" matches "geoip.scores.*" */
	dot = strrchr(path, '.');
	if (dot == NULL || (size_t)(dot - path) + 3 > sizeof(wild))
		return NULL;
	(void)snprintf(wild, sizeof(wild), "%.*s.*", (int)(dot - path), path);
	for (i = 0; i < NELEM(schema); i++)
		if (strcmp(schema[i].path, wild) == 0)
			return &schema[i];
	return NULL;
}

const char *
cfg_schema_default(const char *path)
{
	const struct sch_key	*k = cfg_schema_find(path);

	return k != NULL ? k->def : NULL;
}

int
cfg_schema_is_restart(const char *path)
{
	const struct sch_key	*k = cfg_schema_find(path);

	return k != NULL && (k->flags & SCH_RESTART);
}

static int
fail(const config_setting_t *s, struct err *e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
fail(const config_setting_t *s, struct err *e, const char *fmt, ...)
{
	char		 why[256], path[256];
	const char	*file;
	va_list		 ap;

	va_start(ap, fmt);
	(void)vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	setting_path_fmt(s, 1, path, sizeof(path));
	file = config_setting_source_file(s);
	err_set(e, "%s:%d: setting '%s': %s", file != NULL ? file : "?",
	    config_setting_source_line(s), path, why);
	return -1;
}

/* Top-level module group of s says enabled = false. */
static int
module_disabled(const config_setting_t *s)
{
	const config_setting_t	*top = s;
	int			 on;

	while (config_setting_parent(top) != NULL &&
	    config_setting_parent(config_setting_parent(top)) != NULL)
		top = config_setting_parent(top);
	if (config_setting_is_group(top) &&
	    config_setting_lookup_bool(top, "enabled", &on) == CONFIG_TRUE)
		return !on;
	return 0;
}

static int
enum_ok(const char *choices, const char *v)
{
	size_t		 n = strlen(v);
	const char	*p = choices;

	while (p != NULL && *p != '\0') {
		const char	*bar = strchr(p, '|');
		size_t		 l = bar != NULL ? (size_t)(bar - p) : strlen(p);

		if (l == n && strncmp(p, v, n) == 0)
			return 1;
		p = bar != NULL ? bar + 1 : NULL;
	}
	return 0;
}

/* Integer or unit string, parsed as a duration or size, within bounds. */
static int
check_unit_value(const config_setting_t *s, const struct sch_key *k,
    struct err *e)
{
	unsigned long long	 v;
	char			 tmp[32];
	const char		*str;
	enum rc			 rc;
	const char		*what = k->type == SCH_DURATION ? "duration" :
				    "size";

	switch (config_setting_type(s)) {
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:
		if (config_setting_get_int64(s) < 0)
			return fail(s, e, "a %s cannot be negative", what);
		(void)snprintf(tmp, sizeof(tmp), "%lld",
		    (long long)config_setting_get_int64(s));
		str = tmp;
		break;
	case CONFIG_TYPE_STRING:
		str = config_setting_get_string(s);
		break;
	default:
		return fail(s, e, "expected a %s (e.g. %s)", what,
		    k->type == SCH_DURATION ? "\"5m\"" : "\"50M\"");
	}
	rc = k->type == SCH_DURATION ? parse_duration(str, ~0ULL >> 1, &v) :
	    parse_size(str, ~0ULL >> 1, &v);
	if (rc != RC_OK)
		return fail(s, e, "'%s' is not a %s (units: %s)", str, what,
		    k->type == SCH_DURATION ? "s m h d w" : "K M G");
	if ((double)v < k->min || (double)v > k->max)
		return fail(s, e, "%s %s out of range (%.0f..%.0f)", what, str,
		    k->min, k->max);
	return 0;
}

static int
check_list(const config_setting_t *s, const struct sch_key *k,
    struct err *e)
{
	int			 i, n;
	struct cidr		 c;
	struct err		 ce;

	if (!config_setting_is_aggregate(s) || config_setting_is_group(s))
		return fail(s, e, "expected a list of strings [ \"...\" ]");
	n = config_setting_length(s);
	for (i = 0; i < n; i++) {
		const config_setting_t *el = config_setting_get_elem(s,
		    (unsigned)i);
		const char *v;

		if (config_setting_type(el) != CONFIG_TYPE_STRING)
			return fail(el, e, "expected a string");
		v = config_setting_get_string(el);
		if (*v == '\0')
			return fail(el, e, "empty string");
		if (k->type == SCH_CIDRLIST && cidr_parse(v, &c, &ce) !=
		    RC_OK)
			return fail(el, e, "%s", ce.msg);
	}
	return 0;
}

static int validate_group(const config_setting_t *, struct err *);

static int
validate_setting(const config_setting_t *s, struct err *e)
{
	char			 path[256];
	const struct sch_key	*k;
	const char		*str;
	double			 d;
	long long		 ll;
	unsigned		 mode;
	int			 type = config_setting_type(s);

	setting_path_fmt(s, 0, path, sizeof(path));
	k = cfg_schema_find(path);
	if (k == NULL)
		return fail(s, e, "unknown setting");
	switch (k->type) {
	case SCH_GROUP:
		if (type != CONFIG_TYPE_GROUP)
			return fail(s, e, "expected a group { ... }");
		return validate_group(s, e);
	case SCH_GROUPLIST:
		if (type != CONFIG_TYPE_LIST &&
		    !(type == CONFIG_TYPE_ARRAY && config_setting_length(s) ==
		    0))
			return fail(s, e, "expected a list of groups "
			    "( { ... }, ... )");
		for (int i = 0; i < config_setting_length(s); i++) {
			const config_setting_t *el = config_setting_get_elem(s,
			    (unsigned)i);

			if (config_setting_type(el) != CONFIG_TYPE_GROUP)
				return fail(el, e, "expected a group { ... }");
			if (validate_group(el, e) != 0)
				return -1;
		}
		return 0;
	case SCH_BOOL:
		if (type != CONFIG_TYPE_BOOL)
			return fail(s, e, "expected true or false");
		return 0;
	case SCH_INT:
		if (type != CONFIG_TYPE_INT && type != CONFIG_TYPE_INT64)
			return fail(s, e, "expected an integer");
		ll = config_setting_get_int64(s);
		if ((double)ll < k->min || (double)ll > k->max)
			return fail(s, e, "%lld out of range (%.0f..%.0f)", ll,
			    k->min, k->max);
		return 0;
	case SCH_FLOAT:
		if (type == CONFIG_TYPE_FLOAT)
			d = config_setting_get_float(s);
		else if (type == CONFIG_TYPE_INT || type == CONFIG_TYPE_INT64)
			d = (double)config_setting_get_int64(s);
		else
			return fail(s, e, "expected a number");
		if (d < k->min || d > k->max)
			return fail(s, e, "%g out of range (%g..%g)", d, k->min,
			    k->max);
		return 0;
	case SCH_DURATION:
	case SCH_SIZE:
		return check_unit_value(s, k, e);
	case SCH_STRING:
	case SCH_MODE:
	case SCH_ENUM:
	case SCH_FILE:
	case SCH_DIR:
		if (type != CONFIG_TYPE_STRING)
			return fail(s, e, "expected a string");
		str = config_setting_get_string(s);
		if (k->type == SCH_MODE && parse_mode(str, &mode) != RC_OK)
			return fail(s, e, "'%s' is not an octal mode", str);
		if (k->type == SCH_ENUM && !enum_ok(k->arg, str))
			return fail(s, e, "'%s' is not one of %s", str,
			    k->arg);
		if ((k->type == SCH_FILE || k->type == SCH_DIR) &&
		    *str != '\0' && !module_disabled(s) &&
		    access(str, R_OK | (k->type == SCH_DIR ? X_OK : 0)) != 0)
			return fail(s, e, "cannot read '%s': %s", str,
			    strerror(errno));
		return 0;
	case SCH_STRLIST:
	case SCH_CIDRLIST:
		return check_list(s, k, e);
	}
	return fail(s, e, "internal: unhandled type");
}

static int
validate_group(const config_setting_t *g, struct err *e)
{
	int	 i, n = config_setting_length(g);

	for (i = 0; i < n; i++)
		if (validate_setting(config_setting_get_elem(g, (unsigned)i),
		    e) != 0)
			return -1;
	return 0;
}

int
cfg_schema_validate(const config_t *cf, struct err *e)
{
	return validate_group(config_root_setting(cf), e);
}
