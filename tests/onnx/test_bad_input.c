/* Malformed and malicious model files and wrong run inputs: each must give
 * a clear status and message, never a crash or a leak (run under ASan). */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/graph.h"
#include "onnx/onnx.h"
#include "pb_writer.h"
#include "test_util.h"

static int checks = 0;
static char tmp_dir[256];

/* Y = Add(X, W) with X [2] input and W [2] initializer (written by
 * add_weight). */
typedef void (*weight_fn)(pbw *graph, const void *arg);

static void weight_raw(pbw *g, const void *arg)
{
    (void)arg;
    float w[2] = {1.5f, -2.0f};
    pbw_tensor_raw(g, 5, "W", 1, 1, (int64_t[]){2}, w, sizeof(w));
}

typedef struct external_arg {
    const char *location, *offset, *length;
} external_arg;

static void weight_external(pbw *g, const void *arg)
{
    const external_arg *e = arg;
    pbw t = {0};
    pbw_int(&t, 1, 2);
    pbw_int(&t, 2, 1);
    pbw_string(&t, 8, "W");
    const char *keys[3] = {"location", "offset", "length"};
    const char *vals[3] = {e->location, e->offset, e->length};
    for (int i = 0; i < 3; i++) {
        if (vals[i] == NULL)
            continue;
        pbw kv = {0};
        pbw_string(&kv, 1, keys[i]);
        pbw_string(&kv, 2, vals[i]);
        pbw_message(&t, 13, &kv);
    }
    pbw_int(&t, 14, 1);
    pbw_message(g, 5, &t);
}

static void weight_dims(pbw *g, const void *arg)
{
    const int64_t *dims = arg;
    float w[2] = {0, 0};
    pbw_tensor_raw(g, 5, "W", 1, 2, dims, w, sizeof(w));
}

static void build_add_model(pbw *out, weight_fn weight, const void *arg)
{
    pbw g = {0};
    const char *in[2] = {"X", "W"}, *outs[1] = {"Y"};
    pbw_node(&g, "Add", "add0", 2, in, 1, outs);
    pbw_string(&g, 2, "g");
    weight(&g, arg);
    pbw_value_info(&g, 11, "X", 1, 1, (int64_t[]){2});
    pbw_value_info(&g, 12, "Y", 1, 1, (int64_t[]){2});
    pbw_model(out, 8, 17, &g);
}

static const char *write_model(const char *name, pbw *m)
{
    static char path[512];
    snprintf(path, sizeof(path), "%s/%s", tmp_dir, name);
    test_write_file(path, m->data, m->len);
    pbw_free(m);
    return path;
}

/* Opening must fail with `want` and a message containing `needle`. */
static void expect_open_error(const char *what, const char *path, ogi_status want,
                              const char *needle)
{
    ogi_session *s = NULL;
    ogi_status st = ogi_session_open(path, NULL, &s);
    TEST_CHECK(st == want, "%s: status %s, expected %s (%s)", what, ogi_status_name(st),
               ogi_status_name(want), ogi_last_error());
    TEST_CHECK(strstr(ogi_last_error(), needle) != NULL, "%s: message '%s' lacks '%s'", what,
               ogi_last_error(), needle);
    checks += 2;
    printf("%-40s -> %s: %s\n", what, ogi_status_name(st), ogi_last_error());
    ogi_session_free(s);
}

