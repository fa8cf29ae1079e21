/*
 * scanner_int.h - internal to scanner*.c: what the scan manager
 * (scanner.c) and its scanner processes (scanworker.c) share: a request
 * taken from the queue and its I/O, and what a scanner takes from its
 * manager when it is forked.  Nothing else includes this; the interface
 * is scanner.h.
 *
 * Not thread-safe, and need not be: the manager and its scanners are
 * single-threaded processes.
 */
#ifndef PORTERO_SCANNER_INT_H
#define PORTERO_SCANNER_INT_H

#include <stddef.h>
#include <stdint.h>

#include "scanner.h"

struct cl_engine;

/* One request taken from the queue. */
struct request {
	char	 buf[SCANPROTO_MAX];
	size_t	 len;
	int	 msgfd, replyfd;
};

/* What a scanner takes from its manager at fork: fixed for its life. */
struct scanner_env {
	struct cl_engine	*engine;	/* the generation's, shared
						 * copy-on-write */
	unsigned		 gen;
	uint64_t		 sigs;		/* in the engine */
	int			 heuristic_alerts;
	unsigned		 timeout;	/* s; a scan's hard bound */
	unsigned		 delay_ms;	/* test hook */
	int			 qfd;		/* the request queue */
	int			 sfd;		/* the manager's signalfd */
};

/*
 * scanworker.c: request I/O, shared by scanners and the manager's error
 * mode.  scanworker_recv(): 1 with a request (descriptors -1 when missing),
 * 0 when the queue is closed, -1 when there is nothing now.
 */
int		 scanworker_recv(int qfd, struct request *rq);
void		 scanworker_reply(struct request *rq, uint64_t id,
		    const struct scan_result *r);
void		 scanworker_close(struct request *rq);

/* scanworker.c: the scanner process, in the manager's forked child. */
void		 scanworker_main(const struct scanner_env *env, unsigned slot,
		    const char *tmpdir) __attribute__((noreturn));

#endif
