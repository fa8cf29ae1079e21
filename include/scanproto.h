/*
 * scanproto.h - the wire format between the milter and the scanner
 * processes, and the scan result every antivirus backend returns.
 *
 * A request is one SOCK_SEQPACKET packet on the request queue carrying
 * two descriptors (SCM_RIGHTS: the message, read-only, and the reply
 * socket) and one text line:
 *
 *	PORTERO-SCAN 1 SCAN id=ID
 *
 * A reply is one write on the reply pipe (at most SCANPROTO_MAX bytes,
 * under PIPE_BUF: whole), one text line:
 *
 *	PORTERO-SCAN 1 OK id=ID gen=G sigs=N
 *	PORTERO-SCAN 1 FOUND id=ID gen=G sigs=N name=Eicar-Test-Signature
 *	PORTERO-SCAN 1 LIMIT id=ID gen=G sigs=N name=Heuristics.Limits...
 *	PORTERO-SCAN 1 ERROR id=ID gen=G sigs=N text=why, free text
 *
 * ID, G, N are decimal (G the engine generation, N its signature count).
 * Lines end with "\n" and are at most SCANPROTO_MAX bytes.  Parsers are
 * strict (exact keywords and order, no leading zeros, bounded numbers)
 * and sanitise names: what a parser returns may go into a log line or an
 * SMTP reply as it is.  Pure functions: thread-safe.
 */
#ifndef PORTERO_SCANPROTO_H
#define PORTERO_SCANPROTO_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define SCANPROTO_VERSION	1
#define SCANPROTO_MAX		512	/* bytes in one packet */
#define SCAN_NAME_MAX		128	/* name or error text + NUL */

enum scan_verdict {
	SCAN_CLEAN,
	SCAN_FOUND,	/* a signature matched: name */
	SCAN_LIMIT,	/* a scan limit was exceeded: name says which */
	SCAN_ERROR	/* could not scan: name says why; never a virus */
};

struct scan_result {
	enum scan_verdict	 verdict;
	char			 name[SCAN_NAME_MAX];	/* sanitised */
	unsigned		 gen;	/* engine generation; 0: unknown */
	uint64_t		 sigs;	/* signatures; 0: unknown */
};

/* "clean", "infected", "limit", "error" (metric labels). */
const char	*scan_verdict_name(enum scan_verdict);

/* Fills r with verdict and a sanitised copy of name (printf-style). */
void		 scan_result_set(struct scan_result *, enum scan_verdict,
		    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/*
 * Copies src (srclen bytes, stops at a NUL) into dst (dstlen > 0, always
 * NUL-terminated).  A signature name keeps [A-Za-z0-9._:/+=@#-] and gets
 * '_' for any other byte; free text (text != 0) keeps printable ASCII and
 * spaces, '?' for the rest.  Truncated at dstlen - 1 bytes.
 */
void		 scanproto_sanitize(char *dst, size_t dstlen,
		    const char *src, size_t srclen, int text);

/* 1 if a signature name reports an exceeded scan limit
 * ("Heuristics.Limits.Exceeded.*"), not a virus. */
int		 scanproto_is_limit(const char *name);

/* Encoders: the line into buf (size len >= SCANPROTO_MAX); its length,
 * or 0 if it does not fit. */
size_t		 scanproto_request_encode(char *buf, size_t len,
		    uint64_t id);
size_t		 scanproto_reply_encode(char *buf, size_t len,
		    uint64_t id, const struct scan_result *);

/* Parsers: RC_OK, or RC_INVAL for anything not exactly as above.  A FOUND
 * whose name is a limit name comes back as SCAN_LIMIT. */
enum rc		 scanproto_request_parse(const char *buf, size_t len,
		    uint64_t *id);
enum rc		 scanproto_reply_parse(const char *buf, size_t len,
		    uint64_t *id, struct scan_result *);

#endif
