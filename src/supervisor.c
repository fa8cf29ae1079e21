/*
 * supervisor.c - parent process: fork the milter child, restart it within
 * a second when it dies, forward SIGUSR1 (reload) and stop it cleanly on
 * SIGTERM, SIGINT or SIGHUP.  Single-threaded; all signals are blocked and
 * taken with sigtimedwait(), so no work happens in a signal handler.
 * Notifies systemd (READY, RELOADING, STOPPING, WATCHDOG) when run by it.
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
#include "supervisor.h"
#include "util.h"

#define RESTART_GAP_MS	1000	/* at most one restart a second */

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
		milter_child_main(cfgpath, reread);
	}
	return pid;
}

static void
describe_exit(int status, char *buf, size_t len)
{
	if (WIFEXITED(status))
		(void)snprintf(buf, len, "exited with status %d",
		    WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		(void)snprintf(buf, len, "killed by signal %d (%s)",
		    WTERMSIG(status), strsignal(WTERMSIG(status)));
	else
		(void)snprintf(buf, len, "stopped (status %d)", status);
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

	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR1);
	if (sd_watchdog_enabled(0, &wd_usec) <= 0)
		wd_usec = 0;

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
				if (p != child)
					continue;
				child = 0;
				if (stopping)
					break;
				describe_exit(status, why, sizeof(why));
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
			if (child == 0)
				break;
			if (now > stop_deadline) {
				log_msg(LOG_WARNING, "milter process did not "
				    "stop in time; killing it");
				(void)kill(child, SIGKILL);
				stop_deadline = now + 60000;
			}
			continue;
		}
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
