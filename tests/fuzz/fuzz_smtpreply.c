/*
 * fuzz_smtpreply.c - libFuzzer target for the SMTP reply parser of the
 * callout client (smtpc.h), fed what an internal MTA may answer.
 *
 * Input: two bytes of chunk sizes, then the byte stream.  The stream is
 * fed in chunks of alternating sizes, reply after reply, as a session
 * reads it.  Besides "no crash", checks: a feed never consumes more than
 * it was given and consumes everything when it wants more; a complete
 * reply has a code in 200..599, 1..SMTPC_LINES_MAX lines and a
 * NUL-terminated printable text; and the first reply has the same outcome
 * (result, bytes consumed, code, lines, text) whether the stream comes
 * in those chunks, one byte at a time, or all at once.
 */
#include <stdlib.h>
#include <string.h>

#include "smtpc.h"

#include "fuzz.h"

struct outcome {
	enum smtp_parse		 st;
	size_t			 used;	/* bytes of the stream consumed */
	struct smtp_reply	 r;
};

static void
check_reply(const struct smtp_reply *r)
{
	const char	*end;
	const char	*c;

	FUZZ_ASSERT(r->code >= 200 && r->code <= 599);
	FUZZ_ASSERT(r->lines >= 1 && r->lines <= SMTPC_LINES_MAX);
	end = memchr(r->text, '\0', sizeof(r->text));
	FUZZ_ASSERT(end != NULL);
	for (c = r->text; c < end; c++)
		FUZZ_ASSERT(*c >= 0x20 && *c < 0x7f);
}

static void
same(const struct outcome *a, const struct outcome *b)
{
	FUZZ_ASSERT(a->st == b->st);
	FUZZ_ASSERT(a->used == b->used);
	if (a->st != SMTP_PARSE_DONE)
		return;
	FUZZ_ASSERT(a->r.code == b->r.code);
	FUZZ_ASSERT(a->r.lines == b->r.lines);
	FUZZ_ASSERT(strcmp(a->r.text, b->r.text) == 0);
}

/* Replies one after another in chunks; the first one's outcome in *first. */
static void
parse_chunked(const char *buf, size_t n, const size_t sizes[2],
    struct outcome *first)
{
	struct smtp_parser	 p;
	enum smtp_parse		 st = SMTP_PARSE_MORE;
	size_t			 off = 0, cur = 0, chunk, used, k = 0;
	int			 nth = 0;

	smtp_parser_init(&p);
	while (off < n) {
		chunk = sizes[k++ & 1];
		if (chunk > n - off)
			chunk = n - off;
		used = ~(size_t)0;
		st = smtp_parser_feed(&p, buf + off, chunk, &used);
		FUZZ_ASSERT(used <= chunk);
		if (st == SMTP_PARSE_MORE)
			FUZZ_ASSERT(used == chunk);
		off += used;
		cur += used;
		if (st == SMTP_PARSE_MORE)
			continue;
		if (nth++ == 0) {
			first->st = st;
			first->used = cur;
			first->r = p.r;
		}
		if (st == SMTP_PARSE_BAD)
			return;
		FUZZ_ASSERT(used > 0);
		check_reply(&p.r);
		smtp_parser_init(&p);
		cur = 0;
	}
	if (nth == 0) {
		first->st = SMTP_PARSE_MORE;
		first->used = cur;
	}
}

static void
parse_bytes(const char *buf, size_t n, struct outcome *o)
{
	struct smtp_parser	 p;
	size_t			 i, used;

	smtp_parser_init(&p);
	o->st = SMTP_PARSE_MORE;
	o->used = 0;
	for (i = 0; i < n && o->st == SMTP_PARSE_MORE; i++) {
		used = ~(size_t)0;
		o->st = smtp_parser_feed(&p, buf + i, 1, &used);
		FUZZ_ASSERT(used <= 1);
		o->used += used;
	}
	o->r = p.r;
}

static void
parse_whole(const char *buf, size_t n, struct outcome *o)
{
	struct smtp_parser	 p;

	smtp_parser_init(&p);
	o->used = ~(size_t)0;
	o->st = smtp_parser_feed(&p, buf, n, &o->used);
	FUZZ_ASSERT(o->used <= n);
	o->r = p.r;
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
	struct outcome	 chunked, bytes, whole;
	size_t		 sizes[2];
	char		*buf;
	size_t		 n;

	if (size < 2)
		return 0;
	sizes[0] = (size_t)(data[0] & 0x3f) + 1;	/* 1..64 */
	sizes[1] = (size_t)data[1] * 16 + 1;		/* 1..4081 */
	n = size - 2;
	/* an exact-size copy, so ASan sees any read past the end */
	buf = malloc(n > 0 ? n : 1);
	if (buf == NULL)
		abort();
	if (n > 0)
		memcpy(buf, data + 2, n);
	memset(&chunked, 0, sizeof(chunked));
	parse_chunked(buf, n, sizes, &chunked);
	parse_bytes(buf, n, &bytes);
	parse_whole(buf, n, &whole);
	same(&chunked, &bytes);
	same(&chunked, &whole);
	if (chunked.st == SMTP_PARSE_DONE)
		check_reply(&bytes.r);
	free(buf);
	return 0;
}
