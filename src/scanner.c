/*
 * scanner.c - the ClamAV scanner service's manager process and the
 * starter's functions that run it (see scanner.h).  The scanner
 * processes it forks, and the request I/O, are scanworker.c (what the
 * two share is in scanner_int.h); the client in the milter process is
 * scanclient.c.
 *
 * Manager: single-threaded; loads the engine (cl_load, limits,
 * cl_engine_compile) and forks settings.scanners scanners that share it
 * copy-on-write; replaces a scanner that dies (at most once a second per
 * slot, logging how it died); on SIGUSR1 (the config file is re-read) or
 * when cl_statchkdir() sees the database directory change, loads a new
 * engine, forks a new generation, then SIGTERMs the old one, whose
 * scanners finish the scan in hand and exit; a failed load keeps the old
 * engine.  With no engine at all (first load failed) the manager answers
 * every request with an error itself and retries every check_interval.
 *
 * Scanner (scanworker.c): forked with what it needs from the manager
 * state (struct scanner_env); PR_SET_PDEATHSIG ties it to the manager.
 * Each scanner has its own libclamav temporary directory, removed by the
 * manager when it exits (however it died).
 *
 * Not thread-safe, and need not be: the manager and its scanners are
 * single-threaded processes, and the starter functions are for the
 * single-threaded starter (supervisor, portero-ctl test, tests).
 */
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <clamav.h>

#include "cfg.h"
#include "log.h"
#include "milter.h"
#include "scanner_int.h"
#include "util.h"

#define WORKERS_MAX	(4 * SCANNERS_MAX)	/* up to 4 generations */
#define RESTART_GAP_MS	1000
#define STOP_GRACE_MS	5000
#define TMP_PREFIX	"portero-scan."

struct worker {
	pid_t		 pid;		/* 0: free entry */
	unsigned	 gen, slot;
	uint64_t	 started;	/* ms */
	char		 tmpdir[SCAN_PATH_MAX + 32];
};

/* Manager state; a scanner inherits it at fork. */
static struct {
	struct scan_settings	 set;
	const char		*cfgpath;
	int			 qfd, sfd;
	struct cl_engine	*engine;	/* NULL: none loaded */
	unsigned		 gen;
	uint64_t		 sigs;
	struct cl_stat		 dbstat;
	int			 have_stat;
	struct worker		 w[WORKERS_MAX];
	uint64_t		 restart_at[SCANNERS_MAX + 1]; /* by slot */
	uint64_t		 next_check;
	unsigned		 delay_ms;	/* test hook */
	pid_t			 pid;
} mg;

/* libclamav's messages go to our log (sanitised: they may quote input). */
static void
clam_log(enum cl_msg sev, const char *full, const char *msg, void *ctx)
{
	char	 text[400];
	int	 level;
	size_t	 n;

	(void)full;
	(void)ctx;
	level = sev >= CL_MSG_ERROR ? LOG_WARNING : LOG_DEBUG;
	if (level > log_get_level())
		return;
	n = strlen(msg);
	while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
		n--;
	scanproto_sanitize(text, sizeof(text), msg, n, 1);
	log_msg(level, "libclamav: %s", text);
}

/* libclamav returns no name for some heuristics unless this is set. */
static void
virus_found(int fd, const char *name, void *ctx)
{
	char	*first = ctx;

	(void)fd;
	if (first != NULL && first[0] == '\0' && name != NULL)
		scanproto_sanitize(first, SCAN_NAME_MAX, name, SCAN_NAME_MAX,
		    0);
}

