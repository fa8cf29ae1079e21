/*
 * main.c - portero daemon entry: arguments, config load (or -t check),
 * listening socket, pidfile, privilege drop, then the supervisor.
 * Runs single-threaded until the supervisor forks the milter child.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cfg.h"
#include "log.h"
#include "metrics.h"
#include "milter.h"
#include "supervisor.h"
#include "util.h"
#include "version.h"

#define DEFAULT_CONFIG	"/etc/portero/portero.conf"

static void
usage(void)
{
	(void)fprintf(stderr, "usage: portero [-c FILE] [-f] [-t] "
	    "[-d LEVEL] [-V]\n");
	exit(2);
}

static void
fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void
fatal(const char *fmt, ...)
{
	char	 buf[1024];
	va_list	 ap;

	va_start(ap, fmt);
	(void)vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	log_msg(LOG_ERR, "fatal: %s", buf);
	exit(1);
}

/* path made absolute against the starting directory ("" stays ""). */
static int
abs_path(const char *path, char *out, size_t len)
{
	char	 cwd[PATH_MAX];
	int	 n;

	if (*path == '\0' || *path == '/')
		n = snprintf(out, len, "%s", path);
	else if (getcwd(cwd, sizeof(cwd)) == NULL)
		return -1;
	else
		n = snprintf(out, len, "%s/%s", cwd, path);
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

static void
write_pidfile(const char *path)
{
	char	 buf[32];
	int	 fd, n;

	if (*path == '\0')
		return;
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		fatal("pidfile %s: %s", path, strerror(errno));
	n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	if (n < 0 || write(fd, buf, (size_t)n) != n)
		fatal("pidfile %s: %s", path, strerror(errno));
	(void)close(fd);
}

/* Drop root: group first, then supplementary groups, then the user. */
static void
drop_privileges(const struct cfg *cfg)
{
	struct passwd	*pw;
	struct group	*gr;
	const char	*sock = cfg->milter.socket;
	const char	*path = strncmp(sock, "unix:", 5) == 0 ? sock + 5 :
			    strncmp(sock, "local:", 6) == 0 ? sock + 6 : NULL;
	gid_t		 sockgid = (gid_t)-1;

	if (*cfg->milter.group != '\0') {
		gr = getgrnam(cfg->milter.group);
		if (gr == NULL)
			fatal("milter.group '%s' does not exist",
			    cfg->milter.group);
		sockgid = gr->gr_gid;
	}
	if (geteuid() != 0) {
		if (path != NULL && sockgid != (gid_t)-1 &&
		    chown(path, (uid_t)-1, sockgid) != 0)
			log_msg(LOG_WARNING, "chgrp %s: %s", path,
			    strerror(errno));
		return;
	}
	if (*cfg->milter.user == '\0') {
		if (path != NULL && sockgid != (gid_t)-1 &&
		    chown(path, (uid_t)-1, sockgid) != 0)
			fatal("chgrp %s: %s", path, strerror(errno));
		log_msg(LOG_WARNING, "milter.user is empty: running as root");
		return;
	}
	pw = getpwnam(cfg->milter.user);
	if (pw == NULL)
		fatal("milter.user '%s' does not exist", cfg->milter.user);
	if (path != NULL && chown(path, pw->pw_uid, sockgid) != 0)
		fatal("chown %s: %s", path, strerror(errno));
	if (*cfg->milter.pidfile != '\0' &&
	    chown(cfg->milter.pidfile, pw->pw_uid, (gid_t)-1) != 0)
		log_msg(LOG_WARNING, "chown %s: %s", cfg->milter.pidfile,
		    strerror(errno));
	if (setgid(pw->pw_gid) != 0 ||
	    initgroups(pw->pw_name, pw->pw_gid) != 0 ||
	    setuid(pw->pw_uid) != 0)
		fatal("cannot drop privileges to %s: %s", cfg->milter.user,
		    strerror(errno));
	if (setuid(0) == 0)
		fatal("privileges could be regained after dropping them");
}

int
main(int argc, char *argv[])
{
	const char	*path = DEFAULT_CONFIG, *dlevel = NULL;
	char		 abspath[PATH_MAX], pidpath[PATH_MAX];
	struct cfg	*cfg;
	struct err	 e;
	int		 ch, foreground = 0, test = 0, rc;

	while ((ch = getopt(argc, argv, "c:fd:tV")) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case 'f':
			foreground = 1;
			break;
		case 'd':
			dlevel = optarg;
			break;
		case 't':
			test = 1;
			break;
		case 'V':
			(void)printf("portero %s\n", PORTERO_VERSION);
			return 0;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();

	if (dlevel != NULL && log_level_parse(dlevel) < 0) {
		(void)fprintf(stderr, "portero: -d %s: not one of debug, info, "
		    "notice, warning, err\n", dlevel);
		return 2;
	}
	log_open("portero", LOG_MAIL, 1);
	metrics_init();
	/* reloads and restarts re-read the file after chdir("/") */
	if (realpath(path, abspath) != NULL)
		path = abspath;
	err_clear(&e);
	cfg_set_strict(test);
	cfg = cfg_load(path, &e);
	if (cfg == NULL) {
		(void)fprintf(stderr, "portero: %s\n", e.msg);
		return 1;
	}
	cfg_set_strict(0);
	if (test) {
		(void)printf("portero: configuration %s is valid\n", path);
		cfg_release(cfg);
		return 0;
	}
	if (!foreground && !cfg->log.to_stderr)
		log_open("portero", cfg->log.facility, 0);
	if (dlevel != NULL)
		log_force_level(log_level_parse(dlevel));
	else
		log_set_level(cfg->log.level);

	(void)signal(SIGPIPE, SIG_IGN);
	if (milter_open(cfg, &e) != 0)
		fatal("%s", e.msg);
	if (abs_path(cfg->milter.pidfile, pidpath, sizeof(pidpath)) != 0)
		fatal("milter.pidfile: path too long");
	/* log.stderr keeps standard error open when detached */
	if (!foreground && daemon(0, cfg->log.to_stderr) != 0)
		fatal("daemon: %s", strerror(errno));
	write_pidfile(pidpath);
	drop_privileges(cfg);

	/* block before any fork so the child and its threads inherit it */
	milter_block_signals();

	cfg_install(cfg_ref(cfg));
	log_msg(LOG_INFO, "portero %s starting (config %s)", PORTERO_VERSION,
	    path);
	rc = supervisor_run(cfg, path);
	if (*pidpath != '\0')
		(void)unlink(pidpath);
	cfg_release(cfg);
	cfg_install(NULL);
	return rc;
}
