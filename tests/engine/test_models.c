/* Runs real exported decoder models (Optimum I/O contract) on the native
 * engine: prefill logits against transformers' golden values, and one decode
 * step with the presents fed back as past, against a run without past. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

enum { MODEL_MAX_IO = 128 };

typedef struct model_run {
    int n_in;
    const char *names[MODEL_MAX_IO];
    ogi_tensor *tensors[MODEL_MAX_IO];
} model_run;

static void model_run_free(model_run *r)
{
    for (int i = 0; i < r->n_in; i++)
        ogi_tensor_free(r->tensors[i]);
    r->n_in = 0;
}

static void model_run_add(model_run *r, const char *name, ogi_tensor *t)
{
    r->names[r->n_in] = name;
    r->tensors[r->n_in++] = t;
}

/* Inputs for tokens ids[0..n) after `past` cached positions. past_from: the
 * previous run's outputs (NULL for an empty cache). */
static void model_inputs(ogi_session *s, const int64_t *ids, int64_t n, int64_t past,
                         ogi_tensor **past_from, model_run *r)
{
    int64_t pos[512], ones[512];
    for (int64_t i = 0; i < n + past; i++) {
        pos[i] = past + i;
        ones[i] = 1;
    }
    for (size_t i = 0; i < ogi_session_input_count(s); i++) {
        const char *name = ogi_session_input_name(s, i);
        int64_t dims[OGI_MAX_RANK];
        int rank;
        ogi_dtype dtype;
        ogi_session_input_info(s, i, &dtype, &rank, dims);
        if (strcmp(name, "input_ids") == 0) {
            model_run_add(r, name, test_tensor_i64(2, (int64_t[]){1, n}, ids));
        } else if (strcmp(name, "attention_mask") == 0) {
            model_run_add(r, name, test_tensor_i64(2, (int64_t[]){1, n + past}, ones));
        } else if (strcmp(name, "position_ids") == 0) {
            model_run_add(r, name, test_tensor_i64(2, (int64_t[]){1, n}, pos));
        } else if (strncmp(name, "past_key_values.", 16) == 0) {
            if (past_from != NULL) {
                /* present.N.key of the previous run is output 1 + (index - 3) */
                char want[256];
                snprintf(want, sizeof(want), "present.%s", name + 16);
                for (size_t o = 0; o < ogi_session_output_count(s); o++)
                    if (strcmp(ogi_session_output_name(s, o), want) == 0)
                        model_run_add(r, name, past_from[o]), past_from[o] = NULL;
            } else {
                model_run_add(r, name,
                              test_tensor_f32(4, (int64_t[]){1, dims[1], 0, dims[3]}, NULL));
            }
        }
    }
}

static ogi_status model_run_all(ogi_session *s, model_run *r, ogi_tensor **outs)
{
    const char *out_names[MODEL_MAX_IO];
    size_t n_out = ogi_session_output_count(s);
    for (size_t o = 0; o < n_out; o++)
        out_names[o] = ogi_session_output_name(s, o);
    return ogi_session_run(s, (size_t)r->n_in, r->names, (const ogi_tensor *const *)r->tensors,
                           n_out, out_names, outs);
}

static int64_t model_argmax(const float *row, int64_t n)
{
    int64_t best = 0;
    for (int64_t i = 1; i < n; i++)
        if (row[i] > row[best])
            best = i;
    return best;
}

static double model_max_diff(const float *a, const float *b, int64_t n)
{
    double worst = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= worst))
            worst = isnan(d) ? INFINITY : d;
    }
    return worst;
}

static void model_free_outputs(ogi_tensor **outs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        ogi_tensor_free(outs[i]);
}

