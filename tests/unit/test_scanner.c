/*
 * test_scanner.c - the antivirus: wire format and clamd reply tables; the
 * scanner service (manager and scanner processes, libclamav) on a
 * signature database generated at test time (an .hdb hash of EICAR and
 * .ndb body signatures for marker strings): verdicts for plain, MIME,
 * zip and nested content, scan limits, a scanner killed mid-scan, reload
 * during a stream of scans, a failed reload, a late database, the
 * concurrency cap, timeouts; a private clamd (when installed) through
 * antivirus.clamd; and the "antivirus" check module's verdicts.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <openssl/evp.h>

#include "buf.h"
#include "ctx.h"
#include "pipeline.h"
#include "scanner.h"
#include "spool.h"
#include "unit.h"
#include "util.h"

/* EICAR in two halves, so this file is not itself the test virus. */
#define EICAR_A	"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-"
#define EICAR_B	"ANTIVIRUS-TEST-FILE!$H+H*"
#define MARKER	"PORTERO-TEST-MARKER-7d1f"	/* Portero.Test.Sig */
#define MARKER2	"PORTERO-TEST-MARKER-NEW-42"	/* .New */
#define MARKER3	"PORTERO-TEST-MARKER-POLL-9"	/* .Poll */
#define SCAN_MS	20000		/* generous deadline */

static char	 topdir[128], dbdir[160], tmpdir[160];
static char	 eicar[69];

/*
 * Test data.
 */

static void
write_file(const char *dir, const char *name, const char *text)
{
	char	 path[512], tmp[512];
	FILE	*fp;

	/* like freshclam: a temporary name, then rename */
	(void)snprintf(path, sizeof(path), "%s/%s", dir, name);
	(void)snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, name);
	fp = fopen(tmp, "w");
	assert_non_null(fp);
	assert_true(fputs(text, fp) >= 0);
	assert_int_equal(fclose(fp), 0);
	assert_int_equal(rename(tmp, path), 0);
}

static void
ndb_line(char *out, size_t len, const char *name, const char *marker)
{
	size_t	 i, off;

	off = (size_t)snprintf(out, len, "%s:0:*:", name);
	for (i = 0; marker[i] != '\0' && off + 3 < len; i++)
		off += (size_t)snprintf(out + off, len - off, "%02x",
		    (unsigned char)marker[i]);
	(void)snprintf(out + off, len - off, "\n");
}

/* The database: md5:size:name for EICAR (what sigtool --md5 writes) and
 * a body signature for MARKER. */
static void
write_db(const char *dir)
{
	unsigned char	 md[EVP_MAX_MD_SIZE];
	unsigned int	 mdlen = 0;
	char		 line[256];
	size_t		 i, off;

	assert_int_equal(EVP_Digest(eicar, strlen(eicar), md, &mdlen,
	    EVP_md5(), NULL), 1);
	for (i = 0, off = 0; i < mdlen; i++)
		off += (size_t)snprintf(line + off, sizeof(line) - off,
		    "%02x", md[i]);
	(void)snprintf(line + off, sizeof(line) - off,
	    ":68:Eicar-Test-Signature\n");
	write_file(dir, "test.hdb", line);
	ndb_line(line, sizeof(line), "Portero.Test.Sig", MARKER);
	write_file(dir, "test.ndb", line);
}

static uint32_t
crc32_of(const unsigned char *p, size_t n)
{
	uint32_t	 c = 0xffffffffu;
	size_t		 i;
	int		 k;

	for (i = 0; i < n; i++) {
		c ^= p[i];
		for (k = 0; k < 8; k++)
			c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1)));
	}
	return ~c;
}

static void
le(struct buf *b, uint32_t v, int bytes)
{
	int	 i;

	for (i = 0; i < bytes; i++)
		assert_int_equal(buf_putc(b, (char)((v >> (8 * i)) & 0xff)),
		    RC_OK);
}

/* A zip archive holding one stored (uncompressed) file. */
static void
zip_stored(struct buf *out, const char *name, const void *data, size_t len)
{
	uint32_t	 crc = crc32_of(data, len);
	size_t		 nlen = strlen(name), cd;
	int		 central;

	buf_init(out, 64 << 20);
	for (central = 0; central < 2; central++) {
		cd = out->len;
		le(out, central ? 0x02014b50u : 0x04034b50u, 4);
		if (central)
			le(out, 20, 2);		/* made by */
		le(out, 20, 2);			/* needed */
		le(out, 0, 2);			/* flags */
		le(out, 0, 2);			/* stored */
		le(out, 0, 2);			/* time */
		le(out, 0x21, 2);		/* 1980-01-01 */
		le(out, crc, 4);
		le(out, (uint32_t)len, 4);
		le(out, (uint32_t)len, 4);
		le(out, (uint32_t)nlen, 2);
		le(out, 0, 2);			/* extra */
		if (central) {
			le(out, 0, 2);		/* comment */
			le(out, 0, 2);		/* disk */
			le(out, 0, 2);		/* internal attributes */
			le(out, 0, 4);		/* external attributes */
			le(out, 0, 4);		/* local header offset */
		}
		assert_int_equal(buf_append(out, name, nlen), RC_OK);
		if (!central)
			assert_int_equal(buf_append(out, data, len), RC_OK);
	}
	nlen = out->len - cd;	/* central directory size */
	le(out, 0x06054b50u, 4);
	le(out, 0, 2);
	le(out, 0, 2);
	le(out, 1, 2);
	le(out, 1, 2);
	le(out, (uint32_t)nlen, 4);
	le(out, (uint32_t)cd, 4);
	le(out, 0, 2);
}

static void
b64_part(struct buf *out, const char *fname, const void *att, size_t len)
{
	unsigned char	*b64;
	size_t		 n, i;
	int		 k;

	assert_int_equal(buf_printf(out, "--b1\r\n"
	    "Content-Type: application/octet-stream; name=\"%s\"\r\n"
	    "Content-Transfer-Encoding: base64\r\n"
	    "Content-Disposition: attachment; filename=\"%s\"\r\n\r\n",
	    fname, fname), RC_OK);
	b64 = malloc(4 * (len / 3 + 1) + 1);
	assert_non_null(b64);
	k = EVP_EncodeBlock(b64, att, (int)len);
	assert_true(k >= 0);
	n = (size_t)k;
	for (i = 0; i < n; i += 76) {
		assert_int_equal(buf_append(out, b64 + i, n - i < 76 ? n - i :
		    76), RC_OK);
		assert_int_equal(buf_puts(out, "\r\n"), RC_OK);
	}
	free(b64);
}

/* A message with a text part and one or two base64 attachments (CRLF). */
static void
mime_msg2(struct buf *out, const char *fname, const void *att, size_t len,
    const char *fname2, const void *att2, size_t len2)
{
	buf_init(out, 64 << 20);
	assert_int_equal(buf_puts(out, "From: <a@example.com>\r\n"
	    "To: <b@example.org>\r\nSubject: report\r\nMIME-Version: 1.0\r\n"
	    "Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\n"
	    "Content-Type: text/plain\r\n\r\nSee the attachment.\r\n"),
	    RC_OK);
	b64_part(out, fname, att, len);
	if (fname2 != NULL)
		b64_part(out, fname2, att2, len2);
	assert_int_equal(buf_puts(out, "--b1--\r\n"), RC_OK);
}

static void
mime_msg(struct buf *out, const char *fname, const void *att, size_t len)
{
	mime_msg2(out, fname, att, len, NULL, NULL, 0);
}

