/*
 * scanproto.c - encode and parse the scanner request and reply lines
 * (format in scanproto.h), and sanitise signature names.
 *
 * The parsers see what another process wrote; that process runs
 * libclamav on hostile input, so its replies are treated as untrusted:
 * strict grammar, bounded numbers, names reduced to a safe alphabet.
 * Fuzzed by tests/fuzz/fuzz_scanproto.c.  Pure functions: thread-safe.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "scanproto.h"

#define MAGIC		"PORTERO-SCAN 1 "
#define LIMIT_PREFIX	"Heuristics.Limits.Exceeded."

/* A cursor over a line that is not NUL-terminated. */
struct cur {
	const char	*p, *end;
};

const char *
scan_verdict_name(enum scan_verdict v)
{
	switch (v) {
	case SCAN_CLEAN:
		return "clean";
	case SCAN_FOUND:
		return "infected";
	case SCAN_LIMIT:
		return "limit";
	case SCAN_ERROR:
		return "error";
	}
	return "error";
}

static int
name_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || (c != '\0' && strchr("._:/+=@#-", c) !=
	    NULL);
}

void
scanproto_sanitize(char *dst, size_t dstlen, const char *src,
    size_t srclen, int text)
{
	size_t	 i;

	if (dstlen == 0)
		return;
	for (i = 0; i < srclen && i < dstlen - 1 && src[i] != '\0'; i++) {
		unsigned char c = (unsigned char)src[i];

		if (text)
			dst[i] = c >= 0x20 && c < 0x7f ? (char)c : '?';
		else
			dst[i] = name_char(c) ? (char)c : '_';
	}
	dst[i] = '\0';
}

void
scan_result_set(struct scan_result *r, enum scan_verdict v, const char *fmt,
    ...)
{
	char	 tmp[SCAN_NAME_MAX];
	va_list	 ap;

	r->verdict = v;
	va_start(ap, fmt);
	(void)vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	scanproto_sanitize(r->name, sizeof(r->name), tmp, sizeof(tmp),
	    v == SCAN_ERROR);
}

int
scanproto_is_limit(const char *name)
{
	return strncmp(name, LIMIT_PREFIX, sizeof(LIMIT_PREFIX) - 1) == 0;
}

size_t
scanproto_request_encode(char *buf, size_t len, uint64_t id)
{
	int	 n;

	n = snprintf(buf, len, MAGIC "SCAN id=%llu\n", (unsigned long long)id);
	return n > 0 && (size_t)n < len && (size_t)n <= SCANPROTO_MAX ?
	    (size_t)n : 0;
}

size_t
scanproto_reply_encode(char *buf, size_t len, uint64_t id,
    const struct scan_result *r)
{
	static const char *const kw[] = { "OK", "FOUND", "LIMIT", "ERROR" };
	char			 name[SCAN_NAME_MAX];
	int			 n, text = r->verdict == SCAN_ERROR;
	const char		*key = text ? "text" : "name";

	if ((unsigned)r->verdict > SCAN_ERROR)
		return 0;
	scanproto_sanitize(name, sizeof(name), r->name, sizeof(r->name), text);
	if (name[0] == '\0')
		(void)snprintf(name, sizeof(name), "%s", text ?
		    "unknown error" : "Unknown");
	if (r->verdict == SCAN_CLEAN)
		n = snprintf(buf, len, MAGIC "OK id=%llu gen=%u sigs=%llu\n",
		    (unsigned long long)id, r->gen,
		    (unsigned long long)r->sigs);
	else
		n = snprintf(buf, len, MAGIC "%s id=%llu gen=%u sigs=%llu "
		    "%s=%s\n", kw[r->verdict], (unsigned long long)id, r->gen,
		    (unsigned long long)r->sigs, key, name);
	return n > 0 && (size_t)n < len && (size_t)n <= SCANPROTO_MAX ?
	    (size_t)n : 0;
}

/* Consumes the literal s. */
static int
lit(struct cur *c, const char *s)
{
	size_t	 n = strlen(s);

	if ((size_t)(c->end - c->p) < n || memcmp(c->p, s, n) != 0)
		return 0;
	c->p += n;
	return 1;
}

/* Consumes a decimal number in [0, max]: no sign, no leading zero. */
static int
num(struct cur *c, uint64_t max, uint64_t *out)
{
	uint64_t	 v = 0;
	const char	*start = c->p;

	while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
		unsigned d = (unsigned)(*c->p - '0');

		if (v > (max - d) / 10)
			return 0;
		v = v * 10 + d;
		c->p++;
	}
	if (c->p == start || (*start == '0' && c->p - start > 1))
		return 0;
	*out = v;
	return 1;
}

/* The whole packet is one line: text, then exactly one '\n' at the end,
 * no NUL inside. */
static int
line(const char *buf, size_t len, struct cur *c)
{
	if (len < 2 || len > SCANPROTO_MAX || buf[len - 1] != '\n' ||
	    memchr(buf, '\n', len - 1) != NULL || memchr(buf, '\0', len) !=
	    NULL)
		return 0;
	c->p = buf;
	c->end = buf + len - 1;
	return 1;
}

enum rc
scanproto_request_parse(const char *buf, size_t len, uint64_t *id)
{
	struct cur	 c;

	if (!line(buf, len, &c) || !lit(&c, MAGIC "SCAN id=") ||
	    !num(&c, UINT64_MAX, id) || c.p != c.end)
		return RC_INVAL;
	return RC_OK;
}

enum rc
scanproto_reply_parse(const char *buf, size_t len, uint64_t *id,
    struct scan_result *r)
{
	struct cur	 c;
	uint64_t	 gen, sigs;
	enum scan_verdict v;
	const char	*key;

	memset(r, 0, sizeof(*r));
	if (!line(buf, len, &c) || !lit(&c, MAGIC))
		return RC_INVAL;
	if (lit(&c, "OK "))
		v = SCAN_CLEAN;
	else if (lit(&c, "FOUND "))
		v = SCAN_FOUND;
	else if (lit(&c, "LIMIT "))
		v = SCAN_LIMIT;
	else if (lit(&c, "ERROR "))
		v = SCAN_ERROR;
	else
		return RC_INVAL;
	if (!lit(&c, "id=") || !num(&c, UINT64_MAX, id) ||
	    !lit(&c, " gen=") || !num(&c, UINT32_MAX, &gen) ||
	    !lit(&c, " sigs=") || !num(&c, UINT64_MAX, &sigs))
		return RC_INVAL;
	r->gen = (unsigned)gen;
	r->sigs = sigs;
	r->verdict = v;
	if (v == SCAN_CLEAN)
		return c.p == c.end ? RC_OK : RC_INVAL;
	key = v == SCAN_ERROR ? " text=" : " name=";
	if (!lit(&c, key) || c.p == c.end ||
	    (size_t)(c.end - c.p) >= SCAN_NAME_MAX) {
		memset(r, 0, sizeof(*r));
		return RC_INVAL;
	}
	scanproto_sanitize(r->name, sizeof(r->name), c.p,
	    (size_t)(c.end - c.p), v == SCAN_ERROR);
	if (v == SCAN_FOUND && scanproto_is_limit(r->name))
		r->verdict = SCAN_LIMIT;
	return RC_OK;
}
