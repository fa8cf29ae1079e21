/*
 * fuzz_outbound.c - libFuzzer target for the outbound header cleanup
 * matching (outbound.h): the strip_headers entries and the header names
 * both come from the input.  Input: entries one per line up to an empty
 * line, then header names one per line.  Checks: compiling never crashes
 * (a bad entry is an error with a message); a name equal to a plain
 * entry, in any case, always matches; matching never crashes on any
 * name.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "err.h"
#include "outbound.h"

#include "fuzz.h"

#define MAX_ENTRIES	16

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_quiet(argc, argv);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char		*text, *line, *save = NULL, *entries[MAX_ENTRIES];
	char		*names, *upper;
	struct err	 e;
	void		*conf;
	size_t		 n = 0, i, j;

	if ((text = malloc(size + 1)) == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	/* entries before the first empty line */
	names = strstr(text, "\n\n");
	if (names != NULL) {
		*names = '\0';
		names += 2;
	}
	for (line = strtok_r(text, "\n", &save); line != NULL &&
	    n < MAX_ENTRIES; line = strtok_r(NULL, "\n", &save))
		entries[n++] = line;
	err_clear(&e);
	conf = outbound_compile(entries, n, &e);
	if (conf == NULL) {
		FUZZ_ASSERT(e.msg[0] != '\0');
		free(text);
		return 0;
	}
	for (i = 0; i < n; i++) {
		if (entries[i][0] == '/')
			continue;
		FUZZ_ASSERT(outbound_strip_match(conf, entries[i]));
		if ((upper = strdup(entries[i])) == NULL)
			break;
		for (j = 0; upper[j] != '\0'; j++)
			upper[j] = (char)toupper((unsigned char)upper[j]);
		FUZZ_ASSERT(outbound_strip_match(conf, upper));
		free(upper);
	}
	save = NULL;
	for (line = names != NULL ? strtok_r(names, "\n", &save) : NULL;
	    line != NULL; line = strtok_r(NULL, "\n", &save))
		(void)outbound_strip_match(conf, line);
	outbound_free(conf);
	free(text);
	return 0;
}
