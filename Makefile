# Makefile - builds gslbd and gslbctl, runs the tests, fetches the demo/test geo data.
#
#   make deps       install Debian packages and fetch the GeoLite2 demo data (idempotent)
#   make            build build/gslbd and build/gslbctl
#   make test       build and run every test; ends with "N passed, N failed"
#   make test-asan  the same under AddressSanitizer and UBSan, in build/asan
#   make check      deps, format check, test and test-asan: what CI runs
#   make bench      decision benchmark against the GeoLite2 City database
#   make demo       build and run gslbd on its embedded demo topology

BUILD  ?= build
WARN    = -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wold-style-definition \
          -Wpointer-arith -Wcast-qual -Wwrite-strings -Wformat=2 -Wundef -Wvla -Wnull-dereference \
          -Wimplicit-fallthrough
WERROR ?= -Werror
# Unless CFLAGS is given (the sanitizer and fuzz builds give theirs): -O3, and gslbd linked with
# link-time optimisation, which inlines across modules and into llhttp's callbacks (together
# about 14% fewer instructions per proxied request than -O2). The objects carry their plain code
# too (fat), so the test programs link them without it.
ifeq ($(origin CFLAGS),undefined)
CFLAGS  = -O3 -g
LTO    ?= -flto=auto -ffat-lto-objects
endif
PKGS    = libmaxminddb sqlite3 jansson libevent libevent_openssl openssl
PKGS   += libmicrohttpd libcrypto
# llhttp: the C sources Debian's node-llhttp ships, compiled in (never with our -Werror), in
# strict mode: without it llhttp 8 takes any two bytes after a chunk's data, and a CR followed by
# any byte, for a CRLF, which lets a request be smuggled past a parser that reads them as sent.
LLHTTP_DIR ?= /usr/share/llhttp
LLHTTP_INC ?= /usr/share/include/llhttp
LLHTTP_DEFS = -DLLHTTP_STRICT_MODE=1
DEP_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
DEP_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread -lm
TEST_LIBS  := $(shell pkg-config --libs cmocka 2>/dev/null)
ALL_CFLAGS  = -std=c11 -D_GNU_SOURCE -I. -I$(LLHTTP_INC) $(LLHTTP_DEFS) $(WARN) $(WERROR) $(DEP_CFLAGS) $(CPPFLAGS) $(CFLAGS) -MMD -MP
SAN     = -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all

