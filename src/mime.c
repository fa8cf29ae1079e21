/*
 * mime.c - the MIME walk of one message in memory (see mime.h): header
 * fields by kind, body lines as Postfix's body_checks sees them,
 * attachment names, and the decoded text of text parts.
 *
 * Structure: one pass of a line scanner over the caller's buffer, with
 * the state machine of Postfix's mime_state.c, so that header kinds and
 * body lines are those Postfix's header_checks, mime_header_checks,
 * nested_header_checks and body_checks would see, in message order:
 *
 *   - A header block is a run of header lines ("name:" of printable
 *     ASCII, optional blanks before the colon; folded lines start with a
 *     blank).  It ends at the first other line; that line is a body line
 *     (the usual empty separator included, as Postfix passes it on).
 *     A block ended by a non-empty line is malformed.
 *   - Every Content-Type field of a block whose type is multipart/ pushes
 *     its boundaries: each boundary parameter as written (a token or a
 *     quoted string, as Postfix reads it) and GMime's reading when it
 *     differs (GMime decodes RFC 2047 and RFC 2231 forms there).  Several
 *     readings, or fields, give several boundaries, as in Postfix, so
 *     that no interpretation hides a part header.  A body line that
 *     starts with "--" and a boundary on the stack (innermost first;
 *     trailing text ignored) is a boundary line: "--b--" closes that
 *     multipart, "--b" starts a part header block (MIME_HDR_PART).
 *     Inner multiparts left open by an outer boundary, or at the end of
 *     the message, are malformed.
 *   - A message/rfc822 (or message/global) block ended by an empty line
 *     is followed by the attached message's header (MIME_HDR_NESTED).  A
 *     message/ part with a base64 or quoted-printable encoding is
 *     malformed and walked as a leaf.
 *
 * GMime does what is hard to get right: the values of Content-Type and
 * Content-Disposition (quoting, comments, RFC 2231 continuations and
 * charsets, RFC 2047 words in parameters, GMime's default loose parser
 * options), transfer decoding (GMimeFilterBasic) and charset conversion
 * (GMimeFilterCharset).  It never sees the whole message: nothing is
 * copied or built before the limits apply, and a walk stops at a bound.
 *
 * Entities: the message itself (depth 0), each part of a multipart (the
 * multipart's depth + 1) and each attached message (its message/ part's
 * depth + 1) count as parts.  An entity that is not a multipart and has
 * a file name is an attachment (multiparts' names are ignored).  The
 * text of a text/ leaf that is no attachment (no name, or disposition
 * inline) is decoded, converted to UTF-8 and cut at max_text bytes (at a
 * character boundary); bytes that are not valid UTF-8 after that become
 * U+FFFD.  File names are made valid UTF-8 the same way.
 *
 * The text of a leaf (transfer decoding, conversion to UTF-8) and the
 * charset names GMime may see are mime_charset.c's; the walk state both
 * use is in mime_int.h.
 *
 * Every string given to a callback is NUL-terminated (and may hold NULs
 * before its length) and valid only during the callback.  Memory: the
 * boundary stack (at most 2 * (max_depth + 1) entries), one header field
 * (at most max_header bytes, and a copy), one body line piece and one
 * text (at most max_text bytes).
 *
 * Thread-safe: a walk uses only its own state and GMime objects, and
 * the charsets iconv accepted (mime_charset.c: a short list under a
 * mutex); mime_init() runs g_mime_init() once per process.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "mime_int.h"

#define HBUF_MIN	256

struct bound {
	char		*s;		/* the boundary, without "--" */
	size_t		 len;
	unsigned	 depth;		/* of its multipart */
	int		 nested;	/* inside an attached message */
	int		 digest;	/* multipart/digest: parts default to
					 * message/rfc822 */
	unsigned	 blk;		/* header block that pushed it */
};

static pthread_once_t	 mime_once = PTHREAD_ONCE_INIT;

static void
mime_init_once(void)
{
	g_mime_init();
}

void
mime_init(void)
{
	(void)pthread_once(&mime_once, mime_init_once);
}

