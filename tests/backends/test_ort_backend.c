/* The ONNX Runtime backend through its vtable: finding the library (explicit
 * path, $OGI_ORT_LIBRARY, the deps/ search, a second library refused), the
 * declared inputs, every supported dtype, outputs bound by the caller (also
 * in place over an input), errors with the same status as the native engine,
 * session options (threads, optimization level, providers) and concurrent
 * runs of one session. $OGI_ORT_TEST_LIBRARY names the library; without one
 * only the "not found" paths are checked. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backends/backend.h"
#include "core/tensor.h"
#include "pb_writer.h"
#include "test_util.h"

static int checks = 0;
static char dir[] = "/tmp/ogi-ort-backend-XXXXXX";

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        checks++;                                                                                  \
        TEST_CHECK(cond, __VA_ARGS__);                                                             \
    } while (0)

/* A value_info whose dims are numbers, or names where dims[d] < 0 ("n0"...). */
static void value_info(pbw *g, uint32_t field, const char *name, int dtype, int rank,
                       const int64_t *dims)
{
    pbw shape = {0}, tensor = {0}, type = {0}, vi = {0};
    for (int i = 0; i < rank; i++) {
        pbw dim = {0};
        if (dims[i] >= 0) {
            pbw_int(&dim, 1, (uint64_t)dims[i]);
        } else {
            char sym[16];
            snprintf(sym, sizeof(sym), "n%d", i);
            pbw_string(&dim, 2, sym);
        }
        pbw_message(&shape, 1, &dim);
    }
    pbw_int(&tensor, 1, (uint64_t)dtype);
    pbw_message(&tensor, 2, &shape);
    pbw_message(&type, 1, &tensor);
    pbw_string(&vi, 1, name);
    pbw_message(&vi, 2, &type);
    pbw_message(g, field, &vi);
}

static const char *write_model(const char *name, pbw *graph, int opset)
{
    static char path[4][256];
    static int next;
    char *p = path[next++ % 4];
    snprintf(p, 256, "%s/%s.onnx", dir, name);
    if (access(p, F_OK) == 0) { /* written once: a session may map it */
        pbw_free(graph);
        return p;
    }
    pbw model = {0};
    pbw_model(&model, 8, opset, graph);
    test_write_file(p, model.data, model.len);
    pbw_free(&model);
    return p;
}

/* C = A + B, D = C * A over float [n0, 3] (n0 symbolic). */
static const char *model_add_mul(void)
{
    pbw g = {0};
    const char *add_in[2] = {"A", "B"}, *add_out[1] = {"C"};
    const char *mul_in[2] = {"C", "A"}, *mul_out[1] = {"D"};
    pbw_node(&g, "Add", "add", 2, add_in, 1, add_out);
    pbw_node(&g, "Mul", "mul", 2, mul_in, 1, mul_out);
    pbw_string(&g, 2, "add_mul");
    int64_t dims[2] = {-1, 3};
    value_info(&g, 11, "A", OGI_FLOAT32, 2, dims);
    value_info(&g, 11, "B", OGI_FLOAT32, 2, dims);
    value_info(&g, 12, "C", OGI_FLOAT32, 2, dims);
    value_info(&g, 12, "D", OGI_FLOAT32, 2, dims);
    return write_model("add_mul", &g, 17);
}

/* Y = Identity(X) for one dtype, X [2, 3]. */
static const char *model_identity(ogi_dtype dtype)
{
    pbw g = {0};
    const char *in[1] = {"X"}, *out[1] = {"Y"};
    pbw_node(&g, "Identity", "id", 1, in, 1, out);
    pbw_string(&g, 2, "identity");
    int64_t dims[2] = {2, 3};
    value_info(&g, 11, "X", dtype, 2, dims);
    value_info(&g, 12, "Y", dtype, 2, dims);
    char name[64];
    snprintf(name, sizeof(name), "identity_%s", ogi_dtype_name(dtype));
    return write_model(name, &g, 21);
}

