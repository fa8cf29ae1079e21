/*
 * test_prefilter.c - the rule tables' prefilter (ruletable_prefilter.c):
 * when built with Hyperscan, a table's patterns are in it (those it
 * cannot take are left out) and a line that matches no rule costs no
 * PCRE2 call; and, with or without it, every lookup gives exactly the
 * result of the same table without prefilter (rc, action, rule line,
 * text): the seed tables and a table of the constructs where Hyperscan
 * and PCRE2 could part (back references, lookarounds, anchors, \b,
 * option flags, NUL and 8-bit bytes, newlines in folded headers),
 * against crafted subjects and thousands of random ones; catastrophic
 * patterns: what the prefilter rules out costs nothing, what it lets
 * through meets PCRE2's limits.
 */
#include "ruletable.h"
#include "unit.h"
#include "util.h"

/* Both syntaxes' constructs; every rule's text names its line. */
static const char pcre_table[] =
    "/^Subject:.*viagra/ REJECT r1\n"
    "/\\bfree\\b/ SCORE 1.5 r2\n"
    "/(a|b)\\1x/ REJECT r3 $1\n"
    "/(?<=foo)bar/ WARN r4\n"
    "/foo(?=baz)/ WARN r5\n"
    "/^(?:(?!abc).)*zz$/ WARN r6\n"
    "/^$/m WARN r7\n"
    "/q$/ WARN r8\n"
    "/w\\Z/ WARN r9\n"
    "/k\\z/ WARN r10\n"
    "/\\Ayy/ WARN r11\n"
    "/x{2,5}y/ WARN r12\n"
    "/[[:alpha:]]+\\d/ INFO r13\n"
    "/\\s{3}/ INFO r14\n"
    "/caf\\xe9/ INFO r15\n"
    "/\\x00z/ INFO r16\n"
    "/a.b/ INFO r17\n"
    "/c.d/s INFO r18\n"
    "/E.F/i INFO r19\n"
    "/ g h /x INFO r20\n"
    "/(?i)MiXeD/ INFO r21\n"
    "/^to:/m INFO r22\n"
    "/\\btest\\B/ INFO r23\n"
    "/(?>u+)v/ INFO r24\n"
    "/m++n/ INFO r25\n"
    "/(?C1)cal/ INFO r26\n"
    "/p\\Kr/ INFO r27\n"
    "/s(?#note)t/ INFO r28\n"
    "/\\R\\R/ INFO r29\n"
    "/\\h+@/ INFO r30\n"
    "/(?|(o)|(i))\\1/ INFO r31\n"
    "/\\Qa.b\\E!/ INFO r32\n"
    "/j+?l/U INFO r33\n"
    "/ha/A INFO r34\n"
    "/he$/E INFO r35\n"
    "/\\w+@\\w+\\.\\w+/ DISCARD r36\n"
    "/=\\?utf-8\\?b\\?/ HOLD r37\n"
    "/^TV[nopqr]....[AB]..A.A/ REJECT r38\n"
    "!/o/ INFO r39\n"
    "if /^X-/\n"
    "/^X-Mailer:.*(bulk|mass)/ REJECT r41\n"
    "if !/keep/\n"
    "/^X-.*y/ WARN r43\n"
    "endif\n"
    "endif\n"
    "/(*COMMIT)zz/ INFO r46\n"
    "/z*/ DUNNO r47\n";

static const char regexp_table[] =
    "/^Subject: .*(viagra|cialis)/ REJECT e1\n"
    "/\\<word\\>/ WARN e2\n"
    "/\\bfoo/ WARN e3\n"
    "/a{2}b/ WARN e4\n"
    "/[[:digit:]]+x/ WARN e5\n"
    "/(ab)\\1/ WARN e6 $1\n"
    "/a|b$/ WARN e7\n"
    "/^From:.*@(.*)$/!/@example\\.org/ WARN e8 $1\n"
    "/\\`q/ INFO e9\n"
    "/w\\'/ INFO e10\n"
    "/x\\Sy/ INFO e11\n"
    "/./ DUNNO e12\n";

/* Fragments the random subjects are made of (NUL bytes included). */
struct frag {
	const char	*s;
	size_t		 len;
};
#define F(s)	{ s, sizeof(s) - 1 }