void
mime_limits_default(struct mime_limits *l)
{
	l->max_depth = 20;
	l->max_parts = 1000;
	l->max_header = 102400;		/* Postfix's header_size_limit */
	l->max_text = 1024 * 1024;
}

int
mime_stop(struct walk *w, int ret)
{
	w->ret = ret;
	return WALK_STOP;
}

int
mime_nomem(struct walk *w)
{
	err_set(w->e, "mime: out of memory");
	return mime_stop(w, -1);
}

static int
limit(struct walk *w, const char *what)
{
	w->rep->limit = what;
	return mime_stop(w, 0);
}

int
mime_lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

int
mime_eq(const char *a, const char *b)
{
	for (; *a != '\0' && *b != '\0'; a++, b++)
		if (mime_lower((unsigned char)*a) !=
		    mime_lower((unsigned char)*b))
			return 0;
	return *a == *b;
}

static int
eq_ascii_n(const char *a, size_t n, const char *b)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		if (b[i] == '\0' || mime_lower((unsigned char)a[i]) !=
		    mime_lower((unsigned char)b[i]))
			return 0;
	return b[n] == '\0';
}

/*
 * The next line from w->p: its start and length without the line end
 * ("\n" or "\r\n"); w->p moves past it.
 */
static const unsigned char *
next_line(struct walk *w, size_t *len)
{
	const unsigned char	*s = w->p, *nl;
	size_t			 n;

	nl = memchr(s, '\n', (size_t)(w->end - s));
	if (nl == NULL) {
		n = (size_t)(w->end - s);
		w->p = w->end;
	} else {
		n = (size_t)(nl - s);
		w->p = nl + 1;
		if (n > 0 && s[n - 1] == '\r')
			n--;
	}
	*len = n;
	return s;
}

/*
 * Postfix's is_header(): the length of the field name when the line
 * starts a header field (printable ASCII up to ':', optionally followed
 * by blanks before it), else 0.  *colon: offset of the ':'.
 */
static size_t
header_name(const unsigned char *s, size_t n, size_t *colon)
{
	size_t	 i = 0, j;

	while (i < n && s[i] > ' ' && s[i] < 127 && s[i] != ':')
		i++;
	if (i == 0)
		return 0;
	for (j = i; j < n && (s[j] == ' ' || s[j] == '\t'); j++)
		;
	if (j == n || s[j] != ':')
		return 0;
	*colon = j;
	return i;
}

static int
hbuf_reserve(struct walk *w, size_t need)
{
	size_t	 cap;
	char	*p;

	if (need <= w->hcap)
		return 0;
	cap = w->hcap < HBUF_MIN ? HBUF_MIN : w->hcap;
	while (cap < need)
		cap *= 2;
	if ((p = realloc(w->hbuf, cap)) == NULL)
		return -1;
	w->hbuf = p;
	w->hcap = cap;
	return 0;
}

/* ---- header blocks ---- */

static void
block_clear(struct walk *w)
{
	if (w->ct != NULL)
		g_object_unref(w->ct);
	if (w->cd != NULL)
		g_object_unref(w->cd);
	w->ct = NULL;
	w->cd = NULL;
	w->enc = GMIME_CONTENT_ENCODING_DEFAULT;
	w->nct = 0;
	w->pushed = 0;
}

/* A new entity: its header block follows. */
static int
entity_begin(struct walk *w, enum mime_hdr_kind kind, unsigned depth,
    int nested, int digest)
{
	if (depth > w->lim->max_depth)
		return limit(w, "depth");
	if (w->rep->parts >= w->lim->max_parts)
		return limit(w, "parts");
	w->rep->parts++;
	w->blk++;
	if (depth > w->rep->depth)
		w->rep->depth = depth;
	block_clear(w);
	w->kind = kind;
	w->depth = depth;
	w->nested = nested;
	w->digest_default = digest;
	return WALK_GO;
}

/*
 * Pushes boundary b (len bytes) for the multipart whose Content-Type is
 * w->ct, unless this header block pushed it already.  At most two per
 * nesting level on the stack (the raw and GMime's reading differ).
 */
