/* tools/gslbctl.c - the command-line tool: edits the topology store, imports and exports it, and
 * explains routing decisions (`route`), one address or a stream of them.
 *
 * Every edit goes through db/ and so through the same validation, transaction and audit entry as
 * the admin console. Exit status: 0 success, 1 runtime failure (I/O, database), 2 usage error,
 * 3 invalid input, 4 no such object, 5 conflict (exists already, or still in use). */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <termios.h>
#include <unistd.h>

#include "common/log.h"
#include "common/sbuf.h"
#include "common/units.h"
#include "common/xalloc.h"
#include "db/db.h"
#include "geo/geo.h"
#include "gslb/gslb.h"

#define EXIT_RUNTIME  1
#define EXIT_USAGE    2
#define EXIT_INVALID  3
#define EXIT_NOTFOUND 4
#define EXIT_CONFLICT 5
#define MAX_GEOIP     8

static const char usage_text[] =
    "usage: gslbctl [--db PATH] [--geoip SPEC]... [--actor NAME] COMMAND [ARGS]\n"
    "\n"
    "  import FILE|-                  replace the whole topology (all or nothing)\n"
    "  export                         print the topology as JSON\n"
    "  region list\n"
    "  region add NAME --lat DEG --lon DEG [--display-name TEXT] [--state S]\n"
    "  region set NAME [--lat DEG] [--lon DEG] [--display-name TEXT] [--state S]\n"
    "                  [--health auto|up|down]   (up/down overrule health checks)\n"
    "  region remove NAME             states: active draining disabled\n"
    "  region resume NAME             health back to auto, lift manual-failback holds\n"
    "  service list\n"
    "  service add NAME --host HOST... [--policy nearest|failover] [--sticky yes|no]\n"
    "                   [--fallback REGION,...]\n"
    "  service set NAME [same options; --host replaces the host list]\n"
    "  service remove NAME\n"
    "  origin list [--service NAME]\n"
    "  origin add ADDRESS --service NAME --region NAME [--weight 0-1000] [--state S]\n"
    "  origin set ADDRESS --service NAME --region NAME [--weight N] [--state S]\n"
    "                  [--health auto|up|down]\n"
    "                  [--tls yes|no] [--tls-name NAME] [--tls-verify yes|no]   (HTTPS to it)\n"
    "  origin remove ADDRESS --service NAME --region NAME   states: enabled draining disabled\n"
    "  pool list [--service NAME]\n"
    "  pool set --service NAME --region NAME [--min-healthy N] [--min-weight-percent P]\n"
    "           [--failback auto|manual] [--holddown DURATION (0: gslbd's)]\n"
    "           [--check-type http|https|tcp|none] [--check-path P] [--check-host H]\n"
    "           [--check-expect 200-399] [--check-body TEXT] [--check-method GET|HEAD]\n"
    "           [--check-interval D]\n"
    "           [--check-timeout D] [--check-rise N] [--check-fall N]   (origins inherit)\n"
    "  rule list --service NAME\n"
    "  rule add --service NAME (--cidr PREFIX|--country CC|--continent CC) --regions R,...\n"
    "  rule remove --service NAME INDEX\n"
    "  route IP|- [--host HOST]       explain the decision as JSON ('-': addresses on stdin)\n"
    "  audit [--limit N] [--before ID]\n"
    "  health [--history N]           health of origins and regions as gslbd last saw it\n"
    "  version                        config and schema versions\n"
    "  user add|passwd NAME           admin console user; the password comes from standard\n"
    "                                 input, or a prompt without echo on a terminal\n"
    "  user list | user remove NAME\n"
    "  token add NAME                 API token for automation, printed this once\n"
    "  token list | token remove NAME|ID\n"
    "\n"
    "  --db PATH      topology database (default $GSLB_DB, else /var/lib/gslb/gslb.db)\n"
    "  --geoip SPEC   MaxMind database, repeatable: PATH[,field=data.path...]\n"
    "                 (default: the fetched GeoLite2 City, else "
    "/var/lib/GeoIP/GeoLite2-City.mmdb)\n"
    "  --actor NAME   who the audit log names (default: cli:$USER)\n";

struct ctl {
    const char *db_path;
    const char *geoip[MAX_GEOIP];
    size_t n_geoip;
    char actor[128];
    struct db *db;
};

static int usage(const char *problem)
{
    if (problem)
        fprintf(stderr, "gslbctl: %s\n\n", problem);
    fputs(usage_text, stderr);
    return EXIT_USAGE;
}

static int exit_code(int rc)
{
    switch (rc) {
    case 0:
        return 0;
    case -EINVAL:
        return EXIT_INVALID;
    case -ENOENT:
        return EXIT_NOTFOUND;
    case -EEXIST:
    case -EBUSY:
        return EXIT_CONFLICT;
    default:
        return EXIT_RUNTIME;
    }
}

static int report(int rc, const char *err)
{
    if (rc != 0)
        fprintf(stderr, "gslbctl: %s\n", err);
    return exit_code(rc);
}

static bool parse_double(const char *text, double *out)
{
    char *end;
    errno = 0;
    *out = strtod(text, &end);
    return errno == 0 && end != text && *end == '\0' && isfinite(*out);
}

static bool parse_int(const char *text, long min, long max, long *out)
{
    char *end;
    errno = 0;
    *out = strtol(text, &end, 10);
    return errno == 0 && end != text && *end == '\0' && *out >= min && *out <= max;
}

/* Splits "a,b,c" into a new string vector. */
static char **split_list(const char *text, size_t *n_out)
{
    char **v = NULL;
    *n_out = 0;
    while (*text) {
        const char *comma = strchr(text, ',');
        size_t len = comma ? (size_t)(comma - text) : strlen(text);
        if (len > 0) {
            v = xreallocarray(v, *n_out + 1, sizeof(*v));
            v[(*n_out)++] = xstrndup(text, len);
        }
        text += len + (comma != NULL);
    }
    return v;
}

