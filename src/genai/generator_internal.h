/* Generator internals shared by generator.c and beam.c. */
#ifndef OGI_GENAI_GENERATOR_INTERNAL_H
#define OGI_GENAI_GENERATOR_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "genai/genai.h"
#include "genai/sampler.h"

struct beam_state;

typedef struct gen_seq {
    int32_t *ids; /* prompt, appended and generated tokens */
    size_t n, cap;
    size_t in_cache; /* tokens of ids already in the KV cache */
    size_t n_prompt; /* tokens before the first generated one */
    size_t generated;
    float *logprobs;      /* one per generated token */
    ogi_top_logprob *top; /* top_per_token per generated token, when asked for */
    int top_per_token;
    uint8_t *mask; /* attention mask of every cache position (pads are 0) */
    bool done;
    sampler *sampler;
    float *logits; /* last step's logits, before sampling */
} gen_seq;

struct ogi_generator {
    ogi_pipeline *pipe;
    ogi_generation_config cfg;
    size_t batch;
    gen_seq *seqs;
    ogi_tensor **past; /* 2 per layer: key, value; NULL before the first step */
    /* Recurrent states, allocated at the first step: a run reads state[i]
     * and writes state_next[i], then the two swap, so a step neither
     * allocates nor copies. snap[i] holds the states after snap_len
     * positions (the end of the last multi-token run), for rewind. */
    ogi_tensor **state, **state_next, **snap;
    size_t snap_len;  /* SIZE_MAX: no snapshot */
    size_t cache_len; /* positions in the cache, padding included */
    size_t vocab;
    size_t runs;
    size_t tokens_computed;
    bool score_only;          /* a scoring window may reach one past the context */
    struct beam_state *beams; /* beam search: the batch holds the beams */
};

ogi_status gen_seq_reserve(gen_seq *s, size_t n);
bool gen_is_eos(const ogi_generator *g, int32_t id);

/* Beam search (beam.c): state for num_beams beams of one prompt. */
ogi_status beam_create(const ogi_generator *g, struct beam_state **out);
void beam_free(struct beam_state *b);
/* After a model run: extends the beams by one token (reordering sequences
 * and KV cache), keeps finished hypotheses, and when done puts the best
 * num_return_sequences hypotheses in sequences 0.. and marks all done. */
ogi_status beam_step(ogi_generator *g);

#endif
