/*
 * test_ruletable.c - Postfix regexp: and pcre: tables (ruletable.c): the
 * seed header_checks of real admin write-ups as Postfix acts on them,
 * negation, if/endif, delimiters, continuation lines, CRLF, every load
 * error with its "NAME:LINE: why", actions, 4NN/5NN with DSN, SCORE,
 * $n substitution and its bounds, regexp vs pcre semantics, limits
 * (catastrophic patterns return -1 quickly, never "no match"), NUL bytes
 * in the input, and four threads sharing one table.
 */
#include <pthread.h>

#include "ruletable.h"
#include "unit.h"
#include "util.h"

/* text and its length, NUL bytes included */
#define T(s)	s, sizeof(s) - 1

/* A table and what a lookup needs. */
struct rt {
	struct ruletable	*t;
	struct rule_scratch	*s;
	struct buf		 tb;
};

/* 1: tables without the prefilter, where a test needs PCRE2 to run
 * (limits: the prefilter proves most catastrophic subjects do not
 * match, see test_prefilter.c) */
static int pcre_only;

static void
rt_open_len(struct rt *x, enum rule_syntax syn, const char *text,
    size_t len)
{
	struct rule_limits	 lim;
	struct err		 e;

	err_clear(&e);
	rule_limits_default(&lim);
	lim.no_prefilter = pcre_only;
	x->t = ruletable_parse("T", text, len, syn, &lim, &e);
	if (x->t == NULL)
		fail_msg("load: %s", e.msg);
	x->s = rule_scratch_new(x->t);
	assert_non_null(x->s);
	buf_init(&x->tb, 1024);
}

static void
rt_open(struct rt *x, enum rule_syntax syn, const char *text)
{
	rt_open_len(x, syn, text, strlen(text));
}

static void
rt_close(struct rt *x)
{
	rule_scratch_free(x->s);
	ruletable_free(x->t);
	buf_free(&x->tb);
}

/* 1 or 0 as ruletable_match(); a -1 fails the test. */
static int
rt_look(struct rt *x, const char *subj, size_t len, struct rule_result *r)
{
	struct err	 e;
	int		 rc;

	err_clear(&e);
	rc = ruletable_match(x->t, x->s, subj, len, r, &x->tb, &e);
	if (rc < 0)
		fail_msg("match '%s': %s", subj, e.msg);
	return rc;
}

struct row {
	const char		*subj;
	enum rule_action	 action;	/* RA_NONE: no match */
	unsigned		 line;
	const char		*text;
};

static void
rt_rows(struct rt *x, const char *what, const struct row *rows, size_t n)
{
	struct rule_result	 r;
	size_t			 i;
	int			 rc;

	for (i = 0; i < n; i++) {
		rc = rt_look(x, rows[i].subj, strlen(rows[i].subj), &r);
		if (rc != (rows[i].action != RA_NONE) ||
		    r.action != rows[i].action || r.line != rows[i].line ||
		    strcmp(r.text, rows[i].text) != 0)
			fail_msg("%s: '%s': got rc %d %s line %u '%s', want "
			    "%s line %u '%s'", what, rows[i].subj, rc,
			    rule_action_name(r.action), r.line, r.text,
			    rule_action_name(rows[i].action), rows[i].line,
			    rows[i].text);
	}
}

/* The load error of text, or "" if it loads. */
static const char *
load_error(enum rule_syntax syn, const char *text, size_t len,
    struct err *e)
{
	struct ruletable	*t;

	err_clear(e);
	t = ruletable_parse("T", text, len, syn, NULL, e);
	if (t != NULL) {
		ruletable_free(t);
		return "";
	}
	assert_true(e->msg[0] != '\0');
	return e->msg;
}

static const char seed[] =
    "# header_checks from admin write-ups\n"
    "/^Subject: retire early.*$/ REJECT \n"
    "/^Subject: Got Debt? [7xkeh].*/ REJECT\n"
    "/^Subject: Mens Health Manual\\\\.\\\\.\\\\.\\\\.\\\\.\\\\.\\\\.\\\\."
    "\\\\.\\\\.*/ REJECT  \n"
    "/^From: \"Martina & Laura\" <blackgirls@libero.it>/ REJECT\n"
    "/^From: \"Gray\" <@msn.com>.*$/ REJECT\n"
    "/^TV[nopqr]....[AB]..A.A....*AAAA...*AAAA/ REJECT\n"
    "/^M35[GHIJK].`..`..*````/ REJECT\n"
    "/^UEsDBAoAAAAAA/ REJECT\n"
    "/Make Money/ REJECT\n"
    "/name ?=''?.*1#1.(bat|com|dll|exe|hta|pif|vbs)''?/ REJECT\n"
    "/^Received:/    IGNORE\n"
    "/^X-PHP-Originating-Script:/    IGNORE\n"
    "#/^Mime-Version:/        IGNORE\n";