static void strv_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static void json_string_put(FILE *out, const char *s)
{
    if (s == NULL) {
        fputs("null", out);
        return;
    }
    putc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(out, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(out, "\\u%04x", *p);
        else
            putc(*p, out);
    }
    putc('"', out);
}

/* ---- import / export / version / audit ---- */

static char *read_all(FILE *in, size_t *len_out)
{
    size_t cap = 65536, len = 0, got;
    char *buf = xmalloc(cap);
    while ((got = fread(buf + len, 1, cap - len, in)) > 0) {
        len += got;
        if (len == cap)
            buf = xrealloc(buf, cap *= 2);
    }
    *len_out = len;
    return buf;
}

static int cmd_import(struct ctl *ctl, int argc, char **argv)
{
    char err[512];
    size_t len;
    if (argc != 2)
        return usage("import takes one FILE (or - for standard input)");
    FILE *in = strcmp(argv[1], "-") == 0 ? stdin : fopen(argv[1], "rb");
    if (in == NULL) {
        fprintf(stderr, "gslbctl: %s: %s\n", argv[1], strerror(errno));
        return EXIT_RUNTIME;
    }
    char *text = read_all(in, &len);
    bool read_failed = ferror(in);
    if (in != stdin)
        fclose(in);
    if (read_failed) {
        free(text);
        fprintf(stderr, "gslbctl: %s: read error\n", argv[1]);
        return EXIT_RUNTIME;
    }
    int rc = db_import_json(ctl->db, text, len, ctl->actor, err, sizeof(err));
    free(text);
    if (rc == 0) {
        int64_t version = 0;
        db_config_version(ctl->db, &version);
        printf("imported; config version %lld\n", (long long)version);
    }
    return report(rc, err);
}

static int cmd_export(struct ctl *ctl, int argc, char **argv)
{
    char err[512];
    (void)argv;
    if (argc != 1)
        return usage("export takes no arguments");
    char *text = db_export_json(ctl->db, err, sizeof(err));
    if (text == NULL)
        return report(-EIO, err);
    puts(text);
    free(text);
    return 0;
}

static int cmd_version(struct ctl *ctl, int argc, char **argv)
{
    int64_t version = 0;
    int schema = 0;
    (void)argv;
    if (argc != 1)
        return usage("version takes no arguments");
    if (db_config_version(ctl->db, &version) != 0 || db_schema_version(ctl->db, &schema) != 0)
        return report(-EIO, "cannot read versions");
    printf("config version %lld\nschema version %d\n", (long long)version, schema);
    return 0;
}

static int cmd_audit(struct ctl *ctl, int argc, char **argv)
{
    static const struct option opts[] = {
        {"limit", required_argument, NULL, 'l'}, {"before", required_argument, NULL, 'b'}, {0}};
    long limit = 20, before = 0;
    int c;
    optind = 0; /* 0 makes glibc re-initialise getopt, permuting again */
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'l' && parse_int(optarg, 1, 100000, &limit))
            continue;
        if (c == 'b' && parse_int(optarg, 0, LONG_MAX, &before))
            continue;
        return usage("audit: --limit takes 1..100000, --before an entry id");
    }
    struct db_audit_entry *entries;
    size_t n;
    if (db_audit_list(ctl->db, before, (size_t)limit, &entries, &n) != 0)
        return report(-EIO, "cannot read the audit log");
    for (size_t i = 0; i < n; i++) {
        const struct db_audit_entry *e = &entries[i];
        printf("{\"id\":%lld,\"time_ms\":%lld,\"actor\":", (long long)e->id, (long long)e->time_ms);
        json_string_put(stdout, e->actor);
        fputs(",\"action\":", stdout);
        json_string_put(stdout, e->action);
        fputs(",\"object\":", stdout);
        json_string_put(stdout, e->object);
        /* before/after are JSON already; the topology import ones are whole documents. */
        printf(",\"before\":%s,\"after\":%s}\n", e->before ? e->before : "null",
               e->after ? e->after : "null");
    }
    db_audit_free(entries, n);
    return 0;
}

static int cmd_health(struct ctl *ctl, int argc, char **argv)
{
    static const struct option opts[] = {{"history", required_argument, NULL, 'n'}, {0}};
    long history = 0;
    int c;
    optind = 0; /* 0 makes glibc re-initialise getopt, permuting again */
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c != 'n' || !parse_int(optarg, 1, 10000, &history))
            return usage("health: --history takes 1..10000");
    }
    struct db_health_row *rows;
    size_t n;
    if (db_health_state(ctl->db, &rows, &n) != 0)
        return report(-EIO, "cannot read the health state");
    printf("%-5s %-60s %-24s %s\n", "STATE", "OBJECT", "SINCE (UTC)", "REASON");
    for (size_t i = 0; i < n; i++) {
        char since[32];
        time_t t = (time_t)(rows[i].time_ms / 1000);
        struct tm tm;
        strftime(since, sizeof(since), "%Y-%m-%d %H:%M:%S", gmtime_r(&t, &tm));
        printf("%-5s %-60s %-24s %s\n", rows[i].up ? "up" : "DOWN", rows[i].object, since,
               rows[i].reason);
    }
    db_health_free(rows, n);
    if (db_failback_holds(ctl->db, &rows, &n) != 0)
        return report(-EIO, "cannot read the failback holds");
    for (size_t i = 0; i < n; i++)
        printf("%sheld out by manual failback (resume with 'gslbctl region resume'): region %s\n",
               i ? "" : "\n", rows[i].object);
    db_health_free(rows, n);
    if (history > 0) {
        if (db_health_history(ctl->db, (size_t)history, &rows, &n) != 0)
            return report(-EIO, "cannot read the health history");
        printf("\nrecent changes, newest first:\n");
        for (size_t i = 0; i < n; i++) {
            char when[32];
            time_t t = (time_t)(rows[i].time_ms / 1000);
            struct tm tm;
            strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", gmtime_r(&t, &tm));
            printf("%s.%03d  %-4s %s: %s\n", when, (int)(rows[i].time_ms % 1000),
                   rows[i].up ? "up" : "DOWN", rows[i].object, rows[i].reason);
        }
        db_health_free(rows, n);
    }
    return 0;
}

