/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The debug log: short lines on stderr, "offload[<pid>]: <text>", switched
 * by the "debug" key of openssl.cnf or OFFLOAD_DEBUG=1.
 *
 * A leaf: it knows nothing of the rest of the provider. One variable,
 * set once at init (offload_log_init), decides; while it is off a call
 * site costs one predictable branch on it, and nothing is formatted.
 * Lines are formatted into a buffer of OFFLOAD_LOG_LINE bytes on the
 * caller's stack (it may be a job's 32 KiB one) and written with one
 * write(2), so lines of different threads never mix.
 */
#ifndef OFFLOAD_LOG_H
#define OFFLOAD_LOG_H

#include <stdarg.h>
#include <stdatomic.h>

#define OFFLOAD_LOG_LINE 256

extern _Atomic int offload_log_on;

static inline int offload_log_enabled(void)
{
    return __builtin_expect(atomic_load_explicit(&offload_log_on, memory_order_relaxed),
                            0);
}

/* Switches the log on or off (provider init). */
void offload_log_init(int on);

/* One line: the formatted text, cut at OFFLOAD_LOG_LINE. */
void offload_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* "<head>: <fmt ...>", or the formatted text alone when |head| is NULL. */
void offload_logv(const char *head, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

/*
 * "<head>: failed: <reason>" with the reason of the newest error on this
 * thread's OpenSSL error queue (and of the oldest, when they differ), or
 * "<head>: failed (no error queued)".
 */
void offload_log_failure(const char *head);

/* The log line when it is on; never evaluates its arguments when it is off. */
#define OFFLOAD_DEBUG(...)                                                               \
    do {                                                                                 \
        if (offload_log_enabled())                                                       \
            offload_log(__VA_ARGS__);                                                    \
    } while (0)

#endif
