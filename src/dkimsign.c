/*
 * dkimsign.c - DKIM signing with OpenSSL (see dkimsign.h).
 *
 * Why not libopendkim's signer: the library of Debian bookworm (2.11.0
 * beta2) leaks the Ed25519 key objects of every signature (dkim_free()
 * frees only RSA ones; fixed upstream in 2026), and it parses the PEM
 * key again for every message.  Here a key is parsed once; a signature
 * is RFC 6376 canonicalisation, two SHA-256 hashes and one private-key
 * operation.  The unit tests verify every signature with libopendkim's
 * verifier, the e2e tests with python3-dkim.
 *
 * Body canonicalisation streams: the only state kept between chunks is
 * a pending CR, whether whitespace is pending, whether the line has
 * content, and how many empty lines are held back (trailing empty lines
 * are not part of the body hash).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "buf.h"
#include "dkimsign.h"
#include "util.h"

#define HDRS_MAX	(1u << 20)	/* header bytes kept for signing */
#define CANON_MAX	(HDRS_MAX + 64)	/* bytes of one canonical field */
#define FIELDS_MAX	1000
#define OUT_CHUNK	4096
#define IDLE_MAX	16	/* signing contexts kept per key */

/* RFC 6376 section 5.4.1: the fields signed when present. */
static const char *const signed_names[] = {
	"From", "Reply-To", "Subject", "Date", "To", "Cc", "Resent-Date",
	"Resent-From", "Resent-To", "Resent-Cc", "In-Reply-To", "References",
	"List-Id", "List-Help", "List-Unsubscribe", "List-Subscribe",
	"List-Post", "List-Owner", "List-Archive", "Message-ID",
	"MIME-Version", "Content-Type", "Content-Transfer-Encoding",
	"Content-ID", "Content-Description", "Sender",
};

/*
 * Signing contexts of a key, set up and waiting for a signature: a
 * context set up from scratch (EVP_DigestSignInit with the key) looks the
 * algorithms up again, several microseconds each time; one set up before
 * is set up again for the same key almost for free.  Each context is used
 * by one thread at a time, taken from and given back under the lock.
 */
struct ctx_pool {
	pthread_mutex_t	 lock;
	EVP_MD_CTX	*idle[IDLE_MAX];
	size_t		 n;
};

struct dksign_key {
	EVP_PKEY	*pk;
	EVP_MD		*sha256;	/* fetched once: an EVP_sha256()
					 * init looks it up every time */
	enum dkim_alg	 alg;
	struct ctx_pool	*pool;		/* the only part that changes */
};

struct field {
	char	*name;
	char	*value;
	size_t	 nlen;		/* strlen(name) */
	int	 used;		/* taken by an h= entry */
};

struct dksign {
	const struct dksign_key	*key;
	struct dksign_opts	 o;
	struct field		*f;
	size_t			 nf, capf, bytes;
	EVP_MD_CTX		*body;
	/* body canonicalisation state */
	int			 cr;		/* a CR is pending */
	int			 wsp;		/* whitespace is pending */
	int			 content;	/* the line has content */
	int			 any;		/* a byte was hashed */
	size_t			 empty;		/* empty lines held back */
	unsigned char		 out[OUT_CHUNK];
	size_t			 outlen;
	int			 failed;
};

struct dksign_key *
dksign_key(const struct dkim_keydata *kd, struct err *e)
{
	struct dksign_key	*k;
	BIO			*bio;

	if ((k = calloc(1, sizeof(*k))) == NULL) {
		err_set(e, "out of memory");
		return NULL;
	}
	k->alg = kd->alg;
	if ((bio = BIO_new_mem_buf(kd->pem, (int)kd->len)) != NULL) {
		k->pk = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
		BIO_free(bio);
	}
	if (k->pk == NULL) {
		err_set(e, "cannot parse the private key");
		free(k);
		return NULL;
	}
	if ((k->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL)) == NULL) {
		err_set(e, "no SHA-256 in the crypto library");
		dksign_key_free(k);
		return NULL;
	}
	if ((k->pool = calloc(1, sizeof(*k->pool))) == NULL) {
		err_set(e, "out of memory");
		dksign_key_free(k);
		return NULL;
	}
	(void)pthread_mutex_init(&k->pool->lock, NULL);
	return k;
}

