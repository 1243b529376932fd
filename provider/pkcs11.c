/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The PKCS#11 backend (pkcs11.h): the module, its (re-)initialisation, the
 * slots' logins, the per-thread sessions and the CKR_* names.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/crypto.h>

#include "pkcs11.h"
#include "prov.h"

#define MAX_SLOTS        16 /* slots logged in (each keeps its PIN) */
#define SESSIONS_PER_THR 8  /* slots a thread holds a session on */
#define PIN_MAX          256

struct p11_slot {
    CK_SLOT_ID id;
    unsigned logged_gen; /* the generation it was logged in for; 0: never */
    char pin[PIN_MAX];
    int have_pin;
};

/* A thread's sessions; returned to the spares when the thread exits. */
struct p11_thread {
    struct p11_thread *next_all, *next_spare;
    unsigned gen;
    unsigned n;
    struct {
        CK_SLOT_ID slot;
        CK_SESSION_HANDLE h;
    } s[SESSIONS_PER_THR];
};

static struct {
    pthread_mutex_t lock;
    unsigned users;
    void *dl;
    CK_FUNCTION_LIST *fns;
    char module[256];
    char pin_file[256];
    pid_t pid;            /* the process that initialised the module */
    _Atomic unsigned gen; /* C_Initialize count */
    struct p11_slot slots[MAX_SLOTS];
    unsigned nslots;
    pthread_key_t key;
    int have_key;
    struct p11_thread *all, *spares;
    int finalised; /* by the exit handler: the module's own destructors run next */
} P = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* ---- CKR_* names ---- */

#define RV(x)                                                                            \
    {                                                                                    \
        x, #x                                                                            \
    }
static const struct {
    CK_RV rv;
    const char *name;
} rv_names[] = {
    RV(CKR_OK),
    RV(CKR_CANCEL),
    RV(CKR_HOST_MEMORY),
    RV(CKR_SLOT_ID_INVALID),
    RV(CKR_GENERAL_ERROR),
    RV(CKR_FUNCTION_FAILED),
    RV(CKR_ARGUMENTS_BAD),
    RV(CKR_NO_EVENT),
    RV(CKR_NEED_TO_CREATE_THREADS),
    RV(CKR_CANT_LOCK),
    RV(CKR_ATTRIBUTE_READ_ONLY),
    RV(CKR_ATTRIBUTE_SENSITIVE),
    RV(CKR_ATTRIBUTE_TYPE_INVALID),
    RV(CKR_ATTRIBUTE_VALUE_INVALID),
    RV(CKR_DATA_INVALID),
    RV(CKR_DATA_LEN_RANGE),
    RV(CKR_DEVICE_ERROR),
    RV(CKR_DEVICE_MEMORY),
    RV(CKR_DEVICE_REMOVED),
    RV(CKR_ENCRYPTED_DATA_INVALID),
    RV(CKR_ENCRYPTED_DATA_LEN_RANGE),
    RV(CKR_FUNCTION_CANCELED),
    RV(CKR_FUNCTION_NOT_PARALLEL),
    RV(CKR_FUNCTION_NOT_SUPPORTED),
    RV(CKR_KEY_HANDLE_INVALID),
    RV(CKR_KEY_SIZE_RANGE),
    RV(CKR_KEY_TYPE_INCONSISTENT),
    RV(CKR_KEY_FUNCTION_NOT_PERMITTED),
    RV(CKR_MECHANISM_INVALID),
    RV(CKR_MECHANISM_PARAM_INVALID),
    RV(CKR_OBJECT_HANDLE_INVALID),
    RV(CKR_OPERATION_ACTIVE),
    RV(CKR_OPERATION_NOT_INITIALIZED),
    RV(CKR_PIN_INCORRECT),
    RV(CKR_PIN_INVALID),
    RV(CKR_PIN_LEN_RANGE),
    RV(CKR_PIN_EXPIRED),
    RV(CKR_PIN_LOCKED),
    RV(CKR_SESSION_CLOSED),
    RV(CKR_SESSION_COUNT),
    RV(CKR_SESSION_HANDLE_INVALID),
    RV(CKR_SESSION_PARALLEL_NOT_SUPPORTED),
    RV(CKR_SESSION_READ_ONLY),
    RV(CKR_SESSION_EXISTS),
    RV(CKR_SIGNATURE_INVALID),
    RV(CKR_SIGNATURE_LEN_RANGE),
    RV(CKR_TEMPLATE_INCOMPLETE),
    RV(CKR_TEMPLATE_INCONSISTENT),
    RV(CKR_TOKEN_NOT_PRESENT),
    RV(CKR_TOKEN_NOT_RECOGNIZED),
    RV(CKR_USER_ALREADY_LOGGED_IN),
    RV(CKR_USER_NOT_LOGGED_IN),
    RV(CKR_USER_PIN_NOT_INITIALIZED),
    RV(CKR_USER_TYPE_INVALID),
    RV(CKR_USER_ANOTHER_ALREADY_LOGGED_IN),
    RV(CKR_BUFFER_TOO_SMALL),
    RV(CKR_CRYPTOKI_NOT_INITIALIZED),
    RV(CKR_CRYPTOKI_ALREADY_INITIALIZED),
};
#undef RV

