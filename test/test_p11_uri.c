/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of the PKCS#11 URI parser (provider/p11_uri.c, RFC 7512):
 * path and query attributes, percent-decoding, binary ids, pin-source
 * forms, the ignored attributes; and bad URIs, each refused with a
 * readable reason.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "p11_uri.h"

static void test_full_uri(void **state)
{
    struct offload_p11_uri u;
    char err[160] = "";

    (void)state;
    assert_true(offload_p11_uri_parse(
        "pkcs11:token=edge;manufacturer=SoftHSM%20project;serial=0123abcd;"
        "model=SoftHSM%20v2;object=tls-rsa;id=%01%00%ff;type=private"
        "?pin-value=12%334&module-path=/usr/lib/x.so",
        &u, err, sizeof(err)));
    assert_string_equal(u.token, "edge");
    assert_string_equal(u.manufacturer, "SoftHSM project");
    assert_string_equal(u.serial, "0123abcd");
    assert_string_equal(u.model, "SoftHSM v2");
    assert_string_equal(u.object, "tls-rsa");
    assert_true(u.has_id);
    assert_int_equal(u.idlen, 3);
    assert_memory_equal(u.id, "\x01\x00\xff", 3);
    assert_int_equal(u.type, OFFLOAD_P11_PRIVATE);
    assert_string_equal(offload_p11_type_name(u.type), "private");
    assert_string_equal(u.pin_value, "1234");
    assert_null(u.pin_source);
    offload_p11_uri_free(&u);
}

static void test_minimal_and_types(void **state)
{
    static const struct {
        const char *uri;
        enum offload_p11_type type;
    } cases[] = {
        {"pkcs11:", OFFLOAD_P11_ANY},
        {"PKCS11:object=a", OFFLOAD_P11_ANY},
        {"pkcs11:type=public", OFFLOAD_P11_PUBLIC},
        {"pkcs11:type=cert", OFFLOAD_P11_CERT},
        {"pkcs11:type=secret-key", OFFLOAD_P11_SECRET},
        {"pkcs11:type=data;", OFFLOAD_P11_DATA},
        /* ignored: library and slot attributes, vendor ones, unknown query ones */
        {"pkcs11:library-manufacturer=OpenSC;slot-id=0;x-vendor=1;type=private?"
         "module-name=softhsm2&foo=bar",
         OFFLOAD_P11_PRIVATE},
    };
    struct offload_p11_uri u;
    char err[160];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        err[0] = '\0';
        if (!offload_p11_uri_parse(cases[i].uri, &u, err, sizeof(err)))
            fail_msg("%s: %s", cases[i].uri, err);
        assert_int_equal(u.type, cases[i].type);
        assert_null(u.token);
        assert_false(u.has_id);
        offload_p11_uri_free(&u);
    }
}

static void test_pin_source(void **state)
{
    static const struct {
        const char *uri, *path;
    } cases[] = {
        {"pkcs11:token=a?pin-source=/run/pin", "/run/pin"},
        {"pkcs11:token=a?pin-source=file:/run/pin", "/run/pin"},
        {"pkcs11:token=a?pin-source=file:///run/my%20pin", "/run/my pin"},
        {"pkcs11:token=a?pin-source=file://localhost/run/pin", "/run/pin"},
        {"pkcs11:token=a?pin-source=pin.txt", "pin.txt"},
    };
    struct offload_p11_uri u;
    char err[160];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (!offload_p11_uri_parse(cases[i].uri, &u, err, sizeof(err)))
            fail_msg("%s: %s", cases[i].uri, err);
        assert_string_equal(u.pin_source, cases[i].path);
        assert_null(u.pin_value);
        offload_p11_uri_free(&u);
    }
}

static void test_bad_uris(void **state)
{
    static const struct {
        const char *uri, *reason; /* |reason|: a part of the message */
    } cases[] = {
        {"file:/etc/key.pem", "is not a pkcs11: URI"},
        {"pkcs11", "is not a pkcs11: URI"},
        {"pkcs11:token=a%2", "bad percent-encoding"},
        {"pkcs11:object=%zz", "bad percent-encoding"},
        {"pkcs11:id=%0", "bad percent-encoding"},
        {"pkcs11:token", "has no '='"},
        {"pkcs11:token=a?pin-value", "has no '='"},
        {"pkcs11:type=secret", "type=\"secret\": expected private"},
        {"pkcs11:token=a;token=b", "appears twice"},
        {"pkcs11:type=private;type=public", "appears twice"},
        {"pkcs11:colour=blue", "unknown path attribute \"colour\""},
        {"pkcs11:token=a#frag", "no fragment"},
        {"pkcs11:token=a?pin-value=1&pin-source=/p", "both given"},
        {"pkcs11:token=a?pin-source=%7ccat%20/p", "commands are not run"},
        {"pkcs11:token=a?pin-source=file://host/p", "only local file: URIs"},
        {"pkcs11:token=a?pin-source=file:", "pin-source is empty"},
    };
    struct offload_p11_uri u;
    char err[160];
    size_t i;

    (void)state;
    assert_false(offload_p11_uri_parse(NULL, &u, err, sizeof(err)));
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        err[0] = '\0';
        if (offload_p11_uri_parse(cases[i].uri, &u, err, sizeof(err))) {
            offload_p11_uri_free(&u);
            fail_msg("%s: accepted", cases[i].uri);
        }
        printf("%-45s -> %s\n", cases[i].uri, err);
        if (strstr(err, cases[i].reason) == NULL)
            fail_msg("%s: \"%s\" does not say \"%s\"", cases[i].uri, err,
                     cases[i].reason);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_uri),
        cmocka_unit_test(test_minimal_and_types),
        cmocka_unit_test(test_pin_source),
        cmocka_unit_test(test_bad_uris),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
