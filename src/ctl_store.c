/*
 * ctl_store.c - portero-ctl's greylist and callout commands: they read and
 * change the store the daemon uses (same config, either backend), while
 * the daemon runs.  Single-threaded.
 *
 *   greylist list                      triplets and whitelisted origins
 *   greylist show IP|NETWORK|spf:DOMAIN|ADDRESS
 *   greylist del IP|ORIGIN [SENDER RCPT]
 *   greylist whitelist add IP|ORIGIN [DURATION]   (default 365d)
 *   greylist whitelist del IP|ORIGIN
 *   callout list
 *   callout flush [ADDRESS]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cfg.h"
#include "ctl.h"
#include "greylist.h"
#include "store.h"
#include "util.h"

#define WHITE_DEFAULT	(365ull * 86400)

struct walk {
	const char	*match;		/* origin or address to show; NULL all */
	const char	*match2;	/* a second address (show) */
	int		 by_addr;	/* match is an address */
	size_t		 n;
	struct store	*st;
	struct err	*e;
	int		 failed;
};

static void
when(uint64_t t, char *buf, size_t len)
{
	time_t		 tt = (time_t)t;
	struct tm	 tm;

	if (gmtime_r(&tt, &tm) == NULL || strftime(buf, len,
	    "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		(void)snprintf(buf, len, "%llu", (unsigned long long)t);
}

/* Splits "g|origin|sender|rcpt" (sender may hold '|': rcpt is last). */
static int
split_triplet(const char *key, char *origin, size_t olen, char *sender,
    size_t slen, const char **rcpt)
{
	const char	*o = key + 2, *s, *r;

	if ((s = strchr(o, '|')) == NULL || (r = strrchr(s + 1, '|')) ==
	    NULL || (size_t)(s - o) >= olen || (size_t)(r - s - 1) >= slen)
		return -1;
	memcpy(origin, o, (size_t)(s - o));
	origin[s - o] = '\0';
	memcpy(sender, s + 1, (size_t)(r - s - 1));
	sender[r - s - 1] = '\0';
	*rcpt = r + 1;
	return 0;
}

static int
print_triplet(const char *key, const struct store_rec *r, void *arg)
{
	struct walk	*w = arg;
	char		 origin[256], sender[1024], a[32], b[32], x[32];
	const char	*rcpt;

	if (split_triplet(key, origin, sizeof(origin), sender, sizeof(sender),
	    &rcpt) != 0)
		return 0;
	if (w->match != NULL && (w->by_addr ? strcmp(sender, w->match) != 0 &&
	    strcmp(rcpt, w->match) != 0 && strcmp(rcpt, w->match2) != 0 :
	    strcmp(origin, w->match) != 0))
		return 0;
	when(r->first, a, sizeof(a));
	when(r->last, b, sizeof(b));
	when(r->expires, x, sizeof(x));
	(void)printf("triplet %s %s%s%s <%s> %s passes=%u first=%s last=%s "
	    "expires=%s\n", origin, *sender == '<' ? "" : "<", sender,
	    *sender == '<' ? "" : ">", rcpt, r->count > 0 ? "passed" :
	    "waiting", r->count, a, b, x);
	w->n++;
	return 0;
}

static int
print_white(const char *key, const struct store_rec *r, void *arg)
{
	struct walk	*w = arg;
	char		 x[32];

	if (w->match != NULL && (w->by_addr || strcmp(key + 2, w->match) != 0))
		return 0;
	when(r->expires, x, sizeof(x));
	if (r->value == 1)
		(void)printf("whitelist %s manual expires=%s\n", key + 2, x);
	else
		(void)printf("whitelist %s auto passes=%u expires=%s\n",
		    key + 2, r->count, x);
	w->n++;
	return 0;
}

static int
print_callout(const char *key, const struct store_rec *r, void *arg)
{
	struct walk	*w = arg;
	char		 a[32], x[32];

	when(r->first, a, sizeof(a));
	when(r->expires, x, sizeof(x));
	(void)printf("callout <%s> %s checked=%s expires=%s\n", key + 2,
	    r->value == 1 ? "known" : "unknown", a, x);
	w->n++;
	return 0;
}

/* Deletes the record (scan callback); counts and remembers a failure. */
static int
del_match(const char *key, const struct store_rec *r, void *arg)
{
	struct walk	*w = arg;
	char		 origin[256], sender[1024];
	const char	*rcpt;

	(void)r;
	if (w->match != NULL && key[0] == 'g' && (split_triplet(key, origin,
	    sizeof(origin), sender, sizeof(sender), &rcpt) != 0 ||
	    strcmp(origin, w->match) != 0))
		return 0;
	if (w->match != NULL && key[0] == 'c' && strcmp(key + 2, w->match) !=
	    0)
		return 0;
	if (store_del(w->st, key, w->e) == RC_OK)
		w->n++;
	else if (w->e->msg[0] != '\0')
		w->failed = 1;
	return 0;
}

/* "192.0.2.7" -> "192.0.2.0/24"; networks and "spf:..." as given. */
static int
origin_of(const struct cfg *cfg, const char *arg, char *out, size_t len)
{
	struct ipaddr	 ip;

	if (strncmp(arg, "spf:", 4) == 0 || strchr(arg, '/') != NULL) {
		if (str_copy(out, arg, len) != 0)
			return -1;
		if (strncmp(arg, "spf:", 4) == 0)
			str_lower(out);
		return 0;
	}
	if (ipaddr_parse(arg, &ip) != RC_OK)
		return -1;
	greylist_origin(cfg, &ip, out, len);
	return 0;
}

static int
fail(const char *what, const struct err *e)
{
	(void)fprintf(stderr, "portero-ctl: %s: %s\n", what, e->msg);
	return 1;
}

static int
greylist_cmd(struct cfg *cfg, struct store *st, int argc, char **argv)
{
	struct walk		 w;
	struct store_rec	 r;
	struct err		 e;
	char			 origin[256], key[1600], *sender;
	unsigned long long	 secs = WHITE_DEFAULT;
	uint64_t		 now = store_now();
	enum rc			 rc;

	memset(&w, 0, sizeof(w));
	w.st = st;
	w.e = &e;
	err_clear(&e);
	if (argc == 1 && strcmp(argv[0], "list") == 0) {
		if (store_scan(st, "w|", print_white, &w, &e) != RC_OK ||
		    store_scan(st, "g|", print_triplet, &w, &e) != RC_OK)
			return fail("greylist list", &e);
		(void)printf("%zu record(s)\n", w.n);
		return 0;
	}
	if (argc == 2 && strcmp(argv[0], "show") == 0) {
		w.by_addr = strchr(argv[1], '@') != NULL;
		if (w.by_addr) {
			/* a sender as normalised, a recipient lower-cased */
			if ((sender = strdup(argv[1])) == NULL)
				return fail("greylist show", &e);
			(void)grey_sender(argv[1], sender, strlen(argv[1]) +
			    1);
			str_lower(argv[1]);
			w.match = sender;
			w.match2 = argv[1];
			rc = store_scan(st, "g|", print_triplet, &w, &e);
			free(sender);
			if (rc != RC_OK)
				return fail("greylist show", &e);
		} else {
			if (origin_of(cfg, argv[1], origin, sizeof(origin)))
				goto bad;
			w.match = origin;
			if (store_scan(st, "w|", print_white, &w, &e) != RC_OK ||
			    store_scan(st, "g|", print_triplet, &w, &e) != RC_OK)
				return fail("greylist show", &e);
		}
		(void)printf("%zu record(s)\n", w.n);
		return 0;
	}
	if ((argc == 2 || argc == 4) && strcmp(argv[0], "del") == 0) {
		if (origin_of(cfg, argv[1], origin, sizeof(origin)))
			goto bad;
		if (argc == 4) {
			if ((sender = strdup(argv[2])) == NULL)
				return fail("greylist del", &e);
			(void)grey_sender(argv[2], sender, strlen(argv[2]) + 1);
			str_lower(argv[3]);
			if (grey_key_triplet(key, sizeof(key), origin, sender,
			    argv[3]) != 0) {
				free(sender);
				goto bad;
			}
			free(sender);
			switch (store_del(st, key, &e)) {
			case RC_OK:
				(void)printf("deleted 1 record\n");
				return 0;
			case RC_NOTFOUND:
				(void)printf("no such triplet\n");
				return 1;
			default:
				return fail("greylist del", &e);
			}
		}
		w.match = origin;
		if (store_scan(st, "g|", del_match, &w, &e) != RC_OK ||
		    w.failed)
			return fail("greylist del", &e);
		(void)printf("deleted %zu triplet(s) of %s\n", w.n, origin);
		return 0;
	}
	if (argc >= 3 && argc <= 4 && strcmp(argv[0], "whitelist") == 0) {
		if (origin_of(cfg, argv[2], origin, sizeof(origin)) ||
		    grey_key_white(key, sizeof(key), origin) != 0)
			goto bad;
		if (strcmp(argv[1], "add") == 0) {
			if (argc == 4 && (parse_duration(argv[3], 100ull *
			    365 * 86400, &secs) != RC_OK || secs == 0))
				goto bad;
			memset(&r, 0, sizeof(r));
			r.first = r.last = now;
			r.value = 1;
			r.expires = now + secs;
			if (store_put(st, key, &r, &e) != RC_OK)
				return fail("greylist whitelist add", &e);
			(void)printf("whitelisted %s for %llu s\n", origin,
			    secs);
			return 0;
		}
		if (strcmp(argv[1], "del") == 0 && argc == 3) {
			switch (store_del(st, key, &e)) {
			case RC_OK:
				(void)printf("removed %s\n", origin);
				return 0;
			case RC_NOTFOUND:
				(void)printf("%s is not whitelisted\n", origin);
				return 1;
			default:
				return fail("greylist whitelist del", &e);
			}
		}
	}
bad:
	(void)fprintf(stderr, "usage: portero-ctl greylist list\n"
	    "       portero-ctl greylist show IP|NETWORK|spf:DOMAIN|ADDRESS\n"
	    "       portero-ctl greylist del IP|NETWORK|spf:DOMAIN "
	    "[SENDER RCPT]\n"
	    "       portero-ctl greylist whitelist add IP|NETWORK|spf:DOMAIN "
	    "[DURATION]\n"
	    "       portero-ctl greylist whitelist del IP|NETWORK|spf:DOMAIN\n");
	return 2;
}

static int
callout_cmd(struct store *st, int argc, char **argv)
{
	struct walk	 w;
	struct err	 e;

	memset(&w, 0, sizeof(w));
	w.st = st;
	w.e = &e;
	err_clear(&e);
	if (argc == 1 && strcmp(argv[0], "list") == 0) {
		if (store_scan(st, "c|", print_callout, &w, &e) != RC_OK)
			return fail("callout list", &e);
		(void)printf("%zu record(s)\n", w.n);
		return 0;
	}
	if ((argc == 1 || argc == 2) && strcmp(argv[0], "flush") == 0) {
		if (argc == 2) {
			str_lower(argv[1]);
			w.match = argv[1];
		}
		if (store_scan(st, "c|", del_match, &w, &e) != RC_OK ||
		    w.failed)
			return fail("callout flush", &e);
		(void)printf("flushed %zu record(s)\n", w.n);
		return 0;
	}
	(void)fprintf(stderr, "usage: portero-ctl callout list\n"
	    "       portero-ctl callout flush [ADDRESS]\n");
	return 2;
}

int
ctl_store_main(const char *cfgpath, const char *what, int argc, char **argv)
{
	struct cfg	*cfg;
	struct store	*st;
	struct err	 e;
	int		 rc;

	err_clear(&e);
	if ((cfg = cfg_load(cfgpath, &e)) == NULL) {
		(void)fprintf(stderr, "portero-ctl: %s\n", e.msg);
		return 2;
	}
	if ((st = store_open(&cfg->store, 0, &e)) == NULL) {
		(void)fprintf(stderr, "portero-ctl: %s\n", e.msg);
		cfg_release(cfg);
		return 1;
	}
	if (strcmp(what, "greylist") == 0)
		rc = greylist_cmd(cfg, st, argc, argv);
	else
		rc = callout_cmd(st, argc, argv);
	store_close(st);
	cfg_release(cfg);
	return rc;
}
