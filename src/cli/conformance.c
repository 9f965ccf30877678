/* `ogi conformance DIR...`: runs ONNX backend test folders (model.onnx and
 * test_data_set_N folders of input_N.pb and output_N.pb) and compares every output with
 * rtol 1e-3, atol 1e-7 (the ONNX backend defaults; NaN matches NaN; strings match
 * byte for byte; sequences and optionals item by item). */
#include <dirent.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "core/dtype.h"
#include "core/error.h"
#include "core/tensor.h"
#include "engine/session_internal.h"
#include "ogi.h"
#include "onnx/onnx.h"

enum { CONF_MAX_IO = 64 };

typedef enum { CONF_PASS, CONF_FAIL, CONF_SKIP } conf_result;

typedef struct conf_options {
    double rtol, atol;
    int threads;
    bool quiet; /* print only failures and the summary */
} conf_options;

static bool conf_is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool conf_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static int conf_cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted entries of dir whose names start with prefix (NULL: all but dot
 * files). Caller frees each and the array. */
static char **conf_list(const char *dir, const char *prefix, int *n)
{
    *n = 0;
    DIR *d = opendir(dir);
    if (d == NULL)
        return NULL;
    char **names = NULL;
    int cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (prefix && strncmp(e->d_name, prefix, strlen(prefix)) != 0)
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 32;
            char **grown = realloc(names, (size_t)cap * sizeof(char *));
            if (grown == NULL)
                break;
            names = grown;
        }
        names[(*n)++] = strdup(e->d_name);
    }
    closedir(d);
    if (names)
        qsort(names, (size_t)*n, sizeof(char *), conf_cmp_str);
    return names;
}

