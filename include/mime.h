/*
 * mime.h - walks the MIME structure of one message with GMime 3 and
 * reports what content rules need: part and nested-message headers,
 * body lines as Postfix's body_checks sees them, attachment names
 * (RFC 2047 and RFC 2231 decoded), and the decoded text of text parts.
 *
 * Untrusted input: nesting depth, part count and header size are bounded
 * (struct mime_limits); a message beyond a bound is reported in
 * struct mime_report (and the walk stops), never a crash or a hang.
 * mime_init() once per process before any walk; walks of different
 * messages may run in parallel threads.
 */
#ifndef PORTERO_MIME_H
#define PORTERO_MIME_H

#include <stddef.h>

#include "err.h"

enum mime_hdr_kind {
	MIME_HDR_TOP,		/* the message's own header */
	MIME_HDR_PART,		/* a MIME part's header (mime_header_checks) */
	MIME_HDR_NESTED		/* header of an attached message/rfc822
				 * (nested_header_checks) */
};

struct mime_limits {
	unsigned	 max_depth;	/* multipart + message nesting */
	unsigned	 max_parts;	/* all parts, nested included */
	size_t		 max_header;	/* one header field, bytes */
	size_t		 max_text;	/* decoded text given per part */
};

void	mime_limits_default(struct mime_limits *);

/* Callbacks; any may be NULL.  A non-zero return stops the walk, and
 * mime_walk returns that value. */
struct mime_visitor {
	/* One header field "Name: value" as in the message (folded lines
	 * joined with their "\n" kept, no final line end). */
	int	(*header)(void *arg, enum mime_hdr_kind, unsigned depth,
		    const char *field, size_t len);
	/* One body line as Postfix's body_checks sees it: every line after
	 * the top header that is not a part or nested-message header
	 * (preambles, boundaries, encoded content, epilogues), undecoded,
	 * without its line end, not NUL-terminated (len bytes, NULs
	 * included); lines over 2048 bytes come in pieces. */
	int	(*body_line)(void *arg, const char *line, size_t len);
	/* A part with a file name (Content-Disposition filename or
	 * Content-Type name), decoded to UTF-8; nested: inside an attached
	 * message. */
	int	(*attachment)(void *arg, const char *filename,
		    const char *content_type, unsigned depth, int nested);
	/* Decoded text (UTF-8) of a text/ part, at most max_text bytes. */
	int	(*text)(void *arg, const char *content_type, const char *text,
		    size_t len);
};

struct mime_report {
	unsigned	 parts;
	unsigned	 depth;		/* deepest nesting seen */
	const char	*limit;		/* NULL, or which bound was exceeded:
					 * "depth", "parts", "header" */
	int		 malformed;	/* e.g. a missing closing boundary */
};

void	mime_init(void);
/* 0 when walked (see report), a callback's non-zero value, or -1 with e
 * set (out of memory, parser failure). */
int	mime_walk(const unsigned char *msg, size_t len,
	    const struct mime_limits *, const struct mime_visitor *, void *arg,
	    struct mime_report *, struct err *);

/*
 * The blocked extension a file name ends with, or NULL: compared without
 * case, after what Windows ignores (trailing dots and spaces) and any
 * path; exts are without the dot.  "invoice.pdf.exe" -> "exe".
 */
const char *mime_blocked_ext(const char *filename, char *const *exts,
	    size_t nexts);

#endif
