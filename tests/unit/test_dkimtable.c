/*
 * test_dkimtable.c - OpenDKIM KeyTable and SigningTable files
 * (dkimtable.c): valid tables (comments, blank lines, tabs, CRLF, ':' in
 * key paths, inline key data, signers), every error with its
 * "PATH:LINE: why", limits, table-type prefixes on load, '*' patterns
 * (including a pathological one against a time budget), the lookup
 * order, and the sample migration files in tests/data/dkim/ (the unit
 * tests run from the repository root).
 */
#include <sys/stat.h>

#include <fcntl.h>

#include "dkimkey.h"
#include "unit.h"
#include "util.h"

#define SAMPLE_KT	"tests/data/dkim/KeyTable"
#define SAMPLE_ST	"tests/data/dkim/SigningTable"

static void
kt_ok(const char *text, struct dkim_keytable *t)
{
	struct err	 e;

	err_clear(&e);
	if (dkim_keytable_parse("KT", text, strlen(text), t, &e) != 0)
		fail_msg("keytable: %s", e.msg);
}

static void
st_ok(const char *text, struct dkim_signtable *t)
{
	struct err	 e;

	err_clear(&e);
	if (dkim_signtable_parse("ST", text, strlen(text), t, &e) != 0)
		fail_msg("signtable: %s", e.msg);
}

static void
kt_expect(const struct dkim_keytable *t, size_t i, const char *name,
    const char *domain, const char *selector, const char *key)
{
	assert_true(i < t->n);
	assert_string_equal(t->v[i].name, name);
	assert_string_equal(t->v[i].domain, domain);
	assert_string_equal(t->v[i].selector, selector);
	assert_string_equal(t->v[i].key, key);
}

static void
test_keytable_valid(void **st)
{
	struct dkim_keytable	 t;

	(void)st;
	kt_ok("# OpenDKIM KeyTable\n"
	    "\n"
	    "   \t  \n"
	    "corp\tCorp.EXAMPLE:s2026:/etc/dkim/corp.pem\n"
	    "  spaced    shop.example:Mail:/k/shop.pem   # trailing comment\n"
	    "crlf x.example:s1:/k/x.pem\r\n"
	    "# a comment line with DOMAIN:SELECTOR:KEY in it\n"
	    "colons\ty.example:sel:/keys/a:b:c.pem\n"
	    "inline z.example:z1:MIIEvQIBADANBgkqhkiG9w0BAQEFAASC+/=\n"
	    "pem w.example:w1:-----BEGIN PRIVATE KEY-----MIIE+/="
	    "-----END PRIVATE KEY-----   \n"
	    "pct %:default:/k/default.pem\n"
	    "dotslash v.example:v1:./keys/v.pem#comment\n"
	    "last\tu.example:u1:/k/u.pem", &t);
	assert_int_equal(t.n, 9);
	kt_expect(&t, 0, "corp", "corp.example", "s2026",
	    "/etc/dkim/corp.pem");
	kt_expect(&t, 1, "spaced", "shop.example", "Mail", "/k/shop.pem");
	kt_expect(&t, 2, "crlf", "x.example", "s1", "/k/x.pem");
	kt_expect(&t, 3, "colons", "y.example", "sel", "/keys/a:b:c.pem");
	kt_expect(&t, 4, "inline", "z.example", "z1",
	    "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC+/=");
	kt_expect(&t, 5, "pem", "w.example", "w1",
	    "-----BEGIN PRIVATE KEY-----MIIE+/=-----END PRIVATE KEY-----");
	kt_expect(&t, 6, "pct", "%", "default", "/k/default.pem");
	kt_expect(&t, 7, "dotslash", "v.example", "v1", "./keys/v.pem");
	kt_expect(&t, 8, "last", "u.example", "u1", "/k/u.pem");
	dkim_keytable_free(&t);
	assert_null(t.v);
	assert_int_equal(t.n, 0);
	dkim_keytable_free(&t);		/* twice: still fine */
	dkim_keytable_free(NULL);

	/* nothing but comments: an empty table */
	kt_ok("# nothing\n\n#\n", &t);
	assert_int_equal(t.n, 0);
	dkim_keytable_free(&t);
	kt_ok("", &t);
	assert_int_equal(t.n, 0);
	dkim_keytable_free(&t);
	/* one-line PEM with spaces runs to the end of the line */
	kt_ok("k a.example:s:-----BEGIN RSA PRIVATE KEY----- MIIC  x==  "
	    "-----END RSA PRIVATE KEY-----\t\n", &t);
	kt_expect(&t, 0, "k", "a.example", "s", "-----BEGIN RSA PRIVATE "
	    "KEY----- MIIC  x==  -----END RSA PRIVATE KEY-----");
	dkim_keytable_free(&t);
}

