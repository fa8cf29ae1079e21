/*
 * ctl_dkim.c - portero-ctl's dkim commands.  Single-threaded.
 *
 *   dkim keygen -d DOMAIN -s SELECTOR [-a rsa|ed25519] [-b BITS] [-o DIR]
 *	writes DIR/DOMAIN.SELECTOR.pem (mode 0600, never over an existing
 *	file) and prints the DNS TXT record in zone-file form and the
 *	config entry; needs no config.
 *   dkim check -d DOMAIN -s SELECTOR [-k KEYFILE]
 *	asks DNS, with the config's resolver settings, for the TXT record
 *	of SELECTOR._domainkey.DOMAIN and says whether it publishes the
 *	public half of KEYFILE (default: the key the config names for
 *	DOMAIN and SELECTOR in dkim.keys, else in dkim.key_table).
 *
 * Exit status: 0 success / match, 1 failure / anything but a match, 2
 * usage error or a config that is not valid.  Private key material is
 * never printed.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libconfig.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "addr.h"
#include "cfg.h"
#include "ctl.h"
#include "dkimkey.h"
#include "dns.h"
#include "util.h"

#define RSA_DEFAULT_BITS	2048
#define DNS_NAME_MAX		253	/* text form, no trailing dot */
#define DOMAINKEY		"._domainkey."

static int
usage(void)
{
	(void)fprintf(stderr, "usage: portero-ctl [-c FILE] dkim keygen "
	    "-d DOMAIN -s SELECTOR [-a rsa|ed25519] [-b BITS] [-o DIR]\n"
	    "       portero-ctl [-c FILE] dkim check -d DOMAIN -s SELECTOR "
	    "[-k KEYFILE]\n");
	return 2;
}

/*
 * Checks and normalises -d and -s in place (lower case; one trailing dot
 * of the domain dropped).  0, or -1 after saying why.
 */
static int
names_ok(char *domain, char *sel)
{
	size_t	 dl, sl;

	if (domain == NULL || sel == NULL) {
		(void)fprintf(stderr, "portero-ctl: dkim: -d DOMAIN and "
		    "-s SELECTOR are needed\n");
		return -1;
	}
	dl = strlen(domain);
	if (dl > 1 && domain[dl - 1] == '.')
		domain[--dl] = '\0';
	sl = strlen(sel);
	if (!hostname_valid(domain) || domain[dl - 1] == '.') {
		(void)fprintf(stderr, "portero-ctl: dkim: '%s' is not a "
		    "domain name\n", domain);
		return -1;
	}
	if (!hostname_valid(sel) || sel[sl - 1] == '.') {
		(void)fprintf(stderr, "portero-ctl: dkim: '%s' is not a "
		    "selector (DNS labels separated by dots)\n", sel);
		return -1;
	}
	if (sl + strlen(DOMAINKEY) + dl > DNS_NAME_MAX) {
		(void)fprintf(stderr, "portero-ctl: dkim: %s%s%s is longer "
		    "than a DNS name may be\n", sel, DOMAINKEY, domain);
		return -1;
	}
	str_lower(domain);
	str_lower(sel);
	return 0;
}

/* a, b and c joined, allocated; NULL when out of memory. */
static char *
join3(const char *a, const char *b, const char *c)
{
	size_t	 len = strlen(a) + strlen(b) + strlen(c) + 1;
	char	*s = malloc(len);

	if (s != NULL)
		(void)snprintf(s, len, "%s%s%s", a, b, c);
	return s;
}

/* s as a libconfig string literal (quotes, backslashes, control bytes
 * escaped). */
static void
print_cfg_string(const char *s)
{
	(void)putchar('"');
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			(void)printf("\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			(void)printf("\\x%02x", c);
		else
			(void)putchar(c);
	}
	(void)putchar('"');
}

