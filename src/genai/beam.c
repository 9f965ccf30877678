/* Beam search, as transformers runs it for one prompt: the generator's batch
 * holds num_beams beams; each step scores every (beam, token) by the beam's
 * summed log-probability plus the token's, keeps the best 2 x num_beams
 * candidates, turns candidates ending in EOS (ranked within the first
 * num_beams) into finished hypotheses scored sum / generated^length_penalty,
 * and continues the best num_beams others. The caller's logits processor and
 * min_new_tokens apply; the sampling penalties do not. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "genai/generator_internal.h"

typedef struct beam_hyp {
    int32_t *ids; /* prompt and generated ids, EOS included */
    size_t n;
    size_t generated;
    float *logprobs;
    double score;
} beam_hyp;

typedef struct beam_state {
    int k;          /* num_beams */
    double *sum;    /* summed log-probabilities of each live beam */
    beam_hyp *hyps; /* finished hypotheses, at most k, best first */
    int n_hyps;
    bool started;
} beam_state;

typedef struct beam_cand {
    double total;
    int beam;
    int32_t token;
    float logprob;
} beam_cand;

ogi_status beam_create(const ogi_generator *g, beam_state **out)
{
    beam_state *b = calloc(1, sizeof(*b));
    if (b == NULL)
        return ogi_error(OGI_ERR_OUT_OF_MEMORY, "out of memory");
    b->k = g->cfg.num_beams;
    b->sum = calloc((size_t)b->k, sizeof(double));
    b->hyps = calloc((size_t)b->k + 1, sizeof(beam_hyp));
    if (b->sum == NULL || b->hyps == NULL) {
        beam_free(b);
        return ogi_error(OGI_ERR_OUT_OF_MEMORY, "out of memory");
    }
    *out = b;
    return OGI_OK;
}

static void beam_hyp_clear(beam_hyp *h)
{
    free(h->ids);
    free(h->logprobs);
    memset(h, 0, sizeof(*h));
}

void beam_free(beam_state *b)
{
    if (b == NULL)
        return;
    for (int i = 0; i < b->n_hyps; i++)
        beam_hyp_clear(&b->hyps[i]);
    free(b->hyps);
    free(b->sum);
    free(b);
}

static double beam_normalise(const ogi_generator *g, double sum, size_t generated)
{
    return sum / pow((double)(generated ? generated : 1), (double)g->cfg.length_penalty);
}

/* Adds the hypothesis seq + token (token < 0: none), keeping the k best. */
static ogi_status beam_add_hyp(ogi_generator *g, beam_state *b, const gen_seq *q, int32_t token,
                               float lp, double sum)
{
    size_t n = q->n + (token >= 0), gen = q->generated + (token >= 0);
    double score = beam_normalise(g, sum, gen);
    if (b->n_hyps == b->k && score <= b->hyps[b->k - 1].score)
        return OGI_OK;
    beam_hyp h = {.n = n, .generated = gen, .score = score};
    h.ids = malloc(n * sizeof(int32_t));
    h.logprobs = malloc((gen + 1) * sizeof(float));
    if (h.ids == NULL || h.logprobs == NULL) {
        beam_hyp_clear(&h);
        return ogi_error(OGI_ERR_OUT_OF_MEMORY, "out of memory");
    }
    memcpy(h.ids, q->ids, q->n * sizeof(int32_t));
    memcpy(h.logprobs, q->logprobs, q->generated * sizeof(float));
    if (token >= 0) {
        h.ids[q->n] = token;
        h.logprobs[q->generated] = lp;
    }
    if (b->n_hyps == b->k)
        beam_hyp_clear(&b->hyps[--b->n_hyps]);
    int at = b->n_hyps++;
    while (at > 0 && b->hyps[at - 1].score < score) {
        b->hyps[at] = b->hyps[at - 1];
        at--;
    }
    b->hyps[at] = h;
    return OGI_OK;
}

/* Log-softmax of a beam's logits after the caller's processor and the
 * min_new_tokens rule. */
