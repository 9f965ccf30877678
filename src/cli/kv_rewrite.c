/* `ogi kv-rewrite IN_DIR OUT_DIR`: rewrites a concat-style decoder export
 * into one graph with a fixed-size KV cache updated in place (see
 * src/engine/kv_rewrite.h and docs/kv-rewrite.md), and copies the model
 * directory's tokenizer and config files beside it. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "engine/kv_rewrite.h"

static void kv_cli_usage(FILE *f)
{
    fprintf(
        f, "usage: ogi kv-rewrite IN_DIR OUT_DIR --max-cache-len M\n"
           "       ogi kv-rewrite IN_DIR OUT_DIR --sliding-window W [--max-cache-len C]\n\n"
           "Rewrites IN_DIR/model.onnx, whose KV cache grows by Concat at every step, into\n"
           "OUT_DIR/model.onnx (+ model.onnx.data) with caches of fixed size that TensorScatter\n"
           "updates in place and TensorGather reads:\n"
           "  --max-cache-len M   static cache of M positions (prompt and generated tokens)\n"
           "  --sliding-window W  circular cache for a model whose tokens attend to the last W\n"
           "                      positions (config.json \"sliding_window\"); C slots (default W)\n"
           "The JSON, text and template files of IN_DIR are copied; OUT_DIR/kv_rewrite.json\n"
           "records the cache layout. docs/kv-rewrite.md gives the caller contract.\n");
}

static bool kv_cli_copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb");
    if (in == NULL)
        return false;
    FILE *out = fopen(to, "wb");
    if (out == NULL) {
        fclose(in);
        return false;
    }
    char buf[1 << 16];
    size_t n;
    bool ok = true;
    while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
        ok &= fwrite(buf, 1, n, out) == n;
    ok &= !ferror(in);
    fclose(in);
    return fclose(out) == 0 && ok;
}

/* Tokenizer, config and template files travel with the model. */
static bool kv_cli_wanted(const char *name)
{
    static const char *const suffixes[] = {".json", ".jinja", ".txt", ".model"};
    size_t len = strlen(name);
    if (strcmp(name, "kv_rewrite.json") == 0)
        return false;
    for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
        size_t s = strlen(suffixes[i]);
        if (len > s && strcmp(name + len - s, suffixes[i]) == 0)
            return true;
    }
    return false;
}

static int kv_cli_copy_dir(const char *in_dir, const char *out_dir)
{
    DIR *d = opendir(in_dir);
    if (d == NULL) {
        fprintf(stderr, "ogi kv-rewrite: %s: %s\n", in_dir, strerror(errno));
        return 1;
    }
    int rc = 0;
    for (struct dirent *e = readdir(d); e != NULL && rc == 0; e = readdir(d)) {
        char from[PATH_MAX], to[PATH_MAX];
        struct stat st;
        snprintf(from, sizeof(from), "%s/%s", in_dir, e->d_name);
        snprintf(to, sizeof(to), "%s/%s", out_dir, e->d_name);
        if (!kv_cli_wanted(e->d_name) || stat(from, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        if (!kv_cli_copy_file(from, to)) {
            fprintf(stderr, "ogi kv-rewrite: cannot copy %s to %s\n", from, to);
            rc = 1;
        }
    }
    closedir(d);
    return rc;
}

static int kv_cli_write_layout(const char *out_dir, const kv_rewrite_report *r,
                               const kv_rewrite_options *o)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/kv_rewrite.json", out_dir);
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        fprintf(stderr, "ogi kv-rewrite: %s: %s\n", path, strerror(errno));
        return 1;
    }
    fprintf(f, "{\n  \"kv_cache\": \"%s\",\n  \"max_cache_len\": %lld,\n",
            r->circular ? "sliding_window" : "static", (long long)r->cache_len);
    if (r->circular)
        fprintf(f, "  \"sliding_window\": %lld,\n", (long long)o->sliding_window);
    fprintf(f, "  \"caches\": %d\n}\n", r->n_caches);
    if (fclose(f) != 0) {
        fprintf(stderr, "ogi kv-rewrite: writing %s failed\n", path);
        return 1;
    }
    return 0;
}

static bool kv_cli_same_dir(const char *a, const char *b)
{
    char ra[PATH_MAX], rb[PATH_MAX];
    return realpath(a, ra) != NULL && realpath(b, rb) != NULL && strcmp(ra, rb) == 0;
}

int cli_kv_rewrite(int argc, char **argv)
{
    const char *dirs[2] = {NULL, NULL};
    int n_dirs = 0;
    kv_rewrite_options opts = kv_rewrite_default_options();
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0) {
            kv_cli_usage(stdout);
            return 0;
        }
        bool is_len = strcmp(argv[i], "--max-cache-len") == 0;
        bool is_window = strcmp(argv[i], "--sliding-window") == 0;
        if ((is_len || is_window) && i + 1 < argc) {
            long v;
            if (!cli_parse_long(argv[++i], 1, LONG_MAX, &v)) {
                fprintf(stderr, "ogi kv-rewrite: %s needs a positive integer, not '%s'\n",
                        argv[i - 1], argv[i]);
                return 2;
            }
            *(is_len ? &opts.max_cache_len : &opts.sliding_window) = v;
        } else if (argv[i][0] != '-' && n_dirs < 2) {
            dirs[n_dirs++] = argv[i];
        } else {
            kv_cli_usage(stderr);
            return 2;
        }
    }
    if (n_dirs != 2 || (opts.max_cache_len == 0 && opts.sliding_window == 0)) {
        kv_cli_usage(stderr);
        return 2;
    }
    bool created = mkdir(dirs[1], 0755) == 0;
    if (!created && errno != EEXIST) {
        fprintf(stderr, "ogi kv-rewrite: %s: %s\n", dirs[1], strerror(errno));
        return 1;
    }
    if (kv_cli_same_dir(dirs[0], dirs[1])) {
        fprintf(stderr, "ogi kv-rewrite: OUT_DIR must differ from IN_DIR\n");
        return 2;
    }
    char in_path[PATH_MAX], out_path[PATH_MAX];
    snprintf(in_path, sizeof(in_path), "%s/model.onnx", dirs[0]);
    snprintf(out_path, sizeof(out_path), "%s/model.onnx", dirs[1]);
    kv_rewrite_report r;
    if (kv_rewrite_file(in_path, out_path, &opts, &r) != OGI_OK) {
        fprintf(stderr, "ogi kv-rewrite: %s\n", ogi_last_error());
        if (created)
            rmdir(dirs[1]);
        return 1;
    }
    if (kv_cli_copy_dir(dirs[0], dirs[1]) != 0 || kv_cli_write_layout(dirs[1], &r, &opts) != 0)
        return 1;
    printf("%s: %d caches of %lld positions (%s)", out_path, r.n_caches, (long long)r.cache_len,
           r.circular ? "circular, sliding window" : "static");
    if (r.n_upgraded > 0)
        printf("; opset %lld -> 24, %d nodes upgraded", (long long)r.old_opset, r.n_upgraded);
    printf("\n");
    return 0;
}