static const struct frag frags[] = {
	F("Subject: "), F("viagra"), F("free"), F(" free "), F("afree"),
	F("abax"), F("bbx"), F("foo"), F("bar"), F("baz"), F("abc"), F("zz"),
	F("\n"), F("\r\n"), F("q"), F("w"), F("k"), F("yy"), F("xxxy"),
	F("abc1"), F("   "), F("caf\xe9"), F("\0z"), F("a\nb"), F("a.b"),
	F("c\nd"), F("e\nf"), F("E\nF"), F(" g h "), F("gh"), F("mixed"),
	F("MIXED"), F("to:"), F("To:"), F("test"), F("tests"), F("uuuv"),
	F("mmmn"), F("cal"), F("pr"), F("st"), F("@"), F("\t@"), F("oo"),
	F("ii"), F("a.b!"), F("jjl"), F("ha"), F("he"), F("he\n"),
	F("me@host.example"), F("=?UTF-8?B?"), F("TVqQAAMAAAAEAAA"),
	F("X-Mailer: bulk"), F("X-Other: y"), F("keep"), F("word"),
	F("swordfish"), F("aab"), F("123x"), F("abab"),
	F("From: a@b.example"), F("@example.org"), F("\xff"), F("\x80"),
	F("\xc3\xa9"), F("Z"), F(""), F("("), F("\\"),
};

#define NFRAG	(sizeof(frags) / sizeof(frags[0]))
#define NRAND	4000
#define T_NOTHING	"nothing here at all", 19

struct pair {
	struct ruletable	*t, *u;		/* with, without prefilter */
	struct rule_scratch	*s, *v;
	struct buf		 tb, ub;
};

static void
pair_open(struct pair *p, const char *text, size_t len,
    enum rule_syntax syn)
{
	struct rule_limits	 lim;
	struct err		 e;

	err_clear(&e);
	rule_limits_default(&lim);
	lim.batch = 1;		/* one lookup or a batch: both compared */
	p->t = ruletable_parse("P", text, len, syn, &lim, &e);
	if (p->t == NULL)
		fail_msg("load: %s", e.msg);
	lim.no_prefilter = 1;
	lim.batch = 0;
	p->u = ruletable_parse("P", text, len, syn, &lim, &e);
	if (p->u == NULL)
		fail_msg("load: %s", e.msg);
	assert_int_equal(ruletable_prefiltered(p->u), 0);
	p->s = rule_scratch_new(p->t);
	p->v = rule_scratch_new(p->u);
	assert_non_null(p->s);
	assert_non_null(p->v);
	buf_init(&p->tb, 1024);
	buf_init(&p->ub, 1024);
}

static void
pair_close(struct pair *p)
{
	rule_scratch_free(p->s);
	rule_scratch_free(p->v);
	ruletable_free(p->t);
	ruletable_free(p->u);
	buf_free(&p->tb);
	buf_free(&p->ub);
}

/* The same lookup both ways: the same answer.  Returns the rc. */
static int
same(struct pair *p, const char *subj, size_t len)
{
	struct rule_result	 r, q;
	struct err		 e, f;
	int			 a, b;

	err_clear(&e);
	err_clear(&f);
	a = ruletable_match(p->t, p->s, subj, len, &r, &p->tb, &e);
	b = ruletable_match(p->u, p->v, subj, len, &q, &p->ub, &f);
	if (a != b || r.action != q.action || r.line != q.line ||
	    strcmp(r.text, q.text) != 0 || r.score != q.score ||
	    strcmp(r.code, q.code) != 0)
		fail_msg("'%.*s' (%zu bytes): prefiltered %d %s line %u '%s', "
		    "PCRE2 alone %d %s line %u '%s' (%s)", (int)len, subj, len,
		    a, rule_action_name(r.action), r.line, r.text, b,
		    rule_action_name(q.action), q.line, q.text, f.msg);
	assert_int_not_equal(a, -1);
	return a;
}

/* Crafted subjects, then random concatenations of fragments; the
 * lookups that matched a rule. */
