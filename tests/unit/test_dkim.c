/*
 * test_dkim.c - DKIM signing and the outbound header cleanup through the
 * pipeline calls the milter makes.  Keys are generated for each run;
 * every signature is verified with libopendkim's verifier, which reads
 * the public keys from a file instead of DNS (DKIM_QUERY_FILE).  Covers:
 * key choice by From domain (exact, subdomains, both algorithms, the
 * OpenDKIM tables), oversigned From, no l=, removed fields left out of
 * the signature, inbound mail untouched, no key, an unusable key (error
 * and unsigned; a config error in strict mode), sign_for.
 */
#include <sys/stat.h>

#include <opendkim/dkim.h>

#include "ctx.h"
#include "dkimkey.h"
#include "pipeline.h"
#include "unit.h"
#include "util.h"

static char	 last_line[8192];
static char	 dir[64];
static char	 keyfile[256];	/* DKIM_QUERY_FILE: "name record" lines */

static void
sink(const char *line)
{
	(void)snprintf(last_line, sizeof(last_line), "%s", line);
}

/* Writes a new key to dir/NAME.pem (mode) and its record to keyfile. */
static void
make_key(const char *name, enum dkim_alg alg, const char *dnsname,
    mode_t mode)
{
	struct dkim_keydata	 kd;
	struct err		 e;
	char			 path[256], *p, *rec;
	FILE			*fp;

	err_clear(&e);
	assert_int_equal(dkim_keygen(alg, 2048, &kd, &e), RC_OK);
	(void)snprintf(path, sizeof(path), "%s/%s.pem", dir, name);
	fp = fopen(path, "w");
	assert_non_null(fp);
	assert_int_equal(fwrite(kd.pem, 1, kd.len, fp), kd.len);
	(void)fclose(fp);
	assert_int_equal(chmod(path, mode), 0);
	p = dkim_key_public_b64(&kd, &e);
	assert_non_null(p);
	rec = dkim_txt_record(alg, p);
	assert_non_null(rec);
	fp = fopen(keyfile, "a");
	assert_non_null(fp);
	(void)fprintf(fp, "%s %s\n", dnsname, rec);
	(void)fclose(fp);
	free(rec);
	free(p);
	dkim_key_free(&kd);
}

static int
group_setup(void **state)
{
	(void)state;
	(void)snprintf(dir, sizeof(dir), "/tmp/portero-dkim-XXXXXX");
	assert_non_null(mkdtemp(dir));
	(void)snprintf(keyfile, sizeof(keyfile), "%s/records", dir);
	make_key("a", DKIM_ALG_RSA, "s1._domainkey.a.example", 0600);
	make_key("b", DKIM_ALG_ED25519, "e1._domainkey.b.example", 0600);
	make_key("c-rsa", DKIM_ALG_RSA, "r._domainkey.c.example", 0600);
	make_key("c-ed", DKIM_ALG_ED25519, "e._domainkey.c.example", 0600);
	make_key("p", DKIM_ALG_RSA, "s1._domainkey.parent.example", 0600);
	make_key("t", DKIM_ALG_ED25519, "tbl._domainkey.t.example", 0600);
	make_key("loose", DKIM_ALG_RSA, "s1._domainkey.loose.example", 0640);
	log_set_decision_sink(sink);
	return 0;
}

