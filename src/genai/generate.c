/* ogi_generate: prompt in, text out, streamed in UTF-8-safe pieces, with
 * stop strings matched on the text across token boundaries. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "genai/genai.h"

const char *ogi_finish_reason_name(ogi_finish_reason r)
{
    static const char *const names[] = {"none",    "length",    "eos",    "stop_string",
                                        "stopped", "cancelled", "context"};
    return (unsigned)r < sizeof(names) / sizeof(names[0]) ? names[r] : "unknown";
}

void ogi_result_clear(ogi_result *r)
{
    if (r == NULL)
        return;
    free(r->text);
    free(r->ids);
    free(r->logprobs);
    free(r->top_logprobs);
    memset(r, 0, sizeof(*r));
}

/* Text produced so far, and how much of it the stream has seen. */
typedef struct gen_text {
    char *data;
    size_t len, cap;
    size_t streamed;
    size_t max_stop; /* longest stop string */
} gen_text;

static ogi_status gen_text_append(gen_text *t, const char *s, size_t n)
{
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 256;
        while (cap < t->len + n + 1)
            cap *= 2;
        char *grown = realloc(t->data, cap);
        if (grown == NULL)
            return ogi_error(OGI_ERR_OUT_OF_MEMORY, "out of memory");
        t->data = grown;
        t->cap = cap;
    }
    memcpy(t->data + t->len, s, n);
    t->len += n;
    t->data[t->len] = '\0';
    return OGI_OK;
}

/* Earliest stop string in the text; returns its offset or -1. */
static long gen_find_stop(const gen_text *t, const ogi_generation_config *cfg)
{
    long best = -1;
    for (size_t i = 0; i < cfg->n_stop_strings; i++) {
        const char *stop = cfg->stop_strings[i];
        if (stop == NULL || stop[0] == '\0')
            continue;
        const char *hit = t->data ? strstr(t->data, stop) : NULL;
        if (hit != NULL && (best < 0 || hit - t->data < best))
            best = hit - t->data;
    }
    return best;
}

/* Streams text up to `end`, holding back a UTF-8 character in progress. */
static ogi_stream_action gen_stream(gen_text *t, size_t end, ogi_stream_fn fn, void *user)
{
    while (end > t->streamed && end < t->len && ((unsigned char)t->data[end] & 0xc0) == 0x80)
        end--;
    if (fn == NULL || end <= t->streamed) {
        if (end > t->streamed)
            t->streamed = end;
        return OGI_STREAM_CONTINUE;
    }
    ogi_stream_action a = fn(user, t->data + t->streamed, end - t->streamed);
    t->streamed = end;
    return a;
}

typedef struct gen_run_state {
    ogi_pipeline *pipe;
    const ogi_generation_config *cfg;
    ogi_stream_fn stream;
    void *user;
    ogi_decode_stream *decoder;
    gen_text text;
    ogi_finish_reason finish;
} gen_run_state;

/* Adds the text of a new token; decides whether a stop string ended it. */
static ogi_status gen_on_token(gen_run_state *r, int32_t id, size_t generated, bool *stop)
{
    *stop = false;
    if (r->decoder == NULL)
        return OGI_OK;
    const char *piece;
    ogi_status st = ogi_decode_stream_push(r->decoder, id, &piece);
    if (st == OGI_OK)
        st = gen_text_append(&r->text, piece, strlen(piece));
    if (st != OGI_OK)
        return st;
    long hit = (int)generated >= r->cfg->min_new_tokens ? gen_find_stop(&r->text, r->cfg) : -1;
    if (hit >= 0) {
        r->text.len = (size_t)hit;
        r->text.data[hit] = '\0';
        r->finish = OGI_FINISH_STOP_STRING;
        *stop = true;
    }
    /* hold back what could still become a stop string */
    size_t safe = r->text.len;
    if (!*stop && r->text.max_stop > 0)
        safe = r->text.len >= r->text.max_stop - 1 ? r->text.len - (r->text.max_stop - 1) : 0;
    ogi_stream_action a =
        gen_stream(&r->text, safe < r->text.streamed ? r->text.streamed : safe, r->stream, r->user);
    if (a != OGI_STREAM_CONTINUE) {
        r->finish = a == OGI_STREAM_CANCEL ? OGI_FINISH_CANCELLED : OGI_FINISH_STOPPED;
        *stop = true;
    }
    return OGI_OK;
}

