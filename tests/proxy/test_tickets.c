/* tests/proxy/test_tickets.c - reading a tls-ticket-key-file (proxy/tickets.c): what a file of
 * keys may hold (comments, blank lines, CRLF, indentation) and each way one is refused, with the
 * line named. Sealing and opening with the keys read are tested end to end in test_tls. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "proxy/proxy_int.h"

static char path[64];

/* A random key as a line of base64 (108 characters). */
static void key_line(char line[109])
{
    unsigned char key[80];
    assert_int_equal(RAND_bytes(key, sizeof(key)), 1);
    assert_int_equal(EVP_EncodeBlock((unsigned char *)line, key, sizeof(key)), 108);
}

static void file_write(const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
}

/* Reads the file: NULL when it loads, else the error (static). */
static const char *read_error(void)
{
    static char err[512];
    struct ticket_keys *keys = tickets_read(path, err, sizeof(err));
    if (keys == NULL)
        return err;
    tickets_free(keys);
    return NULL;
}

/* Reads the file and checks that it is refused with an error holding its path and <want>. */
static void refused_with(const char *want)
{
    const char *err = read_error();
    assert_non_null(err);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, want));
}

static void reads_keys_among_comments_blank_lines_and_crlf(void **state)
{
    (void)state;
    char a[109], b[109], text[512];
    key_line(a);
    key_line(b);
    int len = snprintf(text, sizeof(text), "# seals first\r\n  %s  \r\n\n\t# opens\n%s", a, b);
    file_write(text, (size_t)len); /* the last line without its newline */
    assert_null(read_error());
}

static void refuses_what_is_not_a_key_naming_the_line(void **state)
{
    (void)state;
    char a[109], text[1024];
    key_line(a);
    char cut[109], padded_inside[109];
    memcpy(cut, a, 100);
    cut[100] = '\0';
    memcpy(padded_inside, a, sizeof(padded_inside));
    padded_inside[10] = '='; /* decodes as 'A' would: a different key, loaded silently */
    const char *bad[] = {cut, padded_inside, "not a key at all"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int len = snprintf(text, sizeof(text), "%s\n# next\n%s\n", a, bad[i]);
        file_write(text, (size_t)len);
        refused_with(": line 3: not a key");
    }
}

static void refuses_a_ninth_key_an_empty_file_and_a_nul_byte(void **state)
{
    (void)state;
    char line[109], text[2048] = "";
    for (int i = 0; i < 9; i++) {
        key_line(line);
        strcat(text, line);
        strcat(text, "\n");
    }
    file_write(text, strlen(text));
    refused_with(": line 9: more than 8 keys");

    file_write("# nothing here\n\n", 16);
    refused_with(": no key in it");

    /* A NUL byte would hide the rest of its line from a line-by-line reader. */
    key_line(line);
    int len = snprintf(text, sizeof(text), "#\n%s\n", line);
    text[1] = '\0';
    file_write(text, (size_t)len);
    refused_with("NUL");

    unlink(path);
    refused_with("No such file");
}

int main(void)
{
    snprintf(path, sizeof(path), "/tmp/gslb-test-tickets-%d.keys", (int)getpid());
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reads_keys_among_comments_blank_lines_and_crlf),
        cmocka_unit_test(refuses_what_is_not_a_key_naming_the_line),
        cmocka_unit_test(refuses_a_ninth_key_an_empty_file_and_a_nul_byte),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    unlink(path);
    return failed;
}
