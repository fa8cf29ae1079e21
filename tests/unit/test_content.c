/*
 * test_content.c - the content stage through the pipeline calls the
 * milter makes: message buffering (memory, temporary file, max_size),
 * header_checks / mime_header_checks / nested_header_checks / body_checks
 * tables (the seeds' examples as they are), blocked attachments (plain,
 * RFC 2047, RFC 2231, nested), GTUBE, the spam levels (tag, tag2, kill,
 * forged X-Spam-* removed), a catastrophic pattern, dry run, outbound.
 */
#include <sys/mman.h>
#include <sys/stat.h>

#include <dirent.h>
#include <fcntl.h>
#include <time.h>

#include "ctx.h"
#include "pipeline.h"
#include "spool.h"
#include "testmsg.h"
#include "unit.h"

static char	 last_line[8192];
static char	 spool_dir[64];

static void
sink(const char *line)
{
	(void)snprintf(last_line, sizeof(last_line), "%s", line);
}

/* The seeds' header_checks and body_checks, as admins have them. */
static const char seed_header_checks[] =
    "/^Subject: retire early.*$/ REJECT  \n"
    "/^Subject: Got Debt? [7xkeh].*/ REJECT  \n"
    "/^Subject: Mens Health Manual\\\\.\\\\.\\\\.\\\\.\\\\.\\\\.\\\\.\\\\."
    "\\\\.\\\\.*/ REJECT  \n"
    "/^From: \"Martina & Laura\" <blackgirls@libero.it>/ REJECT  \n"
    "/^From: \"Gray\" <@msn.com>.*$/ REJECT  \n"
    "/^Subject: Make Money/ REJECT No money here\n"
    "/^Received:/    IGNORE\n"
    "/^X-PHP-Originating-Script:/    IGNORE\n"
    "/^X-Originating-IP:/    IGNORE\n"
    "/^X-Mailer:/            IGNORE\n"
    "#/^Mime-Version:/        IGNORE\n"
    "/^Subject: hold me/ HOLD\n"
    "/^Subject: drop me/ DISCARD\n"
    "/^Subject: watch me/ WARN watched\n"
    "/^Subject: cheap/ SCORE 6.0 cheap subject\n"
    "/^Subject: pricey/ SCORE 3.5\n"
    "/name ?=\"?.*\\.(bat|com|dll|hta|pif|vbs)\"?/ REJECT bad name\n";

static const char seed_body_checks[] =
    "/^TV[nopqr]....[AB]..A.A....*AAAA...*AAAA/ REJECT  \n"
    "/^M35[GHIJK].`..`..*````/ REJECT  \n"
    "/^UEsDBAoAAAAAA/ REJECT  \n"
    "/VIAGRA/ REJECT no pills\n";

struct result {
	enum action	 action;
	const char	*code, *dsn;
	char		 reply[512];
	char		 edits[4096];	/* "-Name/idx +Name: v ~Name: v" */
	enum stage	 stage;		/* where the verdict came */
};

static char *
write_table(const char *text)
{
	return unit_tmpfile(text);
}

static int
spool_files(void)
{
	DIR		*d = opendir(spool_dir);
	struct dirent	*de;
	int		 n = 0;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		if (strncmp(de->d_name, "portero-", 8) == 0) {
			print_message("left in the spool: %s\n", de->d_name);
			n++;
		}
	closedir(d);
	return n;
}

/*
 * Runs one message from client through a config made of extra plus the
 * content tables.  auth: SASL user (outbound) or NULL.
 */
