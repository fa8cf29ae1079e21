/*
 * log.c - syslog or stderr logging and the decision line (SPEC section 7).
 *
 * Each log call formats one line and emits it with one syslog() or one
 * write(2), so lines from concurrent threads never interleave.  The level
 * is an atomic: thread-safe.
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cfg.h"
#include "ctx.h"
#include "log.h"
#include "util.h"

#define LINE_MAX_LEN	8192	/* longer lines are cut, marked "..." */
#define FIELD_MAX	256	/* bytes of one untrusted value */
#define RCPTS_MAX	2048	/* bytes of the recipient list */

static atomic_int	 cur_level = LOG_INFO;
static atomic_int	 level_forced;	/* -d given: reloads keep it */
static int		 journal;	/* stderr is the systemd journal */
static int		 use_stderr = 1;
static char		 ident[32] = "portero";
static void		(*decision_sink)(const char *);

static const struct {
	const char	*name;
	int		 value;
} levels[] = {
	{ "debug", LOG_DEBUG }, { "info", LOG_INFO },
	{ "notice", LOG_NOTICE }, { "warning", LOG_WARNING },
	{ "err", LOG_ERR },
}, facilities[] = {
	{ "mail", LOG_MAIL }, { "daemon", LOG_DAEMON }, { "user", LOG_USER },
	{ "local0", LOG_LOCAL0 }, { "local1", LOG_LOCAL1 },
	{ "local2", LOG_LOCAL2 }, { "local3", LOG_LOCAL3 },
	{ "local4", LOG_LOCAL4 }, { "local5", LOG_LOCAL5 },
	{ "local6", LOG_LOCAL6 }, { "local7", LOG_LOCAL7 },
};

int
log_level_parse(const char *s)
{
	size_t	 i;

	for (i = 0; i < NELEM(levels); i++)
		if (strcmp(levels[i].name, s) == 0)
			return levels[i].value;
	return -1;
}

int
log_facility_parse(const char *s)
{
	size_t	 i;

	for (i = 0; i < NELEM(facilities); i++)
		if (strcmp(facilities[i].name, s) == 0)
			return facilities[i].value;
	return LOG_MAIL;
}

/* systemd sets JOURNAL_STREAM to "dev:inode" of the stream it gave us. */
static int
stderr_is_journal(void)
{
	const char		*js = getenv("JOURNAL_STREAM");
	struct stat		 st;
	unsigned long long	 dev, ino;

	if (js == NULL || sscanf(js, "%llu:%llu", &dev, &ino) != 2 ||
	    fstat(STDERR_FILENO, &st) != 0)
		return 0;
	return (unsigned long long)st.st_dev == dev &&
	    (unsigned long long)st.st_ino == ino;
}

void
log_open(const char *id, int facility, int to_stderr)
{
	(void)str_copy(ident, id, sizeof(ident));
	use_stderr = to_stderr;
	journal = to_stderr && stderr_is_journal();
	if (!to_stderr)
		openlog(ident, LOG_PID | LOG_NDELAY, facility);
}

void
log_set_decision_sink(void (*fn)(const char *))
{
	decision_sink = fn;
}

void
log_set_level(int level)
{
	if (level >= 0 && !atomic_load(&level_forced))
		atomic_store(&cur_level, level);
}

void
log_force_level(int level)
{
	atomic_store(&cur_level, level);
	atomic_store(&level_forced, 1);
}

int
log_get_level(void)
{
	return atomic_load(&cur_level);
}

static void
emit(int level, const char *line)
{
	char	 out[LINE_MAX_LEN + 64];
	int	 n;

	if (!use_stderr) {
		syslog(level, "%s", line);
		return;
	}
	if (journal)	/* the journal adds ident and PID itself */
		n = snprintf(out, sizeof(out), "<%d>%s\n", level, line);
	else
		n = snprintf(out, sizeof(out), "%s[%ld]: %s\n", ident,
		    (long)getpid(), line);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(out)) {
		n = (int)sizeof(out) - 1;
		out[n - 1] = '\n';
	}
	(void)!write(STDERR_FILENO, out, (size_t)n);
}

static void
vlog(int level, const char *prefix, const char *fmt, va_list ap)
{
	char	 line[LINE_MAX_LEN];
	size_t	 off = 0;
	int	 n;

	if (level > atomic_load(&cur_level))
		return;
	if (prefix != NULL) {
		n = snprintf(line, sizeof(line), "%s", prefix);
		off = n > 0 && (size_t)n < sizeof(line) ? (size_t)n : 0;
	}
	n = vsnprintf(line + off, sizeof(line) - off, fmt, ap);
	if (n > 0 && (size_t)n >= sizeof(line) - off)
		memcpy(line + sizeof(line) - 4, "...", 4);
	emit(level, line);
}