static int model_test(const char *dir)
{
    int checks = 0;
    char path[4200];
    snprintf(path, sizeof(path), "%s/golden.json", dir);
    json_error_t jerr;
    json_t *golden = json_load_file(path, 0, &jerr);
    TEST_CHECK(golden != NULL, "%s: %s", path, jerr.text);
    checks++;
    if (golden == NULL)
        return checks;
    json_t *prompt = json_object_get(json_object_get(golden, "greedy"), "prompt");
    json_t *output = json_object_get(json_object_get(golden, "greedy"), "output");
    if (prompt == NULL) { /* docstring-llama: the first of its prompts */
        json_t *prompts = json_object_get(golden, "prompts");
        json_t *first = json_is_array(prompts) ? json_array_get(prompts, 0) : NULL;
        prompt = json_object_get(first, "prompt_ids");
        output = json_object_get(first, "greedy_ids");
    }
    int64_t ids[512];
    int64_t n = 0;
    for (size_t i = 0; i < json_array_size(prompt) && n < 500; i++)
        ids[n++] = json_integer_value(json_array_get(prompt, i));
    TEST_CHECK(n > 0, "%s: no prompt in golden.json", dir);
    checks++;

    snprintf(path, sizeof(path), "%s/model.onnx", dir);
    ogi_session *s;
    ogi_status st = ogi_session_open(path, NULL, &s);
    TEST_CHECK(st == OGI_OK, "open %s: %s", path, ogi_last_error());
    checks++;
    if (st != OGI_OK || n == 0) {
        json_decref(golden);
        return checks;
    }
    size_t n_out = ogi_session_output_count(s);
    ogi_tensor *prefill[MODEL_MAX_IO] = {0}, *step[MODEL_MAX_IO] = {0}, *full[MODEL_MAX_IO] = {0};
    model_run r = {0};
    model_inputs(s, ids, n, 0, NULL, &r);
    st = model_run_all(s, &r, prefill);
    model_run_free(&r);
    TEST_CHECK(st == OGI_OK, "prefill %s: %s", dir, ogi_last_error());
    checks++;
    if (st == OGI_OK) {
        const float *logits = ogi_tensor_data(prefill[0]);
        int64_t vocab = ogi_tensor_dims(prefill[0])[2];
        snprintf(path, sizeof(path), "%s/prefill_logits.npy", dir);
        float *want;
        int rank;
        int64_t dims[OGI_MAX_RANK];
        FILE *probe = fopen(path, "rb");
        if (probe != NULL) {
            fclose(probe);
            bool loaded = test_load_npy_f32(path, &want, &rank, dims);
            TEST_CHECK(loaded && rank == 2 && dims[0] == n && dims[1] == vocab,
                       "%s: unexpected golden logits", path);
            checks++;
            if (loaded) {
                double diff = model_max_diff(logits, want, n * vocab);
                TEST_CHECK(diff <= 1e-4, "%s: prefill logits differ by %g (> 1e-4)", dir, diff);
                printf("%s: prefill max |diff| vs transformers = %.3g\n", dir, diff);
                checks++;
                free(want);
            }
        }
        int64_t next = model_argmax(logits + (n - 1) * vocab, vocab);
        if (json_array_size(output) > 0) {
            TEST_CHECK(next == json_integer_value(json_array_get(output, 0)),
                       "%s: first greedy token %lld, golden %lld", dir, (long long)next,
                       (long long)json_integer_value(json_array_get(output, 0)));
            checks++;
        }
        /* one decode step with the cache fed back ... */
        model_inputs(s, &next, 1, n, prefill, &r);
        st = model_run_all(s, &r, step);
        model_run_free(&r);
        TEST_CHECK(st == OGI_OK, "decode %s: %s", dir, ogi_last_error());
        checks++;
        /* ... against the prompt plus that token without cache */
        ids[n] = next;
        model_inputs(s, ids, n + 1, 0, NULL, &r);
        ogi_status st2 = model_run_all(s, &r, full);
        model_run_free(&r);
        TEST_CHECK(st2 == OGI_OK, "full %s: %s", dir, ogi_last_error());
        checks++;
        if (st == OGI_OK && st2 == OGI_OK) {
            const float *a = ogi_tensor_data(step[0]);
            const float *b = (const float *)ogi_tensor_data(full[0]) + n * vocab;
            double diff = model_max_diff(a, b, vocab);
            TEST_CHECK(diff <= 1e-4, "%s: decode-step logits differ from the no-cache run by %g",
                       dir, diff);
            printf("%s: decode step vs no-cache max |diff| = %.3g\n", dir, diff);
            checks++;
            int64_t k = ogi_tensor_dims(step[1])[2];
            TEST_CHECK(k == n + 1, "%s: present length %lld, expected %lld", dir, (long long)k,
                       (long long)(n + 1));
            checks++;
        }
    }
    model_free_outputs(prefill, n_out);
    model_free_outputs(step, n_out);
    model_free_outputs(full, n_out);
    ogi_session_free(s);
    json_decref(golden);
    return checks;
}

