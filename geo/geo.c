/* geo/geo.c - MaxMind DB lookups behind the geo.h API.
 *
 * Each database lives in a publish slot (common/publish.h): a lookup borrows the current handle,
 * a reload opens the replacement aside, checks it, and swaps it in; the old mapping is unmapped
 * when its last lookup returns. geoipupdate replaces files by rename, so a mapping never changes
 * under us; a file rewritten in place is not supported (as with every mmap reader of these files).
 *
 * Field paths are resolved per handle because a reload may change the database type (a City file
 * replaced by a Country file), and with it the default layout. */
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <maxminddb.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/hash.h"
#include "common/publish.h"
#include "common/xalloc.h"
#include "geo/geo.h"

enum geo_field {
    FIELD_COUNTRY,
    FIELD_CONTINENT,
    FIELD_SUBDIVISION,
    FIELD_LAT,
    FIELD_LON,
    FIELD_ACCURACY,
    FIELD_ASN,
    FIELD_ORG,
    FIELD_COUNT
};

static const char *const field_names[FIELD_COUNT] = {
    "country", "continent", "subdivision", "lat", "lon", "accuracy", "asn", "org",
};

/* The GeoIP2 layout (MaxMind's City, Country, ASN and DB-IP's compatible files). */
static const char *const geoip2_paths[FIELD_COUNT] = {
    "country.iso_code",         "continent.code",
    "subdivisions.0.iso_code",  "location.latitude",
    "location.longitude",       "location.accuracy_radius",
    "autonomous_system_number", "autonomous_system_organization",
};

/* Flat layouts with top-level keys, as many third-party databases use. */
static const char *const flat_paths[FIELD_COUNT] = {
    "country_code",
    "continent_code",
    NULL,
    "latitude",
    "longitude",
    NULL,
    "autonomous_system_number",
    "autonomous_system_organization",
};

#define PATH_MAX_DEPTH 8

struct geo_handle {
    struct publish_obj obj; /* first: the slot sees only this */
    uint64_t id;            /* unique over the process's life, for the record cache */
    MMDB_s mmdb;
    struct stat identity; /* of the file when it was opened */
    /* NULL-terminated MMDB_aget paths per field; NULL when the field is not read from this file. */
    const char *paths[FIELD_COUNT][PATH_MAX_DEPTH + 1];
    bool has_field[FIELD_COUNT];
    char *path_storage;
};

struct geo_source {
    char *file;
    char *overrides[FIELD_COUNT]; /* NULL: default; "": field disabled */
    struct publish_slot slot;
};

struct geo {
    size_t n_sources;
    struct geo_source *sources;
    uint64_t id; /* unique per geo_open(): keys the per-thread result cache */
};

static void handle_destroy(struct publish_obj *obj)
{
    struct geo_handle *h = (struct geo_handle *)obj;
    MMDB_close(&h->mmdb);
    free(h->path_storage);
    free(h);
}

static bool is_geoip2_layout(const char *type)
{
    return strncmp(type, "GeoIP2-", 7) == 0 || strncmp(type, "GeoLite2-", 9) == 0 ||
           strncmp(type, "DBIP-", 5) == 0 || strncmp(type, "GeoIP-", 6) == 0;
}

/* Splits each field's dotted path into the NULL-terminated array MMDB_aget wants. */
static int handle_resolve_paths(struct geo_handle *h, const struct geo_source *src, char *err,
                                size_t errlen)
{
    const char *type = h->mmdb.metadata.database_type ? h->mmdb.metadata.database_type : "";
    const char *const *defaults = is_geoip2_layout(type) ? geoip2_paths : flat_paths;
    const char *chosen[FIELD_COUNT];
    size_t total = 0;

    for (int f = 0; f < FIELD_COUNT; f++) {
        chosen[f] = src->overrides[f] ? src->overrides[f] : defaults[f];
        if (chosen[f] != NULL && chosen[f][0] == '\0')
            chosen[f] = NULL;
        total += chosen[f] ? strlen(chosen[f]) + 1 : 0;
    }
    h->path_storage = xmalloc(total + 1);
    char *p = h->path_storage;
    for (int f = 0; f < FIELD_COUNT; f++) {
        h->has_field[f] = chosen[f] != NULL;
        if (!h->has_field[f])
            continue;
        strcpy(p, chosen[f]);
        size_t depth = 0;
        char *save = NULL;
        for (char *part = strtok_r(p, ".", &save); part; part = strtok_r(NULL, ".", &save)) {
            if (depth == PATH_MAX_DEPTH) {
                snprintf(err, errlen, "%s: field %s: path '%s' is deeper than %d keys", src->file,
                         field_names[f], chosen[f], PATH_MAX_DEPTH);
                return -EINVAL;
            }
            h->paths[f][depth++] = part;
        }
        if (depth == 0) {
            snprintf(err, errlen, "%s: field %s: empty path", src->file, field_names[f]);
            return -EINVAL;
        }
        h->paths[f][depth] = NULL;
        p += strlen(chosen[f]) + 1;
    }
    return 0;
}