static struct cl_engine *
engine_load(const struct scan_settings *s, uint64_t *sigs, struct err *e)
{
	struct cl_engine	*eng;
	unsigned		 n = 0;
	cl_error_t		 rc;

	if ((eng = cl_engine_new()) == NULL) {
		err_set(e, "cl_engine_new failed");
		return NULL;
	}
	if (*s->tmpdir != '\0' && (rc = cl_engine_set_str(eng,
	    CL_ENGINE_TMPDIR, s->tmpdir)) != CL_SUCCESS)
		goto fail;
	if ((rc = cl_load(s->database, eng, &n, CL_DB_STDOPT)) != CL_SUCCESS)
		goto fail;
	if (n == 0) {
		err_set(e, "no signatures in %s", s->database);
		cl_engine_free(eng);
		return NULL;
	}
	if ((rc = cl_engine_set_num(eng, CL_ENGINE_MAX_SCANSIZE,
	    (long long)s->max_scan_size)) != CL_SUCCESS ||
	    (rc = cl_engine_set_num(eng, CL_ENGINE_MAX_FILESIZE,
	    (long long)s->max_file_size)) != CL_SUCCESS ||
	    (rc = cl_engine_set_num(eng, CL_ENGINE_MAX_RECURSION,
	    s->max_recursion)) != CL_SUCCESS ||
	    (rc = cl_engine_set_num(eng, CL_ENGINE_MAX_FILES,
	    s->max_files)) != CL_SUCCESS ||
	    (rc = cl_engine_set_num(eng, CL_ENGINE_MAX_EMBEDDEDPE,
	    (long long)s->max_embedded_pe)) != CL_SUCCESS ||
	    (rc = cl_engine_set_num(eng, CL_ENGINE_MAX_SCANTIME,
	    s->max_scan_time)) != CL_SUCCESS)
		goto fail;
	cl_engine_set_clcb_virus_found(eng, virus_found);
	if ((rc = cl_engine_compile(eng)) != CL_SUCCESS)
		goto fail;
	*sigs = n;
	return eng;
fail:
	err_set(e, "%s: %s", s->database, cl_strerror(rc));
	cl_engine_free(eng);
	return NULL;
}

static void
dbstat_reset(void)
{
	if (mg.have_stat)
		(void)cl_statfree(&mg.dbstat);
	memset(&mg.dbstat, 0, sizeof(mg.dbstat));
	mg.have_stat = cl_statinidir(mg.set.database, &mg.dbstat) ==
	    CL_SUCCESS;
}

/* cl_statchkdir() sees new and changed files; a removed one only
 * changes the count. */
static int
db_changed(void)
{
	struct cl_stat	 now;
	int		 changed;

	if (!mg.have_stat)
		return 1;
	if (cl_statchkdir(&mg.dbstat) == 1)
		return 1;
	memset(&now, 0, sizeof(now));
	if (cl_statinidir(mg.set.database, &now) != CL_SUCCESS)
		return 0;
	changed = now.entries != mg.dbstat.entries;
	(void)cl_statfree(&now);
	return changed;
}

/*
 * Manager process.
 */

/*
 * Where the scanners' directories go: antivirus.tmpdir, else /dev/shm
 * (memory: libclamav writes every part and archive member it extracts
 * to a file, and on a disk file system that costs more than the scan),
 * else $TMPDIR or /tmp.
 */
static const char *
tmp_base(void)
{
	const char	*t = getenv("TMPDIR");

	if (*mg.set.tmpdir != '\0')
		return mg.set.tmpdir;
	if (access("/dev/shm", W_OK | X_OK) == 0)
		return "/dev/shm";
	return t != NULL && *t == '/' ? t : "/tmp";
}

static struct worker *
worker_free_entry(void)
{
	size_t	 i;

	for (i = 0; i < WORKERS_MAX; i++)
		if (mg.w[i].pid == 0)
			return &mg.w[i];
	return NULL;
}

/* What a scanner takes from the manager state it inherits. */
static void
worker_env(struct scanner_env *env)
{
	env->engine = mg.engine;
	env->gen = mg.gen;
	env->sigs = mg.sigs;
	env->heuristic_alerts = mg.set.heuristic_alerts;
	env->timeout = mg.set.timeout;
	env->delay_ms = mg.delay_ms;
	env->qfd = mg.qfd;
	env->sfd = mg.sfd;
}

