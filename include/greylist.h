/*
 * greylist.h - the parts of greylisting and callouts that do not touch the
 * store: the normalised sender that keeps a retry's triplet equal to the
 * first attempt's, and the store keys both modules and portero-ctl use.
 * Pure functions: thread-safe.
 */
#ifndef PORTERO_GREYLIST_H
#define PORTERO_GREYLIST_H

#include <stddef.h>

#include "cidr.h"

/*
 * Normalises an envelope sender (local@domain) for the greylist triplet:
 * lower-cased; a BATV tag (prvs=TAG=local, msprvs1=TAG=local,
 * btv1==TAG==local) and an SRS0/SRS1 wrapper are undone (SRS gives back
 * the original local@domain); a "+tag" extension is dropped; every run
 * of digits in the local part becomes "#" (VERP and bounce ids).  out must
 * have room for strlen(addr) + 1 bytes; the result is never longer.
 * Returns the length written.
 */
size_t	grey_sender(const char *addr, char *out, size_t outlen);

/* Store key helpers: "g|ORIGIN|SENDER|RCPT", "w|ORIGIN", "c|RCPT",
 * "b|IP".  Each returns 0, or -1 if out (outlen bytes) is too small. */
int	grey_key_triplet(char *out, size_t outlen, const char *origin,
	    const char *sender, const char *rcpt);
int	grey_key_white(char *out, size_t outlen, const char *origin);
int	grey_key_callout(char *out, size_t outlen, const char *rcpt);
int	grey_key_brake(char *out, size_t outlen, const char *ip);

struct cfg;
/* The origin text of a client address under cfg's greylist prefixes
 * ("192.0.2.0/24"; /24 and /64 when greylisting is off).  out: >= 64. */
void	greylist_origin(const struct cfg *, const struct ipaddr *, char *out,
	    size_t outlen);

#endif
