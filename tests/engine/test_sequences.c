/* Sequences and optionals: SequenceProto / OptionalProto decoding, deep
 * copies, sequence graph inputs and outputs, and kernels that do not take
 * sequences refusing them. Run under AddressSanitizer this also checks that
 * no item leaks or is freed twice. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/tensor.h"
#include "onnx/onnx.h"
#include "pb_writer.h"
#include "test_util.h"

static int checks = 0;

/* SequenceProto / OptionalProto with n float tensors [2] of value v, v+1, ... */
static void pbw_float_items(pbw *b, int n, float v)
{
    pbw_string(b, 1, "s");
    pbw_int(b, 2, 1); /* elem_type TENSOR */
    for (int i = 0; i < n; i++) {
        float vals[2] = {v + (float)i, -(v + (float)i)};
        pbw_tensor_raw(b, 3, "", OGI_FLOAT32, 1, (int64_t[]){2}, vals, sizeof(vals));
    }
}

static bool item_is(const ogi_tensor *t, float v)
{
    return t->kind == TENSOR_KIND_TENSOR && t->dtype == OGI_FLOAT32 && t->rank == 1 &&
           t->dims[0] == 2 && ((const float *)t->data)[0] == v && ((const float *)t->data)[1] == -v;
}

static void test_parse_and_clone(void)
{
    pbw seq = {0};
    pbw_float_items(&seq, 3, 1.0f);
    ogi_tensor *s = NULL, *copy = NULL;
    char *name = NULL;
    ogi_status st = onnx_value_parse(seq.data, seq.len, TENSOR_KIND_SEQUENCE, &s, &name);
    TEST_CHECK(st == OGI_OK, "parse: %s", ogi_last_error());
    checks++;
    if (st == OGI_OK) {
        TEST_CHECK(s->kind == TENSOR_KIND_SEQUENCE && s->n_items == 3 && item_is(s->items[2], 3),
                   "parsed sequence");
        TEST_CHECK(name != NULL && strcmp(name, "s") == 0, "name");
        st = tensor_clone(s, &copy);
        TEST_CHECK(st == OGI_OK && copy->n_items == 3 && copy->items[0] != s->items[0] &&
                       copy->items[0]->data != s->items[0]->data && item_is(copy->items[0], 1),
                   "deep clone");
        checks += 3;
    }
    ogi_tensor_free(copy);
    ogi_tensor_free(s);
    free(name);

    /* optional(sequence) and an empty optional */
    pbw opt = {0}, inner = {0}, none = {0};
    pbw_float_items(&inner, 2, 5.0f);
    pbw_int(&opt, 2, 3); /* elem_type SEQUENCE */
    pbw_message(&opt, 5, &inner);
    st = onnx_value_parse(opt.data, opt.len, TENSOR_KIND_OPTIONAL, &s, NULL);
    TEST_CHECK(st == OGI_OK && s->kind == TENSOR_KIND_OPTIONAL && s->n_items == 1 &&
                   s->items[0]->kind == TENSOR_KIND_SEQUENCE && s->items[0]->n_items == 2 &&
                   item_is(s->items[0]->items[1], 6),
               "optional(sequence): %s", ogi_last_error());
    checks++;
    if (st == OGI_OK)
        ogi_tensor_free(s);
    pbw_int(&none, 2, 0);
    st = onnx_value_parse(none.data, none.len, TENSOR_KIND_OPTIONAL, &s, NULL);
    TEST_CHECK(st == OGI_OK && s->n_items == 0, "empty optional: %s", ogi_last_error());
    checks++;
    if (st == OGI_OK)
        ogi_tensor_free(s);
    pbw_free(&seq);
    pbw_free(&opt);
    pbw_free(&none);
}

/* A value_info of type seq(tensor(float)). */
static void pbw_seq_value_info(pbw *g, uint32_t field, const char *name)
{
    pbw vi = {0}, type = {0}, seq = {0}, elem = {0}, tensor = {0};
    pbw_int(&tensor, 1, OGI_FLOAT32);
    pbw_message(&elem, 1, &tensor);
    pbw_message(&seq, 1, &elem);
    pbw_message(&type, 4, &seq);
    pbw_string(&vi, 1, name);
    pbw_message(&vi, 2, &type);
    pbw_message(g, field, &vi);
}