static void
text_msg(struct buf *out, const char *body_extra, size_t size)
{
	buf_init(out, 64 << 20);
	assert_int_equal(buf_puts(out, "From: <a@example.com>\r\nTo: "
	    "<b@example.org>\r\nSubject: hello\r\n\r\n"), RC_OK);
	while (out->len < size)
		assert_int_equal(buf_puts(out, "The quick brown fox jumps "
		    "over the lazy dog, again and again.\r\n"), RC_OK);
	if (body_extra != NULL)
		assert_int_equal(buf_printf(out, "%s\r\n", body_extra), RC_OK);
}

static int
mem_fd(const void *p, size_t n)
{
	int	 fd = memfd_create("test-msg", MFD_CLOEXEC);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, p, n), (ssize_t)n);
	return fd;		/* offset at the end: scans start at 0 */
}

static void
scan_mem(const void *p, size_t n, unsigned ms, struct scan_result *r)
{
	int	 fd = mem_fd(p, n);

	scan_client_scan(fd, now_ms() + ms, r);
	(void)close(fd);
}

static void
settings(struct scan_settings *s)
{
	memset(s, 0, sizeof(*s));
	(void)snprintf(s->database, sizeof(s->database), "%s", dbdir);
	(void)snprintf(s->tmpdir, sizeof(s->tmpdir), "%s", tmpdir);
	s->scanners = 2;
	s->check_interval = 0;
	s->timeout = 30;
	s->heuristic_alerts = 1;
	s->max_scan_size = 100 << 20;
	s->max_file_size = 50 << 20;
	s->max_embedded_pe = 10 << 20;
	s->max_recursion = 16;
	s->max_files = 1000;
	s->max_scan_time = 20000;
}

static void
start(struct scan_service *sv, const struct scan_settings *s)
{
	struct err	 e;

	err_clear(&e);
	assert_int_equal(scanner_service_start(sv, s, NULL, &e), RC_OK);
}

/* Processes whose parent is ppid. */
static size_t
children_of(pid_t ppid, pid_t *out, size_t max)
{
	DIR		*d = opendir("/proc");
	struct dirent	*de;
	char		 path[64], buf[512], *p;
	size_t		 n = 0;
	long		 pp;
	FILE		*fp;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL && n < max) {
		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		(void)snprintf(path, sizeof(path), "/proc/%.32s/stat",
		    de->d_name);
		if ((fp = fopen(path, "r")) == NULL)
			continue;
		if (fgets(buf, sizeof(buf), fp) != NULL &&
		    (p = strrchr(buf, ')')) != NULL &&
		    sscanf(p + 1, " %*c %ld", &pp) == 1 && pp == (long)ppid)
			out[n++] = (pid_t)strtol(de->d_name, NULL, 10);
		(void)fclose(fp);
	}
	(void)closedir(d);
	return n;
}

/* Waits up to ms for ppid to have n children; returns how many it has. */
static size_t
wait_children(pid_t ppid, size_t n, unsigned ms, pid_t *out, size_t max)
{
	uint64_t	 end = now_ms() + ms;
	size_t		 k;

	for (;;) {
		k = children_of(ppid, out, max);
		if (k == n || now_ms() > end)
			return k;
		(void)usleep(20 * 1000);
	}
}

static void
expect(const struct scan_result *r, enum scan_verdict v, const char *name,
    const char *row)
{
	if (r->verdict != v || (name != NULL && strncmp(r->name, name,
	    strlen(name)) != 0))
		fail_msg("%s: got %s '%s', want %s '%s'", row,
		    scan_verdict_name(r->verdict), r->name,
		    scan_verdict_name(v), name != NULL ? name : "");
}

/*
 * Wire format and clamd replies.
 */

struct prow {
	const char		*name;
	const char		*in;
	int			 ok;
	enum scan_verdict	 v;
	const char		*want;	/* name after sanitising */
};

static const struct prow prows[] = {
	{ "ok", "PORTERO-SCAN 1 OK id=7 gen=3 sigs=8700000\n", 1, SCAN_CLEAN,
	    "" },
	{ "found", "PORTERO-SCAN 1 FOUND id=7 gen=3 sigs=2 "
	    "name=Win.Test.EICAR_HDB-1\n", 1, SCAN_FOUND,
	    "Win.Test.EICAR_HDB-1" },
	{ "found limit name is a limit", "PORTERO-SCAN 1 FOUND id=7 gen=1 "
	    "sigs=2 name=Heuristics.Limits.Exceeded.MaxFileSize\n", 1,
	    SCAN_LIMIT, "Heuristics.Limits.Exceeded.MaxFileSize" },
	{ "limit", "PORTERO-SCAN 1 LIMIT id=7 gen=1 sigs=2 "
	    "name=Heuristics.Limits.Exceeded.MaxRecursion\n", 1, SCAN_LIMIT,
	    "Heuristics.Limits.Exceeded.MaxRecursion" },
	{ "error text", "PORTERO-SCAN 1 ERROR id=7 gen=0 sigs=0 "
	    "text=no virus database loaded\n", 1, SCAN_ERROR,
	    "no virus database loaded" },
	{ "name sanitised", "PORTERO-SCAN 1 FOUND id=1 gen=1 sigs=1 "
	    "name=a b<c>%d\x01\x7f\xff\n", 1, SCAN_FOUND, "a_b_c__d___" },
	{ "text sanitised", "PORTERO-SCAN 1 ERROR id=1 gen=1 sigs=1 "
	    "text=x\ty\x80\n", 1, SCAN_ERROR, "x?y?" },
	{ "no newline", "PORTERO-SCAN 1 OK id=7 gen=3 sigs=1", 0, 0, NULL },
	{ "two lines", "PORTERO-SCAN 1 OK id=7 gen=3 sigs=1\n\n", 0, 0, NULL },
	{ "NUL inside", "PORTERO-SCAN 1 OK id=7\0 gen=3 sigs=1\n", 0, 0,
	    NULL },
	{ "version 2", "PORTERO-SCAN 2 OK id=7 gen=3 sigs=1\n", 0, 0, NULL },
	{ "unknown verdict", "PORTERO-SCAN 1 MAYBE id=7 gen=3 sigs=1\n", 0, 0,
	    NULL },
	{ "leading zero", "PORTERO-SCAN 1 OK id=07 gen=3 sigs=1\n", 0, 0,
	    NULL },
	{ "negative", "PORTERO-SCAN 1 OK id=-7 gen=3 sigs=1\n", 0, 0, NULL },
	{ "id overflow", "PORTERO-SCAN 1 OK id=18446744073709551616 gen=3 "
	    "sigs=1\n", 0, 0, NULL },
	{ "gen overflow", "PORTERO-SCAN 1 OK id=1 gen=4294967296 sigs=1\n", 0,
	    0, NULL },
	{ "OK with a name", "PORTERO-SCAN 1 OK id=1 gen=1 sigs=1 name=x\n", 0,
	    0, NULL },
	{ "FOUND without a name", "PORTERO-SCAN 1 FOUND id=1 gen=1 sigs=1\n",
	    0, 0, NULL },
	{ "FOUND empty name", "PORTERO-SCAN 1 FOUND id=1 gen=1 sigs=1 name=\n",
	    0, 0, NULL },
	{ "ERROR with name=", "PORTERO-SCAN 1 ERROR id=1 gen=1 sigs=1 "
	    "name=x\n", 0, 0, NULL },
	{ "fields swapped", "PORTERO-SCAN 1 OK gen=1 id=1 sigs=1\n", 0, 0,
	    NULL },
	{ "double space", "PORTERO-SCAN 1 OK id=1  gen=1 sigs=1\n", 0, 0,
	    NULL },
	{ "empty", "\n", 0, 0, NULL },
};

