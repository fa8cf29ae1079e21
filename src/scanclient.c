/*
 * scanclient.c - the client of the ClamAV scanner service, in the milter
 * process (see scanner.h; the service is scanner.c and scanworker.c):
 * sends each message as a read-only descriptor with its own reply pipe
 * over the request queue, waits for the reply until the deadline, and
 * caps the scans in flight (scan slots).
 *
 * Thread-safe: the queue descriptor and the request id counter are atomic,
 * the slot counter is under a mutex + condition variable; everything
 * else is per call.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "scanner.h"
#include "util.h"

static atomic_int	 client_fd = -1;
static atomic_ullong	 next_id;

static pthread_mutex_t	 slot_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t	 slot_cv;
static pthread_once_t	 slot_once = PTHREAD_ONCE_INIT;
static unsigned		 slot_used, slot_peak;

void
scan_client_set_fd(int fd)
{
	atomic_store(&client_fd, fd);
}

int
scan_client_fd(void)
{
	return atomic_load(&client_fd);
}

static void
slot_init(void)
{
	pthread_condattr_t	 a;

	(void)pthread_condattr_init(&a);
	(void)pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	(void)pthread_cond_init(&slot_cv, &a);
	(void)pthread_condattr_destroy(&a);
}

enum rc
scan_slot_acquire(unsigned max, uint64_t deadline_ms)
{
	struct timespec	 ts;
	enum rc		 rc = RC_OK;

	(void)pthread_once(&slot_once, slot_init);
	ts.tv_sec = (time_t)(deadline_ms / 1000);
	ts.tv_nsec = (long)(deadline_ms % 1000) * 1000000L;
	(void)pthread_mutex_lock(&slot_mu);
	while (slot_used >= (max > 0 ? max : 1) && rc == RC_OK)
		if (pthread_cond_timedwait(&slot_cv, &slot_mu, &ts) ==
		    ETIMEDOUT)
			rc = RC_TIMEOUT;
	if (rc == RC_OK) {
		slot_used++;
		if (slot_used > slot_peak)
			slot_peak = slot_used;
	}
	(void)pthread_mutex_unlock(&slot_mu);
	return rc;
}

void
scan_slot_release(void)
{
	(void)pthread_once(&slot_once, slot_init);
	(void)pthread_mutex_lock(&slot_mu);
	if (slot_used > 0)
		slot_used--;
	(void)pthread_cond_signal(&slot_cv);
	(void)pthread_mutex_unlock(&slot_mu);
}

unsigned
scan_slot_peak(int reset)
{
	unsigned	 p;

	(void)pthread_mutex_lock(&slot_mu);
	p = slot_peak;
	if (reset)
		slot_peak = 0;
	(void)pthread_mutex_unlock(&slot_mu);
	return p;
}

/* A read-only descriptor of its own (own offset) for the message; one
 * opened read-only or a memfd sealed against writing (spool_fd()) goes
 * as it is (-2: use fd itself). */
static int
readonly_fd(int fd)
{
	char	 path[64];
	int	 ro, seals, fl;

	if ((fl = fcntl(fd, F_GETFL)) >= 0 && (fl & O_ACCMODE) == O_RDONLY)
		return -2;
	seals = fcntl(fd, F_GET_SEALS);
	if (seals >= 0 && (seals & F_SEAL_WRITE) && (seals & F_SEAL_SHRINK))
		return -2;
	(void)snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	ro = open(path, O_RDONLY | O_CLOEXEC);
	if (ro < 0)
		ro = fcntl(fd, F_DUPFD_CLOEXEC, 0);	/* no /proc */
	return ro;
}