/* Addresses that must look up without a database error in any sane file of either IP version. */
static const char *const sanity_addresses[] = {"1.1.1.1", "8.8.8.8", "81.2.69.142", "2001:4860::1"};

static int handle_sanity_check(struct geo_handle *h, const char *file, char *err, size_t errlen)
{
    if (h->mmdb.metadata.node_count == 0) {
        snprintf(err, errlen, "%s: database has no search tree", file);
        return -EINVAL;
    }
    for (size_t i = 0; i < sizeof(sanity_addresses) / sizeof(sanity_addresses[0]); i++) {
        int gai_error, mmdb_error;
        if (h->mmdb.metadata.ip_version == 4 && strchr(sanity_addresses[i], ':'))
            continue;
        MMDB_lookup_result_s r =
            MMDB_lookup_string(&h->mmdb, sanity_addresses[i], &gai_error, &mmdb_error);
        MMDB_entry_data_list_s *list = NULL;
        if (mmdb_error == MMDB_SUCCESS && r.found_entry)
            mmdb_error = MMDB_get_entry_data_list(&r.entry, &list);
        MMDB_free_entry_data_list(list);
        if (gai_error != 0 || mmdb_error != MMDB_SUCCESS) {
            snprintf(err, errlen, "%s: lookup of %s fails: %s", file, sanity_addresses[i],
                     mmdb_error != MMDB_SUCCESS ? MMDB_strerror(mmdb_error) : "bad address");
            return -EINVAL;
        }
    }
    return 0;
}

static struct geo_handle *handle_open(const struct geo_source *src, char *err, size_t errlen)
{
    static atomic_uint_fast64_t next_id = 1;
    struct geo_handle *h = xcalloc(1, sizeof(*h));
    publish_obj_init(&h->obj, handle_destroy);
    h->id = atomic_fetch_add(&next_id, 1);
    if (stat(src->file, &h->identity) != 0) {
        snprintf(err, errlen, "%s: %s", src->file, strerror(errno));
        free(h);
        return NULL;
    }
    int status = MMDB_open(src->file, MMDB_MODE_MMAP, &h->mmdb);
    if (status != MMDB_SUCCESS) {
        snprintf(err, errlen, "%s: %s", src->file,
                 status == MMDB_IO_ERROR ? strerror(errno) : MMDB_strerror(status));
        free(h);
        return NULL;
    }
    if (handle_resolve_paths(h, src, err, errlen) != 0 ||
        handle_sanity_check(h, src->file, err, errlen) != 0) {
        handle_destroy(&h->obj);
        return NULL;
    }
    return h;
}

static int field_index(const char *name, size_t len)
{
    for (int f = 0; f < FIELD_COUNT; f++) {
        if (strlen(field_names[f]) == len && strncmp(field_names[f], name, len) == 0)
            return f;
    }
    return -1;
}

static int source_parse(struct geo_source *src, const char *spec, char *err, size_t errlen)
{
    const char *comma = strchr(spec, ',');
    src->file = xstrndup(spec, comma ? (size_t)(comma - spec) : strlen(spec));
    if (src->file[0] == '\0') {
        snprintf(err, errlen, "geoip: empty database path in '%s'", spec);
        return -EINVAL;
    }
    while (comma != NULL) {
        const char *item = comma + 1;
        comma = strchr(item, ',');
        size_t itemlen = comma ? (size_t)(comma - item) : strlen(item);
        const char *eq = memchr(item, '=', itemlen);
        int f = eq ? field_index(item, (size_t)(eq - item)) : -1;
        if (f < 0) {
            snprintf(err, errlen,
                     "geoip: %s: '%.*s' is not field=path (fields: country continent subdivision "
                     "lat lon accuracy asn org)",
                     src->file, (int)itemlen, item);
            return -EINVAL;
        }
        free(src->overrides[f]);
        src->overrides[f] = xstrndup(eq + 1, itemlen - (size_t)(eq + 1 - item));
    }
    return 0;
}

