/* Tests of the sampler chain (src/genai/sampler.c): greedy argmax and its
 * ties, each logits processor against a hand-computed result, the order of
 * the chain, seeded determinism, chi-square goodness-of-fit of 100,000 draws
 * against a plain reference distribution (temperature, top-k, top-p, min-p),
 * the fast filters against a full-sort reference on large vocabs, and
 * config validation. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "genai/sampler.h"
#include "test_util.h"

static int checks;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        checks++;                                                                                  \
        TEST_CHECK(cond, __VA_ARGS__);                                                             \
    } while (0)

#define LEN(a) (sizeof(a) / sizeof((a)[0]))

static ogi_generation_config sampling_config(float temperature, int top_k, float top_p, float min_p)
{
    ogi_generation_config cfg = ogi_generation_default_config();
    cfg.do_sample = 1;
    cfg.temperature = temperature;
    cfg.top_k = top_k;
    cfg.top_p = top_p;
    cfg.min_p = min_p;
    return cfg;
}

/* One step with a fresh sampler: logits are processed in place. */
static ogi_status step(const ogi_generation_config *cfg, float *logits, size_t vocab,
                       const int32_t *history, size_t n_history, size_t n_prompt, int32_t *token,
                       float *logprob, sampler_logprob *top)
{
    sampler *s;
    ogi_status st = sampler_create(cfg, 0, &s);
    if (st != OGI_OK)
        return st;
    st = sampler_next(s, logits, vocab, history, n_history, n_prompt, token, logprob, top);
    sampler_free(s);
    return st;
}

static double log_sum_exp(const float *x, size_t n)
{
    double max = -INFINITY, sum = 0;
    for (size_t i = 0; i < n; i++)
        max = x[i] > max ? x[i] : max;
    for (size_t i = 0; i < n; i++)
        sum += exp(x[i] - max);
    return max + log(sum);
}

static bool near(double a, double b)
{
    return fabs(a - b) <= 1e-5 * (1 + fabs(b));
}

static void test_default_config(void)
{
    ogi_generation_config cfg = ogi_generation_default_config();
    CHECK(cfg.max_new_tokens == 20 && cfg.min_new_tokens == 0 && cfg.do_sample == 0,
          "max_new_tokens %d min_new_tokens %d do_sample %d", cfg.max_new_tokens,
          cfg.min_new_tokens, cfg.do_sample);
    CHECK(cfg.temperature == 1.0f && cfg.top_k == 50 && cfg.top_p == 1.0f && cfg.min_p == 0.0f,
          "temperature %g top_k %d top_p %g min_p %g", cfg.temperature, cfg.top_k, cfg.top_p,
          cfg.min_p);
    CHECK(cfg.repetition_penalty == 1.0f && cfg.presence_penalty == 0.0f &&
              cfg.frequency_penalty == 0.0f && cfg.no_repeat_ngram_size == 0,
          "penalties %g %g %g %d", cfg.repetition_penalty, cfg.presence_penalty,
          cfg.frequency_penalty, cfg.no_repeat_ngram_size);
    CHECK(cfg.n_eos_token_ids == 0 && cfg.n_stop_strings == 0 && cfg.stop_strings == NULL &&
              cfg.seed == 0 && cfg.logprobs == 0 && cfg.processor == NULL,
          "eos %d stop %zu seed %llu logprobs %d", cfg.n_eos_token_ids, cfg.n_stop_strings,
          (unsigned long long)cfg.seed, cfg.logprobs);
    CHECK(cfg.num_beams == 1 && cfg.num_return_sequences == 1 && cfg.length_penalty == 1.0f,
          "num_beams %d num_return_sequences %d length_penalty %g", cfg.num_beams,
          cfg.num_return_sequences, cfg.length_penalty);
    CHECK(sampler_check_config(&cfg) == OGI_OK, "default config rejected: %s", ogi_last_error());
}

/* ---- Greedy ------------------------------------------------------------------ */

