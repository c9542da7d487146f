/* proxy/config.c - the proxy's settings: defaults, and parsing of one key = value at a time, the
 * same for the config file and for command-line flags (main.c feeds both through here). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/units.h"
#include "proxy/proxy_int.h"

void proxy_config_defaults(struct proxy_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->access_log_format = PROXY_LOG_JSON;
    cfg->client_header_timeout_ms = 10000;
    cfg->keepalive_timeout_ms = 60000;
    cfg->client_body_timeout_ms = 60000;
    cfg->connect_timeout_ms = 3000;
    cfg->response_header_timeout_ms = 30000;
    cfg->origin_read_timeout_ms = 60000;
    cfg->origin_idle_timeout_ms = 30000;
    cfg->tunnel_timeout_ms = 3600 * 1000;
    cfg->shutdown_timeout_ms = 30000;
    cfg->lingering_time_ms = 30000;
    cfg->lingering_timeout_ms = 5000;
    cfg->tls_ticket_rotate_ms = 3600 * 1000;
    cfg->splice_bodies = true;
    cfg->defer_accept = true;
    cfg->max_header_bytes = 64 * 1024;
    cfg->max_headers = 100;
    cfg->max_connections = 10000;
    cfg->max_idle_per_origin = 64;
    cfg->max_tries = 3;
    cfg->passive_failures = 5;
    cfg->passive_ejection_ms = 10000;
    cfg->passive_max_ejected_percent = 50;
    cfg->sticky_drain_window_ms = 10 * 60 * 1000;
}

static int size_bytes(const char *v, uint64_t *out)
{
    char *end;
    double n = strtod(v, &end);
    double scale = strcasecmp(end, "k") == 0   ? 1024.0
                   : strcasecmp(end, "m") == 0 ? 1048576.0
                   : strcasecmp(end, "g") == 0 ? 1073741824.0
                   : *end == '\0'              ? 1
                                               : -1;
    if (!units_plain_number(v, end) || scale < 0 || n * scale > 1e18)
        return -EINVAL;
    *out = (uint64_t)(n * scale);
    return 0;
}

static int integer(const char *v, long min, long max, long *out)
{
    char *end;
    *out = strtol(v, &end, 10);
    return units_plain_number(v, end) && *end == '\0' && *out >= min && *out <= max ? 0 : -EINVAL;
}

static int boolean(const char *v, bool *out)
{
    if (!strcmp(v, "yes") || !strcmp(v, "on") || !strcmp(v, "true") || !strcmp(v, "1"))
        *out = true;
    else if (!strcmp(v, "no") || !strcmp(v, "off") || !strcmp(v, "false") || !strcmp(v, "0"))
        *out = false;
    else
        return -EINVAL;
    return 0;
}

/* A header name given as a setting: letters, digits, '-' and '_', shorter than <size>. */
static bool header_name_setting(const char *v, size_t size)
{
    size_t len = strlen(v);
    return len > 0 && len < size &&
           strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") == len;
}

static const struct {
    const char *key;
    size_t offset;
} durations[] = {
    {"client-header-timeout", offsetof(struct proxy_config, client_header_timeout_ms)},
    {"keepalive-timeout", offsetof(struct proxy_config, keepalive_timeout_ms)},
    {"client-body-timeout", offsetof(struct proxy_config, client_body_timeout_ms)},
    {"connect-timeout", offsetof(struct proxy_config, connect_timeout_ms)},
    {"response-header-timeout", offsetof(struct proxy_config, response_header_timeout_ms)},
    {"origin-read-timeout", offsetof(struct proxy_config, origin_read_timeout_ms)},
    {"origin-idle-timeout", offsetof(struct proxy_config, origin_idle_timeout_ms)},
    {"tunnel-timeout", offsetof(struct proxy_config, tunnel_timeout_ms)},
    {"shutdown-timeout", offsetof(struct proxy_config, shutdown_timeout_ms)},
    {"lingering-time", offsetof(struct proxy_config, lingering_time_ms)},
    {"lingering-timeout", offsetof(struct proxy_config, lingering_timeout_ms)},
    {"passive-ejection", offsetof(struct proxy_config, passive_ejection_ms)},
    {"tls-ticket-rotate", offsetof(struct proxy_config, tls_ticket_rotate_ms)},
};

