# frontdesk - one non-recursive Makefile.  Output goes to build/.
#   make            build the daemon and the plugins
#   make run        install missing packages, build, run with config.example.ini
#   make test       install missing packages, build, run every test
#   make asan       the test suite under AddressSanitizer + UBSan
#   make deps       install missing Debian packages (root), or print the line
#   make install    PREFIX=/usr/local
#   V=1             print the commands
#   MALLOC=libc     link the daemon without jemalloc

PKGS      := libwebsockets libcurl libcjson lua5.4 sqlite3 openssl inih
CC        ?= cc
BUILD     ?= build
PREFIX    ?= /usr/local
SANITIZE  ?=

ifeq ($(V),1)
Q :=
else
Q := @
endif

WARN    := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
           -Wformat=2 -Wno-format-nonliteral -Werror
OPTFLAGS ?= -O2 -g
override CFLAGS += $(OPTFLAGS) -std=c11 -D_GNU_SOURCE $(WARN) -MMD -MP -Icore
ifneq ($(SANITIZE),)
override CFLAGS += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=$(SANITIZE)
endif

PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)

# The daemon runs on jemalloc: in make bench glibc's malloc took ~12 % of the
# daemon's CPU, much of it consolidating fast bins each time lws allocates a
# request's 8 KB header table; with jemalloc a message took ~9 % less CPU
# (median of 8 interleaved runs).  Sanitizer builds keep their own allocator.
MALLOC ?= jemalloc
MALLOC_LIBS := $(if $(SANITIZE),,$(if $(filter jemalloc,$(MALLOC)),-ljemalloc))

