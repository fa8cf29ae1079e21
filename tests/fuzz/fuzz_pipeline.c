/*
 * fuzz_pipeline.c - libFuzzer target for a whole SMTP transaction through
 * the check pipeline (pipeline.h), as the milter callbacks drive it, with
 * every SMTP-client string taken from the input.
 *
 * Input: byte 0 picks one of the configs below; the rest is split at NUL
 * bytes into fields.  Field 0 is the client name ("" = unknown), field 1
 * the client address ("" = none: a local submission); then pipeline_
 * connect() runs and each further field is a command, its first byte
 * saying which:
 *   h HELO name          m MAIL FROM (aborts an open message first)
 *   r RCPT TO            H header "name:value"      b body chunk
 *   e end of message     a abort (RSET)             u {auth_authen} for
 *   q queue id {i}       j macro j (myhostname)       the next MAIL
 *   d {daemon_addr}      M a whole message (testmsg_parse(): its
 *                          header fields, body, then e)
 * A message still open at the end is ended with e.  Every verdict other
 * than "continue" gets pipeline_reply_text(), which must be printable
 * ASCII with '%' doubled and end in "[id=...]".  Every decision line
 * logged (taken with log_set_decision_sink()) and the one of each
 * message refused at RCPT or finished must hold no control character,
 * no newline and exactly the two '"' around reason= (fewer only in a
 * line cut at the length limit).  The last config adds the content stage
 * (header/body check tables written at start, blocked attachments, GTUBE,
 * spam levels, a memory limit small enough that big inputs go through the
 * temporary file): header handling, MIME walk and edits on fuzzed mail.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "buf.h"
#include "cfg.h"
#include "ctx.h"
#include "log.h"
#include "metrics.h"
#include "pipeline.h"
#include "testmsg.h"

#include "fuzz.h"

#define OPS_MAX		4096
#define LINE_LIMIT	(8192 - 16)	/* log.c: LINE_MAX_LEN - 16 */
#define NCFG		(sizeof(configs) / sizeof(configs[0]) + 1)

static const char *const configs[] = {
	/* 0: the first checks, refusing at once */
	"milter = { socket = \"unix:/tmp/portero-fuzz.sock\"; };\n"
	"log = { level = \"err\"; };\n"
	"networks = { internal = [ \"10.0.0.0/8\", \"2001:db8:1::/48\" ]; };\n"
	"whitelist = {\n"
	"  clients = [ \"192.0.2.128/25\", \"2001:db8:2::/48\" ];\n"
	"  client_names = [ \"trusted.example.com\", \".friends.example\" ];\n"
	"  senders = [ \"@partner.example\", \"boss@\", \"x@y.example\" ];\n"
	"  recipients = [ \"postmaster@\", \"abuse@example.org\" ];\n"
	"};\n"
	"blacklist = {\n"
	"  clients = [ \"198.51.100.0/24\", \"2001:db8:bad::/48\" ];\n"
	"  client_names = [ \"spam.example\", \".dyn.example\" ];\n"
	"  senders = [ \"spammer@example.net\", \".bad.example\", \"x@\" ];\n"
	"  recipients = [ \"nobody@example.org\", \"@closed.example\" ];\n"
	"};\n"
	"helo = { ours_action = \"reject\"; our_names = [ \"mx.example.org\" ]; };\n"
	"sender = { invalid = 2.5; non_fqdn = 1.25; };\n"
	"thresholds = { greylist = 2.0; reject = 3.0; };\n",
	/* 1: everything in dry-run mode: only "would" verdicts */
	"dry_run = true;\n"
	"networks = { internal = [ \"127.0.0.0/8\", \"::1\" ]; };\n"
	"whitelist = { recipients = [ \"postmaster@\" ]; };\n"
	"blacklist = { clients = [ \"0.0.0.0/0\" ];\n"
	"  senders = [ \"example.net\" ]; recipients = [ \"example.org\" ]; };\n"
	"helo = { ours_action = \"reject\"; ours = 10; };\n"
	"sender = { };\n"
	"thresholds = { reject = 1.0; };\n",
	/* 2: module and threshold dry runs, score-only, unbuilt modules */
	"blacklist = { dry_run = true; clients = [ \"::/0\", \"0.0.0.0/1\" ];\n"
	"  client_names = [ \"example.com\" ]; senders = [ \"@example.com\" ]; };\n"
	"helo = { on_error = \"accept\"; invalid = 1000; non_fqdn = -1000;\n"
	"  bare_ip = 0.01; literal_mismatch = 999.99; };\n"
	"sender = { dry_run = true; invalid = -0.5; };\n"
	"thresholds = { dry_run = true; reject = -1.0; };\n"
	"spf = { enabled = false; };\n"
	"greylist = { enabled = false; };\n",
};

static struct cfg	*cfgs[NCFG];

