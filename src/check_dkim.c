/*
 * check_dkim.c - DKIM signing of outbound mail (group "dkim"; the
 * signatures are made by dkimsign.c).
 *
 * For mail from internal or authenticated clients (dkim.sign_for), the
 * key is chosen by the domain of the From header: the dkim.keys of that
 * exact domain (every algorithm it has: one signature each), else those
 * of the closest parent domain marked subdomains = true, else the first
 * dkim.signing_table pattern that matches the From address or domain
 * (with the entries that repeat that pattern), else, with
 * dkim.envelope_fallback, the same for the envelope sender's domain.
 *
 * The header fields are kept as they arrive; at end of header the signing
 * handles are started and fed the fields that will be queued (those the
 * outbound cleanup removes are left out, since check_outbound runs
 * before), the body chunks are fed as they arrive (nothing is buffered),
 * and at end of message the DKIM-Signature fields are inserted at the top.
 * No l= tag; From (dkim.oversign) oversigned.
 *
 * A key that cannot be loaded (unreadable, unsafe permissions, not a key)
 * leaves its domain unsigned: logged when the config is loaded and for
 * each message, counted (portero -t makes it a config error).  DKIM never
 * refuses mail (SPEC section 4); in dry run the signature is computed
 * and logged ("would-sign:...") but not added.  Conf (the parsed keys
 * included) is read-only after setup and each message has its own
 * signers: thread-safe.
 */
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "cfg.h"
#include "ctx.h"
#include "dkimkey.h"
#include "dkimsign.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

#define MAX_SIGS	4	/* signatures per message */

struct dk_key {
	char			*name;		/* key table name, or NULL */
	char			*domain;	/* lower-case */
	char			*selector;
	int			 subdomains;
	struct dkim_keydata	 kd;
	struct dksign_key	*sk;		/* parsed, shared by threads */
	char			*error;		/* why it cannot sign */
};

struct dk_conf {
	struct dk_key		*keys;
	size_t			 nkeys;
	struct dkim_signtable	 st;
	int			 for_auth, for_internal, envelope_fallback;
	int			 hsimple, bsimple;
	struct strlist		 oversign;
};

struct dk_hdr {
	struct dk_hdr	*next;
	const char	*name, *value;
	int		 removed;	/* another module removes it */
};

struct dk_msg {
	struct dk_hdr		*hdrs, **tail;
	const struct dk_key	*keys[MAX_SIGS];
	struct dksign		*d[MAX_SIGS];
	size_t			 n;
	int			 started;
};

static void
dk_teardown(void *p)
{
	struct dk_conf	*dc = p;
	size_t		 i;

	if (dc == NULL)
		return;
	for (i = 0; i < dc->nkeys; i++) {
		free(dc->keys[i].name);
		free(dc->keys[i].domain);
		free(dc->keys[i].selector);
		free(dc->keys[i].error);
		dkim_key_free(&dc->keys[i].kd);
		dksign_key_free(dc->keys[i].sk);
	}
	free(dc->keys);
	dkim_signtable_free(&dc->st);
	strlist_free(&dc->oversign);
	free(dc);
}

/* Base64 key data of a key table line as PEM, trying PKCS#8 then #1. */
static enum rc	inline_b64(const char *, size_t, struct dkim_keydata *,
		    struct err *);

static enum rc
inline_key(const char *data, struct dkim_keydata *kd, struct err *e)
{
	const char	*b, *end;

	/* PEM written on one line (a key table allows nothing else): its
	 * base64 is wrapped again below */
	if ((b = strstr(data, "-----BEGIN")) != NULL) {
		if ((b = strstr(b + 10, "-----")) == NULL ||
		    (end = strstr(b + 5, "-----END")) == NULL) {
			err_set(e, "malformed PEM key data");
			return RC_INVAL;
		}
		return inline_b64(b + 5, (size_t)(end - b - 5), kd, e);
	}
	return inline_b64(data, strlen(data), kd, e);
}