static unsigned
compare(struct pair *p, unsigned seed)
{
	char		 subj[512];
	size_t		 len, i, k, n;
	unsigned	 x = seed, hits = 0, j;

	for (i = 0; i < NFRAG; i++)
		hits += same(p, frags[i].s, frags[i].len) == 1;
	for (j = 0; j < NRAND; j++) {
		x = x * 1103515245u + 12345u;
		n = 1 + (x >> 16) % 8;
		for (k = 0, len = 0; k < n; k++) {
			x = x * 1103515245u + 12345u;
			i = (x >> 16) % NFRAG;
			memcpy(subj + len, frags[i].s, frags[i].len);
			len += frags[i].len;	/* < 8 * 20 bytes in all */
		}
		hits += same(p, subj, len) == 1;
	}
#ifdef HAVE_HYPERSCAN
	assert_true(ruletable_prefiltered(p->t) > 0);
#endif
	return hits;
}

/* A batch's matches as "i action line text" lines. */
struct got {
	struct buf	 b;
	size_t		 last;		/* the last subject reported + 1 */
	unsigned	 stop_at;	/* fn stops at this match (1-based) */
	unsigned	 n;
};

static int
on_match(void *arg, size_t i, const char *s, size_t len,
    const struct rule_result *r)
{
	struct got	*g = arg;

	(void)s;
	(void)len;
	assert_true(i + 1 > g->last);		/* in order, once each */
	g->last = i + 1;
	assert_int_equal(buf_printf(&g->b, "%zu %s %u %s %d\n", i,
	    rule_action_name(r->action), r->line, r->text, r->score), RC_OK);
	return ++g->n == g->stop_at;
}

/*
 * The batch b through the table with its lines prefilter, and each of
 * its subjects through the same table without prefilter, one at a
 * time: the same matches.  stop: fn stops the batch at that match (0:
 * never).  Returns the number of matches.
 */
static unsigned
same_batch(struct pair *p, const struct rule_batch *b, unsigned stop)
{
	struct got		 g;
	struct buf		 want;
	struct rule_result	 q;
	struct err		 e;
	size_t			 i, end;
	unsigned		 n = 0;
	int			 rc, m;

	memset(&g, 0, sizeof(g));
	buf_init(&g.b, 64 << 20);
	buf_init(&want, 64 << 20);
	g.stop_at = stop;
	err_clear(&e);
	rc = ruletable_match_batch(p->t, p->s, b, &p->tb, on_match, &g, &e);
	for (i = 0; i < b->n; i++) {
		end = (i + 1 < b->n ? b->off[i + 1] : b->text.len) - 1;
		m = ruletable_match(p->u, p->v, b->text.data + b->off[i],
		    end - b->off[i], &q, &p->ub, &e);
		assert_int_not_equal(m, -1);
		if (m == 0)
			continue;
		assert_int_equal(buf_printf(&want, "%zu %s %u %s %d\n", i,
		    rule_action_name(q.action), q.line, q.text, q.score),
		    RC_OK);
		if (++n == stop)
			break;
	}
	for (i = 0; i < g.b.len && i < want.len && g.b.data[i] ==
	    want.data[i]; i++)
		;
	while (i > 0 && want.data[i - 1] != '\n')
		i--;			/* the first line that differs */
	if (rc != (n == stop && stop != 0 ? 1 : 0) || g.b.len != want.len ||
	    i < want.len)
		fail_msg("batch of %zu: rc %d, matches from the first that "
		    "differs:\n%.200s\nwanted:\n%.200s", b->n, rc,
		    g.b.data + i, want.data + i);
	buf_free(&g.b);
	buf_free(&want);
	return n;
}

