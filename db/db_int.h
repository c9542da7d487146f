/* db/db_int.h - what the files of db/ share and nobody else sees. */
#ifndef DB_DB_INT_H
#define DB_DB_INT_H

#include <sqlite3.h>

#include "db/db.h"

struct db {
    sqlite3 *conn;
    char *path;
};

/* store.c: transactions, whole-topology reads and writes, audit and version bookkeeping. */
int db_tx_begin(struct db *db, bool write, char *err, size_t errlen);
int db_tx_commit(struct db *db, char *err, size_t errlen);
void db_tx_rollback(struct db *db);
int db_topology_read(struct db *db, struct db_topology **topo_out, char *err, size_t errlen);
int db_topology_write(struct db *db, const struct db_topology *topo, char *err, size_t errlen);
/* Bumps the config version and appends the audit entry, inside the caller's transaction. */
int db_change_record(struct db *db, const char *actor, const char *action, const char *object,
                     const char *before, const char *after, char *err, size_t errlen);

/* Reads one row of <stmt> into <item>; releases what an item holds. */
typedef void (*db_row_read_fn)(sqlite3_stmt *stmt, void *item);
typedef void (*db_item_fini_fn)(void *item);
/* Steps <stmt> (prepared and bound; NULL when that failed) through its rows and finalizes it:
 * each row becomes one more <size>-byte item of a new array, filled by <row_read>. Returns 0 with
 * the array in *<items_out> (the caller frees it) and its length in *<n_out>; or -EIO with NULL
 * and 0, the items read before the error released with <item_fini>. */
int db_rows_read(sqlite3_stmt *stmt, size_t size, db_row_read_fn row_read,
                 db_item_fini_fn item_fini, void **items_out, size_t *n_out);
/* Releases each of the <n> <size>-byte items of <items> with <item_fini>, then the array. */
void db_items_free(void *items, size_t n, size_t size, db_item_fini_fn item_fini);

/* Lifts the manual-failback holds of <region> in every service, inside the caller's transaction. */
int db_failback_release(struct db *db, const char *region, char *err, size_t errlen);

/* topology.c: ownership helpers for the model structs. */
void db_region_fini(struct db_region *region);
void db_service_fini(struct db_service *service);
void db_origin_fini(struct db_origin *origin);
void db_rule_fini(struct db_rule *rule);
void db_region_copy(struct db_region *dst, const struct db_region *src);
void db_origin_copy(struct db_origin *dst, const struct db_origin *src);
void db_rule_copy(struct db_rule *dst, const struct db_rule *src);
/* Copies a pool's own settings (not its region or origins). */
void db_pool_settings_copy(struct db_pool *dst, const struct db_pool *src);
char **db_strv_copy(char *const *v, size_t n);
void db_strv_free(char **v, size_t n);
char *db_strdup_or_null(const char *s);
struct db_service *db_topology_service_mut(struct db_topology *topo, const char *name);
struct db_pool *db_service_pool(struct db_service *service, const char *region);

/* json.c: audit snapshots of single objects (the caller frees the text). */
char *db_region_to_json(const struct db_region *region);
char *db_service_to_json(const struct db_service *service);
char *db_origin_to_json(const struct db_origin *origin);
char *db_rule_to_json(const struct db_rule *rule);
char *db_pool_to_json(const struct db_pool *pool);

#define DB_NAME_MAX 63

#endif
