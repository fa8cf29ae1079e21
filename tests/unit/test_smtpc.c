/*
 * test_smtpc.c - the callout SMTP client: the reply parser (tables, any
 * chunking, limits) and sessions against an in-process fake server, a
 * thread on a loopback socket that plays a script of replies and records
 * the commands it received.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>

#include "smtpc.h"
#include "unit.h"
#include "util.h"

/*
 * Parser.
 */

struct prow {
	const char		*name;
	const char		*in;
	enum smtp_parse		 want;
	int			 code;		/* DONE rows */
	const char		*text;
	size_t			 lines;
	size_t			 used;		/* DONE rows; 0 = all of in */
};

static const struct prow prows[] = {
	{ "single", "250 2.1.5 Ok\r\n", SMTP_PARSE_DONE, 250, "2.1.5 Ok",
	    1, 0 },
	{ "multi", "250-mx.test\r\n250-PIPELINING\r\n250 SIZE 10\r\n",
	    SMTP_PARSE_DONE, 250, "mx.test", 3, 0 },
	{ "bare code", "250\r\n", SMTP_PARSE_DONE, 250, "", 1, 0 },
	{ "bare code LF", "354\n", SMTP_PARSE_DONE, 354, "", 1, 0 },
	{ "empty text", "221 \r\n", SMTP_PARSE_DONE, 221, "", 1, 0 },
	{ "empty continuation", "220-\r\n220 hi\r\n", SMTP_PARSE_DONE, 220,
	    "", 2, 0 },
	{ "bare code ends multi", "250-a\r\n250\r\n", SMTP_PARSE_DONE, 250,
	    "a", 2, 0 },
	{ "LF only", "550-a b\n550 c\n", SMTP_PARSE_DONE, 550, "a b", 2, 0 },
	{ "mixed line ends", "451-x\r\n451 y\n", SMTP_PARSE_DONE, 451, "x",
	    2, 0 },
	{ "lowest", "200 x\r\n", SMTP_PARSE_DONE, 200, "x", 1, 0 },
	{ "highest", "599 x\r\n", SMTP_PARSE_DONE, 599, "x", 1, 0 },
	{ "bytes after the reply", "250 ok\r\n220 next\r\n",
	    SMTP_PARSE_DONE, 250, "ok", 1, 8 },
	{ "garbage after the reply", "250 ok\r\nxyz", SMTP_PARSE_DONE, 250,
	    "ok", 1, 8 },
	{ "control bytes", "250 a\tb\x01" "c\x7f\xff" "d\r\n", SMTP_PARSE_DONE,
	    250, "a?b?c??d", 1, 0 },
	{ "bare CR in text", "250 a\rb\r\n", SMTP_PARSE_DONE, 250, "a?b", 1,
	    0 },
	{ "CR CR LF", "250 a\r\r\n", SMTP_PARSE_DONE, 250, "a?", 1, 0 },
	{ "NUL in text", "250 a\0b\r\n", SMTP_PARSE_DONE, 250, "a?b", 1, 0 },
	{ "text of first line only", "250-first\r\n250 second\r\n",
	    SMTP_PARSE_DONE, 250, "first", 2, 0 },
	{ "incomplete", "250 ok", SMTP_PARSE_MORE, 0, NULL, 0, 0 },
	{ "incomplete multi", "250-a\r\n250", SMTP_PARSE_MORE, 0, NULL, 0, 0 },
	{ "CR pending", "250 ok\r", SMTP_PARSE_MORE, 0, NULL, 0, 0 },
	{ "empty", "", SMTP_PARSE_MORE, 0, NULL, 0, 0 },
	{ "code change", "250-a\r\n251 b\r\n", SMTP_PARSE_BAD, 0, NULL, 0, 0 },
	{ "code change bare", "250-a\r\n251\r\n", SMTP_PARSE_BAD, 0, NULL, 0,
	    0 },
	{ "non-digit", "25x what\r\n", SMTP_PARSE_BAD, 0, NULL, 0, 0 },
	{ "letter first", "x50 what\r\n", SMTP_PARSE_BAD, 0, NULL, 0, 0 },
	{ "code 199", "199 x\r\n", SMTP_PARSE_BAD, 0, NULL, 0, 0 },
	{ "code 600", "600 x\r\n", SMTP_PARSE_BAD, 0, NULL, 0, 0 },
	{ "code 099", "099 x\r\n", SMTP_PARSE_BAD, 0, NULL, 0, 0 },
	{ "bad separator", "250_x\r\n", SMTP_PARSE_BAD, 0, NULL, 0, 0 },
	{ "four digits", "2500 x\r\n", SMTP_PARSE_BAD, 0, NULL, 0, 0 },
	{ "short line", "25\r\n", SMTP_PARSE_BAD, 0, NULL, 0, 0 },
	{ "empty line", "\r\n", SMTP_PARSE_BAD, 0, NULL, 0, 0 },
	{ "empty line LF", "\n", SMTP_PARSE_BAD, 0, NULL, 0, 0 },
	{ "empty line in multi", "250-a\r\n\r\n250 b\r\n", SMTP_PARSE_BAD, 0,
	    NULL, 0, 0 },
	{ "bare CR after code", "250\rx\r\n", SMTP_PARSE_BAD, 0, NULL, 0, 0 },
	{ "leading space", " 250 x\r\n", SMTP_PARSE_BAD, 0, NULL, 0, 0 },
	{ "CR in code", "2\r50 x\r\n", SMTP_PARSE_BAD, 0, NULL, 0, 0 },
};