/* Base64 key data (spaces ignored) as PEM: PKCS#8, else PKCS#1. */
static enum rc
inline_b64(const char *data, size_t len, struct dkim_keydata *kd,
    struct err *e)
{
	static const char *const types[] = { "PRIVATE KEY", "RSA PRIVATE KEY" };
	struct buf	 b;
	size_t		 i, j, col;
	enum rc		 rc = RC_INVAL;

	for (i = 0; i < NELEM(types) && rc != RC_OK; i++) {
		buf_init(&b, len * 2 + 128);
		(void)buf_printf(&b, "-----BEGIN %s-----\n", types[i]);
		for (col = 0, j = 0; j < len; j++) {
			if (data[j] == ' ' || data[j] == '\t')
				continue;
			(void)buf_putc(&b, data[j]);
			if (++col % 64 == 0)
				(void)buf_putc(&b, '\n');
		}
		(void)buf_putc(&b, '\n');
		if (buf_printf(&b, "-----END %s-----\n", types[i]) != RC_OK) {
			buf_free(&b);
			err_set(e, "out of memory");
			return RC_NOMEM;
		}
		err_clear(e);
		rc = dkim_key_parse(b.data, b.len, kd, e);
		explicit_bzero(b.data, b.len);
		buf_free(&b);
	}
	return rc;
}

/*
 * Loads one key into k; a key that cannot be used is kept with k->error
 * (and is a config error in strict mode).  owner: uid of milter.user.
 */
static int
load_key(struct dk_key *k, const char *where, const char *spec, int unsafe,
    uid_t owner, const char *want_alg, int inline_ok, struct err *e)
{
	struct err	 ke;
	enum rc		 rc;
	int		 alg;

	err_clear(&ke);
	/* a key table value not starting with '/' is the key itself, as in
	 * OpenDKIM; dkim.keys names files only */
	if (!inline_ok || spec[0] == '/')
		rc = dkim_key_load(spec, unsafe ? DKIM_KEY_UNSAFE_OK : 0,
		    owner, &k->kd, &ke);
	else
		rc = inline_key(spec, &k->kd, &ke);
	if (rc == RC_OK && (k->sk = dksign_key(&k->kd, &ke)) == NULL)
		rc = RC_INVAL;
	if (rc == RC_OK && want_alg != NULL &&
	    (alg = dkim_alg_parse(want_alg)) >= 0 &&
	    (enum dkim_alg)alg != k->kd.alg) {
		err_set(&ke, "the key is %s, the entry says %s",
		    dkim_alg_name(k->kd.alg), want_alg);
		dkim_key_free(&k->kd);
		dksign_key_free(k->sk);
		k->sk = NULL;
		rc = RC_INVAL;
	}
	if (rc == RC_OK)
		return 0;
	if (rc == RC_NOMEM) {
		err_set(e, "out of memory");
		return -1;
	}
	if (cfg_strict()) {
		err_set(e, "%s: %s", where, ke.msg);
		return -1;
	}
	log_msg(LOG_ERR, "dkim: %s: %s; mail from %s goes unsigned", where,
	    ke.msg, k->domain);
	if ((k->error = strdup(ke.msg)) == NULL) {
		err_set(e, "out of memory");
		return -1;
	}
	return 0;
}

static struct dk_key *
new_key(struct dk_conf *dc, size_t *cap, struct err *e)
{
	struct dk_key	*v;

	if (dc->nkeys == *cap) {
		*cap = *cap ? *cap * 2 : 8;
		if ((v = reallocarray(dc->keys, *cap, sizeof(*v))) == NULL) {
			err_set(e, "out of memory");
			return NULL;
		}
		dc->keys = v;
	}
	v = &dc->keys[dc->nkeys++];
	memset(v, 0, sizeof(*v));
	return v;
}

static int
selector_valid(const char *s)
{
	return *s != '\0' && hostname_valid(s);
}