struct bad_row {
	const char	*name;
	const char	*text;
	size_t		 len;
	const char	*want;		/* the whole error text */
};

/* text and its length, NUL bytes included */
#define T(s)	s, sizeof(s) - 1

static void
test_keytable_errors(void **st)
{
	static const struct bad_row rows[] = {
		{ "no value", T("# c\nalone\n"),
		    "KT:2: key name 'alone' has no DOMAIN:SELECTOR:KEY value" },
		{ "no value, comment", T("a b.example:s:/k\nname # x:y:z\n"),
		    "KT:2: key name 'name' has no DOMAIN:SELECTOR:KEY value" },
		{ "one colon", T("k example.com:/k.pem\n"),
		    "KT:1: key name 'k': the value is not "
		    "DOMAIN:SELECTOR:KEY" },
		{ "no colon", T("\n\nk example.com\n"),
		    "KT:3: key name 'k': the value is not "
		    "DOMAIN:SELECTOR:KEY" },
		{ "empty domain", T("k :s:/k.pem\n"),
		    "KT:1: key name 'k': empty domain" },
		{ "empty selector", T("k d.example::/k.pem\n"),
		    "KT:1: key name 'k': empty selector" },
		{ "empty key", T("k d.example:s:\n"),
		    "KT:1: key name 'k': empty key" },
		{ "empty key, comment", T("k d.example:s:#/k.pem\n"),
		    "KT:1: key name 'k': empty key" },
		{ "extra field", T("k d.example:s:/k.pem extra\n"),
		    "KT:1: key name 'k': unexpected 'extra' after "
		    "DOMAIN:SELECTOR:KEY" },
		{ "extra fields", T("k d.example:s:/k.pem a b\n"),
		    "KT:1: key name 'k': unexpected 'a' after "
		    "DOMAIN:SELECTOR:KEY" },
		{ "space in key", T("k d.example:s:/my keys/k.pem\n"),
		    "KT:1: key name 'k': unexpected 'keys/k.pem' after "
		    "DOMAIN:SELECTOR:KEY" },
		{ "duplicate", T("a d.example:s:/k\nb d.example:t:/k\n"
		    "a e.example:s:/k\n"),
		    "KT:3: duplicate key name 'a' (first on line 1)" },
		{ "first duplicate reported", T("z d:s:/k\na d:s:/k\n"
		    "a d:s:/k\nz d:s:/k\na d:s:/k\n"),
		    "KT:3: duplicate key name 'a' (first on line 2)" },
		{ "names are case-sensitive", T("A d:s:/k\na d:s:/k\n"
		    "A d:s:/k\n"),
		    "KT:3: duplicate key name 'A' (first on line 1)" },
		{ "NUL", T("a d:s:/k\nb d:s:/\0k\n"), "KT:2: NUL byte" },
		{ "NUL in comment", T("a d:s:/k # \0\n"), "KT:1: NUL byte" },
		{ "NUL, no newline", T("\0"), "KT:1: NUL byte" },
		{ "control", T("a d:s:/k\x01\n"),
		    "KT:1: control character 0x01" },
		{ "DEL", T("a d:s:/k\x7f\n"), "KT:1: control character 0x7f" },
		{ "lone CR", T("a d:s:/k\rb d:s:/k\n"),
		    "KT:1: control character 0x0d" },
		{ "vertical tab", T("a\vd:s:/k\n"),
		    "KT:1: control character 0x0b" },
		{ "long name cut", T("0123456789abcdef0123456789abcdef"
		    "0123456789abcdef0123456789ABCDEFtail\n"),
		    "KT:1: key name '0123456789abcdef0123456789abcdef"
		    "0123456789abcdef0123456789ABCDEF...' has no "
		    "DOMAIN:SELECTOR:KEY value" },
	};
	struct dkim_keytable	 t;
	struct err		 e;
	size_t			 i;

	(void)st;
	for (i = 0; i < NELEM(rows); i++) {
		err_clear(&e);
		t.v = (void *)&t;	/* garbage in: must be reset */
		t.n = 7;
		if (dkim_keytable_parse("KT", rows[i].text, rows[i].len, &t,
		    &e) != -1)
			fail_msg("row '%s': parsed", rows[i].name);
		if (strcmp(e.msg, rows[i].want) != 0)
			fail_msg("row '%s': got \"%s\"", rows[i].name, e.msg);
		assert_null(t.v);
		assert_int_equal(t.n, 0);
	}
}

