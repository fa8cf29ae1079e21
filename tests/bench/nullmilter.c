/*
 * nullmilter.c -- a do-nothing libmilter filter for the portero benchmark.
 *
 * Every callback returns SMFIS_CONTINUE (end of message returns
 * SMFIS_ACCEPT), so what is measured is libmilter's own per message
 * cost: the ceiling any libmilter based milter can reach.  Without -R
 * there is no negotiate callback, so libmilter chooses the protocol flags
 * itself; -R asks for the no-reply flags portero asks for (HELO, MAIL,
 * DATA, headers, end of headers, body), the fair ceiling for portero.
 *
 *   nullmilter -p unix:/path | inet:PORT@127.0.0.1 [-N] [-H] [-R]
 *
 * -H makes end of message add one header (smfi_addheader) before
 * accepting: libmilter then writes two replies back to back, which is
 * the pattern of a milter that tags messages (and where Nagle stalls).
 *
 * -N sets TCP_NODELAY on the listening inet socket.  libmilter opens
 * that socket in smfi_opensocket() and does not hand it out, so it is
 * found by scanning the descriptors for a listening AF_INET/AF_INET6
 * socket.  Linux copies TCP_NODELAY to the sockets accept() returns.
 * libmilter writes each reply with one writev(), so this only matters
 * when it writes two replies in a row without reading in between
 * (-H: header + accept): without it the second reply waits for the
 * MTA's delayed ACK, ~40 ms per message on Linux.
 *
 * Runs smfi_main() in the foreground; SIGTERM/SIGINT stop it (libmilter
 * handles them; it notices within a few seconds).
 */

#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libmilter/mfapi.h>

static sfsistat	nm_connect(SMFICTX *, char *, struct sockaddr *);
static sfsistat	nm_helo(SMFICTX *, char *);
static sfsistat	nm_envfrom(SMFICTX *, char **);
static sfsistat	nm_envrcpt(SMFICTX *, char **);
static sfsistat	nm_header(SMFICTX *, char *, char *);
static sfsistat	nm_eoh(SMFICTX *);
static sfsistat	nm_body(SMFICTX *, unsigned char *, size_t);
static sfsistat	nm_eom(SMFICTX *);
static sfsistat	nm_abort(SMFICTX *);
static sfsistat	nm_close(SMFICTX *);
static int	set_listen_nodelay(void);
static void	usage(void) __attribute__((noreturn));

static int	addhdr;		/* -H */
static int	noreply;	/* -R */

/* With -R the stages that never answer are negotiated as no-reply, as
 * portero does, so the ceiling pays the same round trips. */
#define NR_FLAGS	(SMFIP_NOUNKNOWN | SMFIP_NODATA | SMFIP_NR_HELO | \
	SMFIP_NR_MAIL | SMFIP_NR_DATA | SMFIP_NR_UNKN | SMFIP_NR_HDR | \
	SMFIP_NR_EOH | SMFIP_NR_BODY)

static sfsistat
nm_negotiate(SMFICTX *ctx, unsigned long f0, unsigned long f1,
    unsigned long f2, unsigned long f3, unsigned long *pf0,
    unsigned long *pf1, unsigned long *pf2, unsigned long *pf3)
{
	(void)ctx;
	(void)f2;
	(void)f3;
	*pf0 = f0 & (addhdr ? SMFIF_ADDHDRS : 0);
	*pf1 = f1 & NR_FLAGS;
	*pf2 = 0;
	*pf3 = 0;
	return SMFIS_CONTINUE;
}

/* The reply of a stage: none when it was negotiated as no-reply. */
static sfsistat
cont(void)
{
	return noreply ? SMFIS_NOREPLY : SMFIS_CONTINUE;
}

static sfsistat
nm_connect(SMFICTX *ctx, char *host, struct sockaddr *sa)
{
	(void)ctx;
	(void)host;
	(void)sa;
	return SMFIS_CONTINUE;
}

static sfsistat
nm_helo(SMFICTX *ctx, char *helo)
{
	(void)ctx;
	(void)helo;
	return cont();
}

static sfsistat
nm_envfrom(SMFICTX *ctx, char **argv)
{
	(void)ctx;
	(void)argv;
	return cont();
}

static sfsistat
nm_envrcpt(SMFICTX *ctx, char **argv)
{
	(void)ctx;
	(void)argv;
	return SMFIS_CONTINUE;
}