static int
push_boundary(struct walk *w, const char *b, size_t len)
{
	struct bound	*nb;
	size_t		 cap, i;

	if (len == 0)
		return WALK_GO;
	for (i = w->nb - (size_t)w->pushed; i < w->nb; i++)
		if (w->bs[i].len == len && memcmp(w->bs[i].s, b, len) == 0)
			return WALK_GO;
	if (w->nb >= 2 * ((size_t)w->lim->max_depth + 1))
		return limit(w, "depth");
	if (w->nb == w->capb) {
		cap = w->capb == 0 ? 4 : w->capb * 2;
		if ((nb = realloc(w->bs, cap * sizeof(*nb))) == NULL)
			return mime_nomem(w);
		w->bs = nb;
		w->capb = cap;
	}
	nb = &w->bs[w->nb];
	if ((nb->s = malloc(len + 1)) == NULL)
		return mime_nomem(w);
	memcpy(nb->s, b, len);
	nb->s[len] = '\0';
	nb->len = len;
	nb->depth = w->depth;
	nb->nested = w->nested;
	nb->blk = w->blk;
	nb->digest = mime_eq(g_mime_content_type_get_media_subtype(w->ct),
	    "digest");
	w->nb++;
	w->pushed++;
	return WALK_GO;
}

/* Skips blanks and comments (nested, with quoted pairs). */
static char *
skip_cfws(char *p)
{
	int	 depth;

	for (;;) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p != '(')
			return p;
		for (depth = 0; *p != '\0'; p++) {
			if (*p == '\\' && p[1] != '\0')
				p++;
			else if (*p == '(')
				depth++;
			else if (*p == ')' && --depth == 0) {
				p++;
				break;
			}
		}
	}
}

/*
 * Pushes every boundary parameter of the Content-Type value v as written
 * (a token, or a quoted string without its quoting), as Postfix and
 * most mail readers read it: GMime also decodes RFC 2047 words and
 * RFC 2231 forms in it, and a boundary line may follow either reading.
 * v is changed (quoted strings are unquoted in place).
 */
static int
push_raw_boundaries(struct walk *w, char *v)
{
	char	*p = v, *attr, *val, *d;
	size_t	 alen;
	int	 r;

	for (;;) {
		while (*p != '\0' && *p != ';') {
			if (*p == '(') {
				p = skip_cfws(p);
				continue;
			}
			if (*p == '"')
				for (p++; *p != '\0' && *p != '"'; p++)
					if (*p == '\\' && p[1] != '\0')
						p++;
			if (*p != '\0')
				p++;
		}
		if (*p == '\0')
			return WALK_GO;
		attr = skip_cfws(p + 1);
		for (p = attr; *p != '\0' && *p != '=' && *p != ';' &&
		    *p != ' ' && *p != '\t' && *p != '('; p++)
			;
		alen = (size_t)(p - attr);
		p = skip_cfws(p);
		if (*p != '=' || !eq_ascii_n(attr, alen, "boundary"))
			continue;
		val = d = skip_cfws(p + 1);
		if (*val == '"') {
			for (p = val + 1; *p != '\0' && *p != '"'; p++) {
				if (*p == '\\' && p[1] != '\0')
					p++;
				*d++ = *p;
			}
			if (*p == '"')
				p++;
		} else {
			for (p = val; *p != '\0' && *p != ';' && *p != ' ' &&
			    *p != '\t' && *p != '(' && *p != '"'; p++)
				;
			d = p;
		}
		if ((r = push_boundary(w, val, (size_t)(d - val))) != WALK_GO)
			return r;
	}
}

static void
pop_to(struct walk *w, size_t n)
{
	while (w->nb > n)
		free(w->bs[--w->nb].s);
}

/* Removes the folding line ends of a field value, in place. */
static void
unfold(char *s)
{
	char	*d = s;

	for (; *s != '\0'; s++)
		if (*s != '\n')
			*d++ = *s;
	*d = '\0';
}


