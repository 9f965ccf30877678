/* `ogi run`, `ogi chat` and `ogi perplexity`: the pipeline from the shell. */
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "ogi.h"

enum { RUN_MAX_STOPS = 16 };

typedef struct run_args {
    const char *model_dir;
    const char *prompt;
    const char *prompt_ids;
    const char *system;
    ogi_pipeline_options pipe;
    ogi_generation_config cfg;
    const char *stops[RUN_MAX_STOPS];
    int n_eos;
    int32_t eos[OGI_MAX_EOS_IDS];
    bool print_ids, json;
} run_args;

/* Options shared by run and chat: name, whether it takes a value, help. */
static const struct {
    const char *name;
    const char *help;
} run_options[] = {
    {"--max-new-tokens N", "generate at most N tokens"},
    {"--min-new-tokens N", "ignore EOS and stop strings before N tokens"},
    {"--greedy", "pick the most likely token (do_sample off)"},
    {"--do-sample", "sample (temperature, top-k, top-p, min-p apply)"},
    {"--temperature T", "sampling temperature"},
    {"--top-k K", "keep the K most likely tokens (0: off)"},
    {"--top-p P", "nucleus sampling (1: off)"},
    {"--min-p P", "drop tokens below P times the best one's probability"},
    {"--repetition-penalty R", "CTRL-style penalty for tokens already present (1: off)"},
    {"--presence-penalty X", "OpenAI-style presence penalty"},
    {"--frequency-penalty X", "OpenAI-style frequency penalty"},
    {"--no-repeat-ngram-size N", "never repeat an n-gram of this size"},
    {"--eos-token-id ID", "end generation at ID (repeatable; replaces the model's)"},
    {"--stop TEXT", "end generation when TEXT appears (repeatable; not printed)"},
    {"--seed S", "random seed (same seed, same text)"},
    {"--num-beams N", "beam search width"},
    {"--logprobs N", "report the top N log-probabilities (--json)"},
    {"--prefill-chunk N", "run the prompt N tokens at a time (0: all at once)"},
    {"--backend NAME", "execution backend: native (default) or ort"},
    {"--ort-library PATH", "ONNX Runtime library for --backend ort"},
    {"--providers LIST", "ONNX Runtime execution providers, e.g. cuda,cpu"},
    {"--graph-optimization N", "ONNX Runtime optimisation level (0, 1, 2, 99)"},
    {"--threads N", "worker threads (0: one per core)"},
    {"--kv-cache-mb N", "KV cache budget in MB"},
    {"--attention exact|int8", "native Attention precision (int8: SageAttention-style Q K^T)"},
    {"--pack-weights 0|1", "native: pack MatMul weights into panels at load (1, default)"},
};

static void run_usage(FILE *f, const char *cmd)
{
    if (strcmp(cmd, "run") == 0)
        fprintf(f, "usage: ogi run MODEL_DIR (-p PROMPT | --prompt-ids 1,2,3) [options]\n\n"
                   "Streams the generated text to stdout. Defaults come from the model's\n"
                   "generation_config.json.\n\n"
                   "  -p, --prompt TEXT          the prompt\n"
                   "  --prompt-ids LIST          the prompt as comma-separated token ids\n"
                   "  --print-ids                print only the generated ids (EOS included)\n"
                   "  --json                     print one JSON object: text, ids, metrics\n");
    else
        fprintf(f, "usage: ogi chat MODEL_DIR [--system TEXT] [options]\n\n"
                   "Interactive chat through the model's chat template: type a message and\n"
                   "press Enter; an empty line or end of input quits. The conversation's KV\n"
                   "cache is reused from turn to turn.\n\n"
                   "  --system TEXT              a system message\n");
    for (size_t i = 0; i < sizeof(run_options) / sizeof(run_options[0]); i++)
        fprintf(f, "  %-26s %s\n", run_options[i].name, run_options[i].help);
}

static bool run_number(const char *s, double *out)
{
    char *end;
    errno = 0;
    *out = strtod(s, &end);
    return s[0] != '\0' && *end == '\0' && errno == 0;
}

