# portero - before-queue mail filter for Postfix.
#
#   make            build build/portero and build/portero-ctl
#   make test       unit + milter tests under ASan/UBSan, TSan run, e2e
#                   (Postfix), short fuzz runs; ends with "N passed, N failed"
#   make deps       install Debian build and test packages (apt-get)
#   make run        build and run in the foreground on conf/portero-dev.conf
#   make install    PREFIX=/usr/local DESTDIR=
#   make bench      milter-protocol load test against a do-nothing milter
#   make asan       sanitizer build in build/asan
#   make fuzz       libFuzzer targets, FUZZ_SECONDS each

PREFIX	?= /usr/local
DESTDIR	?=
SBINDIR	 = $(PREFIX)/sbin
MANDIR	 = $(PREFIX)/share/man
UNITDIR	 = $(PREFIX)/lib/systemd/system
O	?= build
SAN	?=
FUZZ_SECONDS ?= 60

PKGS	 = milter libconfig libmicrohttpd libsystemd libunbound libmaxminddb \
	   lmdb hiredis libcrypto libpcre2-8 gmime-3.0 libclamav
CC	?= cc
WARN	 = -std=c11 -Wall -Wextra -Werror -Wformat=2 -Wshadow \
	   -Wstrict-prototypes -Wmissing-prototypes -Wvla
DEFS	 = -D_GNU_SOURCE -Iinclude
ifeq ($(SAN),asan)
OPT	 = -O1 -g -fno-omit-frame-pointer \
	   -fsanitize=address,undefined -fno-sanitize-recover=all
LDSAN	 = -fsanitize=address,undefined
else ifeq ($(SAN),tsan)
OPT	 = -O1 -g -fsanitize=thread
LDSAN	 = -fsanitize=thread
else
OPT	 = -O2 -g -D_FORTIFY_SOURCE=2 -fstack-protector-strong \
	   -fstack-clash-protection
LDSAN	 =
endif
# Hyperscan (libhyperscan-dev, amd64) prefilters the rule tables when
# present; HYPERSCAN=0 builds without it (PCRE2 alone, same results).
HYPERSCAN ?= $(shell pkg-config --exists libhs && echo 1 || echo 0)
ifeq ($(HYPERSCAN),1)
PKGS	+= libhs
DEFS	+= -DHAVE_HYPERSCAN
endif
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) || echo PKG-CONFIG-FAILED)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) || echo PKG-CONFIG-FAILED)
ifneq ($(findstring PKG-CONFIG-FAILED,$(PKG_CFLAGS) $(PKG_LIBS)),)
ifeq ($(filter deps deps-if-needed clean test run,$(MAKECMDGOALS)),)
$(error pkg-config cannot find every library ($(PKGS)): run "make deps")
endif
endif
CFLAGS	?=
LDFLAGS	?=
ALL_CFLAGS = $(WARN) $(DEFS) $(OPT) -fPIE $(PKG_CFLAGS) $(CFLAGS)
ALL_LDFLAGS = -pie -Wl,-z,relro,-z,now $(LDSAN) $(LDFLAGS)
LIBS	 = $(PKG_LIBS) -lpthread -lm
# the unit tests check DKIM signatures with libopendkim's verifier
TEST_LIBS = -lopendkim

LIB_SRCS = src/dns.c src/err.c src/util.c src/buf.c src/arena.c src/cidr.c \
	   src/addr.c src/log.c src/metrics.c src/metrics_http.c \
	   src/cfg.c src/cfg_schema.c src/ctx.c src/pipeline.c src/checks.c \
	   src/check_lists.c src/check_helo.c src/check_sender.c \
	   src/check_dnsbl.c src/check_geoip.c src/check_rdns.c \
	   src/spf_record.c src/spf_eval.c src/check_spf.c \
	   src/store.c src/store_lmdb.c src/store_redis.c src/smtpc.c \
	   src/greykey.c src/check_greylist.c src/check_callout.c \
	   src/dkimkey.c src/dkimtable.c src/dkimsign.c src/check_dkim.c \
	   src/check_outbound.c \
	   src/spool.c src/ruletable.c src/ruletable_compile.c \
	   src/ruletable_match.c src/ruletable_prefilter.c src/mime.c src/mime_charset.c \
	   src/check_content.c src/check_spam.c \
	   src/scanner.c src/scanworker.c src/scanclient.c src/scanproto.c \
	   src/clamd.c src/check_av.c \
	   src/milter.c src/testmsg.c
