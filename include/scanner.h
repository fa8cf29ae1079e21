/*
 * scanner.h - the ClamAV scanner service and its client.
 *
 * The service is a manager process that loads one libclamav engine and
 * forks a pool of scanner (worker) processes sharing it copy-on-write;
 * libclamav's parsers never run in the milter's threads.  The milter
 * (client) sends each message as a read-only descriptor over the request
 * queue, a SOCK_SEQPACKET socketpair made before the processes fork; the
 * request carries its own reply pipe (write end), so a scanner that dies
 * closes it and costs only that message an error.  Reload (SIGUSR1, or a change of
 * the database directory) loads a new engine and starts a new generation
 * of scanners while the old one finishes its scans; a failed load keeps
 * the old engine.  Wire format: scanproto.h.
 *
 * Service functions are for the single-threaded starter (supervisor,
 * portero-ctl test, tests).  Client functions are thread-safe.
 */
#ifndef PORTERO_SCANNER_H
#define PORTERO_SCANNER_H

#include <stdint.h>
#include <sys/types.h>

#include "clamd.h"
#include "err.h"
#include "scanproto.h"

#define SCANNERS_MAX	64
#define SCAN_PATH_MAX	1024

/* What the manager needs: a plain value, copied across fork. */
struct scan_settings {
	char		 database[SCAN_PATH_MAX];	/* freshclam's */
	char		 tmpdir[SCAN_PATH_MAX];	/* "": TMPDIR or /tmp */
	unsigned	 scanners;		/* 1..SCANNERS_MAX */
	unsigned	 check_interval;	/* s; 0: no database poll */
	unsigned	 timeout;		/* s; a scan's hard bound */
	int		 heuristic_alerts;	/* libclamav heuristics */
	uint64_t	 max_scan_size, max_file_size, max_embedded_pe;
	unsigned	 max_recursion, max_files;
	unsigned	 max_scan_time;		/* ms */
};

enum av_infected { AV_REJECT, AV_DISCARD, AV_QUARANTINE, AV_TAG };
enum av_limit { AV_LIMIT_TEMPFAIL, AV_LIMIT_ACCEPT, AV_LIMIT_TAG };

/* The compiled "antivirus" group (check_av.c); read-only. */
struct av_conf {
	struct scan_settings	 scan;
	int			 use_clamd;	/* antivirus.clamd set */
	struct clamd_addr	 clamd;
	enum av_infected	 on_infected;
	enum av_limit		 on_limit;
	unsigned		 timeout_ms;
	unsigned		 max_scans;	/* concurrent scans */
};

/*
 * Service.
 */
struct cfg;
/* 1 and *s filled when cfg has antivirus on with the scanner pool
 * (not clamd); 0 otherwise. */
int		 scanner_wanted(const struct cfg *, struct scan_settings *s);
/* The same from a config file, loaded quietly (the milter process logs
 * what its modules find); *level: its log.level.  -1 with e set if the
 * file does not load. */
int		 scanner_config(const char *cfgpath, struct scan_settings *s,
		    int *level, struct err *e);
/* The request queue: fds[0] the client end, fds[1] the server end. */
enum rc		 scanner_channel(int fds[2], struct err *);
/*
 * Forks the manager on server_fd (the child closes close_fd if >= 0).
 * cfgpath: the config file a SIGUSR1 re-reads (NULL: keep s, reload the
 * database only).  The manager dies with its parent, stops on SIGTERM
 * (its scanners finish their scans first) and when the queue's client
 * end is closed everywhere.  Returns the pid, or -1 (logged).
 */
pid_t		 scanner_spawn(const struct scan_settings *,
		    const char *cfgpath, int server_fd, int close_fd);
/* SIGTERM, wait up to ms, then SIGKILL and reap. */
void		 scanner_stop(pid_t, unsigned ms);

/* Starter's convenience: channel + manager; the client end installed
 * with scan_client_set_fd(). */
struct scan_service {
	pid_t	 pid;
	int	 client_fd, server_fd;
};
enum rc		 scanner_service_start(struct scan_service *,
		    const struct scan_settings *, const char *cfgpath,
		    struct err *);
void		 scanner_service_stop(struct scan_service *);

/*
 * Test hook: with PORTERO_TEST_SCAN_DELAY_MS=N in the environment when the
 * manager starts, every scanner sleeps N ms before each scan (to kill one
 * mid-scan, or to fill the pool).  Never set in production.
 */
#define SCANNER_TEST_DELAY_ENV	"PORTERO_TEST_SCAN_DELAY_MS"

/*
 * Client (the milter process).
 */
/* The request queue's client end for this process (-1: none). */
void		 scan_client_set_fd(int);
int		 scan_client_fd(void);
/* Scans the content of msgfd (from offset 0) by the pool before
 * deadline_ms (now_ms() clock); never fails without saying why in r. */
void		 scan_client_scan(int msgfd, uint64_t deadline_ms,
		    struct scan_result *r);
/* The cap on concurrent scans of this process: waits for one of max
 * slots until deadline_ms.  RC_OK (release it) or RC_TIMEOUT. */
enum rc		 scan_slot_acquire(unsigned max, uint64_t deadline_ms);
void		 scan_slot_release(void);
/* Most slots ever held at once (tests); reset sets it to 0. */
unsigned	 scan_slot_peak(int reset);

#endif
