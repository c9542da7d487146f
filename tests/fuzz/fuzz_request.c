/* tests/fuzz/fuzz_request.c - libFuzzer harness over the whole request path of the edge proxy.
 *
 * The real proxy runs in this process (one worker, demo origins, the GeoLite2 City database, a
 * temporary SQLite store); each input is sent as-is by a client on a fresh loopback connection,
 * which then half-closes and reads until the proxy is done with it. An input that starts like a
 * PROXY protocol header ("PROX" for version 1, "\r\n\r\n" for the start of version 2's signature)
 * goes to a listener that expects one, so the header parser is fuzzed too. Whatever the bytes,
 * the proxy must answer or close without a crash, a sanitizer report or a hang (the read is
 * bounded by a 2 s timeout, and a hang shows as a libFuzzer timeout). Built and run by
 * `make fuzz` (long) and `make fuzz-smoke` (a short run, part of `make check`). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "demo/demo.h"
#include "proxy/proxy.h"
#include "tests/fuzz/harness.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int plain_port, proxy_protocol_port;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char err[512];
    struct demo *demo = demo_start(err, sizeof(err));
    if (demo == NULL) {
        fprintf(stderr, "fuzz: %s\n", err);
        abort();
    }
    static const char *const settings[][2] = {
        {"listen", "127.0.0.1:0"},
        {"listen-proxy-protocol", "127.0.0.1:0"},
        {"max-body-size", "64k"},
        {"response-header-timeout", "1s"},
    };
    struct proxy *proxy =
        fuzz_proxy_start(demo_topology(demo), settings, sizeof(settings) / sizeof(settings[0]));
    plain_port = proxy_listen_port(proxy, 0);
    proxy_protocol_port = proxy_listen_port(proxy, 1);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bool proxy_header =
        size >= 4 && (memcmp(data, "PROX", 4) == 0 || memcmp(data, "\r\n\r\n", 4) == 0);
    fuzz_client_exchange(proxy_header ? proxy_protocol_port : plain_port, data, size, 1);
    return 0;
}
