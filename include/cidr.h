/*
 * cidr.h - IPv4/IPv6 addresses and CIDR network lists.
 *
 * Addresses are kept as 16 bytes; IPv4 (and IPv4-mapped IPv6) addresses are
 * stored in the ::ffff:0:0/96 form so one comparison serves both families.
 * A cidr_list is immutable after building and safe to read from any thread.
 */
#ifndef PORTERO_CIDR_H
#define PORTERO_CIDR_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct ipaddr {
	uint8_t	 b[16];
	int	 v4;		/* 1 if an IPv4 (or IPv4-mapped) address */
};

struct cidr {
	struct ipaddr	 addr;	/* host bits cleared */
	unsigned	 plen;	/* prefix length in the 128-bit space */
};

struct cidr_list {
	struct cidr	*v;
	size_t		 n;
};

/* "192.0.2.7", "2001:db8::1", "::ffff:192.0.2.7", "[...]", "IPv6:..." */
enum rc	ipaddr_parse(const char *, struct ipaddr *);
/* Canonical text form into buf (>= 46 bytes). */
void	ipaddr_fmt(const struct ipaddr *, char *, size_t);
int	ipaddr_eq(const struct ipaddr *, const struct ipaddr *);
/* "192.0.2.0/24", "2001:db8::/32", or a bare address (host route). */
enum rc	cidr_parse(const char *, struct cidr *, struct err *);
int	cidr_match(const struct cidr *, const struct ipaddr *);
int	cidr_list_match(const struct cidr_list *, const struct ipaddr *);
void	cidr_list_free(struct cidr_list *);
/* Client network of an address: IPv4 /v4plen or IPv6 /v6plen, as text. */
void	ipaddr_net_fmt(const struct ipaddr *, unsigned, unsigned, char *,
	    size_t);

#endif