/* ---- regions ---- */

static int region_options(int argc, char **argv, struct db_region *r)
{
    static const struct option opts[] = {
        {"lat", required_argument, NULL, 'a'},          {"lon", required_argument, NULL, 'o'},
        {"display-name", required_argument, NULL, 'd'}, {"state", required_argument, NULL, 's'},
        {"health", required_argument, NULL, 'h'},       {0}};
    int c;
    optind = 0; /* 0 makes glibc re-initialise getopt, permuting again */
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'h':
            if (db_health_force_parse(optarg, &r->force) != 0)
                return usage("--health: expected auto, up or down");
            break;
        case 'a':
            if (!parse_double(optarg, &r->lat))
                return usage("--lat: expected a number of degrees");
            break;
        case 'o':
            if (!parse_double(optarg, &r->lon))
                return usage("--lon: expected a number of degrees");
            break;
        case 'd':
            free(r->display_name);
            r->display_name = xstrdup(optarg);
            break;
        case 's':
            if (db_region_state_parse(optarg, &r->state) != 0)
                return usage("--state: expected active, draining or disabled");
            break;
        default:
            return usage(NULL);
        }
    }
    return optind == argc ? 0 : usage("unexpected argument after the options");
}

static int cmd_region(struct ctl *ctl, struct db_topology *topo, int argc, char **argv)
{
    char err[512];
    int rc;
    const char *verb = argc > 1 ? argv[1] : "";
    if (strcmp(verb, "list") == 0) {
        printf("%-20s %10s %11s  %-9s %s\n", "NAME", "LAT", "LON", "STATE", "DISPLAY NAME");
        for (size_t i = 0; i < topo->n_regions; i++) {
            const struct db_region *r = &topo->regions[i];
            printf("%-20s %10.4f %11.4f  %-9s %s\n", r->name, r->lat, r->lon,
                   db_region_state_name(r->state), r->display_name ? r->display_name : "");
        }
        return 0;
    }
    if (argc < 3)
        return usage("region: expected list, or add|set|remove NAME");
    const char *name = argv[2];
    if (strcmp(verb, "remove") == 0 || strcmp(verb, "resume") == 0) {
        if (argc != 3)
            return usage("region remove and resume take only NAME");
        return report(verb[2] == 'm'
                          ? db_region_remove(ctl->db, name, ctl->actor, err, sizeof(err))
                          : db_region_resume(ctl->db, name, ctl->actor, err, sizeof(err)),
                      err);
    }
    struct db_region r = {.lat = NAN, .lon = NAN};
    const struct db_region *cur = db_topology_region(topo, name);
    if (strcmp(verb, "set") == 0 && cur == NULL)
        return report(-ENOENT, "no such region");
    if (strcmp(verb, "set") == 0)
        r = (struct db_region){NULL,       cur->display_name ? xstrdup(cur->display_name) : NULL,
                               cur->lat,   cur->lon,
                               cur->state, cur->force};
    else if (strcmp(verb, "add") != 0)
        return usage("region: expected list, add, set or remove");
    /* Options follow NAME, which stands in for argv[0] of the option parser. */
    if ((rc = region_options(argc - 2, argv + 2, &r)) == 0) {
        r.name = (char *)(uintptr_t)name;
        if (isnan(r.lat) || isnan(r.lon))
            rc = usage("region add needs --lat and --lon");
        else if (strcmp(verb, "add") == 0)
            rc = report(db_region_add(ctl->db, &r, ctl->actor, err, sizeof(err)), err);
        else
            rc = report(db_region_set(ctl->db, &r, ctl->actor, err, sizeof(err)), err);
    }
    free(r.display_name);
    return rc;
}

/* ---- services ---- */

static int service_options(int argc, char **argv, struct db_service *s, bool *hosts_given)
{
    static const struct option opts[] = {{"host", required_argument, NULL, 'h'},
                                         {"policy", required_argument, NULL, 'p'},
                                         {"sticky", required_argument, NULL, 's'},
                                         {"fallback", required_argument, NULL, 'f'},
                                         {0}};
    int c;
    optind = 0; /* 0 makes glibc re-initialise getopt, permuting again */
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'h':
            if (!*hosts_given) {
                strv_free(s->hosts, s->n_hosts);
                s->hosts = NULL;
                s->n_hosts = 0;
                *hosts_given = true;
            }
            s->hosts = xreallocarray(s->hosts, s->n_hosts + 1, sizeof(char *));
            s->hosts[s->n_hosts++] = xstrdup(optarg);
            break;
        case 'p':
            if (db_policy_parse(optarg, &s->policy) != 0)
                return usage("--policy: expected nearest or failover");
            break;
        case 's':
            if (strcmp(optarg, "yes") != 0 && strcmp(optarg, "no") != 0)
                return usage("--sticky: expected yes or no");
            s->sticky = strcmp(optarg, "yes") == 0;
            break;
        case 'f':
            strv_free(s->fallback, s->n_fallback);
            s->fallback = split_list(optarg, &s->n_fallback);
            break;
        default:
            return usage(NULL);
        }
    }
    return optind == argc ? 0 : usage("unexpected argument after the options");
}

