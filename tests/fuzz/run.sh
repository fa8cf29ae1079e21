#!/bin/bash
# run.sh - builds the libFuzzer targets of tests/fuzz/ and runs each for a
# while on a copy of its seed corpus; prints TAP.
#
#   tests/fuzz/run.sh SECONDS [TARGET ...]
#
# SECONDS per target (0: only run the seed corpus once, a quick regression
# check).  TARGET is e.g. fuzz_addr; default: every tests/fuzz/fuzz_*.c.
# Output: "ok N - fuzz_addr (X runs)" plus a "#" line with coverage and
# speed, or "not ok N - fuzz_addr" with the crash report; then "1..N".
# Exits 0 iff every target passed.
#
# Build: clang, the library sources of the Makefile (LIB_SRCS) compiled
# with -fsanitize=fuzzer-no-link,address,undefined into build/fuzz/obj/,
# each target linked with -fsanitize=fuzzer,address,undefined into
# build/fuzz/.  Seeds come from tests/fuzz/corpus/TARGET/ (fuzz_config
# also gets conf/*.conf and tests/data/conf/*.conf), copied into a
# temporary working corpus, so runs never change the repository.
# Dictionaries: tests/fuzz/config.dict for fuzz_config (plus every setting
# name found in src/cfg_schema.c), tests/fuzz/NAME.dict for fuzz_NAME.
# Crashing inputs are kept in build/fuzz/artifacts/TARGET/.
#
# Environment: CC (default clang), FUZZ_OUT (default build/fuzz),
# FUZZ_JOBS (parallel compiles), FUZZ_VERBOSE=1 (show the daemon's log),
# FUZZ_ARGS (extra libFuzzer flags).  Inputs of bugs found so far are in
# tests/fuzz/crashes/TARGET-what and join TARGET's corpus in every run.

set -u

usage() {
	echo "usage: $0 SECONDS [fuzz_TARGET ...]" >&2
	exit 2
}

[ $# -ge 1 ] || usage
SECS=$1
shift
case $SECS in
''|*[!0-9]*) usage ;;
esac

cd "$(dirname "$0")/../.." || exit 2
CC=${CC:-clang}
case $CC in
cc|gcc|*/gcc) CC=clang ;;	# libFuzzer needs clang
esac
OUT=${FUZZ_OUT:-build/fuzz}
JOBS=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 2)}

# Called from make: its flags (-n, -j, CC=...) are not for our makes.
unset MAKEFLAGS MFLAGS MAKEOVERRIDES MAKELEVEL
# The pkg-config packages, as the Makefile lists them.
PKGS=$(printf 'fuzz-print-pkgs:\n\t@echo $(PKGS)\n' |
    make -s --no-print-directory -f Makefile -f - fuzz-print-pkgs 2>/dev/null)
[ -n "$PKGS" ] || PKGS="milter libconfig libmicrohttpd libsystemd"
# A stack trace with UBSan reports too.
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

TMP=$(mktemp -d /tmp/portero-fuzz.XXXXXX) || exit 2
trap 'rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM

# Per-target input size limit (bytes).
max_len() {
	case $1 in
	fuzz_config|fuzz_pipeline) echo 65536 ;;
	fuzz_testmsg) echo 16384 ;;
	fuzz_units) echo 512 ;;
	fuzz_cidr) echo 1024 ;;
	*) echo 4096 ;;
	esac
}

