/*
 * ctx.h - per-connection and per-message contexts.
 *
 * A conn_ctx lives from the milter connect callback to close; it holds one
 * config reference and a connection arena.  A msg_ctx lives from MAIL FROM
 * to end-of-message or abort and owns a message arena freed whole.  Both
 * belong to the one libmilter thread serving the connection: no locking.
 * Strings from libmilter are copied into the arenas before being kept.
 */
#ifndef PORTERO_CTX_H
#define PORTERO_CTX_H

#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "arena.h"
#include "check.h"
#include "cfg.h"
#include "cidr.h"
#include "spool.h"

struct reason {
	struct reason	*next;
	const char	*check;		/* static */
	const char	*detail;	/* arena */
	int32_t		 points;	/* hundredths */
	enum stage	 stage;
	int		 dry;		/* from a dry-run module: not counted */
};

struct hdr_edit {
	struct hdr_edit	*next;
	int		 remove;	/* 1: remove instance idx of name */
	int		 change;	/* 1: instance idx of name gets value */
	int		 top;		/* 1: insert above every header (trace
					 * headers such as Authentication-
					 * Results belong there) */
	unsigned	 idx;		/* 1-based header instance */
	const char	*name, *value;
};

struct rcpt {
	struct rcpt	*next;
	const char	*raw;		/* as received */
	struct mailaddr	 addr;
	int		 whitelisted;
	const char	*grey;		/* greylist outcome for the log
					 * (new, early, passed, whitelisted) */
	const char	*verify;	/* callout outcome for the log */
};

struct conn_ctx {
	struct cfg	*cfg;		/* one held reference */
	struct arena	*arena;
	char		 id[16];	/* connection id, hex */
	unsigned	 nmsg;		/* messages begun on this connection */
	uint64_t	 start_ms;

	const char	*client_name;	/* verified name, or NULL */
	const char	*client_addr;	/* text form, "" if none */
	struct ipaddr	 ip;
	int		 has_ip;
	const char	*helo;		/* NULL before HELO */
	const char	*daemon_name, *daemon_addr, *daemon_port;
	const char	*myhostname;	/* macro j */
	const char	*auth;		/* {auth_authen}, NULL if none */
	const char	*country;	/* GeoIP ISO code, NULL if unknown */

	const char	*threshold_text; /* reply when the score refuses at
					 * connect ("... blocked using ZONE") */
	int		 dnswl;		/* DNSWL whitelist: never refused by
					 * score, never greylisted */
	int		 internal;	/* networks.internal or local */
	int		 whitelisted;	/* client or client name */
	int		 outbound;	/* internal or authenticated */
	int		 brake;		/* too many unknown recipients: later
					 * ones get 421 without a callout */
	unsigned	 unknown_rcpts;	/* refused as unknown by callouts */

	struct reason	*reasons;	/* connect and HELO stages */
	struct verdict	 pending;	/* delayed until RCPT; ACT_CONTINUE */
	enum stage	 pending_stage;
	struct verdict	 would;		/* strongest dry-run verdict */

	struct msg_ctx	*msg;		/* NULL between messages */
};

struct msg_ctx {
	struct conn_ctx	*conn;
	struct arena	*arena;
	char		 id[24];	/* decision id "conn.N" */
	uint64_t	 start_ms;
	const char	*queue_id;	/* "NOQUEUE" until Postfix gives {i} */

	const char	*from_raw;
	struct mailaddr	 from;
	int		 from_null;
	int		 from_bad;
	int		 whitelisted;	/* sender whitelisted */
	const char	*spf;		/* SPF result for the log; NULL: not
					 * checked */
	const char	*dkim;		/* DKIM outcome for the log; NULL: not
					 * outbound */

	struct rcpt	*rcpts, **rcpt_tail;
	size_t		 nrcpt;		/* accepted recipients */
	size_t		 nrcpt_seen;

