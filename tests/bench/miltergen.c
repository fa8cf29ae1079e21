/*
 * miltergen.c -- milter protocol load generator for the portero benchmark.
 *
 * Plays the MTA side of the milter protocol (version 6, as Postfix's
 * milter8 client does) against a milter listening on a unix or inet
 * socket.  CONCURRENCY threads each open their own milter connection,
 * negotiate options, send the connect and HELO stages and then push
 * their share of the messages through it, either up to the envelope
 * (MAIL + RCPT, then ABORT) or as full messages (DATA, headers, EOH,
 * body chunks and end of body).  Per message latency is measured from
 * the first byte of the MAIL stage (its macros) to the last reply of
 * the message; throughput, latency percentiles and verdict counts are
 * printed at the end, the last line being machine readable:
 *
 *   result msgs=N secs=S rate=R p50=X p99=Y max=Z accept=.. ...
 *
 * (before it, "codes 554=N ..." counts the SMTP codes of SMFIR_REPLYCODE
 * replies, when there were any).
 *
 * Every wait for the milter is bounded by a 10 second poll; a timeout,
 * EOF or protocol error counts the message as an error and drops the
 * connection (the thread reconnects for its next message).
 *
 * Writes are batched the way Postfix's VSTREAM batches them: commands
 * that get no reply (macros, ABORT, headers under SMFIP_NR_HDR, ...)
 * are queued and go out in one write with the next command that does,
 * the queue being flushed only when a reply is awaited or at QUIT.
 *
 * TCP_NODELAY: Postfix does not set it on its milter sockets.  Thanks
 * to the batching above that costs Postfix nothing (each write is
 * followed by a read), but a load generator should measure the milter
 * and nothing else, so it is set on inet client sockets by default;
 * --nagle leaves Nagle's algorithm on, i.e. behaves exactly like
 * Postfix.  Either way the milter's own Nagle is what can stall: a
 * milter writing two replies in a row (e.g. SMFIR_ADDHEADER then
 * SMFIR_ACCEPT) waits for our delayed ACK (~40 ms on Linux) unless it
 * sets TCP_NODELAY itself.
 *
 * --connect-only measures the connect stage instead: every "message" is
 * a milter connection of its own (negotiation, connect macros and
 * SMFIC_CONNECT, then QUIT), and its latency runs from the write of the
 * CONNECT command (its macros go in the same write) to the milter's reply
 * to it.  The result line is the same, msgs counting connections.  With
 * --client-ip-range A.B.C.D/N the connections present successive
 * addresses of that IPv4 network (network and broadcast addresses left
 * out below /31), one new address per connection across all threads, so
 * that no DNS answer about the client can be in the milter's cache; a
 * fixed --client-ip gives the warm case.
 *
 * --unique-rcpts gives every recipient of every message an address of its
 * own (uW.M.I@example.test) instead of rcptI@example.test, so that no
 * per-recipient answer (recipient verification) can come from a cache.
 *
 * --message FILE (full mode) sends the header fields and body of an RFC
 * 5322 message file, read once at start, instead of the built-in ones,
 * for every message (envelope and macros unchanged).  Header fields go
 * as Postfix's milter8 passes them: the value without the blanks after
 * the colon (kept under SMFIP_HDR_LEADSPC), folded lines joined by "\n"
 * and their leading blanks; the body with CRLF line ends, in SMFIC_BODY
 * chunks of at most 65535 bytes (-b does not apply).
 */

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Protocol constants (see the libmilter protocol description). */
#define MG_PROT_VERSION		6
#define MG_ACTS_ALL		0x000001ffU	/* every SMFIF_* action */

#define MG_P_NOCONNECT		0x00000001U
#define MG_P_NOHELO		0x00000002U
#define MG_P_NOMAIL		0x00000004U
#define MG_P_NORCPT		0x00000008U
#define MG_P_NOBODY		0x00000010U
#define MG_P_NOHDRS		0x00000020U
#define MG_P_NOEOH		0x00000040U
#define MG_P_NR_HDR		0x00000080U
#define MG_P_NOUNKNOWN		0x00000100U
#define MG_P_NODATA		0x00000200U
#define MG_P_SKIP		0x00000400U
#define MG_P_RCPT_REJ		0x00000800U
#define MG_P_NR_CONN		0x00001000U
#define MG_P_NR_HELO		0x00002000U
#define MG_P_NR_MAIL		0x00004000U
#define MG_P_NR_RCPT		0x00008000U
#define MG_P_NR_DATA		0x00010000U
#define MG_P_NR_UNKN		0x00020000U
#define MG_P_NR_EOH		0x00040000U
#define MG_P_NR_BODY		0x00080000U
#define MG_P_HDR_LEADSPC	0x00100000U
#define MG_P_MDS_256K		0x10000000U
#define MG_P_MDS_1M		0x20000000U

/* What Postfix 3.7 offers a version 6 milter: every defined step flag. */
#define MG_P_OFFER		0x001fffffU

/* Commands (MTA to milter). */
#define MG_C_ABORT		'A'
#define MG_C_BODY		'B'
#define MG_C_CONNECT		'C'
#define MG_C_MACRO		'D'
#define MG_C_BODYEOB		'E'
#define MG_C_HELO		'H'
#define MG_C_HEADER		'L'
#define MG_C_MAIL		'M'
#define MG_C_EOH		'N'
#define MG_C_OPTNEG		'O'
#define MG_C_QUIT		'Q'
#define MG_C_RCPT		'R'
#define MG_C_DATA		'T'

/* Macro stages as used by SMFIR_SETSYMLIST in the OPTNEG reply. */
#define MG_M_CONNECT		0
#define MG_M_HELO		1
#define MG_M_ENVFROM		2
#define MG_M_ENVRCPT		3
#define MG_M_DATA		4
#define MG_M_EOM		5
#define MG_M_EOH		6
#define MG_M_COUNT		7

#define MG_TIMEOUT_MS		10000		/* bound on every wait */
#define MG_CHUNK		65535		/* max body chunk */
#define MG_MAXPKT		(1024 * 1024 + 64) /* largest reply taken */
#define MG_MAXERRPRINT		20		/* error lines printed */
#define MG_MAXCONSEC		3		/* errors before giving up */

/* Per message verdicts. */
enum verdict {
	V_CONTINUE = 0,
	V_ACCEPT,
	V_REJECT,
	V_TEMPFAIL,
	V_DISCARD,
	V_ERROR,
	V_COUNT,
	V_SKIP			/* body only: milter does not want more */
};

static const char *const verdict_names[V_COUNT] = {
	"continue", "accept", "reject", "tempfail", "discard", "errors"
};

/* Protocol stages, for error messages and legality of replies. */
enum stage {
	ST_CONNECT, ST_HELO, ST_MAIL, ST_RCPT, ST_DATA, ST_HEADER,
	ST_EOH, ST_BODY, ST_EOB
};

static const char *const stage_names[] = {
	"connect", "helo", "mail", "rcpt", "data", "header", "eoh", "body",
	"eob"
};

struct config {
	struct sockaddr_storage	 addr;
	socklen_t		 addrlen;
	const char		*spec;
	unsigned int		 conc;
	unsigned long		 msgs;
	int			 full;
	size_t			 bodybytes;
	unsigned int		 rcpts;
	int			 unique_rcpts;	/* a new address per message */
	const char		*client_ip;
	char			 client_family;
	int			 connect_only;
	const char		*range;		/* --client-ip-range */
	uint32_t		 range_first;	/* host order */
	uint32_t		 range_hosts;
	const char		*helo;
	const char		*sender;
	int			 nodelay;
	int			 verbose;
	const char		*message;	/* --message FILE */
};

struct conn {
	int		 fd;
	uint32_t	 version;
	uint32_t	 actions;
	uint32_t	 proto;
	char		*symlist[MG_M_COUNT];
	unsigned char	*ibuf;
	size_t		 icap;
	size_t		 ilen;
	size_t		 ioff;
	unsigned char	*obuf;
	size_t		 ocap;
	size_t		 olen;		/* bytes queued, not yet written */
	size_t		 pstart;	/* start of the packet being built */
	int		 drop;		/* milter asked to end the session */
	int		 eobdone;	/* message went up to end of body */
	uint64_t	 lastreply;	/* time of the last reply read */
};