/* What the walk needs from one header field: value is writable. */
static int
field_use(struct walk *w, const char *name, size_t nlen, char *value)
{
	const char	*b;
	char		*raw;
	int		 r;

	unfold(value);
	if (eq_ascii_n(name, nlen, "content-type")) {
		if (++w->nct > 1)
			w->rep->malformed = 1;
		if (w->ct != NULL)
			g_object_unref(w->ct);
		if ((raw = strdup(value)) == NULL)
			return mime_nomem(w);
		mime_clamp_charsets(value);
		w->ct = g_mime_content_type_parse(NULL, value);
		r = WALK_GO;
		if (w->ct != NULL && mime_eq(
		    g_mime_content_type_get_media_type(w->ct), "multipart")) {
			r = push_raw_boundaries(w, raw);
			b = g_mime_content_type_get_parameter(w->ct,
			    "boundary");
			if (r == WALK_GO && b != NULL)
				r = push_boundary(w, b, strlen(b));
		}
		free(raw);
		return r;
	} else if (eq_ascii_n(name, nlen, "content-disposition")) {
		mime_clamp_charsets(value);
		if (w->cd != NULL)
			g_object_unref(w->cd);
		w->cd = g_mime_content_disposition_parse(NULL, value);
	} else if (eq_ascii_n(name, nlen, "content-transfer-encoding"))
		w->enc = g_mime_content_encoding_from_string(value);
	return WALK_GO;
}

/*
 * One header field starting with the line s (n bytes, name nlen bytes,
 * ':' at colon) and its folded lines, which w->p is moved past: given
 * as "Name:value" with "\n" between the lines.
 */
static int
field(struct walk *w, const unsigned char *s, size_t n, size_t nlen,
    size_t colon)
{
	size_t	 len, k;
	int	 r;

	len = nlen + (n - colon);
	if (len > w->lim->max_header)
		return limit(w, "header");
	if (hbuf_reserve(w, len + 1) != 0)
		return mime_nomem(w);
	memcpy(w->hbuf, s, nlen);
	memcpy(w->hbuf + nlen, s + colon, n - colon);
	while (w->p < w->end && (*w->p == ' ' || *w->p == '\t')) {
		s = next_line(w, &k);
		if (len + 1 + k > w->lim->max_header)
			return limit(w, "header");
		if (hbuf_reserve(w, len + 1 + k + 1) != 0)
			return mime_nomem(w);
		w->hbuf[len] = '\n';
		memcpy(w->hbuf + len + 1, s, k);
		len += 1 + k;
	}
	w->hbuf[len] = '\0';
	if (w->v->header != NULL) {
		r = w->v->header(w->arg, w->kind, w->depth, w->hbuf, len);
		if (r != 0)
			return mime_stop(w, r);
	}
	return field_use(w, w->hbuf, nlen, w->hbuf + nlen + 1);
}

static int
set_type(struct walk *w, const char *type, const char *sub)
{
	size_t	 a = strlen(type), b = strlen(sub), i;

	free(w->type);
	if ((w->type = malloc(a + b + 2)) == NULL)
		return -1;
	memcpy(w->type, type, a);
	w->type[a] = '/';
	memcpy(w->type + a + 1, sub, b + 1);
	for (i = 0; w->type[i] != '\0'; i++)
		w->type[i] = (char)mime_lower((unsigned char)w->type[i]);
	return 0;
}

static int
attachment(struct walk *w, const char *name)
{
	gchar	*valid = NULL;
	int	 r;

	if (!g_utf8_validate(name, -1, NULL))
		name = valid = g_utf8_make_valid(name, -1);
	r = w->v->attachment(w->arg, name, w->type, w->depth, w->nested);
	g_free(valid);
	return r != 0 ? mime_stop(w, r) : WALK_GO;
}

/*
 * The end of a header block: blank when it ended with an empty line,
 * eof when with the message.  *nest: an attached message follows.
 */
