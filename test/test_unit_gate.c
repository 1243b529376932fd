/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of the cipher gate (provider/cipher_gate.h), fed with made-up
 * costs: the warm-up alternates and times every update, a warm class takes
 * the cheaper path and explores the other one every OFFLOAD_GATE_EXPLORE-th
 * update, it follows a change of costs and says so once, nearly equal
 * costs do not make it swap, classes (cipher, direction, size) are apart,
 * and threads choosing and noting at once race on nothing (TSan).
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cipher_gate.h"

#define SLOT 3
#define LEN  16384

/* Runs |n| updates of class (slot, enc, len) whose timed ones cost here/off ns. */
static void drive(unsigned slot, int enc, size_t len, unsigned n, uint64_t here,
                  uint64_t off, unsigned *offloaded, unsigned *timed, unsigned *changes)
{
    struct offload_gate_pick p;
    unsigned i;

    for (i = 0; i < n; i++) {
        offload_gate_choose(slot, enc, len, &p);
        if (offloaded != NULL && p.offload)
            (*offloaded)++;
        if (timed != NULL && p.timed)
            (*timed)++;
        if (changes != NULL && p.changed)
            (*changes)++;
        if (p.timed)
            offload_gate_note(&p, p.offload ? off : here);
    }
}

static int reset(void **state)
{
    (void)state;
    offload_gate_reset();
    return 0;
}

static void test_warm_up_alternates(void **state)
{
    struct offload_gate_pick p;
    int i;

    (void)state;
    for (i = 0; i < 2 * OFFLOAD_GATE_WARM; i++) {
        offload_gate_choose(SLOT, 1, LEN, &p);
        /* Offloading first, then whichever has fewer samples. */
        assert_int_equal(p.offload, i % 2 == 0);
        assert_true(p.timed);
        assert_false(p.changed);
        offload_gate_note(&p, p.offload ? 3000 : 1000);
    }
}

static void test_cheaper_path_wins(void **state)
{
    unsigned off = 0, timed = 0, changes = 0, n = 64 * OFFLOAD_GATE_EXPLORE;

    (void)state;
    /* Offloading costs 3 us, running here 1 us: here, exploring now and then. */
    drive(SLOT, 1, LEN, 2 * OFFLOAD_GATE_WARM, 1000, 3000, NULL, NULL, NULL);
    drive(SLOT, 1, LEN, n, 1000, 3000, &off, &timed, &changes);
    assert_int_equal(changes, 1); /* the first decision */
    assert_in_range(off, n / OFFLOAD_GATE_EXPLORE - 1, n / OFFLOAD_GATE_EXPLORE + 1);
    assert_in_range(timed, n / OFFLOAD_GATE_SAMPLE,
                    n / OFFLOAD_GATE_SAMPLE + n / OFFLOAD_GATE_EXPLORE + 2);

    /* The other way round (AES-CBC encryption, say): offloaded. */
    offload_gate_reset();
    off = 0;
    drive(SLOT, 1, LEN, 2 * OFFLOAD_GATE_WARM, 9000, 2000, NULL, NULL, NULL);
    drive(SLOT, 1, LEN, n, 9000, 2000, &off, NULL, NULL);
    assert_in_range(off, n - n / OFFLOAD_GATE_EXPLORE - 1,
                    n - n / OFFLOAD_GATE_EXPLORE + 1);
}

static void test_switch_cost_counts(void **state)
{
    unsigned off = 0, n = 16 * OFFLOAD_GATE_EXPLORE;

    (void)state;
    /* Offloaded samples 100 ns cheaper: less than a job switch, so here. */
    drive(SLOT, 0, LEN, 2 * OFFLOAD_GATE_WARM, 2000, 1900, NULL, NULL, NULL);
    drive(SLOT, 0, LEN, n, 2000, 1900, &off, NULL, NULL);
    assert_true(off <= n / OFFLOAD_GATE_EXPLORE + 1);
}

