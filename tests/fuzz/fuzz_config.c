/*
 * fuzz_config.c - libFuzzer target for the config loader, cfg_load()
 * (cfg.h): libconfig parsing, schema validation (cfg_schema.c) and the
 * compilation of the core settings and every enabled check.  The input is
 * written to one temporary file, made once per process and rewritten for
 * each run.  Checks: no crash or leak whether loading succeeds or not; a
 * failure explains itself; a loaded snapshot has sane values and can be
 * installed, acquired and released.
 *
 * Inputs holding "@include" are skipped: libconfig would read whatever
 * file they name (/dev/stdin, /dev/zero), which only stalls the fuzzer;
 * the config file is written by the administrator anyway.
 *
 * libconfig 1.5 (Debian bookworm) itself leaks the string token being
 * scanned when a syntax error follows it: 'a = { b "x", "y" ];' leaks 64
 * bytes from strbuf_append, 'a = { "" b = 1; };' one byte from
 * libconfig_yylex, with no portero code involved.  Those two allocation
 * sites are suppressed below so the target reports portero's leaks only
 * (a config_t portero forgot to destroy would still show up through
 * libconfig's parser and setting allocations).
 */
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "check.h"
#include "err.h"

#include "fuzz.h"

static const char *path;

const char	*__lsan_default_suppressions(void);

const char *
__lsan_default_suppressions(void)
{
	return "leak:strbuf_append\nleak:libconfig_yylex\n";
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_quiet(argc, argv);
	path = fuzz_tmpfile("fuzz-config");
	return 0;
}

static void
check_cfg(struct cfg *c)
{
	struct cfg	*cur;
	size_t		 i;

	FUZZ_ASSERT(c->nchecks <= CHECK_MAX);
	for (i = 0; i < c->nchecks; i++) {
		FUZZ_ASSERT(c->checks[i].ops != NULL);
		FUZZ_ASSERT(c->checks[i].ops->implemented);
		FUZZ_ASSERT(c->checks[i].ops->run != NULL);
	}
	FUZZ_ASSERT(c->path != NULL && strcmp(c->path, path) == 0);
	FUZZ_ASSERT(c->milter.socket != NULL && c->milter.user != NULL &&
	    c->milter.group != NULL && c->milter.pidfile != NULL &&
	    c->metrics_listen != NULL);
	FUZZ_ASSERT(strncmp(c->milter.socket, "unix:", 5) == 0 ||
	    strncmp(c->milter.socket, "local:", 6) == 0 ||
	    strncmp(c->milter.socket, "inet:", 5) == 0 ||
	    strncmp(c->milter.socket, "inet6:", 6) == 0);
	FUZZ_ASSERT(c->milter.socket_mode <= 07777);
	FUZZ_ASSERT(c->milter.timeout >= 1 && c->milter.timeout <= 3600);
	FUZZ_ASSERT(c->milter.backlog >= 1 && c->milter.backlog <= 65535);
	FUZZ_ASSERT(c->milter.max_connections >= 1 &&
	    c->milter.max_connections <= 100000);
	FUZZ_ASSERT(c->milter.shutdown_timeout <= 600);
	FUZZ_ASSERT(c->thresholds.greylist >= -100000 &&
	    c->thresholds.greylist <= 100000);
	FUZZ_ASSERT(c->thresholds.reject >= -100000 &&
	    c->thresholds.reject <= 100000);
	for (i = 0; i < c->internal.n; i++)
		FUZZ_ASSERT(c->internal.v[i].plen <= 128);
	FUZZ_ASSERT(cfg_restart_diff(c, c) == NULL);

	/* install, acquire and release like a reload does */
	cfg_install(cfg_ref(c));
	cur = cfg_acquire();
	FUZZ_ASSERT(cur == c);
	cfg_release(cur);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cfg	*c;
	struct err	 e;

	if (memmem(data, size, "@include", 8) != NULL)
		return 0;
	fuzz_tmpfile_write(data, size);
	err_clear(&e);
	c = cfg_load(path, &e);
	if (c == NULL) {
		FUZZ_ASSERT(e.msg[0] != '\0');
		FUZZ_ASSERT(memchr(e.msg, '\0', sizeof(e.msg)) != NULL);
		return 0;
	}
	check_cfg(c);
	cfg_release(c);
	return 0;
}