/* Y = X + W with W an initializer that is also a graph input (overridable). */
static const char *model_overridable(void)
{
    pbw g = {0};
    const char *in[2] = {"X", "W"}, *out[1] = {"Y"};
    pbw_node(&g, "Add", "add", 2, in, 1, out);
    pbw_string(&g, 2, "overridable");
    const float w[3] = {10, 20, 30};
    int64_t dims[1] = {3};
    pbw_tensor_raw(&g, 5, "W", OGI_FLOAT32, 1, dims, w, sizeof(w));
    value_info(&g, 11, "X", OGI_FLOAT32, 1, dims);
    value_info(&g, 11, "W", OGI_FLOAT32, 1, dims);
    value_info(&g, 12, "Y", OGI_FLOAT32, 1, dims);
    return write_model("overridable", &g, 17);
}

static ogi_tensor *f32(int rank, const int64_t *dims, const float *v)
{
    return test_tensor_f32(rank, dims, v);
}

static const backend_vtable *ort = &backend_ort, *native = &backend_native;

static backend_session *open_ok(const backend_vtable *b, const char *path)
{
    backend_options o = {.threads = 1, .graph_optimization = 99};
    backend_session *s = NULL;
    ogi_status st = b->open(path, &o, &s);
    CHECK(st == OGI_OK, "%s: open %s: %s", b->name, path, ogi_last_error());
    return st == OGI_OK ? s : NULL;
}

/* ---- finding the library -------------------------------------------------------- */

static void test_not_found(void)
{
    CHECK(backend_find("ort") == ort && ogi_backend_count() >= 2, "ort is registered");
    backend_options o = {.library_path = "/nonexistent/libonnxruntime.so.1"};
    backend_session *s = NULL;
    CHECK(!ort->available(&o), "a missing explicit library is not available");
    ogi_status st = ort->open("/nonexistent.onnx", &o, &s);
    CHECK(st == OGI_ERR_NOT_FOUND && strstr(ogi_last_error(), "ONNX Runtime library not found"),
          "missing explicit library: %s: %s", ogi_status_name(st), ogi_last_error());

    setenv("OGI_ORT_LIBRARY", "/nonexistent/libonnxruntime.so.1", 1);
    st = ort->open("/nonexistent.onnx", NULL, &s);
    CHECK(st == OGI_ERR_NOT_FOUND && strstr(ogi_last_error(), "$OGI_ORT_LIBRARY"),
          "missing $OGI_ORT_LIBRARY: %s", ogi_last_error());
    unsetenv("OGI_ORT_LIBRARY");
    /* from build/tests neither ./deps nor <exe>/../deps exists */
    st = ort->open("/nonexistent.onnx", NULL, &s);
    CHECK(st == OGI_ERR_NOT_FOUND && strstr(ogi_last_error(), "OGI_ORT_LIBRARY") &&
              strstr(ogi_last_error(), "scripts/setup.sh"),
          "nothing found: %s", ogi_last_error());
    printf("not found: %s\n", ogi_last_error());

    o.library_path = "libm.so.6"; /* loads, but is not ONNX Runtime */
    st = ort->open("/nonexistent.onnx", &o, &s);
    CHECK(st == OGI_ERR_NOT_FOUND && strstr(ogi_last_error(), "not an ONNX Runtime library"),
          "not ORT: %s", ogi_last_error());

    /* the public API and the pipeline say the same */
    ogi_pipeline_options po = ogi_pipeline_default_options();
    po.backend = "ort";
    po.ort_library = "/nonexistent/libonnxruntime.so.1";
    ogi_pipeline *p = NULL;
    char model_dir[4096];
    snprintf(model_dir, sizeof(model_dir), "%s/models/tiny/llama-dynamo-op23", test_shared_dir());
    st = ogi_pipeline_open(model_dir, &po, &p);
    CHECK(st == OGI_ERR_NOT_FOUND && p == NULL, "pipeline without ORT: %s", ogi_last_error());
    printf("pipeline without ORT: %s\n", ogi_last_error());
}

