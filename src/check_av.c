/*
 * check_av.c - the "antivirus" module: ClamAV scan of the whole message at
 * end of message (SPEC sections 2 to 4).
 *
 * The message as it will be queued (msg->spool) goes to the scanner pool
 * (scanner.h: libclamav in separate processes) or, with antivirus.clamd
 * set, to a clamd over INSTREAM (clamd.h).  Outbound mail is scanned too
 * (no CHECK_INBOUND): a gateway should not relay a virus from an infected
 * internal host either.  Verdicts:
 *
 *   infected  on_infected: reject "554 5.7.1 Virus found: NAME", discard,
 *             quarantine (hold queue), or tag (accept with
 *             "X-Virus-Found: NAME")
 *   limit     a scan limit was exceeded (Heuristics.Limits.Exceeded.*):
 *             scan_limit_action: tempfail "451 4.3.0 Message could not be
 *             virus-scanned (NAME)", accept, or tag (accept with
 *             "X-Virus-Scan: limit exceeded (NAME)")
 *   error     CR_ERROR: the pipeline applies on_error (tempfail)
 *
 * msg->av tells the decision line: "clean", "infected:NAME",
 * "limit:NAME" or "error:WHY".  A dry-run module adds no header.
 * Conf is read-only after setup; the scan cap (scan_slot_*) is shared by
 * the process's threads and locked: thread-safe.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "ctx.h"
#include "log.h"
#include "metrics.h"
#include "scanner.h"
#include "spool.h"
#include "util.h"

static int
av_setup(const struct cfg *cfg, const config_setting_t *g, void **conf,
    struct err *e)
{
	struct av_conf	*ac;
	const char	*s;
	unsigned	 scan_time_s;

	(void)cfg;
	if ((ac = calloc(1, sizeof(*ac))) == NULL) {
		err_set(e, "out of memory");
		return -1;
	}
	if (str_copy(ac->scan.database, cv_string(g, "antivirus.database"),
	    sizeof(ac->scan.database)) != 0 ||
	    str_copy(ac->scan.tmpdir, cv_string(g, "antivirus.tmpdir"),
	    sizeof(ac->scan.tmpdir)) != 0) {
		err_set(e, "setting 'antivirus.database' or 'antivirus.tmpdir':"
		    " path too long");
		goto fail;
	}
	ac->scan.scanners = (unsigned)cv_int(g, "antivirus.scanners");
	ac->scan.check_interval = (unsigned)cv_duration(g,
	    "antivirus.check_interval");
	ac->scan.timeout = (unsigned)cv_duration(g, "antivirus.timeout");
	ac->scan.heuristic_alerts = cv_bool(g, "antivirus.heuristic_alerts");
	ac->scan.max_scan_size = cv_size(g, "antivirus.max_scan_size");
	ac->scan.max_file_size = cv_size(g, "antivirus.max_file_size");
	ac->scan.max_embedded_pe = cv_size(g, "antivirus.max_embedded_pe");
	ac->scan.max_recursion = (unsigned)cv_int(g,
	    "antivirus.max_recursion");
	ac->scan.max_files = (unsigned)cv_int(g, "antivirus.max_files");
	scan_time_s = (unsigned)cv_duration(g, "antivirus.max_scan_time");
	ac->scan.max_scan_time = scan_time_s * 1000;
	ac->timeout_ms = ac->scan.timeout * 1000;
	ac->max_scans = (unsigned)cv_int(g, "antivirus.max_scans");
	if (ac->max_scans == 0)
		ac->max_scans = 2 * ac->scan.scanners;
	s = cv_string(g, "antivirus.clamd");
	if (*s != '\0') {
		if (clamd_addr_parse(s, &ac->clamd, e) != RC_OK) {
			err_prefix(e, "setting 'antivirus.clamd'");
			goto fail;
		}
		ac->use_clamd = 1;
	} else if (scan_time_s >= ac->scan.timeout) {
		/* else the scanner would work on after the milter gave up */
		err_set(e, "setting 'antivirus.max_scan_time' (%us) must be "
		    "shorter than 'antivirus.timeout' (%us)", scan_time_s,
		    ac->scan.timeout);
		goto fail;
	}
	s = cv_string(g, "antivirus.on_infected");
	ac->on_infected = strcmp(s, "discard") == 0 ? AV_DISCARD :
	    strcmp(s, "quarantine") == 0 ? AV_QUARANTINE :
	    strcmp(s, "tag") == 0 ? AV_TAG : AV_REJECT;
	s = cv_string(g, "antivirus.scan_limit_action");
	ac->on_limit = strcmp(s, "accept") == 0 ? AV_LIMIT_ACCEPT :
	    strcmp(s, "tag") == 0 ? AV_LIMIT_TAG : AV_LIMIT_TEMPFAIL;
	*conf = ac;
	return 0;