static void
test_seed_rules(void **st)
{
	static const struct row rows[] = {
		{ "Subject: retire early", RA_REJECT, 2, "" },
		{ "SUBJECT: Retire EARLY today", RA_REJECT, 2, "" },
		{ "Subject: Got Debt Help", RA_REJECT, 3, "" },
		{ "Subject: Got Deb 7", RA_REJECT, 3, "" },
		/* "Debt?" is "Deb" and an optional "t", as in Postfix */
		{ "Subject: Got Debt? x", RA_NONE, 0, "" },
		{ "Subject: Mens Health Manual..........", RA_NONE, 0, "" },
		{ "Subject: Mens Health Manual\\a\\b\\c\\d\\e\\f\\g\\h\\i\\",
		    RA_REJECT, 4, "" },
		{ "From: \"Martina & Laura\" <blackgirls@libero.it>",
		    RA_REJECT, 5, "" },
		{ "from: \"gray\" <@msnXcom> (x)", RA_REJECT, 6, "" },
		{ "TVqQAAMAAAAEAAAA//8AALgAAAAAAAAAQAAAAAAAAAAAAAAAAAAAAAAA"
		    "AAAAAAAAAAAAAAAAAAAAAAAAgAAAAA4fug4AtAnNIbgBTM0hVGhpcy",
		    RA_REJECT, 7, "" },
		{ "M35Gx`ab`c````", RA_REJECT, 8, "" },
		{ "UEsDBAoAAAAAAAAAIQA", RA_REJECT, 9, "" },
		{ "Subject: make money fast", RA_REJECT, 10, "" },
		{ "Content-Type: application/x-msdownload; "
		    "name='readme1#1.exe'", RA_REJECT, 11, "" },
		{ "Received: from mx.example.net", RA_IGNORE, 12, "" },
		{ "x-php-originating-script: 33:mailer.php", RA_IGNORE, 13,
		    "" },
		{ "Mime-Version: 1.0", RA_NONE, 0, "" },
		{ "Subject: hello", RA_NONE, 0, "" },
	};
	struct rt	 x;
	struct err	 e;
	char		*path = unit_tmpfile(seed);

	(void)st;
	/* from a file: the name is the path, no warnings */
	err_clear(&e);
	x.t = ruletable_load(path, RULE_REGEXP, NULL, &e);
	if (x.t == NULL)
		fail_msg("load: %s", e.msg);
	assert_string_equal(ruletable_name(x.t), path);
	assert_int_equal(ruletable_count(x.t), 12);
	assert_string_equal(ruletable_warnings(x.t), "");
	x.s = rule_scratch_new(x.t);
	assert_non_null(x.s);
	buf_init(&x.tb, 256);
	rt_rows(&x, "regexp", rows, NELEM(rows));
	rt_close(&x);
	unit_rm(path);
	/* the same rules as a pcre: table act the same */
	rt_open(&x, RULE_PCRE, seed);
	rt_rows(&x, "pcre", rows, NELEM(rows));
	rt_close(&x);
}

static void
test_negation_and_order(void **st)
{
	static const struct row rows[] = {
		{ "Subject: hi", RA_WARN, 1, "no X" },
		{ "X-Mailer: foo", RA_HOLD, 3, "" },
		{ "X-Spam: yes", RA_DUNNO, 2, "" },
		{ "X-Other: 1", RA_NONE, 0, "" },
	};
	struct rt	 x;
	int		 syn;

	(void)st;
	for (syn = RULE_REGEXP; syn <= RULE_PCRE; syn++) {
		rt_open(&x, (enum rule_syntax)syn,
		    "!/^X-/ WARN no X\n"
		    "!!/^X-Spam:/ DUNNO\n"		/* double negation */
		    "/^X-Mailer:/ HOLD\n"
		    "/^X-Mailer:/ REJECT never: the first match decides\n");
		rt_rows(&x, syn == RULE_PCRE ? "pcre" : "regexp", rows,
		    NELEM(rows));
		rt_close(&x);
	}
}

static void
test_if_endif(void **st)
{
	static const struct row rows[] = {
		{ "Subject: free stuff", RA_REJECT, 4, "free" },
		{ "Subject: urgent free", RA_WARN, 10, "outside" },
		{ "Subject: urgent money", RA_HOLD, 7, "" },
		{ "subject: MONEY", RA_HOLD, 7, "" },
		{ "From: free", RA_WARN, 10, "outside" },
	};
	static const struct row negated[] = {
		{ "From: a@example.com", RA_INFO, 11, "not subject" },
		{ "From: free", RA_WARN, 10, "outside" },
		{ "To: x", RA_NONE, 0, "" },
		{ "Subject: free stuff", RA_REJECT, 4, "free" },
	};
	struct rt	 x;
	int		 syn;

	(void)st;
	for (syn = RULE_REGEXP; syn <= RULE_PCRE; syn++) {
		rt_open(&x, (enum rule_syntax)syn,
		    "if /^Subject:/\n"
		    "# nested and negated\n"
		    "IF !/urgent/\n"
		    "/free/ REJECT free\n"
		    "EndIf\n"
		    "\n"
		    "/money/ HOLD\n"
		    "endif\n"
		    "/@/ INFO not subject\n"
		    "/free/ WARN outside\n");
		rt_rows(&x, syn == RULE_PCRE ? "pcre" : "regexp", rows,
		    NELEM(rows));
		rt_close(&x);
		rt_open(&x, (enum rule_syntax)syn,
		    "if /^Subject:/\n"
		    "# nested and negated\n"
		    "IF !/urgent/\n"
		    "/free/ REJECT free\n"
		    "EndIf\n"
		    "\n"
		    "/money/ HOLD\n"
		    "endif\n"
		    "if !/^(Subject|To):/\n"
		    "/free/ WARN outside\n"
		    "/@/ INFO not subject\n"
		    "endif\n");
		rt_rows(&x, "negated if", negated, NELEM(negated));
		assert_int_equal(ruletable_count(x.t), 4);
		rt_close(&x);
	}
	/* text after "if /re/" is ignored with a warning, as Postfix does */
	rt_open(&x, RULE_REGEXP, "if /a/ REJECT\n/b/ OK\nendif junk\n");
	assert_string_equal(ruletable_warnings(x.t),
	    "T:1: ignoring text after the if pattern: 'REJECT' (do not "
	    "indent rules inside if)\n"
	    "T:3: ignoring text after endif: 'junk'\n");
	rt_close(&x);
}

struct bad_row {
	const char		*name;
	enum rule_syntax	 syn;
	const char		*text;
	size_t			 len;
	const char		*want;	/* the whole error text */
};

