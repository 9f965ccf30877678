/* The KV-cache rewrite (src/engine/kv_rewrite.c): rewritten llama and
 * mistral exports generate the same greedy tokens and logits as the
 * concat-style originals, while their caches are allocated once and updated
 * in place; a too small cache and graphs without a concat-style cache fail
 * with clear errors. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/kv_rewrite.h"
#include "onnx/onnx.h"
#include "test_util.h"

enum { KV_MAX_IO = 64, KV_MAX_TOKENS = 256 };

static int checks = 0;

/* One model session and its cache, run step by step. */
typedef struct kv_runner {
    ogi_session *s;
    bool fixed;    /* the rewritten graph: caches bound in place */
    int64_t batch; /* sequences run together */
    int64_t pad;   /* the last sequence's left padding */
    int64_t past;  /* positions processed so far */
    int n_caches;
    const char *past_name[KV_MAX_IO];
    char present_name[KV_MAX_IO][128];
    ogi_tensor *cache[KV_MAX_IO]; /* fixed: the buffers; else the last presents */
    void *cache_data[KV_MAX_IO];
    float *logits; /* the last run's [batch, rows, vocab] */
    int64_t rows, vocab;
} kv_runner;

static bool kv_runner_open(kv_runner *r, const char *path, bool fixed, int64_t batch, int64_t pad)
{
    memset(r, 0, sizeof(*r));
    r->fixed = fixed;
    r->batch = batch;
    r->pad = pad;
    ogi_status st = ogi_session_open(path, NULL, &r->s);
    TEST_CHECK(st == OGI_OK, "open %s: %s", path, ogi_last_error());
    checks++;
    if (st != OGI_OK)
        return false;
    for (size_t i = 0; i < ogi_session_input_count(r->s); i++) {
        const char *name = ogi_session_input_name(r->s, i);
        if (strncmp(name, "past_key_values.", 16) != 0 || r->n_caches == KV_MAX_IO)
            continue;
        int64_t dims[OGI_MAX_RANK];
        int rank;
        ogi_dtype dtype;
        ogi_session_input_info(r->s, i, &dtype, &rank, dims);
        int c = r->n_caches++;
        r->past_name[c] = name;
        snprintf(r->present_name[c], sizeof(r->present_name[c]), "present.%s", name + 16);
        dims[0] = batch;
        if (!fixed)
            dims[2] = 0; /* an empty past */
        /* zero-filled: a fixed cache is allocated once, here */
        r->cache[c] = test_tensor_f32(4, dims, NULL);
        r->cache_data[c] = ogi_tensor_data(r->cache[c]);
    }
    return true;
}

static void kv_runner_close(kv_runner *r)
{
    for (int c = 0; c < r->n_caches; c++)
        ogi_tensor_free(r->cache[c]);
    free(r->logits);
    ogi_session_free(r->s);
    memset(r, 0, sizeof(*r));
}

/* The presents of a run: bound to the caches (fixed) or new tensors. */
static ogi_status kv_runner_finish(kv_runner *r, ogi_tensor **outs, int64_t n)
{
    for (int c = 0; c < r->n_caches; c++) {
        ogi_tensor *present = outs[1 + c];
        if (r->fixed) {
            TEST_CHECK(present == r->cache[c] && ogi_tensor_data(present) == r->cache_data[c],
                       "present '%s' is not the cache buffer", r->present_name[c]);
            checks++;
        } else {
            ogi_tensor_free(r->cache[c]);
            r->cache[c] = present;
        }
    }
    r->rows = ogi_tensor_dims(outs[0])[1];
    r->vocab = ogi_tensor_dims(outs[0])[2];
    free(r->logits);
    r->logits = malloc(ogi_tensor_nbytes(outs[0]));
    if (r->logits != NULL)
        memcpy(r->logits, ogi_tensor_data(outs[0]), ogi_tensor_nbytes(outs[0]));
    ogi_tensor_free(outs[0]);
    r->past += n;
    return r->logits != NULL ? OGI_OK : OGI_ERR_OUT_OF_MEMORY;
}