struct worker {
	pthread_t	 tid;
	unsigned int	 id;
	unsigned long	 first;
	unsigned long	 count;
	uint64_t	*lat;
	unsigned long	 nlat;
	unsigned long	 verdicts[V_COUNT];
	unsigned long	 replies[256];
	unsigned long	 codes[600];	/* SMFIR_REPLYCODE 400..599 */
	unsigned long	 reconnects;
	uint64_t	 t_first;	/* start of its first message */
	uint64_t	 t_end;		/* when the thread finished */
};

/* A macro that can be sent for a stage; dflt: sent without a symlist. */
struct macro {
	const char	*name;
	const char	*value;
	int		 dflt;
};

/* A header field of the --message file. */
struct mfield {
	char		*name;
	char		*lead;		/* blanks after the colon */
	char		*value;		/* folded lines joined by "\n" */
};

static struct config	 cfg;
static char		*g_body;
static struct mfield	*g_fields;	/* --message header fields */
static size_t		 g_nfields;
static char		 g_date[64];
static atomic_uint	 g_errprinted;

static atomic_ulong	 g_connidx;	/* connections begun, --connect-only */

static pthread_mutex_t	 g_neglock = PTHREAD_MUTEX_INITIALIZER;
static int		 g_negsaved;
static uint32_t		 g_negver, g_negacts, g_negproto, g_negextra;
static char		*g_negsym[MG_M_COUNT];

static void	usage(void) __attribute__((noreturn));
static void	fatal(const char *, ...)
		    __attribute__((format(printf, 1, 2), noreturn));
static void	werr(struct worker *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));

static void
usage(void)
{
	fprintf(stderr, "usage: miltergen -s unix:/path|inet:PORT@127.0.0.1 "
	    "-c CONCURRENCY -n MESSAGES -m envelope|full\n"
	    "\t[-b BODYBYTES] [-r RCPTS] [--client-ip ADDR] [--helo NAME]\n"
	    "\t[--from ADDR] [--unique-rcpts] [--message FILE] [--nagle] "
	    "[-v]\n"
	    "       miltergen -s SOCKET -c CONCURRENCY -n CONNECTIONS "
	    "--connect-only\n"
	    "\t[--client-ip ADDR | --client-ip-range A.B.C.D/N] [--nagle] "
	    "[-v]\n");
	exit(2);
}

static void
fatal(const char *fmt, ...)
{
	va_list	ap;

	fputs("miltergen: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

/* Report a per-connection error; only the first few are printed. */
static void
werr(struct worker *w, const char *fmt, ...)
{
	va_list	ap;
	char	buf[512];

	if (atomic_fetch_add(&g_errprinted, 1) >= MG_MAXERRPRINT)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	fprintf(stderr, "miltergen: thread %u: %s\n", w->id, buf);
}

static uint64_t
now_ns(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Milliseconds left until deadline (ns), at least 0. */
static int
ms_left(uint64_t deadline)
{
	uint64_t	now = now_ns();

	if (now >= deadline)
		return 0;
	return (int)((deadline - now + 999999) / 1000000);
}

static void *
xmalloc(size_t n)
{
	void	*p;

	if ((p = malloc(n)) == NULL)
		fatal("out of memory (%zu bytes)", n);
	return p;
}

static unsigned long
parse_num(const char *s, const char *what, unsigned long min,
    unsigned long max)
{
	char		*end;
	unsigned long	 v;

	errno = 0;
	if (*s == '-' || *s == '\0')
		fatal("bad %s: %s", what, s);
	v = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		fatal("bad %s: %s", what, s);
	return v;
}

/* Parse unix:/path, local:/path, /path, inet:PORT@ADDR, inet6:PORT@ADDR. */
static void
parse_spec(const char *spec)
{
	struct sockaddr_un	*sun;
	struct sockaddr_in	*sin;
	struct sockaddr_in6	*sin6;
	const char		*path, *at;
	char			 port[16];
	unsigned long		 p;
	size_t			 n;

	memset(&cfg.addr, 0, sizeof(cfg.addr));
	cfg.spec = spec;
	path = NULL;
	if (strncmp(spec, "unix:", 5) == 0)
		path = spec + 5;
	else if (strncmp(spec, "local:", 6) == 0)
		path = spec + 6;
	else if (spec[0] == '/')
		path = spec;
	if (path != NULL) {
		sun = (struct sockaddr_un *)&cfg.addr;
		sun->sun_family = AF_UNIX;
		n = strlen(path);
		if (n == 0 || n >= sizeof(sun->sun_path))
			fatal("socket path too long or empty: %s", path);
		memcpy(sun->sun_path, path, n + 1);
		cfg.addrlen = (socklen_t)sizeof(*sun);
		return;
	}
	if (strncmp(spec, "inet:", 5) == 0)
		spec += 5;
	else if (strncmp(spec, "inet6:", 6) == 0)
		spec += 6;
	else
		fatal("bad socket spec: %s", cfg.spec);
	if ((at = strchr(spec, '@')) == NULL || (size_t)(at - spec) == 0 ||
	    (size_t)(at - spec) >= sizeof(port))
		fatal("bad socket spec (want inet:PORT@ADDR): %s", cfg.spec);
	memcpy(port, spec, (size_t)(at - spec));
	port[at - spec] = '\0';
	p = parse_num(port, "port", 1, 65535);
	at++;
	sin = (struct sockaddr_in *)&cfg.addr;
	sin6 = (struct sockaddr_in6 *)&cfg.addr;
	if (inet_pton(AF_INET, at, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)p);
		cfg.addrlen = (socklen_t)sizeof(*sin);
	} else if (inet_pton(AF_INET6, at, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)p);
		cfg.addrlen = (socklen_t)sizeof(*sin6);
	} else
		fatal("not a numeric address (no DNS is done): %s", at);
}

/* Build the shared body text: CRLF terminated lines, exactly n bytes. */
static void
make_body(size_t n)
{
	static const char	 words[] = "Lorem ipsum dolor sit amet, "
	    "consectetur adipiscing elit, sed do eiusmod tempor incididunt";
	char			 line[128];
	size_t			 off, k;
	unsigned long		 lineno;
	int			 len;

	g_body = xmalloc(n + 1);
	off = 0;
	lineno = 0;
	while (off < n) {
		len = snprintf(line, sizeof(line), "%05lu %s\r\n", lineno++,
		    words);
		if (len < 0 || (size_t)len >= sizeof(line))
			fatal("body line too long");
		k = (size_t)len;
		if (k > n - off)
			k = n - off;
		memcpy(g_body + off, line, k);
		off += k;
	}
	g_body[n] = '\0';
}

/* Copy n bytes of p into a new NUL terminated string. */
static char *
xstrndup(const char *p, size_t n)
{
	char	*s;

	s = xmalloc(n + 1);
	memcpy(s, p, n);
	s[n] = '\0';
	return s;
}

/* Is the line (without its line end) the start of a header field? */
static int
field_start(const char *p, size_t n)
{
	size_t	i;

	for (i = 0; i < n && p[i] > ' ' && p[i] < 0x7f && p[i] != ':'; i++)
		;
	while (i < n && (p[i] == ' ' || p[i] == '\t'))
		i++;
	return i > 0 && i < n && p[i] == ':' && p[0] != ' ' && p[0] != '\t';
}

/*
 * --message FILE: split the file into header fields and a body with
 * CRLF line ends (a last line without one gets one, as Postfix's
 * records do).  The header ends at the empty line, or at the first line
 * that is neither a field nor a continuation (the body starts there).
 */
static void
read_message(const char *path)
{
	struct mfield	*f;
	FILE		*fp;
	char		*data, *nb, *q;
	const char	*p, *e, *nl, *le, *v, *ls;
	size_t		 len, cap, n, ll, blen, bcap;
	int		 inhdr;

	if ((fp = fopen(path, "rb")) == NULL)
		fatal("%s: %s", path, strerror(errno));
	cap = 65536;
	len = 0;
	data = xmalloc(cap);
	while ((n = fread(data + len, 1, cap - len, fp)) > 0) {
		len += n;
		if (len == cap) {
			cap *= 2;
			if ((nb = realloc(data, cap)) == NULL)
				fatal("out of memory");
			data = nb;
		}
	}
	if (ferror(fp))
		fatal("%s: read error", path);
	fclose(fp);

	bcap = len + len / 8 + 3;	/* CR before every LF at worst */
	g_body = xmalloc(bcap);
	blen = 0;
	g_fields = NULL;
	g_nfields = 0;
	f = NULL;
	inhdr = 1;
	for (p = data, e = data + len; p < e; p = nl) {
		le = memchr(p, '\n', (size_t)(e - p));
		nl = le != NULL ? le + 1 : e;
		if (le == NULL)
			le = e;
		ll = (size_t)(le - p);
		if (ll > 0 && p[ll - 1] == '\r')
			ll--;
		if (inhdr && ll == 0) {
			inhdr = 0;		/* the empty line: not body */
			continue;
		}
		if (inhdr && f != NULL && (p[0] == ' ' || p[0] == '\t')) {
			/* continuation: "\n" and the line as it is */
			n = strlen(f->value);
			if ((q = realloc(f->value, n + 1 + ll + 1)) == NULL)
				fatal("out of memory");
			q[n] = '\n';
			memcpy(q + n + 1, p, ll);
			q[n + 1 + ll] = '\0';
			f->value = q;
			continue;
		}
		if (inhdr && field_start(p, ll)) {
			if (g_nfields % 32 == 0 && (g_fields = realloc(g_fields,
			    (g_nfields + 32) * sizeof(*g_fields))) == NULL)
				fatal("out of memory");
			f = &g_fields[g_nfields++];
			v = memchr(p, ':', ll);
			n = (size_t)(v - p);
			while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
				n--;
			f->name = xstrndup(p, n);
			for (ls = ++v; (size_t)(v - p) < ll &&
			    (*v == ' ' || *v == '\t'); v++)
				;
			f->lead = xstrndup(ls, (size_t)(v - ls));
			f->value = xstrndup(v, ll - (size_t)(v - p));
			continue;
		}
		inhdr = 0;
		if (blen + ll + 2 > bcap) {
			bcap = (blen + ll + 2) * 2;
			if ((nb = realloc(g_body, bcap)) == NULL)
				fatal("out of memory");
			g_body = nb;
		}
		memcpy(g_body + blen, p, ll);
		blen += ll;
		g_body[blen++] = '\r';
		g_body[blen++] = '\n';
	}
	free(data);
	if (g_nfields == 0)
		fatal("%s: no header field", path);
	g_body[blen] = '\0';
	cfg.bodybytes = blen;
}

/* ---- I/O ---- */

static void
conn_init(struct conn *c)
{
	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->icap = 16384;
	c->ibuf = xmalloc(c->icap);
	c->ocap = 2 * MG_CHUNK;
	c->obuf = xmalloc(c->ocap);
}

static void
conn_reset(struct conn *c)
{
	int	i;

	if (c->fd != -1)
		close(c->fd);
	c->fd = -1;
	c->ilen = c->ioff = c->olen = c->pstart = 0;
	c->drop = 0;
	for (i = 0; i < MG_M_COUNT; i++) {
		free(c->symlist[i]);
		c->symlist[i] = NULL;
	}
}

static void
conn_free(struct conn *c)
{
	conn_reset(c);
	free(c->ibuf);
	free(c->obuf);
}

static int
write_all(struct worker *w, struct conn *c, const unsigned char *p,
    size_t len)
{
	struct pollfd	pfd;
	uint64_t	deadline;
	ssize_t		n;
	int		r;

	deadline = now_ns() + (uint64_t)MG_TIMEOUT_MS * 1000000ULL;
	while (len > 0) {
		n = send(c->fd, p, len, MSG_NOSIGNAL);
		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
			werr(w, "write: %s", strerror(errno));
			return -1;
		}
		pfd.fd = c->fd;
		pfd.events = POLLOUT;
		r = poll(&pfd, 1, ms_left(deadline));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			werr(w, "poll: %s", strerror(errno));
			return -1;
		}
		if (r == 0) {
			werr(w, "write timed out after %d ms", MG_TIMEOUT_MS);
			return -1;
		}
	}
	return 0;
}

