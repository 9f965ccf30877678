/* String tensors: string_data decoding, deep copies, the kernels that take
 * strings (Identity, Equal), and every other kernel refusing them. Run under
 * AddressSanitizer this also checks that no element's bytes leak or are
 * freed twice. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/tensor.h"
#include "onnx/onnx.h"
#include "onnx/writer.h"
#include "pb_writer.h"
#include "test_util.h"

static int checks = 0;

/* The fields of a STRING TensorProto (string_data, field 6): n elements of
 * lengths lens. */
static void pbw_strings_body(pbw *t, const char *name, int rank, const int64_t *dims, int n,
                             const char *const *s, const size_t *lens)
{
    for (int i = 0; i < rank; i++)
        pbw_int(t, 1, (uint64_t)dims[i]);
    pbw_int(t, 2, OGI_STRING);
    for (int i = 0; i < n; i++)
        pbw_bytes(t, 6, s[i], lens[i]);
    pbw_string(t, 8, name);
}

static void pbw_tensor_strings(pbw *b, uint32_t field, const char *name, int rank,
                               const int64_t *dims, int n, const char *const *s, const size_t *lens)
{
    pbw t = {0};
    pbw_strings_body(&t, name, rank, dims, n, s, lens);
    pbw_message(b, field, &t);
}

/* Parses a STRING TensorProto into a new tensor. */
static ogi_status parse_strings(int rank, const int64_t *dims, int n, const char *const *s,
                                const size_t *lens, ogi_tensor **out)
{
    pbw t = {0};
    pbw_strings_body(&t, "x", rank, dims, n, s, lens);
    ogi_status st = onnx_tensor_parse(t.data, t.len, out, NULL);
    pbw_free(&t);
    return st;
}

static bool string_is(const ogi_tensor *t, int64_t i, const char *s, size_t len)
{
    const ogi_string *e = &((const ogi_string *)t->data)[i];
    return e->len == len && (len == 0 || memcmp(e->data, s, len) == 0) &&
           (e->data == NULL || e->data[len] == '\0');
}

static void test_parse_and_clone(void)
{
    const char *s[3] = {"abc", "", "a\0b"};
    size_t lens[3] = {3, 0, 3};
    ogi_tensor *t = NULL;
    ogi_status st = parse_strings(1, (int64_t[]){3}, 3, s, lens, &t);
    TEST_CHECK(st == OGI_OK, "parse: %s", ogi_last_error());
    checks++;
    if (st != OGI_OK)
        return;
    TEST_CHECK(t->dtype == OGI_STRING && t->rank == 1 && t->dims[0] == 3 &&
                   t->nbytes == 3 * sizeof(ogi_string) && t->storage == TENSOR_OWNED,
               "shape or storage");
    checks++;
    ogi_tensor *c = NULL;
    st = tensor_clone(t, &c);
    TEST_CHECK(st == OGI_OK, "clone: %s", ogi_last_error());
    checks++;
    bool ok = st == OGI_OK;
    for (int i = 0; i < 3 && ok; i++) {
        ok = string_is(c, i, s[i], lens[i]) && string_is(t, i, s[i], lens[i]);
        /* a deep copy: no element shares bytes */
        const ogi_string *a = &((const ogi_string *)t->data)[i];
        const ogi_string *b = &((const ogi_string *)c->data)[i];
        ok = ok && (a->len == 0 || a->data != b->data);
    }
    TEST_CHECK(ok, "cloned elements differ or share bytes");
    checks++;
    /* generic sizing refuses strings: no byte copy can be made of them */
    size_t bytes;
    TEST_CHECK(!tensor_bytes_for(OGI_STRING, 3, &bytes) && ogi_dtype_bits(OGI_STRING) == 0,
               "strings must have no element size");
    checks++;
    ogi_tensor *made = NULL;
    TEST_CHECK(ogi_tensor_create(OGI_STRING, 1, (int64_t[]){3}, &made) == OGI_ERR_UNSUPPORTED,
               "ogi_tensor_create(string)");
    checks++;
    ogi_tensor_free(c);
    ogi_tensor_free(t);

    /* fewer strings than elements */
    st = parse_strings(1, (int64_t[]){4}, 3, s, lens, &t);
    TEST_CHECK(st == OGI_ERR_INVALID_MODEL, "4 elements, 3 strings: %s", ogi_status_name(st));
    checks++;
    /* an empty string tensor */
    st = parse_strings(2, (int64_t[]){0, 5}, 0, s, lens, &t);
    TEST_CHECK(st == OGI_OK && tensor_numel(t) == 0, "empty: %s", ogi_last_error());
    checks++;
    if (st == OGI_OK)
        ogi_tensor_free(t);
}

