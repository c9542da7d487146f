/* proxy/ocsp.c - OCSP stapling on the TLS listeners, from response files the operator refreshes.
 *
 * As HAProxy does it: beside a tls-cert file may sit "<tls-cert>.ocsp", a DER-encoded OCSP
 * response (what `openssl ocsp -respout` writes), which the operator's own cron job fetches again
 * before it expires, followed by a SIGHUP. gslbd never asks a responder itself, so no responder
 * outage or slowness ever reaches a handshake. The file is read with the rest of the contexts, at
 * start and on every SIGHUP, and checked then: a successful response, holding one answer, for this
 * very certificate (the issuer needed to name it comes from the chain file), not expired. A
 * response that fails is an error like a bad key (so the reload keeps every running context); a
 * missing file only means that pair staples nothing.
 *
 * The staple hangs off its SSL_CTX, in an ex_data slot whose free callback releases it, so it
 * lives exactly as long as the context: an SSL that switched to a context on SNI holds that
 * context, and a reload never pulls a staple from under a handshake. The status callback is set on
 * each context that has a staple, because OpenSSL calls the one of the context current after the
 * SNI callback: the staple sent is the served certificate's. Expiry is checked again at each
 * handshake, against a stored time, since a response past its nextUpdate is refused by clients
 * and only proves we are stale. */
#include <errno.h>
#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/log.h"
#include "common/xalloc.h"
#include "proxy/proxy_int.h"

/* Real responses are 1 to 4 KB; anything much bigger is not one. */
#define OCSP_FILE_MAX (256 * 1024)
/* How far in the future thisUpdate may be: the responder's clock and ours differ a little. */
#define OCSP_CLOCK_SKEW_SEC 300

struct ocsp_staple {
    unsigned char *der; /* the file as read: sent as is */
    size_t der_len;
    time_t next_update;        /* not stapled from this second on */
    atomic_bool expiry_logged; /* the warning is logged once per staple */
    char path[sizeof(((struct proxy_config *)0)->tls_cert[0]) + sizeof(".ocsp")]; /* for logs */
};

static int ocsp_staple_index = -1;
static pthread_once_t ocsp_staple_index_once = PTHREAD_ONCE_INIT;

static void ocsp_staple_free(struct ocsp_staple *staple)
{
    if (staple == NULL)
        return;
    free(staple->der);
    free(staple);
}

/* OpenSSL's free callback for the SSL_CTX slot: the context is going, so is its staple. */
static void ocsp_staple_free_cb(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
                                void *argp)
{
    (void)parent;
    (void)ad;
    (void)idx;
    (void)argl;
    (void)argp;
    ocsp_staple_free(ptr); /* NULL for contexts without one */
}

static void ocsp_staple_index_make(void)
{
    ocsp_staple_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, ocsp_staple_free_cb);
}

static void time_format(time_t t, char *buf, size_t len)
{
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, len, "%lld", (long long)t);
}

/* Runs in the worker's thread, during the handshake of a client that asked for status, on the
 * context that serves the certificate (<arg> is that context's staple). */
static int ocsp_status_cb(SSL *ssl, void *arg)
{
    struct ocsp_staple *staple = arg;
    if (time(NULL) >= staple->next_update) {
        if (!atomic_exchange(&staple->expiry_logged, true)) {
            char when[32];
            time_format(staple->next_update, when, sizeof(when));
            log_warn("proxy: tls-cert: %s: OCSP response expired at %s, no longer stapled; "
                     "fetch a new one and SIGHUP",
                     staple->path, when);
        }
        return SSL_TLSEXT_ERR_NOACK;
    }
    /* OpenSSL frees what it is given once the handshake has sent it: each handshake gets a copy. */
    unsigned char *copy = OPENSSL_memdup(staple->der, staple->der_len);
    if (copy == NULL || SSL_set_tlsext_status_ocsp_resp(ssl, copy, (long)staple->der_len) != 1) {
        OPENSSL_free(copy);
        return SSL_TLSEXT_ERR_NOACK;
    }
    return SSL_TLSEXT_ERR_OK;
}