static void
run(const char *extra, const char *client, const char *auth,
    const char *msg, struct result *res)
{
	char		*hc = write_table(seed_header_checks);
	char		*bc = write_table(seed_body_checks);
	char		 text[8192];
	struct err	 e;
	struct cfg	*cfg;
	struct conn_ctx	*c;
	struct verdict	 v;
	struct arena	*ar = arena_new(64 * 1024 * 1024);
	struct testmsg	 tm;
	const struct testmsg_hdr *h;
	const struct hdr_edit *ed;
	const char	*cx, *other;
	size_t		 off = 0;

	memset(res, 0, sizeof(*res));
	cx = strstr(extra, "content_extra:") != NULL ?
	    strstr(extra, "content_extra:") + 14 : "";
	other = *cx != '\0' ? "" : extra;
	(void)snprintf(text, sizeof(text),
	    "networks = { internal = [ \"10.0.0.0/8\" ]; };\n"
	    "content = { header_checks = \"regexp:%s\"; %s%s%s "
	    "spool_dir = \"%s\"; %s };\n%s\n%s\n", hc,
	    strstr(cx, "body_checks") != NULL ? "" : "body_checks = \"regexp:",
	    strstr(cx, "body_checks") != NULL ? "" : bc,
	    strstr(cx, "body_checks") != NULL ? "" : "\";",
	    spool_dir, cx, strstr(other, "spam =") != NULL ? "" :
	    "spam = { tag_level = 1.0; tag2_level = 5.0; kill_level = 15.0; "
	    "};", other);
	cfg = unit_cfg(text, &e);
	if (cfg == NULL)
		fail_msg("config: %s", e.msg);
	c = conn_ctx_new(cfg);
	assert_non_null(c);
	last_line[0] = '\0';
	pipeline_connect(c, NULL, client, &v);
	pipeline_helo(c, "mx.example.test", &v);
	pipeline_mail(c, "<a@example.com>", auth, &v);
	msg_set_queue_id(c->msg, "4AbCdEf");
	pipeline_rcpt(c, "<b@corp.example>", &v);
	assert_int_equal(v.action, ACT_CONTINUE);
	assert_int_equal(testmsg_parse(ar, msg, strlen(msg), &tm), RC_OK);
	res->stage = STAGE_EOM;
	for (h = tm.hdrs; h != NULL && v.action == ACT_CONTINUE; h = h->next)
		pipeline_header(c, h->name, h->value, &v);
	if (v.action == ACT_CONTINUE)
		pipeline_eoh(c, &v);
	/* the body in chunks, as libmilter gives it */
	while (v.action == ACT_CONTINUE && off < tm.body_len) {
		size_t n = tm.body_len - off > 65535 ? 65535 :
		    tm.body_len - off;

		pipeline_body(c, tm.body + off, n, &v);
		off += n;
	}
	if (v.action == ACT_CONTINUE)
		pipeline_eom(c, &v);
	else
		res->stage = STAGE_BODY;
	res->action = v.action;
	res->code = v.code;
	res->dsn = v.dsn;
	(void)snprintf(res->reply, sizeof(res->reply), "%s",
	    pipeline_reply_text(c, &v));
	for (ed = c->msg->edits; ed != NULL; ed = ed->next) {
		size_t l = strlen(res->edits);

		if (ed->remove)
			(void)snprintf(res->edits + l, sizeof(res->edits) - l,
			    "-%s/%u ", ed->name, ed->idx);
		else
			(void)snprintf(res->edits + l, sizeof(res->edits) - l,
			    ed->change ? "~%s: %s " : "+%s: %s ", ed->name,
			    ed->value);
	}
	if (res->stage == STAGE_EOM)
		pipeline_msg_end(c);
	else
		pipeline_abort(c);
	conn_ctx_free(c);
	cfg_release(cfg);
	arena_free(ar);
	unit_rm(hc);
	unit_rm(bc);
	/* every path leaves the spool directory empty */
	assert_int_equal(spool_files(), 0);
}

#define HDRS	"From: <a@example.com>\nTo: <b@corp.example>\n" \
		"Message-ID: <1@example.com>\n"
/* A multipart/mixed message; its parts follow, boundary "b1". */
#define MIXED	HDRS "Subject: hi\nMIME-Version: 1.0\n" \
		"Content-Type: multipart/mixed; boundary=\"b1\"\n\n"

static void
expect(const struct result *r, enum action a, const char *code,
    const char *reply_part, const char *log_part)
{
	if (r->action != a)
		fail_msg("action %s, want %s (reply %s; log %s)",
		    action_name(r->action), action_name(a), r->reply,
		    last_line);
	if (code != NULL && (r->code == NULL || strcmp(r->code, code) != 0))
		fail_msg("code %s, want %s", r->code != NULL ? r->code : "-",
		    code);
	if (reply_part != NULL && strstr(r->reply, reply_part) == NULL)
		fail_msg("reply '%s' lacks '%s'", r->reply, reply_part);
	if (log_part != NULL && strstr(last_line, log_part) == NULL)
		fail_msg("log '%s' lacks '%s'", last_line, log_part);
}