CORE_SRC  := $(filter-out core/main.c,$(wildcard core/*.c))
CORE_OBJ  := $(CORE_SRC:%.c=$(BUILD)/%.o)
MAIN_OBJ  := $(BUILD)/core/main.o
PLUGINS   := $(sort $(patsubst plugins/%/,%,$(dir $(wildcard plugins/*/*.c))))
PLUGIN_SO := $(PLUGINS:%=$(BUILD)/plugins/%.so)
UNIT_SRC  := $(wildcard tests/unit/test_*.c)
UNIT_BIN  := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
TEST_PLUGINS := $(sort $(patsubst tests/plugins/%/,%,$(dir $(wildcard tests/plugins/*/*.c))))
TEST_PLUGIN_SO := $(TEST_PLUGINS:%=$(BUILD)/tests/plugins/%.so)
TOOL_SRC  := $(wildcard tests/tools/*.c)
TOOL_BIN  := $(TOOL_SRC:tests/tools/%.c=$(BUILD)/tools/%)

.PHONY: all run test asan deps install clean check-deps bench fuzz
all: $(BUILD)/frontdesk $(PLUGIN_SO)

$(BUILD)/frontdesk: $(MAIN_OBJ) $(CORE_OBJ)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -rdynamic -o $@ $^ $(MALLOC_LIBS) $(PKG_LIBS) -ldl -lm -pthread

$(BUILD)/core/%.o: core/%.c
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) $(CFLAGS) $(PKG_CFLAGS) -c -o $@ $<

# Plugins: one folder each, linked only against libraries, never the core.
.SECONDEXPANSION:
$(BUILD)/plugins/%.so: $$(wildcard plugins/$$*/*.c plugins/$$*/*.h plugins/$$*/*.html plugins/$$*/*.js plugins/$$*/*.css plugins/*.h) core/plugin_api.h
	@mkdir -p $(@D)
	@$(if $(Q),echo "  PLUGIN  $@")
	$(Q)$(CC) $(CFLAGS) $(PKG_CFLAGS) -fPIC -shared -fvisibility=hidden \
	    -Iplugins/$* -Iplugins -MF $(BUILD)/plugins/$*.d -o $@ $(filter %.c,$^) $(LDFLAGS) $(PKG_LIBS)

$(BUILD)/tests/plugins/%.so: $$(wildcard tests/plugins/$$*/*.c) core/plugin_api.h
	@mkdir -p $(@D)
	@$(if $(Q),echo "  PLUGIN  $@")
	$(Q)$(CC) $(CFLAGS) $(PKG_CFLAGS) -fPIC -shared -fvisibility=hidden \
	    -MF $(BUILD)/tests/plugins/$*.d -o $@ $(filter %.c,$^) $(LDFLAGS) $(PKG_LIBS)

$(BUILD)/tests/%: tests/unit/%.c $(CORE_OBJ)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  TEST    $@")
	$(Q)$(CC) $(CFLAGS) $(PKG_CFLAGS) -Itests/unit -o $@ $< $(CORE_OBJ) $(LDFLAGS) $(PKG_LIBS) -ldl -lm -pthread

$(BUILD)/tools/%: tests/tools/%.c
	@mkdir -p $(@D)
	@$(if $(Q),echo "  TOOL    $@")
	$(Q)$(CC) $(CFLAGS) $(PKG_CFLAGS) -o $@ $< $(LDFLAGS) $(PKG_LIBS) -lm

tests-bin: all $(UNIT_BIN) $(TOOL_BIN) $(TEST_PLUGIN_SO)
.PHONY: tests-bin

run: deps all
	./$(BUILD)/frontdesk run -c config.example.ini

# Under CI (CI=true) the suite runs twice: as built, and with AddressSanitizer
# + UBSan; the last line sums both.
ASAN_BUILD := build/asan
ASAN_ENV   := ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=0 \
              UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 FRONTDESK_KEEP_PLUGINS=1
TEST_SUITES := $(BUILD)$(if $(filter true 1 yes,$(CI)), $(ASAN_BUILD))

test: deps
	$(Q)$(MAKE) --no-print-directory tests-bin
	$(if $(filter true 1 yes,$(CI)),$(Q)$(MAKE) --no-print-directory asan-bin)
	$(Q)SUITES="$(TEST_SUITES)" $(ASAN_ENV) tests/run

# The whole suite with AddressSanitizer + UBSan, in its own build folder.
asan: deps asan-bin
	$(Q)SUITES=$(ASAN_BUILD) $(ASAN_ENV) tests/run

asan-bin:
	$(Q)$(MAKE) --no-print-directory BUILD=$(ASAN_BUILD) SANITIZE=address,undefined OPTFLAGS="-O1 -g" tests-bin
.PHONY: asan-bin

deps:
	$(Q)tools/deps.sh

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/frontdesk/plugins \
	    $(DESTDIR)$(PREFIX)/include/frontdesk $(DESTDIR)$(PREFIX)/share/frontdesk/scripts/lib
	install -m 755 $(BUILD)/frontdesk $(DESTDIR)$(PREFIX)/bin/frontdesk
	install -m 644 $(PLUGIN_SO) $(DESTDIR)$(PREFIX)/lib/frontdesk/plugins/
	install -m 644 core/plugin_api.h $(DESTDIR)$(PREFIX)/include/frontdesk/plugin_api.h
	install -m 644 scripts/*.lua $(DESTDIR)$(PREFIX)/share/frontdesk/scripts/
	-install -m 644 scripts/lib/*.lua $(DESTDIR)$(PREFIX)/share/frontdesk/scripts/lib/

clean:
	rm -rf $(BUILD) build

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

# ---- fuzzing (clang's libFuzzer) -------------------------------------------
# make fuzz                      build every target and run each FUZZ_SECONDS
# make fuzz FUZZ_SECONDS=600     longer
# Seeds live in tests/fuzz/corpus/<target>/, the growing corpus in
# build/fuzz/corpus/<target>/, crashes in build/fuzz/crashes/.  A crash, once
# fixed, is kept in tests/fuzz/regress/<target>/, which every run replays
# first.
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_DIR     := build/fuzz
FUZZ_FLAGS   := -g -O1 -std=c11 -D_GNU_SOURCE -Icore -fsanitize=fuzzer,address,undefined \
                -fno-sanitize-recover=undefined $(PKG_CFLAGS)
FUZZ_CORE    := core/config.c core/log.c core/text.c core/faq.c core/script.c core/fdlib.c
FUZZ_TARGETS := config text script $(PLUGINS:%=plugin_%) plugin_slack_socket
FUZZ_BIN     := $(FUZZ_TARGETS:%=$(FUZZ_DIR)/fuzz_%)

# A gateway plugin's target replays tests/fuzz/prelude/<plugin>/ (start-up and
# handshake) before every input, so the inputs reach its event parser.
$(FUZZ_DIR)/fuzz_plugin_%: tests/fuzz/fuzz_plugin.c $$(wildcard plugins/$$*/*.c plugins/$$*/*.h plugins/*.h tests/fuzz/prelude/$$*/*) core/plugin_api.h
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_FLAGS) -Iplugins/$* -Iplugins \
	    $(if $(wildcard tests/fuzz/prelude/$*),-DFUZZ_PRELUDE='"tests/fuzz/prelude/$*"') \
	    -o $@ tests/fuzz/fuzz_plugin.c $(wildcard plugins/$*/*.c) $(PKG_LIBS) -lm

# Slack's second target: Socket Mode (the one above fuzzes the Events API).
$(FUZZ_DIR)/fuzz_plugin_slack_socket: tests/fuzz/fuzz_plugin.c $(wildcard plugins/slack/*.c plugins/slack/*.h plugins/*.h tests/fuzz/prelude/slack_socket/*) core/plugin_api.h
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_FLAGS) -Iplugins/slack -Iplugins -DFUZZ_MODE='"socket"' \
	    -DFUZZ_PRELUDE='"tests/fuzz/prelude/slack_socket"' \
	    -o $@ tests/fuzz/fuzz_plugin.c $(wildcard plugins/slack/*.c) $(PKG_LIBS) -lm

$(FUZZ_DIR)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_CORE) $(wildcard core/*.h)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $< $(FUZZ_CORE) $(PKG_LIBS) -lm

fuzz-build: deps
	$(Q)$(MAKE) --no-print-directory $(FUZZ_BIN)

fuzz: fuzz-build
	$(Q)tests/fuzz/run $(FUZZ_SECONDS) $(FUZZ_TARGETS)
.PHONY: fuzz-build

# ---- benchmark --------------------------------------------------------------
bench: deps all
	$(Q)mkdir -p $(BUILD)/bench
	$(Q)$(CC) -O2 -g -std=c11 -D_GNU_SOURCE $(WARN) -o $(BUILD)/bench/fdbench tests/bench/fdbench.c
	$(Q)$(CC) -O2 -g -std=c11 -D_GNU_SOURCE $(WARN) $(PKG_CFLAGS) -o $(BUILD)/bench/bare tests/bench/bare.c $(PKG_LIBS)
	$(Q)BUILD=$(BUILD) tests/bench/run.py