static void
test_proto_rows(void **state)
{
	struct scan_result	 r;
	uint64_t		 id;
	size_t			 i, len;

	(void)state;
	for (i = 0; i < NELEM(prows); i++) {
		const struct prow *p = &prows[i];

		/* rows with a NUL: up to the newline */
		len = strlen(p->in);
		if (strcmp(p->name, "NUL inside") == 0)
			len = sizeof("PORTERO-SCAN 1 OK id=7\0 gen=3 "
			    "sigs=1\n") - 1;
		if ((scanproto_reply_parse(p->in, len, &id, &r) == RC_OK) !=
		    p->ok)
			fail_msg("%s: parse %s", p->name, p->ok ? "failed" :
			    "accepted");
		if (!p->ok)
			continue;
		expect(&r, p->v, NULL, p->name);
		if (strcmp(r.name, p->want) != 0)
			fail_msg("%s: name '%s', want '%s'", p->name, r.name,
			    p->want);
	}
}

static void
test_proto_roundtrip(void **state)
{
	static const enum scan_verdict vs[] = { SCAN_CLEAN, SCAN_FOUND,
	    SCAN_LIMIT, SCAN_ERROR };
	struct scan_result	 r, back;
	char			 line[SCANPROTO_MAX];
	uint64_t		 id;
	size_t			 i, n;

	(void)state;
	for (i = 0; i < NELEM(vs); i++) {
		memset(&r, 0, sizeof(r));
		scan_result_set(&r, vs[i], "%s", vs[i] == SCAN_LIMIT ?
		    "Heuristics.Limits.Exceeded.MaxFiles" : vs[i] ==
		    SCAN_ERROR ? "libclamav: Can't map file" : "Eicar-Test");
		r.gen = 4294967295u;
		r.sigs = UINT64_MAX;
		n = scanproto_reply_encode(line, sizeof(line), UINT64_MAX, &r);
		assert_true(n > 0);
		assert_int_equal(scanproto_reply_parse(line, n, &id, &back),
		    RC_OK);
		assert_true(id == UINT64_MAX);
		assert_int_equal(back.verdict, vs[i]);
		assert_int_equal(back.gen, 4294967295u);
		assert_true(back.sigs == UINT64_MAX);
		if (vs[i] != SCAN_CLEAN)
			assert_string_equal(back.name, r.name);
	}
	n = scanproto_request_encode(line, sizeof(line), 42);
	assert_int_equal(scanproto_request_parse(line, n, &id), RC_OK);
	assert_true(id == 42);
	assert_int_equal(scanproto_request_parse("PORTERO-SCAN 1 SCAN id=\n",
	    24, &id), RC_INVAL);
	/* a name of 200 bytes is cut, not refused, when encoding */
	memset(r.name, 'A', sizeof(r.name) - 1);
	r.name[sizeof(r.name) - 1] = '\0';
	r.verdict = SCAN_FOUND;
	n = scanproto_reply_encode(line, sizeof(line), 1, &r);
	assert_int_equal(scanproto_reply_parse(line, n, &id, &back), RC_OK);
	assert_int_equal(strlen(back.name), SCAN_NAME_MAX - 1);
}

static const struct prow crows[] = {
	{ "clean", "stream: OK", 1, SCAN_CLEAN, "" },
	{ "clean NUL", "stream: OK\0", 1, SCAN_CLEAN, "" },
	{ "found", "stream: Eicar-Test-Signature FOUND", 1, SCAN_FOUND,
	    "Eicar-Test-Signature" },
	{ "found newline", "stream: Win.Test.EICAR_HDB-1 FOUND\n", 1,
	    SCAN_FOUND, "Win.Test.EICAR_HDB-1" },
	{ "limit", "stream: Heuristics.Limits.Exceeded.MaxScanSize FOUND", 1,
	    SCAN_LIMIT, "Heuristics.Limits.Exceeded.MaxScanSize" },
	{ "stream max length", "INSTREAM size limit exceeded. ERROR", 1,
	    SCAN_LIMIT, "clamd.StreamMaxLength" },
	{ "error", "stream: Can't allocate memory ERROR", 1, SCAN_ERROR,
	    "clamd: stream: Can't allocate memory ERROR" },
	{ "garbage", "\x01\x02 FOUND", 1, SCAN_ERROR, "clamd: ?? FOUND" },
	{ "empty name", "stream:  FOUND", 1, SCAN_ERROR,
	    "clamd: stream:  FOUND" },
	{ "nothing", "", 1, SCAN_ERROR, "clamd: " },
};

static void
test_clamd_rows(void **state)
{
	struct scan_result	 r;
	struct clamd_addr	 a;
	struct err		 e;
	size_t			 i;

	(void)state;
	for (i = 0; i < NELEM(crows); i++) {
		const struct prow *p = &crows[i];

		clamd_reply_parse(p->in, strlen(p->in) + (strstr(p->name,
		    "NUL") != NULL), &r);
		expect(&r, p->v, NULL, p->name);
		if (strcmp(r.name, p->want) != 0)
			fail_msg("%s: name '%s', want '%s'", p->name, r.name,
			    p->want);
	}
	assert_int_equal(clamd_addr_parse("unix:/run/clamav/clamd.ctl", &a,
	    &e), RC_OK);
	assert_int_equal(clamd_addr_parse("inet:3310@127.0.0.1", &a, &e),
	    RC_OK);
	assert_string_equal(a.text, "127.0.0.1:3310");
	assert_int_equal(clamd_addr_parse("inet:3310@[::1]", &a, &e), RC_OK);
	assert_int_equal(clamd_addr_parse("inet6:3310@::1", &a, &e), RC_OK);
	assert_int_equal(clamd_addr_parse("inet:3310@localhost", &a, &e),
	    RC_INVAL);
	assert_int_equal(clamd_addr_parse("inet:0@127.0.0.1", &a, &e),
	    RC_INVAL);
	assert_int_equal(clamd_addr_parse("inet:127.0.0.1", &a, &e), RC_INVAL);
	assert_int_equal(clamd_addr_parse("unix:relative", &a, &e), RC_INVAL);
	assert_int_equal(clamd_addr_parse("tcp:1@127.0.0.1", &a, &e),
	    RC_INVAL);
}

/*
 * The scanner service.
 */

static void
test_verdicts(void **state)
{
	struct scan_service	 sv;
	struct scan_settings	 s;
	struct scan_result	 r;
	struct buf		 m, z, zz, mz;

	(void)state;
	settings(&s);
	start(&sv, &s);
	text_msg(&m, NULL, 4096);
	scan_mem(m.data, m.len, SCAN_MS, &r);
	expect(&r, SCAN_CLEAN, NULL, "clean text");
	assert_int_equal(r.gen, 1);
	assert_true(r.sigs == 2);
	buf_free(&m);

	scan_mem(eicar, strlen(eicar), SCAN_MS, &r);
	expect(&r, SCAN_FOUND, "Eicar-Test-Signature", "plain EICAR");

	text_msg(&m, "a line with " MARKER " inside", 4096);
	scan_mem(m.data, m.len, SCAN_MS, &r);
	expect(&r, SCAN_FOUND, "Portero.Test.Sig", "body signature");
	buf_free(&m);

	mime_msg(&m, "eicar.com", eicar, strlen(eicar));
	scan_mem(m.data, m.len, SCAN_MS, &r);
	expect(&r, SCAN_FOUND, "Eicar-Test-Signature", "base64 attachment");
	buf_free(&m);

	zip_stored(&z, "eicar.com", eicar, strlen(eicar));
	scan_mem(z.data, z.len, SCAN_MS, &r);
	expect(&r, SCAN_FOUND, "Eicar-Test-Signature", "zip");
	mime_msg(&mz, "invoice.zip", z.data, z.len);
	scan_mem(mz.data, mz.len, SCAN_MS, &r);
	expect(&r, SCAN_FOUND, "Eicar-Test-Signature", "zip attachment");
	zip_stored(&zz, "inner.zip", z.data, z.len);
	scan_mem(zz.data, zz.len, SCAN_MS, &r);
	expect(&r, SCAN_FOUND, "Eicar-Test-Signature", "zip in zip");
	buf_free(&mz);
	buf_free(&z);
	buf_free(&zz);

	/* a clean zip attachment */
	zip_stored(&z, "notes.txt", "nothing to see", 14);
	mime_msg(&mz, "notes.zip", z.data, z.len);
	scan_mem(mz.data, mz.len, SCAN_MS, &r);
	expect(&r, SCAN_CLEAN, NULL, "clean zip attachment");
	buf_free(&mz);
	buf_free(&z);
	scanner_service_stop(&sv);
}

