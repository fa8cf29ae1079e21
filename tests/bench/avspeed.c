/*
 * avspeed.c -- the libclamav ceiling: scans/s of one message with the
 * engine alone, no milter, no socket, for tests/bench/content.sh.
 *
 *   avspeed -d DBDIR [-p PROCS] [-n SCANS] [-t TMPDIR] [-e] FILE
 *
 * Loads DBDIR as portero's scan manager does (cl_init, cl_engine_new,
 * cl_load with CL_DB_STDOPT, portero's default limits: max_scan_size
 * 100M, max_file_size 50M, max_recursion 16, max_files 1000,
 * max_embedded_pe 10M, max_scan_time 60 s; cl_engine_compile), scans
 * FILE once to check the verdict, then forks PROCS workers (default: the
 * number of online CPUs) that share the engine copy-on-write, like
 * portero's scanners.  Each worker, once all are forked, scans FILE
 * SCANS times (default 100) from its own descriptor (lseek to 0, then
 * cl_scandesc with portero's options: heuristic alerts, every parser
 * including mail/MIME, CL_SCAN_HEURISTIC_EXCEEDS_MAX).  Each worker has
 * its own libclamav temporary directory under TMPDIR (default $TMPDIR,
 * else /tmp), as each portero scanner has: the workers inherit one
 * random state, so libclamav's scan directory names would collide in a
 * shared one (and the MIME parts of one scan vanish under another).
 *
 * Prints one line on stdout:
 *   result scans=N secs=S rate=R sigs=K procs=P [virus=NAME]
 * N scans over all workers, S seconds from the start of the scans to
 * the end of the last worker, R = N / S, K signatures loaded.  Every
 * scan must be clean (with -e: must find a virus, e.g. the EICAR
 * message); otherwise the error goes to stderr and the exit status is 1
 * (2 for bad usage or a database that does not load).
 *
 * Single-threaded processes; nothing shared after the fork but the
 * engine's pages.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <clamav.h>

#define PROCS_MAX	256

static const char		*dbdir;
static const char		*tmpdir;
static const char		*file;
static unsigned long		 nprocs;
static unsigned long		 nscans = 100;
static int			 want_virus;
static struct cl_engine		*engine;

static void
usage(void)
{
	fprintf(stderr, "usage: avspeed -d dbdir [-p procs] [-n scans] "
	    "[-t tmpdir] [-e] file\n");
	exit(2);
}

static unsigned long
num_arg(const char *s, unsigned long max)
{
	char		*end;
	unsigned long	 v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v == 0 || v > max)
		usage();
	return v;
}

static double
now(void)
{
	struct timespec	 ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The limits portero's scanners set (src/scanner.c, defaults from
 * src/cfg_schema.c); the bench's portero config keeps the defaults. */
static int
engine_load(unsigned *sigs)
{
	cl_error_t	 rc;

	if ((rc = cl_init(CL_INIT_DEFAULT)) != CL_SUCCESS)
		goto fail;
	if ((engine = cl_engine_new()) == NULL) {
		fprintf(stderr, "avspeed: cl_engine_new failed\n");
		return -1;
	}
	*sigs = 0;
	if ((rc = cl_load(dbdir, engine, sigs, CL_DB_STDOPT)) != CL_SUCCESS)
		goto fail;
	if ((rc = cl_engine_set_num(engine, CL_ENGINE_MAX_SCANSIZE,
	    100LL << 20)) != CL_SUCCESS ||
	    (rc = cl_engine_set_num(engine, CL_ENGINE_MAX_FILESIZE,
	    50LL << 20)) != CL_SUCCESS ||
	    (rc = cl_engine_set_num(engine, CL_ENGINE_MAX_RECURSION,
	    16)) != CL_SUCCESS ||
	    (rc = cl_engine_set_num(engine, CL_ENGINE_MAX_FILES,
	    1000)) != CL_SUCCESS ||
	    (rc = cl_engine_set_num(engine, CL_ENGINE_MAX_EMBEDDEDPE,
	    10LL << 20)) != CL_SUCCESS ||
	    (rc = cl_engine_set_num(engine, CL_ENGINE_MAX_SCANTIME,
	    60000)) != CL_SUCCESS)
		goto fail;
	if ((rc = cl_engine_compile(engine)) != CL_SUCCESS)
		goto fail;
	if (*sigs == 0) {
		fprintf(stderr, "avspeed: no signatures in %s\n", dbdir);
		return -1;
	}
	return 0;
fail:
	fprintf(stderr, "avspeed: %s: %s\n", dbdir, cl_strerror(rc));
	return -1;
}

/* One scan of fd from its start; 0 if the verdict is the expected one.
 * virus (may be NULL) gets the name found. */
static int
scan_once(int fd, const char **virus)
{
	struct cl_scan_options	 opts;
	const char		*vn = NULL;
	unsigned long		 scanned = 0;
	cl_error_t		 rc;

	memset(&opts, 0, sizeof(opts));
	opts.general = CL_SCAN_GENERAL_HEURISTICS;
	opts.parse = ~0u;	/* every parser, mail (MIME) and archives */
	opts.heuristic = CL_SCAN_HEURISTIC_EXCEEDS_MAX;
	if (lseek(fd, 0, SEEK_SET) != 0) {
		fprintf(stderr, "avspeed: lseek %s: %s\n", file,
		    strerror(errno));
		return -1;
	}
	rc = cl_scandesc(fd, NULL, &vn, &scanned, engine, &opts);
	if (virus != NULL)
		*virus = vn;
	if (rc == CL_CLEAN && !want_virus)
		return 0;
	if (rc == CL_VIRUS && want_virus)
		return 0;
	if (rc == CL_VIRUS)
		fprintf(stderr, "avspeed: %s: found %s, want clean\n", file,
		    vn != NULL ? vn : "(no name)");
	else if (rc == CL_CLEAN)
		fprintf(stderr, "avspeed: %s: clean, want a virus\n", file);
	else
		fprintf(stderr, "avspeed: %s: %s\n", file, cl_strerror(rc));
	return -1;
}

