/*
 * util.c - number, duration, size and mode parsers; string helpers.
 * Pure functions, thread-safe.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "buf.h"
#include "util.h"

enum rc
parse_uint(const char *s, unsigned long long min, unsigned long long max,
    unsigned long long *out)
{
	unsigned long long	 v = 0;
	const char		*p;

	if (s == NULL || *s == '\0')
		return RC_INVAL;
	for (p = s; *p != '\0'; p++) {
		unsigned d;

		if (*p < '0' || *p > '9')
			return RC_INVAL;
		d = (unsigned)(*p - '0');
		if (v > (max - d) / 10)
			return RC_INVAL;
		v = v * 10 + d;
	}
	if (v < min || v > max)
		return RC_INVAL;
	*out = v;
	return RC_OK;
}

/* Splits "123x" into the number and a one-letter unit ('\0' if none). */
static enum rc
num_unit(const char *s, unsigned long long *num, char *unit)
{
	char	 digits[32];
	size_t	 n = strlen(s);

	*unit = '\0';
	if (n == 0 || n >= sizeof(digits))
		return RC_INVAL;
	if (isalpha((unsigned char)s[n - 1])) {
		*unit = (char)tolower((unsigned char)s[n - 1]);
		n--;
	}
	memcpy(digits, s, n);
	digits[n] = '\0';
	return parse_uint(digits, 0, ~0ULL, num);
}

static enum rc
scale(unsigned long long v, unsigned long long mult, unsigned long long max,
    unsigned long long *out)
{
	if (mult != 0 && v > max / mult)
		return RC_INVAL;
	v *= mult;
	if (v > max)
		return RC_INVAL;
	*out = v;
	return RC_OK;
}

struct unit {
	char			 c;	/* lower-case letter; '\0' = none */
	unsigned long long	 mult;
};

static const struct unit duration_units[] = {
	{ '\0', 1 }, { 's', 1 }, { 'm', 60 }, { 'h', 3600 }, { 'd', 86400 },
	{ 'w', 7 * 86400 }, { 0, 0 }
};
static const struct unit size_units[] = {
	{ '\0', 1 }, { 'b', 1 }, { 'k', 1ULL << 10 }, { 'm', 1ULL << 20 },
	{ 'g', 1ULL << 30 }, { 0, 0 }
};

/* A number with an optional unit letter from the table, scaled. */
static enum rc
parse_with_unit(const char *s, const struct unit *units,
    unsigned long long max, unsigned long long *out)
{
	unsigned long long	 v;
	char			 unit;
	size_t			 i;

	if (s == NULL || num_unit(s, &v, &unit) != RC_OK)
		return RC_INVAL;
	for (i = 0; units[i].mult != 0; i++)
		if (units[i].c == unit)
			return scale(v, units[i].mult, max, out);
	return RC_INVAL;
}

enum rc
parse_duration(const char *s, unsigned long long max, unsigned long long *out)
{
	return parse_with_unit(s, duration_units, max, out);
}

enum rc
parse_size(const char *s, unsigned long long max, unsigned long long *out)
{
	return parse_with_unit(s, size_units, max, out);
}

enum rc
parse_mode(const char *s, unsigned *out)
{
	unsigned	 v = 0;
	const char	*p;

	if (s == NULL || *s == '\0' || strlen(s) > 5)
		return RC_INVAL;
	for (p = s; *p != '\0'; p++) {
		if (*p < '0' || *p > '7')
			return RC_INVAL;
		v = v * 8 + (unsigned)(*p - '0');
	}
	if (v > 07777)
		return RC_INVAL;
	*out = v;
	return RC_OK;
}

enum rc
score_from_double(double d, int32_t *out)
{
	double	 h;

	if (!isfinite(d) || d > 10000.0 || d < -10000.0)
		return RC_INVAL;
	h = round(d * 100.0);
	*out = (int32_t)h;
	return RC_OK;
}