static void test_valid_model_runs(void)
{
    pbw m = {0};
    build_add_model(&m, weight_raw, NULL);
    const char *path = write_model("valid.onnx", &m);
    ogi_session *s;
    ogi_status st = ogi_session_open(path, NULL, &s);
    TEST_CHECK(st == OGI_OK, "valid model: %s", ogi_last_error());
    checks++;
    if (st != OGI_OK)
        return;
    float x[2] = {1, 2};
    ogi_tensor *in = test_tensor_f32(1, (int64_t[]){2}, x), *out = NULL;
    const char *in_name = "X", *out_name = "Y";
    st = ogi_session_run(s, 1, &in_name, (const ogi_tensor *const *)&in, 1, &out_name, &out);
    TEST_CHECK(st == OGI_OK, "valid run: %s", ogi_last_error());
    checks++;
    if (st == OGI_OK) {
        const float *y = ogi_tensor_data(out);
        TEST_CHECK(y[0] == 2.5f && y[1] == 0.0f, "Add gave %g %g", y[0], y[1]);
        checks++;
    }
    ogi_tensor_free(out);

    /* wrong inputs at run time */
    const char *bad_name = "nope";
    st = ogi_session_run(s, 1, &bad_name, (const ogi_tensor *const *)&in, 1, &out_name, &out);
    TEST_CHECK(st == OGI_ERR_NOT_FOUND && strstr(ogi_last_error(), "nope"), "unknown input: %s",
               ogi_last_error());
    st = ogi_session_run(s, 0, NULL, NULL, 1, &out_name, &out);
    TEST_CHECK(st == OGI_ERR_INVALID_ARGUMENT && strstr(ogi_last_error(), "'X' was not given"),
               "missing input: %s", ogi_last_error());
    ogi_tensor *wrong_type = test_tensor_i64(1, (int64_t[]){2}, (int64_t[]){1, 2});
    st =
        ogi_session_run(s, 1, &in_name, (const ogi_tensor *const *)&wrong_type, 1, &out_name, &out);
    TEST_CHECK(st == OGI_ERR_INVALID_ARGUMENT && strstr(ogi_last_error(), "dtype"),
               "wrong dtype: %s", ogi_last_error());
    ogi_tensor *wrong_shape = test_tensor_f32(1, (int64_t[]){3}, NULL);
    st = ogi_session_run(s, 1, &in_name, (const ogi_tensor *const *)&wrong_shape, 1, &out_name,
                         &out);
    TEST_CHECK(st == OGI_ERR_INVALID_ARGUMENT && strstr(ogi_last_error(), "dim 0 must be 2"),
               "wrong shape: %s", ogi_last_error());
    ogi_tensor *wrong_rank = test_tensor_f32(2, (int64_t[]){1, 2}, NULL);
    st =
        ogi_session_run(s, 1, &in_name, (const ogi_tensor *const *)&wrong_rank, 1, &out_name, &out);
    TEST_CHECK(st == OGI_ERR_INVALID_ARGUMENT && strstr(ogi_last_error(), "rank"), "wrong rank: %s",
               ogi_last_error());
    const char *bad_out = "Z";
    st = ogi_session_run(s, 1, &in_name, (const ogi_tensor *const *)&in, 1, &bad_out, &out);
    TEST_CHECK(st == OGI_ERR_NOT_FOUND, "unknown output: %s", ogi_last_error());
    checks += 6;
    ogi_tensor_free(in);
    ogi_tensor_free(wrong_type);
    ogi_tensor_free(wrong_shape);
    ogi_tensor_free(wrong_rank);
    ogi_session_free(s);
}

static void test_absurd_dims(void)
{
    pbw m = {0};
    int64_t huge[2] = {(int64_t)1 << 31, (int64_t)1 << 31};
    build_add_model(&m, weight_dims, huge);
    expect_open_error("absurd dims (2^62 elements)", write_model("dims.onnx", &m),
                      OGI_ERR_INVALID_MODEL, "'W'");
    int64_t overflow[2] = {(int64_t)1 << 62, 16};
    build_add_model(&m, weight_dims, overflow);
    expect_open_error("dims overflowing int64", write_model("dims2.onnx", &m),
                      OGI_ERR_INVALID_MODEL, "'W'");
}

