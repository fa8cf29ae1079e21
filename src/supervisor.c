/*
 * supervisor.c - parent process: fork the milter child and, when the
 * antivirus module uses the scanner pool (not clamd), the scan manager
 * (scanner.h); restart either within a second when it dies, forward
 * SIGUSR1 (reload) to both, and stop them cleanly on SIGTERM, SIGINT or
 * SIGHUP: the milter first (it drains its connections, which may still
 * scan), then the scan manager.  The request queue between them is made
 * here, before any fork, and both ends stay open here, so a restarted
 * milter or manager finds it (and the requests queued in it) intact.  A
 * reload re-reads the config to start or stop the scan manager when the
 * antivirus settings ask for it.  Single-threaded; all signals are
 * blocked and taken with sigtimedwait(), so no work happens in a signal
 * handler.  Notifies systemd (READY, RELOADING, STOPPING, WATCHDOG) when
 * run by it.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "log.h"
#include "milter.h"
#include "scanner.h"
#include "supervisor.h"
#include "util.h"

#define RESTART_GAP_MS	1000	/* at most one restart a second */
#define AV_STOP_MS	10000	/* the scan manager's time to stop */

/* The scan manager and the request queue. */
static struct {
	int			 q[2];	/* client, server end; -1 */
	pid_t			 pid;		/* 0: not running */
	int			 wanted;
	struct scan_settings	 set;
	uint64_t		 last_start, restart_at, stop_deadline;
	int			 term_sent;
} av;

