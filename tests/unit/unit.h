/*
 * unit.h - helpers shared by the cmocka unit tests: temporary config
 * files and a context for driving the pipeline without libmilter.
 */
#ifndef PORTERO_UNIT_H
#define PORTERO_UNIT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cfg.h"
#include "log.h"
#include "metrics.h"

/* Writes text to a new temporary file; returns its path (static buffer
 * per call site is not needed: the caller frees with unit_rm). */
static inline char *
unit_tmpfile(const char *text)
{
	char	*path = strdup("/tmp/portero-unit-XXXXXX");
	int	 fd;
	size_t	 n = strlen(text);

	assert_non_null(path);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, n), (ssize_t)n);
	close(fd);
	return path;
}

static inline void
unit_rm(char *path)
{
	unlink(path);
	free(path);
}

/* Loads a config from text; NULL and the error in e on failure. */
static inline struct cfg *
unit_cfg(const char *text, struct err *e)
{
	char		*p = unit_tmpfile(text);
	struct cfg	*c;

	err_clear(e);
	c = cfg_load(p, e);
	unit_rm(p);
	return c;
}

#endif
