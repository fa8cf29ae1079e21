/*
 * checks.c - the table of every check module, in pipeline order.  This is
 * the only list to edit when a module is added.  Modules whose library is
 * not built in are listed with implemented = 0 by their own file.
 * Read-only: thread-safe.
 */
#include <stddef.h>

#include "check.h"

static const struct check_ops check_geoip = { "geoip", "geoip", 0, 0, 0,
    NULL, NULL, NULL };
static const struct check_ops check_rdns = { "rdns", "rdns", 0, 0, 0, NULL,
    NULL, NULL };
static const struct check_ops check_spf = { "spf", "spf", 0, 0, 0, NULL,
    NULL, NULL };
static const struct check_ops check_callout = { "callout", "callout", 0, 0,
    0, NULL, NULL, NULL };
static const struct check_ops check_greylist = { "greylist", "greylist", 0,
    0, 0, NULL, NULL, NULL };
static const struct check_ops check_antivirus = { "antivirus", "antivirus",
    0, 0, 0, NULL, NULL, NULL };
static const struct check_ops check_content = { "content", "content", 0, 0,
    0, NULL, NULL, NULL };
static const struct check_ops check_spam = { "spam", "spam", 0, 0, 0, NULL,
    NULL, NULL };
static const struct check_ops check_dkim = { "dkim", "dkim", 0, 0, 0, NULL,
    NULL, NULL };
static const struct check_ops check_dnsbl = { "dnsbl", "dnsbl", 0, 0, 0,
    NULL, NULL, NULL };
static const struct check_ops check_dnswl = { "dnswl", "dnswl", 0, 0, 0,
    NULL, NULL, NULL };
static const struct check_ops check_outbound = { "outbound", "outbound", 0,
    0, 0, NULL, NULL, NULL };

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
