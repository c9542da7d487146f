/* bench/bench_decide.c - how fast is a routing decision? Reports, for random public IPv4 and IPv6
 * addresses against the GeoLite2 City database and a 12-region topology: geo lookups per second,
 * decisions per second (region order plus origin pick), and both together, with ns per operation.
 * A benchmark, not a test: it asserts nothing and is run by `make bench`.
 *
 * usage: bench_decide CITY.mmdb [N] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "db/db.h"
#include "geo/geo.h"
#include "gslb/gslb.h"

static const char topology[] =
    "{\"regions\": ["
    "{\"name\":\"eu-west\",\"lat\":53.35,\"lon\":-6.26,\"origins\":[{\"address\":\"10.0.1.1:80\"},"
    "{\"address\":\"10.0.1.2:80\",\"weight\":3}]},"
    "{\"name\":\"eu-central\",\"lat\":50.11,\"lon\":8.68,\"origins\":[{\"address\":\"10.0.2.1:80\"}"
    "]},"
    "{\"name\":\"us-east\",\"lat\":39.04,\"lon\":-77.49,\"origins\":[{\"address\":\"10.0.3.1:80\"},"
    "{\"address\":\"10.0.3.2:80\"}]},"
    "{\"name\":\"us-west\",\"lat\":45.6,\"lon\":-121.2,\"origins\":[{\"address\":\"10.0.4.1:80\"}]}"
    ","
    "{\"name\":\"sa-east\",\"lat\":-23.55,\"lon\":-46.63,\"origins\":[{\"address\":\"10.0.5.1:80\"}"
    "]},"
    "{\"name\":\"ap-south\",\"lat\":19.08,\"lon\":72.88,\"origins\":[{\"address\":\"10.0.6.1:80\"}]"
    "},"
    "{\"name\":\"ap-southeast\",\"lat\":1.35,\"lon\":103.82,\"origins\":[{\"address\":\"10.0.7.1:"
    "80\"}]},"
    "{\"name\":\"ap-northeast\",\"lat\":35.68,\"lon\":139.69,\"origins\":[{\"address\":\"10.0.8.1:"
    "80\"}]},"
    "{\"name\":\"au-east\",\"lat\":-33.87,\"lon\":151.21,\"origins\":[{\"address\":\"10.0.9.1:80\"}"
    "]},"
    "{\"name\":\"af-south\",\"lat\":-33.92,\"lon\":18.42,\"origins\":[{\"address\":\"10.0.10.1:"
    "80\"}]},"
    "{\"name\":\"me-central\",\"lat\":25.2,\"lon\":55.27,\"origins\":[{\"address\":\"10.0.11.1:"
    "80\"}]},"
    "{\"name\":\"ca-central\",\"lat\":45.5,\"lon\":-73.57,\"origins\":[{\"address\":\"10.0.12.1:"
    "80\"}]}"
    "]}";

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void report(const char *what, size_t n, double seconds)
{
    printf("%-28s %10.0f /s %8.0f ns each\n", what, (double)n / seconds, seconds * 1e9 / (double)n);
}

int main(int argc, char **argv)
{
    char err[512];
    if (argc < 2) {
        fprintf(stderr, "usage: bench_decide CITY.mmdb [N]\n");
        return 2;
    }
    size_t n = argc > 2 ? strtoul(argv[2], NULL, 10) : 1000000;
    const char *spec = argv[1];
    struct geo *geo = geo_open(&spec, 1, err, sizeof(err));
    struct db_topology *topo = NULL;
    if (geo == NULL ||
        db_topology_from_json(topology, sizeof(topology) - 1, &topo, err, sizeof(err)) != 0) {
        fprintf(stderr, "bench_decide: %s\n", err);
        return 1;
    }
    struct gslb_snapshot *snap = gslb_snapshot_build(topo);
    struct gslb_balancer *balancer = gslb_balancer_create(snap);
    const struct gslb_service *svc = gslb_service_find(snap, "www.example.com");

    /* Random addresses, mostly IPv4 (as traffic is), one in eight IPv6 from 2000::/4. */
    struct ip_addr *addrs = calloc(n, sizeof(*addrs));
    struct geo_result *results = calloc(n, sizeof(*results));
    for (size_t i = 0; i < n; i++) {
        uint64_t r = rng();
        if (i % 8 == 7) {
            addrs[i].family = AF_INET6;
            memcpy(addrs[i].bytes, &r, 8);
            addrs[i].bytes[0] = (uint8_t)(0x20 | (addrs[i].bytes[0] & 0x0f));
            addrs[i].bytes[1] = (uint8_t)(addrs[i].bytes[1] | 0x01);
        } else {
            addrs[i].family = AF_INET;
            memcpy(addrs[i].bytes, &r, 4);
        }
    }

    double t0 = now_s();
    for (size_t i = 0; i < n; i++)
        geo_lookup(geo, &addrs[i], &results[i]);
    double t1 = now_s();
    size_t located = 0, chosen = 0;
    for (size_t i = 0; i < n; i++) {
        struct gslb_decision d;
        located += results[i].location_source != GEO_LOCATION_NONE;
        if (gslb_decide(snap, svc, &addrs[i], &results[i], NULL, &d))
            chosen += gslb_origin_pick(snap, balancer, svc, d.candidates[d.chosen].region,
                                       &addrs[i], NULL) != NULL;
    }
    double t2 = now_s();
    for (size_t i = 0; i < n; i++) {
        struct geo_result g;
        struct gslb_decision d;
        geo_lookup(geo, &addrs[i], &g);
        if (gslb_decide(snap, svc, &addrs[i], &g, NULL, &d))
            gslb_origin_pick(snap, balancer, svc, d.candidates[d.chosen].region, &addrs[i], NULL);
    }
    double t3 = now_s();

    printf("%zu random addresses, %zu regions, %zu located, %zu routed\n", n, snap->n_regions,
           located, chosen);
    report("geo lookup", n, t1 - t0);
    report("decision + origin pick", n, t2 - t1);
    report("lookup + decision + pick", n, t3 - t2);

    free(results);
    free(addrs);
    gslb_balancer_destroy(balancer);
    gslb_snapshot_release(snap);
    db_topology_free(topo);
    geo_close(geo);
    return 0;
}
