/* proxy/sessions.c - the TLS sessions clients resume by ID (TLS 1.2 clients without tickets),
 * kept for the whole process instead of in each server context.
 *
 * OpenSSL's own session cache belongs to one SSL_CTX, and a SIGHUP makes every context anew: all
 * sessions kept by ID were lost with each reload. Here they are kept serialized (i2d) in one
 * table of SESSION_SETS sets of SESSION_WAYS slots, the set chosen by a hash of the ID: a new
 * session takes an empty slot of its set, else the one that expires first, so the table never
 * grows, and an entry past its timeout is dropped when asked for. TLS 1.3 sessions are not kept:
 * they resume by stateless ticket. One mutex, taken once per full handshake that makes a session
 * and once per resumption attempt by ID. */
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "common/hash.h"
#include "proxy/proxy_int.h"

#define SESSION_SETS 8192
#define SESSION_WAYS 2 /* 16,384 sessions in all */

struct session_slot {
    unsigned char id[SSL_MAX_SSL_SESSION_ID_LENGTH];
    unsigned int id_len; /* 0: empty */
    unsigned char *der;
    int der_len;
    time_t expires;
};

static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static struct session_slot table[SESSION_SETS][SESSION_WAYS];

static struct session_slot *set_of(const unsigned char *id, unsigned int len)
{
    uint64_t h = len;
    for (unsigned int i = 0; i < len; i += 8) { /* IDs are random already: this only folds them */
        uint64_t word = 0;
        memcpy(&word, id + i, len - i < 8 ? len - i : 8);
        h = hash_mix64(h ^ word);
    }
    return table[h % SESSION_SETS];
}

/* The slot of <set> that holds the session with this ID, or NULL. */
static struct session_slot *slot_find(struct session_slot *set, const unsigned char *id,
                                      unsigned int len)
{
    for (int i = 0; i < SESSION_WAYS; i++) {
        if (set[i].id_len == len && memcmp(set[i].id, id, len) == 0)
            return &set[i];
    }
    return NULL;
}

/* Where a new session with this ID goes: its own slot, an empty one, or the soonest to expire. */
static struct session_slot *slot_for_new(struct session_slot *set, const unsigned char *id,
                                         unsigned int len)
{
    struct session_slot *victim = slot_find(set, id, len);
    if (victim)
        return victim;
    victim = &set[0];
    for (int i = 0; i < SESSION_WAYS && victim->id_len != 0; i++) {
        if (set[i].id_len == 0 || set[i].expires < victim->expires)
            victim = &set[i];
    }
    return victim;
}

static void slot_clear(struct session_slot *s)
{
    OPENSSL_clear_free(s->der, (size_t)s->der_len); /* it holds the master secret */
    memset(s, 0, sizeof(*s));
}

static int session_new_cb(SSL *ssl, SSL_SESSION *sess)
{
    (void)ssl;
    unsigned int id_len;
    const unsigned char *id = SSL_SESSION_get_id(sess, &id_len);
    /* TLS 1.3 sessions resume by stateless ticket (tickets.c), never looked up by ID; that would
     * change with SSL_OP_NO_TICKET or early data, which make OpenSSL keep them by ID. */
    if (SSL_SESSION_get_protocol_version(sess) >= TLS1_3_VERSION)
        return 0;
    int der_len = i2d_SSL_SESSION(sess, NULL);
    if (id_len == 0 || id_len > SSL_MAX_SSL_SESSION_ID_LENGTH || der_len <= 0)
        return 0;
    unsigned char *der = OPENSSL_malloc((size_t)der_len), *p = der;
    if (der == NULL)
        return 0;
    i2d_SSL_SESSION(sess, &p);
    pthread_mutex_lock(&table_lock);
    struct session_slot *s = slot_for_new(set_of(id, id_len), id, id_len);
    slot_clear(s);
    memcpy(s->id, id, id_len);
    s->id_len = id_len;
    s->der = der;
    s->der_len = der_len;
    s->expires = (time_t)SSL_SESSION_get_time(sess) + (time_t)SSL_SESSION_get_timeout(sess);
    pthread_mutex_unlock(&table_lock);
    return 0; /* we keep no reference to <sess> */
}

static SSL_SESSION *session_get_cb(SSL *ssl, const unsigned char *id, int len, int *copy)
{
    (void)ssl;
    SSL_SESSION *sess = NULL;
    *copy = 0; /* the session returned is the caller's */
    if (len <= 0 || len > SSL_MAX_SSL_SESSION_ID_LENGTH)
        return NULL;
    pthread_mutex_lock(&table_lock);
    struct session_slot *s = slot_find(set_of(id, (unsigned int)len), id, (unsigned int)len);
    if (s) {
        const unsigned char *p = s->der;
        if (s->expires > time(NULL))
            sess = d2i_SSL_SESSION(NULL, &p, s->der_len);
        else
            slot_clear(s);
    }
    pthread_mutex_unlock(&table_lock);
    return sess;
}

static void session_remove_cb(SSL_CTX *ctx, SSL_SESSION *sess)
{
    (void)ctx;
    unsigned int id_len;
    const unsigned char *id = SSL_SESSION_get_id(sess, &id_len);
    if (id_len == 0 || id_len > SSL_MAX_SSL_SESSION_ID_LENGTH)
        return;
    pthread_mutex_lock(&table_lock);
    struct session_slot *s = slot_find(set_of(id, id_len), id, id_len);
    if (s)
        slot_clear(s);
    pthread_mutex_unlock(&table_lock);
}

void sessions_use(SSL_CTX *ctx)
{
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER | SSL_SESS_CACHE_NO_INTERNAL);
    SSL_CTX_sess_set_new_cb(ctx, session_new_cb);
    SSL_CTX_sess_set_get_cb(ctx, session_get_cb);
    SSL_CTX_sess_set_remove_cb(ctx, session_remove_cb);
}