static int
group_teardown(void **state)
{
	char	 cmd[128];

	(void)state;
	(void)snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static struct cfg *
dk_cfg(const char *extra, struct err *e)
{
	char	 text[4096], kt[256], st[256];
	FILE	*fp;

	(void)snprintf(kt, sizeof(kt), "%s/KeyTable", dir);
	(void)snprintf(st, sizeof(st), "%s/SigningTable", dir);
	fp = fopen(kt, "w");
	assert_non_null(fp);
	(void)fprintf(fp, "# OpenDKIM style\ntkey t.example:tbl:%s/t.pem\n",
	    dir);
	(void)fclose(fp);
	fp = fopen(st, "w");
	assert_non_null(fp);
	(void)fprintf(fp, "user@t.example tkey:user@t.example\n"
	    "*@t.example tkey\n");
	(void)fclose(fp);
	(void)snprintf(text, sizeof(text),
	    "networks = { internal = [ \"10.99.0.0/16\" ]; };\n"
	    "outbound = { strip_headers = [ \"X-Mailer\", \"Subject\", "
	    "\"/^x-php-/\" ]; };\n"
	    "dkim = { keys = (\n"
	    " { domain = \"a.example\"; selector = \"s1\"; key = \"%s/a.pem\"; },\n"
	    " { domain = \"b.example\"; selector = \"e1\"; key = \"%s/b.pem\";"
	    " algorithm = \"ed25519-sha256\"; },\n"
	    " { domain = \"c.example\"; selector = \"r\"; key = \"%s/c-rsa.pem\"; },\n"
	    " { domain = \"c.example\"; selector = \"e\"; key = \"%s/c-ed.pem\";"
	    " algorithm = \"ed25519-sha256\"; },\n"
	    " { domain = \"parent.example\"; selector = \"s1\"; key = "
	    "\"%s/p.pem\"; subdomains = true; },\n"
	    " { domain = \"loose.example\"; selector = \"s1\"; key = "
	    "\"%s/loose.pem\"; } );\n"
	    " key_table = \"%s\"; signing_table = \"refile:%s\"; %s };\n",
	    dir, dir, dir, dir, dir, dir, kt, st, extra);
	return unit_cfg(text, e);
}

struct sent {
	char	 sigs[4][2048];	/* DKIM-Signature values inserted */
	size_t	 nsig;
	char	 removed[8][64];
	size_t	 nremoved;
};

/* The From value is "Someone <user@DOMAIN>" (value_of). */
static const char *const headers[][2] = {
	{ "Received", "from internal.corp.example by gw" },
	{ "From", NULL },
	{ "To", "x@example.org" },
	{ "Subject", "hello" },
	{ "X-Mailer", "Mailer 1.0" },
	{ "X-PHP-Originating-Script", "1000:mail.php" },
	{ "Date", "Mon, 1 Jan 2024 00:00:00 +0000" },
};
/* whitespace runs, tabs, trailing and leading blanks: what relaxed body
 * canonicalisation changes, around the single spaces it keeps */
static const char body[] = "Hello,\r\n\r\nthe body: one space, two  spaces, "
    "a\ttab, \t both; trailing \r\n  leading\r\nend\r\n\r\n";

static const char *
value_of(size_t i, const char *fromdom, char *buf, size_t len)
{
	if (headers[i][1] != NULL)
		return headers[i][1];
	(void)snprintf(buf, len, "Someone <user@%s>", fromdom);
	return buf;
}

/* One message through the pipeline; fills out with the header edits. */
static void
send(struct cfg *cfg, const char *client, const char *auth,
    const char *fromdom, struct sent *out)
{
	struct conn_ctx		*c = conn_ctx_new(cfg_ref(cfg));
	const struct hdr_edit	*ed;
	struct verdict		 v;
	char			 from[128];
	size_t			 i;

	assert_non_null(c);
	memset(out, 0, sizeof(*out));
	pipeline_connect(c, NULL, client, &v);
	pipeline_helo(c, "host.corp.example", &v);
	pipeline_mail(c, "<user@corp.example>", auth, &v);
	pipeline_rcpt(c, "<x@example.org>", &v);
	assert_int_equal(v.action, ACT_CONTINUE);
	for (i = 0; i < NELEM(headers); i++)
		pipeline_header(c, headers[i][0], value_of(i, fromdom, from,
		    sizeof(from)), &v);
	pipeline_eoh(c, &v);
	pipeline_body(c, (const unsigned char *)body, strlen(body), &v);
	pipeline_eom(c, &v);
	assert_int_equal(v.action, ACT_ACCEPT);
	for (ed = c->msg->edits; ed != NULL; ed = ed->next) {
		if (ed->remove && out->nremoved < 8)
			(void)snprintf(out->removed[out->nremoved++], 64,
			    "%s:%u", ed->name, ed->idx);
		else if (!ed->remove && str_ieq(ed->name, "DKIM-Signature") &&
		    out->nsig < 4) {
			assert_true(ed->top);
			(void)snprintf(out->sigs[out->nsig++], 2048, "%s",
			    ed->value);
		}
	}
	pipeline_msg_end(c);
	cfg_release(c->cfg);
	conn_ctx_free(c);
}

/* Feeds one header field, "\n" line ends made CRLF. */
static void
feed(DKIM *d, const char *name, const char *value)
{
	char	 buf[4096];
	size_t	 o, i;

	o = (size_t)snprintf(buf, sizeof(buf), "%s: ", name);
	for (i = 0; value[i] != '\0' && o + 2 < sizeof(buf); i++) {
		if (value[i] == '\n')
			buf[o++] = '\r';
		buf[o++] = value[i];
	}
	if (dkim_header(d, (unsigned char *)buf, o) != DKIM_STAT_OK)
		fail_msg("libopendkim refuses the field: %.*s", (int)o, buf);
}

/*
 * Verifies signature sig over the message as queued (removed fields
 * left out) with libopendkim, public keys from keyfile.
 */
static void
verify(const char *sig, const struct sent *s, const char *fromdom)
{
	DKIM_LIB	*lib = dkim_init(NULL, NULL);
	DKIM		*d;
	DKIM_STAT	 st;
	dkim_query_t	 qm = DKIM_QUERY_FILE;
	char		 v[128], key[64];
	size_t		 i, j, seen[16] = { 0 };
	int		 gone;

	assert_non_null(lib);
	assert_int_equal(dkim_options(lib, DKIM_OP_SETOPT,
	    DKIM_OPTS_QUERYMETHOD, &qm, sizeof(qm)), DKIM_STAT_OK);
	assert_int_equal(dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_QUERYINFO,
	    keyfile, strlen(keyfile)), DKIM_STAT_OK);
	d = dkim_verify(lib, (const unsigned char *)"t", NULL, &st);
	assert_non_null(d);
	feed(d, "DKIM-Signature", sig);
	for (i = 0; i < NELEM(headers); i++) {
		/* the n-th field of a name, as the removals count them */
		for (j = 0; j < i; j++)
			if (str_ieq(headers[j][0], headers[i][0]))
				seen[i]++;
		(void)snprintf(key, sizeof(key), "%s:%zu", headers[i][0],
		    seen[i] + 1);
		for (gone = 0, j = 0; j < s->nremoved; j++)
			gone |= strcmp(s->removed[j], key) == 0;
		if (gone)
			continue;
		feed(d, headers[i][0], value_of(i, fromdom, v, sizeof(v)));
	}
	assert_int_equal(dkim_eoh(d), DKIM_STAT_OK);
	(void)dkim_body(d, (unsigned char *)(uintptr_t)body, strlen(body));
	st = dkim_eom(d, NULL);
	if (st != DKIM_STAT_OK)
		fail_msg("signature does not verify (%d: %s): %s", st,
		    dkim_geterror(d) != NULL ? dkim_geterror(d) : "", sig);
	(void)dkim_free(d);
	dkim_close(lib);
}

