/* tests/fuzz/harness.h - what the libFuzzer harnesses share: the real proxy started in-process on
 * a topology, and one client exchange with it over loopback. */
#ifndef TESTS_FUZZ_HARNESS_H
#define TESTS_FUZZ_HARNESS_H

#include <stddef.h>
#include <stdint.h>

/* Starts one proxy worker on <topology_json> (the store's import format), with the GeoLite2 City
 * database, a temporary SQLite store, 127.0.0.0/8 trusted and the <n_settings> key/value pairs of
 * <settings> (proxy_config_set() keys) over the defaults. Aborts on any failure: a harness that
 * cannot start has nothing to fuzz. Everything stays up until the process exits. */
struct proxy *fuzz_proxy_start(const char *topology_json, const char *const settings[][2],
                               size_t n_settings);

/* Sends <data> to 127.0.0.1:<port> on a fresh connection (which closes with a reset), half-closes
 * when <half_close>, and reads until the proxy closes or 2 s pass without a byte. Returns how
 * many of the bytes read it kept in <got>: the first <got_cap> (0: none, <got> may be NULL). */
size_t fuzz_client_exchange(int port, const uint8_t *data, size_t size, int half_close,
                            uint8_t *got, size_t got_cap);

#endif