static void
test_keytable_no_key_in_errors(void **st)
{
	static const char *const bad[] = {
		"k d.example:SECRETDATA\n",
		"k d.example:s:SECRETDATA junk\n",
		"k :s:SECRETDATA\n",
		"k d::SECRETDATA\n",
	};
	struct dkim_keytable	 t;
	struct err		 e;
	size_t			 i;

	(void)st;
	for (i = 0; i < NELEM(bad); i++) {
		err_clear(&e);
		assert_int_equal(dkim_keytable_parse("KT", bad[i],
		    strlen(bad[i]), &t, &e), -1);
		if (strstr(e.msg, "SECRET") != NULL)
			fail_msg("row %zu: key data in \"%s\"", i, e.msg);
	}
}

static void
st_expect(const struct dkim_signtable *t, size_t i, const char *pattern,
    const char *keyname, const char *signer)
{
	assert_true(i < t->n);
	assert_string_equal(t->v[i].pattern, pattern);
	assert_string_equal(t->v[i].keyname, keyname);
	if (signer == NULL)
		assert_null(t->v[i].signer);
	else {
		assert_non_null(t->v[i].signer);
		assert_string_equal(t->v[i].signer, signer);
	}
}

static void
test_signtable_valid(void **st)
{
	struct dkim_signtable	 t;

	(void)st;
	st_ok("# SigningTable\n"
	    "\n"
	    "Board@Corp.Example\tcorp-ed\n"
	    "*@corp.example    corp-rsa   # everyone else\r\n"
	    "\t shop.example shop\n"
	    "news@shop.example shop:news@Shop.Example\n"
	    "*@*.sub.example sub\n"
	    "* %\n"
	    "odd a:b:c", &t);
	assert_int_equal(t.n, 7);
	st_expect(&t, 0, "board@corp.example", "corp-ed", NULL);
	st_expect(&t, 1, "*@corp.example", "corp-rsa", NULL);
	st_expect(&t, 2, "shop.example", "shop", NULL);
	st_expect(&t, 3, "news@shop.example", "shop", "news@Shop.Example");
	st_expect(&t, 4, "*@*.sub.example", "sub", NULL);
	st_expect(&t, 5, "*", "%", NULL);
	st_expect(&t, 6, "odd", "a", "b:c");
	dkim_signtable_free(&t);
	assert_null(t.v);
	dkim_signtable_free(&t);
	dkim_signtable_free(NULL);
	st_ok("\n\n# only comments\n", &t);
	assert_int_equal(t.n, 0);
	dkim_signtable_free(&t);
}

