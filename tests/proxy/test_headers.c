/* tests/proxy/test_headers.c - a message head as the parser callbacks fill it (proxy/headers.c):
 * which header each name is, in any case and at every length the compare takes in pieces of
 * eight bytes, near misses included; an empty first name; what counts as hop-by-hop; head_get()
 * counting repeats; lists of a header's values (Via, X-Forwarded-For) gathered in order. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "proxy/proxy_int.h"

/* A head holding the <n> headers of <headers> (name, value), in order, as llhttp hands them over.
 */
static void head_of(struct head *h, const char *const headers[][2], size_t n)
{
    memset(h, 0, sizeof(*h));
    head_limit(h, 4096, 10);
    for (size_t i = 0; i < n; i++) {
        assert_true(head_append(h, HEAD_PART_NAME, headers[i][0], strlen(headers[i][0]), 0));
        assert_true(head_append(h, HEAD_PART_VALUE, headers[i][1], strlen(headers[i][1]), 0));
        head_value_complete(h);
    }
}

/* A head holding the one header <name>: <value> ("" for an empty one). */
static void head_with(struct head *h, const char *name, const char *value)
{
    const char *const one[][2] = {{name, value}};
    head_of(h, one, 1);
}

static void every_name_the_proxy_acts_on_is_told_apart_in_any_case(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        enum header_id id;
        bool hop_by_hop;
    } cases[] = {
        {"Connection", H_CONNECTION, true},
        {"CONNECTION", H_CONNECTION, true},
        {"Content-Length", H_CONTENT_LENGTH, false},
        {"content-LENGTH", H_CONTENT_LENGTH, false},
        {"Content-Location", H_CONTENT_LOCATION, false},
        {"Date", H_DATE, false},
        {"DATE", H_DATE, false},
        {"Expect", H_EXPECT, false},
        {"Forwarded", H_FORWARDED, false},
        {"host", H_HOST, false},
        {"HoSt", H_HOST, false},
        {"Keep-Alive", H_KEEP_ALIVE, true},
        {"Location", H_LOCATION, false},
        {"Max-Forwards", H_MAX_FORWARDS, false},
        {"max-forwardS", H_MAX_FORWARDS, false},
        {"Proxy-Authorization", H_PROXY, true},
        {"PROXY-CONNECTION", H_PROXY, true},
        {"Proxy-", H_PROXY, true},
        {"te", H_TE, true},
        {"Trailer", H_TRAILER, true},
        {"Transfer-Encoding", H_TRANSFER_ENCODING, true},
        {"TRANSFER-encoding", H_TRANSFER_ENCODING, true},
        {"Upgrade", H_UPGRADE, true},
        {"Via", H_VIA, false},
        {"X-Forwarded-For", H_X_FORWARDED_FOR, false},
        {"x-FORWARDED-for", H_X_FORWARDED_FOR, false},
        {"X-Forwarded-Host", H_X_FORWARDED_HOST, false},
        {"X-Forwarded-Proto", H_X_FORWARDED_PROTO, false},
        /* Near misses: one character off, one short, one long, or another separator. */
        {"Content-Lengt", H_OTHER, false},
        {"Content-Lengths", H_OTHER, false},
        {"Content_Length", H_OTHER, false},
        {"Max_Forwards", H_OTHER, false},
        {"X-Forwarded-Fox", H_OTHER, false},
        {"X-Forwarded-Fo", H_OTHER, false},
        {"Transfer-Encodinf", H_OTHER, false},
        {"Hosts", H_OTHER, false},
        {"Proxy", H_OTHER, false},
        {"Proxy_Authorization", H_OTHER, false},
        {"Tf", H_OTHER, false},
        {"Content-Type", H_OTHER, false},
        {"Close", H_OTHER, false}, /* hop-by-hop only when a Connection header names it */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        for (int empty = 0; empty < 2; empty++) {
            struct head h;
            head_with(&h, cases[i].name, empty ? "" : "v");
            if (h.headers[0].id != cases[i].id)
                fail_msg("%s: id %d, expected %d", cases[i].name, h.headers[0].id, cases[i].id);
            if (head_is_hop_by_hop(&h, &h.headers[0]) != cases[i].hop_by_hop)
                fail_msg("%s: hop-by-hop should be %d", cases[i].name, cases[i].hop_by_hop);
            size_t len = 99;
            int count = 0;
            const char *v = head_get(&h, cases[i].id, &len, &count);
            assert_non_null(v);
            assert_int_equal(count, 1);
            assert_int_equal(len, empty ? 0 : 1);
            head_fini(&h);
        }
    }
}

