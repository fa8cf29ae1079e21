/*
 * clamd.h - a clamd INSTREAM client, the antivirus backend for sites that
 * already run clamd (antivirus.clamd = "unix:/run/clamav/clamd.ctl" or
 * "inet:3310@127.0.0.1").  One connection per scan, every wait bounded by
 * the caller's deadline.  Thread-safe: no shared state.
 */
#ifndef PORTERO_CLAMD_H
#define PORTERO_CLAMD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "err.h"
#include "scanproto.h"

#define CLAMD_CHUNK	65536	/* INSTREAM chunk size */
#define CLAMD_REPLY_MAX	1024	/* longest reply read */

struct clamd_addr {
	struct sockaddr_storage	 ss;
	socklen_t		 len;
	char			 text[128];	/* for logs */
};

/* "unix:/path", "local:/path", "inet:PORT@ADDR" or "inet6:PORT@ADDR"
 * (ADDR numeric: no resolver at config time). */
enum rc		 clamd_addr_parse(const char *, struct clamd_addr *,
		    struct err *);
/* Streams the content of fd (from offset 0, with pread) to clamd and
 * fills r; an I/O problem or a timeout is SCAN_ERROR. */
void		 clamd_scan(const struct clamd_addr *, int fd,
		    uint64_t deadline_ms, struct scan_result *r);
/*
 * Classifies one clamd reply (len bytes, NUL or newline terminated or
 * not): "stream: OK", "stream: NAME FOUND" (a limit name is SCAN_LIMIT),
 * "INSTREAM size limit exceeded. ERROR" (SCAN_LIMIT, clamd's
 * StreamMaxLength), anything else SCAN_ERROR.  Names are sanitised.
 */
void		 clamd_reply_parse(const char *buf, size_t len,
		    struct scan_result *r);

#endif
