/*
 * addr.h - envelope address and host name syntax (RFC 5321).
 *
 * Parses what Postfix hands a milter ("<user@example.org>", "<>") into a
 * normalised form.  Untrusted input: every length is bounded and every
 * malformed input gives ADDR_BAD with a reason, never a crash.  Results are
 * allocated from the caller's arena.  Thread-safe.
 */
#ifndef PORTERO_ADDR_H
#define PORTERO_ADDR_H

#include "arena.h"

enum addr_status {
	ADDR_OK,
	ADDR_NULL,		/* "<>": the null sender */
	ADDR_BAD,		/* syntax error; why says what */
	ADDR_NOMEM
};

struct mailaddr {
	const char	*local;		/* as given (case kept) */
	const char	*domain;	/* lower-cased; "" if none */
	const char	*addr;		/* local@domain, domain lower-cased */
};

enum addr_status addr_parse(struct arena *, const char *,
		    struct mailaddr *, const char **why);
/* 1 if s is a syntactically valid DNS host name (LDH labels). */
int		 hostname_valid(const char *);
/* 1 if the host name has at least two labels. */
int		 hostname_is_fqdn(const char *);
/* 1 if s is an address literal "[192.0.2.1]" or "[IPv6:...]". */
int		 addr_is_literal(const char *);

#endif