static void
test_errors(void **st)
{
	static const struct bad_row rows[] = {
		{ "bad pcre", RULE_PCRE, T("/ok/ DUNNO\n\n/(/ REJECT\n"),
		    "T:3: bad pattern: missing closing parenthesis (at "
		    "offset 1)" },
		{ "bad regexp", RULE_REGEXP, T("# c\n/[a/ REJECT\n"),
		    "T:2: bad pattern: missing terminating ] for character "
		    "class" },
		{ "regexp paren", RULE_REGEXP, T("/a(b/ REJECT\n"),
		    "T:1: bad pattern: missing closing parenthesis" },
		{ "unknown regexp flag", RULE_REGEXP, T("/a/iq REJECT\n"),
		    "T:1: unknown regexp flag 'q'" },
		{ "s is pcre only", RULE_REGEXP, T("/a/s REJECT\n"),
		    "T:1: unknown regexp flag 's'" },
		{ "unknown pcre flag", RULE_PCRE, T("\n\n/a/iZ REJECT\n"),
		    "T:3: unknown pcre flag 'Z'" },
		{ "missing endif", RULE_REGEXP, T("if /a/\n/b/ OK\n"),
		    "T:1: if without endif" },
		{ "missing inner endif", RULE_PCRE,
		    T("if /a/\nendif\nif /b/\nif /c/\nendif\n"),
		    "T:3: if without endif" },
		{ "stray endif", RULE_REGEXP, T("/a/ OK\nendif\n"),
		    "T:2: endif without if" },
		{ "stray nested endif", RULE_PCRE,
		    T("if /a/\nendif\nendif\n"), "T:3: endif without if" },
		{ "empty action", RULE_REGEXP, T("/a/ OK\n/b/\n"),
		    "T:2: no action after the pattern" },
		{ "blank action", RULE_PCRE, T("/a/i   \t\r\n"),
		    "T:1: no action after the pattern" },
		{ "bad score", RULE_REGEXP, T("/a/ SCORE x\n"),
		    "T:1: SCORE 'x': not a number with at most 2 decimals in "
		    "[-100000, 100000]" },
		{ "score decimals", RULE_REGEXP, T("/a/ SCORE 1.234 t\n"),
		    "T:1: SCORE '1.234': not a number with at most 2 "
		    "decimals in [-100000, 100000]" },
		{ "score range", RULE_PCRE, T("/a/ score 100000.01\n"),
		    "T:1: SCORE '100000.01': not a number with at most 2 "
		    "decimals in [-100000, 100000]" },
		{ "score none", RULE_PCRE, T("/a/ SCORE\n"),
		    "T:1: SCORE '': not a number with at most 2 decimals in "
		    "[-100000, 100000]" },
		{ "no closing delimiter", RULE_REGEXP, T("/abc REJECT\n"),
		    "T:1: no closing '/' after the pattern" },
		{ "escaped delimiter only", RULE_PCRE, T("/abc\\/ REJECT\n"),
		    "T:1: no closing '/' after the pattern" },
		{ "alnum delimiter", RULE_REGEXP, T("!abca REJECT\n"),
		    "T:1: 'a' cannot delimit a pattern" },
		{ "no pattern", RULE_REGEXP, T("!  \n"),
		    "T:1: no pattern" },
		{ "not a rule", RULE_PCRE, T("REJECT /a/\n"),
		    "T:1: not a rule, if or endif: 'REJECT /a/'" },
		{ "group out of range", RULE_REGEXP, T("/(a)/ REJECT $2\n"),
		    "T:1: the action uses $2 but the pattern has 1 group" },
		{ "non-numeric $", RULE_PCRE, T("/(a)/ REJECT $x\n"),
		    "T:1: bad $ reference in '$x' (use $1..$99, ${1}, $$ for "
		    "'$')" },
		{ "$1a is a name", RULE_PCRE, T("/(a)/ REJECT $1a\n"),
		    "T:1: bad $ reference in '$1a' (use $1..$99, ${1}, $$ for "
		    "'$')" },
		{ "trailing $", RULE_REGEXP, T("/a/ REJECT costs 5$\n"),
		    "T:1: bad $ reference in '$' (use $1..$99, ${1}, $$ for "
		    "'$')" },
		{ "open ${", RULE_REGEXP, T("/(a)/ REJECT ${1\n"),
		    "T:1: bad $ reference in '${1' (use $1..$99, ${1}, $$ for "
		    "'$')" },
		{ "$0", RULE_REGEXP, T("/(a)/ REJECT $0\n"),
		    "T:1: bad $ reference in '$0' (use $1..$99, ${1}, $$ for "
		    "'$')" },
		{ "negated $1", RULE_PCRE, T("!/(a)/ REJECT $1\n"),
		    "T:1: $1 in the action of a negated pattern" },
		{ "prepend without text", RULE_REGEXP, T("/a/ PREPEND\n"),
		    "T:1: PREPEND needs text" },
		{ "replace without text", RULE_PCRE, T("/a/ replace \n"),
		    "T:1: REPLACE needs text" },
		{ "dsn class", RULE_REGEXP, T("/a/ 550 4.7.1 no\n"),
		    "T:1: enhanced status code 4.7.1 does not go with 550" },
		{ "utf refused", RULE_PCRE, T("/(*UTF)a/ OK\n"),
		    "T:1: bad pattern: using UTF is disabled by the "
		    "application (at offset 6)" },
		{ "NUL byte", RULE_REGEXP, T("/a/ OK\n/b\0/ OK\n"),
		    "T:2: NUL byte" },
		/* a logical line is reported at its first line */
		{ "continued", RULE_PCRE, T("/a/ OK\n/(b/\n\tREJECT\n"),
		    "T:2: bad pattern: missing closing parenthesis (at "
		    "offset 2)" },
		{ "crlf lines", RULE_REGEXP, T("/a/ OK\r\n\r\n/b/x\r\n"),
		    "T:3: no action after the pattern" },
		{ "if without pattern", RULE_REGEXP, T("if\n"),
		    "T:1: no pattern" },
	};
	struct err	 e;
	size_t		 i;

	(void)st;
	for (i = 0; i < NELEM(rows); i++)
		if (strcmp(load_error(rows[i].syn, rows[i].text, rows[i].len,
		    &e), rows[i].want) != 0)
			fail_msg("%s: got '%s', want '%s'", rows[i].name,
			    e.msg, rows[i].want);
}

