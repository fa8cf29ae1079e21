/*
 * metrics.c - counters, gauges and latency histograms with one optional
 * label, rendered in the Prometheus text format.  Registration happens at
 * start-up before any thread; each metric has a mutex for its values, so
 * updates and rendering are thread-safe.  Label values are bounded by the
 * callers (verdicts, module and stage names), never taken from the network.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "util.h"

#define METRICS_MAX	64
#define SERIES_MAX	64	/* label values per metric */

enum mtype { M_COUNTER, M_GAUGE, M_HISTOGRAM };

static const double bucket_le[] = { 0.001, 0.0025, 0.005, 0.01, 0.025,
    0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60 };
#define NBUCKET	NELEM(bucket_le)

struct series {
	char		 label[48];
	uint64_t	 count;		/* counter value or histogram count */
	int64_t		 gauge;
	double		 sum;
	uint64_t	 buckets[NBUCKET];
};

struct metric {
	const char	*name, *help, *label;
	enum mtype	 type;
	pthread_mutex_t	 lock;
	struct series	 s[SERIES_MAX];
	size_t		 n;
};

static struct metric	 registry[METRICS_MAX];
static size_t		 nmetrics;
struct metrics_std	 M;

static struct metric *
reg(const char *name, const char *help, const char *label, enum mtype t)
{
	struct metric	*m;

	if (nmetrics >= METRICS_MAX)
		abort();	/* a programming error, found by any test */
	m = &registry[nmetrics++];
	m->name = name;
	m->help = help;
	m->label = label;
	m->type = t;
	(void)pthread_mutex_init(&m->lock, NULL);
	return m;
}

struct metric *
metrics_counter(const char *name, const char *help, const char *label)
{
	return reg(name, help, label, M_COUNTER);
}

struct metric *
metrics_gauge(const char *name, const char *help)
{
	return reg(name, help, NULL, M_GAUGE);
}

struct metric *
metrics_gauge_labeled(const char *name, const char *help, const char *label)
{
	return reg(name, help, label, M_GAUGE);
}

struct metric *
metrics_histogram(const char *name, const char *help, const char *label)
{
	return reg(name, help, label, M_HISTOGRAM);
}

/* The series for a label value; the last slot collects overflow. */
static struct series *
series(struct metric *m, const char *label)
{
	size_t	 i;

	if (label == NULL)
		label = "";
	for (i = 0; i < m->n; i++)
		if (strcmp(m->s[i].label, label) == 0)
			return &m->s[i];
	if (m->n == SERIES_MAX)
		return &m->s[SERIES_MAX - 1];
	(void)str_copy(m->s[m->n].label, label, sizeof(m->s[m->n].label));
	return &m->s[m->n++];
}

void
metrics_set_labeled(struct metric *m, const char *label, int64_t v)
{
	if (m == NULL)
		return;
	(void)pthread_mutex_lock(&m->lock);
	series(m, label)->gauge = v;
	(void)pthread_mutex_unlock(&m->lock);
}

void
metrics_inc(struct metric *m, const char *label, uint64_t n)
{
	if (m == NULL)
		return;
	(void)pthread_mutex_lock(&m->lock);
	series(m, label)->count += n;
	(void)pthread_mutex_unlock(&m->lock);
}

void
metrics_set(struct metric *m, int64_t v)
{
	if (m == NULL)
		return;
	(void)pthread_mutex_lock(&m->lock);
	series(m, NULL)->gauge = v;
	(void)pthread_mutex_unlock(&m->lock);
}

void
metrics_add(struct metric *m, int64_t v)
{
	if (m == NULL)
		return;
	(void)pthread_mutex_lock(&m->lock);
	series(m, NULL)->gauge += v;
	(void)pthread_mutex_unlock(&m->lock);
}

void
metrics_observe(struct metric *m, const char *label, double secs)
{
	struct series	*s;
	size_t		 i;

	if (m == NULL)
		return;
	(void)pthread_mutex_lock(&m->lock);
	s = series(m, label);
	s->count++;
	s->sum += secs;
	for (i = 0; i < NBUCKET; i++)
		if (secs <= bucket_le[i])
			s->buckets[i]++;
	(void)pthread_mutex_unlock(&m->lock);
}

uint64_t
metrics_value(struct metric *m, const char *label)
{
	uint64_t	 v = 0;
	size_t		 i;

	(void)pthread_mutex_lock(&m->lock);
	for (i = 0; i < m->n; i++)
		if (strcmp(m->s[i].label, label != NULL ? label : "") == 0)
			v = m->type == M_GAUGE ? (uint64_t)m->s[i].gauge :
			    m->s[i].count;
	(void)pthread_mutex_unlock(&m->lock);
	return v;
}

static enum rc
render_one(struct buf *b, struct metric *m)
{
	static const char *tname[] = { "counter", "gauge", "histogram" };
	enum rc		 rc;
	size_t		 i, j;

	rc = buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", m->name, m->help,
	    m->name, tname[m->type]);
	for (i = 0; i < m->n && rc == RC_OK; i++) {
		struct series	*s = &m->s[i];
		char		 lab[96] = "", labc[96] = "";

		if (m->label != NULL && m->s[i].label[0] != '\0') {
			(void)snprintf(lab, sizeof(lab), "{%s=\"%s\"}",
			    m->label, s->label);
			(void)snprintf(labc, sizeof(labc), "%s=\"%s\",",
			    m->label, s->label);
		}
		if (m->type == M_COUNTER)
			rc = buf_printf(b, "%s%s %llu\n", m->name, lab,
			    (unsigned long long)s->count);
		else if (m->type == M_GAUGE)
			rc = buf_printf(b, "%s%s %lld\n", m->name, lab,
			    (long long)s->gauge);
		else {
			for (j = 0; j < NBUCKET && rc == RC_OK; j++)
				rc = buf_printf(b, "%s_bucket{%sle=\"%g\"} "
				    "%llu\n", m->name, labc, bucket_le[j],
				    (unsigned long long)s->buckets[j]);
			if (rc == RC_OK)
				rc = buf_printf(b, "%s_bucket{%sle=\"+Inf\"} "
				    "%llu\n%s_sum%s %.6f\n%s_count%s %llu\n",
				    m->name, labc,
				    (unsigned long long)s->count, m->name,
				    lab, s->sum, m->name, lab,
				    (unsigned long long)s->count);
		}
	}
	return rc;
}