static void test_loading(const char *lib)
{
    backend_options o = {.library_path = lib};
    CHECK(ort->available(&o), "available with %s: %s", lib, ogi_last_error());
    CHECK(ogi_backend_available("ort"), "ogi_backend_available(ort)");
    /* once loaded, the same library by another name is fine, another one is not */
    setenv("OGI_ORT_LIBRARY", lib, 1);
    CHECK(ogi_backend_available("ort"), "ogi_backend_available with $OGI_ORT_LIBRARY");
    unsetenv("OGI_ORT_LIBRARY");
    CHECK(ort->available(NULL), "loaded: available without a path");
    o.library_path = "libm.so.6";
    backend_session *s = NULL;
    ogi_status st = ort->open(model_add_mul(), &o, &s);
    CHECK(st == OGI_ERR_INVALID_ARGUMENT && strstr(ogi_last_error(), "already loaded"),
          "a second library: %s", ogi_last_error());
}

/* ---- sessions ------------------------------------------------------------------ */

static void test_signature(void)
{
    backend_session *s = open_ok(ort, model_add_mul());
    if (s == NULL)
        return;
    CHECK(ort->input_count(s) == 2 && ort->output_count(s) == 2, "counts %zu %zu",
          ort->input_count(s), ort->output_count(s));
    CHECK(!strcmp(ort->input_name(s, 0), "A") && !strcmp(ort->input_name(s, 1), "B") &&
              !strcmp(ort->output_name(s, 0), "C") && !strcmp(ort->output_name(s, 1), "D") &&
              ort->input_name(s, 2) == NULL && ort->output_name(s, 2) == NULL,
          "names");
    ogi_dtype dt;
    int rank;
    int64_t dims[OGI_MAX_RANK];
    ogi_status st = ort->input_info(s, 1, &dt, &rank, dims);
    CHECK(st == OGI_OK && dt == OGI_FLOAT32 && rank == 2 && dims[0] == -1 && dims[1] == 3,
          "input_info: %s rank %d dims %lld %lld", ogi_dtype_name(dt), rank, (long long)dims[0],
          (long long)dims[1]);
    CHECK(ort->input_info(s, 5, &dt, &rank, dims) == OGI_ERR_INVALID_ARGUMENT, "input_info 5");
    ort->free(s);

    /* a decoder's KV inputs: as the native engine declares them */
    char path[4096];
    snprintf(path, sizeof(path), "%s/models/tiny/llama-dynamo-op23/model.onnx", test_shared_dir());
    backend_session *o = open_ok(ort, path), *n = open_ok(native, path);
    for (size_t i = 0; o && n && i < ort->input_count(o); i++) {
        ogi_dtype d1, d2;
        int r1, r2;
        int64_t x1[OGI_MAX_RANK], x2[OGI_MAX_RANK];
        ort->input_info(o, i, &d1, &r1, x1);
        size_t j = 0;
        while (j < native->input_count(n) &&
               strcmp(native->input_name(n, j), ort->input_name(o, i)) != 0)
            j++;
        CHECK(j < native->input_count(n), "native lacks input %s", ort->input_name(o, i));
        if (j == native->input_count(n))
            continue;
        native->input_info(n, j, &d2, &r2, x2);
        bool same = d1 == d2 && r1 == r2;
        for (int d = 0; same && d < r1; d++)
            same = x1[d] == x2[d] || (x1[d] < 0 && x2[d] < 0);
        CHECK(same, "input %s: ort %s rank %d, native %s rank %d", ort->input_name(o, i),
              ogi_dtype_name(d1), r1, ogi_dtype_name(d2), r2);
    }
    if (o)
        ort->free(o);
    if (n)
        native->free(n);
}