MODULES  = common geo db gslb proxy demo admin
LIB_SRC  = $(foreach m,$(MODULES),$(wildcard $(m)/*.c))
LLHTTP_OBJ = $(BUILD)/llhttp/llhttp.o $(BUILD)/llhttp/api.o $(BUILD)/llhttp/http.o
LIB_OBJ  = $(LIB_SRC:%.c=$(BUILD)/%.o) $(LLHTTP_OBJ) $(BUILD)/admin/assets.o
LIB      = $(BUILD)/libgslb.a
TEST_SRC = $(wildcard tests/*/test_*.c)
TESTS    = $(TEST_SRC:%.c=$(BUILD)/%)
TEST_HELPERS = $(BUILD)/tests/proxy/origin
PROGRAMS = $(BUILD)/gslbd $(BUILD)/gslbctl

.PHONY: all deps geodata test test-asan check format format-check bench demo clean fuzz fuzz-smoke FORCE
all: $(PROGRAMS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LTO) -c -o $@ $<

$(BUILD)/llhttp/%.o: $(LLHTTP_DIR)/%.c Makefile
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -I$(LLHTTP_INC) $(LLHTTP_DEFS) $(CPPFLAGS) $(CFLAGS) $(LTO) -w -c -o $@ $<

# The admin console's static files, compiled in by tools/embed as admin_assets[] (admin_int.h).
# assets.list holds the file list and changes only when it does, so adding or removing a file
# regenerates assets.c as surely as editing one.
CONSOLE_FILES = $(sort $(wildcard admin/console/*.html admin/console/*.css admin/console/*.js \
                admin/console/*.svg admin/console/*.png admin/console/*.ico))
EMBED_ARGS = $(foreach f,$(CONSOLE_FILES),$(f)=/$(notdir $(f))) \
             $(foreach f,$(wildcard admin/openapi.json),$(f)=/openapi.json)
$(BUILD)/tools/embed: tools/embed.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $<

$(BUILD)/admin/assets.list: FORCE
	@mkdir -p $(dir $@)
	@echo '$(EMBED_ARGS)' | cmp -s - $@ || echo '$(EMBED_ARGS)' >$@

$(BUILD)/admin/assets.c: $(BUILD)/tools/embed $(BUILD)/admin/assets.list $(CONSOLE_FILES) \
                         $(wildcard admin/openapi.json)
	$(BUILD)/tools/embed $@ $(EMBED_ARGS)

$(BUILD)/admin/assets.o: $(BUILD)/admin/assets.c
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(LIB): $(LIB_OBJ)
	$(AR) rcs $@ $^

$(BUILD)/gslbd: $(BUILD)/main.o $(LIB)
	$(CC) $(CFLAGS) $(LTO) $(LDFLAGS) -o $@ $^ $(DEP_LIBS)

$(BUILD)/gslbctl: $(BUILD)/tools/gslbctl.o $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(DEP_LIBS)

# The proxy and health tests share a harness (processes, a raw HTTP client).
# The admin API tests start gslbd the same way.
PROXY_TESTS = $(filter $(BUILD)/tests/proxy/% $(BUILD)/tests/admin/%,$(TESTS))
$(filter-out $(PROXY_TESTS),$(TESTS)): $(BUILD)/tests/%: $(BUILD)/tests/%.o $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(TEST_LIBS) $(DEP_LIBS)

$(PROXY_TESTS): $(BUILD)/tests/%: $(BUILD)/tests/%.o $(BUILD)/tests/proxy/harness.o $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(TEST_LIBS) $(DEP_LIBS)

$(BUILD)/bench/%: $(BUILD)/bench/%.o $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(DEP_LIBS)

deps:
	tools/deps.sh
	tools/fetch-geoip.sh data/geoip

geodata:
	tools/fetch-geoip.sh data/geoip

$(BUILD)/tests/proxy/origin: tests/proxy/origin.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< -lpthread

test: $(PROGRAMS) $(TESTS) $(TEST_HELPERS)
	tools/run-tests.sh $(BUILD)

test-asan:
	$(MAKE) BUILD=$(BUILD)/asan CFLAGS="$(SAN)" LDFLAGS="$(SAN)" test

check: deps
	$(MAKE) format-check
	$(MAKE) test
	$(MAKE) fuzz-smoke
	$(MAKE) test-asan

# libFuzzer over the proxy's request and response paths (clang; everything rebuilt with coverage
# in build/fuzz). `make fuzz` runs each harness for FUZZ_TIME seconds.
FUZZ_FLAGS = -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined \
             -fno-sanitize-recover=all
FUZZ_TIME ?= 600
FUZZERS = request response
$(BUILD)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/harness.c tests/fuzz/harness.h FORCE
	$(MAKE) BUILD=$(BUILD)/fuzz CC=clang CFLAGS="$(FUZZ_FLAGS)" WERROR= $(BUILD)/fuzz/libgslb.a
	clang $(ALL_CFLAGS) -Wno-unused-command-line-argument $(FUZZ_FLAGS) -fsanitize=fuzzer -o $@ \
		$< tests/fuzz/harness.c $(BUILD)/fuzz/libgslb.a $(DEP_LIBS)

fuzz: $(FUZZERS:%=$(BUILD)/fuzz/fuzz_%)
	set -e; for f in $(FUZZERS); do \
		mkdir -p $(BUILD)/fuzz/corpus/$$f; \
		$(BUILD)/fuzz/fuzz_$$f -max_total_time=$(FUZZ_TIME) -timeout=10 -rss_limit_mb=4096 \
			-artifact_prefix=$(BUILD)/fuzz/ \
			$(BUILD)/fuzz/corpus/$$f tests/fuzz/corpus/$$f; \
	done

fuzz-smoke:
	$(MAKE) fuzz FUZZ_TIME=30 BUILD=$(BUILD)

FORMAT_SRC = $(shell git ls-files '*.c' '*.h' 2>/dev/null)
format:
	clang-format -i $(FORMAT_SRC)
format-check:
	@clang-format --dry-run --Werror $(FORMAT_SRC) && echo "format: ok"

bench: $(BUILD)/bench/bench_decide $(BUILD)/gslbctl
	bench/decide.sh $(BUILD)

demo: deps
	$(MAKE) all
	$(BUILD)/gslbd --demo

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
-include bench/bench.mk
