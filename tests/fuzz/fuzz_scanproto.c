/*
 * fuzz_scanproto.c - libFuzzer target for what the milter reads from the
 * scanner processes and from clamd (scanproto.h, clamd.h), and for the
 * request line the scanners read: scanproto_reply_parse,
 * scanproto_request_parse, clamd_reply_parse, scanproto_sanitize.
 *
 * Input: the bytes of one packet.  Besides "no crash", checks: a result
 * has a known verdict and a NUL-terminated name within SCAN_NAME_MAX; a
 * signature name (FOUND, LIMIT) is non-empty and only [A-Za-z0-9._:/+=@#-];
 * error text only printable ASCII; CLEAN has no name; FOUND never carries
 * a limit name; an accepted reply encodes back to a line that parses to
 * the same result, and an accepted request is exactly its own encoding.
 */
#include <stdlib.h>
#include <string.h>

#include "clamd.h"
#include "scanproto.h"

#include "fuzz.h"

static int
name_ok(const char *s, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || (c != '\0' &&
		    strchr("._:/+=@#-", c) != NULL)))
			return 0;
	}
	return 1;
}

static int
text_ok(const char *s, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f)
			return 0;
	return 1;
}

static void
check_result(const struct scan_result *r, int clamd)
{
	const char	*end = memchr(r->name, '\0', sizeof(r->name));
	size_t		 n;

	FUZZ_ASSERT(end != NULL);
	n = (size_t)(end - r->name);
	switch (r->verdict) {
	case SCAN_CLEAN:
		FUZZ_ASSERT(n == 0);
		break;
	case SCAN_FOUND:
		FUZZ_ASSERT(!scanproto_is_limit(r->name));
		/* FALLTHROUGH */
	case SCAN_LIMIT:
		FUZZ_ASSERT(n > 0);
		FUZZ_ASSERT(name_ok(r->name, n));
		break;
	case SCAN_ERROR:
		FUZZ_ASSERT(text_ok(r->name, n));
		FUZZ_ASSERT(!clamd || strncmp(r->name, "clamd: ", 7) == 0);
		break;
	default:
		FUZZ_ASSERT(0);
	}
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
	struct scan_result	 r, back;
	char			*buf, line[SCANPROTO_MAX], small[8];
	uint64_t		 id, id2;
	size_t			 n;

	/* an exact-size copy, so ASan sees any read past the end */
	buf = malloc(size > 0 ? size : 1);
	if (buf == NULL)
		abort();
	if (size > 0)
		memcpy(buf, data, size);

	memset(&r, 0xa5, sizeof(r));
	if (scanproto_reply_parse(buf, size, &id, &r) == RC_OK) {
		check_result(&r, 0);
		n = scanproto_reply_encode(line, sizeof(line), id, &r);
		FUZZ_ASSERT(n > 0 && n <= SCANPROTO_MAX);
		FUZZ_ASSERT(scanproto_reply_parse(line, n, &id2, &back) ==
		    RC_OK);
		FUZZ_ASSERT(id2 == id && back.verdict == r.verdict &&
		    back.gen == r.gen && back.sigs == r.sigs);
		FUZZ_ASSERT(strcmp(back.name, r.name) == 0);
	}

	if (scanproto_request_parse(buf, size, &id) == RC_OK) {
		n = scanproto_request_encode(line, sizeof(line), id);
		FUZZ_ASSERT(n == size && memcmp(line, buf, n) == 0);
	}

	memset(&r, 0xa5, sizeof(r));
	clamd_reply_parse(buf, size, &r);
	check_result(&r, 1);

	scanproto_sanitize(small, sizeof(small), buf, size, size & 1);
	n = strlen(small);
	FUZZ_ASSERT(n < sizeof(small) && n <= size);
	FUZZ_ASSERT((size & 1) ? text_ok(small, n) : name_ok(small, n));
	free(buf);
	return 0;
}