static void test_dtypes(void)
{
    static const ogi_dtype types[] = {
        OGI_FLOAT32, OGI_FLOAT16, OGI_FLOAT64, OGI_BFLOAT16, OGI_INT8,   OGI_INT16, OGI_INT32,
        OGI_INT64,   OGI_UINT8,   OGI_UINT16,  OGI_UINT32,   OGI_UINT64, OGI_BOOL};
    for (size_t k = 0; k < sizeof(types) / sizeof(types[0]); k++) {
        backend_session *s = open_ok(ort, model_identity(types[k]));
        if (s == NULL)
            continue;
        int64_t dims[2] = {2, 3};
        ogi_tensor *x = NULL;
        ogi_tensor_create(types[k], 2, dims, &x);
        uint8_t *b = ogi_tensor_data(x);
        for (size_t i = 0; i < ogi_tensor_nbytes(x); i++)
            b[i] = types[k] == OGI_BOOL ? (uint8_t)(i & 1) : (uint8_t)(17 * i + 3);
        const char *in[1] = {"X"}, *out[1] = {"Y"};
        const ogi_tensor *xs[1] = {x};
        ogi_tensor *y[1] = {NULL};
        ogi_status st = ort->run(s, 1, in, xs, 1, out, y);
        CHECK(st == OGI_OK && ogi_tensor_dtype(y[0]) == types[k] && ogi_tensor_rank(y[0]) == 2 &&
                  memcmp(ogi_tensor_data(y[0]), b, ogi_tensor_nbytes(x)) == 0,
              "identity %s: %s", ogi_dtype_name(types[k]), ogi_last_error());
        ogi_tensor_free(y[0]);
        ogi_tensor_free(x);
        ort->free(s);
    }
}

/* Runs the same call on both backends: equal statuses, and on success equal
 * outputs. */
static void same_on_both(const char *what, const char *path, size_t n_in, const char **in_names,
                         const ogi_tensor **in, size_t n_out, const char **out_names,
                         ogi_tensor **bound_native, ogi_tensor **bound_ort)
{
    backend_session *o = open_ok(ort, path), *n = open_ok(native, path);
    if (o == NULL || n == NULL)
        goto done;
    ogi_tensor *no[4] = {0}, *oo[4] = {0};
    for (size_t i = 0; i < n_out; i++) {
        no[i] = bound_native ? bound_native[i] : NULL;
        oo[i] = bound_ort ? bound_ort[i] : NULL;
    }
    ogi_status sn = native->run(n, n_in, in_names, in, n_out, out_names, no);
    char native_msg[512];
    snprintf(native_msg, sizeof(native_msg), "%s", ogi_last_error());
    ogi_status so = ort->run(o, n_in, in_names, in, n_out, out_names, oo);
    CHECK(sn == so, "%s: native %s (%s), ort %s (%s)", what, ogi_status_name(sn), native_msg,
          ogi_status_name(so), ogi_last_error());
    if (so != OGI_OK)
        printf("%s: both %s; ort says: %s\n", what, ogi_status_name(so), ogi_last_error());
    for (size_t i = 0; i < n_out && sn == OGI_OK && so == OGI_OK; i++) {
        CHECK(ogi_tensor_nbytes(no[i]) == ogi_tensor_nbytes(oo[i]) &&
                  memcmp(ogi_tensor_data(no[i]), ogi_tensor_data(oo[i]),
                         ogi_tensor_nbytes(no[i])) == 0,
              "%s: output %zu differs", what, i);
        if (bound_native == NULL || bound_native[i] == NULL)
            ogi_tensor_free(no[i]);
        if (bound_ort == NULL || bound_ort[i] == NULL)
            ogi_tensor_free(oo[i]);
    }
    for (size_t i = 0; i < n_out; i++) {
        CHECK(sn == OGI_OK || bound_native == NULL || no[i] == bound_native[i],
              "%s: bound output replaced", what);
        CHECK(sn == OGI_OK || no[i] == NULL || (bound_native && no[i] == bound_native[i]),
              "%s: native left a new output after failing", what);
        CHECK(so == OGI_OK || oo[i] == NULL || (bound_ort && oo[i] == bound_ort[i]),
              "%s: ort left a new output after failing", what);
    }
done:
    if (o)
        ort->free(o);
    if (n)
        native->free(n);
}