static ogi_status open_model(pbw *m, ogi_session **s)
{
    char path[] = "/tmp/ogi-test-sequences-XXXXXX";
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

/* s = SequenceConstruct(x, x); t = SequenceInsert(s, x, 0) (s released
 * after it); n = SequenceLength(t); y = SequenceAt(t, -1); s2 = Identity(in)
 * where in is a sequence input; c = ConcatFromSequence(t, axis 0). */
static void test_run(void)
{
    pbw g = {0}, m = {0};
    int64_t minus_one = -1;
    pbw_node(&g, "SequenceConstruct", "sc", 2, (const char *[]){"x", "x"}, 1,
             (const char *[]){"s"});
    pbw_node(&g, "SequenceInsert", "si", 2, (const char *[]){"s", "x"}, 1, (const char *[]){"t"});
    pbw_node(&g, "SequenceLength", "sl", 1, (const char *[]){"t"}, 1, (const char *[]){"n"});
    pbw_node(&g, "SequenceAt", "sa", 2, (const char *[]){"t", "k"}, 1, (const char *[]){"y"});
    pbw_node(&g, "Identity", "id", 1, (const char *[]){"in"}, 1, (const char *[]){"s2"});
    pbw_node(&g, "ConcatFromSequence", "cat", 1, (const char *[]){"t"}, 1, (const char *[]){"c"});
    pbw_string(&g, 2, "g");
    pbw_tensor_raw(&g, 5, "k", OGI_INT64, 0, NULL, &minus_one, sizeof(minus_one));
    pbw_value_info(&g, 11, "x", OGI_FLOAT32, 1, (int64_t[]){2});
    pbw_seq_value_info(&g, 11, "in");
    pbw_value_info(&g, 12, "n", OGI_INT64, 0, NULL);
    pbw_value_info(&g, 12, "y", OGI_FLOAT32, 1, (int64_t[]){2});
    pbw_seq_value_info(&g, 12, "s2");
    pbw_seq_value_info(&g, 12, "t");
    pbw_value_info(&g, 12, "c", OGI_FLOAT32, 1, (int64_t[]){6});
    pbw_model(&m, 8, 17, &g);
    ogi_session *s;
    ogi_status st = open_model(&m, &s);
    TEST_CHECK(st == OGI_OK, "open: %s", ogi_last_error());
    checks++;
    if (st != OGI_OK)
        return;
    pbw seq = {0};
    pbw_float_items(&seq, 2, 7.0f);
    ogi_tensor *in = NULL, *x = test_tensor_f32(1, (int64_t[]){2}, (float[]){4, -4});
    st = onnx_value_parse(seq.data, seq.len, TENSOR_KIND_SEQUENCE, &in, NULL);
    pbw_free(&seq);
    TEST_CHECK(st == OGI_OK, "input: %s", ogi_last_error());
    const char *in_names[2] = {"x", "in"}, *out_names[5] = {"n", "y", "s2", "t", "c"};
    const ogi_tensor *ins[2] = {x, in};
    for (int run = 0; run < 2 && st == OGI_OK; run++) {
        ogi_tensor *outs[5] = {0};
        st = ogi_session_run(s, 2, in_names, ins, 5, out_names, outs);
        TEST_CHECK(st == OGI_OK, "run %d: %s", run, ogi_last_error());
        checks++;
        if (st != OGI_OK)
            break;
        TEST_CHECK(*(const int64_t *)outs[0]->data == 3 && item_is(outs[1], 4), "length, at");
        TEST_CHECK(outs[2]->kind == TENSOR_KIND_SEQUENCE && outs[2]->n_items == 2 &&
                       outs[2]->items[0] != in->items[0] && item_is(outs[2]->items[1], 8),
                   "Identity(sequence) is a deep copy");
        TEST_CHECK(outs[3]->n_items == 3 && outs[3]->storage == TENSOR_OWNED, "inserted");
        TEST_CHECK(outs[4]->dims[0] == 6 && ((const float *)outs[4]->data)[5] == -4, "concat");
        checks += 4;
        for (int k = 0; k < 5; k++)
            ogi_tensor_free(outs[k]);
    }
    /* a sequence output cannot be bound to a caller's tensor */
    ogi_tensor *bound = test_tensor_f32(1, (int64_t[]){2}, (float[]){0, 0});
    ogi_tensor *outs[1] = {bound};
    st = ogi_session_run(s, 2, in_names, ins, 1, (const char *[]){"t"}, outs);
    TEST_CHECK(st == OGI_ERR_UNSUPPORTED && outs[0] == bound, "bound sequence output: %s",
               ogi_status_name(st));
    /* nor given where a tensor is declared */
    const ogi_tensor *swapped[2] = {in, in};
    ogi_tensor *n = NULL;
    st = ogi_session_run(s, 2, in_names, swapped, 1, (const char *[]){"n"}, &n);
    TEST_CHECK(st == OGI_ERR_INVALID_ARGUMENT && n == NULL, "sequence for a tensor input: %s",
               ogi_status_name(st));
    checks += 2;
    ogi_tensor_free(bound);
    ogi_tensor_free(x);
    ogi_tensor_free(in);
    ogi_session_free(s);
}

/* Relu(sequence) is refused, not run on the container's empty buffer. */
static void test_other_kernels_refuse(void)
{
    pbw g = {0}, m = {0};
    pbw_node(&g, "Relu", "relu", 1, (const char *[]){"in"}, 1, (const char *[]){"y"});
    pbw_string(&g, 2, "g");
    pbw_seq_value_info(&g, 11, "in");
    pbw_value_info(&g, 12, "y", OGI_FLOAT32, 1, (int64_t[]){2});
    pbw_model(&m, 8, 17, &g);
    ogi_session *s;
    ogi_status st = open_model(&m, &s);
    TEST_CHECK(st == OGI_OK, "open: %s", ogi_last_error());
    checks++;
    if (st != OGI_OK)
        return;
    pbw seq = {0};
    pbw_float_items(&seq, 1, 1.0f);
    ogi_tensor *in = NULL, *y = NULL;
    st = onnx_value_parse(seq.data, seq.len, TENSOR_KIND_SEQUENCE, &in, NULL);
    pbw_free(&seq);
    if (st == OGI_OK)
        st = ogi_session_run(s, 1, (const char *[]){"in"}, (const ogi_tensor *const[]){in}, 1,
                             (const char *[]){"y"}, &y);
    TEST_CHECK(st == OGI_ERR_UNSUPPORTED && y == NULL, "Relu(sequence): %s", ogi_status_name(st));
    checks++;
    ogi_tensor_free(in);
    ogi_session_free(s);
}

int main(void)
{
    test_parse_and_clone();
    test_run();
    test_other_kernels_refuse();
    return test_finish("test_sequences", checks);
}
