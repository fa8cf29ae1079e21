/*
 * arena.h - region allocator for per-connection and per-message data.
 *
 * Everything allocated from an arena is freed at once by arena_free().
 * An arena has a byte limit so that a hostile SMTP client cannot make one
 * transaction consume unbounded memory; hitting it returns NULL like any
 * allocation failure.  Not thread-safe: an arena belongs to one context.
 */
#ifndef PORTERO_ARENA_H
#define PORTERO_ARENA_H

#include <stddef.h>

struct arena;

struct arena	*arena_new(size_t limit);
void		 arena_free(struct arena *);
void		*arena_alloc(struct arena *, size_t);
void		*arena_calloc(struct arena *, size_t, size_t);
char		*arena_strdup(struct arena *, const char *);
char		*arena_strndup(struct arena *, const char *, size_t);
char		*arena_printf(struct arena *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));
size_t		 arena_used(const struct arena *);

#endif
