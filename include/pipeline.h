/*
 * pipeline.h - runs the enabled checks of one SMTP stage and folds their
 * results into the verdict to answer with (SPEC sections 2 and 3).
 *
 * The milter callbacks (milter.c) and `portero-ctl test` (ctl_test.c) both
 * drive a transaction only through these functions, so both see the same
 * verdicts.  Callers fill the conn_ctx macro fields (daemon_*, auth, queue
 * id) before calling.  Each function returns the verdict in *out; ACT_
 * CONTINUE means "go on".  Verdicts before RCPT are held and given at RCPT
 * (delayed reject).  One decision line is logged per refused recipient
 * and per finished message.  Thread-safe per connection.
 */
#ifndef PORTERO_PIPELINE_H
#define PORTERO_PIPELINE_H

#include <stddef.h>

#include "check.h"
#include "ctx.h"

/* name: verified client name or NULL; addr: text address or NULL (local). */
void	pipeline_connect(struct conn_ctx *, const char *name,
	    const char *addr, struct verdict *);
void	pipeline_helo(struct conn_ctx *, const char *, struct verdict *);
/* Starts a message (conn->msg).  auth: {auth_authen} or NULL.  Always
 * continues: MAIL never answers, its verdicts are held until RCPT. */
void	pipeline_mail(struct conn_ctx *, const char *from, const char *auth,
	    struct verdict *);
void	pipeline_rcpt(struct conn_ctx *, const char *rcpt, struct verdict *);
void	pipeline_header(struct conn_ctx *, const char *name,
	    const char *value, struct verdict *);
/* End of the header (every field seen). */
void	pipeline_eoh(struct conn_ctx *, struct verdict *);
void	pipeline_body(struct conn_ctx *, const unsigned char *, size_t,
	    struct verdict *);
/* Final verdict; logs the decision line.  The message stays until
 * pipeline_msg_end() so the caller can apply conn->msg->edits. */
void	pipeline_eom(struct conn_ctx *, struct verdict *);
void	pipeline_msg_end(struct conn_ctx *);
/* Client aborted the message (RSET, or all recipients refused). */
void	pipeline_abort(struct conn_ctx *);

/* A check of the config reads the content (CHECK_CONTENT): the pipeline
 * keeps it in msg->spool and refuses what exceeds content.max_size. */
int	pipeline_keeps_content(const struct cfg *);

/* Reply text with the decision id appended, safe for an SMTP reply. */
const char *pipeline_reply_text(struct conn_ctx *, const struct verdict *);

/* Canned verdicts of SPEC section 3. */
void	verdict_set(struct verdict *, enum action, const char *code,
	    const char *dsn, const char *text, const char *by);
extern const struct verdict verdict_continue;
extern const struct verdict verdict_tempfail_local;

#endif
