/*
 * ctl.c - portero-ctl, the administration command (SPEC section 6).
 *
 * `test` runs the daemon's pipeline on one message read from standard
 * input, with the same config, and prints the decision line(s) and the
 * header edits.  greylist and callout commands are in ctl_store.c, dkim
 * in ctl_dkim.c.  Single-threaded.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cfg.h"
#include "ctl.h"
#include "ctx.h"
#include "log.h"
#include "metrics.h"
#include "pipeline.h"
#include "scanner.h"
#include "testmsg.h"
#include "util.h"
#include "version.h"

#define DEFAULT_CONFIG	"/etc/portero/portero.conf"
#define MAX_INPUT	(64u << 20)
#define MAX_RCPTS	1000

static void
usage(void)
{
	(void)fprintf(stderr,
	    "usage: portero-ctl [-c FILE] test [-c FILE] [--client IP] "
	    "[--client-name NAME]\n"
	    "           [--helo NAME] [--from ADDR] --rcpt ADDR "
	    "[--rcpt ADDR]...\n"
	    "           [--auth USER] [--queue-id ID] [--no-store] "
	    "< message.eml\n"
	    "       portero-ctl [-c FILE] greylist list|show|del|whitelist ...\n"
	    "       portero-ctl [-c FILE] callout list|flush [ADDRESS]\n"
	    "       portero-ctl [-c FILE] dkim keygen -d DOMAIN -s SELECTOR "
	    "[-a rsa|ed25519] [-b BITS] [-o DIR]\n"
	    "       portero-ctl [-c FILE] dkim check -d DOMAIN -s SELECTOR "
	    "[-k KEYFILE]\n"
	    "       portero-ctl -V\n");
	exit(2);
}

static void
print_line(const char *line)
{
	(void)printf("%s\n", line);
}

static char *
read_all(FILE *fp, size_t *len)
{
	struct buf	 b;
	char		 chunk[65536];
	size_t		 n;

	buf_init(&b, MAX_INPUT);
	while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0) {
		if (buf_append(&b, chunk, n) != RC_OK) {
			(void)fprintf(stderr, "portero-ctl: message larger "
			    "than %u bytes\n", MAX_INPUT);
			buf_free(&b);
			return NULL;
		}
	}
	if (ferror(fp)) {
		(void)fprintf(stderr, "portero-ctl: reading the message: %s\n",
		    strerror(errno));
		buf_free(&b);
		return NULL;
	}
	*len = b.len;
	if (b.data == NULL)
		return strdup("");
	return b.data;
}

/* Applies a verdict the way the milter would; 1 if the message stops. */
static int
stop(const struct verdict *v)
{
	return v->action != ACT_CONTINUE && v->action != ACT_ACCEPT;
}