/* Runs ids [batch, n] after r->past cached positions: the attention mask
 * of every position so far, [batch, past + n] (0 on the last sequence's
 * left padding), and position ids counted from its first real token. */
static ogi_status kv_runner_step(kv_runner *r, const int64_t *ids, int64_t n)
{
    int64_t mask[2 * KV_MAX_TOKENS], pos[2 * KV_MAX_TOKENS];
    int64_t total = r->past + n;
    if (r->batch > 2 || total > KV_MAX_TOKENS)
        return OGI_ERR_INVALID_ARGUMENT;
    for (int64_t b = 0; b < r->batch; b++) {
        int64_t pad = b == r->batch - 1 ? r->pad : 0;
        for (int64_t i = 0; i < total; i++)
            mask[b * total + i] = i >= pad;
        for (int64_t i = 0; i < n; i++)
            pos[b * n + i] = r->past + i > pad ? r->past + i - pad : 0;
    }
    const char *in_names[KV_MAX_IO + 3] = {"input_ids", "attention_mask", "position_ids"};
    const ogi_tensor *ins[KV_MAX_IO + 3];
    ogi_tensor *owned[3] = {test_tensor_i64(2, (int64_t[]){r->batch, n}, ids),
                            test_tensor_i64(2, (int64_t[]){r->batch, total}, mask),
                            test_tensor_i64(2, (int64_t[]){r->batch, n}, pos)};
    const char *out_names[KV_MAX_IO + 1] = {"logits"};
    ogi_tensor *outs[KV_MAX_IO + 1] = {NULL};
    for (int k = 0; k < 3; k++)
        ins[k] = owned[k];
    for (int c = 0; c < r->n_caches; c++) {
        in_names[3 + c] = r->past_name[c];
        ins[3 + c] = r->cache[c];
        out_names[1 + c] = r->present_name[c];
        outs[1 + c] = r->fixed ? r->cache[c] : NULL; /* bound: updated in place */
    }
    ogi_status st = ogi_session_run(r->s, 3 + (size_t)r->n_caches, in_names, ins,
                                    1 + (size_t)r->n_caches, out_names, outs);
    for (int k = 0; k < 3; k++)
        ogi_tensor_free(owned[k]);
    return st == OGI_OK ? kv_runner_finish(r, outs, n) : st;
}

static int64_t kv_argmax(const float *row, int64_t n)
{
    int64_t best = 0;
    for (int64_t i = 1; i < n; i++)
        if (row[i] > row[best])
            best = i;
    return best;
}

static double kv_max_diff(const float *a, const float *b, int64_t n)
{
    double worst = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (isnan(a[i]) && isnan(b[i]))
            continue; /* a fully masked row, the same in both graphs */
        if (!(d <= worst))
            worst = isnan(d) ? INFINITY : d;
    }
    return worst;
}

/* The cache positions the rewritten graph keeps equal the original's
 * present (a circular cache of `slots` holds the last slots positions). */
static double kv_cache_diff(const kv_runner *orig, const kv_runner *fixed, int c, bool circular)
{
    const int64_t *od = ogi_tensor_dims(orig->cache[c]), *fd = ogi_tensor_dims(fixed->cache[c]);
    const float *o = ogi_tensor_data(orig->cache[c]), *f = ogi_tensor_data(fixed->cache[c]);
    int64_t total = od[2], slots = fd[2], dim = od[3];
    int64_t first = circular && total > slots ? total - slots : 0;
    double worst = 0;
    for (int64_t h = 0; h < od[0] * od[1]; h++) /* batch and heads */
        for (int64_t p = first; p < total; p++) {
            int64_t slot = circular ? p % slots : p;
            double d = kv_max_diff(o + (h * total + p) * dim, f + (h * slots + slot) * dim, dim);
            worst = d > worst ? d : worst;
        }
    return worst;
}

