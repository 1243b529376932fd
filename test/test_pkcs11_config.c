/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The PKCS#11 keys of the provider's section (suite pkcs11), each in a
 * fresh process (this program again: the module is process-wide): a
 * module that cannot be loaded and bad pkcs11_* values fail the
 * provider's load with the key and the value, and without pkcs11_module
 * a pkcs11: URI says "no PKCS#11 module configured".
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include <openssl/err.h>
#include <openssl/store.h>

#include "common.h"

#define TOKEN "pkcs11:token=edge;object="

/*
 * Loads offload in a fresh library context with |line| in its section
 * (no "activate": OSSL_PROVIDER_load runs the init, so its errors stay on
 * the queue) and prints them; 0 when the load failed.
 */
static int load_with(const char *line)
{
    char path[] = "/tmp/offload-p11conf-XXXXXX";
    int fd = mkstemp(path), loaded;
    OSSL_LIB_CTX *ctx = OSSL_LIB_CTX_new();
    OSSL_PROVIDER *prov = NULL;
    FILE *f;

    if (fd < 0 || ctx == NULL || (f = fdopen(fd, "w")) == NULL)
        return 1;
    fprintf(f,
            "openssl_conf = init\n[init]\nproviders = provs\n[provs]\noffload = offl\n"
            "[offl]\nmodule = offload.so\n%s\n",
            line);
    fclose(f);
    ERR_clear_error();
    if (OSSL_LIB_CTX_load_config(ctx, path) > 0)
        prov = OSSL_PROVIDER_load(ctx, OFFLOAD_PROVIDER_NAME);
    unlink(path);
    loaded = prov != NULL;
    ERR_print_errors_fp(stdout);
    OSSL_PROVIDER_unload(prov);
    OSSL_LIB_CTX_free(ctx);
    return loaded;
}

/* Each bad key fails the load (config.c and the module's dlopen), with a reason. */
static int child_bad_config(void)
{
    static const char *const lines[] = {
        "pkcs11_module = /nonexistent/libnope.so",
        "pkcs11_threads = 0",
        "pkcs11_threads = many",
        "pkcs11_pin_file = relative/pin",
        "pkcs11_module = /etc/hostname", /* not a shared object */
    };
    size_t i;
    int bad = 0;

    for (i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
        if (load_with(lines[i])) {
            fprintf(stderr, "%s: the provider loaded\n", lines[i]);
            bad = 1;
        }
    return bad;
}

static int child_no_module(void)
{
    test_env env;
    OSSL_STORE_CTX *st;
    unsigned long e;
    const char *data = NULL;
    int flags = 0, seen = 0;

    if (!test_env_open(&env, NULL))
        return 1;
    ERR_clear_error();
    st = OSSL_STORE_open_ex(TOKEN "tls-rsa", env.libctx, NULL, NULL, NULL, NULL, NULL,
                            NULL);
    while ((e = ERR_get_error_all(NULL, NULL, NULL, &data, &flags)) != 0) {
        const char *r = ERR_reason_error_string(e);

        printf("no module     -> %s: %s\n", r ? r : "?",
               flags & ERR_TXT_STRING ? data : "");
        seen |= r != NULL && strcmp(r, "no PKCS#11 module configured") == 0;
    }
    OSSL_STORE_close(st);
    test_env_close(&env);
    return st == NULL && seen ? 0 : 1;
}

/* Runs this program with |mode|; its output (stdout and stderr) into |out|. */
static int run_self(const char *mode, char *out, size_t len)
{
    char cmd[512];
    FILE *p;
    size_t n = 0;
    int st;

    /* OFFLOAD_PKCS11_CHILD: a child never runs the suite (and never forks again). */
    snprintf(cmd, sizeof(cmd), "OFFLOAD_PKCS11_CHILD=1 '/proc/%d/exe' %s 2>&1",
             (int)getpid(), mode);
    if ((p = popen(cmd, "r")) == NULL)
        return -1;
    while (n + 1 < len && fgets(out + n, (int)(len - n), p) != NULL)
        n += strlen(out + n);
    out[n] = '\0';
    st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_module_config(void **state)
{
    char out[4096];

    (void)state;
    assert_int_equal(run_self("bad-config", out, sizeof(out)), 0);
    printf("%s", out);
    assert_non_null(
        strstr(out, "pkcs11_module = \"/nonexistent/libnope.so\": cannot load"));
    assert_non_null(
        strstr(out, "pkcs11_threads = \"0\": expected an integer from 1 to 1024"));
    assert_non_null(strstr(out, "pkcs11_threads = \"many\""));
    assert_non_null(
        strstr(out, "pkcs11_pin_file = \"relative/pin\": expected an absolute"));
    assert_non_null(strstr(out, "pkcs11_module = \"/etc/hostname\": cannot load"));
    assert_int_equal(run_self("no-module", out, sizeof(out)), 0);
    printf("%s", out);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_module_config),
    };

    if (argc > 1 && strcmp(argv[1], "bad-config") == 0)
        return child_bad_config();
    if (argc > 1 && strcmp(argv[1], "no-module") == 0)
        return child_no_module();
    if (argc > 1 || getenv("OFFLOAD_PKCS11_CHILD") != NULL) {
        fprintf(stderr, "usage: %s [bad-config | no-module]\n", argv[0]);
        return 2;
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