static enum rc
send_request(int qfd, uint64_t id, int msgfd, int replyfd, uint64_t deadline)
{
	union {
		char		 buf[CMSG_SPACE(2 * sizeof(int))];
		struct cmsghdr	 align;
	} cm;
	char		 line[SCANPROTO_MAX];
	struct msghdr	 mh;
	struct iovec	 iov;
	struct cmsghdr	*c;
	struct pollfd	 p;
	int		 fds[2] = { msgfd, replyfd };

	iov.iov_len = scanproto_request_encode(line, sizeof(line), id);
	iov.iov_base = line;
	memset(&mh, 0, sizeof(mh));
	memset(&cm, 0, sizeof(cm));
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cm.buf;
	mh.msg_controllen = sizeof(cm.buf);
	c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(fds));
	memcpy(CMSG_DATA(c), fds, sizeof(fds));
	for (;;) {
		if (sendmsg(qfd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) >= 0)
			return RC_OK;
		if (errno != EAGAIN && errno != EINTR)
			return RC_TEMP;
		p.fd = qfd;
		p.events = POLLOUT;
		if (poll(&p, 1, ms_until(deadline)) == 0 &&
		    ms_until(deadline) == 0)
			return RC_TIMEOUT;
	}
}

/* a reply is one write to a pipe: whole only up to PIPE_BUF */
_Static_assert(SCANPROTO_MAX <= PIPE_BUF, "scan reply larger than PIPE_BUF");

void
scan_client_scan(int msgfd, uint64_t deadline, struct scan_result *r)
{
	struct pollfd	 p;
	char		 line[SCANPROTO_MAX + 1];
	uint64_t	 id, rid = 0;
	ssize_t		 n;
	enum rc		 rc;
	int		 qfd = scan_client_fd(), ro, rp[2], k;

	memset(r, 0, sizeof(*r));
	if (qfd < 0) {
		scan_result_set(r, SCAN_ERROR, "scanner service not running");
		return;
	}
	if ((ro = readonly_fd(msgfd)) == -1) {
		scan_result_set(r, SCAN_ERROR, "message descriptor: %s",
		    strerror(errno));
		return;
	}
	/* the reply comes back on a pipe: its write end is the scanner's
	 * alone once sent, so EOF means the scanner died; a pipe, not a
	 * socket pair, because a unix socket in flight in SCM_RIGHTS makes
	 * the kernel's unix-socket garbage collector work on every scan */
	if (pipe2(rp, O_CLOEXEC) != 0) {
		scan_result_set(r, SCAN_ERROR, "pipe: %s", strerror(errno));
		if (ro >= 0)
			(void)close(ro);
		return;
	}
	id = atomic_fetch_add(&next_id, 1) + 1;
	rc = send_request(qfd, id, ro >= 0 ? ro : msgfd, rp[1], deadline);
	if (ro >= 0)
		(void)close(ro);
	(void)close(rp[1]);	/* now only the scanner holds it */
	if (rc != RC_OK) {
		scan_result_set(r, SCAN_ERROR, rc == RC_TIMEOUT ? "scanner "
		    "queue full until the deadline" : "cannot queue the scan: "
		    "%s", strerror(errno));
		(void)close(rp[0]);
		return;
	}
	p.fd = rp[0];
	p.events = POLLIN;
	do {
		p.revents = 0;
		k = poll(&p, 1, ms_until(deadline));
	} while (k < 0 && errno == EINTR);
	if (k <= 0 || p.revents == 0) {
		scan_result_set(r, SCAN_ERROR, "scan timed out");
		(void)close(rp[0]);
		return;
	}
	/* one write of at most SCANPROTO_MAX < PIPE_BUF bytes: whole */
	do
		n = read(rp[0], line, sizeof(line));
	while (n < 0 && errno == EINTR);
	(void)close(rp[0]);
	if (n == 0)
		scan_result_set(r, SCAN_ERROR, "scanner process died");
	else if (n < 0)
		scan_result_set(r, SCAN_ERROR, "reading the scan reply: %s",
		    strerror(errno));
	else if (scanproto_reply_parse(line, (size_t)n, &rid, r) != RC_OK ||
	    rid != id)
		scan_result_set(r, SCAN_ERROR, "bad reply from the scanner");
}