static void
spawn_worker(unsigned slot)
{
	struct worker		*w = worker_free_entry();
	struct scanner_env	 env;
	pid_t			 pid;
	char			 dir[sizeof(w->tmpdir)];
	int			 n;

	if (w == NULL) {
		log_msg(LOG_ERR, "antivirus: too many scanner processes");
		mg.restart_at[slot] = now_ms() + RESTART_GAP_MS;
		return;
	}
	pid = fork();
	if (pid < 0) {
		log_msg(LOG_ERR, "antivirus: fork: %s", strerror(errno));
		mg.restart_at[slot] = now_ms() + RESTART_GAP_MS;
		return;
	}
	if (pid == 0) {
		(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != mg.pid)
			_exit(1);
		n = snprintf(dir, sizeof(dir), "%s/" TMP_PREFIX "%ld",
		    tmp_base(), (long)getpid());
		if (n < 0 || (size_t)n >= sizeof(dir))
			_exit(1);
		worker_env(&env);
		scanworker_main(&env, slot, dir);
	}
	w->pid = pid;
	w->gen = mg.gen;
	w->slot = slot;
	w->started = now_ms();
	(void)snprintf(w->tmpdir, sizeof(w->tmpdir), "%s/" TMP_PREFIX "%ld",
	    tmp_base(), (long)pid);
	mg.restart_at[slot] = 0;
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)f;
	if (flag == FTW_DP)
		(void)rmdir(path);
	else
		(void)unlink(path);
	return 0;
}

/* 1 if no process pid runs (a zombie does not: init may be slow, or
 * not reap at all in a container). */
static int
pid_gone(pid_t pid)
{
	char	 path[64], buf[256], *p;
	FILE	*fp;
	int	 gone;

	(void)snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	if ((fp = fopen(path, "r")) == NULL)
		return kill(pid, 0) != 0 && errno == ESRCH;
	gone = fgets(buf, sizeof(buf), fp) != NULL &&
	    (p = strrchr(buf, ')')) != NULL && (p[2] == 'Z' || p[2] == 'X');
	(void)fclose(fp);
	return gone;
}

/* Temporary directories of scanners that died with a manager killed
 * before it could remove them: their process is gone. */
static void
tmp_sweep(void)
{
	DIR			*d;
	struct dirent		*de;
	unsigned long long	 pid;
	char			 path[SCAN_PATH_MAX + 64];

	if ((d = opendir(tmp_base())) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, TMP_PREFIX, sizeof(TMP_PREFIX) - 1) !=
		    0 || parse_uint(de->d_name + sizeof(TMP_PREFIX) - 1, 1,
		    INT32_MAX, &pid) != RC_OK)
			continue;
		if (!pid_gone((pid_t)pid))
			continue;
		(void)snprintf(path, sizeof(path), "%s/%s", tmp_base(),
		    de->d_name);
		(void)nftw(path, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	}
	(void)closedir(d);
}

static void
reap(int stopping)
{
	struct worker	*w;
	char		 why[96];
	pid_t		 pid;
	size_t		 i;
	int		 status;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (i = 0, w = NULL; i < WORKERS_MAX && w == NULL; i++)
			if (mg.w[i].pid == pid)
				w = &mg.w[i];
		if (w == NULL)
			continue;
		/* whatever libclamav left behind when the scanner died */
		(void)nftw(w->tmpdir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
		exit_describe(status, why, sizeof(why));
		if (w->gen == mg.gen && !stopping) {
			log_msg(LOG_ERR, "scanner %u (generation %u, pid %ld) "
			    "%s; replacing it", w->slot, w->gen, (long)pid,
			    why);
			mg.restart_at[w->slot] = w->started + RESTART_GAP_MS >
			    now_ms() ? w->started + RESTART_GAP_MS : now_ms();
		} else
			log_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0 ?
			    LOG_DEBUG : LOG_WARNING, "scanner %u (generation "
			    "%u, pid %ld) %s", w->slot, w->gen, (long)pid,
			    why);
		w->pid = 0;
	}
}