/* The h= tag lists name n times. */
static size_t
h_count(const char *sig, const char *name)
{
	const char	*h = strstr(sig, "\th=");	/* not "bh=" */
	size_t		 n = 0, len = strlen(name);
	const char	*p;

	assert_non_null(h);
	for (p = h + 3; *p != '\0' && *p != ';'; p++)
		if (strncasecmp(p, name, len) == 0 && (p[-1] == '=' ||
		    p[-1] == ':' || p[-1] == '\t' || p[-1] == ' ') &&
		    (p[len] == ':' || p[len] == ';' || p[len] == '\n' ||
		    p[len] == ' ' || p[len] == '\0'))
			n++;
	return n;
}

static void
test_sign_by_from_domain(void **state)
{
	struct err	 e;
	struct cfg	*cfg = dk_cfg("", &e);
	struct sent	 s;

	(void)state;
	if (cfg == NULL)
		fail_msg("%s", e.msg);
	send(cfg, "10.99.0.5", NULL, "a.example", &s);
	assert_int_equal(s.nsig, 1);
	assert_non_null(strstr(s.sigs[0], "a=rsa-sha256"));
	assert_non_null(strstr(s.sigs[0], "c=relaxed/relaxed"));
	assert_non_null(strstr(s.sigs[0], "d=a.example"));
	assert_null(strstr(s.sigs[0], "l="));
	assert_int_equal(h_count(s.sigs[0], "From"), 2);	/* oversigned */
	assert_int_equal(h_count(s.sigs[0], "Subject"), 0);	/* stripped */
	assert_non_null(strstr(last_line,
	    "dkim=signed:d=a.example,s=s1,a=rsa-sha256"));
	verify(s.sigs[0], &s, "a.example");
	/* cleanup: X-Mailer, Subject, X-PHP-... (regex); Received kept */
	assert_int_equal(s.nremoved, 3);
	assert_string_equal(s.removed[0], "Subject:1");
	assert_string_equal(s.removed[1], "X-Mailer:1");
	assert_string_equal(s.removed[2], "X-PHP-Originating-Script:1");

	/* Ed25519, from an authenticated client outside the networks */
	send(cfg, "192.0.2.50", "alice", "b.example", &s);
	assert_int_equal(s.nsig, 1);
	assert_non_null(strstr(s.sigs[0], "a=ed25519-sha256"));
	verify(s.sigs[0], &s, "b.example");

	/* both algorithms: two signatures */
	send(cfg, "10.99.0.5", NULL, "C.Example", &s);
	assert_int_equal(s.nsig, 2);
	verify(s.sigs[0], &s, "C.Example");
	verify(s.sigs[1], &s, "C.Example");
	assert_non_null(strstr(last_line, "a=rsa-sha256;d=c.example"));

	/* a subdomain of a key marked subdomains = true */
	send(cfg, "10.99.0.5", NULL, "mail.parent.example", &s);
	assert_int_equal(s.nsig, 1);
	assert_non_null(strstr(s.sigs[0], "d=parent.example"));
	verify(s.sigs[0], &s, "mail.parent.example");

	/* the OpenDKIM tables */
	send(cfg, "10.99.0.5", NULL, "t.example", &s);
	assert_int_equal(s.nsig, 1);
	assert_non_null(strstr(s.sigs[0], "s=tbl"));
	assert_non_null(strstr(s.sigs[0], "i=user@t.example;"));
	verify(s.sigs[0], &s, "t.example");
	cfg_release(cfg);
}

