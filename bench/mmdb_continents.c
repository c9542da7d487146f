/* bench/mmdb_continents.c - writes the IPv4 part of a MaxMind City/Country database as a
 * "CIDR CONTINENT" list, one network a line, for HAProxy's map_ip in the proxy benchmark
 * (bench/proxy.sh): HAProxy has no MaxMind reader, but with this map it does a real continent
 * lookup from the same data gslbd and nginx read.
 *
 * It walks the database's search tree from the IPv4 subtree (::/96) and merges sibling networks
 * of the same continent, so the map is a fraction of the database's network count. Networks
 * without a continent are left out (the map's default applies). A benchmark helper: it uses
 * libmaxminddb directly because geo/ has, rightly, no API to enumerate a database.
 *
 * usage: mmdb_continents DB.mmdb >continents.map */
#include <maxminddb.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define MIXED   (-2) /* a subtree holding more than one continent */
#define NOWHERE (-1) /* no data, or data without a continent */

static const char *const continents[] = {"AF", "AN", "AS", "EU", "NA", "OC", "SA"};
#define N_CONTINENTS (int)(sizeof(continents) / sizeof(continents[0]))

struct walk {
    const MMDB_s *db;
    FILE *out;
    unsigned long lines;
    int error;
};

static int continent_of(MMDB_entry_s *entry)
{
    MMDB_entry_data_s data;
    if (MMDB_get_value(entry, &data, "continent", "code", NULL) != MMDB_SUCCESS || !data.has_data ||
        data.type != MMDB_DATA_TYPE_UTF8_STRING || data.data_size != 2)
        return NOWHERE;
    for (int i = 0; i < N_CONTINENTS; i++) {
        if (memcmp(data.utf8_string, continents[i], 2) == 0)
            return i;
    }
    return NOWHERE;
}

static void emit(struct walk *w, uint32_t prefix, int len, int continent)
{
    if (continent < 0)
        return;
    fprintf(w->out, "%u.%u.%u.%u/%d %s\n", prefix >> 24, (prefix >> 16) & 255, (prefix >> 8) & 255,
            prefix & 255, len, continents[continent]);
    w->lines++;
}

static int walk_node(struct walk *w, uint32_t node, uint32_t prefix, int depth);

/* The continent of one record (a child network of <depth> + 1 bits), MIXED if it varies. */
static int walk_record(struct walk *w, uint8_t type, uint64_t value, MMDB_entry_s *entry,
                       uint32_t prefix, int depth)
{
    switch (type) {
    case MMDB_RECORD_TYPE_SEARCH_NODE:
        if (depth >= 32) { /* deeper than IPv4 can go: a corrupt tree */
            w->error = 1;
            return NOWHERE;
        }
        return walk_node(w, (uint32_t)value, prefix, depth);
    case MMDB_RECORD_TYPE_DATA:
        return continent_of(entry);
    case MMDB_RECORD_TYPE_EMPTY:
        return NOWHERE;
    default:
        w->error = 1;
        return NOWHERE;
    }
}

/* Walks the subtree of <node>, the network <prefix>/<depth>. Returns its continent when uniform
 * (emitting nothing; the caller merges), or MIXED after emitting its uniform parts. */
static int walk_node(struct walk *w, uint32_t node, uint32_t prefix, int depth)
{
    MMDB_search_node_s n;
    if (MMDB_read_node(w->db, node, &n) != MMDB_SUCCESS) {
        w->error = 1;
        return NOWHERE;
    }
    uint32_t right_prefix = prefix | (UINT32_C(1) << (31 - depth));
    int left =
        walk_record(w, n.left_record_type, n.left_record, &n.left_record_entry, prefix, depth + 1);
    int right = walk_record(w, n.right_record_type, n.right_record, &n.right_record_entry,
                            right_prefix, depth + 1);
    if (left == right)
        return left;
    if (left != MIXED)
        emit(w, prefix, depth + 1, left);
    if (right != MIXED)
        emit(w, right_prefix, depth + 1, right);
    return MIXED;
}

int main(int argc, char **argv)
{
    MMDB_s db;
    struct walk w = {.db = &db, .out = stdout};
    uint32_t node = 0;
    int status;

    if (argc != 2) {
        fprintf(stderr, "usage: mmdb_continents DB.mmdb >continents.map\n");
        return 2;
    }
    if ((status = MMDB_open(argv[1], MMDB_MODE_MMAP, &db)) != MMDB_SUCCESS) {
        fprintf(stderr, "mmdb_continents: %s: %s\n", argv[1], MMDB_strerror(status));
        return 1;
    }
    /* In an IPv6 database IPv4 lives under ::/96: 96 zero bits from the root. */
    for (int i = 0; db.metadata.ip_version == 6 && i < 96; i++) {
        MMDB_search_node_s n;
        if (MMDB_read_node(&db, node, &n) != MMDB_SUCCESS ||
            n.left_record_type != MMDB_RECORD_TYPE_SEARCH_NODE) {
            fprintf(stderr, "mmdb_continents: %s: no IPv4 subtree\n", argv[1]);
            MMDB_close(&db);
            return 1;
        }
        node = (uint32_t)n.left_record;
    }
    int all = walk_node(&w, node, 0, 0);
    if (all >= 0)
        emit(&w, 0, 0, all);
    MMDB_close(&db);
    if (w.error || fflush(stdout) != 0) {
        fprintf(stderr, "mmdb_continents: %s: cannot walk the search tree\n", argv[1]);
        return 1;
    }
    fprintf(stderr, "mmdb_continents: %lu networks\n", w.lines);
    return 0;
}