static void
test_signtable_errors(void **st)
{
	static const struct bad_row rows[] = {
		{ "no key name", T("*@corp.example\n"),
		    "ST:1: pattern '*@corp.example' has no key name" },
		{ "no key name, comment", T("a k\n\n*@x # k\n"),
		    "ST:3: pattern '*@x' has no key name" },
		{ "extra", T("a k1 k2\n"),
		    "ST:1: pattern 'a': unexpected 'k2' after the key name" },
		{ "comma is no list", T("a k1, k2\n"),
		    "ST:1: pattern 'a': unexpected 'k2' after the key name" },
		{ "empty key name", T("a :signer@a\n"),
		    "ST:1: pattern 'a': empty key name" },
		{ "empty signer", T("a k:\n"),
		    "ST:1: pattern 'a': empty signer after 'k:'" },
		{ "NUL", T("a k\0\n"), "ST:1: NUL byte" },
		{ "control", T("a\x1b k\n"), "ST:1: control character 0x1b" },
		{ "CR inside", T("a k\r\rb k\n"),
		    "ST:1: control character 0x0d" },
	};
	struct dkim_signtable	 t;
	struct err		 e;
	size_t			 i;

	(void)st;
	for (i = 0; i < NELEM(rows); i++) {
		err_clear(&e);
		if (dkim_signtable_parse("ST", rows[i].text, rows[i].len,
		    &t, &e) != -1)
			fail_msg("row '%s': parsed", rows[i].name);
		if (strcmp(e.msg, rows[i].want) != 0)
			fail_msg("row '%s': got \"%s\"", rows[i].name, e.msg);
		assert_null(t.v);
		assert_int_equal(t.n, 0);
	}
}

/* A text of n lines "PREFIXi VALUE\n" (allocated). */
static char *
many_lines(size_t n, const char *value, size_t *len)
{
	size_t	 cap = n * (strlen(value) + 16) + 1, o = 0, i;
	char	*s = malloc(cap);

	assert_non_null(s);
	for (i = 0; i < n; i++) {
		int w = snprintf(s + o, cap - o, "k%zu %s\n", i, value);

		assert_true(w > 0 && (size_t)w < cap - o);
		o += (size_t)w;
	}
	s[o] = '\0';
	*len = o;
	return s;
}

static void
test_limits(void **st)
{
	struct dkim_keytable	 kt;
	struct dkim_signtable	 t;
	struct err		 e;
	char			*s;
	size_t			 len;

	(void)st;
	/* a line of 8192 bytes (+ CRLF) is fine, 8193 is not */
	s = malloc(8200);
	assert_non_null(s);
	memcpy(s, "a ", 2);
	memset(s + 2, 'k', 8190);
	memcpy(s + 8192, "\r\n", 3);
	st_ok(s, &t);
	assert_int_equal(strlen(t.v[0].keyname), 8190);
	dkim_signtable_free(&t);
	memcpy(s + 8192, "k\n", 3);
	assert_int_equal(dkim_signtable_parse("ST", s, strlen(s), &t, &e),
	    -1);
	assert_string_equal(e.msg, "ST:1: line longer than 8192 bytes");
	/* a long comment counts too */
	memset(s, '#', 8193);
	s[8193] = '\0';
	assert_int_equal(dkim_keytable_parse("KT", s, strlen(s), &kt, &e),
	    -1);
	assert_string_equal(e.msg, "KT:1: line longer than 8192 bytes");
	free(s);

	/* 100000 entries, then one too many */
	s = many_lines(100000, "d.example:s:/k", &len);
	kt_ok(s, &kt);
	assert_int_equal(kt.n, 100000);
	kt_expect(&kt, 99999, "k99999", "d.example", "s", "/k");
	dkim_keytable_free(&kt);
	free(s);
	s = many_lines(100001, "d.example:s:/k", &len);
	assert_int_equal(dkim_keytable_parse("KT", s, len, &kt, &e), -1);
	assert_string_equal(e.msg, "KT:100001: more than 100000 entries");
	free(s);
	s = many_lines(100001, "key", &len);
	assert_int_equal(dkim_signtable_parse("ST", s, len, &t, &e), -1);
	assert_string_equal(e.msg, "ST:100001: more than 100000 entries");
	free(s);
	/* a late duplicate among many, found without quadratic time */
	s = many_lines(100000, "d.example:s:/k", &len);
	memcpy(s, "k7 ", 3);		/* line 1 "k0 ..." becomes "k7 ..." */
	assert_int_equal(dkim_keytable_parse("KT", s, len, &kt, &e), -1);
	assert_string_equal(e.msg, "KT:8: duplicate key name 'k7' (first on "
	    "line 1)");
	free(s);
	/* NULL text with length 0 */
	assert_int_equal(dkim_keytable_parse("KT", NULL, 0, &kt, &e), 0);
	assert_int_equal(kt.n, 0);
	assert_int_equal(dkim_signtable_parse("ST", NULL, 0, &t, &e), 0);
	assert_int_equal(t.n, 0);
}

