/* The generator: the decode loop over a decoder graph with a KV cache.
 *
 * Sequences of a batch advance together. Each step feeds every sequence's
 * pending tokens (left-padded to the longest, in chunks of prefill_chunk
 * when set), with the attention mask and position ids transformers would
 * build (positions = cumulative mask - 1), samples one token per unfinished
 * sequence, and keeps the model's present tensors as the next step's past.
 * The present tensors are moved, never copied, by the generator.
 *
 * Recurrent state (SSM and hybrid models) is carried the same way but does
 * not grow: two buffers per state, allocated once, read and written
 * alternately. It cannot be cut back like a KV cache, so rewind restores
 * the snapshot taken after the last multi-token run (or the zero state)
 * and the tokens after it are run again at the next step. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/dtype.h"
#include "core/error.h"
#include "core/tensor.h"
#include "genai/genai.h"
#include "genai/generator_internal.h"
#include "genai/sampler.h"

static ogi_status gen_oom(void)
{
    return ogi_error(OGI_ERR_OUT_OF_MEMORY, "out of memory in the generator");
}

ogi_status gen_seq_reserve(gen_seq *s, size_t n)
{
    if (n <= s->cap)
        return OGI_OK;
    size_t cap = s->cap ? s->cap : 64;
    while (cap < n)
        cap *= 2;
    int32_t *ids = realloc(s->ids, cap * sizeof(*ids));
    if (ids == NULL)
        return gen_oom();
    s->ids = ids;
    float *lp = realloc(s->logprobs, cap * sizeof(*lp));
    if (lp == NULL)
        return gen_oom();
    s->logprobs = lp;
    if (s->top_per_token > 0) {
        ogi_top_logprob *top = realloc(s->top, cap * (size_t)s->top_per_token * sizeof(*top));
        if (top == NULL)
            return gen_oom();
        s->top = top;
    }
    s->cap = cap;
    return OGI_OK;
}

ogi_status ogi_generator_create(ogi_pipeline *pipe, const ogi_generation_config *config,
                                size_t batch, ogi_generator **out)
{
    if (pipe == NULL || out == NULL || batch == 0 || batch > 4096)
        return ogi_error(OGI_ERR_INVALID_ARGUMENT,
                         "ogi_generator_create: needs a pipeline and a batch of 1 to 4096");
    ogi_generation_config cfg = config ? *config : pipe->defaults;
    ogi_status st = genai_check_config(pipe, &cfg);
    if (st != OGI_OK)
        return st;
    if (cfg.num_beams > 1 && batch != 1)
        return ogi_error(OGI_ERR_UNSUPPORTED, "beam search runs one prompt at a time (batch 1)");
    if (cfg.num_beams > 1)
        batch = (size_t)cfg.num_beams; /* the batch holds the beams */
    ogi_generator *g = calloc(1, sizeof(*g));
    if (g == NULL)
        return gen_oom();
    g->pipe = pipe;
    g->cfg = cfg;
    g->batch = batch;
    g->seqs = calloc(batch, sizeof(gen_seq));
    g->past = calloc((size_t)pipe->io.n_layers * 2 + 1, sizeof(ogi_tensor *));
    size_t n_states = (size_t)pipe->io.n_states + 1;
    g->state = calloc(n_states, sizeof(ogi_tensor *));
    g->state_next = calloc(n_states, sizeof(ogi_tensor *));
    g->snap = calloc(n_states, sizeof(ogi_tensor *));
    g->snap_len = SIZE_MAX;
    if (g->seqs == NULL || g->past == NULL || g->state == NULL || g->state_next == NULL ||
        g->snap == NULL) {
        ogi_generator_free(g);
        return gen_oom();
    }
    for (size_t b = 0; b < batch && st == OGI_OK; b++) {
        g->seqs[b].top_per_token = cfg.num_beams > 1 ? 0 : cfg.logprobs;
        st = sampler_create(&g->cfg, b, &g->seqs[b].sampler);
    }
    if (st == OGI_OK && cfg.num_beams > 1)
        st = beam_create(g, &g->beams);
    if (st != OGI_OK) {
        ogi_generator_free(g);
        return st;
    }
    *out = g;
    return OGI_OK;
}