static void conf_free_list(char **names, int n)
{
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* input_10.pb sorts after input_9.pb */
static int conf_pb_index(const char *name)
{
    const char *u = strrchr(name, '_');
    return u ? atoi(u + 1) : 0;
}

static int conf_cmp_pb(const void *a, const void *b)
{
    return conf_pb_index(*(char *const *)a) - conf_pb_index(*(char *const *)b);
}

/* ---- comparison ------------------------------------------------------------ */

static bool conf_fp8_nan(ogi_dtype t, uint8_t b)
{
    switch (t) {
    case OGI_FLOAT8E4M3FN:
        return (b & 0x7f) == 0x7f;
    case OGI_FLOAT8E4M3FNUZ:
    case OGI_FLOAT8E5M2FNUZ:
        return b == 0x80;
    case OGI_FLOAT8E5M2:
        return (b & 0x7f) > 0x7c;
    case OGI_FLOAT8E8M0:
        return b == 0xff;
    default:
        return false;
    }
}

static int64_t conf_subbyte(const ogi_tensor *t, int64_t i)
{
    int bits = ogi_dtype_bits(t->dtype);
    int per = 8 / bits;
    uint8_t byte = ((const uint8_t *)t->data)[i / per];
    int64_t v = (byte >> ((i % per) * bits)) & ((1 << bits) - 1);
    if ((t->dtype == OGI_INT4 || t->dtype == OGI_INT2) && (v >> (bits - 1)))
        v -= (int64_t)1 << bits;
    return v;
}

/* Writes string s as a quoted C-like literal (truncated to fit). */
static void conf_quote(const ogi_string *s, char *buf, size_t size)
{
    size_t used = (size_t)snprintf(buf, size, "\"");
    for (size_t k = 0; k < s->len && used + 6 < size; k++) {
        unsigned char ch = (unsigned char)s->data[k];
        if (ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\')
            buf[used++] = (char)ch;
        else
            used += (size_t)snprintf(buf + used, size - used, "\\x%02x", ch);
    }
    snprintf(buf + used, size - used, "\"");
}

/* Compares element i; fills exp/got text on mismatch. */
static bool conf_elem_equal(const ogi_tensor *e, const ogi_tensor *g, int64_t i,
                            const conf_options *o, char *exp_s, char *got_s, size_t size)
{
    ogi_dtype t = e->dtype;
    if (t == OGI_STRING) { /* exact bytes */
        const ogi_string *x = &((const ogi_string *)e->data)[i];
        const ogi_string *y = &((const ogi_string *)g->data)[i];
        conf_quote(x, exp_s, size);
        conf_quote(y, got_s, size);
        return tensor_string_equal(x, y);
    }
    if (dtype_is_float(t)) {
        double x = dtype_get_f64(e->data, t, i), y = dtype_get_f64(g->data, t, i);
        snprintf(exp_s, size, "%.9g", x);
        snprintf(got_s, size, "%.9g", y);
        if (isnan(x) || isnan(y))
            return isnan(x) && isnan(y);
        if (isinf(x) || isinf(y))
            return x == y;
        return fabs(x - y) <= o->atol + o->rtol * fabs(x);
    }
    if (ogi_dtype_bits(t) < 8) {
        int64_t x = conf_subbyte(e, i), y = conf_subbyte(g, i);
        snprintf(exp_s, size, "%lld", (long long)x);
        snprintf(got_s, size, "%lld", (long long)y);
        return x == y;
    }
    if (ogi_dtype_bits(t) == 8 && !dtype_is_integer(t) && t != OGI_BOOL) {
        uint8_t x = ((const uint8_t *)e->data)[i], y = ((const uint8_t *)g->data)[i];
        snprintf(exp_s, size, "0x%02x", x);
        snprintf(got_s, size, "0x%02x", y);
        if (conf_fp8_nan(t, x) || conf_fp8_nan(t, y))
            return conf_fp8_nan(t, x) && conf_fp8_nan(t, y);
        bool zero_x = (x & 0x7f) == 0 && t != OGI_FLOAT8E8M0, zero_y = (y & 0x7f) == 0;
        return x == y || (zero_x && zero_y && t != OGI_FLOAT8E4M3FNUZ && t != OGI_FLOAT8E5M2FNUZ);
    }
    int64_t x = dtype_get_i64(e->data, t, i), y = dtype_get_i64(g->data, t, i);
    if (t == OGI_UINT64) {
        snprintf(exp_s, size, "%llu", (unsigned long long)x);
        snprintf(got_s, size, "%llu", (unsigned long long)y);
    } else {
        snprintf(exp_s, size, "%lld", (long long)x);
        snprintf(got_s, size, "%lld", (long long)y);
    }
    return x == y;
}

static bool conf_compare(const char *name, const ogi_tensor *e, const ogi_tensor *g,
                         const conf_options *o, char *why, size_t size);

/* Sequences and optionals: the same kind and item count, then each item. */
static bool conf_compare_items(const char *name, const ogi_tensor *e, const ogi_tensor *g,
                               const conf_options *o, char *why, size_t size)
{
    static const char *const kinds[] = {"tensor", "sequence", "optional"};
    if (e->kind != g->kind) {
        snprintf(why, size, "output '%s': expected a %s, got a %s", name, kinds[e->kind],
                 kinds[g->kind]);
        return false;
    }
    if (e->n_items != g->n_items) {
        snprintf(why, size, "output '%s': expected %lld items, got %lld", name,
                 (long long)e->n_items, (long long)g->n_items);
        return false;
    }
    for (int64_t k = 0; k < e->n_items; k++) {
        char item[512];
        snprintf(item, sizeof(item), "%s[%lld]", name, (long long)k);
        if (!conf_compare(item, e->items[k], g->items[k], o, why, size))
            return false;
    }
    return true;
}

static bool conf_compare(const char *name, const ogi_tensor *e, const ogi_tensor *g,
                         const conf_options *o, char *why, size_t size)
{
    char s1[128], s2[128];
    if (e->kind != TENSOR_KIND_TENSOR || g->kind != TENSOR_KIND_TENSOR)
        return conf_compare_items(name, e, g, o, why, size);
    if (e->dtype != g->dtype) {
        snprintf(why, size, "output '%s': dtype expected %s, got %s", name,
                 ogi_dtype_name(e->dtype), ogi_dtype_name(g->dtype));
        return false;
    }
    if (!tensor_same_shape(e, g)) {
        snprintf(why, size, "output '%s': shape expected %s, got %s", name,
                 tensor_shape_str(e->rank, e->dims, s1, sizeof(s1)),
                 tensor_shape_str(g->rank, g->dims, s2, sizeof(s2)));
        return false;
    }
    int64_t n = tensor_numel(e);
    for (int64_t i = 0; i < n; i++) {
        if (!conf_elem_equal(e, g, i, o, s1, s2, sizeof(s1))) {
            snprintf(why, size, "output '%s' index %lld: expected %s, got %s", name, (long long)i,
                     s1, s2);
            return false;
        }
    }
    return true;
}

/* ---- one test ---------------------------------------------------------------- */

typedef struct conf_tensors {
    int n;
    ogi_tensor *t[CONF_MAX_IO];
    char *name[CONF_MAX_IO];
} conf_tensors;

static void conf_tensors_free(conf_tensors *ts)
{
    for (int i = 0; i < ts->n; i++) {
        ogi_tensor_free(ts->t[i]);
        free(ts->name[i]);
    }
    ts->n = 0;
}

/* Reads a TensorProto, SequenceProto or OptionalProto file: which one is
 * told by the graph's declared kind, since the bytes do not say. */
static ogi_status conf_read_value(const char *path, tensor_kind kind, ogi_tensor **out,
                                  char **name_out)
{
    if (kind == TENSOR_KIND_TENSOR)
        return ogi_tensor_read_pb(path, out, name_out);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return ogi_error(OGI_ERR_IO, "%s: cannot open", path);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *buf = size >= 0 ? malloc((size_t)size + 1) : NULL;
    size_t got = buf ? fread(buf, 1, (size_t)size, f) : 0;
    fclose(f);
    ogi_status st = buf == NULL           ? ogi_error(OGI_ERR_IO, "%s: cannot read", path)
                    : got != (size_t)size ? ogi_error(OGI_ERR_IO, "%s: short read", path)
                                          : onnx_value_parse(buf, got, kind, out, name_out);
    free(buf);
    return st;
}

/* input_N.pb / output_N.pb is the graph's N-th input / output. */
static ogi_status conf_read_pbs(const ogi_session *s, const char *dir, const char *prefix,
                                conf_tensors *ts)
{
    bool inputs = strcmp(prefix, "input_") == 0;
    int n;
    char **files = conf_list(dir, prefix, &n);
    ts->n = 0;
    if (files)
        qsort(files, (size_t)n, sizeof(char *), conf_cmp_pb);
    ogi_status st = OGI_OK;
    for (int i = 0; i < n && st == OGI_OK; i++) {
        if (ts->n == CONF_MAX_IO) {
            st = OGI_ERR_UNSUPPORTED;
            break;
        }
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
        size_t k = (size_t)ts->n;
        tensor_kind kind = inputs ? session_input_kind(s, k) : session_output_kind(s, k);
        st = conf_read_value(path, kind, &ts->t[ts->n], &ts->name[ts->n]);
        if (st == OGI_OK)
            ts->n++;
    }
    conf_free_list(files, n);
    return st;
}

static conf_result conf_run_set(ogi_session *s, const char *set_dir, const conf_options *o,
                                char *why, size_t size)
{
    conf_tensors ins = {0}, exps = {0};
    ogi_tensor *outs[CONF_MAX_IO] = {0};
    const char *in_names[CONF_MAX_IO], *out_names[CONF_MAX_IO];
    conf_result r = CONF_FAIL;
    ogi_status st = conf_read_pbs(s, set_dir, "input_", &ins);
    if (st == OGI_OK)
        st = conf_read_pbs(s, set_dir, "output_", &exps);
    if (st != OGI_OK) {
        snprintf(why, size, "test data: %s", ogi_last_error());
        r = st == OGI_ERR_UNSUPPORTED ? CONF_SKIP : CONF_FAIL;
        goto done;
    }
    for (int i = 0; i < ins.n; i++)
        in_names[i] = ins.name[i] ? ins.name[i] : ogi_session_input_name(s, (size_t)i);
    for (int i = 0; i < exps.n; i++)
        out_names[i] = exps.name[i] ? exps.name[i] : ogi_session_output_name(s, (size_t)i);
    st = ogi_session_run(s, (size_t)ins.n, in_names, (const ogi_tensor *const *)ins.t,
                         (size_t)exps.n, out_names, outs);
    if (st != OGI_OK) {
        snprintf(why, size, "%s", ogi_last_error());
        r = st == OGI_ERR_UNSUPPORTED ? CONF_SKIP : CONF_FAIL;
        goto done;
    }
    r = CONF_PASS;
    for (int i = 0; i < exps.n && r == CONF_PASS; i++)
        if (!conf_compare(out_names[i], exps.t[i], outs[i], o, why, size))
            r = CONF_FAIL;
done:
    for (int i = 0; i < exps.n; i++)
        ogi_tensor_free(outs[i]);
    conf_tensors_free(&ins);
    conf_tensors_free(&exps);
    return r;
}

static conf_result conf_run_test(const char *dir, const conf_options *o, char *why, size_t size)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/model.onnx", dir);
    ogi_session_options so = ogi_session_default_options();
    so.threads = o->threads;
    ogi_session *s;
    ogi_status st = ogi_session_open(path, &so, &s);
    if (st != OGI_OK) {
        snprintf(why, size, "%s", ogi_last_error());
        return st == OGI_ERR_UNSUPPORTED ? CONF_SKIP : CONF_FAIL;
    }
    int n;
    char **sets = conf_list(dir, "test_data_set_", &n);
    conf_result r = n > 0 ? CONF_PASS : CONF_FAIL;
    if (n == 0)
        snprintf(why, size, "no test_data_set_* folder");
    for (int i = 0; i < n && r == CONF_PASS; i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, sets[i]);
        r = conf_run_set(s, path, o, why, size);
    }
    conf_free_list(sets, n);
    ogi_session_free(s);
    return r;
}