/* Writes len bytes of the key to a new file path, mode 0600. */
static int
write_key(const char *path, const char *pem, size_t len)
{
	size_t	 off = 0;
	ssize_t	 n;
	int	 fd;

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    0600);
	if (fd == -1) {
		if (errno == EEXIST)
			(void)fprintf(stderr, "portero-ctl: %s exists: not "
			    "overwritten (remove it, or choose another "
			    "selector)\n", path);
		else
			(void)fprintf(stderr, "portero-ctl: %s: %s\n", path,
			    strerror(errno));
		return -1;
	}
	/* exactly 0600 whatever the umask */
	if (fchmod(fd, 0600) == -1)
		goto fail;
	while (off < len) {
		n = write(fd, pem + off, len - off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			goto fail;
		off += (size_t)n;
	}
	if (fsync(fd) == -1)
		goto fail;
	if (close(fd) == -1) {
		fd = -1;
		goto fail;
	}
	return 0;
fail:
	(void)fprintf(stderr, "portero-ctl: %s: %s\n", path, strerror(errno));
	if (fd != -1)
		(void)close(fd);
	(void)unlink(path);
	return -1;
}

static int
keygen_cmd(int argc, char **argv)
{
	struct dkim_keydata	 kd;
	struct stat		 st;
	struct err		 e;
	char			*domain = NULL, *sel = NULL, *absdir = NULL;
	char			*file = NULL, *path = NULL, *pub = NULL;
	char			*rec = NULL, *zone = NULL;
	const char		*dir = ".";
	unsigned long long	 bits = 0;
	int			 c, a, rc = 1;
	enum dkim_alg		 alg = DKIM_ALG_RSA;

	memset(&kd, 0, sizeof(kd));
	err_clear(&e);
	optind = 1;
	opterr = 0;
	while ((c = getopt(argc, argv, "+d:s:a:b:o:")) != -1) {
		switch (c) {
		case 'd':
			domain = optarg;
			break;
		case 's':
			sel = optarg;
			break;
		case 'a':
			if ((a = dkim_alg_parse(optarg)) >= 0)
				alg = (enum dkim_alg)a;
			else if (strcmp(optarg, "rsa") == 0)
				alg = DKIM_ALG_RSA;
			else if (strcmp(optarg, "ed25519") == 0)
				alg = DKIM_ALG_ED25519;
			else
				return usage();
			break;
		case 'b':
			if (parse_uint(optarg, 1024, 8192, &bits) != RC_OK) {
				(void)fprintf(stderr, "portero-ctl: dkim "
				    "keygen: -b: 1024 to 8192 bits\n");
				return usage();
			}
			break;
		case 'o':
			dir = optarg;
			break;
		default:
			return usage();
		}
	}
	if (optind != argc || names_ok(domain, sel) != 0)
		return usage();
	if (alg == DKIM_ALG_ED25519 && bits != 0) {
		(void)fprintf(stderr, "portero-ctl: dkim keygen: -b is for "
		    "rsa keys (ed25519 keys have one size)\n");
		return usage();
	}
	if (bits == 0)
		bits = RSA_DEFAULT_BITS;
	if ((absdir = realpath(dir, NULL)) == NULL || stat(absdir, &st) ==
	    -1 || !S_ISDIR(st.st_mode)) {
		(void)fprintf(stderr, "portero-ctl: dkim keygen: %s: %s\n",
		    dir, absdir == NULL ? strerror(errno) :
		    "not a directory");
		goto out;
	}
	if ((file = join3(domain, ".", sel)) == NULL ||
	    (path = malloc(strlen(absdir) + strlen(file) + 6)) == NULL) {
		(void)fprintf(stderr, "portero-ctl: out of memory\n");
		goto out;
	}
	(void)snprintf(path, strlen(absdir) + strlen(file) + 6, "%s%s%s.pem",
	    absdir, strcmp(absdir, "/") == 0 ? "" : "/", file);
	/* say so before a long RSA generation; the O_EXCL open decides */
	if (lstat(path, &st) == 0) {
		(void)fprintf(stderr, "portero-ctl: %s exists: not "
		    "overwritten (remove it, or choose another selector)\n",
		    path);
		goto out;
	}
	if (dkim_keygen(alg, (unsigned)bits, &kd, &e) != RC_OK ||
	    (pub = dkim_key_public_b64(&kd, &e)) == NULL) {
		(void)fprintf(stderr, "portero-ctl: dkim keygen: %s\n", e.msg);
		goto out;
	}
	if ((rec = dkim_txt_record(alg, pub)) == NULL ||
	    (zone = dkim_txt_zone(rec)) == NULL) {
		(void)fprintf(stderr, "portero-ctl: out of memory\n");
		goto out;
	}
	if (write_key(path, kd.pem, kd.len) != 0)
		goto out;
	if (alg == DKIM_ALG_RSA)
		(void)printf("; DKIM key %s, selector %s: rsa %u bits, private "
		    "key in %s\n", domain, sel, kd.bits, path);
	else
		(void)printf("; DKIM key %s, selector %s: ed25519, private key "
		    "in %s\n", domain, sel, path);
	(void)printf("%s%s%s. IN TXT %s\n", sel, DOMAINKEY, domain, zone);
	(void)printf("dkim = { keys = ( { domain = ");
	print_cfg_string(domain);
	(void)printf("; selector = ");
	print_cfg_string(sel);
	(void)printf("; key = ");
	print_cfg_string(path);
	(void)printf("; algorithm = \"%s\"; } ); };\n", dkim_alg_name(alg));
	rc = fflush(stdout) == 0 ? 0 : 1;
out:
	dkim_key_free(&kd);
	free(absdir);
	free(file);
	free(path);
	free(pub);
	free(rec);
	free(zone);
	return rc;
}

