/*
 * scanworker.c - a scanner process of the ClamAV scanner service (see
 * scanner.h; its manager, which forks it, is scanner.c, and what the two
 * share is in scanner_int.h), and the request I/O both use.
 *
 * Scanner: takes one request at a time from the shared queue (recvmsg,
 * SCM_RIGHTS), scans the message descriptor with the engine it inherited
 * from the manager (a read-only mapping of it when it can be mapped),
 * answers on the request's reply pipe, closes both.
 * SIGTERM is only taken between requests; alarm() bounds a scan hard.
 * It works in its own libclamav temporary directory, which the manager
 * removes when it exits (however it died).  The manager's error mode
 * (no engine) answers requests with the same I/O functions.
 *
 * Not thread-safe, and need not be: a scanner is a single-threaded
 * process; its state is what the manager passes at fork (struct
 * scanner_env) and the SIGTERM flag.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <clamav.h>

#include "log.h"
#include "scanner_int.h"
#include "util.h"

/*
 * Request I/O, shared by scanners and the manager's error mode.
 */

/* 1: a request (descriptors -1 when missing), 0: the queue is closed,
 * -1: nothing now. */
int
scanworker_recv(int qfd, struct request *rq)
{
	union {
		char		 buf[CMSG_SPACE(4 * sizeof(int))];
		struct cmsghdr	 align;
	} cm;
	struct msghdr	 mh;
	struct iovec	 iov;
	struct cmsghdr	*c;
	int		 fds[4];
	size_t		 nfd = 0, i;
	ssize_t		 n;

	memset(&mh, 0, sizeof(mh));
	iov.iov_base = rq->buf;
	iov.iov_len = sizeof(rq->buf);
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cm.buf;
	mh.msg_controllen = sizeof(cm.buf);
	rq->msgfd = rq->replyfd = -1;
	n = recvmsg(qfd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (n < 0)
		return -1;
	for (c = CMSG_FIRSTHDR(&mh); c != NULL; c = CMSG_NXTHDR(&mh, c)) {
		size_t k;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (i = 0; i < k; i++)
			if (nfd < NELEM(fds))
				memcpy(&fds[nfd++], CMSG_DATA(c) + i *
				    sizeof(int), sizeof(int));
	}
	if (n == 0 && nfd == 0)
		return 0;
	rq->len = (size_t)n;
	if (nfd == 2 && !(mh.msg_flags & (MSG_CTRUNC | MSG_TRUNC))) {
		rq->msgfd = fds[0];
		rq->replyfd = fds[1];
		return 1;
	}
	for (i = 0; i < nfd; i++)
		(void)close(fds[i]);
	return 1;
}

void
scanworker_reply(struct request *rq, uint64_t id, const struct scan_result *r)
{
	char	 line[SCANPROTO_MAX];
	size_t	 n;

	n = scanproto_reply_encode(line, sizeof(line), id, r);
	/* a pipe (SIGPIPE is ignored here); n < PIPE_BUF: one whole write */
	if (rq->replyfd >= 0 && n > 0 && write(rq->replyfd, line, n) < 0)
		log_msg(LOG_DEBUG, "scan reply not delivered: %s",
		    strerror(errno));
}

void
scanworker_close(struct request *rq)
{
	if (rq->msgfd >= 0)
		(void)close(rq->msgfd);
	if (rq->replyfd >= 0)
		(void)close(rq->replyfd);
	rq->msgfd = rq->replyfd = -1;
}

/*
 * Scanner process.
 */

static volatile sig_atomic_t	 w_stop;

static void
on_term(int sig)
{
	(void)sig;
	w_stop = 1;
}

/*
 * The message mapped into memory and scanned as a libclamav memory map:
 * without it libclamav reads a descriptor with pread() into pages of its
 * own (a copy of every page, and the faults of the fresh pages).  The
 * milter does not change the message while it is scanned (its memory
 * is not reused before the reply, or its copy is sealed against
 * shrinking); should a file shrink anyway, this process
 * dies of SIGBUS and costs the message a tempfail, like any scanner
 * crash.  Empty or unmappable: the descriptor itself.
 */
static cl_error_t
scan_map(const struct scanner_env *env, int fd, const char **vn,
    unsigned long *scanned, struct cl_scan_options *opts, char *cbname)
{
	struct stat	 st;
	cl_fmap_t	*map = NULL;
	void		*p = MAP_FAILED;
	cl_error_t	 rc;

	if (fstat(fd, &st) == 0 && st.st_size > 0 &&
	    (unsigned long long)st.st_size <= SIZE_MAX &&
	    (p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd,
	    0)) != MAP_FAILED)
		map = cl_fmap_open_memory(p, (size_t)st.st_size);
	if (map != NULL) {
		rc = cl_scanmap_callback(map, NULL, vn, scanned, env->engine,
		    opts, cbname);
		cl_fmap_close(map);
	} else
		rc = cl_scandesc_callback(fd, NULL, vn, scanned, env->engine,
		    opts, cbname);
	if (p != MAP_FAILED)
		(void)munmap(p, (size_t)st.st_size);
	return rc;
}

