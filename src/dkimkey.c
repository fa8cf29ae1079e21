/*
 * dkimkey.c - DKIM private keys and their public half (see dkimkey.h):
 * key file checks, parsing and generation with the OpenSSL 3 EVP API,
 * the p= value, the TXT record as text and in zone-file form, and the
 * tag-list parser for published key records.  The OpenDKIM tables are in
 * dkimtable.c.
 *
 * A parsed key is kept as PKCS#8 PEM text written by OpenSSL, whatever
 * form the file had (PKCS#1 or PKCS#8, comments around it): one form for
 * the signer (dkimsign.c, which parses it once per config) and for the
 * public half.  Private key text is wiped
 * before it is freed.  Thread-safe: no global state (OpenSSL's error
 * queue is per thread and is cleared after each failure).
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "buf.h"
#include "dkimkey.h"
#include "util.h"

#define KEY_FILE_MAX	(64u * 1024)	/* an RSA 8192 PEM is ~6.5 KB */
#define RSA_MIN_BITS	1024		/* RFC 8301 */
#define RSA_MAX_BITS	8192
#define ED25519_RAW	32
#define TXT_CHUNK	255		/* bytes of a DNS character-string */

int
dkim_alg_parse(const char *s)
{
	if (strcmp(s, "rsa-sha256") == 0)
		return DKIM_ALG_RSA;
	if (strcmp(s, "ed25519-sha256") == 0)
		return DKIM_ALG_ED25519;
	return -1;
}

const char *
dkim_alg_name(enum dkim_alg alg)
{
	switch (alg) {
	case DKIM_ALG_RSA:
		return "rsa-sha256";
	case DKIM_ALG_ED25519:
		return "ed25519-sha256";
	}
	return "unknown";
}

/* The k= name of an algorithm. */
static const char *
key_type(enum dkim_alg alg)
{
	switch (alg) {
	case DKIM_ALG_RSA:
		return "rsa";
	case DKIM_ALG_ED25519:
		return "ed25519";
	}
	return "unknown";
}

/* Puts what OpenSSL says about the last failure in e, after what; the
 * thread's error queue is emptied. */
static void
ossl_err(struct err *e, const char *what)
{
	unsigned long	 code = ERR_peek_last_error();
	const char	*why = code != 0 ? ERR_reason_error_string(code) : NULL;

	if (why != NULL)
		err_set(e, "%s (openssl: %s)", what, why);
	else
		err_set(e, "%s", what);
	ERR_clear_error();
}

/* Never asks for a passphrase (OpenSSL would prompt on the terminal). */
static int
no_passphrase(char *buf, int size, int rwflag, void *arg)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)arg;
	return -1;
}

static int
has(const char *s, size_t len, const char *what)
{
	return memmem(s, len, what, strlen(what)) != NULL;
}

/* The private key in PEM text; NULL with e set. */
static EVP_PKEY *
pem_to_pkey(const char *pem, size_t len, struct err *e)
{
	EVP_PKEY	*pk;
	BIO		*b;

	if (len > INT_MAX) {
		err_set(e, "not a PEM private key");
		return NULL;
	}
	b = BIO_new_mem_buf(pem, (int)len);
	if (b == NULL) {
		ossl_err(e, "out of memory");
		return NULL;
	}
	pk = PEM_read_bio_PrivateKey(b, NULL, no_passphrase, NULL);
	BIO_free(b);
	if (pk != NULL)
		return pk;
	if (has(pem, len, "ENCRYPTED"))
		err_set(e, "is encrypted: portero needs a key without "
		    "passphrase");
	else
		err_set(e, "not a PEM private key");
	ERR_clear_error();
	return NULL;
}

/* Algorithm and size of pk, checked; 0 or -1 with e set. */
static int
pkey_kind(EVP_PKEY *pk, enum dkim_alg *alg, unsigned *bits, struct err *e)
{
	int		 id = EVP_PKEY_get_base_id(pk);
	const char	*name;

	if (id == EVP_PKEY_RSA) {
		int n = EVP_PKEY_get_bits(pk);

		if (n < RSA_MIN_BITS) {
			err_set(e, "RSA key of %d bits: at least %d needed", n,
			    RSA_MIN_BITS);
			return -1;
		}
		*alg = DKIM_ALG_RSA;
		*bits = (unsigned)n;
		return 0;
	}
	if (id == EVP_PKEY_ED25519) {
		*alg = DKIM_ALG_ED25519;
		*bits = 256;
		return 0;
	}
	name = EVP_PKEY_get0_type_name(pk);
	err_set(e, "%s key: DKIM needs RSA or Ed25519", name != NULL ? name :
	    "unknown");
	return -1;
}