static void test_errors(void)
{
    const char *path = model_add_mul();
    const int64_t d23[2] = {2, 3}, d22[2] = {2, 2}, d3[1] = {3};
    const float v[6] = {1, 2, 3, 4, 5, 6};
    ogi_tensor *a = f32(2, d23, v), *b = f32(2, d23, v), *bad_shape = f32(2, d22, v);
    ogi_tensor *rank1 = f32(1, d3, v),
               *ints = test_tensor_i64(2, d23, (int64_t[]){1, 2, 3, 4, 5, 6});
    ogi_tensor *b3 = NULL;
    ogi_tensor_create(OGI_FLOAT32, 2, (int64_t[]){3, 3}, &b3);
    const char *ab[2] = {"A", "B"}, *cd[2] = {"C", "D"}, *bogus[1] = {"nope"};
    const ogi_tensor *good[2] = {a, b};
    same_on_both("unknown input", path, 1, bogus, good, 1, cd, NULL, NULL);
    same_on_both("unknown output", path, 2, ab, good, 1, bogus, NULL, NULL);
    same_on_both("missing input", path, 1, ab, good, 2, cd, NULL, NULL);
    same_on_both("NULL input", path, 2, ab, (const ogi_tensor *[]){a, NULL}, 2, cd, NULL, NULL);
    same_on_both("wrong dtype", path, 2, ab, (const ogi_tensor *[]){a, ints}, 2, cd, NULL, NULL);
    same_on_both("wrong rank", path, 2, ab, (const ogi_tensor *[]){a, rank1}, 2, cd, NULL, NULL);
    same_on_both("wrong fixed dim", path, 2, ab, (const ogi_tensor *[]){a, bad_shape}, 2, cd, NULL,
                 NULL);
    same_on_both("shapes that do not broadcast", path, 2, ab, (const ogi_tensor *[]){a, b3}, 2, cd,
                 NULL, NULL);
    same_on_both("good run", path, 2, ab, good, 2, cd, NULL, NULL);

    /* a bound output of the wrong shape */
    ogi_tensor *wrong_n = NULL, *wrong_o = NULL;
    ogi_tensor_create(OGI_FLOAT32, 2, d22, &wrong_n);
    ogi_tensor_create(OGI_FLOAT32, 2, d22, &wrong_o);
    same_on_both("bound output of the wrong shape", path, 2, ab, good, 1, cd, &wrong_n, &wrong_o);
    ogi_tensor_free(wrong_n);
    ogi_tensor_free(wrong_o);

    backend_session *s = NULL;
    backend_options o = {.graph_optimization = 99};
    ogi_status sn = native->open("/nonexistent/model.onnx", &o, &s);
    ogi_status so = ort->open("/nonexistent/model.onnx", &o, &s);
    CHECK(sn == so && so == OGI_ERR_IO, "missing model: native %s, ort %s (%s)",
          ogi_status_name(sn), ogi_status_name(so), ogi_last_error());
    char garbage[300];
    snprintf(garbage, sizeof(garbage), "%s/garbage.onnx", dir);
    static const char junk[] = "\x08\x07\x12\xff\xff\xff\x0fnot a model";
    test_write_file(garbage, junk, sizeof(junk) - 1);
    sn = native->open(garbage, &o, &s);
    so = ort->open(garbage, &o, &s);
    CHECK(sn == so && so == OGI_ERR_INVALID_MODEL, "malformed model: native %s, ort %s (%s)",
          ogi_status_name(sn), ogi_status_name(so), ogi_last_error());
    CHECK(strstr(ogi_last_error(), garbage) != NULL, "the error names the model: %s",
          ogi_last_error());
    CHECK(ort->run(NULL, 0, NULL, NULL, 0, NULL, NULL) == OGI_ERR_INVALID_ARGUMENT, "NULL run");
    CHECK(ort->open(NULL, &o, &s) == OGI_ERR_INVALID_ARGUMENT, "NULL path");
    ogi_tensor_free(a);
    ogi_tensor_free(b);
    ogi_tensor_free(b3);
    ogi_tensor_free(bad_shape);
    ogi_tensor_free(rank1);
    ogi_tensor_free(ints);
}