static size_t
live_workers(void)
{
	size_t	 i, n = 0;

	for (i = 0; i < WORKERS_MAX; i++)
		if (mg.w[i].pid != 0)
			n++;
	return n;
}

static void
signal_workers(int sig, unsigned older_than_gen)
{
	size_t	 i;

	for (i = 0; i < WORKERS_MAX; i++)
		if (mg.w[i].pid != 0 && mg.w[i].gen < older_than_gen)
			(void)kill(mg.w[i].pid, sig);
}

/*
 * Loads a new engine; on success starts its generation of scanners, then
 * retires the old one.  why names the trigger for the log.
 */
static void
reload(const char *why)
{
	struct cl_engine	*eng;
	struct err		 e;
	uint64_t		 sigs = 0, t0 = now_ms();
	unsigned		 i;

	err_clear(&e);
	/* before loading: a change while it loads is seen at the next
	 * check; after a failure, one attempt per change of the files */
	dbstat_reset();
	eng = engine_load(&mg.set, &sigs, &e);
	if (eng == NULL) {
		if (mg.engine != NULL)
			log_msg(LOG_ERR, "antivirus: loading the database "
			    "failed (%s), keeping generation %u: %s", why,
			    mg.gen, e.msg);
		else
			log_msg(LOG_ERR, "antivirus: loading the database "
			    "failed (%s); scans fail until it loads: %s", why,
			    e.msg);
		return;
	}
	if (mg.engine != NULL)
		cl_engine_free(mg.engine);	/* scanners keep their copy */
	mg.engine = eng;
	mg.sigs = sigs;
	mg.gen++;
	log_msg(LOG_INFO, "antivirus: generation %u: %llu signatures from %s "
	    "loaded in %llu ms (%s)", mg.gen, (unsigned long long)sigs,
	    mg.set.database, (unsigned long long)(now_ms() - t0), why);
	for (i = 1; i <= SCANNERS_MAX; i++)
		mg.restart_at[i] = 0;
	for (i = 1; i <= mg.set.scanners; i++)
		spawn_worker(i);
	signal_workers(SIGTERM, mg.gen);
}

/* SIGUSR1: the antivirus settings of the config file, then the engine. */
static void
reload_config(void)
{
	struct scan_settings	 s;
	struct err		 e;
	int			 level, rc;

	if (mg.cfgpath != NULL) {
		err_clear(&e);
		rc = scanner_config(mg.cfgpath, &s, &level, &e);
		if (rc < 0)
			log_msg(LOG_ERR, "antivirus: %s; reloading the "
			    "database with the previous settings", e.msg);
		else {
			log_set_level(level);
			if (rc == 1)
				mg.set = s;
		}
	}
	reload("reload requested");
}

/* No engine: every request gets an error at once, not a timeout. */
static void
answer_errors(void)
{
	struct request		 rq;
	struct scan_result	 r;
	uint64_t		 id;
	int			 got;

	while ((got = scanworker_recv(mg.qfd, &rq)) == 1) {
		memset(&r, 0, sizeof(r));
		id = 0;
		(void)scanproto_request_parse(rq.buf, rq.len, &id);
		scan_result_set(&r, SCAN_ERROR, "no virus database loaded");
		scanworker_reply(&rq, id, &r);
		scanworker_close(&rq);
	}
}

static int
manager_signals(void)
{
	sigset_t	 set;

	milter_block_signals();		/* all but the fatal ones */
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGUSR1);
	return signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
}

/* A scanner must not be able to accept a connection on a listening
 * socket it inherited (the milter's, say). */