static int
setup_keys(struct dk_conf *dc, const struct cfg *cfg,
    const config_setting_t *g, uid_t owner, int unsafe, size_t *cap,
    struct err *e)
{
	const config_setting_t	*l = config_setting_get_member(g, "keys");
	struct dk_key		*k;
	char			 where[64];
	size_t			 i, n;

	(void)cfg;
	n = l != NULL ? (size_t)config_setting_length(l) : 0;
	for (i = 0; i < n; i++) {
		const config_setting_t *d = config_setting_get_elem(l,
		    (unsigned)i);

		if ((k = new_key(dc, cap, e)) == NULL)
			return -1;
		if ((k->domain = strdup(cv_string(d, "dkim.keys.[].domain"))) ==
		    NULL || (k->selector = strdup(cv_string(d,
		    "dkim.keys.[].selector"))) == NULL) {
			err_set(e, "out of memory");
			return -1;
		}
		str_lower(k->domain);
		k->subdomains = cv_bool(d, "dkim.keys.[].subdomains");
		if (!hostname_valid(k->domain) ||
		    !selector_valid(k->selector)) {
			err_set(e, "setting 'dkim.keys.[%zu]': domain '%s' and "
			    "selector '%s' must be DNS names", i, k->domain,
			    k->selector);
			return -1;
		}
		if (*cv_string(d, "dkim.keys.[].key") == '\0') {
			err_set(e, "setting 'dkim.keys.[%zu].key': a key file "
			    "is required", i);
			return -1;
		}
		(void)snprintf(where, sizeof(where), "dkim.keys.[%zu]", i);
		/* algorithm: checked when given, else the key's own */
		if (load_key(k, where, cv_string(d, "dkim.keys.[].key"),
		    unsafe, owner, config_setting_get_member(d, "algorithm") !=
		    NULL ? cv_string(d, "dkim.keys.[].algorithm") : NULL, 0,
		    e) != 0)
			return -1;
	}
	return 0;
}

/* Key table entries become keys named for the signing table. */
static int
setup_tables(struct dk_conf *dc, const config_setting_t *g, uid_t owner,
    int unsafe, size_t *cap, struct err *e)
{
	const char		*ktp = cv_string(g, "dkim.key_table");
	const char		*stp = cv_string(g, "dkim.signing_table");
	struct dkim_keytable	 kt;
	struct dk_key		*k;
	char			 where[300];
	size_t			 i, j;
	int			 rc = -1;

	if ((*ktp == '\0') != (*stp == '\0')) {
		err_set(e, "settings 'dkim.key_table' and 'dkim.signing_table' "
		    "go together");
		return -1;
	}
	if (*ktp == '\0')
		return 0;
	memset(&kt, 0, sizeof(kt));
	if (dkim_keytable_load(ktp, &kt, e) != 0 ||
	    dkim_signtable_load(stp, &dc->st, e) != 0)
		goto done;
	for (i = 0; i < kt.n; i++) {
		if ((k = new_key(dc, cap, e)) == NULL)
			goto done;
		if (strchr(kt.v[i].domain, '%') != NULL) {
			err_set(e, "%s: key '%s': the '%%' (From domain) of "
			    "OpenDKIM is not supported: write the domain", ktp,
			    kt.v[i].name);
			goto done;
		}
		if ((k->name = strdup(kt.v[i].name)) == NULL ||
		    (k->domain = strdup(kt.v[i].domain)) == NULL ||
		    (k->selector = strdup(kt.v[i].selector)) == NULL) {
			err_set(e, "out of memory");
			goto done;
		}
		(void)snprintf(where, sizeof(where), "key table entry '%.200s'",
		    k->name);
		if (load_key(k, where, kt.v[i].key, unsafe, owner, NULL, 1,
		    e) != 0)
			goto done;
	}
	/* every signing table entry names a key */
	for (i = 0; i < dc->st.n; i++) {
		for (j = 0; j < dc->nkeys; j++)
			if (dc->keys[j].name != NULL &&
			    strcmp(dc->keys[j].name, dc->st.v[i].keyname) == 0)
				break;
		if (j == dc->nkeys) {
			err_set(e, "%s: pattern '%s' names key '%s', which is "
			    "not in %s", stp, dc->st.v[i].pattern,
			    dc->st.v[i].keyname, ktp);
			goto done;
		}
	}
	rc = 0;
done:
	dkim_keytable_free(&kt);
	return rc;
}