static void gen_free_past(ogi_generator *g)
{
    for (int i = 0; i < g->pipe->io.n_layers * 2; i++) {
        ogi_tensor_free(g->past[i]);
        g->past[i] = NULL;
    }
}

void ogi_generator_free(ogi_generator *g)
{
    if (g == NULL)
        return;
    for (size_t b = 0; g->seqs != NULL && b < g->batch; b++) {
        free(g->seqs[b].ids);
        free(g->seqs[b].logprobs);
        free(g->seqs[b].top);
        free(g->seqs[b].mask);
        free(g->seqs[b].logits);
        sampler_free(g->seqs[b].sampler);
    }
    if (g->past != NULL)
        gen_free_past(g);
    for (int i = 0; i < g->pipe->io.n_states; i++) {
        ogi_tensor_free(g->state ? g->state[i] : NULL);
        ogi_tensor_free(g->state_next ? g->state_next[i] : NULL);
        ogi_tensor_free(g->snap ? g->snap[i] : NULL);
    }
    free(g->state);
    free(g->state_next);
    free(g->snap);
    beam_free(g->beams);
    free(g->past);
    free(g->seqs);
    free(g);
}

static ogi_status gen_append_one(ogi_generator *g, size_t seq, const int32_t *ids, size_t n);

ogi_status ogi_generator_append(ogi_generator *g, size_t seq, const int32_t *ids, size_t n)
{
    if (g == NULL || (n > 0 && ids == NULL) || seq >= (g->beams ? 1 : g->batch))
        return ogi_error(OGI_ERR_INVALID_ARGUMENT, "ogi_generator_append: no sequence %zu", seq);
    if (g->beams == NULL)
        return gen_append_one(g, seq, ids, n);
    if (g->cache_len > 0)
        return ogi_error(OGI_ERR_UNSUPPORTED, "beam search takes one prompt, appended once");
    ogi_status st = OGI_OK;
    for (size_t b = 0; b < g->batch && st == OGI_OK; b++) /* every beam starts as the prompt */
        st = gen_append_one(g, b, ids, n);
    return st;
}

static ogi_status gen_append_one(ogi_generator *g, size_t seq, const int32_t *ids, size_t n)
{
    gen_seq *s = &g->seqs[seq];
    if (s->n + n > g->pipe->context + (g->score_only ? 1 : 0))
        return ogi_error(OGI_ERR_INVALID_ARGUMENT,
                         "sequence %zu would hold %zu tokens, beyond the model's context of %zu",
                         seq, s->n + n, g->pipe->context);
    ogi_status st = gen_seq_reserve(s, s->n + n);
    if (st != OGI_OK)
        return st;
    memcpy(s->ids + s->n, ids, n * sizeof(*ids));
    s->n += n;
    s->n_prompt = s->n;
    s->generated = 0;
    s->done = false;
    return OGI_OK;
}

/* ---- one model run ---------------------------------------------------------- */

typedef struct gen_inputs {
    size_t n;
    const char **names;
    ogi_tensor *owned[8];
    size_t n_owned;
    const ogi_tensor **tensors;
} gen_inputs;

static const char *gen_input_name(const ogi_pipeline *p, int index)
{
    return p->backend->input_name(p->session, (size_t)index);
}

static ogi_status gen_add_owned(gen_inputs *in, const ogi_pipeline *p, int index, ogi_tensor *t)
{
    if (t == NULL)
        return gen_oom();
    in->owned[in->n_owned++] = t;
    in->names[in->n] = gen_input_name(p, index);
    in->tensors[in->n++] = t;
    return OGI_OK;
}

/* A new int64 [n] tensor holding vals; NULL when out of memory. */
static ogi_tensor *gen_i64_vector(int64_t n, const int64_t *vals)
{
    ogi_tensor *t;
    if (ogi_tensor_create(OGI_INT64, 1, &n, &t) != OGI_OK)
        return NULL;
    memcpy(ogi_tensor_data(t), vals, (size_t)n * sizeof(int64_t));
    return t;
}

static ogi_status gen_new_i64(int rank, const int64_t *dims, ogi_tensor **out)
{
    return ogi_tensor_create(OGI_INT64, rank, dims, out);
}

/* A step's pending tokens are right-aligned in a window, pads on the left,
 * and run in chunks from the left. Of a chunk followed by `after` more
 * positions, the tokens that belong to sequence q. */
