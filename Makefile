# HStore - one non-recursive Makefile.
#
#   make            build libraries and binaries under build/
#   make test       unit tests, the spin model, short fuzzing, then bats (TAP)
#   make deps       install missing Debian packages (root) or print the line
#   make run        build and run the embedded store in the foreground
#   make bench      run the benchmarks in bench/
#   make install PREFIX=/usr/local DESTDIR=
#   make man        regenerate docs/man*/ pages from their scdoc sources

VERSION := 0.1.0
PREFIX ?= /usr/local
DESTDIR ?=
B := build

CC ?= cc
CFLAGS ?= -O2 -g
WARN := -Wall -Wextra -Werror -Wno-unused-parameter -Wshadow -Wstrict-prototypes
CPPFLAGS += -D_GNU_SOURCE -DHS_VERSION='"$(VERSION)"' -Ilibcore -Ilibpaxos -Ilibtier
ALL_CFLAGS = -std=gnu11 $(WARN) $(CFLAGS) -MMD -MP -pthread

ROCKSDB_LIBS := -lrocksdb
CURL_LIBS := -lcurl
SODIUM_LIBS := -lsodium

# The Debian packages the build and tests need are listed in ./bootstrap
# (it must run before make exists); `make deps` calls it.

LIBCORE_SRC := $(wildcard libcore/*.c)
LIBPAXOS_SRC := $(wildcard libpaxos/*.c)
LIBTIER_SRC := $(wildcard libtier/*.c)
CMD_SRC := $(wildcard cmd/hs-*.c)
TOOL_SRC := $(wildcard test/tools/*.c)
UNIT_SRC := $(wildcard test/unit/t_*.c)
BENCH_SRC := $(wildcard bench/*.c)

obj = $(patsubst %.c,$(B)/obj/%.o,$(1))

LIBCORE := $(B)/libcore.a
LIBPAXOS := $(B)/libpaxos.a
LIBTIER := $(B)/libtier.a
BINS := $(patsubst cmd/%.c,$(B)/bin/%,$(CMD_SRC))
TOOLS := $(patsubst test/tools/%.c,$(B)/test/%,$(TOOL_SRC))
UNITS := $(patsubst test/unit/%.c,$(B)/test/%,$(UNIT_SRC))
BENCHES := $(patsubst bench/%.c,$(B)/bench/%,$(BENCH_SRC))

# Which binaries need which outside libraries.  Clients link libcore only.
LIBS_hs-peer := $(ROCKSDB_LIBS)
LIBS_hs-serve := $(CURL_LIBS) $(SODIUM_LIBS)
LIBS_hs-offload := $(CURL_LIBS) $(SODIUM_LIBS)

.SECONDARY:

.PHONY: all test unit bats model fuzz deps run bench install man clean check-deps
all: $(BINS) $(TOOLS)

$(B)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -c -o $@ $<

$(LIBCORE): $(call obj,$(LIBCORE_SRC))
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^
$(LIBPAXOS): $(call obj,$(LIBPAXOS_SRC))
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^
$(LIBTIER): $(call obj,$(LIBTIER_SRC))
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(B)/bin/%: $(B)/obj/cmd/%.o $(LIBPAXOS) $(LIBTIER) $(LIBCORE)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(LIBPAXOS) $(LIBTIER) $(LIBCORE) $(LIBS_$*) -lm

# Test tools, unit tests and benchmarks may use any part of the project.
ALL_LIBS := $(ROCKSDB_LIBS) $(CURL_LIBS) $(SODIUM_LIBS) -lm
$(B)/test/%: $(B)/obj/test/tools/%.o $(LIBPAXOS) $(LIBTIER) $(LIBCORE)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(LIBPAXOS) $(LIBTIER) $(LIBCORE) $(ALL_LIBS)
$(B)/test/t_%: $(B)/obj/test/unit/t_%.o $(LIBPAXOS) $(LIBTIER) $(LIBCORE)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(LIBPAXOS) $(LIBTIER) $(LIBCORE) $(ALL_LIBS)
$(B)/bench/%: $(B)/obj/bench/%.o $(LIBPAXOS) $(LIBTIER) $(LIBCORE)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(LIBPAXOS) $(LIBTIER) $(LIBCORE) $(ALL_LIBS)

# --- set-up ---------------------------------------------------------------
deps:
	@./bootstrap deps

# --- tests ----------------------------------------------------------------
# TAP on stdout; the exit status is non-zero if any test failed.
BATS_JOBS ?= 2
test: all $(UNITS)
	@./test/run-tests $(B)

unit: $(UNITS)
	@./test/run-tests $(B) unit

bats: all
	@./test/run-tests $(B) bats

model:
	@./test/run-tests $(B) model

fuzz:
	@./test/run-tests $(B) fuzz

# --- running --------------------------------------------------------------
# The embedded store: hs-serve with no arguments keeps its data under
# $XDG_DATA_HOME/hs, spawns its own hs-peer, and listens on the per-user
# socket every client finds by default.
run: all
	$(B)/bin/hs-serve -v

bench: all $(BENCHES)
	./bench/run $(B)

# --- docs -----------------------------------------------------------------
MAN_SRC := $(wildcard docs/man*/*.scd)
man: $(MAN_SRC:.scd=)
docs/%: docs/%.scd
	scdoc < $< > $@

# --- install --------------------------------------------------------------
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 \
		$(DESTDIR)$(PREFIX)/share/man/man5 $(DESTDIR)$(PREFIX)/share/man/man7 \
		$(DESTDIR)$(PREFIX)/share/bash-completion/completions
	install -m 755 $(BINS) $(DESTDIR)$(PREFIX)/bin/
	install -m 644 $(wildcard docs/man1/*.1) $(DESTDIR)$(PREFIX)/share/man/man1/
	$(if $(wildcard docs/man5/*.5),install -m 644 $(wildcard docs/man5/*.5) $(DESTDIR)$(PREFIX)/share/man/man5/)
	$(if $(wildcard docs/man7/*.7),install -m 644 $(wildcard docs/man7/*.7) $(DESTDIR)$(PREFIX)/share/man/man7/)
	for f in completions/hs-*; do \
		install -m 644 $$f $(DESTDIR)$(PREFIX)/share/bash-completion/completions/; done

clean:
	rm -rf $(B)

-include $(shell find $(B)/obj -name '*.d' 2>/dev/null)
