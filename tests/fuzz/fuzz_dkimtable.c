/*
 * fuzz_dkimtable.c - libFuzzer target for the OpenDKIM table parsers and
 * the '*' pattern matcher of dkimtable.c (dkimkey.h).
 * Input: the whole of it is parsed as a KeyTable and as a SigningTable;
 * split at its first newline (and each C string cut at a NUL) it is a
 * pattern and a subject for dkim_pattern_match.
 * Checks: a parse succeeds with every field non-empty, without blanks or
 * control bytes, domains and patterns lower-case, signers NULL or
 * non-empty, or fails with an error text and an empty table; a lookup
 * reports exactly the entries whose pattern matches "local@domain" or
 * "domain", in table order; "*" matches everything; a pattern without
 * '*' matches exactly the strings equal to it ignoring ASCII case; every
 * pattern matches itself; matching ignores case; a match survives a '*'
 * added at both ends.  Time is bounded by libFuzzer's -timeout.
 */
#include <stdlib.h>
#include <string.h>

#include "dkimkey.h"
#include "util.h"

#include "fuzz.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_quiet(argc, argv);
	return 0;
}

/* A table field: non-empty, no blank or control byte; lower-case. */
static void
check_field(const char *s, int lower)
{
	FUZZ_ASSERT(s != NULL);
	FUZZ_ASSERT(*s != '\0');
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		FUZZ_ASSERT(c > 0x20 && c != 0x7f);
		FUZZ_ASSERT(c != '#');
		FUZZ_ASSERT(!lower || !(c >= 'A' && c <= 'Z'));
	}
}

static void
check_keytable(const uint8_t *data, size_t size)
{
	struct dkim_keytable	 t;
	struct err		 e;
	size_t			 i;
	const char		*k;

	err_clear(&e);
	if (dkim_keytable_parse("fuzz", (const char *)data, size, &t,
	    &e) != 0) {
		FUZZ_ASSERT(t.v == NULL && t.n == 0);
		FUZZ_ASSERT(strncmp(e.msg, "fuzz:", 5) == 0 ||
		    strcmp(e.msg, "out of memory") == 0);
		return;
	}
	FUZZ_ASSERT(t.n == 0 || t.v != NULL);
	for (i = 0; i < t.n; i++) {
		check_field(t.v[i].name, 0);
		check_field(t.v[i].domain, 1);
		check_field(t.v[i].selector, 0);
		FUZZ_ASSERT(strchr(t.v[i].domain, ':') == NULL);
		FUZZ_ASSERT(strchr(t.v[i].selector, ':') == NULL);
		/* the key may hold blanks only as one-line PEM */
		k = t.v[i].key;
		FUZZ_ASSERT(k != NULL && *k != '\0');
		if (strncmp(k, "-----BEGIN", 10) != 0)
			check_field(k, 0);
		FUZZ_ASSERT(k[strlen(k) - 1] != ' ' &&
		    k[strlen(k) - 1] != '\t');
	}
	dkim_keytable_free(&t);
	FUZZ_ASSERT(t.v == NULL && t.n == 0);
}

struct walk {
	const struct dkim_signtable	*t;
	const char			*addr;	/* NULL: no local part */
	const char			*domain;
	size_t				 next;		/* first unreported */
};

/* The first entry from "from" on that should be reported; t->n if none. */
static size_t
next_match(const struct walk *w, size_t from)
{
	size_t	 i;

	for (i = from; i < w->t->n; i++)
		if ((w->addr != NULL &&
		    dkim_pattern_match(w->t->v[i].pattern, w->addr)) ||
		    dkim_pattern_match(w->t->v[i].pattern, w->domain))
			return i;
	return w->t->n;
}

static int
walk_fn(const struct dkim_st_entry *s, void *arg)
{
	struct walk	*w = arg;
	size_t		 i = next_match(w, w->next);

	FUZZ_ASSERT(i < w->t->n && s == &w->t->v[i]);
	w->next = i + 1;
	return 0;
}

static void
check_signtable(const uint8_t *data, size_t size, const char *subject)
{
	struct dkim_signtable	 t;
	struct walk		 w;
	struct err		 e;
	const char		*at;
	char			*local = NULL;
	size_t			 i;

	err_clear(&e);
	if (dkim_signtable_parse("fuzz", (const char *)data, size, &t,
	    &e) != 0) {
		FUZZ_ASSERT(t.v == NULL && t.n == 0);
		FUZZ_ASSERT(strncmp(e.msg, "fuzz:", 5) == 0 ||
		    strcmp(e.msg, "out of memory") == 0);
		return;
	}
	for (i = 0; i < t.n; i++) {
		check_field(t.v[i].pattern, 1);
		check_field(t.v[i].keyname, 0);
		FUZZ_ASSERT(strchr(t.v[i].keyname, ':') == NULL);
		if (t.v[i].signer != NULL)
			check_field(t.v[i].signer, 0);
	}
	/* the lookup agrees with dkim_pattern_match, in table order */
	memset(&w, 0, sizeof(w));
	w.t = &t;
	w.domain = subject;
	if ((at = strrchr(subject, '@')) != NULL) {
		local = strndup(subject, (size_t)(at - subject));
		w.addr = subject;
		w.domain = at + 1;
	}
	if (at == NULL || local != NULL) {
		dkim_signtable_lookup(&t, local, w.domain, walk_fn, &w);
		FUZZ_ASSERT(next_match(&w, w.next) == t.n);
	}
	free(local);
	dkim_signtable_free(&t);
	FUZZ_ASSERT(t.v == NULL && t.n == 0);
}

/* s with ASCII letters upper-cased (allocated; NULL on failure). */
static char *
upper(const char *s)
{
	char	*u = strdup(s), *p;

	if (u == NULL)
		return NULL;
	for (p = u; *p != '\0'; p++)
		if (*p >= 'a' && *p <= 'z')
			*p = (char)(*p - 'a' + 'A');
	return u;
}

static void
check_match(const char *pat, const char *subj)
{
	size_t	 pl = strlen(pat);
	char	*u, *wide;
	int	 m;

	m = dkim_pattern_match(pat, subj);
	FUZZ_ASSERT(m == 0 || m == 1);
	FUZZ_ASSERT(dkim_pattern_match("*", subj) == 1);
	FUZZ_ASSERT(dkim_pattern_match("**", subj) == 1);
	/* a '*' of the pattern can match itself as a literal byte */
	FUZZ_ASSERT(dkim_pattern_match(pat, pat) == 1);
	if (strchr(pat, '*') == NULL)
		FUZZ_ASSERT(m == str_ieq(pat, subj));
	if ((u = upper(subj)) != NULL) {
		FUZZ_ASSERT(dkim_pattern_match(pat, u) == m);
		free(u);
	}
	if ((u = upper(pat)) != NULL) {
		FUZZ_ASSERT(dkim_pattern_match(u, subj) == m);
		free(u);
	}
	if ((wide = malloc(pl + 3)) != NULL) {
		wide[0] = '*';
		memcpy(wide + 1, pat, pl);
		memcpy(wide + 1 + pl, "*", 2);
		if (m)
			FUZZ_ASSERT(dkim_pattern_match(wide, subj) == 1);
		FUZZ_ASSERT(dkim_pattern_match(wide, pat) == 1);
		free(wide);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	*in, *nl, *subj;

	check_keytable(data, size);
	in = fuzz_cstr(data, size);
	nl = strchr(in, '\n');
	subj = nl != NULL ? nl + 1 : in + strlen(in);
	if (nl != NULL)
		*nl = '\0';
	check_signtable(data, size, subj);
	check_match(in, subj);
	free(in);
	return 0;
}