static int cmd_service(struct ctl *ctl, struct db_topology *topo, int argc, char **argv)
{
    char err[512];
    const char *verb = argc > 1 ? argv[1] : "";
    if (strcmp(verb, "list") == 0) {
        printf("%-20s %-8s %-6s %-6s %s\n", "NAME", "POLICY", "STICKY", "POOLS", "HOSTS");
        for (size_t i = 0; i < topo->n_services; i++) {
            const struct db_service *s = &topo->services[i];
            printf("%-20s %-8s %-6s %-6zu", s->name, db_policy_name(s->policy),
                   s->sticky ? "yes" : "no", s->n_pools);
            for (size_t h = 0; h < s->n_hosts; h++)
                printf("%s%s", h ? "," : " ", s->hosts[h]);
            putchar('\n');
        }
        return 0;
    }
    if (argc < 3)
        return usage("service: expected list, or add|set|remove NAME");
    const char *name = argv[2];
    if (strcmp(verb, "remove") == 0) {
        if (argc != 3)
            return usage("service remove takes only NAME");
        return report(db_service_remove(ctl->db, name, ctl->actor, err, sizeof(err)), err);
    }
    struct db_service s = {0};
    bool hosts_given = false;
    const struct db_service *cur = db_topology_service(topo, name);
    if (strcmp(verb, "set") == 0) {
        if (cur == NULL)
            return report(-ENOENT, "no such service");
        s.policy = cur->policy;
        s.sticky = cur->sticky;
        s.hosts = xcalloc(cur->n_hosts + 1, sizeof(char *));
        for (s.n_hosts = 0; s.n_hosts < cur->n_hosts; s.n_hosts++)
            s.hosts[s.n_hosts] = xstrdup(cur->hosts[s.n_hosts]);
        s.fallback = xcalloc(cur->n_fallback + 1, sizeof(char *));
        for (s.n_fallback = 0; s.n_fallback < cur->n_fallback; s.n_fallback++)
            s.fallback[s.n_fallback] = xstrdup(cur->fallback[s.n_fallback]);
    } else if (strcmp(verb, "add") != 0) {
        return usage("service: expected list, add, set or remove");
    }
    int rc = service_options(argc - 2, argv + 2, &s, &hosts_given);
    if (rc == 0) {
        s.name = (char *)(uintptr_t)name;
        if (strcmp(verb, "add") == 0)
            rc = report(db_service_add(ctl->db, &s, ctl->actor, err, sizeof(err)), err);
        else
            rc = report(db_service_set(ctl->db, &s, ctl->actor, err, sizeof(err)), err);
    }
    strv_free(s.hosts, s.n_hosts);
    strv_free(s.fallback, s.n_fallback);
    return rc;
}

/* ---- origins ---- */

struct origin_args {
    const char *service, *region;
    struct db_origin origin;
    bool weight_given, state_given, force_given, tls_given, tls_name_given, tls_verify_given;
};

/* yes/no flags: true, false, or -1 for anything else. */
static int yes_no(const char *text)
{
    return strcmp(text, "yes") == 0 ? 1 : strcmp(text, "no") == 0 ? 0 : -1;
}

static int origin_options(int argc, char **argv, struct origin_args *a)
{
    static const struct option opts[] = {{"service", required_argument, NULL, 's'},
                                         {"region", required_argument, NULL, 'r'},
                                         {"weight", required_argument, NULL, 'w'},
                                         {"state", required_argument, NULL, 't'},
                                         {"health", required_argument, NULL, 'h'},
                                         {"tls", required_argument, NULL, 'T'},
                                         {"tls-name", required_argument, NULL, 'N'},
                                         {"tls-verify", required_argument, NULL, 'V'},
                                         {0}};
    int c;
    long weight;
    optind = 0; /* 0 makes glibc re-initialise getopt, permuting again */
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 's':
            a->service = optarg;
            break;
        case 'r':
            a->region = optarg;
            break;
        case 'w':
            if (!parse_int(optarg, 0, 1000, &weight))
                return usage("--weight: expected an integer 0..1000");
            a->origin.weight = (int)weight;
            a->weight_given = true;
            break;
        case 't':
            if (db_origin_state_parse(optarg, &a->origin.state) != 0)
                return usage("--state: expected enabled, draining or disabled");
            a->state_given = true;
            break;
        case 'h':
            if (db_health_force_parse(optarg, &a->origin.force) != 0)
                return usage("--health: expected auto, up or down");
            a->force_given = true;
            break;
        case 'T':
            if (yes_no(optarg) < 0)
                return usage("--tls: expected yes or no");
            a->origin.tls = yes_no(optarg) == 1;
            a->tls_given = true;
            break;
        case 'V':
            if (yes_no(optarg) < 0)
                return usage("--tls-verify: expected yes or no");
            a->origin.tls_insecure = yes_no(optarg) == 0;
            a->tls_verify_given = true;
            break;
        case 'N':
            a->origin.tls_name = *optarg ? optarg : NULL; /* "": the address's host */
            a->tls_name_given = true;
            break;
        default:
            return usage(NULL);
        }
    }
    return 0;
}