static void test_greedy(void)
{
    ogi_generation_config cfg = ogi_generation_default_config();
    cfg.logprobs = 3;
    const float orig[] = {0.5f, 2.0f, -1.0f, 2.0f, 1.9f};
    float logits[LEN(orig)];
    memcpy(logits, orig, sizeof(orig));
    int32_t token = -1;
    float lp;
    sampler_logprob top[3];
    ogi_status st = step(&cfg, logits, LEN(orig), NULL, 0, 0, &token, &lp, top);
    double lse = log_sum_exp(orig, LEN(orig));
    CHECK(st == OGI_OK && token == 1, "greedy tie: token %d, want 1 (%s)", token, ogi_last_error());
    CHECK(near(lp, 2.0 - lse), "greedy logprob %g, want %g", lp, 2.0 - lse);
    CHECK(top[0].token == 1 && top[1].token == 3 && top[2].token == 4,
          "top logprobs %d %d %d, want 1 3 4", top[0].token, top[1].token, top[2].token);
    CHECK(near(top[2].logprob, 1.9 - lse), "top[2] logprob %g, want %g", top[2].logprob, 1.9 - lse);
    /* greedy leaves the sampling warpers (the default top_k 50) alone */
    CHECK(memcmp(logits, orig, sizeof(orig)) == 0, "greedy changed the logits");

    /* fewer tokens than logprobs asked for */
    float two[] = {-1.0f, -INFINITY};
    st = step(&cfg, two, 2, NULL, 0, 0, &token, &lp, top);
    CHECK(st == OGI_OK && token == 0 && near(lp, 0.0), "token %d logprob %g", token, lp);
    CHECK(top[1].token == 1 && top[1].logprob == -INFINITY && top[2].token == -1 &&
              top[2].logprob == -INFINITY,
          "filler entries (%d, %g) (%d, %g)", top[1].token, top[1].logprob, top[2].token,
          top[2].logprob);

    /* temperature 0 is fine when not sampling */
    cfg = ogi_generation_default_config();
    cfg.temperature = 0.0f;
    float three[] = {1.0f, 3.0f, 3.0f};
    st = step(&cfg, three, 3, NULL, 0, 0, &token, &lp, NULL);
    CHECK(st == OGI_OK && token == 1, "temperature 0 greedy: %s token %d", ogi_status_name(st),
          token);

    /* a large vocab against a plain argmax */
    size_t vocab = 150001;
    float *big = malloc(vocab * sizeof(float));
    uint64_t rng = 7;
    for (size_t v = 0; v < vocab; v++)
        big[v] = (float)(test_rand(&rng) % 1000) / 64.0f;
    size_t want = 0;
    for (size_t v = 0; v < vocab; v++)
        want = big[v] > big[want] ? v : want;
    st = step(&cfg, big, vocab, NULL, 0, 0, &token, &lp, NULL);
    CHECK(st == OGI_OK && token == (int32_t)want, "150k argmax %d, want %zu", token, want);

    /* the log-probability over whole vocabularies (a vectorised exp-sum in
     * blocks of 256) against the plain double loop: lengths around the
     * vector width and the block, spread logits, some banned (-inf) */
    const size_t lengths[] = {1, 15, 16, 17, 255, 256, 257, 1000, 49152, vocab};
    for (size_t c = 0; c < LEN(lengths); c++) {
        size_t n = lengths[c];
        for (size_t v = 0; v < n; v++)
            big[v] = test_rand(&rng) % 17 == 0 ? -INFINITY
                                               : (float)(test_rand(&rng) % 4001) / 100.0f - 30.0f;
        big[n / 2] = 12.5f; /* the argmax, never banned */
        double lse = log_sum_exp(big, n);
        st = step(&cfg, big, n, NULL, 0, 0, &token, &lp, NULL);
        CHECK(st == OGI_OK && token == (int32_t)(n / 2) && near(lp, 12.5 - lse),
              "vocab %zu: token %d logprob %.9g, want %zu and %.9g", n, token, lp, n / 2,
              12.5 - lse);
    }
    free(big);
}

/* ---- Logits processors ------------------------------------------------------- */

static void check_logits(const char *what, const float *got, const float *want, size_t n)
{
    for (size_t i = 0; i < n; i++)
        CHECK(got[i] == want[i] || (isinf(got[i]) && isinf(want[i]) && got[i] == want[i]),
              "%s: logits[%zu] = %g, want %g", what, i, got[i], want[i]);
}

static void test_repetition_penalty(void)
{
    ogi_generation_config cfg = ogi_generation_default_config();
    cfg.repetition_penalty = 2.0f;
    /* prompt tokens count too, and a repeated token is penalised once */
    float logits[] = {2.0f, -2.0f, 1.0f, 0.5f, 3.0f};
    const int32_t history[] = {0, 1, 1, 4};
    int32_t token;
    float lp;
    ogi_status st = step(&cfg, logits, LEN(logits), history, LEN(history), 2, &token, &lp, NULL);
    const float want[] = {1.0f, -4.0f, 1.0f, 0.5f, 1.5f};
    CHECK(st == OGI_OK && token == 4, "token %d (%s)", token, ogi_last_error());
    check_logits("repetition_penalty 2", logits, want, LEN(want));

    cfg.repetition_penalty = 0.5f;
    float reward[] = {2.0f, -2.0f, 1.0f};
    const int32_t h2[] = {0, 1};
    step(&cfg, reward, LEN(reward), h2, LEN(h2), 0, &token, &lp, NULL);
    const float want2[] = {4.0f, -1.0f, 1.0f};
    check_logits("repetition_penalty 0.5", reward, want2, LEN(want2));
}

static void test_presence_frequency(void)
{
    ogi_generation_config cfg = ogi_generation_default_config();
    cfg.presence_penalty = 0.5f;
    cfg.frequency_penalty = 0.25f;
    float logits[] = {1.0f, 1.0f, 1.0f, 1.0f, 1.0f};
    /* the prompt's 3s are not penalised: only generated tokens are */
    const int32_t history[] = {3, 3, 0, 0, 2};
    int32_t token;
    float lp;
    ogi_status st = step(&cfg, logits, LEN(logits), history, LEN(history), 2, &token, &lp, NULL);
    const float want[] = {0.0f, 1.0f, 0.25f, 1.0f, 1.0f};
    CHECK(st == OGI_OK && token == 1, "token %d (%s)", token, ogi_last_error());
    check_logits("presence 0.5 frequency 0.25", logits, want, LEN(want));
}

