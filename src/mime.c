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
 * GMime keeps every charset name it is asked to convert from for the life
 * of the process; names from mail are therefore checked first (see
 * charset_name()), or a stream of messages with made-up charsets would
 * grow the process without bound.
 *
 * Every string given to a callback is NUL-terminated (and may hold NULs
 * before its length) and valid only during the callback.  Memory: the
 * boundary stack (at most 2 * (max_depth + 1) entries), one header field
 * (at most max_header bytes, and a copy), one body line piece and one
 * text (at most max_text bytes).
 *
 * Thread-safe: a walk uses only its own state and GMime objects, and
 * the charsets iconv accepted (a short list under a mutex); mime_init()
 * runs g_mime_init() once per process.
 */
#include <iconv.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <gmime/gmime.h>

#include "mime.h"

#define MIME_LINE_MAX	2048	/* Postfix's line_length_limit */
#define HBUF_MIN	256
#define CHARSET_MAX	40	/* bytes of a charset name we use */
#define TBUF_MIN	4096

#define WALK_GO		0
#define WALK_STOP	1	/* the value to return is in w->ret */

struct bound {
	char		*s;		/* the boundary, without "--" */
	size_t		 len;
	unsigned	 depth;		/* of its multipart */
	int		 nested;	/* inside an attached message */
	int		 digest;	/* multipart/digest: parts default to
					 * message/rfc822 */
	unsigned	 blk;		/* header block that pushed it */
};

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

static int
stop(struct walk *w, int ret)
{
	w->ret = ret;
	return WALK_STOP;
}

static int
nomem(struct walk *w)
{
	err_set(w->e, "mime: out of memory");
	return stop(w, -1);
}

static int
limit(struct walk *w, const char *what)
{
	w->rep->limit = what;
	return stop(w, 0);
}

