/*
 * greykey.c - sender normalisation and store keys for greylisting and
 * callouts (see greylist.h).  Pure functions: thread-safe.
 */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "greylist.h"

/* Skips one '='-separated field; NULL if the separator is missing. */
static const char *
field_after(const char *p, const char *end)
{
	const char	*q = memchr(p, '=', (size_t)(end - p));

	return q != NULL ? q + 1 : NULL;
}

/*
 * Undoes SRS: "SRS0=HASH=TT=domain=local" (the part before '@') gives
 * local@domain; "SRS1=HASH=forwarder==HASH=TT=domain=local" the same
 * after the "==".  Returns 1 and sets the pieces on success.
 */
static int
srs_undo(const char *lp, const char *end, const char **dom, size_t *domlen,
    const char **loc, size_t *loclen)
{
	const char	*p, *d;

	if (end - lp < 5 || strncasecmp(lp, "SRS", 3) != 0 ||
	    (lp[3] != '0' && lp[3] != '1') ||
	    (lp[4] != '=' && lp[4] != '+' && lp[4] != '-'))
		return 0;
	p = lp + 5;
	if (lp[3] == '1') {
		/* the original SRS0 fields follow the first "==" */
		for (; p + 1 < end && !(p[0] == '=' && p[1] == '='); p++)
			;
		if (p + 1 >= end)
			return 0;
		p += 2;
	}
	if ((p = field_after(p, end)) == NULL ||	/* hash */
	    (p = field_after(p, end)) == NULL)		/* timestamp */
		return 0;
	d = p;
	if ((p = field_after(p, end)) == NULL || p - 1 == d || p == end)
		return 0;
	*dom = d;
	*domlen = (size_t)(p - 1 - d);
	*loc = p;
	*loclen = (size_t)(end - p);
	return 1;
}

/* Drops a BATV tag: "prvs=TAG=local", "msprvs1=TAG=local",
 * "btv1==TAG==local".  Returns where the real local part starts. */
static const char *
batv_undo(const char *lp, const char *end)
{
	static const char *const tags[] = { "prvs=", "msprvs1=", "btv1==" };
	const char	*p, *q;
	size_t		 i, n;

	for (i = 0; i < sizeof(tags) / sizeof(tags[0]); i++) {
		n = strlen(tags[i]);
		if ((size_t)(end - lp) <= n || strncasecmp(lp, tags[i], n) != 0)
			continue;
		p = lp + n;
		q = memchr(p, '=', (size_t)(end - p));
		if (q == NULL)
			return lp;
		q++;
		if (i == 2 && q < end && *q == '=')
			q++;		/* btv1 uses "==" */
		return q < end ? q : lp;
	}
	return lp;
}

/* Appends the local part: lower-cased, "+ext" dropped, digit runs "#". */
static size_t
put_local(char *out, size_t o, const char *p, const char *end)
{
	int	 indigits = 0;

	for (; p < end && *p != '+'; p++) {
		if (isdigit((unsigned char)*p)) {
			if (!indigits)
				out[o++] = '#';
			indigits = 1;
			continue;
		}
		indigits = 0;
		out[o++] = (char)tolower((unsigned char)*p);
	}
	return o;
}

size_t
grey_sender(const char *addr, char *out, size_t outlen)
{
	const char	*at, *end, *lp, *dom, *loc;
	size_t		 len, o = 0, domlen, loclen, i;

	len = strlen(addr);
	if (outlen == 0)
		return 0;
	if (outlen < len + 1) {
		out[0] = '\0';
		return 0;
	}
	at = strrchr(addr, '@');
	end = at != NULL ? at : addr + len;
	lp = batv_undo(addr, end);
	if (srs_undo(lp, end, &dom, &domlen, &loc, &loclen)) {
		/* local@domain rebuilt from inside: never longer */
		o = put_local(out, 0, loc, loc + loclen);
		out[o++] = '@';
		for (i = 0; i < domlen; i++)
			out[o++] = (char)tolower((unsigned char)dom[i]);
		out[o] = '\0';
		return o;
	}
	o = put_local(out, 0, lp, end);
	if (at != NULL)
		for (i = 0; at[i] != '\0'; i++)
			out[o++] = (char)tolower((unsigned char)at[i]);
	out[o] = '\0';
	return o;
}

/*
 * out = parts joined (separators at even indexes, values at odd ones).
 * Store keys hold no space or control byte and '|' separates fields, so
 * such bytes of a value (a quoted local part may hold them) become '_':
 * the key stays valid, never an error a sender could provoke to slip
 * past greylisting.
 */
static int
join(char *out, size_t outlen, const char *const *parts, size_t n)
{
	size_t	 o = 0, i, l, j;

	for (i = 0; i < n; i++) {
		l = strlen(parts[i]);
		if (l >= outlen - o)
			return -1;
		for (j = 0; j < l; j++) {
			unsigned char c = (unsigned char)parts[i][j];

			out[o + j] = (i % 2 == 1 && (c < 0x21 || c == 0x7f ||
			    c == '|')) ? '_' : (char)c;
		}
		o += l;
	}
	out[o] = '\0';
	return 0;
}

int
grey_key_triplet(char *out, size_t outlen, const char *origin,
    const char *sender, const char *rcpt)
{
	const char *const p[] = { "g|", origin, "|", sender, "|", rcpt };

	return join(out, outlen, p, 6);
}

int
grey_key_white(char *out, size_t outlen, const char *origin)
{
	const char *const p[] = { "w|", origin };

	return join(out, outlen, p, 2);
}

int
grey_key_callout(char *out, size_t outlen, const char *rcpt)
{
	const char *const p[] = { "c|", rcpt };

	return join(out, outlen, p, 2);
}

int
grey_key_brake(char *out, size_t outlen, const char *ip)
{
	const char *const p[] = { "b|", ip };

	return join(out, outlen, p, 2);
}
