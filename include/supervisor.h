/*
 * supervisor.h - the small parent process that starts the milter child,
 * restarts it when it dies, forwards reload and stop signals, and talks to
 * systemd.  It parses no untrusted input.
 */
#ifndef PORTERO_SUPERVISOR_H
#define PORTERO_SUPERVISOR_H

#include "cfg.h"

/* Runs until stopped; returns the process exit status. */
int	supervisor_run(const struct cfg *, const char *cfgpath);

#endif
