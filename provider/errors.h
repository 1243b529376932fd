/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Raising errors: our own error library ("offload"), registered by the
 * provider core at the first init and unloaded at the last teardown, and
 * the reason codes with their strings (errors.c). A leaf: it uses only
 * libcrypto's public ERR_* calls and the log (log.h), so raising needs no
 * core handle and works on any thread (a worker's errors are captured and
 * replayed on the caller's, accel/request.c).
 */
#ifndef OFFLOAD_ERRORS_H
#define OFFLOAD_ERRORS_H

/* Reason codes; their strings are in errors.c. */
enum {
    OFFLOAD_R_SOFT_ENGINE = 1,
    OFFLOAD_R_NOT_RUNNING,
    OFFLOAD_R_NULL_ARGUMENT,
    OFFLOAD_R_WRONG_KEY_TYPE,
    OFFLOAD_R_NO_KEY,
    OFFLOAD_R_BUFFER_TOO_SMALL,
    OFFLOAD_R_ALLOC,
    OFFLOAD_R_ENGINE_FAILED,
    OFFLOAD_R_BAD_PARAM,
    OFFLOAD_R_TAG_MISMATCH,
    OFFLOAD_R_PKCS11,
    OFFLOAD_R_PKCS11_NO_MODULE,
    OFFLOAD_R_PKCS11_NO_TOKEN,
    OFFLOAD_R_PKCS11_PIN,
    OFFLOAD_R_PKCS11_NO_OBJECT,
    OFFLOAD_R_PKCS11_UNSUPPORTED,
    OFFLOAD_R_BAD_URI,
    OFFLOAD_R_BAD_URI_FILE,
};

/* Registers the library and its strings (first init, under the core's lock). */
void offload_errors_load(void);
/* Unregisters them (last teardown, or a first init that failed). */
void offload_errors_unload(void);

/*
 * Raises |reason| (one of ours, or a packed ERR_PACK code of another
 * library) on the calling thread's error queue, and logs it (log.h).
 * |pctx| is ignored (may be NULL).
 */
void offload_raise(const void *pctx, const char *file, int line, const char *func,
                   int reason, const char *fmt, ...);
#define OFFLOAD_RAISE(pctx, reason, ...)                                                 \
    offload_raise((pctx), __FILE__, __LINE__, __func__, (reason), __VA_ARGS__)

#endif
