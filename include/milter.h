/*
 * milter.h - the libmilter side: registration, listening socket, and the
 * milter child's main loop.  See milter.c.
 */
#ifndef PORTERO_MILTER_H
#define PORTERO_MILTER_H

#include "cfg.h"
#include "err.h"

/* Registers the callbacks and opens the listening socket (in the parent,
 * before privileges are dropped).  0 on success. */
int	milter_open(const struct cfg *, struct err *);
/* The milter child: serves until stopped, then drains; never returns. */
void	milter_child_main(const char *cfgpath, int reread)
	    __attribute__((noreturn));
/* Blocks every signal but the fault signals in the calling thread (and
 * the threads it starts), for sigwait()-style handling. */
void	milter_block_signals(void);
/* Connections open now (for draining and tests). */
int	milter_active(void);

#endif
