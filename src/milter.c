/*
 * milter.c - libmilter callbacks and the milter child process.
 *
 * The callbacks only copy data in from libmilter, call the pipeline, and
 * turn its verdict into a milter reply.  libmilter runs one thread per MTA
 * connection; each callback touches only that connection's context, plus
 * the atomic connection counter and the thread-safe metrics and config.
 * The child blocks SIGUSR1 in every thread and reloads the config from a
 * dedicated sigwait thread.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libmilter/mfapi.h>
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#endif

#include "cfg.h"
#include "ctx.h"
#include "log.h"
#include "metrics.h"
#include "milter.h"
#include "pipeline.h"
#include "spool.h"
#include "util.h"

/* Per MTA connection: created at negotiation, freed at close. */
struct mconn {
	struct conn_ctx	*c;
	unsigned long	 pflags;	/* negotiated protocol flags */
	int		 counted;	/* holds a slot of max_connections */
	int		 over_cap;
};

#define PERIODIC_S	600	/* seconds between zone self-tests */

static atomic_int	 active;
static const char	*child_cfgpath;

int
milter_active(void)
{
	return atomic_load(&active);
}

static struct mconn *
mc_of(SMFICTX *ctx)
{
	return smfi_getpriv(ctx);
}

static const char *
macro(SMFICTX *ctx, const char *name)
{
	const char	*v = smfi_getsymval(ctx, (char *)name);

	return v != NULL && *v != '\0' ? v : NULL;
}

static void
take_queue_id(SMFICTX *ctx, struct conn_ctx *c)
{
	const char	*qid = macro(ctx, "i");

	if (c->msg != NULL && qid != NULL)
		msg_set_queue_id(c->msg, qid);
}

/* Answers a verdict: reply text with the decision id, then the status. */
static sfsistat
reply(SMFICTX *ctx, struct conn_ctx *c, const struct verdict *v)
{
	switch (v->action) {
	case ACT_CONTINUE:
		return SMFIS_CONTINUE;
	case ACT_ACCEPT:
		return SMFIS_ACCEPT;
	case ACT_DISCARD:
		return SMFIS_DISCARD;
	case ACT_QUARANTINE:
		if (smfi_quarantine(ctx, (char *)pipeline_reply_text(c, v)) !=
		    MI_SUCCESS) {
			log_conn(c, LOG_ERR, "quarantine failed; tempfail");
			return SMFIS_TEMPFAIL;
		}
		return SMFIS_ACCEPT;
	case ACT_TEMPFAIL:
	case ACT_REJECT:
		if (v->code != NULL && smfi_setreply(ctx, (char *)v->code,
		    (char *)v->dsn, (char *)pipeline_reply_text(c, v)) !=
		    MI_SUCCESS)
			log_conn(c, LOG_WARNING, "smfi_setreply failed for %s",
			    v->code);
		return v->action == ACT_REJECT ? SMFIS_REJECT : SMFIS_TEMPFAIL;
	}
	return SMFIS_TEMPFAIL;
}

/* Stages where portero never answers get no-reply flags. */
static unsigned long
stage_needs(const struct cfg *cfg, enum stage st)
{
	size_t	 i;

	for (i = 0; i < cfg->nchecks; i++)
		if ((cfg->checks[i].ops->stages &
		    ~cfg->checks[i].ops->quiet_stages) & STAGE_BIT(st))
			return 1;
	return 0;
}

