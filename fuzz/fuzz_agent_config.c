/*
 * Fuzz target of the agent's bootstrap configuration reader
 * (agent_config.h): any bytes go to anchor_agent_config_parse, twice into
 * the same object (the second parse merges over the first, as a flag
 * override would), then finish. A failure must explain itself; a success
 * must leave a configuration whose invariants hold. The seed corpus
 * (fuzz/corpus/agent_config/) holds the Linux and Helm forms, both at once,
 * and hostile twins: conflicts, unknown keys, aliases, tags, bad addresses.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "anchor/agent_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct anchor_agent_config *cfg = NULL;
    struct anchor_err err;

    anchor_err_clear(&err);
    if (anchor_agent_config_new(&cfg, &err) != 0)
        return 0;
    for (int round = 0; round < 2; round++) {
        if (anchor_agent_config_parse(cfg, (const char *)data, size, &err) != 0 &&
            anchor_err_msg(&err)[0] == '\0')
            __builtin_trap();
    }
    if (anchor_agent_config_finish(cfg, &err) == 0) {
        if (cfg->trust_domain == NULL || cfg->cluster_id == NULL || cfg->server_host == NULL ||
            cfg->server_port == 0 || cfg->trust_bundle_path == NULL || cfg->data_dir == NULL ||
            cfg->nattestors == 0)
            __builtin_trap();
        for (size_t i = 0; i < cfg->nattestors; i++) {
            if (strcmp(cfg->attestors[i].type, "x509pop") != 0 ||
                cfg->attestors[i].certificate_path == NULL ||
                cfg->attestors[i].private_key_path == NULL)
                __builtin_trap();
        }
    } else if (anchor_err_msg(&err)[0] == '\0') {
        __builtin_trap();
    }
    anchor_agent_config_free(cfg);
    return 0;
}