/* Random batches of random subjects, the crafted ones among them. */
static void
compare_batches(struct pair *p, unsigned seed)
{
	struct rule_batch	 b;
	char			 subj[512];
	size_t			 len, i, k, n, nsub;
	unsigned		 x = seed, j, hits;

	rule_batch_init(&b, 1 << 20);
	for (i = 0; i < NFRAG; i++)
		assert_int_equal(rule_batch_add(&b, frags[i].s,
		    frags[i].len), RC_OK);
	hits = same_batch(p, &b, 0);
	assert_int_equal(same_batch(p, &b, 1), hits > 0);
	if (hits > 2)
		assert_int_equal(same_batch(p, &b, hits / 2), hits / 2);
	for (j = 0; j < 40; j++) {
		rule_batch_reset(&b);
		x = x * 1103515245u + 12345u;
		nsub = 1 + (x >> 16) % 200;
		while (nsub-- > 0) {
			x = x * 1103515245u + 12345u;
			n = (x >> 16) % 8;
			for (k = 0, len = 0; k < n; k++) {
				x = x * 1103515245u + 12345u;
				i = (x >> 16) % NFRAG;
				memcpy(subj + len, frags[i].s, frags[i].len);
				len += frags[i].len;
			}
			assert_int_equal(rule_batch_add(&b, subj, len), RC_OK);
		}
		(void)same_batch(p, &b, 0);
	}
	rule_batch_free(&b);
}

/*
 * Batches: the same matches as the lookups one at a time, for the
 * tables above, the seeds, and the constructs that mean something else
 * in a block of lines (left out of its database).
 */
static void
test_batch_same(void **st)
{
	struct pair	 p;
	struct buf	 b;
	struct err	 e;
	static const char *const seeds[] = {
		"tests/data/rules/header_checks.seed",
		"tests/data/rules/body_checks.seed",
	};
	static const char	 ends[] =
	    "/\\Ayy/ WARN a1\n"
	    "/k\\z/ WARN a2\n"
	    "/w\\Z/ WARN a3\n"
	    "/\\Gfoo/ WARN a4\n"
	    "/(?-m)^to:/m WARN a5\n"
	    "/(?^)^bar/ WARN a6\n"
	    "/(?<!\\s)foo/ WARN a7\n"
	    "/baz(?!\\s)/ WARN a8\n"
	    "/(?<!\\n)abc/ WARN a9\n"
	    "/q(?!.)/s WARN a10\n"
	    "/^$/ WARN a11\n"
	    "/^(?:(?!zz).)*$/ INFO a12\n"
	    "/(?<=\\s)free/ INFO a13\n"
	    "/\\bfoo\\b/ INFO a14\n"
	    "/\\Btest/ INFO a15\n"
	    "/[^x]{3}$/ INFO a16\n"
	    "/he$/E INFO a17\n"
	    "/ha/A INFO a18\n";

	(void)st;
	pair_open(&p, pcre_table, sizeof(pcre_table) - 1, RULE_PCRE);
	compare_batches(&p, 11);
	pair_close(&p);
	pair_open(&p, regexp_table, sizeof(regexp_table) - 1, RULE_REGEXP);
	compare_batches(&p, 12);
	pair_close(&p);
	pair_open(&p, ends, sizeof(ends) - 1, RULE_PCRE);
	compare_batches(&p, 13);
	pair_close(&p);
	for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
		buf_init(&b, 1 << 20);
		err_clear(&e);
		if (file_read(seeds[i], &b, &e) != 0)
			fail_msg("%s", e.msg);
		pair_open(&p, buf_str(&b), b.len, RULE_PCRE);
		compare_batches(&p, 14 + (unsigned)i);
		pair_close(&p);
		buf_free(&b);
	}
}

/*
 * Batches larger than one scan (more lines than a scan's hits hold,
 * more text than it takes), a pattern whose prefilter hits every byte
 * (the scan gives up: lines one at a time), and what a batch costs: a
 * line-safe table makes no PCRE2 call on lines nothing can match, a
 * pattern left out of the lines database one a line.
 */
