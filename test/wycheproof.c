/* SPDX-License-Identifier: Apache-2.0 */
/* The Wycheproof JSON driver of the vector tests (see wycheproof.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <json-c/json.h>
#include <openssl/err.h>

#include "common.h"
#include "wycheproof.h"

const char *wp_str(json_object *o, const char *key)
{
    json_object *v;

    if (!json_object_object_get_ex(o, key, &v) ||
        !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

int wp_int(json_object *o, const char *key, long *out)
{
    json_object *v;

    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
        return 0;
    *out = (long)json_object_get_int64(v);
    return 1;
}

int wp_hex(json_object *o, const char *key, unsigned char **out, size_t *len)
{
    const char *hex = wp_str(o, key);
    long n;

    *out = NULL;
    *len = 0;
    if (hex == NULL || (n = test_unhex(hex, out)) < 0)
        return 0;
    *len = (size_t)n;
    return 1;
}

const char *wp_result_name(enum wp_result r)
{
    return r == WP_VALID ? "valid" : r == WP_INVALID ? "invalid" : "acceptable";
}

void wp_print_case(const char *what, const struct wp_suite *s, const struct wp_case *c)
{
    json_object *flags = NULL;

    json_object_object_get_ex(c->json, "flags", &flags);
    printf("    %s: tcId %ld (%s, \"%s\", flags %s): %s\n", s->file, c->tcid,
           wp_result_name(c->result), c->comment != NULL ? c->comment : "",
           flags != NULL ? json_object_to_json_string(flags) : "[]", what);
}

int wp_has_flag(const struct wp_case *c, const char *flag)
{
    json_object *flags = NULL;
    size_t i, n;

    if (!json_object_object_get_ex(c->json, "flags", &flags) ||
        !json_object_is_type(flags, json_type_array))
        return 0;
    n = json_object_array_length(flags);
    for (i = 0; i < n; i++) {
        const char *f = json_object_get_string(json_object_array_get_idx(flags, i));

        if (f != NULL && strcmp(f, flag) == 0)
            return 1;
    }
    return 0;
}

/* Counts an acceptable vector's verdict under each of its flags. */
static void tally_flags(struct wp_stats *st, const struct wp_case *c, int accepted)
{
    json_object *flags = NULL;
    size_t i, j, n;

    if (!json_object_object_get_ex(c->json, "flags", &flags) ||
        !json_object_is_type(flags, json_type_array))
        return;
    n = json_object_array_length(flags);
    for (i = 0; i < n; i++) {
        const char *f = json_object_get_string(json_object_array_get_idx(flags, i));

        if (f == NULL)
            continue;
        for (j = 0; j < st->nflags; j++)
            if (strcmp(st->flags[j].name, f) == 0)
                break;
        if (j == st->nflags) {
            if (st->nflags == WP_MAX_FLAGS || strlen(f) >= sizeof(st->flags[j].name))
                continue;
            strcpy(st->flags[st->nflags++].name, f);
        }
        if (accepted)
            st->flags[j].accepted++;
        else
            st->flags[j].rejected++;
    }
}

static void wp_count(const struct wp_suite *s, struct wp_stats *st,
                     const struct wp_case *c, enum wp_outcome o)
{
    switch (o) {
    case WP_SKIP:
        st->skipped++;
        return;
    case WP_LENIENT:
        if (c->result != WP_INVALID) {
            st->errors++;
            wp_print_case("HARNESS ERROR: leniency claimed for a vector not invalid", s,
                          c);
            return;
        }
        st->lenient++;
        wp_print_case("invalid vector accepted, exactly as the default provider alone "
                      "accepts it (known OpenSSL leniency, counted, not failed)",
                      s, c);
        return;
    case WP_ERROR:
        st->errors++;
        wp_print_case("HARNESS ERROR", s, c);
        return;
    case WP_ACCEPT:
    case WP_REJECT:
        break;
    }
    switch (c->result) {
    case WP_VALID:
        if (o == WP_ACCEPT) {
            st->valid_ok++;
        } else {
            st->valid_bad++;
            wp_print_case("FAIL: valid vector rejected", s, c);
        }
        break;
    case WP_INVALID:
        if (o == WP_REJECT) {
            st->invalid_rejected++;
        } else {
            st->invalid_accepted++;
            wp_print_case("FAIL: invalid vector accepted", s, c);
        }
        break;
    case WP_ACCEPTABLE:
        if (o == WP_ACCEPT)
            st->acc_accepted++;
        else
            st->acc_rejected++;
        tally_flags(st, c, o == WP_ACCEPT);
        /* Printed one by one up to a limit, then only per flag (see wp_run). */
        if (st->acc_accepted + st->acc_rejected <= WP_PRINT_ACCEPTABLE)
            wp_print_case(
                o == WP_ACCEPT ? "acceptable: accepted" : "acceptable: rejected", s, c);
        break;
    }
}

static int parse_case(json_object *t, struct wp_case *c)
{
    const char *r = wp_str(t, "result");

    memset(c, 0, sizeof(*c));
    c->json = t;
    c->comment = wp_str(t, "comment");
    if (!wp_int(t, "tcId", &c->tcid) || r == NULL)
        return 0;
    if (strcmp(r, "valid") == 0)
        c->result = WP_VALID;
    else if (strcmp(r, "invalid") == 0)
        c->result = WP_INVALID;
    else if (strcmp(r, "acceptable") == 0)
        c->result = WP_ACCEPTABLE;
    else
        return 0;
    return 1;
}

json_object *wp_load(const char *file)
{
    char path[4096];
    json_object *root;

    test_vector_path(file, path, sizeof(path));
    root = json_object_from_file(path);
    if (root == NULL)
        fail_msg("cannot read or parse %s: %s", path, json_util_get_last_err());
    return root;
}

