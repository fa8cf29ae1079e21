/*
 * dns.h - portero's one DNS layer, on libunbound.
 *
 * A resolver belongs to a config snapshot (dns.mode, dns.forward,
 * dns.timeout) and is created on first use in the process that serves
 * mail, never in the supervisor.  Questions are asked in batches: every
 * question of a batch is in flight at once and dns_batch_wait() returns
 * when all are answered or the deadline passed, so a stage costs its
 * slowest answer, not the sum.  Unanswered questions are cancelled and
 * report DNS_TIMEOUT.  Nothing here uses the system resolver.
 * Thread-safe: any number of threads may run batches on one resolver.
 */
#ifndef PORTERO_DNS_H
#define PORTERO_DNS_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define DNS_T_A		1
#define DNS_T_PTR	12
#define DNS_T_TXT	16
#define DNS_T_AAAA	28

enum dns_status {
	DNS_PENDING,
	DNS_OK,		/* data present */
	DNS_NXDOMAIN,
	DNS_NODATA,	/* the name exists, not with this type */
	DNS_SERVFAIL,	/* or another error rcode */
	DNS_TIMEOUT,
	DNS_ERROR	/* could not be asked */
};

struct dns_conf {
	int		 forward;	/* 0: recursive from the root */
	char		**servers;	/* "127.0.0.1@5353" */
	size_t		 nservers;
	unsigned	 timeout_ms;
};

struct dns;
struct dns_batch;
struct dns_query;

struct dns	*dns_new(const struct dns_conf *, struct err *);
void		 dns_free(struct dns *);

struct dns_batch *dns_batch_new(struct dns *);
/* Adds a question; NULL only when out of memory. */
struct dns_query *dns_batch_add(struct dns_batch *, const char *name,
		    int rrtype);
/* Waits for every answer or the resolver's timeout. */
void		 dns_batch_wait(struct dns_batch *);
/* The same with a shorter wait (what is left of a stage's deadline). */
void		 dns_batch_wait_ms(struct dns_batch *, unsigned ms);
/* The resolver's per-batch timeout. */
unsigned	 dns_timeout_ms(const struct dns *);
/* Frees the batch and its answers (cancelling what is still asked). */
void		 dns_batch_free(struct dns_batch *);

enum dns_status	 dns_query_status(const struct dns_query *);
/* Number of records and record i's rdata (network format). */
size_t		 dns_query_count(const struct dns_query *);
const uint8_t	*dns_query_data(const struct dns_query *, size_t i,
		    size_t *len);
const char	*dns_status_name(enum dns_status);

/* "7.2.0.192.zen.example" / nibbles for IPv6; 0 if it fit in buf. */
struct ipaddr;
int		 dns_reverse_name(const struct ipaddr *, const char *zone,
		    char *buf, size_t len);
/* Decodes a PTR rdata into a dotted name (no trailing dot); 0 if valid,
 * -1 for a malformed name or a label with a dot, NUL or control byte. */
int		 dns_name_from_wire(const uint8_t *, size_t, char *, size_t);

#endif