static int cmd_origin(struct ctl *ctl, struct db_topology *topo, int argc, char **argv)
{
    char err[512];
    struct origin_args a = {.origin = {.weight = 1}};
    const char *verb = argc > 1 ? argv[1] : "";
    int rc = origin_options(argc - 1, argv + 1, &a);
    if (rc != 0)
        return rc;
    int n_pos = argc - 1 - optind;
    char *address = n_pos == 1 ? argv[1 + optind] : NULL;
    if (strcmp(verb, "list") == 0) {
        if (n_pos != 0)
            return usage("origin list takes only --service");
        printf("%-16s %-16s %-40s %6s %s\n", "SERVICE", "REGION", "ADDRESS", "WEIGHT", "STATE");
        for (size_t i = 0; i < topo->n_services; i++) {
            const struct db_service *s = &topo->services[i];
            for (size_t p = 0; p < s->n_pools && (!a.service || !strcmp(a.service, s->name)); p++) {
                for (size_t o = 0; o < s->pools[p].n_origins; o++) {
                    const struct db_origin *origin = &s->pools[p].origins[o];
                    printf("%-16s %-16s %-40s %6d %s\n", s->name, s->pools[p].region,
                           origin->address, origin->weight, db_origin_state_name(origin->state));
                }
            }
        }
        return 0;
    }
    if (address == NULL || a.service == NULL || a.region == NULL)
        return usage("origin add|set|remove take ADDRESS, --service and --region");
    if (strcmp(verb, "remove") == 0)
        return report(
            db_origin_remove(ctl->db, a.service, a.region, address, ctl->actor, err, sizeof(err)),
            err);
    a.origin.address = address;
    if (strcmp(verb, "add") == 0)
        return report(
            db_origin_add(ctl->db, a.service, a.region, &a.origin, ctl->actor, err, sizeof(err)),
            err);
    if (strcmp(verb, "set") != 0)
        return usage("origin: expected list, add, set or remove");
    /* set changes only what was given: start from the stored origin. */
    const struct db_service *s = db_topology_service(topo, a.service);
    const struct db_origin *cur = NULL;
    for (size_t p = 0; s && p < s->n_pools; p++) {
        for (size_t o = 0; strcmp(s->pools[p].region, a.region) == 0 && o < s->pools[p].n_origins;
             o++) {
            if (strcmp(s->pools[p].origins[o].address, address) == 0)
                cur = &s->pools[p].origins[o];
        }
    }
    if (cur == NULL)
        return report(-ENOENT, "no such origin");
    struct db_origin updated = *cur;
    if (a.weight_given)
        updated.weight = a.origin.weight;
    if (a.state_given)
        updated.state = a.origin.state;
    if (a.force_given)
        updated.force = a.origin.force;
    if (a.tls_given)
        updated.tls = a.origin.tls;
    if (a.tls_name_given)
        updated.tls_name = a.origin.tls_name;
    if (a.tls_verify_given)
        updated.tls_insecure = a.origin.tls_insecure;
    return report(
        db_origin_set(ctl->db, a.service, a.region, &updated, ctl->actor, err, sizeof(err)), err);
}

/* ---- pools ---- */

static void check_strings_free(struct db_check *check)
{
    free(check->path);
    free(check->host);
    free(check->expect);
    free(check->body);
    free(check->method);
}

static int pool_options(int argc, char **argv, const char **service, const char **region,
                        struct db_pool *pool)
{
    static const struct option opts[] = {{"service", required_argument, NULL, 's'},
                                         {"region", required_argument, NULL, 'r'},
                                         {"min-healthy", required_argument, NULL, 'm'},
                                         {"min-weight-percent", required_argument, NULL, 'w'},
                                         {"failback", required_argument, NULL, 'f'},
                                         {"holddown", required_argument, NULL, 'd'},
                                         {"check-type", required_argument, NULL, 't'},
                                         {"check-path", required_argument, NULL, 'p'},
                                         {"check-host", required_argument, NULL, 'h'},
                                         {"check-expect", required_argument, NULL, 'e'},
                                         {"check-body", required_argument, NULL, 'b'},
                                         {"check-interval", required_argument, NULL, 'i'},
                                         {"check-timeout", required_argument, NULL, 'o'},
                                         {"check-rise", required_argument, NULL, 'R'},
                                         {"check-fall", required_argument, NULL, 'F'},
                                         {"check-method", required_argument, NULL, 'M'},
                                         {0}};
    struct db_check *check = &pool->check;
    char **text = NULL;
    long n;
    int c;
    optind = 0; /* 0 makes glibc re-initialise getopt, permuting again */
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 's':
            *service = optarg;
            continue;
        case 'r':
            *region = optarg;
            continue;
        case 'm':
        case 'w':
        case 'R':
        case 'F':
            if (!parse_int(optarg, 0, 1000, &n))
                return usage("pool: --min-healthy, --min-weight-percent, --check-rise and "
                             "--check-fall take an integer");
            *(c == 'm'   ? &pool->min_healthy
              : c == 'w' ? &pool->min_weight_percent
              : c == 'R' ? &check->rise
                         : &check->fall) = (int)n;
            continue;
        case 'f':
            if (db_failback_parse(optarg, &pool->failback) != 0)
                return usage("--failback: expected auto or manual");
            continue;
        case 'd':
        case 'i':
        case 'o':
            if (parse_duration_ms(optarg, c == 'd'   ? &pool->holddown_ms
                                          : c == 'i' ? &check->interval_ms
                                                     : &check->timeout_ms) != 0)
                return usage("pool: --holddown, --check-interval and --check-timeout take a "
                             "duration such as 500ms, 2s or 1m");
            continue;
        case 't':
            if (db_check_type_parse(optarg, &check->type) != 0)
                return usage("--check-type: expected http, https, tcp or none");
            continue;
        case 'p':
            text = &check->path;
            break;
        case 'h':
            text = &check->host;
            break;
        case 'e':
            text = &check->expect;
            break;
        case 'b':
            text = &check->body;
            break;
        case 'M':
            text = &check->method;
            break;
        default:
            return usage(NULL);
        }
        free(*text); /* an empty value goes back to inheriting */
        *text = *optarg ? xstrdup(optarg) : NULL;
        for (char *m = c == 'M' ? *text : NULL; m && *m; m++) /* methods are upper case */
            *m = (char)(*m >= 'a' && *m <= 'z' ? *m - 'a' + 'A' : *m);
    }
    return optind == argc ? 0 : usage("unexpected argument after the options");
}

