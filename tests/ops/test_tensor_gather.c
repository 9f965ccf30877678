/* TensorGather (ai.ogi 1) through the session API, on single-node models
 * made with the ONNX builder: linear and circular reads against a plain
 * multi-index loop on random shapes, axes and dtypes (sub-byte included);
 * TensorScatter-24 then TensorGather giving back the update in both modes;
 * the contiguity test behind the zero-copy path; and every error with its
 * message. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "onnx/writer.h"
#include "test_util.h"

/* Defined in src/ops/tensor_gather.c; no header, only this test calls it. */
bool tensor_gather_is_contiguous(int rank, const int64_t *dims, int axis, int64_t length,
                                 const int64_t *starts, bool circular, int64_t *elem_offset);

static int checks;
static uint64_t rng = 0x243f6a8885a308d3ull;
static char model_path[64];

static int64_t rand_below(int64_t n)
{
    return n > 0 ? (int64_t)(test_rand(&rng) % (uint64_t)n) : 0;
}

/* ---- models -------------------------------------------------------------------------- */

typedef struct gather_spec {
    ogi_dtype dtype;
    int64_t axis;
    const char *mode;       /* NULL: attribute left out (linear) */
    bool read_indices;      /* input 2 given */
    bool scatter;           /* TensorScatter writes the cache first */
    ogi_dtype length_dtype; /* OGI_INT64 unless testing errors */
} gather_spec;

static void add_tensor_io(onnx_builder *b, bool input, const char *name, ogi_dtype dtype)
{
    onnx_value_info v = {name, ONNX_VALUE_TENSOR, dtype, -1, NULL}; /* any shape */
    if (input)
        onnx_builder_add_input(b, onnx_builder_graph(b), &v);
    else
        onnx_builder_add_output(b, onnx_builder_graph(b), &v);
}

static void set_axis_mode(onnx_builder *b, onnx_node *n, const gather_spec *s)
{
    onnx_builder_set_attr_int(b, n, "axis", s->axis);
    if (s->mode != NULL)
        onnx_builder_set_attr_string(b, n, "mode", s->mode);
}

/* Inputs: [cache, update, write_indices,] data|present, length[, read_indices]. */
static ogi_session *gather_session(const gather_spec *s)
{
    onnx_builder *b;
    if (onnx_builder_create(&b) != OGI_OK)
        return NULL;
    onnx_graph *g = onnx_builder_graph(b);
    onnx_builder_set_opset(b, "", 24);
    onnx_builder_set_opset(b, "ai.ogi", 1);
    onnx_node *n;
    const char *data = "data";
    if (s->scatter) {
        add_tensor_io(b, true, "cache", s->dtype);
        add_tensor_io(b, true, "update", s->dtype);
        add_tensor_io(b, true, "write_indices", OGI_INT64);
        onnx_builder_add_simple_node(b, g, "TensorScatter", "", 3,
                                     (const char *[]){"cache", "update", "write_indices"}, 1,
                                     (const char *[]){"present"}, &n);
        set_axis_mode(b, n, s);
        data = "present";
    } else {
        add_tensor_io(b, true, "data", s->dtype);
    }
    add_tensor_io(b, true, "length", s->length_dtype);
    if (s->read_indices)
        add_tensor_io(b, true, "read_indices", OGI_INT64);
    add_tensor_io(b, false, "out", s->dtype);
    const char *ins[3] = {data, "length", "read_indices"};
    onnx_builder_add_simple_node(b, g, "TensorGather", "ai.ogi", s->read_indices ? 3 : 2, ins, 1,
                                 (const char *[]){"out"}, &n);
    set_axis_mode(b, n, s);
    ogi_session *session = NULL;
    ogi_status st = onnx_model_write(onnx_builder_model(b), model_path, NULL);
    if (st == OGI_OK)
        st = ogi_session_open(model_path, NULL, &session);
    TEST_CHECK(st == OGI_OK, "gather model: %s", ogi_last_error());
    onnx_builder_free(b);
    return session;
}