/* The content config: tables in files of their own. */
static const char hdr_table[] =
    "/^Subject: .*(viagra|casino)/ REJECT no $1\n"
    "/^Received:/ IGNORE\n"
    "/^X-Hold:/ HOLD\n"
    "/^X-Drop:/ DISCARD\n"
    "/^X-Score: ([0-9])/ SCORE 2.5 scored $1\n"
    "/^X-Warn:/ WARN warned\n"
    "/^X-Replace: (.*)/ REPLACE X-Replaced: $1\n"
    "/^X-Prepend:/ PREPEND X-Prepended: yes\n"
    "if /^Content-Type:/\n"
    "/name=\"?[^\"]*\\.(bat|pif)/ REJECT bad name\n"
    "endif\n"
    "/^(a|aa)+$/ REJECT slow\n";
static const char body_table[] =
    "/^TV[nopqr]....[AB]..A.A....*AAAA...*AAAA/ REJECT exe\n"
    "!/./ DUNNO\n"
    "/(x+x+)+y/ REJECT slow\n"
    "/^(5[0-9][0-9]) / 550 5.7.1 code $1\n";

static char	 hc[64], bc[64];

static void
remove_tables(void)
{
	(void)unlink(hc);
	(void)unlink(bc);
}

static char *
content_config(void)
{
	static char	 text[1024];
	FILE		*f;

	(void)snprintf(hc, sizeof(hc), "/tmp/portero-fuzz-%ld-hc",
	    (long)getpid());
	(void)snprintf(bc, sizeof(bc), "/tmp/portero-fuzz-%ld-bc",
	    (long)getpid());
	if ((f = fopen(hc, "w")) == NULL || fputs(hdr_table, f) < 0 ||
	    fclose(f) != 0 || (f = fopen(bc, "w")) == NULL ||
	    fputs(body_table, f) < 0 || fclose(f) != 0)
		abort();
	(void)atexit(remove_tables);
	(void)snprintf(text, sizeof(text),
	    "log = { level = \"err\"; };\n"
	    "networks = { internal = [ \"10.0.0.0/8\" ]; };\n"
	    "content = { header_checks = \"pcre:%s\"; body_checks = "
	    "\"regexp:%s\"; memory_limit = \"4K\"; max_size = \"64K\"; "
	    "spool_dir = \"/tmp\"; mime_max_depth = 5; mime_max_parts = 50; "
	    "match_limit = 1000; };\n"
	    "spam = { tag_level = -5.0; tag2_level = 1.0; kill_level = 30.0; };\n",
	    hc, bc);
	return text;
}

static void
check_reply(struct conn_ctx *c, const struct verdict *v)
{
	const char	*r, *id;
	size_t		 i, n;

	if (v->action == ACT_CONTINUE)
		return;
	r = pipeline_reply_text(c, v);
	FUZZ_ASSERT(r != NULL);
	n = strlen(r);
	for (i = 0; i < n; i++) {
		FUZZ_ASSERT(r[i] >= 0x20 && r[i] < 0x7f);
		if (r[i] == '%') {
			FUZZ_ASSERT(r[i + 1] == '%');
			i++;
		}
	}
	if (strcmp(r, "Temporary local problem") == 0)
		return;		/* arena full */
	id = c->msg != NULL ? c->msg->id : c->id;
	FUZZ_ASSERT(n >= strlen(id) + 5 && r[n - 1] == ']');
	FUZZ_ASSERT(strncmp(r + n - strlen(id) - 5, "[id=", 4) == 0);
	FUZZ_ASSERT(strncmp(r + n - strlen(id) - 1, id, strlen(id)) == 0);
	if (v->code != NULL)
		FUZZ_ASSERT(strlen(v->code) == 3);
}

/* A decision line: one printable line, reason="..." quoted once. */
static void
check_line(const char *l, size_t n, int cut)
{
	size_t	 i, quotes = 0;

	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)l[i];

		FUZZ_ASSERT(ch >= 0x20 && ch < 0x7f);
		quotes += ch == '"';
	}
	if (cut)
		FUZZ_ASSERT(quotes <= 2);
	else {
		FUZZ_ASSERT(quotes == 2);
		FUZZ_ASSERT(strstr(l, " verdict=") != NULL);
	}
}

/* Ends with the last field of a decision line, " ms=N". */
static int
complete(const char *l, size_t n)
{
	size_t	 i = n;

	while (i > 0 && l[i - 1] >= '0' && l[i - 1] <= '9')
		i--;
	return i < n && i >= 4 && strncmp(l + i - 4, " ms=", 4) == 0;
}

/* log_set_decision_sink(): what would be logged.  log.c: "longer lines
 * are cut, marked ..." - a line without its last field must say so. */
static void
sink(const char *line)
{
	size_t	 n = strlen(line);
	int	 cut = !complete(line, n);

	if (cut)
		FUZZ_ASSERT(n >= 4 && strcmp(line + n - 4, " ...") == 0);
	check_line(line, n, cut);
}

/* The decision line of the whole message, as log_decision() makes it. */
static void
check_decision(const struct conn_ctx *c, const struct verdict *v)
{
	struct buf	 b;
	enum rc		 rc;

	buf_init(&b, LINE_LIMIT);
	rc = decision_format(&b, c, c->msg, NULL, v);
	FUZZ_ASSERT(rc == RC_OK || rc == RC_INVAL);
	check_line(buf_str(&b), b.len, rc != RC_OK);
	buf_free(&b);
}