static sfsistat
cb_negotiate(SMFICTX *ctx, unsigned long f0, unsigned long f1,
    unsigned long f2, unsigned long f3, unsigned long *pf0,
    unsigned long *pf1, unsigned long *pf2, unsigned long *pf3)
{
	struct mconn	*mc;
	struct cfg	*cfg;
	unsigned long	 want;

	(void)f2;
	(void)f3;
	mc = calloc(1, sizeof(*mc));
	if (mc == NULL)
		return SMFIS_REJECT;	/* MTA applies its default action */
	cfg = cfg_acquire();
	mc->c = cfg != NULL ? conn_ctx_new(cfg) : NULL;
	if (mc->c == NULL) {
		cfg_release(cfg);
		free(mc);
		return SMFIS_REJECT;
	}
	(void)smfi_setpriv(ctx, mc);
	*pf0 = f0 & (SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_QUARANTINE |
	    SMFIF_SETSYMLIST);
	want = SMFIP_NOUNKNOWN | SMFIP_NODATA | SMFIP_NR_UNKN | SMFIP_NR_DATA |
	    SMFIP_NR_HELO | SMFIP_NR_MAIL;
	if (!stage_needs(cfg, STAGE_HEADER))
		want |= SMFIP_NR_HDR;
	if (!stage_needs(cfg, STAGE_EOH))
		want |= SMFIP_NR_EOH;
	if (!stage_needs(cfg, STAGE_BODY))
		want |= SMFIP_NR_BODY;
	mc->pflags = want & f1;
	*pf1 = mc->pflags;
	*pf2 = 0;
	*pf3 = 0;
	if (f0 & SMFIF_SETSYMLIST) {
		(void)smfi_setsymlist(ctx, SMFIM_CONNECT,
		    "j _ {daemon_name} {daemon_addr} {daemon_port}");
		(void)smfi_setsymlist(ctx, SMFIM_ENVFROM,
		    "i {auth_authen} {auth_type}");
		(void)smfi_setsymlist(ctx, SMFIM_ENVRCPT, "i");
		(void)smfi_setsymlist(ctx, SMFIM_EOM, "i");
	}
	return SMFIS_CONTINUE;
}

/* The sfsistat for a stage negotiated as no-reply. */
static sfsistat
noreply(const struct mconn *mc, unsigned long flag, sfsistat st)
{
	return (mc->pflags & flag) ? SMFIS_NOREPLY : st;
}

static const char *
copy_macro(struct conn_ctx *c, SMFICTX *ctx, const char *name)
{
	const char	*v = macro(ctx, name);

	return v != NULL ? arena_strndup(c->arena, v, strnlen(v, 255)) : NULL;
}

static sfsistat
cb_connect(SMFICTX *ctx, char *hostname, struct sockaddr *sa)
{
	struct mconn	*mc = mc_of(ctx);
	struct conn_ctx	*c;
	struct verdict	 v;
	char		 addr[INET6_ADDRSTRLEN];
	const char	*ap = NULL;
	int		 n;

	if (mc == NULL)
		return SMFIS_TEMPFAIL;
	c = mc->c;
	n = atomic_fetch_add(&active, 1) + 1;
	mc->counted = 1;
	metrics_inc(M.connections, NULL, 1);
	metrics_add(M.conn_active, 1);
	if (sa != NULL && sa->sa_family == AF_INET)
		ap = inet_ntop(AF_INET, &((struct sockaddr_in *)(void *)sa)->
		    sin_addr, addr, sizeof(addr));
	else if (sa != NULL && sa->sa_family == AF_INET6)
		ap = inet_ntop(AF_INET6, &((struct sockaddr_in6 *)(void *)sa)->
		    sin6_addr, addr, sizeof(addr));
	c->daemon_name = copy_macro(c, ctx, "{daemon_name}");
	c->daemon_addr = copy_macro(c, ctx, "{daemon_addr}");
	c->daemon_port = copy_macro(c, ctx, "{daemon_port}");
	c->myhostname = copy_macro(c, ctx, "j");
	if ((unsigned)n > c->cfg->milter.max_connections) {
		mc->over_cap = 1;
		metrics_inc(M.conn_refused, NULL, 1);
		c->client_addr = ap != NULL ? arena_strdup(c->arena, ap) : "";
		if (c->client_addr == NULL)
			c->client_addr = "";
		if (hostname != NULL && *hostname != '[')
			c->client_name = arena_strndup(c->arena, hostname,
			    strnlen(hostname, 255));
		verdict_set(&v, ACT_TEMPFAIL, "451", "4.3.2",
		    "Too many connections to the mail filter, try again later",
		    "max_connections");
		log_decision(c, NULL, NULL, &v);
		metrics_inc(M.messages, "tempfail", 1);
		metrics_inc(M.refusals, "max_connections", 1);
		return reply(ctx, c, &v);
	}
	pipeline_connect(c, hostname, ap, &v);
	return reply(ctx, c, &v);
}