void
score_fmt(int32_t s, char *buf, size_t len)
{
	const char	*sign = s < 0 ? "-" : "";
	long		 a = labs((long)s);
	long		 ip = a / 100, fp = a % 100;

	if (fp % 10 == 0)
		(void)snprintf(buf, len, "%s%ld.%ld", sign, ip, fp / 10);
	else
		(void)snprintf(buf, len, "%s%ld.%02ld", sign, ip, fp);
}

int
str_copy(char *dst, const char *src, size_t n)
{
	size_t	 l;

	if (n == 0)
		return -1;
	l = strlen(src);
	if (l >= n) {
		memcpy(dst, src, n - 1);
		dst[n - 1] = '\0';
		return -1;
	}
	memcpy(dst, src, l + 1);
	return 0;
}

void
str_lower(char *s)
{
	for (; *s != '\0'; s++)
		*s = (char)tolower((unsigned char)*s);
}

int
str_ieq(const char *a, const char *b)
{
	for (; *a != '\0' && *b != '\0'; a++, b++)
		if (tolower((unsigned char)*a) != tolower((unsigned char)*b))
			return 0;
	return *a == *b;
}

int
str_iendswith(const char *s, const char *suffix)
{
	size_t	 ls = strlen(s), lx = strlen(suffix);

	if (lx > ls)
		return 0;
	return str_ieq(s + ls - lx, suffix);
}

uint64_t
now_ms(void)
{
	struct timespec	 ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int
ms_until(uint64_t deadline)
{
	uint64_t	 now = now_ms();

	if (now >= deadline)
		return 0;
	return deadline - now > INT32_MAX ? INT32_MAX : (int)(deadline - now);
}

int
ere_bounded(const char *re, struct err *e)
{
	const char	*p;
	unsigned	 plus = 0;
	int		 prev = 0, q;

	if (strlen(re) > 256) {
		err_set(e, "longer than 256 bytes");
		return -1;
	}
	for (p = re; *p != '\0'; p++) {
		if (*p == '\\' && p[1] != '\0') {
			p++;
			prev = 0;
			continue;
		}
		if (*p == '[') {
			/* a bracket expression: "]" first is a member */
			p++;
			if (*p == '^')
				p++;
			if (*p == ']')
				p++;
			while (*p != '\0' && *p != ']')
				p++;
			if (*p == '\0')
				break;
			prev = 0;
			continue;
		}
		if (*p == '{') {
			err_set(e, "bounds {n,m} are not allowed");
			return -1;
		}
		q = *p == '*' || *p == '+' || *p == '?';
		if (q && prev) {
			err_set(e, "a repetition of a repetition (\"%c%c\")",
			    p[-1], *p);
			return -1;
		}
		if (*p == '+' && ++plus > 8) {
			err_set(e, "more than 8 '+'");
			return -1;
		}
		prev = q;
	}
	return 0;
}

int
file_read(const char *path, struct buf *b, struct err *e)
{
	struct stat	 st;
	char		 chunk[16384];
	ssize_t		 r;
	enum rc		 rc;
	int		 fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) == -1) {
		err_set(e, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) != 0) {
		err_set(e, "%s: %s", path, strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		err_set(e, "%s: not a regular file", path);
		goto fail;
	}
	for (;;) {
		r = read(fd, chunk, sizeof(chunk));
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1) {
			err_set(e, "%s: %s", path, strerror(errno));
			goto fail;
		}
		if (r == 0)
			break;
		rc = buf_append(b, chunk, (size_t)r);
		if (rc == RC_NOMEM) {
			err_set(e, "%s: out of memory", path);
			goto fail;
		}
		if (rc != RC_OK) {
			err_set(e, "%s: larger than %zu MB", path,
			    b->max >> 20);
			goto fail;
		}
	}
	(void)close(fd);
	return 0;
fail:
	(void)close(fd);
	return -1;
}

void
exit_describe(int status, char *buf, size_t len)
{
	if (WIFEXITED(status))
		(void)snprintf(buf, len, "exited with status %d",
		    WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		(void)snprintf(buf, len, "killed by signal %d (%s)",
		    WTERMSIG(status), strsignal(WTERMSIG(status)));
	else
		(void)snprintf(buf, len, "stopped (status %d)", status);
}