static void
test_clean(void **state)
{
	struct result	 r;

	(void)state;
	run("", "192.0.2.10", NULL, HDRS "Subject: hello\n\nhi there\n", &r);
	expect(&r, ACT_ACCEPT, NULL, NULL, "verdict=accept");
	/* below tag_level: no X-Spam-* added */
	assert_null(strstr(r.edits, "X-Spam"));
}

static void
test_seed_header_reject(void **state)
{
	struct result	 r;

	(void)state;
	run("", "192.0.2.10", NULL, HDRS "Subject: Retire EARLY now\n\nx\n",
	    &r);
	expect(&r, ACT_REJECT, "550", NULL, "content=header_checks:1");
	assert_string_equal(r.dsn, "5.7.1");
	/* POSIX ERE, as Postfix reads it: "Debt?" is "Deb" and an
	 * optional "t", so a literal '?' does not match */
	run("", "192.0.2.10", NULL, HDRS "Subject: Got Debt k1\n\nx\n", &r);
	expect(&r, ACT_REJECT, "550", NULL, "content=header_checks:2");
	run("", "192.0.2.10", NULL, HDRS "Subject: Got Debt? k1\n\nx\n", &r);
	expect(&r, ACT_ACCEPT, NULL, NULL, NULL);
	run("", "192.0.2.10", NULL, HDRS "Subject: Got Debt z1\n\nx\n", &r);
	expect(&r, ACT_ACCEPT, NULL, NULL, NULL);
	run("", "192.0.2.10", NULL, "From: \"Gray\" <@msn.com> x\n"
	    "Subject: hi\n\nx\n", &r);
	expect(&r, ACT_REJECT, "550", NULL, "content=header_checks:5");
	run("", "192.0.2.10", NULL, HDRS "Subject: make money fast\n\nx\n",
	    &r);
	expect(&r, ACT_REJECT, "550", "No money here [id=", NULL);
}

static void
test_ignore_hold_discard_warn(void **state)
{
	struct result	 r;

	(void)state;
	run("", "192.0.2.10", NULL, "Received: from a\nReceived: from b\n"
	    HDRS "X-Mailer: Foo 1.0\nSubject: hi\n\nx\n", &r);
	expect(&r, ACT_ACCEPT, NULL, NULL, NULL);
	assert_non_null(strstr(r.edits, "-Received/1 "));
	assert_non_null(strstr(r.edits, "-Received/2 "));
	assert_non_null(strstr(r.edits, "-X-Mailer/1 "));
	run("", "192.0.2.10", NULL, HDRS "Subject: hold me\n\nx\n", &r);
	expect(&r, ACT_QUARANTINE, NULL, NULL, "verdict=quarantine");
	assert_non_null(strstr(last_line, "content=header_checks:12"));
	run("", "192.0.2.10", NULL, HDRS "Subject: drop me\n\nx\n", &r);
	expect(&r, ACT_DISCARD, NULL, NULL, "verdict=discard");
	run("", "192.0.2.10", NULL, HDRS "Subject: watch me\n\nx\n", &r);
	expect(&r, ACT_ACCEPT, NULL, NULL, "verdict=accept");
	/* a later refusal wins over an earlier HOLD */
	run("", "192.0.2.10", NULL, HDRS "Subject: hold me\n\nVIAGRA\n", &r);
	expect(&r, ACT_REJECT, "550", "no pills", NULL);
}

/* A base64 line of a Windows executable ("MZ" header), as in the seed. */
#define EXE_B64	"TVqQAAMAAAAEAAAA//8AALgAAAAAAAAAQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

static void
test_seed_body_checks(void **state)
{
	struct result	 r;

	(void)state;
	run("", "192.0.2.10", NULL, MIXED
	    "--b1\nContent-Type: text/plain\n\nsee attached\n"
	    "--b1\nContent-Type: application/octet-stream\n"
	    "Content-Transfer-Encoding: base64\n\n" EXE_B64 "\n--b1--\n", &r);
	expect(&r, ACT_REJECT, "550", NULL, "content=body_checks:1");
	assert_string_equal(r.dsn, "5.7.1");
	/* the text is only in a header: body_checks do not see it */
	run("", "192.0.2.10", NULL, HDRS "Subject: VIAGRA\n\nhello\n", &r);
	expect(&r, ACT_ACCEPT, NULL, NULL, NULL);
}

