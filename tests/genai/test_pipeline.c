/* The GenAI interface against the reference: transformers' greedy goldens
 * for every shared model (token ids, left-padded batches, text), perplexity
 * windows, rewind without recomputing the prompt, seeded sampling that does
 * not depend on the thread count, chat, memory growth, and bad input. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test_util.h"

static int checks = 0;

static json_t *load_golden(const char *dir, const char *name)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    json_error_t err;
    json_t *j = json_load_file(path, 0, &err);
    TEST_CHECK(j != NULL, "%s: %s", path, err.text);
    checks++;
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

/* pack_weights: the native session's panels (1, the default) or the
 * mapped weights (0); the goldens must hold either way. */
static ogi_pipeline *open_model_packed(const char *dir, int threads, int pack_weights)
{
    ogi_pipeline_options o = ogi_pipeline_default_options();
    o.threads = threads;
    o.pack_weights = pack_weights;
    ogi_pipeline *p = NULL;
    ogi_status st = ogi_pipeline_open(dir, &o, &p);
    TEST_CHECK(st == OGI_OK, "open %s: %s", dir, ogi_last_error());
    checks++;
    return p;
}

static ogi_pipeline *open_model(const char *dir, int threads)
{
    return open_model_packed(dir, threads, 1);
}

static ogi_generation_config greedy(const ogi_pipeline *p, int max_new)
{
    ogi_generation_config c = ogi_pipeline_generation_config(p);
    c.do_sample = 0;
    c.max_new_tokens = max_new;
    return c;
}

/* Tiny models: 24 greedy ids, and the left-padded batch in one generator. */
static void test_tiny(const char *name)
{
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s/models/tiny/%s", test_shared_dir(), name);
    json_t *golden = load_golden(dir, "golden.json");
    ogi_pipeline *p = open_model(dir, 0);
    if (golden == NULL || p == NULL)
        goto done;
    int32_t prompt[64], want[64];
    const json_t *g = json_object_get(golden, "greedy");
    size_t np = json_ids(json_object_get(g, "prompt"), prompt, 64);
    size_t nw = json_ids(json_object_get(g, "output"), want, 64);
    ogi_generation_config cfg = greedy(p, (int)nw);
    ogi_result r;
    ogi_status st = ogi_generate_ids(p, prompt, np, &cfg, NULL, NULL, &r);
    TEST_CHECK(st == OGI_OK && same_ids(r.ids, r.n_ids, want, nw), "%s: greedy ids differ (%s)",
               name, ogi_last_error());
    TEST_CHECK(ogi_pipeline_static_kv_cache(p), "%s: the KV cache is not static", name);
    checks += 2;
    ogi_result_clear(&r);

    /* the same with the presents fed back as past (no rewrite) */
    ogi_pipeline_options concat = ogi_pipeline_default_options();
    concat.static_kv_cache = 0;
    ogi_pipeline *pc = NULL;
    st = ogi_pipeline_open(dir, &concat, &pc);
    if (st == OGI_OK)
        st = ogi_generate_ids(pc, prompt, np, &cfg, NULL, NULL, &r);
    TEST_CHECK(st == OGI_OK && !ogi_pipeline_static_kv_cache(pc) &&
                   same_ids(r.ids, r.n_ids, want, nw),
               "%s: concat-style cache: %s", name, ogi_last_error());
    checks++;
    if (st == OGI_OK)
        ogi_result_clear(&r);
    ogi_pipeline_free(pc);

    const json_t *lp = json_object_get(golden, "greedy_batch_leftpad");
    ogi_generator *gen = NULL;
    st = ogi_generator_create(p, &cfg, 2, &gen);
    int32_t outs[2][64];
    size_t n_out[2];
    for (size_t b = 0; b < 2 && st == OGI_OK; b++) {
        int32_t ids[64];
        size_t n = json_ids(json_array_get(json_object_get(lp, "prompts"), b), ids, 64);
        n_out[b] = json_ids(json_array_get(json_object_get(lp, "outputs"), b), outs[b], 64);
        st = ogi_generator_append(gen, b, ids, n);
    }
    for (int step = 0; st == OGI_OK && step < 16; step++)
        st = ogi_generator_step(gen);
    TEST_CHECK(st == OGI_OK, "%s: batch: %s", name, ogi_last_error());
    checks++;
    for (size_t b = 0; b < 2 && st == OGI_OK; b++) {
        size_t n;
        const int32_t *ids = ogi_generator_ids(gen, b, &n);
        size_t gen_n = ogi_generator_new_tokens(gen, b);
        TEST_CHECK(same_ids(ids + n - gen_n, gen_n, outs[b], n_out[b]),
                   "%s: left-padded batch sequence %zu differs", name, b);
        checks++;
    }
    ogi_generator_free(gen);
done:
    ogi_pipeline_free(p);
    json_decref(golden);
}