static void
test_size_limits(void **st)
{
	struct err	 e;
	char		*big, *path;
	size_t		 n, k;

	(void)st;
	/* a logical line over 64 KiB, made of continuation lines */
	n = 70000;
	big = malloc(n + 16);
	assert_non_null(big);
	memcpy(big, "/a/ REJECT\n", 11);
	memset(big + 11, ' ', n - 11);
	memcpy(big + n, "x\n", 2);
	assert_string_equal(load_error(RULE_REGEXP, big, n + 2, &e),
	    "T:1: logical line longer than 65536 bytes");
	free(big);
	/* the file limit, checked before anything is parsed */
	n = 16UL * 1024 * 1024 + 1;
	big = malloc(n);
	assert_non_null(big);
	memset(big, '\n', n);
	assert_string_equal(load_error(RULE_PCRE, big, n, &e),
	    "T: larger than 16 MB");
	assert_string_equal(load_error(RULE_PCRE, big, n - 1, &e), "");
	free(big);
	/* at most 100000 rules */
	n = 100001;
	big = malloc(n * 7);
	assert_non_null(big);
	for (k = 0; k < n; k++)
		memcpy(big + k * 7, "/a/ OK\n", 7);
	assert_string_equal(load_error(RULE_PCRE, big, n * 7, &e),
	    "T:100001: more than 100000 rules");
	assert_string_equal(load_error(RULE_PCRE, big, (n - 1) * 7, &e), "");
	free(big);
	/* missing file, directory */
	err_clear(&e);
	assert_null(ruletable_load("/nonexistent/rules", RULE_PCRE, NULL,
	    &e));
	assert_string_equal(e.msg,
	    "/nonexistent/rules: No such file or directory");
	assert_null(ruletable_load("/tmp", RULE_PCRE, NULL, &e));
	assert_string_equal(e.msg, "/tmp: not a regular file");
	/* an error in a file names the path */
	path = unit_tmpfile("/a/ OK\n/b/ SCORE lots\n");
	assert_null(ruletable_load(path, RULE_REGEXP, NULL, &e));
	assert_non_null(strstr(e.msg, ":2: SCORE 'lots'"));
	assert_memory_equal(e.msg, path, strlen(path));
	unit_rm(path);
}

static void
test_delimiters(void **st)
{
	static const struct row rows[] = {
		{ "Subject: a/b", RA_REJECT, 1, "slash" },
		{ "Subject: x#y", RA_HOLD, 2, "" },
		{ "To: a%b", RA_WARN, 3, "" },
		{ "X-A: 1", RA_INFO, 5, "" },
		{ "X-B: 1", RA_DISCARD, 8, "" },
	};
	struct rt	 x;

	(void)st;
	rt_open(&x, RULE_REGEXP,
	    "/^Subject: a\\/b/ REJECT slash\n"
	    "!!#^Subject: x\\#y# HOLD\n"
	    "|^To: a%b| WARN\n"
	    "#^X-A:# REJECT a comment, as in Postfix\n"
	    "%^X-A:% INFO\n"
	    "if #^X-B#\n"
	    "/never/ OK\n"
	    "@: 1@ DISCARD\n"
	    "endif\n");
	rt_rows(&x, "delimiters", rows, NELEM(rows));
	assert_int_equal(ruletable_count(x.t), 6);
	rt_close(&x);
	rt_open(&x, RULE_PCRE,
	    "/^Subject: a\\/b/ REJECT slash\n"
	    "!!#^Subject: x\\#y# HOLD\n"
	    "|^To: a%b| WARN\n"
	    "#^X-A:# REJECT a comment, as in Postfix\n"
	    "%^X-A:% INFO\n"
	    "if #^X-B#\n"
	    "/never/ OK\n"
	    "\x01: 1\x01 DISCARD\n"
	    "endif\n");
	rt_rows(&x, "pcre delimiters", rows, NELEM(rows));
	rt_close(&x);
}

static void
test_continuation_crlf(void **st)
{
	static const struct row rows[] = {
		{ "Subject: cheap pills", RA_REJECT, 2,
		    "bad subject cheap pills" },
		{ "From: x", RA_WARN, 7, "first  second" },
		{ "To: y", RA_HOLD, 11, "crlf" },
		{ "Cc: z", RA_DUNNO, 12, "" },
	};
	struct rt	 x;

	(void)st;
	rt_open(&x, RULE_REGEXP,
	    "  orphan continuation: ignored with a warning\n"
	    "/^Subject: (.*)/\n"
	    "    REJECT\n"
	    "\tbad subject $1   \n"
	    "\n"
	    "# a comment between the lines of a logical line\n"
	    "/^From:/ WARN first\n"
	    "# comment\n"
	    "\n"
	    "  second\n"
	    "/^To:/ HOLD crlf\r\n"
	    "/^Cc:/ DUNNO\r\n");
	rt_rows(&x, "continuation", rows, NELEM(rows));
	assert_string_equal(ruletable_warnings(x.t),
	    "T:1: ignoring a logical line that starts with whitespace\n");
	rt_close(&x);
	/* a CRLF file loads like its LF twin */
	rt_open(&x, RULE_PCRE, seed);
	rt_close(&x);
	{
		char	 crlf[sizeof(seed) * 2];
		size_t	 i, n = 0;

		for (i = 0; seed[i] != '\0'; i++) {
			if (seed[i] == '\n')
				crlf[n++] = '\r';
			crlf[n++] = seed[i];
		}
		rt_open_len(&x, RULE_REGEXP, crlf, n);
		assert_int_equal(ruletable_count(x.t), 12);
		rt_rows(&x, "crlf", (const struct row[]){
		    { "Received: x", RA_IGNORE, 12, "" },
		    { "Subject: retire early", RA_REJECT, 2, "" } }, 2);
		rt_close(&x);
	}
}

