# pgcrypttools: offline key and encryption tools for encrypted PostgreSQL
# clusters.  See README.md.
#
#   make              build lib/libpgcrypttools.a and the tools in bin/
#   make check        build and run every unit (Check) and TAP test
#   make demo         encrypt, verify, rotate and decrypt a throwaway cluster
#   make bench        time the tools against pg_checksums --enable, cp -a, dd
#   make asan         unit tests under AddressSanitizer and UBSan
#   make valgrind     unit tests under valgrind
#   make lint         clang-tidy and cppcheck
#   make install      PREFIX=/usr/local DESTDIR=
#
# As root, check and demo install missing Debian packages and run as the
# unprivileged user $(TEST_USER) in a copy of the tree (PostgreSQL and these
# tools refuse root).

PREFIX	?= /usr/local
DESTDIR	?=
BINDIR	 = $(PREFIX)/bin
MANDIR	 = $(PREFIX)/share/man
SHAREDIR = $(PREFIX)/share/pgcrypttools

# Output prefix: empty (the tree itself), or e.g. build-asan/ for `make asan`.
O		?=

CC		?= cc
PG_CONFIG ?= pg_config
PG_BINDIR := $(shell $(PG_CONFIG) --bindir 2>/dev/null)
PGXS_DIR  := $(dir $(shell $(PG_CONFIG) --pgxs 2>/dev/null))
PG_INCLUDE_SERVER := $(shell $(PG_CONFIG) --includedir-server 2>/dev/null)
PG_INCLUDE := $(shell $(PG_CONFIG) --includedir 2>/dev/null)

WARN	 = -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wformat-security \
		   -Wmissing-prototypes -Wstrict-prototypes -Wpointer-arith \
		   -Wcast-qual -Wvla -Wundef -Wimplicit-fallthrough -Wnull-dereference
OPT		?= -O2 -g
CFLAGS	?=
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE -D_FORTIFY_SOURCE=2 -fstack-protector-strong \
		   $(OPT) $(WARN) $(SAN) -I. -I$(PG_INCLUDE) $(CFLAGS)
LDFLAGS	?=
LIBS	 = -lssl -lcrypto -lpq -lz -lpthread
CHECK_LIBS = $(shell pkg-config --libs check 2>/dev/null || echo -lcheck -lsubunit -lrt -lm -lpthread)