static ogi_status beam_logprobs(ogi_generator *g, const gen_seq *q, float *lp)
{
    size_t V = g->vocab;
    memcpy(lp, q->logits, V * sizeof(float));
    if (g->cfg.processor != NULL &&
        g->cfg.processor(g->cfg.processor_user, lp, V, q->ids, q->n) != 0)
        return ogi_error(OGI_ERR_RUNTIME, "the logits processor failed");
    if ((int)q->generated < g->cfg.min_new_tokens)
        for (int i = 0; i < g->cfg.n_eos_token_ids; i++)
            if (g->cfg.eos_token_ids[i] >= 0 && (size_t)g->cfg.eos_token_ids[i] < V)
                lp[g->cfg.eos_token_ids[i]] = -INFINITY;
    float max = -INFINITY;
    for (size_t v = 0; v < V; v++)
        max = lp[v] > max ? lp[v] : max;
    if (!isfinite(max))
        return ogi_error(OGI_ERR_RUNTIME, "no token can follow: every logit is -inf or NaN");
    double sum = 0;
    for (size_t v = 0; v < V; v++)
        sum += exp((double)lp[v] - max);
    float lse = (float)(log(sum) + max);
    for (size_t v = 0; v < V; v++)
        lp[v] -= lse;
    return OGI_OK;
}

/* Keeps the `want` best candidates in cand[0..*n) (sorted best first;
 * ties by beam then token, for determinism). */
static void beam_offer(beam_cand *cand, int *n, int want, beam_cand c)
{
    int at = *n;
    if (*n == want) {
        const beam_cand *w = &cand[want - 1];
        if (c.total < w->total || (c.total == w->total &&
                                   (c.beam > w->beam || (c.beam == w->beam && c.token > w->token))))
            return;
        at = want - 1;
    } else {
        (*n)++;
    }
    while (at > 0 && (cand[at - 1].total < c.total ||
                      (cand[at - 1].total == c.total &&
                       (cand[at - 1].beam > c.beam ||
                        (cand[at - 1].beam == c.beam && cand[at - 1].token > c.token))))) {
        cand[at] = cand[at - 1];
        at--;
    }
    cand[at] = c;
}

/* Reorders the KV cache and the recurrent states along the batch: beam i
 * takes old beam src[i]. */
static ogi_status beam_reorder_cache(ogi_generator *g, const int *src)
{
    int n_kv = 2 * g->pipe->io.n_layers;
    for (int t = 0; t < n_kv + g->pipe->io.n_states; t++) {
        ogi_tensor **slot = t < n_kv ? &g->past[t] : &g->state[t - n_kv];
        ogi_tensor *old = *slot;
        if (old == NULL)
            continue;
        ogi_tensor *fresh;
        ogi_status st = ogi_tensor_create(ogi_tensor_dtype(old), ogi_tensor_rank(old),
                                          ogi_tensor_dims(old), &fresh);
        if (st != OGI_OK)
            return st;
        size_t row = ogi_tensor_nbytes(old) / g->batch;
        for (size_t i = 0; i < g->batch; i++)
            memcpy((char *)ogi_tensor_data(fresh) + i * row,
                   (const char *)ogi_tensor_data(old) + (size_t)src[i] * row, row);
        ogi_tensor_free(old);
        *slot = fresh;
    }
    return OGI_OK;
}

/* Beam i becomes a copy of old beam src[i] (ids, log-probs, mask, logits). */
static ogi_status beam_reorder_seqs(ogi_generator *g, const int *src)
{
    gen_seq *copies = calloc(g->batch, sizeof(gen_seq));
    if (copies == NULL)
        return ogi_error(OGI_ERR_OUT_OF_MEMORY, "out of memory");
    ogi_status st = OGI_OK;
    for (size_t i = 0; i < g->batch && st == OGI_OK; i++) {
        const gen_seq *from = &g->seqs[src[i]];
        gen_seq *to = &copies[i];
        *to = *from;
        to->ids = NULL;
        to->logprobs = NULL;
        to->cap = 0;
        to->mask = malloc(g->cache_len + 1);
        to->logits = NULL;
        to->sampler = NULL;
        st = gen_seq_reserve(to, from->n + 1);
        if (st == OGI_OK && to->mask == NULL)
            st = ogi_error(OGI_ERR_OUT_OF_MEMORY, "out of memory");
        if (st == OGI_OK) {
            memcpy(to->ids, from->ids, from->n * sizeof(int32_t));
            memcpy(to->logprobs, from->logprobs, from->generated * sizeof(float));
            memcpy(to->mask, from->mask, g->cache_len);
        }
    }
    for (size_t i = 0; i < g->batch; i++) {
        gen_seq *q = &g->seqs[i];
        if (st == OGI_OK) {
            free(q->ids);
            free(q->logprobs);
            free(q->mask);
            q->ids = copies[i].ids;
            q->logprobs = copies[i].logprobs;
            q->mask = copies[i].mask;
            q->cap = copies[i].cap;
            q->n = copies[i].n;
            q->generated = copies[i].generated;
            q->in_cache = copies[i].in_cache;
        } else {
            free(copies[i].ids);
            free(copies[i].logprobs);
            free(copies[i].mask);
        }
    }
    free(copies);
    return st;
}