/* Parses one option at argv[*i]; returns 0 ok, 1 unknown, 2 bad value. */
static int run_parse_option(run_args *a, int argc, char **argv, int *i)
{
    const char *opt = argv[*i];
    if (strcmp(opt, "--greedy") == 0) {
        a->cfg.do_sample = 0;
        return 0;
    }
    if (strcmp(opt, "--do-sample") == 0) {
        a->cfg.do_sample = 1;
        return 0;
    }
    if (strcmp(opt, "--print-ids") == 0 || strcmp(opt, "--json") == 0) {
        *(opt[2] == 'p' ? &a->print_ids : &a->json) = true;
        return 0;
    }
    if (*i + 1 >= argc)
        return 1;
    const char *val = argv[++*i];
    double x;
    if (strcmp(opt, "-p") == 0 || strcmp(opt, "--prompt") == 0)
        a->prompt = val;
    else if (strcmp(opt, "--prompt-ids") == 0)
        a->prompt_ids = val;
    else if (strcmp(opt, "--system") == 0)
        a->system = val;
    else if (strcmp(opt, "--backend") == 0)
        a->pipe.backend = val;
    else if (strcmp(opt, "--ort-library") == 0)
        a->pipe.ort_library = val;
    else if (strcmp(opt, "--providers") == 0)
        a->pipe.providers = val;
    else if (strcmp(opt, "--attention") == 0) {
        if (!cli_parse_attention(val, &a->pipe.attention))
            return 2;
    } else if (strcmp(opt, "--stop") == 0) {
        if (a->cfg.n_stop_strings == RUN_MAX_STOPS)
            return 2;
        a->stops[a->cfg.n_stop_strings++] = val;
    } else if (!run_number(val, &x)) {
        return 2;
    } else if (strcmp(opt, "--max-new-tokens") == 0)
        a->cfg.max_new_tokens = (int)x;
    else if (strcmp(opt, "--min-new-tokens") == 0)
        a->cfg.min_new_tokens = (int)x;
    else if (strcmp(opt, "--temperature") == 0)
        a->cfg.temperature = (float)x;
    else if (strcmp(opt, "--top-k") == 0)
        a->cfg.top_k = (int)x;
    else if (strcmp(opt, "--top-p") == 0)
        a->cfg.top_p = (float)x;
    else if (strcmp(opt, "--min-p") == 0)
        a->cfg.min_p = (float)x;
    else if (strcmp(opt, "--repetition-penalty") == 0)
        a->cfg.repetition_penalty = (float)x;
    else if (strcmp(opt, "--presence-penalty") == 0)
        a->cfg.presence_penalty = (float)x;
    else if (strcmp(opt, "--frequency-penalty") == 0)
        a->cfg.frequency_penalty = (float)x;
    else if (strcmp(opt, "--no-repeat-ngram-size") == 0)
        a->cfg.no_repeat_ngram_size = (int)x;
    else if (strcmp(opt, "--seed") == 0)
        a->cfg.seed = (uint64_t)x;
    else if (strcmp(opt, "--num-beams") == 0)
        a->cfg.num_beams = (int)x;
    else if (strcmp(opt, "--logprobs") == 0)
        a->cfg.logprobs = (int)x;
    else if (strcmp(opt, "--prefill-chunk") == 0)
        a->cfg.prefill_chunk = (int)x;
    else if (strcmp(opt, "--threads") == 0)
        a->pipe.threads = (int)x;
    else if (strcmp(opt, "--pack-weights") == 0)
        a->pipe.pack_weights = x != 0;
    else if (strcmp(opt, "--graph-optimization") == 0)
        a->pipe.graph_optimization = (int)x;
    else if (strcmp(opt, "--kv-cache-mb") == 0)
        a->pipe.kv_cache_bytes = (size_t)(x * 1e6);
    else if (strcmp(opt, "--eos-token-id") == 0) {
        if (a->n_eos == OGI_MAX_EOS_IDS)
            return 2;
        a->eos[a->n_eos++] = (int32_t)x;
    } else
        return 1;
    return 0;
}

