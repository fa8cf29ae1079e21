/*
 * smtpc.c - the SMTP client of recipient verification callouts (see
 * smtpc.h): a strict incremental reply parser, and sessions on a
 * non-blocking TCP socket where every connect, write and read waits with
 * poll() at most until the caller's absolute deadline (now_ms() clock).
 *
 * The parser is plain data and thread-safe per parser.  A session owns
 * its socket and its read buffer and belongs to one thread at a time.
 * Nothing here raises SIGPIPE (send() with MSG_NOSIGNAL) or leaks the
 * socket into children (SOCK_CLOEXEC).
 */
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "smtpc.h"
#include "util.h"

#define ADDR_MAX	512	/* longest address we put in RCPT TO:<> */
#define HELO_MAX	255
#define CMD_MAX		(ADDR_MAX + 16)	/* "RCPT TO:<" addr ">\r\n" */
#define INBUF_SIZE	4096

struct smtpc {
	int		 fd;
	int		 usable;	/* no error seen, no 421 */
	size_t		 inoff;		/* unparsed: inbuf[inoff..inlen) */
	size_t		 inlen;
	char		 inbuf[INBUF_SIZE];
	char		 peer[];	/* "host:port", "[v6]:port" */
};

/*
 * The parser.  A line is "DDD-text" (more lines follow), "DDD text" or
 * "DDD" (the last line), ended by CRLF or a bare LF; the first digit is
 * 2..5 and every line of a reply carries the same code.  The code and
 * separator are checked as their bytes arrive, so garbage is refused
 * without waiting for the end of the line.  A CR right before the LF
 * belongs to the line end; any other CR is a content byte.  The first
 * line's text is copied as it arrives: a CR is stored as is until the
 * next byte says whether it was the line end (then dropped) or not (then
 * '?', like every other non-printable byte).
 */

void
smtp_parser_init(struct smtp_parser *p)
{
	memset(p, 0, sizeof(*p));
}

/* The code of the current line (head[0..2], checked digits) against the
 * reply's; 0 if it matches or is the first. */
static int
parser_code(struct smtp_parser *p)
{
	int	 code;

	code = (p->head[0] - '0') * 100 + (p->head[1] - '0') * 10 +
	    (p->head[2] - '0');
	if (p->r.lines == 0) {
		p->r.code = code;
		return 0;
	}
	return code == p->r.code ? 0 : -1;
}

/* Text byte number idx of the first line. */
static void
parser_text(struct smtp_parser *p, size_t idx, unsigned char c)
{
	const size_t	 cap = SMTPC_TEXT_MAX - 1;

	/* a CR followed by something else than LF is content */
	if (idx > 0 && idx - 1 < cap && p->r.text[idx - 1] == '\r')
		p->r.text[idx - 1] = '?';
	if (idx < cap)
		p->r.text[idx] = c == '\r' || (c >= 0x20 && c < 0x7f) ?
		    (char)c : '?';
}

/* One byte of a line (not the LF); -1 if the reply is malformed. */
static int
parser_byte(struct smtp_parser *p, unsigned char c)
{
	size_t	 n = p->linelen;

	/* SMTPC_LINE_MAX bytes, then room for the CR of the line end */
	if (n >= SMTPC_LINE_MAX && !(n == SMTPC_LINE_MAX && c == '\r'))
		return -1;
	p->linelen = n + 1;
	if (n < 3) {
		p->head[n] = (char)c;
		if (n == 0)
			return c >= '2' && c <= '5' ? 0 : -1;
		return c >= '0' && c <= '9' ? 0 : -1;
	}
	if (n == 3) {
		p->head[3] = (char)c;
		if (c == '-')
			p->last = 0;
		else if (c == ' ' || c == '\r')
			p->last = 1;	/* "DDD\r" must be "DDD\r\n" */
		else
			return -1;
		return parser_code(p);
	}
	if (p->head[3] == '\r')
		return -1;
	if (p->r.lines == 0)
		parser_text(p, n - 4, c);
	return 0;
}

