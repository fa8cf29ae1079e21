/*
 * util.h - small parsers and string helpers shared by every module.
 *
 * All functions are pure (no global state) and thread-safe.  Parsers never
 * accept trailing garbage and never overflow: out-of-range is RC_INVAL.
 */
#ifndef PORTERO_UTIL_H
#define PORTERO_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))

/* Decimal unsigned integer in [min, max]. */
enum rc	parse_uint(const char *, unsigned long long, unsigned long long,
	    unsigned long long *);
/* "90", "90s", "5m", "4h", "36d", "2w" -> seconds in [0, max]. */
enum rc	parse_duration(const char *, unsigned long long,
	    unsigned long long *);
/* "512", "64K", "50M", "1G" (binary multiples) -> bytes in [0, max]. */
enum rc	parse_size(const char *, unsigned long long, unsigned long long *);
/* Octal file mode "0660" -> mode bits (at most 07777). */
enum rc	parse_mode(const char *, unsigned *);
/* A float score, e.g. 2.5 or -5, to hundredths (250, -500); |s| <= 10000. */
enum rc	score_from_double(double, int32_t *);
/* Formats hundredths as "2.5", "12.25", "-5.0" into buf (>= 16 bytes). */
void	score_fmt(int32_t, char *, size_t);

/* Copies src into dst (size n), always NUL-terminated; returns 0 if it fit,
 * -1 if truncated. */
int	str_copy(char *, const char *, size_t);
void	str_lower(char *);
/* Case-insensitive ASCII equality and suffix test. */
int	str_ieq(const char *, const char *);
int	str_iendswith(const char *, const char *);
/*
 * 0 if a POSIX extended regex from the config compiles to a bounded
 * tree with glibc: at most 256 bytes, no {n,m} bounds, no quantifier of
 * a quantifier ("a++"), at most 8 '+' (glibc copies the operand of each
 * '+' and of each bound, so nesting them grows the tree exponentially).
 * Else -1 with e set.
 */
int	ere_bounded(const char *re, struct err *e);
/* Milliseconds of a monotonic clock. */
uint64_t	now_ms(void);
struct buf;
/* Reads the regular file path whole into b (its maximum bounds the
 * size: a larger file is an error).  0, or -1 with e naming the path. */
int		file_read(const char *path, struct buf *b, struct err *e);
/* A waitpid() status for logs: "exited with status N", "killed by
 * signal N (NAME)". */
void		exit_describe(int status, char *buf, size_t len);
/* Milliseconds from now until deadline (a now_ms() value), 0 if past,
 * at most INT32_MAX: a poll() timeout. */
int		ms_until(uint64_t deadline);

#endif