static void
test_limits(void **state)
{
	struct scan_service	 sv;
	struct scan_settings	 s;
	struct scan_result	 r;
	struct buf		 z[5], m;
	int			 i;

	(void)state;
	settings(&s);
	s.max_recursion = 3;
	s.max_file_size = 64 * 1024;
	start(&sv, &s);
	/* EICAR four archives deep: past max_recursion */
	zip_stored(&z[0], "eicar.com", eicar, strlen(eicar));
	for (i = 1; i < 5; i++)
		zip_stored(&z[i], "x.zip", z[i - 1].data, z[i - 1].len);
	scan_mem(z[4].data, z[4].len, SCAN_MS, &r);
	expect(&r, SCAN_LIMIT, "Heuristics.Limits.Exceeded.MaxRecursion",
	    "nested zips");
	/* within the limit it is found */
	scan_mem(z[1].data, z[1].len, SCAN_MS, &r);
	expect(&r, SCAN_FOUND, "Eicar-Test-Signature", "zip in zip");
	/* a virus beside a limit is a virus, whatever the order */
	mime_msg2(&m, "deep.zip", z[4].data, z[4].len, "eicar.com", eicar,
	    strlen(eicar));
	scan_mem(m.data, m.len, SCAN_MS, &r);
	expect(&r, SCAN_FOUND, "Eicar-Test-Signature", "limit, then virus");
	buf_free(&m);
	mime_msg2(&m, "eicar.com", eicar, strlen(eicar), "deep.zip",
	    z[4].data, z[4].len);
	scan_mem(m.data, m.len, SCAN_MS, &r);
	expect(&r, SCAN_FOUND, "Eicar-Test-Signature", "virus, then limit");
	buf_free(&m);
	for (i = 0; i < 5; i++)
		buf_free(&z[i]);
	/* a message bigger than max_file_size is not scanned: a limit */
	text_msg(&m, NULL, 100 * 1024);
	scan_mem(m.data, m.len, SCAN_MS, &r);
	expect(&r, SCAN_LIMIT, "Heuristics.Limits.Exceeded.MaxFileSize",
	    "message over max_file_size");
	buf_free(&m);
	text_msg(&m, NULL, 16 * 1024);
	scan_mem(m.data, m.len, SCAN_MS, &r);
	expect(&r, SCAN_CLEAN, NULL, "message under max_file_size");
	buf_free(&m);
	scanner_service_stop(&sv);
}

struct scan_job {
	const void		*p;
	size_t			 n;
	unsigned		 ms;
	struct scan_result	 r;
	uint64_t		 took;
};

static void *
scan_thread(void *arg)
{
	struct scan_job	*j = arg;
	uint64_t	 t0 = now_ms();

	scan_mem(j->p, j->n, j->ms, &j->r);
	j->took = now_ms() - t0;
	return NULL;
}

/* No antivirus.tmpdir: the scanners' directories are in /dev/shm
 * (memory) when it is writable, and gone when the service stops. */
static void
test_default_tmpdir(void **state)
{
	struct scan_service	 sv;
	struct scan_settings	 s;
	struct scan_result	 r;
	struct stat		 st;
	pid_t			 kids[8];
	char			 dir[512];
	int			 i;

	(void)state;
	if (access("/dev/shm", W_OK | X_OK) != 0)
		skip();
	settings(&s);
	s.scanners = 1;
	s.tmpdir[0] = '\0';
	start(&sv, &s);
	scan_mem(eicar, strlen(eicar), SCAN_MS, &r);
	expect(&r, SCAN_FOUND, "Eicar-Test-Signature", "default tmpdir");
	assert_int_equal(wait_children(sv.pid, 1, 5000, kids, 8), 1);
	(void)snprintf(dir, sizeof(dir), "/dev/shm/portero-scan.%ld",
	    (long)kids[0]);
	for (i = 0; i < 250 && stat(dir, &st) != 0; i++)
		(void)usleep(20 * 1000);
	assert_int_equal(stat(dir, &st), 0);
	assert_true(S_ISDIR(st.st_mode) && (st.st_mode & 077) == 0);
	scanner_service_stop(&sv);
	for (i = 0; i < 250 && stat(dir, &st) == 0; i++)
		(void)usleep(20 * 1000);
	assert_int_not_equal(stat(dir, &st), 0);
}

static void
test_scanner_killed(void **state)
{
	struct scan_service	 sv;
	struct scan_settings	 s;
	struct scan_job		 j;
	struct scan_result	 r;
	struct stat		 st;
	pthread_t		 th;
	pid_t			 kids[8], after[8];
	char			 dir[512];
	int			 i;

	(void)state;
	settings(&s);
	s.scanners = 1;
	assert_int_equal(setenv(SCANNER_TEST_DELAY_ENV, "1500", 1), 0);
	start(&sv, &s);
	assert_int_equal(unsetenv(SCANNER_TEST_DELAY_ENV), 0);
	assert_int_equal(wait_children(sv.pid, 1, 5000, kids, 8), 1);
	(void)snprintf(dir, sizeof(dir), "%s/portero-scan.%ld", tmpdir,
	    (long)kids[0]);
	for (i = 0; i < 250 && stat(dir, &st) != 0; i++)
		(void)usleep(20 * 1000);	/* made by the scanner */
	assert_int_equal(stat(dir, &st), 0);	/* its libclamav tmpdir */

	memset(&j, 0, sizeof(j));
	j.p = eicar;
	j.n = strlen(eicar);
	j.ms = SCAN_MS;
	assert_int_equal(pthread_create(&th, NULL, scan_thread, &j), 0);
	(void)usleep(500 * 1000);		/* in the scanner's delay */
	assert_int_equal(kill(kids[0], SIGKILL), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	expect(&j.r, SCAN_ERROR, "scanner process died", "killed mid-scan");
	assert_true(j.took < 1500);

	/* replaced (within a second or so), and the next scan is normal */
	scan_mem(eicar, strlen(eicar), SCAN_MS, &r);
	expect(&r, SCAN_FOUND, "Eicar-Test-Signature", "after the kill");
	assert_int_equal(wait_children(sv.pid, 1, 5000, after, 8), 1);
	assert_true(after[0] != kids[0]);
	assert_int_not_equal(stat(dir, &st), 0);	/* cleaned up */
	assert_int_equal(errno, ENOENT);
	scanner_service_stop(&sv);
}

static void
test_timeouts(void **state)
{
	struct scan_service	 sv;
	struct scan_settings	 s;
	struct scan_result	 r;
	uint64_t		 t0;
	int			 q[2];

	(void)state;
	/* a queue nobody serves */
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, q), 0);
	scan_client_set_fd(q[0]);
	t0 = now_ms();
	scan_mem(eicar, strlen(eicar), 400, &r);
	expect(&r, SCAN_ERROR, "scan timed out", "unserved queue");
	assert_true(now_ms() - t0 >= 390 && now_ms() - t0 < 1500);
	(void)close(q[0]);
	(void)close(q[1]);
	scan_client_set_fd(-1);
	scan_mem(eicar, strlen(eicar), 400, &r);
	expect(&r, SCAN_ERROR, "scanner service not running", "no service");

	/* a scanner slower than the deadline */
	settings(&s);
	s.scanners = 1;
	assert_int_equal(setenv(SCANNER_TEST_DELAY_ENV, "3000", 1), 0);
	start(&sv, &s);
	assert_int_equal(unsetenv(SCANNER_TEST_DELAY_ENV), 0);
	t0 = now_ms();
	scan_mem(eicar, strlen(eicar), 600, &r);
	expect(&r, SCAN_ERROR, "scan timed out", "slow scanner");
	assert_true(now_ms() - t0 >= 590 && now_ms() - t0 < 2000);
	scanner_service_stop(&sv);
}

