/* SPDX-License-Identifier: Apache-2.0 */
/* The debug log (log.h): formatting and the one write(2) per line. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <openssl/err.h>

#include "log.h"

_Atomic int offload_log_on;

void offload_log_init(int on)
{
    atomic_store_explicit(&offload_log_on, on != 0, memory_order_relaxed);
}

/* Writes |n| bytes of |buf| (a line without its newline) to stderr. */
static void emit(char *buf, int n)
{
    if (n < 0)
        return;
    if (n > OFFLOAD_LOG_LINE - 2) /* cut: keep room for the newline */
        n = OFFLOAD_LOG_LINE - 2;
    buf[n++] = '\n';
    /* Nothing to do when stderr is gone: a debug line is not worth an error. */
    if (write(STDERR_FILENO, buf, (size_t)n) < 0)
        return;
}

void offload_logv(const char *head, const char *fmt, va_list ap)
{
    char buf[OFFLOAD_LOG_LINE];
    int n = snprintf(buf, sizeof(buf), "offload[%d]: ", (int)getpid());

    if (head != NULL && n >= 0 && (size_t)n < sizeof(buf))
        n += snprintf(buf + n, sizeof(buf) - (size_t)n, "%s: ", head);
    if (n >= 0 && (size_t)n < sizeof(buf))
        n += vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
    emit(buf, n);
}

void offload_log(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    offload_logv(NULL, fmt, ap);
    va_end(ap);
}

static const char *reason_of(unsigned long e)
{
    const char *r = ERR_reason_error_string(e);

    return r != NULL ? r : "(no reason text)";
}

void offload_log_failure(const char *head)
{
    unsigned long last = ERR_peek_last_error(), first = ERR_peek_error();

    if (last == 0)
        offload_log("%s: failed (no error queued)", head);
    else if (first == last)
        offload_log("%s: failed: %s", head, reason_of(last));
    else /* a library's generic "... lib" often wraps the cause, queued first */
        offload_log("%s: failed: %s (first queued: %s)", head, reason_of(last),
                    reason_of(first));
}
