/*
 * fuzz_ruletable.c - libFuzzer target for the Postfix regexp:/pcre:
 * tables of ruletable.c (ruletable.h).  Input: table text up to a line
 * "----", then subjects one per line (NUL bytes included).  The table is
 * loaded in both syntaxes, under small limits so an iteration stays
 * fast.  Checks: a load fails with "fuzz..." in the error, or succeeds
 * with warnings that are whole "fuzz:" lines; a lookup returns -1 with
 * "fuzz:" in the error, 0 with RA_NONE, or 1 with an action in the enum,
 * a line number, code and dsn only for 4NN/5NN (a code of 3 digits
 * starting 4 or 5), a score only for SCORE and within +-100000.00, and a
 * text that is the text buffer's NUL-terminated content within its
 * maximum; the same lookup in the same table loaded without the
 * prefilter (PCRE2 alone) gives the same result whenever it gives one;
 * and the subjects looked up as one batch (ruletable_match_batch(), one
 * prefilter scan of them all) give the same matches as PCRE2 alone up to
 * the first lookup that fails there.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ruletable.h"

#include "fuzz.h"

#define MAX_SUBJECTS	16
#define TEXT_MAX	64

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_quiet(argc, argv);
	return 0;
}

static void
check_warnings(const char *w)
{
	const char	*nl;

	while (*w != '\0') {
		FUZZ_ASSERT(strncmp(w, "fuzz:", 5) == 0 ||
		    strncmp(w, "...more warnings", 16) == 0);
		nl = strchr(w, '\n');
		FUZZ_ASSERT(nl != NULL);
		w = nl + 1;
	}
}

static void
check_result(int rc, const struct rule_result *r, const struct buf *tb,
    const struct err *e)
{
	size_t	 i;

	FUZZ_ASSERT(rc >= -1 && rc <= 1);
	if (rc == -1) {
		FUZZ_ASSERT(strncmp(e->msg, "fuzz:", 5) == 0);
		FUZZ_ASSERT(r->action == RA_NONE);
		return;
	}
	if (rc == 0) {
		FUZZ_ASSERT(r->action == RA_NONE && r->line == 0);
		FUZZ_ASSERT(strcmp(r->text, "") == 0);
		return;
	}
	FUZZ_ASSERT(r->action > RA_NONE && r->action <= RA_UNSUPPORTED);
	FUZZ_ASSERT(r->line >= 1);
	FUZZ_ASSERT(r->text == buf_str(tb));
	FUZZ_ASSERT(strlen(r->text) == tb->len && tb->len <= tb->max);
	if (r->action == RA_CODE) {
		FUZZ_ASSERT(r->code[0] == '4' || r->code[0] == '5');
		for (i = 0; i < 3; i++)
			FUZZ_ASSERT(r->code[i] >= '0' && r->code[i] <= '9');
		FUZZ_ASSERT(r->code[3] == '\0');
		FUZZ_ASSERT(r->dsn[0] == '\0' || r->dsn[0] == r->code[0]);
		FUZZ_ASSERT(memchr(r->dsn, '\0', sizeof(r->dsn)) != NULL);
	} else
		FUZZ_ASSERT(r->code[0] == '\0' && r->dsn[0] == '\0');
	if (r->action == RA_SCORE)
		FUZZ_ASSERT(r->score >= -10000000 && r->score <= 10000000);
	else
		FUZZ_ASSERT(r->score == 0);
}

/* A lookup's result, kept to compare with the batch's. */
struct kept {
	int		 rc;		/* -1, 0, 1; 2: not reported */
	enum rule_action action;
	unsigned	 line;
	int32_t		 score;
	char		 text[TEXT_MAX + 1];
};

static void
keep(struct kept *k, int rc, const struct rule_result *r)
{
	k->rc = rc;
	k->action = r->action;
	k->line = r->line;
	k->score = r->score;
	(void)snprintf(k->text, sizeof(k->text), "%s", r->text);
}

static int
on_batch(void *arg, size_t i, const char *s, size_t len,
    const struct rule_result *r)
{
	struct kept	*got = arg;

	(void)s;
	(void)len;
	FUZZ_ASSERT(i < MAX_SUBJECTS && got[i].rc == 2);
	FUZZ_ASSERT(r->action > RA_NONE && r->line >= 1);
	keep(&got[i], 1, r);
	return 0;
}

/*
 * The subjects as one batch through the table with its lines prefilter:
 * the matches of PCRE2 alone (want), subject by subject, up to the
 * first lookup PCRE2 alone failed (the batch makes only calls it makes,
 * so it cannot fail before; after, it may skip that pattern or fail).
 */