static void test_follows_the_machine(void **state)
{
    unsigned off = 0, changes = 0, n = 64 * OFFLOAD_GATE_EXPLORE;

    (void)state;
    drive(SLOT, 1, LEN, 2 * OFFLOAD_GATE_WARM, 1000, 3000, NULL, NULL, NULL);
    drive(SLOT, 1, LEN, n, 1000, 3000, NULL, NULL, NULL);
    /* The workers' core got close: offloading now costs 200 ns. */
    drive(SLOT, 1, LEN, n, 1000, 200, &off, NULL, &changes);
    assert_int_equal(changes, 1);
    /* Found out by exploring, within a few dozen explorations. */
    assert_true(off > n / 2);
    off = 0;
    drive(SLOT, 1, LEN, n, 1000, 200, &off, NULL, NULL);
    assert_in_range(off, n - n / OFFLOAD_GATE_EXPLORE - 1, n);
}

static void test_near_costs_do_not_swap(void **state)
{
    unsigned changes = 0, n = 64 * OFFLOAD_GATE_EXPLORE;

    (void)state;
    /* Offloading about as dear as running here, one side then the other by 3 %. */
    drive(SLOT, 1, LEN, 2 * OFFLOAD_GATE_WARM, 4000, 4000 - OFFLOAD_GATE_SWITCH_NS + 100,
          NULL, NULL, &changes);
    drive(SLOT, 1, LEN, n, 4000, 4000 - OFFLOAD_GATE_SWITCH_NS + 100, NULL, NULL,
          &changes);
    drive(SLOT, 1, LEN, n, 4000, 4000 - OFFLOAD_GATE_SWITCH_NS - 100, NULL, NULL,
          &changes);
    drive(SLOT, 1, LEN, n, 4000, 4000 - OFFLOAD_GATE_SWITCH_NS + 100, NULL, NULL,
          &changes);
    assert_int_equal(changes, 1);
}

static void test_classes_apart(void **state)
{
    uint32_t here, off;

    (void)state;
    drive(SLOT, 1, 16384, 2 * OFFLOAD_GATE_WARM, 1000, 3000, NULL, NULL, NULL);
    drive(SLOT, 0, 16384, 2 * OFFLOAD_GATE_WARM, 7000, 2000, NULL, NULL, NULL);
    drive(SLOT + 1, 1, 16384, 2 * OFFLOAD_GATE_WARM, 5000, 6000, NULL, NULL, NULL);
    offload_gate_estimates(SLOT, 1, 20000, &here, &off); /* same class as 16384 */
    assert_int_equal(here, 1000);
    assert_int_equal(off, 3000);
    offload_gate_estimates(SLOT, 0, 16384, &here, &off);
    assert_int_equal(here, 7000);
    assert_int_equal(off, 2000);
    offload_gate_estimates(SLOT + 1, 1, 16384, &here, &off);
    assert_int_equal(here, 5000);
    offload_gate_estimates(SLOT, 1, 8192, &here, &off); /* never seen */
    assert_int_equal(here, 0);
    assert_int_equal(off, 0);
    /* Sizes past the last class share it. */
    drive(SLOT, 1, (size_t)1 << 22, 2 * OFFLOAD_GATE_WARM, 40000, 9000, NULL, NULL, NULL);
    offload_gate_estimates(SLOT, 1, (size_t)1 << 30, &here, &off);
    assert_int_equal(here, 40000);
    assert_int_equal(off, 9000);
}

static void *hammer(void *arg)
{
    unsigned k = (unsigned)(uintptr_t)arg;

    drive(k % 2, 1, LEN, 1u << 16, 1000 + k, 2000, NULL, NULL, NULL);
    return NULL;
}

static void test_threads(void **state)
{
    pthread_t t[4];
    unsigned i;
    uint32_t here, off;

    (void)state;
    for (i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, hammer, (void *)(uintptr_t)i), 0);
    for (i = 0; i < 4; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
    offload_gate_estimates(0, 1, LEN, &here, &off);
    assert_in_range(here, 1000, 1003);
    assert_int_equal(off, 2000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_warm_up_alternates, reset),
        cmocka_unit_test_setup(test_cheaper_path_wins, reset),
        cmocka_unit_test_setup(test_switch_cost_counts, reset),
        cmocka_unit_test_setup(test_follows_the_machine, reset),
        cmocka_unit_test_setup(test_near_costs_do_not_swap, reset),
        cmocka_unit_test_setup(test_classes_apart, reset),
        cmocka_unit_test_setup(test_threads, reset),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