void geo_close(struct geo *geo)
{
    if (geo == NULL)
        return;
    for (size_t i = 0; i < geo->n_sources; i++) {
        struct geo_source *src = &geo->sources[i];
        publish_slot_fini(&src->slot);
        free(src->file);
        for (int f = 0; f < FIELD_COUNT; f++)
            free(src->overrides[f]);
    }
    free(geo->sources);
    free(geo);
}

struct geo *geo_open(const char *const *specs, size_t n_specs, char *err, size_t errlen)
{
    static atomic_uint_fast64_t next_geo_id = 1;
    struct geo *geo = xcalloc(1, sizeof(*geo));
    geo->id = atomic_fetch_add(&next_geo_id, 1);
    geo->sources = xcalloc(n_specs, sizeof(*geo->sources));
    for (size_t i = 0; i < n_specs; i++) {
        struct geo_source *src = &geo->sources[i];
        publish_slot_init(&src->slot);
        geo->n_sources++;
        if (source_parse(src, specs[i], err, errlen) != 0)
            goto fail;
        struct geo_handle *h = handle_open(src, err, errlen);
        if (h == NULL)
            goto fail;
        publish_slot_swap(&src->slot, &h->obj);
    }
    return geo;
fail:
    geo_close(geo);
    return NULL;
}

int geo_reload_changed(struct geo *geo, char *err, size_t errlen)
{
    int swapped = 0, rc = 0;
    for (size_t i = 0; i < geo->n_sources; i++) {
        struct geo_source *src = &geo->sources[i];
        struct stat now;
        if (stat(src->file, &now) != 0)
            continue; /* mid-replacement or removed: keep serving from the old mapping */
        struct geo_handle *cur = (struct geo_handle *)publish_slot_acquire(&src->slot);
        bool same = cur && cur->identity.st_dev == now.st_dev &&
                    cur->identity.st_ino == now.st_ino && cur->identity.st_size == now.st_size &&
                    cur->identity.st_mtim.tv_sec == now.st_mtim.tv_sec &&
                    cur->identity.st_mtim.tv_nsec == now.st_mtim.tv_nsec;
        publish_obj_release(cur ? &cur->obj : NULL);
        if (same)
            continue;
        struct geo_handle *fresh = handle_open(src, err, errlen);
        if (fresh == NULL) {
            rc = -EINVAL; /* keep the old one; <err> says why */
            continue;
        }
        publish_slot_swap(&src->slot, &fresh->obj);
        swapped++;
    }
    return rc ? rc : swapped;
}

/* Bytes <from>..<from+3> of <addr> as an IPv4 address, each XORed with <flip>. */
static struct ip_addr embedded_v4(const struct ip_addr *addr, int from, uint8_t flip)
{
    struct ip_addr v4 = {.family = AF_INET};
    for (int i = 0; i < 4; i++)
        v4.bytes[i] = addr->bytes[from + i] ^ flip;
    return v4;
}

struct ip_addr geo_effective_addr(const struct ip_addr *addr)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const uint8_t nat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
    const uint8_t *b = addr->bytes;

    if (addr->family != AF_INET6)
        return *addr;
    if (memcmp(b, mapped, 12) == 0 || memcmp(b, nat64, 12) == 0)
        return embedded_v4(addr, 12, 0);
    if (b[0] == 0x20 && b[1] == 0x02) /* 6to4 2002:V4ADDR::/48 */
        return embedded_v4(addr, 2, 0);
    if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0 && b[3] == 0) /* Teredo: client inverted */
        return embedded_v4(addr, 12, 0xff);
    return *addr;
}

/* RFC 6890 special-purpose ranges that never locate a client. */
static const char *const reserved_cidrs[] = {
    "0.0.0.0/8",       "10.0.0.0/8",     "100.64.0.0/10", "127.0.0.0/8",    "169.254.0.0/16",
    "172.16.0.0/12",   "192.0.0.0/24",   "192.0.2.0/24",  "192.168.0.0/16", "198.18.0.0/15",
    "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4",   "240.0.0.0/4",    "::/128",
    "::1/128",         "100::/64",       "2001:db8::/32", "fc00::/7",       "fe80::/10",
    "ff00::/8"};
#define N_RESERVED (sizeof(reserved_cidrs) / sizeof(reserved_cidrs[0]))
static struct ip_cidr reserved[N_RESERVED];