static void
test_actions(void **st)
{
	static const struct row rows[] = {
		{ "reject", RA_REJECT, 1, "Go away" },
		{ "defer", RA_DEFER, 2, "" },
		{ "discard", RA_DISCARD, 3, "silently" },
		{ "hold", RA_HOLD, 4, "" },
		{ "warn", RA_WARN, 5, "look at this" },
		{ "info", RA_INFO, 6, "" },
		{ "ignore", RA_IGNORE, 7, "" },
		{ "dunno", RA_DUNNO, 8, "" },
		{ "ok", RA_OK, 9, "" },
		{ "prepend", RA_PREPEND, 10, "X-Flag: yes" },
		{ "replace", RA_REPLACE, 11, "X-Old: was here" },
		{ "filter", RA_UNSUPPORTED, 12, "FILTER smtp:[127.0.0.1]:10025" },
		{ "redirect", RA_UNSUPPORTED, 13, "redirect a@example.com" },
		{ "bcc", RA_UNSUPPORTED, 14, "BCC a@example.com" },
		{ "strip", RA_UNSUPPORTED, 15, "STRIP" },
		{ "pass", RA_UNSUPPORTED, 16, "PASS trusted" },
		{ "frobnicate", RA_UNSUPPORTED, 17, "FROBNICATE it" },
		{ "twohundred", RA_UNSUPPORTED, 18, "250 fine" },
		{ "rejecting", RA_UNSUPPORTED, 19, "REJECTED" },
	};
	static const char *names[] = { "none", "reject", "defer", "code",
	    "discard", "hold", "warn", "info", "ignore", "dunno", "ok",
	    "score", "prepend", "replace", "unsupported" };
	struct rt	 x;
	size_t		 i;

	(void)st;
	rt_open(&x, RULE_PCRE,
	    "/^reject$/ reject Go away\n"
	    "/^defer$/ Defer\n"
	    "/^discard$/ DISCARD silently\n"
	    "/^hold$/ hOlD\n"
	    "/^warn$/ WARN look at this\n"
	    "/^info$/ info\n"
	    "/^ignore$/ IGNORE\n"
	    "/^dunno$/ DUNNO\n"
	    "/^ok$/ OK\n"
	    "/^prepend$/ PREPEND X-Flag: yes\n"
	    "/^replace$/ REPLACE X-Old: was here\n"
	    "/^filter$/ FILTER smtp:[127.0.0.1]:10025\n"
	    "/^redirect$/ redirect a@example.com\n"
	    "/^bcc$/ BCC a@example.com\n"
	    "/^strip$/ STRIP\n"
	    "/^pass$/ PASS trusted\n"
	    "/^frobnicate$/ FROBNICATE it\n"
	    "/^twohundred$/ 250 fine\n"
	    "/^rejecting$/ REJECTED\n");
	rt_rows(&x, "actions", rows, NELEM(rows));
	assert_string_equal(ruletable_warnings(x.t),
	    "T:12: action FILTER is not supported; the rule acts as DUNNO\n"
	    "T:13: action redirect is not supported; the rule acts as "
	    "DUNNO\n"
	    "T:14: action BCC is not supported; the rule acts as DUNNO\n"
	    "T:15: action STRIP is not supported; the rule acts as DUNNO\n"
	    "T:16: action PASS is not supported; the rule acts as DUNNO\n"
	    "T:17: action FROBNICATE is not supported; the rule acts as "
	    "DUNNO\n"
	    "T:18: action 250 is not supported; the rule acts as DUNNO\n"
	    "T:19: action REJECTED is not supported; the rule acts as "
	    "DUNNO\n");
	rt_close(&x);
	for (i = 0; i < NELEM(names); i++)
		assert_string_equal(rule_action_name((enum rule_action)i),
		    names[i]);
}

static void
test_codes_and_score(void **st)
{
	static const struct {
		const char	*subj;
		enum rule_action action;
		const char	*code, *dsn, *text;
		int32_t		 score;
	} rows[] = {
		{ "a", RA_CODE, "550", "5.7.1", "Go away", 0 },
		{ "b", RA_CODE, "451", "", "try later", 0 },
		{ "c", RA_CODE, "554", "", "", 0 },
		{ "d", RA_CODE, "550", "5.7.100", "odd but valid", 0 },
		{ "e", RA_CODE, "550", "", "5.7.1x is text", 0 },
		{ "f", RA_CODE, "421", "4.4.2", "", 0 },
		{ "g", RA_REJECT, "", "", "5.7.1 stays in the text", 0 },
		{ "h", RA_SCORE, "", "", "", 250 },
		{ "i", RA_SCORE, "", "", "", -100 },
		{ "j", RA_SCORE, "", "", "spammy words", 325 },
		{ "k", RA_SCORE, "", "", "", 10000000 },
		{ "l", RA_SCORE, "", "", "", -10000000 },
		{ "m", RA_SCORE, "", "", "", 5 },
		{ "n", RA_SCORE, "", "", "", 0 },
	};
	struct rule_result	 r;
	struct rt		 x;
	size_t			 i;

	(void)st;
	rt_open(&x, RULE_REGEXP,
	    "/^a$/ 550 5.7.1 Go away\n"
	    "/^b$/ 451 try later\n"
	    "/^c$/ 554\n"
	    "/^d$/ 550 5.7.100 odd but valid\n"
	    "/^e$/ 550 5.7.1x is text\n"
	    "/^f$/ 421 4.4.2\n"
	    "/^g$/ REJECT 5.7.1 stays in the text\n"
	    "/^h$/ SCORE 2.5\n"
	    "/^i$/ score -1\n"
	    "/^j$/ SCORE +3.25 spammy words\n"
	    "/^k$/ SCORE 100000\n"
	    "/^l$/ SCORE -100000.00\n"
	    "/^m$/ SCORE 0.05\n"
	    "/^n$/ SCORE 000\n");
	for (i = 0; i < NELEM(rows); i++) {
		assert_int_equal(rt_look(&x, rows[i].subj, 1, &r), 1);
		if (r.action != rows[i].action ||
		    strcmp(r.code, rows[i].code) != 0 ||
		    strcmp(r.dsn, rows[i].dsn) != 0 ||
		    strcmp(r.text, rows[i].text) != 0 ||
		    r.score != rows[i].score || r.line != i + 1)
			fail_msg("row %s: got %s '%s' '%s' '%s' %d line %u",
			    rows[i].subj, rule_action_name(r.action), r.code,
			    r.dsn, r.text, (int)r.score, r.line);
	}
	rt_close(&x);
}