static int
lower_ascii(int c)
{
	return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

static int
eq_ascii(const char *a, const char *b)
{
	for (; *a != '\0' && *b != '\0'; a++, b++)
		if (lower_ascii((unsigned char)*a) !=
		    lower_ascii((unsigned char)*b))
			return 0;
	return *a == *b;
}

static int
eq_ascii_n(const char *a, size_t n, const char *b)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		if (b[i] == '\0' || lower_ascii((unsigned char)a[i]) !=
		    lower_ascii((unsigned char)b[i]))
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

/* ---- text of a leaf ---- */

static int
tbuf_reserve(struct walk *w, size_t need)
{
	size_t	 cap;
	char	*p;

	if (need <= w->tcap)
		return 0;
	cap = w->tcap < TBUF_MIN ? TBUF_MIN : w->tcap;
	while (cap < need)
		cap *= 2;
	if (cap > w->lim->max_text + 1)
		cap = w->lim->max_text + 1;
	if (cap < need)
		cap = need;
	if ((p = realloc(w->tbuf, cap)) == NULL)
		return -1;
	w->tbuf = p;
	w->tcap = cap;
	return 0;
}

static int
text_add(struct walk *w, const char *s, size_t n)
{
	size_t	 room;
	int	 cut = 0;

	if (w->text_full || n == 0)
		return 0;
	room = w->lim->max_text - w->tlen;
	if (n > room) {
		cut = ((unsigned char)s[room] & 0xc0) == 0x80;
		n = room;
		w->text_full = 1;
	}
	if (tbuf_reserve(w, w->tlen + n + 1) != 0)
		return -1;
	memcpy(w->tbuf + w->tlen, s, n);
	w->tlen += n;
	if (cut) {
		/* the cut is inside a UTF-8 sequence: drop its start */
		while (w->tlen > 0 &&
		    ((unsigned char)w->tbuf[w->tlen - 1] & 0xc0) == 0x80)
			w->tlen--;
		if (w->tlen > 0 && (unsigned char)w->tbuf[w->tlen - 1] >= 0xc0)
			w->tlen--;
	}
	return 0;
}

/* Decodes and converts s (a private, writable buffer) into the text. */
static int
text_feed(struct walk *w, char *s, size_t n, int last)
{
	char	*out = s;
	size_t	 outlen = n, pre;

	if (w->text_full)
		return 0;
	if (w->dec != NULL) {
		if (last)
			g_mime_filter_complete(w->dec, out, outlen, 0, &out,
			    &outlen, &pre);
		else
			g_mime_filter_filter(w->dec, out, outlen, 0, &out,
			    &outlen, &pre);
	}
	if (w->conv != NULL) {
		if (last)
			g_mime_filter_complete(w->conv, out, outlen, 0, &out,
			    &outlen, &pre);
		else
			g_mime_filter_filter(w->conv, out, outlen, 0, &out,
			    &outlen, &pre);
	}
	return text_add(w, out, outlen);
}

static void
text_reset(struct walk *w)
{
	if (w->dec != NULL)
		g_object_unref(w->dec);
	if (w->conv != NULL)
		g_object_unref(w->conv);
	w->dec = NULL;
	w->conv = NULL;
	w->text_on = 0;
	w->text_full = 0;
	w->tlen = 0;
}

/* Names iconv lacks; GMime knows some of them. */
static const struct {
	const char	*mail, *iconv;
} charset_alias[] = {
	{ "ks_c_5601-1987", "cp949" },
	{ "gb-2312", "gbk" },
	{ "x-gbk", "gbk" },
	{ "x-sjis", "shift_jis" },
	{ "x-euc-jp", "euc-jp" },
	{ "x-mac-roman", "macintosh" },
	{ "unicode-1-1-utf-7", "utf-7" },
};

/*
 * Charsets iconv opened, each kept open for the life of the process so
 * that its converter module stays loaded (closing the last descriptor of
 * a glibc gconv module unloads it: dlclose on every check, and a race
 * with a dlopen elsewhere as TSan sees it).
 */
#define CHARSET_KEEP	64
static pthread_mutex_t	 charset_lock = PTHREAD_MUTEX_INITIALIZER;
static char		 charset_kept[CHARSET_KEEP][CHARSET_MAX + 1];
/* never read: volatile keeps the stores, and the descriptors reachable */
static iconv_t volatile	 charset_cd[CHARSET_KEEP];
static size_t		 charset_nkept;

/*
 * The name to hand GMime for the charset cs (n bytes) from mail, in buf
 * (CHARSET_MAX + 1 bytes) or static, or NULL when unusable.  GMime keeps
 * every charset name it is given (g_mime_charset_iconv_name's cache)
 * for the life of the process, so only a bounded set of names may reach
 * it: letters, digits and "._:-" only (iconv ignores other bytes, which
 * would make endless spellings of one name), that iconv opens as
 * written (lowercased), or one of the aliases above.
 */
static const char *
charset_name(const char *cs, size_t n, char *buf)
{
	const char	*ret = NULL;
	iconv_t		 cd;
	size_t		 i;
	char		 c;

	if (n == 0 || n > CHARSET_MAX)
		return NULL;
	for (i = 0; i < n; i++) {
		c = (char)lower_ascii((unsigned char)cs[i]);
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '.' || c == '_' || c == ':' || c == '-'))
			return NULL;
		buf[i] = c;
	}
	buf[n] = '\0';
	for (i = 0; i < sizeof(charset_alias) / sizeof(charset_alias[0]); i++)
		if (strcmp(buf, charset_alias[i].mail) == 0)
			return charset_alias[i].iconv;
	(void)pthread_mutex_lock(&charset_lock);
	for (i = 0; i < charset_nkept; i++)
		if (strcmp(buf, charset_kept[i]) == 0)
			break;
	if (i < charset_nkept)
		ret = buf;
	else if ((cd = iconv_open("UTF-8", buf)) != (iconv_t)-1) {
		ret = buf;
		if (charset_nkept < CHARSET_KEEP) {
			memcpy(charset_kept[charset_nkept], buf, n + 1);
			charset_cd[charset_nkept++] = cd;
		} else
			(void)iconv_close(cd);
	}
	(void)pthread_mutex_unlock(&charset_lock);
	return ret;
}