/* docstring-llama: the four golden prompts as text. */
static void test_docstring(const char *export, int pack_weights)
{
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s/models/docstring-llama/%s", test_shared_dir(), export);
    json_t *golden = load_golden(dir, "golden.json");
    ogi_pipeline *p = open_model_packed(dir, 0, pack_weights);
    if (golden == NULL || p == NULL)
        goto done;
    const json_t *prompts = json_object_get(golden, "prompts");
    for (size_t i = 0; i < json_array_size(prompts); i++) {
        const json_t *e = json_array_get(prompts, i);
        int32_t want[64];
        size_t nw = json_ids(json_object_get(e, "greedy_ids"), want, 64);
        const char *text = json_string_value(json_object_get(e, "greedy_text"));
        ogi_generation_config cfg = greedy(p, 40);
        ogi_result r;
        ogi_status st =
            ogi_generate(p, json_string_value(json_object_get(e, "prompt")), &cfg, NULL, NULL, &r);
        TEST_CHECK(st == OGI_OK, "%s prompt %zu: %s", export, i, ogi_last_error());
        checks++;
        if (st != OGI_OK)
            continue;
        TEST_CHECK(same_ids(r.ids, r.n_ids, want, nw), "%s prompt %zu: ids differ (%zu vs %zu)",
                   export, i, r.n_ids, nw);
        TEST_CHECK(text != NULL && strcmp(r.text, text) == 0, "%s prompt %zu: text '%s'", export, i,
                   r.text);
        checks += 2;
        ogi_result_clear(&r);
    }
done:
    ogi_pipeline_free(p);
    json_decref(golden);
}

static void test_perplexity(const char *export)
{
    char dir[4096], path[4096];
    snprintf(dir, sizeof(dir), "%s/models/docstring-llama/%s", test_shared_dir(), export);
    snprintf(path, sizeof(path), "%s/models/docstring-llama", test_shared_dir());
    json_t *golden = load_golden(path, "perplexity_golden.json");
    ogi_pipeline *p = open_model(dir, 0);
    snprintf(path, sizeof(path), "%s/models/docstring-llama/heldout_docstrings.txt",
             test_shared_dir());
    size_t len;
    char *text = test_read_file(path, &len);
    if (golden == NULL || p == NULL || text == NULL)
        goto done;
    int32_t *ids;
    size_t n;
    ogi_status st = ogi_tokenizer_encode(ogi_pipeline_tokenizer(p), text, len, 0, &ids, &n);
    TEST_CHECK(st == OGI_OK, "encode: %s", ogi_last_error());
    checks++;
    if (st != OGI_OK)
        goto done;
    int32_t want[1100];
    size_t nw = json_ids(json_object_get(golden, "ids_first_1026"), want, 1100);
    TEST_CHECK(n >= nw && same_ids(ids, nw, want, nw), "token ids of the file differ");
    checks++;
    const json_t *windows = json_object_get(golden, "windows");
    for (size_t i = 0; i < json_array_size(windows); i++) {
        const json_t *w = json_array_get(windows, i);
        size_t start = (size_t)json_integer_value(json_object_get(w, "start"));
        size_t length = (size_t)json_integer_value(json_object_get(w, "length"));
        double want_ce = json_number_value(json_object_get(w, "mean_cross_entropy"));
        double ce = NAN;
        st = start + length <= n ? ogi_pipeline_score(p, ids + start, length, &ce)
                                 : OGI_ERR_INVALID_ARGUMENT;
        TEST_CHECK(st == OGI_OK && fabs(ce - want_ce) <= 1e-3,
                   "%s window %zu+%zu: cross-entropy %.6f, golden %.6f", export, start, length, ce,
                   want_ce);
        printf("%s window %zu+%zu: mean CE %.6f (golden %.6f)\n", export, start, length, ce,
               want_ce);
        checks++;
    }
    ogi_free(ids);
done:
    free(text);
    ogi_pipeline_free(p);
    json_decref(golden);
}

