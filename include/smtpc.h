/*
 * smtpc.h - the SMTP client side of recipient verification callouts.
 *
 * A session talks to one internal MTA: connect, greeting, EHLO (HELO if
 * EHLO is refused), MAIL FROM:<>, then one RCPT TO per recipient on the same
 * connection, and QUIT.  Every step waits at most until an absolute
 * deadline (now_ms() clock) given by the caller; nothing blocks past it.
 * Replies are read with a strict parser: multi-line replies ("250-..."
 * lines then "250 ..."), a code that changes between lines, a line without
 * a code, an over-long line (more than SMTPC_LINE_MAX bytes) or too many
 * lines (SMTPC_LINES_MAX) is a malformed reply, which ends the session.
 * A session belongs to one thread at a time.
 */
#ifndef PORTERO_SMTPC_H
#define PORTERO_SMTPC_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define SMTPC_LINE_MAX	2048	/* RFC 5321 says 512; be lenient */
#define SMTPC_LINES_MAX	100
#define SMTPC_TEXT_MAX	256	/* first line's text kept for logs */

/* Incremental reply parser (exposed for tests and fuzzing). */
struct smtp_reply {
	int	 code;			/* 200..599 when complete */
	char	 text[SMTPC_TEXT_MAX];	/* first line after the code,
					 * printable ASCII, cut to fit */
	size_t	 lines;
};

enum smtp_parse {
	SMTP_PARSE_MORE,	/* need more bytes */
	SMTP_PARSE_DONE,	/* reply complete; *used bytes consumed */
	SMTP_PARSE_BAD		/* malformed */
};

struct smtp_parser {
	struct smtp_reply	 r;
	size_t			 linelen;	/* bytes of the current line */
	char			 head[4];	/* first 4 bytes of the line */
	int			 last;		/* current line is the last */
	int			 started;
};

void		 smtp_parser_init(struct smtp_parser *);
/* Feeds len bytes; on DONE, *used says how many were consumed (bytes
 * after the reply belong to the next one). */
enum smtp_parse	 smtp_parser_feed(struct smtp_parser *, const char *,
		    size_t len, size_t *used);

/* The result of one RCPT probe. */
enum smtpc_result {
	SMTPC_ACCEPT,		/* 2xx to RCPT */
	SMTPC_REJECT,		/* 5xx to RCPT */
	SMTPC_TEMP,		/* 4xx to RCPT, or to an earlier step */
	SMTPC_ERROR		/* connect failure, timeout, malformed or
				 * unexpected reply, connection lost */
};

struct smtpc;

/*
 * Connects to host:port (a numeric IPv4/IPv6 address or a name resolved
 * with getaddrinfo AI_NUMERICSERV; callouts target internal hosts, so
 * names are expected in /etc/hosts) and runs greeting, EHLO helo and
 * MAIL FROM:<>.  NULL with *res (SMTPC_TEMP or SMTPC_ERROR) and e set on
 * failure; reply (may be NULL) gets the failing reply.
 */
struct smtpc	*smtpc_open(const char *host, unsigned port, const char *helo,
		    uint64_t deadline_ms, enum smtpc_result *res,
		    struct smtp_reply *reply, struct err *);
/* RCPT TO:<addr> on the open session.  An address that cannot be sent
 * (control bytes, '<', '>', over 512 bytes) is SMTPC_ERROR without being
 * sent and the session stays usable; after any other SMTPC_ERROR, and
 * after a 421, smtpc_usable() says no (close it, open a new one). */
enum smtpc_result smtpc_rcpt(struct smtpc *, const char *addr,
		    uint64_t deadline_ms, struct smtp_reply *, struct err *);
/* Sends RSET (keeps the connection for a new MAIL FROM:<>); 0 if ok. */
int		 smtpc_reset(struct smtpc *, uint64_t deadline_ms,
		    struct err *);
/* Sends QUIT (waits at most until deadline_ms) and frees. NULL is ok. */
void		 smtpc_close(struct smtpc *, uint64_t deadline_ms);
/* A session may be reused (no error seen). */
int		 smtpc_usable(const struct smtpc *);

#endif
