/*
 * fuzz_dkimsign.c - libFuzzer target for the DKIM signer (dkimsign.h):
 * header fields and a body from the input.  Checks: signing never
 * crashes; the body hash (bh=) does not depend on how the body is cut
 * into chunks (whole, byte by byte, and at input-chosen points), under
 * relaxed and simple body canonicalisation; every signature field is
 * printable ASCII with LF-TAB folding only; the relaxed header form
 * never holds a bare CR or LF except its final CRLF.
 *
 * Input: byte 0 chooses the canonicalisation and a chunk size; then
 * "name:value" lines up to an empty line (the header), then the body.
 */
#include <stdlib.h>
#include <string.h>

#include "dkimsign.h"

#include "fuzz.h"

static struct dksign_key	*key;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct dkim_keydata	 kd;
	struct err		 e;

	fuzz_quiet(argc, argv);
	if (dkim_keygen(DKIM_ALG_ED25519, 256, &kd, &e) != RC_OK ||
	    (key = dksign_key(&kd, &e)) == NULL)
		abort();
	dkim_key_free(&kd);
	return 0;
}

/* bh= of the signature over hdr and body fed in chunks of step. */
static char *
bh_of(const char *hdr, const uint8_t *body, size_t blen, size_t step,
    int simple)
{
	struct dksign_opts	 o;
	struct dksign		*s;
	struct err		 e;
	char			*sig, *bh, *end, *line, *save = NULL, *copy;
	size_t			 i, n;

	memset(&o, 0, sizeof(o));
	o.domain = "example.org";
	o.selector = "s";
	o.bsimple = simple;
	o.hsimple = simple;
	if ((s = dksign_new(key, &o, &e)) == NULL)
		return NULL;
	(void)dksign_header(s, "From", "a@example.org");
	if ((copy = strdup(hdr)) == NULL) {
		dksign_free(s);
		return NULL;
	}
	for (line = strtok_r(copy, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		char *colon = strchr(line, ':');

		if (colon == NULL || colon == line)
			continue;
		*colon = '\0';
		(void)dksign_header(s, line, colon + 1);
	}
	free(copy);
	for (i = 0; i < blen; i += n) {
		n = blen - i < step ? blen - i : step;
		(void)dksign_body(s, body + i, n);
	}
	sig = dksign_finish(s, 0, &e);
	dksign_free(s);
	if (sig == NULL)
		return NULL;
	for (i = 0; sig[i] != '\0'; i++) {
		unsigned char c = (unsigned char)sig[i];

		FUZZ_ASSERT((c >= 0x20 && c < 0x7f) || (c == '\n' &&
		    sig[i + 1] == '\t') || (c == '\t' && i > 0 &&
		    sig[i - 1] == '\n'));
	}
	FUZZ_ASSERT((bh = strstr(sig, "bh=")) != NULL);
	FUZZ_ASSERT((end = strchr(bh, ';')) != NULL);
	*end = '\0';
	bh = strdup(bh);
	free(sig);
	return bh;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t	*body;
	char		*hdr, *a, *b, *c, *r;
	size_t		 hlen, blen, step;
	int		 simple;

	if (size < 1)
		return 0;
	simple = data[0] & 1;
	step = (size_t)(data[0] >> 1) + 1;
	data++;
	size--;
	for (hlen = 0; hlen + 1 < size && !(data[hlen] == '\n' &&
	    data[hlen + 1] == '\n'); hlen++)
		;
	if (hlen + 1 >= size)
		hlen = size;
	if ((hdr = malloc(hlen + 1)) == NULL)
		return 0;
	memcpy(hdr, data, hlen);
	hdr[hlen] = '\0';
	body = data + (hlen < size ? hlen + 2 : size);
	blen = hlen < size ? size - hlen - 2 : 0;
	a = bh_of(hdr, body, blen, blen > 0 ? blen : 1, simple);
	b = bh_of(hdr, body, blen, 1, simple);
	c = bh_of(hdr, body, blen, step, simple);
	if (a != NULL && b != NULL && c != NULL) {
		FUZZ_ASSERT(strcmp(a, b) == 0);
		FUZZ_ASSERT(strcmp(a, c) == 0);
	}
	if ((r = dksign_canon_header_relaxed("X-Test", hdr)) != NULL) {
		size_t i, n = strlen(r);

		for (i = 0; i + 2 < n; i++)
			FUZZ_ASSERT(r[i] != '\r' && r[i] != '\n');
		free(r);
	}
	free(a);
	free(b);
	free(c);
	free(hdr);
	return 0;
}