static ogi_status gen_fill_result(ogi_generator *g, gen_run_state *r, size_t n_prompt,
                                  ogi_result *res)
{
    size_t n_all, n_lp;
    const int32_t *ids = ogi_generator_ids(g, 0, &n_all);
    const float *lp = ogi_generator_logprobs(g, 0, &n_lp);
    res->n_ids = n_all - n_prompt;
    res->ids = malloc((res->n_ids + 1) * sizeof(int32_t));
    res->logprobs = malloc((res->n_ids + 1) * sizeof(float));
    if (r->text.data == NULL && gen_text_append(&r->text, "", 0) != OGI_OK)
        return ogi_error(OGI_ERR_OUT_OF_MEMORY, "out of memory");
    res->text = r->text.data;
    r->text.data = NULL;
    if (res->ids == NULL || res->logprobs == NULL)
        return ogi_error(OGI_ERR_OUT_OF_MEMORY, "out of memory");
    memcpy(res->ids, ids + n_prompt, res->n_ids * sizeof(int32_t));
    size_t n_top;
    const ogi_top_logprob *top = ogi_generator_top_logprobs(g, 0, &n_top);
    if (top != NULL && r->cfg->logprobs > 0 && n_top >= res->n_ids) {
        size_t count = res->n_ids * (size_t)r->cfg->logprobs;
        res->top_logprobs = malloc((count + 1) * sizeof(*res->top_logprobs));
        if (res->top_logprobs == NULL)
            return ogi_error(OGI_ERR_OUT_OF_MEMORY, "out of memory");
        memcpy(res->top_logprobs, top + (n_top - res->n_ids) * (size_t)r->cfg->logprobs,
               count * sizeof(*top));
        res->n_top = r->cfg->logprobs;
    }
    memcpy(res->logprobs, lp, (n_lp < res->n_ids ? n_lp : res->n_ids) * sizeof(float));
    res->finish = r->finish;
    return OGI_OK;
}

/* Runs the decode loop of a prepared batch-1 generator whose last n_prompt
 * tokens are the prompt; shared by ogi_generate and ogi_chat. */
ogi_status genai_run_loop(ogi_pipeline *pipe, ogi_generator *g, size_t n_prompt,
                          const ogi_generation_config *cfg, ogi_stream_fn stream, void *user,
                          ogi_result *res)
{
    gen_run_state r = {.pipe = pipe, .cfg = cfg, .stream = stream, .user = user};
    memset(res, 0, sizeof(*res));
    for (size_t i = 0; i < cfg->n_stop_strings; i++)
        if (cfg->stop_strings[i] && strlen(cfg->stop_strings[i]) > r.text.max_stop)
            r.text.max_stop = strlen(cfg->stop_strings[i]);
    ogi_status st = OGI_OK;
    if (pipe->tokenizer != NULL)
        st = ogi_decode_stream_create(pipe->tokenizer, 1, &r.decoder);
    double start = genai_now(), first = 0;
    size_t before = ogi_generator_new_tokens(g, 0);
    while (st == OGI_OK && !ogi_generator_done(g) && cfg->max_new_tokens > 0) {
        st = ogi_generator_step(g);
        if (st != OGI_OK)
            break;
        size_t n;
        const int32_t *ids = ogi_generator_ids(g, 0, &n);
        size_t generated = ogi_generator_new_tokens(g, 0) - before;
        if (generated == 1)
            first = genai_now();
        if (cfg->num_beams > 1)
            continue; /* beams are reordered every step: the text comes at the end */
        bool stop;
        st = gen_on_token(&r, ids[n - 1], generated, &stop);
        if (st != OGI_OK || stop)
            break;
    }
    if (st == OGI_OK && cfg->num_beams > 1) {
        size_t n;
        const int32_t *ids = ogi_generator_ids(g, 0, &n);
        bool stop = false;
        for (size_t i = n_prompt; i < n && st == OGI_OK && !stop; i++)
            st = gen_on_token(&r, ids[i], i - n_prompt + 1, &stop);
    }
    double end = genai_now();
    if (st == OGI_OK && r.finish == OGI_FINISH_NONE) {
        size_t n;
        const int32_t *ids = ogi_generator_ids(g, 0, &n);
        bool eos = false;
        for (int i = 0; i < cfg->n_eos_token_ids && n > n_prompt; i++)
            eos |= ids[n - 1] == cfg->eos_token_ids[i];
        r.finish = eos                  ? OGI_FINISH_EOS
                   : n >= pipe->context ? OGI_FINISH_CONTEXT
                                        : OGI_FINISH_LENGTH;
    }
    if (st == OGI_OK && r.finish != OGI_FINISH_CANCELLED)
        gen_stream(&r.text, r.text.len, stream, user); /* what was held back */
    if (st == OGI_OK)
        st = gen_fill_result(g, &r, n_prompt, res);
    size_t generated = res->n_ids;
    res->metrics.prompt_tokens = n_prompt;
    res->metrics.generated_tokens = generated;
    res->metrics.load_s = pipe->load_s;
    res->metrics.ttft_s = first > 0 ? first - start : 0;
    res->metrics.tpot_s = generated > 1 ? (end - first) / (double)(generated - 1) : 0;
    res->metrics.tokens_per_s = end > start && generated ? (double)generated / (end - start) : 0;
    ogi_decode_stream_free(r.decoder);
    free(r.text.data);
    if (st != OGI_OK)
        ogi_result_clear(res);
    return st;
}