static size_t gen_chunk_tokens(const gen_seq *q, size_t after)
{
    size_t pending = q->n - q->in_cache; /* the chunks before consumed theirs */
    return pending > after ? pending - after : 0;
}

/* Builds input_ids, attention_mask, position_ids for a chunk of `len` new
 * positions (`after` more follow in later chunks). */
static ogi_status gen_build_chunk(ogi_generator *g, size_t len, size_t after, bool all_logits,
                                  gen_inputs *in)
{
    const genai_io *io = &g->pipe->io;
    const ogi_pipeline *s = g->pipe;
    int64_t B = (int64_t)g->batch, L = (int64_t)len, T = (int64_t)(g->cache_len + len);
    ogi_tensor *ids = NULL, *mask = NULL, *pos = NULL;
    ogi_status st = gen_new_i64(2, (int64_t[]){B, L}, &ids);
    if (st == OGI_OK)
        st = gen_new_i64(2, (int64_t[]){B, T}, &mask);
    if (st == OGI_OK)
        st = gen_new_i64(2, (int64_t[]){B, L}, &pos);
    if (st != OGI_OK) {
        ogi_tensor_free(ids);
        ogi_tensor_free(mask);
        return st;
    }
    int64_t *idv = ogi_tensor_data(ids), *mv = ogi_tensor_data(mask), *pv = ogi_tensor_data(pos);
    for (size_t b = 0; b < g->batch; b++) {
        gen_seq *q = &g->seqs[b];
        size_t pad = len - gen_chunk_tokens(q, after);
        for (size_t t = 0; t < g->cache_len; t++)
            mv[(int64_t)b * T + (int64_t)t] = q->mask[t];
        int64_t ones = 0;
        for (size_t t = 0; t < g->cache_len; t++)
            ones += q->mask[t];
        for (size_t j = 0; j < len; j++) {
            bool real = j >= pad;
            int64_t *m = &mv[(int64_t)b * T + (int64_t)(g->cache_len + j)];
            *m = real ? 1 : 0;
            idv[(int64_t)b * L + (int64_t)j] =
                real ? q->ids[q->in_cache + j - pad] : g->pipe->pad_id;
            ones += *m;
            /* transformers: cumsum(mask) - 1, and 1 where the mask is 0 */
            pv[(int64_t)b * L + (int64_t)j] = real ? ones - 1 : 1;
        }
    }
    st = gen_add_owned(in, s, io->input_ids, ids);
    if (st == OGI_OK && io->attention_mask >= 0)
        st = gen_add_owned(in, s, io->attention_mask, mask);
    else
        ogi_tensor_free(mask);
    if (st == OGI_OK && io->position_ids >= 0)
        st = gen_add_owned(in, s, io->position_ids, pos);
    else
        ogi_tensor_free(pos);
    if (st == OGI_OK && io->logits_from >= 0) {
        /* sampling reads the last position only */
        int64_t from = all_logits ? 0 : (int64_t)len - 1;
        st = gen_add_owned(in, s, io->logits_from, gen_i64_vector(1, &from));
    }
    return st;
}

/* Positions the static caches must hold: every sequence's tokens so far
 * plus the tokens it may still generate, within the model's context. */
static size_t gen_static_capacity(const ogi_generator *g, size_t len)
{
    size_t need = g->cache_len + len;
    for (size_t b = 0; b < g->batch; b++) {
        const gen_seq *q = &g->seqs[b];
        size_t left = q->generated < (size_t)g->cfg.max_new_tokens
                          ? (size_t)g->cfg.max_new_tokens - q->generated
                          : 0;
        size_t total = g->cache_len + len + left;
        need = total > need ? total : need;
    }
    size_t limit = g->pipe->context + 1;
    return need > limit && g->cache_len + len <= limit ? limit : need;
}

/* Static caches: allocated once at the capacity the generation needs, and
 * grown (a copy of the filled part) only when a later append needs more. */
