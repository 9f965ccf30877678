/* The sampler chain, in the order of transformers' generate(): the caller's
 * processor, repetition penalty, presence/frequency penalties, no-repeat
 * n-grams, EOS suppression before min_new_tokens; then greedy argmax, or
 * temperature, top-k, top-p, min-p and a seeded draw from the softmax.
 *
 * Every choice is deterministic: candidates are ordered by (logit desc, id
 * asc), and the random state is the sampler's own xoshiro256**. */
#include "genai/sampler.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "ops/vecmath.h"

#define SAMPLER_MAX_LOGPROBS 20

/* A token still in the running, with its processed logit. */
typedef struct sampler_candidate {
    float logit;
    int32_t id;
} sampler_candidate;

struct sampler {
    ogi_generation_config cfg;
    uint64_t rng[4]; /* xoshiro256** state */
    size_t capacity; /* vocab entries the buffers below hold */
    int32_t *counts; /* per token, all zero between calls */
    sampler_candidate *cands;
    double *weights; /* unnormalised probabilities of cands */
};

/* ---- Configuration ---------------------------------------------------------- */

static ogi_status sampler_check_sampling(const ogi_generation_config *cfg)
{
    if (!isfinite(cfg->temperature) || (cfg->do_sample && !(cfg->temperature > 0)))
        return ogi_error(OGI_ERR_INVALID_ARGUMENT, "temperature must be %s, got %g",
                         cfg->do_sample ? "> 0 when sampling" : "finite", cfg->temperature);
    if (cfg->top_k < 0)
        return ogi_error(OGI_ERR_INVALID_ARGUMENT, "top_k must be >= 0, got %d", cfg->top_k);
    if (!(cfg->top_p > 0 && cfg->top_p <= 1))
        return ogi_error(OGI_ERR_INVALID_ARGUMENT, "top_p must be in (0, 1], got %g", cfg->top_p);
    if (!(cfg->min_p >= 0 && cfg->min_p < 1))
        return ogi_error(OGI_ERR_INVALID_ARGUMENT, "min_p must be in [0, 1), got %g", cfg->min_p);
    return OGI_OK;
}

static ogi_status sampler_check_penalties(const ogi_generation_config *cfg)
{
    if (!(cfg->repetition_penalty > 0) || !isfinite(cfg->repetition_penalty))
        return ogi_error(OGI_ERR_INVALID_ARGUMENT,
                         "repetition_penalty must be finite and > 0, got %g",
                         cfg->repetition_penalty);
    if (!isfinite(cfg->presence_penalty))
        return ogi_error(OGI_ERR_INVALID_ARGUMENT, "presence_penalty must be finite, got %g",
                         cfg->presence_penalty);
    if (!isfinite(cfg->frequency_penalty))
        return ogi_error(OGI_ERR_INVALID_ARGUMENT, "frequency_penalty must be finite, got %g",
                         cfg->frequency_penalty);
    if (cfg->no_repeat_ngram_size < 0)
        return ogi_error(OGI_ERR_INVALID_ARGUMENT, "no_repeat_ngram_size must be >= 0, got %d",
                         cfg->no_repeat_ngram_size);
    return OGI_OK;
}

static ogi_status sampler_check_stopping(const ogi_generation_config *cfg)
{
    if (cfg->max_new_tokens < 0)
        return ogi_error(OGI_ERR_INVALID_ARGUMENT, "max_new_tokens must be >= 0, got %d",
                         cfg->max_new_tokens);
    if (cfg->min_new_tokens < 0)
        return ogi_error(OGI_ERR_INVALID_ARGUMENT, "min_new_tokens must be >= 0, got %d",
                         cfg->min_new_tokens);
    if (cfg->n_eos_token_ids < 0 || cfg->n_eos_token_ids > OGI_MAX_EOS_IDS)
        return ogi_error(OGI_ERR_INVALID_ARGUMENT, "n_eos_token_ids must be in [0, %d], got %d",
                         OGI_MAX_EOS_IDS, cfg->n_eos_token_ids);
    for (int i = 0; i < cfg->n_eos_token_ids; i++) {
        if (cfg->eos_token_ids[i] < 0)
            return ogi_error(OGI_ERR_INVALID_ARGUMENT, "eos_token_ids[%d] must be >= 0, got %d", i,
                             (int)cfg->eos_token_ids[i]);
    }
    if (cfg->n_stop_strings > 0 && cfg->stop_strings == NULL)
        return ogi_error(OGI_ERR_INVALID_ARGUMENT, "stop_strings is NULL but n_stop_strings is %zu",
                         cfg->n_stop_strings);
    for (size_t i = 0; i < cfg->n_stop_strings; i++) {
        if (cfg->stop_strings[i] == NULL || cfg->stop_strings[i][0] == '\0')
            return ogi_error(OGI_ERR_INVALID_ARGUMENT, "stop_strings[%zu] is %s", i,
                             cfg->stop_strings[i] == NULL ? "NULL" : "empty");
    }
    return OGI_OK;
}