static void test_external_data(void)
{
    char path[600];
    float w[4] = {1, 2, 3, 4};
    snprintf(path, sizeof(path), "%s/w.bin", tmp_dir);
    test_write_file(path, w, sizeof(w));
    struct {
        const char *what;
        external_arg arg;
        ogi_status want;
        const char *needle;
    } cases[] = {
        {"external: negative offset", {"w.bin", "-5", NULL}, OGI_ERR_INVALID_MODEL, "offset"},
        {"external: offset overflows",
         {"w.bin", "99999999999999999999999", NULL},
         OGI_ERR_INVALID_MODEL,
         "offset"},
        {"external: offset past the end", {"w.bin", "12", NULL}, OGI_ERR_INVALID_MODEL, "beyond"},
        {"external: huge offset",
         {"w.bin", "9223372036854775800", NULL},
         OGI_ERR_INVALID_MODEL,
         "beyond"},
        {"external: wrong length", {"w.bin", "0", "12"}, OGI_ERR_INVALID_MODEL, "length"},
        {"external: '..' in path", {"../w.bin", NULL, NULL}, OGI_ERR_INVALID_MODEL, "leaves"},
        {"external: '..' inside path",
         {"sub/../../x.bin", NULL, NULL},
         OGI_ERR_INVALID_MODEL,
         "leaves"},
        {"external: absolute path", {"/etc/passwd", NULL, NULL}, OGI_ERR_INVALID_MODEL, "relative"},
        {"external: symlink outside", {"link.bin", NULL, NULL}, OGI_ERR_INVALID_MODEL, "outside"},
        {"external: missing file", {"absent.bin", NULL, NULL}, OGI_ERR_IO, "absent.bin"},
        {"external: no location", {NULL, "0", NULL}, OGI_ERR_INVALID_MODEL, "location"},
    };
    snprintf(path, sizeof(path), "%s/link.bin", tmp_dir);
    TEST_CHECK(symlink("/etc/hostname", path) == 0, "cannot create symlink");
    checks++;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        pbw m = {0};
        build_add_model(&m, weight_external, &cases[i].arg);
        expect_open_error(cases[i].what, write_model("ext.onnx", &m), cases[i].want,
                          cases[i].needle);
    }
    /* and the good case: mapped, offset 4, length 8 */
    external_arg good = {"w.bin", "4", "8"};
    pbw m = {0};
    build_add_model(&m, weight_external, &good);
    ogi_session *s;
    ogi_status st = ogi_session_open(write_model("ext_ok.onnx", &m), NULL, &s);
    TEST_CHECK(st == OGI_OK, "valid external data: %s", ogi_last_error());
    checks++;
    ogi_session_free(s);
}

static void test_graph_structure(void)
{
    /* a cycle: Y1 = Add(X, Y2); Y2 = Add(Y1, X) */
    pbw g = {0}, m = {0};
    const char *a_in[2] = {"X", "Y2"}, *a_out[1] = {"Y1"};
    const char *b_in[2] = {"Y1", "X"}, *b_out[1] = {"Y2"};
    pbw_node(&g, "Add", "a", 2, a_in, 1, a_out);
    pbw_node(&g, "Add", "b", 2, b_in, 1, b_out);
    pbw_value_info(&g, 11, "X", 1, 1, (int64_t[]){2});
    pbw_value_info(&g, 12, "Y1", 1, 1, (int64_t[]){2});
    pbw_model(&m, 8, 17, &g);
    expect_open_error("cyclic graph", write_model("cycle.onnx", &m), OGI_ERR_INVALID_MODEL,
                      "cycle");

    /* a node reading a name nothing produces */
    const char *c_in[2] = {"X", "ghost"}, *c_out[1] = {"Y"};
    pbw_node(&g, "Add", "c", 2, c_in, 1, c_out);
    pbw_value_info(&g, 11, "X", 1, 1, (int64_t[]){2});
    pbw_value_info(&g, 12, "Y", 1, 1, (int64_t[]){2});
    pbw_model(&m, 8, 17, &g);
    expect_open_error("missing node input", write_model("ghost.onnx", &m), OGI_ERR_INVALID_MODEL,
                      "'ghost'");

    /* an output nothing produces */
    pbw_value_info(&g, 11, "X", 1, 1, (int64_t[]){2});
    pbw_value_info(&g, 12, "Y", 1, 1, (int64_t[]){2});
    pbw_model(&m, 8, 17, &g);
    expect_open_error("missing output", write_model("noout.onnx", &m), OGI_ERR_INVALID_MODEL,
                      "'Y'");

    /* two nodes writing one value */
    const char *d_in[2] = {"X", "X"}, *d_out[1] = {"Y"};
    pbw_node(&g, "Add", "d1", 2, d_in, 1, d_out);
    pbw_node(&g, "Add", "d2", 2, d_in, 1, d_out);
    pbw_value_info(&g, 11, "X", 1, 1, (int64_t[]){2});
    pbw_value_info(&g, 12, "Y", 1, 1, (int64_t[]){2});
    pbw_model(&m, 8, 17, &g);
    expect_open_error("value produced twice", write_model("twice.onnx", &m), OGI_ERR_INVALID_MODEL,
                      "twice");

    /* an op nobody implements */
    pbw_node(&g, "NoSuchOp", "e", 1, d_in, 1, d_out);
    pbw_value_info(&g, 11, "X", 1, 1, (int64_t[]){2});
    pbw_value_info(&g, 12, "Y", 1, 1, (int64_t[]){2});
    pbw_model(&m, 8, 17, &g);
    expect_open_error("unknown op", write_model("unknown.onnx", &m), OGI_ERR_UNSUPPORTED,
                      "NoSuchOp");

    /* IR version out of range, and no graph at all */
    pbw_value_info(&g, 11, "X", 1, 1, (int64_t[]){2});
    pbw_model(&m, 99, 17, &g);
    expect_open_error("IR version 99", write_model("ir.onnx", &m), OGI_ERR_UNSUPPORTED,
                      "IR version");
    pbw_int(&m, 1, 8);
    expect_open_error("no graph", write_model("nograph.onnx", &m), OGI_ERR_INVALID_MODEL,
                      "no graph");
    expect_open_error("missing file", "/nonexistent/model.onnx", OGI_ERR_IO, "nonexistent");
}