static sfsistat
cb_helo(SMFICTX *ctx, char *helo)
{
	struct mconn	*mc = mc_of(ctx);
	struct verdict	 v;

	if (mc == NULL || mc->over_cap)
		return noreply(mc, SMFIP_NR_HELO, SMFIS_TEMPFAIL);
	pipeline_helo(mc->c, helo != NULL ? helo : "", &v);
	return noreply(mc, SMFIP_NR_HELO, reply(ctx, mc->c, &v));
}

static sfsistat
cb_envfrom(SMFICTX *ctx, char **argv)
{
	struct mconn	*mc = mc_of(ctx);
	struct verdict	 v;

	if (mc == NULL || mc->over_cap)
		return noreply(mc, SMFIP_NR_MAIL, SMFIS_TEMPFAIL);
	pipeline_mail(mc->c, argv != NULL && argv[0] != NULL ? argv[0] : "",
	    macro(ctx, "{auth_authen}"), &v);
	take_queue_id(ctx, mc->c);
	/* MAIL never answers: its verdicts are held until RCPT */
	return noreply(mc, SMFIP_NR_MAIL, SMFIS_CONTINUE);
}

static sfsistat
cb_envrcpt(SMFICTX *ctx, char **argv)
{
	struct mconn	*mc = mc_of(ctx);
	struct verdict	 v;

	if (mc == NULL || mc->over_cap)
		return SMFIS_TEMPFAIL;
	take_queue_id(ctx, mc->c);
	pipeline_rcpt(mc->c, argv != NULL && argv[0] != NULL ? argv[0] : "",
	    &v);
	return reply(ctx, mc->c, &v);
}

static sfsistat
cb_header(SMFICTX *ctx, char *name, char *value)
{
	struct mconn	*mc = mc_of(ctx);
	struct verdict	 v;

	if (mc == NULL || mc->over_cap)
		return noreply(mc, SMFIP_NR_HDR, SMFIS_TEMPFAIL);
	pipeline_header(mc->c, name != NULL ? name : "", value != NULL ?
	    value : "", &v);
	return noreply(mc, SMFIP_NR_HDR, reply(ctx, mc->c, &v));
}

static sfsistat
cb_eoh(SMFICTX *ctx)
{
	struct mconn	*mc = mc_of(ctx);
	struct verdict	 v;

	if (mc == NULL || mc->over_cap)
		return noreply(mc, SMFIP_NR_EOH, SMFIS_TEMPFAIL);
	pipeline_eoh(mc->c, &v);
	return noreply(mc, SMFIP_NR_EOH, reply(ctx, mc->c, &v));
}

static sfsistat
cb_body(SMFICTX *ctx, unsigned char *p, size_t len)
{
	struct mconn	*mc = mc_of(ctx);
	struct verdict	 v;

	if (mc == NULL || mc->over_cap)
		return noreply(mc, SMFIP_NR_BODY, SMFIS_TEMPFAIL);
	pipeline_body(mc->c, p, len, &v);
	return noreply(mc, SMFIP_NR_BODY, reply(ctx, mc->c, &v));
}

/* Changes first (their indexes are those of the header as received),
 * then removals, last instance first (so the indexes of the others do
 * not move), then insertions and additions in the order checks made
 * them. */