static ogi_status sampler_check_search(const ogi_generation_config *cfg)
{
    if (cfg->num_beams < 1)
        return ogi_error(OGI_ERR_INVALID_ARGUMENT, "num_beams must be >= 1, got %d",
                         cfg->num_beams);
    if (!isfinite(cfg->length_penalty))
        return ogi_error(OGI_ERR_INVALID_ARGUMENT, "length_penalty must be finite, got %g",
                         cfg->length_penalty);
    if (cfg->num_return_sequences < 1 || cfg->num_return_sequences > cfg->num_beams)
        return ogi_error(OGI_ERR_INVALID_ARGUMENT,
                         "num_return_sequences must be in [1, num_beams = %d], got %d",
                         cfg->num_beams, cfg->num_return_sequences);
    if (cfg->logprobs < 0 || cfg->logprobs > SAMPLER_MAX_LOGPROBS)
        return ogi_error(OGI_ERR_INVALID_ARGUMENT, "logprobs must be in [0, %d], got %d",
                         SAMPLER_MAX_LOGPROBS, cfg->logprobs);
    if (cfg->prefill_chunk < 0)
        return ogi_error(OGI_ERR_INVALID_ARGUMENT, "prefill_chunk must be >= 0, got %d",
                         cfg->prefill_chunk);
    return OGI_OK;
}

ogi_status sampler_check_config(const ogi_generation_config *cfg)
{
    if (cfg == NULL)
        return ogi_error(OGI_ERR_INVALID_ARGUMENT, "generation config is NULL");
    ogi_status st = sampler_check_stopping(cfg);
    if (st == OGI_OK)
        st = sampler_check_sampling(cfg);
    if (st == OGI_OK)
        st = sampler_check_penalties(cfg);
    if (st == OGI_OK)
        st = sampler_check_search(cfg);
    return st;
}

/* ---- Random numbers: xoshiro256** seeded through splitmix64 ----------------- */

static uint64_t sampler_splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t sampler_rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t sampler_rand(sampler *s)
{
    uint64_t *r = s->rng;
    uint64_t result = sampler_rotl(r[1] * 5, 7) * 9;
    uint64_t t = r[1] << 17;
    r[2] ^= r[0];
    r[3] ^= r[1];
    r[1] ^= r[2];
    r[0] ^= r[3];
    r[2] ^= t;
    r[3] = sampler_rotl(r[3], 45);
    return result;
}

/* Uniform in [0, 1) with 53 random bits. */
static double sampler_uniform(sampler *s)
{
    return (double)(sampler_rand(s) >> 11) * 0x1.0p-53;
}

ogi_status sampler_create(const ogi_generation_config *cfg, uint64_t stream, sampler **out)
{
    if (out == NULL)
        return ogi_error(OGI_ERR_INVALID_ARGUMENT, "sampler_create: NULL out");
    *out = NULL;
    ogi_status st = sampler_check_config(cfg);
    if (st != OGI_OK)
        return st;
    sampler *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return ogi_error(OGI_ERR_OUT_OF_MEMORY, "sampler_create: out of memory");
    s->cfg = *cfg;
    /* seed + stream, so that sequence b of a batch draws what a batch of one
     * would draw with seed + b */
    uint64_t x = cfg->seed + stream;
    for (int i = 0; i < 4; i++)
        s->rng[i] = sampler_splitmix64(&x);
    *out = s;
    return OGI_OK;
}

void sampler_free(sampler *s)
{
    if (s == NULL)
        return;
    free(s->counts);
    free(s->cands);
    free(s->weights);
    free(s);
}

static ogi_status sampler_reserve(sampler *s, size_t vocab)
{
    if (vocab <= s->capacity)
        return OGI_OK;
    free(s->counts);
    free(s->cands);
    free(s->weights);
    s->counts = calloc(vocab, sizeof(*s->counts));
    s->cands = malloc(vocab * sizeof(*s->cands));
    s->weights = malloc(vocab * sizeof(*s->weights));
    if (s->counts == NULL || s->cands == NULL || s->weights == NULL) {
        s->capacity = 0;
        return ogi_error(OGI_ERR_OUT_OF_MEMORY, "sampler: out of memory for %zu tokens", vocab);
    }
    s->capacity = vocab;
    return OGI_OK;
}