static int cmd_pool(struct ctl *ctl, struct db_topology *topo, int argc, char **argv)
{
    char err[512];
    const char *verb = argc > 1 ? argv[1] : "", *service = NULL, *region = NULL;
    if (strcmp(verb, "list") == 0) {
        struct db_pool ignored = {0};
        int rc = pool_options(argc - 1, argv + 1, &service, &region, &ignored);
        if (rc != 0)
            return rc;
        printf("%-16s %-16s %7s %11s %10s %8s %-8s %s\n", "SERVICE", "REGION", "ORIGINS",
               "MIN HEALTHY", "MIN WEIGHT", "FAILBACK", "HOLDDOWN", "CHECK");
        for (size_t i = 0; i < topo->n_services; i++) {
            const struct db_service *s = &topo->services[i];
            for (size_t p = 0; p < s->n_pools && (!service || !strcmp(service, s->name)); p++) {
                const struct db_pool *pool = &s->pools[p];
                char holddown[16] = "default";
                if (pool->holddown_ms)
                    snprintf(holddown, sizeof(holddown), "%dms", pool->holddown_ms);
                printf("%-16s %-16s %7zu %11d %9d%% %8s %-8s %s %s\n", s->name, pool->region,
                       pool->n_origins, pool->min_healthy, pool->min_weight_percent,
                       db_failback_name(pool->failback), holddown,
                       db_check_type_name(pool->check.type),
                       pool->check.path ? pool->check.path : "");
            }
        }
        return 0;
    }
    if (strcmp(verb, "set") != 0)
        return usage("pool: expected list or set");
    /* set changes only what was given: a first pass finds the pool, the second applies the
     * options over its stored settings. */
    struct db_pool pool = {0};
    int rc = pool_options(argc - 1, argv + 1, &service, &region, &pool);
    check_strings_free(&pool.check);
    if (rc != 0 || service == NULL || region == NULL)
        return rc ? rc : usage("pool set takes --service and --region");
    const struct db_service *s = db_topology_service(topo, service);
    const struct db_pool *cur = NULL;
    for (size_t p = 0; s && p < s->n_pools && !cur; p++) {
        if (strcmp(s->pools[p].region, region) == 0)
            cur = &s->pools[p];
    }
    if (cur == NULL)
        return report(-ENOENT, "no such pool (a pool appears with its first origin)");
    pool = *cur;
    pool.origins = NULL;
    pool.n_origins = 0;
    pool.check.path = cur->check.path ? xstrdup(cur->check.path) : NULL;
    pool.check.host = cur->check.host ? xstrdup(cur->check.host) : NULL;
    pool.check.expect = cur->check.expect ? xstrdup(cur->check.expect) : NULL;
    pool.check.body = cur->check.body ? xstrdup(cur->check.body) : NULL;
    pool.check.method = cur->check.method ? xstrdup(cur->check.method) : NULL;
    if ((rc = pool_options(argc - 1, argv + 1, &service, &region, &pool)) == 0)
        rc = report(db_pool_set(ctl->db, service, &pool, ctl->actor, err, sizeof(err)), err);
    check_strings_free(&pool.check);
    return rc;
}

/* ---- rules ---- */

static int cmd_rule(struct ctl *ctl, struct db_topology *topo, int argc, char **argv)
{
    static const struct option opts[] = {
        {"service", required_argument, NULL, 's'}, {"cidr", required_argument, NULL, 'c'},
        {"country", required_argument, NULL, 'n'}, {"continent", required_argument, NULL, 't'},
        {"regions", required_argument, NULL, 'r'}, {0}};
    char err[512];
    const char *verb = argc > 1 ? argv[1] : "", *service = NULL;
    struct db_rule rule = {0};
    int c, n_match = 0, rc;
    optind = 0; /* 0 makes glibc re-initialise getopt, permuting again */
    while ((c = getopt_long(argc - 1, argv + 1, "", opts, NULL)) != -1) {
        switch (c) {
        case 's':
            service = optarg;
            break;
        case 'c':
        case 'n':
        case 't':
            rule.match = c == 'c'   ? DB_MATCH_CIDR
                         : c == 'n' ? DB_MATCH_COUNTRY
                                    : DB_MATCH_CONTINENT;
            free(rule.value);
            rule.value = xstrdup(optarg);
            n_match++;
            break;
        case 'r':
            strv_free(rule.regions, rule.n_regions);
            rule.regions = split_list(optarg, &rule.n_regions);
            break;
        default:
            rc = usage(NULL);
            goto out;
        }
    }
    int n_pos = argc - 1 - optind;
    if (service == NULL) {
        rc = usage("rule commands need --service");
    } else if (strcmp(verb, "list") == 0) {
        const struct db_service *s = db_topology_service(topo, service);
        if (s == NULL) {
            rc = report(-ENOENT, "no such service");
            goto out;
        }
        for (size_t i = 0; i < s->n_rules; i++) {
            printf("%zu\t%s=%s\t", i, db_match_name(s->rules[i].match), s->rules[i].value);
            for (size_t r = 0; r < s->rules[i].n_regions; r++)
                printf("%s%s", r ? "," : "", s->rules[i].regions[r]);
            putchar('\n');
        }
        rc = 0;
    } else if (strcmp(verb, "add") == 0) {
        if (n_match != 1 || rule.n_regions == 0 || n_pos != 0)
            rc =
                usage("rule add needs exactly one of --cidr, --country, --continent and --regions");
        else
            rc = report(db_rule_add(ctl->db, service, &rule, ctl->actor, err, sizeof(err)), err);
    } else if (strcmp(verb, "remove") == 0) {
        long index;
        if (n_pos != 1 || !parse_int(argv[1 + optind], 0, INT_MAX, &index))
            rc = usage("rule remove takes --service and the rule's INDEX (see rule list)");
        else
            rc = report(
                db_rule_remove(ctl->db, service, (size_t)index, ctl->actor, err, sizeof(err)), err);
    } else {
        rc = usage("rule: expected list, add or remove");
    }
out:
    free(rule.value);
    strv_free(rule.regions, rule.n_regions);
    return rc;
}

/* ---- route ---- */

struct router {
    const struct gslb_snapshot *snap;
    struct gslb_balancer *balancer;
    struct geo *geo;
    const char *host;
    struct sbuf line;
};