/* The LF of a line. */
static enum smtp_parse
parser_eol(struct smtp_parser *p)
{
	const size_t	 cap = SMTPC_TEXT_MAX - 1;
	size_t		 n = p->linelen;

	if (n < 3)
		return SMTP_PARSE_BAD;
	if (n == 3) {
		p->last = 1;
		if (parser_code(p) != 0)
			return SMTP_PARSE_BAD;
	}
	if (n > 4 && p->r.lines == 0 && n - 5 < cap &&
	    p->r.text[n - 5] == '\r')
		p->r.text[n - 5] = '\0';
	p->r.lines++;
	if (p->last)
		return SMTP_PARSE_DONE;
	if (p->r.lines >= SMTPC_LINES_MAX)
		return SMTP_PARSE_BAD;		/* a line more is too many */
	p->linelen = 0;
	p->last = 0;
	return SMTP_PARSE_MORE;
}

enum smtp_parse
smtp_parser_feed(struct smtp_parser *p, const char *buf, size_t len,
    size_t *used)
{
	enum smtp_parse	 rv = SMTP_PARSE_MORE;
	size_t		 i;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)buf[i];

		p->started = 1;
		if (c != '\n') {
			if (parser_byte(p, c) != 0) {
				rv = SMTP_PARSE_BAD;
				break;
			}
			continue;
		}
		rv = parser_eol(p);
		if (rv == SMTP_PARSE_DONE)
			i++;		/* the LF is part of the reply */
		if (rv != SMTP_PARSE_MORE)
			break;
	}
	if (used != NULL)
		*used = i;
	return rv;
}

/*
 * Sessions.
 */

/* Waits for events on fd until the deadline: RC_OK (ready, or an error
 * the next call will report), RC_TIMEOUT, or RC_TEMP with errno. */
static enum rc
wait_fd(int fd, short events, uint64_t deadline)
{
	struct pollfd	 pfd;
	uint64_t	 now, left;
	int		 n;

	pfd.fd = fd;
	pfd.events = events;
	for (;;) {
		now = now_ms();
		if (now >= deadline)
			return RC_TIMEOUT;
		left = deadline - now;
		pfd.revents = 0;
		n = poll(&pfd, 1, left > INT_MAX ? INT_MAX : (int)left);
		if (n > 0)
			return RC_OK;
		if (n < 0 && errno != EINTR)
			return RC_TEMP;
	}
}

static struct smtpc *
session_new(const char *host, unsigned port)
{
	struct smtpc	*s;
	size_t		 size;
	int		 v6 = strchr(host, ':') != NULL;

	size = strlen(host) + sizeof("[]:4294967295");
	s = malloc(sizeof(*s) + size);
	if (s == NULL)
		return NULL;
	s->fd = -1;
	s->usable = 0;
	s->inoff = s->inlen = 0;
	(void)snprintf(s->peer, size, v6 ? "[%s]:%u" : "%s:%u", host, port);
	return s;
}

static void
session_free(struct smtpc *s)
{
	if (s->fd != -1)
		(void)close(s->fd);
	free(s);
}

/* One address: 0 and a connected socket in *fdp, or -1 with errno (0 for
 * a timeout). */
static int
try_connect(const struct addrinfo *ai, uint64_t deadline, int *fdp)
{
	socklen_t	 len;
	enum rc		 rc;
	int		 fd, on = 1, soerr = 0, saved;

	*fdp = -1;
	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, ai->ai_protocol);
	if (fd == -1)
		return -1;
	/* commands are whole lines written at once: no Nagle delay */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
		*fdp = fd;
		return 0;
	}
	if (errno != EINPROGRESS && errno != EINTR)
		goto fail;
	rc = wait_fd(fd, POLLOUT, deadline);
	if (rc == RC_TIMEOUT)
		errno = 0;
	if (rc != RC_OK)
		goto fail;
	len = sizeof(soerr);
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == -1)
		goto fail;
	if (soerr != 0) {
		errno = soerr;
		goto fail;
	}
	*fdp = fd;
	return 0;
fail:
	saved = errno;
	(void)close(fd);
	errno = saved;
	return -1;
}

/* Connects to the first address of host that answers before the
 * deadline. */
