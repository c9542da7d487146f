/* proxy/tickets.c - the keys that seal TLS session tickets: one ring for the whole process,
 * rotated.
 *
 * OpenSSL gives each server context one random ticket key for its life: a long-lived daemon would
 * seal every ticket it ever issues with the same key, so whoever learns it can open every
 * recorded session. Here a new key is made once the current one has sealed for tls-ticket-rotate
 * (lazily: on the first ticket after that), and the two before it still open tickets, so a
 * ticket resumes for between two and three periods; the session timeout is set to two periods,
 * which is what clients are told the ticket lives. A ticket under an older key, or one that
 * opened with a previous key, is answered with a full handshake or a fresh ticket. The ring is
 * not in any context, so the contexts a SIGHUP makes anew keep opening the tickets issued before
 * it. One mutex: taken once per handshake that issues or opens a ticket.
 *
 * Machines that share clients (DNS sends a client to any of them) share keys with
 * tls-ticket-key-file instead: keys the operator makes and rotates, the same file on each, read
 * at start and on SIGHUP. Its first key seals, every key in it opens, and nothing rotates on its
 * own. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "proxy/proxy_int.h"

#define TICKET_KEYS      3 /* the sealing one and the two before it */
#define TICKET_FILE_KEYS 8
#define TICKET_KEY_BYTES 80 /* in a key file: name, HMAC-SHA256 key, AES-256 key */

struct ticket_key {
    unsigned char name[16]; /* sent in the clear at the start of each ticket */
    unsigned char aes[32];
    unsigned char hmac[32];
    int64_t made_ms; /* monotonic; 0: the slot is empty */
};

static pthread_mutex_t ring_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ticket_key ring[TICKET_KEYS];
static unsigned sealing;                /* index of the key that seals */
static int64_t rotate_ms = 3600 * 1000; /* how long a key seals */

struct ticket_keys {
    struct ticket_key key[TICKET_FILE_KEYS]; /* the first seals */
    int n;
};

static struct ticket_keys *shared; /* from tls-ticket-key-file, in place of the ring; or NULL */

static int64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + 1; /* never 0: an empty slot */
}

/* Called with the lock held. Replaces the oldest key with a new one that seals from now on. */
static int ring_rotate(int64_t now)
{
    unsigned next = (sealing + 1) % TICKET_KEYS;
    struct ticket_key k;
    if (RAND_bytes(k.name, sizeof(k.name)) != 1 || RAND_bytes(k.aes, sizeof(k.aes)) != 1 ||
        RAND_bytes(k.hmac, sizeof(k.hmac)) != 1) {
        OPENSSL_cleanse(&k, sizeof(k));
        return -1;
    }
    k.made_ms = now;
    OPENSSL_cleanse(&ring[next], sizeof(ring[next]));
    ring[next] = k;
    OPENSSL_cleanse(&k, sizeof(k));
    sealing = next;
    return 0;
}

static int ticket_key_apply(const struct ticket_key *k, const unsigned char *iv,
                            EVP_CIPHER_CTX *cipher, EVP_MAC_CTX *mac, int enc)
{
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, (void *)(uintptr_t)k->hmac,
                                          sizeof(k->hmac)),
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)(uintptr_t) "SHA256", 0),
        OSSL_PARAM_construct_end(),
    };
    if (EVP_MAC_CTX_set_params(mac, params) != 1)
        return -1;
    return EVP_CipherInit_ex(cipher, EVP_aes_256_cbc(), NULL, k->aes, iv, enc) == 1 ? 0 : -1;
}

/* Called with the lock held. The <i>th key that opens tickets, the newest (the sealing one)
 * first: the file's if there is one, else the ring's; NULL past the last. */
static const struct ticket_key *opening_key(int i)
{
    if (shared)
        return i < shared->n ? &shared->key[i] : NULL;
    return i < TICKET_KEYS ? &ring[(sealing + TICKET_KEYS - (unsigned)i) % TICKET_KEYS] : NULL;
}

/* OpenSSL's ticket callback: <enc> 1 to seal a new ticket (name and IV to fill in), 0 to open one
 * named <name>. Returns 1, 2 (opened: issue a fresh ticket), 0 (not ours any more: a full
 * handshake) or -1. */
static int ticket_key_cb(SSL *ssl, unsigned char name[16], unsigned char *iv,
                         EVP_CIPHER_CTX *cipher, EVP_MAC_CTX *mac, int enc)
{
    (void)ssl;
    int rc = -1;
    const struct ticket_key *k;
    pthread_mutex_lock(&ring_lock);
    if (enc) {
        int64_t now = monotonic_ms();
        if (!shared && (ring[sealing].made_ms == 0 || now - ring[sealing].made_ms >= rotate_ms) &&
            ring_rotate(now) != 0)
            goto out;
        k = shared ? &shared->key[0] : &ring[sealing];
        memcpy(name, k->name, sizeof(k->name));
        int iv_len = EVP_CIPHER_get_iv_length(EVP_aes_256_cbc());
        if (RAND_bytes(iv, iv_len) == 1 && ticket_key_apply(k, iv, cipher, mac, 1) == 0)
            rc = 1;
        goto out;
    }
    rc = 0;
    for (int i = 0; (k = opening_key(i)) != NULL; i++) {
        if (k->made_ms == 0 || memcmp(name, k->name, sizeof(k->name)) != 0)
            continue;
        rc = ticket_key_apply(k, iv, cipher, mac, 0) != 0 ? -1 : i == 0 ? 1 : 2;
        break;
    }
out:
    pthread_mutex_unlock(&ring_lock);
    return rc;
}

