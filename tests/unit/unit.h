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

/* Removes an LMDB store file and its lock file. */
static inline void
unit_lmdb_rm(const char *path)
{
	char	 lock[256];

	(void)snprintf(lock, sizeof(lock), "%s-lock", path);
	(void)unlink(path);
	(void)unlink(lock);
}

/*
 * Start of a pipeline test that uses the store: path (len bytes) names a
 * new LMDB file for tag and this process, removed if left over; the store
 * clock is now; decision lines go to sink.
 */
static inline void
unit_store_begin(char *path, size_t len, const char *tag,
    void (*sink)(const char *))
{
	(void)snprintf(path, len, "/tmp/portero-%s-%ld.lmdb", tag,
	    (long)getpid());
	unit_lmdb_rm(path);
	store_set_clock_offset(0);
	log_set_decision_sink(sink);
}

/* End of it: the process's store closed, no current config, file gone. */
static inline void
unit_store_end(const char *path)
{
	cfg_store_close();
	cfg_install(NULL);
	unit_lmdb_rm(path);
	store_set_clock_offset(0);
}

#endif