/* A worker: waits for the start (EOF on go), scans, exits 0 or 1.  Its
 * own open file (a shared one would share the offset). */
static void __attribute__((noreturn))
worker(int go, unsigned long slot)
{
	char		 dir[4096];
	char		 c;
	unsigned long	 i;
	int		 fd, rc = 0;

	(void)prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() == 1)
		_exit(1);
	if ((fd = open(file, O_RDONLY | O_CLOEXEC)) < 0) {
		fprintf(stderr, "avspeed: %s: %s\n", file, strerror(errno));
		_exit(1);
	}
	(void)snprintf(dir, sizeof(dir), "%s/avspeed.%ld.%lu", tmpdir,
	    (long)getpid(), slot);
	if (mkdir(dir, 0700) != 0) {
		fprintf(stderr, "avspeed: mkdir %s: %s\n", dir,
		    strerror(errno));
		_exit(1);
	}
	if (cl_engine_set_str(engine, CL_ENGINE_TMPDIR, dir) != CL_SUCCESS) {
		fprintf(stderr, "avspeed: cannot set tmpdir %s\n", dir);
		rc = 1;
	}
	while (rc == 0 && read(go, &c, 1) < 0 && errno == EINTR)
		;
	for (i = 0; rc == 0 && i < nscans; i++)
		if (scan_once(fd, NULL) != 0)
			rc = 1;
	if (rmdir(dir) != 0)
		fprintf(stderr, "avspeed: rmdir %s: %s\n", dir,
		    strerror(errno));
	_exit(rc);
}

int
main(int argc, char **argv)
{
	pid_t		 pids[PROCS_MAX];
	const char	*virus = NULL;
	char		 vname[256];
	unsigned	 sigs;
	unsigned long	 i, started = 0;
	double		 t0, secs;
	long		 ncpu;
	int		 ch, fd, go[2], status, failed = 0;

	while ((ch = getopt(argc, argv, "d:ep:n:t:")) != -1) {
		switch (ch) {
		case 'd':
			dbdir = optarg;
			break;
		case 'e':
			want_virus = 1;
			break;
		case 'p':
			nprocs = num_arg(optarg, PROCS_MAX);
			break;
		case 'n':
			nscans = num_arg(optarg, 100000000UL);
			break;
		case 't':
			tmpdir = optarg;
			break;
		default:
			usage();
		}
	}
	if (dbdir == NULL || optind != argc - 1)
		usage();
	file = argv[optind];
	if (tmpdir == NULL && (tmpdir = getenv("TMPDIR")) == NULL)
		tmpdir = "/tmp";
	if (nprocs == 0) {
		ncpu = sysconf(_SC_NPROCESSORS_ONLN);
		nprocs = ncpu < 1 ? 1 : ncpu > PROCS_MAX ? PROCS_MAX :
		    (unsigned long)ncpu;
	}
	if ((fd = open(file, O_RDONLY | O_CLOEXEC)) < 0) {
		fprintf(stderr, "avspeed: %s: %s\n", file, strerror(errno));
		return 2;
	}
	if (engine_load(&sigs) != 0)
		return 2;
	/* the verdict first, and libclamav's lazy set-up done before the
	 * fork, as portero's manager has it done by its first scans */
	if (scan_once(fd, &virus) != 0)
		return 1;
	/* the name lives in the engine */
	(void)snprintf(vname, sizeof(vname), "%s", virus != NULL ? virus :
	    "-");
	if (pipe(go) != 0) {
		fprintf(stderr, "avspeed: pipe: %s\n", strerror(errno));
		return 2;
	}
	for (i = 0; i < nprocs; i++) {
		pids[i] = fork();
		if (pids[i] < 0) {
			fprintf(stderr, "avspeed: fork: %s\n", strerror(errno));
			failed = 1;
			break;
		}
		if (pids[i] == 0) {
			(void)close(go[1]);
			(void)close(fd);
			worker(go[0], i);
		}
		started++;
	}
	(void)close(go[0]);
	t0 = now();
	(void)close(go[1]);	/* every worker starts */
	for (i = 0; i < started; i++) {
		while (waitpid(pids[i], &status, 0) < 0)
			if (errno != EINTR) {
				status = 1;
				break;
			}
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			if (WIFSIGNALED(status))
				fprintf(stderr, "avspeed: worker %lu killed by "
				    "signal %d\n", i, WTERMSIG(status));
			failed = 1;
		}
	}
	secs = now() - t0;
	cl_engine_free(engine);
	(void)close(fd);
	if (failed)
		return 1;
	printf("result scans=%lu secs=%.3f rate=%.2f sigs=%u procs=%lu",
	    nscans * nprocs, secs, secs > 0 ? (double)(nscans * nprocs) / secs
	    : 0.0, sigs, nprocs);
	if (want_virus)
		printf(" virus=%s", vname);
	printf("\n");
	return 0;
}
