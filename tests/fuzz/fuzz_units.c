/*
 * fuzz_units.c - libFuzzer target for the number parsers of util.h used on
 * config values and prefix lengths: parse_uint, parse_duration,
 * parse_size, parse_mode, plus score_from_double and score_fmt.  Each
 * parser is compared with a straightforward reference implementation
 * (overflow-checked arithmetic); score_fmt output must parse back to the
 * same hundredths.
 *
 * Input: byte 0 picks the bounds (low 4 bits: max, high 4 bits: min, from
 * a table of edge values); bytes 1..8 are an int32 score and a double;
 * the rest, up to a NUL, is the text given to every parser.
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#include "fuzz.h"

static const unsigned long long bounds[16] = {
	0, 1, 5, 8, 9, 10, 32, 99, 128, 600, 3600, 65535, 34560000ULL,
	68719476736ULL, ~0ULL >> 1, ~0ULL
};

/* Reference decimal parser: digits only, no overflow, within bounds. */
static int
ref_uint(const char *s, size_t n, unsigned long long min,
    unsigned long long max, unsigned long long *out)
{
	unsigned long long	 v = 0;
	size_t			 i;

	if (n == 0)
		return -1;
	for (i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]))
			return -1;
		if (__builtin_mul_overflow(v, 10ULL, &v) ||
		    __builtin_add_overflow(v, (unsigned long long)(s[i] - '0'),
		    &v))
			return -1;
	}
	if (v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

/* Reference for "<digits>[unit]": units maps a lower-case letter (or
 * '\0') to its multiplier, 0 if not a unit. */
static int
ref_unit(const char *s, unsigned long long max,
    unsigned long long (*mult)(int), unsigned long long *out)
{
	size_t			 n = strlen(s);
	int			 u = '\0';
	unsigned long long	 v, m;

	if (n > 0 && isalpha((unsigned char)s[n - 1])) {
		u = tolower((unsigned char)s[n - 1]);
		n--;
	}
	if ((m = mult(u)) == 0 || ref_uint(s, n, 0, ~0ULL, &v) != 0 ||
	    __builtin_mul_overflow(v, m, &v) || v > max)
		return -1;
	*out = v;
	return 0;
}

static unsigned long long
dur_mult(int u)
{
	switch (u) {
	case '\0':
	case 's':
		return 1;
	case 'm':
		return 60;
	case 'h':
		return 3600;
	case 'd':
		return 86400;
	case 'w':
		return 7 * 86400;
	}
	return 0;
}

static unsigned long long
size_mult(int u)
{
	switch (u) {
	case '\0':
	case 'b':
		return 1;
	case 'k':
		return 1ULL << 10;
	case 'm':
		return 1ULL << 20;
	case 'g':
		return 1ULL << 30;
	}
	return 0;
}

/* The implementation may refuse over-long text (a fixed buffer) but must
 * never accept what the reference refuses, nor return another value. */
static void
compare(const char *what, const char *s, enum rc rc, unsigned long long got,
    int ref, unsigned long long want, size_t maxlen)
{
	(void)what;
	if (ref != 0)
		FUZZ_ASSERT(rc != RC_OK);
	else if (rc == RC_OK)
		FUZZ_ASSERT(got == want);
	else
		FUZZ_ASSERT(strlen(s) > maxlen);
}

static void
check_score_fmt(int32_t sc, size_t len)
{
	char	 buf[32], *end;
	double	 d;
	size_t	 n, i;

	memset(buf, 'X', sizeof(buf));
	score_fmt(sc, buf, 16);
	n = strnlen(buf, 16);
	FUZZ_ASSERT(n < 16);
	/* -?[0-9]+\.[0-9]{1,2} */
	i = buf[0] == '-' ? 1 : 0;
	FUZZ_ASSERT(isdigit((unsigned char)buf[i]));
	while (isdigit((unsigned char)buf[i]))
		i++;
	FUZZ_ASSERT(buf[i] == '.');
	FUZZ_ASSERT(n - i - 1 == 1 || n - i - 1 == 2);
	FUZZ_ASSERT(isdigit((unsigned char)buf[i + 1]) &&
	    (n - i - 1 == 1 || isdigit((unsigned char)buf[i + 2])));
	/* two decimals only when the second is not 0 */
	FUZZ_ASSERT(n - i - 1 == 1 || buf[i + 2] != '0');
	d = strtod(buf, &end);
	FUZZ_ASSERT(*end == '\0');
	FUZZ_ASSERT((long long)llround(d * 100.0) == (long long)sc);
	FUZZ_ASSERT((sc < 0) == (buf[0] == '-'));
	/* a short buffer truncates but stays terminated */
	memset(buf, 'X', sizeof(buf));
	score_fmt(sc, buf, len);
	if (len > 0)
		FUZZ_ASSERT(memchr(buf, '\0', len) != NULL);
	FUZZ_ASSERT(buf[len] == 'X');
}

static void
check_score_double(double d)
{
	int32_t	 out = 12345678;
	enum rc	 rc = score_from_double(d, &out);

	if (isfinite(d) && fabs(d) <= 10000.0) {
		FUZZ_ASSERT(rc == RC_OK);
		FUZZ_ASSERT(out >= -1000000 && out <= 1000000);
		FUZZ_ASSERT(fabs((double)out - d * 100.0) <= 0.5);
	} else {
		FUZZ_ASSERT(rc != RC_OK);
		FUZZ_ASSERT(out == 12345678);
	}
}

static void
check_mode(const char *s)
{
	unsigned	 got = 0, want = 0;
	enum rc		 rc = parse_mode(s, &got);
	size_t		 n = strlen(s), i;
	int		 ok = n >= 1 && n <= 5;

	for (i = 0; ok && i < n; i++) {
		if (s[i] < '0' || s[i] > '7')
			ok = 0;
		else
			want = want * 8 + (unsigned)(s[i] - '0');
	}
	ok = ok && want <= 07777;
	FUZZ_ASSERT((rc == RC_OK) == ok);
	if (ok)
		FUZZ_ASSERT(got == want);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_quiet(argc, argv);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned long long	 min, max, got, want;
	int32_t			 sc;
	uint32_t		 u32;
	double			 d;
	char			*s;
	int			 ref;
	enum rc			 rc;

	if (size < 9)
		return 0;
	max = bounds[data[0] & 15];
	min = bounds[data[0] >> 4];
	memcpy(&u32, data + 1, 4);
	sc = (int32_t)u32;
	memcpy(&d, data + 1, sizeof(d));
	check_score_fmt(sc, data[5] % 17);
	check_score_double(d);
	s = fuzz_cstr(data + 9, size - 9);

	got = 0;
	rc = parse_uint(s, min, max, &got);
	ref = ref_uint(s, strlen(s), min, max, &want);
	compare("parse_uint", s, rc, got, ref, want, ~(size_t)0);

	got = 0;
	rc = parse_duration(s, max, &got);
	ref = ref_unit(s, max, dur_mult, &want);
	compare("parse_duration", s, rc, got, ref, want, 31);

	got = 0;
	rc = parse_size(s, max, &got);
	ref = ref_unit(s, max, size_mult, &want);
	compare("parse_size", s, rc, got, ref, want, 31);

	check_mode(s);
	free(s);
	return 0;
}