/*
 * The first rule to decide is the first in the message: body lines are
 * looked up together (one prefilter scan), but before the next part's
 * header rules and attachment names.
 */
static void
test_message_order(void **state)
{
	struct result	 r;

	(void)state;
	/* a body line, then a part header rule */
	run("", "192.0.2.10", NULL, MIXED
	    "--b1\nContent-Type: text/plain\n\nbuy VIAGRA\n"
	    "--b1\nContent-Type: application/octet-stream; name=\"a.pif\"\n\n"
	    "x\n--b1--\n", &r);
	expect(&r, ACT_REJECT, "550", "no pills", "content=body_checks:4");
	/* a body line, then a blocked attachment */
	run("", "192.0.2.10", NULL, MIXED
	    "--b1\nContent-Type: text/plain\n\nbuy VIAGRA\n"
	    "--b1\nContent-Type: application/octet-stream\n"
	    "Content-Disposition: attachment; filename=\"a.exe\"\n\n"
	    "x\n--b1--\n", &r);
	expect(&r, ACT_REJECT, "550", "no pills", "content=body_checks:4");
	/* the other way round: the part header, the attachment first */
	run("", "192.0.2.10", NULL, MIXED
	    "--b1\nContent-Type: application/octet-stream; name=\"a.pif\"\n\n"
	    "x\n--b1\nContent-Type: text/plain\n\nbuy VIAGRA\n--b1--\n", &r);
	expect(&r, ACT_REJECT, "550", "bad name", NULL);
	run("", "192.0.2.10", NULL, MIXED
	    "--b1\nContent-Type: application/octet-stream\n"
	    "Content-Disposition: attachment; filename=\"a.exe\"\n\n"
	    "x\n--b1\nContent-Type: text/plain\n\nbuy VIAGRA\n--b1--\n", &r);
	expect(&r, ACT_REJECT, "550", "not allowed: a.exe", NULL);
	/* the last line of the message, with no line end */
	run("", "192.0.2.10", NULL, HDRS "Subject: hi\n\nhello\nVIAGRA", &r);
	expect(&r, ACT_REJECT, "550", "no pills", "content=body_checks:4");
}

static void
test_mime_header_checks_default(void **state)
{
	struct result	 r;

	(void)state;
	/* mime_header_checks unset: header_checks apply to part headers,
	 * as in Postfix */
	run("", "192.0.2.10", NULL, MIXED
	    "--b1\nContent-Type: text/plain\n\nx\n"
	    "--b1\nContent-Type: application/octet-stream; name=\"a.pif\"\n\n"
	    "x\n--b1--\n", &r);
	expect(&r, ACT_REJECT, "550", "bad name", NULL);
	/* set to "": none */
	run("content_extra: mime_header_checks = \"\"; blocked_extensions = "
	    "[ ];", "192.0.2.10", NULL, HDRS "Subject: hi\n"
	    "MIME-Version: 1.0\n"
	    "Content-Type: multipart/mixed; boundary=\"b1\"\n\n"
	    "--b1\nContent-Type: text/plain\n\nx\n"
	    "--b1\nContent-Type: application/octet-stream; name=\"a.pif\"\n\n"
	    "x\n--b1--\n", &r);
	expect(&r, ACT_ACCEPT, NULL, NULL, NULL);
}

#define ATTACH(ctype, disp) \
	HDRS "Subject: files\nMIME-Version: 1.0\n" \
	"Content-Type: multipart/mixed; boundary=\"b1\"\n\n" \
	"--b1\nContent-Type: text/plain\n\nsee attached\n" \
	"--b1\nContent-Type: " ctype "\n" disp \
	"Content-Transfer-Encoding: base64\n\naGVsbG8=\n--b1--\n"