/* Fills kd from pk: kind, and the key as PKCS#8 PEM (unencrypted). */
static enum rc
pkey_to_kd(EVP_PKEY *pk, struct dkim_keydata *kd, struct err *e)
{
	BIO	*b;
	char	*data;
	long	 n;
	enum rc	 rc = RC_OK;

	if (pkey_kind(pk, &kd->alg, &kd->bits, e) != 0)
		return RC_INVAL;
	b = BIO_new(BIO_s_mem());
	if (b == NULL) {
		ossl_err(e, "out of memory");
		return RC_NOMEM;
	}
	if (PEM_write_bio_PrivateKey(b, pk, NULL, NULL, 0, NULL, NULL) != 1) {
		ossl_err(e, "cannot write the key as PEM");
		BIO_free(b);
		return RC_NOMEM;
	}
	n = BIO_get_mem_data(b, &data);
	if (n <= 0 || (kd->pem = malloc((size_t)n + 1)) == NULL) {
		err_set(e, "out of memory");
		rc = RC_NOMEM;
	} else {
		memcpy(kd->pem, data, (size_t)n);
		kd->pem[n] = '\0';
		kd->len = (size_t)n;
	}
	if (n > 0)
		OPENSSL_cleanse(data, (size_t)n);
	BIO_free(b);
	return rc;
}

enum rc
dkim_key_parse(const char *pem, size_t len, struct dkim_keydata *kd,
    struct err *e)
{
	EVP_PKEY	*pk;
	enum rc		 rc;

	memset(kd, 0, sizeof(*kd));
	if ((pk = pem_to_pkey(pem, len, e)) == NULL)
		return RC_INVAL;
	rc = pkey_to_kd(pk, kd, e);
	EVP_PKEY_free(pk);
	if (rc != RC_OK)
		dkim_key_free(kd);
	return rc;
}

void
dkim_key_free(struct dkim_keydata *kd)
{
	if (kd == NULL)
		return;
	if (kd->pem != NULL) {
		explicit_bzero(kd->pem, kd->len);
		free(kd->pem);
	}
	memset(kd, 0, sizeof(*kd));
}

/* "root", "portero" or "uid 105" into buf. */
static void
user_name(uid_t uid, char *buf, size_t len)
{
	struct passwd	 pw, *res = NULL;
	char		 tmp[2048];

	if (uid == 0) {
		(void)snprintf(buf, len, "root");
		return;
	}
	/* the number when the name is unknown or does not fit */
	if (getpwuid_r(uid, &pw, tmp, sizeof(tmp), &res) == 0 &&
	    res != NULL && strlen(pw.pw_name) < len) {
		(void)snprintf(buf, len, "%s", pw.pw_name);
		return;
	}
	(void)snprintf(buf, len, "uid %lu", (unsigned long)uid);
}

/* The checks on the opened file; 0 or -1 with e set (without the
 * "key file PATH: " prefix). */
static int
file_ok(const struct stat *st, unsigned flags, uid_t owner, struct err *e)
{
	char	 me[64], them[64];
	uid_t	 euid = geteuid();

	if (!S_ISREG(st->st_mode)) {
		err_set(e, "is not a regular file");
		return -1;
	}
	if (st->st_size > (off_t)KEY_FILE_MAX) {
		err_set(e, "is larger than %u bytes: not a DKIM key",
		    KEY_FILE_MAX);
		return -1;
	}
	if (flags & DKIM_KEY_UNSAFE_OK)
		return 0;
	if (st->st_mode & 077) {
		err_set(e, "is %s by group or others (mode %04o): chmod 600 "
		    "it, or set dkim.allow_unsafe_keys", st->st_mode & 044 ?
		    "readable" : "writable or executable",
		    (unsigned)(st->st_mode & 07777));
		return -1;
	}
	if (st->st_uid == 0 || st->st_uid == euid ||
	    (owner != (uid_t)-1 && st->st_uid == owner))
		return 0;
	user_name(euid, me, sizeof(me));
	user_name(owner, them, sizeof(them));
	if (owner == (uid_t)-1 || owner == euid || owner == 0)
		err_set(e, "is owned by uid %lu, not by root%s%s",
		    (unsigned long)st->st_uid, euid != 0 ? " or " : "",
		    euid != 0 ? me : "");
	else if (euid == 0)
		err_set(e, "is owned by uid %lu, not by root or %s",
		    (unsigned long)st->st_uid, them);
	else
		err_set(e, "is owned by uid %lu, not by root, %s or %s",
		    (unsigned long)st->st_uid, me, them);
	return -1;
}