/* The generation options are applied on top of the model's defaults: they
 * are parsed into a config filled with a sentinel pattern, and each field
 * that no longer holds the pattern was set on the command line. */
static void run_merge_field(void *dst, const void *set, const void *sentinel, size_t size)
{
    if (memcmp(set, sentinel, size) != 0)
        memcpy(dst, set, size);
}

static void run_merge(const ogi_generation_config *set, const ogi_generation_config *sentinel,
                      ogi_generation_config *cfg)
{
    const size_t fields[][2] = {
        {offsetof(ogi_generation_config, max_new_tokens), sizeof(cfg->max_new_tokens)},
        {offsetof(ogi_generation_config, min_new_tokens), sizeof(cfg->min_new_tokens)},
        {offsetof(ogi_generation_config, do_sample), sizeof(cfg->do_sample)},
        {offsetof(ogi_generation_config, temperature), sizeof(cfg->temperature)},
        {offsetof(ogi_generation_config, top_k), sizeof(cfg->top_k)},
        {offsetof(ogi_generation_config, top_p), sizeof(cfg->top_p)},
        {offsetof(ogi_generation_config, min_p), sizeof(cfg->min_p)},
        {offsetof(ogi_generation_config, repetition_penalty), sizeof(cfg->repetition_penalty)},
        {offsetof(ogi_generation_config, presence_penalty), sizeof(cfg->presence_penalty)},
        {offsetof(ogi_generation_config, frequency_penalty), sizeof(cfg->frequency_penalty)},
        {offsetof(ogi_generation_config, no_repeat_ngram_size), sizeof(cfg->no_repeat_ngram_size)},
        {offsetof(ogi_generation_config, seed), sizeof(cfg->seed)},
        {offsetof(ogi_generation_config, num_beams), sizeof(cfg->num_beams)},
        {offsetof(ogi_generation_config, logprobs), sizeof(cfg->logprobs)},
        {offsetof(ogi_generation_config, prefill_chunk), sizeof(cfg->prefill_chunk)},
    };
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
        run_merge_field((char *)cfg + fields[i][0], (const char *)set + fields[i][0],
                        (const char *)sentinel + fields[i][0], fields[i][1]);
}

static ogi_generation_config run_sentinel(void)
{
    ogi_generation_config s;
    memset(&s, 0xa5, sizeof(s)); /* a pattern no option produces by accident */
    s.n_stop_strings = 0;
    s.stop_strings = NULL;
    return s;
}

/* Parses the command line; returns 0, or the exit status to return. */
static int run_parse(run_args *a, int argc, char **argv, const char *cmd)
{
    memset(a, 0, sizeof(*a));
    a->pipe = ogi_pipeline_default_options();
    a->pipe.progress = isatty(STDERR_FILENO);
    a->cfg = run_sentinel();
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            run_usage(stdout, cmd);
            return -1;
        }
        if (argv[i][0] != '-') {
            if (a->model_dir != NULL) {
                fprintf(stderr, "ogi %s: unexpected argument '%s'\n", cmd, argv[i]);
                return 2;
            }
            a->model_dir = argv[i];
            continue;
        }
        int r = run_parse_option(a, argc, argv, &i);
        if (r != 0) {
            fprintf(stderr, "ogi %s: %s option '%s'\n\n", cmd, r == 1 ? "unknown" : "bad value for",
                    argv[i - (r == 2)]);
            run_usage(stderr, cmd);
            return 2;
        }
    }
    if (a->model_dir == NULL) {
        run_usage(stderr, cmd);
        return 2;
    }
    return 0;
}

