/* SPDX-License-Identifier: Apache-2.0 */
/* PKCS#11 URIs (p11_uri.h): RFC 7512 path and query attributes, percent-decoding. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "p11_uri.h"

static int bad(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int bad(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/*
 * The |len| bytes at |s| percent-decoded into a new NUL-terminated buffer
 * (*outlen: the decoded length, which may hold NULs); NULL with the
 * reason in |err|.
 */
static char *decode(const char *name, const char *s, size_t len, size_t *outlen,
                    char *err, size_t errlen)
{
    char *out = malloc(len + 1);
    size_t i, n = 0;

    if (out == NULL) {
        bad(err, errlen, "out of memory");
        return NULL;
    }
    for (i = 0; i < len; i++) {
        if (s[i] == '%') {
            int hi = i + 2 < len ? hexval(s[i + 1]) : -1;
            int lo = i + 2 < len ? hexval(s[i + 2]) : -1;

            if (hi < 0 || lo < 0) {
                free(out);
                bad(err, errlen, "%s: bad percent-encoding at \"%.*s\"", name,
                    (int)(len - i > 3 ? 3 : len - i), s + i);
                return NULL;
            }
            out[n++] = (char)(hi << 4 | lo);
            i += 2;
        } else {
            out[n++] = s[i];
        }
    }
    out[n] = '\0';
    if (outlen != NULL)
        *outlen = n;
    return out;
}

static const struct {
    const char *name;
    enum offload_p11_type type;
} types[] = {
    {"private", OFFLOAD_P11_PRIVATE}, {"public", OFFLOAD_P11_PUBLIC},
    {"cert", OFFLOAD_P11_CERT},       {"secret-key", OFFLOAD_P11_SECRET},
    {"data", OFFLOAD_P11_DATA},
};

const char *offload_p11_type_name(enum offload_p11_type t)
{
    size_t i;

    for (i = 0; i < sizeof(types) / sizeof(types[0]); i++)
        if (types[i].type == t)
            return types[i].name;
    return "any";
}

/* Path attributes that say which library or slot: accepted, not used. */
static int ignored_path_attr(const char *name, size_t len)
{
    static const char *const ign[] = {"library-manufacturer",
                                      "library-description",
                                      "library-version",
                                      "slot-description",
                                      "slot-manufacturer",
                                      "slot-id",
                                      NULL};
    size_t i;

    if (len > 2 && strncmp(name, "x-", 2) == 0)
        return 1;
    for (i = 0; ign[i] != NULL; i++)
        if (strlen(ign[i]) == len && strncmp(name, ign[i], len) == 0)
            return 1;
    return 0;
}

/* Sets *dst to the decoded value; a second occurrence is an error. */
static int take(char **dst, const char *name, const char *v, size_t vlen, size_t *outlen,
                char *err, size_t errlen)
{
    if (*dst != NULL)
        return bad(err, errlen, "attribute \"%s\" appears twice", name);
    *dst = decode(name, v, vlen, outlen, err, errlen);
    return *dst != NULL;
}

static int path_attr(struct offload_p11_uri *u, const char *a, size_t alen, char *err,
                     size_t errlen)
{
    const char *eq = memchr(a, '=', alen);
    size_t nlen, vlen;
    const char *v;
    char name[32];

    if (eq == NULL)
        return bad(err, errlen, "path attribute \"%.*s\" has no '='", (int)alen, a);
    nlen = (size_t)(eq - a);
    v = eq + 1;
    vlen = alen - nlen - 1;
    snprintf(name, sizeof(name), "%.*s", (int)nlen, a);
    if (strcmp(name, "token") == 0)
        return take(&u->token, name, v, vlen, NULL, err, errlen);
    if (strcmp(name, "manufacturer") == 0)
        return take(&u->manufacturer, name, v, vlen, NULL, err, errlen);
    if (strcmp(name, "serial") == 0)
        return take(&u->serial, name, v, vlen, NULL, err, errlen);
    if (strcmp(name, "model") == 0)
        return take(&u->model, name, v, vlen, NULL, err, errlen);
    if (strcmp(name, "object") == 0)
        return take(&u->object, name, v, vlen, NULL, err, errlen);
    if (strcmp(name, "id") == 0) {
        if (!take((char **)&u->id, name, v, vlen, &u->idlen, err, errlen))
            return 0;
        u->has_id = 1;
        return 1;
    }
    if (strcmp(name, "type") == 0) {
        char *t = NULL;
        size_t i;

        if (u->type != OFFLOAD_P11_ANY)
            return bad(err, errlen, "attribute \"type\" appears twice");
        if ((t = decode(name, v, vlen, NULL, err, errlen)) == NULL)
            return 0;
        for (i = 0; i < sizeof(types) / sizeof(types[0]); i++)
            if (strcmp(t, types[i].name) == 0)
                u->type = types[i].type;
        if (u->type == OFFLOAD_P11_ANY) {
            bad(err, errlen,
                "type=\"%s\": expected private, public, cert, secret-key or data", t);
            free(t);
            return 0;
        }
        free(t);
        return 1;
    }
    if (ignored_path_attr(a, nlen))
        return 1;
    return bad(err, errlen, "unknown path attribute \"%.*s\"", (int)nlen, a);
}