static void test_options(void)
{
    const char *path = model_add_mul();
    static const struct {
        int threads, level;
        const char *providers;
        ogi_status want;
        const char *says;
    } cases[] = {
        {0, 0, NULL, OGI_OK, NULL},
        {2, 1, "cpu", OGI_OK, NULL},
        {1, 2, " cpu ", OGI_OK, NULL},
        {1, 3, NULL, OGI_OK, NULL},
        {1, 99, "", OGI_OK, NULL},
        {-1, 99, NULL, OGI_ERR_INVALID_ARGUMENT, "threads"},
        {1, 5, NULL, OGI_ERR_INVALID_ARGUMENT, "graph_optimization 5"},
        {1, 99, "cuda,cpu", OGI_ERR_NOT_FOUND, "'cuda' is not available"},
        {1, 99, "cuda:device_id=0", OGI_ERR_NOT_FOUND, "not available"},
        {1, 99, "cpu:arena=0", OGI_ERR_INVALID_ARGUMENT, "takes no options"},
        {1, 99, "cpu,XNNPACK", OGI_ERR_INVALID_ARGUMENT, "must come last"},
        {1, 99, "cuda:device_id", OGI_ERR_INVALID_ARGUMENT, "not key=value"},
        {1, 99, "NoSuchProvider", OGI_ERR_INVALID_ARGUMENT, "NoSuchProvider"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        backend_options o = {.threads = cases[i].threads,
                             .graph_optimization = cases[i].level,
                             .providers = cases[i].providers};
        backend_session *s = NULL;
        ogi_status st = ort->open(path, &o, &s);
        bool says = cases[i].says == NULL || strstr(ogi_last_error(), cases[i].says) != NULL;
        CHECK(st == cases[i].want && says, "options %zu (%d, %d, %s): %s: %s", i, cases[i].threads,
              cases[i].level, cases[i].providers ? cases[i].providers : "-", ogi_status_name(st),
              st ? ogi_last_error() : "");
        if (st != OGI_OK && i == 7)
            printf("cuda: %s\n", ogi_last_error());
        if (st == OGI_OK)
            ort->free(s);
    }
}

static void test_bound_outputs(void)
{
    backend_session *s = open_ok(ort, model_add_mul());
    if (s == NULL)
        return;
    const int64_t d23[2] = {2, 3};
    const float av[6] = {1, 2, 3, 4, 5, 6}, bv[6] = {10, 20, 30, 40, 50, 60};
    ogi_tensor *a = f32(2, d23, av), *b = f32(2, d23, bv), *c = NULL;
    ogi_tensor_create(OGI_FLOAT32, 2, d23, &c);
    void *c_data = ogi_tensor_data(c);
    const char *ab[2] = {"A", "B"}, *cd[2] = {"C", "D"};
    /* C into the caller's tensor, D new */
    ogi_tensor *outs[2] = {c, NULL};
    ogi_status st = ort->run(s, 2, ab, (const ogi_tensor *[]){a, b}, 2, cd, outs);
    const float *cv = c_data, *dv = outs[1] ? ogi_tensor_data(outs[1]) : NULL;
    CHECK(st == OGI_OK && outs[0] == c && ogi_tensor_data(c) == c_data && cv[5] == 66 && dv &&
              dv[5] == 66 * 6,
          "bound output: %s", ogi_last_error());
    ogi_tensor_free(outs[1]);
    /* the same output twice, once bound and once new */
    outs[0] = c;
    outs[1] = NULL;
    const char *cc[2] = {"C", "C"};
    st = ort->run(s, 2, ab, (const ogi_tensor *[]){a, b}, 2, cc, outs);
    CHECK(st == OGI_OK && outs[1] != NULL && ((float *)ogi_tensor_data(outs[1]))[0] == 11,
          "an output twice: %s", ogi_last_error());
    ogi_tensor_free(outs[1]);
    /* in place: C computed over A's own buffer (ORT must not read a
     * half-written A for D: D needs the old A, so only C is asked for) */
    outs[0] = a;
    st = ort->run(s, 2, ab, (const ogi_tensor *[]){a, b}, 1, cd, outs);
    const float *av2 = ogi_tensor_data(a);
    CHECK(st == OGI_OK && av2[0] == 11 && av2[5] == 66, "in place: %s (a[0] = %g)",
          ogi_last_error(), av2[0]);
    ogi_tensor_free(a);
    ogi_tensor_free(b);
    ogi_tensor_free(c);
    ort->free(s);

    s = open_ok(ort, model_overridable());
    if (s == NULL)
        return;
    CHECK(ort->input_count(s) == 2 && !strcmp(ort->input_name(s, 1), "W"),
          "an overridable initializer is an input");
    const int64_t d3[1] = {3};
    ogi_tensor *x = f32(1, d3, (float[]){1, 2, 3}), *w = f32(1, d3, (float[]){-1, -2, -3});
    ogi_tensor *y[1] = {NULL};
    const char *xw[2] = {"X", "W"}, *yn[1] = {"Y"};
    st = ort->run(s, 1, xw, (const ogi_tensor *[]){x}, 1, yn, y);
    CHECK(st == OGI_OK && ((float *)ogi_tensor_data(y[0]))[2] == 33, "default initializer: %s",
          ogi_last_error());
    ogi_tensor_free(y[0]);
    y[0] = NULL;
    st = ort->run(s, 2, xw, (const ogi_tensor *[]){x, w}, 1, yn, y);
    CHECK(st == OGI_OK && ((float *)ogi_tensor_data(y[0]))[2] == 0, "overridden initializer: %s",
          ogi_last_error());
    ogi_tensor_free(y[0]);
    ogi_tensor_free(x);
    ogi_tensor_free(w);
    ort->free(s);
}

typedef struct worker {
    backend_session *s;
    int id, bad;
} worker;

static void *run_many(void *arg)
{
    worker *w = arg;
    const int64_t dims[2] = {4, 3};
    float av[12], bv[12];
    for (int i = 0; i < 12; i++) {
        av[i] = (float)(w->id * 100 + i);
        bv[i] = 1.0f;
    }
    ogi_tensor *a = test_tensor_f32(2, dims, av), *b = test_tensor_f32(2, dims, bv);
    const char *ab[2] = {"A", "B"}, *cd[2] = {"C", "D"};
    for (int r = 0; r < 40; r++) {
        ogi_tensor *outs[2] = {NULL, NULL};
        if (ort->run(w->s, 2, ab, (const ogi_tensor *[]){a, b}, 2, cd, outs) != OGI_OK)
            w->bad++;
        else if (((float *)ogi_tensor_data(outs[1]))[11] != (av[11] + 1) * av[11])
            w->bad++;
        ogi_tensor_free(outs[0]);
        ogi_tensor_free(outs[1]);
    }
    ogi_tensor_free(a);
    ogi_tensor_free(b);
    return NULL;
}

static void test_threads(void)
{
    backend_session *s = open_ok(ort, model_add_mul());
    if (s == NULL)
        return;
    pthread_t t[4];
    worker w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (worker){.s = s, .id = i};
        pthread_create(&t[i], NULL, run_many, &w[i]);
    }
    int bad = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        bad += w[i].bad;
    }
    CHECK(bad == 0, "%d of 160 concurrent runs went wrong", bad);
    ort->free(s);
}