static void ngram_case(int size, const int32_t *history, size_t n, size_t n_prompt,
                       const int *banned, size_t n_banned)
{
    ogi_generation_config cfg = ogi_generation_default_config();
    cfg.no_repeat_ngram_size = size;
    float logits[8], want[8];
    for (int v = 0; v < 8; v++)
        logits[v] = want[v] = (float)v * 0.1f;
    for (size_t i = 0; i < n_banned; i++)
        want[banned[i]] = -INFINITY;
    int32_t token;
    float lp;
    ogi_status st = step(&cfg, logits, 8, history, n, n_prompt, &token, &lp, NULL);
    char what[64];
    snprintf(what, sizeof(what), "no_repeat_ngram_size %d", size);
    CHECK(st == OGI_OK, "%s: %s", what, ogi_last_error());
    check_logits(what, logits, want, 8);
}

static void test_no_repeat_ngram(void)
{
    /* "1 2" was seen: after 1, 2 is banned (the prompt counts) */
    const int32_t h1[] = {1, 2, 3, 1};
    ngram_case(2, h1, LEN(h1), 3, (const int[]){2}, 1);
    const int32_t h2[] = {5, 1, 2, 5, 1, 4, 5, 1};
    ngram_case(3, h2, LEN(h2), 0, (const int[]){2, 4}, 2);
    /* size 1 bans every token seen */
    const int32_t h3[] = {0, 3, 3};
    ngram_case(1, h3, LEN(h3), 0, (const int[]){0, 3}, 2);
    /* too short a sequence for any 4-gram */
    const int32_t h4[] = {7, 7};
    ngram_case(4, h4, LEN(h4), 0, NULL, 0);
    /* "7 7 7": the last two tokens 7 7 are followed by 7 once */
    const int32_t h5[] = {7, 7, 7};
    ngram_case(3, h5, LEN(h5), 0, (const int[]){7}, 1);
}

static void test_min_new_tokens(void)
{
    ogi_generation_config cfg = ogi_generation_default_config();
    cfg.min_new_tokens = 2;
    cfg.eos_token_ids[0] = 3;
    cfg.eos_token_ids[1] = 7; /* beyond the vocab: ignored */
    cfg.n_eos_token_ids = 2;
    const int32_t history[] = {1, 2, 0, 4};
    int32_t token;
    float lp;
    float logits[] = {0.0f, 0.0f, 0.0f, 5.0f, 0.0f};
    /* one token generated: EOS is suppressed */
    ogi_status st = step(&cfg, logits, LEN(logits), history, 3, 2, &token, &lp, NULL);
    CHECK(st == OGI_OK && token == 0 && logits[3] == -INFINITY,
          "1 generated: token %d, eos logit %g (%s)", token, logits[3], ogi_last_error());
    /* two generated: allowed */
    float again[] = {0.0f, 0.0f, 0.0f, 5.0f, 0.0f};
    st = step(&cfg, again, LEN(again), history, 4, 2, &token, &lp, NULL);
    CHECK(st == OGI_OK && token == 3, "2 generated: token %d", token);
}

typedef struct processor_state {
    const int32_t *ids;
    size_t n_ids;
    int calls;
    int result;
} processor_state;

static int raise_token_1(void *user, float *logits, size_t vocab, const int32_t *ids, size_t n)
{
    processor_state *p = user;
    p->ids = ids;
    p->n_ids = n;
    p->calls++;
    if (vocab > 1)
        logits[1] = 4.0f;
    return p->result;
}

static void test_processor_and_order(void)
{
    processor_state state = {0};
    ogi_generation_config cfg = ogi_generation_default_config();
    cfg.processor = raise_token_1;
    cfg.processor_user = &state;
    cfg.repetition_penalty = 2.0f;
    float logits[] = {3.0f, 0.0f, 1.0f};
    const int32_t history[] = {2, 1};
    int32_t token;
    float lp;
    ogi_status st = step(&cfg, logits, LEN(logits), history, LEN(history), 1, &token, &lp, NULL);
    /* the caller's processor runs first: its 4 is then penalised to 2 */
    CHECK(st == OGI_OK && state.calls == 1 && state.ids == history && state.n_ids == 2,
          "processor calls %d, n_ids %zu", state.calls, state.n_ids);
    const float want[] = {3.0f, 2.0f, 0.5f};
    check_logits("processor then repetition_penalty", logits, want, LEN(want));

    state.result = 7;
    float again[] = {3.0f, 0.0f, 1.0f};
    st = step(&cfg, again, LEN(again), history, LEN(history), 1, &token, &lp, NULL);
    CHECK(st == OGI_ERR_RUNTIME && strstr(ogi_last_error(), "7") != NULL,
          "failing processor: %s '%s'", ogi_status_name(st), ogi_last_error());

    /* repetition penalty before presence: 3 / 2 - 1, not (3 - 1) / 2 */
    cfg = ogi_generation_default_config();
    cfg.repetition_penalty = 2.0f;
    cfg.presence_penalty = 1.0f;
    float pair[] = {3.0f, 0.0f};
    const int32_t gen[] = {0};
    step(&cfg, pair, 2, gen, 1, 0, &token, &lp, NULL);
    CHECK(pair[0] == 0.5f, "repetition then presence: %g, want 0.5", pair[0]);
}