/* Writes m to a temporary file and opens it. */
static ogi_status open_model(pbw *m, ogi_session **s)
{
    char path[] = "/tmp/ogi-test-strings-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        return OGI_ERR_IO;
    close(fd);
    test_write_file(path, m->data, m->len);
    pbw_free(m);
    ogi_status st = ogi_session_open(path, NULL, s);
    unlink(path);
    return st;
}

/* y = Identity(x); w2 = Identity(w) (folded at load); eq = Equal(w2, x); the
 * constant w itself; x2 = Identity(x) (released after its reader);
 * eq_s = Equal(x2, scalar "b"); k = Constant(w's first two strings);
 * n = Size(x).
 * x: string[3]; w, s: initializers. */
static void build_model(pbw *m)
{
    pbw g = {0};
    const char *ws[3] = {"a", "bb", "a\0c"}, *scalar[1] = {"b"};
    size_t wlens[3] = {1, 2, 3}, slens[1] = {1};
    pbw_node(&g, "Identity", "id_x", 1, (const char *[]){"x"}, 1, (const char *[]){"y"});
    pbw_node(&g, "Identity", "id_w", 1, (const char *[]){"w"}, 1, (const char *[]){"w2"});
    pbw_node(&g, "Equal", "eq", 2, (const char *[]){"w2", "x"}, 1, (const char *[]){"eq"});
    pbw_node(&g, "Identity", "id_x2", 1, (const char *[]){"x"}, 1, (const char *[]){"x2"});
    pbw_node(&g, "Equal", "eq_s", 2, (const char *[]){"x2", "s"}, 1, (const char *[]){"eq_s"});
    pbw_node(&g, "Size", "size_x", 1, (const char *[]){"x"}, 1, (const char *[]){"n"});
    pbw node = {0}, attr = {0};
    pbw_string(&node, 2, "k");
    pbw_string(&node, 3, "const_k");
    pbw_string(&node, 4, "Constant");
    pbw_string(&attr, 1, "value");
    pbw_tensor_strings(&attr, 5, "", 1, (int64_t[]){2}, 2, ws, wlens);
    pbw_int(&attr, 20, 4); /* AttributeProto.TENSOR */
    pbw_message(&node, 5, &attr);
    pbw_message(&g, 1, &node);
    pbw_string(&g, 2, "g");
    pbw_tensor_strings(&g, 5, "w", 1, (int64_t[]){3}, 3, ws, wlens);
    pbw_tensor_strings(&g, 5, "s", 0, NULL, 1, scalar, slens);
    pbw_value_info(&g, 11, "x", OGI_STRING, 1, (int64_t[]){3});
    pbw_value_info(&g, 12, "y", OGI_STRING, 1, (int64_t[]){3});
    pbw_value_info(&g, 12, "eq", OGI_BOOL, 1, (int64_t[]){3});
    pbw_value_info(&g, 12, "w", OGI_STRING, 1, (int64_t[]){3});
    pbw_value_info(&g, 12, "eq_s", OGI_BOOL, 1, (int64_t[]){3});
    pbw_value_info(&g, 12, "k", OGI_STRING, 1, (int64_t[]){2});
    pbw_value_info(&g, 12, "n", OGI_INT64, 0, NULL);
    pbw_model(m, 10, 19, &g);
}

