#!/bin/bash
# content.sh -- the end-of-message stage: portero's content checks and
# ClamAV scanner pool against clamav-milter + clamd.
#
# Generated at run time in a temporary directory:
#   - a ClamAV database: EICAR as an MD5 signature (.hdb), CONTENT_HDB
#     random MD5 signatures (.hdb) and CONTENT_NDB random body signatures
#     (.ndb, 16..32 bytes, any file type, at any offset or anchored at 0,
#     some in two parts with a {0-32} gap), so that the engine does real
#     matching work; the same directory for portero and for clamd;
#   - three messages: 4 KB (text/plain), 100 KB and 2 MB (a text part
#     and one base64 attachment of random data after a PDF header,
#     report.pdf); CRLF line ends;
#   - a header_checks table of 100 patterns and a body_checks table of
#     100 patterns (Postfix pcre: syntax: spam subjects, mailers, sender
#     domains, attachment names, base64 executables, URLs, phishing
#     phrases, ...), none matching the bench messages (checked with
#     Python's re before the runs), so every message is examined whole
#     and accepted.
#
# miltergen -m full --message FILE (headers as Postfix passes them, body
# in 65535-byte SMFIC_BODY chunks) pushes each message, at concurrency 1
# and CONTENT_CONC, through:
#   - portero: content (the two tables, memory_limit 1M, spool_dir in
#     the temporary directory), spam (default levels) and antivirus (the
#     generated database, CONTENT_SCANNERS scanner processes; the message
#     goes to a scanner as a file descriptor);
#   - clamav-milter + clamd (/usr/sbin/clamav-milter, /usr/sbin/clamd,
#     Debian's clamav-milter and clamav-daemon) with private configs:
#     clamd on a unix socket only, the generated database, portero's
#     libclamav limits (MaxScanSize 100M, MaxFileSize 50M, MaxRecursion
#     16, MaxFiles 1000, MaxEmbeddedPE 10M, MaxScanTime 60 s,
#     HeuristicAlerts yes), MaxThreads max(CONTENT_CONC, scanners);
#     clamav-milter with OnClean Accept, OnInfected Reject, OnFail Defer
#     and AddHeader No (portero adds no header to a clean message with a
#     spam score under tag_level either), MaxFileSize 50M.  clamav-milter
#     streams the message to clamd (INSTREAM) as it arrives.
# clamav-milter only scans; portero also runs its content rules and the
# spam module on every message, so the comparison favours clamav-milter.
# Hence a third milter, portero-av: the same portero without the two rule
# tables (MIME parsing, blocked extensions, spam and antivirus only), the
# like-for-like row; the acceptance ratio is portero's, with the tables.
#
# The ceiling: both sides have libclamav scan the same message with the
# same engine, which bounds them both.  Before the milters run, tests/bench/avspeed (avspeed.c, no milter, no socket)
# loads the same database with portero's limits and scan options, forks P
# processes sharing the engine copy-on-write, and has them scan each
# message from a file descriptor, 4 x CONTENT_MSGS_* scans in all (the
# milters' message count runs under a second there), best of
# CONTENT_REPEAT: the engine's own scans/s on this machine, for P
# = 1, CONTENT_SCANNERS, the number of CPUs, and min(CONTENT_CONC,
# CONTENT_SCANNERS, CPUs) (each value once); every scan must be clean,
# and the EICAR message infected.
#
# Prints, per size, milter and concurrency: messages, msgs/s, MB/s
# (10^6 bytes of message as sent, headers included), latency p50/p99 (ms,
# from MAIL to the last reply of the message), errors, the ratio
# portero/clamav-milter in msgs/s (vs-clamav), and the ratio to the
# libclamav ceiling (vs-lib): msgs/s / libclamav scans/s with P = the
# scans that can run at once, min(conc, CPUs, and for portero
# CONTENT_SCANNERS; clamd has a thread for every connection); then the
# libclamav rows (conc = P, msgs = scans) and a line per size with the
# milter/libclamav ratios at CONTENT_CONC: how close each milter gets to
# the engine's own ceiling.  Then the memory of the engine
# holders: RSS and PSS (/proc/PID/smaps_rollup) summed over portero's
# scan manager and scanners, and clamd's, once the database is loaded and
# again after the runs ("one engine shared by the pool").
#
# Checks (PASS/FAIL lines, exit 1 if one fails): every message of every
# run got its replies and was accepted, on both sides; CONTENT_EICAR
# messages with the EICAR string as a base64 attachment (eicar.txt) are
# refused by both: portero with 554 (antivirus.on_infected = reject),
# clamav-milter with a reject; avspeed finds every bench message clean
# and the EICAR message infected.  No pass/fail on the figures unless
# CONTENT_TARGET (e.g. 2) is set: then portero/clamav-milter at
# CONTENT_CONC must reach it for each size.
#
# Environment:
#   PORTERO=path         portero binary (default build/portero)
#   MILTERGEN=path       miltergen binary (default: built into build/bench)
#   AVSPEED=path         avspeed binary (default: built into build/bench)
#   CLAMD=path           clamd (default /usr/sbin/clamd)
#   CLAMAV_MILTER=path   clamav-milter (default /usr/sbin/clamav-milter)
#   CONTENT_MSGS_4K=N    4 KB messages per run (default 4000)
#   CONTENT_MSGS_100K=N  100 KB messages per run (default 600)
#   CONTENT_MSGS_2M=N    2 MB messages per run (default 80)
#   CONTENT_SIZES=LIST   the sizes to run (default "4k 100k 2m")
#   CONTENT_CONC=N       the loaded concurrency (default 8)
#   CONTENT_SCANNERS=N   portero's antivirus.scanners (default 2)
#   CONTENT_HDB=N        random MD5 signatures (default 200000)
#   CONTENT_NDB=N        random body signatures (default 5000)
#   CONTENT_EICAR=N      EICAR messages per milter (default 5)
#   CONTENT_REPEAT=N     runs per row, the best msgs/s kept (default 2)
#   CONTENT_TARGET=R     acceptance ratio portero/clamav-milter
#                        (default: none)
#   CONTENT_CLAMAV=0     no clamav-milter + clamd rows
#   CONTENT_NORULES=0    no portero-av rows
#   CONTENT_CEILING=0    no libclamav ceiling (avspeed) rows or ratios
#   BENCH_CONTENT_AV=0   portero without its antivirus module (content
#                        and spam only; no EICAR check for portero)
#   CC                   C compiler (default cc)
# Exit status 1 if a check fails, 2 if the bench could not run.
# Raw output: build/bench/raw/content-*.  Only unix sockets are used.
# clamd and clamav-milter run as the calling user (root: they keep root,
# no User option); nothing of the system's ClamAV setup is used.
#
# Usage: tests/bench/content.sh       (about 3 minutes on 2 cores)

