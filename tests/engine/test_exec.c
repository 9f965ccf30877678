/* Executor behaviour: outputs computed into caller-bound tensors, in-place
 * cache updates, the lifetime-planned arena reused across runs, and results
 * that do not depend on the thread count. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/exec.h"
#include "engine/exec_internal.h"
#include "onnx/onnx.h"
#include "pb_writer.h"
#include "test_util.h"

static int checks = 0;

/* present = TensorScatter(past [1,2,8,4], update [1,2,1,4], write_indices [1]) */
static void build_scatter_model(pbw *m)
{
    pbw g = {0};
    const char *in[3] = {"past", "update", "write_indices"}, *out[1] = {"present"};
    pbw_node(&g, "TensorScatter", "scatter", 3, in, 1, out);
    pbw_string(&g, 2, "g");
    pbw_value_info(&g, 11, "past", 1, 4, (int64_t[]){1, 2, 8, 4});
    pbw_value_info(&g, 11, "update", 1, 4, (int64_t[]){1, 2, 1, 4});
    pbw_value_info(&g, 11, "write_indices", 7, 1, (int64_t[]){1});
    pbw_value_info(&g, 12, "present", 1, 4, (int64_t[]){1, 2, 8, 4});
    pbw_model(m, 10, 24, &g);
}

static void test_bound_inplace(void)
{
    pbw m = {0};
    build_scatter_model(&m);
    char path[] = "/tmp/ogi-test-exec-XXXXXX";
    int fd = mkstemp(path);
    TEST_CHECK(fd >= 0, "mkstemp");
    checks++;
    if (fd < 0)
        return;
    close(fd);
    test_write_file(path, m.data, m.len);
    pbw_free(&m);
    ogi_session *s;
    ogi_status st = ogi_session_open(path, NULL, &s);
    TEST_CHECK(st == OGI_OK, "open: %s", ogi_last_error());
    checks++;
    unlink(path);
    if (st != OGI_OK)
        return;
    ogi_tensor *past = test_tensor_f32(4, (int64_t[]){1, 2, 8, 4}, NULL);
    ogi_tensor *update = test_tensor_f32(4, (int64_t[]){1, 2, 1, 4}, NULL);
    float *p = ogi_tensor_data(past), *u = ogi_tensor_data(update);
    for (int i = 0; i < 64; i++)
        p[i] = (float)i;
    for (int i = 0; i < 8; i++)
        u[i] = -1.0f - (float)i;
    const char *names[3] = {"past", "update", "write_indices"}, *out_name = "present";
    for (int64_t pos = 0; pos < 8; pos++) {
        ogi_tensor *idx = test_tensor_i64(1, (int64_t[]){1}, &pos);
        const ogi_tensor *ins[3] = {past, update, idx};
        ogi_tensor *out = past; /* bound to the cache itself: updated in place */
        st = ogi_session_run(s, 3, names, ins, 1, &out_name, &out);
        TEST_CHECK(st == OGI_OK && out == past, "run %lld: %s", (long long)pos, ogi_last_error());
        checks++;
        ogi_tensor_free(idx);
    }
    /* every position of both heads now holds the update */
    bool ok = true;
    for (int h = 0; h < 2; h++)
        for (int pos = 0; pos < 8; pos++)
            for (int d = 0; d < 4; d++)
                ok &= p[(h * 8 + pos) * 4 + d] == u[h * 4 + d];
    TEST_CHECK(ok, "the bound cache was not updated in place");
    checks++;

    /* a bound tensor of the wrong shape is refused, and left untouched */
    ogi_tensor *wrong = test_tensor_f32(4, (int64_t[]){1, 2, 7, 4}, NULL);
    int64_t zero = 0;
    ogi_tensor *idx = test_tensor_i64(1, (int64_t[]){1}, &zero);
    const ogi_tensor *ins[3] = {past, update, idx};
    ogi_tensor *out = wrong;
    st = ogi_session_run(s, 3, names, ins, 1, &out_name, &out);
    TEST_CHECK(st == OGI_ERR_RUNTIME && out == wrong && strstr(ogi_last_error(), "bound"),
               "wrong bound shape: %s %s", ogi_status_name(st), ogi_last_error());
    checks++;
    /* out of range write index in linear mode: a clear error */
    int64_t far = 8;
    ogi_tensor *idx_far = test_tensor_i64(1, (int64_t[]){1}, &far);
    const ogi_tensor *ins_far[3] = {past, update, idx_far};
    out = NULL;
    st = ogi_session_run(s, 3, names, ins_far, 1, &out_name, &out);
    TEST_CHECK(st == OGI_ERR_RUNTIME && out == NULL, "write index 8 of 8: %s", ogi_last_error());
    checks++;
    ogi_tensor_free(idx_far);
    ogi_tensor_free(idx);
    ogi_tensor_free(wrong);
    ogi_tensor_free(past);
    ogi_tensor_free(update);
    ogi_session_free(s);
}