	struct reason	*reasons;	/* MAIL stage onwards */
	struct verdict	 pending;	/* from MAIL stage, applied at RCPT */
	struct verdict	 would;
	struct hdr_edit	*edits, **edit_tail;
	uint64_t	 size;		/* header and body bytes seen */
	struct spool	*spool;		/* the content as it will be queued
					 * (header, empty line, body; CRLF),
					 * kept when a CHECK_CONTENT module is
					 * on; NULL otherwise */
	int		 too_big;	/* over content.max_size: refused at
					 * the end of the message */
	int		 spool_failed;	/* could not keep it: content checks
					 * fail per their on_error */
	const char	*content;	/* content rules outcome for the log
					 * ("rule:LINE", "attachment:NAME",
					 * ...); NULL: nothing to say */
	const char	*av;		/* antivirus outcome for the log
					 * ("clean", "infected:NAME", ...);
					 * NULL: not scanned */
	void		*state[32];	/* per-check message state */
};

/* The view a check gets of one stage of one transaction. */
struct txn {
	struct conn_ctx		*conn;
	struct msg_ctx		*msg;		/* NULL before MAIL */
	struct rcpt		*rcpt;		/* current, at STAGE_RCPT */
	const char		*hdr_name;	/* current, at STAGE_HEADER */
	const char		*hdr_value;
	const unsigned char	*body;		/* current chunk, at STAGE_BODY */
	size_t			 body_len;
	enum stage		 stage;
	const struct check_inst	*check;		/* running check */
	struct verdict		 verdict;	/* final verdict, if any */
	const char		*error;		/* CR_ERROR detail */
	int			 nomem;
	size_t			 idx;		/* running check's index */
	uint64_t		 dns_deadline;	/* now_ms() when the stage's
						 * DNS time (dns.timeout) ends */
	void			*state[CHECK_MAX];	/* start() -> run() */
};

struct conn_ctx	*conn_ctx_new(struct cfg *);
void		 conn_ctx_free(struct conn_ctx *);
struct msg_ctx	*msg_ctx_new(struct conn_ctx *);
void		 msg_ctx_free(struct msg_ctx *);
/* Sets the queue id once known (copied). */
void		 msg_set_queue_id(struct msg_ctx *, const char *);

/* For checks: the running check's slot, kept from start() to run(). */
void		*txn_state(const struct txn *);
void		 txn_state_set(struct txn *, void *);
/* For checks: the running check's slot in the message (MAIL stage on),
 * kept until the message ends; check_ops.msg_end releases it. */
void		*txn_msg_state(const struct txn *);
void		 txn_msg_state_set(struct txn *, void *);
/* For checks: add points with a reason ("helo", "non_fqdn", 100). */
void		 txn_score(struct txn *, const char *detail, int32_t points);
/* The same, with points that do not count when dry is set. */
void		 txn_score_ex(struct txn *, const char *detail, int32_t points,
		    int dry);
/* For checks: propose a final verdict (the pipeline decides dry run). */
void		 txn_verdict(struct txn *, enum action, const char *code,
		    const char *dsn, const char *text);
void		 txn_error(struct txn *, const char *detail);
void		 txn_header_add(struct txn *, const char *name,
		    const char *value);
/* The same, inserted at the top of the header. */
void		 txn_header_insert(struct txn *, const char *name,
		    const char *value);
/* Removes instance idx (1-based, among fields of that name) at the end. */
void		 txn_header_remove(struct txn *, const char *name,
		    unsigned idx);
/* Replaces the value of instance idx (1-based) at the end. */
void		 txn_header_change(struct txn *, const char *name,
		    unsigned idx, const char *value);
/* Total score so far, in hundredths (dry-run points excluded). */
int32_t		 txn_score_total(const struct txn *);
int32_t		 conn_score(const struct conn_ctx *);
int32_t		 msg_score(const struct msg_ctx *);

#endif