int proxy_config_set(struct proxy_config *cfg, const char *key, const char *value, char *err,
                     size_t errlen)
{
    long n = 0;
    uint64_t size;
    int rc = 0;
    struct sockaddr_storage ss;
    socklen_t sslen;
    for (size_t i = 0; i < sizeof(durations) / sizeof(durations[0]); i++) {
        if (strcmp(key, durations[i].key) == 0) {
            int ms;
            rc = parse_duration_ms(value, &ms);
            if (rc == 0 && ms == 0)
                rc = -EINVAL;
            if (rc == 0)
                *(int *)(void *)((char *)cfg + durations[i].offset) = ms;
            goto out;
        }
    }
    if (strcmp(key, "tls-cert") == 0 || strcmp(key, "tls-key") == 0) {
        bool cert = key[4] == 'c';
        size_t *count = cert ? &cfg->n_tls_cert : &cfg->n_tls_key;
        if (*count == PROXY_MAX_CERTS || strlen(value) >= sizeof(cfg->tls_cert[0]) || !*value)
            rc = -EINVAL;
        else
            snprintf(cert ? cfg->tls_cert[(*count)++] : cfg->tls_key[(*count)++],
                     sizeof(cfg->tls_cert[0]), "%s", value);
    } else if (strcmp(key, "origin-ca-file") == 0) {
        if (strlen(value) >= sizeof(cfg->origin_ca_file))
            rc = -EINVAL;
        else
            snprintf(cfg->origin_ca_file, sizeof(cfg->origin_ca_file), "%s", value);
    } else if (strcmp(key, "tls-ticket-key-file") == 0) {
        if (strlen(value) >= sizeof(cfg->tls_ticket_key_file))
            rc = -EINVAL;
        else
            snprintf(cfg->tls_ticket_key_file, sizeof(cfg->tls_ticket_key_file), "%s", value);
    } else if (strcmp(key, "listen") == 0 || strcmp(key, "listen-proxy-protocol") == 0 ||
               strcmp(key, "listen-tls") == 0) {
        if (cfg->n_listen == PROXY_MAX_LISTEN || strlen(value) >= sizeof(cfg->listen[0].address) ||
            proxy_address_parse(value, &ss, &sslen) != 0) {
            rc = -EINVAL;
        } else {
            struct proxy_listen *l = &cfg->listen[cfg->n_listen++];
            snprintf(l->address, sizeof(l->address), "%s", value);
            l->proxy_protocol = strcmp(key, "listen-proxy-protocol") == 0;
            l->tls = strcmp(key, "listen-tls") == 0;
        }
    } else if (strcmp(key, "metrics-listen") == 0) {
        if (strlen(value) >= sizeof(cfg->metrics_listen) ||
            (*value && proxy_address_parse(value, &ss, &sslen) != 0))
            rc = -EINVAL;
        else
            snprintf(cfg->metrics_listen, sizeof(cfg->metrics_listen), "%s", value);
    } else if (strcmp(key, "access-log") == 0) {
        if (strlen(value) >= sizeof(cfg->access_log))
            rc = -EINVAL;
        else
            snprintf(cfg->access_log, sizeof(cfg->access_log), "%s", value);
    } else if (strcmp(key, "access-log-format") == 0) {
        if (strcmp(value, "json") == 0)
            cfg->access_log_format = PROXY_LOG_JSON;
        else if (strcmp(value, "combined") == 0)
            cfg->access_log_format = PROXY_LOG_COMBINED;
        else
            rc = -EINVAL;
    } else if (strcmp(key, "trusted-proxies") == 0) {
        /* Comma-separated CIDRs; repeated keys add to the list. */
        char item[64];
        const char *p = value;
        while (rc == 0 && *p) {
            size_t len = strcspn(p, ", ");
            if (len > 0) {
                if (len >= sizeof(item) || cfg->n_trusted == PROXY_MAX_TRUSTED) {
                    rc = -EINVAL;
                    break;
                }
                memcpy(item, p, len);
                item[len] = '\0';
                rc = ip_cidr_parse(item, &cfg->trusted[cfg->n_trusted]) == 0 ? 0 : -EINVAL;
                if (rc == 0)
                    cfg->n_trusted++;
            }
            p += len + (p[len] != '\0');
        }
    } else if (strcmp(key, "workers") == 0) {
        rc = integer(value, 0, 256, &n);
        cfg->workers = (int)n;
    } else if (strcmp(key, "forwarded-header") == 0) {
        rc = boolean(value, &cfg->forwarded_header);
    } else if (strcmp(key, "client-ip-header") == 0) {
        /* RFC 7239's Forwarded ("for=...;proto=...") is not a list of addresses, and gslbd
         * writes the header the client is named in: none it sets or acts on otherwise. */
        bool xff = strcasecmp(value, "X-Forwarded-For") == 0;
        if (!header_name_setting(value, sizeof(cfg->client_ip_header)) ||
            (!xff && header_name_is_known(value, strlen(value))))
            rc = -EINVAL;
        else /* X-Forwarded-For itself is known by its header id */
            snprintf(cfg->client_ip_header, sizeof(cfg->client_ip_header), "%s", xff ? "" : value);
    } else if (strcmp(key, "request-id-header") == 0) {
        /* Not one that gslbd sets or acts on (Via, X-Forwarded-*, Host, framing...). */
        if (*value != '\0' && (!header_name_setting(value, sizeof(cfg->request_id_header)) ||
                               header_name_is_known(value, strlen(value))))
            rc = -EINVAL;
        else
            snprintf(cfg->request_id_header, sizeof(cfg->request_id_header), "%s", value);
    } else if (strcmp(key, "splice") == 0) {
        rc = boolean(value, &cfg->splice_bodies);
    } else if (strcmp(key, "defer-accept") == 0) {
        rc = boolean(value, &cfg->defer_accept);
    } else if (strcmp(key, "client-sndbuf") == 0) {
        rc = size_bytes(value, &size);
        if (rc == 0 && size != 0 && (size < 4096 || size > 64 * 1024 * 1024))
            rc = -EINVAL;
        cfg->client_sndbuf = (int)size;
    } else if (strcmp(key, "max-header-size") == 0) {
        rc = size_bytes(value, &size);
        if (rc == 0 && (size < 1024 || size > 1024 * 1024))
            rc = -EINVAL;
        cfg->max_header_bytes = (size_t)size;
    } else if (strcmp(key, "max-headers") == 0) {
        rc = integer(value, 1, 1000, &n);
        cfg->max_headers = (int)n;
    } else if (strcmp(key, "max-body-size") == 0) {
        rc = size_bytes(value, &cfg->max_body_bytes);
    } else if (strcmp(key, "max-connections") == 0) {
        rc = integer(value, 1, 10000000, &n);
        cfg->max_connections = (int)n;
    } else if (strcmp(key, "max-idle-per-origin") == 0) {
        rc = integer(value, 0, 10000, &n);
        cfg->max_idle_per_origin = (int)n;
    } else if (strcmp(key, "passive-failures") == 0) {
        rc = integer(value, 0, 1000, &n);
        cfg->passive_failures = (int)n;
    } else if (strcmp(key, "passive-max-ejected") == 0) {
        char digits[8];
        size_t len = strcspn(value, "%");
        snprintf(digits, sizeof(digits), "%.*s", (int)(len < 7 ? len : 7), value);
        rc = value[len] != '\0' && strcmp(value + len, "%") != 0 ? -EINVAL
                                                                 : integer(digits, 0, 100, &n);
        cfg->passive_max_ejected_percent = (int)n;
    } else if (strcmp(key, "sticky-drain-window") == 0) {
        /* 0 allowed: off; durations stop at a day, well inside the table's 12-day clock */
        rc = parse_duration_ms(value, &cfg->sticky_drain_window_ms);
    } else if (strcmp(key, "busy-poll") == 0) { /* 0 allowed: off */
        long long us = 0;
        rc = parse_duration_us(value, &us);
        if (rc == 0 && us > 1000000)
            rc = -EINVAL;
        cfg->busy_poll_us = (int)us;
    } else if (strcmp(key, "max-tries") == 0) {
        rc = integer(value, 1, REQ_MAX_TRIED, &n);
        cfg->max_tries = (int)n;
    } else {
        return -ENOENT;
    }
out:
    if (rc != 0)
        snprintf(err, errlen, "%s: invalid value '%s'", key, value);
    return rc;
}