/* ---- tensors and the reference -------------------------------------------------------- */

static ogi_tensor *random_tensor(ogi_dtype dtype, int rank, const int64_t *dims)
{
    ogi_tensor *t;
    if (ogi_tensor_create(dtype, rank, dims, &t) != OGI_OK)
        return NULL;
    uint8_t *p = ogi_tensor_data(t);
    for (size_t i = 0; i < ogi_tensor_nbytes(t); i++)
        p[i] = (uint8_t)(dtype == OGI_BOOL ? test_rand(&rng) & 1 : test_rand(&rng) >> 56);
    return t;
}

static ogi_tensor *scalar_i64(int64_t v)
{
    return test_tensor_i64(0, NULL, &v);
}

/* Element i of a tensor's buffer as bits (packed types low bits first). */
static uint64_t elem_get(const uint8_t *p, int bits, int64_t i)
{
    if (bits < 8)
        return (p[i * bits / 8] >> (i * bits % 8)) & ((1u << bits) - 1);
    uint64_t v = 0;
    memcpy(&v, p + i * (bits / 8), (size_t)bits / 8);
    return v;
}

/* out[..., i, ...] = data[..., start(b) + i, ...] by full multi-indices. */
static void reference_gather(const ogi_tensor *data, int axis, int64_t length,
                             const int64_t *starts, bool circular, uint64_t *out)
{
    int rank = ogi_tensor_rank(data), bits = ogi_dtype_bits(ogi_tensor_dtype(data));
    const int64_t *dims = ogi_tensor_dims(data);
    int64_t odims[OGI_MAX_RANK], coord[OGI_MAX_RANK];
    memcpy(odims, dims, sizeof(int64_t) * (size_t)rank);
    odims[axis] = length;
    int64_t n = 1;
    for (int d = 0; d < rank; d++)
        n *= odims[d];
    for (int64_t i = 0; i < n; i++) {
        int64_t rest = i;
        for (int d = rank - 1; d >= 0; d--) {
            coord[d] = rest % odims[d];
            rest /= odims[d];
        }
        int64_t pos = starts[coord[0]] + coord[axis];
        if (circular)
            pos %= dims[axis];
        coord[axis] = pos;
        int64_t from = 0;
        for (int d = 0; d < rank; d++)
            from = from * dims[d] + coord[d];
        out[i] = elem_get(ogi_tensor_data((ogi_tensor *)data), bits, from);
    }
}

static ogi_status run_gather(ogi_session *s, const gather_spec *spec, ogi_tensor **ins, int n_in,
                             ogi_tensor **out)
{
    const char *names_plain[] = {"data", "length", "read_indices"};
    const char *names_scatter[] = {"cache", "update", "write_indices", "length", "read_indices"};
    *out = NULL;
    return ogi_session_run(s, (size_t)n_in, spec->scatter ? names_scatter : names_plain,
                           (const ogi_tensor *const *)ins, 1, (const char *[]){"out"}, out);
}

/* Checks shape and every element of out against expected. */
static bool check_output(const ogi_tensor *out, const ogi_tensor *data, int axis, int64_t length,
                         const uint64_t *expected, const char *what)
{
    checks++;
    int rank = ogi_tensor_rank(data);
    bool ok = ogi_tensor_dtype(out) == ogi_tensor_dtype(data) && ogi_tensor_rank(out) == rank;
    for (int d = 0; d < rank && ok; d++)
        ok = ogi_tensor_dims(out)[d] == (d == axis ? length : ogi_tensor_dims(data)[d]);
    TEST_CHECK(ok, "%s: wrong output dtype or shape", what);
    int bits = ogi_dtype_bits(ogi_tensor_dtype(out));
    for (int64_t i = 0; ok && i < ogi_tensor_numel(out); i++) {
        uint64_t got = elem_get(ogi_tensor_data((ogi_tensor *)out), bits, i);
        if (got != expected[i]) {
            TEST_CHECK(false, "%s: element %lld is %llx, expected %llx", what, (long long)i,
                       (unsigned long long)got, (unsigned long long)expected[i]);
            ok = false;
        }
    }
    return ok;
}