/* A real model run twice: the arena is sized by the first run and reused
 * as is; outputs are bit-identical, and identical with 1 and 2 threads. */
static void test_arena_and_threads(void)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/models/tiny/llama-legacy-op17/model.onnx", test_shared_dir());
    onnx_model *m = NULL;
    graph *g = NULL;
    ogi_status st = onnx_model_load(path, &m);
    if (st == OGI_OK)
        st = graph_build(m, NULL, &g);
    TEST_CHECK(st == OGI_OK, "load: %s", ogi_last_error());
    checks++;
    if (st != OGI_OK) {
        onnx_model_free(m);
        return;
    }
    int64_t ids[6] = {5, 17, 33, 2, 99, 7}, ones[6] = {1, 1, 1, 1, 1, 1},
            pos[6] = {0, 1, 2, 3, 4, 5};
    const ogi_tensor *inputs[16] = {0};
    ogi_tensor *owned[16] = {0};
    for (int i = 0; i < g->n_inputs; i++) {
        const char *name = g->values[g->inputs[i]].name;
        if (strcmp(name, "input_ids") == 0)
            owned[i] = test_tensor_i64(2, (int64_t[]){1, 6}, ids);
        else if (strcmp(name, "attention_mask") == 0)
            owned[i] = test_tensor_i64(2, (int64_t[]){1, 6}, ones);
        else if (strcmp(name, "position_ids") == 0)
            owned[i] = test_tensor_i64(2, (int64_t[]){1, 6}, pos);
        else
            owned[i] = test_tensor_f32(4, (int64_t[]){1, 2, 0, 16}, NULL);
        inputs[i] = owned[i];
    }
    exec_arena *arena;
    exec_arena_create(&arena);
    threadpool *pool1, *pool2;
    threadpool_create(1, &pool1);
    threadpool_create(2, &pool2);
    ogi_tensor *out[3][16] = {{0}};
    size_t capacity[3];
    for (int run = 0; run < 3; run++) {
        exec_env env = {.pool = run == 2 ? pool2 : pool1, .arena = arena};
        st = exec_run(g, &env, inputs, out[run]);
        TEST_CHECK(st == OGI_OK, "run %d: %s", run, ogi_last_error());
        capacity[run] = exec_arena_capacity(arena);
        checks++;
    }
    TEST_CHECK(capacity[0] > 0 && capacity[1] == capacity[0] && capacity[2] == capacity[0],
               "arena capacity %zu, %zu, %zu", capacity[0], capacity[1], capacity[2]);
    checks++;
    for (int run = 1; run < 3; run++)
        for (int k = 0; k < g->n_outputs; k++)
            if (out[0][k] && out[run][k]) {
                TEST_CHECK(ogi_tensor_nbytes(out[0][k]) == ogi_tensor_nbytes(out[run][k]) &&
                               memcmp(ogi_tensor_data(out[0][k]), ogi_tensor_data(out[run][k]),
                                      ogi_tensor_nbytes(out[0][k])) == 0,
                           "output %d differs in run %d", k, run);
                checks++;
            }
    printf("arena: %zu bytes planned for a 6-token prefill of %d nodes\n", capacity[0], g->n_nodes);
    for (int run = 0; run < 3; run++)
        for (int k = 0; k < 16; k++)
            ogi_tensor_free(out[run][k]);
    for (int i = 0; i < 16; i++)
        ogi_tensor_free(owned[i]);
    threadpool_free(pool1);
    threadpool_free(pool2);
    exec_arena_free(arena);
    graph_free(g);
    onnx_model_free(m);
}