static ogi_stream_action collect(void *user, const char *piece, size_t len)
{
    strncat((char *)user, piece, len < 4000 - strlen(user) ? len : 0);
    return OGI_STREAM_CONTINUE;
}

static ogi_stream_action cancel_at_once(void *user, const char *piece, size_t len)
{
    (void)user, (void)piece, (void)len;
    return OGI_STREAM_CANCEL;
}

#ifndef __SANITIZE_ADDRESS__
static size_t rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, rss = 0;
    if (f != NULL) {
        if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
            rss = 0;
        fclose(f);
    }
    return (size_t)rss * (size_t)sysconf(_SC_PAGESIZE);
}
#endif

static void test_generator_behaviour(void)
{
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s/models/docstring-llama/onnx-dynamo-op23", test_shared_dir());
    ogi_pipeline *p1 = open_model(dir, 1), *p2 = open_model(dir, 2);
    if (p1 == NULL || p2 == NULL)
        goto done;
    const ogi_tokenizer *tok = ogi_pipeline_tokenizer(p1);
    int32_t *prompt;
    size_t np;
    ogi_tokenizer_encode(tok, "Return the number of", 20, 0, &prompt, &np);

    /* rewind: 20 sampled tokens, back to the prompt, the same 20 again */
    ogi_generation_config cfg = ogi_pipeline_generation_config(p1);
    cfg.do_sample = 1;
    cfg.seed = 1234;
    cfg.max_new_tokens = 20;
    cfg.n_eos_token_ids = 0;
    ogi_generator *g;
    ogi_status st = ogi_generator_create(p1, &cfg, 1, &g);
    if (st == OGI_OK)
        st = ogi_generator_append(g, 0, prompt, np);
    while (st == OGI_OK && !ogi_generator_done(g))
        st = ogi_generator_step(g);
    int32_t first[64];
    size_t n;
    const int32_t *ids = ogi_generator_ids(g, 0, &n);
    memcpy(first, ids, n * sizeof(int32_t));
    size_t runs = ogi_generator_model_runs(g), computed = ogi_generator_tokens_computed(g);
    if (st == OGI_OK)
        st = ogi_generator_rewind(g, np);
    while (st == OGI_OK && !ogi_generator_done(g))
        st = ogi_generator_step(g);
    size_t n2;
    ids = ogi_generator_ids(g, 0, &n2);
    TEST_CHECK(st == OGI_OK && n == np + 20 && same_ids(ids, n2, first, n),
               "rewind: the second generation differs (%s)", ogi_last_error());
    TEST_CHECK(ogi_generator_model_runs(g) - runs == 20 &&
                   ogi_generator_tokens_computed(g) - computed == 20,
               "rewind recomputed the prompt: %zu runs, %zu tokens",
               ogi_generator_model_runs(g) - runs, ogi_generator_tokens_computed(g) - computed);
    checks += 2;
    ogi_generator_free(g);

    /* the same seed gives the same text with 1 and 2 threads */
    ogi_result r1, r2;
    cfg.max_new_tokens = 30;
    st = ogi_generate_ids(p1, prompt, np, &cfg, NULL, NULL, &r1);
    ogi_status st2 = ogi_generate_ids(p2, prompt, np, &cfg, NULL, NULL, &r2);
    TEST_CHECK(st == OGI_OK && st2 == OGI_OK && same_ids(r1.ids, r1.n_ids, r2.ids, r2.n_ids),
               "sampling differs between 1 and 2 threads");
    checks++;
    ogi_result_clear(&r1);
    ogi_result_clear(&r2);

    /* stop strings end generation and are not in the text; streaming adds up */
    ogi_generation_config gcfg = greedy(p1, 40);
    const char *stops[1] = {"roots"};
    gcfg.stop_strings = stops;
    gcfg.n_stop_strings = 1;
    char streamed[4000] = "";
    st = ogi_generate(p1, "Return the number of", &gcfg, collect, streamed, &r1);
    TEST_CHECK(st == OGI_OK && r1.finish == OGI_FINISH_STOP_STRING &&
                   strstr(r1.text, "roots") == NULL && strcmp(streamed, r1.text) == 0,
               "stop string: finish %s, text '%s', streamed '%s'",
               ogi_finish_reason_name(r1.finish), r1.text, streamed);
    checks++;
    ogi_result_clear(&r1);

    /* a callback that cancels */
    st = ogi_generate(p1, "Return the number of", &gcfg, cancel_at_once, NULL, &r1);
    TEST_CHECK(st == OGI_OK && r1.finish == OGI_FINISH_CANCELLED && r1.n_ids >= 1, "cancel: %s",
               ogi_finish_reason_name(r1.finish));
    checks++;
    ogi_result_clear(&r1);

    /* max_new_tokens 0: nothing generated, no error */
    gcfg = greedy(p1, 0);
    st = ogi_generate(p1, "Return", &gcfg, NULL, NULL, &r1);
    TEST_CHECK(st == OGI_OK && r1.n_ids == 0, "max_new_tokens 0: %s", ogi_last_error());
    checks++;
    ogi_result_clear(&r1);

    /* invalid UTF-8 in the prompt is replaced, not fatal */
    gcfg = greedy(p1, 3);
    st = ogi_generate(p1, "Return \xff\xfe the", &gcfg, NULL, NULL, &r1);
    TEST_CHECK(st == OGI_OK, "invalid UTF-8 prompt: %s", ogi_last_error());
    checks++;
    ogi_result_clear(&r1);

    /* bad configs: clear errors */
    ogi_generation_config bad = greedy(p1, 5);
    bad.do_sample = 1;
    bad.temperature = NAN;
    st = ogi_generate_ids(p1, prompt, np, &bad, NULL, NULL, &r1);
    TEST_CHECK(st == OGI_ERR_INVALID_ARGUMENT && strstr(ogi_last_error(), "temperature"),
               "NaN temperature: %s", ogi_last_error());
    bad = greedy(p1, 5);
    bad.do_sample = 1;
    bad.top_p = 1.5f;
    st = ogi_generate_ids(p1, prompt, np, &bad, NULL, NULL, &r1);
    TEST_CHECK(st == OGI_ERR_INVALID_ARGUMENT && strstr(ogi_last_error(), "top_p"), "top_p 1.5: %s",
               ogi_last_error());
    checks += 2;

    /* a prompt longer than the context */
    size_t long_n = ogi_pipeline_context_length(p1) + 5;
    int32_t *long_ids = calloc(long_n, sizeof(int32_t));
    st = ogi_generate_ids(p1, long_ids, long_n, &gcfg, NULL, NULL, &r1);
    TEST_CHECK(st == OGI_ERR_INVALID_ARGUMENT && strstr(ogi_last_error(), "context"),
               "long prompt: %s", ogi_last_error());
    checks++;
    free(long_ids);

    /* memory: 400 generated tokens grow RSS by the KV cache and a little more
     * (not measurable under AddressSanitizer, whose quarantine keeps freed
     * memory resident) */
#ifndef __SANITIZE_ADDRESS__
    gcfg = greedy(p1, 400);
    gcfg.n_eos_token_ids = 0;
    st = ogi_generate_ids(p1, prompt, np, &gcfg, NULL, NULL, &r1); /* warm up */
    ogi_result_clear(&r1);
    size_t before = rss_bytes();
    st = ogi_generate_ids(p1, prompt, np, &gcfg, NULL, NULL, &r1);
    size_t after = rss_bytes();
    /* 4 layers x key+value x 4 heads x 32 dims x float32, per position */
    size_t kv = (size_t)(np + 400) * 4 * 2 * 4 * 32 * 4;
    long grown = (long)after - (long)before;
    printf("memory: RSS grew %ld bytes generating 400 tokens; KV cache %zu bytes\n", grown, kv);
    TEST_CHECK(st == OGI_OK && r1.n_ids == 400 && grown <= (long)(kv + (4u << 20)),
               "RSS grew %ld bytes, KV %zu", grown, kv);
    checks++;
    ogi_result_clear(&r1);
#else
    printf("memory: not measured under AddressSanitizer\n");
#endif
    ogi_free(prompt);
done:
    ogi_pipeline_free(p1);
    ogi_pipeline_free(p2);
}