static void
test_substitution(void **st)
{
	static const struct row rows[] = {
		{ "Subject: hello world", RA_REJECT, 1,
		    "hello and world, $5 ${1}" },
		{ "From: a@example.com", RA_PREPEND, 2, "X-Sender: <a>x" },
		{ "To: bob", RA_WARN, 3, "bob[]" },
		{ "abcdefghij", RA_INFO, 4, "j-a" },
	};
	struct rule_result	 r;
	struct rt		 x;
	struct buf		 small;
	struct err		 e;
	int			 syn;

	(void)st;
	for (syn = RULE_REGEXP; syn <= RULE_PCRE; syn++) {
		rt_open(&x, (enum rule_syntax)syn,
		    "/^Subject: (hello) (world)/ REJECT $1 and $(2), $$5 $${1}\n"
		    "/^From: (.*)@(.*)/ PREPEND X-Sender: <${1}>x\n"
		    "/^To: (bob)|(alice)/ WARN $1[$2]\n"
		    "/(a)(b)(c)(d)(e)(f)(g)(h)(i)(j)/ INFO $10-$1\n");
		rt_rows(&x, syn == RULE_PCRE ? "pcre" : "regexp", rows,
		    NELEM(rows));
		rt_close(&x);
	}
	/* NUL bytes of the input do not cut the text short */
	rt_open(&x, RULE_PCRE, "/^X: (.*)$/ WARN [$1]\n");
	assert_int_equal(rt_look(&x, T("X: a\0b"), &r), 1);
	assert_string_equal(r.text, "[a?b]");
	/* a text over the buffer's maximum is cut and marked */
	buf_init(&small, 12);
	err_clear(&e);
	assert_int_equal(ruletable_match(x.t, x.s, T("X: 0123456789abcdef"),
	    &r, &small, &e), 1);
	assert_string_equal(r.text, "[01234567...");
	assert_true(strlen(r.text) <= small.max);
	/* the buffer is reset for each match */
	assert_int_equal(ruletable_match(x.t, x.s, T("X: z"), &r, &small,
	    &e), 1);
	assert_string_equal(r.text, "[z]");
	/* no text buffer: the action alone */
	assert_int_equal(ruletable_match(x.t, x.s, T("X: z"), &r, NULL, &e),
	    1);
	assert_string_equal(r.text, "");
	assert_int_equal(r.action, RA_WARN);
	buf_free(&small);
	rt_close(&x);
}

static void
test_syntax_differences(void **st)
{
	static const struct row regexp_rows[] = {
		{ "d", RA_REJECT, 1, "" },	/* \d is a literal d */
		{ "5", RA_WARN, 2, "" },
		{ "ab_9", RA_HOLD, 3, "" },	/* GNU \w */
		{ "a\nb", RA_INFO, 4, "" },	/* '.' matches a newline */
		{ "x\nend", RA_DISCARD, 5, "" },	/* m flag */
		{ "tail\n", RA_NONE, 0, "" },	/* '$' only at the end */
		{ "CaSe", RA_NONE, 0, "" },	/* i: case-sensitive */
		{ "case", RA_DUNNO, 7, "" },
		{ "aa-", RA_OK, 8, "" },	/* x: BRE interval */
		{ "hello word", RA_PREPEND, 9, "X-Word: word" },
		{ "sword", RA_NONE, 0, "" },	/* GNU \< */
	};
	static const struct row pcre_rows[] = {
		{ "d", RA_NONE, 0, "" },
		{ "5", RA_REJECT, 1, "" },
		{ "x7", RA_WARN, 2, "" },
		{ "tail\n", RA_IGNORE, 3, "" },	/* Perl's '$' */
		{ "ab_9", RA_HOLD, 4, "" },
		{ "a\nb", RA_INFO, 5, "" },	/* DOTALL by default */
		{ "c\nd", RA_NONE, 0, "" },	/* s toggles it off */
		{ "x\nend", RA_DISCARD, 7, "" },
		{ "CaSe", RA_NONE, 0, "" },
		{ "case", RA_DUNNO, 8, "" },
		{ "abc", RA_OK, 9, "" },	/* x: extended */
		{ "a\x01z", RA_WARN, 10, "" },
	};
	struct rt	 x;

	(void)st;
	rt_open(&x, RULE_REGEXP,
	    "/^\\d$/ REJECT\n"
	    "/^[[:digit:]]$/ WARN\n"
	    "/^\\w+_\\w+$/ HOLD\n"
	    "/^a.b$/ INFO\n"
	    "/^end$/m DISCARD\n"
	    "/tail$/ IGNORE\n"
	    "/^case$/i DUNNO\n"
	    "/^a\\{2\\}-$/x OK\n"
	    "/\\<(wo[a-z]+)\\>/ PREPEND X-Word: $1\n");
	rt_rows(&x, "regexp", regexp_rows, NELEM(regexp_rows));
	rt_close(&x);
	rt_open(&x, RULE_PCRE,
	    "/^\\d$/ REJECT\n"
	    "/^x[[:digit:]]$/ WARN\n"
	    "/tail$/ IGNORE\n"
	    "/^\\w+_\\w+$/ HOLD\n"
	    "/^a.b$/ INFO\n"
	    "/^c.d$/s INFO\n"
	    "/^end$/m DISCARD\n"
	    "/^case$/i DUNNO\n"
	    "/^a b c$/x OK\n"
	    "/^a\\x01z$/AEUX WARN\n");
	rt_rows(&x, "pcre", pcre_rows, NELEM(pcre_rows));
	rt_close(&x);
}

static void
test_nul_and_multiline_input(void **st)
{
	struct rule_result	 r;
	struct rt		 x;

	(void)st;
	rt_open(&x, RULE_REGEXP,
	    "/^Subject: a$/ REJECT\n"
	    "/^Subject: a.b$/ HOLD $$\n"
	    "/^\tfolded/m WARN\n");
	assert_int_equal(rt_look(&x, T("Subject: a\0b"), &r), 1);
	assert_int_equal(r.action, RA_HOLD);
	assert_string_equal(r.text, "$");
	assert_int_equal(rt_look(&x, T("Subject: a\0"), &r), 0);
	assert_int_equal(r.action, RA_NONE);
	assert_int_equal(rt_look(&x, T("Subject: x\n\tfolded"), &r), 1);
	assert_int_equal(r.action, RA_WARN);
	assert_int_equal(rt_look(&x, "", 0, &r), 0);
	assert_int_equal(rt_look(&x, NULL, 0, &r), 0);
	rt_close(&x);
	rt_open(&x, RULE_PCRE, "/a\\x00b/ REJECT\n");
	assert_int_equal(rt_look(&x, T("xa\0bx"), &r), 1);
	assert_int_equal(rt_look(&x, T("xa b"), &r), 0);
	rt_close(&x);
}