/*
 * Output is queued like Postfix's VSTREAM does it: commands that get no
 * reply (macros, ABORT, headers under SMFIP_NR_HDR, ...) travel in the
 * same write as the next command, and the queue is flushed only when a
 * reply is awaited or the session ends.
 */
static int
flush_out(struct worker *w, struct conn *c)
{
	int	r;

	if (c->olen == 0)
		return 0;
	r = write_all(w, c, c->obuf, c->olen);
	c->olen = c->pstart = 0;
	return r;
}

/* Make at least need bytes available at c->ibuf + c->ioff. */
static int
fill(struct worker *w, struct conn *c, size_t need, uint64_t deadline)
{
	struct pollfd	 pfd;
	unsigned char	*nb;
	ssize_t		 n;
	int		 r;

	while (c->ilen - c->ioff < need) {
		if (c->ioff + need > c->icap) {
			memmove(c->ibuf, c->ibuf + c->ioff, c->ilen - c->ioff);
			c->ilen -= c->ioff;
			c->ioff = 0;
		}
		if (need > c->icap) {
			if ((nb = realloc(c->ibuf, need)) == NULL) {
				werr(w, "out of memory");
				return -1;
			}
			c->ibuf = nb;
			c->icap = need;
		}
		n = read(c->fd, c->ibuf + c->ilen, c->icap - c->ilen);
		if (n > 0) {
			c->ilen += (size_t)n;
			continue;
		}
		if (n == 0) {
			werr(w, "milter closed the connection");
			return -1;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK) {
			werr(w, "read: %s", strerror(errno));
			return -1;
		}
		pfd.fd = c->fd;
		pfd.events = POLLIN;
		r = poll(&pfd, 1, ms_left(deadline));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			werr(w, "poll: %s", strerror(errno));
			return -1;
		}
		if (r == 0) {
			werr(w, "no reply within %d ms", MG_TIMEOUT_MS);
			return -1;
		}
	}
	return 0;
}

/*
 * Read one packet.  *data stays valid until the next read on c.
 * Returns the command byte, or -1.
 */
static int
read_packet(struct worker *w, struct conn *c, const unsigned char **data,
    size_t *dlen)
{
	uint64_t	deadline;
	uint32_t	len;
	int		cmd;

	if (flush_out(w, c) == -1)
		return -1;
	deadline = now_ns() + (uint64_t)MG_TIMEOUT_MS * 1000000ULL;
	if (fill(w, c, 4, deadline) == -1)
		return -1;
	memcpy(&len, c->ibuf + c->ioff, 4);
	len = ntohl(len);
	if (len == 0 || len > MG_MAXPKT) {
		werr(w, "bad reply length %lu", (unsigned long)len);
		return -1;
	}
	if (fill(w, c, 4 + (size_t)len, deadline) == -1)
		return -1;
	cmd = c->ibuf[c->ioff + 4];
	*data = c->ibuf + c->ioff + 5;
	*dlen = (size_t)len - 1;
	c->ioff += 4 + (size_t)len;
	if (c->ioff == c->ilen)
		c->ioff = c->ilen = 0;
	c->lastreply = now_ns();
	w->replies[cmd & 0xff]++;
	return cmd;
}

static int
pkt_add(struct worker *w, struct conn *c, const void *p, size_t n)
{
	unsigned char	*nb;
	size_t		 want;

	if (n > MG_MAXPKT || c->olen - c->pstart + n > MG_MAXPKT) {
		werr(w, "command too large");
		return -1;
	}
	if (c->olen + n > c->ocap) {
		want = c->ocap * 2;
		if (want < c->olen + n)
			want = c->olen + n;
		if ((nb = realloc(c->obuf, want)) == NULL) {
			werr(w, "out of memory");
			return -1;
		}
		c->obuf = nb;
		c->ocap = want;
	}
	memcpy(c->obuf + c->olen, p, n);
	c->olen += n;
	return 0;
}

