/*
 * fuzz_greykey.c - libFuzzer target for grey_sender() (greylist.h), the
 * sender normalisation of greylist triplets (BATV, SRS, +ext, digits).
 * Checks: the output is never longer than the input and fits the buffer
 * exactly sized for it; it holds no upper-case ASCII and no digit before
 * its first '@' (digit runs of local parts become '#'); a too-small
 * buffer gives "" and 0.
 * Input: the address, up to a NUL.
 */
#include <stdlib.h>
#include <string.h>

#include "greylist.h"

#include "fuzz.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_quiet(argc, argv);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	*in, *out;
	size_t	 len, n, i;
	int	 local = 1;

	if ((in = malloc(size + 1)) == NULL)
		return 0;
	memcpy(in, data, size);
	in[size] = '\0';
	len = strlen(in);
	if ((out = malloc(len + 1)) == NULL) {
		free(in);
		return 0;
	}
	n = grey_sender(in, out, len + 1);
	FUZZ_ASSERT(n <= len);
	FUZZ_ASSERT(strlen(out) == n);
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)out[i];

		FUZZ_ASSERT(!(c >= 'A' && c <= 'Z'));
		if (c == '@')
			local = 0;
		FUZZ_ASSERT(!local || !(c >= '0' && c <= '9'));
	}
	if (len > 0) {
		/* one byte short: refused whole */
		n = grey_sender(in, out, len);
		FUZZ_ASSERT(n == 0 && out[0] == '\0');
	}
	free(out);
	free(in);
	return 0;
}
