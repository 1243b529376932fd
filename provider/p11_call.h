/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One private-key call on a token key (p11_key.h), C_SignInit + C_Sign,
 * C_DecryptInit + C_Decrypt, or C_DeriveKey of a session secret whose
 * CKA_VALUE is read and which is destroyed again (ECDH), with the
 * mechanism the family prepared, as a
 * request (accel.h): inside a job it goes to the token threads and the
 * job pauses (woken by fd or callback like any request); outside, it runs
 * on the calling thread's session. A stale object handle (the token's
 * objects changed) is looked up again once. CKM_ECDSA's r || s comes back
 * as a DER ECDSA-Sig-Value.
 */
#ifndef OFFLOAD_P11_CALL_H
#define OFFLOAD_P11_CALL_H

#include <stddef.h>

#include "accel/accel.h"
#include "p11_key.h"

struct offload_p11_call {
    struct offload_p11_key *key; /* a reference, dropped with the request */
    int decrypt;                 /* C_Decrypt, else C_Sign */
    int derive;                  /* C_DeriveKey of |outsize| secret bytes */
    int ecdsa;                   /* turn r || s into DER */
    CK_MECHANISM_TYPE mech;
    union {
        CK_RSA_PKCS_PSS_PARAMS pss;
        CK_RSA_PKCS_OAEP_PARAMS oaep;
        CK_ECDH1_DERIVE_PARAMS ecdh;
    } prm;
    CK_ULONG prmlen;                 /* 0: no parameter */
    unsigned char *in, *out, *extra; /* in the request's payload */
    size_t inlen, inroom, outlen, outsize;
};

/*
 * A request for a call with token key |k| (a reference taken): room for
 * |inroom| input bytes, |outsize| output bytes and |extra| more (an OAEP
 * label); NULL after raising.
 */
struct offload_req *offload_p11_call_new(struct offload_p11_key *k, size_t inroom,
                                         size_t outsize, size_t extra);
static inline struct offload_p11_call *offload_p11_call_of(struct offload_req *req)
{
    return (struct offload_p11_call *)req->payload;
}
/*
 * Runs the call of |req| (on the token threads in a job, else here),
 * counted in family |f| as operation |op| of |alg|. 1, or 0 after raising;
 * the output is in the call's |out| and |outlen|. The request stays the
 * caller's to put.
 */
int offload_p11_call_run(struct offload_req *req, enum offload_family f, const char *alg,
                         const char *op);

#endif