static void
test_blocked_attachments(void **state)
{
	struct result	 r;

	(void)state;
	run("", "192.0.2.10", NULL, ATTACH("application/octet-stream",
	    "Content-Disposition: attachment; filename=\"invoice.exe\"\n"), &r);
	expect(&r, ACT_REJECT, "550", "Attachment type not allowed: "
	    "invoice.exe", "content=attachment:invoice.exe");
	/* RFC 2047: "=?UTF-8?B?" of "factura.scr" */
	run("", "192.0.2.10", NULL, ATTACH("application/octet-stream; "
	    "name=\"=?UTF-8?B?ZmFjdHVyYS5zY3I=?=\"", ""), &r);
	expect(&r, ACT_REJECT, "550", "not allowed: factura.scr", NULL);
	/* RFC 2231 continuation ending in .js */
	run("", "192.0.2.10", NULL, ATTACH("application/octet-stream",
	    "Content-Disposition: attachment;\n filename*0=\"long-name-of-\";"
	    "\n filename*1=\"a-script.JS\"\n"), &r);
	expect(&r, ACT_REJECT, "550", "long-name-of-a-script.JS", NULL);
	/* double extension */
	run("", "192.0.2.10", NULL, ATTACH("application/pdf",
	    "Content-Disposition: attachment; filename=\"report.pdf.exe\"\n"),
	    &r);
	expect(&r, ACT_REJECT, "550", "report.pdf.exe", NULL);
	run("", "192.0.2.10", NULL, ATTACH("application/pdf",
	    "Content-Disposition: attachment; filename=\"report.pdf\"\n"), &r);
	expect(&r, ACT_ACCEPT, NULL, NULL, "verdict=accept");
	/* .exe inside an attached message */
	run("", "192.0.2.10", NULL, HDRS "Subject: fwd\nMIME-Version: 1.0\n"
	    "Content-Type: multipart/mixed; boundary=\"o\"\n\n"
	    "--o\nContent-Type: text/plain\n\nfwd\n"
	    "--o\nContent-Type: message/rfc822\n\n"
	    "From: x@example.org\nSubject: inner\nMIME-Version: 1.0\n"
	    "Content-Type: multipart/mixed; boundary=\"i\"\n\n"
	    "--i\nContent-Type: application/octet-stream; name=\"setup.exe\"\n"
	    "Content-Transfer-Encoding: base64\n\naGVsbG8=\n--i--\n"
	    "--o--\n", &r);
	expect(&r, ACT_REJECT, "550", "setup.exe", NULL);
}

/* The GTUBE line, built so this file does not carry it whole. */
static void
gtube(char *b, size_t len)
{
	(void)snprintf(b, len, "XJS*C4JDBQADN1.NSBN3*2IDNEN*%s*C.34X",
	    "GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL");
}

static void
test_gtube_and_levels(void **state)
{
	struct result	 r;
	char		 g[128], m[512];

	(void)state;
	gtube(g, sizeof(g));
	(void)snprintf(m, sizeof(m), HDRS "Subject: test\n\nhello\n%s\n", g);
	run("", "192.0.2.10", NULL, m, &r);
	expect(&r, ACT_REJECT, "550", "Message rejected as spam",
	    "content:gtube=1000.0");
	assert_non_null(strstr(last_line, "by=spam"));
	/* between tag2 and kill: tagged, delivered */
	run("", "192.0.2.10", NULL, HDRS "Subject: cheap stuff\n"
	    "X-Spam-Flag: NO\nX-Spam-Status: No, score=-100\n\nx\n", &r);
	expect(&r, ACT_ACCEPT, NULL, NULL, "verdict=accept");
	assert_non_null(strstr(r.edits, "~Subject: ***SPAM*** cheap stuff "));
	assert_non_null(strstr(r.edits, "+X-Spam-Flag: YES "));
	assert_non_null(strstr(r.edits, "+X-Spam-Status: Yes, score=6.00 "
	    "required=5.00 tests=content:header_checks:15"));
	assert_non_null(strstr(r.edits, "+X-Spam-Level: ****** "));
	/* the sender's own X-Spam-* fields are removed */
	assert_non_null(strstr(r.edits, "-X-Spam-Flag/1 "));
	assert_non_null(strstr(r.edits, "-X-Spam-Status/1 "));
	/* between tag and tag2: headers, no subject tag */
	run("", "192.0.2.10", NULL, HDRS "Subject: pricey\n\nx\n", &r);
	expect(&r, ACT_ACCEPT, NULL, NULL, NULL);
	assert_non_null(strstr(r.edits, "+X-Spam-Status: No, score=3.50"));
	assert_null(strstr(r.edits, "~Subject"));
	assert_null(strstr(r.edits, "X-Spam-Flag: YES"));
	/* kill_action quarantine */
	run("spam = { kill_level = 5.0; kill_action = \"quarantine\"; };",
	    "192.0.2.10", NULL, HDRS "Subject: cheap\n\nx\n", &r);
	expect(&r, ACT_QUARANTINE, NULL, NULL, "verdict=quarantine");
	/* outbound mail: no spam levels, but header_checks still apply */
	run("", "10.1.2.3", NULL, m, &r);
	expect(&r, ACT_ACCEPT, NULL, NULL, "dir=out");
	run("", "10.1.2.3", NULL, "Received: from pc\n" HDRS "Subject: x\n\n"
	    "y\n", &r);
	assert_non_null(strstr(r.edits, "-Received/1 "));
}

