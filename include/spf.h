/*
 * spf.h - Sender Policy Framework, RFC 7208: record selection and syntax,
 * macro expansion, and check_host() on portero's DNS layer.
 *
 * Written here rather than taken from libspf2, which gives answers RFC
 * 7208 does not (README, "SPF"): every record is checked against the
 * whole grammar before any of it is used, DNS lookups and void lookups
 * are counted across include and redirect, and the client is never given
 * a result the record does not say.  The evaluator asks DNS questions
 * through a caller-supplied function, one at a time (terms are evaluated
 * in order and the next question depends on the last answer); the caller
 * bounds each question and the whole evaluation in time.  Everything an
 * evaluation allocates comes from the caller's arena.  No global state:
 * thread-safe, one spf_eval per evaluation.
 */
#ifndef PORTERO_SPF_H
#define PORTERO_SPF_H

#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "cidr.h"
#include "dns.h"
#include "err.h"

#define SPF_T_MX		15	/* DNS type not in dns.h */
#define SPF_LOOKUP_MAX		10	/* terms causing DNS queries (4.6.4) */
#define SPF_VOID_MAX		2	/* lookups with no answer (4.6.4) */
#define SPF_MX_MAX		10	/* MX names of one mx mechanism */
#define SPF_PTR_MAX		10	/* PTR names looked at */
#define SPF_DOMAIN_MAX		253	/* expanded names are cut to this (7.3) */

enum spf_result {
	SPF_NONE,
	SPF_NEUTRAL,
	SPF_PASS,
	SPF_FAIL,
	SPF_SOFTFAIL,
	SPF_TEMPERROR,
	SPF_PERMERROR
};

enum spf_mech {
	SPF_M_ALL,
	SPF_M_INCLUDE,
	SPF_M_A,
	SPF_M_MX,
	SPF_M_PTR,
	SPF_M_IP4,
	SPF_M_IP6,
	SPF_M_EXISTS
};

struct spf_term {
	enum spf_mech	 mech;
	enum spf_result	 result;	/* of the qualifier: pass, fail, ... */
	const char	*domain;	/* domain-spec; NULL: the current domain */
	struct ipaddr	 net;		/* ip4 / ip6 */
	unsigned	 plen4;		/* ip4, a, mx: 0..32 (32 if absent) */
	unsigned	 plen6;		/* ip6, a, mx: 0..128 (128 if absent) */
};

/* A record that passed the syntax check; strings in the parse arena. */
struct spf_record {
	struct spf_term	*terms;		/* mechanisms in record order */
	size_t		 nterms;
	const char	*redirect;	/* domain-spec, NULL if none */
	const char	*exp;		/* domain-spec, NULL if none (unused) */
	int		 has_all;	/* an "all": redirect is ignored */
};

/*
 * 4.5: which of a name's TXT records is its SPF record.  recs[i] is the
 * i-th record, its strings joined (lens[i] bytes, NULs possible).  Returns
 * 0 if none starts with "v=spf1" (then SP or end), 1 with *which set if
 * exactly one does, 2 if several do (permerror).
 */
int		 spf_select(const char *const *recs, const size_t *lens,
		    size_t n, size_t *which);
/* Joins one TXT rdata's character-strings; NULL if malformed or no
 * memory (*nomem says which). */
char		*spf_txt_join(struct arena *, const uint8_t *, size_t,
		    size_t *len, int *nomem);
/*
 * The whole record against the RFC 7208 grammar (section 12) and the
 * rules around it: "v=spf1", known mechanisms, CIDR lengths (0 allowed),
 * IP literals, domain-specs and macros (c, r, t only in exp), at most one
 * redirect and one exp, unknown modifiers well formed.  RC_PERM with *why
 * (static text) on any error; RC_NOMEM.
 */
enum rc		 spf_record_parse(struct arena *, const char *, size_t,
		    struct spf_record *, const char **why);
const char	*spf_result_name(enum spf_result);

/* One DNS answer: records in network format, valid until the next
 * question. */
struct spf_answer {
	enum dns_status	  status;
	size_t		  n;
	const uint8_t	**rr;
	const size_t	 *len;
};

/* Asks one question (name is valid presentation text, rrtype DNS_T_* or
 * SPF_T_MX) and fills the answer; never fails: an error is a status. */
typedef void	(*spf_lookup_fn)(void *arg, const char *name, int rrtype,
		    struct spf_answer *);

struct spf_eval {
	/* set by the caller */
	spf_lookup_fn	 lookup;
	void		*lookup_arg;
	struct arena	*arena;
	struct ipaddr	 ip;		/* IPv4-mapped is evaluated as IPv4 */
	const char	*sender;	/* local@domain (postmaster@helo) */
	const char	*helo;		/* "" if none was given */

	/* results */
	unsigned	 lookups;	/* terms that asked the DNS */
	unsigned	 voids;
	char		 why[192];	/* what made the result an error */

	/* private */
	int		 nomem;
	int		 ptr_done;	/* client's PTR names looked up */
	int		 ptr_void;	/* and there were none */
	const char	*ptr_names[SPF_PTR_MAX];	/* validated */
	size_t		 nptr;
};

/* check_host() (section 4) for the client ip, the sender and the domain
 * of the identity (already known to be a valid multi-label name). */
enum spf_result	 spf_check_host(struct spf_eval *, const char *domain);
/*
 * Section 7: expands a domain-spec (or any macro-string) for the current
 * domain into buf; a result used as a domain name is cut to 253 bytes
 * from the left, a label at a time.  RC_PERM for a macro error, RC_NOMEM
 * if it does not fit in len.
 */
enum rc		 spf_expand(struct spf_eval *, const char *spec,
		    const char *domain, char *buf, size_t len);

#endif
