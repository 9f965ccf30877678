/* Cross-backend conformance: every scenario through the public API (ogi.h)
 * on every available backend, each against its golden where there is one,
 * then the backends against each other (identical ids and text, last-step
 * logits within 1e-4, scores within 1e-4, the same error statuses).
 *
 * Prints one line per scenario and backend ("PASS native greedy
 * llama-dynamo-op23"), one per cross-check ("PASS cross ...") and ends with
 * "N passed, M failed". Without ONNX Runtime it runs the native backend
 * alone and says so. */
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

#define MAX_IDS 600
#define MAX_ERRORS 16

/* What one backend produced in one scenario; what is filled is compared
 * across backends. */
typedef struct observed {
    bool ran;
    int32_t ids[4][MAX_IDS];
    size_t n_ids[4], n_seqs;
    float *logits; /* last step, batch entry 0 */
    size_t vocab;
    char text[4][2048];
    size_t n_texts;
    double values[8];
    size_t n_values;
    ogi_status errors[MAX_ERRORS];
    size_t n_errors;
} observed;

typedef bool (*scenario_fn)(const char *backend, const char *arg, observed *o, char *why,
                            size_t size);

static int passed, failed;
static const char *backends[2] = {"native", "ort"};
static size_t n_backends = 1;

static void report(bool ok, const char *who, const char *scenario, const char *arg, const char *why)
{
    if (ok)
        passed++;
    else
        failed++;
    printf("%s %s %s %s%s%s\n", ok ? "PASS" : "FAIL", who, scenario, arg, ok ? "" : ": ",
           ok ? "" : why);
    fflush(stdout);
}

static bool fail(char *why, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, size, fmt, ap);
    va_end(ap);
    return false;
}

/* ---- helpers --------------------------------------------------------------------- */

static json_t *load_json(const char *path)
{
    json_error_t err;
    json_t *j = json_load_file(path, 0, &err);
    if (j == NULL)
        fprintf(stderr, "%s: %s\n", path, err.text);
    return j;
}

static size_t json_ids(const json_t *arr, int32_t *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < json_array_size(arr) && n < cap; i++)
        out[n++] = (int32_t)json_integer_value(json_array_get(arr, i));
    return n;
}

static bool same_ids(const int32_t *a, size_t na, const int32_t *b, size_t nb)
{
    return na == nb && (na == 0 || memcmp(a, b, na * sizeof(int32_t)) == 0);
}

static void model_dir(const char *arg, char *dir, size_t size)
{
    if (strncmp(arg, "onnx-", 5) == 0)
        snprintf(dir, size, "%s/models/docstring-llama/%s", test_shared_dir(), arg);
    else
        snprintf(dir, size, "%s/models/tiny/%s", test_shared_dir(), arg);
}

static ogi_pipeline *open_pipeline(const char *backend, const char *arg, char *why, size_t size)
{
    char dir[4096];
    model_dir(arg, dir, sizeof(dir));
    ogi_pipeline_options o = ogi_pipeline_default_options();
    o.backend = backend;
    o.threads = 2;
    ogi_pipeline *p = NULL;
    if (ogi_pipeline_open(dir, &o, &p) != OGI_OK) {
        fail(why, size, "open %s: %s", dir, ogi_last_error());
        return NULL;
    }
    return p;
}

static ogi_generation_config greedy(const ogi_pipeline *p, int max_new)
{
    ogi_generation_config c = ogi_pipeline_generation_config(p);
    c.do_sample = 0;
    c.max_new_tokens = max_new;
    return c;
}

static void keep_ids(observed *o, const int32_t *ids, size_t n)
{
    if (o->n_seqs < 4 && n <= MAX_IDS) {
        memcpy(o->ids[o->n_seqs], ids, n * sizeof(int32_t));
        o->n_ids[o->n_seqs++] = n;
    }
}

static void keep_text(observed *o, const char *text)
{
    if (o->n_texts < 4)
        snprintf(o->text[o->n_texts++], sizeof(o->text[0]), "%s", text);
}

