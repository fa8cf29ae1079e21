/*
 * fuzz_dnswire.c - libFuzzer target for the DNS answer data portero reads
 * itself: PTR rdata (wire-format names from untrusted servers) through
 * dns_name_from_wire(), and DNSBL query names built from any address.
 * Invariants: a decoded name is NUL-terminated within the buffer, has no
 * empty label and no label over 63 bytes; reverse names end in the zone.
 *
 * Input: byte 0 picks the output buffer size; the rest is the rdata, and
 * its first 16 bytes (zero-padded) also make an address for the reverse
 * name.
 */
#include <stdlib.h>
#include <string.h>

#include "cidr.h"
#include "dns.h"

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
	char		 out[300], rev[300];
	size_t		 blen, i, label = 0;
	struct ipaddr	 a;

	if (size == 0)
		return 0;
	blen = 1 + data[0] % sizeof(out);
	memset(out, 'X', sizeof(out));
	if (dns_name_from_wire(data + 1, size - 1, out, blen) == 0) {
		FUZZ_ASSERT(memchr(out, '\0', blen) != NULL);
		for (i = 0; out[i] != '\0'; i++) {
			if (out[i] == '.') {
				FUZZ_ASSERT(label > 0);
				label = 0;
			} else
				FUZZ_ASSERT(++label <= 63);
		}
		FUZZ_ASSERT(i == 0 || label > 0);
	}
	memset(&a, 0, sizeof(a));
	memcpy(a.b, data + 1, size - 1 < 16 ? size - 1 : 16);
	a.v4 = data[0] & 1;
	if (a.v4) {
		memset(a.b, 0, 10);
		a.b[10] = a.b[11] = 0xff;
	}
	if (dns_reverse_name(&a, "zen.example", rev, sizeof(rev)) == 0) {
		size_t n = strlen(rev);

		FUZZ_ASSERT(n > 12 && strcmp(rev + n - 12, ".zen.example") ==
		    0);
	}
	return 0;
}
