/* tests/proxy/test_sessions.c - the process-wide table of TLS sessions resumed by ID
 * (proxy/sessions.c), through the callbacks it gives OpenSSL: a session put in comes back
 * whole, TLS 1.3 ones are not kept, an expired or removed one is gone, and a long-lived session
 * survives a flood of shorter-lived ones (each set keeps the one that expires last). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>
#include <time.h>

#include <openssl/rand.h>

#include "proxy/proxy_int.h"

static const SSL_CIPHER *cipher; /* any will do: i2d wants one */

struct table {
    SSL_CTX *ctx;
    int (*put)(SSL *, SSL_SESSION *);
    SSL_SESSION *(*get)(SSL *, const unsigned char *, int, int *);
    void (*remove)(SSL_CTX *, SSL_SESSION *);
};

static struct table table_open(void)
{
    struct table t = {.ctx = SSL_CTX_new(TLS_server_method())};
    assert_non_null(t.ctx);
    sessions_use(t.ctx);
    t.put = SSL_CTX_sess_get_new_cb(t.ctx);
    t.get = SSL_CTX_sess_get_get_cb(t.ctx);
    t.remove = SSL_CTX_sess_get_remove_cb(t.ctx);
    assert_non_null(t.put);
    assert_non_null(t.get);
    assert_non_null(t.remove);
    if (cipher == NULL) {
        static const unsigned char aes128_gcm[2] = {0xc0, 0x2f}; /* ECDHE-RSA-AES128-GCM-SHA256 */
        SSL *ssl = SSL_new(t.ctx);
        cipher = SSL_CIPHER_find(ssl, aes128_gcm);
        SSL_free(ssl);
        assert_non_null(cipher);
    }
    return t;
}

/* A session with a random 32-byte ID (returned in <id>), living <timeout> seconds from now. */
static SSL_SESSION *session_make(int version, long timeout, unsigned char id[32])
{
    SSL_SESSION *s = SSL_SESSION_new();
    assert_non_null(s);
    assert_int_equal(RAND_bytes(id, 32), 1);
    assert_int_equal(SSL_SESSION_set1_id(s, id, 32), 1);
    assert_int_equal(SSL_SESSION_set_protocol_version(s, version), 1);
    static const unsigned char secret[48] = "forty-eight bytes of master secret, as TLS 1.2 ";
    assert_int_equal(SSL_SESSION_set1_master_key(s, secret, sizeof(secret)), 1);
    assert_int_equal(SSL_SESSION_set_cipher(s, cipher), 1);
    SSL_SESSION_set_time(s, (long)time(NULL));
    SSL_SESSION_set_timeout(s, timeout);
    assert_true(i2d_SSL_SESSION(s, NULL) > 0);
    return s;
}

/* Whether the table gives back a session with this ID (freeing what it gave). */
static bool table_has(const struct table *t, const unsigned char id[32])
{
    int copy = 1;
    SSL_SESSION *s = t->get(NULL, id, 32, &copy);
    if (s == NULL)
        return false;
    assert_int_equal(copy, 0);
    unsigned int len;
    const unsigned char *got = SSL_SESSION_get_id(s, &len);
    assert_int_equal(len, 32);
    assert_memory_equal(got, id, 32);
    SSL_SESSION_free(s);
    return true;
}

static void keeps_tls12_sessions_and_not_tls13_ones(void **state)
{
    (void)state;
    struct table t = table_open();
    unsigned char id12[32], id13[32];
    SSL_SESSION *s12 = session_make(TLS1_2_VERSION, 300, id12);
    SSL_SESSION *s13 = session_make(TLS1_3_VERSION, 300, id13);
    assert_int_equal(t.put(NULL, s12), 0); /* the table keeps no reference */
    assert_int_equal(t.put(NULL, s13), 0);
    assert_true(table_has(&t, id12));
    assert_true(table_has(&t, id12)); /* asked for again: still there */
    assert_false(table_has(&t, id13));
    t.remove(t.ctx, s12);
    assert_false(table_has(&t, id12));
    SSL_SESSION_free(s12);
    SSL_SESSION_free(s13);
    SSL_CTX_free(t.ctx);
}

static void an_expired_session_is_gone(void **state)
{
    (void)state;
    struct table t = table_open();
    unsigned char id[32];
    SSL_SESSION *s = session_make(TLS1_2_VERSION, 300, id);
    SSL_SESSION_set_time(s, (long)time(NULL) - 600); /* made ten minutes ago, for five */
    t.put(NULL, s);
    assert_false(table_has(&t, id));
    SSL_SESSION_free(s);
    SSL_CTX_free(t.ctx);
}

/* 50,000 sessions of a minute, three times the table's 16,384 slots, go through it after one of
 * an hour: every set keeps the session that expires last, so the long one stays. A table with
 * one slot per set would almost surely (all but 0.2%) have lost it to the first session hashed to
 * its slot. */
static void a_long_lived_session_survives_a_flood_of_short_ones(void **state)
{
    (void)state;
    struct table t = table_open();
    unsigned char long_id[32], id[32], last_id[32];
    SSL_SESSION *long_lived = session_make(TLS1_2_VERSION, 3600, long_id);
    t.put(NULL, long_lived);
    for (int i = 0; i < 50000; i++) {
        SSL_SESSION *s = session_make(TLS1_2_VERSION, 60, id);
        t.put(NULL, s);
        SSL_SESSION_free(s);
    }
    memcpy(last_id, id, sizeof(id));
    assert_true(table_has(&t, long_id));
    assert_true(table_has(&t, last_id)); /* the newest one found room too */
    SSL_SESSION_free(long_lived);
    SSL_CTX_free(t.ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(keeps_tls12_sessions_and_not_tls13_ones),
        cmocka_unit_test(an_expired_session_is_gone),
        cmocka_unit_test(a_long_lived_session_survives_a_flood_of_short_ones),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