static int
is_utf8_name(const char *cs)
{
	return eq_ascii(cs, "utf-8") || eq_ascii(cs, "utf8") ||
	    eq_ascii(cs, "us-ascii") || eq_ascii(cs, "ascii");
}

static void
text_begin(struct walk *w)
{
	const char	*cs;
	char		 buf[CHARSET_MAX + 1];

	text_reset(w);
	w->text_on = 1;
	switch (w->enc) {
	case GMIME_CONTENT_ENCODING_BASE64:
	case GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE:
	case GMIME_CONTENT_ENCODING_UUENCODE:
		w->dec = g_mime_filter_basic_new(w->enc, FALSE);
		break;
	case GMIME_CONTENT_ENCODING_DEFAULT:
	case GMIME_CONTENT_ENCODING_7BIT:
	case GMIME_CONTENT_ENCODING_8BIT:
	case GMIME_CONTENT_ENCODING_BINARY:
		break;
	}
	cs = w->ct != NULL ?
	    g_mime_content_type_get_parameter(w->ct, "charset") : NULL;
	if (cs == NULL || is_utf8_name(cs))
		return;
	/* unusable: the bytes are kept, then made valid UTF-8 */
	if ((cs = charset_name(cs, strlen(cs), buf)) != NULL)
		w->conv = g_mime_filter_charset_new(cs, "UTF-8");
}

/* Replaces what is not UTF-8 (NULs too) with U+FFFD, within max_text. */
static int
text_valid(struct walk *w)
{
	gchar	*valid;
	size_t	 n;

	if (g_utf8_validate(w->tbuf, (gssize)w->tlen, NULL))
		return 0;
	valid = g_utf8_make_valid(w->tbuf, (gssize)w->tlen);
	n = strlen(valid);
	if (n > w->lim->max_text) {
		n = w->lim->max_text;
		while (n > 0 && ((unsigned char)valid[n] & 0xc0) == 0x80)
			n--;
	}
	if (tbuf_reserve(w, n + 1) != 0) {
		g_free(valid);
		return -1;
	}
	memcpy(w->tbuf, valid, n);
	w->tlen = n;
	g_free(valid);
	return 0;
}