static void
close_listeners(void)
{
	DIR		*d;
	struct dirent	*de;
	unsigned long long v;
	socklen_t	 len;
	int		 fd, on;

	if ((d = opendir("/proc/self/fd")) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (parse_uint(de->d_name, 3, INT32_MAX, &v) != RC_OK ||
		    (int)v == dirfd(d))
			continue;
		fd = (int)v;
		on = 0;
		len = sizeof(on);
		if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &len) == 0 &&
		    on)
			(void)close(fd);
	}
	(void)closedir(d);
}

static void __attribute__((noreturn))
manager_main(const struct scan_settings *s, const char *cfgpath, int qfd)
{
	struct signalfd_siginfo	 si;
	struct pollfd		 p[2];
	uint64_t		 now, stop_at = 0, wake;
	unsigned		 i;
	int			 stopping = 0;
	const char		*d;

	(void)prctl(PR_SET_NAME, "portero-avmgr");
	close_listeners();
	memset(&mg, 0, sizeof(mg));
	mg.set = *s;
	mg.cfgpath = cfgpath;
	mg.qfd = qfd;
	mg.pid = getpid();
	if ((d = getenv(SCANNER_TEST_DELAY_ENV)) != NULL)
		mg.delay_ms = (unsigned)strtoul(d, NULL, 10);
	if ((mg.sfd = manager_signals()) < 0) {
		log_msg(LOG_ERR, "antivirus: signalfd: %s", strerror(errno));
		_exit(1);
	}
	if (cl_init(CL_INIT_DEFAULT) != CL_SUCCESS) {
		log_msg(LOG_ERR, "antivirus: cl_init failed");
		_exit(1);
	}
	cl_set_clcb_msg(clam_log);
	tmp_sweep();
	log_msg(LOG_INFO, "antivirus: scan manager %ld starting (libclamav "
	    "%s, %u scanner(s))", (long)mg.pid, cl_retver(), mg.set.scanners);
	reload("start");
	mg.next_check = now_ms() + (uint64_t)mg.set.check_interval * 1000;

	for (;;) {
		now = now_ms();
		wake = now + 1000;
		if (mg.set.check_interval > 0 && mg.next_check < wake)
			wake = mg.next_check;
		for (i = 1; i <= SCANNERS_MAX; i++)
			if (mg.restart_at[i] != 0 && mg.restart_at[i] < wake)
				wake = mg.restart_at[i];
		p[0].fd = mg.sfd;
		p[0].events = POLLIN;
		p[1].fd = mg.qfd;
		p[1].events = mg.engine == NULL && !stopping ? POLLIN : 0;
		p[0].revents = p[1].revents = 0;
		(void)poll(p, 2, wake > now ? (int)(wake - now) : 0);
		while (read(mg.sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
			if (si.ssi_signo == SIGTERM && !stopping) {
				log_msg(LOG_INFO, "antivirus: scan manager "
				    "stopping");
				stopping = 1;
				stop_at = now_ms() + (uint64_t)mg.set.timeout *
				    1000 + STOP_GRACE_MS;
				signal_workers(SIGTERM, ~0u);
			} else if (si.ssi_signo == SIGUSR1 && !stopping)
				reload_config();
		}
		reap(stopping);
		if (p[1].revents & POLLIN)
			answer_errors();
		if (!stopping && (p[1].revents & (POLLHUP | POLLERR)) &&
		    !(p[1].revents & POLLIN)) {
			log_msg(LOG_INFO, "antivirus: request queue closed; "
			    "scan manager stopping");
			stopping = 1;
			stop_at = now_ms() + STOP_GRACE_MS;
			signal_workers(SIGTERM, ~0u);
		}
		now = now_ms();
		if (stopping) {
			if (live_workers() == 0)
				break;
			if (now > stop_at) {
				signal_workers(SIGKILL, ~0u);
				stop_at = now + 60000;
			}
			continue;
		}
		if (mg.set.check_interval > 0 && now >= mg.next_check) {
			mg.next_check = now + (uint64_t)mg.set.check_interval *
			    1000;
			if (mg.engine == NULL)
				reload("retry");
			else if (db_changed())
				reload("database changed");
		}
		for (i = 1; i <= mg.set.scanners && mg.engine != NULL; i++)
			if (mg.restart_at[i] != 0 && now >= mg.restart_at[i])
				spawn_worker(i);
	}
	if (mg.engine != NULL)
		cl_engine_free(mg.engine);
	if (mg.have_stat)
		(void)cl_statfree(&mg.dbstat);
	log_msg(LOG_INFO, "antivirus: scan manager stopped");
	_exit(0);
}

/*
 * Starter side.
 */

int
scanner_wanted(const struct cfg *cfg, struct scan_settings *s)
{
	const struct av_conf	*ac = cfg_check_conf(cfg, "antivirus");

	if (ac == NULL || ac->use_clamd)
		return 0;
	*s = ac->scan;
	return 1;
}

int
scanner_config(const char *cfgpath, struct scan_settings *s, int *level,
    struct err *e)
{
	struct cfg	*cfg;
	int		 old = log_get_level(), wanted;

	/* what the modules say while loading is the milter's to log */
	log_set_level(LOG_CRIT);
	cfg = cfg_load(cfgpath, e);
	log_set_level(old);
	if (cfg == NULL)
		return -1;
	wanted = scanner_wanted(cfg, s);
	if (level != NULL)
		*level = cfg->log.level;
	cfg_release(cfg);
	return wanted;
}

enum rc
scanner_channel(int fds[2], struct err *e)
{
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) != 0) {
		err_set(e, "antivirus: socketpair: %s", strerror(errno));
		return RC_TEMP;
	}
	return RC_OK;
}