static ogi_status gen_static_caches(ogi_generator *g, size_t len)
{
    const genai_io *io = &g->pipe->io;
    size_t cap = gen_static_capacity(g, len);
    for (int i = 0; i < 2 * io->n_layers; i++) {
        ogi_tensor *old = g->past[i];
        if (old != NULL && (size_t)ogi_tensor_dims(old)[2] >= g->cache_len + len)
            continue;
        ogi_tensor *fresh;
        int64_t dims[4] = {(int64_t)g->batch, io->kv_heads, (int64_t)cap, io->head_dim};
        ogi_status st = ogi_tensor_create(io->kv_dtype, 4, dims, &fresh);
        if (st != OGI_OK)
            return st;
        if (old != NULL) {
            size_t row = (size_t)io->head_dim * sizeof(float);
            size_t old_cap = (size_t)ogi_tensor_dims(old)[2];
            for (int64_t bh = 0; bh < (int64_t)g->batch * io->kv_heads; bh++)
                memcpy((char *)ogi_tensor_data(fresh) + (size_t)bh * cap * row,
                       (const char *)ogi_tensor_data(old) + (size_t)bh * old_cap * row,
                       g->cache_len * row);
            ogi_tensor_free(old);
        }
        g->past[i] = fresh;
    }
    return OGI_OK;
}

/* A zeroed [batch, dims of the declared state input after the first]. */
static ogi_status gen_new_state(const ogi_generator *g, int i, ogi_tensor **out)
{
    const ogi_pipeline *p = g->pipe;
    int64_t dims[OGI_MAX_RANK];
    int rank;
    ogi_dtype dtype;
    p->backend->input_info(p->session, (size_t)p->io.state_in[i], &dtype, &rank, dims);
    dims[0] = (int64_t)g->batch;
    ogi_status st = ogi_tensor_create(dtype, rank, dims, out);
    if (st == OGI_OK)
        memset(ogi_tensor_data(*out), 0, ogi_tensor_nbytes(*out));
    return st;
}

static ogi_status gen_build_states(ogi_generator *g, gen_inputs *in)
{
    const genai_io *io = &g->pipe->io;
    for (int i = 0; i < io->n_states; i++) {
        ogi_status st = OGI_OK;
        if (g->state[i] == NULL)
            st = gen_new_state(g, i, &g->state[i]);
        if (st == OGI_OK && g->state_next[i] == NULL)
            st = gen_new_state(g, i, &g->state_next[i]);
        if (st != OGI_OK)
            return st;
        in->names[in->n] = gen_input_name(g->pipe, io->state_in[i]);
        in->tensors[in->n++] = g->state[i];
    }
    return OGI_OK;
}

static ogi_status gen_build_past(ogi_generator *g, gen_inputs *in, size_t len)
{
    const genai_io *io = &g->pipe->io;
    const ogi_pipeline *s = g->pipe;
    if (io->static_kv) {
        ogi_status st = gen_static_caches(g, len);
        if (st != OGI_OK)
            return st;
    }
    for (int l = 0; l < io->n_layers; l++) {
        for (int k = 0; k < 2; k++) {
            ogi_tensor **slot = &g->past[2 * l + k];
            if (*slot == NULL) {
                int64_t dims[4] = {(int64_t)g->batch, io->kv_heads, 0, io->head_dim};
                ogi_status st = ogi_tensor_create(io->kv_dtype, 4, dims, slot);
                if (st != OGI_OK)
                    return st;
            }
            in->names[in->n] = gen_input_name(s, k ? io->past_value[l] : io->past_key[l]);
            in->tensors[in->n++] = *slot;
        }
    }
    if (io->use_cache_branch >= 0) {
        ogi_tensor *flag;
        ogi_status st = ogi_tensor_create(OGI_BOOL, 1, (int64_t[]){1}, &flag);
        if (st != OGI_OK)
            return st;
        *(uint8_t *)ogi_tensor_data(flag) = g->cache_len > 0;
        return gen_add_owned(in, s, io->use_cache_branch, flag);
    }
    return OGI_OK;
}

/* Bytes of one copy of every recurrent state. */
static double gen_state_bytes(const ogi_generator *g)
{
    const ogi_pipeline *p = g->pipe;
    double bytes = 0;
    for (int i = 0; i < p->io.n_states; i++) {
        int64_t dims[OGI_MAX_RANK];
        int rank;
        ogi_dtype dtype;
        p->backend->input_info(p->session, (size_t)p->io.state_in[i], &dtype, &rank, dims);
        double n = (double)g->batch * (double)dtype_size(dtype);
        for (int d = 1; d < rank; d++)
            n *= (double)dims[d];
        bytes += n;
    }
    return bytes;
}

