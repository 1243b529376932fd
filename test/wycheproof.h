/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Wycheproof JSON driver of the vector tests: loads a file of
 * test/vectors/wycheproof (test_vector_path), checks its schema, walks
 * testGroups[].tests[], hands each group to the suite's group_open (keys,
 * parameters) and each test to its check function, and counts the outcome
 * against the vector's "result":
 *   valid      must be accepted,
 *   invalid    must be rejected,
 *   acceptable either; the split is printed, never a failure.
 * A file fails when it yields no test, when the count differs from its
 * numberOfTests, or on any harness error. Acceptable vectors are printed
 * one by one up to a limit, then tallied per flag.
 */
#ifndef OFFLOAD_TEST_WYCHEPROOF_H
#define OFFLOAD_TEST_WYCHEPROOF_H

#include <stddef.h>
#include <json-c/json.h>

/* Field |key| of |o|: a string (NULL when absent or not a string). */
const char *wp_str(json_object *o, const char *key);
/* Integer field |key| of |o| in *out; 0 when absent or not an integer. */
int wp_int(json_object *o, const char *key, long *out);
/* Hex field |key| of |o| into a malloc()ed buffer; 0 when absent or malformed. */
int wp_hex(json_object *o, const char *key, unsigned char **out, size_t *len);

enum wp_result { WP_VALID, WP_INVALID, WP_ACCEPTABLE };

/* What a suite's check made of one test. */
enum wp_outcome {
    WP_ACCEPT,  /* the implementation accepted the vector */
    WP_REJECT,  /* it rejected it */
    WP_SKIP,    /* this program cannot run this kind of vector (reason printed) */
    WP_LENIENT, /* invalid, accepted exactly as OpenSSL's default provider alone
                   accepts it, in a case listed as a known OpenSSL leniency */
    WP_ERROR,   /* the harness failed (reason printed): the file fails */
};

/* The fields every Wycheproof test shares; family-specific ones stay in |json|. */
struct wp_case {
    long tcid;
    enum wp_result result;
    const char *comment;
    json_object *json;
};

#define WP_MAX_FLAGS        48
#define WP_PRINT_ACCEPTABLE 16 /* acceptable vectors printed one by one per file */

/* Verdicts on the acceptable vectors carrying one flag. */
struct wp_flag_tally {
    char name[48];
    size_t accepted, rejected;
};

struct wp_stats {
    size_t total;
    size_t valid_ok, valid_bad;
    size_t invalid_rejected, invalid_accepted;
    size_t acc_accepted, acc_rejected;
    size_t skipped, errors;
    size_t lenient; /* invalid vectors accepted as OpenSSL itself does (WP_LENIENT) */
    struct wp_flag_tally flags[WP_MAX_FLAGS];
    size_t nflags;
};

struct wp_suite;

/* Prepares a group; 1 ok, 0 harness error, -1 group not supported (reason printed). */
typedef int wp_group_open_fn(const struct wp_suite *s, json_object *group, void **gs);
typedef void wp_group_close_fn(void *gs);
typedef enum wp_outcome wp_check_fn(const struct wp_suite *s, void *gs,
                                    const struct wp_case *c);

struct wp_suite {
    const char *file;
    const char *schema;     /* expected "schema" of the file */
    const char *group_type; /* expected "type" of every group */
    wp_group_open_fn *group_open;
    wp_group_close_fn *group_close;
    wp_check_fn *check;
    void *data; /* suite-specific counters */
};

const char *wp_result_name(enum wp_result r);

/* Prints one test: file, tcId, result, comment, flags, and |what|. */
void wp_print_case(const char *what, const struct wp_suite *s, const struct wp_case *c);

/* 1 when test |c| carries the flag |flag|. */
int wp_has_flag(const struct wp_case *c, const char *flag);

/* The parsed file |file| (test_vector_path); fails the test, naming the file, if not. */
json_object *wp_load(const char *file);

/*
 * Runs every test of |s->file| through s->check, prints the counts
 * ("[wycheproof] <file>: N tests: ...") and asserts the verdicts (see
 * above); *st gets the counts.
 */
void wp_run(const struct wp_suite *s, struct wp_stats *st);

/*
 * Called for each test of |s->file| by wp_walk with its open group state:
 * return 1 to go on, 0 to stop (reason printed).
 */
typedef int wp_visit_fn(const struct wp_suite *s, void *gs, const struct wp_case *c,
                        void *ctx);

/*
 * The same walk (schema, group types, group_open/group_close, tests
 * parsed) for a test that collects the vectors first, to run them in
 * jobs: stops at the first group that does not open, test that does not
 * parse, or visit that returns 0. 1 when everything was visited, else 0
 * (reason printed). The schema and a missing file fail the test.
 */
int wp_walk(const struct wp_suite *s, wp_visit_fn *visit, void *ctx);

#endif
