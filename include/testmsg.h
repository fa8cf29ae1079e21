/*
 * testmsg.h - splits an RFC 5322 message (as a file on disk) into the
 * header fields and CRLF body that Postfix would hand a milter, for
 * `portero-ctl test` and the fuzzers.  Untrusted input: bounded, never
 * fails on malformed text (a line without a colon in the header ends the
 * header, as in Postfix).  Allocates from the caller's arena.
 */
#ifndef PORTERO_TESTMSG_H
#define PORTERO_TESTMSG_H

#include <stddef.h>

#include "arena.h"
#include "err.h"

struct testmsg_hdr {
	struct testmsg_hdr	*next;
	const char		*name;
	const char		*value;	/* unfolded, leading blanks removed */
};

struct testmsg {
	struct testmsg_hdr	*hdrs;
	size_t			 nhdrs;
	const unsigned char	*body;	/* CRLF line ends */
	size_t			 body_len;
};

enum rc	testmsg_parse(struct arena *, const char *, size_t,
	    struct testmsg *);

#endif