static ogi_status gen_check_budget(const ogi_generator *g, size_t len)
{
    const genai_io *io = &g->pipe->io;
    size_t positions = io->static_kv ? gen_static_capacity(g, len) : g->cache_len + len;
    double bytes = 2.0 * io->n_layers * (double)g->batch * (double)io->kv_heads *
                   (double)positions * (double)io->head_dim * 4.0;
    bytes += 3.0 * gen_state_bytes(g); /* two to run, one snapshot */
    if (bytes > (double)g->pipe->kv_budget)
        return ogi_error(OGI_ERR_OUT_OF_MEMORY,
                         "the KV cache would need %.0f MB for %zu positions, over the budget of "
                         "%.0f MB",
                         bytes / 1e6, positions, (double)g->pipe->kv_budget / 1e6);
    return OGI_OK;
}

/* Copies every state tensor of from into to (same shapes). */
static void gen_copy_states(const ogi_generator *g, ogi_tensor *const *from, ogi_tensor **to)
{
    for (int i = 0; i < g->pipe->io.n_states; i++)
        memcpy(ogi_tensor_data(to[i]), ogi_tensor_data(from[i]), ogi_tensor_nbytes(from[i]));
}

/* Keeps the states after this run as the rewind snapshot. */
static ogi_status gen_snapshot(ogi_generator *g)
{
    for (int i = 0; i < g->pipe->io.n_states; i++)
        if (g->snap[i] == NULL) {
            ogi_status st = gen_new_state(g, i, &g->snap[i]);
            if (st != OGI_OK)
                return st;
        }
    gen_copy_states(g, g->state, g->snap);
    g->snap_len = g->cache_len;
    return OGI_OK;
}

/* A state can only take the positions a run appends at its end: a pad
 * after a sequence's first tokens would enter its recurrence. */
static ogi_status gen_check_state_pads(const ogi_generator *g, size_t len, size_t after)
{
    for (size_t b = 0; g->pipe->io.n_states > 0 && b < g->batch; b++) {
        const gen_seq *q = &g->seqs[b];
        bool started = g->cache_len > 0 && q->in_cache > 0;
        if (started && !q->done && gen_chunk_tokens(q, after) != len)
            return ogi_error(OGI_ERR_UNSUPPORTED,
                             "a model with recurrent state takes, after the first step, the same "
                             "number of new tokens for every sequence of the batch");
    }
    return OGI_OK;
}

/* Runs the model on a chunk of len positions of every sequence's pending
 * tokens (`after` more follow in later chunks); keeps the presents as the
 * new past and each sequence's last logits. full_logits (may be NULL)
 * receives the whole logits tensor. */