/* Y = ReduceSum(TensorGather(X [1, 16, 4], length 8, read_indices [4])): the
 * segment is contiguous, so TensorGather's output is a view of X and the
 * run needs no arena memory at all (a copy would need 128 bytes). */
static void test_gather_view(void)
{
    pbw g = {0}, node = {0}, m = {0}, op = {0};
    const char *gather_in[3] = {"X", "length", "read_indices"};
    for (int i = 0; i < 3; i++)
        pbw_string(&node, 1, gather_in[i]);
    pbw_string(&node, 2, "segment");
    pbw_string(&node, 3, "gather");
    pbw_string(&node, 4, "TensorGather");
    pbw_string(&node, 7, "ai.ogi");
    pbw_message(&g, 1, &node);
    const char *sum_in[1] = {"segment"}, *sum_out[1] = {"Y"};
    pbw_node(&g, "ReduceSum", "sum", 1, sum_in, 1, sum_out);
    pbw_string(&g, 2, "g");
    int64_t length = 8, start = 4;
    pbw_tensor_raw(&g, 5, "length", 7, 0, NULL, &length, sizeof(length));
    pbw_tensor_raw(&g, 5, "read_indices", 7, 1, (int64_t[]){1}, &start, sizeof(start));
    pbw_value_info(&g, 11, "X", 1, 3, (int64_t[]){1, 16, 4});
    pbw_value_info(&g, 12, "Y", 1, 3, (int64_t[]){1, 1, 1});
    pbw_model(&m, 10, 24, &g);
    pbw_string(&op, 1, "ai.ogi");
    pbw_int(&op, 2, 1);
    pbw_message(&m, 8, &op);
    onnx_model *model = NULL;
    graph *gr = NULL;
    ogi_status st = onnx_model_parse(m.data, m.len, NULL, &model);
    if (st == OGI_OK)
        st = graph_build(model, NULL, &gr);
    TEST_CHECK(st == OGI_OK, "gather model: %s", ogi_last_error());
    checks++;
    if (st == OGI_OK) {
        float x[64];
        double want = 0;
        for (int i = 0; i < 64; i++) {
            x[i] = (float)i;
            if (i >= 16 && i < 48) /* rows 4..11 of 4 floats */
                want += i;
        }
        ogi_tensor *in = test_tensor_f32(3, (int64_t[]){1, 16, 4}, x);
        const ogi_tensor *inputs[1] = {in};
        ogi_tensor *outs[1] = {NULL};
        exec_arena *arena;
        exec_arena_create(&arena);
        exec_env env = {.arena = arena};
        st = exec_run(gr, &env, inputs, outs);
        TEST_CHECK(st == OGI_OK && *(const float *)ogi_tensor_data(outs[0]) == (float)want,
                   "gather view: %s", ogi_last_error());
        TEST_CHECK(exec_arena_capacity(arena) == 0,
                   "the contiguous gather copied: arena of %zu bytes", exec_arena_capacity(arena));
        checks += 2;
        ogi_tensor_free(outs[0]);
        ogi_tensor_free(in);
        exec_arena_free(arena);
    }
    graph_free(gr);
    onnx_model_free(model);
    pbw_free(&m);
}

/* The arena's placement, on the pattern of a decoder's layers: a residual
 * stream that outlives each layer, projections and MLP temporaries freed
 * out of order, and a small value kept one layer longer. The buffer the
 * run needs must stay near the most bytes live at once (first fit climbed
 * to 5.2x on this pattern, one layer at a time; best fit stays at 1.1x). */
typedef struct arena_sim {
    exec_arena *a;
    size_t live, peak;
    bool ok;
} arena_sim;

static void arena_sim_alloc(arena_sim *s, arena_block *b, size_t size)
{
    s->ok = s->ok && arena_alloc(s->a, size, b) == OGI_OK;
    s->live += b->size;
    s->peak = s->live > s->peak ? s->live : s->peak;
}

