/*
 * ruletable.h - Postfix-compatible regexp: and pcre: lookup tables, as
 * used by header_checks, mime_header_checks, nested_header_checks and
 * body_checks (postconf(5), regexp_table(5), pcre_table(5), header_checks(5)).
 *
 * Both syntaxes are compiled with PCRE2 (regexp: patterns are POSIX ERE,
 * converted); JIT when available; every match runs under match, depth and
 * heap limits far below the library's defaults.  When built with
 * Hyperscan, a lookup first scans the subject once against all patterns
 * in prefilter mode and skips the PCRE2 match of those that cannot match;
 * the result is the same (PCRE2 decides every rule that may match).  A
 * batch of subjects (body lines) is scanned once for all of them
 * (ruletable_match_batch()).  A match that hits a limit
 * is an error (-1), never a silent "no match".  A table is compiled once
 * (per config snapshot) and read-only afterwards: lookups from many
 * threads at once are safe, each with its own scratch.
 */
#ifndef PORTERO_RULETABLE_H
#define PORTERO_RULETABLE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"

enum rule_syntax {
	RULE_REGEXP,		/* Postfix regexp: (POSIX ERE) */
	RULE_PCRE		/* Postfix pcre: */
};

enum rule_action {
	RA_NONE,		/* no rule matched */
	RA_REJECT,		/* REJECT [text] */
	RA_DEFER,		/* DEFER [text] */
	RA_CODE,		/* 4NN/5NN text: code and dsn in the result */
	RA_DISCARD,
	RA_HOLD,		/* milter quarantine: Postfix's hold queue */
	RA_WARN,		/* log only */
	RA_INFO,		/* log only */
	RA_IGNORE,		/* remove the header */
	RA_DUNNO,
	RA_OK,
	RA_SCORE,		/* SCORE n [text]: spam points */
	RA_PREPEND,		/* PREPEND header: add a header */
	RA_REPLACE,		/* REPLACE header: replace this header */
	RA_UNSUPPORTED		/* FILTER, REDIRECT, BCC, ...: warned at load,
				 * acts as DUNNO */
};

struct rule_limits {
	uint32_t	 match_limit;	/* pcre2_set_match_limit */
	uint32_t	 depth_limit;	/* pcre2_set_depth_limit */
	uint32_t	 heap_limit;	/* KiB, pcre2_set_heap_limit */
	size_t		 jit_stack;	/* bytes, max JIT stack */
	int		 no_prefilter;	/* 1: every pattern through PCRE2 */
	int		 batch;		/* 1: the table will be used with
					 * ruletable_match_batch() (a second
					 * prefilter database for it) */
};

/* Defaults for mail: far below PCRE2's (10 000 000 / 10 000 000 / 20 GB). */
void	rule_limits_default(struct rule_limits *);

struct rule_result {
	enum rule_action action;
	int32_t		 score;		/* RA_SCORE: hundredths */
	char		 code[4];	/* RA_CODE: "554"; else "" */
	char		 dsn[8];	/* RA_CODE: "5.7.1" or ""; else "" */
	const char	*text;		/* action text after $n substitution
					 * ("" if none): points into the
					 * caller's buf */
	unsigned	 line;		/* table line of the rule (logs) */
};

struct ruletable;
struct rule_scratch;

/* path: the table file; syntax from the config ("regexp:" / "pcre:"
 * prefix, or RULE_PCRE for a bare path).  NULL with e set to
 * "FILE:LINE: why" on the first error. */
struct ruletable *ruletable_load(const char *path, enum rule_syntax,
		    const struct rule_limits *, struct err *);
/* The same from text in memory; name is used in messages. */
struct ruletable *ruletable_parse(const char *name, const char *text,
		    size_t len, enum rule_syntax, const struct rule_limits *,
		    struct err *);
void		 ruletable_free(struct ruletable *);
size_t		 ruletable_count(const struct ruletable *);	/* rules */
const char	*ruletable_name(const struct ruletable *);
/* Patterns in the table's prefilter (Hyperscan, prefilter mode): a
 * lookup scans the subject once for all of them and runs PCRE2 only for
 * those that may match (and for the patterns left out).  0: none. */
size_t		 ruletable_prefiltered(const struct ruletable *);
/* Warnings of the load (unsupported actions...), one per line, or "". */
const char	*ruletable_warnings(const struct ruletable *);

/* Per-thread (or per-message) match state for one table; NULL on ENOMEM. */
struct rule_scratch *rule_scratch_new(const struct ruletable *);
void		 rule_scratch_free(struct rule_scratch *);
/* The same from (and back to) the calling thread's cache of scratches:
 * take one per table for a message, give it back after; NULL on ENOMEM.
 * A scratch taken is the caller's alone until given back. */
struct rule_scratch *rule_scratch_take(const struct ruletable *);
void		 rule_scratch_give(struct rule_scratch *);

/* All lookups with this scratch fail (-1, "time limit") once ms
 * milliseconds have passed from now: a bound on the rule work of one
 * message.  0: none (the default). */
void		 rule_scratch_deadline(struct rule_scratch *, unsigned ms);
/* pcre2_match() calls made with this scratch (tests, benches). */
unsigned long	 rule_scratch_pcre_calls(const struct rule_scratch *);
/* Prefilter scans (Hyperscan) made with this scratch (tests, benches). */
unsigned long	 rule_scratch_scans(const struct rule_scratch *);

/*
 * Looks s (len bytes, may contain NUL and newlines) up: the first rule
 * that matches, with if/endif blocks applied, decides.  Returns 1 (r
 * filled, r->text in textbuf), 0 (no match: r->action = RA_NONE), or -1
 * (a limit was hit or memory ran out: e says which rule and why).
 */
int		 ruletable_match(const struct ruletable *,
		    struct rule_scratch *, const char *s, size_t len,
		    struct rule_result *r, struct buf *textbuf,
		    struct err *e);

/*
 * Subjects looked up one after the other with ruletable_match_batch(),
 * e.g. the body lines of a message part: with a prefilter built for it
 * (rule_limits.batch), their text is scanned once for all of them
 * instead of once per subject.  Not thread-safe; one owner.
 */
struct rule_batch {
	struct buf	 text;		/* the subjects, each followed by '\n' */
	size_t		*off;		/* subject i starts at text.data + off[i] */
	size_t		 n, cap;
};

/* max: bytes of text (subjects and their separators) it may hold. */
void		 rule_batch_init(struct rule_batch *, size_t max);
void		 rule_batch_reset(struct rule_batch *);
void		 rule_batch_free(struct rule_batch *);
/* Adds a subject (a copy); RC_INVAL when it does not fit, RC_NOMEM. */
enum rc		 rule_batch_add(struct rule_batch *, const char *s,
		    size_t len);

/* Called for each subject of a batch that a rule matches (as
 * ruletable_match() returns 1): i, the subject and its length, and the
 * result, whose text is valid until the next lookup.  Non-zero stops
 * the batch. */
typedef int	(*rule_batch_fn)(void *arg, size_t i, const char *s,
		    size_t len, const struct rule_result *r);

/*
 * ruletable_match() of each subject of b in order, fn called for those
 * a rule matches.  Returns 0 when all were looked up, 1 when fn stopped
 * the batch, or -1 (e set, as ruletable_match()) at the first subject
 * whose lookup failed: the subjects before it were looked up.
 */
int		 ruletable_match_batch(const struct ruletable *,
		    struct rule_scratch *, const struct rule_batch *b,
		    struct buf *textbuf, rule_batch_fn fn, void *arg,
		    struct err *e);

const char	*rule_action_name(enum rule_action);

#endif
