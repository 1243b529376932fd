/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What tls_ref_server and tls_ref_client share: the protocol and a clock.
 *
 * The protocol: after the handshake the client sends request lines
 * "<n>\n"; the server answers each with exactly n bytes of the pattern
 * below (byte k of an answer is 'a' + k % 26), so the client can check
 * every byte. The client ends with close_notify and closes.
 */
#ifndef TLS_REF_H
#define TLS_REF_H

#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#define TLS_REF_HOST      "127.0.0.1"
#define TLS_REF_MAX_REPLY (64u << 20) /* largest n a request may ask for */
#define TLS_REF_CHUNK     16384       /* bytes per SSL_write: one full record */
#define TLS_REF_PERIOD    26          /* the pattern repeats every 26 bytes */

static inline unsigned char tls_ref_byte(uint64_t k)
{
    return (unsigned char)('a' + k % TLS_REF_PERIOD);
}

/* TLS_REF_CHUNK + TLS_REF_PERIOD bytes of pattern: any offset's chunk is a slice. */
static inline void tls_ref_fill(unsigned char *buf, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++)
        buf[i] = tls_ref_byte(i);
}

static inline uint64_t tls_ref_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A whole decimal number in [min, max], else 0 (and *out untouched). */
static inline int tls_ref_parse_u64(const char *s, uint64_t min, uint64_t max,
                                    uint64_t *out)
{
    char *end;
    unsigned long long v;

    if (s == NULL || *s < '0' || *s > '9')
        return 0;
    v = strtoull(s, &end, 10);
    if (*end != '\0' || v < min || v > max)
        return 0;
    *out = v;
    return 1;
}

/* A non-negative decimal (seconds, fractions), else 0. */
static inline int tls_ref_parse_double(const char *s, double max, double *out)
{
    char *end;
    double v;

    if (s == NULL || *s == '\0')
        return 0;
    v = strtod(s, &end);
    if (*end != '\0' || !(v >= 0) || v > max)
        return 0;
    *out = v;
    return 1;
}

#endif