static void test_identity_equal(void)
{
    pbw m = {0};
    build_model(&m);
    ogi_session *s;
    ogi_status st = open_model(&m, &s);
    TEST_CHECK(st == OGI_OK, "open: %s", ogi_last_error());
    checks++;
    if (st != OGI_OK)
        return;
    const char *xs[3] = {"a", "b", "a\0d"};
    size_t xlens[3] = {1, 1, 3};
    ogi_tensor *x = NULL;
    st = parse_strings(1, (int64_t[]){3}, 3, xs, xlens, &x);
    TEST_CHECK(st == OGI_OK, "input: %s", ogi_last_error());
    checks++;
    const char *in_name = "x", *out_names[6] = {"y", "eq", "w", "eq_s", "k", "n"};
    const ogi_tensor *ins[1] = {x};
    for (int run = 0; run < 2 && st == OGI_OK; run++) {
        ogi_tensor *outs[6] = {0};
        st = ogi_session_run(s, 1, &in_name, ins, 6, out_names, outs);
        TEST_CHECK(st == OGI_OK, "run %d: %s", run, ogi_last_error());
        checks++;
        if (st != OGI_OK)
            break;
        bool ok = true;
        for (int i = 0; i < 3; i++)
            ok &= string_is(outs[0], i, xs[i], xlens[i]);
        TEST_CHECK(ok, "Identity(x) differs from x");
        checks++;
        const uint8_t *eq = outs[1]->data, *eq_s = outs[3]->data;
        TEST_CHECK(eq[0] == 1 && eq[1] == 0 && eq[2] == 0, "Equal(w, x) = %d %d %d", eq[0], eq[1],
                   eq[2]);
        checks++;
        TEST_CHECK(eq_s[0] == 0 && eq_s[1] == 1 && eq_s[2] == 0, "Equal(x, \"b\") = %d %d %d",
                   eq_s[0], eq_s[1], eq_s[2]);
        checks++;
        TEST_CHECK(string_is(outs[2], 2, "a\0c", 3) && outs[2]->storage == TENSOR_OWNED,
                   "constant output");
        checks++;
        TEST_CHECK(tensor_numel(outs[4]) == 2 && string_is(outs[4], 0, "a", 1) &&
                       string_is(outs[4], 1, "bb", 2),
                   "Constant output");
        checks++;
        TEST_CHECK(*(const int64_t *)outs[5]->data == 3, "Size(x)");
        checks++;
        for (int k = 0; k < 6; k++)
            ogi_tensor_free(outs[k]);
    }
    /* a string output cannot be computed into a caller's tensor */
    ogi_tensor *bound = NULL;
    if (st == OGI_OK && tensor_clone(x, &bound) == OGI_OK) {
        ogi_tensor *outs[1] = {bound};
        st = ogi_session_run(s, 1, &in_name, ins, 1, out_names, outs);
        TEST_CHECK(st == OGI_ERR_UNSUPPORTED && outs[0] == bound, "bound string output: %s",
                   ogi_status_name(st));
        checks++;
        ogi_tensor_free(bound);
    }
    ogi_tensor_free(x);
    ogi_session_free(s);
}

/* Kernels without string support refuse string inputs, computed ones and
 * constants (which constant folding leaves to the run to report). */
static void test_other_kernels_refuse(void)
{
    static const struct {
        const char *op, *input;
        int n_in;
    } cases[] = {
        {"Transpose", "x", 1},
        {"Reshape", "x", 2},
        {"Expand", "x", 2},
        {"Transpose", "w", 1},
    };
    const char *xs[3] = {"p", "q", "r"};
    size_t lens[3] = {1, 1, 1};
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        pbw g = {0}, m = {0};
        const char *in[2] = {cases[k].input, "shape"};
        pbw_node(&g, cases[k].op, "op", cases[k].n_in, in, 1, (const char *[]){"y"});
        pbw_string(&g, 2, "g");
        pbw_tensor_raw(&g, 5, "shape", OGI_INT64, 1, (int64_t[]){1}, (int64_t[]){3},
                       sizeof(int64_t));
        pbw_tensor_strings(&g, 5, "w", 1, (int64_t[]){3}, 3, xs, lens);
        pbw_value_info(&g, 11, "x", OGI_STRING, 1, (int64_t[]){3});
        pbw_value_info(&g, 12, "y", OGI_STRING, -1, NULL);
        pbw_model(&m, 10, 19, &g);
        ogi_session *s;
        ogi_status st = open_model(&m, &s);
        TEST_CHECK(st == OGI_OK, "%s(%s): open: %s", cases[k].op, cases[k].input, ogi_last_error());
        checks++;
        if (st != OGI_OK)
            continue;
        ogi_tensor *x = NULL;
        if (parse_strings(1, (int64_t[]){3}, 3, xs, lens, &x) == OGI_OK) {
            const char *in_name = "x", *out_name = "y";
            const ogi_tensor *ins[1] = {x};
            ogi_tensor *out = NULL;
            st = ogi_session_run(s, 1, &in_name, ins, 1, &out_name, &out);
            TEST_CHECK(st == OGI_ERR_UNSUPPORTED && out == NULL &&
                           strstr(ogi_last_error(), "string") != NULL,
                       "%s(%s): %s %s", cases[k].op, cases[k].input, ogi_status_name(st),
                       ogi_last_error());
            checks++;
            ogi_tensor_free(out);
            ogi_tensor_free(x);
        }
        ogi_session_free(s);
    }
}

