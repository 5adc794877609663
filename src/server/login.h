/*
 * The Login stream's state, shared by login.c (the stream: steps, timeout,
 * issuance) and login_attest.c (policy match, attestors, proofs,
 * attributes). See login.c for the protocol.
 */
#ifndef ANCHOR_SERVER_LOGIN_H
#define ANCHOR_SERVER_LOGIN_H

#include <time.h>

#include "issue.h"

#define MAX_ATTESTORS 16
#define MAX_TYPE_LEN  64
/* Logins in flight at once; beyond it new ones are refused at once rather
 * than holding state until their timeout. */
#define MAX_LOGINS_IN_FLIGHT      4096
#define LOGIN_MSG_NO_POLICY       "no cluster policy authorizes the provided attestors"
#define LOGIN_MSG_POLICY_NOTFOUND "attestation policy not found or no matching policy"
#define LOGIN_MSG_REJECTED        "Attestor rejected proof, policy failed"
#define LOGIN_MSG_BAD_PROOF       "Authorization failed: challenge response failed validation"

enum login_state { WAIT_START, WAIT_PROOFS };

struct login_attestor {
    const char *type; /* borrowed from the snapshot */
    const struct anchor_x509pop_config *x509pop;
    struct anchor_x509pop_verified *verified;
    uint8_t nonce[ANCHOR_X509POP_NONCE_LEN];
    int nonce_live; /* 1 from the challenge until its one answer */
};

struct server_login {
    struct server_ctx *ctx;
    struct anchor_rpc_call *call;
    struct server_login *prev, *next;
    enum login_state state;
    struct timespec t0;
    struct event *timer;
    char peer[64];
    uint8_t exporter[ANCHOR_X509POP_EXPORTER_LEN];
    struct anchor_policy_doc *snap; /* the snapshot this login started with */
    const struct anchor_policy *policy;
    struct anchor_svid_request *req;
    struct login_attestor att[MAX_ATTESTORS];
    size_t n_att;
};

enum login_match {
    LOGIN_MATCHED,     /* l->policy and l->att are set */
    LOGIN_NO_POLICY,   /* no policy applies: logged */
    LOGIN_REJECTED,    /* every applicable policy refused: logged */
    LOGIN_MATCH_ERROR, /* err has the message */
};

/* 1 for an attestor type name of [a-z0-9_-], 1..64 bytes. */
int login_type_ok(const char *t);

/* Runs the policies of l->snap that apply to the provided attestor types
 * (all provided, in document order) until one's attestors all accept the
 * evidence in st. */
enum login_match login_match_policy(struct server_login *l, const Anchor__Agent__V1__LoginStart *st,
                                    const char *const *provided, size_t n, struct anchor_err *err);

/* Checks one answer per challenge; every nonce is spent whatever the result.
 * A failure is logged and counted; returns -1. */
int login_check_proofs(struct server_login *l, const Anchor__Agent__V1__LoginProofs *pr);

/* Merges the attributes of every attestor into attrs, and writes their log
 * form (x509pop:<name>="<value>") into a new array of new strings. */
int login_collect_attrs(struct server_login *l, struct anchor_attrs *attrs, char ***formatted,
                        size_t *n_formatted, struct anchor_err *err);

/* The agent's SPIFFE ID: the policy's agentPathTemplate rendered with
 * attrs, or /agents/x509pop/<SHA-1 of the leaf>. */
int login_agent_id(struct server_login *l, const struct anchor_attrs *attrs,
                   struct anchor_spiffeid **id, struct anchor_err *err);

/* Frees the attestors' results and wipes their nonces. */
void login_drop_attestors(struct server_login *l);

#endif