/* Start a packet: 4 byte length (filled in by pkt_end) and command. */
static int
pkt_begin(struct worker *w, struct conn *c, int cmd)
{
	unsigned char	hdr[5];

	memset(hdr, 0, sizeof(hdr));
	hdr[4] = (unsigned char)cmd;
	c->pstart = c->olen;
	return pkt_add(w, c, hdr, sizeof(hdr));
}

/* Append a NUL terminated string including its NUL. */
static int
pkt_str(struct worker *w, struct conn *c, const char *s)
{
	return pkt_add(w, c, s, strlen(s) + 1);
}

/* Finish the packet; write out the queue if it got large. */
static int
pkt_end(struct worker *w, struct conn *c)
{
	uint32_t	len;

	len = htonl((uint32_t)(c->olen - c->pstart - 4));
	memcpy(c->obuf + c->pstart, &len, 4);
	c->pstart = c->olen;
	if (c->olen >= 4 * MG_CHUNK)
		return flush_out(w, c);
	return 0;
}

/* Queue a command without payload. */
static int
send_cmd(struct worker *w, struct conn *c, int cmd)
{
	if (pkt_begin(w, c, cmd) == -1)
		return -1;
	return pkt_end(w, c);
}

/* ---- protocol ---- */

/* Is name (with or without braces) listed in the space separated list? */
static int
in_symlist(const char *list, const char *name)
{
	const char	*p, *e;
	size_t		 nl, tl;

	if (*name == '{') {
		name++;
		nl = strlen(name);
		if (nl > 0 && name[nl - 1] == '}')
			nl--;
	} else
		nl = strlen(name);
	for (p = list; *p != '\0'; p = e) {
		while (*p == ' ' || *p == ',')
			p++;
		for (e = p; *e != '\0' && *e != ' ' && *e != ','; e++)
			;
		tl = (size_t)(e - p);
		if (tl >= 2 && p[0] == '{' && p[tl - 1] == '}') {
			p++;
			tl -= 2;
		}
		if (tl == nl && tl > 0 && memcmp(p, name, nl) == 0)
			return 1;
	}
	return 0;
}

/*
 * Send the macros of one stage: the default ones, or the ones the
 * milter asked for with SMFIR_SETSYMLIST.  Macros never get a reply.
 */
static int
send_macros(struct worker *w, struct conn *c, int stage, int cmd,
    const struct macro *m, size_t n)
{
	const char	*list = c->symlist[stage];
	unsigned char	 ch = (unsigned char)cmd;
	size_t		 i, sent = 0;

	if (pkt_begin(w, c, MG_C_MACRO) == -1 || pkt_add(w, c, &ch, 1) == -1)
		return -1;
	for (i = 0; i < n; i++) {
		if (list != NULL ? !in_symlist(list, m[i].name) : !m[i].dflt)
			continue;
		if (pkt_str(w, c, m[i].name) == -1 ||
		    pkt_str(w, c, m[i].value) == -1)
			return -1;
		sent++;
	}
	if (sent == 0) {
		/* nothing to send: drop the packet header again */
		c->olen = c->pstart;
		return 0;
	}
	return pkt_end(w, c);
}

/*
 * Read replies until one that ends the current step.  Progress replies
 * are skipped; modification actions are legal only at end of body.
 */
static int
await_verdict(struct worker *w, struct conn *c, enum stage st)
{
	const unsigned char	*d;
	size_t			 dl;
	int			 cmd;

	for (;;) {
		if ((cmd = read_packet(w, c, &d, &dl)) == -1)
			return V_ERROR;
		switch (cmd) {
		case 'c':
			return V_CONTINUE;
		case 'a':
			return V_ACCEPT;
		case 'r':
			return V_REJECT;
		case 't':
			return V_TEMPFAIL;
		case 'd':
			return V_DISCARD;
		case 'y':
			if (dl >= 3 && d[0] >= '4' && d[0] <= '5' &&
			    d[1] >= '0' && d[1] <= '9' && d[2] >= '0' &&
			    d[2] <= '9')
				w->codes[(d[0] - '0') * 100 + (d[1] - '0') *
				    10 + (d[2] - '0')]++;
			if (dl >= 3 && d[0] == '4')
				return V_TEMPFAIL;
			if (dl >= 3 && d[0] == '5')
				return V_REJECT;
			werr(w, "bad reply code at %s", stage_names[st]);
			return V_ERROR;
		case 's':
			if (st == ST_BODY && (c->proto & MG_P_SKIP))
				return V_SKIP;
			werr(w, "unexpected skip at %s", stage_names[st]);
			return V_ERROR;
		case 'p':
		case 'q':
			/* Postfix takes quarantine at any stage */
			continue;
		case 'f':
		case '4':
			/* connection failure / shutdown: MTA ends session */
			c->drop = 1;
			return V_TEMPFAIL;
		case '+':
		case '-':
		case '2':
		case 'b':
		case 'e':
		case 'h':
		case 'i':
		case 'm':
			if (st == ST_EOB)
				continue;
			/* FALLTHROUGH */
		default:
			werr(w, "unexpected reply '%c' (0x%02x) at %s",
			    cmd >= 0x20 && cmd < 0x7f ? cmd : '?', cmd,
			    stage_names[st]);
			return V_ERROR;
		}
	}
}

static void
save_negotiation(const struct conn *c, uint32_t extra)
{
	int	i;

	pthread_mutex_lock(&g_neglock);
	if (!g_negsaved) {
		g_negsaved = 1;
		g_negver = c->version;
		g_negacts = c->actions;
		g_negproto = c->proto;
		g_negextra = extra;
		for (i = 0; i < MG_M_COUNT; i++)
			if (c->symlist[i] != NULL &&
			    (g_negsym[i] = strdup(c->symlist[i])) == NULL)
				fatal("out of memory");
	}
	pthread_mutex_unlock(&g_neglock);
}

static int
negotiate(struct worker *w, struct conn *c)
{
	const unsigned char	*d, *e, *z;
	uint32_t		 v[3], extra;
	size_t			 dl;
	int			 cmd, i;

	v[0] = htonl(MG_PROT_VERSION);
	v[1] = htonl(MG_ACTS_ALL);
	v[2] = htonl(MG_P_OFFER);
	if (pkt_begin(w, c, MG_C_OPTNEG) == -1 ||
	    pkt_add(w, c, v, sizeof(v)) == -1 || pkt_end(w, c) == -1)
		return -1;
	if ((cmd = read_packet(w, c, &d, &dl)) == -1)
		return -1;
	if (cmd != MG_C_OPTNEG || dl < 12) {
		werr(w, "bad option negotiation reply '%c' len %zu",
		    cmd >= 0x20 && cmd < 0x7f ? cmd : '?', dl);
		return -1;
	}
	memcpy(v, d, sizeof(v));
	c->version = ntohl(v[0]);
	c->actions = ntohl(v[1]);
	c->proto = ntohl(v[2]);
	if (c->version < 2 || c->version > MG_PROT_VERSION) {
		werr(w, "milter speaks unsupported version %lu",
		    (unsigned long)c->version);
		return -1;
	}
	/* Like Postfix: ignore (but report) requests we did not offer. */
	extra = c->proto & ~(MG_P_OFFER | MG_P_MDS_256K | MG_P_MDS_1M);
	c->proto &= MG_P_OFFER;
	c->actions &= MG_ACTS_ALL;
	/* Optional macro lists: (uint32 stage, NUL terminated names)... */
	e = d + dl;
	d += 12;
	while (e - d >= 5) {
		memcpy(&v[0], d, 4);
		i = (int)ntohl(v[0]);
		d += 4;
		if ((z = memchr(d, '\0', (size_t)(e - d))) == NULL) {
			werr(w, "unterminated symbol list");
			return -1;
		}
		if (i >= 0 && i < MG_M_COUNT) {
			free(c->symlist[i]);
			if ((c->symlist[i] = strdup((const char *)d)) == NULL) {
				werr(w, "out of memory");
				return -1;
			}
		}
		d = z + 1;
	}
	save_negotiation(c, extra);
	return 0;
}

