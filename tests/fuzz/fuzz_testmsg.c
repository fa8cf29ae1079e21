/*
 * fuzz_testmsg.c - libFuzzer target for testmsg_parse() (testmsg.h), which
 * splits a message file into header fields and a CRLF body for
 * `portero-ctl test`.  Checks: no crash; memory use linear in the input
 * (an arena of 64 bytes per input byte, plus 64 KiB, always suffices:
 * a three-byte field "a:\n" costs 64, the body twice its size); field
 * names are non-empty printable ASCII without ':'; values have no
 * leading blank; the header list is as long as nhdrs says; the body uses
 * CRLF line ends only and is the end of the input with bare LFs made
 * CRLF.
 */
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "testmsg.h"

#include "fuzz.h"


/* data with every LF not preceded by CR made CRLF; its length in *n. */
static char *
crlf(const uint8_t *data, size_t len, size_t *n)
{
	char	*out;
	size_t	 i, o = 0;

	if ((out = malloc(2 * len + 1)) == NULL)
		abort();
	for (i = 0; i < len; i++) {
		if (data[i] == '\n' && (i == 0 || data[i - 1] != '\r'))
			out[o++] = '\r';
		out[o++] = (char)data[i];
	}
	*n = o;
	return out;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_quiet(argc, argv);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct arena			*ar;
	struct testmsg			 tm;
	const struct testmsg_hdr	*h;
	size_t				 n = 0, i, nlen;
	enum rc				 rc;
	char				*norm;

	if ((ar = arena_new(64 * size + 65536)) == NULL)
		abort();
	rc = testmsg_parse(ar, (const char *)data, size, &tm);
	FUZZ_ASSERT(rc == RC_OK);
	for (h = tm.hdrs; h != NULL; h = h->next, n++) {
		FUZZ_ASSERT(h->name != NULL && h->value != NULL);
		FUZZ_ASSERT(h->name[0] != '\0');
		for (i = 0; h->name[i] != '\0'; i++)
			FUZZ_ASSERT((unsigned char)h->name[i] > 0x20 &&
			    (unsigned char)h->name[i] < 0x7f &&
			    h->name[i] != ':');
		FUZZ_ASSERT(h->value[0] != ' ' && h->value[0] != '\t');
	}
	FUZZ_ASSERT(n == tm.nhdrs);
	FUZZ_ASSERT(tm.body != NULL || tm.body_len == 0);
	FUZZ_ASSERT(tm.body_len <= 2 * size);
	for (i = 0; i < tm.body_len; i++)
		if (tm.body[i] == '\n')
			FUZZ_ASSERT(i > 0 && tm.body[i - 1] == '\r');
	norm = crlf(data, size, &nlen);
	FUZZ_ASSERT(tm.body_len <= nlen);
	FUZZ_ASSERT(tm.body_len == 0 || memcmp(norm + nlen - tm.body_len,
	    tm.body, tm.body_len) == 0);
	free(norm);
	arena_free(ar);
	return 0;
}