enum rc
dkim_key_load(const char *path, unsigned flags, uid_t owner,
    struct dkim_keydata *kd, struct err *e)
{
	struct stat	 st;
	char		*text = NULL;
	size_t		 n = 0;
	ssize_t		 r;
	int		 fd, oflags;
	enum rc		 rc;

	memset(kd, 0, sizeof(*kd));
	/* a symbolic link elsewhere is "unsafe" too; O_NONBLOCK: a FIFO
	 * must not hang the open, fstat then refuses it */
	oflags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
	if (!(flags & DKIM_KEY_UNSAFE_OK))
		oflags |= O_NOFOLLOW;
	fd = open(path, oflags);
	if (fd == -1) {
		int	 saved = errno;

		if (saved == ELOOP && (oflags & O_NOFOLLOW))
			err_set(e, "key file %s: is a symbolic link: name the "
			    "file itself, or set dkim.allow_unsafe_keys", path);
		else
			err_set(e, "key file %s: %s", path, strerror(saved));
		return saved == ENOENT ? RC_NOTFOUND : RC_PERM;
	}
	if (fstat(fd, &st) == -1) {
		err_set(e, "key file %s: %s", path, strerror(errno));
		rc = RC_PERM;
		goto out;
	}
	if (file_ok(&st, flags, owner, e) != 0) {
		err_prefix(e, "key file %s", path);
		rc = RC_PERM;
		goto out;
	}
	/* one byte more than allowed, to see a file that grew */
	if ((text = malloc(KEY_FILE_MAX + 1)) == NULL) {
		err_set(e, "key file %s: out of memory", path);
		rc = RC_NOMEM;
		goto out;
	}
	while (n <= KEY_FILE_MAX) {
		r = read(fd, text + n, KEY_FILE_MAX + 1 - n);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1) {
			err_set(e, "key file %s: %s", path, strerror(errno));
			rc = RC_PERM;
			goto out;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	if (n > KEY_FILE_MAX) {
		err_set(e, "key file %s: is larger than %u bytes: not a DKIM "
		    "key", path, KEY_FILE_MAX);
		rc = RC_INVAL;
		goto out;
	}
	rc = dkim_key_parse(text, n, kd, e);
	if (rc != RC_OK)
		err_prefix(e, "key file %s", path);
out:
	if (text != NULL) {
		explicit_bzero(text, n);
		free(text);
	}
	(void)close(fd);
	return rc;
}

/* base64 of n bytes, allocated; NULL when out of memory. */
static char *
b64(const unsigned char *in, size_t n)
{
	char	*out;

	if (n > INT_MAX / 2 || (out = malloc(4 * ((n + 2) / 3) + 1)) == NULL)
		return NULL;
	(void)EVP_EncodeBlock((unsigned char *)out, in, (int)n);
	return out;
}

char *
dkim_key_public_b64(const struct dkim_keydata *kd, struct err *e)
{
	EVP_PKEY	*pk;
	unsigned char	*der = NULL, *p, raw[ED25519_RAW];
	size_t		 rawlen = sizeof(raw);
	char		*out = NULL;
	int		 n;

	if (kd->pem == NULL) {
		err_set(e, "no private key");
		return NULL;
	}
	if ((pk = pem_to_pkey(kd->pem, kd->len, e)) == NULL)
		return NULL;
	switch (kd->alg) {
	case DKIM_ALG_RSA:
		if (EVP_PKEY_get_base_id(pk) != EVP_PKEY_RSA ||
		    (n = i2d_PUBKEY(pk, NULL)) <= 0) {
			ossl_err(e, "cannot encode the RSA public key");
			break;
		}
		if ((der = malloc((size_t)n)) == NULL) {
			err_set(e, "out of memory");
			break;
		}
		p = der;
		if (i2d_PUBKEY(pk, &p) != n) {
			ossl_err(e, "cannot encode the RSA public key");
			break;
		}
		if ((out = b64(der, (size_t)n)) == NULL)
			err_set(e, "out of memory");
		break;
	case DKIM_ALG_ED25519:
		if (EVP_PKEY_get_base_id(pk) != EVP_PKEY_ED25519 ||
		    EVP_PKEY_get_raw_public_key(pk, raw, &rawlen) != 1 ||
		    rawlen != ED25519_RAW) {
			ossl_err(e, "cannot get the Ed25519 public key");
			break;
		}
		if ((out = b64(raw, rawlen)) == NULL)
			err_set(e, "out of memory");
		break;
	}
	free(der);
	EVP_PKEY_free(pk);
	return out;
}

char *
dkim_txt_record(enum dkim_alg alg, const char *p_b64)
{
	const char	*k = key_type(alg);
	size_t		 len = strlen("v=DKIM1; k=; p=") + strlen(k) +
			    strlen(p_b64) + 1;
	char		*s;

	if ((s = malloc(len)) == NULL)
		return NULL;
	(void)snprintf(s, len, "v=DKIM1; k=%s; p=%s", k, p_b64);
	return s;
}

/* One byte of a zone-file character-string, escaped as RFC 1035 5.1. */
static enum rc
zone_char(struct buf *b, unsigned char c)
{
	if (c == '"' || c == '\\')
		return buf_printf(b, "\\%c", c);
	if (c < 0x20 || c >= 0x7f)
		return buf_printf(b, "\\%03u", c);
	return buf_putc(b, (char)c);
}

char *
dkim_txt_zone(const char *record)
{
	struct buf	 b;
	size_t		 len = strlen(record), nchunk, i, j;
	char		*out;

	nchunk = len == 0 ? 1 : (len + TXT_CHUNK - 1) / TXT_CHUNK;
	/* each byte at most 4 ("\DDD"), each string '"' '"' ' ', "( " ")" */
	if (len > (SIZE_MAX - 16) / 8)
		return NULL;
	buf_init(&b, 4 * len + 3 * nchunk + 8);
	if (nchunk > 1 && buf_puts(&b, "( ") != RC_OK)
		goto fail;
	for (i = 0; i < nchunk; i++) {
		if (buf_putc(&b, '"') != RC_OK)
			goto fail;
		for (j = i * TXT_CHUNK; j < len && j < (i + 1) * TXT_CHUNK; j++)
			if (zone_char(&b, (unsigned char)record[j]) != RC_OK)
				goto fail;
		if (buf_puts(&b, i + 1 < nchunk ? "\" " : "\"") != RC_OK)
			goto fail;
	}
	if (nchunk > 1 && buf_puts(&b, " )") != RC_OK)
		goto fail;
	out = b.data;		/* the caller owns it now */
	return out;
fail:
	buf_free(&b);
	return NULL;
}

/* Folding white space inside a TXT record: a DNS string holds no line
 * ends, but a record copied from a zone file may. */
static int
is_fws(int c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* RFC 6376 3.2 VALCHAR: printable ASCII except ';'. */
static int
is_valchar(int c)
{
	return c >= 0x21 && c <= 0x7e && c != ';';
}

static int
is_alpha(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int
is_alnumpunc(int c)
{
	return is_alpha(c) || (c >= '0' && c <= '9') || c == '_';
}

static int
is_b64(int c)
{
	return (is_alnumpunc(c) && c != '_') || c == '+' || c == '/';
}

/* Whitespace removed from the p= value, checked as base64, allocated. */
static int
p_value(const char *v, size_t n, char **p, struct err *e)
{
	char	*s;
	size_t	 i, o = 0, pad = 0;

	if ((s = malloc(n + 1)) == NULL) {
		err_set(e, "out of memory");
		return -1;
	}
	for (i = 0; i < n; i++) {
		int c = (unsigned char)v[i];

		if (is_fws(c))
			continue;
		if (c == '=')
			pad++;
		/* at most two '=', and only at the end */
		if (pad > 2 || (c != '=' && (pad > 0 || !is_b64(c)))) {
			free(s);
			err_set(e, "p= is not base64");
			return -1;
		}
		s[o++] = (char)c;
	}
	s[o] = '\0';
	*p = s;
	return 0;
}

int
dkim_txt_parse(const char *txt, size_t len, char **p, enum dkim_alg *alg,
    struct err *e)
{
	const char	*s = txt, *end = txt + len, *name, *val, *pv = NULL;
	size_t		 nlen, vlen, pvlen = 0, ntags = 0;
	int		 seen_k = 0;

	*p = NULL;
	*alg = DKIM_ALG_RSA;
	for (;;) {
		while (s < end && is_fws((unsigned char)*s))
			s++;
		if (s == end && ntags > 0)
			break;		/* a trailing ';' is allowed */
		name = s;
		if (s == end || !is_alpha((unsigned char)*s)) {
			err_set(e, "not a tag list (tag %zu)", ntags + 1);
			return -1;
		}
		while (s < end && is_alnumpunc((unsigned char)*s))
			s++;
		nlen = (size_t)(s - name);
		while (s < end && is_fws((unsigned char)*s))
			s++;
		if (s == end || *s != '=') {
			err_set(e, "not a tag list (no '=' after %.*s)",
			    (int)(nlen > 32 ? 32 : nlen), name);
			return -1;
		}
		s++;
		while (s < end && is_fws((unsigned char)*s))
			s++;
		val = s;
		for (; s < end && *s != ';'; s++) {
			int c = (unsigned char)*s;

			if (!is_valchar(c) && !is_fws(c)) {
				err_set(e, "not a tag list (byte 0x%02x in "
				    "%.*s=)", (unsigned)c,
				    (int)(nlen > 32 ? 32 : nlen), name);
				return -1;
			}
		}
		vlen = (size_t)(s - val);
		while (vlen > 0 && is_fws((unsigned char)val[vlen - 1]))
			vlen--;
		if (nlen == 1 && name[0] == 'v') {
			if (ntags > 0) {
				err_set(e, "v= is not the first tag");
				return -1;
			}
			if (vlen != 5 || memcmp(val, "DKIM1", 5) != 0) {
				err_set(e, "v=%.*s, not DKIM1",
				    (int)(vlen > 32 ? 32 : vlen), val);
				return -1;
			}
		} else if (nlen == 1 && name[0] == 'k') {
			if (seen_k++) {
				err_set(e, "k= appears twice");
				return -1;
			}
			if (vlen == 3 && strncasecmp(val, "rsa", 3) == 0)
				*alg = DKIM_ALG_RSA;
			else if (vlen == 7 && strncasecmp(val, "ed25519", 7) ==
			    0)
				*alg = DKIM_ALG_ED25519;
			else {
				err_set(e, "unsupported key type k=%.*s",
				    (int)(vlen > 32 ? 32 : vlen), val);
				return -1;
			}
		} else if (nlen == 1 && name[0] == 'p') {
			if (pv != NULL) {
				err_set(e, "p= appears twice");
				return -1;
			}
			pv = val;
			pvlen = vlen;
		}
		ntags++;
		if (s < end)
			s++;		/* the ';' */
	}
	if (pv == NULL) {
		err_set(e, "no p= tag");
		return -1;
	}
	return p_value(pv, pvlen, p, e);
}

enum rc
dkim_keygen(enum dkim_alg alg, unsigned bits, struct dkim_keydata *kd,
    struct err *e)
{
	EVP_PKEY_CTX	*ctx = NULL;
	EVP_PKEY	*pk = NULL;
	enum rc		 rc = RC_NOMEM;

	memset(kd, 0, sizeof(*kd));
	switch (alg) {
	case DKIM_ALG_RSA:
		if (bits < RSA_MIN_BITS || bits > RSA_MAX_BITS) {
			err_set(e, "RSA key of %u bits: %d to %d needed", bits,
			    RSA_MIN_BITS, RSA_MAX_BITS);
			return RC_INVAL;
		}
		ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_RSA, NULL);
		if (ctx == NULL || EVP_PKEY_keygen_init(ctx) != 1 ||
		    EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, (int)bits) != 1)
			goto fail;
		break;
	case DKIM_ALG_ED25519:
		ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, NULL);
		if (ctx == NULL || EVP_PKEY_keygen_init(ctx) != 1)
			goto fail;
		break;
	}
	if (ctx == NULL || EVP_PKEY_generate(ctx, &pk) != 1)
		goto fail;
	rc = pkey_to_kd(pk, kd, e);
	goto out;
fail:
	ossl_err(e, "key generation failed");
out:
	EVP_PKEY_free(pk);
	EVP_PKEY_CTX_free(ctx);
	return rc;
}
