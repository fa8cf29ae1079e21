/*
 * fuzz.h - shared declarations of the libFuzzer targets in tests/fuzz/:
 * the entry points libFuzzer calls, and small helpers (fuzz_common.c) to
 * silence the daemon's log and to hand input to code that reads files.
 */
#ifndef PORTERO_FUZZ_H
#define PORTERO_FUZZ_H

#include <stddef.h>
#include <stdint.h>

/* libFuzzer entry points. */
int	LLVMFuzzerInitialize(int *, char ***);
int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* Abort with a message when an invariant does not hold. */
#define FUZZ_ASSERT(cond)	((cond) ? (void)0 : \
	fuzz_fail(__FILE__, __LINE__, #cond))

void	fuzz_fail(const char *, int, const char *)
	    __attribute__((noreturn));

/*
 * Unless FUZZ_VERBOSE is set: log only errors, and have libFuzzer point
 * stderr (fd 2, where the daemon logs) at /dev/null while keeping its own
 * output and the sanitizer reports on a duplicate of the real stderr.
 * Call first thing in LLVMFuzzerInitialize, with its arguments.
 */
void	fuzz_quiet(int *, char ***);

/* A NUL-terminated copy of the input (free() it). */
char	*fuzz_cstr(const uint8_t *, size_t);

/* A temporary file made once per process (in /tmp, never left behind);
 * the path to read it by. */
const char *fuzz_tmpfile(const char *tag);
/* Replaces the content of the fuzz_tmpfile() file. */
void	fuzz_tmpfile_write(const void *, size_t);

#endif