static void
test_load(void **st)
{
	struct dkim_keytable	 kt;
	struct dkim_signtable	 t;
	struct err		 e;
	char			*kp, *sp, spec[512], want[600];
	char			 big[] = "/tmp/portero-unit-big-XXXXXX";
	int			 fd;

	(void)st;
	kp = unit_tmpfile("k d.example:s:/k.pem\n");
	sp = unit_tmpfile("*@d.example k\nbad\n");
	/* plain path, file:, refile:, any case */
	assert_int_equal(dkim_keytable_load(kp, &kt, &e), 0);
	assert_int_equal(kt.n, 1);
	dkim_keytable_free(&kt);
	(void)snprintf(spec, sizeof(spec), "file:%s", kp);
	assert_int_equal(dkim_keytable_load(spec, &kt, &e), 0);
	assert_int_equal(kt.n, 1);
	dkim_keytable_free(&kt);
	(void)snprintf(spec, sizeof(spec), "REFILE:%s", kp);
	assert_int_equal(dkim_keytable_load(spec, &kt, &e), 0);
	kt_expect(&kt, 0, "k", "d.example", "s", "/k.pem");
	dkim_keytable_free(&kt);
	/* errors name the file without its prefix, with the line */
	(void)snprintf(spec, sizeof(spec), "refile:%s", sp);
	assert_int_equal(dkim_signtable_load(spec, &t, &e), -1);
	(void)snprintf(want, sizeof(want), "%s:2: pattern 'bad' has no key "
	    "name", sp);
	assert_string_equal(e.msg, want);
	assert_null(t.v);
	/* other table types */
	assert_int_equal(dkim_keytable_load("db:/etc/opendkim/kt.db", &kt,
	    &e), -1);
	assert_string_equal(e.msg, "db:/etc/opendkim/kt.db: table type 'db' "
	    "is not supported (file: and refile: are)");
	assert_int_equal(dkim_signtable_load("dsn:mysql://u:p@3306+h/db/"
	    "table=t?keycol=k?datacol=v", &t, &e), -1);
	assert_non_null(strstr(e.msg, ": table type 'dsn' is not supported "
	    "(file: and refile: are)"));
	assert_int_equal(dkim_signtable_load("ldap://ldap.example/dc=x", &t,
	    &e), -1);
	assert_non_null(strstr(e.msg, "table type 'ldap' is not supported"));
	assert_int_equal(dkim_signtable_load("csl:a,b", &t, &e), -1);
	assert_non_null(strstr(e.msg, "table type 'csl' is not supported"));
	assert_int_equal(dkim_keytable_load("file:", &kt, &e), -1);
	assert_string_equal(e.msg, "file:: no file name after 'file:'");
	/* files that cannot be read */
	assert_int_equal(dkim_keytable_load("/nonexistent/KeyTable", &kt,
	    &e), -1);
	assert_string_equal(e.msg, "/nonexistent/KeyTable: No such file or "
	    "directory");
	assert_int_equal(dkim_signtable_load("refile:/nonexistent/ST", &t,
	    &e), -1);
	assert_string_equal(e.msg, "/nonexistent/ST: No such file or "
	    "directory");
	assert_int_equal(dkim_signtable_load("/tmp", &t, &e), -1);
	assert_string_equal(e.msg, "/tmp: not a regular file");
	/* a relative path without a prefix is a path */
	assert_int_equal(dkim_signtable_load("no-such-table", &t, &e), -1);
	assert_string_equal(e.msg, "no-such-table: No such file or "
	    "directory");
	/* 16 MB is the most (a sparse file reads as zeros) */
	fd = mkstemp(big);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 16L * 1024 * 1024 + 1), 0);
	close(fd);
	assert_int_equal(dkim_keytable_load(big, &kt, &e), -1);
	(void)snprintf(want, sizeof(want), "%s: larger than 16 MB", big);
	assert_string_equal(e.msg, want);
	fd = open(big, O_WRONLY | O_TRUNC);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 16L * 1024 * 1024), 0);
	close(fd);
	/* exactly 16 MB is read: it is all NUL bytes */
	assert_int_equal(dkim_keytable_load(big, &kt, &e), -1);
	(void)snprintf(want, sizeof(want), "%s:1: line longer than 8192 "
	    "bytes", big);
	assert_string_equal(e.msg, want);
	unlink(big);
	unit_rm(kp);
	unit_rm(sp);
}