static int
open_socket(struct worker *w, struct conn *c)
{
	struct pollfd	pfd;
	uint64_t	deadline;
	socklen_t	sl;
	int		fd, one = 1, err, r;

	deadline = now_ns() + (uint64_t)MG_TIMEOUT_MS * 1000000ULL;
	for (;;) {
		fd = socket(cfg.addr.ss_family,
		    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd == -1) {
			werr(w, "socket: %s", strerror(errno));
			return -1;
		}
		if (cfg.addr.ss_family != AF_UNIX && cfg.nodelay &&
		    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
		    sizeof(one)) == -1) {
			werr(w, "TCP_NODELAY: %s", strerror(errno));
			close(fd);
			return -1;
		}
		if (connect(fd, (struct sockaddr *)&cfg.addr, cfg.addrlen) == 0)
			break;
		if (errno == EAGAIN && cfg.addr.ss_family == AF_UNIX) {
			/* unix listen queue full: retry briefly */
			close(fd);
			if (ms_left(deadline) == 0) {
				werr(w, "connect: listen queue stays full");
				return -1;
			}
			usleep(10000);
			continue;
		}
		if (errno != EINPROGRESS && errno != EINTR) {
			werr(w, "connect %s: %s", cfg.spec, strerror(errno));
			close(fd);
			return -1;
		}
		pfd.fd = fd;
		pfd.events = POLLOUT;
		while ((r = poll(&pfd, 1, ms_left(deadline))) == -1 &&
		    errno == EINTR)
			;
		if (r <= 0) {
			werr(w, "connect %s: %s", cfg.spec,
			    r == 0 ? "timed out" : strerror(errno));
			close(fd);
			return -1;
		}
		err = 0;
		sl = sizeof(err);
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &sl) == -1)
			err = errno;
		if (err != 0) {
			werr(w, "connect %s: %s", cfg.spec, strerror(err));
			close(fd);
			return -1;
		}
		break;
	}
	c->fd = fd;
	return 0;
}

/*
 * Open a milter session up to and including HELO, for a client at ip
 * (family '4' or '6').  Returns -1 on error, otherwise the connection
 * level verdict.  With clat (--connect-only) the session stops after the
 * reply to CONNECT, whose latency goes to *clat.
 */
static int
session_open_ip(struct worker *w, struct conn *c, const char *ip, char family,
    unsigned long connno, uint64_t *clat)
{
	char		 ubuf[160], port[16];
	struct macro	 cm[] = {
		{ "j", "mx-bench.example.test", 1 },
		{ "{daemon_name}", "mx-bench.example.test", 1 },
		{ "{daemon_addr}", "127.0.0.1", 1 },
		{ "{daemon_port}", "25", 1 },
		{ "_", ubuf, 1 },
		{ "v", "Postfix 3.7.11", 0 },
		{ "{client_addr}", ip, 0 },
		{ "{client_name}", "mx.example.test", 0 },
		{ "{client_ptr}", "mx.example.test", 0 },
		{ "{client_port}", port, 0 },
	};
	uint64_t	 t0;
	uint16_t	 cport;
	unsigned char	 fam;
	int		 r, v;

	if (open_socket(w, c) == -1 || negotiate(w, c) == -1)
		return -1;
	cport = (uint16_t)(40000 + (w->id * 97 + (clat != NULL ? connno :
	    w->reconnects)) % 20000);
	r = snprintf(port, sizeof(port), "%u", (unsigned int)cport);
	if (r < 0 || (size_t)r >= sizeof(port))
		return -1;
	r = snprintf(ubuf, sizeof(ubuf), "mx.example.test [%s]", ip);
	if (r < 0 || (size_t)r >= sizeof(ubuf)) {
		werr(w, "client name too long");
		return -1;
	}
	if (clat != NULL && (c->proto & (MG_P_NOCONNECT | MG_P_NR_CONN))) {
		werr(w, "the milter does not reply to CONNECT (protocol "
		    "0x%06lx): nothing to measure", (unsigned long)c->proto);
		return -1;
	}
	if (!(c->proto & MG_P_NOCONNECT)) {
		if (send_macros(w, c, MG_M_CONNECT, MG_C_CONNECT, cm,
		    sizeof(cm) / sizeof(cm[0])) == -1)
			return -1;
		fam = (unsigned char)family;
		cport = htons(cport);
		if (pkt_begin(w, c, MG_C_CONNECT) == -1 ||
		    pkt_str(w, c, "mx.example.test") == -1 ||
		    pkt_add(w, c, &fam, 1) == -1 ||
		    pkt_add(w, c, &cport, 2) == -1 ||
		    pkt_str(w, c, ip) == -1 ||
		    pkt_end(w, c) == -1)
			return -1;
		if (!(c->proto & MG_P_NR_CONN)) {
			/* the queued macros and CONNECT go out here */
			t0 = now_ns();
			v = await_verdict(w, c, ST_CONNECT);
			if (clat != NULL && v != V_ERROR) {
				*clat = c->lastreply - t0;
				return v;
			}
			if (v != V_CONTINUE)
				return v == V_ERROR ? -1 : v;
		}
	}
	if (!(c->proto & MG_P_NOHELO)) {
		if (pkt_begin(w, c, MG_C_HELO) == -1 ||
		    pkt_str(w, c, cfg.helo) == -1 || pkt_end(w, c) == -1)
			return -1;
		if (!(c->proto & MG_P_NR_HELO)) {
			v = await_verdict(w, c, ST_HELO);
			if (v != V_CONTINUE)
				return v == V_ERROR ? -1 : v;
		}
	}
	return V_CONTINUE;
}

static int
session_open(struct worker *w, struct conn *c)
{
	return session_open_ip(w, c, cfg.client_ip, cfg.client_family, 0,
	    NULL);
}

/*
 * Send one header (honouring SMFIP_HDR_LEADSPC) and await its reply.
 * Like Postfix, the end-of-header macros go with every header.
 */
static int
send_header(struct worker *w, struct conn *c, const char *name,
    const char *lead, const char *value, const struct macro *im)
{
	if (send_macros(w, c, MG_M_EOH, MG_C_HEADER, im, 1) == -1 ||
	    pkt_begin(w, c, MG_C_HEADER) == -1 || pkt_str(w, c, name) == -1)
		return V_ERROR;
	if ((c->proto & MG_P_HDR_LEADSPC) &&
	    pkt_add(w, c, lead, strlen(lead)) == -1)
		return V_ERROR;
	if (pkt_str(w, c, value) == -1 || pkt_end(w, c) == -1)
		return V_ERROR;
	if (c->proto & MG_P_NR_HDR)
		return V_CONTINUE;
	return await_verdict(w, c, ST_HEADER);
}