static int
dk_setup(const struct cfg *cfg, const config_setting_t *g, void **conf,
    struct err *e)
{
	struct dk_conf	*dc;
	struct passwd	*pw;
	const char	*sf, *c, *slash;
	uid_t		 owner = (uid_t)-1;
	size_t		 cap = 0;
	int		 unsafe;

	if ((dc = calloc(1, sizeof(*dc))) == NULL) {
		err_set(e, "out of memory");
		return -1;
	}
	*conf = dc;
	sf = cv_string(g, "dkim.sign_for");
	dc->for_auth = strstr(sf, "authenticated") != NULL;
	dc->for_internal = strstr(sf, "internal") != NULL;
	dc->envelope_fallback = cv_bool(g, "dkim.envelope_fallback");
	c = cv_string(g, "dkim.canonicalization");
	slash = strchr(c, '/');
	dc->bsimple = strcmp(slash + 1, "simple") == 0;
	dc->hsimple = strncmp(c, "simple/", 7) == 0;
	unsafe = cv_bool(g, "dkim.allow_unsafe_keys");
	if (*cfg->milter.user != '\0' && (pw = getpwnam(cfg->milter.user)) !=
	    NULL)
		owner = pw->pw_uid;
	if (setup_keys(dc, cfg, g, owner, unsafe, &cap, e) != 0 ||
	    setup_tables(dc, g, owner, unsafe, &cap, e) != 0)
		return -1;
	if (dc->nkeys == 0) {
		err_set(e, "no key: set dkim.keys, or dkim.key_table with "
		    "dkim.signing_table (or dkim.enabled = false)");
		return -1;
	}
	return cv_strlist(g, "dkim.oversign", &dc->oversign, e) == RC_OK ?
	    0 : -1;
}

/* Keys of exactly this domain (usable or not) into out; the count. */
static size_t
keys_of(const struct dk_conf *dc, const char *domain, int parent,
    const struct dk_key **out, size_t max)
{
	size_t	 i, n = 0;

	for (i = 0; i < dc->nkeys && n < max; i++)
		if (dc->keys[i].name == NULL &&
		    strcmp(dc->keys[i].domain, domain) == 0 &&
		    (!parent || dc->keys[i].subdomains))
			out[n++] = &dc->keys[i];
	return n;
}

struct st_pick {
	const struct dk_conf	*dc;
	const char		*pattern;	/* of the first match */
	const struct dk_key	**out;
	const char		**signer;	/* i= of each, or NULL */
	size_t			 n, max;
};

static int
st_pick(const struct dkim_st_entry *se, void *arg)
{
	struct st_pick	*p = arg;
	size_t		 i;

	if (p->pattern != NULL && strcmp(p->pattern, se->pattern) != 0)
		return 1;	/* only the entries of the first pattern */
	p->pattern = se->pattern;
	for (i = 0; i < p->dc->nkeys && p->n < p->max; i++)
		if (p->dc->keys[i].name != NULL &&
		    strcmp(p->dc->keys[i].name, se->keyname) == 0) {
			p->signer[p->n] = se->signer;
			p->out[p->n++] = &p->dc->keys[i];
		}
	return p->n == p->max;
}

/* The keys for an address's domain (and local part for the tables),
 * with the signing table's i= identity of each (NULL: none). */