/* Feeds in using chunks of at most step bytes (0: all at once); stops at
 * DONE or BAD like a session would.  The total consumed goes in *used. */
static enum smtp_parse
feed_chunked(struct smtp_parser *p, const char *in, size_t len, size_t step,
    size_t *used)
{
	enum smtp_parse	 st = SMTP_PARSE_MORE;
	size_t		 off = 0, n, u;

	smtp_parser_init(p);
	if (len == 0) {
		st = smtp_parser_feed(p, in, 0, &u);
		*used = u;
		return st;
	}
	while (off < len) {
		n = step == 0 || step > len - off ? len - off : step;
		u = ~(size_t)0;
		st = smtp_parser_feed(p, in + off, n, &u);
		assert_true(u <= n);
		if (st == SMTP_PARSE_MORE)
			assert_int_equal(u, n);
		off += u;
		if (st != SMTP_PARSE_MORE)
			break;
	}
	*used = off;
	return st;
}

static size_t
row_len(const struct prow *r)
{
	/* rows with an embedded NUL */
	if (strcmp(r->name, "NUL in text") == 0)
		return 9;
	return strlen(r->in);
}

static void
check_row(const struct prow *r, size_t step)
{
	struct smtp_parser	 p;
	enum smtp_parse		 st;
	size_t			 used, len = row_len(r);

	st = feed_chunked(&p, r->in, len, step, &used);
	if (st != r->want)
		fail_msg("row '%s' step %zu: result %d want %d", r->name, step,
		    st, r->want);
	if (st != SMTP_PARSE_DONE)
		return;
	if (p.r.code != r->code || strcmp(p.r.text, r->text) != 0 ||
	    p.r.lines != r->lines || used != (r->used ? r->used : len))
		fail_msg("row '%s' step %zu: %d '%s' %zu lines, used %zu",
		    r->name, step, p.r.code, p.r.text, p.r.lines, used);
}

static void
test_parser_rows(void **st)
{
	size_t	 i, step;

	(void)st;
	for (i = 0; i < NELEM(prows); i++) {
		check_row(&prows[i], 0);
		/* byte at a time and other chunkings: the same outcome */
		for (step = 1; step <= 9; step++)
			check_row(&prows[i], step);
	}
}

/* Appends n copies of line to b (size cap); returns the new length. */
static size_t
repeat(char *b, size_t len, size_t cap, const char *line, size_t n)
{
	size_t	 l = strlen(line);

	while (n-- > 0) {
		assert_true(len + l < cap);
		memcpy(b + len, line, l);
		len += l;
	}
	b[len] = '\0';
	return len;
}