/* Logits of a prefill of ids[0..n) and of one decode step after it. */
static ogi_status model_prefill_step(ogi_session *s, const int64_t *ids, int64_t n,
                                     ogi_tensor **prefill, ogi_tensor **step)
{
    model_run r = {0};
    model_inputs(s, ids, n, 0, NULL, &r);
    ogi_status st = model_run_all(s, &r, prefill);
    model_run_free(&r);
    if (st != OGI_OK)
        return st;
    int64_t next = ids[n];
    model_inputs(s, &next, 1, n, prefill, &r);
    st = model_run_all(s, &r, step);
    model_run_free(&r);
    return st;
}

/* The weights packed into panels at load (the default) give the very same
 * logits as the mapped layout (pack_weights = 0), for a prefill of 40
 * tokens (the packed GEMM) and a decode step (the small-m kernel): both
 * kernels sum in the same order whichever layout they read. */
static int model_test_packing(const char *dir)
{
    int checks = 0;
    char path[4200];
    snprintf(path, sizeof(path), "%s/model.onnx", dir);
    int64_t ids[41];
    for (int i = 0; i < 41; i++)
        ids[i] = 1 + (i * 37) % 97;
    ogi_session *s[2] = {NULL, NULL};
    ogi_tensor *prefill[2][MODEL_MAX_IO] = {{0}}, *step[2][MODEL_MAX_IO] = {{0}};
    bool ran = true;
    for (int packed = 0; packed < 2; packed++) {
        ogi_session_options o = ogi_session_default_options();
        o.threads = 2;
        o.pack_weights = packed;
        ogi_status st = ogi_session_open(path, &o, &s[packed]);
        if (st == OGI_OK)
            st = model_prefill_step(s[packed], ids, 40, prefill[packed], step[packed]);
        TEST_CHECK(st == OGI_OK, "%s (pack_weights %d): %s", dir, packed, ogi_last_error());
        checks++;
        ran = ran && st == OGI_OK;
    }
    if (ran) {
        ogi_tensor *pairs[2][2] = {{prefill[0][0], prefill[1][0]}, {step[0][0], step[1][0]}};
        for (int i = 0; i < 2; i++) {
            size_t bytes = ogi_tensor_nbytes(pairs[i][0]);
            TEST_CHECK(
                bytes == ogi_tensor_nbytes(pairs[i][1]) &&
                    memcmp(ogi_tensor_data(pairs[i][0]), ogi_tensor_data(pairs[i][1]), bytes) == 0,
                "%s: %s logits differ with the weights packed", dir,
                i == 0 ? "prefill" : "decode-step");
            checks++;
        }
        printf("%s: logits identical with and without packed weights\n", dir);
    }
    for (int packed = 0; packed < 2; packed++) {
        size_t n_out = s[packed] ? ogi_session_output_count(s[packed]) : 0;
        model_free_outputs(prefill[packed], n_out);
        model_free_outputs(step[packed], n_out);
        ogi_session_free(s[packed]);
    }
    return checks;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: test_models MODEL_DIR (relative to the shared folder)...\n");
        return 2;
    }
    int checks = 0;
    for (int i = 1; i < argc; i++) {
        char dir[4096];
        snprintf(dir, sizeof(dir), "%s/%s", test_shared_dir(), argv[i]);
        checks += model_test(dir);
        checks += model_test_packing(dir);
    }
    return test_finish("test_models", checks);
}