/* ---- Sampling warpers on small hand-computed cases --------------------------- */

/* Runs a sampling step and checks which tokens survive (finite in place). */
static void kept_case(const char *what, const ogi_generation_config *cfg, const float *orig,
                      size_t n, const char *want_kept)
{
    float logits[16];
    memcpy(logits, orig, n * sizeof(float));
    int32_t token = -1;
    float lp;
    ogi_status st = step(cfg, logits, n, NULL, 0, 0, &token, &lp, NULL);
    CHECK(st == OGI_OK, "%s: %s", what, ogi_last_error());
    char got[17] = {0};
    for (size_t v = 0; v < n; v++)
        got[v] = isfinite(logits[v]) ? '1' : '0';
    CHECK(strcmp(got, want_kept) == 0, "%s: kept %s, want %s", what, got, want_kept);
    CHECK(token >= 0 && (size_t)token < n && want_kept[token] == '1', "%s: drew %d", what, token);
}

static void test_warpers(void)
{
    const float probs[] = {0.5f, 0.3f, 0.15f, 0.05f};
    float lg[4];
    for (int i = 0; i < 4; i++)
        lg[i] = logf(probs[i]);
    ogi_generation_config c;

    c = sampling_config(1.0f, 2, 1.0f, 0.0f);
    kept_case("top_k 2", &c, lg, 4, "1100");
    const float tied[] = {3.0f, 2.0f, 2.0f, 1.0f, 0.0f};
    kept_case("top_k 2, tie at the 2nd", &c, tied, 5, "11100");
    const float tied_low[] = {2.0f, 3.0f, 2.0f, 2.0f, 1.0f};
    kept_case("top_k 2, ties on both sides of the 2nd", &c, tied_low, 5, "11110");
    c = sampling_config(1.0f, 3, 1.0f, 0.0f);
    const float masked[] = {1.0f, -INFINITY, 2.0f, -INFINITY};
    kept_case("top_k 3 of 2 finite", &c, masked, 4, "1010");
    c = sampling_config(1.0f, 9, 1.0f, 0.0f);
    kept_case("top_k 9 > vocab", &c, lg, 4, "1111");
    c = sampling_config(1.0f, 1, 1.0f, 0.0f);
    kept_case("top_k 1", &c, tied, 5, "10000");

    c = sampling_config(1.0f, 0, 0.75f, 0.0f);
    kept_case("top_p 0.75", &c, lg, 4, "1100");
    c.top_p = 0.85f;
    kept_case("top_p 0.85", &c, lg, 4, "1110");
    c.top_p = 0.4f;
    kept_case("top_p 0.4", &c, lg, 4, "1000");
    c.top_p = 1.0f;
    kept_case("top_p 1", &c, lg, 4, "1111");

    c = sampling_config(1.0f, 0, 1.0f, 0.2f);
    kept_case("min_p 0.2", &c, lg, 4, "1110");
    c.min_p = 0.4f;
    kept_case("min_p 0.4", &c, lg, 4, "1100");
    /* token 2 is 0.3 times as probable as token 0 */
    c.min_p = 0.29f;
    kept_case("min_p 0.29", &c, lg, 4, "1110");
    c.min_p = 0.31f;
    kept_case("min_p 0.31", &c, lg, 4, "1100");

    /* top_p sees top_k's renormalised distribution: {.625, .375} */
    c = sampling_config(1.0f, 2, 0.6f, 0.0f);
    kept_case("top_k 2 then top_p 0.6", &c, lg, 4, "1000");
    /* top_p sees the tempered distribution: T 0.5 gives {.685, .247, ...} */
    c = sampling_config(0.5f, 0, 0.6f, 0.0f);
    kept_case("temperature 0.5 then top_p 0.6", &c, lg, 4, "1000");

    /* temperature divides in place; logprobs of the final distribution */
    c = sampling_config(2.0f, 0, 1.0f, 0.0f);
    float pair[] = {2.0f, 4.0f};
    int32_t token;
    float lp;
    step(&c, pair, 2, NULL, 0, 0, &token, &lp, NULL);
    CHECK(pair[0] == 1.0f && pair[1] == 2.0f, "temperature 2: %g %g", pair[0], pair[1]);

    c = sampling_config(1.0f, 2, 1.0f, 0.0f);
    c.logprobs = 3;
    sampler_logprob top[3];
    for (uint64_t seed = 0; seed < 8; seed++) {
        float x[4];
        memcpy(x, lg, sizeof(x));
        c.seed = seed;
        step(&c, x, 4, NULL, 0, 0, &token, &lp, top);
        double want = token == 0 ? log(0.625) : log(0.375);
        CHECK(near(lp, want), "seed %llu: token %d logprob %g, want %g", (unsigned long long)seed,
              token, lp, want);
        CHECK(top[0].token == 0 && near(top[0].logprob, log(0.625)) && top[1].token == 1 &&
                  near(top[1].logprob, log(0.375)) && top[2].token == 2 &&
                  top[2].logprob == -INFINITY,
              "top logprobs (%d %g) (%d %g) (%d %g)", top[0].token, top[0].logprob, top[1].token,
              top[1].logprob, top[2].token, top[2].logprob);
    }
}