static void
test_parser_limits(void **st)
{
	struct smtp_parser	 p;
	size_t			 len, used, step;
	char			*b;
	const size_t		 cap = 64 * 1024;

	(void)st;
	b = malloc(cap);
	assert_non_null(b);

	/* a line of exactly SMTPC_LINE_MAX bytes (CRLF not counted) */
	memcpy(b, "250 ", 4);
	memset(b + 4, 'a', SMTPC_LINE_MAX - 4);
	memcpy(b + SMTPC_LINE_MAX, "\r\n", 3);
	len = SMTPC_LINE_MAX + 2;
	for (step = 0; step < 3; step++) {
		assert_int_equal(feed_chunked(&p, b, len, step, &used),
		    SMTP_PARSE_DONE);
		assert_int_equal(used, len);
		/* the text is cut to fit */
		assert_int_equal(strlen(p.r.text), SMTPC_TEXT_MAX - 1);
	}
	/* one byte more, with or without the CR */
	memcpy(b + SMTPC_LINE_MAX, "a\r\n", 4);
	assert_int_equal(feed_chunked(&p, b, len + 1, 0, &used),
	    SMTP_PARSE_BAD);
	assert_int_equal(feed_chunked(&p, b, len + 1, 1, &used),
	    SMTP_PARSE_BAD);
	memcpy(b + SMTPC_LINE_MAX, "a\n", 3);
	assert_int_equal(feed_chunked(&p, b, len, 0, &used), SMTP_PARSE_BAD);
	/* an endless line is refused at the limit, not buffered */
	memset(b + 4, 'a', 3 * SMTPC_LINE_MAX);
	assert_int_equal(feed_chunked(&p, b, 3 * SMTPC_LINE_MAX, 0, &used),
	    SMTP_PARSE_BAD);
	assert_int_equal(used, SMTPC_LINE_MAX);

	/* SMTPC_LINES_MAX lines are fine, one more is not */
	len = repeat(b, 0, cap, "250-x\r\n", SMTPC_LINES_MAX - 1);
	len = repeat(b, len, cap, "250 end\r\n", 1);
	assert_int_equal(feed_chunked(&p, b, len, 0, &used), SMTP_PARSE_DONE);
	assert_int_equal(p.r.lines, SMTPC_LINES_MAX);
	len = repeat(b, 0, cap, "250-x\r\n", SMTPC_LINES_MAX);
	len = repeat(b, len, cap, "250 end\r\n", 1);
	assert_int_equal(feed_chunked(&p, b, len, 0, &used), SMTP_PARSE_BAD);
	assert_int_equal(feed_chunked(&p, b, len, 1, &used), SMTP_PARSE_BAD);
	/* and refused before the server sends the end */
	len = repeat(b, 0, cap, "250-x\r\n", SMTPC_LINES_MAX);
	assert_int_equal(feed_chunked(&p, b, len, 0, &used), SMTP_PARSE_BAD);

	/* a text of exactly SMTPC_TEXT_MAX - 1 bytes ending in CR LF, and a
	 * bare CR right at the cut */
	memcpy(b, "250 ", 4);
	memset(b + 4, 'b', SMTPC_TEXT_MAX - 1);
	memcpy(b + 4 + SMTPC_TEXT_MAX - 1, "\r\n", 3);
	assert_int_equal(feed_chunked(&p, b, strlen(b), 1, &used),
	    SMTP_PARSE_DONE);
	assert_int_equal(strlen(p.r.text), SMTPC_TEXT_MAX - 1);
	b[4 + SMTPC_TEXT_MAX - 2] = '\r';
	assert_int_equal(feed_chunked(&p, b, strlen(b), 1, &used),
	    SMTP_PARSE_DONE);
	assert_int_equal(strlen(p.r.text), SMTPC_TEXT_MAX - 1);
	assert_int_equal(p.r.text[SMTPC_TEXT_MAX - 2], '?');
	free(b);
}

/* Successive replies in one buffer, as a session reads them. */
static void
test_parser_successive(void **st)
{
	static const char	 in[] = "220-a\r\n220 b\r\n250 c\n221 d\r\n";
	static const int	 codes[] = { 220, 250, 221 };
	struct smtp_parser	 p;
	size_t			 off = 0, used, i;

	(void)st;
	for (i = 0; i < NELEM(codes); i++) {
		smtp_parser_init(&p);
		assert_int_equal(smtp_parser_feed(&p, in + off,
		    sizeof(in) - 1 - off, &used), SMTP_PARSE_DONE);
		assert_int_equal(p.r.code, codes[i]);
		off += used;
	}
	assert_int_equal(off, sizeof(in) - 1);
}

/*
 * The fake server.
 */

#define FAKE_CMDS	32
/* at the end of a script entry: */
#define FAKE_SILENT	"<silent>"	/* send no more, wait for EOF */
#define FAKE_CLOSE	"<close>"	/* close the connection */
#define SCRIPT_MAX	10
#define G		"220 fake.test ESMTP\r\n"
#define OK		"250 2.0.0 ok\r\n"	/* also the default reply */

struct fake {
	int			 lfd;
	unsigned		 port;
	pthread_t		 thread;
	atomic_int		 stop;
	const char *const	*script;	/* [0] greeting, then one
						 * reply per command */
	/* written by the server thread, read after fake_stop() */
	int			 nconn;
	size_t			 ncmds;
	char			 cmds[FAKE_CMDS][600];
};

static void
fake_send(int fd, const char *s)
{
	(void)send(fd, s, strlen(s), MSG_NOSIGNAL);
}

/* Waits for input on fd; 0 when some came, -1 when told to stop and
 * nothing is pending (what the client sent before stop is always read). */
static int
fake_wait(struct fake *f, int fd)
{
	struct pollfd	 pfd;

	pfd.fd = fd;
	pfd.events = POLLIN;
	for (;;) {
		if (poll(&pfd, 1, 20) > 0)
			return 0;
		if (atomic_load(&f->stop))
			return -1;
	}
}

static void
fake_drain(struct fake *f, int fd)
{
	char	 b[512];

	while (fake_wait(f, fd) == 0 && recv(fd, b, sizeof(b), 0) > 0)
		;
}

/* Sends a script entry: text, then maybe a marker; -1 when the
 * connection is over. */
static int
fake_reply(struct fake *f, int fd, const char *rep)
{
	const char	*close_at = strstr(rep, FAKE_CLOSE);
	const char	*silent_at = strstr(rep, FAKE_SILENT);
	const char	*end = close_at != NULL ? close_at : silent_at;

	if (end == NULL) {
		fake_send(fd, rep);
		return 0;
	}
	(void)send(fd, rep, (size_t)(end - rep), MSG_NOSIGNAL);
	if (silent_at != NULL)
		fake_drain(f, fd);
	return -1;
}