struct match_row {
	const char	*pattern;
	const char	*subject;
	int		 want;
};

static void
test_pattern_match(void **st)
{
	static const struct match_row rows[] = {
		{ "user@corp.example", "user@corp.example", 1 },
		{ "user@corp.example", "User@CORP.example", 1 },
		{ "USER@corp.example", "user@corp.example", 1 },
		{ "user@corp.example", "user@corp.example.", 0 },
		{ "user@corp.example", "xuser@corp.example", 0 },
		{ "user@corp.example", "", 0 },
		{ "*@corp.example", "a@corp.example", 1 },
		{ "*@corp.example", "@corp.example", 1 },
		{ "*@corp.example", "a@b.corp.example", 0 },
		{ "*@corp.example", "corp.example", 0 },
		{ "*@corp.example", "a@corp.example.net", 0 },
		{ "*.corp.example", "a.corp.example", 1 },
		{ "*.corp.example", "x@a.b.corp.example", 1 },
		{ "*.corp.example", "corp.example", 0 },
		{ "*.corp.example", ".corp.example", 1 },
		{ "*@*.sub.example", "u@a.sub.example", 1 },
		{ "*@*.sub.example", "u@sub.example", 0 },
		{ "*", "", 1 },
		{ "*", "anything@at.all", 1 },
		{ "**", "", 1 },
		{ "", "", 1 },
		{ "", "a", 0 },
		{ "a", "", 0 },
		{ "a*b*c", "abc", 1 },
		{ "a*b*c", "aXbYc", 1 },
		{ "a*b*c", "abbbcbc", 1 },
		{ "a*b*c", "acb", 0 },
		{ "a*b*c", "abcx", 0 },
		{ "a*b*c", "xabc", 0 },
		{ "*a*b*c*", "xxaxxbxxcxx", 1 },
		{ "a**b", "ab", 1 },
		{ "*aab", "aaab", 1 },
		{ "*ab*ab", "xabyabab", 1 },
		{ "*ab*ab", "xabyaba", 0 },
		{ "user@*", "user@anywhere", 1 },
		{ "user@*", "other@anywhere", 0 },
		{ "?", "a", 0 },		/* only '*' is special */
		{ "a.b", "axb", 0 },
		{ "[a]", "[A]", 1 },
		{ "\xc3\xa9@x", "\xc3\xa9@x", 1 },
	};
	size_t	 i;

	(void)st;
	for (i = 0; i < NELEM(rows); i++)
		if (dkim_pattern_match(rows[i].pattern, rows[i].subject) !=
		    rows[i].want)
			fail_msg("row %zu: '%s' vs '%s' should be %d", i,
			    rows[i].pattern, rows[i].subject, rows[i].want);
	assert_int_equal(dkim_pattern_match(NULL, "a"), 0);
	assert_int_equal(dkim_pattern_match("*", NULL), 0);
}

