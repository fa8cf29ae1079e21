/*
 * check.h - the interface every check module implements.
 *
 * A check is compiled once per config snapshot (setup) into a read-only
 * conf, then run by the pipeline at the stages it names, from many threads
 * at once: run() must only read conf and write the transaction it is given.
 * A check reports through the txn_* helpers of ctx.h: score points with a
 * reason, header edits, or a final verdict.  An optional dependency is a
 * whole module listed (or not) in checks.c.
 */
#ifndef PORTERO_CHECK_H
#define PORTERO_CHECK_H

#include <libconfig.h>

#include "err.h"

enum stage {
	STAGE_CONNECT,
	STAGE_HELO,
	STAGE_MAIL,
	STAGE_RCPT,
	STAGE_HEADER,
	STAGE_EOH,
	STAGE_BODY,
	STAGE_EOM,
	STAGE_MAX
};
#define STAGE_BIT(s)	(1u << (s))

enum cr_status {
	CR_PASS,	/* ran, nothing to say */
	CR_FAIL,	/* ran, found something (points or a verdict) */
	CR_NEUTRAL,
	CR_SKIP,	/* did not apply */
	CR_ERROR	/* could not run; the check's on_error applies */
};

enum action {
	ACT_CONTINUE,
	ACT_ACCEPT,
	ACT_QUARANTINE,
	ACT_TEMPFAIL,
	ACT_REJECT,
	ACT_DISCARD
};

struct verdict {
	enum action	 action;
	const char	*code;		/* "550" */
	const char	*dsn;		/* "5.7.1" */
	const char	*text;		/* reply text without the decision id */
	const char	*decided_by;	/* check name or "policy" */
};

/* Check flags. */
#define CHECK_INBOUND	0x01	/* skipped for internal/authenticated and
				 * whitelisted clients and senders */
#define CHECK_STORE	0x02	/* uses the state store (cfg_store) */
#define CHECK_OUTBOUND	0x04	/* runs only for outbound sessions
				 * (internal or authenticated clients) */
#define CHECK_CONTENT	0x08	/* reads the message content: the pipeline
				 * keeps it in msg->spool */

struct cfg;
struct dns_batch;
struct txn;

struct check_ops {
	const char	*name;		/* reason prefix and metric label */
	const char	*group;		/* config group; NULL: always set up,
					 * with the root setting as base */
	unsigned	 stages;	/* STAGE_BIT(...) | ... */
	unsigned	 quiet_stages;	/* of those, where run() only looks and
					 * never gives a verdict: the MTA need
					 * not wait for a reply there */
	unsigned	 flags;
	int		 implemented;	/* 0: config accepted, no effect yet */
	int		(*setup)(const struct cfg *, const config_setting_t *,
			    void **conf, struct err *);
	void		(*teardown)(void *conf);
	/* Optional: asks its DNS questions into the stage's batch before
	 * any check of the stage runs, so all are in flight at once; run()
	 * then reads the answers (txn_state() carries them across). */
	void		(*start)(const void *conf, struct txn *, enum stage,
			    struct dns_batch *);
	enum cr_status	(*run)(const void *conf, struct txn *, enum stage);
	/* Optional: releases what run() kept in the message's state slot
	 * (txn_msg_state), when the message ends or is aborted. */
	void		(*msg_end)(const void *conf, void *state);
	/* Optional: upkeep outside any transaction (self-tests), run by the
	 * milter process at start, after each reload and every ten minutes. */
	void		(*periodic)(const void *conf, struct cfg *);
};

/* checks.c: every module, in pipeline order; NULL-terminated. */
extern const struct check_ops *const check_table[];

extern const struct check_ops check_whitelist;
extern const struct check_ops check_blacklist;
extern const struct check_ops check_helo;
extern const struct check_ops check_dnsbl;
extern const struct check_ops check_dnswl;
extern const struct check_ops check_rdns;
extern const struct check_ops check_sender;
extern const struct check_ops check_geoip;
extern const struct check_ops check_spf;
extern const struct check_ops check_callout;
extern const struct check_ops check_greylist;
extern const struct check_ops check_outbound;
extern const struct check_ops check_dkim;
extern const struct check_ops check_antivirus;
extern const struct check_ops check_content;
extern const struct check_ops check_spam;

const char	*stage_name(enum stage);
const char	*action_name(enum action);

#endif