/* ---- Determinism --------------------------------------------------------------- */

static void draw_sequence(uint64_t seed, uint64_t stream, const float *orig, size_t vocab,
                          int32_t *out, size_t n)
{
    ogi_generation_config cfg = sampling_config(0.9f, 0, 0.95f, 0.0f);
    cfg.seed = seed;
    cfg.repetition_penalty = 1.1f;
    sampler *s;
    if (sampler_create(&cfg, stream, &s) != OGI_OK)
        return;
    float *logits = malloc(vocab * sizeof(float));
    for (size_t i = 0; i < n; i++) {
        float lp;
        memcpy(logits, orig, vocab * sizeof(float));
        if (sampler_next(s, logits, vocab, out, i, 0, &out[i], &lp, NULL) != OGI_OK)
            out[i] = -1;
    }
    free(logits);
    sampler_free(s);
}

static void test_determinism(void)
{
    enum { VOCAB = 1000, N = 200 };
    float *logits = malloc(VOCAB * sizeof(float));
    uint64_t rng = 11;
    for (size_t v = 0; v < VOCAB; v++)
        logits[v] = (float)(test_rand(&rng) % 4096) / 1024.0f;
    static int32_t a[N], b[N], other_seed[N], stream1[N];
    draw_sequence(1234, 0, logits, VOCAB, a, N);
    draw_sequence(1234, 0, logits, VOCAB, b, N);
    draw_sequence(1235, 0, logits, VOCAB, other_seed, N);
    draw_sequence(1234, 1, logits, VOCAB, stream1, N);
    CHECK(memcmp(a, b, sizeof(a)) == 0, "same seed, different tokens");
    CHECK(memcmp(a, other_seed, sizeof(a)) != 0, "seeds 1234 and 1235 drew the same tokens");
    CHECK(memcmp(a, stream1, sizeof(a)) != 0, "streams 0 and 1 drew the same tokens");
    /* documented: stream b samples as seed + b */
    CHECK(memcmp(other_seed, stream1, sizeof(a)) == 0, "seed 1234 stream 1 != seed 1235");
    int distinct = 0;
    for (int i = 0; i < N; i++)
        distinct += a[i] >= 0 && (i == 0 || a[i] != a[i - 1]);
    CHECK(distinct > N / 2, "only %d token changes in %d draws", distinct, N);
    free(logits);
}

/* ---- Statistics ------------------------------------------------------------------ */

/* Keys for compare_index: the reference sorts indices by value, best first,
 * ties by index. */
static const double *sort_keys;

static int compare_index(const void *pa, const void *pb)
{
    int a = *(const int *)pa, b = *(const int *)pb;
    if (sort_keys[a] != sort_keys[b])
        return sort_keys[a] > sort_keys[b] ? -1 : 1;
    return a < b ? -1 : 1;
}

static void softmax_kept(const double *x, const bool *keep, size_t n, double *p)
{
    double max = -INFINITY, sum = 0;
    for (size_t i = 0; i < n; i++)
        if (keep[i] && x[i] > max)
            max = x[i];
    for (size_t i = 0; i < n; i++) {
        p[i] = keep[i] ? exp(x[i] - max) : 0.0;
        sum += p[i];
    }
    for (size_t i = 0; i < n; i++)
        p[i] /= sum;
}

/* The plain reference: temperature, top-k (ties with the k-th kept), top-p,
 * min-p, each on the distribution the previous one left; p gets the final
 * probabilities. Sorts everything. */
static void reference(const float *logits, size_t n, const ogi_generation_config *cfg, double *p,
                      bool *keep)
{
    double *x = malloc(n * sizeof(double));
    int *order = malloc(n * sizeof(int));
    for (size_t i = 0; i < n; i++) {
        float scaled = logits[i] / cfg->temperature; /* in float, as the sampler */
        x[i] = scaled;
        keep[i] = true;
        order[i] = (int)i;
    }
    sort_keys = x;
    qsort(order, n, sizeof(int), compare_index);
    if (cfg->top_k > 0 && (size_t)cfg->top_k < n)
        for (size_t i = 0; i < n; i++)
            keep[i] = x[i] >= x[order[cfg->top_k - 1]];
    if (cfg->top_p < 1.0f) {
        softmax_kept(x, keep, n, p);
        double before = 0;
        for (size_t r = 0; r < n; r++) {
            int i = order[r];
            if (before >= cfg->top_p)
                keep[i] = false;
            before += p[i];
        }
    }
    if (cfg->min_p > 0.0f) {
        softmax_kept(x, keep, n, p);
        double top = p[order[0]];
        for (size_t i = 0; i < n; i++)
            keep[i] = keep[i] && p[i] >= cfg->min_p * top;
    }
    softmax_kept(x, keep, n, p);
    free(order);
    free(x);
}