/* Ends the search: live beams join the hypotheses, the best ones become
 * sequences 0.. (num_return_sequences of them), and all are done. */
static ogi_status beam_finish(ogi_generator *g, beam_state *b)
{
    ogi_status st = OGI_OK;
    for (size_t i = 0; i < g->batch && st == OGI_OK; i++)
        st = beam_add_hyp(g, b, &g->seqs[i], -1, 0.0f, b->sum[i]);
    for (int r = 0; r < g->cfg.num_return_sequences && r < b->n_hyps && st == OGI_OK; r++) {
        gen_seq *q = &g->seqs[r];
        beam_hyp *h = &b->hyps[r];
        st = gen_seq_reserve(q, h->n);
        if (st != OGI_OK)
            break;
        memcpy(q->ids, h->ids, h->n * sizeof(int32_t));
        memcpy(q->logprobs, h->logprobs, h->generated * sizeof(float));
        q->n = h->n;
        q->generated = h->generated;
    }
    for (size_t i = 0; i < g->batch; i++)
        g->seqs[i].done = true;
    return st;
}

ogi_status beam_step(ogi_generator *g)
{
    beam_state *b = g->beams;
    int k = b->k, want = 2 * k;
    size_t V = g->vocab;
    if (!b->started) {
        /* all beams hold the prompt: only the first may extend it at first */
        for (int i = 1; i < k; i++)
            b->sum[i] = -INFINITY;
        b->started = true;
    }
    float *lp = malloc(V * sizeof(float));
    beam_cand *cand = calloc((size_t)want, sizeof(beam_cand));
    int *src = calloc((size_t)k, sizeof(int));
    int32_t *tokens = calloc((size_t)k, sizeof(int32_t));
    float *token_lp = calloc((size_t)k, sizeof(float));
    double *sums = calloc((size_t)k, sizeof(double));
    ogi_status st = lp && cand && src && tokens && token_lp && sums
                        ? OGI_OK
                        : ogi_error(OGI_ERR_OUT_OF_MEMORY, "out of memory");
    int n_cand = 0;
    for (int i = 0; i < k && st == OGI_OK; i++) {
        if (!isfinite(b->sum[i]))
            continue;
        st = beam_logprobs(g, &g->seqs[i], lp);
        for (size_t v = 0; v < V && st == OGI_OK; v++)
            if (isfinite(lp[v]))
                beam_offer(cand, &n_cand, want,
                           (beam_cand){b->sum[i] + lp[v], i, (int32_t)v, lp[v]});
    }
    int live = 0;
    for (int r = 0; r < n_cand && live < k && st == OGI_OK; r++) {
        const beam_cand *c = &cand[r];
        if (gen_is_eos(g, c->token)) {
            if (r < k)
                st = beam_add_hyp(g, b, &g->seqs[c->beam], c->token, c->logprob, c->total);
            continue;
        }
        src[live] = c->beam;
        tokens[live] = c->token;
        token_lp[live] = c->logprob;
        sums[live++] = c->total;
    }
    for (int i = live; i < k && st == OGI_OK; i++) { /* too few candidates: dead beams */
        src[i] = src[0];
        tokens[i] = g->pipe->pad_id;
        sums[i] = -INFINITY;
    }
    if (st == OGI_OK)
        st = beam_reorder_cache(g, src);
    if (st == OGI_OK)
        st = beam_reorder_seqs(g, src);
    for (int i = 0; i < k && st == OGI_OK; i++) {
        gen_seq *q = &g->seqs[i];
        q->ids[q->n++] = tokens[i];
        q->logprobs[q->generated++] = token_lp[i];
        b->sum[i] = sums[i];
    }
    /* done when no live beam can beat the worst kept hypothesis any more,
     * or at the length limit */
    bool done = live == 0;
    if (st == OGI_OK && !done && b->n_hyps == k) {
        double best = beam_normalise(g, sums[0], g->seqs[0].generated);
        done = b->hyps[k - 1].score >= best;
    }
    if (st == OGI_OK &&
        ((int)g->seqs[0].generated >= g->cfg.max_new_tokens || g->seqs[0].n >= g->pipe->context))
        done = true;
    if (st == OGI_OK && done)
        st = beam_finish(g, b);
    free(lp);
    free(cand);
    free(src);
    free(tokens);
    free(token_lp);
    free(sums);
    return st;
}