static void
fake_serve(struct fake *f, int fd)
{
	char		 buf[4096], *nl;
	size_t		 have = 0, i = 0, n;
	ssize_t		 r;
	const char	*rep;

	if (fake_reply(f, fd, f->script[i++]) != 0)
		return;
	for (;;) {
		while ((nl = memchr(buf, '\n', have)) == NULL) {
			if (have == sizeof(buf) || fake_wait(f, fd) != 0)
				return;
			r = recv(fd, buf + have, sizeof(buf) - have, 0);
			if (r <= 0)
				return;
			have += (size_t)r;
		}
		n = (size_t)(nl - buf);
		if (n > 0 && buf[n - 1] == '\r')
			n--;
		if (f->ncmds < FAKE_CMDS && n < sizeof(f->cmds[0])) {
			memcpy(f->cmds[f->ncmds], buf, n);
			f->cmds[f->ncmds++][n] = '\0';
		}
		memmove(buf, nl + 1, have - (size_t)(nl + 1 - buf));
		have -= (size_t)(nl + 1 - buf);
		if (strncmp(f->cmds[f->ncmds - 1], "QUIT", 4) == 0) {
			fake_send(fd, "221 2.0.0 bye\r\n");
			return;
		}
		rep = f->script[i] != NULL ? f->script[i++] : OK;
		if (fake_reply(f, fd, rep) != 0)
			return;
	}
}

static void *
fake_main(void *arg)
{
	struct fake	*f = arg;
	int		 fd;

	while (fake_wait(f, f->lfd) == 0) {
		fd = accept(f->lfd, NULL, NULL);
		if (fd == -1)
			continue;
		f->nconn++;
		fake_serve(f, fd);
		(void)close(fd);
	}
	return NULL;
}

static void
fake_start(struct fake *f, const char *const *script)
{
	struct sockaddr_in	 sin;
	socklen_t		 len = sizeof(sin);

	memset(f, 0, sizeof(*f));
	f->script = script;
	atomic_init(&f->stop, 0);
	f->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(f->lfd >= 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(f->lfd, (struct sockaddr *)&sin, sizeof(sin)),
	    0);
	assert_int_equal(listen(f->lfd, 8), 0);
	assert_int_equal(getsockname(f->lfd, (struct sockaddr *)&sin, &len),
	    0);
	f->port = ntohs(sin.sin_port);
	assert_int_equal(pthread_create(&f->thread, NULL, fake_main, f), 0);
}

static void
fake_stop(struct fake *f)
{
	atomic_store(&f->stop, 1);
	assert_int_equal(pthread_join(f->thread, NULL), 0);
	(void)close(f->lfd);
}

/* A port where nothing listens (just bound, then closed). */
static unsigned
dead_port(void)
{
	struct sockaddr_in	 sin;
	socklen_t		 len = sizeof(sin);
	int			 fd;

	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	(void)close(fd);
	return ntohs(sin.sin_port);
}

/*
 * Sessions, one table row each: open, one RCPT (if open succeeded),
 * close; the outcome and the exact commands the server saw.
 */

struct srow {
	const char	*name;
	const char	*script[SCRIPT_MAX];
	int		 open_ok;
	enum smtpc_result open_res;	/* when !open_ok */
	enum smtpc_result rcpt_res;	/* when open_ok */
	int		 code;		/* of the last reply; 0 = none */
	const char	*err;		/* substring of the error, or NULL */
	const char	*cmds[SCRIPT_MAX];
};