static enum rc
session_connect(struct smtpc *s, const char *host, unsigned port,
    uint64_t deadline, struct err *e)
{
	struct addrinfo	 hints, *res0 = NULL, *ai;
	char		 service[16];
	int		 gerr, fd, last = 0;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_protocol = IPPROTO_TCP;
	hints.ai_flags = AI_NUMERICSERV;
	(void)snprintf(service, sizeof(service), "%u", port);
	/* a name not in /etc/hosts may take a DNS lookup not bounded by
	 * the deadline: callout targets are configured internal hosts */
	gerr = getaddrinfo(host, service, &hints, &res0);
	if (gerr != 0) {
		err_set(e, "callout %s: cannot resolve the host: %s", s->peer,
		    gerr == EAI_SYSTEM ? strerror(errno) : gai_strerror(gerr));
		return RC_TEMP;
	}
	for (ai = res0; ai != NULL; ai = ai->ai_next) {
		if (now_ms() >= deadline) {
			last = 0;
			break;
		}
		if (try_connect(ai, deadline, &fd) == 0) {
			s->fd = fd;
			freeaddrinfo(res0);
			return RC_OK;
		}
		last = errno;
	}
	freeaddrinfo(res0);
	if (last == 0)
		err_set(e, "callout %s: timeout connecting", s->peer);
	else
		err_set(e, "callout %s: connect: %s", s->peer, strerror(last));
	return last == 0 ? RC_TIMEOUT : RC_TEMP;
}

/* Writes all of buf before the deadline; what names it in errors. */
static enum rc
send_all(struct smtpc *s, const char *buf, size_t len, const char *what,
    uint64_t deadline, struct err *e)
{
	size_t	 off = 0;
	ssize_t	 w;
	enum rc	 rc;

	while (off < len) {
		w = send(s->fd, buf + off, len - off, MSG_NOSIGNAL);
		if (w > 0) {
			off += (size_t)w;
			continue;
		}
		if (w == -1 && errno == EINTR)
			continue;
		if (w == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			rc = wait_fd(s->fd, POLLOUT, deadline);
			if (rc == RC_OK)
				continue;
			if (rc == RC_TIMEOUT) {
				err_set(e, "callout %s: timeout sending %s",
				    s->peer, what);
				s->usable = 0;
				return RC_TIMEOUT;
			}
		}
		err_set(e, "callout %s: sending %s: %s", s->peer, what,
		    w == 0 ? "nothing written" : strerror(errno));
		s->usable = 0;
		return RC_TEMP;
	}
	return RC_OK;
}

/*
 * Reads one reply before the deadline into *r.  cmd is the command it
 * answers (NULL: the greeting).  Bytes after the reply stay buffered for
 * the next one.  Any failure makes the session unusable.
 */
static enum rc
read_reply(struct smtpc *s, const char *cmd, uint64_t deadline,
    struct smtp_reply *r, struct err *e)
{
	struct smtp_parser	 p;
	enum smtp_parse		 st;
	size_t			 used;
	ssize_t			 n;
	enum rc			 rc;
	const char		*what = cmd != NULL ? cmd : "the greeting";

	smtp_parser_init(&p);
	for (;;) {
		if (s->inoff < s->inlen) {
			st = smtp_parser_feed(&p, s->inbuf + s->inoff,
			    s->inlen - s->inoff, &used);
			s->inoff += used;
			switch (st) {
			case SMTP_PARSE_DONE:
				*r = p.r;
				if (r->code == 421)
					s->usable = 0;	/* it is closing */
				return RC_OK;
			case SMTP_PARSE_BAD:
				*r = p.r;
				err_set(e, "callout %s: malformed %s%s",
				    s->peer, cmd != NULL ? "reply to " :
				    "greeting", cmd != NULL ? cmd : "");
				rc = RC_INVAL;
				goto fail;
			case SMTP_PARSE_MORE:
				break;
			}
		}
		s->inoff = s->inlen = 0;
		n = recv(s->fd, s->inbuf, sizeof(s->inbuf), 0);
		if (n > 0) {
			s->inlen = (size_t)n;
			continue;
		}
		if (n == 0) {
			err_set(e, "callout %s: connection closed %s %s%s",
			    s->peer, p.started ? "during" : "before",
			    cmd != NULL ? "the reply to " : "", what);
			rc = RC_TEMP;
			goto fail;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK) {
			err_set(e, "callout %s: reading %s%s: %s", s->peer,
			    cmd != NULL ? "the reply to " : "", what,
			    strerror(errno));
			rc = RC_TEMP;
			goto fail;
		}
		rc = wait_fd(s->fd, POLLIN, deadline);
		if (rc == RC_TIMEOUT) {
			err_set(e, "callout %s: timeout waiting for %s%s",
			    s->peer, cmd != NULL ? "the reply to " : "", what);
			goto fail;
		}
		if (rc != RC_OK) {
			err_set(e, "callout %s: poll: %s", s->peer,
			    strerror(errno));
			goto fail;
		}
	}
fail:
	s->usable = 0;
	return rc;
}