ogi_status ogi_generate_ids(ogi_pipeline *pipe, const int32_t *prompt_ids, size_t n_prompt,
                            const ogi_generation_config *config, ogi_stream_fn stream, void *user,
                            ogi_result *result)
{
    if (pipe == NULL || result == NULL || (n_prompt > 0 && prompt_ids == NULL))
        return ogi_error(OGI_ERR_INVALID_ARGUMENT, "ogi_generate: NULL argument");
    memset(result, 0, sizeof(*result));
    if (n_prompt == 0)
        return ogi_error(OGI_ERR_INVALID_ARGUMENT, "the prompt is empty");
    ogi_generation_config cfg = config ? *config : pipe->defaults;
    ogi_generator *g;
    ogi_status st = ogi_generator_create(pipe, &cfg, 1, &g);
    if (st != OGI_OK)
        return st;
    st = ogi_generator_append(g, 0, prompt_ids, n_prompt);
    if (st == OGI_OK)
        st = genai_run_loop(pipe, g, n_prompt, &cfg, stream, user, result);
    ogi_generator_free(g);
    return st;
}

ogi_status ogi_generate(ogi_pipeline *pipe, const char *prompt, const ogi_generation_config *config,
                        ogi_stream_fn stream, void *user, ogi_result *result)
{
    if (pipe == NULL || prompt == NULL || result == NULL)
        return ogi_error(OGI_ERR_INVALID_ARGUMENT, "ogi_generate: NULL argument");
    memset(result, 0, sizeof(*result));
    if (pipe->tokenizer == NULL)
        return ogi_error(OGI_ERR_NOT_FOUND, "%s has no tokenizer.json: use ogi_generate_ids",
                         pipe->dir);
    int32_t *ids;
    size_t n;
    ogi_status st = ogi_tokenizer_encode_hf(pipe->tokenizer, prompt, strlen(prompt), &ids, &n);
    if (st != OGI_OK)
        return st;
    st = ogi_generate_ids(pipe, ids, n, config, stream, user, result);
    ogi_free(ids);
    return st;
}

ogi_status ogi_pipeline_score(ogi_pipeline *pipe, const int32_t *ids, size_t n, double *mean_ce)
{
    if (pipe == NULL || ids == NULL || mean_ce == NULL || n < 2)
        return ogi_error(OGI_ERR_INVALID_ARGUMENT, "ogi_pipeline_score: needs at least 2 ids");
    ogi_generation_config cfg = ogi_generation_default_config();
    ogi_generator *g;
    ogi_status st = ogi_generator_create(pipe, &cfg, 1, &g);
    if (st != OGI_OK)
        return st;
    ogi_tensor *logits = NULL;
    genai_set_score_only(g);
    st = ogi_generator_append(g, 0, ids, n);
    if (st == OGI_OK)
        st = genai_forward(g, &logits);
    if (st == OGI_OK) {
        /* row t predicts ids[t + 1]: cross-entropy = logsumexp(row) - row[target] */
        const float *lv = ogi_tensor_data(logits);
        size_t vocab = (size_t)ogi_tensor_dims(logits)[2];
        double total = 0;
        for (size_t t = 0; t + 1 < n; t++) {
            const float *row = lv + t * vocab;
            float max = row[0];
            for (size_t v = 1; v < vocab; v++)
                max = row[v] > max ? row[v] : max;
            double sum = 0;
            for (size_t v = 0; v < vocab; v++)
                sum += exp((double)row[v] - max);
            int32_t target = ids[t + 1];
            if (target < 0 || (size_t)target >= vocab) {
                st = ogi_error(OGI_ERR_INVALID_ARGUMENT, "id %d is outside the vocabulary", target);
                break;
            }
            total += log(sum) + max - row[target];
        }
        *mean_ce = total / (double)(n - 1);
    }
    ogi_tensor_free(logits);
    ogi_generator_free(g);
    return st;
}
