/*
 * checks.c - the table of every check module, in pipeline order.  This is
 * the only list to edit when a module is added.  Modules whose library is
 * not built in are listed with implemented = 0 by their own file.
 * Read-only: thread-safe.
 */
#include <stddef.h>

#include "check.h"


/*
 * Order matters: the whitelist marks exempt clients, senders and
 * recipients before any inbound check runs; cheap local checks come before
 * network ones.
 */
const struct check_ops *const check_table[] = {
	&check_whitelist,
	&check_blacklist,
	&check_dnswl,
	&check_dnsbl,
	&check_geoip,
	&check_rdns,
	&check_helo,
	&check_sender,
	&check_spf,
	&check_callout,
	&check_greylist,
	&check_antivirus,
	&check_content,
	&check_spam,
	&check_outbound,
	&check_dkim,
	NULL
};