const char *offload_p11_rv_name(CK_RV rv)
{
    size_t i;

    for (i = 0; i < sizeof(rv_names) / sizeof(rv_names[0]); i++)
        if (rv_names[i].rv == rv)
            return rv_names[i].name;
    return NULL;
}

void offload_p11_raise(const char *file, int line, const char *func, const char *p11fn,
                       CK_RV rv, const char *what)
{
    const char *name = offload_p11_rv_name(rv);

    offload_raise(NULL, file, line, func, OFFLOAD_R_PKCS11, "%s: %s (0x%lx)%s%s", p11fn,
                  name != NULL ? name : "unknown CKR", (unsigned long)rv,
                  what != NULL ? ": " : "", what != NULL ? what : "");
}

/* ---- SIGPIPE ---- */

void offload_p11_nopipe_begin(struct offload_p11_nopipe *np)
{
    sigset_t pipe, pending;

    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    np->was_pending = sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1;
    pthread_sigmask(SIG_BLOCK, &pipe, &np->old);
}

void offload_p11_nopipe_end(struct offload_p11_nopipe *np)
{
    sigset_t pipe, pending;
    const struct timespec now = {0, 0};

    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    if (!np->was_pending && sigpending(&pending) == 0 &&
        sigismember(&pending, SIGPIPE) == 1)
        sigtimedwait(&pipe, NULL, &now); /* ours: taken before it can be delivered */
    pthread_sigmask(SIG_SETMASK, &np->old, NULL);
}

/* ---- the module ---- */

static void thread_gone(void *arg);

static CK_RV initialize(CK_FUNCTION_LIST *f)
{
    CK_C_INITIALIZE_ARGS args;
    struct offload_p11_nopipe np;
    CK_RV rv;

    memset(&args, 0, sizeof(args));
    args.flags = CKF_OS_LOCKING_OK;
    offload_p11_nopipe_begin(&np);
    rv = f->C_Initialize(&args);
    offload_p11_nopipe_end(&np);
    return rv;
}

static void finalize(CK_FUNCTION_LIST *f)
{
    struct offload_p11_nopipe np;

    offload_p11_nopipe_begin(&np);
    f->C_Finalize(NULL);
    offload_p11_nopipe_end(&np);
}

/*
 * exit(): a C++ module (SoftHSM) registers its static destructors when it
 * is dlopen()ed, after OpenSSL's exit handler; they run before OpenSSL
 * tears us down, and a C_Finalize after them crashes. This handler,
 * registered after the dlopen(), runs before them: it joins the token
 * threads and finalises the module while it is whole.
 */
static void p11_atexit(void)
{
    pthread_mutex_lock(&P.lock);
    if (P.fns == NULL || P.finalised) {
        pthread_mutex_unlock(&P.lock);
        return;
    }
    P.finalised = 1;
    pthread_mutex_unlock(&P.lock);
    offload_p11_pool_stop();
    pthread_mutex_lock(&P.lock);
    if (P.pid == getpid())
        finalize(P.fns);
    pthread_mutex_unlock(&P.lock);
}

static pthread_once_t atexit_once = PTHREAD_ONCE_INIT;

static void register_atexit(void)
{
    atexit(p11_atexit);
}

