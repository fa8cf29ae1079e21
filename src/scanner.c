/*
 * scanner.c - the ClamAV scanner service (manager and scanner processes)
 * and its client in the milter process (see scanner.h).
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
 * Scanner: takes one request at a time from the shared queue (recvmsg,
 * SCM_RIGHTS), scans the message descriptor, answers on the request's
 * reply socket, closes both.  SIGTERM is only taken between requests;
 * alarm() bounds a scan hard; PR_SET_PDEATHSIG ties it to the manager.
 * Each scanner has its own libclamav temporary directory, removed by the
 * manager when it exits (however it died).
 *
 * Client: process-wide queue descriptor and slot counter (mutex +
 * condition variable); everything else is per call: thread-safe.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
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
#include "scanner.h"
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

/* One request taken from the queue. */
struct request {
	char	 buf[SCANPROTO_MAX];
	size_t	 len;
	int	 msgfd, replyfd;
};

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
 * Request I/O, shared by scanners and the manager's error mode.
 */

/* 1: a request (descriptors -1 when missing), 0: the queue is closed,
 * -1: nothing now. */
static int
request_recv(int qfd, struct request *rq)
{
	union {
		char		 buf[CMSG_SPACE(4 * sizeof(int))];
		struct cmsghdr	 align;
	} cm;
	struct msghdr	 mh;
	struct iovec	 iov;
	struct cmsghdr	*c;
	int		 fds[4];
	size_t		 nfd = 0, i;
	ssize_t		 n;

	memset(&mh, 0, sizeof(mh));
	iov.iov_base = rq->buf;
	iov.iov_len = sizeof(rq->buf);
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cm.buf;
	mh.msg_controllen = sizeof(cm.buf);
	rq->msgfd = rq->replyfd = -1;
	n = recvmsg(qfd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (n < 0)
		return -1;
	for (c = CMSG_FIRSTHDR(&mh); c != NULL; c = CMSG_NXTHDR(&mh, c)) {
		size_t k;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (i = 0; i < k; i++)
			if (nfd < NELEM(fds))
				memcpy(&fds[nfd++], CMSG_DATA(c) + i *
				    sizeof(int), sizeof(int));
	}
	if (n == 0 && nfd == 0)
		return 0;
	rq->len = (size_t)n;
	if (nfd == 2 && !(mh.msg_flags & (MSG_CTRUNC | MSG_TRUNC))) {
		rq->msgfd = fds[0];
		rq->replyfd = fds[1];
		return 1;
	}
	for (i = 0; i < nfd; i++)
		(void)close(fds[i]);
	return 1;
}

static void
request_reply(struct request *rq, uint64_t id, const struct scan_result *r)
{
	char	 line[SCANPROTO_MAX];
	size_t	 n;

	n = scanproto_reply_encode(line, sizeof(line), id, r);
	if (rq->replyfd >= 0 && n > 0)
		(void)send(rq->replyfd, line, n, MSG_NOSIGNAL | MSG_DONTWAIT);
}

static void
request_close(struct request *rq)
{
	if (rq->msgfd >= 0)
		(void)close(rq->msgfd);
	if (rq->replyfd >= 0)
		(void)close(rq->replyfd);
	rq->msgfd = rq->replyfd = -1;
}

/*
 * Scanner process.
 */

static volatile sig_atomic_t	 w_stop;

static void
on_term(int sig)
{
	(void)sig;
	w_stop = 1;
}

static void
scan_fd(int fd, struct scan_result *r)
{
	struct cl_scan_options	 opts;
	const char		*vn = NULL;
	char			 cbname[SCAN_NAME_MAX] = "";
	unsigned long		 scanned = 0;
	cl_error_t		 rc;

	memset(&opts, 0, sizeof(opts));
	opts.general = mg.set.heuristic_alerts ? CL_SCAN_GENERAL_HEURISTICS :
	    0;
	opts.parse = ~0u;	/* every parser, mail (MIME) and archives */
	opts.heuristic = CL_SCAN_HEURISTIC_EXCEEDS_MAX;
	r->gen = mg.gen;
	r->sigs = mg.sigs;
	(void)lseek(fd, 0, SEEK_SET);
	/* a parser stuck where max_scan_time is not checked */
	(void)alarm(mg.set.timeout + 5);
	rc = cl_scandesc_callback(fd, NULL, &vn, &scanned, mg.engine, &opts,
	    cbname);
	(void)alarm(0);
	switch (rc) {
	case CL_CLEAN:
		scan_result_set(r, SCAN_CLEAN, "%s", "");
		return;
	case CL_VIRUS:
		if (vn == NULL && cbname[0] == '\0') {
			/* never guess a virus: the pipeline tempfails */
			scan_result_set(r, SCAN_ERROR, "virus reported "
			    "without a name");
			return;
		}
		scan_result_set(r, SCAN_FOUND, "%s", vn != NULL ? vn : cbname);
		if (scanproto_is_limit(r->name))
			r->verdict = SCAN_LIMIT;
		return;
	case CL_ETIMEOUT:
		scan_result_set(r, SCAN_LIMIT, "Heuristics.Limits.Exceeded."
		    "MaxScanTime");
		return;
	case CL_EMAXREC:
		scan_result_set(r, SCAN_LIMIT, "Heuristics.Limits.Exceeded."
		    "MaxRecursion");
		return;
	case CL_EMAXSIZE:
		scan_result_set(r, SCAN_LIMIT, "Heuristics.Limits.Exceeded."
		    "MaxScanSize");
		return;
	case CL_EMAXFILES:
		scan_result_set(r, SCAN_LIMIT, "Heuristics.Limits.Exceeded."
		    "MaxFiles");
		return;
	default:
		scan_result_set(r, SCAN_ERROR, "libclamav: %s",
		    cl_strerror(rc));
		return;
	}
}

/* The client gave up (timed out, or its process died): skip the scan. */
static int
abandoned(int replyfd)
{
	struct pollfd	 p = { replyfd, 0, 0 };

	return poll(&p, 1, 0) > 0 && (p.revents & (POLLHUP | POLLERR));
}

static void
serve_request(struct request *rq)
{
	struct scan_result	 r;
	uint64_t		 id = 0;

	memset(&r, 0, sizeof(r));
	r.gen = mg.gen;
	r.sigs = mg.sigs;
	if (rq->replyfd < 0)
		return;
	if (rq->msgfd < 0 || scanproto_request_parse(rq->buf, rq->len, &id) !=
	    RC_OK) {
		scan_result_set(&r, SCAN_ERROR, "bad request");
		request_reply(rq, id, &r);
		return;
	}
	if (abandoned(rq->replyfd))
		return;
	if (mg.delay_ms > 0)
		(void)usleep(mg.delay_ms * 1000u);
	scan_fd(rq->msgfd, &r);
	request_reply(rq, id, &r);
}

static void __attribute__((noreturn))
worker_main(unsigned slot, const char *tmpdir)
{
	struct sigaction	 sa;
	struct request		 rq;
	struct pollfd		 p;
	sigset_t		 block, waitmask;
	int			 got;

	(void)prctl(PR_SET_NAME, "portero-scan");
	(void)prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	(void)close(mg.sfd);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	(void)sigaction(SIGINT, &sa, NULL);
	(void)sigaction(SIGHUP, &sa, NULL);
	(void)sigaction(SIGUSR1, &sa, NULL);
	(void)sigaction(SIGPIPE, &sa, NULL);
	sa.sa_handler = SIG_DFL;
	(void)sigaction(SIGALRM, &sa, NULL);
	(void)sigaction(SIGCHLD, &sa, NULL);
	sa.sa_handler = on_term;	/* no SA_RESTART: ppoll returns */
	(void)sigaction(SIGTERM, &sa, NULL);
	/* SIGTERM only while waiting for a request (ppoll) */
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	(void)sigprocmask(SIG_SETMASK, &block, NULL);
	sigemptyset(&waitmask);

	if (mkdir(tmpdir, 0700) == 0)
		(void)cl_engine_set_str(mg.engine, CL_ENGINE_TMPDIR, tmpdir);
	else
		log_msg(LOG_WARNING, "scanner %u: mkdir %s: %s", slot, tmpdir,
		    strerror(errno));
	log_msg(LOG_INFO, "scanner %u (generation %u) started, pid %ld",
	    slot, mg.gen, (long)getpid());
	while (!w_stop) {
		p.fd = mg.qfd;
		p.events = POLLIN;
		p.revents = 0;
		if (ppoll(&p, 1, NULL, &waitmask) < 0) {
			if (errno == EINTR)
				continue;	/* SIGTERM */
			log_msg(LOG_ERR, "scanner %u: poll: %s", slot,
			    strerror(errno));
			break;
		}
		got = request_recv(mg.qfd, &rq);
		if (got == 0)
			break;		/* the queue is closed */
		if (got < 0) {
			if ((p.revents & (POLLHUP | POLLERR)) &&
			    !(p.revents & POLLIN))
				break;
			continue;	/* another scanner took it */
		}
		serve_request(&rq);
		request_close(&rq);
	}
	(void)rmdir(tmpdir);
	_exit(0);
}

/*
 * Manager process.
 */

static const char *
tmp_base(void)
{
	const char	*t = getenv("TMPDIR");

	if (*mg.set.tmpdir != '\0')
		return mg.set.tmpdir;
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

static void
spawn_worker(unsigned slot)
{
	struct worker	*w = worker_free_entry();
	pid_t		 pid;
	char		 dir[sizeof(w->tmpdir)];
	int		 n;

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
		worker_main(slot, dir);
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
describe_exit(int status, char *buf, size_t len)
{
	if (WIFEXITED(status))
		(void)snprintf(buf, len, "exited with status %d",
		    WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		(void)snprintf(buf, len, "killed by signal %d (%s)",
		    WTERMSIG(status), strsignal(WTERMSIG(status)));
	else
		(void)snprintf(buf, len, "ended (status %d)", status);
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
		describe_exit(status, why, sizeof(why));
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

	while ((got = request_recv(mg.qfd, &rq)) == 1) {
		memset(&r, 0, sizeof(r));
		id = 0;
		(void)scanproto_request_parse(rq.buf, rq.len, &id);
		scan_result_set(&r, SCAN_ERROR, "no virus database loaded");
		request_reply(&rq, id, &r);
		request_close(&rq);
	}
}

static int
manager_signals(void)
{
	sigset_t	 set;

	sigfillset(&set);
	sigdelset(&set, SIGSEGV);
	sigdelset(&set, SIGBUS);
	sigdelset(&set, SIGFPE);
	sigdelset(&set, SIGILL);
	sigdelset(&set, SIGABRT);
	(void)sigprocmask(SIG_SETMASK, &set, NULL);
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

/*
 * Client side (milter process).
 */

static atomic_int	 client_fd = -1;
static atomic_ullong	 next_id;

static pthread_mutex_t	 slot_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t	 slot_cv;
static pthread_once_t	 slot_once = PTHREAD_ONCE_INIT;
static unsigned		 slot_used, slot_peak;

void
scan_client_set_fd(int fd)
{
	atomic_store(&client_fd, fd);
}

int
scan_client_fd(void)
{
	return atomic_load(&client_fd);
}

static void
slot_init(void)
{
	pthread_condattr_t	 a;

	(void)pthread_condattr_init(&a);
	(void)pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	(void)pthread_cond_init(&slot_cv, &a);
	(void)pthread_condattr_destroy(&a);
}

enum rc
scan_slot_acquire(unsigned max, uint64_t deadline_ms)
{
	struct timespec	 ts;
	enum rc		 rc = RC_OK;

	(void)pthread_once(&slot_once, slot_init);
	ts.tv_sec = (time_t)(deadline_ms / 1000);
	ts.tv_nsec = (long)(deadline_ms % 1000) * 1000000L;
	(void)pthread_mutex_lock(&slot_mu);
	while (slot_used >= (max > 0 ? max : 1) && rc == RC_OK)
		if (pthread_cond_timedwait(&slot_cv, &slot_mu, &ts) ==
		    ETIMEDOUT)
			rc = RC_TIMEOUT;
	if (rc == RC_OK) {
		slot_used++;
		if (slot_used > slot_peak)
			slot_peak = slot_used;
	}
	(void)pthread_mutex_unlock(&slot_mu);
	return rc;
}

void
scan_slot_release(void)
{
	(void)pthread_once(&slot_once, slot_init);
	(void)pthread_mutex_lock(&slot_mu);
	if (slot_used > 0)
		slot_used--;
	(void)pthread_cond_signal(&slot_cv);
	(void)pthread_mutex_unlock(&slot_mu);
}

unsigned
scan_slot_peak(int reset)
{
	unsigned	 p;

	(void)pthread_mutex_lock(&slot_mu);
	p = slot_peak;
	if (reset)
		slot_peak = 0;
	(void)pthread_mutex_unlock(&slot_mu);
	return p;
}

/* A read-only descriptor of its own (own offset) for the message. */
static int
readonly_fd(int fd)
{
	char	 path[64];
	int	 ro;

	(void)snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	ro = open(path, O_RDONLY | O_CLOEXEC);
	if (ro < 0)
		ro = fcntl(fd, F_DUPFD_CLOEXEC, 0);	/* no /proc */
	return ro;
}

/* Milliseconds until deadline, at least 0. */
static int
remaining(uint64_t deadline)
{
	uint64_t	 now = now_ms();

	if (now >= deadline)
		return 0;
	return deadline - now > INT32_MAX ? INT32_MAX : (int)(deadline - now);
}

static enum rc
send_request(int qfd, uint64_t id, int msgfd, int replyfd, uint64_t deadline)
{
	union {
		char		 buf[CMSG_SPACE(2 * sizeof(int))];
		struct cmsghdr	 align;
	} cm;
	char		 line[SCANPROTO_MAX];
	struct msghdr	 mh;
	struct iovec	 iov;
	struct cmsghdr	*c;
	struct pollfd	 p;
	int		 fds[2] = { msgfd, replyfd };

	iov.iov_len = scanproto_request_encode(line, sizeof(line), id);
	iov.iov_base = line;
	memset(&mh, 0, sizeof(mh));
	memset(&cm, 0, sizeof(cm));
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cm.buf;
	mh.msg_controllen = sizeof(cm.buf);
	c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(fds));
	memcpy(CMSG_DATA(c), fds, sizeof(fds));
	for (;;) {
		if (sendmsg(qfd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) >= 0)
			return RC_OK;
		if (errno != EAGAIN && errno != EINTR)
			return RC_TEMP;
		p.fd = qfd;
		p.events = POLLOUT;
		if (poll(&p, 1, remaining(deadline)) == 0 &&
		    remaining(deadline) == 0)
			return RC_TIMEOUT;
	}
}

void
scan_client_scan(int msgfd, uint64_t deadline, struct scan_result *r)
{
	struct pollfd	 p;
	char		 line[SCANPROTO_MAX + 1];
	uint64_t	 id, rid = 0;
	ssize_t		 n;
	enum rc		 rc;
	int		 qfd = scan_client_fd(), ro, rp[2], k;

	memset(r, 0, sizeof(*r));
	if (qfd < 0) {
		scan_result_set(r, SCAN_ERROR, "scanner service not running");
		return;
	}
	if ((ro = readonly_fd(msgfd)) < 0) {
		scan_result_set(r, SCAN_ERROR, "message descriptor: %s",
		    strerror(errno));
		return;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, rp) != 0) {
		scan_result_set(r, SCAN_ERROR, "socketpair: %s",
		    strerror(errno));
		(void)close(ro);
		return;
	}
	id = atomic_fetch_add(&next_id, 1) + 1;
	rc = send_request(qfd, id, ro, rp[1], deadline);
	(void)close(ro);
	(void)close(rp[1]);	/* now only the scanner holds it */
	if (rc != RC_OK) {
		scan_result_set(r, SCAN_ERROR, rc == RC_TIMEOUT ? "scanner "
		    "queue full until the deadline" : "cannot queue the scan: "
		    "%s", strerror(errno));
		(void)close(rp[0]);
		return;
	}
	p.fd = rp[0];
	p.events = POLLIN;
	do {
		p.revents = 0;
		k = poll(&p, 1, remaining(deadline));
	} while (k < 0 && errno == EINTR);
	if (k <= 0 || p.revents == 0) {
		scan_result_set(r, SCAN_ERROR, "scan timed out");
		(void)close(rp[0]);
		return;
	}
	n = recv(rp[0], line, sizeof(line), MSG_DONTWAIT);
	(void)close(rp[0]);
	if (n == 0 || (n < 0 && errno == ECONNRESET))
		scan_result_set(r, SCAN_ERROR, "scanner process died");
	else if (n < 0)
		scan_result_set(r, SCAN_ERROR, "reading the scan reply: %s",
		    strerror(errno));
	else if (scanproto_reply_parse(line, (size_t)n, &rid, r) != RC_OK ||
	    rid != id)
		scan_result_set(r, SCAN_ERROR, "bad reply from the scanner");
}