/* ---- Logits processors ------------------------------------------------------ */

/* CTRL's penalty, once per distinct token of the whole sequence (as
 * transformers' gather/scatter does): a penalty > 1 always lowers the logit. */
static void sampler_repetition_penalty(sampler *s, float *logits, const int32_t *history, size_t n)
{
    float p = s->cfg.repetition_penalty;
    for (size_t i = 0; i < n; i++) {
        int32_t t = history[i];
        if (s->counts[t] != 0)
            continue;
        s->counts[t] = 1;
        logits[t] = logits[t] < 0 ? logits[t] * p : logits[t] / p;
    }
    for (size_t i = 0; i < n; i++)
        s->counts[history[i]] = 0;
}

/* OpenAI's penalties over the generated tokens only:
 * logit -= presence * (count > 0) + frequency * count. */
static void sampler_presence_frequency(sampler *s, float *logits, const int32_t *generated,
                                       size_t n)
{
    for (size_t i = 0; i < n; i++)
        s->counts[generated[i]]++;
    for (size_t i = 0; i < n; i++) {
        int32_t t = generated[i];
        if (s->counts[t] == 0)
            continue;
        logits[t] -= s->cfg.presence_penalty + s->cfg.frequency_penalty * (float)s->counts[t];
        s->counts[t] = 0;
    }
}

/* Bans every token that would complete an n-gram already in the sequence:
 * the last size - 1 tokens are matched against each earlier n-gram's prefix. */
static void sampler_no_repeat_ngram(size_t size, float *logits, const int32_t *history, size_t n)
{
    if (n + 1 < size)
        return;
    const int32_t *tail = history + n + 1 - size;
    for (size_t start = 0; start + size <= n; start++) {
        if (memcmp(history + start, tail, (size - 1) * sizeof(*history)) == 0)
            logits[history[start + size - 1]] = -INFINITY;
    }
}

static void sampler_suppress_eos(const ogi_generation_config *cfg, float *logits, size_t vocab)
{
    /* an EOS id beyond the logits can never be generated: nothing to do */
    for (int i = 0; i < cfg->n_eos_token_ids; i++)
        if ((size_t)cfg->eos_token_ids[i] < vocab)
            logits[cfg->eos_token_ids[i]] = -INFINITY;
}

static ogi_status sampler_process(sampler *s, float *logits, size_t vocab, const int32_t *history,
                                  size_t n_history, size_t n_prompt)
{
    const ogi_generation_config *cfg = &s->cfg;
    if (cfg->processor != NULL) {
        int rc = cfg->processor(cfg->processor_user, logits, vocab, history, n_history);
        if (rc != 0)
            return ogi_error(OGI_ERR_RUNTIME, "the logits processor returned %d", rc);
    }
    if (cfg->repetition_penalty != 1.0f)
        sampler_repetition_penalty(s, logits, history, n_history);
    if (cfg->presence_penalty != 0.0f || cfg->frequency_penalty != 0.0f)
        sampler_presence_frequency(s, logits, history + n_prompt, n_history - n_prompt);
    if (cfg->no_repeat_ngram_size > 0)
        sampler_no_repeat_ngram((size_t)cfg->no_repeat_ngram_size, logits, history, n_history);
    if (n_history - n_prompt < (size_t)cfg->min_new_tokens)
        sampler_suppress_eos(cfg, logits, vocab);
    /* one branch-free pass over the vocabulary on the bits (NaN: exponent
     * all ones and a mantissa; +inf: exactly 0x7f800000), which the compiler
     * vectorises; the culprit is looked up only when there is one */
    uint32_t bad = 0;
    for (size_t v = 0; v < vocab; v++) {
        uint32_t bits;
        memcpy(&bits, &logits[v], sizeof(bits));
        bad |= ((bits & 0x7fffffffu) > 0x7f800000u) | (bits == 0x7f800000u);
    }
    for (size_t v = 0; bad && v < vocab; v++) {
        if (!(logits[v] < INFINITY))
            return ogi_error(OGI_ERR_RUNTIME, "sampler: logits[%zu] is %g", v, logits[v]);
    }
    return OGI_OK;
}

/* ---- Ordering candidates ------------------------------------------------------ */

