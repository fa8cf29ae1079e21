/*
 * clamd.c - clamd INSTREAM client (see clamd.h): one connection per scan,
 * "zINSTREAM", the message in length-prefixed chunks read with pread()
 * (the descriptor's offset is not touched), a zero-length chunk, then one
 * NUL-terminated reply.  Every connect, write and read waits at most
 * until the caller's deadline.  No shared state: thread-safe.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "clamd.h"
#include "util.h"

enum rc
clamd_addr_parse(const char *spec, struct clamd_addr *a, struct err *e)
{
	struct sockaddr_un	*un = (struct sockaddr_un *)&a->ss;
	struct sockaddr_in	*in4 = (struct sockaddr_in *)&a->ss;
	struct sockaddr_in6	*in6 = (struct sockaddr_in6 *)&a->ss;
	unsigned long long	 port;
	const char		*path = NULL, *at;
	char			 num[8], host[64];
	size_t			 n;
	int			 v6only = 0;

	memset(a, 0, sizeof(*a));
	if (strncmp(spec, "unix:", 5) == 0)
		path = spec + 5;
	else if (strncmp(spec, "local:", 6) == 0)
		path = spec + 6;
	if (path != NULL) {
		if (*path != '/' || strlen(path) >= sizeof(un->sun_path)) {
			err_set(e, "'%s': not an absolute socket path of at "
			    "most %zu bytes", spec, sizeof(un->sun_path) - 1);
			return RC_INVAL;
		}
		un->sun_family = AF_UNIX;
		memcpy(un->sun_path, path, strlen(path) + 1);
		a->len = sizeof(*un);
		(void)snprintf(a->text, sizeof(a->text), "%s", spec);
		return RC_OK;
	}
	if (strncmp(spec, "inet:", 5) == 0)
		spec += 5;
	else if (strncmp(spec, "inet6:", 6) == 0) {
		spec += 6;
		v6only = 1;
	} else {
		err_set(e, "'%s': expected unix:PATH or inet:PORT@ADDRESS",
		    spec);
		return RC_INVAL;
	}
	at = strchr(spec, '@');
	n = at != NULL ? (size_t)(at - spec) : 0;
	if (at == NULL || n == 0 || n >= sizeof(num)) {
		err_set(e, "'%s': expected PORT@ADDRESS", spec);
		return RC_INVAL;
	}
	memcpy(num, spec, n);
	num[n] = '\0';
	if (parse_uint(num, 1, 65535, &port) != RC_OK) {
		err_set(e, "'%s': bad port", spec);
		return RC_INVAL;
	}
	at++;
	n = strlen(at);
	if (n >= 2 && at[0] == '[' && at[n - 1] == ']') {
		at++;
		n -= 2;
	}
	if (n == 0 || n >= sizeof(host)) {
		err_set(e, "'%s': bad address", spec);
		return RC_INVAL;
	}
	memcpy(host, at, n);
	host[n] = '\0';
	if (!v6only && inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons((uint16_t)port);
		a->len = sizeof(*in4);
	} else if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		a->len = sizeof(*in6);
	} else {
		err_set(e, "'%s': the address must be numeric (IPv4 or "
		    "IPv6)", host);
		return RC_INVAL;
	}
	(void)snprintf(a->text, sizeof(a->text), "%s:%llu", host, port);
	return RC_OK;
}

/* Waits for events on fd until the deadline: 1 ready, 0 timeout, -1. */
static int
wait_fd(int fd, short events, uint64_t deadline)
{
	struct pollfd	 p = { fd, events, 0 };
	int		 n;

	do {
		n = poll(&p, 1, ms_until(deadline));
	} while (n < 0 && errno == EINTR);
	return n;
}