# The library sources, as the Makefile lists them; every src/*.c but the
# programs' own files if that fails.
lib_srcs() {
	local s
	s=$(printf 'fuzz-print-lib-srcs:\n\t@echo $(LIB_SRCS)\n' |
	    make -s --no-print-directory -f Makefile -f - \
	    fuzz-print-lib-srcs 2>/dev/null)
	if [ -z "$s" ]; then
		for f in src/*.c; do
			case $f in
			src/main.c|src/supervisor.c|src/ctl*.c) ;;
			*) s="$s $f" ;;
			esac
		done
	fi
	echo $s
}

# Writes the build rules to $TMP/fuzz.mk; make does the rest (incremental,
# parallel).  Objects are rebuilt when the flags change.
build() {
	local pkg_cflags pkg_libs srcs targets flags
	local common="-g -O1 -fno-omit-frame-pointer -std=c11 -D_GNU_SOURCE -Iinclude"
	local san="-fsanitize=address,undefined -fno-sanitize-recover=all"
	local warn="-Wall -Wextra -Werror -Wformat=2 -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wvla"

	case " $PKGS " in
	*" libhs "*) common="$common -DHAVE_HYPERSCAN" ;;	# as the Makefile
	esac
	pkg_cflags=$(pkg-config --cflags $PKGS) || return 1
	pkg_libs=$(pkg-config --libs $PKGS) || return 1
	srcs=$(lib_srcs)
	targets="$*"
	mkdir -p "$OUT/obj" || return 1
	flags="$CC $common $san $pkg_cflags $pkg_libs"
	if [ "$(cat "$OUT/obj/flags" 2>/dev/null)" != "$flags" ]; then
		rm -f "$OUT"/obj/*.o
		echo "$flags" > "$OUT/obj/flags"
	fi
	{
		echo "CC = $CC"
		echo "LIBCF = $common $san -fsanitize=fuzzer-no-link -Wall -Wextra $pkg_cflags"
		echo "TGTCF = $common $san -fsanitize=fuzzer $warn -Itests/fuzz $pkg_cflags"
		echo "LIBS = $pkg_libs -lpthread -lm"
		echo "HDRS = $(echo include/*.h)"
		echo "LIBOBJS =$(for s in $srcs; do
		    b=${s##*/}; printf ' %s' "$OUT/obj/${b%.c}.o"; done)"
		echo "all:$(for t in $targets; do printf ' %s' "$OUT/$t"; done)"
		for s in $srcs; do
			b=${s##*/}
			echo "$OUT/obj/${b%.c}.o: $s \$(HDRS) $OUT/obj/flags"
			printf '\t$(CC) $(LIBCF) -c -o $@ %s\n' "$s"
		done
		echo "$OUT/obj/fuzz_common.o: tests/fuzz/fuzz_common.c tests/fuzz/fuzz.h \$(HDRS) $OUT/obj/flags"
		printf '\t$(CC) $(TGTCF) -c -o $@ tests/fuzz/fuzz_common.c\n'
		for t in $targets; do
			echo "$OUT/$t: tests/fuzz/$t.c tests/fuzz/fuzz.h $OUT/obj/fuzz_common.o \$(LIBOBJS) \$(HDRS)"
			printf '\t$(CC) $(TGTCF) -o $@ tests/fuzz/%s.c %s $(LIBOBJS) $(LIBS)\n' \
			    "$t" "$OUT/obj/fuzz_common.o"
		done
	} > "$TMP/fuzz.mk"
	make -s --no-print-directory -j"$JOBS" -f "$TMP/fuzz.mk" all
}

# Dictionary for a target (path), or nothing.
dict_for() {
	local t=$1 d
	if [ "$t" = fuzz_config ]; then
		d=$TMP/config.dict
		cat tests/fuzz/config.dict > "$d" 2>/dev/null
		# every setting name of the schema, as it is today
		sed -n 's/^[[:space:]]*{ "\([^"]*\)", SCH_.*/\1/p;
		    s/^[[:space:]]*MODULE("\([a-z0-9_]*\)").*/\1/p' \
		    src/cfg_schema.c 2>/dev/null | tr '.' '\n' |
		    grep -E '^[a-z0-9_]+$' | sort -u |
		    sed 's/.*/schema_&="&"/' >> "$d"
		echo "$d"
	elif [ -f "tests/fuzz/${t#fuzz_}.dict" ]; then
		echo "tests/fuzz/${t#fuzz_}.dict"
	fi
}