/* Truncations and byte flips of a real exported model. */
static void test_mutations(void)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/models/tiny/llama-legacy-op17/model.onnx", test_shared_dir());
    size_t size;
    unsigned char *orig = test_read_file(path, &size);
    TEST_CHECK(orig != NULL, "cannot read %s", path);
    checks++;
    if (orig == NULL)
        return;
    int truncated_errors = 0, truncations = 0;
    for (size_t cut = 0; cut < size; cut += size / 257 + 1) {
        onnx_model *m = NULL;
        ogi_status st = onnx_model_parse(orig, cut, NULL, &m);
        if (st == OGI_OK) {
            graph *g = NULL;
            st = graph_build(m, NULL, &g);
            graph_free(g);
        }
        truncations++;
        truncated_errors += st != OGI_OK;
        TEST_CHECK(st == OGI_OK || ogi_last_error()[0] != '\0', "truncation %zu: no message", cut);
        onnx_model_free(m);
    }
    /* the graph is one message spanning nearly the whole file: any cut of it fails */
    TEST_CHECK(truncated_errors == truncations, "%d of %d truncations were accepted",
               truncations - truncated_errors, truncations);
    checks += 2;
    printf("truncations: %d of %d rejected\n", truncated_errors, truncations);

    unsigned char *copy = malloc(size);
    uint64_t rng = 0x9e3779b97f4a7c15ull;
    int rejected = 0, flips = 300;
    for (int i = 0; i < flips; i++) {
        memcpy(copy, orig, size);
        for (int k = 0; k < 4; k++)
            copy[test_rand(&rng) % size] ^= (unsigned char)(1u << (test_rand(&rng) % 8));
        onnx_model *m = NULL;
        ogi_status st = onnx_model_parse(copy, size, NULL, &m);
        if (st == OGI_OK) {
            graph *g = NULL;
            st = graph_build(m, NULL, &g);
            graph_free(g);
        }
        rejected += st != OGI_OK;
        TEST_CHECK(st == OGI_OK || ogi_last_error()[0] != '\0', "flip %d: no message", i);
        onnx_model_free(m);
    }
    checks++;
    printf("byte flips: %d of %d rejected, the rest still well-formed\n", rejected, flips);
    free(copy);
    free(orig);
}

int main(void)
{
    snprintf(tmp_dir, sizeof(tmp_dir), "/tmp/ogi-bad-input-XXXXXX");
    if (mkdtemp(tmp_dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    test_valid_model_runs();
    test_absurd_dims();
    test_external_data();
    test_graph_structure();
    test_mutations();
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmp_dir);
    return test_finish("test_bad_input", checks);
}
