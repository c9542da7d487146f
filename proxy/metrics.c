/* proxy/metrics.c - counters and latency histograms, and their Prometheus text exposition.
 *
 * Workers count with relaxed atomic adds on series held by their snapshot views: a view takes a
 * reference to the series of its origins and of its (service, region) pairs when it is made, and
 * gives them back when it is freed, so that the series of what left the topology leave /metrics
 * (they stayed for good until 2026-12-07) while those that stay count on across changes. The only
 * lock guards the lists of series: taken when a view is made or freed, and when /metrics is
 * scraped; never per request. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"
#include "proxy/proxy_int.h"

/* A series and what it is of: (service, region), or (region, origin address). */
struct metrics_entry {
    char *key[2];
    struct metrics_series series;
    struct metrics_entry *next, **list; /* the list it is on */
    unsigned refs;
};

/* Upper bounds of the upstream latency buckets, in milliseconds. */
static const unsigned bucket_ms[METRICS_BUCKETS] = {1,   2,   5,    10,   25,   50,    100,
                                                    250, 500, 1000, 2500, 5000, 10000, 30000};

void metrics_init(struct metrics *m)
{
    memset(m, 0, sizeof(*m));
    pthread_mutex_init(&m->lock, NULL);
    m->unrouted = metrics_series_get(m, "none", PROXY_REGION_NONE); /* held for good */
}

static void entries_free(struct metrics_entry *e)
{
    while (e) {
        struct metrics_entry *next = e->next;
        free(e->key[0]);
        free(e->key[1]);
        free(e);
        e = next;
    }
}

void metrics_fini(struct metrics *m)
{
    entries_free(m->entries);
    for (size_t b = 0; b < METRICS_ORIGIN_BUCKETS; b++)
        entries_free(m->origin_buckets[b]);
    pthread_mutex_destroy(&m->lock);
}

static struct metrics_series *entry_get(struct metrics *m, struct metrics_entry **list,
                                        const char *key0, const char *key1)
{
    pthread_mutex_lock(&m->lock);
    struct metrics_entry *e;
    for (e = *list; e; e = e->next) {
        if (strcmp(e->key[0], key0) == 0 && strcmp(e->key[1], key1) == 0)
            break;
    }
    if (e == NULL) {
        e = xcalloc(1, sizeof(*e));
        e->key[0] = xstrdup(key0);
        e->key[1] = xstrdup(key1);
        e->next = *list;
        e->list = list;
        *list = e;
    }
    e->refs++;
    pthread_mutex_unlock(&m->lock);
    return &e->series;
}

void metrics_series_put(struct metrics *m, struct metrics_series *s)
{
    if (s == NULL)
        return;
    struct metrics_entry *e =
        (struct metrics_entry *)(void *)((char *)s - offsetof(struct metrics_entry, series));
    pthread_mutex_lock(&m->lock);
    if (--e->refs == 0) {
        struct metrics_entry **at = e->list;
        while (*at != e)
            at = &(*at)->next;
        *at = e->next;
        e->next = NULL;
        entries_free(e);
    }
    pthread_mutex_unlock(&m->lock);
}

struct metrics_series *metrics_series_get(struct metrics *m, const char *service,
                                          const char *region)
{
    return entry_get(m, &m->entries, service, region);
}

struct metrics_series *metrics_origin_series_get(struct metrics *m, const char *region,
                                                 const struct gslb_origin *origin)
{
    return entry_get(m, &m->origin_buckets[origin->hash_key % METRICS_ORIGIN_BUCKETS], region,
                     origin->address);
}

#define GET(counter) ((unsigned long long)atomic_load_explicit(&(counter), memory_order_relaxed))

void metrics_observe(struct metrics_series *s, int status, int64_t upstream_us)
{
    int cls = status >= 100 && status < 600 ? status / 100 : 0;
    ADD(s->requests[cls], 1);
    if (upstream_us < 0)
        return;
    int b = 0;
    while (b < METRICS_BUCKETS && upstream_us > (int64_t)bucket_ms[b] * 1000)
        b++;
    ADD(s->upstream_ms_buckets[b], 1);
    ADD(s->upstream_ms_count, 1);
    ADD(s->upstream_us_sum, (uint64_t)upstream_us);
}