static bool sampler_better(sampler_candidate a, sampler_candidate b)
{
    return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
}

static int sampler_compare(const void *pa, const void *pb)
{
    const sampler_candidate *a = pa, *b = pb;
    return sampler_better(*a, *b) ? -1 : sampler_better(*b, *a) ? 1 : 0;
}

static void sampler_swap(sampler_candidate *a, sampler_candidate *b)
{
    sampler_candidate t = *a;
    *a = *b;
    *b = t;
}

/* Quickselect: moves the k best of c[0..n) to c[0..k), in no order. The
 * order is total (ids break ties), so the set is the same whatever the
 * pivots; median-of-three keeps sorted inputs linear. */
static void sampler_select(sampler_candidate *c, size_t n, size_t k)
{
    size_t lo = 0, hi = n;
    while (lo < k && k < hi) {
        size_t mid = lo + (hi - lo) / 2, last = hi - 1;
        if (sampler_better(c[mid], c[lo]))
            sampler_swap(&c[mid], &c[lo]);
        if (sampler_better(c[last], c[lo]))
            sampler_swap(&c[last], &c[lo]);
        if (sampler_better(c[mid], c[last]))
            sampler_swap(&c[mid], &c[last]);
        /* c[last] is now the median of the three: partition around it */
        size_t store = lo;
        for (size_t i = lo; i < last; i++)
            if (sampler_better(c[i], c[last]))
                sampler_swap(&c[i], &c[store++]);
        sampler_swap(&c[store], &c[last]);
        if (store < k)
            lo = store + 1;
        else
            hi = store;
    }
}

/* Makes c[0..m) the m best of c[0..n) in order, given that c[0..*sorted)
 * already are the *sorted best in order. */
static void sampler_sort_prefix(sampler_candidate *c, size_t n, size_t m, size_t *sorted)
{
    if (m > n)
        m = n;
    if (m <= *sorted)
        return;
    sampler_candidate *rest = c + *sorted;
    size_t n_rest = n - *sorted, want = m - *sorted;
    if (want < n_rest)
        sampler_select(rest, n_rest, want);
    qsort(rest, want, sizeof(*rest), sampler_compare);
    *sorted = m;
}

/* ---- Sampling warpers ------------------------------------------------------------ */

/* Sifts h[i] down a heap of n whose root is its worst candidate. */
static void sampler_heap_down(sampler_candidate *h, size_t n, size_t i)
{
    for (;;) {
        size_t worst = i, left = 2 * i + 1, right = left + 1;
        if (left < n && sampler_better(h[worst], h[left]))
            worst = left;
        if (right < n && sampler_better(h[worst], h[right]))
            worst = right;
        if (worst == i)
            return;
        sampler_swap(&h[i], &h[worst]);
        i = worst;
    }
}

/* Top-k in one pass over the logits: a heap of the k best finite ones, whose
 * root (the k-th best) turns most tokens away with one comparison. As
 * transformers removes only logits < the k-th value, tokens tied with the
 * k-th are kept too. The candidates come out best first. */
static size_t sampler_top_k(sampler *s, const float *logits, size_t vocab, size_t k,
                            size_t *n_finite)
{
    sampler_candidate *h = s->cands;
    size_t n = 0, finite = 0;
    for (size_t v = 0; v < vocab; v++) {
        if (logits[v] == -INFINITY)
            continue;
        finite++;
        sampler_candidate x = {logits[v], (int32_t)v};
        if (n < k) {
            h[n++] = x;
            if (n == k)
                for (size_t i = k / 2; i-- > 0;)
                    sampler_heap_down(h, k, i);
        } else if (sampler_better(x, h[0])) {
            h[0] = x;
            sampler_heap_down(h, k, 0);
        }
    }
    if (n == k) {
        /* the heap holds every tie of the k-th with a lower id; add the rest */
        sampler_candidate kth = h[0];
        for (size_t v = (size_t)kth.id + 1; v < vocab; v++)
            if (logits[v] == kth.logit)
                h[n++] = (sampler_candidate){logits[v], (int32_t)v};
    }
    qsort(h, n, sizeof(*h), sampler_compare);
    *n_finite = finite;
    return n;
}

/* Keeps the smallest prefix, best first, whose probability reaches top_p: a
 * token stays while the tokens before it hold less than top_p. The prefix is
 * sorted a chunk at a time, so a peaked distribution never sorts the vocab. */
