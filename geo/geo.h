/* geo/geo.h - where is this client? Hides libmaxminddb from every other module.
 *
 * A struct geo is an ordered set of MaxMind DB files (city, country, ASN, or flat third-party
 * layouts) consulted together: for each field of the answer the first database that has it wins.
 * Addresses that embed an IPv4 address (IPv4-mapped, NAT64, 6to4, Teredo) are looked up as that
 * IPv4 address. A record with a country but no coordinates falls back to the country's centroid,
 * then the continent's. Files replaced on disk (atomic rename, as geoipupdate does) are picked up
 * by geo_reload_changed() without disturbing lookups in flight. */
#ifndef GEO_GEO_H
#define GEO_GEO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/addr.h"

/* Why a lookup found what it found. */
enum geo_status {
    GEO_FOUND,       /* at least one database has a record for the address */
    GEO_NOT_FOUND,   /* a public address no database knows */
    GEO_RESERVED,    /* private, loopback, link-local, documentation or other special range */
    GEO_DB_ERROR,    /* a database could not be read */
    GEO_NO_DATABASE, /* no database is open */
};

/* Where the coordinates in a result came from. */
enum geo_location_source {
    GEO_LOCATION_NONE,
    GEO_LOCATION_RECORD,    /* the database record */
    GEO_LOCATION_COUNTRY,   /* the centroid of the record's country */
    GEO_LOCATION_CONTINENT, /* the centre of the record's continent */
};

struct geo_result {
    enum geo_status status;
    enum geo_location_source location_source;
    char country[3];          /* ISO 3166-1 alpha-2, "" if unknown */
    char continent[3];        /* AF AN AS EU NA OC SA, "" if unknown */
    char subdivision[8];      /* ISO 3166-2 subdivision code without the country, "" if unknown */
    double lat, lon;          /* valid when location_source != GEO_LOCATION_NONE */
    unsigned accuracy_km;     /* 0 if unknown */
    uint32_t asn;             /* 0 if unknown */
    char org[96];             /* AS organisation, "" if unknown */
    struct ip_addr looked_up; /* the address actually looked up (the embedded IPv4 if any) */
};

/* A row of the country table: continent and approximate centroid. */
struct geo_country {
    char iso[3];
    char continent[3];
    double lat, lon;
};

struct geo; /* opaque; owned by the caller of geo_open() */

/* Opens the databases named by <specs>, in order of precedence. A spec is a path, optionally
 * followed by comma-separated field=data.path overrides, e.g.
 *   /var/lib/GeoIP/GeoLite2-City.mmdb
 *   /srv/flat.mmdb,country=country_code,lat=latitude,lon=longitude
 * Fields: country continent subdivision lat lon accuracy asn org. Unset fields take defaults chosen
 * from the database's metadata type (GeoIP2 layout for GeoIP2-*, GeoLite2-* and DBIP-*, flat
 * names such as country_code otherwise). Returns NULL and writes the reason into <err> if any
 * database cannot be opened. */
struct geo *geo_open(const char *const *specs, size_t n_specs, char *err, size_t errlen);
void geo_close(struct geo *geo); /* accepts NULL */

/* Looks <addr> up in every database and fills <out>. Never fails: <out->status> says what was
 * found. Safe to call from any number of threads, also while geo_reload_changed() runs. */
void geo_lookup(struct geo *geo, const struct ip_addr *addr, struct geo_result *out);

/* Reopens every database whose file changed on disk since it was opened. A file that cannot be
 * opened or fails its sanity lookups is refused: the old one stays in use and the reason is written
 * into <err>. Returns the number of databases swapped, or a negative errno if one was refused. */
int geo_reload_changed(struct geo *geo, char *err, size_t errlen);

/* The address a lookup actually uses: the IPv4 address embedded in an IPv4-mapped, NAT64, 6to4
 * or Teredo address, otherwise <addr> itself. */
struct ip_addr geo_effective_addr(const struct ip_addr *addr);
/* True for private, loopback, link-local, multicast, documentation and other non-routable ranges.
 */
bool geo_addr_is_reserved(const struct ip_addr *addr);

/* Where the GeoLite2 City file fetched by `make deps` is, for the demo and the tools: beside the
 * running binary's source tree (build/ or build/asan/), else ./data/geoip; NULL if neither has
 * it. Production configures its databases explicitly. */
const char *geo_fetched_city_path(void);

const char *geo_status_name(enum geo_status status);
const char *geo_location_source_name(enum geo_location_source source);

/* The country table row for an ISO code (upper case), or NULL. */
const struct geo_country *geo_country_find(const char *iso);
/* The continent centre row ("AF".."SA"), or NULL. */
const struct geo_country *geo_continent_find(const char *code);
size_t geo_country_count(void);
const struct geo_country *geo_country_at(size_t index);

#endif
