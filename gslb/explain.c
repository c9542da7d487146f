/* gslb/explain.c - a routing decision explained as JSON: the client's location as the geo
 * databases see it, the service its host picks, every candidate region in order with its
 * distance, state and the reason for its place, and the region and origin chosen.
 *
 * One writer for `gslbctl route` and the admin API's GET /api/v1/route, so both print the same
 * object. It is text assembled into an sbuf (gslb/ does not own a JSON library); numbers have
 * fixed precision so the output is stable. */
#include <errno.h>
#include <stdio.h>

#include "common/sbuf.h"
#include "gslb/gslb.h"

static void put_string(struct sbuf *out, const char *s)
{
    if (s == NULL) {
        sbuf_adds(out, "null");
        return;
    }
    sbuf_add(out, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char esc[8];
        if (*p == '"' || *p == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*p;
            sbuf_add(out, esc, 2);
        } else if (*p < 0x20) {
            snprintf(esc, sizeof(esc), "\\u%04x", *p);
            sbuf_adds(out, esc);
        } else {
            sbuf_add(out, p, 1);
        }
    }
    sbuf_add(out, "\"", 1);
}

static void put_code(struct sbuf *out, const char *code)
{
    put_string(out, code[0] ? code : NULL);
}

/* <value> with <decimals> (1 or 4) digits after the point. */
static void put_number(struct sbuf *out, const char *key, int decimals, double value)
{
    char text[64];
    snprintf(text, sizeof(text), ",\"%s\":%.*f", key, decimals, value);
    sbuf_adds(out, text);
}

static void geo_put(struct sbuf *out, const struct geo_result *g)
{
    char looked_up[IP_ADDR_STRLEN];
    ip_addr_format(&g->looked_up, looked_up, sizeof(looked_up));
    sbuf_adds(out, "{\"status\":\"");
    sbuf_adds(out, geo_status_name(g->status));
    sbuf_adds(out, "\",\"looked_up\":\"");
    sbuf_adds(out, looked_up);
    sbuf_adds(out, "\",\"country\":");
    put_code(out, g->country);
    sbuf_adds(out, ",\"continent\":");
    put_code(out, g->continent);
    sbuf_adds(out, ",\"subdivision\":");
    put_code(out, g->subdivision);
    if (g->location_source != GEO_LOCATION_NONE) {
        put_number(out, "lat", 4, g->lat);
        put_number(out, "lon", 4, g->lon);
    } else {
        sbuf_adds(out, ",\"lat\":null,\"lon\":null");
    }
    sbuf_adds(out, ",\"location_source\":\"");
    sbuf_adds(out, geo_location_source_name(g->location_source));
    sbuf_adds(out, "\",\"accuracy_km\":");
    if (g->accuracy_km)
        sbuf_add_uint(out, g->accuracy_km);
    else
        sbuf_adds(out, "null");
    sbuf_adds(out, ",\"asn\":");
    if (g->asn)
        sbuf_add_uint(out, g->asn);
    else
        sbuf_adds(out, "null");
    sbuf_adds(out, ",\"org\":");
    put_code(out, g->org);
    sbuf_add(out, "}", 1);
}

int gslb_explain(const struct gslb_snapshot *snap, struct gslb_balancer *balancer, struct geo *geo,
                 const char *ip_text, const char *host, const struct gslb_health *health,
                 struct sbuf *out)
{
    struct ip_addr ip;
    struct geo_result g;
    struct gslb_decision d;

    sbuf_adds(out, "{\"ip\":");
    put_string(out, ip_text);
    if (ip_addr_parse(ip_text, &ip) != 0) {
        sbuf_adds(out, ",\"error\":\"not an IPv4 or IPv6 address\"}");
        return -EINVAL;
    }
    geo_lookup(geo, &ip, &g);
    sbuf_adds(out, ",\"host\":");
    put_string(out, host);
    sbuf_adds(out, ",\"geo\":");
    geo_put(out, &g);
    const struct gslb_service *svc = gslb_service_find(snap, host);
    if (svc == NULL) {
        sbuf_adds(out, ",\"service\":null,\"region\":null,\"origin\":null,\"candidates\":[]}");
        return 0;
    }
    gslb_decide(snap, svc, &ip, &g, health, &d);
    sbuf_adds(out, ",\"service\":");
    put_string(out, svc->name);
    const struct gslb_origin *origin = NULL;
    sbuf_adds(out, ",\"region\":");
    if (d.chosen >= 0) {
        uint32_t region = d.candidates[d.chosen].region;
        origin = gslb_origin_pick(snap, balancer, svc, region, &ip, health);
        put_string(out, snap->regions[region].name);
    } else {
        sbuf_adds(out, "null");
    }
    sbuf_adds(out, ",\"origin\":");
    put_string(out, origin ? origin->address : NULL);
    sbuf_adds(out, ",\"candidates\":[");
    for (size_t i = 0; i < d.n_candidates; i++) {
        const struct gslb_candidate *c = &d.candidates[i];
        sbuf_adds(out, i ? ",{\"region\":" : "{\"region\":");
        put_string(out, snap->regions[c->region].name);
        double km = gslb_candidate_distance_km(snap, &d, c);
        if (km >= 0)
            put_number(out, "distance_km", 1, km);
        else
            sbuf_adds(out, ",\"distance_km\":null");
        sbuf_adds(out, ",\"state\":\"");
        sbuf_adds(out, gslb_region_state_name(c->state));
        sbuf_adds(out, "\",\"reason\":\"");
        sbuf_adds(out, gslb_reason_name(c->reason));
        if (c->rule >= 0) {
            sbuf_adds(out, " #");
            sbuf_add_uint(out, (uint64_t)c->rule);
        }
        sbuf_adds(out, "\"}");
    }
    sbuf_adds(out, "]}");
    return 0;
}