/* DATA, headers, EOH, body and end of body.  Returns the verdict. */
static int
send_content(struct worker *w, struct conn *c, const char *qid,
    const char *rcpt1)
{
	char		 received[512], subject[128], msgid[128], to[128];
	struct macro	 im[] = { { "i", qid, 1 } };
	const char	*hv[][2] = {
		{ "Received", received },
		{ "From", "Sender <sender@example.test>" },
		{ "To", to },
		{ "Subject", subject },
		{ "Date", g_date },
		{ "Message-ID", msgid },
		{ "MIME-Version", "1.0" },
		{ "Content-Type", "text/plain; charset=utf-8" },
	};
	size_t		 off, n, i;
	int		 r, v;

	if (!(c->proto & MG_P_NODATA)) {
		if (send_macros(w, c, MG_M_DATA, MG_C_DATA, im, 1) == -1 ||
		    send_cmd(w, c, MG_C_DATA) == -1)
			return V_ERROR;
		if (!(c->proto & MG_P_NR_DATA) &&
		    (v = await_verdict(w, c, ST_DATA)) != V_CONTINUE)
			return v;
	}
	if (!(c->proto & MG_P_NOHDRS) && g_fields != NULL) {
		for (i = 0; i < g_nfields; i++)
			if ((v = send_header(w, c, g_fields[i].name,
			    g_fields[i].lead, g_fields[i].value, im)) !=
			    V_CONTINUE)
				return v;
	} else if (!(c->proto & MG_P_NOHDRS)) {
		r = snprintf(received, sizeof(received),
		    "from mx.example.test (mx.example.test [%s])\n"
		    "\tby mx-bench.example.test (Postfix) with ESMTP id %s\n"
		    "\tfor <%s>; %s", cfg.client_ip, qid, rcpt1, g_date);
		if (r < 0 || (size_t)r >= sizeof(received))
			return V_ERROR;
		r = snprintf(subject, sizeof(subject),
		    "Benchmark message %s", qid);
		if (r < 0 || (size_t)r >= sizeof(subject))
			return V_ERROR;
		r = snprintf(msgid, sizeof(msgid), "<%s.%u@example.test>",
		    qid, w->id);
		if (r < 0 || (size_t)r >= sizeof(msgid))
			return V_ERROR;
		r = snprintf(to, sizeof(to), "<%s>", rcpt1);
		if (r < 0 || (size_t)r >= sizeof(to))
			return V_ERROR;
		for (i = 0; i < sizeof(hv) / sizeof(hv[0]); i++)
			if ((v = send_header(w, c, hv[i][0], " ", hv[i][1],
			    im)) != V_CONTINUE)
				return v;
	}
	if (!(c->proto & MG_P_NOEOH)) {
		if (send_macros(w, c, MG_M_EOH, MG_C_EOH, im, 1) == -1 ||
		    send_cmd(w, c, MG_C_EOH) == -1)
			return V_ERROR;
		if (!(c->proto & MG_P_NR_EOH) &&
		    (v = await_verdict(w, c, ST_EOH)) != V_CONTINUE)
			return v;
	}
	if (!(c->proto & MG_P_NOBODY)) {
		for (off = 0; off < cfg.bodybytes; off += n) {
			n = cfg.bodybytes - off;
			if (n > MG_CHUNK)
				n = MG_CHUNK;
			if (pkt_begin(w, c, MG_C_BODY) == -1 ||
			    pkt_add(w, c, g_body + off, n) == -1 ||
			    pkt_end(w, c) == -1)
				return V_ERROR;
			if (c->proto & MG_P_NR_BODY)
				continue;
			v = await_verdict(w, c, ST_BODY);
			if (v == V_SKIP)
				break;
			if (v != V_CONTINUE)
				return v;
		}
	}
	if (send_macros(w, c, MG_M_EOM, MG_C_BODYEOB, im, 1) == -1 ||
	    send_cmd(w, c, MG_C_BODYEOB) == -1)
		return V_ERROR;
	c->eobdone = 1;
	return await_verdict(w, c, ST_EOB);
}

/*
 * Run one message through the session.  Returns -1 on a connection
 * error (the caller counts it), otherwise 0 with the verdict counted
 * and the latency recorded.
 */
static int
do_message(struct worker *w, struct conn *c, unsigned long msgno)
{
	char		 qid[32], rcpt[64], rcpt1[64], raddr[80];
	struct macro	 mm[] = {
		{ "i", qid, 1 },
		{ "{mail_addr}", cfg.sender, 1 },
		{ "{mail_host}", "mx.example.test", 0 },
		{ "{mail_mailer}", "smtp", 0 },
	};
	struct macro	 rm[] = {
		{ "i", qid, 1 },
		{ "{rcpt_addr}", rcpt, 1 },
		{ "{rcpt_host}", "example.test", 1 },
		{ "{rcpt_mailer}", "smtp", 1 },
	};
	char		 from[320];
	uint64_t	 t0;
	unsigned int	 i, ok, rej, tmp;
	int		 r, v;

	r = snprintf(qid, sizeof(qid), "%02X%09lX", w->id & 0xff, msgno);
	if (r < 0 || (size_t)r >= sizeof(qid))
		return -1;
	r = snprintf(from, sizeof(from), "<%s>", cfg.sender);
	if (r < 0 || (size_t)r >= sizeof(from)) {
		werr(w, "sender too long");
		return -1;
	}
	r = snprintf(rcpt1, sizeof(rcpt1), "rcpt1@example.test");
	if (r < 0 || (size_t)r >= sizeof(rcpt1))
		return -1;

	t0 = now_ns();
	if (w->t_first == 0)
		w->t_first = t0;
	c->lastreply = 0;
	c->eobdone = 0;
	v = V_CONTINUE;
	if (!(c->proto & MG_P_NOMAIL)) {
		if (send_macros(w, c, MG_M_ENVFROM, MG_C_MAIL, mm,
		    sizeof(mm) / sizeof(mm[0])) == -1)
			return -1;
		if (pkt_begin(w, c, MG_C_MAIL) == -1 ||
		    pkt_str(w, c, from) == -1 || pkt_end(w, c) == -1)
			return -1;
		if (!(c->proto & MG_P_NR_MAIL))
			v = await_verdict(w, c, ST_MAIL);
	}
	if (v == V_ERROR)
		return -1;
	ok = rej = tmp = 0;
	for (i = 1; v == V_CONTINUE && i <= cfg.rcpts; i++) {
		if (c->proto & MG_P_NORCPT) {
			ok++;
			continue;
		}
		if (cfg.unique_rcpts)
			r = snprintf(rcpt, sizeof(rcpt), "u%u.%lu.%u@example.test",
			    w->id, msgno, i);
		else
			r = snprintf(rcpt, sizeof(rcpt), "rcpt%u@example.test",
			    i);
		if (r < 0 || (size_t)r >= sizeof(rcpt))
			return -1;
		r = snprintf(raddr, sizeof(raddr), "<%s>", rcpt);
		if (r < 0 || (size_t)r >= sizeof(raddr))
			return -1;
		if (send_macros(w, c, MG_M_ENVRCPT, MG_C_RCPT, rm,
		    sizeof(rm) / sizeof(rm[0])) == -1)
			return -1;
		if (pkt_begin(w, c, MG_C_RCPT) == -1 ||
		    pkt_str(w, c, raddr) == -1 || pkt_end(w, c) == -1)
			return -1;
		if (c->proto & MG_P_NR_RCPT) {
			ok++;
			continue;
		}
		switch ((v = await_verdict(w, c, ST_RCPT))) {
		case V_CONTINUE:
			ok++;
			break;
		case V_REJECT:
			/* per recipient: the transaction goes on */
			rej++;
			v = c->drop ? V_REJECT : V_CONTINUE;
			break;
		case V_TEMPFAIL:
			tmp++;
			v = c->drop ? V_TEMPFAIL : V_CONTINUE;
			break;
		case V_ERROR:
			return -1;
		default:
			break;	/* accept or discard: message decided */
		}
	}
	if (v == V_CONTINUE && ok == 0 && (rej > 0 || tmp > 0))
		v = rej > 0 ? V_REJECT : V_TEMPFAIL;
	if (v == V_CONTINUE && cfg.full && !c->drop)
		v = send_content(w, c, qid, rcpt1);
	if (v == V_ERROR)
		return -1;
	/* latency ends at the last reply of this message */
	w->lat[w->nlat++] = (c->lastreply > t0 ? c->lastreply : now_ns()) -
	    t0;
	w->verdicts[v]++;
	/*
	 * Envelope mode, or a verdict before end of body: the MTA ends the
	 * transaction, which the milter learns through ABORT (no reply).
	 * After end of body the next MAIL simply starts a new message.
	 */
	if (!c->drop && !c->eobdone && send_cmd(w, c, MG_C_ABORT) == -1)
		return -1;
	return 0;
}

/*
 * --connect-only: each of the worker's count connections opens a
 * session, times the reply to CONNECT, says QUIT and closes.
 */
