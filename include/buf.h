/*
 * buf.h - growable byte buffer with a mandatory maximum.
 *
 * A buf never grows beyond its max: an append that would exceed it fails
 * with RC_INVAL and leaves the content unchanged, so callers always know
 * when data was not stored.  The content is kept NUL-terminated.
 * Not thread-safe; a buf belongs to one owner.
 */
#ifndef PORTERO_BUF_H
#define PORTERO_BUF_H

#include <stdarg.h>
#include <stddef.h>

#include "err.h"

struct buf {
	char	*data;
	size_t	 len;
	size_t	 cap;
	size_t	 max;
};

void	buf_init(struct buf *, size_t max);
void	buf_free(struct buf *);
void	buf_reset(struct buf *);
enum rc	buf_append(struct buf *, const void *, size_t);
enum rc	buf_puts(struct buf *, const char *);
enum rc	buf_putc(struct buf *, char);
enum rc	buf_printf(struct buf *, const char *, ...)
	    __attribute__((format(printf, 2, 3)));
enum rc	buf_vprintf(struct buf *, const char *, va_list)
	    __attribute__((format(printf, 2, 0)));
/* Ends the content with mark, dropping bytes at the end if it is full:
 * for text cut at the maximum that must say so. */
void	buf_mark_cut(struct buf *, const char *mark);
/* Content as a C string ("" for an empty buffer); valid until next change. */
const char *buf_str(const struct buf *);

#endif