static void
test_pattern_pathological(void **st)
{
	char		*subj, *pat;
	size_t		 n = 8192, i;
	uint64_t	 t0;

	(void)st;
	subj = malloc(n + 1);
	pat = malloc(n + 1);
	assert_non_null(subj);
	assert_non_null(pat);
	t0 = now_ms();
	/* many stars, then a byte that is not there */
	memset(subj, 'b', n);
	subj[n] = '\0';
	memset(pat, '*', n - 1);
	pat[n - 1] = 'a';
	pat[n] = '\0';
	assert_int_equal(dkim_pattern_match(pat, subj), 0);
	subj[n - 1] = 'A';
	assert_int_equal(dkim_pattern_match(pat, subj), 1);
	/* "*a*a*a...*b" against "aaaa...": exponential for a naive
	 * recursive matcher */
	for (i = 0; i + 1 < 64; i += 2) {
		pat[i] = '*';
		pat[i + 1] = 'a';
	}
	memcpy(pat + i, "*b", 3);
	memset(subj, 'a', n);
	subj[n] = '\0';
	assert_int_equal(dkim_pattern_match(pat, subj), 0);
	for (i = 0; i < 10; i++)
		assert_int_equal(dkim_pattern_match("********a", subj), 1);
	subj[n - 1] = 'c';
	for (i = 0; i < 10; i++)
		assert_int_equal(dkim_pattern_match("********a", subj), 0);
	/* star runs between bytes */
	for (i = 0; i < 4000; i++)
		pat[i] = i % 3 == 0 ? 'a' : '*';
	memcpy(pat + i, "c", 2);
	assert_int_equal(dkim_pattern_match(pat, subj), 1);
	subj[n - 1] = 'd';
	assert_int_equal(dkim_pattern_match(pat, subj), 0);
	/* the worst case of this matcher, O(pattern * subject): a long
	 * run after the last star that fails at its end everywhere (8M
	 * steps; a few hundred ms under TSan) */
	pat[0] = '*';
	memset(pat + 1, 'a', 1000);
	memcpy(pat + 1001, "b", 2);
	memset(subj, 'a', n);
	assert_int_equal(dkim_pattern_match(pat, subj), 0);
	if (now_ms() - t0 > 2000)
		fail_msg("pattern matching took %llu ms",
		    (unsigned long long)(now_ms() - t0));
	free(subj);
	free(pat);
}

struct seen {
	const char	*names[16];
	size_t		 n;
	size_t		 stop_after;	/* 0: never stop */
};

static int
collect(const struct dkim_st_entry *s, void *arg)
{
	struct seen	*w = arg;

	assert_true(w->n < NELEM(w->names));
	w->names[w->n++] = s->keyname;
	return w->stop_after != 0 && w->n >= w->stop_after;
}

/* The key names lookup reports, joined with ',' into out. */
static const char *
lookup(const struct dkim_signtable *t, const char *local, const char *dom,
    size_t stop_after, char *out, size_t len)
{
	struct seen	 w;
	size_t		 i, o = 0;

	memset(&w, 0, sizeof(w));
	w.stop_after = stop_after;
	dkim_signtable_lookup(t, local, dom, collect, &w);
	out[0] = '\0';
	for (i = 0; i < w.n; i++) {
		int n = snprintf(out + o, len - o, "%s%s", i ? "," : "",
		    w.names[i]);

		assert_true(n > 0 && (size_t)n < len - o);
		o += (size_t)n;
	}
	return out;
}

static void
test_lookup(void **st)
{
	struct dkim_signtable	 t;
	char			 b[256];

	(void)st;
	st_ok("ceo@corp.example k-ceo\n"
	    "*@corp.example k-corp\n"
	    "corp.example k-corpdom\n"
	    "*.corp.example k-subs\n"
	    "shop.example k-shop\n"
	    "*@*.sub.example k-sub\n"
	    "* k-all\n", &t);
	/* every match in table order */
	assert_string_equal(lookup(&t, "ceo", "corp.example", 0, b,
	    sizeof(b)), "k-ceo,k-corp,k-corpdom,k-all");
	assert_string_equal(lookup(&t, "CEO", "Corp.Example", 0, b,
	    sizeof(b)), "k-ceo,k-corp,k-corpdom,k-all");
	/* first match wins when fn says stop */
	assert_string_equal(lookup(&t, "ceo", "corp.example", 1, b,
	    sizeof(b)), "k-ceo");
	assert_string_equal(lookup(&t, "bob", "corp.example", 1, b,
	    sizeof(b)), "k-corp");
	assert_string_equal(lookup(&t, "bob", "corp.example", 2, b,
	    sizeof(b)), "k-corp,k-corpdom");
	/* a domain-only pattern matches the domain of an address */
	assert_string_equal(lookup(&t, "anyone", "shop.example", 1, b,
	    sizeof(b)), "k-shop");
	assert_string_equal(lookup(&t, "x", "eu.corp.example", 0, b,
	    sizeof(b)), "k-subs,k-all");
	assert_string_equal(lookup(&t, "u", "a.sub.example", 0, b,
	    sizeof(b)), "k-sub,k-all");
	assert_string_equal(lookup(&t, "u", "sub.example", 0, b,
	    sizeof(b)), "k-all");
	assert_string_equal(lookup(&t, "u", "other.example", 0, b,
	    sizeof(b)), "k-all");
	/* no local part: the domain alone */
	assert_string_equal(lookup(&t, NULL, "corp.example", 0, b,
	    sizeof(b)), "k-corpdom,k-all");
	/* "*" matching both the address and the domain: reported once */
	assert_string_equal(lookup(&t, NULL, NULL, 0, b, sizeof(b)),
	    "k-all");
	dkim_signtable_lookup(&t, "a", "b", NULL, NULL);
	dkim_signtable_lookup(NULL, "a", "b", collect, NULL);
	dkim_signtable_free(&t);
	/* an empty table calls nothing */
	st_ok("", &t);
	assert_string_equal(lookup(&t, "a", "b.example", 0, b, sizeof(b)),
	    "");
	dkim_signtable_free(&t);
}

