/*
 * fuzz_common.c - helpers shared by the libFuzzer targets (see fuzz.h):
 * invariant failures, quieting the daemon's stderr log, C strings from
 * raw input, and one temporary file per process for file-reading code.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "log.h"

#include "fuzz.h"

static char	 tmp_path[64];
static int	 tmp_fd = -1;
static int	 report_fd = STDERR_FILENO;	/* survives fuzz_quiet() */

void
fuzz_fail(const char *file, int line, const char *what)
{
	dprintf(report_fd, "%s:%d: invariant failed: %s\n", file, line,
	    what);
	abort();
}

void
fuzz_quiet(int *argc, char ***argv)
{
	static char	 flag[] = "-close_fd_mask=2";
	char		**nv;
	int		 i;

	log_open("fuzz", LOG_MAIL, 1);
	if (getenv("FUZZ_VERBOSE") != NULL) {
		log_set_level(LOG_DEBUG);
		return;
	}
	log_set_level(LOG_ERR);
	/*
	 * Decision lines are written to fd 2 whatever the level.  A plain
	 * dup2() of /dev/null onto fd 2 here would also swallow libFuzzer's
	 * statistics and the crash reports, so let libFuzzer do it: with
	 * -close_fd_mask=2 it moves its own output and the sanitizers' to a
	 * duplicate of stderr, then dup2()s /dev/null onto fd 2.  Flags are
	 * parsed after LLVMFuzzerInitialize, so adding one here works.
	 */
	for (i = 1; i < *argc; i++)
		if (strncmp((*argv)[i], "-close_fd_mask=", 15) == 0)
			return;
	if ((report_fd = dup(STDERR_FILENO)) == -1)
		report_fd = STDERR_FILENO;
	nv = calloc((size_t)*argc + 2, sizeof(*nv));
	if (nv == NULL)
		return;
	for (i = 0; i < *argc; i++)
		nv[i] = (*argv)[i];
	nv[i++] = flag;
	nv[i] = NULL;
	*argv = nv;
	*argc = i;
}

char *
fuzz_cstr(const uint8_t *data, size_t size)
{
	char	*s;

	s = malloc(size + 1);
	if (s == NULL)
		abort();
	if (size > 0)
		memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

static void
tmp_cleanup(void)
{
	if (tmp_fd != -1) {
		(void)close(tmp_fd);
		(void)unlink(tmp_path);
		tmp_fd = -1;
	}
}

/*
 * The file is unlinked at once and read back through /proc/self/fd/N, so
 * that a run that crashes (no atexit handlers then) leaves nothing behind
 * in /tmp; without /proc it is named as made and removed at exit.
 */
const char *
fuzz_tmpfile(const char *tag)
{
	static char	 proc_path[64];

	if (tmp_fd != -1)
		return proc_path[0] != '\0' ? proc_path : tmp_path;
	(void)snprintf(tmp_path, sizeof(tmp_path), "/tmp/portero-%s.XXXXXX",
	    tag);
	tmp_fd = mkstemp(tmp_path);
	if (tmp_fd == -1) {
		dprintf(report_fd, "mkstemp %s: %s\n", tmp_path,
		    strerror(errno));
		abort();
	}
	(void)snprintf(proc_path, sizeof(proc_path), "/proc/self/fd/%d",
	    tmp_fd);
	if (access(proc_path, R_OK) == 0 && unlink(tmp_path) == 0)
		return proc_path;
	proc_path[0] = '\0';
	(void)atexit(tmp_cleanup);
	return tmp_path;
}

void
fuzz_tmpfile_write(const void *p, size_t n)
{
	const char	*c = p;
	size_t		 off = 0;
	ssize_t		 w;

	if (tmp_fd == -1 || ftruncate(tmp_fd, 0) != 0)
		abort();
	while (off < n) {
		w = pwrite(tmp_fd, c + off, n - off, (off_t)off);
		if (w <= 0) {
			if (w == -1 && errno == EINTR)
				continue;
			abort();
		}
		off += (size_t)w;
	}
}