typedef struct kv_case {
    const char *model; /* under models/ */
    kv_rewrite_options opts;
    int n_prompt_extra; /* golden output tokens appended to the golden prompt */
    int chunks[4];      /* prompt chunk sizes (0-terminated; none: one chunk) */
    int n_new;          /* greedy tokens */
    int pad;            /* > 0: a second sequence, left-padded by this much */
} kv_case;

/* The golden prompt and greedy continuation of a model directory. */
static int kv_golden(const char *dir, int64_t *prompt, int64_t *output, int *n_output)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/golden.json", dir);
    json_error_t err;
    json_t *golden = json_load_file(path, 0, &err);
    TEST_CHECK(golden != NULL, "%s: %s", path, err.text);
    checks++;
    json_t *greedy = json_object_get(golden, "greedy");
    json_t *p = json_object_get(greedy, "prompt"), *o = json_object_get(greedy, "output");
    if (p == NULL) { /* docstring-llama: the first of its prompts */
        json_t *first = json_array_get(json_object_get(golden, "prompts"), 0);
        p = json_object_get(first, "prompt_ids");
        o = json_object_get(first, "greedy_ids");
    }
    int n = 0;
    for (size_t i = 0; i < json_array_size(p) && n < 64; i++)
        prompt[n++] = json_integer_value(json_array_get(p, i));
    *n_output = 0;
    for (size_t i = 0; i < json_array_size(o) && *n_output < 64; i++)
        output[(*n_output)++] = json_integer_value(json_array_get(o, i));
    json_decref(golden);
    return n;
}

/* Compares the logits of the last step of both runners (every row). */
static void kv_compare_step(const kv_runner *a, const kv_runner *b, double *worst, const char *what,
                            int step)
{
    bool same_shape = a->rows == b->rows && a->vocab == b->vocab;
    int64_t n = a->batch * a->rows * a->vocab;
    double d = same_shape ? kv_max_diff(a->logits, b->logits, n) : INFINITY;
    *worst = d > *worst ? d : *worst;
    TEST_CHECK(d <= 1e-4, "%s step %d: logits differ by %g", what, step, d);
    checks++;
}

static int64_t kv_next_token(const kv_runner *r, int64_t b)
{
    return kv_argmax(r->logits + ((b + 1) * r->rows - 1) * r->vocab, r->vocab);
}

/* Runs the prompt (in chunks) through both graphs; false on failure. */
static bool kv_prefill(kv_runner *orig, kv_runner *fixed, const kv_case *tc, const int64_t *ids,
                       int n_ids, double *worst, const char *what)
{
    int done = 0;
    for (int k = 0; done < n_ids; k++) {
        int n = k < 4 && tc->chunks[k] > 0 ? tc->chunks[k] : n_ids - done;
        int64_t chunk[2 * KV_MAX_TOKENS];
        for (int64_t b = 0; b < orig->batch; b++)
            memcpy(chunk + b * n, ids + b * n_ids + done, sizeof(*chunk) * (size_t)n);
        ogi_status s1 = kv_runner_step(orig, chunk, n);
        ogi_status s2 = s1 == OGI_OK ? kv_runner_step(fixed, chunk, n) : s1;
        TEST_CHECK(s1 == OGI_OK && s2 == OGI_OK, "%s prompt chunk %d: %s", what, k,
                   ogi_last_error());
        checks++;
        if (s1 != OGI_OK || s2 != OGI_OK)
            return false;
        kv_compare_step(orig, fixed, worst, what, k);
        done += n;
    }
    return true;
}

/* Prompt and n_new greedy tokens through both graphs: the same tokens (the
 * golden ones when the prompt is golden.json's), logits within 1e-4 at
 * every step, and the cache buffers holding the original's presents. */