static void counter(FILE *out, const char *name, const char *help, const char *type,
                    unsigned long long value)
{
    fprintf(out, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", name, help, name, type, name, value);
}

#define FOR_EACH_ORIGIN_ENTRY(m, e)                                                                \
    for (size_t bucket_ = 0; bucket_ < METRICS_ORIGIN_BUCKETS; bucket_++)                          \
        for (struct metrics_entry *e = (m)->origin_buckets[bucket_]; e; e = e->next)

/* The origins' series (the caller holds the lock): what each origin answered, how often it
 * failed, and how long it took to answer (a summary without quantiles: the average, from sum and
 * count; the regions' histograms have the distribution). */
static void origins_render(struct metrics *m, FILE *out, const char *const classes[6])
{
    fputs("# HELP gslb_origin_requests_total Requests whose last attempt went to the origin, by "
          "status class (gslbd's own 502 and 504 after it failed included).\n"
          "# TYPE gslb_origin_requests_total counter\n",
          out);
    FOR_EACH_ORIGIN_ENTRY(m, e)
    {
        for (int c = 0; c < 6; c++) {
            unsigned long long n = GET(e->series.requests[c]);
            if (n)
                fprintf(out,
                        "gslb_origin_requests_total{region=\"%s\",origin=\"%s\",code=\"%s\"} "
                        "%llu\n",
                        e->key[0], e->key[1], classes[c], n);
        }
    }
    fputs("# HELP gslb_origin_failures_total Attempts on the origin that failed: no connection, a "
          "timeout, a reset, an invalid response; retried ones included.\n"
          "# TYPE gslb_origin_failures_total counter\n",
          out);
    FOR_EACH_ORIGIN_ENTRY(m, e)
    {
        unsigned long long n = GET(e->series.failures);
        if (n)
            fprintf(out, "gslb_origin_failures_total{region=\"%s\",origin=\"%s\"} %llu\n",
                    e->key[0], e->key[1], n);
    }
    fputs("# HELP gslb_origin_latency_seconds Time from sending a request to the origin to its "
          "response headers.\n# TYPE gslb_origin_latency_seconds summary\n",
          out);
    FOR_EACH_ORIGIN_ENTRY(m, e)
    {
        unsigned long long count = GET(e->series.upstream_ms_count);
        if (count == 0)
            continue;
        fprintf(out, "gslb_origin_latency_seconds_sum{region=\"%s\",origin=\"%s\"} %.6f\n",
                e->key[0], e->key[1], GET(e->series.upstream_us_sum) / 1e6);
        fprintf(out, "gslb_origin_latency_seconds_count{region=\"%s\",origin=\"%s\"} %llu\n",
                e->key[0], e->key[1], count);
    }
}

char *metrics_render(struct metrics *m)
{
    static const char *const classes[] = {"aborted", "1xx", "2xx", "3xx", "4xx", "5xx"};
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    if (out == NULL)
        abort();

    pthread_mutex_lock(&m->lock);
    fputs("# HELP gslb_requests_total Requests answered, by service, region and status class.\n"
          "# TYPE gslb_requests_total counter\n",
          out);
    for (struct metrics_entry *e = m->entries; e; e = e->next) {
        for (int c = 0; c < 6; c++) {
            unsigned long long n = GET(e->series.requests[c]);
            if (n)
                fprintf(out, "gslb_requests_total{service=\"%s\",region=\"%s\",code=\"%s\"} %llu\n",
                        e->key[0], e->key[1], classes[c], n);
        }
    }
    fputs("# HELP gslb_upstream_latency_seconds Time from sending a request to an origin to its "
          "response headers.\n# TYPE gslb_upstream_latency_seconds histogram\n",
          out);
    for (struct metrics_entry *e = m->entries; e; e = e->next) {
        unsigned long long cumulative = 0, count = GET(e->series.upstream_ms_count);
        if (count == 0)
            continue;
        for (int b = 0; b <= METRICS_BUCKETS; b++) {
            cumulative += GET(e->series.upstream_ms_buckets[b]);
            if (b < METRICS_BUCKETS)
                fprintf(out,
                        "gslb_upstream_latency_seconds_bucket{service=\"%s\",region=\"%s\","
                        "le=\"%g\"} %llu\n",
                        e->key[0], e->key[1], bucket_ms[b] / 1000.0, cumulative);
            else
                fprintf(out,
                        "gslb_upstream_latency_seconds_bucket{service=\"%s\",region=\"%s\","
                        "le=\"+Inf\"} %llu\n",
                        e->key[0], e->key[1], cumulative);
        }
        fprintf(out, "gslb_upstream_latency_seconds_sum{service=\"%s\",region=\"%s\"} %.6f\n",
                e->key[0], e->key[1], GET(e->series.upstream_us_sum) / 1e6);
        fprintf(out, "gslb_upstream_latency_seconds_count{service=\"%s\",region=\"%s\"} %llu\n",
                e->key[0], e->key[1], count);
    }
    origins_render(m, out, classes);
    pthread_mutex_unlock(&m->lock);

    counter(out, "gslb_connections_active", "Client connections open now.", "gauge",
            GET(m->connections_active));
    counter(out, "gslb_connections_lingering",
            "Client connections closed by the proxy that still read and drop what their "
            "clients send (lingering close).",
            "gauge", GET(m->connections_lingering));
    counter(out, "gslb_connections_total", "Client connections accepted.", "counter",
            GET(m->connections_total));
    counter(out, "gslb_connections_refused_total",
            "Client connections refused at the connection limit.", "counter",
            GET(m->connections_refused));
    counter(out, "gslb_connections_idle_closed_total",
            "Idle client connections closed to make room at the connection limit.", "counter",
            GET(m->idle_evicted));
    counter(out, "gslb_retries_total", "Requests sent again to another origin or region.",
            "counter", GET(m->retries));
    counter(out, "gslb_geo_lookups_total", "Client addresses looked up.", "counter",
            GET(m->geo_lookups));
    counter(out, "gslb_geo_located_total", "Lookups that found a location.", "counter",
            GET(m->geo_located));
    counter(out, "gslb_decisions_total", "Routing decisions made.", "counter", GET(m->decisions));
    fprintf(out,
            "# HELP gslb_decision_seconds_total Time spent deciding (geo lookup included).\n"
            "# TYPE gslb_decision_seconds_total counter\ngslb_decision_seconds_total %.9f\n",
            GET(m->decision_ns_sum) / 1e9);
    counter(out, "gslb_bad_requests_total", "Requests refused as malformed or over a limit.",
            "counter", GET(m->bad_requests));
    counter(out, "gslb_passive_ejections_total",
            "Origins taken out for a while after failures in live traffic.", "counter",
            GET(m->passive_ejections));
    counter(out, "gslb_upstream_errors_total",
            "Origin connections that failed, timed out or sent an invalid response.", "counter",
            GET(m->upstream_errors));
    fprintf(out,
            "# HELP gslb_origin_tls_handshakes_total TLS handshakes completed with origins, by "
            "whether they resumed a session.\n# TYPE gslb_origin_tls_handshakes_total counter\n"
            "gslb_origin_tls_handshakes_total{resumed=\"false\"} %llu\n"
            "gslb_origin_tls_handshakes_total{resumed=\"true\"} %llu\n",
            GET(m->origin_tls_full), GET(m->origin_tls_resumed));
    counter(out, "gslb_spliced_bytes_total",
            "Response body bytes moved from origin to client socket by splice(), never copied "
            "through the proxy's memory.",
            "counter", GET(m->spliced_bytes));
    counter(out, "gslb_slow_clients_dropped_total",
            "Client connections dropped for taking nothing of a response queued for them for "
            "keepalive-timeout.",
            "counter", GET(m->slow_clients));
    fclose(out);
    return text;
}

static int region_stats_cmp(const void *a, const void *b)
{
    return strcmp(((const struct proxy_region_stats *)a)->region,
                  ((const struct proxy_region_stats *)b)->region);
}

struct proxy_region_stats *proxy_region_stats(struct proxy *proxy, size_t *n_out)
{
    struct metrics *m = &proxy->metrics;
    struct proxy_region_stats *stats = NULL;
    size_t n = 0;
    pthread_mutex_lock(&m->lock);
    for (struct metrics_entry *e = m->entries; e; e = e->next) {
        size_t i = 0;
        while (i < n && strcmp(stats[i].region, e->key[1]) != 0)
            i++;
        if (i == n) {
            stats = xreallocarray(stats, ++n, sizeof(*stats));
            memset(&stats[i], 0, sizeof(stats[i]));
            snprintf(stats[i].region, sizeof(stats[i].region), "%s", e->key[1]);
        }
        for (int c = 0; c < 6; c++) {
            uint64_t count = GET(e->series.requests[c]);
            stats[i].by_class[c] += count;
            stats[i].requests += count;
        }
    }
    pthread_mutex_unlock(&m->lock);
    if (n > 1)
        qsort(stats, n, sizeof(*stats), region_stats_cmp);
    *n_out = n;
    return stats;
}