pid_t
scanner_spawn(const struct scan_settings *s, const char *cfgpath,
    int server_fd, int close_fd)
{
	pid_t	 pid, ppid = getpid();

	pid = fork();
	if (pid < 0) {
		log_msg(LOG_ERR, "antivirus: fork: %s", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != ppid)
			_exit(1);
		if (close_fd >= 0)
			(void)close(close_fd);
		manager_main(s, cfgpath, server_fd);
	}
	return pid;
}

void
scanner_stop(pid_t pid, unsigned ms)
{
	uint64_t	 end = now_ms() + ms;
	int		 status;

	if (pid <= 0)
		return;
	(void)kill(pid, SIGTERM);
	while (now_ms() < end) {
		if (waitpid(pid, &status, WNOHANG) != 0)
			return;
		(void)usleep(10 * 1000);
	}
	log_msg(LOG_WARNING, "antivirus: scan manager %ld did not stop in "
	    "time; killing it", (long)pid);
	(void)kill(pid, SIGKILL);
	(void)waitpid(pid, &status, 0);
}

enum rc
scanner_service_start(struct scan_service *sv, const struct scan_settings *s,
    const char *cfgpath, struct err *e)
{
	int	 fds[2];

	sv->pid = -1;
	sv->client_fd = sv->server_fd = -1;
	if (scanner_channel(fds, e) != RC_OK)
		return RC_TEMP;
	sv->pid = scanner_spawn(s, cfgpath, fds[1], fds[0]);
	if (sv->pid < 0) {
		(void)close(fds[0]);
		(void)close(fds[1]);
		err_set(e, "antivirus: cannot start the scan manager");
		return RC_TEMP;
	}
	sv->client_fd = fds[0];
	sv->server_fd = fds[1];
	scan_client_set_fd(sv->client_fd);
	return RC_OK;
}

void
scanner_service_stop(struct scan_service *sv)
{
	if (sv->client_fd >= 0 && scan_client_fd() == sv->client_fd)
		scan_client_set_fd(-1);
	scanner_stop(sv->pid, 15000);
	if (sv->client_fd >= 0)
		(void)close(sv->client_fd);
	if (sv->server_fd >= 0)
		(void)close(sv->server_fd);
	sv->pid = -1;
	sv->client_fd = sv->server_fd = -1;
}
