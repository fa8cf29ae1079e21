/*
 * metrics.h - the process-wide metrics registry (Prometheus text format).
 *
 * Counters and histograms are registered once at start-up (before threads)
 * by name; each may have one label.  Updates are thread-safe (a mutex per
 * metric; updates are rare next to the work they measure).
 */
#ifndef PORTERO_METRICS_H
#define PORTERO_METRICS_H

#include <stdint.h>

#include "buf.h"

struct metric;

struct metric	*metrics_counter(const char *name, const char *help,
		    const char *label);
struct metric	*metrics_gauge(const char *name, const char *help);
/* A gauge with one label (e.g. per-zone health). */
struct metric	*metrics_gauge_labeled(const char *name, const char *help,
		    const char *label);
void		 metrics_set_labeled(struct metric *, const char *label,
		    int64_t);
/* Latency histogram in seconds with fixed buckets 1 ms .. 60 s. */
struct metric	*metrics_histogram(const char *name, const char *help,
		    const char *label);
void		 metrics_inc(struct metric *, const char *label, uint64_t);
void		 metrics_set(struct metric *, int64_t);
void		 metrics_add(struct metric *, int64_t);
void		 metrics_observe(struct metric *, const char *label,
		    double seconds);
/* Value of a counter for a label (tests); 0 if never seen. */
uint64_t	 metrics_value(struct metric *, const char *label);
enum rc		 metrics_render(struct buf *);
void		 metrics_reset_all(void);

/* The metrics every module uses (registered by metrics_init). */
struct metrics_std {
	struct metric	*messages;	/* by verdict */
	struct metric	*refusals;	/* by module */
	struct metric	*stage_seconds;	/* by stage */
	struct metric	*check_errors;	/* by check */
	struct metric	*connections;
	struct metric	*conn_active;
	struct metric	*conn_refused;	/* over max_connections */
	struct metric	*reloads;	/* by result */
	struct metric	*cfg_generation;
	struct metric	*dry_run;	/* would-be verdicts by module */
	struct metric	*dns_queries;	/* by result */
	struct metric	*dnsl_errors;	/* DNSBL/DNSWL lookups failed, by zone */
	struct metric	*dnsl_healthy;	/* zone passed its self-test, by zone */
	struct metric	*store_seconds;	/* store latency, by op */
	struct metric	*store_errors;	/* by op */
	struct metric	*greylist;	/* by outcome */
	struct metric	*callouts;	/* by result */
	struct metric	*callout_cache;	/* by outcome */
	struct metric	*callout_seconds; /* by target */
	struct metric	*dkim;		/* by result */
	struct metric	*dkim_signatures; /* by "alg domain" */
	struct metric	*dkim_errors;	/* by domain */
	struct metric	*av_scans;	/* by result: clean, infected, limit,
					 * error */
	struct metric	*av_signatures;	/* signatures in the engine in use */
	struct metric	*av_seconds;	/* scan latency */
	struct metric	*content;	/* content verdicts by kind (rule
					 * action, attachment, gtube, mime) */
	struct metric	*rule_errors;	/* match limit hits, by table */
	struct metric	*spooled;	/* messages kept in a file, not memory */
	struct metric	*spam;		/* by level: tag, tag2, kill */
};
extern struct metrics_std M;

void		 metrics_init(void);
/* metrics_http.c: "host:port", "[::1]:port" or ":port"; 0 if valid. */
struct sockaddr_storage;
int		 metrics_listen_parse(const char *, struct sockaddr_storage *,
		    struct err *);
/* metrics_http.c: serve GET /metrics on "host:port"; 0 on success. */
int		 metrics_http_start(const char *listen, struct err *);
void		 metrics_http_stop(void);

#endif