static void keep_logits(observed *o, const ogi_generator *g)
{
    size_t vocab = 0;
    const float *l = ogi_generator_logits(g, 0, &vocab);
    free(o->logits);
    o->logits = NULL;
    o->vocab = 0;
    if (l != NULL && vocab > 0 && (o->logits = malloc(vocab * sizeof(float))) != NULL) {
        memcpy(o->logits, l, vocab * sizeof(float));
        o->vocab = vocab;
    }
}

/* ---- scenarios ------------------------------------------------------------------------ */

/* A tiny model: golden greedy ids through ogi_generate_ids, then the same
 * prompt stepped through a generator to keep the last step's logits. */
static bool sc_greedy(const char *backend, const char *arg, observed *o, char *why, size_t size)
{
    char dir[4096], path[4200];
    model_dir(arg, dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/golden.json", dir);
    json_t *golden = load_json(path);
    ogi_pipeline *p = golden ? open_pipeline(backend, arg, why, size) : NULL;
    bool ok = p != NULL;
    if (golden == NULL)
        ok = fail(why, size, "no %s", path);
    int32_t prompt[64], want[64];
    const json_t *g = json_object_get(golden, "greedy");
    size_t np = json_ids(json_object_get(g, "prompt"), prompt, 64);
    size_t nw = json_ids(json_object_get(g, "output"), want, 64);
    ogi_generation_config cfg = ok ? greedy(p, (int)nw) : ogi_generation_default_config();
    ogi_result r = {0};
    if (ok && ogi_generate_ids(p, prompt, np, &cfg, NULL, NULL, &r) != OGI_OK)
        ok = fail(why, size, "ogi_generate_ids: %s", ogi_last_error());
    if (ok && !same_ids(r.ids, r.n_ids, want, nw))
        ok = fail(why, size, "%zu ids differ from the golden %zu", r.n_ids, nw);
    if (ok)
        keep_ids(o, r.ids, r.n_ids);
    ogi_result_clear(&r);
    ogi_generator *gen = NULL;
    if (ok && (ogi_generator_create(p, &cfg, 1, &gen) != OGI_OK ||
               ogi_generator_append(gen, 0, prompt, np) != OGI_OK))
        ok = fail(why, size, "generator: %s", ogi_last_error());
    while (ok && !ogi_generator_done(gen))
        if (ogi_generator_step(gen) != OGI_OK)
            ok = fail(why, size, "step: %s", ogi_last_error());
    size_t n = 0;
    const int32_t *ids = ok ? ogi_generator_ids(gen, 0, &n) : NULL;
    if (ok && (n != np + nw || !same_ids(ids + np, nw, want, nw)))
        ok = fail(why, size, "the generator's ids differ from the golden");
    if (ok)
        keep_logits(o, gen);
    ogi_generator_free(gen);
    ogi_pipeline_free(p);
    json_decref(golden);
    return ok;
}

/* The left-padded batch: two prompts in one generator, 16 steps. */
static bool sc_batch(const char *backend, const char *arg, observed *o, char *why, size_t size)
{
    char dir[4096], path[4200];
    model_dir(arg, dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/golden.json", dir);
    json_t *golden = load_json(path);
    ogi_pipeline *p = golden ? open_pipeline(backend, arg, why, size) : NULL;
    bool ok = p != NULL;
    const json_t *lp = json_object_get(golden, "greedy_batch_leftpad");
    ogi_generation_config cfg = ok ? greedy(p, 16) : ogi_generation_default_config();
    ogi_generator *gen = NULL;
    if (ok && ogi_generator_create(p, &cfg, 2, &gen) != OGI_OK)
        ok = fail(why, size, "generator: %s", ogi_last_error());
    int32_t want[2][64];
    size_t n_want[2] = {0, 0};
    for (size_t b = 0; b < 2 && ok; b++) {
        int32_t ids[64];
        size_t n = json_ids(json_array_get(json_object_get(lp, "prompts"), b), ids, 64);
        n_want[b] = json_ids(json_array_get(json_object_get(lp, "outputs"), b), want[b], 64);
        if (ogi_generator_append(gen, b, ids, n) != OGI_OK)
            ok = fail(why, size, "append %zu: %s", b, ogi_last_error());
    }
    for (int step = 0; ok && step < 16 && !ogi_generator_done(gen); step++)
        if (ogi_generator_step(gen) != OGI_OK)
            ok = fail(why, size, "step %d: %s", step, ogi_last_error());
    for (size_t b = 0; b < 2 && ok; b++) {
        size_t n;
        const int32_t *ids = ogi_generator_ids(gen, b, &n);
        size_t fresh = ogi_generator_new_tokens(gen, b);
        if (!same_ids(ids + n - fresh, fresh, want[b], n_want[b]))
            ok = fail(why, size, "sequence %zu differs from the golden", b);
        else
            keep_ids(o, ids + n - fresh, fresh);
    }
    if (ok)
        keep_logits(o, gen);
    ogi_generator_free(gen);
    ogi_pipeline_free(p);
    json_decref(golden);
    return ok;
}

/* docstring-llama: the golden prompts as text, 40 new tokens. */
static bool sc_text(const char *backend, const char *arg, observed *o, char *why, size_t size)
{
    char dir[4096], path[4200];
    model_dir(arg, dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/golden.json", dir);
    json_t *golden = load_json(path);
    ogi_pipeline *p = golden ? open_pipeline(backend, arg, why, size) : NULL;
    bool ok = p != NULL;
    const json_t *prompts = json_object_get(golden, "prompts");
    for (size_t i = 0; ok && i < json_array_size(prompts); i++) {
        const json_t *e = json_array_get(prompts, i);
        int32_t want[64];
        size_t nw = json_ids(json_object_get(e, "greedy_ids"), want, 64);
        const char *text = json_string_value(json_object_get(e, "greedy_text"));
        ogi_generation_config cfg = greedy(p, 40);
        ogi_result r = {0};
        if (ogi_generate(p, json_string_value(json_object_get(e, "prompt")), &cfg, NULL, NULL,
                         &r) != OGI_OK)
            ok = fail(why, size, "prompt %zu: %s", i, ogi_last_error());
        else if (!same_ids(r.ids, r.n_ids, want, nw))
            ok = fail(why, size, "prompt %zu: ids differ from the golden", i);
        else if (text == NULL || strcmp(r.text, text) != 0)
            ok = fail(why, size, "prompt %zu: text '%s'", i, r.text);
        if (ok) {
            keep_ids(o, r.ids, r.n_ids);
            keep_text(o, r.text);
        }
        ogi_result_clear(&r);
    }
    ogi_pipeline_free(p);
    json_decref(golden);
    return ok;
}

static int32_t *encode(const ogi_pipeline *p, const char *text, size_t *n)
{
    int32_t *ids = NULL;
    if (ogi_tokenizer_encode(ogi_pipeline_tokenizer(p), text, strlen(text), 0, &ids, n) != OGI_OK)
        return NULL;
    return ids;
}

/* Seeded sampling: the same seed twice gives the same ids. */
static bool sc_sampling(const char *backend, const char *arg, observed *o, char *why, size_t size)
{
    ogi_pipeline *p = open_pipeline(backend, arg, why, size);
    if (p == NULL)
        return false;
    size_t np = 0;
    int32_t *prompt = encode(p, "Return the number of", &np);
    ogi_generation_config cfg = ogi_pipeline_generation_config(p);
    cfg.do_sample = 1;
    cfg.seed = 1234;
    cfg.temperature = 0.9f;
    cfg.top_k = 40;
    cfg.top_p = 0.95f;
    cfg.max_new_tokens = 30;
    cfg.n_eos_token_ids = 0;
    ogi_result r1 = {0}, r2 = {0};
    bool ok = prompt != NULL;
    if (!ok)
        fail(why, size, "encode: %s", ogi_last_error());
    if (ok && (ogi_generate_ids(p, prompt, np, &cfg, NULL, NULL, &r1) != OGI_OK ||
               ogi_generate_ids(p, prompt, np, &cfg, NULL, NULL, &r2) != OGI_OK))
        ok = fail(why, size, "generate: %s", ogi_last_error());
    if (ok && (r1.n_ids != 30 || !same_ids(r1.ids, r1.n_ids, r2.ids, r2.n_ids)))
        ok = fail(why, size, "the same seed gave different ids");
    if (ok) {
        keep_ids(o, r1.ids, r1.n_ids);
        keep_text(o, r1.text);
    }
    ogi_result_clear(&r1);
    ogi_result_clear(&r2);
    ogi_free(prompt);
    ogi_pipeline_free(p);
    return ok;
}

static ogi_stream_action collect(void *user, const char *piece, size_t len)
{
    char *buf = user;
    size_t have = strlen(buf);
    if (have + len < 2048) {
        memcpy(buf + have, piece, len);
        buf[have + len] = '\0';
    }
    return OGI_STREAM_CONTINUE;
}

/* A stop string ends generation and is not in the text; streaming adds up. */
static bool sc_stop(const char *backend, const char *arg, observed *o, char *why, size_t size)
{
    ogi_pipeline *p = open_pipeline(backend, arg, why, size);
    if (p == NULL)
        return false;
    ogi_generation_config cfg = greedy(p, 40);
    const char *stops[2] = {"roots", "Parameters"};
    cfg.stop_strings = stops;
    cfg.n_stop_strings = 2;
    char streamed[2048] = "";
    ogi_result r = {0};
    bool ok = true;
    if (ogi_generate(p, "Return the number of", &cfg, collect, streamed, &r) != OGI_OK)
        ok = fail(why, size, "%s", ogi_last_error());
    else if (r.finish != OGI_FINISH_STOP_STRING || strstr(r.text, "roots") != NULL ||
             strcmp(streamed, r.text) != 0)
        ok = fail(why, size, "finish %s, text '%s', streamed '%s'",
                  ogi_finish_reason_name(r.finish), r.text, streamed);
    if (ok) {
        keep_ids(o, r.ids, r.n_ids);
        keep_text(o, r.text);
    }
    ogi_result_clear(&r);
    ogi_pipeline_free(p);
    return ok;
}

/* Rewind to the prompt and generate the same sampled tokens again, without
 * computing the prompt twice. */
static bool sc_rewind(const char *backend, const char *arg, observed *o, char *why, size_t size)
{
    ogi_pipeline *p = open_pipeline(backend, arg, why, size);
    if (p == NULL)
        return false;
    size_t np = 0;
    int32_t *prompt = encode(p, "The for statement is used to", &np);
    ogi_generation_config cfg = ogi_pipeline_generation_config(p);
    cfg.do_sample = 1;
    cfg.seed = 77;
    cfg.max_new_tokens = 20;
    cfg.n_eos_token_ids = 0;
    ogi_generator *g = NULL;
    bool ok = prompt != NULL && ogi_generator_create(p, &cfg, 1, &g) == OGI_OK &&
              ogi_generator_append(g, 0, prompt, np) == OGI_OK;
    while (ok && !ogi_generator_done(g))
        ok = ogi_generator_step(g) == OGI_OK;
    int32_t first[MAX_IDS];
    size_t n1 = 0, n2 = 0;
    const int32_t *ids = ok ? ogi_generator_ids(g, 0, &n1) : NULL;
    if (ok && n1 <= MAX_IDS)
        memcpy(first, ids, n1 * sizeof(int32_t));
    size_t runs = ok ? ogi_generator_model_runs(g) : 0;
    size_t computed = ok ? ogi_generator_tokens_computed(g) : 0;
    ok = ok && ogi_generator_rewind(g, np) == OGI_OK;
    while (ok && !ogi_generator_done(g))
        ok = ogi_generator_step(g) == OGI_OK;
    if (!ok)
        fail(why, size, "%s", ogi_last_error());
    ids = ok ? ogi_generator_ids(g, 0, &n2) : NULL;
    if (ok && (n1 != np + 20 || !same_ids(ids, n2, first, n1)))
        ok = fail(why, size, "after the rewind the tokens differ");
    size_t more_runs = ok ? ogi_generator_model_runs(g) - runs : 0;
    size_t more_tokens = ok ? ogi_generator_tokens_computed(g) - computed : 0;
    if (ok && (more_runs != 20 || more_tokens != 20))
        ok = fail(why, size, "the rewind recomputed: %zu runs, %zu tokens", more_runs, more_tokens);
    if (ok) {
        keep_ids(o, ids, n2);
        keep_logits(o, g);
    }
    ogi_generator_free(g);
    ogi_free(prompt);
    ogi_pipeline_free(p);
    return ok;
}

/* Two chat turns through the chat template, greedy. */
static bool sc_chat(const char *backend, const char *arg, observed *o, char *why, size_t size)
{
    ogi_pipeline *p = open_pipeline(backend, arg, why, size);
    if (p == NULL)
        return false;
    ogi_chat *chat = NULL;
    ogi_generation_config cfg = greedy(p, 24);
    bool ok = ogi_chat_create(p, "You write docstrings.", &chat) == OGI_OK;
    const char *turns[2] = {"Return the number of elements.", "And the size?"};
    size_t prompt_tokens = 0;
    for (int t = 0; t < 2 && ok; t++) {
        char streamed[2048] = "";
        ogi_result r = {0};
        ok = ogi_chat_send(chat, turns[t], &cfg, collect, streamed, &r) == OGI_OK;
        if (!ok)
            break;
        if (r.n_ids == 0 || strcmp(streamed, r.text) != 0 ||
            r.metrics.prompt_tokens <= prompt_tokens)
            ok = fail(why, size, "turn %d: %zu ids, prompt %zu tokens, text '%s'", t, r.n_ids,
                      r.metrics.prompt_tokens, r.text);
        prompt_tokens = r.metrics.prompt_tokens;
        if (ok) {
            keep_ids(o, r.ids, r.n_ids);
            keep_text(o, r.text);
        }
        ogi_result_clear(&r);
    }
    if (!ok && why[0] == '\0')
        fail(why, size, "%s", ogi_last_error());
    ogi_chat_free(chat);
    ogi_pipeline_free(p);
    return ok;
}

/* Perplexity windows of the held-out docstrings, within 1e-3 of the golden. */
static bool sc_perplexity(const char *backend, const char *arg, observed *o, char *why, size_t size)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/models/docstring-llama/perplexity_golden.json",
             test_shared_dir());
    json_t *golden = load_json(path);
    ogi_pipeline *p = golden ? open_pipeline(backend, arg, why, size) : NULL;
    bool ok = p != NULL;
    int32_t ids[1100];
    size_t n = json_ids(json_object_get(golden, "ids_first_1026"), ids, 1100);
    const json_t *windows = json_object_get(golden, "windows");
    for (size_t i = 0; ok && i < json_array_size(windows); i++) {
        const json_t *w = json_array_get(windows, i);
        size_t start = (size_t)json_integer_value(json_object_get(w, "start"));
        size_t length = (size_t)json_integer_value(json_object_get(w, "length"));
        double want = json_number_value(json_object_get(w, "mean_cross_entropy")), ce = NAN;
        if (start + length > n)
            ok = fail(why, size, "window %zu+%zu is past the golden ids", start, length);
        else if (ogi_pipeline_score(p, ids + start, length, &ce) != OGI_OK)
            ok = fail(why, size, "window %zu: %s", i, ogi_last_error());
        else if (!(fabs(ce - want) <= 1e-3))
            ok = fail(why, size, "window %zu+%zu: %.6f, golden %.6f", start, length, ce, want);
        if (ok && o->n_values < 8)
            o->values[o->n_values++] = ce;
    }
    ogi_pipeline_free(p);
    json_decref(golden);
    return ok;
}

/* Bad inputs: each call must fail; the statuses are compared across backends. */
static bool sc_errors(const char *backend, const char *arg, observed *o, char *why, size_t size)
{
    ogi_pipeline *p = open_pipeline(backend, arg, why, size);
    if (p == NULL)
        return false;
    ogi_generation_config cfg = greedy(p, 4);
    ogi_result r = {0};
    const int32_t prompt[3] = {52, 67, 867};
    const int32_t out_of_vocab[3] = {52, 1 << 20, 867};
    const int32_t negative[2] = {52, -5};
    size_t long_n = ogi_pipeline_context_length(p) + 5;
    int32_t *long_ids = calloc(long_n, sizeof(int32_t));
    ogi_generation_config nan_temp = cfg;
    nan_temp.do_sample = 1;
    nan_temp.temperature = NAN;
    ogi_status *e = o->errors;
    size_t k = 0;
    e[k++] = ogi_generate_ids(p, out_of_vocab, 3, &cfg, NULL, NULL, &r);
    ogi_result_clear(&r);
    e[k++] = ogi_generate_ids(p, negative, 2, &cfg, NULL, NULL, &r);
    ogi_result_clear(&r);
    e[k++] = ogi_generate_ids(p, prompt, 0, &cfg, NULL, NULL, &r);
    ogi_result_clear(&r);
    e[k++] = long_ids ? ogi_generate_ids(p, long_ids, long_n, &cfg, NULL, NULL, &r)
                      : OGI_ERR_OUT_OF_MEMORY;
    ogi_result_clear(&r);
    e[k++] = ogi_generate_ids(p, prompt, 3, &nan_temp, NULL, NULL, &r);
    ogi_result_clear(&r);
    ogi_generator *g = NULL;
    if (ogi_generator_create(p, &cfg, 2, &g) == OGI_OK) {
        e[k++] = ogi_generator_append(g, 5, prompt, 3);
        e[k++] = ogi_generator_step(g);      /* nothing appended */
        e[k++] = ogi_generator_rewind(g, 1); /* batch 2 */
        ogi_generator_free(g);
    }
    if (ogi_generator_create(p, &cfg, 1, &g) == OGI_OK) {
        ogi_generator_append(g, 0, prompt, 3);
        e[k++] = ogi_generator_rewind(g, 9);
        ogi_generator_free(g);
    }
    double ce;
    e[k++] = ogi_pipeline_score(p, prompt, 1, &ce);
    e[k++] = ogi_pipeline_score(p, out_of_vocab, 3, &ce);
    ogi_pipeline *missing = NULL;
    ogi_pipeline_options po = ogi_pipeline_default_options();
    po.backend = backend;
    e[k++] = ogi_pipeline_open("/nonexistent-model-dir", &po, &missing);
    ogi_pipeline_free(missing);
    o->n_errors = k;
    free(long_ids);
    ogi_pipeline_free(p);
    for (size_t i = 0; i < k; i++)
        if (e[i] == OGI_OK)
            return fail(why, size, "bad input %zu was accepted", i);
    return true;
}

/* ---- comparing backends ----------------------------------------------------------------- */

static bool compare(const observed *a, const observed *b, char *why, size_t size)
{
    if (a->n_seqs != b->n_seqs)
        return fail(why, size, "%zu vs %zu id sequences", a->n_seqs, b->n_seqs);
    for (size_t s = 0; s < a->n_seqs; s++)
        if (!same_ids(a->ids[s], a->n_ids[s], b->ids[s], b->n_ids[s]))
            return fail(why, size, "ids of sequence %zu differ", s);
    for (size_t s = 0; s < a->n_texts && s < b->n_texts; s++)
        if (strcmp(a->text[s], b->text[s]) != 0)
            return fail(why, size, "text %zu differs: '%s' vs '%s'", s, a->text[s], b->text[s]);
    if ((a->logits == NULL) != (b->logits == NULL) || a->vocab != b->vocab)
        return fail(why, size, "logits of %zu vs %zu entries", a->vocab, b->vocab);
    double worst = 0;
    for (size_t v = 0; v < a->vocab; v++) {
        double d = fabs((double)a->logits[v] - b->logits[v]);
        double tol = 1e-4 * fmax(1.0, fabs((double)b->logits[v]));
        if (!(d <= tol))
            return fail(why, size, "logit %zu: %.7g vs %.7g", v, a->logits[v], b->logits[v]);
        worst = fmax(worst, d);
    }
    for (size_t i = 0; i < a->n_values && i < b->n_values; i++)
        if (!(fabs(a->values[i] - b->values[i]) <= 1e-4))
            return fail(why, size, "value %zu: %.7f vs %.7f", i, a->values[i], b->values[i]);
    if (a->n_errors != b->n_errors)
        return fail(why, size, "%zu vs %zu error checks", a->n_errors, b->n_errors);
    for (size_t i = 0; i < a->n_errors; i++)
        if (a->errors[i] != b->errors[i])
            return fail(why, size, "bad input %zu: %s vs %s", i, ogi_status_name(a->errors[i]),
                        ogi_status_name(b->errors[i]));
    snprintf(why, size, "%s", "");
    if (a->vocab > 0)
        snprintf(why, size, " (last-step logits within %.1e)", worst);
    for (size_t i = 0; i < a->n_values; i++) {
        size_t len = strlen(why);
        snprintf(why + len, size - len, "%s%.6f/%.6f%s", i ? ", " : " (native/ort ", a->values[i],
                 b->values[i], i + 1 == a->n_values ? ")" : "");
    }
    for (size_t i = 0; i < a->n_errors; i++) {
        size_t len = strlen(why);
        snprintf(why + len, size - len, "%s%s%s", i ? ", " : " (", ogi_status_name(a->errors[i]),
                 i + 1 == a->n_errors ? ")" : "");
    }
    return true;
}

static void scenario(const char *name, const char *arg, scenario_fn fn)
{
    observed obs[2];
    memset(obs, 0, sizeof(obs));
    char why[2048];
    for (size_t b = 0; b < n_backends; b++) {
        why[0] = '\0';
        obs[b].ran = fn(backends[b], arg, &obs[b], why, sizeof(why));
        report(obs[b].ran, backends[b], name, arg, why);
    }
    if (n_backends == 2 && obs[0].ran && obs[1].ran) {
        bool same = compare(&obs[0], &obs[1], why, sizeof(why));
        if (same) {
            char label[2400];
            snprintf(label, sizeof(label), "%s%s", arg, why);
            report(true, "cross", name, label, "");
        } else {
            report(false, "cross", name, arg, why);
        }
    }
    free(obs[0].logits);
    free(obs[1].logits);
}

int main(void)
{
    if (ogi_backend_available("ort"))
        n_backends = 2;
    else
        printf("NOTE: the ort backend is not available (%s): running the native backend only\n",
               ogi_last_error());
    static const char *const tiny[] = {"llama-dynamo-op23",   "llama-dynamo-op18",
                                       "llama-legacy-op17",   "gpt2-legacy-op17",
                                       "mistral-legacy-op17", "mistral-dynamo-op23"};
    static const char *const docstring[] = {"onnx-dynamo-op23", "onnx-legacy-op17"};
    for (size_t i = 0; i < sizeof(tiny) / sizeof(tiny[0]); i++) {
        scenario("greedy", tiny[i], sc_greedy);
        scenario("batch-leftpad", tiny[i], sc_batch);
    }
    for (size_t i = 0; i < 2; i++) {
        scenario("text", docstring[i], sc_text);
        scenario("sampling", docstring[i], sc_sampling);
        scenario("stop-strings", docstring[i], sc_stop);
        scenario("rewind", docstring[i], sc_rewind);
        scenario("chat", docstring[i], sc_chat);
        scenario("perplexity", docstring[i], sc_perplexity);
        scenario("errors", docstring[i], sc_errors);
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