int offload_p11_acquire(const struct offload_p11_config *cfg, char *err, size_t errlen)
{
    CK_C_GetFunctionList get;
    CK_FUNCTION_LIST *fns = NULL;
    CK_RV rv;
    int ok = 1;

    pthread_mutex_lock(&P.lock);
    if (P.users++ > 0 || cfg->module == NULL || cfg->module[0] == '\0')
        goto out;
    snprintf(P.module, sizeof(P.module), "%s", cfg->module);
    snprintf(P.pin_file, sizeof(P.pin_file), "%s", cfg->pin_file ? cfg->pin_file : "");
    offload_p11_pool_configure(cfg->threads);
    P.dl = dlopen(cfg->module, RTLD_NOW | RTLD_LOCAL);
    if (P.dl == NULL) {
        snprintf(err, errlen, "%s = \"%s\": cannot load it: %s",
                 OFFLOAD_CONF_PKCS11_MODULE, cfg->module, dlerror());
        goto fail;
    }
    get = (CK_C_GetFunctionList)dlsym(P.dl, "C_GetFunctionList");
    if (get == NULL || (rv = get(&fns)) != CKR_OK || fns == NULL) {
        snprintf(err, errlen, "%s = \"%s\": no C_GetFunctionList (not a PKCS#11 module?)",
                 OFFLOAD_CONF_PKCS11_MODULE, cfg->module);
        goto fail;
    }
    if ((rv = initialize(fns)) != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
        const char *name = offload_p11_rv_name(rv);

        snprintf(err, errlen, "%s = \"%s\": C_Initialize: %s (0x%lx)",
                 OFFLOAD_CONF_PKCS11_MODULE, cfg->module, name ? name : "unknown CKR",
                 (unsigned long)rv);
        goto fail;
    }
    P.fns = fns;
    P.finalised = 0;
    pthread_once(&atexit_once, register_atexit);
    P.pid = getpid();
    atomic_fetch_add(&P.gen, 1);
    if (!P.have_key && pthread_key_create(&P.key, thread_gone) == 0)
        P.have_key = 1;
    OFFLOAD_DEBUG("pkcs11: %s loaded (cryptoki %u.%u)", cfg->module, fns->version.major,
                  fns->version.minor);
    goto out;
fail:
    if (P.dl != NULL)
        dlclose(P.dl);
    P.dl = NULL;
    P.users--;
    ok = 0;
out:
    pthread_mutex_unlock(&P.lock);
    return ok;
}

void offload_p11_release(void)
{
    struct p11_thread *t, *next;

    pthread_mutex_lock(&P.lock);
    if (P.users == 0 || --P.users > 0 || P.fns == NULL) {
        pthread_mutex_unlock(&P.lock);
        return;
    }
    pthread_mutex_unlock(&P.lock);
    offload_p11_pool_stop(); /* nothing in flight from here */
    pthread_mutex_lock(&P.lock);
    if (P.pid == getpid() && !P.finalised)
        finalize(P.fns); /* closes every session */
    for (t = P.all; t != NULL; t = next) {
        next = t->next_all;
        free(t);
    }
    P.all = P.spares = NULL;
    /* No destructor of ours runs after this: the module may be unmapped. */
    if (P.have_key)
        pthread_key_delete(P.key);
    P.have_key = 0;
    OPENSSL_cleanse(P.slots, sizeof(P.slots));
    P.nslots = 0;
    P.fns = NULL;
    dlclose(P.dl);
    P.dl = NULL;
    OFFLOAD_DEBUG("pkcs11: %s finalised", P.module);
    pthread_mutex_unlock(&P.lock);
}

int offload_p11_enabled(int raise)
{
    int on;

    pthread_mutex_lock(&P.lock);
    on = P.fns != NULL;
    pthread_mutex_unlock(&P.lock);
    if (!on && raise)
        OFFLOAD_RAISE(NULL, OFFLOAD_R_PKCS11_NO_MODULE,
                      "set %s in the provider's section", OFFLOAD_CONF_PKCS11_MODULE);
    return on;
}

unsigned offload_p11_generation(void)
{
    return atomic_load(&P.gen);
}

CK_FUNCTION_LIST *offload_p11_fns(void)
{
    CK_FUNCTION_LIST *f;
    CK_RV rv = CKR_OK;

    pthread_mutex_lock(&P.lock);
    f = P.fns;
    if (f != NULL && P.finalised) {
        pthread_mutex_unlock(&P.lock);
        OFFLOAD_RAISE(NULL, OFFLOAD_R_PKCS11_NO_MODULE,
                      "the module was finalised at exit");
        return NULL;
    }
    if (f != NULL && P.pid != getpid()) {
        /* A fork()ed child: the parent's initialisation is not ours to use. */
        rv = initialize(f);
        if (rv == CKR_CRYPTOKI_ALREADY_INITIALIZED) {
            finalize(f);
            rv = initialize(f);
        }
        if (rv == CKR_OK) {
            P.pid = getpid();
            atomic_fetch_add(&P.gen, 1);
            OFFLOAD_DEBUG("pkcs11: initialised again in child %d", (int)P.pid);
        }
    }
    pthread_mutex_unlock(&P.lock);
    if (f == NULL) {
        OFFLOAD_RAISE(NULL, OFFLOAD_R_PKCS11_NO_MODULE,
                      "set %s in the provider's section", OFFLOAD_CONF_PKCS11_MODULE);
        return NULL;
    }
    if (rv != CKR_OK) {
        OFFLOAD_P11_RAISE("C_Initialize", rv, "in a fork()ed child");
        return NULL;
    }
    return f;
}