/* The file's root, its schema checked (fails the test otherwise); *groups its groups. */
static json_object *load_checked(const struct wp_suite *s, json_object **groups)
{
    json_object *root = wp_load(s->file);
    const char *schema = wp_str(root, "schema");

    if (schema == NULL || strcmp(schema, s->schema) != 0) {
        json_object_put(root);
        fail_msg("%s: schema \"%s\", this suite handles \"%s\"", s->file,
                 schema != NULL ? schema : "(none)", s->schema);
    }
    if (!json_object_object_get_ex(root, "testGroups", groups) ||
        !json_object_is_type(*groups, json_type_array)) {
        json_object_put(root);
        fail_msg("%s: no testGroups array", s->file);
    }
    return root;
}

/*
 * Opens group |g| of |s|: 1 open (*gs), 0 error, -1 not supported; *tests
 * gets its tests array (NULL: none, printed).
 */
static int open_group(const struct wp_suite *s, json_object *group, size_t g,
                      json_object **tests, void **gs)
{
    const char *type = wp_str(group, "type");

    *gs = NULL;
    if (!json_object_object_get_ex(group, "tests", tests) ||
        !json_object_is_type(*tests, json_type_array)) {
        printf("    %s: group %zu has no tests array\n", s->file, g);
        *tests = NULL;
        return 0;
    }
    if (type == NULL || strcmp(type, s->group_type) != 0) {
        printf("    %s: group %zu of type \"%s\", expected \"%s\"\n", s->file, g,
               type != NULL ? type : "(none)", s->group_type);
        return 0;
    }
    return s->group_open(s, group, gs);
}

void wp_run(const struct wp_suite *s, struct wp_stats *st)
{
    json_object *groups, *root = load_checked(s, &groups), *tests;
    long expected = -1;
    size_t g, t, ng;

    memset(st, 0, sizeof(*st));
    wp_int(root, "numberOfTests", &expected);
    ng = json_object_array_length(groups);
    for (g = 0; g < ng; g++) {
        void *gs = NULL;
        int gok = open_group(s, json_object_array_get_idx(groups, g), g, &tests, &gs);
        size_t nt;

        if (tests == NULL) {
            st->errors++;
            continue;
        }
        nt = json_object_array_length(tests);
        for (t = 0; t < nt; t++) {
            struct wp_case c;
            enum wp_outcome o;

            st->total++;
            if (!parse_case(json_object_array_get_idx(tests, t), &c)) {
                printf("    %s: group %zu test %zu: no tcId or bad result\n", s->file, g,
                       t);
                st->errors++;
                continue;
            }
            if (gok > 0)
                o = s->check(s, gs, &c);
            else
                o = gok < 0 ? WP_SKIP : WP_ERROR;
            wp_count(s, st, &c, o);
            ERR_clear_error();
        }
        if (gok > 0)
            s->group_close(gs);
    }
    json_object_put(root);

    printf(
        "[wycheproof] %s: %zu tests: %zu valid ok, %zu invalid rejected, %zu acceptable "
        "(%zu accepted, %zu rejected)",
        s->file, st->total, st->valid_ok, st->invalid_rejected,
        st->acc_accepted + st->acc_rejected, st->acc_accepted, st->acc_rejected);
    if (st->lenient > 0)
        printf("; %zu invalid accepted as OpenSSL's default provider does (known "
               "leniency)",
               st->lenient);
    if (st->valid_bad + st->invalid_accepted + st->skipped + st->errors > 0)
        printf("; %zu VALID REJECTED, %zu INVALID ACCEPTED, %zu not runnable, %zu errors",
               st->valid_bad, st->invalid_accepted, st->skipped, st->errors);
    printf("\n");
    if (st->acc_accepted + st->acc_rejected > WP_PRINT_ACCEPTABLE) {
        size_t f;

        printf("    %s: acceptable vectors by flag (a vector may carry several):\n",
               s->file);
        for (f = 0; f < st->nflags; f++)
            printf("      %-28s %4zu accepted, %4zu rejected\n", st->flags[f].name,
                   st->flags[f].accepted, st->flags[f].rejected);
    }
    fflush(stdout);

    assert_true(st->total > 0);
    assert_true(st->total > st->skipped); /* a file run entirely skipped is no pass */
    assert_int_equal(st->total, (size_t)expected);
    assert_int_equal(st->errors, 0);
    assert_int_equal(st->valid_bad, 0);
    assert_int_equal(st->invalid_accepted, 0);
}

int wp_walk(const struct wp_suite *s, wp_visit_fn *visit, void *ctx)
{
    json_object *groups, *root = load_checked(s, &groups), *tests;
    size_t g, t, ng = json_object_array_length(groups);
    int ok = 1;

    for (g = 0; ok && g < ng; g++) {
        void *gs = NULL;
        int gok = open_group(s, json_object_array_get_idx(groups, g), g, &tests, &gs);

        if (gok != 1) {
            printf("    %s: group %zu cannot be run\n", s->file, g);
            ok = 0;
            break;
        }
        for (t = 0; ok && t < json_object_array_length(tests); t++) {
            struct wp_case c;

            if (!parse_case(json_object_array_get_idx(tests, t), &c)) {
                printf("    %s: group %zu test %zu: no tcId or bad result\n", s->file, g,
                       t);
                ok = 0;
            } else if (!visit(s, gs, &c, ctx)) {
                wp_print_case("cannot prepare the test", s, &c);
                ok = 0;
            }
        }
        s->group_close(gs);
    }
    json_object_put(root);
    return ok;
}