static void
test_size_and_spool(void **state)
{
	struct result	 r;
	char		*m;
	size_t		 n = 200 * 1024, i, off;
	uint64_t	 before = metrics_value(M.spooled, NULL);

	(void)state;
	m = malloc(n + 256);
	assert_non_null(m);
	/* body_checks see the first body_checks_size_limit bytes */
	off = (size_t)snprintf(m, 256, HDRS "Subject: big\n\nVIAGRA\n");
	for (i = 0; off + 80 < n; i++)
		off += (size_t)snprintf(m + off, n + 256 - off, "%077zu\n", i);
	/* kept in a file beyond memory_limit, still read whole */
	run("content_extra: memory_limit = \"16K\";", "192.0.2.10", NULL, m,
	    &r);
	expect(&r, ACT_REJECT, "550", "no pills", NULL);
	assert_true(metrics_value(M.spooled, NULL) == before + 1);
	/* beyond body_checks_size_limit the body is not looked at */
	memcpy(m + strlen(HDRS "Subject: big\n\n"), "v1agra", 6);
	memcpy(m + n - 100, "VIAGRA", 6);
	run("content_extra: memory_limit = \"16K\";", "192.0.2.10", NULL, m,
	    &r);
	expect(&r, ACT_ACCEPT, NULL, NULL, NULL);
	/* over max_size: 552 5.3.4 at the end (no reply to body chunks) */
	run("content_extra: max_size = \"100K\";", "192.0.2.10", NULL, m, &r);
	expect(&r, ACT_REJECT, "552", "Message size exceeds fixed limit",
	    "dsn=5.3.4");
	assert_int_equal(r.stage, STAGE_EOM);
	free(m);
}

