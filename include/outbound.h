/*
 * outbound.h - the header-cleanup matching of check_outbound.c, exposed
 * for portero's DKIM signer and for tests and fuzzing.
 */
#ifndef PORTERO_OUTBOUND_H
#define PORTERO_OUTBOUND_H

#include <stddef.h>

#include "err.h"

/* Compiles outbound.strip_headers entries (header names, or "/ERE/");
 * NULL with e set on a bad entry. */
void	*outbound_compile(char *const *entries, size_t n, struct err *);
void	 outbound_free(void *);
/* 1 if a header of this name is stripped. */
int	 outbound_strip_match(const void *conf, const char *name);

#endif