struct cap_job {
	unsigned	 max, ms;
	int		 ok;
	enum rc		 slot;
	struct scan_result r;
};

static void *
cap_thread(void *arg)
{
	struct cap_job	*j = arg;
	uint64_t	 deadline = now_ms() + j->ms;

	j->slot = scan_slot_acquire(j->max, deadline);
	if (j->slot != RC_OK)
		return NULL;
	scan_mem(eicar, strlen(eicar), (unsigned)(deadline - now_ms()), &j->r);
	scan_slot_release();
	return NULL;
}

static void
test_cap(void **state)
{
	struct scan_service	 sv;
	struct scan_settings	 s;
	struct cap_job		 j[6];
	pthread_t		 th[6];
	uint64_t		 t0;
	int			 i, late = 0;

	(void)state;
	settings(&s);
	s.scanners = 4;
	assert_int_equal(setenv(SCANNER_TEST_DELAY_ENV, "300", 1), 0);
	start(&sv, &s);
	assert_int_equal(unsetenv(SCANNER_TEST_DELAY_ENV), 0);
	(void)scan_slot_peak(1);
	/* 6 scans, 2 at a time, on 4 scanners: three rounds of 300 ms */
	t0 = now_ms();
	for (i = 0; i < 6; i++) {
		j[i].max = 2;
		j[i].ms = SCAN_MS;
		assert_int_equal(pthread_create(&th[i], NULL, cap_thread,
		    &j[i]), 0);
	}
	for (i = 0; i < 6; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_int_equal(j[i].slot, RC_OK);
		expect(&j[i].r, SCAN_FOUND, "Eicar", "capped scans");
	}
	assert_true(now_ms() - t0 >= 880);
	assert_int_equal(scan_slot_peak(1), 2);
	/* one at a time, 700 ms each: waiting for a slot counts against
	 * the same deadline */
	for (i = 0; i < 4; i++) {
		j[i].max = 1;
		j[i].ms = 700;
		assert_int_equal(pthread_create(&th[i], NULL, cap_thread,
		    &j[i]), 0);
	}
	for (i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		if (j[i].slot == RC_TIMEOUT)
			late++;
		else if (j[i].r.verdict == SCAN_ERROR)
			late++;
		else
			expect(&j[i].r, SCAN_FOUND, "Eicar", "cap 1");
	}
	assert_true(late >= 1);
	assert_int_equal(scan_slot_peak(1), 1);
	scanner_service_stop(&sv);
}

struct stream {
	atomic_int	 done, failed, stop;
	atomic_uint	 gens;		/* bit per generation seen */
	struct buf	 clean;
};

static void *
stream_thread(void *arg)
{
	struct stream		*st = arg;
	struct scan_result	 r;
	int			 i;

	/* until told to stop (the new generation has served some), or a
	 * bound far beyond any real run */
	for (i = 0; i < 100000 && !atomic_load(&st->stop); i++) {
		if (i % 2 == 0) {
			scan_mem(eicar, strlen(eicar), SCAN_MS, &r);
			if (r.verdict != SCAN_FOUND)
				atomic_fetch_add(&st->failed, 1);
		} else {
			scan_mem(st->clean.data, st->clean.len, SCAN_MS, &r);
			if (r.verdict != SCAN_CLEAN)
				atomic_fetch_add(&st->failed, 1);
		}
		if (r.verdict == SCAN_ERROR)
			fprintf(stderr, "# stream error: %s\n", r.name);
		if (r.gen < 32)
			atomic_fetch_or(&st->gens, 1u << r.gen);
		atomic_fetch_add(&st->done, 1);
	}
	return NULL;
}

static void
wait_found(const char *marker, const char *name, unsigned ms,
    struct scan_result *r)
{
	uint64_t	 end = now_ms() + ms;
	struct buf	 m;

	text_msg(&m, marker, 1024);
	do {
		scan_mem(m.data, m.len, SCAN_MS, r);
		if (r->verdict == SCAN_FOUND)
			break;
		(void)usleep(50 * 1000);
	} while (now_ms() < end);
	buf_free(&m);
	expect(r, SCAN_FOUND, name, marker);
}

static void
test_reload(void **state)
{
	struct scan_service	 sv;
	struct scan_settings	 s;
	struct scan_result	 r;
	struct stream		 st;
	pthread_t		 th[4];
	char			 line[256], path[512];
	pid_t			 kids[16];
	int			 i, done_at_switch;
	unsigned		 gen;

	(void)state;
	settings(&s);
	s.check_interval = 1;
	start(&sv, &s);
	memset(&st, 0, sizeof(st));
	text_msg(&st.clean, NULL, 4096);
	scan_mem(eicar, strlen(eicar), SCAN_MS, &r);	/* engine loaded */
	expect(&r, SCAN_FOUND, "Eicar", "before");
	for (i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&th[i], NULL, stream_thread,
		    &st), 0);
	while (atomic_load(&st.done) < 40)
		(void)usleep(1000);
	/* a new signature file, then SIGUSR1, in the middle of the stream */
	ndb_line(line, sizeof(line), "Portero.Test.New", MARKER2);
	write_file(dbdir, "new.ndb", line);
	assert_int_equal(kill(sv.pid, SIGUSR1), 0);
	/* the stream goes on until the new generation has served scans of
	 * it (a slow machine or a sanitizer build loads the engine slowly),
	 * 60 s at most */
	for (i = 0; i < 60000 && !(atomic_load(&st.gens) & ~3u); i++)
		(void)usleep(1000);
	done_at_switch = atomic_load(&st.done);
	while (atomic_load(&st.done) < done_at_switch + 20)
		(void)usleep(1000);
	atomic_store(&st.stop, 1);
	for (i = 0; i < 4; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);
	assert_true(atomic_load(&st.done) >= 60);
	assert_int_equal(atomic_load(&st.failed), 0);
	buf_free(&st.clean);
	wait_found(MARKER2, "Portero.Test.New", 5000, &r);
	assert_true(r.gen >= 2);
	assert_true(r.sigs == 3);
	/* both generations served the stream */
	assert_true(atomic_load(&st.gens) & 2u);
	assert_true(atomic_load(&st.gens) & ~3u);
	/* the old generation is gone, the new one complete */
	assert_int_equal(wait_children(sv.pid, 2, 5000, kids, 16), 2);

	/* the directory poll (check_interval 1 s) finds a new file alone */
	gen = r.gen;
	ndb_line(line, sizeof(line), "Portero.Test.Poll", MARKER3);
	write_file(dbdir, "poll.ndb", line);
	wait_found(MARKER3, "Portero.Test.Poll", 8000, &r);
	assert_true(r.gen > gen);

	/* a corrupt file: the reload fails, the old engine stays */
	gen = r.gen;
	write_file(dbdir, "bad.ndb", "this is not a signature\n");
	assert_int_equal(kill(sv.pid, SIGUSR1), 0);
	(void)usleep(2500 * 1000);	/* SIGUSR1 and a poll both tried */
	scan_mem(eicar, strlen(eicar), SCAN_MS, &r);
	expect(&r, SCAN_FOUND, "Eicar-Test-Signature", "after bad reload");
	assert_int_equal(r.gen, gen);
	wait_found(MARKER3, "Portero.Test.Poll", 1000, &r);
	assert_int_equal(r.gen, gen);
	/* fixed: the next poll loads it */
	(void)snprintf(path, sizeof(path), "%s/bad.ndb", dbdir);
	assert_int_equal(unlink(path), 0);
	for (i = 0; i < 80; i++) {
		scan_mem(eicar, strlen(eicar), SCAN_MS, &r);
		if (r.gen > gen)
			break;
		(void)usleep(100 * 1000);
	}
	expect(&r, SCAN_FOUND, "Eicar-Test-Signature", "after the fix");
	assert_true(r.gen > gen);
	scanner_service_stop(&sv);
	(void)snprintf(path, sizeof(path), "%s/new.ndb", dbdir);
	(void)unlink(path);
	(void)snprintf(path, sizeof(path), "%s/poll.ndb", dbdir);
	(void)unlink(path);
}