static enum rc
send_all(int s, const void *buf, size_t len, uint64_t deadline)
{
	const char	*p = buf;
	ssize_t		 n;
	int		 w;

	while (len > 0) {
		n = send(s, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			return RC_TEMP;
		if ((w = wait_fd(s, POLLOUT, deadline)) == 0)
			return RC_TIMEOUT;
		if (w < 0)
			return RC_TEMP;
	}
	return RC_OK;
}

static int
connect_to(const struct clamd_addr *a, uint64_t deadline, struct err *e)
{
	socklen_t	 len = sizeof(int);
	int		 s, soerr = 0, w;

	s = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	if (s < 0) {
		err_set(e, "socket: %s", strerror(errno));
		return -1;
	}
	if (connect(s, (const struct sockaddr *)&a->ss, a->len) == 0)
		return s;
	if (errno != EINPROGRESS && errno != EAGAIN) {
		err_set(e, "connect %s: %s", a->text, strerror(errno));
		(void)close(s);
		return -1;
	}
	if ((w = wait_fd(s, POLLOUT, deadline)) <= 0) {
		err_set(e, "connect %s: %s", a->text, w == 0 ? "timed out" :
		    strerror(errno));
		(void)close(s);
		return -1;
	}
	if (getsockopt(s, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0 ||
	    soerr != 0) {
		err_set(e, "connect %s: %s", a->text, strerror(soerr != 0 ?
		    soerr : errno));
		(void)close(s);
		return -1;
	}
	return s;
}

/* Streams fd; RC_OK, RC_PERM when clamd stopped reading (it answers
 * early past its StreamMaxLength: the caller reads that reply), or why
 * not. */
static enum rc
stream(int s, int fd, uint64_t deadline, struct err *e)
{
	static const char	 cmd[] = "zINSTREAM";
	unsigned char		*chunk;
	uint32_t		 be;
	off_t			 off = 0;
	ssize_t			 n;
	enum rc			 rc;

	if ((rc = send_all(s, cmd, sizeof(cmd), deadline)) != RC_OK) {
		err_set(e, "sending to clamd: %s", rc == RC_TIMEOUT ?
		    "timed out" : strerror(errno));
		return rc;
	}
	if ((chunk = malloc(4 + CLAMD_CHUNK)) == NULL) {
		err_set(e, "out of memory");
		return RC_NOMEM;
	}
	for (;;) {
		n = pread(fd, chunk + 4, CLAMD_CHUNK, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err_set(e, "reading the message: %s", strerror(errno));
			rc = RC_TEMP;
			break;
		}
		be = htonl((uint32_t)n);
		memcpy(chunk, &be, 4);
		if ((rc = send_all(s, chunk, 4 + (size_t)n, deadline)) !=
		    RC_OK) {
			if (rc == RC_TEMP && (errno == EPIPE ||
			    errno == ECONNRESET))
				rc = RC_PERM;	/* clamd stopped reading */
			err_set(e, "sending to clamd: %s", rc == RC_TIMEOUT ?
			    "timed out" : strerror(errno));
			break;
		}
		if (n == 0)
			break;		/* that was the end marker */
		off += n;
	}
	free(chunk);
	return rc;
}

void
clamd_scan(const struct clamd_addr *a, int fd, uint64_t deadline,
    struct scan_result *r)
{
	struct err	 e;
	char		 buf[CLAMD_REPLY_MAX];
	size_t		 len = 0;
	ssize_t		 n;
	enum rc		 rc;
	int		 s, w;

	memset(r, 0, sizeof(*r));
	err_clear(&e);
	if ((s = connect_to(a, deadline, &e)) < 0) {
		scan_result_set(r, SCAN_ERROR, "clamd: %s", e.msg);
		return;
	}
	rc = stream(s, fd, deadline, &e);
	if (rc != RC_OK && rc != RC_PERM) {
		scan_result_set(r, SCAN_ERROR, "clamd: %s", e.msg);
		(void)close(s);
		return;
	}
	/* one reply, NUL-terminated (z command), then clamd closes */
	while (len < sizeof(buf) && memchr(buf, '\0', len) == NULL) {
		n = recv(s, buf + len, sizeof(buf) - len, MSG_DONTWAIT);
		if (n > 0) {
			len += (size_t)n;
			continue;
		}
		if (n == 0)
			break;
		if (errno != EAGAIN && errno != EINTR)
			break;
		if ((w = wait_fd(s, POLLIN, deadline)) <= 0) {
			scan_result_set(r, SCAN_ERROR, "clamd: %s", w == 0 ?
			    "no reply before the deadline" : strerror(errno));
			(void)close(s);
			return;
		}
	}
	(void)close(s);
	if (len == 0) {
		scan_result_set(r, SCAN_ERROR, "clamd: %s", rc != RC_OK ?
		    e.msg : "connection closed without a reply");
		return;
	}
	clamd_reply_parse(buf, len, r);
}

void
clamd_reply_parse(const char *buf, size_t len, struct scan_result *r)
{
	static const char	 pre[] = "stream: ", found[] = " FOUND";
	static const char	 err[] = " ERROR";
	const char		*nul;
	size_t			 n;

	memset(r, 0, sizeof(*r));
	if ((nul = memchr(buf, '\0', len)) != NULL)
		len = (size_t)(nul - buf);
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		len--;
	if (len == sizeof(pre) - 1 + 2 && memcmp(buf, pre, sizeof(pre) - 1) ==
	    0 && memcmp(buf + sizeof(pre) - 1, "OK", 2) == 0) {
		scan_result_set(r, SCAN_CLEAN, "%s", "");
		return;
	}
	if (len > sizeof(pre) - 1 + sizeof(found) - 1 &&
	    memcmp(buf, pre, sizeof(pre) - 1) == 0 &&
	    memcmp(buf + len - (sizeof(found) - 1), found,
	    sizeof(found) - 1) == 0) {
		n = len - (sizeof(pre) - 1) - (sizeof(found) - 1);
		r->verdict = SCAN_FOUND;
		scanproto_sanitize(r->name, sizeof(r->name),
		    buf + sizeof(pre) - 1, n, 0);
		if (scanproto_is_limit(r->name))
			r->verdict = SCAN_LIMIT;
		return;
	}
	if (len >= sizeof(err) - 1 && memcmp(buf + len - (sizeof(err) - 1),
	    err, sizeof(err) - 1) == 0 && memmem(buf, len,
	    "size limit exceeded", 19) != NULL) {
		scan_result_set(r, SCAN_LIMIT, "clamd.StreamMaxLength");
		return;
	}
	r->verdict = SCAN_ERROR;
	memcpy(r->name, "clamd: ", 7);
	scanproto_sanitize(r->name + 7, sizeof(r->name) - 7, buf, len, 1);
}