static ogi_status gen_run(ogi_generator *g, size_t len, size_t after, ogi_tensor **full_logits)
{
    const genai_io *io = &g->pipe->io;
    const ogi_pipeline *p = g->pipe;
    ogi_status st = gen_check_budget(g, len + after);
    if (st == OGI_OK)
        st = gen_check_state_pads(g, len, after);
    if (st != OGI_OK)
        return st;
    gen_inputs *in = calloc(1, sizeof(*in));
    int n_kv = 2 * io->n_layers, n_out = 1 + n_kv + io->n_states;
    size_t n_in = 8 + (size_t)n_kv + (size_t)io->n_states;
    const char **out_names = calloc((size_t)n_out, sizeof(char *));
    ogi_tensor **outs = calloc((size_t)n_out, sizeof(ogi_tensor *));
    if (in != NULL) {
        in->names = calloc(n_in, sizeof(char *));
        in->tensors = calloc(n_in, sizeof(ogi_tensor *));
    }
    if (in == NULL || in->names == NULL || in->tensors == NULL || out_names == NULL ||
        outs == NULL) {
        if (in != NULL) {
            free(in->names);
            free(in->tensors);
        }
        free(in);
        free(out_names);
        free(outs);
        return gen_oom();
    }
    st = gen_build_chunk(g, len, after, full_logits != NULL, in);
    if (st == OGI_OK)
        st = gen_build_past(g, in, len + after);
    if (st == OGI_OK)
        st = gen_build_states(g, in);
    /* static caches: each present is computed into its own past tensor;
     * otherwise into a tensor of the known grown size, which becomes the
     * next past without a copy out of the backend */
    for (int i = 0; st == OGI_OK && i < 2 * io->n_layers; i++) {
        if (io->static_kv) {
            outs[1 + i] = g->past[i];
            continue;
        }
        int64_t dims[4] = {(int64_t)g->batch, io->kv_heads, (int64_t)(g->cache_len + len),
                           io->head_dim};
        st = ogi_tensor_create(io->kv_dtype, 4, dims, &outs[1 + i]);
    }
    out_names[0] = p->backend->output_name(p->session, (size_t)io->logits);
    for (int l = 0; l < io->n_layers; l++) {
        out_names[1 + 2 * l] = p->backend->output_name(p->session, (size_t)io->present_key[l]);
        out_names[2 + 2 * l] = p->backend->output_name(p->session, (size_t)io->present_value[l]);
    }
    for (int i = 0; st == OGI_OK && i < io->n_states; i++) {
        out_names[1 + n_kv + i] = p->backend->output_name(p->session, (size_t)io->state_out[i]);
        outs[1 + n_kv + i] = g->state_next[i];
    }
    if (st == OGI_OK)
        st = p->backend->run(p->session, in->n, in->names, in->tensors, (size_t)n_out, out_names,
                             outs);
    if (st == OGI_OK) {
        g->runs++;
        g->tokens_computed += len;
    }
    const ogi_tensor *logits = outs[0];
    if (st == OGI_OK &&
        (ogi_tensor_rank(logits) != 3 || ogi_tensor_dims(logits)[0] != (int64_t)g->batch ||
         ogi_tensor_dtype(logits) != OGI_FLOAT32))
        st = ogi_error(OGI_ERR_INVALID_MODEL, "logits must be float32 [batch, seq, vocab]");
    if (st == OGI_OK) {
        int64_t rows = ogi_tensor_dims(logits)[1];
        g->vocab = (size_t)ogi_tensor_dims(logits)[2];
        const float *lv = ogi_tensor_data((ogi_tensor *)logits);
        for (size_t b = 0; b < g->batch && st == OGI_OK; b++) {
            gen_seq *q = &g->seqs[b];
            float *copy = realloc(q->logits, g->vocab * sizeof(float));
            if (copy == NULL) {
                st = gen_oom();
                break;
            }
            q->logits = copy;
            memcpy(copy, lv + ((int64_t)b * rows + rows - 1) * (int64_t)g->vocab,
                   g->vocab * sizeof(float));
            size_t mine = gen_chunk_tokens(q, after);
            uint8_t *mask = realloc(q->mask, g->cache_len + len);
            if (mask == NULL) {
                st = gen_oom();
                break;
            }
            q->mask = mask;
            size_t pad = len - mine;
            for (size_t j = 0; j < len; j++)
                mask[g->cache_len + j] = j >= pad;
            q->in_cache += mine;
        }
    }
    if (st == OGI_OK && !io->static_kv) {
        gen_free_past(g);
        for (int i = 0; i < 2 * io->n_layers; i++)
            g->past[i] = outs[1 + i];
    }
    if (st == OGI_OK)
        g->cache_len += len;
    for (int i = 0; st == OGI_OK && i < io->n_states; i++) {
        ogi_tensor *t = g->state[i];
        g->state[i] = g->state_next[i];
        g->state_next[i] = t;
    }
    if (st == OGI_OK && io->n_states > 0 && len > 1)
        st = gen_snapshot(g);
    for (int i = 0; i < io->n_states; i++)
        outs[1 + n_kv + i] = NULL; /* the generator's own buffers */
    /* the presents are now the cache (or are the static cache itself); after
     * a failure the grown ones are freed below with the logits */
    for (int i = 0; (st == OGI_OK || io->static_kv) && i < 2 * io->n_layers; i++)
        outs[1 + i] = NULL;
    if (st == OGI_OK && full_logits != NULL) {
        *full_logits = outs[0];
        outs[0] = NULL;
    }
    for (int i = 0; i < n_out; i++)
        ogi_tensor_free(outs[i]);
    for (size_t i = 0; i < in->n_owned; i++)
        ogi_tensor_free(in->owned[i]);
    free(in->names);
    free(in->tensors);
    free(in);
    free(out_names);
    free(outs);
    return st;
}

