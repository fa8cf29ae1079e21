/*
 * err.h - return codes and caller-provided error text.
 *
 * Every fallible function returns an enum rc and, when it fails, may put a
 * human-readable explanation in a struct err owned by the caller.  Plain
 * data, no allocation: thread-safe as long as each thread has its own err.
 */
#ifndef PORTERO_ERR_H
#define PORTERO_ERR_H

enum rc {
	RC_OK = 0,
	RC_NOTFOUND,
	RC_TIMEOUT,
	RC_TEMP,
	RC_PERM,
	RC_NOMEM,
	RC_INVAL
};

#define ERR_MAX	512

struct err {
	char	msg[ERR_MAX];
};

void		 err_clear(struct err *);
void		 err_set(struct err *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));
/* Prepend "prefix: " to the text already in e. */
void		 err_prefix(struct err *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));
const char	*rc_str(enum rc);

#endif
