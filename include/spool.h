/*
 * spool.h - one message's content (header and body, as it will be
 * queued) kept in memory up to a limit and in a private temporary file
 * beyond it (SPEC section 2, DATA stage).
 *
 * The file is created with mode 0600 in the spool directory under a name
 * starting with "portero-", and unlinked at once: it disappears on every
 * path (end of message, abort, crash).  spool_cleanup_dir() removes what a
 * crash between creation and unlink could leave, and is run at start.
 * A spool belongs to one message (one thread): not thread-safe.
 */
#ifndef PORTERO_SPOOL_H
#define PORTERO_SPOOL_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct spool;

/* memory_limit: bytes kept in memory before spilling to a file in dir. */
struct spool	*spool_new(size_t memory_limit, const char *dir);
void		 spool_free(struct spool *);
/* RC_OK, RC_NOMEM, or RC_TEMP (file error, e set). */
enum rc		 spool_append(struct spool *, const void *, size_t,
		    struct err *);
uint64_t	 spool_size(const struct spool *);
int		 spool_in_file(const struct spool *);
/* The whole content as one read-only mapping (the memory buffer or an
 * mmap of the file), valid until spool_free or the next append.  NULL
 * with e set on error; an empty spool gives a non-NULL pointer, len 0. */
const unsigned char *spool_data(struct spool *, size_t *len, struct err *);
/* A file descriptor holding the whole content, of its size: the
 * temporary file, or in memory a read-only descriptor of the memfd
 * holding it (or a sealed copy).  Owned by the spool (do not close);
 * readers use pread() or their own dup() and lseek(): its offset is not
 * meaningful.  -1 with e set on error. */
int		 spool_fd(struct spool *, struct err *);
/* A reader of spool_fd() may still be at work (a scan that timed out or
 * failed): its memory is not reused for another message. */
void		 spool_fd_abandon(struct spool *);
/* Removes leftover "portero-*" files in dir; returns how many. */
int		 spool_cleanup_dir(const char *dir);

#endif