/* A head whose first text would be an empty name (and value) has stored none: it is told apart
 * without an offset into text that is not there (UB that clang's UBSan reports; the response
 * fuzzer found it, and its seed12 keeps it found), then refused. */
static void an_empty_first_name_is_no_header_the_proxy_knows_and_is_refused(void **state)
{
    (void)state;
    struct head h;
    head_with(&h, "", "");
    assert_null(h.text);
    assert_int_equal(h.headers[0].id, H_OTHER);
    assert_string_equal(head_check_chars(&h), "empty header name");
    head_fini(&h);
}

static void connection_names_more_hop_by_hop_headers_and_repeats_are_counted(void **state)
{
    (void)state;
    struct head h;
    static const char *const headers[][2] = {
        {"Host", "a"},     {"Connection", "close, X-Secret"},
        {"X-Secret", "1"}, {"Close", "1"},
        {"Host", "b"},     {"X-Kept", "2"},
    };
    head_of(&h, headers, sizeof(headers) / sizeof(headers[0]));
    assert_true(h.connection_close);
    assert_true(head_is_hop_by_hop(&h, &h.headers[1]));  /* Connection */
    assert_true(head_is_hop_by_hop(&h, &h.headers[2]));  /* named by it */
    assert_true(head_is_hop_by_hop(&h, &h.headers[3]));  /* Close, as "close" names it */
    assert_false(head_is_hop_by_hop(&h, &h.headers[5])); /* X-Kept */
    size_t len;
    int count;
    const char *host = head_get(&h, H_HOST, &len, &count);
    assert_int_equal(count, 2);
    assert_int_equal(len, 1);
    assert_memory_equal(host, "b", 1); /* the last one */
    assert_null(head_get(&h, H_EXPECT, &len, &count));
    assert_int_equal(count, 0);
    head_fini(&h);
}

static void a_list_gathers_the_values_of_every_header_of_an_id_in_order(void **state)
{
    (void)state;
    struct head h;
    static const char *const headers[][2] = {
        {"Via", "1.0 cdn"}, {"X-A", "1"}, {"via", ""}, {"X-Forwarded-For", "203.0.113.9"},
        {"VIA", "1.1 lb"},
    };
    head_of(&h, headers, sizeof(headers) / sizeof(headers[0]));
    struct sbuf out = {0};
    head_add_list(&out, &h, H_VIA, 3); /* the empty one adds nothing */
    SBUF_LIT(&out, "1.1 gslb");
    assert_int_equal(out.len, strlen("1.0 cdn, 1.1 lb, 1.1 gslb"));
    assert_memory_equal(out.p, "1.0 cdn, 1.1 lb, 1.1 gslb", out.len);
    out.len = 0;
    head_add_list(&out, &h, H_VIA, 1); /* the count bounds the walk */
    assert_int_equal(out.len, strlen("1.0 cdn, "));
    out.len = 0;
    head_add_list(&out, &h, H_EXPECT, 0);
    assert_int_equal(out.len, 0);
    free(out.p);
    head_fini(&h);
}

/* IMF-fixdate (RFC 9110 5.6.7), the RFC's own example; each second formatted afresh though one
 * is kept per thread, and a buffer too small gets nothing. */
static void dates_are_imf_fixdate_whatever_was_formatted_before(void **state)
{
    (void)state;
    char out[40];
    assert_int_equal(http_date(784111777, out, sizeof(out)), 29);
    assert_string_equal(out, "Sun, 06 Nov 1994 08:49:37 GMT");
    assert_int_equal(http_date(784111777 + 86400 + 1, out, sizeof(out)), 29);
    assert_string_equal(out, "Mon, 07 Nov 1994 08:49:38 GMT");
    assert_int_equal(http_date(784111777, out, sizeof(out)), 29);
    assert_string_equal(out, "Sun, 06 Nov 1994 08:49:37 GMT");
    assert_int_equal(http_date(784111777, out, 29), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_name_the_proxy_acts_on_is_told_apart_in_any_case),
        cmocka_unit_test(an_empty_first_name_is_no_header_the_proxy_knows_and_is_refused),
        cmocka_unit_test(connection_names_more_hop_by_hop_headers_and_repeats_are_counted),
        cmocka_unit_test(a_list_gathers_the_values_of_every_header_of_an_id_in_order),
        cmocka_unit_test(dates_are_imf_fixdate_whatever_was_formatted_before),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