static const struct srow srows[] = {
	{ "accept", { G, OK, OK, "250 2.1.5 Ok\r\n" }, 1, 0, SMTPC_ACCEPT,
	    250, NULL, { "EHLO helo.test", "MAIL FROM:<>",
	    "RCPT TO:<u@example.org>", "QUIT" } },
	{ "reject", { G, OK, OK,
	    "550 5.1.1 <u@example.org>: User unknown\r\n" }, 1, 0,
	    SMTPC_REJECT, 550, ": 550 5.1.1 <u@example.org>: User unknown",
	    { "EHLO helo.test", "MAIL FROM:<>", "RCPT TO:<u@example.org>",
	    "QUIT" } },
	{ "temp", { G, OK, OK, "451 4.3.0 try later\r\n" }, 1, 0, SMTPC_TEMP,
	    451, ": 451 4.3.0 try later", { "EHLO helo.test", "MAIL FROM:<>",
	    "RCPT TO:<u@example.org>", "QUIT" } },
	{ "421 to RCPT", { G, OK, OK, "421 4.3.2 shutting down\r\n" }, 1, 0,
	    SMTPC_TEMP, 421, "421 4.3.2", { "EHLO helo.test", "MAIL FROM:<>",
	    "RCPT TO:<u@example.org>" } },
	{ "multi-line greeting and EHLO",
	    { "220-fake.test ESMTP\r\n220-no UCE\r\n220 hello\r\n",
	    "250-fake.test\r\n250-PIPELINING\r\n250-SIZE 1000\r\n"
	    "250 8BITMIME\r\n",
	    OK, "250 2.1.5 Ok\r\n" }, 1, 0, SMTPC_ACCEPT, 250, NULL,
	    { "EHLO helo.test", "MAIL FROM:<>", "RCPT TO:<u@example.org>",
	    "QUIT" } },
	{ "EHLO refused, HELO", { G, "502 5.5.2 what?\r\n", OK, OK,
	    "250 2.1.5 Ok\r\n" }, 1, 0, SMTPC_ACCEPT, 250, NULL,
	    { "EHLO helo.test", "HELO helo.test", "MAIL FROM:<>",
	    "RCPT TO:<u@example.org>", "QUIT" } },
	{ "EHLO and HELO refused", { G, "502 5.5.2 what?\r\n",
	    "550 5.7.1 go away\r\n" }, 0, SMTPC_TEMP, 0, 550,
	    "HELO: 550 5.7.1 go away", { "EHLO helo.test", "HELO helo.test",
	    "QUIT" } },
	{ "EHLO 4xx", { G, "454 4.7.0 busy\r\n" }, 0, SMTPC_TEMP, 0, 454,
	    "EHLO: 454 4.7.0 busy", { "EHLO helo.test", "QUIT" } },
	{ "greeting 421", { "421 4.3.2 busy\r\n" }, 0, SMTPC_TEMP, 0, 421,
	    "greeting: 421 4.3.2 busy", { NULL } },
	{ "greeting 554", { "554 5.3.2 no service\r\n" }, 0, SMTPC_TEMP, 0,
	    554, "greeting: 554 5.3.2 no service", { "QUIT" } },
	{ "greeting 250", { "250 hi\r\n" }, 0, SMTPC_ERROR, 0, 250,
	    "unexpected reply to greeting", { NULL } },
	{ "malformed greeting", { "hello\r\n" }, 0, SMTPC_ERROR, 0, 0,
	    "malformed greeting", { NULL } },
	{ "greeting then close", { G, FAKE_CLOSE }, 0, SMTPC_ERROR, 0, 0,
	    "connection closed before the reply to EHLO",
	    { "EHLO helo.test" } },
	{ "close in a reply", { G, "250-fake.test\r\n250-SIZE" FAKE_CLOSE },
	    0, SMTPC_ERROR, 0, 0, "connection closed during the reply to EHLO",
	    { "EHLO helo.test" } },
	{ "MAIL 451", { G, OK, "451 4.3.0 queue full\r\n" }, 0, SMTPC_TEMP, 0,
	    451, "MAIL FROM:<>: 451 4.3.0 queue full",
	    { "EHLO helo.test", "MAIL FROM:<>", "QUIT" } },
	{ "MAIL 553", { G, OK, "553 5.1.8 no null sender\r\n" }, 0,
	    SMTPC_TEMP, 0, 553, "553 5.1.8", { "EHLO helo.test",
	    "MAIL FROM:<>", "QUIT" } },
	{ "malformed RCPT reply", { G, OK, OK, "25x what\r\n" }, 1, 0,
	    SMTPC_ERROR, 0, "malformed reply to RCPT", { "EHLO helo.test",
	    "MAIL FROM:<>", "RCPT TO:<u@example.org>" } },
	{ "code change in RCPT reply", { G, OK, OK, "250-a\r\n550 b\r\n" }, 1,
	    0, SMTPC_ERROR, 0, "malformed reply to RCPT", { "EHLO helo.test",
	    "MAIL FROM:<>", "RCPT TO:<u@example.org>" } },
	{ "3xx to RCPT", { G, OK, OK, "354 go on\r\n" }, 1, 0, SMTPC_ERROR,
	    354, "unexpected reply to RCPT: 354", { "EHLO helo.test",
	    "MAIL FROM:<>", "RCPT TO:<u@example.org>" } },
	{ "close at RCPT", { G, OK, OK, FAKE_CLOSE }, 1, 0, SMTPC_ERROR, 0,
	    "connection closed before the reply to RCPT", { "EHLO helo.test",
	    "MAIL FROM:<>", "RCPT TO:<u@example.org>" } },
	/* the extra reply is taken for MAIL's, MAIL's for RCPT's */
	{ "unasked reply", { G, OK "250 extra\r\n", "garbage\r\n" }, 1, 0,
	    SMTPC_ERROR, 0, "malformed reply to RCPT", { "EHLO helo.test",
	    "MAIL FROM:<>", "RCPT TO:<u@example.org>" } },
	{ "pipelined garbage", { G, OK "xyz\r\n" }, 0, SMTPC_ERROR, 0, 0,
	    "malformed reply to MAIL", { "EHLO helo.test", "MAIL FROM:<>" } },
};