static int
block_end(struct walk *w, int blank, int eof, int *nest)
{
	const char	*type, *sub, *name = NULL, *disp = NULL;
	int		 multipart, message, r;

	*nest = 0;
	if (w->ct != NULL) {
		type = g_mime_content_type_get_media_type(w->ct);
		sub = g_mime_content_type_get_media_subtype(w->ct);
	} else if (w->digest_default) {
		type = "message";
		sub = "rfc822";
	} else {
		type = "text";
		sub = "plain";
	}
	if (set_type(w, type, sub) != 0)
		return mime_nomem(w);
	multipart = mime_eq(type, "multipart");
	if (multipart && w->pushed == 0)
		w->rep->malformed = 1;		/* no boundary */
	if (!multipart) {
		if (w->cd != NULL) {
			disp = g_mime_content_disposition_get_disposition(
			    w->cd);
			name = g_mime_content_disposition_get_parameter(w->cd,
			    "filename");
		}
		if (name == NULL && w->ct != NULL)
			name = g_mime_content_type_get_parameter(w->ct,
			    "name");
		if (name != NULL && w->v->attachment != NULL &&
		    (r = attachment(w, name)) != WALK_GO)
			return r;
	}
	message = !multipart && mime_eq(type, "message") &&
	    (mime_eq(sub, "rfc822") || mime_eq(sub, "global"));
	if (message && (w->enc == GMIME_CONTENT_ENCODING_BASE64 ||
	    w->enc == GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE ||
	    w->enc == GMIME_CONTENT_ENCODING_UUENCODE)) {
		w->rep->malformed = 1;		/* not a domain: a leaf */
		message = 0;
	}
	if (message)
		*nest = blank && !eof;
	else if (!multipart && !eof && w->v->text != NULL &&
	    mime_eq(type, "text") &&
	    (name == NULL || (disp != NULL && mime_eq(disp, "inline"))))
		mime_text_begin(w);
	block_clear(w);
	return WALK_GO;
}

/* ---- body lines ---- */

/* One body line: in pieces to the callback, and to the text. */
static int
body_line(struct walk *w, const unsigned char *s, size_t n)
{
	size_t	 k;
	int	 r;

	if (w->v->body_line == NULL && !w->text_on)
		return WALK_GO;
	do {
		k = n > MIME_LINE_MAX ? MIME_LINE_MAX : n;
		if (w->v->body_line != NULL &&
		    (r = w->v->body_line(w->arg, (const char *)s, k)) != 0)
			return mime_stop(w, r);
		if (w->text_on) {
			memcpy(w->line, s, k);
			if (n == k)		/* lines end in LF in text */
				w->line[k] = '\n';
			if (mime_text_feed(w, w->line, k + (n == k), 0) != 0)
				return mime_nomem(w);
		}
		s += k;
		n -= k;
	} while (n > 0);
	return WALK_GO;
}

/* The stack entry whose boundary line s is, or -1. */
static long
boundary_of(const struct walk *w, const unsigned char *s, size_t n)
{
	size_t	 i;

	if (n < 2 || s[0] != '-' || s[1] != '-')
		return -1;
	for (i = w->nb; i-- > 0;)
		if (n - 2 >= w->bs[i].len &&
		    memcmp(s + 2, w->bs[i].s, w->bs[i].len) == 0)
			return (long)i;
	return -1;
}

/* A line in body state; *head: a part header block follows. */
static int
body(struct walk *w, const unsigned char *s, size_t n, int *head)
{
	struct bound	 b;
	long		 i;
	size_t		 lo, hi, rest;
	int		 r;

	*head = 0;
	if ((i = boundary_of(w, s, n)) < 0)
		return body_line(w, s, n);
	if ((r = mime_leaf_end(w)) != WALK_GO)
		return r;
	/* [lo, hi]: the boundaries of this multipart */
	for (lo = (size_t)i; lo > 0 && w->bs[lo - 1].blk == w->bs[i].blk; lo--)
		;
	for (hi = (size_t)i; hi + 1 < w->nb &&
	    w->bs[hi + 1].blk == w->bs[i].blk; hi++)
		;
	if (hi + 1 < w->nb)
		w->rep->malformed = 1;	/* inner multiparts left open */
	pop_to(w, hi + 1);
	b = w->bs[i];
	if ((r = body_line(w, s, n)) != WALK_GO)
		return r;
	rest = n - 2 - b.len;
	if (rest >= 2 && s[2 + b.len] == '-' && s[3 + b.len] == '-') {
		pop_to(w, lo);
		return WALK_GO;
	}
	*head = 1;
	return entity_begin(w, MIME_HDR_PART, b.depth + 1, b.nested,
	    b.digest);
}