/* Sends line (with its CRLF) and reads the reply; cmd names it. */
static enum rc
command(struct smtpc *s, const char *cmd, const char *line, uint64_t deadline,
    struct smtp_reply *r, struct err *e)
{
	enum rc	 rc;

	rc = send_all(s, line, strlen(line), cmd, deadline, e);
	if (rc != RC_OK)
		return rc;
	return read_reply(s, cmd, deadline, r, e);
}

/* A 4xx or 5xx before RCPT is SMTPC_TEMP, anything else unexpected
 * SMTPC_ERROR (and the session unusable). */
static enum smtpc_result
refused(struct smtpc *s, const char *step, const struct smtp_reply *r,
    struct err *e)
{
	if (r->code >= 400 && r->code < 600) {
		err_set(e, "callout %s: %s: %d %s", s->peer, step, r->code,
		    r->text);
		return SMTPC_TEMP;
	}
	err_set(e, "callout %s: unexpected reply to %s: %d %s", s->peer, step,
	    r->code, r->text);
	s->usable = 0;
	return SMTPC_ERROR;
}

/*
 * 1 if t has 1..max bytes, each in [lo, 0x7e] (or 8-bit if eightbit) and
 * none of them '<' or '>'.
 */
static int
text_ok(const char *t, size_t max, unsigned char lo, int eightbit)
{
	size_t	 n = 0;

	for (; *t != '\0'; t++, n++) {
		unsigned char c = (unsigned char)*t;

		if (n >= max || c < lo || c == 0x7f || c == '<' || c == '>' ||
		    (c >= 0x80 && !eightbit))
			return 0;
	}
	return n > 0;
}

/* MAIL FROM:<>; 0 if the server took it. */
static int
mail_from(struct smtpc *s, uint64_t deadline, struct smtp_reply *r,
    enum smtpc_result *res, struct err *e)
{
	if (command(s, "MAIL", "MAIL FROM:<>\r\n", deadline, r, e) != RC_OK) {
		*res = SMTPC_ERROR;
		return -1;
	}
	if (r->code / 100 != 2) {
		*res = refused(s, "MAIL FROM:<>", r, e);
		return -1;
	}
	return 0;
}

struct smtpc *
smtpc_open(const char *host, unsigned port, const char *helo,
    uint64_t deadline_ms, enum smtpc_result *res, struct smtp_reply *reply,
    struct err *e)
{
	struct smtpc		*s;
	struct smtp_reply	 r;
	enum smtpc_result	 rv = SMTPC_ERROR;
	char			 line[CMD_MAX];