static size_t
pick(const struct dk_conf *dc, const char *local, const char *domain,
    const struct dk_key **out, const char **signer, size_t max)
{
	struct st_pick	 p;
	const char	*d;
	size_t		 n;

	memset(signer, 0, max * sizeof(*signer));
	if ((n = keys_of(dc, domain, 0, out, max)) > 0)
		return n;
	for (d = strchr(domain, '.'); d != NULL; d = strchr(d + 1, '.'))
		if ((n = keys_of(dc, d + 1, 1, out, max)) > 0)
			return n;
	memset(&p, 0, sizeof(p));
	p.dc = dc;
	p.out = out;
	p.signer = signer;
	p.max = max;
	dkim_signtable_lookup(&dc->st, local, domain, st_pick, &p);
	return p.n;
}

/*
 * The first address of a From field: local part and lower-case domain
 * into the arena; 0, or -1 if there is none.
 */
static int
from_address(struct arena *ar, const char *v, const char **local,
    const char **domain)
{
	const char	*lt, *gt, *at, *start, *end;
	char		*d;

	if ((lt = strchr(v, '<')) != NULL && (gt = strchr(lt, '>')) != NULL) {
		start = lt + 1;
		end = gt;
	} else {
		/* a bare address: the token around the first '@' */
		if ((at = strchr(v, '@')) == NULL)
			return -1;
		for (start = at; start > v && strchr(" \t\r\n,;:\"",
		    start[-1]) == NULL; start--)
			;
		for (end = at; *end != '\0' && strchr(" \t\r\n,;(\"",
		    *end) == NULL; end++)
			;
	}
	if ((at = memrchr(start, '@', (size_t)(end - start))) == NULL ||
	    at == start || at + 1 >= end)
		return -1;
	if ((*local = arena_strndup(ar, start, (size_t)(at - start))) ==
	    NULL || (d = arena_strndup(ar, at + 1, (size_t)(end - at - 1))) ==
	    NULL)
		return -1;
	str_lower(d);
	*domain = d;
	return hostname_valid(d) ? 0 : -1;
}

/*
 * Marks the fields other modules remove (the outbound cleanup): each
 * removal names the n-th field of a name.  Removals are few, so this is
 * one walk of the header per removal.
 */
static void
mark_removed(const struct msg_ctx *m, struct dk_hdr *hdrs)
{
	const struct hdr_edit	*ed;
	struct dk_hdr		*h;
	unsigned		 n;

	for (ed = m->edits; ed != NULL; ed = ed->next) {
		if (!ed->remove && !ed->change)
			continue;
		for (n = 0, h = hdrs; h != NULL; h = h->next)
			if (str_ieq(h->name, ed->name) && ++n == ed->idx) {
				if (ed->change)
					h->value = ed->value;
				else
					h->removed = 1;
				break;
			}
	}
}

static struct dk_msg *
msg_state(struct txn *t)
{
	struct dk_msg	*dm = txn_msg_state(t);

	if (dm == NULL) {
		if ((dm = arena_calloc(t->msg->arena, 1, sizeof(*dm))) == NULL) {
			t->nomem = 1;
			return NULL;
		}
		dm->tail = &dm->hdrs;
		txn_msg_state_set(t, dm);
	}
	return dm;
}

static enum cr_status
keep_header(struct txn *t)
{
	struct dk_msg	*dm = msg_state(t);
	struct dk_hdr	*h;

	if (dm == NULL)
		return CR_ERROR;
	if ((h = arena_calloc(t->msg->arena, 1, sizeof(*h))) == NULL ||
	    (h->name = arena_strdup(t->msg->arena, t->hdr_name)) == NULL ||
	    (h->value = arena_strdup(t->msg->arena, t->hdr_value)) == NULL) {
		t->nomem = 1;
		return CR_ERROR;
	}
	*dm->tail = h;
	dm->tail = &h->next;
	return CR_PASS;
}

/* The log field: "signed:...", "unsigned:why" or "error:why". */
static void
set_result(struct txn *t, const char *what, const char *detail)
{
	t->msg->dkim = arena_printf(t->msg->arena, "%s:%s", what, detail);
}