static ogi_status run_open(run_args *a, ogi_pipeline **pipe, ogi_generation_config *cfg)
{
    ogi_status st = ogi_pipeline_open(a->model_dir, &a->pipe, pipe);
    if (st != OGI_OK)
        return st;
    *cfg = ogi_pipeline_generation_config(*pipe);
    ogi_generation_config sentinel = run_sentinel();
    run_merge(&a->cfg, &sentinel, cfg);
    cfg->stop_strings = a->stops;
    cfg->n_stop_strings = a->cfg.n_stop_strings;
    if (a->n_eos > 0) {
        memcpy(cfg->eos_token_ids, a->eos, sizeof(a->eos));
        cfg->n_eos_token_ids = a->n_eos;
    }
    return OGI_OK;
}

static ogi_stream_action run_print(void *user, const char *piece, size_t len)
{
    (void)user;
    fwrite(piece, 1, len, stdout);
    fflush(stdout);
    return OGI_STREAM_CONTINUE;
}

static int32_t *run_parse_ids(const char *list, size_t *n)
{
    size_t cap = 1;
    for (const char *p = list; *p; p++)
        cap += *p == ',';
    int32_t *ids = malloc(cap * sizeof(int32_t));
    *n = 0;
    const char *p = list;
    while (ids != NULL && *p) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || v < 0 || v > INT32_MAX || (*end != ',' && *end != '\0')) {
            free(ids);
            return NULL;
        }
        ids[(*n)++] = (int32_t)v;
        p = *end == ',' ? end + 1 : end;
    }
    return ids;
}

static void run_print_json(const ogi_result *r)
{
    json_t *ids = json_array(), *lps = json_array(), *tops = json_array();
    for (size_t i = 0; i < r->n_ids; i++) {
        json_array_append_new(ids, json_integer(r->ids[i]));
        json_array_append_new(lps, json_real(r->logprobs[i]));
        json_t *alts = json_array();
        for (int k = 0; k < r->n_top; k++) {
            const ogi_top_logprob *t = &r->top_logprobs[i * (size_t)r->n_top + (size_t)k];
            json_array_append_new(
                alts, json_pack("{s:i, s:f}", "id", t->token, "logprob", (double)t->logprob));
        }
        json_array_append_new(tops, alts);
    }
    json_t *o =
        json_pack("{s:s, s:o, s:o, s:o, s:s, s:{s:f, s:f, s:f, s:f, s:I, s:I}}", "text", r->text,
                  "ids", ids, "logprobs", lps, "top_logprobs", tops, "finish_reason",
                  ogi_finish_reason_name(r->finish), "metrics", "load_s", r->metrics.load_s,
                  "ttft_s", r->metrics.ttft_s, "tpot_s", r->metrics.tpot_s, "tokens_per_s",
                  r->metrics.tokens_per_s, "prompt_tokens", (json_int_t)r->metrics.prompt_tokens,
                  "generated_tokens", (json_int_t)r->metrics.generated_tokens);
    char *s = o ? json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
    if (s != NULL)
        printf("%s\n", s);
    free(s);
    json_decref(o);
}

int cli_run(int argc, char **argv)
{
    run_args a;
    int rc = run_parse(&a, argc, argv, "run");
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    if ((a.prompt == NULL) == (a.prompt_ids == NULL)) {
        fprintf(stderr, "ogi run: give exactly one of -p PROMPT and --prompt-ids LIST\n");
        return 2;
    }
    ogi_pipeline *pipe;
    ogi_generation_config cfg;
    if (run_open(&a, &pipe, &cfg) != OGI_OK) {
        fprintf(stderr, "ogi run: %s\n", ogi_last_error());
        return 1;
    }
    bool stream = !a.print_ids && !a.json;
    ogi_result r;
    ogi_status st;
    if (a.prompt_ids != NULL) {
        size_t n;
        int32_t *ids = run_parse_ids(a.prompt_ids, &n);
        if (ids == NULL) {
            fprintf(stderr, "ogi run: --prompt-ids wants comma-separated token ids\n");
            ogi_pipeline_free(pipe);
            return 2;
        }
        st = ogi_generate_ids(pipe, ids, n, &cfg, stream ? run_print : NULL, NULL, &r);
        free(ids);
    } else {
        if (stream)
            fputs(a.prompt, stdout);
        st = ogi_generate(pipe, a.prompt, &cfg, stream ? run_print : NULL, NULL, &r);
    }
    if (st != OGI_OK) {
        fprintf(stderr, "%sogi run: %s\n", stream ? "\n" : "", ogi_last_error());
        ogi_pipeline_free(pipe);
        return 1;
    }
    if (a.print_ids) {
        for (size_t i = 0; i < r.n_ids; i++)
            printf(i ? " %d" : "%d", r.ids[i]);
        printf("\n");
    } else if (a.json) {
        run_print_json(&r);
    } else {
        printf("\n");
        if (isatty(STDERR_FILENO))
            fprintf(stderr, "[%zu tokens, %s, %.1f tok/s, first token %.0f ms]\n",
                    r.metrics.generated_tokens, ogi_finish_reason_name(r.finish),
                    r.metrics.tokens_per_s, r.metrics.ttft_s * 1e3);
    }
    ogi_result_clear(&r);
    ogi_pipeline_free(pipe);
    return 0;
}