static pthread_once_t reserved_once = PTHREAD_ONCE_INIT;
/* First octets that begin some IPv4 range of the table: most addresses leave at this test. */
static bool reserved_v4_first[256];

static void reserved_ranges_parse(void)
{
    for (size_t i = 0; i < N_RESERVED; i++) {
        int rc = ip_cidr_parse(reserved_cidrs[i], &reserved[i]);
        assert(rc == 0);
        (void)rc;
        if (reserved[i].net.family == AF_INET) {
            unsigned span = reserved[i].prefix >= 8 ? 1 : 1u << (8 - reserved[i].prefix);
            for (unsigned o = 0; o < span; o++)
                reserved_v4_first[reserved[i].net.bytes[0] + o] = true;
        }
    }
}

bool geo_addr_is_reserved(const struct ip_addr *addr)
{
    pthread_once(&reserved_once, reserved_ranges_parse);
    if (addr->family == AF_INET && !reserved_v4_first[addr->bytes[0]])
        return false;
    for (size_t i = 0; i < N_RESERVED; i++) {
        if (reserved[i].net.family == addr->family && ip_cidr_contains(&reserved[i], addr))
            return true;
    }
    return false;
}

static bool entry_number(MMDB_entry_data_s *d, double *out)
{
    switch (d->type) {
    case MMDB_DATA_TYPE_DOUBLE:
        *out = d->double_value;
        return true;
    case MMDB_DATA_TYPE_FLOAT:
        *out = d->float_value;
        return true;
    case MMDB_DATA_TYPE_UINT16:
        *out = d->uint16;
        return true;
    case MMDB_DATA_TYPE_UINT32:
        *out = d->uint32;
        return true;
    case MMDB_DATA_TYPE_INT32:
        *out = d->int32;
        return true;
    case MMDB_DATA_TYPE_UINT64:
        *out = (double)d->uint64;
        return true;
    default:
        return false;
    }
}

/* Reads field <f> of <entry>: a string into <str> or a number into <num>. */
static bool entry_field(const struct geo_handle *h, MMDB_entry_s *entry, int f, char *str,
                        size_t strsize, double *num)
{
    MMDB_entry_data_s d;
    if (!h->has_field[f] || MMDB_aget_value(entry, &d, h->paths[f]) != MMDB_SUCCESS || !d.has_data)
        return false;
    if (str != NULL) {
        if (d.type != MMDB_DATA_TYPE_UTF8_STRING || d.data_size == 0)
            return false;
        size_t n = d.data_size < strsize - 1 ? d.data_size : strsize - 1;
        memcpy(str, d.utf8_string, n);
        str[n] = '\0';
        return true;
    }
    return entry_number(&d, num);
}

static void upcase(char *s)
{
    for (; *s; s++) {
        if (*s >= 'a' && *s <= 'z')
            *s = (char)(*s - 'a' + 'A');
    }
}

/* What one database record says, decoded once. */
struct record {
    char country[3], continent[3], subdivision[8];
    bool located;
    double lat, lon;
    unsigned accuracy_km;
    uint32_t asn;
    char org[96];
};

static void record_decode(const struct geo_handle *h, MMDB_entry_s *entry, struct record *rec)
{
    char code[8];
    double num;

    memset(rec, 0, sizeof(*rec));
    if (entry_field(h, entry, FIELD_COUNTRY, code, sizeof(code), NULL) && strlen(code) == 2) {
        upcase(code);
        memcpy(rec->country, code, 3);
    }
    if (entry_field(h, entry, FIELD_CONTINENT, code, sizeof(code), NULL) && strlen(code) == 2) {
        upcase(code);
        memcpy(rec->continent, code, 3);
    }
    entry_field(h, entry, FIELD_SUBDIVISION, rec->subdivision, sizeof(rec->subdivision), NULL);
    rec->located = entry_field(h, entry, FIELD_LAT, NULL, 0, &rec->lat) &&
                   entry_field(h, entry, FIELD_LON, NULL, 0, &rec->lon) && rec->lat >= -90 &&
                   rec->lat <= 90 && rec->lon >= -180 && rec->lon <= 180;
    if (rec->located && entry_field(h, entry, FIELD_ACCURACY, NULL, 0, &num) && num >= 0)
        rec->accuracy_km = (unsigned)num;
    if (entry_field(h, entry, FIELD_ASN, NULL, 0, &num) && num > 0 && num <= UINT32_MAX)
        rec->asn = (uint32_t)num;
    entry_field(h, entry, FIELD_ORG, rec->org, sizeof(rec->org), NULL);
}