/* ---- slots ---- */

/* A blank-padded CK_TOKEN_INFO field equals |want|. */
static int field_is(const unsigned char *f, size_t len, const char *want)
{
    size_t n = len;

    while (n > 0 && (f[n - 1] == ' ' || f[n - 1] == '\0'))
        n--;
    return want == NULL || (strlen(want) == n && memcmp(f, want, n) == 0);
}

int offload_p11_find_slot(const struct offload_p11_uri *u, CK_SLOT_ID *slot)
{
    CK_FUNCTION_LIST *f = offload_p11_fns();
    CK_SLOT_ID ids[64];
    CK_ULONG n = 64, i;
    CK_RV rv;
    char what[160];

    if (f == NULL)
        return 0;
    if ((rv = f->C_GetSlotList(CK_TRUE, ids, &n)) != CKR_OK) {
        OFFLOAD_P11_RAISE("C_GetSlotList", rv, NULL);
        return 0;
    }
    for (i = 0; i < n; i++) {
        CK_TOKEN_INFO ti;

        if (f->C_GetTokenInfo(ids[i], &ti) != CKR_OK)
            continue;
        if (field_is(ti.label, sizeof(ti.label), u->token) &&
            field_is(ti.manufacturerID, sizeof(ti.manufacturerID), u->manufacturer) &&
            field_is(ti.serialNumber, sizeof(ti.serialNumber), u->serial) &&
            field_is(ti.model, sizeof(ti.model), u->model)) {
            *slot = ids[i];
            return 1;
        }
    }
    snprintf(what, sizeof(what), "token=%s%s%s (%lu tokens present)",
             u->token ? u->token : "(any)", u->serial ? " serial=" : "",
             u->serial ? u->serial : "", (unsigned long)n);
    OFFLOAD_RAISE(NULL, OFFLOAD_R_PKCS11_NO_TOKEN, "%s", what);
    return 0;
}

/* With P.lock held: |id|'s record, made when |make|. */
static struct p11_slot *slot_rec(CK_SLOT_ID id, int make)
{
    unsigned i;

    for (i = 0; i < P.nslots; i++)
        if (P.slots[i].id == id)
            return &P.slots[i];
    if (!make || P.nslots == MAX_SLOTS)
        return NULL;
    memset(&P.slots[P.nslots], 0, sizeof(P.slots[0]));
    P.slots[P.nslots].id = id;
    return &P.slots[P.nslots++];
}

int offload_p11_logged_in(CK_SLOT_ID slot)
{
    struct p11_slot *s;
    int in;

    pthread_mutex_lock(&P.lock);
    s = slot_rec(slot, 0);
    in = s != NULL && s->logged_gen == atomic_load(&P.gen);
    pthread_mutex_unlock(&P.lock);
    return in;
}

int offload_p11_login(CK_SLOT_ID slot, CK_SESSION_HANDLE session, const char *pin)
{
    CK_FUNCTION_LIST *f = offload_p11_fns();
    struct p11_slot *s;
    CK_RV rv;

    if (f == NULL)
        return 0;
    if (strlen(pin) >= PIN_MAX) {
        OFFLOAD_RAISE(NULL, OFFLOAD_R_PKCS11_PIN, "the PIN is longer than %d bytes",
                      PIN_MAX - 1);
        return 0;
    }
    if (offload_p11_logged_in(slot))
        return 1;
    rv = f->C_Login(session, CKU_USER, (CK_UTF8CHAR *)pin, (CK_ULONG)strlen(pin));
    if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
        OFFLOAD_P11_RAISE("C_Login", rv, NULL);
        return 0;
    }
    pthread_mutex_lock(&P.lock);
    if ((s = slot_rec(slot, 1)) != NULL) {
        s->logged_gen = atomic_load(&P.gen);
        snprintf(s->pin, sizeof(s->pin), "%s", pin);
        s->have_pin = 1;
    }
    pthread_mutex_unlock(&P.lock);
    return 1;
}

/* ---- per-thread sessions ---- */

/* Thread exit: its sessions stay open for the next thread. */
static void thread_gone(void *arg)
{
    struct p11_thread *t = arg;

    pthread_mutex_lock(&P.lock);
    t->next_spare = P.spares;
    P.spares = t;
    pthread_mutex_unlock(&P.lock);
}

