/* Recurrent state in the generator, on a hybrid decoder (Attention layers
 * among CausalConvWithState + LinearAttention(gated_delta) layers, random
 * weights) that tests/genai/make_hybrid_model.py writes at test time:
 *  - the states are detected beside the KV cache;
 *  - a 200-token prompt run in one prefill gives, position by position, the
 *    logits of running it token by token with the state carried;
 *  - greedy generation is the same whole, chunked or token by token, after
 *    rewinding (into the generated text and into the prompt), and for a
 *    left-padded batch.
 * Usage: test_hybrid MODEL_DIR */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "genai/genai.h"
#include "genai/generator_internal.h"
#include "test_util.h"

enum { PROMPT = 200, NEW = 40 };

static int checks;

static ogi_generation_config greedy(int chunk)
{
    ogi_generation_config cfg = ogi_generation_default_config();
    cfg.max_new_tokens = NEW;
    cfg.n_eos_token_ids = 0; /* random weights: generate the full length */
    cfg.prefill_chunk = chunk;
    return cfg;
}

/* Greedy tokens after prompt[0..n); *out gets NEW of them. */
static ogi_status generate(ogi_pipeline *p, const int32_t *prompt, size_t n, int chunk,
                           int32_t *out)
{
    ogi_generation_config cfg = greedy(chunk);
    ogi_generator *g;
    ogi_status st = ogi_generator_create(p, &cfg, 1, &g);
    if (st != OGI_OK)
        return st;
    st = ogi_generator_append(g, 0, prompt, n);
    while (st == OGI_OK && !ogi_generator_done(g))
        st = ogi_generator_step(g);
    size_t total;
    const int32_t *ids = ogi_generator_ids(g, 0, &total);
    if (st == OGI_OK && total != n + NEW)
        st = OGI_ERR_INVALID_ARGUMENT;
    if (st == OGI_OK)
        memcpy(out, ids + n, NEW * sizeof(int32_t));
    ogi_generator_free(g);
    return st;
}

static void check_detection(const ogi_pipeline *p)
{
    const genai_io *io = &p->io;
    TEST_CHECK(io->n_layers == 1, "one attention layer, found %d", io->n_layers);
    TEST_CHECK(io->n_states == 6, "two states in each of three layers, found %d", io->n_states);
    checks += 2;
}

/* One prefill against token by token: every position's logits. */
static void check_prefill_vs_steps(ogi_pipeline *p, const int32_t *prompt)
{
    ogi_generation_config cfg = greedy(0);
    ogi_generator *whole = NULL, *steps = NULL;
    ogi_tensor *all = NULL;
    ogi_status st = ogi_generator_create(p, &cfg, 1, &whole);
    if (st == OGI_OK)
        st = ogi_generator_append(whole, 0, prompt, PROMPT);
    if (st == OGI_OK)
        st = genai_forward(whole, &all);
    if (st == OGI_OK)
        st = ogi_generator_create(p, &cfg, 1, &steps);
    TEST_CHECK(st == OGI_OK, "prefill: %s", ogi_last_error());
    checks++;
    double worst = 0;
    size_t vocab = st == OGI_OK ? (size_t)ogi_tensor_dims(all)[2] : 0;
    for (size_t t = 0; st == OGI_OK && t < PROMPT; t++) {
        ogi_tensor *one = NULL;
        st = ogi_generator_append(steps, 0, prompt + t, 1);
        if (st == OGI_OK)
            st = genai_forward(steps, &one);
        if (st != OGI_OK)
            break;
        const float *a = (const float *)ogi_tensor_data(all) + t * vocab;
        const float *b = ogi_tensor_data(one);
        for (size_t v = 0; v < vocab; v++)
            worst = fmax(worst, fabs((double)a[v] - b[v]));
        ogi_tensor_free(one);
    }
    TEST_CHECK(st == OGI_OK, "token by token: %s", ogi_last_error());
    TEST_CHECK(worst <= 1e-4, "prefill and token-by-token logits differ by %.3g", worst);
    printf("prefill of %d tokens vs token by token: max |logit difference| %.3g\n", PROMPT, worst);
    checks += 2;
    ogi_tensor_free(all);
    ogi_generator_free(whole);
    ogi_generator_free(steps);
}