static const char *conf_basename(const char *path)
{
    const char *end = path + strlen(path);
    while (end > path && end[-1] == '/')
        end--;
    const char *p = end;
    while (p > path && p[-1] != '/')
        p--;
    static _Thread_local char buf[1024];
    snprintf(buf, sizeof(buf), "%.*s", (int)(end - p), p);
    return buf;
}

static void conf_one(const char *dir, const conf_options *o, int counts[3])
{
    char why[1024] = "";
    conf_result r = conf_run_test(dir, o, why, sizeof(why));
    counts[r]++;
    const char *name = conf_basename(dir);
    if (r == CONF_PASS && !o->quiet)
        printf("PASS %s\n", name);
    else if (r == CONF_FAIL)
        printf("FAIL %s: %s\n", name, why);
    else if (r == CONF_SKIP && !o->quiet)
        printf("SKIP %s: %s\n", name, why);
    fflush(stdout);
}

static void conf_usage(FILE *f)
{
    fprintf(f, "usage: ogi conformance [--quiet] [--threads N] DIR...\n\n"
               "Runs ONNX backend node tests. Each DIR is a test folder (model.onnx +\n"
               "test_data_set_*/) or a folder of them. One line per test: PASS, FAIL (first\n"
               "mismatch) or SKIP (what is not supported); the last line is\n"
               "'N passed, M failed, K skipped'. Exit status 1 if any test failed.\n");
}

