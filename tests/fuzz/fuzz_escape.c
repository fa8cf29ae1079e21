/*
 * fuzz_escape.c - libFuzzer target for log_escape() (log.h), which puts
 * SMTP-client text into log lines.  Checks: the output holds only bytes
 * 0x21..0x7e, never '"', '<', '>' or a newline, and a backslash only as
 * the start of "\xNN" (lower-case hex); decoding it gives back the input
 * (cut at max bytes, then "..."); when the buffer limit is hit the call
 * fails and what was stored is still a well-formed escaped prefix.
 *
 * Input: bytes 0..1 are max (input bytes to keep), bytes 2..3 the buffer
 * limit; the rest, up to a NUL, is the text.
 */
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "log.h"

#include "fuzz.h"

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Decodes n bytes of escaped text into out; returns the decoded length. */
static size_t
decode(const char *p, size_t n, char *out)
{
	size_t	 i, o = 0;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];

		FUZZ_ASSERT(c >= 0x21 && c <= 0x7e);
		FUZZ_ASSERT(c != '"' && c != '<' && c != '>' && c != '\n');
		if (c == '\\') {
			FUZZ_ASSERT(i + 3 < n);
			FUZZ_ASSERT(p[i + 1] == 'x');
			FUZZ_ASSERT(hexval(p[i + 2]) >= 0 &&
			    hexval(p[i + 3]) >= 0);
			c = (unsigned char)(hexval(p[i + 2]) << 4 |
			    hexval(p[i + 3]));
			/* only what needs it is escaped */
			FUZZ_ASSERT(c < 0x21 || c > 0x7e || c == '"' ||
			    c == '\\' || c == '<' || c == '>');
			i += 3;
		}
		out[o++] = (char)c;
	}
	return o;
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
	struct buf	 b;
	size_t		 max, bmax, n, keep, dn, len, pre;
	char		*s, *dec;
	const char	*out;
	enum rc		 rc;
	int		 cut;

	if (size < 4)
		return 0;
	max = (size_t)data[0] | (size_t)data[1] << 8;
	bmax = (size_t)data[2] | (size_t)data[3] << 8;
	if (data[1] & 0x80)
		max = (size_t)-1;	/* no cut */
	if (data[3] & 0x80)
		bmax = 1u << 20;	/* roomy buffer */
	s = fuzz_cstr(data + 4, size - 4);
	n = strlen(s);
	keep = n < max ? n : max;
	cut = n > max;

	buf_init(&b, bmax);
	FUZZ_ASSERT(log_escape(&b, NULL, max) == RC_OK && b.len == 0);
	/* what is already in the buffer stays as it is */
	pre = buf_puts(&b, "k=") == RC_OK ? 2 : 0;
	rc = log_escape(&b, s, max);
	len = b.len;
	FUZZ_ASSERT(len <= bmax && len >= pre);
	FUZZ_ASSERT(len == 0 || strlen(b.data) == len);
	FUZZ_ASSERT(pre == 0 || memcmp(b.data, "k=", 2) == 0);
	out = len > 0 ? b.data + pre : "";
	len -= pre;
	dec = malloc(n + 8);
	if (dec == NULL)
		abort();
	if (rc == RC_OK) {
		if (cut) {
			FUZZ_ASSERT(len >= 3 &&
			    memcmp(out + len - 3, "...", 3) == 0);
			len -= 3;
		}
		dn = decode(out, len, dec);
		FUZZ_ASSERT(dn == keep);
		FUZZ_ASSERT(memcmp(dec, s, keep) == 0);
	} else {
		/* out of room: a well-formed prefix of the escaped text */
		FUZZ_ASSERT(rc == RC_INVAL);
		dn = decode(out, len, dec);
		FUZZ_ASSERT(dn <= keep);
		FUZZ_ASSERT(memcmp(dec, s, dn) == 0);
	}
	free(dec);
	buf_free(&b);
	free(s);
	return 0;
}