void
log_msg(int level, const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	vlog(level, NULL, fmt, ap);
	va_end(ap);
}

void
log_conn(const struct conn_ctx *c, int level, const char *fmt, ...)
{
	char	 prefix[128];
	va_list	 ap;

	if (c->msg != NULL)
		(void)snprintf(prefix, sizeof(prefix), "%s: conn=%s id=%s ",
		    c->msg->queue_id, c->id, c->msg->id);
	else
		(void)snprintf(prefix, sizeof(prefix), "NOQUEUE: conn=%s ",
		    c->id);
	va_start(ap, fmt);
	vlog(level, prefix, fmt, ap);
	va_end(ap);
}

enum rc
log_escape(struct buf *b, const char *s, size_t max)
{
	static const char	 hex[] = "0123456789abcdef";
	size_t			 i;
	enum rc			 rc = RC_OK;

	if (s == NULL)
		return RC_OK;
	for (i = 0; s[i] != '\0' && rc == RC_OK; i++) {
		unsigned char c = (unsigned char)s[i];

		if (i >= max)
			return buf_puts(b, "...");
		if (c < 0x21 || c > 0x7e || c == '"' || c == '\\' ||
		    c == '<' || c == '>') {
			char	 esc[4] = { '\\', 'x', hex[c >> 4],
			    hex[c & 15] };

			rc = buf_append(b, esc, 4);
		} else
			rc = buf_putc(b, (char)c);
	}
	return rc;
}

static enum rc
field(struct buf *b, const char *key, const char *open, const char *val,
    const char *close)
{
	enum rc	 rc;

	rc = buf_printf(b, " %s=%s", key, open);
	if (rc == RC_OK)
		rc = log_escape(b, val, FIELD_MAX);
	if (rc == RC_OK)
		rc = buf_puts(b, close);
	return rc;
}

static enum rc
reasons(struct buf *b, const struct reason *r, int *first)
{
	char	 sc[16];
	enum rc	 rc = RC_OK;

	for (; r != NULL && rc == RC_OK; r = r->next) {
		score_fmt(r->points, sc, sizeof(sc));
		rc = buf_printf(b, "%s%s:", *first ? "" : " ", r->check);
		if (rc == RC_OK)
			rc = log_escape(b, r->detail, 64);
		if (rc == RC_OK)
			rc = buf_printf(b, "=%s%s", sc, r->dry ? "(dry)" : "");
		*first = 0;
	}
	return rc;
}

static const struct verdict *
would_of(const struct conn_ctx *c, const struct msg_ctx *m)
{
	if (m != NULL && m->would.action != ACT_CONTINUE)
		return &m->would;
	if (c->would.action != ACT_CONTINUE)
		return &c->would;
	return NULL;
}

/*
 * Greylist (which 0) or callout (1) outcome for the line: the refused
 * recipient's, or on a message line the first accepted recipient's that
 * has one.
 */
static const char *
rcpt_field(const struct msg_ctx *m, const struct rcpt *only, int which)
{
	const struct rcpt	*r;

	if (only != NULL)
		return which ? only->verify : only->grey;
	for (r = m != NULL ? m->rcpts : NULL; r != NULL; r = r->next)
		if ((which ? r->verify : r->grey) != NULL)
			return which ? r->verify : r->grey;
	return NULL;
}