static sfsistat
nm_header(SMFICTX *ctx, char *name, char *value)
{
	(void)ctx;
	(void)name;
	(void)value;
	return cont();
}

static sfsistat
nm_eoh(SMFICTX *ctx)
{
	(void)ctx;
	return cont();
}

static sfsistat
nm_body(SMFICTX *ctx, unsigned char *chunk, size_t len)
{
	(void)ctx;
	(void)chunk;
	(void)len;
	return cont();
}

static sfsistat
nm_eom(SMFICTX *ctx)
{
	if (addhdr && smfi_addheader(ctx, "X-Null", "yes") != MI_SUCCESS)
		return SMFIS_TEMPFAIL;
	return SMFIS_ACCEPT;
}

static sfsistat
nm_abort(SMFICTX *ctx)
{
	(void)ctx;
	return SMFIS_CONTINUE;
}

static sfsistat
nm_close(SMFICTX *ctx)
{
	(void)ctx;
	return SMFIS_CONTINUE;
}

/*
 * Find libmilter's listening inet socket and set TCP_NODELAY on it.
 * Returns the number of sockets changed, or -1 on error.
 */
static int
set_listen_nodelay(void)
{
	struct sockaddr_storage	ss;
	socklen_t		sl;
	int			fd, v, one = 1, n = 0;

	for (fd = 3; fd < 1024; fd++) {
		v = 0;
		sl = sizeof(v);
		if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &sl) == -1 ||
		    v != 1)
			continue;
		sl = sizeof(ss);
		if (getsockname(fd, (struct sockaddr *)&ss, &sl) == -1)
			continue;
		if (ss.ss_family != AF_INET && ss.ss_family != AF_INET6)
			continue;
		if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
		    sizeof(one)) == -1) {
			fprintf(stderr, "nullmilter: TCP_NODELAY on fd %d: "
			    "%s\n", fd, strerror(errno));
			return -1;
		}
		n++;
	}
	return n;
}

static void
usage(void)
{
	fprintf(stderr, "usage: nullmilter -p unix:/path|inet:PORT@ADDR "
	    "[-N] [-H] [-R]\n");
	exit(2);
}

int
main(int argc, char *argv[])
{
	struct smfiDesc	 desc;
	char		*conn = NULL;
	int		 ch, nodelay = 0, n;

	while ((ch = getopt(argc, argv, "p:NHR")) != -1) {
		switch (ch) {
		case 'p':
			conn = optarg;
			break;
		case 'N':
			nodelay = 1;
			break;
		case 'H':
			addhdr = 1;
			break;
		case 'R':
			noreply = 1;
			break;
		default:
			usage();
		}
	}
	if (conn == NULL || optind != argc)
		usage();

	memset(&desc, 0, sizeof(desc));
	desc.xxfi_name = "nullmilter";
	desc.xxfi_version = SMFI_VERSION;
	desc.xxfi_flags = addhdr ? SMFIF_ADDHDRS : SMFIF_NONE;
	desc.xxfi_connect = nm_connect;
	desc.xxfi_helo = nm_helo;
	desc.xxfi_envfrom = nm_envfrom;
	desc.xxfi_envrcpt = nm_envrcpt;
	desc.xxfi_header = nm_header;
	desc.xxfi_eoh = nm_eoh;
	desc.xxfi_body = nm_body;
	desc.xxfi_eom = nm_eom;
	desc.xxfi_abort = nm_abort;
	desc.xxfi_close = nm_close;
	if (noreply)
		desc.xxfi_negotiate = nm_negotiate;

	if (smfi_setconn(conn) == MI_FAILURE) {
		fprintf(stderr, "nullmilter: smfi_setconn %s failed\n", conn);
		return 1;
	}
	if (smfi_setbacklog(128) == MI_FAILURE) {
		fprintf(stderr, "nullmilter: smfi_setbacklog failed\n");
		return 1;
	}
	if (smfi_register(desc) == MI_FAILURE) {
		fprintf(stderr, "nullmilter: smfi_register failed\n");
		return 1;
	}
	if (smfi_opensocket(1) == MI_FAILURE) {
		fprintf(stderr, "nullmilter: cannot open %s\n", conn);
		return 1;
	}
	if (nodelay) {
		if ((n = set_listen_nodelay()) == -1)
			return 1;
		if (n == 0)
			fprintf(stderr, "nullmilter: -N: no listening inet "
			    "socket (unix transport?), nothing to do\n");
	}
	return smfi_main() == MI_SUCCESS ? 0 : 1;
}
