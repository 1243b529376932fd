/* SPDX-License-Identifier: Apache-2.0 */
/*
 * PKCS#11 URIs (RFC 7512): "pkcs11:token=edge;object=tls-rsa;type=private
 * ?pin-value=1234". A leaf: it parses and keeps no state; a bad URI gets
 * a readable reason in the caller's buffer (the caller raises it).
 *
 * Path attributes kept: token, manufacturer, serial, model (the token's
 * CK_TOKEN_INFO fields), object (CKA_LABEL), id (CKA_ID, binary), type
 * (private, public, cert, secret-key, data). The library-* and slot-*
 * attributes are accepted and ignored; vendor attributes (x-...) too.
 * Query attributes kept: pin-value, pin-source (a file path or a file:
 * URI); module-name and module-path are ignored (the module is the
 * pkcs11_module key's), other query attributes too.
 */
#ifndef OFFLOAD_P11_URI_H
#define OFFLOAD_P11_URI_H

#include <stddef.h>

enum offload_p11_type {
    OFFLOAD_P11_ANY = 0, /* no type= attribute */
    OFFLOAD_P11_PRIVATE,
    OFFLOAD_P11_PUBLIC,
    OFFLOAD_P11_CERT,
    OFFLOAD_P11_SECRET,
    OFFLOAD_P11_DATA
};

/* A parsed URI; every string is decoded, NUL-terminated, NULL when absent. */
struct offload_p11_uri {
    char *token, *manufacturer, *serial, *model;
    char *object;
    unsigned char *id; /* CKA_ID bytes (may hold NULs) */
    size_t idlen;
    int has_id;
    enum offload_p11_type type;
    char *pin_value;
    char *pin_source; /* a file path (a file: URI's path) */
};

/*
 * Parses |uri| into |u| (cleared first). 1 on success; 0 with
 * "<what is wrong>" in |err| and nothing to free.
 */
int offload_p11_uri_parse(const char *uri, struct offload_p11_uri *u, char *err,
                          size_t errlen);
void offload_p11_uri_free(struct offload_p11_uri *u);

/* "private", "public", ... for the log and errors. */
const char *offload_p11_type_name(enum offload_p11_type t);

#endif