int tickets_use(SSL_CTX *ctx, int period_ms)
{
    long period_s = period_ms < 1000 ? 1 : period_ms / 1000; /* what a session's timeout counts */
    SSL_CTX_set_timeout(ctx, period_s * (TICKET_KEYS - 1));
    return SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_key_cb) == 1 ? 0 : -1;
}

void tickets_free(struct ticket_keys *keys)
{
    if (keys)
        OPENSSL_clear_free(keys, sizeof(*keys));
}

/* Reads the key lines of <text> (NUL-terminated) into <keys>; returns NULL or what is wrong,
 * with the line in <*bad_line> (0: the file as a whole). */
static const char *keys_parse(char *text, struct ticket_keys *keys, int *bad_line)
{
    static const char base64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const char *why = NULL;
    unsigned char raw[TICKET_KEY_BYTES + 1];
    char *next;
    *bad_line = 0;
    for (int line = 1; why == NULL && *text; line++, text = next) {
        char *end = strchr(text, '\n');
        next = end ? end + 1 : text + strlen(text);
        while (text < next && (*text == ' ' || *text == '\t'))
            text++;
        size_t len = (size_t)(next - text);
        while (len > 0 && strchr(" \t\r\n", text[len - 1]))
            len--;
        if (len == 0 || text[0] == '#')
            continue;
        *bad_line = line;
        /* 80 bytes are 107 characters of base64 and one '=' of padding, which decodes as 81. */
        if (keys->n == TICKET_FILE_KEYS)
            why = "more than 8 keys";
        else if (len != 108 || strspn(text, base64) != 107 || text[107] != '=' ||
                 EVP_DecodeBlock(raw, (const unsigned char *)text, 108) != TICKET_KEY_BYTES + 1)
            why = "not a key: each line holds 80 random bytes in base64 "
                  "(openssl rand 80 | base64 -w0)";
        else {
            struct ticket_key *k = &keys->key[keys->n++];
            memcpy(k->name, raw, sizeof(k->name));
            memcpy(k->hmac, raw + 16, sizeof(k->hmac));
            memcpy(k->aes, raw + 48, sizeof(k->aes));
            k->made_ms = 1; /* not an empty slot */
        }
    }
    OPENSSL_cleanse(raw, sizeof(raw));
    if (why == NULL && keys->n == 0) {
        *bad_line = 0;
        why = "no key in it";
    }
    return why;
}

/* The file is read into a buffer of ours, wiped afterwards: stdio's would be freed with the keys
 * in it. */
struct ticket_keys *tickets_read(const char *path, char *err, size_t errlen)
{
    char text[16 * 1024 + 1];
    size_t len = 0;
    ssize_t n = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    while (fd >= 0 && len < sizeof(text) - 1 &&
           (n = read(fd, text + len, sizeof(text) - 1 - len)) > 0)
        len += (size_t)n;
    int read_errno = errno;
    text[len] = '\0';
    struct ticket_keys *keys = NULL;
    const char *why = NULL;
    int bad_line = 0;
    if (fd < 0 || n < 0)
        why = strerror(read_errno);
    else if (len == sizeof(text) - 1)
        why = "16 KiB or more (8 keys take 872 bytes)";
    else if (memchr(text, '\0', len))
        why = "not text (it holds a NUL byte)";
    else if ((keys = OPENSSL_zalloc(sizeof(*keys))) == NULL)
        why = "out of memory";
    else
        why = keys_parse(text, keys, &bad_line);
    if (fd >= 0)
        close(fd);
    OPENSSL_cleanse(text, sizeof(text));
    if (why == NULL)
        return keys;
    tickets_free(keys);
    if (bad_line > 0)
        snprintf(err, errlen, "tls-ticket-key-file: %s: line %d: %s", path, bad_line, why);
    else
        snprintf(err, errlen, "tls-ticket-key-file: %s: %s", path, why);
    return NULL;
}

void tickets_set(struct ticket_keys *keys, int period_ms)
{
    pthread_mutex_lock(&ring_lock);
    struct ticket_keys *old = shared;
    shared = keys;
    rotate_ms = period_ms;
    if (keys) { /* the ring's keys would outlive their periods unused: gone, made anew if needed */
        OPENSSL_cleanse(ring, sizeof(ring));
        sealing = 0;
    }
    pthread_mutex_unlock(&ring_lock);
    tickets_free(old);
}
