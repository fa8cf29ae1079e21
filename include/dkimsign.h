/*
 * dkimsign.h - DKIM signatures (RFC 6376; ed25519-sha256, RFC 8463) made
 * with OpenSSL, for check_dkim.c.
 *
 * A signer is fed the header fields as they will be queued and the body
 * as it arrives (the body is canonicalised and hashed on the fly, never
 * kept); dksign_finish() makes the DKIM-Signature field value.  Signed
 * fields: those of RFC 6376 section 5.4.1 that the message has (every
 * instance), plus one more of each oversigned name.  No l= tag.
 *
 * Keys are parsed once (dksign_key) and shared by every thread (read-only
 * but for a locked pool of signing contexts set up for the key); a signer
 * belongs to one message (one thread at a time).
 */
#ifndef PORTERO_DKIMSIGN_H
#define PORTERO_DKIMSIGN_H

#include <stddef.h>
#include <time.h>

#include "dkimkey.h"
#include "err.h"

struct dksign;
struct dksign_key;

/* Parses a PEM private key (RSA or Ed25519); NULL with e set. */
struct dksign_key *dksign_key(const struct dkim_keydata *, struct err *);
void		 dksign_key_free(struct dksign_key *);

struct dksign_opts {
	const char		*domain, *selector;
	const char		*identity;	/* i=, or NULL */
	int			 hsimple, bsimple;	/* canonicalization */
	char *const		*oversign;		/* header names */
	size_t			 noversign;
};

struct dksign	*dksign_new(const struct dksign_key *,
		    const struct dksign_opts *, struct err *);
/* One header field, value as the MTA gives it (folding with LF or
 * CRLF); 0, -1 when out of memory or past the size limits. */
int		 dksign_header(struct dksign *, const char *name,
		    const char *value);
/* Body bytes (CRLF line ends), any chunking. */
int		 dksign_body(struct dksign *, const unsigned char *, size_t);
/* The DKIM-Signature value, folded with "\n\t" (allocated); NULL with e
 * set on failure.  t= is now. */
char		*dksign_finish(struct dksign *, time_t now, struct err *);
void		 dksign_free(struct dksign *);

/* The canonicalisations, exposed for tests and fuzzing: the relaxed
 * form of a header field ("name:value\r\n"), allocated. */
char		*dksign_canon_header_relaxed(const char *name,
		    const char *value);

#endif
