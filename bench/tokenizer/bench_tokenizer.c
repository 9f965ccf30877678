/* Tokenizer benchmark: load time of each shared tokenizer.json and encode
 * throughput on the held-out docstrings and on ~1 MB of multilingual text
 * made deterministically from the golden texts (many scripts, code, emoji).
 *
 * usage: bench_tokenizer [SHARED_DIR]   (default: $OGI_SHARED_DIR or the
 * shared folder beside the checkout) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "ogi.h"

static const char *const NAMES[] = {"llama2", "llama3", "qwen3", "docstring-llama"};

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) {
        buf[n] = '\0';
        *len = (size_t)n;
    }
    return buf;
}

/* Golden texts picked by a fixed LCG and joined by newlines up to ~1 MB. */
static char *multilingual_text(const char *shared, size_t *len)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/tokenizers/qwen3/golden.json", shared);
    json_t *g = json_load_file(path, JSON_ALLOW_NUL, NULL);
    json_t *texts = json_object_get(g, "texts");
    size_t n = json_array_size(texts), cap = (1 << 20) + 65536, used = 0;
    char *out = n ? malloc(cap) : NULL;
    uint64_t state = 0x9E3779B97F4A7C15ULL;
    while (out && used < (1 << 20)) {
        state = state * 6364136223846793005ULL + 1442695040888963407ULL;
        json_t *t = json_array_get(texts, (size_t)(state >> 33) % n);
        size_t k = json_string_length(t);
        if (used + k + 1 >= cap)
            break;
        memcpy(out + used, json_string_value(t), k);
        used += k;
        out[used++] = '\n';
    }
    json_decref(g);
    *len = used;
    return out;
}

static double load_ms(const char *dir, ogi_tokenizer **keep)
{
    double best = 1e30;
    for (int r = 0; r < 3; r++) {
        ogi_tokenizer *tok;
        double t0 = now_ms();
        if (ogi_tokenizer_open(dir, &tok) != OGI_OK) {
            fprintf(stderr, "bench_tokenizer: %s\n", ogi_last_error());
            return -1;
        }
        double dt = now_ms() - t0;
        best = dt < best ? dt : best;
        if (r == 2 && keep)
            *keep = tok;
        else
            ogi_tokenizer_free(tok);
    }
    return best;
}

/* Best of three whole-text encodes, in MB/s; *n_tokens receives the count. */
static double encode_mbps(const ogi_tokenizer *tok, const char *text, size_t len, size_t *n_tokens)
{
    double best = 1e30;
    for (int r = 0; r < 3; r++) {
        int32_t *ids;
        double t0 = now_ms();
        if (ogi_tokenizer_encode(tok, text, len, 0, &ids, n_tokens) != OGI_OK) {
            fprintf(stderr, "bench_tokenizer: %s\n", ogi_last_error());
            return -1;
        }
        double dt = now_ms() - t0;
        ogi_free(ids);
        best = dt < best ? dt : best;
    }
    return len / 1e6 / (best / 1e3);
}

int main(int argc, char **argv)
{
    const char *shared = argc > 1 ? argv[1] : getenv("OGI_SHARED_DIR");
    if (!shared || !*shared)
        shared = OGI_BENCH_SHARED_DIR;
    char path[1024];
    snprintf(path, sizeof(path), "%s/models/docstring-llama/heldout_docstrings.txt", shared);
    size_t doc_len = 0, multi_len = 0;
    char *docs = read_file(path, &doc_len);
    char *multi = multilingual_text(shared, &multi_len);
    if (!docs || !multi) {
        fprintf(stderr, "bench_tokenizer: cannot read the texts under %s\n", shared);
        return 1;
    }
    printf("%-16s %10s %22s %22s\n", "tokenizer", "load ms", "docstrings MB/s",
           "multilingual MB/s");
    printf("%.72s\n", "------------------------------------------------------------------------");
    for (size_t i = 0; i < sizeof(NAMES) / sizeof(NAMES[0]); i++) {
        char dir[1024];
        snprintf(dir, sizeof(dir), "%s/tokenizers/%s", shared, NAMES[i]);
        ogi_tokenizer *tok = NULL;
        double ms = load_ms(dir, &tok);
        if (!tok)
            return 1;
        size_t nd = 0, nm = 0;
        double d = encode_mbps(tok, docs, doc_len, &nd);
        double m = encode_mbps(tok, multi, multi_len, &nm);
        char dcol[40], mcol[40];
        snprintf(dcol, sizeof(dcol), "%.2f (%zu tok)", d, nd);
        snprintf(mcol, sizeof(mcol), "%.2f (%zu tok)", m, nm);
        printf("%-16s %10.1f %22s %22s\n", NAMES[i], ms, dcol, mcol);
        ogi_tokenizer_free(tok);
    }
    printf("\ntexts: heldout_docstrings.txt %.2f MB; multilingual %.2f MB from the golden texts\n",
           doc_len / 1e6, multi_len / 1e6);
    free(docs);
    free(multi);
    return 0;
}