/* ---- random reads -------------------------------------------------------------------------- */

static const ogi_dtype all_dtypes[] = {
    OGI_FLOAT32,    OGI_UINT8,          OGI_INT8,       OGI_UINT16,       OGI_INT16,
    OGI_INT32,      OGI_INT64,          OGI_BOOL,       OGI_FLOAT16,      OGI_FLOAT64,
    OGI_UINT32,     OGI_UINT64,         OGI_BFLOAT16,   OGI_FLOAT8E4M3FN, OGI_FLOAT8E4M3FNUZ,
    OGI_FLOAT8E5M2, OGI_FLOAT8E5M2FNUZ, OGI_FLOAT8E8M0, OGI_UINT4,        OGI_INT4,
    OGI_FLOAT4E2M1, OGI_UINT2,          OGI_INT2,
};

/* A random shape of rank 2..5 (dims 0..4, some 1, batch 0..3) and axis. */
static int random_shape(int64_t *dims, int *axis)
{
    int rank = 2 + (int)rand_below(4);
    for (int d = 0; d < rank; d++)
        dims[d] = rand_below(10) == 0 ? 0 : 1 + rand_below(4);
    dims[0] = rand_below(8) == 0 ? 0 : 1 + rand_below(3);
    *axis = 1 + (int)rand_below(rank - 1);
    if (rand_below(3) == 0)
        dims[*axis] = 5 + rand_below(6); /* a longer cache */
    return rank;
}

static void random_case(bool circular, int iter)
{
    int64_t dims[OGI_MAX_RANK];
    int axis;
    int rank = random_shape(dims, &axis);
    int64_t max_seq = dims[axis];
    gather_spec spec = {all_dtypes[rand_below(sizeof(all_dtypes) / sizeof(all_dtypes[0]))],
                        rand_below(2) ? axis : axis - rank,
                        circular ? "circular" : NULL,
                        rand_below(4) != 0,
                        false,
                        OGI_INT64};
    if (!circular && rand_below(2))
        spec.mode = "linear";
    int64_t length = rand_below(max_seq + 1), starts[8] = {0};
    for (int64_t b = 0; b < dims[0] && spec.read_indices; b++)
        starts[b] = circular ? rand_below(3 * max_seq + 2) : rand_below(max_seq - length + 1);
    ogi_session *s = gather_session(&spec);
    if (s == NULL)
        return;
    ogi_tensor *ins[3] = {random_tensor(spec.dtype, rank, dims), scalar_i64(length),
                          test_tensor_i64(1, dims, starts)};
    ogi_tensor *out;
    ogi_status st = run_gather(s, &spec, ins, spec.read_indices ? 3 : 2, &out);
    char what[160];
    snprintf(what, sizeof(what), "%s case %d (%s, rank %d, axis %d, length %lld)",
             circular ? "circular" : "linear", iter, ogi_dtype_name(spec.dtype), rank, axis,
             (long long)length);
    checks++;
    TEST_CHECK(st == OGI_OK, "%s: %s", what, ogi_last_error());
    if (st == OGI_OK) {
        uint64_t *expected = malloc(sizeof(uint64_t) * (size_t)(ogi_tensor_numel(out) + 1));
        reference_gather(ins[0], axis, length, starts, circular, expected);
        check_output(out, ins[0], axis, length, expected, what);
        free(expected);
    }
    for (int i = 0; i < 3; i++)
        ogi_tensor_free(ins[i]);
    ogi_tensor_free(out);
    ogi_session_free(s);
}

/* ---- scatter, then gather -------------------------------------------------------------------- */