static void
apply_edits(SMFICTX *ctx, struct conn_ctx *c)
{
	const struct hdr_edit	*e, **rm;
	size_t			 n = 0, i;
	int			 rc;

	for (e = c->msg->edits; e != NULL; e = e->next) {
		n += e->remove;
		if (e->change && smfi_chgheader(ctx, (char *)e->name,
		    (int)e->idx, (char *)e->value) != MI_SUCCESS)
			log_conn(c, LOG_WARNING, "changing %s failed",
			    e->name);
	}
	rm = n > 0 ? arena_calloc(c->msg->arena, n, sizeof(*rm)) : NULL;
	if (n > 0 && rm == NULL) {
		log_conn(c, LOG_ERR, "out of memory applying header edits");
		return;
	}
	i = 0;
	for (e = c->msg->edits; e != NULL; e = e->next)
		if (e->remove)
			rm[i++] = e;
	while (i-- > 0)
		if (smfi_chgheader(ctx, (char *)rm[i]->name, (int)rm[i]->idx,
		    NULL) != MI_SUCCESS)
			log_conn(c, LOG_WARNING, "removing %s failed",
			    rm[i]->name);
	for (e = c->msg->edits; e != NULL; e = e->next) {
		if (e->remove || e->change)
			continue;
		rc = e->top ? smfi_insheader(ctx, 0, (char *)e->name,
		    (char *)e->value) : smfi_addheader(ctx, (char *)e->name,
		    (char *)e->value);
		if (rc != MI_SUCCESS)
			log_conn(c, LOG_WARNING, "adding %s failed", e->name);
	}
}

static sfsistat
cb_eom(SMFICTX *ctx)
{
	struct mconn		*mc = mc_of(ctx);
	struct conn_ctx		*c;
	struct verdict		 v;
	sfsistat		 st;

	if (mc == NULL || mc->over_cap)
		return SMFIS_TEMPFAIL;
	c = mc->c;
	take_queue_id(ctx, c);
	pipeline_eom(c, &v);
	if (c->msg != NULL && (v.action == ACT_ACCEPT ||
	    v.action == ACT_QUARANTINE))
		apply_edits(ctx, c);
	st = reply(ctx, c, &v);
	pipeline_msg_end(c);
	return st;
}

static sfsistat
cb_abort(SMFICTX *ctx)
{
	struct mconn	*mc = mc_of(ctx);

	if (mc != NULL && mc->c != NULL)
		pipeline_abort(mc->c);
	return SMFIS_CONTINUE;
}

static sfsistat
cb_close(SMFICTX *ctx)
{
	struct mconn	*mc = mc_of(ctx);
	struct cfg	*cfg;

	if (mc == NULL)
		return SMFIS_CONTINUE;
	(void)smfi_setpriv(ctx, NULL);
	if (mc->counted) {
		atomic_fetch_sub(&active, 1);
		metrics_add(M.conn_active, -1);
	}
	cfg = mc->c->cfg;
	conn_ctx_free(mc->c);
	cfg_release(cfg);
	free(mc);
	return SMFIS_CONTINUE;
}

static struct smfiDesc desc = {
	.xxfi_name = "portero",
	.xxfi_version = SMFI_VERSION,
	.xxfi_flags = SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_QUARANTINE |
	    SMFIF_SETSYMLIST,
	.xxfi_connect = cb_connect,
	.xxfi_helo = cb_helo,
	.xxfi_envfrom = cb_envfrom,
	.xxfi_envrcpt = cb_envrcpt,
	.xxfi_header = cb_header,
	.xxfi_eoh = cb_eoh,
	.xxfi_body = cb_body,
	.xxfi_eom = cb_eom,
	.xxfi_abort = cb_abort,
	.xxfi_close = cb_close,
	.xxfi_unknown = NULL,
	.xxfi_data = NULL,
	.xxfi_negotiate = cb_negotiate,
};

/*
 * libmilter keeps its listening socket to itself; find it so TCP_NODELAY
 * can be set (accepted sockets inherit it on Linux).  Without it, Nagle's
 * algorithm holds the second of two back-to-back replies until the MTA's
 * delayed ACK: about 40 ms per message.
 */
