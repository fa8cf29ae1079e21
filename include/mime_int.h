/*
 * mime_int.h - internal to mime*.c: the state of one MIME walk, shared by
 * the walk itself (mime.c) and the text and charset handling
 * (mime_charset.c).  Nothing else includes this; the interface is mime.h.
 *
 * Not thread-safe by itself: a struct walk belongs to one mime_walk()
 * call.
 */
#ifndef PORTERO_MIME_INT_H
#define PORTERO_MIME_INT_H

#include <gmime/gmime.h>

#include "mime.h"

#define MIME_LINE_MAX	2048	/* Postfix's line_length_limit */

#define WALK_GO		0
#define WALK_STOP	1	/* the value to return is in w->ret */

struct bound;			/* a boundary on the stack (mime.c) */


struct walk {
	const unsigned char		*p, *end;	/* next line, end */
	const struct mime_limits	*lim;
	const struct mime_visitor	*v;
	void				*arg;
	struct mime_report		*rep;
	struct err			*e;
	int				 ret;

	struct bound	*bs;		/* boundary stack, innermost last */
	size_t		 nb, capb;

	/* the current entity and its header block */
	enum mime_hdr_kind kind;
	unsigned	 depth;
	int		 nested;
	int		 digest_default;
	GMimeContentType *ct;		/* last Content-Type, or NULL */
	GMimeContentDisposition *cd;	/* last Content-Disposition */
	GMimeContentEncoding enc;
	unsigned	 nct;		/* Content-Type fields seen */
	int		 pushed;	/* boundaries pushed by this block */
	unsigned	 blk;		/* number of this block */
	char		*type;		/* "type/subtype", lowercase */

	char		*hbuf;		/* one header field */
	size_t		 hcap;
	char		 line[MIME_LINE_MAX + 2];	/* + LF or NUL */

	/* the text of the current leaf, when wanted */
	int		 text_on;
	int		 text_full;
	GMimeFilter	*dec, *conv;
	char		*tbuf;
	size_t		 tlen, tcap;
};

/* mime.c */
int		 mime_stop(struct walk *w, int ret);
int		 mime_nomem(struct walk *w);
int		 mime_lower(int c);
int		 mime_eq(const char *a, const char *b);

/* mime_charset.c: the text of a leaf */
void		 mime_text_begin(struct walk *w);
int		 mime_text_feed(struct walk *w, char *s, size_t n, int last);
void		 mime_text_reset(struct walk *w);
int		 mime_leaf_end(struct walk *w);
/* charsets GMime may not see, out of a field value, in place */
void		 mime_clamp_charsets(char *v);

#endif