/* Catastrophic patterns hit a limit: -1 in well under a second. */
/* CPU time of the calling thread, in ms. */
static uint64_t
cpu_ms(void)
{
	struct timespec	 ts;

	assert_int_equal(clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts), 0);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void
test_limits(void **st)
{
	static const struct {
		enum rule_syntax syn;
		const char	*table;
		size_t		 n;	/* copies of fill, then tail */
		const char	*fill, *tail;
	} rows[] = {
		{ RULE_REGEXP, "/^(a+)+$/ REJECT\n", 30, "a", "!" },
		{ RULE_PCRE, "/^(a+)+$/ REJECT\n", 30, "a", "!" },
		{ RULE_REGEXP, "/(x+x+)+y/ REJECT\n", 5000, "x", "zy" },
		{ RULE_PCRE, "/(x+x+)+y/ REJECT\n", 5000, "x", "zy" },
		/* the limit of an if condition is an error too */
		{ RULE_PCRE, "if /^(a|aa)+$/\n/./ OK\nendif\n", 60, "a",
		    "b" },
		/* the match limit counts per start position: 6000 starts
		 * under the limit each meet the lookup's CPU budget */
		{ RULE_PCRE, "/(a+)+b/ REJECT\n", 6000, "aaaaaaaaaaaaaac",
		    "b" },
		{ RULE_REGEXP, "/(a+)+b/ REJECT\n", 6000, "aaaaaaaaaaaaaac",
		    "b" },
	};
	struct rule_result	 r;
	struct rt		 x;
	struct err		 e;
	char			*s;
	size_t			 i, k, fl, len;
	uint64_t		 t0, ms;
	int			 rc;

	(void)st;
	pcre_only = 1;
	for (i = 0; i < NELEM(rows); i++) {
		fl = strlen(rows[i].fill);
		len = rows[i].n * fl + strlen(rows[i].tail);
		s = malloc(len + 1);
		assert_non_null(s);
		for (k = 0; k < rows[i].n; k++)
			memcpy(s + k * fl, rows[i].fill, fl);
		memcpy(s + rows[i].n * fl, rows[i].tail,
		    strlen(rows[i].tail) + 1);
		rt_open(&x, rows[i].syn, rows[i].table);
		err_clear(&e);
		/* CPU time of this thread: a loaded machine (parallel
		 * builds, CI) stretches wall time, not the work done */
		t0 = cpu_ms();
		rc = ruletable_match(x.t, x.s, s, len, &r, &x.tb, &e);
		ms = cpu_ms() - t0;
		if (rc != -1 || strstr(e.msg, "T:1: pattern match limit "
		    "reached") != e.msg || ms >= 1000)
			fail_msg("row %zu: rc %d '%s' in %llu ms", i, rc, e.msg,
			    (unsigned long long)ms);
		assert_int_equal(r.action, RA_NONE);
		/* the scratch works on after a limit */
		assert_int_equal(rt_look(&x, "", 0, &r), 0);
		rt_close(&x);
		free(s);
	}
	/* without a 'y' PCRE2 proves there is no match at once */
	s = malloc(5001);
	assert_non_null(s);
	memset(s, 'x', 5000);
	s[5000] = '\0';
	rt_open(&x, RULE_REGEXP, "/(x+x+)+y/ REJECT\n");
	t0 = cpu_ms();
	rc = ruletable_match(x.t, x.s, s, 5000, &r, &x.tb, &e);
	assert_true(rc == 0 || rc == -1);
	assert_true(cpu_ms() - t0 < 1000);
	rt_close(&x);
	free(s);
}

static void
test_custom_limits(void **st)
{
	struct rule_limits	 l, d;
	struct ruletable	*t, *t2;
	struct rule_scratch	*s;
	struct rule_result	 r;
	struct buf		 tb;
	struct err		 e;
	char			 subj[12];

	(void)st;
	rule_limits_default(&d);
	assert_int_equal(d.match_limit, 100000);
	assert_int_equal(d.depth_limit, 10000);
	assert_int_equal(d.heap_limit, 8192);
	assert_int_equal(d.jit_stack, 512 * 1024);
	/* a low match limit stops a pattern the default lets through */
	memset(subj, 'a', 10);
	memcpy(subj + 10, "!", 2);
	l = d;
	l.match_limit = 50;
	l.no_prefilter = 1;
	err_clear(&e);
	buf_init(&tb, 64);
	t = ruletable_parse("L", "/^(a+)+$/ OK\n", 13, RULE_PCRE, &l, &e);
	assert_non_null(t);
	s = rule_scratch_new(t);
	assert_non_null(s);
	assert_int_equal(ruletable_match(t, s, subj, 11, &r, &tb, &e), -1);
	assert_string_equal(e.msg, "L:1: pattern match limit reached "
	    "(match limit)");
	rule_scratch_free(s);
	ruletable_free(t);
	t = ruletable_parse("L", "/^(a+)+$/ OK\n", 13, RULE_PCRE, NULL, &e);
	assert_non_null(t);
	s = rule_scratch_new(t);
	assert_non_null(s);
	assert_int_equal(ruletable_match(t, s, subj, 11, &r, &tb, &e), 0);
	assert_int_equal(ruletable_match(t, s, subj, 10, &r, &tb, &e), 1);
	/* a scratch of another table is refused */
	t2 = ruletable_parse("M", "/a/ OK\n", 7, RULE_PCRE, NULL, &e);
	assert_non_null(t2);
	assert_int_equal(ruletable_match(t2, s, "a", 1, &r, &tb, &e), -1);
	assert_string_equal(e.msg, "M: no scratch for this table");
	rule_scratch_free(s);
	ruletable_free(t);
	ruletable_free(t2);
	buf_free(&tb);
	ruletable_free(NULL);
	rule_scratch_free(NULL);
	assert_int_equal(ruletable_count(NULL), 0);
}

struct worker {
	const struct ruletable	*t;
	int			 id;
	int			 bad;
};