static void
test_catastrophic_pattern(void **state)
{
	struct result	 r;
	/* the lookbehind keeps the prefilter from ruling the line out (it
	 * widens lookarounds), so PCRE2 meets the exponential case */
	char		*t = unit_tmpfile("/^(a+)+(?<=b)$/ REJECT slow\n");
	char		 extra[512], m[4096];
	struct timespec	 t0, t1;
	double		 secs;

	(void)state;
	(void)snprintf(extra, sizeof(extra), "content_extra: body_checks = "
	    "\"pcre:%s\";", t);
	(void)snprintf(m, sizeof(m), HDRS "Subject: x\n\n%s\n",
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
	clock_gettime(CLOCK_MONOTONIC, &t0);
	run(extra, "192.0.2.10", NULL, m, &r);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (double)(t1.tv_sec - t0.tv_sec) +
	    (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	/* an error (on_error tempfail), never a silent "no match" */
	expect(&r, ACT_TEMPFAIL, "451", NULL, "by=content");
	assert_true(secs < 2.0);
	(void)snprintf(extra, sizeof(extra), "content_extra: body_checks = "
	    "\"pcre:%s\"; on_error = \"accept\";", t);
	run(extra, "192.0.2.10", NULL, m, &r);
	expect(&r, ACT_ACCEPT, NULL, NULL, NULL);
	unit_rm(t);
}

static void
test_dry_run(void **state)
{
	struct result	 r;

	(void)state;
	run("content_extra: dry_run = true;", "192.0.2.10", NULL, "Received: "
	    "from a\n" HDRS "Subject: retire early\n\nx\n", &r);
	expect(&r, ACT_ACCEPT, NULL, NULL, "would=reject");
	assert_null(strstr(r.edits, "-Received"));
}

static void
test_mime_limits(void **state)
{
	struct result	 r;
	char		*m = malloc(64 * 1024);
	size_t		 off, i;

	(void)state;
	assert_non_null(m);
	off = (size_t)snprintf(m, 1024, HDRS "Subject: deep\n"
	    "MIME-Version: 1.0\nContent-Type: multipart/mixed; "
	    "boundary=\"b0\"\n\n");
	for (i = 1; i < 40; i++)
		off += (size_t)snprintf(m + off, 64 * 1024 - off, "--b%zu\n"
		    "Content-Type: multipart/mixed; boundary=\"b%zu\"\n\n",
		    i - 1, i);
	(void)snprintf(m + off, 64 * 1024 - off, "--b39\nContent-Type: "
	    "text/plain\n\nx\n");
	run("", "192.0.2.10", NULL, m, &r);
	expect(&r, ACT_REJECT, "554", "nested too deeply", "mime:too-deep");
	run("content_extra: mime_limit_action = \"accept\";", "192.0.2.10",
	    NULL, m, &r);
	expect(&r, ACT_ACCEPT, NULL, NULL, NULL);
	free(m);
}

static void
test_spool_unit(void **state)
{
	struct spool		*s;
	struct err		 e;
	const unsigned char	*d;
	size_t			 len, i;
	char			 b[100], rd[1000];
	int			 fd, leftover;
	char			 path[128];
	struct stat		 st;
	ino_t			 ino;
	char			*big;

	(void)state;
	s = spool_new(250, spool_dir);
	assert_non_null(s);
	for (i = 0; i < 10; i++) {
		memset(b, 'a' + (int)i, sizeof(b));
		assert_int_equal(spool_append(s, b, sizeof(b), &e), RC_OK);
		assert_int_equal(spool_in_file(s), i >= 2);
	}
	assert_int_equal(spool_size(s), 1000);
	d = spool_data(s, &len, &e);
	assert_non_null(d);
	assert_int_equal(len, 1000);
	assert_int_equal(d[0], 'a');
	assert_int_equal(d[999], 'j');
	fd = spool_fd(s, &e);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, rd, sizeof(rd), 0), 1000);
	assert_memory_equal(rd, d, 1000);
	/* the file was unlinked at once */
	assert_int_equal(spool_files(), 0);
	spool_free(s);
	/* in memory: the fd holds exactly the message, read-only: the
	 * scanners get it as it is and can neither change it, nor shrink
	 * it under a mapping, nor map it writable */
	s = spool_new(1000, spool_dir);
	memset(b, 'z', sizeof(b));
	for (i = 0; i < 9; i++)
		assert_int_equal(spool_append(s, b, sizeof(b), &e), RC_OK);
	fd = spool_fd(s, &e);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(st.st_size, 900);
	assert_int_equal(fcntl(fd, F_GETFL) & O_ACCMODE, O_RDONLY);
	assert_int_equal(pwrite(fd, "x", 1, 0), -1);
	assert_int_equal(ftruncate(fd, 1), -1);
	assert_true(mmap(NULL, 900, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
	    0) == MAP_FAILED);
	assert_int_equal(fstat(fd, &st), 0);
	ino = st.st_ino;
	spool_free(s);
	/* the next message reuses that memory: only its own bytes */
	s = spool_new(1000, spool_dir);
	assert_int_equal(spool_append(s, "hel", 3, &e), RC_OK);
	assert_int_equal(spool_append(s, "lo", 2, &e), RC_OK);
	d = spool_data(s, &len, &e);
	assert_int_equal(len, 5);
	assert_memory_equal(d, "hello", 5);
	fd = spool_fd(s, &e);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, rd, sizeof(rd), 0), 5);
	assert_memory_equal(rd, "hello", 5);
	assert_int_equal(spool_in_file(s), 0);
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(st.st_ino, ino);
	/* a scan that did not end: that memory is not reused */
	spool_fd_abandon(s);
	spool_free(s);
	s = spool_new(1000, spool_dir);
	assert_int_equal(spool_append(s, "x", 1, &e), RC_OK);
	fd = spool_fd(s, &e);
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_not_equal(st.st_ino, ino);
	assert_int_equal(st.st_size, 1);
	/* past the memory limit: the file has what the memory had */
	memset(b, 'y', sizeof(b));
	for (i = 0; i < 10; i++)
		assert_int_equal(spool_append(s, b, sizeof(b), &e), RC_OK);
	assert_int_equal(spool_in_file(s), 1);
	fd = spool_fd(s, &e);
	assert_int_equal(pread(fd, rd, 2, 0), 2);
	assert_memory_equal(rd, "xy", 2);
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(st.st_size, 1001);
	assert_int_equal(spool_files(), 0);
	spool_free(s);
	/* a reload that changes memory_limit: arenas of the old size are
	 * freed, not kept */
	s = spool_new(1000, spool_dir);
	assert_int_equal(spool_append(s, "x", 1, &e), RC_OK);
	assert_int_equal(fstat(spool_fd(s, &e), &st), 0);
	ino = st.st_ino;
	spool_free(s);
	s = spool_new(100000, spool_dir);
	assert_int_equal(spool_append(s, "y", 1, &e), RC_OK);
	assert_int_equal(fstat(spool_fd(s, &e), &st), 0);
	assert_int_not_equal(st.st_ino, ino);
	spool_free(s);
	s = spool_new(1000, spool_dir);
	assert_int_equal(spool_append(s, "z", 1, &e), RC_OK);
	assert_int_equal(fstat(spool_fd(s, &e), &st), 0);
	assert_int_not_equal(st.st_ino, ino);
	spool_free(s);
	/* a large message's arena gives pages back; reused, it holds the
	 * next message whole */
	big = malloc(3 << 20);
	assert_non_null(big);
	memset(big, 'a', 3 << 20);
	s = spool_new(4 << 20, spool_dir);
	assert_int_equal(spool_append(s, big, 3 << 20, &e), RC_OK);
	assert_int_equal(spool_in_file(s), 0);
	spool_free(s);
	memset(big, 'b', 2 << 20);
	s = spool_new(4 << 20, spool_dir);
	assert_int_equal(spool_append(s, big, 1 << 20, &e), RC_OK);
	assert_int_equal(spool_append(s, big + (1 << 20), 1 << 20, &e), RC_OK);
	d = spool_data(s, &len, &e);
	assert_int_equal(len, 2 << 20);
	assert_memory_equal(d, big, 2 << 20);
	fd = spool_fd(s, &e);
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(st.st_size, 2 << 20);
	assert_int_equal(pread(fd, rd, sizeof(rd), (2 << 20) - 1000), 1000);
	assert_memory_equal(rd, big, 1000);
	spool_free(s);
	free(big);
	/* without an arena (a limit too large for one): a sealed copy */
	s = spool_new((size_t)1 << 40, spool_dir);
	assert_int_equal(spool_append(s, "hello", 5, &e), RC_OK);
	fd = spool_fd(s, &e);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, rd, sizeof(rd), 0), 5);
	assert_true((fcntl(fd, F_GET_SEALS) & (F_SEAL_WRITE | F_SEAL_SHRINK)) ==
	    (F_SEAL_WRITE | F_SEAL_SHRINK));
	assert_int_equal(pwrite(fd, "x", 1, 0), -1);
	assert_int_equal(ftruncate(fd, 1), -1);
	spool_free(s);
	/* what a crash would leave is removed at start */
	(void)snprintf(path, sizeof(path), "%s/portero-AbC123", spool_dir);
	leftover = open(path, O_CREAT | O_WRONLY, 0600);
	assert_true(leftover >= 0);
	close(leftover);
	(void)snprintf(path, sizeof(path), "%s/keep-me", spool_dir);
	leftover = open(path, O_CREAT | O_WRONLY, 0600);
	close(leftover);
	assert_int_equal(spool_cleanup_dir(spool_dir), 1);
	assert_int_equal(spool_files(), 0);
	assert_int_equal(unlink(path), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_spool_unit),
		cmocka_unit_test(test_clean),
		cmocka_unit_test(test_seed_header_reject),
		cmocka_unit_test(test_ignore_hold_discard_warn),
		cmocka_unit_test(test_seed_body_checks),
		cmocka_unit_test(test_message_order),
		cmocka_unit_test(test_mime_header_checks_default),
		cmocka_unit_test(test_blocked_attachments),
		cmocka_unit_test(test_gtube_and_levels),
		cmocka_unit_test(test_size_and_spool),
		cmocka_unit_test(test_catastrophic_pattern),
		cmocka_unit_test(test_dry_run),
		cmocka_unit_test(test_mime_limits),
	};
	int	 rc;

	(void)snprintf(spool_dir, sizeof(spool_dir), "/tmp/portero-spool-%ld",
	    (long)getpid());
	(void)mkdir(spool_dir, 0700);
	metrics_init();
	log_set_decision_sink(sink);
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	(void)rmdir(spool_dir);
	return rc;
}