static void
eom(struct conn_ctx *c)
{
	struct verdict	 v;

	pipeline_eom(c, &v);
	FUZZ_ASSERT(v.action != ACT_CONTINUE);
	check_reply(c, &v);
	if (c->msg != NULL)
		check_decision(c, &v);
	pipeline_msg_end(c);
	FUZZ_ASSERT(c->msg == NULL);
}

/* A message file as `portero-ctl test` feeds it, then end of message. */
static void
message(struct conn_ctx *c, const char *text)
{
	struct arena			*ar;
	struct testmsg			 tm;
	const struct testmsg_hdr	*h;
	struct verdict			 v;

	if ((ar = arena_new(16u << 20)) == NULL)
		abort();
	if (testmsg_parse(ar, text, strlen(text), &tm) == RC_OK) {
		for (h = tm.hdrs; h != NULL; h = h->next) {
			pipeline_header(c, h->name, h->value, &v);
			check_reply(c, &v);
		}
		pipeline_body(c, tm.body, tm.body_len, &v);
		check_reply(c, &v);
		eom(c);
	}
	arena_free(ar);
}

/* A copy of a macro value for the connection's lifetime, like milter.c. */
static const char *
macro(struct conn_ctx *c, const char *s)
{
	return *s != '\0' ? arena_strdup(c->arena, s) : NULL;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char	*path;
	struct err	 e;
	size_t		 i;

	fuzz_quiet(argc, argv);
	metrics_init();
	path = fuzz_tmpfile("fuzz-pipeline");
	for (i = 0; i < NCFG; i++) {
		const char *text = i < NCFG - 1 ? configs[i] :
		    content_config();

		fuzz_tmpfile_write(text, strlen(text));
		err_clear(&e);
		if ((cfgs[i] = cfg_load(path, &e)) == NULL) {
			fprintf(stderr, "fuzz_pipeline: config %zu: %s\n", i,
			    e.msg);
			abort();
		}
	}
	cfg_install(cfg_ref(cfgs[0]));
	log_set_decision_sink(sink);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct conn_ctx	*c;
	struct cfg	*cfg;
	struct verdict	 v;
	const char	*auth = NULL, *name, *addr, *f, *end;
	char		*buf, *h, *colon;
	size_t		 nops = 0;

	if (size < 1)
		return 0;
	cfg_install(cfg_ref(cfgs[data[0] % NCFG]));
	buf = fuzz_cstr(data + 1, size - 1);
	end = buf + (size - 1);

	c = conn_ctx_new(cfg_acquire());
	FUZZ_ASSERT(c != NULL && c->cfg == cfgs[data[0] % NCFG]);

	name = buf;
	addr = name + strlen(name) + (name + strlen(name) < end);
	f = addr + strlen(addr) + (addr + strlen(addr) < end);
	pipeline_connect(c, *name != '\0' ? name : NULL,
	    *addr != '\0' ? addr : NULL, &v);
	check_reply(c, &v);

	for (; f < end && nops < OPS_MAX; f += strlen(f) + 1, nops++) {
		const char *arg = f + 1;

		switch (*f) {
		case 'h':
			if (c->msg != NULL)
				pipeline_abort(c);	/* HELO resets */
			pipeline_helo(c, arg, &v);
			check_reply(c, &v);
			break;
		case 'm':
			if (c->msg != NULL)
				pipeline_abort(c);
			pipeline_mail(c, arg, auth, &v);
			check_reply(c, &v);
			auth = NULL;
			break;
		case 'r':
			pipeline_rcpt(c, arg, &v);
			check_reply(c, &v);
			if (v.action != ACT_CONTINUE &&
			    v.action != ACT_ACCEPT && c->msg != NULL)
				check_decision(c, &v);
			break;
		case 'H':
			if ((h = strdup(arg)) == NULL)
				abort();
			if ((colon = strchr(h, ':')) != NULL)
				*colon++ = '\0';
			pipeline_header(c, h, colon != NULL ? colon : "", &v);
			free(h);
			check_reply(c, &v);
			break;
		case 'b':
			pipeline_body(c, (const unsigned char *)arg,
			    strlen(arg), &v);
			check_reply(c, &v);
			break;
		case 'e':
			eom(c);
			break;
		case 'M':
			message(c, arg);
			break;
		case 'a':
			pipeline_abort(c);
			FUZZ_ASSERT(c->msg == NULL);
			break;
		case 'u':
			auth = macro(c, arg);
			break;
		case 'q':
			/* from Postfix, but msg_set_queue_id() escapes it */
			if (c->msg != NULL)
				msg_set_queue_id(c->msg, arg);
			break;
		case 'j':
			c->myhostname = macro(c, arg);
			break;
		case 'd':
			c->daemon_addr = macro(c, arg);
			break;
		default:
			break;
		}
	}
	if (c->msg != NULL)
		eom(c);
	cfg = c->cfg;
	conn_ctx_free(c);
	cfg_release(cfg);
	free(buf);
	return 0;
}