static void arena_sim_release(arena_sim *s, arena_block *b)
{
    arena_release(s->a, b);
    s->live -= b->size;
}

static void test_arena_fragmentation(void)
{
    arena_sim s = {.ok = true};
    if (exec_arena_create(&s.a) != OGI_OK)
        return;
    const size_t h = 1179648; /* [512, 576] float32 */
    enum { X, MASK_PREV, MASK, N, Q, K, V, ATT, O, X1, N2, G, U, ACT, D, X2, N_BLOCKS };
    /* a layer's steps, in order: a block allocated with its size, or (size 0)
     * released; then X2 is the next layer's X and MASK its MASK_PREV */
    const struct {
        int block;
        size_t size;
    } layer[] = {{MASK, 64}, {N, h},       {Q, h},  {K, h / 3},    {V, h / 3}, {N, 0},
                 {ATT, h},   {Q, 0},       {K, 0},  {V, 0},        {O, h},     {ATT, 0},
                 {X1, h},    {O, 0},       {X, 0},  {N2, h},       {G, 3 * h}, {U, 3 * h},
                 {N2, 0},    {ACT, 3 * h}, {G, 0},  {U, 0},        {D, h},     {ACT, 0},
                 {X2, h},    {D, 0},       {X1, 0}, {MASK_PREV, 0}};
    arena_block b[N_BLOCKS];
    arena_sim_alloc(&s, &b[X], h);
    arena_sim_alloc(&s, &b[MASK_PREV], 64);
    for (int i = 0; i < 30; i++) {
        for (size_t k = 0; k < sizeof(layer) / sizeof(layer[0]); k++) {
            arena_block *block = &b[layer[k].block];
            if (layer[k].size > 0)
                arena_sim_alloc(&s, block, layer[k].size);
            else
                arena_sim_release(&s, block);
        }
        b[X] = b[X2];
        b[MASK_PREV] = b[MASK];
    }
    arena_sim_release(&s, &b[X]);
    arena_sim_release(&s, &b[MASK_PREV]);
    arena_end_run(s.a);
    size_t capacity = exec_arena_capacity(s.a);
    TEST_CHECK(s.ok && s.live == 0, "arena simulation: allocation failed or bytes left live");
    TEST_CHECK((double)capacity <= 1.5 * (double)s.peak,
               "arena grew to %zu bytes for at most %zu live (%.2fx)", capacity, s.peak,
               (double)capacity / (double)s.peak);
    checks += 2;
    printf("arena: %zu bytes for at most %zu live on 30 decoder-like layers (%.2fx)\n", capacity,
           s.peak, (double)capacity / (double)s.peak);
    exec_arena_free(s.a);
}

/* Element counts of shapes: products, 0 for a 0 dim wherever it sits (even
 * after dims whose product overflows), -1 for a negative dim or an
 * overflow, 1 for rank 0. */
static void test_shape_numel(void)
{
    const struct {
        int rank;
        int64_t dims[4];
        int64_t want;
    } cases[] = {
        {0, {0}, 1},
        {3, {2, 3, 4}, 24},
        {2, {INT64_MAX, 1}, INT64_MAX},
        {2, {INT64_MAX, 2}, -1},
        {2, {(int64_t)1 << 32, (int64_t)1 << 32}, -1}, /* wraps to 0 */
        {3, {(int64_t)1 << 40, (int64_t)1 << 40, 0}, 0},
        {3, {0, (int64_t)1 << 40, (int64_t)1 << 40}, 0},
        {2, {5, -1}, -1},
        {2, {0, -3}, -1},
        {4, {3037000499, 3037000499, 1, 1}, 3037000499 * 3037000499},
        {2, {3037000500, 3037000500}, -1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t got = tensor_shape_numel(cases[i].rank, cases[i].dims);
        TEST_CHECK(got == cases[i].want, "shape case %zu: numel %lld, want %lld", i, (long long)got,
                   (long long)cases[i].want);
        checks++;
    }
}

int main(void)
{
    test_shape_numel();
    test_arena_fragmentation();
    test_gather_view();
    test_bound_inplace();
    test_arena_and_threads();
    return test_finish("test_exec", checks);
}