/* Both per-thread caches below are two-way set-associative: a key maps to a set of two slots, a
 * hit marks the other slot as the one to replace next. Two keys that share a set no longer evict
 * each other on every request, as they would in a direct-mapped cache (with 200 clients taking
 * turns over 512 slots, about one in six did). */
#define CACHE_WAYS 2

/* Records are shared by many networks, and decoding one walks its maps key by key (GeoIP2 City
 * records carry names in eight languages). Each thread keeps the records it decoded lately,
 * keyed by handle and record offset: no locks, and a replaced database has a new handle id, so
 * its records never meet the old ones. 1,024 records, about 150 KiB per thread. */
#define RECORD_CACHE_SETS 512

struct record_slot {
    uint64_t handle_id; /* 0: empty */
    uint32_t offset;
    struct record rec;
};

struct record_set {
    struct record_slot way[CACHE_WAYS];
    unsigned victim; /* the way the next miss replaces */
};

static _Thread_local struct record_set record_cache[RECORD_CACHE_SETS];

static const struct record *record_get(const struct geo_handle *h, MMDB_entry_s *entry)
{
    uint32_t offset = entry->offset;
    struct record_set *set =
        &record_cache[(offset * 2654435761u ^ (uint32_t)h->id) % RECORD_CACHE_SETS];
    for (unsigned w = 0; w < CACHE_WAYS; w++) {
        if (set->way[w].handle_id == h->id && set->way[w].offset == offset) {
            set->victim = (w + 1) % CACHE_WAYS;
            return &set->way[w].rec;
        }
    }
    struct record_slot *slot = &set->way[set->victim];
    set->victim = (set->victim + 1) % CACHE_WAYS;
    record_decode(h, entry, &slot->rec);
    slot->handle_id = h->id;
    slot->offset = offset;
    return &slot->rec;
}

/* Fills the fields of <out> that are still unknown from <rec>. */
static void result_merge(const struct record *rec, struct geo_result *out)
{
    if (!out->country[0])
        memcpy(out->country, rec->country, 3);
    if (!out->continent[0])
        memcpy(out->continent, rec->continent, 3);
    if (!out->subdivision[0])
        memcpy(out->subdivision, rec->subdivision, sizeof(out->subdivision));
    if (out->location_source == GEO_LOCATION_NONE && rec->located) {
        out->lat = rec->lat;
        out->lon = rec->lon;
        out->location_source = GEO_LOCATION_RECORD;
        out->accuracy_km = rec->accuracy_km;
    }
    if (out->asn == 0)
        out->asn = rec->asn;
    if (!out->org[0])
        memcpy(out->org, rec->org, sizeof(out->org));
}

/* Completes continent and coordinates from the country table. */
static void result_fill_from_tables(struct geo_result *out)
{
    const struct geo_country *country = geo_country_find(out->country);
    if (country != NULL && !out->continent[0])
        memcpy(out->continent, country->continent, 3);
    if (out->location_source != GEO_LOCATION_NONE)
        return;
    const struct geo_country *centre = country ? country : geo_continent_find(out->continent);
    if (centre == NULL)
        return;
    out->lat = centre->lat;
    out->lon = centre->lon;
    out->location_source = country ? GEO_LOCATION_COUNTRY : GEO_LOCATION_CONTINENT;
}

/* Clients come back (keep-alive, NAT, the same networks all day): each thread also keeps its
 * latest answers by address, keyed by the geo and the generations of its databases, so a
 * replaced database is never answered from the old one. 2,048 answers, about 420 KiB per
 * thread. */
#define RESULT_CACHE_SETS 1024

struct result_slot {
    uint64_t geo_id, generation; /* geo_id 0: empty */
    struct ip_addr addr;
    struct geo_result result;
};

struct result_set {
    struct result_slot way[CACHE_WAYS];
    unsigned victim;
};

static _Thread_local struct result_set result_cache[RESULT_CACHE_SETS];

static uint64_t geo_generation(struct geo *geo)
{
    uint64_t sum = 0;
    for (size_t i = 0; i < geo->n_sources; i++)
        sum += publish_slot_generation(&geo->sources[i].slot);
    return sum;
}

static size_t addr_len(const struct ip_addr *addr)
{
    return addr->family == AF_INET ? 4 : 16;
}

static struct result_set *result_set_of(const struct ip_addr *addr)
{
    uint64_t h = (uint64_t)addr->family * 0x9e3779b97f4a7c15ULL;
    for (size_t i = 0; i < addr_len(addr); i++)
        h = hash_mix64(h ^ addr->bytes[i]);
    return &result_cache[h % RESULT_CACHE_SETS];
}