static void scatter_gather_case(bool circular, int iter)
{
    int64_t dims[OGI_MAX_RANK], udims[OGI_MAX_RANK];
    int axis;
    int rank = random_shape(dims, &axis);
    int64_t max_seq = dims[axis];
    int64_t seq = rand_below(max_seq + 1), idx[8] = {0};
    memcpy(udims, dims, sizeof(dims));
    udims[axis] = seq;
    for (int64_t b = 0; b < dims[0]; b++)
        idx[b] = circular ? rand_below(2 * max_seq + 1) : rand_below(max_seq - seq + 1);
    static const ogi_dtype types[] = {OGI_FLOAT32, OGI_FLOAT16, OGI_INT8, OGI_INT64, OGI_BFLOAT16};
    gather_spec spec = {
        types[rand_below(5)], axis, circular ? "circular" : "linear", true, true, OGI_INT64};
    ogi_session *s = gather_session(&spec);
    if (s == NULL)
        return;
    ogi_tensor *ins[5] = {random_tensor(spec.dtype, rank, dims),
                          random_tensor(spec.dtype, rank, udims), test_tensor_i64(1, dims, idx),
                          scalar_i64(seq), test_tensor_i64(1, dims, idx)};
    ogi_tensor *out;
    ogi_status st = run_gather(s, &spec, ins, 5, &out);
    char what[160];
    snprintf(what, sizeof(what), "scatter+gather %s case %d (rank %d, axis %d, seq %lld of %lld)",
             spec.mode, iter, rank, axis, (long long)seq, (long long)max_seq);
    checks++;
    TEST_CHECK(st == OGI_OK, "%s: %s", what, ogi_last_error());
    if (st == OGI_OK) {
        int bits = ogi_dtype_bits(spec.dtype);
        int64_t n = ogi_tensor_numel(ins[1]);
        uint64_t *expected = malloc(sizeof(uint64_t) * (size_t)(n + 1));
        for (int64_t i = 0; i < n; i++)
            expected[i] = elem_get(ogi_tensor_data(ins[1]), bits, i);
        check_output(out, ins[0], axis, seq, expected, what); /* the update itself */
        free(expected);
    }
    for (int i = 0; i < 5; i++)
        ogi_tensor_free(ins[i]);
    ogi_tensor_free(out);
    ogi_session_free(s);
}

/* ---- contiguity (the zero-copy condition) ------------------------------------------------------
 */

static void contiguous_case(int rank, const int64_t *dims, int axis, int64_t length,
                            const int64_t *starts, bool circular, bool want, int64_t want_offset)
{
    int64_t offset = -1;
    bool got = tensor_gather_is_contiguous(rank, dims, axis, length, starts, circular, &offset);
    checks++;
    TEST_CHECK(got == want && (!want || offset == want_offset),
               "contiguous(rank %d, axis %d, length %lld): got %d offset %lld, want %d offset %lld",
               rank, axis, (long long)length, got, (long long)offset, want, (long long)want_offset);
}

static void test_contiguous(void)
{
    const int64_t zero[2] = {0, 0}, two[2] = {2, 2}, seven[1] = {7}, nine[1] = {9};
    contiguous_case(3, (int64_t[]){1, 8, 4}, 1, 3, two, false, true, 8);
    contiguous_case(3, (int64_t[]){2, 8, 4}, 1, 3, two, false, false, 0);
    contiguous_case(3, (int64_t[]){2, 8, 4}, 1, 8, zero, false, true, 0);
    contiguous_case(3, (int64_t[]){1, 8, 4}, 1, 3, seven, true, false, 0); /* wraps */
    contiguous_case(3, (int64_t[]){1, 8, 4}, 1, 3, nine, true, true, 4);   /* 9 % 8 = 1 */
    contiguous_case(4, (int64_t[]){1, 2, 8, 4}, 2, 3, two, false, false, 0);
    contiguous_case(4, (int64_t[]){1, 1, 8, 4}, 2, 3, two, false, true, 8);
    contiguous_case(4, (int64_t[]){1, 2, 8, 4}, 2, 8, zero, false, true, 0);
    contiguous_case(3, (int64_t[]){2, 8, 4}, 1, 0, two, false, true, 0); /* empty */
    contiguous_case(3, (int64_t[]){1, 8, 4}, 2 - 1, 8, zero, true, true, 0);
}