/* Chi-square critical values at p = 0.001, by degrees of freedom (1..16),
 * from a standard table. */
static const double chi2_critical_001[] = {
    0,      10.828, 13.816, 16.266, 18.467, 20.515, 22.458, 24.322, 26.124,
    27.877, 29.588, 31.264, 32.909, 34.528, 36.123, 37.697, 39.252,
};

enum { STAT_VOCAB = 16, STAT_DRAWS = 100000 };

static const float stat_logits[STAT_VOCAB] = {
    1.2f,  -0.3f, 2.5f, 0.0f,  1.9f, -1.1f, 0.7f,  2.2f,
    -2.0f, 0.4f,  1.5f, -0.6f, 1.0f, 2.4f,  -0.9f, 0.1f,
};

/* The chi-square statistic of counts against p (categories of p > 0), with
 * the degrees of freedom; counts in categories of p == 0 are errors. */
static double chi_square(const int *counts, const double *p, int *df, int *impossible)
{
    double chi2 = 0;
    int categories = 0;
    *impossible = 0;
    for (int v = 0; v < STAT_VOCAB; v++) {
        if (p[v] == 0) {
            *impossible += counts[v];
            continue;
        }
        double expected = p[v] * STAT_DRAWS;
        chi2 += (counts[v] - expected) * (counts[v] - expected) / expected;
        categories++;
    }
    *df = categories - 1;
    return chi2;
}

static void draw_counts(const ogi_generation_config *cfg, int *counts)
{
    sampler *s;
    memset(counts, 0, STAT_VOCAB * sizeof(int));
    if (sampler_create(cfg, 0, &s) != OGI_OK)
        return;
    for (int i = 0; i < STAT_DRAWS; i++) {
        float logits[STAT_VOCAB], lp;
        int32_t token;
        memcpy(logits, stat_logits, sizeof(logits));
        if (sampler_next(s, logits, STAT_VOCAB, NULL, 0, 0, &token, &lp, NULL) == OGI_OK)
            counts[token]++;
    }
    sampler_free(s);
}

static void goodness_of_fit(const char *what, const ogi_generation_config *cfg)
{
    double p[STAT_VOCAB];
    bool keep[STAT_VOCAB];
    int counts[STAT_VOCAB], df, impossible;
    reference(stat_logits, STAT_VOCAB, cfg, p, keep);
    draw_counts(cfg, counts);
    double chi2 = chi_square(counts, p, &df, &impossible);
    CHECK(impossible == 0, "%s: %d draws of filtered tokens", what, impossible);
    CHECK(df >= 1 && df < (int)LEN(chi2_critical_001), "%s: %d degrees of freedom", what, df);
    if (df >= 1 && df < (int)LEN(chi2_critical_001))
        CHECK(chi2 < chi2_critical_001[df], "%s: chi-square %.2f >= %.3f (df %d)", what, chi2,
              chi2_critical_001[df], df);
}

static void test_statistics(void)
{
    ogi_generation_config c = sampling_config(0.7f, 0, 1.0f, 0.0f);
    goodness_of_fit("temperature 0.7", &c);
    c = sampling_config(1.5f, 0, 1.0f, 0.0f);
    goodness_of_fit("temperature 1.5", &c);
    c = sampling_config(1.0f, 5, 1.0f, 0.0f);
    goodness_of_fit("top_k 5", &c);
    c = sampling_config(1.0f, 0, 0.8f, 0.0f);
    goodness_of_fit("top_p 0.8", &c);
    c = sampling_config(1.0f, 0, 1.0f, 0.1f);
    goodness_of_fit("min_p 0.1", &c);
    c = sampling_config(0.8f, 10, 0.9f, 0.05f);
    c.seed = 99;
    goodness_of_fit("temperature 0.8, top_k 10, top_p 0.9, min_p 0.05", &c);

    /* the test has power: T 0.7 draws do not fit the T 1.5 distribution */
    double p[STAT_VOCAB];
    bool keep[STAT_VOCAB];
    int counts[STAT_VOCAB], df, impossible;
    c = sampling_config(1.5f, 0, 1.0f, 0.0f);
    reference(stat_logits, STAT_VOCAB, &c, p, keep);
    c.temperature = 0.7f;
    draw_counts(&c, counts);
    double chi2 = chi_square(counts, p, &df, &impossible);
    CHECK(chi2 > chi2_critical_001[df], "T 0.7 draws fit T 1.5: chi-square %.2f", chi2);
}

/* ---- The fast filters against the full-sort reference ---------------------------- */

