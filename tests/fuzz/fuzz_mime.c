/*
 * fuzz_mime.c - libFuzzer target for the MIME walk (mime.h).  Input: a
 * whole message.  It is walked with small limits and every callback set,
 * then again with a callback that stops the walk at an event chosen by
 * the input.  Checks: no crash, leak or hang; every string given is
 * NUL-terminated at its length (body lines: len bytes, no line end);
 * header fields within max_header, body line pieces within 2048 bytes,
 * text within max_text and valid UTF-8,
 * file names valid UTF-8, content types lowercase "type/subtype"; depths
 * within max_depth and the report within the limits; header and body
 * bytes together never more than the input; a stop returns the
 * callback's value after exactly that many events.  mime_blocked_ext()
 * runs on every file name and on the input as a name: a result is one of
 * the entries and the name, cut at its last '.', ends with it.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <glib.h>

#include "mime.h"

#include "fuzz.h"

#define F_DEPTH		8
#define F_PARTS		64
#define F_HEADER	1024
#define F_TEXT		512

struct fz {
	size_t		 bytes;		/* header and body bytes given */
	unsigned	 events;
	unsigned	 stop_at;	/* 0: never */
};

static char	 x_exe[] = "exe", x_scr[] = "scr", x_js[] = "JS",
		 x_dot[] = ".bat", x_empty[] = "";
static char *const exts[] = { x_exe, x_scr, NULL, x_js, x_dot, x_empty };
#define NEXTS	(sizeof(exts) / sizeof(exts[0]))

static int
event(struct fz *f)
{
	f->events++;
	return f->stop_at != 0 && f->events == f->stop_at ? 77 : 0;
}

static void
check_blocked(const char *name)
{
	const char	*x, *dot;
	size_t		 i, n, xl;

	x = mime_blocked_ext(name, exts, NEXTS);
	if (x == NULL)
		return;
	for (i = 0; i < NEXTS && exts[i] != x; i++)
		;
	FUZZ_ASSERT(i < NEXTS);
	FUZZ_ASSERT(x[0] != '\0');
	if (x[0] == '.')
		x++;
	/* name = ... "." ext [dots and blanks] */
	n = strlen(name);
	while (n > 0 && (name[n - 1] == '.' || name[n - 1] == ' ' ||
	    (name[n - 1] >= '\t' && name[n - 1] <= '\r')))
		n--;
	xl = strlen(x);
	FUZZ_ASSERT(n > xl);
	FUZZ_ASSERT(strncasecmp(name + n - xl, x, xl) == 0);
	dot = name + n - xl - 1;
	FUZZ_ASSERT(*dot == '.');
}

static int
on_header(void *arg, enum mime_hdr_kind kind, unsigned depth,
    const char *field, size_t len)
{
	struct fz	*f = arg;

	FUZZ_ASSERT(kind == MIME_HDR_TOP || kind == MIME_HDR_PART ||
	    kind == MIME_HDR_NESTED);
	FUZZ_ASSERT(kind != MIME_HDR_TOP || depth == 0);
	FUZZ_ASSERT(depth <= F_DEPTH);
	FUZZ_ASSERT(len <= F_HEADER && field[len] == '\0');
	FUZZ_ASSERT(len > 0 && memchr(field, ':', len) != NULL);
	f->bytes += len;
	return event(f);
}

static int
on_body(void *arg, const char *line, size_t len)
{
	struct fz	*f = arg;

	FUZZ_ASSERT(len <= 2048 && memchr(line, '\n', len) == NULL);
	f->bytes += len;
	return event(f);
}

static int
on_attach(void *arg, const char *name, const char *type, unsigned depth,
    int nested)
{
	struct fz	*f = arg;
	const char	*p;

	FUZZ_ASSERT(name != NULL && g_utf8_validate(name, -1, NULL));
	FUZZ_ASSERT(type != NULL && strchr(type, '/') != NULL);
	for (p = type; *p != '\0'; p++)
		FUZZ_ASSERT(*p < 'A' || *p > 'Z');
	FUZZ_ASSERT(strncmp(type, "multipart/", 10) != 0);
	FUZZ_ASSERT(depth <= F_DEPTH);
	FUZZ_ASSERT(nested == 0 || nested == 1);
	FUZZ_ASSERT(!nested || depth >= 1);
	check_blocked(name);
	return event(f);
}

static int
on_text(void *arg, const char *type, const char *text, size_t len)
{
	struct fz	*f = arg;

	FUZZ_ASSERT(strncmp(type, "text/", 5) == 0);
	FUZZ_ASSERT(len <= F_TEXT && text[len] == '\0');
	FUZZ_ASSERT(g_utf8_validate(text, (gssize)len, NULL));
	return event(f);
}

static const struct mime_visitor	 visitor = {
	on_header, on_body, on_attach, on_text
};

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_quiet(argc, argv);
	mime_init();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mime_limits	 lim;
	struct mime_report	 rep;
	struct err		 e;
	struct fz		 f;
	char			*name;
	int			 r;

	mime_limits_default(&lim);
	lim.max_depth = F_DEPTH;
	lim.max_parts = F_PARTS;
	lim.max_header = F_HEADER;
	lim.max_text = F_TEXT;

	memset(&f, 0, sizeof(f));
	err_clear(&e);
	r = mime_walk(data, size, &lim, &visitor, &f, &rep, &e);
	FUZZ_ASSERT(r == 0);
	FUZZ_ASSERT(f.bytes <= size);
	FUZZ_ASSERT(rep.parts <= F_PARTS && rep.depth <= F_DEPTH);
	FUZZ_ASSERT(rep.parts >= 1 || (rep.limit != NULL &&
	    strcmp(rep.limit, "parts") == 0));
	FUZZ_ASSERT(rep.limit == NULL || strcmp(rep.limit, "depth") == 0 ||
	    strcmp(rep.limit, "parts") == 0 ||
	    strcmp(rep.limit, "header") == 0);
	FUZZ_ASSERT(rep.malformed == 0 || rep.malformed == 1);

	/* stop at an event the input picks */
	if (f.events > 0) {
		unsigned	 total = f.events;

		memset(&f, 0, sizeof(f));
		f.stop_at = 1 + (size > 0 ? data[size / 2] : 0) % total;
		r = mime_walk(data, size, &lim, &visitor, &f, &rep, &e);
		FUZZ_ASSERT(r == 77);
		FUZZ_ASSERT(f.events == f.stop_at);
	}

	name = fuzz_cstr(data, size);
	check_blocked(name);
	free(name);
	return 0;
}