static void
check_batch(const struct ruletable *t, struct rule_scratch *s,
    const struct rule_batch *b, const struct kept *want, struct buf *tb)
{
	struct kept	 got[MAX_SUBJECTS];
	struct err	 e;
	size_t		 i;
	int		 rc, failed = 0;

	for (i = 0; i < MAX_SUBJECTS; i++)
		got[i].rc = 2;
	err_clear(&e);
	rc = ruletable_match_batch(t, s, b, tb, on_batch, got, &e);
	FUZZ_ASSERT(rc == 0 || rc == -1);
	if (rc == -1)
		FUZZ_ASSERT(strncmp(e.msg, "fuzz:", 5) == 0);
	for (i = 0; i < b->n && !failed; i++) {
		if (want[i].rc < 0) {
			failed = 1;
			continue;
		}
		FUZZ_ASSERT((got[i].rc == 1) == (want[i].rc == 1));
		if (want[i].rc == 1) {
			FUZZ_ASSERT(got[i].action == want[i].action &&
			    got[i].line == want[i].line &&
			    got[i].score == want[i].score &&
			    strcmp(got[i].text, want[i].text) == 0);
		}
	}
	FUZZ_ASSERT(rc == 0 || failed);
}

static void
run(enum rule_syntax syn, const char *table, size_t tlen,
    const char *subj, size_t slen)
{
	struct rule_limits	 lim;
	struct ruletable	*t, *t2 = NULL;
	struct rule_scratch	*s1, *s2;
	struct rule_result	 r1, r2;
	struct buf		 tb1, tb2;
	struct rule_batch	 b;
	struct kept		 want[MAX_SUBJECTS];
	struct err		 e;
	const char		*p, *end, *nl;
	size_t			 n = 0;
	int			 rc1, rc2;

	rule_limits_default(&lim);
	lim.batch = 1;
	lim.match_limit = 5000;
	lim.depth_limit = 500;
	lim.heap_limit = 256;
	lim.jit_stack = 64 * 1024;
	err_clear(&e);
	t = ruletable_parse("fuzz", table, tlen, syn, &lim, &e);
	if (t == NULL) {
		FUZZ_ASSERT(strncmp(e.msg, "fuzz", 4) == 0);
		return;
	}
	FUZZ_ASSERT(strcmp(ruletable_name(t), "fuzz") == 0);
	FUZZ_ASSERT(ruletable_count(t) <= tlen);
	check_warnings(ruletable_warnings(t));
	lim.no_prefilter = 1;
	if ((t2 = ruletable_parse("fuzz", table, tlen, syn, &lim, &e)) ==
	    NULL) {
		/* only memory can make the same text fail now */
		FUZZ_ASSERT(strstr(e.msg, "memory") != NULL);
		ruletable_free(t);
		return;
	}
	FUZZ_ASSERT(ruletable_prefiltered(t2) == 0);
	FUZZ_ASSERT(ruletable_prefiltered(t) <= 2 * ruletable_count(t) +
	    tlen);
	s1 = rule_scratch_new(t);
	s2 = rule_scratch_new(t2);
	buf_init(&tb1, TEXT_MAX);
	buf_init(&tb2, TEXT_MAX);
	rule_batch_init(&b, slen + MAX_SUBJECTS + 1);
	if (s1 == NULL || s2 == NULL)
		goto out;
	for (p = subj, end = subj + slen; p <= end && n < MAX_SUBJECTS;
	    p = nl + 1, n++) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL)
			nl = end;
		err_clear(&e);
		rc1 = ruletable_match(t, s1, p, (size_t)(nl - p), &r1, &tb1,
		    &e);
		check_result(rc1, &r1, &tb1, &e);
		err_clear(&e);
		rc2 = ruletable_match(t2, s2, p, (size_t)(nl - p), &r2, &tb2,
		    &e);
		check_result(rc2, &r2, &tb2, &e);
		keep(&want[n], rc2, &r2);
		FUZZ_ASSERT(rule_batch_add(&b, p, (size_t)(nl - p)) != RC_INVAL);
		/* the prefilter only skips PCRE2 calls that cannot match:
		 * where PCRE2 alone answers, it answers the same */
		FUZZ_ASSERT(rc2 < 0 || rc1 >= 0);
		if (rc1 >= 0 && rc2 >= 0) {
			FUZZ_ASSERT(rc1 == rc2 && r1.action == r2.action);
			FUZZ_ASSERT(r1.line == r2.line && r1.score == r2.score);
			FUZZ_ASSERT(strcmp(r1.text, r2.text) == 0);
		}
	}
	if (b.n == n)			/* not short of memory */
		check_batch(t, s1, &b, want, &tb1);
out:
	rule_batch_free(&b);
	buf_free(&tb1);
	buf_free(&tb2);
	rule_scratch_free(s1);
	rule_scratch_free(s2);
	ruletable_free(t);
	ruletable_free(t2);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char	*in = (const char *)data, *sep, *subj = "";
	size_t		 tlen = size, slen = 0;

	/* the table ends at a line "----" */
	if (size >= 5 && memcmp(in, "----\n", 5) == 0) {
		tlen = 0;
		subj = in + 5;
		slen = size - 5;
	} else if ((sep = memmem(in, size, "\n----\n", 6)) != NULL) {
		tlen = (size_t)(sep - in) + 1;
		subj = sep + 6;
		slen = size - tlen - 5;
	}
	run(RULE_REGEXP, in, tlen, subj, slen);
	run(RULE_PCRE, in, tlen, subj, slen);
	return 0;
}