static pid_t
start_child(const char *cfgpath, int reread)
{
	pid_t	 pid, ppid = getpid();

	pid = fork();
	if (pid < 0) {
		log_msg(LOG_ERR, "fork: %s", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		/* die with the supervisor: never serve unsupervised */
		(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != ppid)
			_exit(1);
		if (av.q[1] >= 0)
			(void)close(av.q[1]);
		milter_child_main(cfgpath, reread);
	}
	return pid;
}

static void
av_start(const char *cfgpath, uint64_t now)
{
	if (av.q[1] < 0)
		return;
	av.pid = scanner_spawn(&av.set, cfgpath, av.q[1], av.q[0]);
	av.last_start = now;
	av.restart_at = 0;
	if (av.pid < 0) {
		av.pid = 0;
		av.restart_at = now + RESTART_GAP_MS;
	} else
		log_msg(LOG_INFO, "scan manager process %ld started",
		    (long)av.pid);
}

/* SIGUSR1: start, stop or reload the scan manager as the config says. */
static void
av_reload(const char *cfgpath, uint64_t now)
{
	struct err	 e;
	int		 wanted;

	err_clear(&e);
	wanted = scanner_config(cfgpath, &av.set, NULL, &e);
	if (wanted < 0) {
		/* the milter logs why; the manager reloads its database */
		if (av.pid > 0)
			(void)kill(av.pid, SIGUSR1);
		return;
	}
	av.wanted = wanted;
	if (av.wanted && av.pid == 0 && av.restart_at == 0)
		av_start(cfgpath, now);
	else if (av.wanted && av.pid > 0)
		(void)kill(av.pid, SIGUSR1);
	else if (!av.wanted && av.pid > 0) {
		log_msg(LOG_INFO, "antivirus scanner pool no longer "
		    "configured: stopping the scan manager");
		(void)kill(av.pid, SIGTERM);
	}
	if (!av.wanted)
		av.restart_at = 0;
}

int
supervisor_run(const struct cfg *cfg, const char *cfgpath)
{
	sigset_t	 set;
	siginfo_t	 si;
	struct timespec	 tick = { 0, 100 * 1000 * 1000 };
	uint64_t	 wd_usec = 0, last_wd = 0, last_start, stop_deadline = 0;
	uint64_t	 restart_at = 0;
	pid_t		 child;
	int		 stopping = 0, status, sig;
	char		 why[128];
	struct err	 e;

	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR1);
	if (sd_watchdog_enabled(0, &wd_usec) <= 0)
		wd_usec = 0;

	/* the queue exists even without the pool: a reload may start it */
	av.q[0] = av.q[1] = -1;
	err_clear(&e);
	if (scanner_channel(av.q, &e) != RC_OK)
		log_msg(LOG_ERR, "%s", e.msg);
	scan_client_set_fd(av.q[0]);
	av.wanted = scanner_wanted(cfg, &av.set);
	if (av.wanted)
		av_start(cfgpath, now_ms());
	child = start_child(cfgpath, 0);
	if (child < 0)
		return 1;
	last_start = now_ms();
	(void)sd_notifyf(0, "READY=1\nMAINPID=%ld\nSTATUS=serving on %s",
	    (long)getpid(), cfg->milter.socket);

	for (;;) {
		uint64_t now;

		sig = sigtimedwait(&set, &si, &tick);
		now = now_ms();
		if (sig == SIGCHLD || sig < 0) {
			pid_t p;

			while ((p = waitpid(-1, &status, WNOHANG)) > 0) {
				if (p == av.pid && p > 0) {
					av.pid = 0;
					if (stopping || !av.wanted)
						continue;
					exit_describe(status, why, sizeof(why));
					log_msg(LOG_ERR, "scan manager process "
					    "%ld %s; restarting it", (long)p,
					    why);
					av.restart_at = av.last_start +
					    RESTART_GAP_MS > now ?
					    av.last_start + RESTART_GAP_MS :
					    now;
					continue;
				}
				if (p != child)
					continue;
				child = 0;
				if (stopping)
					break;
				exit_describe(status, why, sizeof(why));
				log_msg(LOG_ERR, "milter process %ld %s; "
				    "restarting it", (long)p, why);
				restart_at = last_start + RESTART_GAP_MS > now ?
				    last_start + RESTART_GAP_MS : now;
			}
		} else if (sig == SIGUSR1) {
			log_msg(LOG_INFO, "reload requested");
			(void)sd_notify(0, "RELOADING=1");
			if (child > 0)
				(void)kill(child, SIGUSR1);
			av_reload(cfgpath, now);
			(void)sd_notify(0, "READY=1");
		} else if (sig == SIGTERM || sig == SIGINT || sig == SIGHUP) {
			if (!stopping) {
				log_msg(LOG_INFO, "%s: stopping",
				    strsignal(sig));
				(void)sd_notify(0, "STOPPING=1");
				stopping = 1;
				/* libmilter polls its listener every 5 s */
				stop_deadline = now + 6000 +
				    (uint64_t)cfg->milter.shutdown_timeout *
				    1000;
				if (child > 0)
					(void)kill(child, SIGTERM);
			}
		}
		if (stopping) {
			if (child == 0 && av.pid == 0)
				break;
			if (child == 0 && !av.term_sent) {
				/* the milter is gone: no scan in flight */
				(void)kill(av.pid, SIGTERM);
				av.term_sent = 1;
				av.stop_deadline = now + AV_STOP_MS;
			}
			if (child == 0 && now > av.stop_deadline) {
				log_msg(LOG_WARNING, "scan manager did not "
				    "stop in time; killing it");
				(void)kill(av.pid, SIGKILL);
				av.stop_deadline = now + 60000;
			}
			if (child > 0 && now > stop_deadline) {
				log_msg(LOG_WARNING, "milter process did not "
				    "stop in time; killing it");
				(void)kill(child, SIGKILL);
				stop_deadline = now + 60000;
			}
			continue;
		}
		if (av.pid == 0 && av.wanted && av.restart_at != 0 &&
		    now >= av.restart_at)
			av_start(cfgpath, now);
		if (child == 0 && restart_at != 0 && now >= restart_at) {
			child = start_child(cfgpath, 1);
			if (child < 0) {
				child = 0;
				restart_at = now + RESTART_GAP_MS;
			} else {
				restart_at = 0;
				last_start = now;
				log_msg(LOG_INFO, "milter process %ld started",
				    (long)child);
			}
		}
		if (wd_usec != 0 && (now - last_wd) * 1000 >= wd_usec / 2) {
			(void)sd_notify(0, "WATCHDOG=1");
			last_wd = now;
		}
	}
	log_msg(LOG_INFO, "stopped");
	return 0;
}