bool gen_is_eos(const ogi_generator *g, int32_t id)
{
    for (int i = 0; i < g->cfg.n_eos_token_ids; i++)
        if (g->cfg.eos_token_ids[i] == id)
            return true;
    return false;
}

ogi_status ogi_generator_step(ogi_generator *g)
{
    if (g == NULL)
        return ogi_error(OGI_ERR_INVALID_ARGUMENT, "ogi_generator_step: NULL generator");
    size_t len = 0;
    for (size_t b = 0; b < g->batch; b++) {
        gen_seq *q = &g->seqs[b];
        if (q->n == 0)
            return ogi_error(OGI_ERR_INVALID_ARGUMENT, "sequence %zu has no tokens", b);
        size_t pending = q->n - q->in_cache;
        len = pending > len ? pending : len;
    }
    if (len == 0)
        return ogi_error(OGI_ERR_INVALID_ARGUMENT, "nothing to run: append tokens first");
    if (ogi_generator_done(g))
        return ogi_error(OGI_ERR_INVALID_ARGUMENT, "the generator is done");
    size_t chunk = g->cfg.prefill_chunk > 0 ? (size_t)g->cfg.prefill_chunk : len;
    ogi_status st = OGI_OK;
    for (size_t after = len; st == OGI_OK && after > 0;) {
        size_t n = after < chunk ? after : chunk;
        after -= n;
        st = gen_run(g, n, after, NULL);
    }
    if (st == OGI_OK && g->beams != NULL)
        return beam_step(g);
    for (size_t b = 0; b < g->batch && st == OGI_OK; b++) {
        gen_seq *q = &g->seqs[b];
        int32_t token = g->pipe->pad_id;
        float lp = 0.0f;
        if (!q->done) {
            float *work = malloc(g->vocab * sizeof(float));
            if (work == NULL)
                return gen_oom();
            memcpy(work, q->logits, g->vocab * sizeof(float));
            if ((st = gen_seq_reserve(q, q->n + 1)) != OGI_OK) {
                free(work);
                return st;
            }
            sampler_logprob *top =
                q->top_per_token > 0 ? q->top + q->generated * (size_t)q->top_per_token : NULL;
            st = sampler_next(q->sampler, work, g->vocab, q->ids, q->n, q->n_prompt, &token, &lp,
                              top);
            free(work);
            if (st != OGI_OK)
                return st;
        }
        if ((st = gen_seq_reserve(q, q->n + 1)) != OGI_OK)
            return st;
        /* a finished sequence is fed padding so the batch stays aligned; its
         * padding is not part of its ids */
        if (q->done) {
            q->in_cache = q->n; /* the pad step is accounted in the mask only */
            continue;
        }
        q->ids[q->n++] = token;
        q->logprobs[q->generated++] = lp;
        if (gen_is_eos(g, token) || (int)q->generated >= g->cfg.max_new_tokens ||
            q->n >= g->pipe->context)
            q->done = true;
    }
    return st;
}

int ogi_generator_done(const ogi_generator *g)
{
    for (size_t b = 0; b < g->batch; b++)
        if (!g->seqs[b].done)
            return 0;
    return 1;
}

int ogi_generator_seq_done(const ogi_generator *g, size_t seq)
{
    return seq < g->batch ? g->seqs[seq].done : 1;
}

const int32_t *ogi_generator_ids(const ogi_generator *g, size_t seq, size_t *n)
{
    if (seq >= g->batch) {
        *n = 0;
        return NULL;
    }
    *n = g->seqs[seq].n;
    return g->seqs[seq].ids;
}

size_t ogi_generator_new_tokens(const ogi_generator *g, size_t seq)
{
    return seq < g->batch ? g->seqs[seq].generated : 0;
}

const float *ogi_generator_logits(const ogi_generator *g, size_t seq, size_t *vocab)
{
    *vocab = g->vocab;
    return seq < g->batch ? g->seqs[seq].logits : NULL;
}

const ogi_top_logprob *ogi_generator_top_logprobs(const ogi_generator *g, size_t seq, size_t *n)
{
    *n = seq < g->batch ? g->seqs[seq].generated : 0;
    return seq < g->batch && g->seqs[seq].top_per_token > 0 ? g->seqs[seq].top : NULL;
}