static void
test_late_database(void **state)
{
	struct scan_service	 sv;
	struct scan_settings	 s;
	struct scan_result	 r;
	char			 dir[256];
	uint64_t		 t0;
	int			 i;

	(void)state;
	(void)snprintf(dir, sizeof(dir), "%s/late", topdir);
	assert_int_equal(mkdir(dir, 0700), 0);
	settings(&s);
	(void)snprintf(s.database, sizeof(s.database), "%s", dir);
	s.check_interval = 1;
	start(&sv, &s);
	/* no database: an error at once, never a verdict */
	t0 = now_ms();
	scan_mem(eicar, strlen(eicar), SCAN_MS, &r);
	expect(&r, SCAN_ERROR, "no virus database loaded", "empty dir");
	assert_true(now_ms() - t0 < 5000);
	write_db(dir);
	for (i = 0; i < 80; i++) {
		scan_mem(eicar, strlen(eicar), SCAN_MS, &r);
		if (r.verdict != SCAN_ERROR)
			break;
		(void)usleep(100 * 1000);
	}
	expect(&r, SCAN_FOUND, "Eicar-Test-Signature", "database arrived");
	scanner_service_stop(&sv);
}

/* 1 if pid exists and is not a zombie (PID 1 may not reap orphans). */
static int
running(pid_t pid)
{
	char	 path[64], buf[512], *p;
	FILE	*fp;
	int	 r = 0;

	(void)snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	if ((fp = fopen(path, "r")) == NULL)
		return 0;
	if (fgets(buf, sizeof(buf), fp) != NULL &&
	    (p = strrchr(buf, ')')) != NULL && p[1] == ' ' && p[2] != 'Z' &&
	    p[2] != 'X')
		r = 1;
	(void)fclose(fp);
	return r;
}

static void
test_manager_dies(void **state)
{
	struct scan_service	 sv;
	struct scan_settings	 s;
	struct scan_result	 r;
	pid_t			 kids[8];
	size_t			 n, i;
	int			 alive;
	uint64_t		 end;
	struct stat		 st;
	char			 dir[512];

	(void)state;
	settings(&s);
	start(&sv, &s);
	scan_mem(eicar, strlen(eicar), SCAN_MS, &r);
	expect(&r, SCAN_FOUND, "Eicar", "before");
	n = wait_children(sv.pid, 2, 5000, kids, 8);
	assert_int_equal(n, 2);
	assert_int_equal(kill(sv.pid, SIGKILL), 0);
	/* the scanners die with their manager */
	end = now_ms() + 5000;
	do {
		alive = 0;
		for (i = 0; i < n; i++)
			alive += running(kids[i]);
		if (alive == 0)
			break;
		(void)usleep(20 * 1000);
	} while (now_ms() < end);
	assert_int_equal(alive, 0);
	scanner_service_stop(&sv);
	/* their temporary directories stay, until the next manager starts */
	(void)snprintf(dir, sizeof(dir), "%s/portero-scan.%ld", tmpdir,
	    (long)kids[0]);
	assert_int_equal(stat(dir, &st), 0);
	start(&sv, &s);
	scan_mem(eicar, strlen(eicar), SCAN_MS, &r);
	expect(&r, SCAN_FOUND, "Eicar", "next manager");
	assert_int_not_equal(stat(dir, &st), 0);
	scanner_service_stop(&sv);
}

/*
 * clamd through antivirus.clamd.
 */

static pid_t
clamd_start(const char *dir, const char *sock)
{
	char		 conf[512], text[2048];
	pid_t		 pid;
	struct clamd_addr a;
	struct scan_result r;
	struct err	 e;
	uint64_t	 end;

	(void)snprintf(conf, sizeof(conf), "%s/clamd.conf", dir);
	(void)snprintf(text, sizeof(text),
	    "LocalSocket %s\nDatabaseDirectory %s\nTemporaryDirectory %s\n"
	    "Foreground yes\nLogFile %s/clamd.log\nPidFile %s/clamd.pid\n"
	    "AlertExceedsMax yes\nMaxRecursion 3\nStreamMaxLength 1M\n"
	    "MaxFileSize 1M\nSelfCheck 0\n", sock, dbdir, tmpdir, dir, dir);
	write_file(dir, "clamd.conf", text);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int fd = open("/dev/null", O_RDWR);

		(void)dup2(fd, 1);
		(void)dup2(fd, 2);
		execl("/usr/sbin/clamd", "clamd", "-c", conf, (char *)NULL);
		_exit(127);
	}
	(void)snprintf(text, sizeof(text), "unix:%s", sock);
	assert_int_equal(clamd_addr_parse(text, &a, &e), RC_OK);
	end = now_ms() + 60000;
	do {
		(void)usleep(100 * 1000);
		clamd_scan(&a, 0, now_ms() + 2000, &r);
	} while (r.verdict == SCAN_ERROR && strstr(r.name, "connect") !=
	    NULL && now_ms() < end && waitpid(pid, NULL, WNOHANG) == 0);
	return pid;
}

static void
clamd_scan_mem(const struct clamd_addr *a, const void *p, size_t n,
    struct scan_result *r)
{
	int	 fd = mem_fd(p, n);

	clamd_scan(a, fd, now_ms() + SCAN_MS, r);
	(void)close(fd);
}

