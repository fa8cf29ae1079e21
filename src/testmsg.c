/*
 * testmsg.c - message splitting for portero-ctl test (see testmsg.h).
 * Thread-safe; allocations come from the caller's arena.
 */
#include <string.h>

#include "testmsg.h"

/* Length of the line at p (without its LF or CRLF) and of its ending. */
static size_t
line_len(const char *p, size_t left, size_t *eol)
{
	const char	*nl = memchr(p, '\n', left);
	size_t		 n;

	if (nl == NULL) {
		*eol = 0;
		return left;
	}
	n = (size_t)(nl - p);
	*eol = 1;
	if (n > 0 && p[n - 1] == '\r') {
		n--;
		*eol = 2;
	}
	return n;
}

static int
is_field_name(const char *p, size_t n)
{
	size_t	 i;

	if (n == 0)
		return 0;
	for (i = 0; i < n; i++)
		if ((unsigned char)p[i] <= 0x20 || (unsigned char)p[i] >= 0x7f)
			return 0;
	return 1;
}

/* Copy of data[from, to) with every line end as CRLF, NUL-terminated;
 * its length (it may hold NUL bytes) in *olen. */
static char *
crlf_copy(struct arena *ar, const char *data, size_t from, size_t to,
    size_t *olen)
{
	size_t	 i, o = 0;
	char	*out;

	if (to - from > ((size_t)-1) / 2 - 1)
		return NULL;
	out = arena_alloc(ar, (to - from) * 2 + 1);
	if (out == NULL)
		return NULL;
	for (i = from; i < to; i++) {
		if (data[i] == '\n' && (i == from || data[i - 1] != '\r'))
			out[o++] = '\r';
		out[o++] = data[i];
	}
	out[o] = '\0';
	*olen = o;
	return out;
}

/* Ends the header field being collected: its value is the span from
 * after the colon to the end of its last continuation line. */
static enum rc
close_field(struct arena *ar, const char *data, struct testmsg_hdr *h,
    size_t vstart, size_t vend)
{
	size_t	 n;

	if (h == NULL)
		return RC_OK;
	h->value = crlf_copy(ar, data, vstart, vend, &n);
	return h->value != NULL ? RC_OK : RC_NOMEM;
}

enum rc
testmsg_parse(struct arena *ar, const char *data, size_t len,
    struct testmsg *out)
{
	struct testmsg_hdr	**tail = &out->hdrs, *h = NULL;
	size_t			 off = 0, eol, n, vstart = 0, vend = 0;
	char			*body;

	memset(out, 0, sizeof(*out));
	while (off < len) {
		const char	*p = data + off;
		const char	*colon;

		n = line_len(p, len - off, &eol);
		if (n == 0) {
			off += eol;	/* the empty line ends the header */
			break;
		}
		if ((p[0] == ' ' || p[0] == '\t') && h != NULL) {
			/* continuation: the value runs on, folding kept */
			vend = off + n;
			off += n + eol;
			continue;
		}
		colon = memchr(p, ':', n);
		if (colon == NULL || !is_field_name(p, (size_t)(colon - p)))
			break;		/* not a header: body starts here */
		if (close_field(ar, data, h, vstart, vend) != RC_OK)
			return RC_NOMEM;
		h = arena_calloc(ar, 1, sizeof(*h));
		if (h == NULL)
			return RC_NOMEM;
		h->name = arena_strndup(ar, p, (size_t)(colon - p));
		if (h->name == NULL)
			return RC_NOMEM;
		colon++;
		while (colon < p + n && (*colon == ' ' || *colon == '\t'))
			colon++;
		vstart = (size_t)(colon - data);
		vend = off + n;
		*tail = h;
		tail = &h->next;
		out->nhdrs++;
		off += n + eol;
	}
	if (close_field(ar, data, h, vstart, vend) != RC_OK)
		return RC_NOMEM;
	/* the body with every line ending as CRLF */
	body = crlf_copy(ar, data, off, len, &out->body_len);
	if (body == NULL)
		return RC_NOMEM;
	out->body = (const unsigned char *)body;
	return RC_OK;
}