/* What check reads from the config file itself: the check_dkim module's
 * compiled conf is private to it. */
struct dkim_conf {
	char	*key;		/* path; NULL if none is configured */
	int	 unsafe;	/* dkim.allow_unsafe_keys */
};

/* The key path for domain and sel in dkim.key_table (path entries). */
static int
keytable_key(const char *table, const char *domain, const char *sel,
    struct dkim_conf *dc, struct err *e)
{
	struct dkim_keytable	 kt;
	size_t			 i;
	int			 rc = 0;

	if (dkim_keytable_load(table, &kt, e) != 0)
		return -1;
	for (i = 0; i < kt.n && dc->key == NULL; i++) {
		if (!str_ieq(kt.v[i].domain, domain) ||
		    !str_ieq(kt.v[i].selector, sel))
			continue;
		if (kt.v[i].key[0] != '/' && kt.v[i].key[0] != '.') {
			err_set(e, "%s: the key of %s%s%s is inline data: "
			    "give -k KEYFILE", table, sel, DOMAINKEY, domain);
			rc = -1;
			break;
		}
		if ((dc->key = strdup(kt.v[i].key)) == NULL) {
			err_set(e, "out of memory");
			rc = -1;
		}
	}
	dkim_keytable_free(&kt);
	return rc;
}

/* Reads dkim.allow_unsafe_keys and, when want_key, the key of domain and
 * sel from dkim.keys or dkim.key_table.  0, or -1 with e set. */