static void
test_clamd(void **state)
{
	struct clamd_addr	 a;
	struct scan_result	 r;
	struct err		 e;
	struct buf		 m, z[5];
	char			 dir[256], sock[300], spec[320];
	pid_t			 pid;
	int			 i, status;

	(void)state;
	if (access("/usr/sbin/clamd", X_OK) != 0)
		skip();		/* package clamav-daemon */
	(void)snprintf(dir, sizeof(dir), "%s/clamd", topdir);
	assert_int_equal(mkdir(dir, 0700), 0);
	(void)snprintf(sock, sizeof(sock), "%s/clamd.sock", dir);
	pid = clamd_start(dir, sock);
	(void)snprintf(spec, sizeof(spec), "unix:%s", sock);
	assert_int_equal(clamd_addr_parse(spec, &a, &e), RC_OK);

	text_msg(&m, NULL, 4096);
	clamd_scan_mem(&a, m.data, m.len, &r);
	expect(&r, SCAN_CLEAN, NULL, "clamd clean");
	buf_free(&m);
	clamd_scan_mem(&a, eicar, strlen(eicar), &r);
	expect(&r, SCAN_FOUND, "Eicar-Test-Signature", "clamd EICAR");
	mime_msg(&m, "eicar.com", eicar, strlen(eicar));
	clamd_scan_mem(&a, m.data, m.len, &r);
	expect(&r, SCAN_FOUND, "Eicar-Test-Signature", "clamd attachment");
	buf_free(&m);
	zip_stored(&z[0], "eicar.com", eicar, strlen(eicar));
	for (i = 1; i < 5; i++)
		zip_stored(&z[i], "x.zip", z[i - 1].data, z[i - 1].len);
	clamd_scan_mem(&a, z[4].data, z[4].len, &r);
	expect(&r, SCAN_LIMIT, "Heuristics.Limits.Exceeded.MaxRecursion",
	    "clamd nested zips");
	for (i = 0; i < 5; i++)
		buf_free(&z[i]);
	/* past StreamMaxLength (1M): clamd stops reading, says why */
	text_msg(&m, NULL, 3 << 20);
	clamd_scan_mem(&a, m.data, m.len, &r);
	expect(&r, SCAN_LIMIT, "clamd.StreamMaxLength", "clamd too long");
	buf_free(&m);

	assert_int_equal(kill(pid, SIGTERM), 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	/* clamd gone: an error, quickly */
	clamd_scan_mem(&a, eicar, strlen(eicar), &r);
	expect(&r, SCAN_ERROR, "clamd: connect", "clamd down");
}

/*
 * The "antivirus" check module.
 */

struct mrow {
	const char	*name;
	const char	*cfg;		/* inside antivirus = { } */
	int		 content;	/* 0 clean, 1 EICAR, 2 deep zips */
	enum cr_status	 st;
	enum action	 act;
	const char	*code, *text;	/* verdict */
	const char	*av;		/* msg->av prefix */
	const char	*header;	/* "Name: value" added, or NULL */
};

static const struct mrow mrows[] = {
	{ "clean", "", 0, CR_PASS, ACT_CONTINUE, NULL, NULL, "clean", NULL },
	{ "infected reject", "", 1, CR_FAIL, ACT_REJECT, "554",
	    "Virus found: Eicar-Test-Signature", "infected:Eicar-Test-"
	    "Signature", NULL },
	{ "infected discard", "on_infected = \"discard\";", 1, CR_FAIL,
	    ACT_DISCARD, NULL, "Virus found: Eicar", "infected:Eicar", NULL },
	{ "infected quarantine", "on_infected = \"quarantine\";", 1, CR_FAIL,
	    ACT_QUARANTINE, NULL, "Virus found: Eicar", "infected:Eicar",
	    NULL },
	{ "infected tag", "on_infected = \"tag\";", 1, CR_FAIL, ACT_CONTINUE,
	    NULL, NULL, "infected:Eicar", "X-Virus-Found: Eicar-Test-"
	    "Signature" },
	{ "limit tempfail", "max_recursion = 3;", 2, CR_FAIL, ACT_TEMPFAIL,
	    "451", "Message could not be virus-scanned (Heuristics.Limits."
	    "Exceeded.MaxRecursion)", "limit:Heuristics.Limits.Exceeded."
	    "MaxRecursion", NULL },
	{ "limit accept", "max_recursion = 3; scan_limit_action = "
	    "\"accept\";", 2, CR_NEUTRAL, ACT_CONTINUE, NULL, NULL, "limit:",
	    NULL },
	{ "limit tag", "max_recursion = 3; scan_limit_action = \"tag\";", 2,
	    CR_NEUTRAL, ACT_CONTINUE, NULL, NULL, "limit:", "X-Virus-Scan: "
	    "limit exceeded (Heuristics.Limits.Exceeded.MaxRecursion)" },
};

static const struct check_inst *
av_inst(const struct cfg *cfg)
{
	size_t	 i;

	for (i = 0; i < cfg->nchecks; i++)
		if (cfg->checks[i].ops == &check_antivirus)
			return &cfg->checks[i];
	fail_msg("antivirus not configured");
	return NULL;
}

/* Runs the module at EOM on content; the txn for inspection. */
static enum cr_status
run_module(struct cfg *cfg, const void *data, size_t len, int no_spool,
    struct conn_ctx **cp, struct txn *t)
{
	const struct check_inst	*ci = av_inst(cfg);
	struct conn_ctx		*c = conn_ctx_new(cfg_ref(cfg));
	struct err		 e;

	assert_non_null(c);
	c->msg = msg_ctx_new(c);
	assert_non_null(c->msg);
	if (!no_spool) {
		c->msg->spool = spool_new(1 << 20, "/tmp");
		assert_non_null(c->msg->spool);
		assert_int_equal(spool_append(c->msg->spool, data, len, &e),
		    RC_OK);
	}
	memset(t, 0, sizeof(*t));
	t->conn = c;
	t->msg = c->msg;
	t->stage = STAGE_EOM;
	t->check = ci;
	t->verdict = verdict_continue;
	*cp = c;
	return ci->ops->run(ci->conf, t, STAGE_EOM);
}

static void
end_module(struct conn_ctx *c)
{
	msg_ctx_free(c->msg);
	c->msg = NULL;
	cfg_release(c->cfg);
	conn_ctx_free(c);
}

static void
test_module_rows(void **state)
{
	struct scan_service	 sv;
	struct scan_settings	 s;
	struct conn_ctx		*c;
	struct txn		 t;
	struct cfg		*cfg;
	struct err		 e;
	struct buf		 msg, z[5];
	const struct hdr_edit	*ed;
	char			 text[1024], hdr[256];
	enum cr_status		 st;
	size_t			 i;
	int			 k;

	(void)state;
	zip_stored(&z[0], "eicar.com", eicar, strlen(eicar));
	for (k = 1; k < 5; k++)
		zip_stored(&z[k], "x.zip", z[k - 1].data, z[k - 1].len);
	for (i = 0; i < NELEM(mrows); i++) {
		const struct mrow *r = &mrows[i];

		(void)snprintf(text, sizeof(text), "antivirus = { database = "
		    "\"%s\"; tmpdir = \"%s\"; timeout = \"30s\"; "
		    "max_scan_time = \"20s\"; check_interval = 0; %s };\n",
		    dbdir, tmpdir, r->cfg);
		cfg = unit_cfg(text, &e);
		if (cfg == NULL)
			fail_msg("%s: %s", r->name, e.msg);
		assert_int_equal(scanner_wanted(cfg, &s), 1);
		start(&sv, &s);
		if (r->content == 0)
			text_msg(&msg, NULL, 4096);
		else if (r->content == 1)
			mime_msg(&msg, "eicar.com", eicar, strlen(eicar));
		else
			mime_msg(&msg, "deep.zip", z[4].data, z[4].len);
		st = run_module(cfg, msg.data, msg.len, 0, &c, &t);
		buf_free(&msg);
		if (st != r->st || t.verdict.action != r->act)
			fail_msg("%s: status %d action %s, want %d %s", r->name,
			    st, action_name(t.verdict.action), r->st,
			    action_name(r->act));
		if (r->code != NULL)
			assert_string_equal(t.verdict.code, r->code);
		if (r->text != NULL && strncmp(t.verdict.text, r->text,
		    strlen(r->text)) != 0)
			fail_msg("%s: text '%s'", r->name, t.verdict.text);
		if (strncmp(c->msg->av, r->av, strlen(r->av)) != 0)
			fail_msg("%s: av '%s'", r->name, c->msg->av);
		ed = c->msg->edits;
		if (r->header == NULL && ed != NULL)
			fail_msg("%s: unexpected header %s", r->name, ed->name);
		if (r->header != NULL) {
			assert_non_null(ed);
			(void)snprintf(hdr, sizeof(hdr), "%s: %s", ed->name,
			    ed->value);
			if (strncmp(hdr, r->header, strlen(r->header)) != 0)
				fail_msg("%s: header '%s'", r->name, hdr);
		}
		end_module(c);
		scanner_service_stop(&sv);
		cfg_release(cfg);
	}
	for (k = 0; k < 5; k++)
		buf_free(&z[k]);
}

static void
test_module_errors(void **state)
{
	struct scan_service	 sv;
	struct scan_settings	 s;
	struct conn_ctx		*c;
	struct txn		 t;
	struct cfg		*cfg;
	struct err		 e;
	char			 text[1024];
	uint64_t		 errs;

	(void)state;
	(void)snprintf(text, sizeof(text), "antivirus = { database = \"%s\"; "
	    "timeout = \"2s\"; max_scan_time = \"1s\"; };\n", dbdir);
	cfg = unit_cfg(text, &e);
	assert_non_null(cfg);
	errs = metrics_value(M.av_scans, "error");
	/* no content kept */
	assert_int_equal(run_module(cfg, NULL, 0, 1, &c, &t), CR_ERROR);
	assert_string_equal(c->msg->av, "error:message content not kept");
	assert_non_null(t.error);
	assert_int_equal(t.verdict.action, ACT_CONTINUE);
	end_module(c);
	/* no scanner service: an error, never a verdict */
	scan_client_set_fd(-1);
	assert_int_equal(run_module(cfg, eicar, strlen(eicar), 0, &c, &t),
	    CR_ERROR);
	assert_string_equal(c->msg->av, "error:scanner service not running");
	end_module(c);
	/* a scanner that never answers in time (2 s) */
	assert_int_equal(scanner_wanted(cfg, &s), 1);
	assert_int_equal(setenv(SCANNER_TEST_DELAY_ENV, "4000", 1), 0);
	start(&sv, &s);
	assert_int_equal(unsetenv(SCANNER_TEST_DELAY_ENV), 0);
	assert_int_equal(run_module(cfg, eicar, strlen(eicar), 0, &c, &t),
	    CR_ERROR);
	assert_string_equal(c->msg->av, "error:scan timed out");
	end_module(c);
	assert_true(metrics_value(M.av_scans, "error") == errs + 3);
	scanner_service_stop(&sv);
	cfg_release(cfg);

	/* max_scan_time must be under timeout; clamd address checked */
	cfg = unit_cfg("antivirus = { timeout = \"10s\"; max_scan_time = "
	    "\"10s\"; };\n", &e);
	assert_null(cfg);
	assert_non_null(strstr(e.msg, "max_scan_time"));
	cfg = unit_cfg("antivirus = { clamd = \"inet:3310@clamd.example\"; "
	    "};\n", &e);
	assert_null(cfg);
	assert_non_null(strstr(e.msg, "antivirus.clamd"));
	cfg = unit_cfg("antivirus = { clamd = \"unix:/run/clamd.ctl\"; };\n",
	    &e);
	assert_non_null(cfg);
	assert_int_equal(scanner_wanted(cfg, &s), 0);
	cfg_release(cfg);
}

/* The whole pipeline, as portero-ctl test runs it: the decision line. */
static char	 last_line[8192];

static void
sink(const char *line)
{
	(void)snprintf(last_line, sizeof(last_line), "%s", line);
}

static void
test_pipeline(void **state)
{
	struct scan_service	 sv;
	struct scan_settings	 s;
	struct conn_ctx		*c;
	struct verdict		 v;
	struct cfg		*cfg;
	struct err		 e;
	struct buf		 msg;
	char			 text[1024];
	const char		*body;

	(void)state;
	(void)snprintf(text, sizeof(text), "content = { enabled = false; "
	    "spool_dir = \"%s\"; };\nantivirus = { database = \"%s\"; };\n",
	    tmpdir, dbdir);
	cfg = unit_cfg(text, &e);
	if (cfg == NULL)
		fail_msg("%s", e.msg);
	assert_int_equal(scanner_wanted(cfg, &s), 1);
	start(&sv, &s);
	log_set_decision_sink(sink);
	c = conn_ctx_new(cfg_ref(cfg));
	assert_non_null(c);
	pipeline_connect(c, "mx.example.net", "192.0.2.7", &v);
	pipeline_helo(c, "mx.example.net", &v);
	pipeline_mail(c, "<a@example.net>", NULL, &v);
	pipeline_rcpt(c, "<b@example.org>", &v);
	assert_int_equal(v.action, ACT_CONTINUE);
	msg_set_queue_id(c->msg, "AVTEST1");
	mime_msg(&msg, "eicar.com", eicar, strlen(eicar));
	pipeline_header(c, "From", "<a@example.com>", &v);
	pipeline_header(c, "MIME-Version", "1.0", &v);
	pipeline_header(c, "Content-Type", "multipart/mixed; boundary=\"b1\"",
	    &v);
	pipeline_eoh(c, &v);
	body = strstr(msg.data, "\r\n\r\n") + 4;
	pipeline_body(c, (const unsigned char *)body, msg.len -
	    (size_t)(body - msg.data), &v);
	pipeline_eom(c, &v);
	buf_free(&msg);
	assert_int_equal(v.action, ACT_REJECT);
	assert_string_equal(v.code, "554");
	assert_string_equal(v.dsn, "5.7.1");
	assert_string_equal(v.text, "Virus found: Eicar-Test-Signature."
	    "UNOFFICIAL");
	if (strstr(last_line, "av=infected:Eicar-Test-Signature") == NULL)
		fail_msg("decision line: %s", last_line);
	pipeline_msg_end(c);
	cfg_release(c->cfg);
	conn_ctx_free(c);
	log_set_decision_sink(NULL);
	scanner_service_stop(&sv);
	cfg_release(cfg);
}

static int
rm_tree(const char *dir)
{
	char	 cmd[512];

	(void)snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd);
}