static size_t sampler_top_p(sampler_candidate *c, size_t n, double top_p, size_t *sorted)
{
    sampler_sort_prefix(c, n, 1, sorted);
    float max = c[0].logit;
    double total = 0;
    for (size_t i = 0; i < n; i++)
        total += expf(c[i].logit - max);
    double need = top_p * total, cum = 0;
    size_t i = 0;
    for (size_t m = 64;; m *= 4) {
        sampler_sort_prefix(c, n, m, sorted);
        for (; i < *sorted; i++) {
            if (cum >= need)
                return i;
            cum += expf(c[i].logit - max);
        }
        if (*sorted == n)
            return n;
    }
}

/* Drops tokens less probable than min_p times the most probable one,
 * keeping the candidates' order: p < min_p * p_max is, in logits,
 * logit - max_logit < log(min_p). */
static size_t sampler_min_p(sampler_candidate *c, size_t n, double min_p, size_t *sorted)
{
    double max = c[0].logit, log_min_p = log(min_p);
    for (size_t i = 1; i < n; i++)
        max = c[i].logit > max ? c[i].logit : max;
    size_t keep = 0, keep_sorted = 0;
    for (size_t i = 0; i < n; i++) {
        if (c[i].logit - max < log_min_p)
            continue;
        keep_sorted += i < *sorted;
        c[keep++] = c[i];
    }
    *sorted = keep_sorted;
    return keep;
}

/* ---- Choosing ------------------------------------------------------------------- */

/* log(sum(exp(logits))), computed around the largest logit max (a
 * vectorised pass: at every step of greedy decoding it covers the whole
 * vocabulary). */
static double sampler_logsumexp(const float *logits, size_t vocab, float max)
{
    return max + log(vecmath_exp_sum(logits, (int64_t)vocab, max));
}

/* The m best tokens of logits, best first (ties: lower id), as
 * log-probabilities; entries past the vocab get token -1. */
static void sampler_top_logprobs(const float *logits, size_t vocab, size_t m, double lse,
                                 sampler_logprob *top)
{
    sampler_candidate best[SAMPLER_MAX_LOGPROBS];
    size_t filled = 0;
    for (size_t v = 0; v < vocab; v++) {
        sampler_candidate x = {logits[v], (int32_t)v};
        if (filled == m && !sampler_better(x, best[m - 1]))
            continue;
        size_t pos = filled < m ? filled++ : m - 1;
        for (; pos > 0 && sampler_better(x, best[pos - 1]); pos--)
            best[pos] = best[pos - 1];
        best[pos] = x;
    }
    for (size_t i = 0; i < m; i++) {
        top[i].token = i < filled ? best[i].id : -1;
        top[i].logprob = i < filled ? (float)(best[i].logit - lse) : -INFINITY;
    }
}

static ogi_status sampler_all_banned(void)
{
    return ogi_error(OGI_ERR_RUNTIME, "sampler: every token is banned (all logits are -inf)");
}

/* Argmax in one pass; ties go to the lowest id, as torch.argmax. */
static ogi_status sampler_greedy(const float *logits, size_t vocab, int32_t *token, double *logprob,
                                 double *lse)
{
    size_t best = (size_t)vecmath_argmax(logits, (int64_t)vocab);
    if (logits[best] == -INFINITY)
        return sampler_all_banned();
    *token = (int32_t)best;
    *lse = sampler_logsumexp(logits, vocab, logits[best]);
    *logprob = logits[best] - *lse;
    return OGI_OK;
}

/* Divides the logits by the temperature, in place. */
static ogi_status sampler_temperature(float *logits, size_t vocab, float temperature)
{
    if (temperature == 1.0f)
        return OGI_OK;
    for (size_t v = 0; v < vocab; v++)
        logits[v] /= temperature;
    for (size_t v = 0; v < vocab; v++)
        if (logits[v] == INFINITY)
            return ogi_error(OGI_ERR_RUNTIME, "sampler: logits[%zu] overflows at temperature %g", v,
                             temperature);
    return OGI_OK;
}

/* Every finite logit as a candidate, in id order. */
static size_t sampler_all_candidates(sampler *s, const float *logits, size_t vocab)
{
    size_t n = 0;
    for (size_t v = 0; v < vocab; v++)
        if (logits[v] > -INFINITY)
            s->cands[n++] = (sampler_candidate){logits[v], (int32_t)v};
    return n;
}