static void filters_case(size_t vocab, int quantized, const ogi_generation_config *cfg,
                         uint64_t *rng)
{
    float *logits = malloc(vocab * sizeof(float));
    double *p = malloc(vocab * sizeof(double));
    bool *keep = malloc(vocab * sizeof(bool));
    for (size_t v = 0; v < vocab; v++) {
        uint64_t r = test_rand(rng);
        /* quantized logits tie a lot: ids must break them */
        logits[v] = quantized ? (float)(r % 24) * 0.25f : (float)(r % 1000000) * 1e-5f * 12.0f;
    }
    reference(logits, vocab, cfg, p, keep);
    int32_t token;
    float lp;
    ogi_status st = step(cfg, logits, vocab, NULL, 0, 0, &token, &lp, NULL);
    size_t mismatches = 0, first = 0;
    for (size_t v = 0; v < vocab; v++) {
        if (keep[v] != (bool)isfinite(logits[v]) && mismatches++ == 0)
            first = v;
    }
    CHECK(st == OGI_OK && mismatches == 0 && keep[token],
          "vocab %zu%s top_k %d top_p %g min_p %g T %g: %zu mismatches (first %zu), token %d",
          vocab, quantized ? " quantized" : "", cfg->top_k, cfg->top_p, cfg->min_p,
          cfg->temperature, mismatches, first, token);
    CHECK(near(lp, log(p[token])), "vocab %zu: logprob %g, want %g", vocab, lp, log(p[token]));
    free(keep);
    free(p);
    free(logits);
}

static void test_filters_large(void)
{
    static const size_t vocabs[] = {1, 2, 7, 1000, 150000};
    static const int top_ks[] = {0, 1, 40, 2000};
    static const float top_ps[] = {1.0f, 0.9f, 0.5f};
    uint64_t rng = 3;
    for (size_t i = 0; i < LEN(vocabs); i++) {
        for (size_t k = 0; k < LEN(top_ks); k++) {
            /* keep the full-sort reference cheap on the largest vocab */
            size_t n_p = vocabs[i] > 1000 ? 2 : LEN(top_ps);
            for (size_t j = 0; j < n_p; j++) {
                float min_p = (i + k + j) % 2 ? 0.05f : 0.0f;
                float temperature = (k + j) % 2 ? 0.8f : 1.0f;
                ogi_generation_config c = sampling_config(temperature, top_ks[k], top_ps[j], min_p);
                c.seed = i * 100 + k * 10 + j;
                filters_case(vocabs[i], (int)((i + j) % 2), &c, &rng);
            }
        }
    }
}

/* ---- Errors ----------------------------------------------------------------------- */

static void expect_invalid(ogi_generation_config cfg, const char *field)
{
    ogi_status st = sampler_check_config(&cfg);
    CHECK(st == OGI_ERR_INVALID_ARGUMENT && strstr(ogi_last_error(), field) != NULL, "%s: %s '%s'",
          field, ogi_status_name(st), ogi_last_error());
    sampler *s = (sampler *)&cfg; /* any non-NULL value: it must come back NULL */
    st = sampler_create(&cfg, 0, &s);
    CHECK(st == OGI_ERR_INVALID_ARGUMENT && s == NULL, "%s: sampler_create gave %s", field,
          ogi_status_name(st));
}

static void expect_valid(ogi_generation_config cfg, const char *what)
{
    ogi_status st = sampler_check_config(&cfg);
    CHECK(st == OGI_OK, "%s rejected: %s", what, ogi_last_error());
}

