# frontdesk - one non-recursive Makefile.  Output goes to build/.
#   make            build the daemon and the plugins
#   make run        install missing packages, build, run with config.example.ini
#   make test       install missing packages, build, run every test
#   make asan       the test suite under AddressSanitizer + UBSan
#   make deps       install missing Debian packages (root), or print the line
#   make install    PREFIX=/usr/local
#   V=1             print the commands

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
	$(Q)$(CC) $(LDFLAGS) -rdynamic -o $@ $^ $(PKG_LIBS) -lanl -ldl -lm

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
	$(Q)$(CC) $(CFLAGS) $(PKG_CFLAGS) -Itests/unit -o $@ $< $(CORE_OBJ) $(LDFLAGS) $(PKG_LIBS) -lanl -ldl -lm

$(BUILD)/tools/%: tests/tools/%.c
	@mkdir -p $(@D)
	@$(if $(Q),echo "  TOOL    $@")
	$(Q)$(CC) $(CFLAGS) $(PKG_CFLAGS) -o $@ $< $(LDFLAGS) $(PKG_LIBS) -lm

tests-bin: all $(UNIT_BIN) $(TOOL_BIN) $(TEST_PLUGIN_SO)
.PHONY: tests-bin

run: deps all
	./$(BUILD)/frontdesk run -c config.example.ini

test: deps
	$(Q)$(MAKE) --no-print-directory tests-bin
	$(Q)BUILD=$(BUILD) tests/run

# The suite again with AddressSanitizer + UBSan, in its own build folder.
asan: deps
	$(Q)$(MAKE) --no-print-directory BUILD=build/asan SANITIZE=address,undefined OPTFLAGS="-O1 -g" tests-bin
	$(Q)BUILD=build/asan ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 tests/run

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