/* ---- errors ---------------------------------------------------------------------------------- */

typedef struct error_case {
    const char *what;
    gather_spec spec;
    int rank;
    int64_t dims[4];
    int64_t length;  /* as a scalar, unless length_dims given */
    int length_rank; /* -1: scalar */
    int64_t length_dims[2];
    int idx_rank;
    int64_t idx_dims[2];
    int64_t idx[4];
    ogi_status status;
    const char *message; /* a piece of the error message */
} error_case;

static void error_run(const error_case *e)
{
    ogi_session *s = gather_session(&e->spec);
    if (s == NULL)
        return;
    ogi_tensor *ins[3] = {random_tensor(e->spec.dtype, e->rank, e->dims), NULL, NULL};
    if (e->spec.length_dtype != OGI_INT64) {
        ogi_tensor_create(e->spec.length_dtype, 0, NULL, &ins[1]);
    } else if (e->length_rank >= 0) {
        int64_t vals[4] = {e->length, e->length, e->length, e->length};
        ins[1] = test_tensor_i64(e->length_rank, e->length_dims, vals);
    } else {
        ins[1] = scalar_i64(e->length);
    }
    ins[2] = test_tensor_i64(e->idx_rank, e->idx_dims, e->idx);
    ogi_tensor *out;
    ogi_status st = run_gather(s, &e->spec, ins, e->spec.read_indices ? 3 : 2, &out);
    checks++;
    TEST_CHECK(st == e->status && strstr(ogi_last_error(), e->message) != NULL,
               "%s: got %s '%s', expected %s with '%s'", e->what, ogi_status_name(st),
               ogi_last_error(), ogi_status_name(e->status), e->message);
    for (int i = 0; i < 3; i++)
        ogi_tensor_free(ins[i]);
    ogi_tensor_free(out);
    ogi_session_free(s);
}