const float *ogi_generator_logprobs(const ogi_generator *g, size_t seq, size_t *n)
{
    *n = seq < g->batch ? g->seqs[seq].generated : 0;
    return seq < g->batch ? g->seqs[seq].logprobs : NULL;
}

size_t ogi_generator_model_runs(const ogi_generator *g)
{
    return g->runs;
}

size_t ogi_generator_tokens_computed(const ogi_generator *g)
{
    return g->tokens_computed;
}

void genai_set_score_only(ogi_generator *g)
{
    g->score_only = true;
}

ogi_status genai_forward(ogi_generator *g, ogi_tensor **logits)
{
    if (g->batch != 1)
        return ogi_error(OGI_ERR_UNSUPPORTED, "a full forward pass needs a batch of one");
    gen_seq *q = &g->seqs[0];
    if (q->n == q->in_cache)
        return ogi_error(OGI_ERR_INVALID_ARGUMENT, "nothing to run: append tokens first");
    return gen_run(g, q->n - q->in_cache, 0, logits);
}

/* Keeps the first `keep` positions of a [B, H, T, D] cache tensor. */
static ogi_status gen_truncate(ogi_tensor **t, size_t keep)
{
    const int64_t *d = ogi_tensor_dims(*t);
    int64_t dims[4] = {d[0], d[1], (int64_t)keep, d[3]};
    ogi_tensor *out;
    ogi_status st = ogi_tensor_create(ogi_tensor_dtype(*t), 4, dims, &out);
    if (st != OGI_OK)
        return st;
    size_t row = (size_t)d[3] * sizeof(float);
    const char *src = ogi_tensor_data(*t);
    char *dst = ogi_tensor_data(out);
    for (int64_t bh = 0; bh < d[0] * d[1]; bh++)
        memcpy(dst + (size_t)bh * keep * row, src + (size_t)(bh * d[2]) * row, keep * row);
    ogi_tensor_free(*t);
    *t = out;
    return OGI_OK;
}

ogi_status ogi_generator_rewind(ogi_generator *g, size_t n)
{
    if (g == NULL || g->batch != 1 || g->beams != NULL)
        return ogi_error(OGI_ERR_UNSUPPORTED, "rewind works on a batch of one sequence");
    gen_seq *q = &g->seqs[0];
    if (n == 0 || n > q->n)
        return ogi_error(OGI_ERR_INVALID_ARGUMENT, "cannot rewind to %zu of %zu tokens", n, q->n);
    /* the last kept token is run again to give the logits of the next step:
     * the cache keeps the n - 1 tokens before it */
    size_t keep = n - 1 < g->cache_len ? n - 1 : g->cache_len;
    if (g->pipe->io.n_states > 0 && keep < g->cache_len && g->state[0] != NULL) {
        /* back to the snapshot, or to the zero state, and run forward again */
        if (g->snap_len != SIZE_MAX && g->snap_len <= keep) {
            gen_copy_states(g, g->snap, g->state);
            keep = g->snap_len;
        } else {
            for (int i = 0; i < g->pipe->io.n_states; i++)
                memset(ogi_tensor_data(g->state[i]), 0, ogi_tensor_nbytes(g->state[i]));
            keep = 0;
            g->snap_len = SIZE_MAX;
        }
    }
    /* a static cache keeps its buffers: positions past `keep` are rewritten */
    for (int i = 0; !g->pipe->io.static_kv && i < 2 * g->pipe->io.n_layers && g->past[i] != NULL;
         i++) {
        ogi_status st = gen_truncate(&g->past[i], keep);
        if (st != OGI_OK)
            return st;
    }
    g->cache_len = keep;
    q->in_cache = keep;
    bool to_prompt = n <= q->n_prompt;
    q->n = n;
    if (to_prompt) {
        q->n_prompt = n;
        q->generated = 0;
        /* a fresh random stream: generating again repeats the same draws */
        sampler_free(q->sampler);
        q->sampler = NULL;
        ogi_status st = sampler_create(&g->cfg, 0, &q->sampler);
        if (st != OGI_OK)
            return st;
    } else {
        q->generated = n - q->n_prompt;
    }
    q->done = false;
    return OGI_OK;
}