/* Prints one decision as a JSON line (gslb_explain). Returns 0, or -EINVAL for a bad address. */
static int route_one(struct router *rt, const char *ip_text, FILE *out)
{
    rt->line.len = 0;
    int rc = gslb_explain(rt->snap, rt->balancer, rt->geo, ip_text, rt->host, NULL, &rt->line);
    sbuf_add(&rt->line, "\n", 1);
    fwrite(rt->line.p, 1, rt->line.len, out);
    return rc;
}

static const char *default_geoip(void)
{
    const char *env = getenv("GSLB_GEOIP");
    const char *fetched = geo_fetched_city_path();
    if (env && *env)
        return env;
    return fetched ? fetched : "/var/lib/GeoIP/GeoLite2-City.mmdb";
}

static int cmd_route(struct ctl *ctl, struct db_topology *topo, int argc, char **argv)
{
    static const struct option opts[] = {{"host", required_argument, NULL, 'h'}, {0}};
    struct router rt = {0};
    char err[512];
    int c, rc = 0;
    optind = 0; /* 0 makes glibc re-initialise getopt, permuting again */
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c != 'h')
            return usage(NULL);
        rt.host = optarg;
    }
    if (argc - optind != 1)
        return usage("route takes one IP address, or - to read addresses from standard input");
    const char *target = argv[optind];
    if (ctl->n_geoip == 0)
        ctl->geoip[ctl->n_geoip++] = default_geoip();
    rt.geo = geo_open(ctl->geoip, ctl->n_geoip, err, sizeof(err));
    if (rt.geo == NULL)
        return report(-EIO, err);
    rt.snap = gslb_snapshot_build(topo);
    rt.balancer = gslb_balancer_create(rt.snap);
    if (strcmp(target, "-") != 0) {
        rc = route_one(&rt, target, stdout);
        if (rc != 0)
            fprintf(stderr, "gslbctl: '%s' is not an IPv4 or IPv6 address\n", target);
    } else {
        static char outbuf[1 << 16];
        char *line = NULL;
        size_t cap = 0;
        ssize_t len;
        setvbuf(stdout, outbuf, _IOFBF, sizeof(outbuf));
        while ((len = getline(&line, &cap, stdin)) > 0) {
            while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r' ||
                               line[len - 1] == ' ' || line[len - 1] == '\t'))
                line[--len] = '\0';
            if (len > 0 && route_one(&rt, line, stdout) != 0)
                rc = -EINVAL; /* reported in the output line; keep going */
        }
        free(line);
        fflush(stdout);
    }
    gslb_balancer_destroy(rt.balancer);
    gslb_snapshot_release(rt.snap);
    geo_close(rt.geo);
    free(rt.line.p);
    return exit_code(rc);
}

/* ---- admin console users and API tokens ---- */

/* Reads a password: from standard input when it is not a terminal (one line), else from the
 * terminal without echo, twice. Returns a new string, or NULL with a message printed. */
static char *password_read(void)
{
    char *line = NULL, *again = NULL;
    size_t cap = 0, cap2 = 0;
    if (!isatty(STDIN_FILENO)) {
        ssize_t len = getline(&line, &cap, stdin);
        if (len <= 0) {
            free(line);
            fprintf(stderr, "gslbctl: no password on standard input\n");
            return NULL;
        }
        line[strcspn(line, "\r\n")] = '\0';
        return line;
    }
    struct termios saved, quiet;
    if (tcgetattr(STDIN_FILENO, &saved) != 0)
        return NULL;
    quiet = saved;
    quiet.c_lflag &= ~(tcflag_t)ECHO;
    quiet.c_lflag |= ECHONL;
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    fputs("password: ", stderr);
    ssize_t len = getline(&line, &cap, stdin);
    fputs("again: ", stderr);
    ssize_t len2 = len > 0 ? getline(&again, &cap2, stdin) : -1;
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
    if (len <= 0 || len2 <= 0 || strcmp(line, again) != 0) {
        fprintf(stderr, "gslbctl: the passwords differ\n");
        free(line);
        free(again);
        return NULL;
    }
    free(again);
    line[strcspn(line, "\r\n")] = '\0';
    return line;
}

static int cmd_user(struct ctl *ctl, int argc, char **argv)
{
    char err[512];
    const char *verb = argc > 1 ? argv[1] : "";
    if (strcmp(verb, "list") == 0 && argc == 2) {
        struct db_user *users;
        size_t n;
        if (db_user_list(ctl->db, &users, &n) != 0)
            return report(-EIO, "cannot read the users");
        for (size_t i = 0; i < n; i++) {
            char when[32];
            time_t t = (time_t)(users[i].created_ms / 1000);
            struct tm tm;
            strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", gmtime_r(&t, &tm));
            printf("%-32s created %s UTC\n", users[i].name, when);
        }
        db_user_free(users, n);
        return 0;
    }
    if (argc != 3)
        return usage("user: expected list, or add|passwd|remove NAME");
    if (strcmp(verb, "remove") == 0)
        return report(db_user_remove(ctl->db, argv[2], ctl->actor, err, sizeof(err)), err);
    if (strcmp(verb, "add") != 0 && strcmp(verb, "passwd") != 0)
        return usage("user: expected list, add, passwd or remove");
    char *password = password_read();
    if (password == NULL)
        return EXIT_INVALID;
    int rc = verb[0] == 'a'
                 ? db_user_add(ctl->db, argv[2], password, ctl->actor, err, sizeof(err))
                 : db_user_password_set(ctl->db, argv[2], password, ctl->actor, err, sizeof(err));
    memset(password, 0, strlen(password));
    free(password);
    return report(rc, err);
}

