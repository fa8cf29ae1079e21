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

enum rc
testmsg_parse(struct arena *ar, const char *data, size_t len,
    struct testmsg *out)
{
	struct testmsg_hdr	**tail = &out->hdrs, *h = NULL;
	size_t			 off = 0, eol, n, i, blen;
	unsigned char		*body;

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
			/* continuation: unfold, keeping the whitespace */
			char *v = arena_printf(ar, "%s\r\n%.*s", h->value,
			    (int)n, p);

			if (v == NULL)
				return RC_NOMEM;
			h->value = v;
			off += n + eol;
			continue;
		}
		colon = memchr(p, ':', n);
		if (colon == NULL || !is_field_name(p, (size_t)(colon - p)))
			break;		/* not a header: body starts here */
		h = arena_calloc(ar, 1, sizeof(*h));
		if (h == NULL)
			return RC_NOMEM;
		h->name = arena_strndup(ar, p, (size_t)(colon - p));
		colon++;
		while (colon < p + n && (*colon == ' ' || *colon == '\t'))
			colon++;
		h->value = arena_strndup(ar, colon, (size_t)(p + n - colon));
		if (h->name == NULL || h->value == NULL)
			return RC_NOMEM;
		*tail = h;
		tail = &h->next;
		out->nhdrs++;
		off += n + eol;
	}
	/* body with every line ending as CRLF: at most twice as long */
	if (len - off > ((size_t)-1) / 2 - 1)
		return RC_NOMEM;
	body = arena_alloc(ar, (len - off) * 2 + 1);
	if (body == NULL)
		return RC_NOMEM;
	blen = 0;
	for (i = off; i < len; i++) {
		if (data[i] == '\n' && (i == off || data[i - 1] != '\r'))
			body[blen++] = '\r';
		body[blen++] = (unsigned char)data[i];
	}
	out->body = body;
	out->body_len = blen;
	return RC_OK;
}