void
dksign_key_free(struct dksign_key *k)
{
	if (k == NULL)
		return;
	if (k->pool != NULL) {
		while (k->pool->n > 0)
			EVP_MD_CTX_free(k->pool->idle[--k->pool->n]);
		(void)pthread_mutex_destroy(&k->pool->lock);
		free(k->pool);
	}
	EVP_PKEY_free(k->pk);
	EVP_MD_free(k->sha256);
	free(k);
}

/* The digest of the signing operation: Ed25519 signs a hash it is
 * given (RFC 8463), RSA hashes the data itself. */
static const EVP_MD *
sign_md(const struct dksign_key *k)
{
	return k->alg == DKIM_ALG_ED25519 ? NULL : k->sha256;
}

/* A context ready to sign with k: an idle one, else a new one; NULL
 * when out of memory or the key cannot sign. */
static EVP_MD_CTX *
ctx_take(const struct dksign_key *k)
{
	EVP_MD_CTX	*ctx = NULL;

	(void)pthread_mutex_lock(&k->pool->lock);
	if (k->pool->n > 0)
		ctx = k->pool->idle[--k->pool->n];
	(void)pthread_mutex_unlock(&k->pool->lock);
	if (ctx != NULL)
		return ctx;
	if ((ctx = EVP_MD_CTX_new()) != NULL && EVP_DigestSignInit(ctx, NULL,
	    sign_md(k), NULL, k->pk) != 1) {
		EVP_MD_CTX_free(ctx);
		ctx = NULL;
	}
	return ctx;
}

/* After a signature: ctx set up again (a NULL key keeps its key) and
 * kept for the next one, or freed (after a failure, or pool full). */
static void
ctx_give(const struct dksign_key *k, EVP_MD_CTX *ctx, int ok)
{
	if (ok && EVP_DigestSignInit(ctx, NULL, sign_md(k), NULL, NULL) ==
	    1) {
		(void)pthread_mutex_lock(&k->pool->lock);
		if (k->pool->n < IDLE_MAX) {
			k->pool->idle[k->pool->n++] = ctx;
			ctx = NULL;
		}
		(void)pthread_mutex_unlock(&k->pool->lock);
	}
	EVP_MD_CTX_free(ctx);
}

struct dksign *
dksign_new(const struct dksign_key *key, const struct dksign_opts *o,
    struct err *e)
{
	struct dksign	*s;