static int
dkim_conf_read(const char *cfgpath, const char *domain, const char *sel,
    int want_key, struct dkim_conf *dc, struct err *e)
{
	config_t		 lc;
	config_setting_t	*keys, *k;
	const char		*d, *s, *path, *table = NULL;
	int			 i, n, rc = -1;

	memset(dc, 0, sizeof(*dc));
	config_init(&lc);
	config_set_auto_convert(&lc, 0);
	if (config_read_file(&lc, cfgpath) != CONFIG_TRUE) {
		err_set(e, "%s:%d: %s", cfgpath, config_error_line(&lc),
		    config_error_text(&lc));
		goto out;
	}
	if (config_lookup_bool(&lc, "dkim.allow_unsafe_keys", &dc->unsafe) !=
	    CONFIG_TRUE)
		dc->unsafe = 0;
	if (!want_key) {
		rc = 0;
		goto out;
	}
	keys = config_lookup(&lc, "dkim.keys");
	n = keys != NULL ? config_setting_length(keys) : 0;
	for (i = 0; i < n; i++) {
		k = config_setting_get_elem(keys, (unsigned)i);
		if (config_setting_lookup_string(k, "domain", &d) !=
		    CONFIG_TRUE || config_setting_lookup_string(k,
		    "selector", &s) != CONFIG_TRUE ||
		    config_setting_lookup_string(k, "key", &path) !=
		    CONFIG_TRUE || !str_ieq(d, domain) || !str_ieq(s, sel))
			continue;
		if ((dc->key = strdup(path)) == NULL) {
			err_set(e, "out of memory");
			goto out;
		}
		rc = 0;
		goto out;
	}
	if (config_lookup_string(&lc, "dkim.key_table", &table) ==
	    CONFIG_TRUE && *table != '\0') {
		if (keytable_key(table, domain, sel, dc, e) != 0)
			goto out;
	}
	if (dc->key == NULL) {
		err_set(e, "%s names no key for domain %s selector %s "
		    "(dkim.keys%s): give -k KEYFILE", cfgpath, domain, sel,
		    table != NULL && *table != '\0' ? ", dkim.key_table" : "");
		goto out;
	}
	rc = 0;
out:
	config_destroy(&lc);
	return rc;
}

/* Decodes base64 (no whitespace); allocated, NULL if not base64. */
static unsigned char *
unb64(const char *s, size_t *len)
{
	size_t		 n = strlen(s), pad = 0;
	unsigned char	*out;
	int		 r;

	if (n == 0 || n % 4 != 0 || n > INT_MAX)
		return NULL;
	if ((out = malloc(n / 4 * 3 + 1)) == NULL)
		return NULL;
	r = EVP_DecodeBlock(out, (const unsigned char *)s, (int)n);
	if (r < 0) {
		free(out);
		return NULL;
	}
	if (s[n - 1] == '=')
		pad++;
	if (s[n - 2] == '=')
		pad++;
	*len = (size_t)r - pad;
	return out;
}

/* An RSA public key as DER SubjectPublicKeyInfo, or as the RSAPublicKey
 * RFC 6376 names (both are published). */
static EVP_PKEY *
rsa_pub(const unsigned char *der, size_t len)
{
	const unsigned char	*p = der;
	EVP_PKEY		*pk;

	if (len > LONG_MAX)
		return NULL;
	pk = d2i_PUBKEY(NULL, &p, (long)len);
	if (pk == NULL) {
		p = der;
		pk = d2i_PublicKey(EVP_PKEY_RSA, NULL, &p, (long)len);
	}
	ERR_clear_error();
	return pk;
}

/* 1 if the published p= (theirs) is the same key as ours. */
static int
same_key(enum dkim_alg alg, const char *ours, const char *theirs)
{
	unsigned char	*a = NULL, *b = NULL;
	size_t		 al = 0, bl = 0;
	EVP_PKEY	*pa = NULL, *pb = NULL;
	int		 same = 0;

	if (strcmp(ours, theirs) == 0)
		return 1;
	if ((a = unb64(ours, &al)) == NULL || (b = unb64(theirs, &bl)) ==
	    NULL)
		goto out;
	switch (alg) {
	case DKIM_ALG_RSA:
		pa = rsa_pub(a, al);
		pb = rsa_pub(b, bl);
		same = pa != NULL && pb != NULL && EVP_PKEY_eq(pa, pb) == 1;
		break;
	case DKIM_ALG_ED25519:
		same = al == bl && memcmp(a, b, al) == 0;
		break;
	}
out:
	EVP_PKEY_free(pa);
	EVP_PKEY_free(pb);
	free(a);
	free(b);
	ERR_clear_error();
	return same;
}