enum rc
decision_format(struct buf *b, const struct conn_ctx *c,
    const struct msg_ctx *m, const struct rcpt *only,
    const struct verdict *v)
{
	const struct rcpt	*r;
	const struct verdict	*w;
	const char		*grey, *verify;
	char			 sc[16];
	int			 first = 1;
	enum rc			 rc;

	rc = buf_printf(b, "%s: conn=%s", m != NULL ? m->queue_id :
	    "NOQUEUE", c->id);
	if (rc == RC_OK && m != NULL)
		rc = buf_printf(b, " id=%s", m->id);
	if (rc == RC_OK)
		rc = field(b, "client", "", c->client_name != NULL ?
		    c->client_name : "unknown", "[");
	if (rc == RC_OK)
		rc = log_escape(b, c->client_addr, 64);
	if (rc == RC_OK)
		rc = buf_putc(b, ']');
	if (rc == RC_OK && c->country != NULL)
		rc = field(b, "country", "", c->country, "");
	if (rc == RC_OK && c->helo != NULL)
		rc = field(b, "helo", "<", c->helo, ">");
	if (rc == RC_OK && m != NULL)
		rc = field(b, "from", "<", m->from_raw != NULL ?
		    (m->from_null ? "" : m->from_bad ? m->from_raw :
		    m->from.addr) : "", ">");
	if (rc == RC_OK && only != NULL)
		rc = field(b, "rcpt", "<", only->addr.addr != NULL ?
		    only->addr.addr : only->raw, ">");
	else if (rc == RC_OK && m != NULL && m->rcpts != NULL) {
		size_t start = b->len, shown = 0;

		rc = buf_puts(b, " rcpt=");
		for (r = m->rcpts; r != NULL && rc == RC_OK; r = r->next) {
			if (b->len - start > RCPTS_MAX) {
				/* keep the line readable and its later
				 * fields intact */
				rc = buf_printf(b, ",...+%zu", m->nrcpt - shown);
				break;
			}
			shown++;
			rc = buf_puts(b, r == m->rcpts ? "<" : ",<");
			if (rc == RC_OK)
				rc = log_escape(b, r->addr.addr != NULL ?
				    r->addr.addr : r->raw, FIELD_MAX);
			if (rc == RC_OK)
				rc = buf_putc(b, '>');
		}
	}
	w = would_of(c, m);
	if (rc == RC_OK)
		rc = buf_printf(b, " verdict=%s", action_name(v->action));
	if (rc == RC_OK && w != NULL && v->action == ACT_ACCEPT)
		rc = buf_printf(b, " would=%s", action_name(w->action));
	if (rc == RC_OK && v->code != NULL && v->action != ACT_ACCEPT)
		rc = buf_printf(b, " code=%s dsn=%s", v->code,
		    v->dsn != NULL ? v->dsn : "");
	if (rc == RC_OK && v->decided_by != NULL && v->action != ACT_ACCEPT)
		rc = buf_printf(b, " by=%s", v->decided_by);
	else if (rc == RC_OK && w != NULL && w->decided_by != NULL)
		rc = buf_printf(b, " by=%s", w->decided_by);
	if (rc == RC_OK)
		rc = buf_puts(b, " reason=\"");
	if (rc == RC_OK)
		rc = reasons(b, c->reasons, &first);
	if (rc == RC_OK && m != NULL)
		rc = reasons(b, m->reasons, &first);
	score_fmt(m != NULL ? msg_score(m) : conn_score(c), sc, sizeof(sc));
	if (rc == RC_OK)
		rc = buf_printf(b, "\" score=%s", sc);
	if (rc == RC_OK && m != NULL && m->spf != NULL)
		rc = buf_printf(b, " spf=%s", m->spf);
	if (rc == RC_OK && (grey = rcpt_field(m, only, 0)) != NULL)
		rc = buf_printf(b, " greylist=%s", grey);
	if (rc == RC_OK && (verify = rcpt_field(m, only, 1)) != NULL)
		rc = buf_printf(b, " callout=%s", verify);
	if (rc == RC_OK && m != NULL && m->av != NULL && only == NULL)
		rc = field(b, "av", "", m->av, "");
	if (rc == RC_OK && m != NULL && m->content != NULL && only == NULL)
		rc = field(b, "content", "", m->content, "");
	if (rc == RC_OK && m != NULL && m->dkim != NULL && only == NULL)
		rc = buf_printf(b, " dkim=%s", m->dkim);
	if (rc == RC_OK)
		rc = buf_printf(b, " dir=%s", c->outbound ? "out" : "in");
	if (rc == RC_OK && m != NULL)
		rc = buf_printf(b, " size=%llu", (unsigned long long)m->size);
	if (rc == RC_OK)
		rc = buf_printf(b, " ms=%llu", (unsigned long long)(now_ms() -
		    (m != NULL ? m->start_ms : c->start_ms)));
	return rc;
}

void
log_decision(const struct conn_ctx *c, const struct msg_ctx *m,
    const struct rcpt *only, const struct verdict *v)
{
	struct buf	 b;

	buf_init(&b, LINE_MAX_LEN - 16);
	if (decision_format(&b, c, m, only, v) != RC_OK)
		buf_mark_cut(&b, " ...");	/* cut at the line limit */
	if (b.data != NULL && decision_sink != NULL)
		decision_sink(b.data);
	else if (b.data != NULL)
		emit(LOG_INFO, b.data);
	else
		emit(LOG_ERR, "out of memory formatting a decision line");
	buf_free(&b);
}
