/*
 * buf.c - bounded growable buffer (see buf.h).  Not thread-safe.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

void
buf_init(struct buf *b, size_t max)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->max = max;
}

void
buf_free(struct buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}

void
buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->data != NULL)
		b->data[0] = '\0';
}

/* Makes room for len more bytes plus the terminating NUL. */
static enum rc
buf_grow(struct buf *b, size_t len)
{
	size_t	 need, ncap;
	char	*p;

	if (len > b->max || b->len > b->max - len)
		return RC_INVAL;
	need = b->len + len + 1;
	if (need <= b->cap)
		return RC_OK;
	ncap = b->cap < 64 ? 64 : b->cap;
	while (ncap < need)
		ncap = ncap > ((size_t)-1) / 2 ? need : ncap * 2;
	if (ncap > b->max + 1)
		ncap = b->max + 1;
	p = realloc(b->data, ncap);
	if (p == NULL)
		return RC_NOMEM;
	b->data = p;
	b->cap = ncap;
	return RC_OK;
}

enum rc
buf_append(struct buf *b, const void *p, size_t len)
{
	enum rc	 rc;

	rc = buf_grow(b, len);
	if (rc != RC_OK)
		return rc;
	if (len > 0)
		memcpy(b->data + b->len, p, len);
	b->len += len;
	b->data[b->len] = '\0';
	return RC_OK;
}

enum rc
buf_puts(struct buf *b, const char *s)
{
	return buf_append(b, s, strlen(s));
}

enum rc
buf_putc(struct buf *b, char c)
{
	return buf_append(b, &c, 1);
}

/*
 * Formats into the room already there (cap is at most max + 1, so what
 * fits is within the limit): one pass for most texts; a second one
 * after growing.  A failure leaves the text as it was.
 */
enum rc
buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
	va_list	 ap2;
	size_t	 room = b->cap > b->len ? b->cap - b->len : 0;
	int	 n;
	enum rc	 rc;

	va_copy(ap2, ap);
	n = vsnprintf(room > 0 ? b->data + b->len : NULL, room, fmt, ap2);
	va_end(ap2);
	if (n >= 0 && (size_t)n < room) {
		b->len += (size_t)n;
		return RC_OK;
	}
	if (room > 0)
		b->data[b->len] = '\0';	/* undo a cut text */
	if (n < 0)
		return RC_INVAL;
	rc = buf_grow(b, (size_t)n);
	if (rc != RC_OK)
		return rc;
	(void)vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	return RC_OK;
}

enum rc
buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list	 ap;
	enum rc	 rc;

	va_start(ap, fmt);
	rc = buf_vprintf(b, fmt, ap);
	va_end(ap);
	return rc;
}

const char *
buf_str(const struct buf *b)
{
	return b->data != NULL ? b->data : "";
}

void
buf_mark_cut(struct buf *b, const char *mark)
{
	size_t	 ml = strlen(mark);

	if (ml > b->max)
		return;
	if (b->len > b->max - ml)
		b->len = b->max - ml;
	if (buf_append(b, mark, ml) != RC_OK && b->data != NULL)
		b->data[b->len] = '\0';
}