static void
test_batch_sizes(void **st)
{
	struct pair		 p;
	struct rule_batch	 b;
	char			 line[3000];
	size_t			 i;
	unsigned long		 c0, s0;
	static const char	 safe[] =
	    "/^TVqQAAMAAAAEAAAA/ REJECT exe\n"
	    "/viagra$/ REJECT spam\n";
	static const char	 unsafe[] =
	    "/^TVqQAAMAAAAEAAAA/ REJECT exe\n"
	    "/\\Aviagra/ REJECT spam\n";
	static const char	 every[] =
	    "/(?<=#)[a-z]/ WARN w\n"
	    "/viagra$/ REJECT spam\n";

	(void)st;
	(void)c0;		/* without Hyperscan: only the results */
	(void)s0;
	rule_batch_init(&b, 8 << 20);
	pair_open(&p, safe, sizeof(safe) - 1, RULE_PCRE);
	for (i = 0; i < 70000; i++) {
		(void)snprintf(line, sizeof(line), "%s%zu%s", i % 9999 == 7 ?
		    "TVqQAAMAAAAEAAAA" : "line ", i, i % 7777 == 3 ?
		    " viagra" : "");
		assert_int_equal(rule_batch_add(&b, line, strlen(line)),
		    RC_OK);
	}
	c0 = rule_scratch_pcre_calls(p.s);
	s0 = rule_scratch_scans(p.s);
	assert_int_equal(same_batch(&p, &b, 0), 7 + 10);
#ifdef HAVE_HYPERSCAN
	assert_int_equal(rule_scratch_pcre_calls(p.s) - c0, 7 + 10);
	/* 32768 lines a scan with 2 hit words a line */
	assert_int_equal(rule_scratch_scans(p.s) - s0, 3);
#endif
	rule_batch_reset(&b);
	memset(line, 'x', sizeof(line));
	for (i = 0; i < 1500; i++) {	/* 3 MB: several scans */
		memcpy(line + 2000, i % 100 == 5 ? "viagra" : "xxxxxx", 6);
		assert_int_equal(rule_batch_add(&b, line, 2006), RC_OK);
	}
	s0 = rule_scratch_scans(p.s);
	assert_int_equal(same_batch(&p, &b, 0), 15);
#ifdef HAVE_HYPERSCAN
	assert_int_equal(rule_scratch_scans(p.s) - s0, 3);	/* 1 MB each */
#endif
	pair_close(&p);

	rule_batch_reset(&b);
	for (i = 0; i < 500; i++) {
		(void)snprintf(line, sizeof(line), "line %zu nothing", i);
		assert_int_equal(rule_batch_add(&b, line, strlen(line)),
		    RC_OK);
	}
	pair_open(&p, unsafe, sizeof(unsafe) - 1, RULE_PCRE);
	c0 = rule_scratch_pcre_calls(p.s);
	assert_int_equal(same_batch(&p, &b, 0), 0);
#ifdef HAVE_HYPERSCAN
	assert_int_equal(rule_scratch_pcre_calls(p.s) - c0, 500);
#endif
	pair_close(&p);

	rule_batch_reset(&b);
	for (i = 0; i < 300; i++) {	/* 200 hits a line, at least */
		memset(line, 'a', 200);
		(void)snprintf(line + 200, sizeof(line) - 200, " %s",
		    i % 50 == 1 ? "#x viagra" : "");
		assert_int_equal(rule_batch_add(&b, line, strlen(line)),
		    RC_OK);
	}
	pair_open(&p, every, sizeof(every) - 1, RULE_PCRE);
	s0 = rule_scratch_scans(p.s);
	assert_int_equal(same_batch(&p, &b, 0), 6);
#ifdef HAVE_HYPERSCAN
	assert_int_equal(rule_scratch_scans(p.s) - s0, 1 + 300);
#endif
	pair_close(&p);

	/* what does not fit is refused, the batch unchanged */
	rule_batch_free(&b);
	rule_batch_init(&b, 10);
	assert_int_equal(rule_batch_add(&b, "12345678", 8), RC_OK);
	assert_int_equal(rule_batch_add(&b, "1", 1), RC_INVAL);
	assert_int_equal(b.n, 1);
	assert_int_equal(b.text.len, 9);
	rule_batch_free(&b);
}