/* Draws from softmax(c[0..n)) by inverse CDF over the candidates' order. */
static size_t sampler_draw(sampler *s, const sampler_candidate *c, size_t n, double *lse)
{
    float max = c[0].logit;
    double sum = 0;
    for (size_t i = 1; i < n; i++)
        max = c[i].logit > max ? c[i].logit : max;
    for (size_t i = 0; i < n; i++) {
        s->weights[i] = expf(c[i].logit - max);
        sum += s->weights[i];
    }
    *lse = max + log(sum);
    /* target < sum, and the running sum ends at exactly sum: the loop always
     * picks, and never a zero-weight token */
    double target = sampler_uniform(s) * sum, acc = 0;
    size_t pick = 0;
    for (size_t i = 0; i < n; i++) {
        acc += s->weights[i];
        if (s->weights[i] > 0)
            pick = i;
        if (target < acc)
            break;
    }
    return pick;
}

static ogi_status sampler_sample(sampler *s, float *logits, size_t vocab, int32_t *token,
                                 double *logprob, double *lse)
{
    const ogi_generation_config *cfg = &s->cfg;
    ogi_status st = sampler_temperature(logits, vocab, cfg->temperature);
    if (st != OGI_OK)
        return st;
    size_t n, n_finite, sorted = 0;
    if (cfg->top_k > 0 && (size_t)cfg->top_k < vocab) {
        n = sampler_top_k(s, logits, vocab, (size_t)cfg->top_k, &n_finite);
        sorted = n;
    } else {
        n = n_finite = sampler_all_candidates(s, logits, vocab);
    }
    if (n == 0)
        return sampler_all_banned();
    sampler_candidate *c = s->cands;
    if (cfg->top_p < 1.0f)
        n = sampler_top_p(c, n, cfg->top_p, &sorted);
    if (cfg->min_p > 0.0f)
        n = sampler_min_p(c, n, cfg->min_p, &sorted);
    if (n < n_finite) {
        /* the final distribution in place: filtered tokens at -inf */
        for (size_t v = 0; v < vocab; v++)
            logits[v] = -INFINITY;
        for (size_t i = 0; i < n; i++)
            logits[c[i].id] = c[i].logit;
    }
    size_t pick = sampler_draw(s, c, n, lse);
    *token = c[pick].id;
    *logprob = c[pick].logit - *lse;
    return OGI_OK;
}

static ogi_status sampler_check_args(const sampler *s, const float *logits, size_t vocab,
                                     const int32_t *history, size_t n_history, size_t n_prompt)
{
    if (s == NULL || logits == NULL || (history == NULL && n_history > 0))
        return ogi_error(OGI_ERR_INVALID_ARGUMENT, "sampler_next: NULL argument");
    if (vocab == 0 || vocab > INT32_MAX)
        return ogi_error(OGI_ERR_INVALID_ARGUMENT, "sampler_next: vocab of %zu tokens", vocab);
    if (n_prompt > n_history)
        return ogi_error(OGI_ERR_INVALID_ARGUMENT,
                         "sampler_next: %zu prompt tokens but a history of %zu", n_prompt,
                         n_history);
    for (size_t i = 0; i < n_history; i++)
        if (history[i] < 0 || (size_t)history[i] >= vocab)
            return ogi_error(OGI_ERR_INVALID_ARGUMENT,
                             "sampler_next: history[%zu] = %d is outside the vocab of %zu tokens",
                             i, (int)history[i], vocab);
    return OGI_OK;
}

ogi_status sampler_next(sampler *s, float *logits, size_t vocab, const int32_t *history,
                        size_t n_history, size_t n_prompt, int32_t *token, float *logprob,
                        sampler_logprob *top)
{
    if (token == NULL || logprob == NULL)
        return ogi_error(OGI_ERR_INVALID_ARGUMENT, "sampler_next: NULL output");
    ogi_status st = sampler_check_args(s, logits, vocab, history, n_history, n_prompt);
    if (st == OGI_OK)
        st = sampler_reserve(s, vocab);
    if (st == OGI_OK)
        st = sampler_process(s, logits, vocab, history, n_history, n_prompt);
    if (st != OGI_OK)
        return st;
    double lse = 0, lp = 0;
    if (s->cfg.do_sample)
        st = sampler_sample(s, logits, vocab, token, &lp, &lse);
    else
        st = sampler_greedy(logits, vocab, token, &lp, &lse);
    if (st != OGI_OK)
        return st;
    *logprob = (float)lp;
    if (top != NULL && s->cfg.logprobs > 0)
        sampler_top_logprobs(logits, vocab, (size_t)s->cfg.logprobs, lse, top);
    return OGI_OK;
}
