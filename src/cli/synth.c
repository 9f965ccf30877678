/* `ogi synth-weights`: writes the missing external-data file of a graph
 * whose weights were stripped, with seeded random values (normalisation
 * weights near 1, other float weights small and centred), so that any
 * architecture can be benchmarked without downloading weights. */
#include <errno.h>
#include <stdbool.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "core/dtype.h"
#include "onnx/onnx.h"

static uint64_t synth_next(uint64_t *s)
{
    /* splitmix64 */
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [-1, 1). */
static float synth_uniform(uint64_t *s)
{
    return (float)((double)(synth_next(s) >> 11) * 0x1p-53 * 2.0 - 1.0);
}

static bool synth_is_norm(const char *name, int rank)
{
    return rank == 1 && (strstr(name, "norm") != NULL || strstr(name, "ln_") != NULL);
}

/* Fills t's bytes: norms 1 + U(-0.02, 0.02); other floats U(-a, a) with
 * a = sqrt(3) * 0.02 (std 0.02, as Hugging Face initialises); ints zero. */
static void synth_fill(const onnx_tensor *t, unsigned char *out, uint64_t *rng)
{
    const ogi_tensor *x = &t->tensor;
    int64_t n = tensor_numel(x);
    bool norm = synth_is_norm(t->name, x->rank);
    const float a = 0.0346410f;
    for (int64_t i = 0; i < n; i++) {
        float v = norm ? 1.0f + 0.02f * synth_uniform(rng) : a * synth_uniform(rng);
        if (x->dtype == OGI_FLOAT32)
            memcpy(out + i * 4, &v, 4);
        else if (x->dtype == OGI_FLOAT16 || x->dtype == OGI_BFLOAT16) {
            uint16_t h = x->dtype == OGI_FLOAT16 ? dtype_f32_to_f16(v) : dtype_f32_to_bf16(v);
            memcpy(out + i * 2, &h, 2);
        } else if (x->dtype == OGI_FLOAT64) {
            double d = v;
            memcpy(out + i * 8, &d, 8);
        }
    }
    if (!dtype_is_float(x->dtype))
        memset(out, 0, x->nbytes);
}

static int synth_copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb");
    if (in == NULL)
        return -1;
    FILE *out = fopen(to, "wb");
    if (out == NULL) {
        fclose(in);
        return -1;
    }
    char buf[1 << 16];
    size_t n;
    int rc = 0;
    while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
        if (fwrite(buf, 1, n, out) != n)
            rc = -1;
    fclose(in);
    return fclose(out) == 0 ? rc : -1;
}

static void synth_usage(FILE *f)
{
    fprintf(f, "usage: ogi synth-weights MODEL_DIR [--out DIR] [--seed N]\n\n"
               "Writes the external-data file that MODEL_DIR/model.onnx refers to, with seeded\n"
               "random weights (normalisation weights near 1). With --out, model.onnx and the\n"
               "directory's JSON files are copied to DIR and the data is written there (for\n"
               "read-only model directories).\n");
}

/* Writes every external tensor of g (and its subgraphs are not searched:
 * exporters put weights in the main graph) into the file at path. */
static int synth_write(const onnx_model *m, const char *path, const char *location, uint64_t seed)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL) {
        fprintf(stderr, "ogi synth-weights: %s: %s\n", path, strerror(errno));
        return 1;
    }
    uint64_t rng = seed, total = 0;
    int count = 0, rc = 0;
    const onnx_graph *g = m->graph;
    for (int i = 0; i < g->n_initializers && rc == 0; i++) {
        const onnx_tensor *t = &g->initializers[i];
        if (!t->external || strcmp(t->external_location, location) != 0)
            continue;
        if (t->external_length != t->tensor.nbytes) {
            fprintf(stderr, "ogi synth-weights: tensor '%s': length %llu, shape needs %zu\n",
                    t->name, (unsigned long long)t->external_length, t->tensor.nbytes);
            rc = 1;
            break;
        }
        unsigned char *buf = malloc(t->tensor.nbytes ? t->tensor.nbytes : 1);
        if (buf == NULL) {
            rc = 1;
            break;
        }
        synth_fill(t, buf, &rng);
        if (fseeko(f, (off_t)t->external_offset, SEEK_SET) != 0 ||
            fwrite(buf, 1, t->tensor.nbytes, f) != t->tensor.nbytes)
            rc = 1;
        free(buf);
        total += t->tensor.nbytes;
        count++;
    }
    if (fclose(f) != 0 || rc != 0) {
        fprintf(stderr, "ogi synth-weights: writing %s failed\n", path);
        return 1;
    }
    printf("%s: %d tensors, %.1f MB of synthesized weights\n", path, count, (double)total / 1e6);
    return 0;
}

/* A whole decimal number of 0 to 2^64 - 1 (strtoull alone takes "-1" and
 * "12abc"). */
static bool synth_parse_seed(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || s[0] == '-')
        return false;
    *out = (uint64_t)v;
    return true;
}

int cli_synth_weights(int argc, char **argv)
{
    const char *dir = NULL, *out_dir = NULL;
    uint64_t seed = 1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0) {
            synth_usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "--out") == 0 && i + 1 < argc) {
            out_dir = argv[++i];
        } else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc &&
                   synth_parse_seed(argv[i + 1], &seed)) {
            i++;
        } else if (argv[i][0] != '-' && dir == NULL) {
            dir = argv[i];
        } else {
            synth_usage(stderr);
            return 2;
        }
    }
    if (dir == NULL) {
        synth_usage(stderr);
        return 2;
    }
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/model.onnx", dir);
    onnx_model *m;
    if (onnx_model_load_structure(path, &m) != OGI_OK) {
        fprintf(stderr, "ogi synth-weights: %s\n", ogi_last_error());
        return 1;
    }
    const char *target = dir;
    if (out_dir != NULL) {
        mkdir(out_dir, 0755);
        const char *files[] = {"model.onnx", "config.json", "generation_config.json",
                               "tokenizer.json", "tokenizer_config.json"};
        for (size_t k = 0; k < sizeof(files) / sizeof(files[0]); k++) {
            char from[PATH_MAX], to[PATH_MAX];
            snprintf(from, sizeof(from), "%s/%s", dir, files[k]);
            snprintf(to, sizeof(to), "%s/%s", out_dir, files[k]);
            if (synth_copy_file(from, to) != 0 && k == 0) {
                fprintf(stderr, "ogi synth-weights: cannot copy %s to %s\n", from, to);
                onnx_model_free(m);
                return 1;
            }
        }
        target = out_dir;
    }
    /* one data file per distinct location */
    int rc = 0;
    const onnx_graph *g = m->graph;
    for (int i = 0; i < g->n_initializers && rc == 0; i++) {
        const onnx_tensor *t = &g->initializers[i];
        if (!t->external)
            continue;
        bool seen = false;
        for (int k = 0; k < i && !seen; k++)
            seen = g->initializers[k].external &&
                   strcmp(g->initializers[k].external_location, t->external_location) == 0;
        if (seen)
            continue;
        if (strchr(t->external_location, '/') != NULL || strstr(t->external_location, "..")) {
            fprintf(stderr, "ogi synth-weights: location '%s' is not a plain file name\n",
                    t->external_location);
            rc = 1;
            break;
        }
        char data[PATH_MAX];
        snprintf(data, sizeof(data), "%s/%s", target, t->external_location);
        rc = synth_write(m, data, t->external_location, seed);
    }
    onnx_model_free(m);
    return rc;
}