static struct p11_thread *this_thread(void)
{
    struct p11_thread *t;

    if (!P.have_key)
        return NULL;
    if ((t = pthread_getspecific(P.key)) != NULL)
        return t;
    pthread_mutex_lock(&P.lock);
    if ((t = P.spares) != NULL)
        P.spares = t->next_spare;
    else if ((t = calloc(1, sizeof(*t))) != NULL) {
        t->next_all = P.all;
        P.all = t;
    }
    pthread_mutex_unlock(&P.lock);
    if (t == NULL)
        return NULL;
    pthread_setspecific(P.key, t);
    return t;
}

CK_SESSION_HANDLE offload_p11_session(CK_SLOT_ID slot)
{
    CK_FUNCTION_LIST *f = offload_p11_fns();
    struct p11_thread *t;
    struct p11_slot *rec;
    CK_SESSION_HANDLE h;
    char pin[PIN_MAX] = "";
    unsigned gen, i;
    CK_RV rv;

    if (f == NULL)
        return CK_INVALID_HANDLE;
    if ((t = this_thread()) == NULL) {
        OFFLOAD_RAISE(NULL, OFFLOAD_R_ALLOC, "a thread's PKCS#11 sessions");
        return CK_INVALID_HANDLE;
    }
    gen = atomic_load(&P.gen);
    if (t->gen != gen) { /* sessions of a module initialisation gone (fork) */
        t->n = 0;
        t->gen = gen;
    }
    for (i = 0; i < t->n; i++)
        if (t->s[i].slot == slot)
            return t->s[i].h;
    if (t->n == SESSIONS_PER_THR) {
        OFFLOAD_RAISE(NULL, OFFLOAD_R_PKCS11_NO_TOKEN,
                      "a thread holds sessions on %d slots already", SESSIONS_PER_THR);
        return CK_INVALID_HANDLE;
    }
    rv = f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &h);
    if (rv != CKR_OK) {
        OFFLOAD_P11_RAISE("C_OpenSession", rv, NULL);
        return CK_INVALID_HANDLE;
    }
    t->s[t->n].slot = slot;
    t->s[t->n++].h = h;
    /* A slot logged in before a fork: log in again with its PIN. */
    pthread_mutex_lock(&P.lock);
    rec = slot_rec(slot, 0);
    if (rec != NULL && rec->have_pin && rec->logged_gen != gen)
        memcpy(pin, rec->pin, sizeof(pin));
    pthread_mutex_unlock(&P.lock);
    if (pin[0] != '\0') {
        int ok = offload_p11_login(slot, h, pin);

        OPENSSL_cleanse(pin, sizeof(pin));
        if (!ok)
            return CK_INVALID_HANDLE;
    }
    return h;
}

void offload_p11_session_failed(CK_SLOT_ID slot, CK_RV rv)
{
    struct p11_thread *t;
    unsigned i;

    if (rv != CKR_SESSION_HANDLE_INVALID && rv != CKR_SESSION_CLOSED &&
        rv != CKR_DEVICE_REMOVED && rv != CKR_TOKEN_NOT_PRESENT)
        return;
    if (!P.have_key || (t = pthread_getspecific(P.key)) == NULL)
        return;
    for (i = 0; i < t->n; i++)
        if (t->s[i].slot == slot) {
            t->s[i] = t->s[--t->n];
            return;
        }
}

/* ---- PINs ---- */

static int pin_from_file(const char *path, char *buf, size_t len)
{
    FILE *fp = fopen(path, "r");
    size_t n;

    if (fp == NULL) {
        OFFLOAD_RAISE(NULL, OFFLOAD_R_PKCS11_PIN, "cannot read the PIN file %s", path);
        return -1;
    }
    if (fgets(buf, (int)len, fp) == NULL)
        buf[0] = '\0';
    fclose(fp);
    n = strcspn(buf, "\r\n");
    buf[n] = '\0';
    return 1;
}

int offload_p11_pin(const struct offload_p11_uri *u, char *buf, size_t len)
{
    char file[256];

    if (u->pin_value != NULL) {
        snprintf(buf, len, "%s", u->pin_value);
        return 1;
    }
    if (u->pin_source != NULL)
        return pin_from_file(u->pin_source, buf, len);
    pthread_mutex_lock(&P.lock);
    snprintf(file, sizeof(file), "%s", P.pin_file);
    pthread_mutex_unlock(&P.lock);
    if (file[0] != '\0')
        return pin_from_file(file, buf, len);
    return 0;
}