static void
set_nodelay_on_listener(void)
{
	int	 fd, on = 1, acc;
	socklen_t len;
	struct sockaddr_storage ss;

	for (fd = 3; fd < 1024; fd++) {
		len = sizeof(acc);
		if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &len) != 0 ||
		    !acc)
			continue;
		len = sizeof(ss);
		if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0 ||
		    (ss.ss_family != AF_INET && ss.ss_family != AF_INET6))
			continue;
		if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on,
		    sizeof(on)) != 0)
			log_msg(LOG_WARNING, "TCP_NODELAY on the milter socket:"
			    " %s", strerror(errno));
	}
}

/* "unix:/path" or "local:/path" -> "/path"; NULL for inet sockets. */
static const char *
unix_path(const char *sock)
{
	if (strncmp(sock, "unix:", 5) == 0)
		return sock + 5;
	if (strncmp(sock, "local:", 6) == 0)
		return sock + 6;
	if (sock[0] == '/')
		return sock;
	return NULL;
}

int
milter_open(const struct cfg *cfg, struct err *e)
{
	const char	*path;

	if (smfi_register(desc) != MI_SUCCESS) {
		err_set(e, "smfi_register failed");
		return -1;
	}
	if (smfi_setconn(cfg->milter.socket) != MI_SUCCESS ||
	    smfi_settimeout((int)cfg->milter.timeout) != MI_SUCCESS ||
	    smfi_setbacklog((int)cfg->milter.backlog) != MI_SUCCESS) {
		err_set(e, "cannot use milter socket '%s'", cfg->milter.socket);
		return -1;
	}
	if (smfi_opensocket(1) != MI_SUCCESS) {
		err_set(e, "cannot open milter socket '%s' (does its directory "
		    "exist, is the port free?)", cfg->milter.socket);
		return -1;
	}
	path = unix_path(cfg->milter.socket);
	if (path != NULL) {
		if (chmod(path, cfg->milter.socket_mode) != 0) {
			err_set(e, "chmod %s: %s", path, strerror(errno));
			return -1;
		}
	} else
		set_nodelay_on_listener();
	return 0;
}

/* Runs the checks' periodic upkeep (zone self-tests) on a snapshot. */
static void
run_periodic(struct cfg *cfg)
{
	size_t	 i;

	for (i = 0; i < cfg->nchecks; i++)
		if (cfg->checks[i].ops->periodic != NULL)
			cfg->checks[i].ops->periodic(cfg->checks[i].conf, cfg);
}

/*
 * Reload thread: SIGUSR1 -> load, validate, swap; a bad file is logged and
 * the running config stays.  Between signals it runs the periodic upkeep:
 * at start, after a reload and every PERIODIC_S seconds.
 */
static void *
reload_thread(void *arg)
{
	sigset_t	 set;
	struct timespec	 tick = { 10, 0 };
	uint64_t	 last_periodic = 0;
	unsigned	 last_gen = 0;

	(void)arg;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	for (;;) {
		struct cfg	*nc, *old;
		struct err	 e;
		const char	*diff;

		nc = cfg_acquire();
		if (nc != NULL && (nc->generation != last_gen ||
		    now_ms() - last_periodic >= PERIODIC_S * 1000)) {
			run_periodic(nc);
			last_gen = nc->generation;
			last_periodic = now_ms();
		}
		cfg_release(nc);
		if (sigtimedwait(&set, NULL, &tick) != SIGUSR1)
			continue;
		err_clear(&e);
		nc = cfg_load(child_cfgpath, &e);
		if (nc == NULL) {
			log_msg(LOG_ERR, "reload failed, keeping the running "
			    "configuration: %s", e.msg);
			metrics_inc(M.reloads, "failed", 1);
			continue;
		}
		old = cfg_acquire();
		diff = old != NULL ? cfg_restart_diff(old, nc) : NULL;
		cfg_release(old);
		if (diff != NULL) {
			log_msg(LOG_ERR, "reload failed, keeping the running "
			    "configuration: setting '%s' changed and needs a "
			    "restart", diff);
			metrics_inc(M.reloads, "failed", 1);
			cfg_release(nc);
			continue;
		}
		log_set_level(nc->log.level);
		cfg_install(nc);
		metrics_inc(M.reloads, "ok", 1);
		metrics_set(M.cfg_generation, (int64_t)nc->generation);
		log_msg(LOG_INFO, "configuration reloaded from %s "
		    "(generation %u)", child_cfgpath, nc->generation);
	}
	return NULL;
}