static void
key_error(struct txn *t, const struct dk_key *k, const char *why)
{
	log_conn(t->conn, LOG_ERR, "dkim: d=%s s=%s: %s", k->domain,
	    k->selector, why);
	metrics_inc(M.dkim_errors, k->domain, 1);
}

/*
 * The i= of a signing table entry when it is in the key's domain (RFC
 * 6376 section 3.5: the same domain or a subdomain), else none.
 */
static const char *
identity(struct txn *t, const struct dk_key *k, const char *signer)
{
	const char	*at;
	size_t		 dl, kl;

	if (signer == NULL)
		return NULL;
	at = strrchr(signer, '@');
	at = at != NULL ? at + 1 : signer;
	dl = strlen(at);
	kl = strlen(k->domain);
	if (strpbrk(signer, " \t;\r\n") == NULL && (str_ieq(at, k->domain) ||
	    (dl > kl && at[dl - kl - 1] == '.' && str_ieq(at + dl - kl,
	    k->domain))))
		return signer;
	log_conn(t->conn, LOG_WARNING, "dkim: signer '%s' is not in d=%s: "
	    "signed without i=", signer, k->domain);
	return NULL;
}

/* End of header: choose the keys, start one handle each, feed header. */
static enum cr_status
start(const struct dk_conf *dc, struct txn *t)
{
	struct dk_msg		*dm = msg_state(t);
	const struct dk_key	*cand[MAX_SIGS];
	const char		*signer[MAX_SIGS];
	struct dk_hdr		*h, *from = NULL;
	const char		*local = NULL, *domain = NULL;
	struct dksign_opts	 opts;
	struct err		 e;
	size_t			 n = 0, i;

	if (dm == NULL)
		return CR_ERROR;
	dm->started = 1;
	mark_removed(t->msg, dm->hdrs);
	for (h = dm->hdrs; h != NULL && from == NULL; h = h->next)
		if (str_ieq(h->name, "From") && !h->removed)
			from = h;
	if (from != NULL && from_address(t->msg->arena, from->value, &local,
	    &domain) == 0)
		n = pick(dc, local, domain, cand, signer, MAX_SIGS);
	if (n == 0 && dc->envelope_fallback && !t->msg->from_null &&
	    !t->msg->from_bad)
		n = pick(dc, t->msg->from.local, t->msg->from.domain, cand,
		    signer, MAX_SIGS);
	memset(&opts, 0, sizeof(opts));
	opts.hsimple = dc->hsimple;
	opts.bsimple = dc->bsimple;
	opts.oversign = dc->oversign.v;
	opts.noversign = dc->oversign.n;
	err_clear(&e);
	if (n == 0) {
		set_result(t, "unsigned", from == NULL ? "no-from" :
		    domain == NULL ? "bad-from" : "no-key");
		metrics_inc(M.dkim, "unsigned", 1);
		return CR_PASS;
	}
	for (i = 0; i < n; i++) {
		const struct dk_key *k = cand[i];

		if (k->error != NULL) {
			key_error(t, k, k->error);
			continue;
		}
		opts.domain = k->domain;
		opts.selector = k->selector;
		opts.identity = identity(t, k, signer[i]);
		if ((dm->d[dm->n] = dksign_new(k->sk, &opts, &e)) == NULL) {
			key_error(t, k, e.msg);
			continue;
		}
		dm->keys[dm->n++] = k;
	}
	for (i = 0; i < dm->n; i++)
		for (h = dm->hdrs; h != NULL; h = h->next)
			if (!h->removed && dksign_header(dm->d[i],
			    h->name, h->value) != 0) {
				key_error(t, dm->keys[i], "header too large");
				dksign_free(dm->d[i]);
				dm->d[i] = NULL;
				break;
			}
	if (dm->n == 0) {
		set_result(t, "error", "key-unavailable");
		metrics_inc(M.dkim, "error", 1);
	}
	return CR_PASS;
}