/* A build without ORT's headers: the backend is there and says why it cannot run. */
static bool test_unbuilt(void)
{
    backend_options o = {0};
    backend_session *s = NULL;
    if (ort->available(&o) || strstr(ogi_last_error(), "built without") == NULL)
        return false;
    ogi_status st = ort->open("/nonexistent.onnx", &o, &s);
    CHECK(st == OGI_ERR_NOT_FOUND && strstr(ogi_last_error(), "built without ONNX Runtime"),
          "unbuilt: %s", ogi_last_error());
    CHECK(!ogi_backend_available("ort"), "unbuilt: not available");
    printf("SKIP: %s\n", ogi_last_error());
    return true;
}

int main(void)
{
    if (mkdtemp(dir) == NULL)
        return 1;
    const char *lib = getenv("OGI_ORT_TEST_LIBRARY");
    unsetenv("OGI_ORT_LIBRARY");
    if (test_unbuilt()) {
        rmdir(dir);
        return test_finish("test_ort_backend", checks);
    }
    test_not_found();
    if (lib != NULL && access(lib, R_OK) == 0) {
        test_loading(lib);
        test_signature();
        test_dtypes();
        test_errors();
        test_options();
        test_bound_outputs();
        test_threads();
    } else {
        printf("SKIP: no ONNX Runtime library ($OGI_ORT_TEST_LIBRARY=%s): only the not-found "
               "paths were checked\n",
               lib ? lib : "unset");
    }
    char cmd[200];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        printf("could not remove %s\n", dir);
    return test_finish("test_ort_backend", checks);
}