set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=$root/build/bench
raw=$build/raw
python=/usr/bin/python3

portero=${PORTERO:-$root/build/portero}
case $portero in
/*) ;;
*) portero=$PWD/$portero ;;
esac
clamd=${CLAMD:-/usr/sbin/clamd}
cmilter=${CLAMAV_MILTER:-/usr/sbin/clamav-milter}
conc_hi=${CONTENT_CONC:-8}
scanners=${CONTENT_SCANNERS:-2}
n_hdb=${CONTENT_HDB:-200000}
n_ndb=${CONTENT_NDB:-5000}
n_eicar=${CONTENT_EICAR:-5}
repeat=${CONTENT_REPEAT:-2}
target=${CONTENT_TARGET:-}
use_av=${BENCH_CONTENT_AV:-1}
use_clamav=${CONTENT_CLAMAV:-1}
use_norules=${CONTENT_NORULES:-1}
use_ceiling=${CONTENT_CEILING:-1}
cc=${CC:-cc}
threads=$conc_hi	# clamd's MaxThreads
[ "$scanners" -gt "$threads" ] && threads=$scanners
cflags="-std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wformat=2 -Wshadow
    -Wstrict-prototypes -Wmissing-prototypes -Wvla -O2"
sizes=${CONTENT_SIZES:-4k 100k 2m}
declare -A nmsgs=([4k]=${CONTENT_MSGS_4K:-4000} [100k]=${CONTENT_MSGS_100K:-600}
    [2m]=${CONTENT_MSGS_2M:-80})
declare -A bytes	# size -> message bytes
declare -A rate		# "milter size conc" -> msgs/s
declare -A mem		# "milter when" -> "rss pss" (KiB)
declare -A ceil		# "size procs" -> libclamav scans/s

tmp=
pids=
stopping=
rows=()
crows=()	# the libclamav rows
checks=()
failed=0

BENCH_TAG=content
# shellcheck source=tests/bench/lib.sh
. "$here/lib.sh"

trap bench_cleanup EXIT
trap 'exit 130' INT TERM

# ---- build ----
mkdir -p "$build" "$raw"
rm -f "$raw"/content-*
miltergen=$(bench_tool miltergen -lpthread)
avspeed=
if [ "$use_ceiling" != 0 ]; then
	# shellcheck disable=SC2046  # pkg-config's words, one per argument
	avspeed=$(bench_tool avspeed $(pkg-config --cflags --libs libclamav)) || {
		log "content: avspeed did not build (pkg-config, libclamav-dev?):" \
		    "no libclamav ceiling"
		use_ceiling=0
	}
fi
ncpu=$(nproc)
have_portero=1
[ -x "$portero" ] || { log "content: no portero at $portero: its rows are skipped"; have_portero=0; }
if [ "$use_clamav" != 0 ]; then
	for b in "$clamd" "$cmilter"; do
		[ -x "$b" ] && continue
		log "content: no $b (apt-get install clamav-daemon clamav-milter):" \
		    "the clamav-milter rows are skipped"
		use_clamav=0
	done
fi
if [ "$have_portero" = 0 ] && [ "$use_clamav" = 0 ]; then
	log "content: nothing to run"
	exit 2
fi

tmp=$(mktemp -d /tmp/portero-content.XXXXXX)
chmod 755 "$tmp"
db=$tmp/db
mkdir -p "$db" "$tmp/spool"
# libclamav's temporary files (every extracted part) on memory for all
# three (portero's default; clamd's TemporaryDirectory; avspeed -t), so
# no side pays for disk writes the others do not
shm=$(mktemp -d /dev/shm/portero-bench.XXXXXX 2>/dev/null || mktemp -d "$tmp/shm.XXXXXX")
mkdir -p "$shm/avtmp" "$shm/clamdtmp"
start=$(date +%s)
load0=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- database, messages, rule tables ----
log "content: generating the database ($n_hdb + 1 MD5, $n_ndb body" \
    "signatures), messages and tables in $tmp"
"$python" - "$tmp" "$n_hdb" "$n_ndb" <<'PY'
import base64, hashlib, os, random, re, sys

out, n_hdb, n_ndb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rnd = random.Random(20240601)
EICAR = (b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!"
         b"$H+H*")
assert len(EICAR) == 68

# -- the database --
with open(f"{out}/db/eicar.hdb", "w") as f:
    f.write(f"{hashlib.md5(EICAR).hexdigest()}:{len(EICAR)}:Bench.EICAR.Test\n")
with open(f"{out}/db/bench.hdb", "w") as f:
    for i in range(n_hdb):
        f.write(f"{rnd.getrandbits(128):032x}:{rnd.randint(512, 8000000)}"
                f":Bench.Hash.{i}\n")
with open(f"{out}/db/bench.ndb", "w") as f:
    for i in range(n_ndb):
        k = rnd.random()
        if k < 0.1:     # two parts and a gap
            sig = (rnd.randbytes(rnd.randint(8, 16)).hex() + "{0-32}" +
                   rnd.randbytes(rnd.randint(8, 16)).hex())
        else:
            sig = rnd.randbytes(rnd.randint(16, 32)).hex()
        off = "0" if 0.1 <= k < 0.3 else "*"
        f.write(f"Bench.Body.{i}:0:{off}:{sig}\n")

# -- the messages --
WORDS = ("the quarterly report shows steady growth in our regional offices "
         "and the team would like to thank everyone for the careful work on "
         "budget planning schedule review meeting agenda minutes project "
         "milestone delivery customer feedback support release notes "
         "infrastructure migration database backup network storage "
         "training session invoice payment terms contract renewal "
         "attached please find below regards thanks kind update status "
         "next week monday tuesday wednesday thursday friday morning "
         "afternoon office building parking lunch coffee").split()

def para(n):
    """Roughly n bytes of text in lines of at most 72 characters."""
    lines, line, size = [], [], 0
    while size < n:
        w = rnd.choice(WORDS)
        if len(" ".join(line + [w])) > 72:
            lines.append(" ".join(line))
            size += len(lines[-1]) + 2
            line = []
        line.append(w)
    if line:
        lines.append(" ".join(line))
    return lines

def headers(qid, ctype):
    return [
        "Received: from mail.partner.example (mail.partner.example "
        "[198.51.100.25])",
        "\tby mx.example.test (Postfix) with ESMTPS id " + qid,
        "\tfor <rcpt1@example.test>; Mon, 03 Jun 2024 09:12:44 +0000 (UTC)",
        "Received: from [10.1.2.3] (unknown [10.1.2.3])",
        "\tby mail.partner.example (Postfix) with ESMTPSA id 7A1B2C3D4E",
        "\tfor <rcpt1@example.test>; Mon, 03 Jun 2024 11:12:40 +0200 (CEST)",
        "From: Alice Martin <alice.martin@partner.example>",
        "To: Bob Durand <rcpt1@example.test>",
        "Subject: Quarterly report and meeting agenda",
        "Date: Mon, 03 Jun 2024 11:12:40 +0200",
        "Message-ID: <" + qid + ".1717405960@partner.example>",
        "MIME-Version: 1.0",
        "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:115.0) "
        "Gecko/20100101 Thunderbird/115.11.0",
        "Content-Language: en-US",
    ] + ctype

def write(name, lines):
    with open(f"{out}/{name}", "wb") as f:
        f.write(("\r\n".join(lines) + "\r\n").encode())

def attachment_msg(name, total, qid, fname, ctype, payload=None):
    bnd = "------------" + "".join(rnd.choice("0123456789ABCDEF")
                                   for _ in range(24))
    head = headers(qid, ["Content-Type: multipart/mixed;",
                         ' boundary="' + bnd + '"'])
    text = para(2500)
    pre = head + ["", "This is a multi-part message in MIME format.",
                  "--" + bnd, "Content-Type: text/plain; charset=UTF-8; "
                  "format=flowed", "Content-Transfer-Encoding: 7bit", ""
                  ] + text + ["", "--" + bnd,
                  f'Content-Type: {ctype}; name="{fname}"',
                  f'Content-Disposition: attachment; filename="{fname}"',
                  "Content-Transfer-Encoding: base64", ""]
    post = ["", "--" + bnd + "--"]
    if payload is None:
        fixed = sum(len(x) + 2 for x in pre + post)
        raw = (total - fixed) * 57 // 78
        payload = (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n" + rnd.randbytes(raw - 32)
                   + b"\n%%EOF\n")
    b64 = base64.b64encode(payload).decode()
    lines = pre + [b64[i:i + 76] for i in range(0, len(b64), 76)] + post
    write(name, lines)
    return lines

msgs = {}
head = headers("4BENCH4K01", ["Content-Type: text/plain; charset=UTF-8; "
                              "format=flowed",
                              "Content-Transfer-Encoding: 7bit"])
fixed = sum(len(x) + 2 for x in head) + 2
msgs["4k"] = head + [""] + para(4096 - fixed - 80)
write("msg-4k.eml", msgs["4k"])
msgs["100k"] = attachment_msg("msg-100k.eml", 100 * 1024, "4BENCH100K",
                              "report.pdf", "application/pdf")
msgs["2m"] = attachment_msg("msg-2m.eml", 2 * 1024 * 1024, "4BENCH2M01",
                            "report.pdf", "application/pdf")
msgs["eicar"] = attachment_msg("msg-eicar.eml", 0, "4BENCHEICA", "eicar.txt",
                               "application/octet-stream", EICAR)

# -- the rule tables (Postfix pcre: syntax) --
spamwords = ("viagra cialis levitra casino poker roulette lottery jackpot "
             "winner replica rolex diploma pharmacy pills weightloss "
             "mortgage refinance loan payday crypto-invest forex "
             "inheritance beneficiary barrister sweepstake prize "
             "enlargement dating singles hookup xanax valium tramadol "
             "oxycodone steroids bitcoin-doubler").split()
hdr = []
for i in range(0, len(spamwords), 3):
    hdr.append(r"/^Subject:.*\b(" + "|".join(spamwords[i:i + 3]) +
               r")\b/ REJECT Spam subject")
for m in ("SpamTool", "MassMailer", "Dark Mailer", "Bulk Sender Pro",
          "Atomic Mail Sender", "Send-Safe", "Avalanche", "eMarksman",
          "Group Mail", "Super Mail Sender"):
    hdr.append(r"/^X-Mailer:.*\b" + re.escape(m).replace("\\ ", r"\s") +
               r"\b/ REJECT Bulk mailer")
for i in range(20):
    hdr.append(r"/^From:.*@([a-z0-9-]+\.)*spamsource%d\.(example|invalid|"
               r"top|xyz)>?\s*$/ REJECT Sender domain blocked" % i)
for i in range(10):
    hdr.append(r"/^Received:.*\[(203\.0\.113\.%d|192\.0\.2\.%d)\]/ "
               r"REJECT Relay blocked" % (i * 7 + 1, 200 + i))
for ext in ("exe|scr|pif", "com|bat|cmd", "vbs|vbe|js", "jse|wsf|wsh",
            "hta|cpl|msi", "lnk|reg|ps1"):
    hdr.append(r'/^Content-(Type|Disposition):.*name\s*=\s*"?[^"]*\.(' +
               ext + r')"?\s*$/ REJECT Attachment type not allowed')
for cs in ("koi8-r", "gb2312", "big5", "windows-1251", "iso-2022-jp"):
    hdr.append(r"/^Subject:.*=\?" + cs +
               r"\?B\?[A-Za-z0-9+\/=]{60,}\?=/ REJECT Encoded spam subject")
for i in range(10):
    hdr.append(r"/^Message-ID:\s*<[0-9a-f]{32}@(mailer|bulk)%d\./ "
               r"REJECT Bulk message id" % i)
for i in range(10):
    hdr.append(r"/^To:.*undisclosed-recipients-%d/ REJECT No recipients" % i)
hdr.append(r"/^Date:.*\b19[0-6][0-9]\b/ REJECT Date in the past")
hdr.append(r"/^Date:.*\b20[5-9][0-9]\b/ REJECT Date in the future")
hdr.append(r"/^X-Spam-Flag:\s*YES/ REJECT Already tagged")
hdr.append(r"/^X-PHP-Originating-Script:.*(mailer|shell|wp-)/ REJECT Script")
hdr.append(r"/^Reply-To:.*@(mail\.ru|yandex\.ru|qq\.com)\s*>?\s*$/ "
           r"WARN Freemail reply-to")
hdr.append(r"/^Content-Type:.*charset=\"?(ks_c_5601|windows-874)/ REJECT "
           r"Charset")
while len(hdr) < 100:
    hdr.append(r"/^X-Campaign-Id:\s*spamrun%d\b/ REJECT Campaign" % len(hdr))

body = [
    r"/^TVqQAAMAAAAEAAAA\/\/8AALgAAAAAAAAAQ/ REJECT Executable attachment",
    r"/^TVpQAAIAAAAEAA8A\/\/8AALgAAAAAAAAAQ/ REJECT Executable attachment",
    r"/^TVoAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA/ REJECT Executable attachment",
    r"/^UEsDBBQAAAAIA[A-Za-z0-9+\/]{20}[A-Za-z0-9+\/]*(ZXhl|c2Ny)/ "
    r"REJECT Zipped executable",
    r"/^f0VMRgIBAQAAAAAAAAAAAAIAPgAB/ REJECT ELF attachment",
    r"/^0M8R4KGxGuEAAAAAAAAAAAAAAAAAAAAAPgADAP7\/CQAG/ REJECT OLE document",
    r"/<script[^>]*>.*\b(eval|unescape|fromCharCode)\s*\(/ REJECT Script",
    r"/<iframe[^>]*\b(width|height)\s*=\s*\"?0\b/ REJECT Hidden iframe",
    r"/\b(verify|confirm|update) your (account|password|identity) "
    r"(within|in) [0-9]+ hours\b/ REJECT Phishing",
    r"/\byour (mailbox|account) (has been|will be) (suspended|closed)\b/ "
    r"REJECT Phishing",
    r"/\b(bitcoin|btc) wallet\b.*\b(send|transfer)\b/ REJECT Extortion",
    r"/\bi (have|recorded) (a )?video of you\b/ REJECT Extortion",
    r"/\bclick here to (unsubscribe|claim|verify) now\b/ REJECT Spam",
    r"/\blimited time offer\b.*\bact now\b/ REJECT Spam",
    r"/\b100% (free|guaranteed|satisfied)\b/ REJECT Spam",
    r"/\bmillion (united states )?dollars\b.*\b(beneficiary|next of kin)\b/ "
    r"REJECT Advance fee",
    r"/\bwestern union\b.*\b(fee|transfer|mtcn)\b/ REJECT Advance fee",
    r"/=\?utf-8\?B\?[A-Za-z0-9+\/]{200,}/ REJECT Encoded spam",
    r"/\bdear (friend|beloved|winner)\b/ REJECT Spam",
    r"/\b(cheap|discount) (meds|pills|pharmacy|rolex|replica)\b/ REJECT Spam",
]
for tld in ("ru", "cn", "top", "xyz", "click", "work", "loan", "gq", "tk",
            "ml"):
    for i in range(3):
        body.append(r"/https?:\/\/([a-z0-9-]+\.)*(spamhost%d|phish%d|"
                    r"malware%d)\.%s\// REJECT Blocked URL" % (i, i, i, tld))
for i in range(20):
    body.append(r"/https?:\/\/[0-9]{1,3}(\.[0-9]{1,3}){3}(:[0-9]+)?\/"
                r"(wp-admin|login|secure|account)%d\b/ REJECT IP URL" % i)
while len(body) < 100:
    body.append(r"/\bpromo code SPAM%04d\b/ REJECT Spam campaign" %
                len(body))

for name, rules in (("header_checks", hdr), ("body_checks", body)):
    assert len(rules) == 100, (name, len(rules))
    with open(f"{out}/{name}", "w") as f:
        f.write("# generated by tests/bench/content.sh\n")
        f.write("\n".join(rules) + "\n")

# No rule may match a bench message: header fields unfolded as Postfix
# sees them (with their line breaks), every body line.
def fields(lines):
    out, body, i = [], [], 0
    while i < len(lines) and lines[i] != "":
        if lines[i][:1] in (" ", "\t") and out:
            out[-1] += "\n" + lines[i]
        else:
            out.append(lines[i])
        i += 1
    return out, lines[i + 1:]

def comp(rules):
    return [re.compile(r[1:r.rindex("/", 1)], re.I) for r in rules]

ch, cb = comp(hdr), comp(body)
bad = 0
for k in ("4k", "100k", "2m", "eicar"):
    fl, bl = fields(msgs[k])
    for line in fl + [x for x in bl if x.startswith("Content-")]:
        for r in ch:
            if r.search(line):
                print(f"header rule {r.pattern} matches {k}: {line[:60]}")
                bad = 1
    for line in bl:
        for r in cb:
            if r.search(line):
                print(f"body rule {r.pattern} matches {k}: {line[:60]}")
                bad = 1
sys.exit(bad)
PY
for s in $sizes eicar; do
	bytes[$s]=$(wc -c <"$tmp/msg-$s.eml")
done
cp "$tmp/header_checks" "$raw/content-header_checks"
cp "$tmp/body_checks" "$raw/content-body_checks"

# ---- the libclamav ceiling ----
# ceiling SIZE P: best of $repeat avspeed runs, about 4 x nmsgs[SIZE]
# scans in all -> ceil[SIZE P], crows
ceiling() {
	local s=$1 p=$2 k out res best='' bestrate=-1 r n mbs
	n=$(((4 * nmsgs[$s] + p - 1) / p))
	for k in $(seq 1 "$repeat"); do
		out=$raw/content-libclamav-$s-p$p-$k.txt
		log "content: libclamav $s: $p x $n scans (run $k/$repeat)"
		"$avspeed" -d "$db" -t "$shm/avtmp" -p "$p" -n "$n" \
		    "$tmp/msg-$s.eml" >"$out" 2>&1 || true
		res=$(grep '^result ' "$out" | tail -n 1 || true)
		if [ -z "$res" ]; then
			check FAIL "libclamav $s P=$p: $(grep -v '^result' "$out" | tail -n 1)"
			return 0
		fi
		r=$(field rate "$res")
		if awk -v a="$r" -v b="$bestrate" 'BEGIN { exit !(a > b) }'; then
			best=$res
			bestrate=$r
		fi
	done
	ceil[$s $p]=$bestrate
	mbs=$(awk -v r="$bestrate" -v b="${bytes[$s]}" \
	    'BEGIN { printf "%.1f", r * b / 1e6 }')
	crows+=("$s|libclamav|$p|$(field scans "$best")|$bestrate|$mbs|-|-|0")
}

# min A B...: the smallest
min() {
	local m=$1 v
	for v in "$@"; do
		[ "$v" -lt "$m" ] && m=$v
	done
	echo "$m"
}

if [ "$use_ceiling" != 0 ]; then
	# the engine alone, before any milter runs; P values once each
	plist=$(printf '%s\n' 1 "$scanners" "$ncpu" \
	    "$(min "$conc_hi" "$scanners" "$ncpu")" | sort -n -u | tr '\n' ' ')
	for s in $sizes; do
		for p in $plist; do
			ceiling "$s" "$p"
		done
	done
	out=$raw/content-libclamav-eicar.txt
	"$avspeed" -d "$db" -t "$shm/avtmp" -p 1 -n 1 -e "$tmp/msg-eicar.eml" \
	    >"$out" 2>&1 || true
	res=$(grep '^result ' "$out" | tail -n 1 || true)
	if [ -n "$res" ]; then
		check PASS "libclamav eicar: found $(field virus "$res")"
	else
		check FAIL "libclamav eicar: $(tail -n 1 "$out")"
	fi
fi

# ---- memory of processes ----
# mem_of PID...: summed Rss and Pss (KiB) from /proc/PID/smaps_rollup
mem_of() {
	local p rss=0 pss=0 r s
	for p in "$@"; do
		r=$(awk '/^Rss:/ { print $2 }' "/proc/$p/smaps_rollup" 2>/dev/null || true)
		s=$(awk '/^Pss:/ { print $2 }' "/proc/$p/smaps_rollup" 2>/dev/null || true)
		rss=$((rss + ${r:-0}))
		pss=$((pss + ${s:-0}))
	done
	echo "$rss $pss"
}

# scan_pids ROOTPID: portero's scan manager and scanners under ROOTPID
# (by process name: portero-avmgr, portero-scan)
scan_pids() {
	ps -e -o pid=,ppid=,comm= | awk -v root="$1" '
	    { parent[$1] = $2; name[$1] = $3 }
	    END { for (p in name) {
		if (name[p] != "portero-avmgr" && name[p] != "portero-scan")
			continue
		for (q = p; q != "" && q > 1; q = parent[q])
			if (q == root) { print p; break } } }'
}

# ---- runs ----
# wait_sock PID PATH SECONDS: the unix socket exists while PID lives
wait_sock() {
	local _i
	for _i in $(seq 1 $(($3 * 20))); do
		kill -0 "$1" 2>/dev/null || return 1
		[ -S "$2" ] && return 0
		sleep 0.05
	done
	return 1
}

# run MILTER SIZE SPEC CONC: best of $repeat runs -> rows
run() {
	local m=$1 s=$2 spec=$3 c=$4 n=${nmsgs[$2]} k out res best='' bestrate=-1 r
	for k in $(seq 1 "$repeat"); do
		out=$raw/content-$m-$s-c$c-$k.txt
		log "content: $m $s: $n messages, concurrency $c (run $k/$repeat)"
		"$miltergen" -s "$spec" -c "$c" -n "$n" -m full \
		    --message "$tmp/msg-$s.eml" >"$out" 2>&1 || true
		res=$(grep '^result ' "$out" | tail -n 1 || true)
		[ -n "$res" ] || { log "content: $m $s c=$c: no result:"; tail -n 5 "$out" >&2; continue; }
		r=$(field rate "$res")
		if awk -v a="$r" -v b="$bestrate" 'BEGIN { exit !(a > b) }'; then
			best=$res
			bestrate=$r
		fi
	done
	if [ -z "$best" ]; then
		rows+=("$s|$m|$c|-|-|-|-|-|-")
		check FAIL "$m $s c=$c: no result"
		return 0
	fi
	local msgs acc err
	msgs=$(field msgs "$best")
	acc=$(($(field accept "$best") + $(field continue "$best")))
	err=$(field errors "$best")
	rate[$m $s $c]=$(field rate "$best")
	rows+=("$s|$m|$c|$msgs|$(field rate "$best")|$(awk -v r="$(field rate "$best")" \
	    -v b="${bytes[$s]}" 'BEGIN { printf "%.1f", r * b / 1e6 }')|$(field p50 "$best")|$(field p99 "$best")|$err")
	if [ "$acc" = "$msgs" ] && [ "$err" = 0 ]; then
		check PASS "$m $s c=$c: $msgs messages accepted, no errors"
	else
		check FAIL "$m $s c=$c: $acc of $msgs accepted, $err errors ($best)"
	fi
}

# eicar MILTER SPEC WANT: the EICAR messages, refused (WANT: the SMTP
# code of a SMFIR_REPLYCODE reply, or "reject" for any refusal)
eicar() {
	local m=$1 spec=$2 want=$3 out res rej codes
	out=$raw/content-$m-eicar.txt
	"$miltergen" -s "$spec" -c 1 -n "$n_eicar" -m full \
	    --message "$tmp/msg-eicar.eml" >"$out" 2>&1 || true
	res=$(grep '^result ' "$out" | tail -n 1 || true)
	codes=$(grep '^codes ' "$out" | tail -n 1 || true)
	rej=$(field reject "$res")
	if [ -z "$res" ]; then
		check FAIL "$m eicar: no result: $(tail -n 1 "$out")"
	elif [ "$rej" = "$n_eicar" ] && { [ "$want" = reject ] ||
	    [ "$(field "$want" "$codes")" = "$n_eicar" ]; }; then
		check PASS "$m eicar: $n_eicar of $n_eicar refused (${codes:-$(grep '^replies' "$out" | tail -n 1)})"
	else
		check FAIL "$m eicar: $rej of $n_eicar refused, want $want (${codes:-no code}; $res)"
	fi
}

# ---- portero ----
# portero_bench NAME TABLES: NAME "portero" with the rule tables (TABLES
# 1), "portero-av" without them (0)
portero_bench() {
	local m=$1 tables=$2 pid spec=unix:$tmp/$1.sock s c sp hc='' bc=''
	if [ "$tables" = 1 ]; then
		hc=pcre:$tmp/header_checks
		bc=pcre:$tmp/body_checks
	fi
	{
		cat <<EOF
milter = { socket = "$spec"; pidfile = "$tmp/$m.pid";
  user = ""; group = ""; shutdown_timeout = 1; };
log = { level = "info"; stderr = true; };
content = { header_checks = "$hc"; body_checks = "$bc";
  spool_dir = "$tmp/spool"; memory_limit = "1M"; };
spam = { };
EOF
		if [ "$use_av" != 0 ]; then
			cat <<EOF
antivirus = { database = "$db"; scanners = $scanners; tmpdir = "$shm/avtmp";
  on_infected = "reject"; };
EOF
		fi
	} >"$tmp/$m.conf"
	cp "$tmp/$m.conf" "$raw/content-$m.conf"
	log "content: $m (rule tables: $([ "$tables" = 1 ] && echo yes || echo no)," \
	    "antivirus: $([ "$use_av" != 0 ] && echo "$scanners scanners" || echo off))"
	"$portero" -f -c "$tmp/$m.conf" >"$tmp/$m.log" 2>&1 &
	pid=$!
	pids="$pids $pid"
	if ! wait_sock "$pid" "$tmp/$m.sock" 10; then
		log "content: $m did not start:"
		tail -n 20 "$tmp/$m.log" >&2
		check FAIL "$m: did not start"
		return 0
	fi
	if [ "$use_av" != 0 ]; then
		# the engine is loaded and the scanners forked
		for _ in $(seq 1 1200); do
			grep -q 'antivirus: generation .*signatures' "$tmp/$m.log" &&
			    [ "$(grep -c 'scanner .* started' "$tmp/$m.log")" -ge "$scanners" ] &&
			    break
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.05
		done
		if ! grep -q 'antivirus: generation .*signatures' "$tmp/$m.log"; then
			log "content: $m: the scanners did not load the database:"
			tail -n 20 "$tmp/$m.log" >&2
			check FAIL "$m: antivirus did not start"
		fi
		sleep 0.5
		if [ "$m" = portero ]; then
			# shellcheck disable=SC2046  # PID list
			mem[portero load]=$(mem_of $(scan_pids "$pid"))
			mem[portero n]=$(scan_pids "$pid" | wc -l)
		fi
	fi
	for s in $sizes; do
		for c in 1 "$conc_hi"; do
			run "$m" "$s" "$spec" "$c"
		done
	done
	if [ "$use_av" != 0 ]; then
		if [ "$m" = portero ]; then
			# shellcheck disable=SC2046
			mem[portero runs]=$(mem_of $(scan_pids "$pid"))
		fi
		eicar "$m" "$spec" 554
	fi
	kill -TERM "$pid" 2>/dev/null || true
	stopping="$stopping $pid"
	wait_stopping
	cp "$tmp/$m.log" "$raw/content-$m.stderr"
	if grep -v 'verdict=' "$tmp/$m.log" |
	    grep -qiE 'error|warning|sanitizer|crash|died|killed'; then
		log "content: $m stderr, last such lines:"
		grep -v 'verdict=' "$tmp/$m.log" |
		    grep -iE 'error|warning|sanitizer|crash|died|killed' |
		    tail -n 5 | sed 's/^/    /' >&2
	fi
	sp=$(find "$tmp/spool" -type f | wc -l)
	[ "$sp" = 0 ] || check FAIL "$m: $sp files left in spool_dir"
}

# ---- clamav-milter + clamd ----
clamav_bench() {
	local cpid mpid s c out
	cat >"$tmp/clamd.conf" <<EOF
Foreground yes
LocalSocket $tmp/clamd.sock
LocalSocketMode 660
FixStaleSocket yes
PidFile $tmp/clamd.pid
LogFile $tmp/clamd.log
LogTime yes
DatabaseDirectory $db
TemporaryDirectory $shm/clamdtmp
MaxThreads $threads
MaxQueue 200
SelfCheck 3600
ConcurrentDatabaseReload no
StreamMaxLength 50M
MaxScanSize 100M
MaxFileSize 50M
MaxRecursion 16
MaxFiles 1000
MaxEmbeddedPE 10M
MaxScanTime 60000
HeuristicAlerts yes
ScanMail yes
EOF
	cat >"$tmp/clamav-milter.conf" <<EOF
MilterSocket unix:$tmp/cmilter.sock
MilterSocketMode 660
FixStaleSocket yes
Foreground yes
PidFile $tmp/cmilter.pid
TemporaryDirectory $shm/clamdtmp
ClamdSocket unix:$tmp/clamd.sock
OnClean Accept
OnInfected Reject
OnFail Defer
AddHeader No
MaxFileSize 50M
ReadTimeout 120
LogFile $tmp/cmilter.log
LogTime yes
LogInfected Basic
EOF
	cp "$tmp/clamd.conf" "$raw/content-clamd.conf"
	cp "$tmp/clamav-milter.conf" "$raw/content-clamav-milter.conf"
	log "content: clamd ($threads threads) and clamav-milter"
	"$clamd" -c "$tmp/clamd.conf" >"$tmp/clamd.out" 2>&1 &
	cpid=$!
	pids="$pids $cpid"
	# ready: the socket answers PING (clamd listens once loaded)
	for _ in $(seq 1 1200); do
		kill -0 "$cpid" 2>/dev/null || break
		out=$("$python" -c 'import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(2)
s.connect(sys.argv[1])
s.sendall(b"zPING\0")
print(s.recv(64).rstrip(b"\0").decode())' "$tmp/clamd.sock" 2>/dev/null || true)
		[ "$out" = PONG ] && break
		sleep 0.05
	done
	if [ "$out" != PONG ]; then
		log "content: clamd did not answer PING:"
		tail -n 20 "$tmp/clamd.out" "$tmp/clamd.log" >&2 2>/dev/null || true
		check FAIL "clamd: did not start"
		return 0
	fi
	mem[clamd load]=$(mem_of "$cpid")
	"$cmilter" -c "$tmp/clamav-milter.conf" >"$tmp/cmilter.out" 2>&1 &
	mpid=$!
	pids="$pids $mpid"
	if ! wait_sock "$mpid" "$tmp/cmilter.sock" 10; then
		log "content: clamav-milter did not start:"
		tail -n 20 "$tmp/cmilter.out" "$tmp/cmilter.log" >&2 2>/dev/null || true
		check FAIL "clamav-milter: did not start"
		return 0
	fi
	for s in $sizes; do
		for c in 1 "$conc_hi"; do
			run clamav-milter "$s" "unix:$tmp/cmilter.sock" "$c"
		done
	done
	mem[clamd runs]=$(mem_of "$cpid")
	eicar clamav-milter "unix:$tmp/cmilter.sock" reject
	kill -TERM "$mpid" "$cpid" 2>/dev/null || true
	stopping="$stopping $mpid $cpid"
	wait_stopping
	cp "$tmp/clamd.log" "$raw/content-clamd.log" 2>/dev/null || true
	cp "$tmp/cmilter.log" "$raw/content-clamav-milter.log" 2>/dev/null || true
}

if [ "$have_portero" = 1 ]; then
	portero_bench portero 1
	[ "$use_norules" = 0 ] || portero_bench portero-av 0
fi
[ "$use_clamav" != 0 ] && clamav_bench

# ---- report ----
ratio() {	# ratio A B
	awk -v a="${1:--}" -v b="${2:--}" 'BEGIN {
	    if (a == "-" || b == "-" || a == "" || b == "" || b + 0 <= 0) print "-";
	    else printf "%.2f", a / b }'
}
mib() {		# mib KIB
	awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'
}
# lib_p MILTER CONC: P of the libclamav row for a milter row: the scans
# that can run at once
lib_p() {
	case $1 in
	clamav-milter) min "$2" "$ncpu" ;;	# MaxThreads >= conc
	*) min "$2" "$scanners" "$ncpu" ;;
	esac
}
echo
echo "End of message: portero (content rules + spam + ClamAV), portero-av" \
    "(no rule tables) and clamav-milter + clamd; $ncpu cores, unix sockets;" \
    "load average before the runs: $load0"
printf '%-5s %-13s %4s %6s %8s %7s %8s %8s %6s %9s %6s\n' size milter conc \
    msgs msgs/s MB/s p50ms p99ms errors vs-clamav vs-lib
for r in "${rows[@]}" ${crows[@]+"${crows[@]}"}; do
	IFS='|' read -r s m c n rt mbs p50 p99 err <<<"$r"
	vo=-
	case $m in
	portero*) vo=$(ratio "$rt" "${rate[clamav-milter $s $c]:-}") ;;
	esac
	vl=-
	[ "$m" != libclamav ] && vl=$(ratio "$rt" "${ceil[$s $(lib_p "$m" "$c")]:-}")
	printf '%-5s %-13s %4s %6s %8s %7s %8s %8s %6s %9s %6s\n' "$s" "$m" \
	    "$c" "$n" "$rt" "$mbs" "$p50" "$p99" "$err" "$vo" "$vl"
done
line="message bytes:"
for s in $sizes; do
	line="$line $s ${bytes[$s]},"
done
echo "${line%,};" \
    "MB = 10^6 bytes; vs-clamav: msgs/s / clamav-milter msgs/s (same size" \
    "and concurrency); vs-lib: msgs/s / libclamav scans/s with P =" \
    "min(conc, $ncpu cores, and for portero its $scanners scanners)."
if [ "$use_ceiling" != 0 ]; then
	echo "libclamav: tests/bench/avspeed, the engine alone (same database," \
	    "limits and options, P processes sharing it, conc = P, msgs =" \
	    "scans, best of $repeat); share of that ceiling at c=$conc_hi:"
	for s in $sizes; do
		line="  $s:"
		for m in portero portero-av clamav-milter; do
			[ -n "${rate[$m $s $conc_hi]:-}" ] || continue
			p=$(lib_p "$m" "$conc_hi")
			line="$line $m/libclamav(P=$p) $(ratio "${rate[$m $s $conc_hi]}" \
			    "${ceil[$s $p]:-}");"
		done
		echo "${line%;}"
	done
fi
echo "database: $n_hdb + 1 MD5 (.hdb), $n_ndb body (.ndb) signatures;" \
    "tables: 100 header_checks, 100 body_checks patterns (none matching)."
[ "$use_av" != 0 ] || echo "portero ran WITHOUT its antivirus module" \
    "(BENCH_CONTENT_AV=0): content rules and spam only."
echo
echo "engine memory (RSS = resident, PSS = shared pages divided among the" \
    "processes sharing them):"
printf '%-34s %10s %10s\n' "" RSS-MiB PSS-MiB
for k in "portero load" "portero runs" "clamd load" "clamd runs"; do
	[ -n "${mem[$k]:-}" ] || continue
	read -r rs ps <<<"${mem[$k]}"
	case $k in
	portero*) label="portero manager+scanners (${mem[portero n]})" ;;
	*) label="clamd ($threads threads)" ;;
	esac
	case $k in
	*load) label="$label, loaded" ;;
	*) label="$label, after runs" ;;
	esac
	printf '%-34s %10s %10s\n' "$label" "$(mib "$rs")" "$(mib "$ps")"
done
if [ -n "$target" ]; then
	for s in $sizes; do
		v=$(ratio "${rate[portero $s $conc_hi]:-}" "${rate[clamav-milter $s $conc_hi]:-}")
		if awk -v v="$v" -v t="$target" 'BEGIN { exit !(v != "-" && v >= t) }'; then
			check PASS "portero/clamav-milter $s c=$conc_hi $v >= $target"
		else
			check FAIL "portero/clamav-milter $s c=$conc_hi $v (want >= $target)"
		fi
	done
fi
echo
for c in "${checks[@]}"; do
	echo "$c"
done
echo "total $(($(date +%s) - start)) s; raw output in $raw/content-*"
exit "$failed"