static void kv_generate(kv_runner *orig, kv_runner *fixed, const kv_case *tc, const int64_t *ids,
                        int n_ids, const int64_t *golden, int n_golden, const char *what)
{
    double worst = 0;
    if (!kv_prefill(orig, fixed, tc, ids, n_ids, &worst, what))
        return;
    int same = 0, matches_golden = 0;
    for (int t = 0; t < tc->n_new; t++) {
        int64_t next[2];
        for (int64_t b = 0; b < orig->batch; b++) {
            next[b] = kv_next_token(orig, b);
            same += kv_next_token(fixed, b) == next[b];
        }
        matches_golden += tc->n_prompt_extra == 0 && t < n_golden && golden[t] == next[0];
        ogi_status s1 = kv_runner_step(orig, next, 1);
        ogi_status s2 = s1 == OGI_OK ? kv_runner_step(fixed, next, 1) : s1;
        TEST_CHECK(s1 == OGI_OK && s2 == OGI_OK, "%s decode step %d: %s", what, t,
                   ogi_last_error());
        checks++;
        if (s1 != OGI_OK || s2 != OGI_OK)
            return;
        kv_compare_step(orig, fixed, &worst, what, 100 + t);
    }
    int want = tc->n_new * (int)orig->batch;
    TEST_CHECK(same == want, "%s: %d of %d greedy tokens agree", what, same, want);
    checks++;
    if (tc->n_prompt_extra == 0 && tc->n_new <= n_golden) {
        TEST_CHECK(matches_golden == tc->n_new, "%s: %d of %d tokens match golden.json", what,
                   matches_golden, tc->n_new);
        checks++;
    }
    double cache = 0;
    for (int c = 0; c < fixed->n_caches; c++) {
        double d = kv_cache_diff(orig, fixed, c, tc->opts.sliding_window > 0);
        cache = d > cache ? d : cache;
    }
    TEST_CHECK(cache <= 1e-4, "%s: the cache buffers differ from the presents by %g", what, cache);
    checks++;
    printf("%-64s %2d greedy, max logit diff %.3g, cache diff %.3g\n", what, tc->n_new, worst,
           cache);
}

/* A temporary directory for a rewritten model; NULL on failure. */
static char *kv_temp_dir(void)
{
    char *dir = strdup("/tmp/ogi-test-kv-XXXXXX");
    if (dir == NULL || mkdtemp(dir) == NULL) {
        free(dir);
        return NULL;
    }
    return dir;
}

static void kv_temp_remove(char *dir)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/model.onnx", dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/model.onnx.data", dir);
    unlink(path);
    rmdir(dir);
    free(dir);
}

static void kv_case_name(const kv_case *tc, int n_prompt, char *buf, size_t size)
{
    const kv_rewrite_options *o = &tc->opts;
    int len;
    if (o->sliding_window > 0)
        len = snprintf(buf, size, "%s window %lld/%lld slots, prompt %d", tc->model,
                       (long long)o->sliding_window,
                       (long long)(o->max_cache_len ? o->max_cache_len : o->sliding_window),
                       n_prompt);
    else
        len = snprintf(buf, size, "%s static %lld, prompt %d", tc->model,
                       (long long)o->max_cache_len, n_prompt);
    for (int k = 0; k < 4 && tc->chunks[k] > 0 && len > 0 && (size_t)len < size; k++)
        len += snprintf(buf + len, size - (size_t)len, "%s%d", k ? "+" : " = ", tc->chunks[k]);
    if (tc->pad > 0 && len > 0 && (size_t)len < size)
        snprintf(buf + len, size - (size_t)len, ", batch 2 (pad %d)", tc->pad);
}