	memset(&r, 0, sizeof(r));
	err_clear(e);
	s = session_new(host, port);
	if (s == NULL) {
		err_set(e, "callout %s:%u: out of memory", host, port);
		goto fail;
	}
	if (port == 0 || port > 65535) {
		err_set(e, "callout %s: invalid port", s->peer);
		goto fail;
	}
	if (!text_ok(helo, HELO_MAX, 0x21, 0)) {
		err_set(e, "callout %s: invalid HELO name", s->peer);
		goto fail;
	}
	if (session_connect(s, host, port, deadline_ms, e) != RC_OK)
		goto fail;
	s->usable = 1;
	if (read_reply(s, NULL, deadline_ms, &r, e) != RC_OK)
		goto fail;
	if (r.code != 220) {
		rv = refused(s, "greeting", &r, e);
		goto fail;
	}
	(void)snprintf(line, sizeof(line), "EHLO %s\r\n", helo);
	if (command(s, "EHLO", line, deadline_ms, &r, e) != RC_OK)
		goto fail;
	if (r.code / 100 == 5) {
		/* an old server: plain HELO will do for RCPT probes */
		(void)snprintf(line, sizeof(line), "HELO %s\r\n", helo);
		if (command(s, "HELO", line, deadline_ms, &r, e) != RC_OK)
			goto fail;
		if (r.code / 100 != 2) {
			rv = refused(s, "HELO", &r, e);
			goto fail;
		}
	} else if (r.code / 100 != 2) {
		rv = refused(s, "EHLO", &r, e);
		goto fail;
	}
	if (mail_from(s, deadline_ms, &r, &rv, e) != 0)
		goto fail;
	if (res != NULL)
		*res = SMTPC_ACCEPT;
	if (reply != NULL)
		*reply = r;
	return s;
fail:
	if (res != NULL)
		*res = rv;
	if (reply != NULL)
		*reply = r;
	if (s != NULL && rv != SMTPC_TEMP)
		s->usable = 0;
	smtpc_close(s, deadline_ms);	/* QUIT if the server is polite */
	return NULL;
}

enum smtpc_result
smtpc_rcpt(struct smtpc *s, const char *addr, uint64_t deadline_ms,
    struct smtp_reply *reply, struct err *e)
{
	struct smtp_reply	 r;
	enum smtpc_result	 rv;
	char			 line[CMD_MAX];

	memset(&r, 0, sizeof(r));
	err_clear(e);
	if (!s->usable) {
		err_set(e, "callout %s: session unusable", s->peer);
		rv = SMTPC_ERROR;
		goto out;
	}
	/* the address goes inside <> on one line: no way to inject; 8-bit
	 * (UTF-8) addresses are the server's to judge */
	if (!text_ok(addr, ADDR_MAX, 0x20, 1)) {
		err_set(e, "callout %s: address refused for RCPT (empty, too "
		    "long, control bytes or <>)", s->peer);
		rv = SMTPC_ERROR;	/* the session stays usable */
		goto out;
	}
	(void)snprintf(line, sizeof(line), "RCPT TO:<%s>\r\n", addr);
	if (command(s, "RCPT", line, deadline_ms, &r, e) != RC_OK) {
		rv = SMTPC_ERROR;
		goto out;
	}
	switch (r.code / 100) {
	case 2:
		rv = SMTPC_ACCEPT;
		break;
	case 4:
		rv = SMTPC_TEMP;
		err_set(e, "callout %s: %d %s", s->peer, r.code, r.text);
		break;
	case 5:
		rv = SMTPC_REJECT;
		err_set(e, "callout %s: %d %s", s->peer, r.code, r.text);
		break;
	default:
		rv = SMTPC_ERROR;
		s->usable = 0;
		err_set(e, "callout %s: unexpected reply to RCPT: %d %s",
		    s->peer, r.code, r.text);
		break;
	}
out:
	if (reply != NULL)
		*reply = r;
	return rv;
}

int
smtpc_reset(struct smtpc *s, uint64_t deadline_ms, struct err *e)
{
	struct smtp_reply	 r;
	enum smtpc_result	 rv;

	err_clear(e);
	if (!s->usable) {
		err_set(e, "callout %s: session unusable", s->peer);
		return -1;
	}
	if (command(s, "RSET", "RSET\r\n", deadline_ms, &r, e) != RC_OK)
		return -1;
	if (r.code / 100 != 2) {
		(void)refused(s, "RSET", &r, e);
		s->usable = 0;
		return -1;
	}
	if (mail_from(s, deadline_ms, &r, &rv, e) != 0) {
		s->usable = 0;	/* no transaction: RCPT would fail */
		return -1;
	}
	return 0;
}

void
smtpc_close(struct smtpc *s, uint64_t deadline_ms)
{
	struct smtp_reply	 r;
	struct err		 e;

	if (s == NULL)
		return;
	if (s->usable)
		(void)command(s, "QUIT", "QUIT\r\n", deadline_ms, &r, &e);
	session_free(s);
}

int
smtpc_usable(const struct smtpc *s)
{
	return s != NULL && s->usable;
}