/* Beam search: one beam is greedy; with four, the log-probabilities the
 * search reports (through reordered KV caches) are those of a fresh scoring
 * pass over the final sequence, and the best hypothesis scores at least as
 * well as the other returned ones. */
static void test_beam_search(void)
{
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s/models/docstring-llama/onnx-dynamo-op23", test_shared_dir());
    ogi_pipeline *p = open_model(dir, 0);
    if (p == NULL)
        return;
    int32_t *prompt;
    size_t np;
    ogi_tokenizer_encode(ogi_pipeline_tokenizer(p), "Return the number of", 20, 0, &prompt, &np);
    ogi_generation_config cfg = greedy(p, 20);
    cfg.n_eos_token_ids = 0;
    ogi_result g1, b1;
    ogi_status st = ogi_generate_ids(p, prompt, np, &cfg, NULL, NULL, &g1);
    cfg.num_beams = 1;
    if (st == OGI_OK)
        st = ogi_generate_ids(p, prompt, np, &cfg, NULL, NULL, &b1);
    TEST_CHECK(st == OGI_OK && same_ids(g1.ids, g1.n_ids, b1.ids, b1.n_ids),
               "one beam differs from greedy");
    checks++;
    cfg.num_beams = 4;
    cfg.num_return_sequences = 4;
    cfg.length_penalty = 1.0f;
    ogi_generator *gen = NULL;
    if (st == OGI_OK)
        st = ogi_generator_create(p, &cfg, 1, &gen);
    if (st == OGI_OK)
        st = ogi_generator_append(gen, 0, prompt, np);
    while (st == OGI_OK && !ogi_generator_done(gen))
        st = ogi_generator_step(gen);
    TEST_CHECK(st == OGI_OK, "beam search: %s", ogi_last_error());
    checks++;
    double best = 0;
    for (size_t r = 0; r < 4 && st == OGI_OK; r++) {
        size_t n, n_lp;
        const int32_t *ids = ogi_generator_ids(gen, r, &n);
        const float *lp = ogi_generator_logprobs(gen, r, &n_lp);
        double reported = 0, ce_all = 0, ce_prompt = 0;
        for (size_t i = 0; i < n_lp; i++)
            reported += lp[i];
        st = ogi_pipeline_score(p, ids, n, &ce_all);
        if (st == OGI_OK)
            st = ogi_pipeline_score(p, prompt, np, &ce_prompt);
        double rescored = -(ce_all * (double)(n - 1) - ce_prompt * (double)(np - 1));
        TEST_CHECK(st == OGI_OK && n_lp == 20 && fabs(reported - rescored) < 1e-3,
                   "hypothesis %zu: reported log-prob %.5f, rescored %.5f", r, reported, rescored);
        TEST_CHECK(r == 0 || reported <= best + 1e-6, "hypothesis %zu beats the best", r);
        checks += 2;
        if (r == 0) {
            best = reported;
            printf("beam search (4 beams): best log-prob %.4f\n", reported);
        }
    }
    ogi_generator_free(gen);
    ogi_result_clear(&g1);
    ogi_result_clear(&b1);
    ogi_free(prompt);
    ogi_pipeline_free(p);
}