int cli_chat(int argc, char **argv)
{
    run_args a;
    int rc = run_parse(&a, argc, argv, "chat");
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    ogi_pipeline *pipe;
    ogi_generation_config cfg;
    ogi_chat *chat = NULL;
    if (run_open(&a, &pipe, &cfg) != OGI_OK || ogi_chat_create(pipe, a.system, &chat) != OGI_OK) {
        fprintf(stderr, "ogi chat: %s\n", ogi_last_error());
        return 1;
    }
    bool tty = isatty(STDIN_FILENO);
    char line[8192];
    for (;;) {
        if (tty) {
            printf("> ");
            fflush(stdout);
        }
        if (fgets(line, sizeof(line), stdin) == NULL)
            break;
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0] == '\0')
            break;
        ogi_result r;
        if (ogi_chat_send(chat, line, &cfg, run_print, NULL, &r) != OGI_OK) {
            fprintf(stderr, "\nogi chat: %s\n", ogi_last_error());
            continue;
        }
        printf("\n");
        ogi_result_clear(&r);
    }
    ogi_chat_free(chat);
    ogi_pipeline_free(pipe);
    return 0;
}

bool cli_parse_long(const char *s, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
        return false;
    *out = v;
    return true;
}

bool cli_parse_attention(const char *value, ogi_attention_precision *out)
{
    if (strcmp(value, "exact") == 0)
        *out = OGI_ATTENTION_EXACT;
    else if (strcmp(value, "int8") == 0)
        *out = OGI_ATTENTION_INT8;
    else
        return false;
    return true;
}

/* ---- perplexity --------------------------------------------------------------- */

static void ppl_usage(FILE *f)
{
    fprintf(f, "usage: ogi perplexity MODEL_DIR FILE [--window N] [--stride N] [--start N]\n"
               "                       [--windows K] [--backend NAME] [--attention exact|int8]\n"
               "                       [--json]\n\n"
               "Tokenizes FILE as one text (no special tokens) and slides windows of N\n"
               "tokens (default: the model's context + 1) every stride tokens (default N),\n"
               "from token `start`; each window predicts its tokens 1..N-1 from the ones\n"
               "before. Prints each window's mean cross-entropy, then the mean over windows\n"
               "and its perplexity.\n");
}