/* _exit() skips LeakSanitizer's exit hook: run it by hand in the child. */
static void
leak_check(void)
{
#if defined(__SANITIZE_ADDRESS__)
	__lsan_do_leak_check();
#endif
}

void
milter_block_signals(void)
{
	sigset_t	 set;

	sigfillset(&set);
	sigdelset(&set, SIGSEGV);
	sigdelset(&set, SIGBUS);
	sigdelset(&set, SIGFPE);
	sigdelset(&set, SIGILL);
	sigdelset(&set, SIGABRT);
	(void)pthread_sigmask(SIG_SETMASK, &set, NULL);
}

/* Opens the store at start when a check uses it: errors show at once and
 * the LMDB purger runs from the start. */
static void
open_store(struct cfg *cfg)
{
	struct err	 e;
	size_t		 i;

	for (i = 0; i < cfg->nchecks; i++)
		if (cfg->checks[i].ops->flags & CHECK_STORE) {
			err_clear(&e);
			if (cfg_store(cfg, &e) != NULL)
				log_msg(LOG_INFO, "store: %s open",
				    store_backend_name(cfg_store(cfg, &e)));
			return;
		}
}

/* Removes what a crash could leave in the content spool directory. */
static void
spool_recover(const struct cfg *cfg)
{
	int	 n;

	if (!pipeline_keeps_content(cfg))
		return;
	if ((n = spool_cleanup_dir(cfg->content.spool_dir)) > 0)
		log_msg(LOG_NOTICE, "content: removed %d leftover temporary "
		    "file(s) from %s", n, cfg->content.spool_dir);
}

void
milter_child_main(const char *cfgpath, int reread)
{
	struct cfg	*cfg;
	pthread_t	 tid;
	struct err	 e;
	uint64_t	 deadline;
	int		 rc;

	child_cfgpath = cfgpath;
	/* signals are taken by threads that wait for them (libmilter's and
	 * our reload thread), never by handlers */
	milter_block_signals();
	if (reread) {
		/* a restarted child picks up the newest good config */
		err_clear(&e);
		cfg = cfg_load(cfgpath, &e);
		if (cfg != NULL)
			cfg_install(cfg);
		else
			log_msg(LOG_ERR, "restart: keeping the previous "
			    "configuration: %s", e.msg);
	}
	cfg = cfg_acquire();
	metrics_set(M.cfg_generation, (int64_t)cfg->generation);
	if (pthread_create(&tid, NULL, reload_thread, NULL) != 0)
		log_msg(LOG_ERR, "cannot start the reload thread");
	err_clear(&e);
	if (metrics_http_start(cfg->metrics_listen, &e) != 0)
		log_msg(LOG_ERR, "metrics: %s", e.msg);
	open_store(cfg);
	spool_recover(cfg);
	log_msg(LOG_INFO, "milter process %ld serving on %s",
	    (long)getpid(), cfg->milter.socket);
	rc = smfi_main();
	/* stopped: let transactions in flight finish, up to a bound */
	deadline = now_ms() + (uint64_t)cfg->milter.shutdown_timeout * 1000;
	while (milter_active() > 0 && now_ms() < deadline)
		(void)usleep(50 * 1000);
	if (milter_active() > 0)
		log_msg(LOG_WARNING, "stopping with %d connection(s) still "
		    "open", milter_active());
	metrics_http_stop();
	cfg_release(cfg);
	log_msg(LOG_INFO, "milter process %ld stopped", (long)getpid());
	cfg_install(NULL);
	if (milter_active() == 0)
		cfg_store_close();
	leak_check();
	_exit(rc == MI_SUCCESS ? 0 : 1);
}