fail:
	free(ac);
	return -1;
}

static void
av_teardown(void *conf)
{
	free(conf);
}

/* s from arena_printf, or def when the arena is exhausted. */
static const char *
or_default(struct txn *t, const char *s, const char *def)
{
	if (s == NULL)
		t->nomem = 1;
	return s != NULL ? s : def;
}

static enum cr_status
infected(const struct av_conf *ac, struct txn *t, const char *name)
{
	struct arena	*ar = t->msg->arena;
	const char	*text = or_default(t, arena_printf(ar,
			    "Virus found: %s", name), "Virus found");

	switch (ac->on_infected) {
	case AV_REJECT:
		txn_verdict(t, ACT_REJECT, "554", "5.7.1", text);
		break;
	case AV_DISCARD:
		txn_verdict(t, ACT_DISCARD, NULL, NULL, text);
		break;
	case AV_QUARANTINE:
		txn_verdict(t, ACT_QUARANTINE, NULL, NULL, text);
		break;
	case AV_TAG:
		if (!t->check->dry_run)
			txn_header_add(t, "X-Virus-Found", or_default(t,
			    arena_strdup(ar, name), "yes"));
		break;
	}
	return CR_FAIL;
}

static enum cr_status
limited(const struct av_conf *ac, struct txn *t, const char *name)
{
	struct arena	*ar = t->msg->arena;

	switch (ac->on_limit) {
	case AV_LIMIT_TEMPFAIL:
		txn_verdict(t, ACT_TEMPFAIL, "451", "4.3.0", or_default(t,
		    arena_printf(ar, "Message could not be virus-scanned "
		    "(%s)", name), "Message could not be virus-scanned"));
		return CR_FAIL;
	case AV_LIMIT_TAG:
		if (!t->check->dry_run)
			txn_header_add(t, "X-Virus-Scan", or_default(t,
			    arena_printf(ar, "limit exceeded (%s)", name),
			    "limit exceeded"));
		break;
	case AV_LIMIT_ACCEPT:
		break;
	}
	return CR_NEUTRAL;
}

static enum cr_status
av_run(const void *conf, struct txn *t, enum stage st)
{
	const struct av_conf	*ac = conf;
	struct msg_ctx		*m = t->msg;
	struct scan_result	 r;
	struct err		 e;
	uint64_t		 t0 = now_ms(), deadline;
	int			 fd;

	(void)st;
	if (m == NULL)
		return CR_SKIP;
	deadline = t0 + ac->timeout_ms;
	memset(&r, 0, sizeof(r));
	err_clear(&e);
	if (m->spool == NULL || m->spool_failed)
		scan_result_set(&r, SCAN_ERROR, "message content not kept");
	else if ((fd = spool_fd(m->spool, &e)) < 0)
		scan_result_set(&r, SCAN_ERROR, "%s", e.msg);
	else if (scan_slot_acquire(ac->max_scans, deadline) != RC_OK)
		scan_result_set(&r, SCAN_ERROR, "no free scan slot before "
		    "the deadline (antivirus.max_scans=%u)", ac->max_scans);
	else {
		if (ac->use_clamd)
			clamd_scan(&ac->clamd, fd, deadline, &r);
		else
			scan_client_scan(fd, deadline, &r);
		scan_slot_release();
	}
	if (r.verdict == SCAN_ERROR && m->spool != NULL)
		spool_fd_abandon(m->spool);	/* a scanner may still read */
	metrics_observe(M.av_seconds, NULL, (double)(now_ms() - t0) / 1000.0);
	metrics_inc(M.av_scans, scan_verdict_name(r.verdict), 1);
	if (r.sigs > 0)
		metrics_set(M.av_signatures, (int64_t)r.sigs);
	m->av = r.verdict == SCAN_CLEAN ? "clean" : arena_printf(m->arena,
	    "%s:%s", r.verdict == SCAN_FOUND ? "infected" :
	    r.verdict == SCAN_LIMIT ? "limit" : "error", r.name);
	if (m->av == NULL)
		m->av = scan_verdict_name(r.verdict);
	switch (r.verdict) {
	case SCAN_CLEAN:
		return CR_PASS;
	case SCAN_FOUND:
		return infected(ac, t, r.name);
	case SCAN_LIMIT:
		return limited(ac, t, r.name);
	case SCAN_ERROR:
		break;
	}
	txn_error(t, strncmp(m->av, "error:", 6) == 0 ? m->av + 6 : m->av);
	return CR_ERROR;
}

const struct check_ops check_antivirus = {
	.name = "antivirus",
	.group = "antivirus",
	.stages = STAGE_BIT(STAGE_EOM),
	.flags = CHECK_CONTENT,
	.implemented = 1,
	.setup = av_setup,
	.teardown = av_teardown,
	.run = av_run,
};