static void
check_cmds(const char *name, const struct fake *f, const char *const *want)
{
	size_t	 n;

	for (n = 0; n < SCRIPT_MAX && want[n] != NULL; n++) {
		if (n >= f->ncmds)
			fail_msg("row '%s': server saw %zu commands, want "
			    "'%s' next", name, f->ncmds, want[n]);
		if (strcmp(f->cmds[n], want[n]) != 0)
			fail_msg("row '%s': command %zu '%s' want '%s'", name,
			    n, f->cmds[n], want[n]);
	}
	if (f->ncmds != n)
		fail_msg("row '%s': server saw %zu commands, want %zu (extra "
		    "'%s')", name, f->ncmds, n, f->cmds[n]);
}

static void
test_session_rows(void **st)
{
	struct fake		 f;
	struct smtpc		*s;
	struct smtp_reply	 r;
	struct err		 e;
	enum smtpc_result	 res;
	uint64_t		 dl;
	size_t			 i;

	(void)st;
	for (i = 0; i < NELEM(srows); i++) {
		const struct srow *row = &srows[i];

		fake_start(&f, row->script);
		dl = now_ms() + 5000;
		memset(&r, 0xa5, sizeof(r));
		s = smtpc_open("127.0.0.1", f.port, "helo.test", dl, &res, &r,
		    &e);
		if ((s != NULL) != row->open_ok)
			fail_msg("row '%s': open %s: %s", row->name,
			    s != NULL ? "succeeded" : "failed", e.msg);
		if (s == NULL) {
			if (res != row->open_res)
				fail_msg("row '%s': open result %d want %d "
				    "(%s)", row->name, res, row->open_res,
				    e.msg);
		} else {
			memset(&r, 0xa5, sizeof(r));
			res = smtpc_rcpt(s, "u@example.org", dl, &r, &e);
			if (res != row->rcpt_res)
				fail_msg("row '%s': rcpt result %d want %d "
				    "(%s)", row->name, res, row->rcpt_res,
				    e.msg);
			assert_int_equal(smtpc_usable(s),
			    res != SMTPC_ERROR && r.code != 421);
			smtpc_close(s, dl);
		}
		fake_stop(&f);
		if (row->code != 0 && r.code != row->code)
			fail_msg("row '%s': reply code %d want %d", row->name,
			    r.code, row->code);
		assert_non_null(memchr(r.text, '\0', sizeof(r.text)));
		if (row->err != NULL && strstr(e.msg, row->err) == NULL)
			fail_msg("row '%s': error '%s' lacks '%s'", row->name,
			    e.msg, row->err);
		if (res != SMTPC_ACCEPT && strncmp(e.msg, "callout 127.0.0.1:",
		    18) != 0)
			fail_msg("row '%s': error '%s'", row->name, e.msg);
		assert_int_equal(f.nconn, 1);
		check_cmds(row->name, &f, row->cmds);
	}
}

/* A server that accepts and never greets: ERROR at the deadline. */
static void
test_session_no_greeting(void **st)
{
	static const char *const script[] = { FAKE_SILENT, NULL };
	struct fake		 f;
	struct smtpc		*s;
	struct err		 e;
	enum smtpc_result	 res;
	uint64_t		 t0, took;

	(void)st;
	fake_start(&f, script);
	t0 = now_ms();
	s = smtpc_open("127.0.0.1", f.port, "helo.test", t0 + 300, &res, NULL,
	    &e);
	took = now_ms() - t0;
	fake_stop(&f);
	assert_null(s);
	assert_int_equal(res, SMTPC_ERROR);
	assert_true(took >= 299 && took < 500);
	assert_non_null(strstr(e.msg, "timeout waiting for the greeting"));
}

/* A server that stops answering at RCPT: ERROR at that deadline. */
static void
test_session_slow_rcpt(void **st)
{
	static const char *const script[] = { G, OK, OK, FAKE_SILENT, NULL };
	struct fake		 f;
	struct smtpc		*s;
	struct err		 e;
	enum smtpc_result	 res;
	uint64_t		 t0, took;

	(void)st;
	fake_start(&f, script);
	s = smtpc_open("127.0.0.1", f.port, "helo.test", now_ms() + 5000,
	    &res, NULL, &e);
	assert_non_null(s);
	t0 = now_ms();
	res = smtpc_rcpt(s, "u@example.org", t0 + 200, NULL, &e);
	took = now_ms() - t0;
	assert_int_equal(res, SMTPC_ERROR);
	assert_false(smtpc_usable(s));
	assert_true(took >= 199 && took < 400);
	assert_non_null(strstr(e.msg, "timeout waiting for the reply to "
	    "RCPT"));
	/* no QUIT on a session in an unknown state: close is immediate */
	t0 = now_ms();
	smtpc_close(s, t0 + 2000);
	assert_true(now_ms() - t0 < 100);
	fake_stop(&f);
}

