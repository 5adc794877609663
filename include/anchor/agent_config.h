/*
 * The agent's bootstrap configuration (agent.yaml, docs/agent.md): what
 * anchor-agent needs before it can reach the Trust Domain Server.
 *
 * One file may be written in either of the two forms operators know, or in
 * both at once when they agree:
 *
 *   Linux form                         Helm values form
 *   cluster-id: c-xxxxxx               agent:
 *   disable-kubernetes-attestation: t    auth:
 *   agent-attestors:                       clusterId: c-xxxxxx
 *     - type: x509pop                      attestors:
 *       config: {certificatePath: ...,       - type: x509pop
 *                privateKeyPath: ...,          config: {...}
 *                intermediatesPath: ...}
 *
 * plus the top-level keys trust-domain, server-address, trust-bundle-path,
 * data-dir, log-level, log-format and metrics-address. Reading is strict, as
 * for the policy documents: an unknown or duplicate key is an error naming
 * the key and where it is, and the YAML features a configuration has no use
 * for (anchors, tags, several documents) are refused.
 *
 * The life of a configuration: anchor_agent_config_new(), then
 * anchor_agent_config_load_file() (or _parse() on text), then
 * anchor_agent_config_set() for each command-line flag (flags win over the
 * file), then anchor_agent_config_finish(), which checks that every
 * required key is there and fills the defaults. After finish the object is
 * read-only: the program reads its fields and frees it with
 * anchor_agent_config_free().
 */
#ifndef ANCHOR_AGENT_CONFIG_H
#define ANCHOR_AGENT_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "anchor/common.h"
#include "anchor/log.h"

/* Largest agent.yaml read, in bytes. */
#define ANCHOR_AGENT_CONFIG_MAX_BYTES ((size_t)64 * 1024)
/* Longest path or other string value accepted, in bytes. */
#define ANCHOR_AGENT_CONFIG_MAX_VALUE 4096
/* Longest cluster id, in bytes. */
#define ANCHOR_AGENT_CONFIG_MAX_CLUSTER_ID 128
/* Default data directory. */
#define ANCHOR_AGENT_DEFAULT_DATA_DIR "/var/lib/anchor/agent"

/* One attestor the agent offers at login. Today only x509pop. */
struct anchor_agent_attestor {
    char *type;               /* "x509pop" */
    char *certificate_path;   /* required */
    char *private_key_path;   /* required */
    char *intermediates_path; /* NULL when not given */
};

struct anchor_agent_config {
    char *trust_domain;      /* required, a valid trust domain name */
    char *cluster_id;        /* required */
    char *server_address;    /* required, host:port, as written */
    char *server_host;       /* the host part ("[...]" removed for IPv6) */
    uint16_t server_port;    /* 1..65535 */
    char *trust_bundle_path; /* required */
    char *data_dir;          /* ANCHOR_AGENT_DEFAULT_DATA_DIR */
    char *metrics_address;   /* NULL: no metrics endpoint */
    char *metrics_host;      /* set with metrics_address */
    uint16_t metrics_port;
    enum anchor_log_level log_level;   /* info */
    enum anchor_log_format log_format; /* json */
    /* -1 not given, 0 false, 1 true. anchor has no Kubernetes attestation;
     * false is accepted and reported by the program. */
    int disable_kubernetes_attestation;
    struct anchor_agent_attestor *attestors; /* at least one after finish */
    size_t nattestors;
};

/* Makes an empty configuration the caller frees with
 * anchor_agent_config_free. */
ANCHOR_API ANCHOR_WUR int anchor_agent_config_new(struct anchor_agent_config **out,
                                                  struct anchor_err *err);

/* Frees the configuration. Accepts NULL. */
ANCHOR_API void anchor_agent_config_free(struct anchor_agent_config *cfg);

/* Reads agent.yaml text (at most ANCHOR_AGENT_CONFIG_MAX_BYTES) into cfg.
 * On failure cfg is left as it was and err names the problem, e.g.
 *   unknown key "server-adress"
 *   agent.auth: unknown key "clusterID"
 *   agent-attestors[0].config: certificatePath is required
 *   agent-attestors[0].type: unknown attestor type "tpm" (supported: x509pop)
 *   cluster-id "c-1" and agent.auth.clusterId "c-2" disagree
 * Messages are listed in docs/agent.md. */
ANCHOR_API ANCHOR_WUR int anchor_agent_config_parse(struct anchor_agent_config *cfg,
                                                    const char *text, size_t len,
                                                    struct anchor_err *err);

/* Reads the file at path and parses it; messages start with the path
 * ("<path>: ..."). */
ANCHOR_API ANCHOR_WUR int anchor_agent_config_load_file(struct anchor_agent_config *cfg,
                                                        const char *path, struct anchor_err *err);

/* Sets one top-level key from a command-line flag (key without "--":
 * "server-address"), with the same checks as in the file. Attestors cannot
 * be set this way. Fails with `unknown setting "K"` for other keys. */
ANCHOR_API ANCHOR_WUR int anchor_agent_config_set(struct anchor_agent_config *cfg, const char *key,
                                                  const char *value, struct anchor_err *err);

/* Checks that the required keys are set and fills the defaults. Messages:
 * "<key> is required" (e.g. "trust-domain is required", "cluster-id is
 * required (cluster-id or agent.auth.clusterId)", "at least one attestor is
 * required (agent-attestors or agent.auth.attestors)"). */
ANCHOR_API ANCHOR_WUR int anchor_agent_config_finish(struct anchor_agent_config *cfg,
                                                     struct anchor_err *err);

/* Splits "host:port" or "[v6]:port" into a new host string (free()) and a
 * port in 1..65535. Messages: `address "A": expected host:port`, `address
 * "A": invalid port`. */
ANCHOR_API ANCHOR_WUR int anchor_agent_config_split_address(const char *addr, char **host,
                                                            uint16_t *port, struct anchor_err *err);

#endif