int cli_conformance(int argc, char **argv)
{
    conf_options o = {.rtol = 1e-3, .atol = 1e-7, .threads = 1};
    int counts[3] = {0, 0, 0};
    int first = 1;
    long threads;
    for (; first < argc && argv[first][0] == '-'; first++) {
        if (strcmp(argv[first], "--help") == 0) {
            conf_usage(stdout);
            return 0;
        } else if (strcmp(argv[first], "--quiet") == 0) {
            o.quiet = true;
        } else if (strcmp(argv[first], "--threads") == 0 && first + 1 < argc &&
                   cli_parse_long(argv[first + 1], 0, 256, &threads)) {
            o.threads = (int)threads;
            first++;
        } else {
            conf_usage(stderr);
            return 2;
        }
    }
    if (first == argc) {
        conf_usage(stderr);
        return 2;
    }
    for (int a = first; a < argc; a++) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/model.onnx", argv[a]);
        if (conf_exists(path)) {
            conf_one(argv[a], &o, counts);
            continue;
        }
        if (!conf_is_dir(argv[a])) {
            fprintf(stderr, "ogi conformance: %s is not a test folder\n", argv[a]);
            return 2;
        }
        int n;
        char **tests = conf_list(argv[a], NULL, &n);
        for (int i = 0; i < n; i++) {
            snprintf(path, sizeof(path), "%s/%s", argv[a], tests[i]);
            if (conf_is_dir(path))
                conf_one(path, &o, counts);
        }
        conf_free_list(tests, n);
    }
    printf("%d passed, %d failed, %d skipped\n", counts[CONF_PASS], counts[CONF_FAIL],
           counts[CONF_SKIP]);
    return counts[CONF_FAIL] ? 1 : 0;
}