/* pin-source: a file path, or a file: URI (file:/p, file:///p, file://localhost/p). */
static int pin_source(struct offload_p11_uri *u, const char *v, size_t vlen, char *err,
                      size_t errlen)
{
    char *s, *path;

    if (!take(&u->pin_source, "pin-source", v, vlen, NULL, err, errlen))
        return 0;
    s = u->pin_source;
    path = s;
    if (strncasecmp(s, "file:", 5) == 0) {
        path = s + 5;
        if (strncmp(path, "//", 2) == 0) {
            path += 2;
            if (strncasecmp(path, "localhost/", 10) == 0)
                path += 9;
            else if (path[0] != '/')
                return bad(err, errlen, "pin-source \"%s\": only local file: URIs", s);
        }
    } else if (s[0] == '|') {
        return bad(err, errlen, "pin-source \"%s\": commands are not run", s);
    }
    if (path[0] == '\0')
        return bad(err, errlen, "pin-source is empty");
    memmove(s, path, strlen(path) + 1);
    return 1;
}

static int query_attr(struct offload_p11_uri *u, const char *a, size_t alen, char *err,
                      size_t errlen)
{
    const char *eq = memchr(a, '=', alen);
    size_t nlen;

    if (eq == NULL)
        return bad(err, errlen, "query attribute \"%.*s\" has no '='", (int)alen, a);
    nlen = (size_t)(eq - a);
    if (nlen == 9 && strncmp(a, "pin-value", 9) == 0)
        return take(&u->pin_value, "pin-value", eq + 1, alen - nlen - 1, NULL, err,
                    errlen);
    if (nlen == 10 && strncmp(a, "pin-source", 10) == 0)
        return pin_source(u, eq + 1, alen - nlen - 1, err, errlen);
    return 1; /* module-name, module-path and the others: not ours to use */
}

/* Calls |fn| for every |sep|-separated non-empty piece of [s, end). */
static int each(struct offload_p11_uri *u, const char *s, const char *end, char sep,
                int (*fn)(struct offload_p11_uri *, const char *, size_t, char *, size_t),
                char *err, size_t errlen)
{
    while (s < end) {
        const char *e = memchr(s, sep, (size_t)(end - s));

        if (e == NULL)
            e = end;
        if (e > s && !fn(u, s, (size_t)(e - s), err, errlen))
            return 0;
        s = e + 1;
    }
    return 1;
}

int offload_p11_uri_parse(const char *uri, struct offload_p11_uri *u, char *err,
                          size_t errlen)
{
    const char *path, *q, *end;

    memset(u, 0, sizeof(*u));
    if (uri == NULL || strncasecmp(uri, "pkcs11:", 7) != 0)
        return bad(err, errlen, "\"%.40s\" is not a pkcs11: URI", uri ? uri : "(null)");
    path = uri + 7;
    end = path + strlen(path);
    q = strchr(path, '?');
    if (strchr(path, '#') != NULL) {
        bad(err, errlen, "a pkcs11: URI has no fragment ('#')");
        return 0;
    }
    if (!each(u, path, q != NULL ? q : end, ';', path_attr, err, errlen) ||
        (q != NULL && !each(u, q + 1, end, '&', query_attr, err, errlen))) {
        offload_p11_uri_free(u);
        return 0;
    }
    if (u->pin_value != NULL && u->pin_source != NULL) {
        offload_p11_uri_free(u);
        return bad(err, errlen, "pin-value and pin-source both given");
    }
    return 1;
}

void offload_p11_uri_free(struct offload_p11_uri *u)
{
    free(u->token);
    free(u->manufacturer);
    free(u->serial);
    free(u->model);
    free(u->object);
    free(u->id);
    if (u->pin_value != NULL) {
        memset(u->pin_value, 0, strlen(u->pin_value));
        free(u->pin_value);
    }
    free(u->pin_source);
    memset(u, 0, sizeof(*u));
}