/* A string initializer survives writing the model and reading it back. */
static void test_write_round_trip(void)
{
    pbw m = {0};
    build_model(&m);
    onnx_model *model = NULL, *again = NULL;
    void *data = NULL;
    size_t size = 0;
    ogi_status st = onnx_model_parse(m.data, m.len, NULL, &model);
    if (st == OGI_OK)
        st = onnx_model_write_buffer(model, NULL, &data, &size);
    if (st == OGI_OK)
        st = onnx_model_parse(data, size, NULL, &again);
    TEST_CHECK(st == OGI_OK, "round trip: %s", ogi_last_error());
    checks++;
    if (st == OGI_OK) {
        const onnx_graph *g = again->graph;
        const ogi_tensor *w = g->n_initializers > 0 ? &g->initializers[0].tensor : NULL;
        TEST_CHECK(w != NULL && w->dtype == OGI_STRING && tensor_numel(w) == 3 &&
                       string_is(w, 0, "a", 1) && string_is(w, 1, "bb", 2) &&
                       string_is(w, 2, "a\0c", 3),
                   "initializer 'w' after the round trip");
        checks++;
    }
    onnx_model_free(again);
    free(data);
    data = NULL;
    again = NULL;

    /* a builder deep-copies a string attribute tensor: the source may go */
    onnx_builder *b = NULL;
    ogi_tensor *t = NULL;
    const char *xs[2] = {"left", "right"};
    size_t lens[2] = {4, 5};
    st = model ? onnx_builder_from_model(model, &b) : OGI_ERR_INVALID_MODEL;
    if (st == OGI_OK)
        st = parse_strings(1, (int64_t[]){2}, 2, xs, lens, &t);
    if (st == OGI_OK)
        st = onnx_builder_set_attr_tensor(b, &onnx_builder_graph(b)->nodes[0], "extra", t);
    ogi_tensor_free(t);
    if (st == OGI_OK)
        st = onnx_model_write_buffer(onnx_builder_model(b), NULL, &data, &size);
    if (st == OGI_OK)
        st = onnx_model_parse(data, size, NULL, &again);
    TEST_CHECK(st == OGI_OK, "builder round trip: %s", ogi_last_error());
    checks++;
    if (st == OGI_OK) {
        const onnx_node *n = &again->graph->nodes[0];
        const onnx_attr *a = n->n_attrs == 1 ? &n->attrs[0] : NULL;
        TEST_CHECK(a != NULL && a->type == ONNX_ATTR_TENSOR && a->t->tensor.dtype == OGI_STRING &&
                       string_is(&a->t->tensor, 0, "left", 4) &&
                       string_is(&a->t->tensor, 1, "right", 5),
                   "attribute 'extra' after the round trip");
        checks++;
    }
    onnx_model_free(again);
    free(data);
    onnx_builder_free(b);
    onnx_model_free(model);
    pbw_free(&m);
}

int main(void)
{
    test_parse_and_clone();
    test_identity_equal();
    test_other_kernels_refuse();
    test_write_round_trip();
    return test_finish("test_strings", checks);
}