/* End of message: the signatures, inserted at the top. */
static enum cr_status
finish(struct txn *t)
{
	struct dk_msg	*dm = txn_msg_state(t);
	struct buf	 log;
	struct err	 e;
	size_t		 i;
	char		*sig, *v;

	if (dm == NULL || dm->n == 0)
		return CR_PASS;
	buf_init(&log, 1024);
	for (i = 0; i < dm->n; i++) {
		const struct dk_key *k = dm->keys[i];

		if (dm->d[i] == NULL)
			continue;
		err_clear(&e);
		if ((sig = dksign_finish(dm->d[i], time(NULL), &e)) == NULL) {
			key_error(t, k, e.msg);
			continue;
		}
		v = arena_strdup(t->msg->arena, sig);
		free(sig);
		if (v == NULL) {
			buf_free(&log);
			t->nomem = 1;
			return CR_ERROR;
		}
		if (!t->check->dry_run)
			txn_header_insert(t, "DKIM-Signature", v);
		(void)buf_printf(&log, "%sd=%s,s=%s,a=%s", log.len ? ";" : "",
		    k->domain, k->selector, dkim_alg_name(k->kd.alg));
		metrics_inc(M.dkim_signatures, arena_printf(t->msg->arena,
		    "%s %s", dkim_alg_name(k->kd.alg), k->domain), 1);
	}
	if (log.len > 0) {
		set_result(t, t->check->dry_run ? "would-sign" : "signed",
		    buf_str(&log));
		metrics_inc(M.dkim, "signed", 1);
	} else {
		set_result(t, "error", "signing-failed");
		metrics_inc(M.dkim, "error", 1);
	}
	buf_free(&log);
	return CR_PASS;
}

static void
dk_msg_end(const void *conf, void *state)
{
	struct dk_msg	*dm = state;
	size_t		 i;

	(void)conf;
	for (i = 0; i < dm->n; i++)
		dksign_free(dm->d[i]);
	dm->n = 0;
}

static enum cr_status
dk_run(const void *conf, struct txn *t, enum stage st)
{
	const struct dk_conf	*dc = conf;
	struct dk_msg		*dm;
	size_t			 i;

	if (!((t->conn->auth != NULL && dc->for_auth) ||
	    (t->conn->internal && dc->for_internal)))
		return CR_SKIP;
	switch (st) {
	case STAGE_HEADER:
		return keep_header(t);
	case STAGE_EOH:
		return start(dc, t);
	case STAGE_BODY:
		/* the MTA skipped end of header: start before the body */
		if (((dm = txn_msg_state(t)) == NULL || !dm->started) &&
		    start(dc, t) != CR_PASS)
			return CR_ERROR;
		if ((dm = txn_msg_state(t)) != NULL)
			for (i = 0; i < dm->n; i++)
				if (dm->d[i] != NULL)
					(void)dksign_body(dm->d[i], t->body,
					    t->body_len);
		return CR_PASS;
	case STAGE_EOM:
		if ((dm = txn_msg_state(t)) == NULL || !dm->started)
			if (start(dc, t) != CR_PASS)	/* no EOH seen */
				return CR_ERROR;
		return finish(t);
	default:
		return CR_SKIP;
	}
}

const struct check_ops check_dkim = {
	.name = "dkim",
	.group = "dkim",
	.stages = STAGE_BIT(STAGE_HEADER) | STAGE_BIT(STAGE_EOH) |
	    STAGE_BIT(STAGE_BODY) | STAGE_BIT(STAGE_EOM),
	.quiet_stages = STAGE_BIT(STAGE_HEADER) | STAGE_BIT(STAGE_EOH) |
	    STAGE_BIT(STAGE_BODY),
	.flags = CHECK_OUTBOUND,
	.implemented = 1,
	.setup = dk_setup,
	.teardown = dk_teardown,
	.run = dk_run,
	.msg_end = dk_msg_end,
};