static void
worker_connects(struct worker *w)
{
	struct conn	 c;
	struct in_addr	 in;
	char		 ipbuf[INET_ADDRSTRLEN];
	const char	*ip;
	unsigned long	 i, n, consec = 0;
	uint64_t	 lat, t0;
	int		 v;

	conn_init(&c);
	for (i = 0; i < w->count; i++) {
		n = atomic_fetch_add(&g_connidx, 1);
		ip = cfg.client_ip;
		if (cfg.range != NULL) {
			in.s_addr = htonl(cfg.range_first +
			    (uint32_t)(n % cfg.range_hosts));
			if (inet_ntop(AF_INET, &in, ipbuf, sizeof(ipbuf)) ==
			    NULL)
				fatal("inet_ntop: %s", strerror(errno));
			ip = ipbuf;
		}
		t0 = now_ns();
		if (w->t_first == 0)
			w->t_first = t0;
		lat = 0;
		v = session_open_ip(w, &c, ip, cfg.client_family, n, &lat);
		if (v == -1) {
			w->verdicts[V_ERROR]++;
			conn_reset(&c);
			if (++consec >= MG_MAXCONSEC) {
				werr(w, "%d errors in a row, giving up the "
				    "remaining %lu connections", MG_MAXCONSEC,
				    w->count - i - 1);
				w->verdicts[V_ERROR] += w->count - i - 1;
				break;
			}
			continue;
		}
		consec = 0;
		w->lat[w->nlat++] = lat;
		w->verdicts[v]++;
		if (!c.drop && send_cmd(w, &c, MG_C_QUIT) == 0)
			(void)flush_out(w, &c);
		conn_reset(&c);
	}
	w->t_end = now_ns();
	conn_free(&c);
}