static int
walk(struct walk *w)
{
	const unsigned char	*s;
	size_t			 n, nlen, colon = 0;
	int			 head = 1, nest, text_on, r;

	if ((r = entity_begin(w, MIME_HDR_TOP, 0, 0, 0)) != WALK_GO)
		return r;
	while (w->p < w->end) {
		s = next_line(w, &n);
		if (!head) {
			if ((r = body(w, s, n, &head)) != WALK_GO)
				return r;
			continue;
		}
		if ((nlen = header_name(s, n, &colon)) > 0) {
			if ((r = field(w, s, n, nlen, colon)) != WALK_GO)
				return r;
			continue;
		}
		/* the line that ends the header block */
		head = 0;
		if (n > 0)
			w->rep->malformed = 1;
		if ((r = block_end(w, n == 0, 0, &nest)) != WALK_GO)
			return r;
		if (n > 0) {
			if ((r = body(w, s, n, &head)) != WALK_GO)
				return r;
			continue;
		}
		/* the separator is no content */
		text_on = w->text_on;
		w->text_on = 0;
		r = body_line(w, s, n);
		w->text_on = text_on;
		if (r != WALK_GO)
			return r;
		if (nest) {
			head = 1;
			r = entity_begin(w, MIME_HDR_NESTED, w->depth + 1, 1,
			    0);
			if (r != WALK_GO)
				return r;
		}
	}
	if (head && (r = block_end(w, 0, 1, &nest)) != WALK_GO)
		return r;
	if ((r = mime_leaf_end(w)) != WALK_GO)
		return r;
	if (w->nb > 0)
		w->rep->malformed = 1;	/* a closing boundary is missing */
	return WALK_GO;
}

int
mime_walk(const unsigned char *msg, size_t len,
    const struct mime_limits *lim, const struct mime_visitor *v, void *arg,
    struct mime_report *rep, struct err *e)
{
	static const struct mime_visitor	 none;
	struct mime_limits			 def;
	struct mime_report			 local;
	struct walk				*w;
	int					 ret;

	if (rep == NULL)
		rep = &local;
	memset(rep, 0, sizeof(*rep));
	if (msg == NULL && len > 0) {
		err_set(e, "mime: no message");
		return -1;
	}
	if (msg == NULL)
		msg = (const unsigned char *)"";
	if (lim == NULL) {
		mime_limits_default(&def);
		lim = &def;
	}
	mime_init();
	/* on the heap: the line buffer is large for a milter thread */
	if ((w = calloc(1, sizeof(*w))) == NULL) {
		err_set(e, "mime: out of memory");
		return -1;
	}
	w->p = msg;
	w->end = msg + len;
	w->lim = lim;
	w->v = v != NULL ? v : &none;
	w->arg = arg;
	w->rep = rep;
	w->e = e;
	w->enc = GMIME_CONTENT_ENCODING_DEFAULT;
	ret = walk(w) == WALK_GO ? 0 : w->ret;

	mime_text_reset(w);
	block_clear(w);
	pop_to(w, 0);
	free(w->bs);
	free(w->hbuf);
	free(w->tbuf);
	free(w->type);
	free(w);
	return ret;
}

const char *
mime_blocked_ext(const char *filename, char *const *exts, size_t nexts)
{
	const char	*base, *p, *end, *dot = NULL, *x;
	size_t		 i, n;

	if (filename == NULL || exts == NULL)
		return NULL;
	for (base = p = filename; *p != '\0'; p++)
		if (*p == '/' || *p == '\\')
			base = p + 1;
	/* Windows drops trailing dots and spaces; other blanks too */
	for (end = p; end > base && (end[-1] == '.' || end[-1] == ' ' ||
	    (end[-1] >= '\t' && end[-1] <= '\r')); end--)
		;
	for (p = base; p < end; p++)
		if (*p == '.')
			dot = p;
	if (dot == NULL)
		return NULL;
	n = (size_t)(end - dot - 1);
	for (i = 0; i < nexts; i++) {
		if ((x = exts[i]) == NULL)
			continue;
		if (*x == '.')
			x++;
		if (eq_ascii_n(dot + 1, n, x))
			return exts[i];
	}
	return NULL;
}