static void test_chat(void)
{
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s/models/docstring-llama/onnx-dynamo-op23", test_shared_dir());
    ogi_pipeline *p = open_model(dir, 0);
    if (p == NULL)
        return;
    ogi_chat *chat;
    ogi_status st = ogi_chat_create(p, NULL, &chat);
    ogi_generation_config cfg = greedy(p, 24);
    char streamed[4000] = "";
    ogi_result r;
    if (st == OGI_OK)
        st = ogi_chat_send(chat, "Return the number of elements.", &cfg, collect, streamed, &r);
    TEST_CHECK(st == OGI_OK && r.n_ids > 0 && strcmp(streamed, r.text) == 0, "chat turn 1: %s",
               ogi_last_error());
    checks++;
    size_t first_prompt = r.metrics.prompt_tokens;
    if (st == OGI_OK)
        ogi_result_clear(&r);
    streamed[0] = '\0';
    if (st == OGI_OK)
        st = ogi_chat_send(chat, "And the size?", &cfg, collect, streamed, &r);
    TEST_CHECK(st == OGI_OK && r.metrics.prompt_tokens > first_prompt, "chat turn 2: %s",
               ogi_last_error());
    checks++;
    printf("chat: turn 1 prompt %zu tokens; turn 2 conversation %zu tokens: '%s'\n", first_prompt,
           st == OGI_OK ? r.metrics.prompt_tokens : 0, st == OGI_OK ? r.text : "");
    if (st == OGI_OK)
        ogi_result_clear(&r);
    ogi_chat_free(chat);
    ogi_pipeline_free(p);
}