static int
cmd_test(const char *cfgpath, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "client", required_argument, NULL, 'a' },
		{ "client-name", required_argument, NULL, 'n' },
		{ "helo", required_argument, NULL, 'h' },
		{ "from", required_argument, NULL, 'f' },
		{ "rcpt", required_argument, NULL, 'r' },
		{ "auth", required_argument, NULL, 'u' },
		{ "queue-id", required_argument, NULL, 'q' },
		{ "no-store", no_argument, NULL, 's' },
		{ "config", required_argument, NULL, 'c' },
		{ NULL, 0, NULL, 0 }
	};
	const char		*client = "192.0.2.1", *name = NULL;
	const char		*helo = NULL, *from = "<>", *auth = NULL;
	const char		*qid = "TEST";
	const char		*rcpts[MAX_RCPTS];
	size_t			 nrcpt = 0, i, len = 0;
	struct cfg		*cfg;
	struct conn_ctx		*c;
	struct verdict		 v;
	struct err		 e;
	struct arena		*ar;
	struct testmsg		 tm;
	struct testmsg_hdr	*h;
	const struct hdr_edit	*ed;
	char			*data, fromb[1024];
	int			 ch, accepted = 0;
	struct scan_service	 sv = { -1, -1, -1 };
	struct scan_settings	 ss;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "c:", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			cfgpath = optarg;
			break;
		case 'a':
			client = *optarg != '\0' ? optarg : NULL;
			break;
		case 'n':
			name = optarg;
			break;
		case 'h':
			helo = optarg;
			break;
		case 'f':
			from = optarg;
			break;
		case 'r':
			if (nrcpt == MAX_RCPTS)
				usage();
			rcpts[nrcpt++] = optarg;
			break;
		case 'u':
			auth = optarg;
			break;
		case 'q':
			qid = optarg;
			break;
		case 's':
			cfg_store_disable();
			break;
		default:
			usage();
		}
	}
	if (optind != argc || nrcpt == 0)
		usage();

	err_clear(&e);
	cfg = cfg_load(cfgpath, &e);
	if (cfg == NULL) {
		(void)fprintf(stderr, "portero-ctl: %s\n", e.msg);
		return 2;
	}
	log_set_level(cfg->log.level);
	cfg_install(cfg);
	data = read_all(stdin, &len);
	ar = arena_new(MAX_INPUT * 3u);
	if (data == NULL || ar == NULL || testmsg_parse(ar, data, len, &tm) !=
	    RC_OK) {
		(void)fprintf(stderr, "portero-ctl: cannot read the message\n");
		free(data);
		arena_free(ar);
		return 2;
	}
	c = conn_ctx_new(cfg_acquire());
	if (c == NULL) {
		(void)fprintf(stderr, "portero-ctl: out of memory\n");
		return 2;
	}
	log_set_decision_sink(print_line);
	/* the antivirus scanner processes, as the daemon's supervisor runs
	 * them; stopped below */
	err_clear(&e);
	if (scanner_wanted(c->cfg, &ss) && scanner_service_start(&sv, &ss,
	    NULL, &e) != RC_OK)
		(void)fprintf(stderr, "portero-ctl: %s\n", e.msg);
	pipeline_connect(c, name, client, &v);
	if (!stop(&v) && helo != NULL)
		pipeline_helo(c, helo, &v);
	if (from[0] != '<') {
		(void)snprintf(fromb, sizeof(fromb), "<%s>", from);
		from = fromb;
	}
	if (!stop(&v))
		pipeline_mail(c, from, auth, &v);
	for (i = 0; i < nrcpt && !stop(&v) && c->msg != NULL; i++) {
		char *r = arena_printf(ar, rcpts[i][0] == '<' ? "%s" : "<%s>",
		    rcpts[i]);

		pipeline_rcpt(c, r != NULL ? r : "", &v);
		if (v.action == ACT_CONTINUE) {
			/* like Postfix: a queue id from the first accepted
			 * recipient on */
			if (accepted++ == 0)
				msg_set_queue_id(c->msg, qid);
		} else if (v.action == ACT_REJECT || v.action == ACT_TEMPFAIL)
			v = verdict_continue;	/* next recipient */
	}
	if (accepted > 0 && !stop(&v) && c->msg != NULL) {
		for (h = tm.hdrs; h != NULL && !stop(&v); h = h->next)
			pipeline_header(c, h->name, h->value, &v);
		if (!stop(&v))
			pipeline_eoh(c, &v);
		if (!stop(&v))
			pipeline_body(c, tm.body, tm.body_len, &v);
		pipeline_eom(c, &v);
		for (ed = c->msg->edits; ed != NULL; ed = ed->next) {
			if (ed->remove)
				(void)printf("-%s\n", ed->name);
			else if (ed->change)
				(void)printf("~%s: %s\n", ed->name, ed->value);
			else
				(void)printf("+%s: %s\n", ed->name, ed->value);
		}
		pipeline_msg_end(c);
	} else
		pipeline_abort(c);
	cfg_release(c->cfg);
	conn_ctx_free(c);
	arena_free(ar);
	free(data);
	scanner_service_stop(&sv);
	cfg_install(NULL);
	cfg_store_close();
	return 0;
}

int
main(int argc, char *argv[])
{
	const char	*cfgpath = DEFAULT_CONFIG;
	int		 i = 1;

	log_open("portero-ctl", LOG_MAIL, 1);
	metrics_init();
	/* a Redis server that hangs up must not kill us (hiredis write()s) */
	(void)signal(SIGPIPE, SIG_IGN);
	while (i < argc && argv[i][0] == '-') {
		if (strcmp(argv[i], "-c") == 0 && i + 1 < argc) {
			cfgpath = argv[i + 1];
			i += 2;
		} else if (strcmp(argv[i], "-V") == 0) {
			(void)printf("portero-ctl %s\n", PORTERO_VERSION);
			return 0;
		} else
			usage();
	}
	if (i >= argc)
		usage();
	if (strcmp(argv[i], "test") == 0)
		return cmd_test(cfgpath, argc - i, argv + i);
	if (strcmp(argv[i], "greylist") == 0 || strcmp(argv[i], "callout") ==
	    0)
		return ctl_store_main(cfgpath, argv[i], argc - i - 1,
		    argv + i + 1);
	if (strcmp(argv[i], "dkim") == 0)
		return ctl_dkim_main(cfgpath, argc - i - 1, argv + i + 1);
	usage();
}
