/*
 * mime_charset.c - charsets in the MIME walk (see mime.c, mime.h): the
 * text of a text/ leaf (transfer decoding with GMimeFilterBasic,
 * conversion to UTF-8 with GMimeFilterCharset, cut at max_text bytes at a
 * character boundary, what is not valid UTF-8 then made U+FFFD) and the
 * charset names from mail that GMime may see.
 *
 * GMime keeps every charset name it is asked to convert from for the life
 * of the process; names from mail are therefore checked first (see
 * charset_name()), or a stream of messages with made-up charsets would
 * grow the process without bound.  That goes for the charset parameter of
 * a text part and for the charsets of RFC 2231 parameter values and
 * RFC 2047 words in Content-Type and Content-Disposition fields
 * (mime_clamp_charsets()).
 *
 * Thread-safe: the text functions use only the walk they are given; the
 * charsets iconv accepted are a short process-wide list under a mutex.
 */
#include <iconv.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "mime_int.h"

#define CHARSET_MAX	40	/* bytes of a charset name we use */
#define TBUF_MIN	4096

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
int
mime_text_feed(struct walk *w, char *s, size_t n, int last)
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

void
mime_text_reset(struct walk *w)
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
		c = (char)mime_lower((unsigned char)cs[i]);
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
	return mime_eq(cs, "utf-8") || mime_eq(cs, "utf8") ||
	    mime_eq(cs, "us-ascii") || mime_eq(cs, "ascii");
}

void
mime_text_begin(struct walk *w)
{
	const char	*cs;
	char		 buf[CHARSET_MAX + 1];

	mime_text_reset(w);
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
int
mime_leaf_end(struct walk *w)
{
	int	 r;

	if (!w->text_on)
		return WALK_GO;
	if (mime_text_feed(w, w->line, 0, 1) != 0 || text_valid(w) != 0 ||
	    tbuf_reserve(w, w->tlen + 1) != 0)
		return mime_nomem(w);
	w->tbuf[w->tlen] = '\0';
	r = w->v->text(w->arg, w->type, w->tbuf, w->tlen);
	mime_text_reset(w);
	return r != 0 ? mime_stop(w, r) : WALK_GO;
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
void
mime_clamp_charsets(char *v)
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