static void test_bad_dirs(void)
{
    ogi_pipeline *p = NULL;
    ogi_status st = ogi_pipeline_open("/nonexistent-model-dir", NULL, &p);
    TEST_CHECK(st == OGI_ERR_NOT_FOUND, "missing dir: %s", ogi_last_error());
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s/tokenizers/llama2", test_shared_dir());
    st = ogi_pipeline_open(dir, NULL, &p);
    TEST_CHECK(st == OGI_ERR_NOT_FOUND && strstr(ogi_last_error(), "model.onnx"),
               "no model.onnx: %s", ogi_last_error());
    /* a graph that is not a decoder: a conformance test model */
    char tmp[] = "/tmp/ogi-not-decoder-XXXXXX";
    if (mkdtemp(tmp) != NULL) {
        char src[4096], dst[4200];
        snprintf(src, sizeof(src), "%s/onnx-backend-tests/node/test_relu/model.onnx",
                 test_shared_dir());
        snprintf(dst, sizeof(dst), "%s/model.onnx", tmp);
        size_t len;
        char *bytes = test_read_file(src, &len);
        if (bytes != NULL)
            test_write_file(dst, bytes, len);
        free(bytes);
        st = ogi_pipeline_open(tmp, NULL, &p);
        TEST_CHECK(st == OGI_ERR_INVALID_MODEL && strstr(ogi_last_error(), "not a decoder"),
                   "not a decoder: %s", ogi_last_error());
        unlink(dst);
        rmdir(tmp);
    }
    checks += 3;
}

int main(void)
{
    const char *tiny[] = {"llama-dynamo-op23", "llama-dynamo-op18",   "llama-legacy-op17",
                          "gpt2-legacy-op17",  "mistral-legacy-op17", "mistral-dynamo-op23"};
    for (size_t i = 0; i < sizeof(tiny) / sizeof(tiny[0]); i++)
        test_tiny(tiny[i]);
    for (int pack = 1; pack >= 0; pack--) {
        test_docstring("onnx-dynamo-op23", pack);
        test_docstring("onnx-legacy-op17", pack);
    }
    test_perplexity("onnx-dynamo-op23");
    test_perplexity("onnx-legacy-op17");
    test_generator_behaviour();
    test_beam_search();
    test_chat();
    test_bad_dirs();
    return test_finish("test_pipeline", checks);
}
