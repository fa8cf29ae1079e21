/*
 * err.c - error text helpers (see err.h).  Thread-safe: no shared state.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "err.h"

void
err_clear(struct err *e)
{
	if (e != NULL)
		e->msg[0] = '\0';
}

void
err_set(struct err *e, const char *fmt, ...)
{
	va_list	 ap;

	if (e == NULL)
		return;
	va_start(ap, fmt);
	(void)vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
}

void
err_prefix(struct err *e, const char *fmt, ...)
{
	char	 head[ERR_MAX], old[ERR_MAX];
	va_list	 ap;

	if (e == NULL)
		return;
	va_start(ap, fmt);
	(void)vsnprintf(head, sizeof(head), fmt, ap);
	va_end(ap);
	memcpy(old, e->msg, sizeof(old));
	if (snprintf(e->msg, sizeof(e->msg), "%s: %s", head, old) >=
	    (int)sizeof(e->msg))
		memcpy(e->msg + sizeof(e->msg) - 4, "...", 4);
}

const char *
rc_str(enum rc rc)
{
	switch (rc) {
	case RC_OK:
		return "ok";
	case RC_NOTFOUND:
		return "not found";
	case RC_TIMEOUT:
		return "timeout";
	case RC_TEMP:
		return "temporary failure";
	case RC_PERM:
		return "permanent failure";
	case RC_NOMEM:
		return "out of memory";
	case RC_INVAL:
		return "invalid";
	}
	return "unknown";
}
