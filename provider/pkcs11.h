/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The PKCS#11 backend: one module (the pkcs11_module key), loaded with
 * dlopen() and initialised once per process (CKF_OS_LOCKING_OK), again in
 * a fork()ed child before its first use, finalised at the last unload.
 * Each thread gets its own session per slot on first use (kept for the
 * next thread when it exits); a slot is logged in once (the login state
 * is the application's, shared by its sessions), again after a fork with
 * the PIN it was given. Every CKR_* a call returns becomes an error on
 * the queue naming the function and the CKR name (offload_p11_raise).
 *
 * The token thread pool (p11_pool.c) runs calls of jobs: a token call may
 * wait for a network round trip, so those threads are not the CPU workers.
 */
#ifndef OFFLOAD_PKCS11_H
#define OFFLOAD_PKCS11_H

#include <signal.h>
#include <stddef.h>
#include <p11-kit/pkcs11.h>

#include "p11_uri.h"

struct offload_p11_config {
    const char *module;   /* "" or NULL: no token support */
    unsigned threads;     /* token threads (pkcs11_threads) */
    const char *pin_file; /* "" or NULL: none */
};

/*
 * Takes a reference on the backend; the first one loads and initialises
 * the module of |cfg| (nothing when it names none). 0 with the reason in
 * |err| (a module that cannot be loaded, or refuses C_Initialize).
 */
int offload_p11_acquire(const struct offload_p11_config *cfg, char *err, size_t errlen);
/* The last reference stops the token threads and finalises the module. */
void offload_p11_release(void);

/* 1 when a module is configured; raises "no PKCS#11 module configured" when not. */
int offload_p11_enabled(int raise);

/*
 * The module's functions, ready in this process (C_Initialize again first
 * in a fork()ed child); NULL after raising.
 */
CK_FUNCTION_LIST *offload_p11_fns(void);
/* Bumped at every C_Initialize: object handles and sessions of older ones are stale. */
unsigned offload_p11_generation(void);

/* The CKR_* name of |rv| ("CKR_PIN_INCORRECT"), or NULL when unknown. */
const char *offload_p11_rv_name(CK_RV rv);
/* Raises "<p11fn>: <CKR name> (0x..)[: <what>]" with reason "PKCS#11 call failed". */
void offload_p11_raise(const char *file, int line, const char *func, const char *p11fn,
                       CK_RV rv, const char *what);
#define OFFLOAD_P11_RAISE(p11fn, rv, what)                                               \
    offload_p11_raise(__FILE__, __LINE__, __func__, (p11fn), (rv), (what))

/* The slot whose token matches |u| (token, manufacturer, serial, model); 0 after raising.
 */
int offload_p11_find_slot(const struct offload_p11_uri *u, CK_SLOT_ID *slot);

/*
 * This thread's session on |slot| (opened on first use, logged in when
 * the slot was before); CK_INVALID_HANDLE after raising.
 */
CK_SESSION_HANDLE offload_p11_session(CK_SLOT_ID slot);
/* A session of this thread failed with |rv|: forget it when the session is gone. */
void offload_p11_session_failed(CK_SLOT_ID slot, CK_RV rv);

/*
 * Logs |slot| in with |pin| through |session| (once: already logged in is
 * success) and keeps the PIN for a fork()ed child. 1, or 0 after raising.
 */
int offload_p11_login(CK_SLOT_ID slot, CK_SESSION_HANDLE session, const char *pin);
/* 1 when |slot| is logged in (this generation). */
int offload_p11_logged_in(CK_SLOT_ID slot);

/*
 * The PIN for |u|: its pin-value, the first line of its pin-source, or of
 * the pkcs11_pin_file key's file; into |buf|. 1 found, 0 none (nothing
 * raised), -1 after raising (a file that cannot be read).
 */
int offload_p11_pin(const struct offload_p11_uri *u, char *buf, size_t len);

/*
 * No SIGPIPE from a token call. A remote module (p11-kit-client.so) writes
 * to a socket, and when its server has gone the write raises SIGPIPE,
 * whose default action kills the process (the application's, which may
 * not ignore it). Around a call: SIGPIPE blocked on this thread, and one
 * the call raised (pending, and not before) consumed before the mask is
 * restored; the call then fails with the module's CKR instead. The token
 * threads keep it blocked.
 */
struct offload_p11_nopipe {
    sigset_t old;
    int was_pending;
};
void offload_p11_nopipe_begin(struct offload_p11_nopipe *np);
void offload_p11_nopipe_end(struct offload_p11_nopipe *np);

/* The token pool (p11_pool.c), started at the first submit. */
struct offload_req;
int offload_p11_pool_submit(struct offload_req *req);
int offload_p11_pool_take_back(struct offload_req *req);
void offload_p11_pool_configure(unsigned threads);
void offload_p11_pool_stop(void);

#endif