static void
test_not_signed(void **state)
{
	struct err	 e;
	struct cfg	*cfg = dk_cfg("", &e);
	struct sent	 s;

	(void)state;
	assert_non_null(cfg);
	/* inbound: no signature, nothing removed, no dkim= field */
	send(cfg, "192.0.2.50", NULL, "a.example", &s);
	assert_int_equal(s.nsig, 0);
	assert_int_equal(s.nremoved, 0);
	assert_null(strstr(last_line, "dkim="));
	/* no key for the From domain */
	send(cfg, "10.99.0.5", NULL, "nokey.example", &s);
	assert_int_equal(s.nsig, 0);
	assert_non_null(strstr(last_line, "dkim=unsigned:no-key"));
	/* a key that could not be loaded (group-readable) */
	send(cfg, "10.99.0.5", NULL, "loose.example", &s);
	assert_int_equal(s.nsig, 0);
	assert_non_null(strstr(last_line, "dkim=error:key-unavailable"));
	cfg_release(cfg);

	/* dry run: computed and logged, not added */
	cfg = dk_cfg("dry_run = true;", &e);
	assert_non_null(cfg);
	send(cfg, "10.99.0.5", NULL, "a.example", &s);
	assert_int_equal(s.nsig, 0);
	assert_non_null(strstr(last_line,
	    "dkim=would-sign:d=a.example,s=s1,a=rsa-sha256"));
	cfg_release(cfg);

	/* sign_for = "authenticated": an internal client is not signed */
	cfg = dk_cfg("sign_for = \"authenticated\";", &e);
	assert_non_null(cfg);
	send(cfg, "10.99.0.5", NULL, "a.example", &s);
	assert_int_equal(s.nsig, 0);
	send(cfg, "192.0.2.50", "alice", "a.example", &s);
	assert_int_equal(s.nsig, 1);
	cfg_release(cfg);
}

static void
test_strict_refuses_unsafe_key(void **state)
{
	struct err	 e;
	struct cfg	*cfg;

	(void)state;
	cfg_set_strict(1);
	cfg = dk_cfg("", &e);
	cfg_set_strict(0);
	assert_null(cfg);
	assert_non_null(strstr(e.msg, "loose.pem"));
	assert_non_null(strstr(e.msg, "group or others"));
	/* allow_unsafe_keys lets it load */
	cfg_set_strict(1);
	cfg = dk_cfg("allow_unsafe_keys = true;", &e);
	cfg_set_strict(0);
	if (cfg == NULL)
		fail_msg("%s", e.msg);
	cfg_release(cfg);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sign_by_from_domain),
		cmocka_unit_test(test_not_signed),
		cmocka_unit_test(test_strict_refuses_unsafe_key),
	};

	metrics_init();
	log_open("test_dkim", LOG_MAIL, 1);
	log_set_level(LOG_CRIT);
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
