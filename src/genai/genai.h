/* Internals of the GenAI layer shared by pipeline, generator and chat. */
#ifndef OGI_GENAI_H
#define OGI_GENAI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backends/backend.h"
#include "ogi.h"

/* Which graph inputs and outputs play which role (indices into the
 * session's inputs/outputs; -1 when the graph has none). */
typedef struct genai_io {
    int input_ids, attention_mask, position_ids, use_cache_branch;
    int logits_from; /* first position whose logits are computed, when the graph has it */
    int logits;
    int n_layers;
    int *past_key, *past_value;       /* input index per layer */
    int *present_key, *present_value; /* output index per layer */
    int64_t kv_heads, head_dim;       /* from the past inputs' declared shapes */
    ogi_dtype kv_dtype;
    bool static_kv;            /* past inputs are fixed-size caches updated in place */
    int n_states;              /* recurrent states (conv, linear attention) */
    int *state_in, *state_out; /* input / output index per state */
} genai_io;

struct ogi_pipeline {
    char *dir;
    const backend_vtable *backend;
    backend_session *session;
    ogi_tokenizer *tokenizer;
    genai_io io;
    ogi_generation_config defaults;
    size_t context;
    int32_t pad_id;
    size_t kv_budget;
    double load_s;
};

/* Monotonic seconds. */
double genai_now(void);

/* Checks a config for the generator (sampler rules plus pipeline limits). */
ogi_status genai_check_config(const ogi_pipeline *pipe, const ogi_generation_config *cfg);

/* Runs the model once over everything appended to a batch-1 generator and
 * hands over the full logits [1, n, vocab] (the cache is updated too). */
ogi_status genai_forward(ogi_generator *g, ogi_tensor **logits);

/* A generator used only to score a window (ogi_pipeline_score): the window
 * may hold the context plus one token, as transformers' evaluation does. */
void genai_set_score_only(ogi_generator *g);

/* The decode loop of ogi_generate and ogi_chat for a batch-1 generator
 * whose last n_prompt tokens are new. */
ogi_status genai_run_loop(ogi_pipeline *pipe, ogi_generator *g, size_t n_prompt,
                          const ogi_generation_config *cfg, ogi_stream_fn stream, void *user,
                          ogi_result *res);

#endif
