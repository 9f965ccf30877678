/* The sampler chain: logits processors (penalties, n-gram blocking, EOS
 * suppression before min_new_tokens, the caller's processor), then greedy or
 * seeded sampling with temperature, top-k, top-p and min-p. One sampler per
 * sequence; it owns the sequence's random state. */
#ifndef OGI_GENAI_SAMPLER_H
#define OGI_GENAI_SAMPLER_H

#include <stddef.h>
#include <stdint.h>

#include "ogi.h"

typedef struct sampler sampler;

/* Checks cfg (NaN or out-of-range values are errors naming the field) and
 * creates a sampler seeded with cfg->seed + stream (stream tells apart the
 * sequences of one batch). */
ogi_status sampler_create(const ogi_generation_config *cfg, uint64_t stream, sampler **out);
void sampler_free(sampler *s);

/* The top log-probabilities of a chosen token's step. */
typedef ogi_top_logprob sampler_logprob;

/* Picks the next token from logits (vocab entries, modified in place by the
 * processors). history holds the sequence so far (prompt then generated ids,
 * n_prompt of them prompt), used by penalties and n-gram blocking.
 * *logprob gets the chosen token's log-probability under the final
 * distribution; top (may be NULL) receives cfg->logprobs entries, best first
 * (token -1 past the vocab). On return, logits hold that final distribution's
 * logits (filtered tokens at -inf). NaN or +inf logits, or every token
 * banned, are OGI_ERR_RUNTIME. */
ogi_status sampler_next(sampler *s, float *logits, size_t vocab, const int32_t *history,
                        size_t n_history, size_t n_prompt, int32_t *token, float *logprob,
                        sampler_logprob *top);

/* Validates a generation config without creating anything. */
ogi_status sampler_check_config(const ogi_generation_config *cfg);

#endif