# Seeds into a fresh working corpus directory.
corpus_for() {
	local t=$1 dir=$TMP/corpus/$1 f
	mkdir -p "$dir"
	if [ -d "tests/fuzz/corpus/$t" ]; then
		cp -p tests/fuzz/corpus/"$t"/* "$dir"/ 2>/dev/null
	fi
	# inputs of bugs found earlier: every run replays them
	for f in tests/fuzz/crashes/"$t"-*; do
		[ -f "$f" ] && cp "$f" "$dir/"
	done
	if [ "$t" = fuzz_config ]; then
		for f in conf/*.conf tests/data/conf/*.conf; do
			[ -f "$f" ] && cp "$f" "$dir/repo-$(echo "$f" | tr / _)"
		done
	fi
	echo "$dir"
}

# Value of "stat::NAME: V" or of "NAME: V" on the last status line.
stat_of() {
	sed -n "s/^stat::$2:[[:space:]]*\([0-9]*\).*/\1/p" "$1" | tail -n 1
}
status_of() {
	grep -E '^#[0-9]+[[:space:]]' "$1" | tail -n 1 |
	    sed -n "s/.* $2: \([^ ]*\).*/\1/p"
}

# The interesting part of a crash log, as TAP diagnostics.
crash_report() {
	local log=$1
	local pat='invariant failed|==[0-9]+==ERROR|runtime error|ERROR: libFuzzer|deadly signal'
	{
		if grep -q -E "$pat" "$log"; then
			awk -v pat="$pat" 'f || $0 ~ pat { f = 1; print }' "$log" |
			    grep -v -E '^(MS:|base64:|INFO:|#[0-9]+[[:space:]])|Test unit written' |
			    head -n 60
		else
			tail -n 30 "$log"
		fi
		grep -E 'Test unit written to' "$log"
	} | sed 's/^/# /'
}

if [ $# -gt 0 ]; then
	TARGETS="$*"
else
	TARGETS=$(for f in tests/fuzz/fuzz_*.c; do
	    b=${f##*/}; b=${b%.c}; [ "$b" = fuzz_common ] || echo "$b"; done)
fi
for t in $TARGETS; do
	if [ ! -f "tests/fuzz/$t.c" ]; then
		echo "$0: no such target: $t" >&2
		exit 2
	fi
done

if ! command -v "$CC" >/dev/null 2>&1; then
	echo "1..0 # SKIP $CC not found"
	exit 0
fi
if ! build $TARGETS > "$TMP/build.log" 2>&1; then
	echo "not ok 1 - build"
	tail -n 40 "$TMP/build.log" | sed 's/^/# /'
	echo "1..1"
	exit 1
fi

n=0
fail=0
for t in $TARGETS; do
	n=$((n + 1))
	log=$TMP/$t.log
	art=$OUT/artifacts/$t
	rm -rf "$art"
	mkdir -p "$art"
	dict=$(dict_for "$t")
	corpus=$(corpus_for "$t")
	if [ "$SECS" -eq 0 ]; then
		limit="-runs=0"
	else
		limit="-max_total_time=$SECS"
	fi
	# shellcheck disable=SC2086
	timeout -k 10 $((SECS * 2 + 120)) "$OUT/$t" $limit \
	    -max_len="$(max_len "$t")" -timeout=25 -rss_limit_mb=2048 \
	    -print_final_stats=1 -artifact_prefix="$art/" \
	    ${dict:+-dict="$dict"} ${FUZZ_ARGS:-} "$corpus" > "$log" 2>&1
	rc=$?
	runs=$(stat_of "$log" number_of_executed_units)
	if [ $rc -eq 0 ] && [ -n "$runs" ]; then
		echo "ok $n - $t (${runs} runs)"
		echo "# $t: cov=$(status_of "$log" cov) ft=$(status_of "$log" ft)" \
		    "corpus=$(status_of "$log" corp) exec/s=$(stat_of "$log" average_exec_per_sec)" \
		    "rss=$(stat_of "$log" peak_rss_mb)MB"
	else
		fail=$((fail + 1))
		echo "not ok $n - $t"
		[ $rc -eq 124 ] && echo "# killed by timeout(1) after $((SECS * 2 + 120)) s"
		echo "# exit status $rc; ${runs:-?} runs"
		crash_report "$log"
		for f in "$art"/*; do
			[ -f "$f" ] && echo "# reproduce: FUZZ_VERBOSE=1 $OUT/$t $f"
		done
	fi
done
echo "1..$n"
[ $fail -eq 0 ]