static void lookup_uncached(struct geo *geo, const struct ip_addr *addr, struct geo_result *out);

void geo_lookup(struct geo *geo, const struct ip_addr *addr, struct geo_result *out)
{
    if (geo == NULL || geo->n_sources == 0) {
        lookup_uncached(geo, addr, out);
        return;
    }
    struct result_set *set = result_set_of(addr);
    uint64_t generation = geo_generation(geo);
    for (unsigned w = 0; w < CACHE_WAYS; w++) {
        const struct result_slot *slot = &set->way[w];
        if (slot->geo_id == geo->id && slot->generation == generation &&
            slot->addr.family == addr->family &&
            memcmp(slot->addr.bytes, addr->bytes, addr_len(addr)) == 0) {
            set->victim = (w + 1) % CACHE_WAYS;
            *out = slot->result;
            return;
        }
    }
    lookup_uncached(geo, addr, out);
    if (out->status == GEO_DB_ERROR)
        return;
    struct result_slot *slot = &set->way[set->victim];
    set->victim = (set->victim + 1) % CACHE_WAYS;
    slot->geo_id = geo->id;
    slot->generation = generation;
    slot->addr = *addr;
    slot->result = *out;
}

static void lookup_uncached(struct geo *geo, const struct ip_addr *addr, struct geo_result *out)
{
    struct sockaddr_storage ss;
    bool found = false, failed = false;

    memset(out, 0, sizeof(*out));
    out->looked_up = geo_effective_addr(addr);
    if (geo_addr_is_reserved(&out->looked_up)) {
        out->status = GEO_RESERVED;
        return;
    }
    if (geo == NULL || geo->n_sources == 0) {
        out->status = GEO_NO_DATABASE;
        return;
    }
    ip_addr_to_sockaddr(&out->looked_up, 0, &ss);
    for (size_t i = 0; i < geo->n_sources; i++) {
        struct geo_handle *h = (struct geo_handle *)publish_slot_acquire(&geo->sources[i].slot);
        int mmdb_error = MMDB_SUCCESS;
        MMDB_lookup_result_s r =
            MMDB_lookup_sockaddr(&h->mmdb, (const struct sockaddr *)&ss, &mmdb_error);
        if (mmdb_error == MMDB_SUCCESS && r.found_entry) {
            found = true;
            result_merge(record_get(h, &r.entry), out);
        } else if (mmdb_error != MMDB_SUCCESS &&
                   mmdb_error != MMDB_IPV6_LOOKUP_IN_IPV4_DATABASE_ERROR) {
            failed = true;
        }
        publish_obj_release(&h->obj);
    }
    out->status = found ? GEO_FOUND : failed ? GEO_DB_ERROR : GEO_NOT_FOUND;
    if (found)
        result_fill_from_tables(out);
}

const char *geo_fetched_city_path(void)
{
    static const char *const relative[] = {"/../data/geoip/GeoLite2-City.mmdb",
                                           "/../../data/geoip/GeoLite2-City.mmdb"};
    static _Thread_local char path[4096 + 64];
    ssize_t n = readlink("/proc/self/exe", path, 4096);
    char *slash = n > 0 ? (path[n] = '\0', strrchr(path, '/')) : NULL;
    for (size_t i = 0; slash && i < sizeof(relative) / sizeof(relative[0]); i++) {
        strcpy(slash, relative[i]);
        if (access(path, R_OK) == 0)
            return path;
    }
    return access("data/geoip/GeoLite2-City.mmdb", R_OK) == 0 ? "data/geoip/GeoLite2-City.mmdb"
                                                              : NULL;
}

const char *geo_status_name(enum geo_status status)
{
    switch (status) {
    case GEO_FOUND:
        return "found";
    case GEO_NOT_FOUND:
        return "not-in-database";
    case GEO_RESERVED:
        return "reserved-range";
    case GEO_DB_ERROR:
        return "database-error";
    case GEO_NO_DATABASE:
        return "no-database";
    }
    return "?";
}

const char *geo_location_source_name(enum geo_location_source source)
{
    switch (source) {
    case GEO_LOCATION_NONE:
        return "none";
    case GEO_LOCATION_RECORD:
        return "record";
    case GEO_LOCATION_COUNTRY:
        return "country-centroid";
    case GEO_LOCATION_CONTINENT:
        return "continent-centroid";
    }
    return "?";
}