/* The end of a leaf: its text to the callback. */
static int
leaf_end(struct walk *w)
{
	int	 r;

	if (!w->text_on)
		return WALK_GO;
	if (text_feed(w, w->line, 0, 1) != 0 || text_valid(w) != 0 ||
	    tbuf_reserve(w, w->tlen + 1) != 0)
		return nomem(w);
	w->tbuf[w->tlen] = '\0';
	r = w->v->text(w->arg, w->type, w->tbuf, w->tlen);
	text_reset(w);
	return r != 0 ? stop(w, r) : WALK_GO;
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
			return nomem(w);
		w->bs = nb;
		w->capb = cap;
	}
	nb = &w->bs[w->nb];
	if ((nb->s = malloc(len + 1)) == NULL)
		return nomem(w);
	memcpy(nb->s, b, len);
	nb->s[len] = '\0';
	nb->len = len;
	nb->depth = w->depth;
	nb->nested = w->nested;
	nb->blk = w->blk;
	nb->digest = eq_ascii(g_mime_content_type_get_media_subtype(w->ct),
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

/*
 * In the field value v, in place: the charset of an RFC 2231 parameter
 * value ("name*=CS'lang'..." and "name*0*=CS'lang'...") that
 * charset_name() refuses is dropped, and that of an RFC 2047 word
 * ("=?CS?Q?...?=", "=?CS*lang?...") replaced by "x", so that GMime only
 * ever sees usable names, "x" and none.  GMime treats all of these as
 * unknown charsets, as before: the bytes of RFC 2231 values are kept,
 * RFC 2047 words are taken as UTF-8 when valid, else as Latin-1.
 */
static void
clamp_charsets(char *v)
{
	char	*p, *q, *cs, buf[CHARSET_MAX + 1];
	size_t	 n;

	for (p = strchr(v, '*'); p != NULL; p = strchr(p + 1, '*')) {
		/* "*0*=": only the first segment has a charset */
		if (p > v && p[-1] >= '0' && p[-1] <= '9' &&
		    (p - v < 3 || p[-1] != '0' || p[-2] != '*'))
			continue;
		for (q = p + 1; *q == ' ' || *q == '\t'; q++)
			;
		if (*q != '=')
			continue;
		for (q++; *q == ' ' || *q == '\t'; q++)
			;
		if (*q == '"')
			q++;
		cs = q;
		n = strcspn(cs, "'\";");
		if (cs[n] != '\'' || n == 0 || charset_name(cs, n, buf) != NULL)
			continue;
		memmove(cs, cs + n, strlen(cs + n) + 1);
		p = cs - 1;
	}
	for (p = strstr(v, "=?"); p != NULL; p = strstr(p + 1, "=?")) {
		cs = p + 2;
		n = strcspn(cs, "?*");
		if (cs[n] == '\0' || n == 0 || charset_name(cs, n, buf) != NULL)
			continue;
		cs[0] = 'x';
		memmove(cs + 1, cs + n, strlen(cs + n) + 1);
	}
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
			return nomem(w);
		clamp_charsets(value);
		w->ct = g_mime_content_type_parse(NULL, value);
		r = WALK_GO;
		if (w->ct != NULL && eq_ascii(
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
		clamp_charsets(value);
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
		return nomem(w);
	memcpy(w->hbuf, s, nlen);
	memcpy(w->hbuf + nlen, s + colon, n - colon);
	while (w->p < w->end && (*w->p == ' ' || *w->p == '\t')) {
		s = next_line(w, &k);
		if (len + 1 + k > w->lim->max_header)
			return limit(w, "header");
		if (hbuf_reserve(w, len + 1 + k + 1) != 0)
			return nomem(w);
		w->hbuf[len] = '\n';
		memcpy(w->hbuf + len + 1, s, k);
		len += 1 + k;
	}
	w->hbuf[len] = '\0';
	if (w->v->header != NULL) {
		r = w->v->header(w->arg, w->kind, w->depth, w->hbuf, len);
		if (r != 0)
			return stop(w, r);
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
		w->type[i] = (char)lower_ascii((unsigned char)w->type[i]);
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
	return r != 0 ? stop(w, r) : WALK_GO;
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
		return nomem(w);
	multipart = eq_ascii(type, "multipart");
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
	message = !multipart && eq_ascii(type, "message") &&
	    (eq_ascii(sub, "rfc822") || eq_ascii(sub, "global"));
	if (message && (w->enc == GMIME_CONTENT_ENCODING_BASE64 ||
	    w->enc == GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE ||
	    w->enc == GMIME_CONTENT_ENCODING_UUENCODE)) {
		w->rep->malformed = 1;		/* not a domain: a leaf */
		message = 0;
	}
	if (message)
		*nest = blank && !eof;
	else if (!multipart && !eof && w->v->text != NULL &&
	    eq_ascii(type, "text") &&
	    (name == NULL || (disp != NULL && eq_ascii(disp, "inline"))))
		text_begin(w);
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
		memcpy(w->line, s, k);
		w->line[k] = '\0';
		if (w->v->body_line != NULL &&
		    (r = w->v->body_line(w->arg, w->line, k)) != 0)
			return stop(w, r);
		s += k;
		n -= k;
		if (!w->text_on)
			continue;
		if (n == 0)
			w->line[k++] = '\n';	/* lines end in LF in text */
		if (text_feed(w, w->line, k, 0) != 0)
			return nomem(w);
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
	if ((r = leaf_end(w)) != WALK_GO)
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
	if ((r = leaf_end(w)) != WALK_GO)
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

	text_reset(w);
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