/* The character-strings of a TXT rdata joined, allocated; NULL if the
 * rdata is malformed or memory is short (*bad says which). */
static char *
txt_join(const uint8_t *p, size_t n, size_t *len, int *bad)
{
	size_t	 i = 0, o = 0;
	char	*s;

	*bad = 0;
	if ((s = malloc(n + 1)) == NULL)
		return NULL;
	while (i < n) {
		size_t l = p[i++];

		if (l > n - i) {
			*bad = 1;
			free(s);
			return NULL;
		}
		memcpy(s + o, p + i, l);
		o += l;
		i += l;
	}
	s[o] = '\0';
	*len = o;
	return s;
}

/* What the TXT records at the name say about our key. */
struct seen {
	size_t	 records, dkim, revoked, bad, match, other_alg;
	char	 why[ERR_MAX];		/* of the first bad DKIM record */
};

static int
look(struct dns_query *q, enum dkim_alg alg, const char *pub,
    struct seen *sn)
{
	const uint8_t	*rr;
	size_t		 i, len, tl;
	char		*txt, *p;
	enum dkim_alg	 palg;
	struct err	 e;
	int		 bad;

	memset(sn, 0, sizeof(*sn));
	sn->records = dns_query_count(q);
	for (i = 0; i < sn->records; i++) {
		rr = dns_query_data(q, i, &len);
		if (rr == NULL)
			continue;
		if ((txt = txt_join(rr, len, &tl, &bad)) == NULL) {
			if (!bad)
				return -1;
			continue;
		}
		err_clear(&e);
		if (dkim_txt_parse(txt, tl, &p, &palg, &e) != 0) {
			/* another kind of TXT record is none of ours; a
			 * DKIM one that does not parse is an error */
			if (strncmp(txt, "v=DKIM1", 7) == 0 && sn->bad++ == 0)
				(void)snprintf(sn->why, sizeof(sn->why), "%s",
				    e.msg);
			free(txt);
			continue;
		}
		sn->dkim++;
		if (*p == '\0')
			sn->revoked++;
		else if (palg != alg)
			sn->other_alg++;
		else if (same_key(alg, pub, p))
			sn->match++;
		free(p);
		free(txt);
	}
	return 0;
}

static int
report(const char *name, const char *keyfile, const struct dkim_keydata *kd,
    const struct seen *sn)
{
	char	 note[64], kind[32];

	/* how many records there were, when several */
	if (sn->records > 1)
		(void)snprintf(note, sizeof(note), "; %zu TXT records",
		    sn->records);
	else
		note[0] = '\0';
	if (kd->alg == DKIM_ALG_RSA)
		(void)snprintf(kind, sizeof(kind), "rsa %u bits", kd->bits);
	else
		(void)snprintf(kind, sizeof(kind), "ed25519");
	if (sn->match > 0) {
		(void)printf("match: %s publishes the public key of %s "
		    "(%s%s)\n", name, keyfile, kind, note);
		return 0;
	}
	if (sn->bad > 0)
		(void)printf("error: %s: bad DKIM key record: %s\n", name,
		    sn->why);
	else if (sn->dkim == 0)
		(void)printf("no record: %s has no DKIM key record (%zu TXT "
		    "record%s)\n", name, sn->records, sn->records == 1 ? "" :
		    "s");
	else if (sn->revoked == sn->dkim)
		(void)printf("revoked: %s publishes an empty p= (key "
		    "revoked%s)\n", name, note);
	else if (sn->other_alg + sn->revoked == sn->dkim)
		(void)printf("mismatch: %s publishes a key of another type "
		    "(%s is %s%s)\n", name, keyfile, kind, note);
	else
		(void)printf("mismatch: %s publishes a different key (%s is "
		    "%s%s)\n", name, keyfile, kind, note);
	return 1;
}