static void test_config_errors(void)
{
    const ogi_generation_config base = ogi_generation_default_config();
    ogi_generation_config c;
    c = sampling_config(NAN, 0, 1.0f, 0.0f);
    expect_invalid(c, "temperature");
    c.temperature = 0.0f;
    expect_invalid(c, "temperature");
    c.temperature = -1.0f;
    expect_invalid(c, "temperature");
    c = base;
    c.temperature = NAN;
    expect_invalid(c, "temperature");
    c = base;
    c.temperature = 0.0f;
    expect_valid(c, "greedy temperature 0");

    c = base;
    c.top_p = 0.0f;
    expect_invalid(c, "top_p");
    c.top_p = 1.01f;
    expect_invalid(c, "top_p");
    c.top_p = NAN;
    expect_invalid(c, "top_p");
    c = base;
    c.min_p = 1.0f;
    expect_invalid(c, "min_p");
    c.min_p = -0.1f;
    expect_invalid(c, "min_p");
    c.min_p = NAN;
    expect_invalid(c, "min_p");
    c = base;
    c.top_k = -1;
    expect_invalid(c, "top_k");

    c = base;
    c.repetition_penalty = 0.0f;
    expect_invalid(c, "repetition_penalty");
    c.repetition_penalty = -1.0f;
    expect_invalid(c, "repetition_penalty");
    c.repetition_penalty = NAN;
    expect_invalid(c, "repetition_penalty");
    c = base;
    c.presence_penalty = NAN;
    expect_invalid(c, "presence_penalty");
    c = base;
    c.frequency_penalty = INFINITY;
    expect_invalid(c, "frequency_penalty");
    c = base;
    c.no_repeat_ngram_size = -2;
    expect_invalid(c, "no_repeat_ngram_size");

    c = base;
    c.num_beams = 0;
    expect_invalid(c, "num_beams");
    c = base;
    c.num_return_sequences = 2;
    expect_invalid(c, "num_return_sequences");
    c.num_return_sequences = 0;
    expect_invalid(c, "num_return_sequences");
    c.num_beams = 4;
    c.num_return_sequences = 4;
    expect_valid(c, "4 of 4 beams");

    c = base;
    c.max_new_tokens = -1;
    expect_invalid(c, "max_new_tokens");
    c = base;
    c.min_new_tokens = -1;
    expect_invalid(c, "min_new_tokens");
    c = base;
    c.n_eos_token_ids = OGI_MAX_EOS_IDS + 1;
    expect_invalid(c, "n_eos_token_ids");
    c.n_eos_token_ids = -1;
    expect_invalid(c, "n_eos_token_ids");
    c.n_eos_token_ids = 1;
    c.eos_token_ids[0] = -5;
    expect_invalid(c, "eos_token_ids[0]");
    c = base;
    c.n_eos_token_ids = OGI_MAX_EOS_IDS;
    expect_valid(c, "OGI_MAX_EOS_IDS eos ids");

    c = base;
    c.logprobs = 21;
    expect_invalid(c, "logprobs");
    c.logprobs = -1;
    expect_invalid(c, "logprobs");
    c.logprobs = 20;
    expect_valid(c, "logprobs 20");

    c = base;
    c.n_stop_strings = 1;
    expect_invalid(c, "stop_strings");
    const char *const stops[] = {"</s>", ""};
    c.stop_strings = stops;
    expect_valid(c, "one stop string");
    c.n_stop_strings = 2;
    expect_invalid(c, "stop_strings[1]");

    ogi_status st = sampler_check_config(NULL);
    CHECK(st == OGI_ERR_INVALID_ARGUMENT, "NULL config: %s", ogi_status_name(st));
}

static void test_step_errors(void)
{
    ogi_generation_config cfg = ogi_generation_default_config();
    int32_t token;
    float lp;
    float bad[] = {0.0f, 1.0f, NAN};
    ogi_status st = step(&cfg, bad, 3, NULL, 0, 0, &token, &lp, NULL);
    CHECK(st == OGI_ERR_RUNTIME && strstr(ogi_last_error(), "logits[2]") != NULL,
          "NaN logit: %s '%s'", ogi_status_name(st), ogi_last_error());
    /* +inf, and a NaN with the sign bit set, in a vocab past the vector width */
    float wide[40];
    for (int special = 0; special < 2; special++) {
        for (int i = 0; i < 40; i++)
            wide[i] = (float)i / 8.0f;
        wide[33] = special ? -NAN : INFINITY;
        st = step(&cfg, wide, 40, NULL, 0, 0, &token, &lp, NULL);
        CHECK(st == OGI_ERR_RUNTIME && strstr(ogi_last_error(), "logits[33]") != NULL,
              "%s logit: %s '%s'", special ? "-NaN" : "+inf", ogi_status_name(st),
              ogi_last_error());
    }

    float banned[] = {-INFINITY, -INFINITY};
    st = step(&cfg, banned, 2, NULL, 0, 0, &token, &lp, NULL);
    CHECK(st == OGI_ERR_RUNTIME, "all banned, greedy: %s", ogi_status_name(st));
    ogi_generation_config sampling = sampling_config(1.0f, 0, 1.0f, 0.0f);
    float banned2[] = {-INFINITY, -INFINITY};
    st = step(&sampling, banned2, 2, NULL, 0, 0, &token, &lp, NULL);
    CHECK(st == OGI_ERR_RUNTIME, "all banned, sampling: %s", ogi_status_name(st));

    float ok[] = {0.0f, 1.0f};
    const int32_t outside[] = {1, 2};
    st = step(&cfg, ok, 2, outside, 2, 0, &token, &lp, NULL);
    CHECK(st == OGI_ERR_INVALID_ARGUMENT && strstr(ogi_last_error(), "history[1]") != NULL,
          "history outside the vocab: %s '%s'", ogi_status_name(st), ogi_last_error());
    const int32_t inside[] = {1};
    st = step(&cfg, ok, 2, inside, 1, 2, &token, &lp, NULL);
    CHECK(st == OGI_ERR_INVALID_ARGUMENT, "n_prompt > n_history: %s", ogi_status_name(st));

    sampler_free(NULL);
}

int main(void)
{
    test_default_config();
    test_greedy();
    test_repetition_penalty();
    test_presence_frequency();
    test_no_repeat_ngram();
    test_min_new_tokens();
    test_processor_and_order();
    test_warpers();
    test_determinism();
    test_statistics();
    test_filters_large();
    test_config_errors();
    test_step_errors();
    return test_finish("test_sampler", checks);
}