static void kv_run_case(const kv_case *tc)
{
    char dir[4096], in_path[4200], out_path[4200], what[256];
    snprintf(dir, sizeof(dir), "%s/models/%s", test_shared_dir(), tc->model);
    snprintf(in_path, sizeof(in_path), "%s/model.onnx", dir);
    int64_t ids[256], golden[64];
    int n_golden;
    int n_ids = kv_golden(dir, ids, golden, &n_golden);
    for (int i = 0; i < tc->n_prompt_extra && i < n_golden; i++)
        ids[n_ids++] = golden[i];
    for (int i = 0; tc->pad > 0 && i < n_ids; i++) /* the second: padding, the rest reversed */
        ids[n_ids + i] = i < tc->pad ? 0 : ids[n_ids - 1 - i];
    kv_case_name(tc, n_ids, what, sizeof(what));
    char *tmp = kv_temp_dir();
    TEST_CHECK(tmp != NULL, "mkdtemp");
    checks++;
    if (tmp == NULL)
        return;
    snprintf(out_path, sizeof(out_path), "%s/model.onnx", tmp);
    kv_rewrite_report report;
    ogi_status st = kv_rewrite_file(in_path, out_path, &tc->opts, &report);
    TEST_CHECK(st == OGI_OK && report.n_caches >= 4, "%s: rewrite: %s", what, ogi_last_error());
    checks++;
    kv_runner orig, fixed;
    int64_t batch = tc->pad > 0 ? 2 : 1;
    if (st == OGI_OK && kv_runner_open(&orig, in_path, false, batch, tc->pad)) {
        if (kv_runner_open(&fixed, out_path, true, batch, tc->pad)) {
            kv_generate(&orig, &fixed, tc, ids, n_ids, golden, n_golden, what);
            kv_runner_close(&fixed);
        }
        kv_runner_close(&orig);
    }
    kv_temp_remove(tmp);
}

/* A static cache too small for the conversation: the step that would write
 * past its end fails with TensorScatter's range error, and the ones before
 * run. */
static void kv_test_too_small(void)
{
    char in_path[4200], out_path[4200];
    snprintf(in_path, sizeof(in_path), "%s/models/tiny/llama-dynamo-op23/model.onnx",
             test_shared_dir());
    char *tmp = kv_temp_dir();
    if (tmp == NULL)
        return;
    snprintf(out_path, sizeof(out_path), "%s/model.onnx", tmp);
    kv_rewrite_options o = kv_rewrite_default_options();
    o.max_cache_len = 10;
    ogi_status st = kv_rewrite_file(in_path, out_path, &o, NULL);
    kv_runner r;
    if (st == OGI_OK && kv_runner_open(&r, out_path, true, 1, 0)) {
        int64_t prompt[7] = {77, 239, 410, 293, 393, 265, 19}, next = 5;
        st = kv_runner_step(&r, prompt, 7);
        for (int t = 0; t < 3 && st == OGI_OK; t++)
            st = kv_runner_step(&r, &next, 1); /* positions 7, 8, 9 fit */
        TEST_CHECK(st == OGI_OK && r.past == 10, "10 positions in a cache of 10: %s",
                   ogi_last_error());
        st = kv_runner_step(&r, &next, 1);
        TEST_CHECK(st == OGI_ERR_RUNTIME && strstr(ogi_last_error(), "exceeds the cache length"),
                   "position 10 of a cache of 10: %s %s", ogi_status_name(st), ogi_last_error());
        printf("cache too small: %s\n", ogi_last_error());
        checks += 2;
        kv_runner_close(&r);
    }
    kv_temp_remove(tmp);
}

static ogi_status kv_rewrite_loaded(const char *path, const kv_rewrite_options *o,
                                    const char *bad_reader)
{
    onnx_model *m = NULL;
    onnx_builder *b = NULL;
    ogi_status st = onnx_model_load(path, &m);
    if (st == OGI_OK)
        st = onnx_builder_from_model(m, &b);
    if (st == OGI_OK && bad_reader != NULL) {
        const char *in = "past_key_values.1.value", *out = "negated";
        onnx_node *n;
        st = onnx_builder_add_simple_node(b, onnx_builder_graph(b), "Neg", "", 1, &in, 1, &out, &n);
        if (st == OGI_OK)
            n->name = onnx_builder_string(b, bad_reader);
    }
    if (st == OGI_OK)
        st = kv_rewrite_model(b, o, NULL);
    onnx_builder_free(b);
    onnx_model_free(m);
    return st;
}