static void check_generation(ogi_pipeline *p, const int32_t *prompt)
{
    int32_t whole[NEW], chunked[NEW], steps[NEW];
    ogi_status st = generate(p, prompt, PROMPT, 0, whole);
    if (st == OGI_OK)
        st = generate(p, prompt, PROMPT, 7, chunked);
    if (st == OGI_OK)
        st = generate(p, prompt, PROMPT, 1, steps);
    TEST_CHECK(st == OGI_OK, "generate: %s", ogi_last_error());
    TEST_CHECK(st != OGI_OK || memcmp(whole, chunked, sizeof(whole)) == 0,
               "prefill in chunks of 7 changes the greedy tokens");
    TEST_CHECK(st != OGI_OK || memcmp(whole, steps, sizeof(whole)) == 0,
               "token-by-token prefill changes the greedy tokens");
    checks += 3;
    int distinct = 0;
    for (int i = 0; i < NEW; i++) {
        bool seen = false;
        for (int j = 0; j < i; j++)
            seen |= whole[j] == whole[i];
        distinct += !seen;
    }
    printf("greedy: %d tokens, %d distinct, same whole / chunked / token by token\n", NEW,
           distinct);

    /* rewind into the generated tokens, then into the prompt */
    ogi_generation_config cfg = greedy(0);
    ogi_generator *g;
    st = ogi_generator_create(p, &cfg, 1, &g);
    if (st == OGI_OK)
        st = ogi_generator_append(g, 0, prompt, PROMPT);
    while (st == OGI_OK && !ogi_generator_done(g))
        st = ogi_generator_step(g);
    if (st == OGI_OK)
        st = ogi_generator_rewind(g, PROMPT + 10);
    while (st == OGI_OK && !ogi_generator_done(g))
        st = ogi_generator_step(g);
    size_t n;
    const int32_t *ids = ogi_generator_ids(g, 0, &n);
    TEST_CHECK(st == OGI_OK && n == PROMPT + NEW && memcmp(ids + PROMPT, whole, sizeof(whole)) == 0,
               "generation after rewinding to %d differs: %s", PROMPT + 10,
               st == OGI_OK ? "other tokens" : ogi_last_error());
    int32_t shorter[NEW];
    ogi_status st2 = generate(p, prompt, 150, 0, shorter);
    if (st == OGI_OK)
        st = ogi_generator_rewind(g, 150);
    while (st == OGI_OK && !ogi_generator_done(g))
        st = ogi_generator_step(g);
    ids = ogi_generator_ids(g, 0, &n);
    TEST_CHECK(st == OGI_OK && st2 == OGI_OK && n == 150 + NEW &&
                   memcmp(ids + 150, shorter, sizeof(shorter)) == 0,
               "generation after rewinding into the prompt differs from a fresh run");
    checks += 2;
    ogi_generator_free(g);
}

/* Two prompts of different lengths in one left-padded batch, chunked too. */
static void check_batch(ogi_pipeline *p, const int32_t *prompt)
{
    int32_t alone[2][NEW];
    size_t len[2] = {PROMPT, 120};
    const int32_t *start[2] = {prompt, prompt + 50};
    ogi_status st = OGI_OK;
    for (int b = 0; b < 2 && st == OGI_OK; b++)
        st = generate(p, start[b], len[b], 0, alone[b]);
    for (int chunk = 0; chunk <= 64 && st == OGI_OK; chunk += 64) {
        ogi_generation_config cfg = greedy(chunk);
        ogi_generator *g;
        st = ogi_generator_create(p, &cfg, 2, &g);
        for (int b = 0; b < 2 && st == OGI_OK; b++)
            st = ogi_generator_append(g, (size_t)b, start[b], len[b]);
        while (st == OGI_OK && !ogi_generator_done(g))
            st = ogi_generator_step(g);
        for (int b = 0; b < 2 && st == OGI_OK; b++) {
            size_t n;
            const int32_t *ids = ogi_generator_ids(g, (size_t)b, &n);
            TEST_CHECK(n == len[b] + NEW && memcmp(ids + len[b], alone[b], sizeof(alone[b])) == 0,
                       "batch (prefill chunk %d): sequence %d differs from its run alone", chunk,
                       b);
            checks++;
        }
        ogi_generator_free(g);
    }
    TEST_CHECK(st == OGI_OK, "batch: %s", ogi_last_error());
    checks++;
}

/* A state input whose shape the generator cannot allocate: a clear error. */
static void check_bad_state(const char *dir)
{
    char bad[4096];
    snprintf(bad, sizeof(bad), "%s-bad-state", dir);
    ogi_pipeline *p = NULL;
    ogi_status st = ogi_pipeline_open(bad, NULL, &p);
    const char *msg = st != OGI_OK ? ogi_last_error() : "";
    TEST_CHECK(st == OGI_ERR_UNSUPPORTED && strstr(msg, "past_key_values.0.conv_state") != NULL,
               "symbolic state dimension: status %d, '%s'", (int)st, msg);
    printf("symbolic state dimension: %s\n", msg);
    checks++;
    ogi_pipeline_free(p);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: test_hybrid MODEL_DIR\n");
        return 2;
    }
    ogi_pipeline_options o = ogi_pipeline_default_options();
    o.threads = 2;
    ogi_pipeline *p;
    if (ogi_pipeline_open(argv[1], &o, &p) != OGI_OK) {
        fprintf(stderr, "%s: %s\n", argv[1], ogi_last_error());
        return 1;
    }
    char path[4096];
    snprintf(path, sizeof(path), "%s/models/docstring-llama/heldout_docstrings.txt",
             test_shared_dir());
    size_t len;
    char *text = test_read_file(path, &len);
    int32_t *prompt = NULL;
    size_t n = 0;
    TEST_CHECK(text != NULL &&
                   ogi_tokenizer_encode(ogi_pipeline_tokenizer(p), text, len, 0, &prompt, &n) ==
                       OGI_OK &&
                   n >= PROMPT + 50,
               "could not tokenize %s", path);
    checks++;
    if (n >= PROMPT + 50) {
        check_detection(p);
        check_prefill_vs_steps(p, prompt);
        check_generation(p, prompt);
        check_batch(p, prompt);
    }
    ogi_free(prompt);
    free(text);
    ogi_pipeline_free(p);
    check_bad_state(argv[1]);
    return test_finish("test_hybrid", checks);
}