static void
test_same_results(void **st)
{
	struct pair	 p;
	struct buf	 b;
	struct err	 e;
	static const char *const seeds[] = {
		"tests/data/rules/header_checks.seed",
		"tests/data/rules/body_checks.seed",
	};
	size_t		 i;

	(void)st;
	/* the subjects reach the rules, not only the catch-alls */
	pair_open(&p, pcre_table, sizeof(pcre_table) - 1, RULE_PCRE);
	assert_true(compare(&p, 1) > NRAND / 4);
	pair_close(&p);
	pair_open(&p, regexp_table, sizeof(regexp_table) - 1, RULE_REGEXP);
	assert_true(compare(&p, 2) > NRAND / 4);
	pair_close(&p);
	for (i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
		buf_init(&b, 1 << 20);
		err_clear(&e);
		if (file_read(seeds[i], &b, &e) != 0)
			fail_msg("%s", e.msg);
		pair_open(&p, buf_str(&b), b.len, RULE_REGEXP);
		(void)compare(&p, 3 + (unsigned)i);
		pair_close(&p);
		pair_open(&p, buf_str(&b), b.len, RULE_PCRE);
		(void)compare(&p, 5 + (unsigned)i);
		pair_close(&p);
		buf_free(&b);
	}
}

/* With Hyperscan: which patterns are in, and the PCRE2 calls saved. */
static void
test_active(void **st)
{
	struct pair		 p;
	struct rule_result	 r;
	struct err		 e;
	unsigned long		 c0, c1;
	static const char	 five[] =
	    "/^Subject:.*viagra/ REJECT\n"
	    "/(a|b)\\1x/ REJECT\n"
	    "/(?<=foo)bar/ WARN\n"
	    "/(?C1)cal/ WARN\n"
	    "/j+?l/U WARN\n";

	(void)st;
#ifndef HAVE_HYPERSCAN
	skip();
#endif
	pair_open(&p, five, sizeof(five) - 1, RULE_PCRE);
	/* the callout and the ungreedy pattern stay out */
	assert_int_equal(ruletable_prefiltered(p.t), 3);
	err_clear(&e);
	c0 = rule_scratch_pcre_calls(p.s);
	assert_int_equal(ruletable_match(p.t, p.s, T_NOTHING, &r, &p.tb,
	    &e), 0);
	c1 = rule_scratch_pcre_calls(p.s);
	assert_int_equal(c1 - c0, 2);		/* the two left out */
	assert_int_equal(ruletable_match(p.u, p.v, T_NOTHING, &r, &p.ub,
	    &e), 0);
	assert_int_equal(rule_scratch_pcre_calls(p.v), 5);
	/* a hit is still decided by PCRE2 (back reference: aax, not abx) */
	assert_int_equal(same(&p, "abx", 3), 0);
	assert_int_equal(same(&p, "aax", 3), 1);
	assert_int_equal(same(&p, "Subject: cheap viagra", 21), 1);
	pair_close(&p);
}

/*
 * Catastrophic patterns: a subject the prefilter rules out costs no
 * PCRE2 call (the answer "no match" is exact, not a limit skipped); one
 * it lets through (a lookaround it widens) meets PCRE2's limit, an
 * error as without it.
 */
static void
test_catastrophic(void **st)
{
	struct pair		 p;
	struct rule_result	 r;
	struct err		 e;
	char			 subj[41];
	static const char	 t1[] = "/^(a+)+$/ REJECT\n";
	static const char	 t2[] = "/^(a+)+(?<=b)$/ REJECT\n";

	(void)st;
#ifndef HAVE_HYPERSCAN
	skip();
#endif
	memset(subj, 'a', 40);
	subj[40] = '!';
	pair_open(&p, t1, sizeof(t1) - 1, RULE_PCRE);
	err_clear(&e);
	assert_int_equal(ruletable_match(p.t, p.s, subj, 41, &r, &p.tb, &e),
	    0);
	assert_int_equal(rule_scratch_pcre_calls(p.s), 0);
	assert_int_equal(ruletable_match(p.u, p.v, subj, 41, &r, &p.ub, &e),
	    -1);
	assert_non_null(strstr(e.msg, "limit"));
	pair_close(&p);
	pair_open(&p, t2, sizeof(t2) - 1, RULE_PCRE);
	err_clear(&e);
	assert_int_equal(ruletable_match(p.t, p.s, subj, 40, &r, &p.tb, &e),
	    -1);
	assert_non_null(strstr(e.msg, "limit"));
	assert_int_equal(rule_scratch_pcre_calls(p.s), 1);
	pair_close(&p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_same_results),
		cmocka_unit_test(test_active),
		cmocka_unit_test(test_batch_same),
		cmocka_unit_test(test_batch_sizes),
		cmocka_unit_test(test_catastrophic),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