static void
test_session_refused(void **st)
{
	struct smtpc		*s;
	struct err		 e;
	enum smtpc_result	 res;
	struct smtp_reply	 r;
	uint64_t		 t0;
	char			 want[64];
	unsigned		 port = dead_port();

	(void)st;
	t0 = now_ms();
	s = smtpc_open("127.0.0.1", port, "helo.test", t0 + 5000, &res, &r,
	    &e);
	assert_null(s);
	assert_true(now_ms() - t0 < 1000);
	assert_int_equal(res, SMTPC_ERROR);
	assert_int_equal(r.code, 0);
	(void)snprintf(want, sizeof(want), "callout 127.0.0.1:%u: connect: ",
	    port);
	assert_non_null(strstr(e.msg, want));
	assert_non_null(strstr(e.msg, "refused"));
	/* the same for IPv6 (refused or unreachable, but fast and named) */
	t0 = now_ms();
	s = smtpc_open("::1", port, "helo.test", t0 + 5000, &res, NULL, &e);
	assert_null(s);
	assert_true(now_ms() - t0 < 1000);
	assert_int_equal(res, SMTPC_ERROR);
	(void)snprintf(want, sizeof(want), "callout [::1]:%u: ", port);
	assert_non_null(strstr(e.msg, want));
	/* bad port, bad HELO name */
	s = smtpc_open("127.0.0.1", 0, "helo.test", now_ms() + 2000, &res,
	    NULL, &e);
	assert_null(s);
	assert_non_null(strstr(e.msg, "invalid port"));
	s = smtpc_open("127.0.0.1", port, "bad helo", now_ms() + 2000, &res,
	    NULL, &e);
	assert_null(s);
	assert_int_equal(res, SMTPC_ERROR);
	assert_non_null(strstr(e.msg, "invalid HELO name"));
	s = smtpc_open("127.0.0.1", port, "", now_ms() + 2000, &res, NULL, &e);
	assert_null(s);
	/* a deadline already past */
	s = smtpc_open("127.0.0.1", port, "helo.test", now_ms() - 1, &res,
	    NULL, &e);
	assert_null(s);
	assert_int_equal(res, SMTPC_ERROR);
	assert_non_null(strstr(e.msg, "timeout"));
	smtpc_close(NULL, 0);
}

/* Several RCPTs on one connection, an RSET, more RCPTs, QUIT. */
static void
test_session_many(void **st)
{
	static const char *const script[] = { G, OK, OK,
	    "250 2.1.5 Ok\r\n", "550 5.1.1 unknown\r\n", "250 2.1.5 Ok\r\n",
	    "452 4.5.3 too many\r\n", OK, OK, "250 2.1.5 Ok\r\n", NULL };
	static const enum smtpc_result want[] = { SMTPC_ACCEPT, SMTPC_REJECT,
	    SMTPC_ACCEPT, SMTPC_TEMP };
	static const char *const cmds[] = { "EHLO helo.test", "MAIL FROM:<>",
	    "RCPT TO:<a0@example.org>", "RCPT TO:<a1@example.org>",
	    "RCPT TO:<a2@example.org>", "RCPT TO:<a3@example.org>", "RSET",
	    "MAIL FROM:<>", "RCPT TO:<b@example.org>", "QUIT", NULL };
	struct fake		 f;
	struct smtpc		*s;
	struct smtp_reply	 r;
	struct err		 e;
	enum smtpc_result	 res;
	uint64_t		 dl;
	char			 addr[32];
	size_t			 i;

	(void)st;
	fake_start(&f, script);
	dl = now_ms() + 5000;
	s = smtpc_open("localhost", f.port, "helo.test", dl, &res, &r, &e);
	assert_non_null(s);
	assert_int_equal(res, SMTPC_ACCEPT);
	for (i = 0; i < NELEM(want); i++) {
		(void)snprintf(addr, sizeof(addr), "a%zu@example.org", i);
		res = smtpc_rcpt(s, addr, dl, &r, &e);
		if (res != want[i])
			fail_msg("rcpt %zu: %d want %d (%s)", i, res, want[i],
			    e.msg);
		assert_true(smtpc_usable(s));
	}
	assert_int_equal(r.code, 452);
	assert_string_equal(r.text, "4.5.3 too many");
	assert_int_equal(smtpc_reset(s, dl, &e), 0);
	assert_int_equal(smtpc_rcpt(s, "b@example.org", dl, &r, &e),
	    SMTPC_ACCEPT);
	smtpc_close(s, dl);
	fake_stop(&f);
	assert_int_equal(f.nconn, 1);
	check_cmds("many", &f, cmds);
}