LIB_SRC	 = $(sort $(wildcard lib/*.c))
LIB_OBJ	 = $(LIB_SRC:%.c=$(O)%.o)
LIBA	 = $(O)lib/libpgcrypttools.a

TOOLS	 = pg_alterckey pg_verify_cryptokeys pg_encrypt_cluster
TOOL_BIN = $(TOOLS:%=$(O)bin/%)

UNIT_SRC = $(sort $(wildcard tests/unit/check_*.c))
UNIT_BIN = $(UNIT_SRC:%.c=$(O)%)
UNIT_HELPERS = $(filter-out $(UNIT_SRC),$(wildcard tests/unit/*.c))
TEST_TOOLS = $(patsubst %.c,$(O)%,$(wildcard tests/tools/*.c))

SAMPLES	 = $(filter-out share/README,$(wildcard share/*))
MANPAGES = $(TOOLS:%=man/man1/%.1)

TEST_USER ?= pgcrypttools

.PHONY: all check check-local unit tap demo demo-local bench bench-local \
		asan valgrind lint \
		install uninstall clean

all: $(LIBA) $(TOOL_BIN)

$(O)lib/%.o: lib/%.c pg_cryptokeys.h lib/pct_internal.h
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

# PostgreSQL's own page checksum code (storage/checksum_impl.h, which is
# made to be included by programs outside the server), in a unit of its own.
$(O)lib/checksum.o: lib/checksum.c pg_cryptokeys.h lib/pct_internal.h
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -O3 -isystem $(PG_INCLUDE_SERVER) \
		-isystem $(PG_INCLUDE)/internal -c -o $@ $<

$(LIBA): $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(O)bin/%: bin/%.c bin/tool_common.h $(O)bin/tool_common.o $(LIBA)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(O)bin/tool_common.o $(LIBA) $(LDFLAGS) $(LIBS)

$(O)bin/tool_common.o: bin/tool_common.c bin/tool_common.h pg_cryptokeys.h
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

# Unit suites may include server headers (layout cross-checks).
$(O)tests/unit/check_%: tests/unit/check_%.c $(UNIT_HELPERS) tests/unit/unit.h $(LIBA)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -isystem $(PG_INCLUDE_SERVER) -Wno-missing-prototypes \
		-o $@ $< $(UNIT_HELPERS) $(LIBA) $(LDFLAGS) $(CHECK_LIBS) $(LIBS)

# Test-only programs used by the TAP tests (never installed).
$(O)tests/tools/%: tests/tools/%.c $(LIBA)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(LIBA) $(LDFLAGS) $(LIBS)

include tests/preload/preload.mk

# ---- tests ----

check: all
	@sh scripts/unprivileged.sh check-local

demo: all
	@sh scripts/unprivileged.sh demo-local

# make bench [BENCH_SCALE=N]: time the tools against pg_checksums --enable,
# cp -a and dd on one pgbench cluster (a benchmark, not a test).
BENCH_SCALE ?= 100
bench: all
	@BENCH_SCALE=$(BENCH_SCALE) sh scripts/unprivileged.sh bench-local

check-local: unit tap

unit: $(UNIT_BIN)
	@set -e; failed=0; \
	for t in $(UNIT_BIN); do \
		echo "== $$t"; \
		VECTORS=$(CURDIR)/tests/vectors TOP=$(CURDIR) $$t || failed=1; \
	done; \
	test $$failed = 0

tap: all $(TEST_TOOLS) $(PRELOAD_SO)
	@PATH="$(CURDIR)/$(O)bin:$(CURDIR)/$(O)tests/tools:$(PG_BINDIR):$$PATH" \
	PG_REGRESS="$(PGXS_DIR)../../src/test/regress/pg_regress" \
	TESTDIR="$(CURDIR)/tests" TOP="$(CURDIR)" \
	VECTORS="$(CURDIR)/tests/vectors" \
	prove -I "$(PGXS_DIR)../../src/test/perl" -I tests/t $(PROVE_FLAGS) \
		$(if $(PROVE_TESTS),$(PROVE_TESTS),tests/t/*.pl)

demo-local: all
	@PATH="$(CURDIR)/bin:$(PG_BINDIR):$$PATH" sh scripts/demo.sh

bench-local: all
	@PATH="$(CURDIR)/bin:$(PG_BINDIR):$$PATH" BENCH_SCALE=$(BENCH_SCALE) \
		sh scripts/bench.sh

asan:
	$(MAKE) O=build-asan/ OPT="-O1 -g -fno-omit-frame-pointer" \
		SAN="-fsanitize=address,undefined -fno-sanitize-recover=all" \
		LDFLAGS="-fsanitize=address,undefined" unit

valgrind: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do \
		echo "== valgrind $$t"; \
		CK_FORK=no VECTORS=$(CURDIR)/tests/vectors TOP=$(CURDIR) \
		valgrind -q --error-exitcode=1 --leak-check=full \
			--errors-for-leak-kinds=definite $$t; \
	done

# clang-analyzer's insecureAPI check flags every memcpy/memset (it wants
# Annex K's _s functions, which glibc does not have): left out.
TIDY = clang-tidy --quiet \
	-checks=-clang-analyzer-security.insecureAPI.DeprecatedOrUnsafeBufferHandling

lint:
	$(TIDY) $(filter-out lib/checksum.c,$(LIB_SRC)) bin/*.c -- $(ALL_CFLAGS)
	$(TIDY) lib/checksum.c -- $(ALL_CFLAGS) -isystem $(PG_INCLUDE_SERVER) \
		-isystem $(PG_INCLUDE)/internal
	cppcheck --quiet --error-exitcode=1 --enable=warning,portability,performance \
		--std=c11 -I. --suppress=missingIncludeSystem lib bin

# ---- install ----

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(SHAREDIR)
	install -m 0755 $(TOOL_BIN) $(DESTDIR)$(BINDIR)/
	install -m 0644 $(MANPAGES) $(DESTDIR)$(MANDIR)/man1/
	install -m 0755 $(SAMPLES) $(DESTDIR)$(SHAREDIR)/
	install -m 0644 share/README $(DESTDIR)$(SHAREDIR)/

uninstall:
	rm -f $(TOOLS:%=$(DESTDIR)$(BINDIR)/%) $(TOOLS:%=$(DESTDIR)$(MANDIR)/man1/%.1)
	rm -f $(SAMPLES:share/%=$(DESTDIR)$(SHAREDIR)/%) $(DESTDIR)$(SHAREDIR)/README
	-rmdir $(DESTDIR)$(SHAREDIR)

clean:
	rm -f lib/*.o $(LIBA) lib/libpgcrypttools.a bin/*.o $(TOOLS:%=bin/%) \
		$(UNIT_SRC:%.c=%) $(TEST_TOOLS)
	rm -rf build-asan tests/tmp_check tests/t/tmp_check