static void *
worker_main(void *arg)
{
	struct worker	*w = arg;
	struct conn	 c;
	unsigned long	 i, consec = 0;
	int		 isopen = 0, v;

	if (cfg.connect_only) {
		worker_connects(w);
		return NULL;
	}
	conn_init(&c);
	for (i = 0; i < w->count; i++) {
		if (!isopen) {
			if (i > 0)
				w->reconnects++;
			v = session_open(w, &c);
			if (v == -1) {
				/* cannot even set up a session: give up */
				w->verdicts[V_ERROR] += w->count - i;
				conn_reset(&c);
				break;
			}
			if (v != V_CONTINUE) {
				werr(w, "connection level verdict %s; counting "
				    "the remaining %lu messages with it",
				    verdict_names[v], w->count - i);
				w->verdicts[v] += w->count - i;
				if (!c.drop && send_cmd(w, &c, MG_C_QUIT) == 0)
					(void)flush_out(w, &c);
				conn_reset(&c);
				break;
			}
			isopen = 1;
		}
		if (do_message(w, &c, w->first + i) == -1) {
			w->verdicts[V_ERROR]++;
			conn_reset(&c);
			isopen = 0;
			if (++consec >= MG_MAXCONSEC) {
				werr(w, "%d errors in a row, giving up the "
				    "remaining %lu messages", MG_MAXCONSEC,
				    w->count - i - 1);
				w->verdicts[V_ERROR] += w->count - i - 1;
				break;
			}
			continue;
		}
		consec = 0;
		if (c.drop) {
			conn_reset(&c);
			isopen = 0;
		}
	}
	if (isopen && send_cmd(w, &c, MG_C_QUIT) == 0)
		(void)flush_out(w, &c);
	w->t_end = now_ns();
	conn_free(&c);
	return NULL;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t	x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Nearest rank percentile of a sorted array, in milliseconds. */
static double
pct_ms(const uint64_t *v, unsigned long n, double p)
{
	unsigned long	k;

	if (n == 0)
		return 0.0;
	k = (unsigned long)(p * (double)n + 0.999999);
	if (k < 1)
		k = 1;
	if (k > n)
		k = n;
	return (double)v[k - 1] / 1e6;
}

static void
print_flags(uint32_t proto)
{
	static const char *const names[] = {
		"NOCONNECT", "NOHELO", "NOMAIL", "NORCPT", "NOBODY", "NOHDRS",
		"NOEOH", "NR_HDR", "NOUNKNOWN", "NODATA", "SKIP", "RCPT_REJ",
		"NR_CONN", "NR_HELO", "NR_MAIL", "NR_RCPT", "NR_DATA",
		"NR_UNKN", "NR_EOH", "NR_BODY", "HDR_LEADSPC"
	};
	size_t	i;
	int	first = 1;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (proto & (1U << i)) {
			printf("%s%s", first ? "" : ",", names[i]);
			first = 0;
		}
	if (first)
		printf("none");
}

/* --client-ip-range A.B.C.D/N: the addresses handed out in turn. */
static void
parse_range(const char *spec)
{
	char		 buf[INET_ADDRSTRLEN + 4], *slash;
	struct in_addr	 in;
	unsigned long	 bits;
	uint32_t	 base, mask;

	if (strlen(spec) >= sizeof(buf))
		fatal("bad --client-ip-range: %s", spec);
	strcpy(buf, spec);
	if ((slash = strchr(buf, '/')) == NULL)
		fatal("bad --client-ip-range (want A.B.C.D/N): %s", spec);
	*slash++ = '\0';
	bits = parse_num(slash, "--client-ip-range prefix length", 8, 32);
	if (inet_pton(AF_INET, buf, &in) != 1)
		fatal("bad --client-ip-range (IPv4 only): %s", spec);
	mask = bits == 32 ? 0xffffffffU : ~(0xffffffffU >> bits);
	base = ntohl(in.s_addr) & mask;
	cfg.range = spec;
	if (bits >= 31) {
		cfg.range_first = base;
		cfg.range_hosts = bits == 32 ? 1 : 2;
	} else {
		cfg.range_first = base + 1;
		cfg.range_hosts = (uint32_t)((1UL << (32 - bits)) - 2);
	}
}

int
main(int argc, char *argv[])
{
	static const struct option	 longopts[] = {
		{ "client-ip", required_argument, NULL, 'I' },
		{ "helo", required_argument, NULL, 'H' },
		{ "from", required_argument, NULL, 'F' },
		{ "nagle", no_argument, NULL, 'G' },
		{ "connect-only", no_argument, NULL, 'C' },
		{ "client-ip-range", required_argument, NULL, 'R' },
		{ "unique-rcpts", no_argument, NULL, 'U' },
		{ "message", required_argument, NULL, 'M' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	static const char		 rnames[] = "acrtydsp+-2behimqf4";
	struct worker			*ws;
	struct sigaction		 sa;
	struct in6_addr			 a6;
	struct tm			 tm;
	uint64_t			*lat, t0, t1, emin, emax;
	unsigned long			 tot[V_COUNT], rep[256], nlat, per, rem;
	unsigned long			 codes[600];
	unsigned long			 first, done;
	time_t				 now;
	double				 secs;
	const char			*mode = NULL;
	unsigned int			 i;
	size_t				 k;
	int				 ch, r;

	memset(&cfg, 0, sizeof(cfg));
	cfg.bodybytes = 4096;
	cfg.rcpts = 1;
	cfg.client_ip = "192.0.2.10";
	cfg.helo = "mail.example.test";
	cfg.sender = "sender@example.test";
	cfg.nodelay = 1;
	while ((ch = getopt_long(argc, argv, "s:c:n:m:b:r:vh", longopts,
	    NULL)) != -1) {
		switch (ch) {
		case 's':
			parse_spec(optarg);
			break;
		case 'c':
			cfg.conc = (unsigned int)parse_num(optarg,
			    "concurrency", 1, 4096);
			break;
		case 'n':
			cfg.msgs = parse_num(optarg, "message count", 1,
			    100000000UL);
			break;
		case 'm':
			mode = optarg;
			break;
		case 'b':
			cfg.bodybytes = (size_t)parse_num(optarg, "body size",
			    0, 256UL * 1024 * 1024);
			break;
		case 'r':
			cfg.rcpts = (unsigned int)parse_num(optarg,
			    "recipient count", 1, 1000);
			break;
		case 'I':
			cfg.client_ip = optarg;
			break;
		case 'H':
			cfg.helo = optarg;
			break;
		case 'F':
			cfg.sender = optarg;
			break;
		case 'G':
			cfg.nodelay = 0;
			break;
		case 'C':
			cfg.connect_only = 1;
			break;
		case 'R':
			parse_range(optarg);
			break;
		case 'U':
			cfg.unique_rcpts = 1;
			break;
		case 'M':
			cfg.message = optarg;
			break;
		case 'v':
			cfg.verbose = 1;
			break;
		default:
			usage();
		}
	}
	if (optind != argc || cfg.spec == NULL || cfg.conc == 0 ||
	    cfg.msgs == 0 || (mode == NULL) == !cfg.connect_only)
		usage();
	if (cfg.range != NULL && !cfg.connect_only)
		fatal("--client-ip-range goes with --connect-only");
	if (cfg.message != NULL && (cfg.connect_only ||
	    strcmp(mode, "full") != 0))
		fatal("--message goes with -m full");
	if (cfg.connect_only)
		cfg.full = 0;
	else if (strcmp(mode, "envelope") == 0)
		cfg.full = 0;
	else if (strcmp(mode, "full") == 0)
		cfg.full = 1;
	else
		fatal("bad mode %s (envelope or full)", mode);
	if (cfg.range != NULL && cfg.msgs > cfg.range_hosts)
		fprintf(stderr, "miltergen: warning: %lu connections but %lu "
		    "addresses in %s: addresses repeat\n", cfg.msgs,
		    (unsigned long)cfg.range_hosts, cfg.range);
	if (inet_pton(AF_INET, cfg.client_ip, &a6) == 1)
		cfg.client_family = '4';
	else if (inet_pton(AF_INET6, cfg.client_ip, &a6) == 1)
		cfg.client_family = '6';
	else
		fatal("bad client address: %s", cfg.client_ip);
	if (cfg.range != NULL)
		cfg.client_family = '4';
	if (strlen(cfg.sender) > 256 || strlen(cfg.helo) > 255)
		fatal("sender or helo too long");
	if (cfg.conc > cfg.msgs)
		cfg.conc = (unsigned int)cfg.msgs;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	if (sigaction(SIGPIPE, &sa, NULL) == -1)
		fatal("sigaction: %s", strerror(errno));

	now = time(NULL);
	if (gmtime_r(&now, &tm) == NULL ||
	    strftime(g_date, sizeof(g_date), "%a, %d %b %Y %H:%M:%S +0000",
	    &tm) == 0)
		fatal("cannot format date");
	if (cfg.message != NULL)
		read_message(cfg.message);
	else
		make_body(cfg.bodybytes);

	lat = xmalloc(cfg.msgs * sizeof(*lat));
	ws = calloc(cfg.conc, sizeof(*ws));
	if (ws == NULL)
		fatal("out of memory");
	per = cfg.msgs / cfg.conc;
	rem = cfg.msgs % cfg.conc;
	first = 0;
	for (i = 0; i < cfg.conc; i++) {
		ws[i].id = i;
		ws[i].first = first;
		ws[i].count = per + (i < rem ? 1 : 0);
		ws[i].lat = lat + first;
		first += ws[i].count;
	}

	t0 = now_ns();
	for (i = 0; i < cfg.conc; i++)
		if ((r = pthread_create(&ws[i].tid, NULL, worker_main,
		    &ws[i])) != 0)
			fatal("pthread_create: %s", strerror(r));
	for (i = 0; i < cfg.conc; i++)
		if ((r = pthread_join(ws[i].tid, NULL)) != 0)
			fatal("pthread_join: %s", strerror(r));
	t1 = now_ns();
	secs = (double)(t1 - t0) / 1e9;

	memset(tot, 0, sizeof(tot));
	memset(rep, 0, sizeof(rep));
	memset(codes, 0, sizeof(codes));
	nlat = 0;
	emin = UINT64_MAX;
	emax = 0;
	for (i = 0; i < cfg.conc; i++) {
		if (ws[i].t_end < emin)
			emin = ws[i].t_end;
		if (ws[i].t_end > emax)
			emax = ws[i].t_end;
		if (cfg.verbose)
			printf("thread %u msgs=%lu done=%lu reconnects=%lu "
			    "first=%.3f end=%.3f\n", i, ws[i].count,
			    ws[i].nlat, ws[i].reconnects, ws[i].t_first == 0 ?
			    0.0 : (double)(ws[i].t_first - t0) / 1e9,
			    (double)(ws[i].t_end - t0) / 1e9);
		for (k = 0; k < V_COUNT; k++)
			tot[k] += ws[i].verdicts[k];
		for (k = 0; k < 256; k++)
			rep[k] += ws[i].replies[k];
		for (k = 400; k < 600; k++)
			codes[k] += ws[i].codes[k];
		/* compact the latency slices into the front of lat */
		memmove(lat + nlat, ws[i].lat, ws[i].nlat * sizeof(*lat));
		nlat += ws[i].nlat;
	}
	qsort(lat, nlat, sizeof(*lat), cmp_u64);
	done = cfg.msgs - tot[V_ERROR];

	if (cfg.connect_only)
		printf("miltergen: socket=%s mode=connect-only concurrency=%u "
		    "connections=%lu client=%s nodelay=%s\n", cfg.spec,
		    cfg.conc, cfg.msgs, cfg.range != NULL ? cfg.range :
		    cfg.client_ip, cfg.nodelay ? "yes" : "no");
	else
		printf("miltergen: socket=%s mode=%s concurrency=%u msgs=%lu "
		    "body=%zu rcpts=%u nodelay=%s%s%s\n", cfg.spec,
		    cfg.full ? "full" : "envelope", cfg.conc, cfg.msgs,
		    cfg.bodybytes, cfg.rcpts, cfg.nodelay ? "yes" : "no",
		    cfg.message != NULL ? " message=" : "",
		    cfg.message != NULL ? cfg.message : "");
	if (g_negsaved) {
		printf("negotiated version=%lu actions=0x%03lx "
		    "protocol=0x%06lx (", (unsigned long)g_negver,
		    (unsigned long)g_negacts, (unsigned long)g_negproto);
		print_flags(g_negproto);
		printf(")");
		if (g_negextra != 0)
			printf(" ignored-unoffered=0x%08lx",
			    (unsigned long)g_negextra);
		printf("\n");
		for (k = 0; k < MG_M_COUNT; k++) {
			if (g_negsym[k] != NULL)
				printf("symlist stage=%zu macros=\"%s\"\n", k,
				    g_negsym[k]);
			free(g_negsym[k]);
		}
	}
	/* a wide spread means the connections were not served evenly */
	printf("threads first-done=%.3f last-done=%.3f\n",
	    (double)(emin - t0) / 1e9, (double)(emax - t0) / 1e9);
	printf("replies");
	for (k = 0; rnames[k] != '\0'; k++)
		if (rep[(unsigned char)rnames[k]] != 0)
			printf(" %c=%lu", rnames[k],
			    rep[(unsigned char)rnames[k]]);
	printf("\n");
	for (k = 400, r = 0; k < 600; k++)
		if (codes[k] != 0)
			printf("%s %zu=%lu", r++ == 0 ? "codes" : "", k,
			    codes[k]);
	if (r != 0)
		printf("\n");
	printf("result msgs=%lu secs=%.3f rate=%.1f p50=%.3f p99=%.3f "
	    "max=%.3f", cfg.msgs, secs, secs > 0 ? (double)done / secs : 0.0,
	    pct_ms(lat, nlat, 0.50), pct_ms(lat, nlat, 0.99),
	    pct_ms(lat, nlat, 1.0));
	for (k = 0; k < V_COUNT; k++)
		printf(" %s=%lu", verdict_names[k], tot[k]);
	printf("\n");
	free(lat);
	free(ws);
	free(g_body);
	for (k = 0; k < g_nfields; k++) {
		free(g_fields[k].name);
		free(g_fields[k].lead);
		free(g_fields[k].value);
	}
	free(g_fields);
	return tot[V_ERROR] != 0 ? 1 : 0;
}