/* Addresses that could inject commands are refused before sending. */
static void
test_session_bad_addr(void **st)
{
	static const char *const script[] = { G, OK, OK, "250 2.1.5 Ok\r\n",
	    NULL };
	static const char *const cmds[] = { "EHLO helo.test", "MAIL FROM:<>",
	    "RCPT TO:<ok@example.org>", "QUIT", NULL };
	static const char *const bad[] = { "", "a@b\r\nDATA", "a@b\n",
	    "a@b\r", "a\x01@b", "a\x7f@b", "<a@b>", "a@b>", "a<b@c" };
	struct fake		 f;
	struct smtpc		*s;
	struct err		 e;
	enum smtpc_result	 res;
	uint64_t		 dl;
	char			*big;
	size_t			 i;

	(void)st;
	fake_start(&f, script);
	dl = now_ms() + 5000;
	s = smtpc_open("127.0.0.1", f.port, "helo.test", dl, &res, NULL, &e);
	assert_non_null(s);
	for (i = 0; i < NELEM(bad); i++) {
		assert_int_equal(smtpc_rcpt(s, bad[i], dl, NULL, &e),
		    SMTPC_ERROR);
		assert_non_null(strstr(e.msg, "address refused"));
		assert_true(smtpc_usable(s));
	}
	big = malloc(600);
	assert_non_null(big);
	memset(big, 'a', 599);
	big[599] = '\0';
	big[300] = '@';
	assert_int_equal(smtpc_rcpt(s, big, dl, NULL, &e), SMTPC_ERROR);
	free(big);
	assert_int_equal(smtpc_rcpt(s, "ok@example.org", dl, NULL, &e),
	    SMTPC_ACCEPT);
	smtpc_close(s, dl);
	fake_stop(&f);
	check_cmds("bad addr", &f, cmds);
}

/* After an error nothing more is sent on the session. */
static void
test_session_unusable(void **st)
{
	static const char *const script[] = { G, OK, OK, "25x\r\n", NULL };
	static const char *const cmds[] = { "EHLO helo.test", "MAIL FROM:<>",
	    "RCPT TO:<a@example.org>", NULL };
	struct fake		 f;
	struct smtpc		*s;
	struct err		 e;
	enum smtpc_result	 res;
	uint64_t		 dl;

	(void)st;
	fake_start(&f, script);
	dl = now_ms() + 5000;
	s = smtpc_open("127.0.0.1", f.port, "helo.test", dl, &res, NULL, &e);
	assert_non_null(s);
	assert_int_equal(smtpc_rcpt(s, "a@example.org", dl, NULL, &e),
	    SMTPC_ERROR);
	assert_false(smtpc_usable(s));
	assert_int_equal(smtpc_rcpt(s, "b@example.org", dl, NULL, &e),
	    SMTPC_ERROR);
	assert_non_null(strstr(e.msg, "unusable"));
	assert_int_not_equal(smtpc_reset(s, dl, &e), 0);
	smtpc_close(s, dl);
	fake_stop(&f);
	check_cmds("unusable", &f, cmds);
}

/* RSET refused, or MAIL refused after RSET: the session is done. */
static void
test_session_reset_refused(void **st)
{
	static const char *const s1[] = { G, OK, OK, "421 4.3.2 bye\r\n",
	    NULL };
	static const char *const s2[] = { G, OK, OK, OK,
	    "451 4.3.0 later\r\n", NULL };
	static const char *const c1[] = { "EHLO helo.test", "MAIL FROM:<>",
	    "RSET", NULL };
	static const char *const c2[] = { "EHLO helo.test", "MAIL FROM:<>",
	    "RSET", "MAIL FROM:<>", NULL };
	struct fake		 f;
	struct smtpc		*s;
	struct err		 e;
	enum smtpc_result	 res;
	uint64_t		 dl;

	(void)st;
	fake_start(&f, s1);
	dl = now_ms() + 5000;
	s = smtpc_open("127.0.0.1", f.port, "helo.test", dl, &res, NULL, &e);
	assert_non_null(s);
	assert_int_not_equal(smtpc_reset(s, dl, &e), 0);
	assert_non_null(strstr(e.msg, "RSET: 421 4.3.2 bye"));
	assert_false(smtpc_usable(s));
	smtpc_close(s, dl);
	fake_stop(&f);
	check_cmds("RSET 421", &f, c1);

	fake_start(&f, s2);
	s = smtpc_open("127.0.0.1", f.port, "helo.test", dl, &res, NULL, &e);
	assert_non_null(s);
	assert_int_not_equal(smtpc_reset(s, dl, &e), 0);
	assert_non_null(strstr(e.msg, "MAIL FROM:<>: 451 4.3.0 later"));
	assert_false(smtpc_usable(s));
	smtpc_close(s, dl);
	fake_stop(&f);
	check_cmds("MAIL after RSET", &f, c2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parser_rows),
		cmocka_unit_test(test_parser_limits),
		cmocka_unit_test(test_parser_successive),
		cmocka_unit_test(test_session_rows),
		cmocka_unit_test(test_session_no_greeting),
		cmocka_unit_test(test_session_slow_rcpt),
		cmocka_unit_test(test_session_refused),
		cmocka_unit_test(test_session_many),
		cmocka_unit_test(test_session_bad_addr),
		cmocka_unit_test(test_session_unusable),
		cmocka_unit_test(test_session_reset_refused),
	};

	return cmocka_run_group_tests_name("smtpc", tests, NULL, NULL);
}
