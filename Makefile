# provfs - build, check, install, demo, bench.
#
#   make                 build ./provfs (warnings are errors in CI: -Werror via WERROR=1)
#   make check           unit tests + integration tests, all under ASan+UBSan
#   make unit            unit tests only (sanitized)
#   make install PREFIX=/usr/local
#   make demo            scripts/demo
#   make bench           scripts/bench-fs (see README for figures)
#   make fuzz-policy     fuzz the policy loader for FUZZ_TIME=60 s (clang, libFuzzer)
#
# Sources are found by wildcard: a new .c file in a module directory is built
# without editing this file.  cli/main.c holds main(); everything else goes
# into libprovfs.a, which the unit tests link against.

CC      ?= gcc
PREFIX  ?= /usr/local
PKGS    := fuse3 yaml-0.1 libzstd libcrypto liburing
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -llmdb -lpthread

WARN    := -Wall -Wextra -Wshadow -Wno-unused-parameter -Wformat=2
CFLAGS  ?= -O2 -g
ifeq ($(WERROR),1)
WARN    += -Werror
endif
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -I. $(PKG_CFLAGS) $(WARN) $(CFLAGS) -MMD -MP

SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

MODULES := common store policies fs cli
LIB_SRC := $(filter-out cli/main.c,$(foreach m,$(MODULES),$(wildcard $(m)/*.c)))
UNIT_SRC := $(wildcard tests/unit/test_*.c)

# Two build trees: build/rel (the installed binary) and build/san (tests).
REL := build/rel
SAN := build/san

rel_obj = $(patsubst %.c,$(REL)/%.o,$(1))
san_obj = $(patsubst %.c,$(SAN)/%.o,$(1))

.PHONY: all check unit integration install clean demo bench fuzz
all: provfs

# Copy then rename: replaces the binary even while a daemon runs it.
provfs: $(REL)/provfs
	cp $< $@.tmp && mv -f $@.tmp $@

$(REL)/libprovfs.a: $(call rel_obj,$(LIB_SRC))
	@mkdir -p $(@D); rm -f $@; ar rcs $@ $^
$(SAN)/libprovfs.a: $(call san_obj,$(LIB_SRC))
	@mkdir -p $(@D); rm -f $@; ar rcs $@ $^

$(REL)/provfs: $(REL)/cli/main.o $(REL)/libprovfs.a
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(PKG_LIBS)
$(SAN)/provfs: $(SAN)/cli/main.o $(SAN)/libprovfs.a
	$(CC) $(ALL_CFLAGS) $(SAN_FLAGS) -o $@ $^ $(PKG_LIBS)

$(REL)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<
$(SAN)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(SAN_FLAGS) -c -o $@ $<

# Each tests/unit/test_X.c is one cmocka suite binary.
UNIT_BIN := $(patsubst tests/unit/%.c,$(SAN)/tests/%,$(UNIT_SRC))
$(SAN)/tests/%: $(SAN)/tests/unit/%.o $(SAN)/libprovfs.a
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(SAN_FLAGS) -o $@ $^ $(PKG_LIBS) -lcmocka

unit: $(UNIT_BIN) $(SAN)/provfs
check: $(UNIT_BIN) $(SAN)/provfs provfs
	PROVFS=$(CURDIR)/$(SAN)/provfs UNIT_DIR=$(CURDIR)/$(SAN)/tests tests/run

# The content-store benchmark driver (scripts/bench-store).
$(REL)/bench-store: $(REL)/tests/bench/bench_store.o $(REL)/libprovfs.a
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(PKG_LIBS)

install: provfs
	install -D -m 0755 provfs $(DESTDIR)$(PREFIX)/bin/provfs
	install -D -m 0644 man/provfs.1 $(DESTDIR)$(PREFIX)/share/man/man1/provfs.1
	for p in man/*.5; do [ -e "$$p" ] && install -D -m 0644 $$p $(DESTDIR)$(PREFIX)/share/man/man5/$$(basename $$p); done; true
	for p in man/*.7; do [ -e "$$p" ] && install -D -m 0644 $$p $(DESTDIR)$(PREFIX)/share/man/man7/$$(basename $$p); done; true

demo: provfs
	scripts/demo

bench: provfs
	scripts/bench-fs

clean:
	rm -rf build provfs

-include $(shell find build -name '*.d' 2>/dev/null)

# policies/default.c embeds policies/default.yaml with .incbin.
$(REL)/policies/default.o $(SAN)/policies/default.o: policies/default.yaml

# Fuzz the policy loader with libFuzzer for FUZZ_TIME seconds (not part of
# check).  New inputs go to build/fuzz/; tests/fuzz/corpus/policy is the seed.
FUZZ_TIME ?= 60
FUZZ_POL_SRC := tests/fuzz/fuzz_policy.c common/err.c $(wildcard policies/*.c)
.PHONY: fuzz-policy
build/fuzz/fuzz_policy: $(FUZZ_POL_SRC) policies/default.yaml
	@mkdir -p $(@D)
	clang -std=c11 -D_GNU_SOURCE -I. -g -O1 -fsanitize=fuzzer,address,undefined \
	    -fno-sanitize-recover=undefined -o $@ $(FUZZ_POL_SRC) $(shell pkg-config --libs yaml-0.1 libcrypto)
fuzz-policy: build/fuzz/fuzz_policy
	@mkdir -p build/fuzz/corpus-policy
	$< -max_total_time=$(FUZZ_TIME) -timeout=10 -rss_limit_mb=2048 \
	    -dict=tests/fuzz/policy.dict build/fuzz/corpus-policy tests/fuzz/corpus/policy