enum rc
metrics_render(struct buf *b)
{
	enum rc	 rc = RC_OK;
	size_t	 i;

	for (i = 0; i < nmetrics && rc == RC_OK; i++) {
		(void)pthread_mutex_lock(&registry[i].lock);
		rc = render_one(b, &registry[i]);
		(void)pthread_mutex_unlock(&registry[i].lock);
	}
	return rc;
}

void
metrics_reset_all(void)
{
	size_t	 i;

	for (i = 0; i < nmetrics; i++) {
		(void)pthread_mutex_lock(&registry[i].lock);
		memset(registry[i].s, 0, sizeof(registry[i].s));
		registry[i].n = 0;
		(void)pthread_mutex_unlock(&registry[i].lock);
	}
}

void
metrics_init(void)
{
	if (nmetrics != 0)
		return;
	M.messages = metrics_counter("portero_messages_total",
	    "Decisions by verdict (messages and refused recipients).",
	    "verdict");
	M.refusals = metrics_counter("portero_refusals_total",
	    "Refusals (reject, tempfail, discard, quarantine) by deciding "
	    "module.", "module");
	M.stage_seconds = metrics_histogram("portero_stage_seconds",
	    "Time spent in portero per SMTP stage.", "stage");
	M.check_errors = metrics_counter("portero_check_errors_total",
	    "Checks that could not run, by check.", "check");
	M.connections = metrics_counter("portero_connections_total",
	    "Milter connections accepted.", NULL);
	M.conn_active = metrics_gauge("portero_connections_active",
	    "Milter connections open now.");
	M.conn_refused = metrics_counter("portero_connections_refused_total",
	    "Connections answered tempfail over milter.max_connections.",
	    NULL);
	M.reloads = metrics_counter("portero_reloads_total",
	    "Configuration reloads by result.", "result");
	M.cfg_generation = metrics_gauge("portero_config_generation",
	    "Generation number of the configuration in use.");
	M.dns_queries = metrics_counter("portero_dns_queries_total",
	    "DNS questions by result (ok, nxdomain, nodata, servfail, "
	    "timeout, error).", "result");
	M.dnsl_errors = metrics_counter("portero_dnsl_errors_total",
	    "DNSBL/DNSWL lookups that failed or gave an error code, by zone.",
	    "zone");
	M.dnsl_healthy = metrics_gauge_labeled("portero_dnsl_zone_healthy",
	    "1 if the DNSBL/DNSWL zone passed its last self-test (127.0.0.2 "
	    "listed, 127.0.0.1 not), else 0.", "zone");
	M.store_seconds = metrics_histogram("portero_store_seconds",
	    "Greylist/callout store operation latency, by operation.", "op");
	M.store_errors = metrics_counter("portero_store_errors_total",
	    "Store operations that failed (backend down, full, error), by "
	    "operation.", "op");
	M.greylist = metrics_counter("portero_greylist_total",
	    "Greylisting outcomes per recipient (new, early, passed, "
	    "whitelisted, error).", "outcome");
	M.callouts = metrics_counter("portero_callout_total",
	    "Recipient verification results (accept, reject, tempfail, "
	    "error, down, brake), from the cache or a callout.", "result");
	M.callout_cache = metrics_counter("portero_callout_cache_total",
	    "Callout cache lookups by outcome (hit, miss, stale).", "outcome");
	M.callout_seconds = metrics_histogram("portero_callout_seconds",
	    "Time of callout SMTP dialogues, by target.", "target");
	M.dkim = metrics_counter("portero_dkim_total",
	    "Outbound messages by DKIM outcome (signed, unsigned, error).",
	    "result");
	M.dkim_signatures = metrics_counter("portero_dkim_signatures_total",
	    "DKIM signatures made, by algorithm and domain (\"rsa-sha256 "
	    "example.com\").", "key");
	M.dkim_errors = metrics_counter("portero_dkim_errors_total",
	    "DKIM signing errors (key unavailable, library error), by domain.",
	    "domain");
	M.av_scans = metrics_counter("portero_av_scans_total",
	    "Antivirus scans by result (clean, infected, limit, error).",
	    "result");
	M.av_signatures = metrics_gauge("portero_av_signatures",
	    "Signatures in the antivirus engine that scanned last.");
	M.av_seconds = metrics_histogram("portero_av_scan_seconds",
	    "Time of antivirus scans, waiting for a scanner included.", NULL);
	M.content = metrics_counter("portero_content_total",
	    "Content rule outcomes by kind (reject, discard, hold, warn, "
	    "ignore, score, attachment, gtube, mime, too_big).", "kind");
	M.rule_errors = metrics_counter("portero_rule_errors_total",
	    "Rule table lookups that failed (match limit hit), by table.",
	    "table");
	M.spooled = metrics_counter("portero_content_spooled_total",
	    "Messages kept in a temporary file (over content.memory_limit).",
	    NULL);
	M.spam = metrics_counter("portero_spam_total",
	    "Messages at each spam level (tag, tag2, kill).", "level");
	M.dry_run = metrics_counter("portero_dry_run_total",
	    "Verdicts not applied because of dry run, by module.", "module");
}