int cli_perplexity(int argc, char **argv)
{
    const char *dir = NULL, *file = NULL, *backend = "native";
    long window = 0, stride = 0, start = 0, max_windows = -1;
    bool json = false;
    ogi_attention_precision attention = OGI_ATTENTION_EXACT;
    for (int i = 1; i < argc; i++) {
        long *target = strcmp(argv[i], "--window") == 0    ? &window
                       : strcmp(argv[i], "--stride") == 0  ? &stride
                       : strcmp(argv[i], "--start") == 0   ? &start
                       : strcmp(argv[i], "--windows") == 0 ? &max_windows
                                                           : NULL;
        if (strcmp(argv[i], "--help") == 0) {
            ppl_usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "--json") == 0) {
            json = true;
        } else if (strcmp(argv[i], "--backend") == 0 && i + 1 < argc) {
            backend = argv[++i];
        } else if (strcmp(argv[i], "--attention") == 0 && i + 1 < argc &&
                   cli_parse_attention(argv[i + 1], &attention)) {
            i++;
        } else if (target != NULL && i + 1 < argc &&
                   cli_parse_long(argv[i + 1], target == &max_windows ? -1 : 0, LONG_MAX, target)) {
            i++;
        } else if (argv[i][0] != '-' && dir == NULL) {
            dir = argv[i];
        } else if (argv[i][0] != '-' && file == NULL) {
            file = argv[i];
        } else {
            ppl_usage(stderr);
            return 2;
        }
    }
    if (dir == NULL || file == NULL || window < 0 || stride < 0 || start < 0) {
        ppl_usage(stderr);
        return 2;
    }
    ogi_pipeline_options po = ogi_pipeline_default_options();
    po.backend = backend;
    po.attention = attention;
    ogi_pipeline *pipe;
    if (ogi_pipeline_open(dir, &po, &pipe) != OGI_OK) {
        fprintf(stderr, "ogi perplexity: %s\n", ogi_last_error());
        return 1;
    }
    int rc = 1;
    FILE *f = fopen(file, "rb");
    char *text = NULL;
    size_t len = 0;
    int32_t *ids = NULL;
    size_t n = 0;
    if (f != NULL) {
        fseek(f, 0, SEEK_END);
        long size = ftell(f);
        fseek(f, 0, SEEK_SET);
        text = size >= 0 ? malloc((size_t)size + 1) : NULL;
        len = text ? fread(text, 1, (size_t)size, f) : 0;
        fclose(f);
    }
    const ogi_tokenizer *tok = ogi_pipeline_tokenizer(pipe);
    if (text == NULL) {
        fprintf(stderr, "ogi perplexity: cannot read %s\n", file);
    } else if (tok == NULL || ogi_tokenizer_encode(tok, text, len, 0, &ids, &n) != OGI_OK) {
        fprintf(stderr, "ogi perplexity: %s\n",
                tok ? ogi_last_error() : "the model has no tokenizer");
    } else {
        if (window == 0)
            window = (long)ogi_pipeline_context_length(pipe) + 1;
        if (stride == 0)
            stride = window;
        double sum = 0;
        long count = 0;
        json_t *wins = json_array();
        rc = 0;
        for (long s = start; s + 1 < (long)n && (max_windows < 0 || count < max_windows);
             s += stride) {
            long len_w = (long)n - s < window ? (long)n - s : window;
            double ce;
            if (ogi_pipeline_score(pipe, ids + s, (size_t)len_w, &ce) != OGI_OK) {
                fprintf(stderr, "ogi perplexity: window at %ld: %s\n", s, ogi_last_error());
                rc = 1;
                break;
            }
            if (json)
                json_array_append_new(wins, json_pack("{s:I, s:I, s:f}", "start", (json_int_t)s,
                                                      "length", (json_int_t)len_w, "mean_ce", ce));
            else
                printf("window start %ld length %ld: mean cross-entropy %.6f\n", s, len_w, ce);
            sum += ce;
            count++;
        }
        double mean = count ? sum / (double)count : 0;
        if (rc == 0 && json) {
            json_t *o = json_pack("{s:I, s:o, s:f, s:f}", "tokens", (json_int_t)n, "windows", wins,
                                  "mean_ce", mean, "perplexity", exp(mean));
            char *s = json_dumps(o, JSON_COMPACT);
            printf("%s\n", s);
            free(s);
            json_decref(o);
        } else {
            json_decref(wins);
            if (rc == 0)
                printf("%zu tokens, %ld windows: mean cross-entropy %.6f, perplexity %.4f\n", n,
                       count, mean, exp(mean));
        }
    }
    ogi_free(ids);
    free(text);
    ogi_pipeline_free(pipe);
    return rc;
}