LIB_OBJS = $(LIB_SRCS:src/%.c=$(O)/obj/%.o)
HDRS	 = $(wildcard include/*.h)

UNIT_SRCS = $(wildcard tests/unit/test_*.c)
UNIT_BINS = $(UNIT_SRCS:tests/unit/%.c=$(O)/tests/%)

.PHONY: all test unit deps deps-if-needed run install bench asan tsan fuzz clean check-config

all: $(O)/portero $(O)/portero-ctl

$(O)/obj/%.o: src/%.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(O)/libportero.a: $(LIB_OBJS)
	rm -f $@
	ar rcs $@ $^

$(O)/portero: $(O)/obj/main.o $(O)/obj/supervisor.o $(O)/libportero.a
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

$(O)/portero-ctl: $(O)/obj/ctl.o $(O)/obj/ctl_store.o $(O)/obj/ctl_dkim.o \
	    $(O)/libportero.a
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

$(O)/tests/%: tests/unit/%.c tests/unit/unit.h $(O)/libportero.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Wno-missing-prototypes -Itests/unit -o $@ $< \
	    $(O)/libportero.a $(ALL_LDFLAGS) $(LIBS) -lcmocka $(TEST_LIBS)

unit: $(UNIT_BINS)

# store throughput and LMDB growth (tests/bench/store.sh runs it)
$(O)/storebench: tests/bench/storebench.c $(O)/libportero.a
	$(CC) $(ALL_CFLAGS) -o $@ $< $(O)/libportero.a $(ALL_LDFLAGS) $(LIBS)

asan:
	$(MAKE) O=build/asan SAN=asan all unit

tsan:
	$(MAKE) O=build/tsan SAN=tsan all unit

# The whole suite: see tests/run.sh.
test: deps-if-needed
	$(MAKE) all
	$(MAKE) O=build/asan SAN=asan all unit
	$(MAKE) O=build/tsan SAN=tsan all unit
	tests/run.sh

deps:
	@if [ "$$(id -u)" = 0 ]; then S=; else S=sudo; fi; \
	$$S apt-get update && \
	echo "postfix postfix/main_mailer_type select No configuration" | \
	    $$S debconf-set-selections && \
	DEBIAN_FRONTEND=noninteractive $$S apt-get install -y \
	    --no-install-recommends $$(grep -v '^#' tests/deps.txt)

# install the Debian packages first when any is missing
deps-if-needed:
	@tests/need-deps.sh >/dev/null || $(MAKE) deps

run: deps-if-needed
	$(MAKE) all
	@tests/run-dev.sh $(O)/portero

install: all
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(MANDIR)/man5 \
	    $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)/etc/portero
	install -m 0755 $(O)/portero $(O)/portero-ctl $(DESTDIR)$(SBINDIR)/
	install -m 0644 man/portero.8 man/portero-ctl.8 \
	    $(DESTDIR)$(MANDIR)/man8/
	install -m 0644 man/portero.conf.5 $(DESTDIR)$(MANDIR)/man5/
	test -e $(DESTDIR)/etc/portero/portero.conf || \
	    install -m 0640 conf/portero.conf $(DESTDIR)/etc/portero/
	install -d $(DESTDIR)$(UNITDIR) $(DESTDIR)$(PREFIX)/lib/sysusers.d \
	    $(DESTDIR)$(PREFIX)/lib/tmpfiles.d
	sed 's|/usr/sbin/|$(SBINDIR)/|g' contrib/systemd/portero.service \
	    >$(DESTDIR)$(UNITDIR)/portero.service
	install -m 0644 contrib/systemd/portero.sysusers \
	    $(DESTDIR)$(PREFIX)/lib/sysusers.d/portero.conf
	install -m 0644 contrib/systemd/portero.tmpfiles \
	    $(DESTDIR)$(PREFIX)/lib/tmpfiles.d/portero.conf

bench: all
	tests/bench/run.sh

fuzz:
	tests/fuzz/run.sh $(FUZZ_SECONDS)

check-config: all
	$(O)/portero -t -c conf/portero.conf

clean:
	rm -rf build
