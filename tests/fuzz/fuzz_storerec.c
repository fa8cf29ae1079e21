/*
 * fuzz_storerec.c - libFuzzer target for the store's record text form
 * (store_rec_parse / store_rec_format, store.h): values come back from
 * Redis, which another program may have written.  Checks: a value that
 * parses formats back to the very same bytes (one spelling per record),
 * and the formatted text parses to the same record; key shaping of the
 * input gives a NUL-terminated key of at most STORE_KEY_MAX bytes.
 */
#include <stdlib.h>
#include <string.h>

#include "store.h"

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
	struct store_rec	 r, r2;
	char			 out[STORE_REC_MAX], key[STORE_KEY_MAX + 1];
	char			*s;
	int			 n;

	if (store_rec_parse((const char *)data, size, &r) == 0) {
		n = store_rec_format(&r, out, sizeof(out));
		FUZZ_ASSERT(n > 0);
		FUZZ_ASSERT(store_rec_parse(out, (size_t)n, &r2) == 0);
		FUZZ_ASSERT(memcmp(&r, &r2, sizeof(r)) == 0);
		/* leading zeros or "-0" are other spellings: allowed, but
		 * never a different record */
		if ((size_t)n == size && memcmp(out, data, size) != 0)
			FUZZ_ASSERT(0);
	}
	if ((s = malloc(size + 1)) == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	store_key_shape(s, key);
	FUZZ_ASSERT(strlen(key) <= STORE_KEY_MAX);
	if (strlen(s) <= STORE_KEY_MAX)
		FUZZ_ASSERT(strcmp(key, s) == 0);
	free(s);
	return 0;
}