/* Reads the whole of <path> into a new buffer. Returns 0, -ENOENT when there is no such file,
 * -EFBIG past OCSP_FILE_MAX, or another negative errno. */
static int ocsp_file_read(const char *path, unsigned char **data_out, size_t *len_out)
{
    struct stat st;
    int rc = 0;
    unsigned char *data = NULL;
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return -errno;
    if (fstat(fileno(f), &st) != 0) {
        rc = -errno;
        goto out;
    }
    if (st.st_size > OCSP_FILE_MAX) {
        rc = -EFBIG;
        goto out;
    }
    data = xmalloc((size_t)st.st_size + 1);
    size_t len = fread(data, 1, (size_t)st.st_size + 1, f);
    if (ferror(f) || len != (size_t)st.st_size) {
        rc = -EIO; /* unreadable, or changed size while read: half a response is none */
        goto out;
    }
    *data_out = data;
    *len_out = len;
    data = NULL;
out:
    free(data);
    fclose(f);
    return rc;
}

/* The certificate in <chain> that issued <leaf>, or NULL. */
static X509 *ocsp_issuer_find(X509 *leaf, STACK_OF(X509) * chain)
{
    for (int i = 0; i < sk_X509_num(chain); i++) {
        X509 *candidate = sk_X509_value(chain, i);
        if (X509_check_issued(candidate, leaf) == X509_V_OK)
            return candidate;
    }
    return NULL;
}

/* Checks that <der> is a successful OCSP response with one answer, for the certificate <ctx>
 * serves, valid now; sets <next_update_out> and <cert_status_out> (V_OCSP_CERTSTATUS_*). On
 * failure returns -EINVAL with the reason (without the file's name) in <err>. */
static int ocsp_response_check(SSL_CTX *ctx, const unsigned char *der, size_t len,
                               time_t *next_update_out, int *cert_status_out, char *err,
                               size_t errlen)
{
    int rc = -EINVAL, status = -1, reason = -1;
    const unsigned char *p = der;
    OCSP_RESPONSE *resp = d2i_OCSP_RESPONSE(NULL, &p, (long)len);
    OCSP_BASICRESP *basic = NULL;
    OCSP_CERTID *id = NULL;
    ASN1_GENERALIZEDTIME *this_update = NULL, *next_update = NULL, *revoked_at = NULL;
    X509 *leaf = SSL_CTX_get0_certificate(ctx), *issuer = NULL;
    STACK_OF(X509) *chain = NULL;
    struct tm tm;

    if (resp == NULL || p != der + len) {
        snprintf(err, errlen, "not a DER-encoded OCSP response");
        goto out;
    }
    if (OCSP_response_status(resp) != OCSP_RESPONSE_STATUS_SUCCESSFUL) {
        snprintf(err, errlen, "the responder answered '%s', not 'successful'",
                 OCSP_response_status_str(OCSP_response_status(resp)));
        goto out;
    }
    basic = OCSP_response_get1_basic(resp);
    if (basic == NULL) {
        snprintf(err, errlen, "holds no basic OCSP response");
        goto out;
    }
    if (OCSP_resp_count(basic) != 1) {
        snprintf(err, errlen, "holds %d answers, where one for this certificate is expected",
                 OCSP_resp_count(basic));
        goto out;
    }
    SSL_CTX_get0_chain_certs(ctx, &chain);
    issuer = leaf ? ocsp_issuer_find(leaf, chain) : NULL;
    if (issuer == NULL) {
        snprintf(err, errlen,
                 "the tls-cert chain must include the certificate's issuer, after it, to match "
                 "the response to the certificate");
        goto out;
    }
    /* The answer names the certificate by hashes of its issuer and the hash algorithm is the
     * responder's choice: SHA-1 (openssl ocsp, most CAs) or SHA-256. */
    const EVP_MD *digests[] = {EVP_sha1(), EVP_sha256()};
    for (size_t i = 0; i < sizeof(digests) / sizeof(digests[0]) && status < 0; i++) {
        OCSP_CERTID_free(id);
        id = OCSP_cert_to_id(digests[i], leaf, issuer);
        if (id == NULL || OCSP_resp_find_status(basic, id, &status, &reason, &revoked_at,
                                                &this_update, &next_update) != 1)
            status = -1;
    }
    if (status < 0) {
        snprintf(err, errlen, "the response is not for this certificate");
        goto out;
    }
    if (next_update == NULL || ASN1_TIME_to_tm(next_update, &tm) != 1) {
        snprintf(err, errlen, "the response has no nextUpdate, so it cannot be told when stale");
        goto out;
    }
    time_t next = timegm(&tm), now = time(NULL);
    if (next <= now) {
        char when[32];
        time_format(next, when, sizeof(when));
        snprintf(err, errlen, "the response expired at %s (nextUpdate)", when);
        goto out;
    }
    if (OCSP_check_validity(this_update, next_update, OCSP_CLOCK_SKEW_SEC, -1) != 1) {
        snprintf(err, errlen,
                 "the response is not valid now (thisUpdate in the future, or after nextUpdate)");
        goto out;
    }
    *next_update_out = next;
    *cert_status_out = status;
    rc = 0;
out:
    ERR_clear_error(); /* what failed is in <err>; leave nothing for the next caller to misread */
    OCSP_CERTID_free(id);
    OCSP_BASICRESP_free(basic);
    OCSP_RESPONSE_free(resp);
    return rc;
}

