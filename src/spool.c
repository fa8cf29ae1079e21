/*
 * spool.c - one message's content in memory up to a limit, in a private
 * temporary file beyond it (spool.h).
 *
 * The file is made by mkstemp() (mode 0600) in the configured directory
 * and unlinked at once, so nothing is left behind whatever happens to
 * the message or the process; only a crash inside that window can leave
 * a "portero-*" file, which spool_cleanup_dir() removes at start.  The
 * memory part is copied into the file when the limit is passed, so the
 * content is always in exactly one place.  A spool belongs to one
 * message: not thread-safe.
 */
#include <sys/mman.h>
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spool.h"

#define SPOOL_PREFIX	"portero-"

struct spool {
	size_t		 limit;
	char		*dir;
	unsigned char	*mem;		/* content while in memory */
	size_t		 len, cap;
	int		 fd;		/* the file, or the memfd; -1 */
	int		 in_file;	/* content lives in fd */
	uint64_t	 size;		/* bytes appended */
	void		*map;		/* mmap of the file, or NULL */
	size_t		 map_len;
};

struct spool *
spool_new(size_t memory_limit, const char *dir)
{
	struct spool	*s;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	if ((s->dir = strdup(dir != NULL && *dir != '\0' ? dir : "/tmp")) ==
	    NULL) {
		free(s);
		return NULL;
	}
	s->limit = memory_limit;
	s->fd = -1;
	return s;
}

static void
unmap(struct spool *s)
{
	if (s->map != NULL)
		(void)munmap(s->map, s->map_len);
	s->map = NULL;
	s->map_len = 0;
}

void
spool_free(struct spool *s)
{
	if (s == NULL)
		return;
	unmap(s);
	if (s->fd >= 0)
		(void)close(s->fd);
	free(s->mem);
	free(s->dir);
	free(s);
}

static enum rc
write_all(int fd, const void *p, size_t n, struct err *e)
{
	const unsigned char	*q = p;
	ssize_t			 w;

	while (n > 0) {
		w = write(fd, q, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			err_set(e, "spool: write: %s", w < 0 ?
			    strerror(errno) : "short write");
			return RC_TEMP;
		}
		q += w;
		n -= (size_t)w;
	}
	return RC_OK;
}

/* Moves the content into a new unlinked temporary file. */
static enum rc
to_file(struct spool *s, struct err *e)
{
	char	 path[PATH_MAX];
	int	 fd, n;
	enum rc	 rc;

	n = snprintf(path, sizeof(path), "%s/" SPOOL_PREFIX "XXXXXX", s->dir);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		err_set(e, "spool: directory name too long");
		return RC_TEMP;
	}
	if ((fd = mkostemp(path, O_CLOEXEC)) < 0) {
		err_set(e, "spool: cannot create a file in %s: %s", s->dir,
		    strerror(errno));
		return RC_TEMP;
	}
	(void)unlink(path);
	if ((rc = write_all(fd, s->mem, s->len, e)) != RC_OK) {
		(void)close(fd);
		return rc;
	}
	if (s->fd >= 0)			/* a memfd made by spool_fd() */
		(void)close(s->fd);
	unmap(s);
	s->fd = fd;
	s->in_file = 1;
	free(s->mem);
	s->mem = NULL;
	s->len = s->cap = 0;
	return RC_OK;
}

enum rc
spool_append(struct spool *s, const void *p, size_t n, struct err *e)
{
	unsigned char	*m;
	size_t		 cap;

	if (n == 0)
		return RC_OK;
	if (!s->in_file && s->len + n > s->limit) {
		enum rc rc = to_file(s, e);

		if (rc != RC_OK)
			return rc;
	}
	if (s->in_file) {
		enum rc rc;

		unmap(s);
		if ((rc = write_all(s->fd, p, n, e)) != RC_OK)
			return rc;
		s->size += n;
		return RC_OK;
	}
	if (s->fd >= 0) {		/* memfd copy is stale now */
		(void)close(s->fd);
		s->fd = -1;
	}
	if (s->len + n > s->cap) {
		cap = s->cap > 0 ? s->cap : 4096;
		while (cap < s->len + n)
			cap *= 2;
		if (cap > s->limit)
			cap = s->limit;
		if ((m = realloc(s->mem, cap)) == NULL)
			return RC_NOMEM;
		s->mem = m;
		s->cap = cap;
	}
	memcpy(s->mem + s->len, p, n);
	s->len += n;
	s->size += n;
	return RC_OK;
}

uint64_t
spool_size(const struct spool *s)
{
	return s->size;
}

int
spool_in_file(const struct spool *s)
{
	return s->in_file;
}

const unsigned char *
spool_data(struct spool *s, size_t *len, struct err *e)
{
	static const unsigned char empty[1];

	if (!s->in_file) {
		*len = s->len;
		return s->len > 0 ? s->mem : empty;
	}
	if (s->size > SIZE_MAX) {
		err_set(e, "spool: message too large to map");
		return NULL;
	}
	if (s->map == NULL && s->size > 0) {
		s->map = mmap(NULL, (size_t)s->size, PROT_READ, MAP_PRIVATE,
		    s->fd, 0);
		if (s->map == MAP_FAILED) {
			s->map = NULL;
			err_set(e, "spool: mmap: %s", strerror(errno));
			return NULL;
		}
		s->map_len = (size_t)s->size;
	}
	*len = (size_t)s->size;
	return s->map != NULL ? s->map : empty;
}

int
spool_fd(struct spool *s, struct err *e)
{
	int	 fd;

	if (s->fd >= 0)
		return s->fd;
	if ((fd = memfd_create("portero-msg", MFD_CLOEXEC |
	    MFD_ALLOW_SEALING)) < 0) {
		err_set(e, "spool: memfd_create: %s", strerror(errno));
		return -1;
	}
	if (write_all(fd, s->mem, s->len, e) != RC_OK) {
		(void)close(fd);
		return -1;
	}
	/* read-only from now on, for everyone: the scanners get it as it is
	 * and may map it; it never changes or shrinks under them */
	(void)fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK |
	    F_SEAL_GROW | F_SEAL_SEAL);
	s->fd = fd;
	return fd;
}

int
spool_cleanup_dir(const char *dir)
{
	DIR		*d;
	struct dirent	*de;
	int		 n = 0;

	if ((d = opendir(dir)) == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, SPOOL_PREFIX,
		    sizeof(SPOOL_PREFIX) - 1) != 0 ||
		    strlen(de->d_name) != sizeof(SPOOL_PREFIX) - 1 + 6)
			continue;
		if (unlinkat(dirfd(d), de->d_name, 0) == 0)
			n++;
	}
	(void)closedir(d);
	return n;
}