static void test_errors(void)
{
    const gather_spec lin = {OGI_FLOAT32, -2, "linear", true, false, OGI_INT64};
    gather_spec circ = lin, no_idx = lin, axis0 = lin, bad_mode = lin, len32 = lin;
    circ.mode = "circular";
    no_idx.read_indices = false;
    axis0.axis = 0;
    bad_mode.mode = "clamp";
    len32.length_dtype = OGI_INT32;
    const error_case cases[] = {
        {"linear read past the end",
         lin,
         3,
         {2, 8, 4},
         3,
         -1,
         {0},
         1,
         {2},
         {0, 6},
         OGI_ERR_RUNTIME,
         "read_indices[1] = 6 plus length 3 exceeds the sequence length 8"},
        {"negative length",
         lin,
         3,
         {2, 8, 4},
         -1,
         -1,
         {0},
         1,
         {2},
         {0, 0},
         OGI_ERR_RUNTIME,
         "length -1 is negative"},
        {"length over max_seq",
         no_idx,
         3,
         {2, 8, 4},
         9,
         -1,
         {0},
         1,
         {2},
         {0},
         OGI_ERR_RUNTIME,
         "length 9 exceeds the sequence axis 1 of size 8"},
        {"length over max_seq (circular)",
         circ,
         3,
         {2, 8, 4},
         9,
         -1,
         {0},
         1,
         {2},
         {0, 0},
         OGI_ERR_RUNTIME,
         "length 9 exceeds"},
        {"data of rank 1",
         no_idx,
         1,
         {8},
         1,
         -1,
         {0},
         1,
         {2},
         {0},
         OGI_ERR_RUNTIME,
         "input 0 (data): expected rank >= 2"},
        {"length of rank 2",
         lin,
         3,
         {2, 8, 4},
         1,
         2,
         {1, 1},
         1,
         {2},
         {0, 0},
         OGI_ERR_RUNTIME,
         "input 1 (length): expected a scalar, got shape [1,1]"},
        {"length with 2 elements",
         lin,
         3,
         {2, 8, 4},
         1,
         1,
         {2},
         1,
         {2},
         {0, 0},
         OGI_ERR_RUNTIME,
         "expected a scalar"},
        {"read_indices too long",
         lin,
         3,
         {2, 8, 4},
         1,
         -1,
         {0},
         1,
         {3},
         {0, 0, 0},
         OGI_ERR_RUNTIME,
         "input 2 (read_indices): expected shape [2] (the batch size), got [3]"},
        {"read_indices of rank 2",
         lin,
         3,
         {2, 8, 4},
         1,
         -1,
         {0},
         2,
         {2, 1},
         {0, 0},
         OGI_ERR_RUNTIME,
         "expected shape [2] (the batch size), got [2,1]"},
        {"negative read index",
         circ,
         3,
         {2, 8, 4},
         1,
         -1,
         {0},
         1,
         {2},
         {0, -1},
         OGI_ERR_RUNTIME,
         "read_indices[1] = -1 is negative"},
        {"batch axis",
         axis0,
         3,
         {2, 8, 4},
         1,
         -1,
         {0},
         1,
         {2},
         {0, 0},
         OGI_ERR_INVALID_MODEL,
         "axis must not be the batch axis"},
        {"unknown mode",
         bad_mode,
         3,
         {2, 8, 4},
         1,
         -1,
         {0},
         1,
         {2},
         {0, 0},
         OGI_ERR_INVALID_MODEL,
         "mode='clamp'"},
        {"int32 length",
         len32,
         3,
         {2, 8, 4},
         1,
         -1,
         {0},
         1,
         {2},
         {0, 0},
         OGI_ERR_INVALID_MODEL,
         "input 1 (length): expected int64, got int32"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        error_run(&cases[i]);
}

/* A 1-element 1-D length works like a scalar (shape arithmetic often makes
 * [1]); circular reads from the middle of a batch-1 cache (one copy). */
static void test_length_forms(void)
{
    gather_spec spec = {OGI_INT32, 1, "circular", true, false, OGI_INT64};
    ogi_session *s = gather_session(&spec);
    if (s == NULL)
        return;
    int64_t dims[3] = {1, 6, 2}, one = 1, start = 4;
    ogi_tensor *ins[3] = {random_tensor(OGI_INT32, 3, dims),
                          test_tensor_i64(1, &one, (int64_t[]){4}),
                          test_tensor_i64(1, &one, &start)};
    ogi_tensor *out;
    ogi_status st = run_gather(s, &spec, ins, 3, &out);
    checks++;
    TEST_CHECK(st == OGI_OK, "length [1]: %s", ogi_last_error());
    if (st == OGI_OK) {
        uint64_t expected[8];
        reference_gather(ins[0], 1, 4, &start, true, expected); /* positions 4 5 0 1 */
        check_output(out, ins[0], 1, 4, expected, "length [1], wrapping");
    }
    for (int i = 0; i < 3; i++)
        ogi_tensor_free(ins[i]);
    ogi_tensor_free(out);
    ogi_session_free(s);
}

int main(void)
{
    snprintf(model_path, sizeof(model_path), "/tmp/ogi_test_tensor_gather_%d.onnx", (int)getpid());
    test_contiguous();
    for (int i = 0; i < 150; i++)
        random_case(false, i);
    for (int i = 0; i < 150; i++)
        random_case(true, i);
    for (int i = 0; i < 60; i++)
        scatter_gather_case(i % 2 == 1, i);
    test_length_forms();
    test_errors();
    unlink(model_path);
    return test_finish("test_tensor_gather", checks);
}
