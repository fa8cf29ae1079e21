/*
 * log.h - logging to syslog or stderr, and the per-decision summary line.
 *
 * log_open() is called once at start-up; the level can change on reload
 * (atomic).  Logging is thread-safe.  Untrusted text must go through
 * log_escape() (or the decision formatter, which escapes every field).
 */
#ifndef PORTERO_LOG_H
#define PORTERO_LOG_H

#include <stddef.h>
#include <syslog.h>

#include "buf.h"
#include "check.h"

struct conn_ctx;
struct msg_ctx;
struct rcpt;

void	log_open(const char *ident, int facility, int to_stderr);
void	log_set_level(int);
/* A level from the command line: later log_set_level() calls (reloads)
 * do not change it. */
void	log_force_level(int);
/* Send decision lines to fn instead of the log (portero-ctl test). */
void	log_set_decision_sink(void (*)(const char *));
int	log_get_level(void);
int	log_level_parse(const char *);	/* -1 if unknown */
int	log_facility_parse(const char *);
void	log_msg(int level, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
/* Prefixes "QUEUEID: conn=ID " (or the connection id alone). */
void	log_conn(const struct conn_ctx *, int level, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));

/* Appends s to b with control and non-ASCII bytes, quotes, backslash and
 * angle brackets as \xNN, capped at max input bytes ("..." if cut). */
enum rc	log_escape(struct buf *, const char *s, size_t max);

/* The decision line (without syslog prefix) for a message, or for one
 * recipient refused before DATA (rcpt != NULL). */
enum rc	decision_format(struct buf *, const struct conn_ctx *,
	    const struct msg_ctx *, const struct rcpt *,
	    const struct verdict *);
void	log_decision(const struct conn_ctx *, const struct msg_ctx *,
	    const struct rcpt *, const struct verdict *);

#endif
