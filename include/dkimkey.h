/*
 * dkimkey.h - DKIM keys and OpenDKIM-compatible tables, without
 * libopendkim: key files (permission checks, OpenSSL parsing, algorithm
 * detection), the public half as a DNS TXT record, key generation, and
 * the KeyTable / SigningTable file formats of OpenDKIM for sites that
 * migrate.  Used by check_dkim.c (signing) and ctl_dkim.c (portero-ctl
 * dkim keygen|check).  Thread-safe: no global state.
 */
#ifndef PORTERO_DKIMKEY_H
#define PORTERO_DKIMKEY_H

#include <stddef.h>
#include <sys/types.h>

#include "err.h"

enum dkim_alg {
	DKIM_ALG_RSA,		/* rsa-sha256 */
	DKIM_ALG_ED25519	/* ed25519-sha256 (RFC 8463) */
};

/* "rsa-sha256" / "ed25519-sha256"; -1 if neither. */
int		 dkim_alg_parse(const char *);
const char	*dkim_alg_name(enum dkim_alg);

/* A private key: PEM text (PKCS#8), NUL-terminated. */
struct dkim_keydata {
	char		*pem;
	size_t		 len;
	enum dkim_alg	 alg;
	unsigned	 bits;		/* RSA modulus bits; 256 for Ed25519 */
};

/* Key file checks of dkim_key_load. */
#define DKIM_KEY_UNSAFE_OK	0x01	/* dkim.allow_unsafe_keys */

/*
 * Reads and parses a PEM private key file (PKCS#1 "RSA PRIVATE KEY" or
 * PKCS#8 "PRIVATE KEY", RSA or Ed25519).  Unless DKIM_KEY_UNSAFE_OK: the
 * file must be a regular file, not readable or writable by group or
 * others, and owned by root, by the caller's effective uid, or by owner
 * (the uid of milter.user; (uid_t)-1 for none).  Errors read "key file
 * PATH: why"
 * ("is readable by group or others (mode 0640): chmod 600 it, or set
 * dkim.allow_unsafe_keys", "is owned by uid 1000, not by root or
 * portero", "No such file or directory", "not a PEM private key",
 * "RSA key of 512 bits: at least 1024 needed").  RSA keys under 1024
 * bits are refused (RFC 8301).
 */
enum rc		 dkim_key_load(const char *path, unsigned flags, uid_t owner,
		    struct dkim_keydata *, struct err *);
/* The same from PEM text in memory (no file checks). */
enum rc		 dkim_key_parse(const char *pem, size_t len,
		    struct dkim_keydata *, struct err *);
void		 dkim_key_free(struct dkim_keydata *);

/*
 * The public key's p= value (base64 of the DER SubjectPublicKeyInfo for
 * RSA, of the raw 32 bytes for Ed25519, as RFC 8463 says), allocated.
 */
char		*dkim_key_public_b64(const struct dkim_keydata *, struct err *);
/*
 * The TXT record text "v=DKIM1; k=rsa; p=..." (k=ed25519), allocated; and
 * the same as a zone-file value: quoted strings of at most 255 characters
 * separated by spaces, inside parentheses when more than one.
 */
char		*dkim_txt_record(enum dkim_alg, const char *p_b64);
char		*dkim_txt_zone(const char *record);
/*
 * Parses a published DKIM TXT record (tags, RFC 6376 section 3.6.1):
 * *p gets the p= value with folding whitespace removed (allocated; ""
 * when revoked), *alg its k= (rsa when absent).  -1 with e set when it
 * is not a DKIM key record.
 */
int		 dkim_txt_parse(const char *txt, size_t len, char **p,
		    enum dkim_alg *alg, struct err *);

/* Generates a key (RSA of bits >= 1024, or Ed25519) as PKCS#8 PEM. */
enum rc		 dkim_keygen(enum dkim_alg, unsigned bits,
		    struct dkim_keydata *, struct err *);

/*
 * OpenDKIM tables.  KeyTable lines: "NAME DOMAIN:SELECTOR:KEY" where KEY
 * is a file path or the key data itself (base64 / PEM on one line);
 * SigningTable lines: "PATTERN NAME" where PATTERN is an address or a
 * domain and may hold '*' wildcards (OpenDKIM's refile: form); '#' starts
 * a comment; blank lines are skipped; one entry per line.  A table path
 * in the config may carry OpenDKIM's "file:" or "refile:" prefix.
 * Errors read "PATH:LINE: why".
 */
struct dkim_kt_entry {
	char	*name;
	char	*domain;	/* lower-case */
	char	*selector;
	char	*key;		/* path or inline data, as written */
};

struct dkim_keytable {
	struct dkim_kt_entry	*v;
	size_t			 n;
};

struct dkim_st_entry {
	char	*pattern;	/* lower-case */
	char	*keyname;
	/*
	 * Added with dkimtable.c: OpenDKIM's optional second value field,
	 * "PATTERN NAME:SIGNER", the i= identity to sign with; NULL when
	 * absent.  As written: a '%' in it (or a NAME or KeyTable DOMAIN
	 * of "%") stands for the From domain, for the signer to replace.
	 */
	char	*signer;
};

struct dkim_signtable {
	struct dkim_st_entry	*v;
	size_t			 n;
};

/* Parse table text (path is only for error messages). */
int		 dkim_keytable_parse(const char *path, const char *text,
		    size_t len, struct dkim_keytable *, struct err *);
int		 dkim_signtable_parse(const char *path, const char *text,
		    size_t len, struct dkim_signtable *, struct err *);
/* Read a table file (strips a "file:" / "refile:" prefix from path). */
int		 dkim_keytable_load(const char *path, struct dkim_keytable *,
		    struct err *);
int		 dkim_signtable_load(const char *path, struct dkim_signtable *,
		    struct err *);
void		 dkim_keytable_free(struct dkim_keytable *);
void		 dkim_signtable_free(struct dkim_signtable *);
/* Case-insensitive match of subject against pattern ('*' matches any
 * run of characters, also empty); bounded time (no backtracking
 * explosion on many '*'). */
int		 dkim_pattern_match(const char *pattern, const char *subject);
/*
 * The signing table entries that apply to a From address, in table
 * order: a pattern matching "local@domain", or matching "domain"
 * (OpenDKIM looks up both).  Calls fn for each; stops when fn returns
 * non-zero.
 */
void		 dkim_signtable_lookup(const struct dkim_signtable *,
		    const char *local, const char *domain,
		    int (*fn)(const struct dkim_st_entry *, void *), void *);

#endif
