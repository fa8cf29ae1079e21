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
 *
 * In memory, the content goes into an arena: a memfd of memory_limit
 * bytes mapped read-write, with a read-only descriptor of its own that
 * the scanners get (they can neither write it nor map it writable).
 * Arenas are kept in a process-wide pool (mutex) and reused, so a
 * message costs neither heap growth nor fresh pages and the scanners get
 * the content without a copy; an arena given back keeps at most
 * ARENA_KEEP bytes of pages.  spool_fd() truncates the file to the
 * content's length (readers see exactly the message); it is extended
 * again when the arena is reused.  An arena whose scan did not end
 * normally (spool_fd_abandon()) is not reused: a scanner may still read
 * it.  Without memfd or mmap, or beyond ARENA_MAX, the heap holds the
 * content and spool_fd() copies it into a sealed memfd.
 */
#include <sys/mman.h>
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spool.h"

#define SPOOL_PREFIX	"portero-"
#define POOL_MAX	64			/* arenas kept */
#define ARENA_KEEP	(1024 * 1024)		/* bytes of pages kept */
#define ARENA_MAX	((size_t)256 * 1024 * 1024)	/* larger: heap */

struct arena {
	struct arena	*next;
	int		 fd;		/* memfd, read-write */
	int		 ro;		/* the same file read-only, or -1 */
	unsigned char	*map;		/* cap bytes, shared */
	size_t		 cap;
	size_t		 high;		/* bytes that may hold pages */
};

static pthread_mutex_t	 pool_mu = PTHREAD_MUTEX_INITIALIZER;
static struct arena	*pool;
static unsigned		 pool_n;

struct spool {
	size_t		 limit;
	char		*dir;
	struct arena	*ar;		/* content while in memory, or: */
	unsigned char	*mem;		/* the heap when there is no arena */
	int		 lent;		/* ar truncated for spool_fd() */
	int		 abandon;	/* ar not to be reused */
	size_t		 len, cap;
	int		 fd;		/* the file, or the memfd; -1 */
	int		 in_file;	/* content lives in fd */
	uint64_t	 size;		/* bytes appended */
	void		*map;		/* mmap of the file, or NULL */
	size_t		 map_len;
};

static void
arena_free(struct arena *a)
{
	if (a == NULL)
		return;
	if (a->map != NULL)
		(void)munmap(a->map, a->cap);
	if (a->ro >= 0)
		(void)close(a->ro);
	if (a->fd >= 0)
		(void)close(a->fd);
	free(a);
}

static struct arena *
arena_new(size_t cap)
{
	struct arena	*a;
	char		 path[64];
	void		*m;

	if ((a = calloc(1, sizeof(*a))) == NULL)
		return NULL;
	a->ro = -1;
	a->cap = cap;
	if ((a->fd = memfd_create("portero-msg", MFD_CLOEXEC)) < 0 ||
	    ftruncate(a->fd, (off_t)cap) != 0 ||
	    (m = mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_SHARED, a->fd,
	    0)) == MAP_FAILED) {
		arena_free(a);
		return NULL;
	}
	a->map = m;
	(void)snprintf(path, sizeof(path), "/proc/self/fd/%d", a->fd);
	a->ro = open(path, O_RDONLY | O_CLOEXEC);	/* -1: no /proc */
	return a;
}

/* An arena of cap bytes from the pool, or a new one; NULL if none.
 * Arenas of another size (memory_limit changed by a reload) are freed
 * on the way. */
static struct arena *
arena_take(size_t cap)
{
	struct arena	*a, *old = NULL;

	(void)pthread_mutex_lock(&pool_mu);
	while ((a = pool) != NULL) {
		pool = a->next;
		pool_n--;
		if (a->cap == cap)
			break;
		a->next = old;
		old = a;
	}
	(void)pthread_mutex_unlock(&pool_mu);
	while (old != NULL) {
		struct arena *next = old->next;

		arena_free(old);
		old = next;
	}
	return a != NULL ? a : arena_new(cap);
}

/* Back to the pool, with its pages beyond ARENA_KEEP released. */
static void
arena_give(struct arena *a)
{
	if (a->high > ARENA_KEEP) {
		if (fallocate(a->fd, FALLOC_FL_PUNCH_HOLE |
		    FALLOC_FL_KEEP_SIZE, ARENA_KEEP, (off_t)(a->cap -
		    ARENA_KEEP)) != 0) {
			arena_free(a);
			return;
		}
		a->high = ARENA_KEEP;
	}
	a->next = NULL;
	(void)pthread_mutex_lock(&pool_mu);
	if (pool_n < POOL_MAX) {
		a->next = pool;
		pool = a;
		pool_n++;
		a = NULL;
	}
	(void)pthread_mutex_unlock(&pool_mu);
	arena_free(a);
}

/* The spool's arena back (or freed), its file extended to the arena's
 * size again if spool_fd() truncated it. */
static void
arena_release(struct spool *s)
{
	struct arena	*a = s->ar;

	s->ar = NULL;
	if (a == NULL)
		return;
	if (s->abandon || (s->lent && ftruncate(a->fd, (off_t)a->cap) != 0))
		arena_free(a);
	else
		arena_give(a);
	s->lent = 0;
	s->abandon = 0;
}

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
	arena_release(s);
	free(s->mem);
	free(s->dir);
	free(s);
}

void
spool_fd_abandon(struct spool *s)
{
	if (s != NULL)
		s->abandon = 1;
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
	if ((rc = write_all(fd, s->ar != NULL ? s->ar->map : s->mem, s->len,
	    e)) != RC_OK) {
		(void)close(fd);
		return rc;
	}
	if (s->fd >= 0)			/* a memfd made by spool_fd() */
		(void)close(s->fd);
	unmap(s);
	s->fd = fd;
	s->in_file = 1;
	arena_release(s);
	free(s->mem);
	s->mem = NULL;
	s->len = s->cap = 0;
	return RC_OK;
}

/* The memory part in the arena: RC_OK, or RC_INVAL to use the heap. */
static enum rc
arena_append(struct spool *s, const void *p, size_t n)
{
	size_t	 cap;

	if (s->ar == NULL) {
		if (s->mem != NULL || s->limit == 0 || s->limit > ARENA_MAX)
			return RC_INVAL;
		cap = (s->limit + 4095) & ~(size_t)4095;
		if ((s->ar = arena_take(cap)) == NULL)
			return RC_INVAL;
	}
	if (s->lent) {		/* truncated by spool_fd(): size again */
		if (ftruncate(s->ar->fd, (off_t)s->ar->cap) != 0)
			return RC_TEMP;
		s->lent = 0;
	}
	memcpy(s->ar->map + s->len, p, n);
	s->len += n;
	s->size += n;
	if (s->len > s->ar->high)
		s->ar->high = s->len;
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
	switch (arena_append(s, p, n)) {
	case RC_OK:
		return RC_OK;
	case RC_INVAL:
		break;			/* the heap */
	default:
		err_set(e, "spool: ftruncate: %s", strerror(errno));
		return RC_TEMP;
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
		return s->len == 0 ? empty : s->ar != NULL ? s->ar->map :
		    s->mem;
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
	if (s->ar != NULL) {
		/* the arena, cut to the message for its readers */
		if (!s->lent && ftruncate(s->ar->fd, (off_t)s->len) != 0) {
			err_set(e, "spool: ftruncate: %s", strerror(errno));
			return -1;
		}
		s->lent = 1;
		return s->ar->ro >= 0 ? s->ar->ro : s->ar->fd;
	}
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