	if ((s = calloc(1, sizeof(*s))) == NULL ||
	    (s->body = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex(s->body, key->sha256, NULL) != 1) {
		dksign_free(s);
		err_set(e, "out of memory");
		return NULL;
	}
	s->key = key;
	s->o = *o;
	return s;
}

void
dksign_free(struct dksign *s)
{
	size_t	 i;

	if (s == NULL)
		return;
	for (i = 0; i < s->nf; i++) {
		free(s->f[i].name);
		free(s->f[i].value);
	}
	free(s->f);
	EVP_MD_CTX_free(s->body);
	free(s);
}

int
dksign_header(struct dksign *s, const char *name, const char *value)
{
	struct field	*v;
	size_t		 n = strlen(name) + strlen(value);

	if (s->nf >= FIELDS_MAX || s->bytes + n > HDRS_MAX)
		return -1;
	if (s->nf == s->capf) {
		s->capf = s->capf ? s->capf * 2 : 16;
		if ((v = reallocarray(s->f, s->capf, sizeof(*v))) == NULL)
			return -1;
		s->f = v;
	}
	v = &s->f[s->nf];
	memset(v, 0, sizeof(*v));
	if ((v->name = strdup(name)) == NULL ||
	    (v->value = strdup(value)) == NULL) {
		free(v->name);
		return -1;
	}
	v->nlen = strlen(name);
	s->nf++;
	s->bytes += n;
	return 0;
}

static void
flush(struct dksign *s)
{
	if (s->outlen > 0 && EVP_DigestUpdate(s->body, s->out, s->outlen) !=
	    1)
		s->failed = 1;
	s->outlen = 0;
}

static void
emit(struct dksign *s, const char *p, size_t n)
{
	size_t	 k;

	s->any = 1;
	while (n > 0) {
		if (s->outlen == sizeof(s->out))
			flush(s);
		k = sizeof(s->out) - s->outlen;
		if (k > n)
			k = n;
		memcpy(s->out + s->outlen, p, k);
		s->outlen += k;
		p += k;
		n -= k;
	}
}

/* Empty lines held back are part of the body after all. */
static void
release_empty(struct dksign *s)
{
	for (; s->empty > 0; s->empty--)
		emit(s, "\r\n", 2);
}

static void
end_line(struct dksign *s)
{
	if (s->content)
		emit(s, "\r\n", 2);
	else
		s->empty++;
	s->content = 0;
	s->wsp = 0;
}

/* One byte of the body (not CR or LF), canonicalised. */
static void
body_byte(struct dksign *s, char c)
{
	if (!s->o.bsimple && (c == ' ' || c == '\t')) {
		s->wsp = 1;	/* a run becomes one SP, if content follows */
		return;
	}
	if (!s->content)
		release_empty(s);
	if (s->wsp) {
		emit(s, " ", 1);
		s->wsp = 0;
	}
	emit(s, &c, 1);
	s->content = 1;
}

/* Body bytes that canonicalisation may change: line ends and (relaxed)
 * whitespace; every other byte is 0. */
#define BC_EOL	1
#define BC_WSP	2
static const unsigned char body_class[256] = {
	['\r'] = BC_EOL, ['\n'] = BC_EOL, [' '] = BC_WSP, ['\t'] = BC_WSP,
};

/*
 * Bytes from p that canonicalisation leaves alone once a line has
 * content and no whitespace is pending: no CR or LF; relaxed, no tab
 * and no space other than a single one between two such bytes (one SP
 * stays one SP), so that a line of text goes in one piece.
 */
static size_t
plain_run(const struct dksign *s, const unsigned char *p, size_t len)
{
	size_t	 n;

	for (n = 0; n < len; n++) {
		if (body_class[p[n]] == 0)
			continue;
		if (body_class[p[n]] == BC_EOL)
			break;
		if (s->o.bsimple)
			continue;
		if (p[n] != ' ' || n + 1 == len || body_class[p[n + 1]] != 0)
			break;
		n++;		/* the space and the byte after it */
	}
	return n;
}

int
dksign_body(struct dksign *s, const unsigned char *p, size_t len)
{
	size_t	 i, n;

	for (i = 0; i < len; i++) {
		char c = (char)p[i];

		if (s->cr) {
			s->cr = 0;
			if (c == '\n') {
				end_line(s);
				continue;
			}
			body_byte(s, '\r');	/* a lone CR is text */
		}
		if (c == '\r')
			s->cr = 1;
		else if (c == '\n')
			end_line(s);		/* a bare LF ends a line too */
		else {
			body_byte(s, c);
			/* the rest of a run of plain text goes as it is
			 * (once the line has content and no space waits) */
			n = s->content && !s->wsp ? plain_run(s, p + i + 1,
			    len - i - 1) : 0;
			if (n > 0) {
				emit(s, (const char *)p + i + 1, n);
				i += n;
			}
		}
	}
	return s->failed ? -1 : 0;
}

static int
is_wsp(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Appends the relaxed form of a field ("name:value\r\n") to b. */
static enum rc
canon_relaxed(struct buf *b, const char *name, const char *value)
{
	const char	*p, *q;
	enum rc		 rc = RC_OK;

	for (p = name; *p != '\0' && rc == RC_OK; p++)
		rc = buf_putc(b, (char)((*p >= 'A' && *p <= 'Z') ?
		    *p - 'A' + 'a' : *p));
	if (rc == RC_OK)
		rc = buf_putc(b, ':');
	for (p = value; is_wsp(*p); p++)
		;
	/* unfolded, runs of whitespace one space, none at the end */
	while (*p != '\0' && rc == RC_OK) {
		for (q = p; *q != '\0' && !is_wsp(*q); q++)
			;
		rc = buf_append(b, p, (size_t)(q - p));
		for (p = q; is_wsp(*p); p++)
			;
		if (*p != '\0' && rc == RC_OK)
			rc = buf_putc(b, ' ');
	}
	return rc == RC_OK ? buf_puts(b, "\r\n") : rc;
}

char *
dksign_canon_header_relaxed(const char *name, const char *value)
{
	struct buf	 b;

	buf_init(&b, CANON_MAX);
	if (canon_relaxed(&b, name, value) != RC_OK) {
		buf_free(&b);
		return NULL;
	}
	return b.data;
}

/* The simple form: the field as it is (one space after the colon when
 * the MTA dropped it), CRLF line ends. */
static enum rc
canon_simple(struct buf *b, const char *name, const char *value)
{
	const char	*p;
	enum rc		 rc;

	rc = buf_puts(b, name);
	if (rc == RC_OK)
		rc = buf_puts(b, *value == ' ' || *value == '\t' ? ":" : ": ");
	for (p = value; *p != '\0' && rc == RC_OK; p++) {
		if (*p == '\n' && (p == value || p[-1] != '\r'))
			rc = buf_putc(b, '\r');
		if (rc == RC_OK)
			rc = buf_putc(b, *p);
	}
	return rc == RC_OK ? buf_puts(b, "\r\n") : rc;
}

/* Appends the canonical form of a field to in; -1 if in is full or the
 * form is longer than one field may be (CANON_MAX). */
static int
canon_header(const struct dksign *s, struct buf *in, const char *name,
    const char *value)
{
	size_t	 start = in->len;
	enum rc	 rc;

	rc = s->o.hsimple ? canon_simple(in, name, value) :
	    canon_relaxed(in, name, value);
	return rc == RC_OK && in->len - start <= CANON_MAX ? 0 : -1;
}

static char *
b64(const unsigned char *in, size_t n)
{
	char	*out = malloc(4 * ((n + 2) / 3) + 1);

	if (out != NULL)
		(void)EVP_EncodeBlock((unsigned char *)out, in, (int)n);
	return out;
}

static int
oversigned(const struct dksign *s, const char *name)
{
	size_t	 i;

	for (i = 0; i < s->o.noversign; i++)
		if (str_ieq(s->o.oversign[i], name))
			return 1;
	return 0;
}

/*
 * Adds every instance of nm (and one more when oversigned) to the h=
 * list in hl, and the fields canonicalised to in: for each h= entry the
 * last instance of the name not yet taken, as verifiers pick them; an
 * oversigned entry beyond the instances takes nothing.
 */
static int
add_name(struct dksign *s, const char *nm, struct buf *hl, struct buf *in)
{
	size_t	 j, k, count = 0, len = strlen(nm);

	/* the length first: most names differ in it */
	for (j = 0; j < s->nf; j++)
		count += s->f[j].nlen == len && str_ieq(s->f[j].name, nm);
	if (oversigned(s, nm))
		count++;
	for (k = 0; k < count; k++) {
		if ((hl->len > 0 && buf_putc(hl, ':') != RC_OK) ||
		    buf_append(hl, nm, len) != RC_OK)
			return -1;
		for (j = s->nf; j-- > 0; )
			if (!s->f[j].used && s->f[j].nlen == len &&
			    str_ieq(s->f[j].name, nm))
				break;
		if (j == (size_t)-1)
			continue;
		s->f[j].used = 1;
		if (canon_header(s, in, s->f[j].name, s->f[j].value) != 0)
			return -1;
	}
	return 0;
}

/* The signed fields: RFC 6376's list, then oversigned names it lacks. */
static int
select_headers(struct dksign *s, struct buf *hl, struct buf *in)
{
	size_t	 i, j, from = 0;

	for (i = 0; i < s->nf; i++) {
		s->f[i].used = 0;
		from += str_ieq(s->f[i].name, "From");
	}
	if (from == 0)
		return -1;
	for (i = 0; i < NELEM(signed_names); i++)
		if (add_name(s, signed_names[i], hl, in) != 0)
			return -1;
	for (i = 0; i < s->o.noversign; i++) {
		for (j = 0; j < NELEM(signed_names); j++)
			if (str_ieq(signed_names[j], s->o.oversign[i]))
				break;
		if (j == NELEM(signed_names) &&
		    add_name(s, s->o.oversign[i], hl, in) != 0)
			return -1;
	}
	return 0;
}

/* Signs the header hash input; base64 of the signature, allocated. */
static char *
sign(const struct dksign *s, const unsigned char *data, size_t len)
{
	EVP_MD_CTX	*ctx;
	unsigned char	 hash[EVP_MAX_MD_SIZE], *sig = NULL;
	unsigned	 hlen = 0;
	size_t		 slen = 0;
	char		*out = NULL;
	int		 ok = 0;

	if (s->key->alg == DKIM_ALG_ED25519) {
		/* RFC 8463: PureEdDSA over the SHA-256 of the data */
		if (EVP_Digest(data, len, hash, &hlen, s->key->sha256, NULL) !=
		    1)
			return NULL;
		data = hash;
		len = hlen;
	}
	if ((ctx = ctx_take(s->key)) == NULL)
		return NULL;
	ok = EVP_DigestSign(ctx, NULL, &slen, data, len) == 1 &&
	    (sig = malloc(slen)) != NULL && EVP_DigestSign(ctx, sig, &slen,
	    data, len) == 1;
	ctx_give(s->key, ctx, ok);
	if (ok)
		out = b64(sig, slen);
	free(sig);
	return out;
}

/* The field value with LF line ends, as milters hand it to the MTA. */
static char *
lf_only(const char *v)
{
	char	*out = malloc(strlen(v) + 1);
	size_t	 o = 0;

	if (out == NULL)
		return NULL;
	for (; *v != '\0'; v++)
		if (*v != '\r')
			out[o++] = *v;
	out[o] = '\0';
	return out;
}

char *
dksign_finish(struct dksign *s, time_t now, struct err *e)
{
	unsigned char	 bh[EVP_MAX_MD_SIZE];
	unsigned	 bhlen = 0;
	struct buf	 hl, v, in;
	char		*bh64 = NULL, *sig = NULL, *out = NULL;
	size_t		 i, col;

	buf_init(&hl, 64 * 1024);
	buf_init(&v, 128 * 1024);
	buf_init(&in, HDRS_MAX * 2);
	if (s->cr) {
		s->cr = 0;
		body_byte(s, '\r');
	}
	if (s->content)			/* an unterminated last line */
		emit(s, "\r\n", 2);
	if (!s->any && s->o.bsimple)	/* simple: an empty body is CRLF */
		emit(s, "\r\n", 2);
	flush(s);
	if (s->failed || EVP_DigestFinal_ex(s->body, bh, &bhlen) != 1 ||
	    (bh64 = b64(bh, bhlen)) == NULL) {
		err_set(e, "body hash failed");
		goto done;
	}
	if (select_headers(s, &hl, &in) != 0) {
		err_set(e, "no From field to sign, or header too large");
		goto done;
	}
	(void)buf_printf(&v, "v=1; a=%s; c=%s/%s; d=%s; s=%s;\r\n\t",
	    dkim_alg_name(s->key->alg), s->o.hsimple ? "simple" : "relaxed",
	    s->o.bsimple ? "simple" : "relaxed", s->o.domain, s->o.selector);
	if (s->o.identity != NULL)
		(void)buf_printf(&v, "i=%s; ", s->o.identity);
	(void)buf_printf(&v, "t=%lld; bh=%s;\r\n\th=", (long long)now, bh64);
	/* h= folded after a colon to keep lines short */
	for (col = 3, i = 0; i < hl.len; i++) {
		(void)buf_putc(&v, hl.data[i]);
		col++;
		if (hl.data[i] == ':' && col > 60) {
			(void)buf_puts(&v, "\r\n\t ");
			col = 2;
		}
	}
	if (buf_puts(&v, ";\r\n\tb=") != RC_OK) {
		err_set(e, "signature field too long");
		goto done;
	}
	/* the signature field itself, b= empty, signed without its CRLF
	 * (which needs no room within the limit) */
	in.max += 2;
	if (canon_header(s, &in, "DKIM-Signature", buf_str(&v)) != 0 ||
	    (sig = sign(s, (const unsigned char *)in.data, in.len - 2)) ==
	    NULL) {
		err_set(e, "signing failed");
		goto done;
	}
	for (i = 0, col = strlen(sig); i < col; i += 64)
		if (buf_printf(&v, "%s%.64s", i ? "\r\n\t " : "", sig + i) !=
		    RC_OK) {
			err_set(e, "signature field too long");
			goto done;
		}
	if ((out = lf_only(buf_str(&v))) == NULL)
		err_set(e, "out of memory");
done:
	free(bh64);
	free(sig);
	buf_free(&hl);
	buf_free(&v);
	buf_free(&in);
	return out;
}