static int cmd_token(struct ctl *ctl, int argc, char **argv)
{
    char err[512];
    const char *verb = argc > 1 ? argv[1] : "";
    struct db_token *tokens;
    size_t n;
    if (strcmp(verb, "add") == 0 && argc == 3) {
        char token[DB_TOKEN_LEN + 1];
        int64_t id;
        int rc = db_token_add(ctl->db, argv[2], ctl->actor, token, &id, err, sizeof(err));
        if (rc == 0) {
            printf("%s\n", token);
            fprintf(stderr,
                    "token %lld '%s': shown this once; send it as 'Authorization: Bearer "
                    "TOKEN'\n",
                    (long long)id, argv[2]);
            memset(token, 0, sizeof(token));
        }
        return report(rc, err);
    }
    if ((strcmp(verb, "list") != 0 || argc != 2) && (strcmp(verb, "remove") != 0 || argc != 3))
        return usage("token: expected list, add NAME or remove NAME|ID");
    if (db_token_list(ctl->db, &tokens, &n) != 0)
        return report(-EIO, "cannot read the tokens");
    int rc = 0;
    if (verb[0] == 'l') {
        printf("%-6s %-24s %-24s %-20s %s\n", "ID", "NAME", "CREATED BY", "CREATED (UTC)",
               "LAST USED (UTC)");
        for (size_t i = 0; i < n; i++) {
            char created[32], used[32] = "never";
            time_t t = (time_t)(tokens[i].created_ms / 1000);
            struct tm tm;
            strftime(created, sizeof(created), "%Y-%m-%d %H:%M:%S", gmtime_r(&t, &tm));
            t = (time_t)(tokens[i].last_used_ms / 1000);
            if (tokens[i].last_used_ms)
                strftime(used, sizeof(used), "%Y-%m-%d %H:%M", gmtime_r(&t, &tm));
            printf("%-6lld %-24s %-24s %-20s %s\n", (long long)tokens[i].id, tokens[i].name,
                   tokens[i].created_by, created, used);
        }
    } else {
        long id = -1;
        for (size_t i = 0; i < n && id < 0; i++) {
            if (strcmp(tokens[i].name, argv[2]) == 0)
                id = (long)tokens[i].id;
        }
        if (id < 0 && !parse_int(argv[2], 1, LONG_MAX, &id))
            rc = report(-ENOENT, "no token has that name or id (see token list)");
        else
            rc = report(db_token_remove(ctl->db, id, ctl->actor, err, sizeof(err)), err);
    }
    db_token_free(tokens, n);
    return rc;
}

/* ---- main ---- */

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"db", required_argument, NULL, 'd'},
                                         {"geoip", required_argument, NULL, 'g'},
                                         {"actor", required_argument, NULL, 'a'},
                                         {"help", no_argument, NULL, 'h'},
                                         {0}};
    struct ctl ctl = {.db_path = getenv("GSLB_DB")};
    char err[512];
    int c;

    if (ctl.db_path == NULL || *ctl.db_path == '\0')
        ctl.db_path = "/var/lib/gslb/gslb.db";
    const char *user = getenv("USER");
    if (user == NULL) {
        struct passwd *pw = getpwuid(getuid());
        user = pw ? pw->pw_name : "unknown";
    }
    snprintf(ctl.actor, sizeof(ctl.actor), "cli:%s", user);
    while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            ctl.db_path = optarg;
            break;
        case 'g':
            if (ctl.n_geoip == MAX_GEOIP)
                return usage("at most 8 --geoip databases");
            ctl.geoip[ctl.n_geoip++] = optarg;
            break;
        case 'a':
            snprintf(ctl.actor, sizeof(ctl.actor), "%s", optarg);
            break;
        case 'h':
            fputs(usage_text, stdout);
            return 0;
        default:
            return usage(NULL);
        }
    }
    if (optind >= argc)
        return usage("no command given");
    char **cmd = argv + optind;
    int cmd_argc = argc - optind;
    log_threshold = LOG_LEVEL_WARN;
    ctl.db = db_open(ctl.db_path, err, sizeof(err));
    if (ctl.db == NULL) {
        fprintf(stderr, "gslbctl: %s\n", err);
        return EXIT_RUNTIME;
    }
    int rc;
    struct db_topology *topo = NULL;
    if (strcmp(cmd[0], "import") == 0)
        rc = cmd_import(&ctl, cmd_argc, cmd);
    else if (strcmp(cmd[0], "export") == 0)
        rc = cmd_export(&ctl, cmd_argc, cmd);
    else if (strcmp(cmd[0], "version") == 0)
        rc = cmd_version(&ctl, cmd_argc, cmd);
    else if (strcmp(cmd[0], "audit") == 0)
        rc = cmd_audit(&ctl, cmd_argc, cmd);
    else if (strcmp(cmd[0], "health") == 0)
        rc = cmd_health(&ctl, cmd_argc, cmd);
    else if (strcmp(cmd[0], "user") == 0)
        rc = cmd_user(&ctl, cmd_argc, cmd);
    else if (strcmp(cmd[0], "token") == 0)
        rc = cmd_token(&ctl, cmd_argc, cmd);
    else if (db_topology_load(ctl.db, &topo, err, sizeof(err)) != 0)
        rc = report(-EIO, err);
    else if (strcmp(cmd[0], "region") == 0)
        rc = cmd_region(&ctl, topo, cmd_argc, cmd);
    else if (strcmp(cmd[0], "service") == 0)
        rc = cmd_service(&ctl, topo, cmd_argc, cmd);
    else if (strcmp(cmd[0], "origin") == 0)
        rc = cmd_origin(&ctl, topo, cmd_argc, cmd);
    else if (strcmp(cmd[0], "pool") == 0)
        rc = cmd_pool(&ctl, topo, cmd_argc, cmd);
    else if (strcmp(cmd[0], "rule") == 0)
        rc = cmd_rule(&ctl, topo, cmd_argc, cmd);
    else if (strcmp(cmd[0], "route") == 0)
        rc = cmd_route(&ctl, topo, cmd_argc, cmd);
    else
        rc = usage("unknown command");
    db_topology_free(topo);
    db_close(ctl.db);
    return rc;
}