static void kv_test_bad_inputs(void)
{
    char llama[4200], add[4200];
    snprintf(llama, sizeof(llama), "%s/models/tiny/llama-dynamo-op23/model.onnx",
             test_shared_dir());
    snprintf(add, sizeof(add), "%s/onnx-backend-tests/node/test_add/model.onnx", test_shared_dir());
    kv_rewrite_options o = kv_rewrite_default_options();
    ogi_status st = kv_rewrite_loaded(llama, &o, NULL);
    TEST_CHECK(st == OGI_ERR_INVALID_ARGUMENT, "no variant: %s", ogi_last_error());
    o.sliding_window = 8;
    o.max_cache_len = 6;
    st = kv_rewrite_loaded(llama, &o, NULL);
    TEST_CHECK(st == OGI_ERR_INVALID_ARGUMENT, "6 slots for window 8: %s", ogi_last_error());
    o = kv_rewrite_default_options();
    o.max_cache_len = 32;
    st = kv_rewrite_loaded(add, &o, NULL);
    TEST_CHECK(st == OGI_ERR_UNSUPPORTED && strstr(ogi_last_error(), "no concat-style KV cache"),
               "a graph without a cache: %s %s", ogi_status_name(st), ogi_last_error());
    printf("no cache: %s\n", ogi_last_error());
    st = kv_rewrite_loaded(llama, &o, "bad_reader");
    TEST_CHECK(st == OGI_ERR_UNSUPPORTED && strstr(ogi_last_error(), "'bad_reader' (Neg)"),
               "a cache read by Neg: %s %s", ogi_status_name(st), ogi_last_error());
    printf("other reader: %s\n", ogi_last_error());
    st = kv_rewrite_file(llama, llama, &o, NULL);
    TEST_CHECK(st == OGI_ERR_INVALID_ARGUMENT, "rewrite over the input: %s", ogi_last_error());
    checks += 5;
}

int main(void)
{
    const kv_rewrite_options fixed40 = {.max_cache_len = 40};
    const kv_rewrite_options window8 = {.sliding_window = 8};
    const kv_case cases[] = {
        {"tiny/llama-dynamo-op23", fixed40, 0, {0}, 24, 0},
        {"tiny/llama-dynamo-op23", fixed40, 0, {3, 4}, 8, 0},
        {"tiny/mistral-dynamo-op23", fixed40, 0, {0}, 24, 0},
        {"tiny/mistral-dynamo-op23", window8, 0, {0}, 24, 0},
        {"tiny/mistral-dynamo-op23", window8, 6, {0}, 24, 0},
        {"tiny/mistral-dynamo-op23", window8, 8, {5, 10}, 16, 0},
        {"tiny/mistral-dynamo-op23",
         {.sliding_window = 8, .max_cache_len = 7},
         8,
         {2, 9, 1, 3},
         8,
         0},
        {"tiny/mistral-dynamo-op23", window8, 6, {0}, 24, 4},
        {"tiny/mistral-dynamo-op23", window8, 8, {5, 10}, 16, 3},
        {"tiny/llama-dynamo-op23", fixed40, 6, {0}, 16, 5},
        {"tiny/llama-legacy-op17", fixed40, 0, {0}, 24, 0},
        {"tiny/mistral-legacy-op17", fixed40, 0, {0}, 24, 0},
        {"tiny/mistral-legacy-op17", window8, 6, {0}, 24, 0},
        {"tiny/mistral-legacy-op17", window8, 8, {5, 10}, 16, 0},
        {"tiny/llama-dynamo-op18", fixed40, 0, {0}, 24, 0},
        {"tiny/gpt2-legacy-op17", fixed40, 0, {0}, 24, 0},
        {"docstring-llama/onnx-dynamo-op23", fixed40, 0, {0}, 24, 0},
        {"docstring-llama/onnx-legacy-op17", fixed40, 0, {0}, 24, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        kv_run_case(&cases[i]);
    kv_test_too_small();
    kv_test_bad_inputs();
    return test_finish("test_kv_rewrite", checks);
}
