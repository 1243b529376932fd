/* SPDX-License-Identifier: Apache-2.0 */
/* Raising errors (errors.h): our own error library and its reason strings. */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <openssl/err.h>

#include "errors.h"
#include "log.h"
#include "offload.h"

/*
 * Our own error library, registered at the first init and unloaded at the
 * last teardown: errors are raised with the public ERR_* calls, so raising
 * needs no core handle (our provider context is the default's, and a
 * worker or a late cleanup may raise after an instance is gone).
 */
static ERR_STRING_DATA reason_strings[] = {
    {OFFLOAD_R_SOFT_ENGINE, "cannot load the default provider as soft engine"},
    {OFFLOAD_R_NOT_RUNNING, "offload provider is not running"},
    {OFFLOAD_R_NULL_ARGUMENT, "required argument is NULL"},
    {OFFLOAD_R_WRONG_KEY_TYPE, "wrong key type for this algorithm"},
    {OFFLOAD_R_NO_KEY, "no key set"},
    {OFFLOAD_R_BUFFER_TOO_SMALL, "output buffer too small"},
    {OFFLOAD_R_ALLOC, "out of memory"},
    {OFFLOAD_R_ENGINE_FAILED, "accelerator failed"},
    {OFFLOAD_R_BAD_PARAM, "invalid parameter"},
    {OFFLOAD_R_TAG_MISMATCH, "authentication tag mismatch"},
    {OFFLOAD_R_PKCS11, "PKCS#11 call failed"},
    {OFFLOAD_R_PKCS11_NO_MODULE, "no PKCS#11 module configured"},
    {OFFLOAD_R_PKCS11_NO_TOKEN, "no such PKCS#11 token"},
    {OFFLOAD_R_PKCS11_PIN, "PKCS#11 PIN unavailable"},
    {OFFLOAD_R_PKCS11_NO_OBJECT, "no such PKCS#11 object"},
    {OFFLOAD_R_PKCS11_UNSUPPORTED, "not supported with a PKCS#11 key"},
    {OFFLOAD_R_BAD_URI, "bad PKCS#11 URI"},
    {OFFLOAD_R_BAD_URI_FILE, "bad PKCS#11 key-URI file"},
    {0, NULL}};
static ERR_STRING_DATA lib_name[] = {{0, OFFLOAD_PROVIDER_NAME}, {0, NULL}};
static _Atomic int err_lib; /* 0 until registered */

void offload_errors_load(void)
{
    static int lib; /* one library number for the life of the process */

    if (lib == 0)
        lib = ERR_get_next_error_library();
    ERR_load_strings(lib, reason_strings); /* packs |lib| into each code */
    lib_name[0].error = ERR_PACK(lib, 0, 0);
    ERR_load_strings(lib, lib_name);
    atomic_store(&err_lib, lib);
}

void offload_errors_unload(void)
{
    int lib = atomic_load(&err_lib);

    if (lib == 0)
        return;
    ERR_unload_strings(lib, reason_strings);
    ERR_unload_strings(lib, lib_name);
}

static const char *reason_text(int reason)
{
    const ERR_STRING_DATA *it;
    const char *t;

    for (it = reason_strings; it->string != NULL; it++)
        if ((int)ERR_GET_REASON(it->error) == reason)
            return it->string;
    t = ERR_reason_error_string((unsigned long)reason); /* a packed ERR_LIB_PROV code */
    return t != NULL ? t : "unknown reason";
}

/* The log's line for an error we raise: "error: <reason>: <text> (file:line func)". */
static __attribute__((cold, noinline)) void log_raise(const char *file, int line,
                                                      const char *func, int reason,
                                                      const char *fmt, va_list ap)
{
    char text[160] = "";
    const char *base = strrchr(file, '/');

    if (fmt != NULL)
        vsnprintf(text, sizeof(text), fmt, ap);
    offload_log("error: %s%s%s (%s:%d %s)", reason_text(reason), text[0] ? ": " : "",
                text, base != NULL ? base + 1 : file, line, func);
}

void offload_raise(const void *pctx, const char *file, int line, const char *func,
                   int reason, const char *fmt, ...)
{
    int lib = ERR_GET_LIB((unsigned long)reason);
    va_list ap;

    (void)pctx;
    if (offload_log_enabled()) {
        va_start(ap, fmt);
        log_raise(file, line, func, reason, fmt, ap);
        va_end(ap);
    }
    if (lib != 0) /* another library's packed code */
        reason = ERR_GET_REASON((unsigned long)reason);
    else
        lib = atomic_load_explicit(&err_lib, memory_order_relaxed);
    ERR_new();
    ERR_set_debug(file, line, func);
    va_start(ap, fmt);
    ERR_vset_error(lib, reason, fmt, ap);
    va_end(ap);
}