static int
check_cmd(const char *cfgpath, int argc, char **argv)
{
	struct dkim_keydata	 kd;
	struct dkim_conf	 dc;
	struct cfg		*cfg = NULL;
	struct dns		*dns;
	struct dns_batch	*b = NULL;
	struct dns_query	*q;
	struct passwd		*pw;
	struct seen		 sn;
	struct err		 e;
	char			*domain = NULL, *sel = NULL, *name = NULL;
	char			*pub = NULL;
	const char		*keyfile = NULL;
	uid_t			 owner = (uid_t)-1;
	int			 c, rc = 1;

	memset(&kd, 0, sizeof(kd));
	memset(&dc, 0, sizeof(dc));
	err_clear(&e);
	optind = 1;
	opterr = 0;
	while ((c = getopt(argc, argv, "+d:s:k:")) != -1) {
		switch (c) {
		case 'd':
			domain = optarg;
			break;
		case 's':
			sel = optarg;
			break;
		case 'k':
			keyfile = optarg;
			break;
		default:
			return usage();
		}
	}
	if (optind != argc || names_ok(domain, sel) != 0)
		return usage();
	if ((cfg = cfg_load(cfgpath, &e)) == NULL) {
		(void)fprintf(stderr, "portero-ctl: %s\n", e.msg);
		return 2;
	}
	if (dkim_conf_read(cfgpath, domain, sel, keyfile == NULL, &dc, &e) !=
	    0) {
		(void)printf("error: %s\n", e.msg);
		goto out;
	}
	if (keyfile == NULL)
		keyfile = dc.key;
	if (cfg->milter.user != NULL && *cfg->milter.user != '\0' &&
	    (pw = getpwnam(cfg->milter.user)) != NULL)
		owner = pw->pw_uid;
	if (dkim_key_load(keyfile, dc.unsafe ? DKIM_KEY_UNSAFE_OK : 0, owner,
	    &kd, &e) != RC_OK || (pub = dkim_key_public_b64(&kd, &e)) ==
	    NULL) {
		(void)printf("error: %s\n", e.msg);
		goto out;
	}
	if ((name = join3(sel, DOMAINKEY, domain)) == NULL) {
		(void)printf("error: out of memory\n");
		goto out;
	}
	if ((dns = cfg_dns(cfg, &e)) == NULL) {
		(void)printf("error: %s\n", e.msg);
		goto out;
	}
	if ((b = dns_batch_new(dns)) == NULL ||
	    (q = dns_batch_add(b, name, DNS_T_TXT)) == NULL) {
		(void)printf("error: out of memory\n");
		goto out;
	}
	dns_batch_wait(b);
	switch (dns_query_status(q)) {
	case DNS_OK:
		if (look(q, kd.alg, pub, &sn) != 0) {
			(void)printf("error: out of memory\n");
			goto out;
		}
		rc = report(name, keyfile, &kd, &sn);
		break;
	case DNS_NXDOMAIN:
	case DNS_NODATA:
		(void)printf("no record: %s has no TXT record (%s)\n", name,
		    dns_status_name(dns_query_status(q)));
		break;
	case DNS_PENDING:
	case DNS_SERVFAIL:
	case DNS_TIMEOUT:
	case DNS_ERROR:
		(void)printf("error: %s: DNS %s\n", name,
		    dns_status_name(dns_query_status(q)));
		break;
	}
out:
	dns_batch_free(b);
	dkim_key_free(&kd);
	free(dc.key);
	free(name);
	free(pub);
	cfg_release(cfg);
	return rc;
}

int
ctl_dkim_main(const char *cfgpath, int argc, char **argv)
{
	if (argc >= 1 && strcmp(argv[0], "keygen") == 0)
		return keygen_cmd(argc, argv);
	if (argc >= 1 && strcmp(argv[0], "check") == 0)
		return check_cmd(cfgpath, argc, argv);
	return usage();
}