static void *
worker_main(void *arg)
{
	struct worker		*w = arg;
	struct rule_scratch	*s = rule_scratch_new(w->t);
	struct rule_result	 r;
	struct buf		 tb;
	struct err		 e;
	char			 subj[64], want[64];
	int			 i, rc;

	buf_init(&tb, 128);
	if (s == NULL) {
		w->bad++;
		return NULL;
	}
	for (i = 0; i < 2000; i++) {
		(void)snprintf(subj, sizeof(subj), "Subject: t%d-%d", w->id,
		    i);
		(void)snprintf(want, sizeof(want), "t%d-%d", w->id, i);
		rc = ruletable_match(w->t, s, subj, strlen(subj), &r, &tb,
		    &e);
		if (rc != 1 || r.action != RA_REJECT ||
		    strcmp(r.text, want) != 0)
			w->bad++;
		rc = ruletable_match(w->t, s, "From: x", 7, &r, &tb, &e);
		if (rc != 1 || r.action != RA_WARN || r.line != 3)
			w->bad++;
		rc = ruletable_match(w->t, s, "To: y", 5, &r, &tb, &e);
		if (rc != 0 || r.action != RA_NONE)
			w->bad++;
	}
	rule_scratch_free(s);
	buf_free(&tb);
	return NULL;
}

static void
test_threads(void **st)
{
	struct worker	 w[4];
	pthread_t	 tid[4];
	struct rt	 x;
	int		 i;

	(void)st;
	rt_open(&x, RULE_PCRE,
	    "/^Subject: (t\\d+-\\d+)$/ REJECT $1\n"
	    "/^Subject:/ HOLD\n"
	    "/^From:/ WARN\n");
	for (i = 0; i < 4; i++) {
		w[i].t = x.t;
		w[i].id = i;
		w[i].bad = 0;
		assert_int_equal(pthread_create(&tid[i], NULL, worker_main,
		    &w[i]), 0);
	}
	for (i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(tid[i], NULL), 0);
		assert_int_equal(w[i].bad, 0);
	}
	rt_close(&x);
}

/* rule_scratch_deadline(): lookups that each stay under the match limit
 * (short subjects take the unguarded code) still end, as an error, once
 * the message's time is up; a fresh scratch works again. */
static void
test_message_deadline(void **st)
{
	struct rule_limits	 lim;
	struct rule_result	 r;
	struct ruletable	*t;
	struct rule_scratch	*s;
	struct buf		 tb;
	struct err		 e;
	struct timespec		 t0, t1;
	char			 subj[256];
	size_t			 i, n = 0;
	int			 rc = 0;
	double			 secs;

	(void)st;
	rule_limits_default(&lim);
	lim.no_prefilter = 1;
	t = ruletable_parse("T", "/(a+)+b/ REJECT\n", 15, RULE_PCRE, &lim, &e);
	assert_non_null(t);
	for (i = 0; i + 15 < sizeof(subj) - 2; i += 15)
		memcpy(subj + i, "aaaaaaaaaaaaaac", 15);
	subj[i] = 'b';
	subj[i + 1] = '\0';
	assert_true(strlen(subj) <= 256);
	s = rule_scratch_new(t);
	assert_non_null(s);
	buf_init(&tb, 256);
	rule_scratch_deadline(s, 200);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (n < 100000 && (rc = ruletable_match(t, s, subj, strlen(subj),
	    &r, &tb, &e)) == 0)
		n++;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (double)(t1.tv_sec - t0.tv_sec) +
	    (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	assert_int_equal(rc, -1);
	assert_non_null(strstr(e.msg, "time limit"));
	assert_true(n > 0);
	assert_true(secs < 2.0);
	rule_scratch_free(s);
	/* no deadline: the same lookup answers (no match) */
	s = rule_scratch_new(t);
	assert_int_equal(ruletable_match(t, s, subj, strlen(subj), &r, &tb,
	    &e), 0);
	rule_scratch_free(s);
	buf_free(&tb);
	ruletable_free(t);
}

/* A thread's scratches: given back, taken again for the same table;
 * never handed out for another table (even one at the same address
 * after a reload); two taken at once are two. */
static void
test_scratch_cache(void **st)
{
	struct ruletable	*t, *t2;
	struct rule_scratch	*a, *b, *c;
	struct rule_result	 r;
	struct buf		 tb;
	struct err		 e;

	(void)st;
	err_clear(&e);
	buf_init(&tb, 64);
	t = ruletable_parse("A", "/x/ REJECT\n", 11, RULE_PCRE, NULL, &e);
	assert_non_null(t);
	a = rule_scratch_take(t);
	b = rule_scratch_take(t);
	assert_non_null(a);
	assert_non_null(b);
	assert_ptr_not_equal(a, b);
	rule_scratch_give(a);
	rule_scratch_give(b);
	c = rule_scratch_take(t);
	assert_true(c == a || c == b);
	assert_int_equal(ruletable_match(t, c, "x", 1, &r, &tb, &e), 1);
	rule_scratch_give(c);
	ruletable_free(t);
	/* the next table may well get the same address */
	t2 = ruletable_parse("B", "/y/ REJECT\n", 11, RULE_PCRE, NULL, &e);
	assert_non_null(t2);
	c = rule_scratch_take(t2);
	assert_non_null(c);
	assert_int_equal(ruletable_match(t2, c, "y", 1, &r, &tb, &e), 1);
	assert_int_equal(r.line, 1);
	rule_scratch_give(c);
	/* more than the cache holds: the oldest are freed (ASan: no leak) */
	for (int i = 0; i < 20; i++) {
		a = rule_scratch_take(t2);
		b = rule_scratch_take(t2);
		assert_non_null(a);
		assert_non_null(b);
		rule_scratch_give(a);
		rule_scratch_give(b);
		rule_scratch_give(rule_scratch_new(t2));
	}
	ruletable_free(t2);
	buf_free(&tb);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_seed_rules),
		cmocka_unit_test(test_negation_and_order),
		cmocka_unit_test(test_if_endif),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_size_limits),
		cmocka_unit_test(test_delimiters),
		cmocka_unit_test(test_continuation_crlf),
		cmocka_unit_test(test_actions),
		cmocka_unit_test(test_codes_and_score),
		cmocka_unit_test(test_substitution),
		cmocka_unit_test(test_syntax_differences),
		cmocka_unit_test(test_nul_and_multiline_input),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_custom_limits),
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_message_deadline),
		cmocka_unit_test(test_scratch_cache),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