static void
test_sample_files(void **st)
{
	struct dkim_keytable	 kt;
	struct dkim_signtable	 t;
	struct err		 e;
	char			 b[256];

	(void)st;
	if (dkim_keytable_load("refile:" SAMPLE_KT, &kt, &e) != 0)
		fail_msg("%s", e.msg);
	assert_int_equal(kt.n, 4);
	kt_expect(&kt, 0, "corp-s2026", "corp.example", "s2026",
	    "KEYDIR/corp.example.s2026.pem");
	kt_expect(&kt, 1, "corp-ed2026", "corp.example", "ed2026",
	    "KEYDIR/corp.example.ed2026.pem");
	kt_expect(&kt, 2, "shop-mail", "shop.example", "mail",
	    "KEYDIR/shop.example.mail.pem");
	kt_expect(&kt, 3, "sub-s1", "sub.example", "s1",
	    "KEYDIR/sub.example.s1.pem");
	dkim_keytable_free(&kt);

	if (dkim_signtable_load("refile:" SAMPLE_ST, &t, &e) != 0)
		fail_msg("%s", e.msg);
	assert_int_equal(t.n, 6);
	st_expect(&t, 0, "board@corp.example", "corp-ed2026", NULL);
	st_expect(&t, 1, "*@corp.example", "corp-s2026", NULL);
	st_expect(&t, 2, "news@shop.example", "shop-mail",
	    "news@shop.example");
	st_expect(&t, 3, "shop.example", "shop-mail", NULL);
	st_expect(&t, 4, "*@sub.example", "sub-s1", NULL);
	st_expect(&t, 5, "*@*.sub.example", "sub-s1", NULL);
	assert_string_equal(lookup(&t, "Board", "corp.example", 1, b,
	    sizeof(b)), "corp-ed2026");
	assert_string_equal(lookup(&t, "alice", "corp.example", 1, b,
	    sizeof(b)), "corp-s2026");
	assert_string_equal(lookup(&t, "orders", "shop.example", 1, b,
	    sizeof(b)), "shop-mail");
	assert_string_equal(lookup(&t, "x", "sub.example", 1, b,
	    sizeof(b)), "sub-s1");
	assert_string_equal(lookup(&t, "x", "dev.eu.sub.example", 1, b,
	    sizeof(b)), "sub-s1");
	assert_string_equal(lookup(&t, "x", "corp.example.net", 1, b,
	    sizeof(b)), "");
	assert_string_equal(lookup(&t, "x", "other.example", 0, b,
	    sizeof(b)), "");
	dkim_signtable_free(&t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keytable_valid),
		cmocka_unit_test(test_keytable_errors),
		cmocka_unit_test(test_keytable_no_key_in_errors),
		cmocka_unit_test(test_signtable_valid),
		cmocka_unit_test(test_signtable_errors),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_load),
		cmocka_unit_test(test_pattern_match),
		cmocka_unit_test(test_pattern_pathological),
		cmocka_unit_test(test_lookup),
		cmocka_unit_test(test_sample_files),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