static int
group_setup(void **state)
{
	(void)state;
	(void)signal(SIGPIPE, SIG_IGN);
	log_open("test_scanner", LOG_MAIL, 1);
	metrics_init();
	log_set_level(getenv("PORTERO_TEST_VERBOSE") != NULL ? LOG_DEBUG :
	    LOG_CRIT);
	(void)snprintf(eicar, sizeof(eicar), "%s%s", EICAR_A, EICAR_B);
	assert_int_equal(strlen(eicar), 68);
	(void)snprintf(topdir, sizeof(topdir), "/tmp/portero-av-%ld",
	    (long)getpid());
	(void)rm_tree(topdir);
	(void)snprintf(dbdir, sizeof(dbdir), "%s/db", topdir);
	(void)snprintf(tmpdir, sizeof(tmpdir), "%s/tmp", topdir);
	if (mkdir(topdir, 0700) != 0 || mkdir(dbdir, 0700) != 0 ||
	    mkdir(tmpdir, 0700) != 0)
		return -1;
	write_db(dbdir);
	return 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	(void)rm_tree(topdir);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_proto_rows),
		cmocka_unit_test(test_proto_roundtrip),
		cmocka_unit_test(test_clamd_rows),
		cmocka_unit_test(test_verdicts),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_scanner_killed),
		cmocka_unit_test(test_default_tmpdir),
		cmocka_unit_test(test_timeouts),
		cmocka_unit_test(test_cap),
		cmocka_unit_test(test_reload),
		cmocka_unit_test(test_late_database),
		cmocka_unit_test(test_manager_dies),
		cmocka_unit_test(test_clamd),
		cmocka_unit_test(test_module_rows),
		cmocka_unit_test(test_module_errors),
		cmocka_unit_test(test_pipeline),
	};

	return cmocka_run_group_tests_name("scanner", tests, group_setup,
	    group_teardown);
}