int ocsp_staple_load(SSL_CTX *ctx, const char *cert_path, char *err, size_t errlen)
{
    struct ocsp_staple *staple = NULL;
    unsigned char *der = NULL;
    size_t len = 0;
    char path[sizeof(staple->path)], reason[200];
    int rc;

    pthread_once(&ocsp_staple_index_once, ocsp_staple_index_make);
    if ((size_t)snprintf(path, sizeof(path), "%s.ocsp", cert_path) >= sizeof(path)) {
        snprintf(err, errlen, "tls-cert: %s.ocsp: path too long", cert_path);
        return -ENAMETOOLONG;
    }
    rc = ocsp_file_read(path, &der, &len);
    if (rc == -ENOENT)
        return 0; /* no stapling for this pair */
    if (rc != 0) {
        snprintf(err, errlen, "tls-cert: %s: %s", path, strerror(-rc));
        return rc;
    }
    staple = xcalloc(1, sizeof(*staple));
    staple->der = der;
    staple->der_len = len;
    atomic_init(&staple->expiry_logged, false);
    memcpy(staple->path, path, sizeof(path));
    int cert_status = V_OCSP_CERTSTATUS_GOOD;
    rc = ocsp_response_check(ctx, der, len, &staple->next_update, &cert_status, reason,
                             sizeof(reason));
    if (rc != 0) {
        snprintf(err, errlen, "tls-cert: %s: %s", path, reason);
        goto out;
    }
    /* Stapled all the same, as HAProxy does: the client should hear it from us too. */
    if (cert_status != V_OCSP_CERTSTATUS_GOOD)
        log_warn("proxy: tls-cert: %s: the OCSP response says the certificate is %s; clients "
                 "that check will refuse it",
                 path, OCSP_cert_status_str(cert_status));
    if (ocsp_staple_index < 0 || SSL_CTX_set_ex_data(ctx, ocsp_staple_index, staple) != 1) {
        snprintf(err, errlen, "tls-cert: %s: OpenSSL has no room for the staple", path);
        rc = -ENOMEM;
        goto out;
    }
    SSL_CTX_set_tlsext_status_cb(ctx, ocsp_status_cb);
    SSL_CTX_set_tlsext_status_arg(ctx, staple);
    staple = NULL; /* the context owns it now */
out:
    ocsp_staple_free(staple);
    return rc;
}