static void
scan_fd(const struct scanner_env *env, int fd, struct scan_result *r)
{
	struct cl_scan_options	 opts;
	const char		*vn = NULL;
	char			 cbname[SCAN_NAME_MAX] = "";
	unsigned long		 scanned = 0;
	cl_error_t		 rc;

	memset(&opts, 0, sizeof(opts));
	opts.general = env->heuristic_alerts ? CL_SCAN_GENERAL_HEURISTICS :
	    0;
	opts.parse = ~0u;	/* every parser, mail (MIME) and archives */
	opts.heuristic = CL_SCAN_HEURISTIC_EXCEEDS_MAX;
	r->gen = env->gen;
	r->sigs = env->sigs;
	(void)lseek(fd, 0, SEEK_SET);
	/* a parser stuck where max_scan_time is not checked */
	(void)alarm(env->timeout + 5);
	rc = scan_map(env, fd, &vn, &scanned, &opts, cbname);
	(void)alarm(0);
	switch (rc) {
	case CL_CLEAN:
		scan_result_set(r, SCAN_CLEAN, "%s", "");
		return;
	case CL_VIRUS:
		if (vn == NULL && cbname[0] == '\0') {
			/* never guess a virus: the pipeline tempfails */
			scan_result_set(r, SCAN_ERROR, "virus reported "
			    "without a name");
			return;
		}
		scan_result_set(r, SCAN_FOUND, "%s", vn != NULL ? vn : cbname);
		if (scanproto_is_limit(r->name))
			r->verdict = SCAN_LIMIT;
		return;
	case CL_ETIMEOUT:
		scan_result_set(r, SCAN_LIMIT, "Heuristics.Limits.Exceeded."
		    "MaxScanTime");
		return;
	case CL_EMAXREC:
		scan_result_set(r, SCAN_LIMIT, "Heuristics.Limits.Exceeded."
		    "MaxRecursion");
		return;
	case CL_EMAXSIZE:
		scan_result_set(r, SCAN_LIMIT, "Heuristics.Limits.Exceeded."
		    "MaxScanSize");
		return;
	case CL_EMAXFILES:
		scan_result_set(r, SCAN_LIMIT, "Heuristics.Limits.Exceeded."
		    "MaxFiles");
		return;
	default:
		scan_result_set(r, SCAN_ERROR, "libclamav: %s",
		    cl_strerror(rc));
		return;
	}
}

/* The client gave up (timed out, or its process died): skip the scan. */
static int
abandoned(int replyfd)
{
	struct pollfd	 p = { replyfd, 0, 0 };

	return poll(&p, 1, 0) > 0 && (p.revents & (POLLHUP | POLLERR));
}

static void
serve_request(const struct scanner_env *env, struct request *rq)
{
	struct scan_result	 r;
	uint64_t		 id = 0;

	memset(&r, 0, sizeof(r));
	r.gen = env->gen;
	r.sigs = env->sigs;
	if (rq->replyfd < 0)
		return;
	if (rq->msgfd < 0 || scanproto_request_parse(rq->buf, rq->len, &id) !=
	    RC_OK) {
		scan_result_set(&r, SCAN_ERROR, "bad request");
		scanworker_reply(rq, id, &r);
		return;
	}
	if (abandoned(rq->replyfd))
		return;
	if (env->delay_ms > 0)
		(void)usleep(env->delay_ms * 1000u);
	scan_fd(env, rq->msgfd, &r);
	scanworker_reply(rq, id, &r);
}

void __attribute__((noreturn))
scanworker_main(const struct scanner_env *env, unsigned slot, const char *tmpdir)
{
	struct sigaction	 sa;
	struct request		 rq;
	struct pollfd		 p;
	sigset_t		 block, waitmask;
	int			 got;

	(void)prctl(PR_SET_NAME, "portero-scan");
	(void)prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	(void)close(env->sfd);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	(void)sigaction(SIGINT, &sa, NULL);
	(void)sigaction(SIGHUP, &sa, NULL);
	(void)sigaction(SIGUSR1, &sa, NULL);
	(void)sigaction(SIGPIPE, &sa, NULL);
	sa.sa_handler = SIG_DFL;
	(void)sigaction(SIGALRM, &sa, NULL);
	(void)sigaction(SIGCHLD, &sa, NULL);
	sa.sa_handler = on_term;	/* no SA_RESTART: ppoll returns */
	(void)sigaction(SIGTERM, &sa, NULL);
	/* SIGTERM only while waiting for a request (ppoll) */
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	(void)sigprocmask(SIG_SETMASK, &block, NULL);
	sigemptyset(&waitmask);

	if (mkdir(tmpdir, 0700) == 0)
		(void)cl_engine_set_str(env->engine, CL_ENGINE_TMPDIR, tmpdir);
	else
		log_msg(LOG_WARNING, "scanner %u: mkdir %s: %s", slot, tmpdir,
		    strerror(errno));
	log_msg(LOG_INFO, "scanner %u (generation %u) started, pid %ld",
	    slot, env->gen, (long)getpid());
	while (!w_stop) {
		p.fd = env->qfd;
		p.events = POLLIN;
		p.revents = 0;
		if (ppoll(&p, 1, NULL, &waitmask) < 0) {
			if (errno == EINTR)
				continue;	/* SIGTERM */
			log_msg(LOG_ERR, "scanner %u: poll: %s", slot,
			    strerror(errno));
			break;
		}
		got = scanworker_recv(env->qfd, &rq);
		if (got == 0)
			break;		/* the queue is closed */
		if (got < 0) {
			if ((p.revents & (POLLHUP | POLLERR)) &&
			    !(p.revents & POLLIN))
				break;
			continue;	/* another scanner took it */
		}
		serve_request(env, &rq);
		scanworker_close(&rq);
	}
	(void)rmdir(tmpdir);
	_exit(0);
}
