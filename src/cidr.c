/*
 * cidr.c - address and CIDR parsing and matching (see cidr.h).
 * Pure functions, thread-safe.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cidr.h"
#include "util.h"

static const uint8_t v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff,
    0xff };

enum rc
ipaddr_parse(const char *s, struct ipaddr *a)
{
	char		 tmp[INET6_ADDRSTRLEN + 8];
	size_t		 n;
	struct in_addr	 in4;
	int		 tagged = 0;

	if (s == NULL)
		return RC_INVAL;
	n = strlen(s);
	if (n >= 2 && s[0] == '[' && s[n - 1] == ']') {
		s++;
		n -= 2;
	}
	if (n >= 5 && strncasecmp(s, "IPv6:", 5) == 0) {
		s += 5;
		n -= 5;
		tagged = 1;	/* RFC 5321: an IPv6 address must follow */
	}
	if (n == 0 || n >= sizeof(tmp))
		return RC_INVAL;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	memset(a, 0, sizeof(*a));
	if (!tagged && inet_pton(AF_INET, tmp, &in4) == 1) {
		memcpy(a->b, v4mapped, sizeof(v4mapped));
		memcpy(a->b + 12, &in4, 4);
		a->v4 = 1;
		return RC_OK;
	}
	if (inet_pton(AF_INET6, tmp, a->b) == 1) {
		a->v4 = memcmp(a->b, v4mapped, sizeof(v4mapped)) == 0;
		return RC_OK;
	}
	return RC_INVAL;
}

void
ipaddr_fmt(const struct ipaddr *a, char *buf, size_t len)
{
	if (a->v4) {
		if (inet_ntop(AF_INET, a->b + 12, buf, (socklen_t)len) == NULL)
			(void)str_copy(buf, "?", len);
	} else {
		if (inet_ntop(AF_INET6, a->b, buf, (socklen_t)len) == NULL)
			(void)str_copy(buf, "?", len);
	}
}

int
ipaddr_eq(const struct ipaddr *a, const struct ipaddr *b)
{
	return memcmp(a->b, b->b, 16) == 0;
}

static void
mask_bits(uint8_t *b, unsigned plen)
{
	unsigned	 i;

	for (i = 0; i < 16; i++) {
		if (plen >= 8) {
			plen -= 8;
			continue;
		}
		b[i] &= (uint8_t)(0xff << (8 - plen));
		plen = 0;
	}
}

enum rc
cidr_parse(const char *s, struct cidr *c, struct err *e)
{
	char			 host[INET6_ADDRSTRLEN + 8];
	const char		*slash;
	unsigned long long	 plen;
	size_t			 n;
	unsigned		 maxlen;

	slash = strchr(s, '/');
	n = slash != NULL ? (size_t)(slash - s) : strlen(s);
	if (n == 0 || n >= sizeof(host)) {
		err_set(e, "'%s' is not an IPv4 or IPv6 network", s);
		return RC_INVAL;
	}
	memcpy(host, s, n);
	host[n] = '\0';
	/* plain addresses only: no brackets or IPv6: tag in a network */
	if (strpbrk(host, "[]") != NULL || strncasecmp(host, "IPv6:", 5) == 0 ||
	    ipaddr_parse(host, &c->addr) != RC_OK) {
		err_set(e, "'%s' is not an IPv4 or IPv6 network", s);
		return RC_INVAL;
	}
	maxlen = c->addr.v4 && strchr(host, ':') == NULL ? 32 : 128;
	plen = maxlen;
	if (slash != NULL &&
	    parse_uint(slash + 1, 0, maxlen, &plen) != RC_OK) {
		err_set(e, "'%s': prefix length must be 0..%u", s, maxlen);
		return RC_INVAL;
	}
	c->plen = (unsigned)plen + (maxlen == 32 ? 96 : 0);
	mask_bits(c->addr.b, c->plen);
	return RC_OK;
}

int
cidr_match(const struct cidr *c, const struct ipaddr *a)
{
	uint8_t	 tmp[16];

	memcpy(tmp, a->b, 16);
	mask_bits(tmp, c->plen);
	return memcmp(tmp, c->addr.b, 16) == 0;
}

int
cidr_list_match(const struct cidr_list *l, const struct ipaddr *a)
{
	size_t	 i;

	for (i = 0; i < l->n; i++)
		if (cidr_match(&l->v[i], a))
			return 1;
	return 0;
}

void
cidr_list_free(struct cidr_list *l)
{
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

void
ipaddr_net_fmt(const struct ipaddr *a, unsigned v4plen, unsigned v6plen,
    char *buf, size_t len)
{
	struct ipaddr	 net = *a;
	char		 tmp[INET6_ADDRSTRLEN];
	unsigned	 plen;

	plen = a->v4 ? 96 + v4plen : v6plen;
	mask_bits(net.b, plen);
	ipaddr_fmt(&net, tmp, sizeof(tmp));
	(void)snprintf(buf, len, "%s/%u", tmp, a->v4 ? v4plen : v6plen);
}
