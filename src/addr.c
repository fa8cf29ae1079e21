/*
 * addr.c - envelope address and host name parsing (see addr.h).
 * Thread-safe; allocations come from the caller's arena.
 */
#include <ctype.h>
#include <string.h>

#include "addr.h"
#include "cidr.h"

#define LOCAL_MAX	64
#define DOMAIN_MAX	255
#define PATH_MAX_LEN	256	/* RFC 5321 4.5.3.1.3 */
#define LABEL_MAX	63

static int
is_atext(int c)
{
	return isalnum(c) || (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

int
hostname_valid(const char *s)
{
	size_t	 total = 0, label = 0;
	int	 prev = '.';

	if (s == NULL || *s == '\0')
		return 0;
	for (; *s != '\0'; s++) {
		int c = (unsigned char)*s;

		if (++total > DOMAIN_MAX - 2)
			return 0;
		if (c == '.') {
			if (label == 0 || prev == '-')
				return 0;
			label = 0;
		} else if (isalnum(c) || c == '-' || c == '_') {
			if (label == 0 && c == '-')
				return 0;
			if (++label > LABEL_MAX)
				return 0;
		} else
			return 0;
		prev = c;
	}
	/* a trailing dot (root) is allowed; a trailing hyphen is not */
	return prev != '-';
}

int
hostname_is_fqdn(const char *s)
{
	const char	*dot = strchr(s, '.');

	return dot != NULL && dot != s && dot[1] != '\0';
}

int
addr_is_literal(const char *s)
{
	struct ipaddr	 a;
	size_t		 n = strlen(s);

	if (n < 3 || s[0] != '[' || s[n - 1] != ']')
		return 0;
	return ipaddr_parse(s, &a) == 0;
}

/* Local part: dot-atom or quoted-string.  Returns 1 if valid. */
static int
local_valid(const char *s, size_t n)
{
	size_t	 i;

	if (n == 0 || n > LOCAL_MAX)
		return 0;
	if (s[0] == '"') {
		if (n < 2 || s[n - 1] != '"')
			return 0;
		for (i = 1; i < n - 1; i++) {
			unsigned char c = (unsigned char)s[i];

			if (c == '\\') {
				if (++i >= n - 1)
					return 0;
				c = (unsigned char)s[i];
				if (c < 0x20 || c > 0x7e)
					return 0;
			} else if (c < 0x20 || c > 0x7e || c == '"')
				return 0;
		}
		return 1;
	}
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '.') {
			if (i == 0 || i == n - 1 || s[i + 1] == '.')
				return 0;
		} else if (!is_atext(c))
			return 0;
	}
	return 1;
}

/* Index of the '@' that separates local part and domain, or -1. */
static long
split_at(const char *s, size_t n)
{
	size_t	 i;
	int	 quoted = 0;
	long	 at = -1;

	for (i = 0; i < n; i++) {
		if (quoted && s[i] == '\\') {
			i++;
			continue;
		}
		if (s[i] == '"')
			quoted = !quoted;
		else if (!quoted && s[i] == '@')
			at = (long)i;
	}
	return quoted ? -1 : at;
}

enum addr_status
addr_parse(struct arena *ar, const char *raw, struct mailaddr *out,
    const char **why)
{
	const char	*s = raw, *colon;
	size_t		 n;
	long		 at;
	char		*dom, *full;

	*why = NULL;
	memset(out, 0, sizeof(*out));
	while (*s == ' ' || *s == '\t')
		s++;
	n = strlen(s);
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	if (n > 0 && s[0] == '<') {
		if (n < 2 || s[n - 1] != '>') {
			*why = "unbalanced <>";
			return ADDR_BAD;
		}
		s++;
		n -= 2;
	} else if (n > 0 && s[n - 1] == '>') {
		*why = "unbalanced <>";
		return ADDR_BAD;
	}
	if (n == 0) {
		out->local = out->domain = out->addr = "";
		return ADDR_NULL;
	}
	if (n > PATH_MAX_LEN * 4) {
		*why = "address too long";
		return ADDR_BAD;
	}
	/* drop an obsolete source route "@a,@b:" */
	if (s[0] == '@') {
		colon = memchr(s, ':', n);
		if (colon == NULL) {
			*why = "bad source route";
			return ADDR_BAD;
		}
		n -= (size_t)(colon + 1 - s);
		s = colon + 1;
	}
	if (n > PATH_MAX_LEN) {
		*why = "address too long";
		return ADDR_BAD;
	}
	at = split_at(s, n);
	if (at <= 0 || (size_t)at == n - 1) {
		*why = at < 0 ? "no domain" : "empty local part or domain";
		return ADDR_BAD;
	}
	if (!local_valid(s, (size_t)at)) {
		*why = "bad local part";
		return ADDR_BAD;
	}
	dom = arena_strndup(ar, s + at + 1, n - (size_t)at - 1);
	if (dom == NULL)
		return ADDR_NOMEM;
	for (char *p = dom; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	if (!(dom[0] == '[' ? addr_is_literal(dom) : hostname_valid(dom))) {
		*why = "bad domain";
		return ADDR_BAD;
	}
	out->local = arena_strndup(ar, s, (size_t)at);
	full = arena_printf(ar, "%.*s@%s", (int)at, s, dom);
	if (out->local == NULL || full == NULL)
		return ADDR_NOMEM;
	out->domain = dom;
	out->addr = full;
	return ADDR_OK;
}
