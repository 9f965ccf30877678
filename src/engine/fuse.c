/* Load-time fusion: rewrites node patterns of exported graphs into single
 * kernels. Each rule states the pattern it matches; a node is only fused
 * when every value it removes has no other reader.
 *
 *  - MatMul(A, Transpose(W)) with W a constant 2-D float32 matrix becomes
 *    ai.ogi.MatMulTransposeB(A, W): the tied LM head of torch.export models,
 *    which would otherwise transpose (copy) the embedding table every run.
 *  - The attention of exporters that write it op by op (torch.onnx legacy,
 *    opset <= 18): MatMul(Q', Transpose(K)') [-> Mul/Div by a constant]
 *    [-> Add mask] -> Softmax(last axis) [-> Where(IsNaN(P), 0, P)] ->
 *    MatMul(., V), where Q' and K' are Q and K optionally multiplied or
 *    divided by scalar constants (Transpose(K) also written as torch.export
 *    does at opset 18: Reshape(Transpose(Reshape(K, [-1, T, D]), [0, 2, 1]),
 *    [B, H, D, T]) with B, H, T, D K's own dims, as shape inference traces
 *    them to a Shape(K), which goes with it when it feeds nothing else),
 *    becomes ai.ogi.ScaledDotProductAttention
 *    (ops/fused_attention.c): one pass of the tiled attention kernel, with
 *    no score matrix.
 *  - RMSNorm written op by op: x * 1/Sqrt(ReduceMean(x^2, last axis) + eps)
 *    (Pow(x, 2) or Mul(x, x); Div(1, .), Reciprocal or Div(x, .); an
 *    identity Cast to float32 after it), optionally times a constant weight,
 *    becomes ai.ogi.RMSNorm(x, weight, eps) (ops/rms_norm.c).
 *  - SwiGLU: Mul(Mul(g, Sigmoid(g)), u) in either operand order becomes
 *    ai.ogi.SiLUMul(g, u) (ops/fused.c): one pass instead of three.
 *  - Rotary embedding written with rotate_half: Add(Mul(x, cos),
 *    Mul(Concat(Neg(Slice(x, h:)), Slice(x, :h)), sin)) becomes
 *    ai.ogi.RotateHalf(x, cos, sin, the two Slices' starts/ends/axes/steps)
 *    (ops/rotary.c), the slice bounds read at run time.
 *  - Attention (opset 23) with Q, K, V and a bool mask runs as
 *    ai.ogi.AttentionCausalMask (ops/fused_attention.c), which checks at run
 *    time whether the mask is plain causal and otherwise runs Attention.
 *    When K and V are both Reshape(Expand(Unsqueeze(X, axes=[2]), s5), s4)
 *    (the GQA repeat of torch exports), the node takes X, s5 and s4 instead
 *    and reads X as the GQA key or value when the shapes at run time make
 *    it a plain repeat. ScaledDotProductAttention does the same in its
 *    14-input form (...AllowZero when the repeat's Reshapes have allowzero
 *    = 1, as torch.export writes them at opset 18).
 *  - When K and V of that node, or of ScaledDotProductAttention[ZeroMasked]
 *    [AllowZero] (the unrepeated K and V in its 14-input form), are
 *    ai.ogi.TensorGather(cache, length) (the valid prefix of a fixed-size
 *    KV cache, as kv_rewrite.c writes it; linear mode, no read_indices,
 *    axis 2 of a rank-4 cache) of the same length, read by nothing else but
 *    Shape nodes, the node takes the two caches and the length (input 8 of
 *    AttentionCausalMask, 14 of ScaledDotProductAttention) instead: the fast
 *    kernel reads the prefix in place, with the cache's row pitch, and no
 *    copy of the cache is made each step. Each Shape of a gathered K or V
 *    (the legacy export builds the GQA repeat's shapes from them) becomes
 *    ai.ogi.TensorGatherShape(cache, length), which gives the same shape
 *    (start and end kept) without the gather.
 *
 * The shape computations that fed only the replaced nodes are dropped
 * afterwards (graph_remove_unread). */
#include <stdlib.h>
#include <string.h>

#include "engine/exec.h"
#include "engine/fuse.h"
#include "engine/op.h"
#include "engine/shape_infer.h"

static bool fuse_is(const graph_node *n, const char *op)
{
    return n->proto->domain[0] == '\0' && strcmp(n->proto->op_type, op) == 0;
}

/* The Transpose feeding input 1 of MatMul node n, when the rule applies. */
static graph_node *fuse_transposed_weight(graph *g, const graph_node *n, const int *readers)
{
    if (!fuse_is(n, "MatMul") || n->n_inputs != 2 || n->inputs[1] < 0)
        return NULL;
    const graph_value *t_out = &g->values[n->inputs[1]];
    if (t_out->kind != VALUE_NODE || t_out->producer < 0 || readers[n->inputs[1]] != 1)
        return NULL;
    graph_node *t = &g->nodes[t_out->producer];
    if (!fuse_is(t, "Transpose") || t->n_inputs != 1 || t->inputs[0] < 0)
        return NULL;
    const graph_value *w = &g->values[t->inputs[0]];
    if (w->kind != VALUE_CONST || w->constant->rank != 2 || w->constant->dtype != OGI_FLOAT32)
        return NULL;
    const onnx_attr *perm = graph_node_attr(t, "perm");
    if (perm != NULL && (perm->n != 2 || perm->ints[0] != 1 || perm->ints[1] != 0))
        return NULL;
    return t;
}

/* Node i's kernel is replaced and `removed` nodes are dropped at the end;
 * each rule only touches nodes not yet removed. */
typedef struct fuse_state {
    graph *g;
    int *readers;
    bool *removed;
} fuse_state;

/* The producer of value v when it is a live node of op type `op` whose
 * output v has exactly `readers` readers; NULL otherwise. */
static graph_node *fuse_producer(const fuse_state *f, int v, const char *op, int readers)
{
    if (v < 0 || f->readers[v] != readers)
        return NULL;
    const graph_value *val = &f->g->values[v];
    if (val->kind != VALUE_NODE || val->producer < 0 || f->removed[val->producer])
        return NULL;
    graph_node *n = &f->g->nodes[val->producer];
    if (!fuse_is(n, op) || n->n_outputs < 1 || n->outputs[0] != v)
        return NULL;
    for (int o = 1; o < n->n_outputs; o++)
        if (n->outputs[o] >= 0 && f->readers[n->outputs[o]] > 0)
            return NULL;
    return n;
}

/* Whether value v is a float32 constant holding one value (any shape). */
static bool fuse_scalar_const(const graph *g, int v, float *out)
{
    if (v < 0 || g->values[v].kind != VALUE_CONST)
        return false;
    const ogi_tensor *t = g->values[v].constant;
    if (t->dtype != OGI_FLOAT32 || tensor_numel(t) != 1)
        return false;
    if (out != NULL)
        *out = *(const float *)t->data;
    return true;
}

/* The axes of Unsqueeze or ReduceMean node n, from its attribute or (newer
 * opsets) its constant int64 input 1; false when that input is computed. */
static bool fuse_axes(const graph *g, const graph_node *n, const int64_t **axes, int64_t *n_axes)
{
    const onnx_attr *a = graph_node_attr(n, "axes");
    *axes = a != NULL ? a->ints : NULL;
    *n_axes = a != NULL ? a->n : 0;
    if (n->n_inputs >= 2 && n->inputs[1] >= 0) {
        const graph_value *av = &g->values[n->inputs[1]];
        if (av->kind != VALUE_CONST || av->constant->dtype != OGI_INT64)
            return false;
        *axes = av->constant->data;
        *n_axes = tensor_numel(av->constant);
    }
    return true;
}

/* One matched attention pattern: the nodes it removes and the operands of
 * the fused node. */
typedef struct fuse_attention {
    graph_node *nodes[12];
    int n_nodes;
    int q, k, v, mask;
    int scales[6];    /* mul q, div q, mul k, div k, mul scores, div scores (-1: none) */
    bool zero_nan;    /* Where(IsNaN(P), 0, P) was part of it */
    int kt_shapes[2]; /* the shapes of a 3-D K^T's two Reshapes (-1: a plain Transpose) */
} fuse_attention;

/* x -> Mul(x, c) or Div(x, c) (or Mul(c, x)) with c a scalar constant, read
 * once: follows value v back through one such node, recording c. */
static int fuse_scaled(const fuse_state *f, fuse_attention *m, int v, int slot)
{
    graph_node *n = fuse_producer(f, v, "Mul", 1);
    bool div = false;
    if (n == NULL) {
        n = fuse_producer(f, v, "Div", 1);
        div = true;
    }
    if (n == NULL || n->n_inputs != 2)
        return v;
    int other;
    if (fuse_scalar_const(f->g, n->inputs[1], NULL))
        other = 0;
    else if (!div && fuse_scalar_const(f->g, n->inputs[0], NULL))
        other = 1;
    else
        return v;
    m->scales[slot + (div ? 1 : 0)] = n->inputs[1 - other];
    m->nodes[m->n_nodes++] = n;
    return n->inputs[other];
}

/* A float32 operand of rank 2 to 4 (or not known at load: the kernel checks). */
static bool fuse_attention_operand(const graph *g, int v)
{
    const graph_value *val = &g->values[v];
    return v >= 0 && val->dtype == OGI_FLOAT32 && val->shape.rank <= 4 &&
           (val->shape.rank < 0 || val->shape.rank >= 2);
}

/* K^T written as Reshape(Transpose(Reshape(K, [-1, T, D]), [0, 2, 1]),
 * [B, H, D, T]) with T, D, B, H K's own dims (torch.export at opset 18
 * transposes the keys as a 3-D batch): the same as Transpose(K, [0, 1, 3,
 * 2]) for a rank-4 K, whatever its dims at run time. */
static bool fuse_match_kt_3d(const fuse_state *f, int kt, fuse_attention *m)
{
    const graph *g = f->g;
    graph_node *r2 = fuse_producer(f, kt, "Reshape", 1);
    if (r2 == NULL || r2->n_inputs != 2 || graph_node_attr_int(r2, "allowzero", 0) != 0)
        return false;
    graph_node *t = fuse_producer(f, r2->inputs[0], "Transpose", 1);
    const onnx_attr *perm = t != NULL ? graph_node_attr(t, "perm") : NULL;
    if (t == NULL || t->n_inputs != 1 || perm == NULL || perm->n != 3 || perm->ints[0] != 0 ||
        perm->ints[1] != 2 || perm->ints[2] != 1)
        return false;
    graph_node *r1 = fuse_producer(f, t->inputs[0], "Reshape", 1);
    if (r1 == NULL || r1->n_inputs != 2 || r1->inputs[0] < 0 || r1->inputs[1] < 0 ||
        r2->inputs[1] < 0 || graph_node_attr_int(r1, "allowzero", 0) != 0)
        return false;
    int k = r1->inputs[0];
    const value_elems *a = &g->values[r1->inputs[1]].elems, *b = &g->values[r2->inputs[1]].elems;
    if (g->values[k].shape.rank != 4 || g->values[r1->inputs[1]].kind == VALUE_CONST ||
        g->values[r2->inputs[1]].kind == VALUE_CONST || a->count != 3 || b->count != 4 ||
        !(a->known & 1u) || a->value[0] != -1)
        return false;
    if (!shape_elem_is_dim(g, a, 1, k, 2) || !shape_elem_is_dim(g, a, 2, k, 3) ||
        !shape_elem_is_dim(g, b, 0, k, 0) || !shape_elem_is_dim(g, b, 1, k, 1) ||
        !shape_elem_is_dim(g, b, 2, k, 3) || !shape_elem_is_dim(g, b, 3, k, 2))
        return false;
    m->nodes[m->n_nodes++] = r2;
    m->nodes[m->n_nodes++] = t;
    m->nodes[m->n_nodes++] = r1;
    m->k = k;
    m->kt_shapes[0] = r1->inputs[1];
    m->kt_shapes[1] = r2->inputs[1];
    return true;
}

/* Whether value v is read only on the way to a or b (each read once, by a
 * Reshape being fused away): followed through at most depth nodes with one
 * output, it reaches nothing else, so it dies with the fusion. */
static bool fuse_feeds_only(const fuse_state *f, int v, int a, int b, int depth)
{
    const graph *g = f->g;
    if (v == a || v == b)
        return f->readers[v] == 1;
    if (depth == 0 || g->values[v].is_output)
        return false;
    int seen = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const graph_node *n = &g->nodes[i];
        int reads = 0;
        for (int k = 0; k < n->n_inputs; k++)
            reads += n->inputs[k] == v;
        if (reads == 0 || f->removed[i])
            continue;
        if (n->n_subgraphs > 0 || n->n_outputs != 1 || n->outputs[0] < 0 ||
            op_kernel_updates_in_place(n->kernel) || op_kernel_is_random(n->kernel) ||
            !fuse_feeds_only(f, n->outputs[0], a, b, depth - 1))
            return false;
        seen += reads;
    }
    return seen == f->readers[v];
}

/* How many readers of K are Shape nodes that only feed a 3-D K^T's shapes:
 * they go with it, so they do not keep K's producer (the GQA repeat) alive. */
static int fuse_kt_shape_readers(const fuse_state *f, const fuse_attention *m)
{
    if (m->kt_shapes[0] < 0)
        return 0;
    int count = 0;
    for (int i = 0; i < f->g->n_nodes; i++) {
        const graph_node *n = &f->g->nodes[i];
        if (!f->removed[i] && fuse_is(n, "Shape") && n->n_inputs == 1 && n->inputs[0] == m->k &&
            n->n_outputs == 1 && n->outputs[0] >= 0 &&
            fuse_feeds_only(f, n->outputs[0], m->kt_shapes[0], m->kt_shapes[1], 6))
            count++;
    }
    return count;
}

/* Matches the op-by-op attention ending at MatMul node n. */
static bool fuse_match_attention(const fuse_state *f, const graph_node *n, fuse_attention *m)
{
    const graph *g = f->g;
    *m = (fuse_attention){.mask = -1, .scales = {-1, -1, -1, -1, -1, -1}, .kt_shapes = {-1, -1}};
    if (!fuse_is(n, "MatMul") || n->n_inputs != 2 || !fuse_attention_operand(g, n->inputs[1]))
        return false;
    m->v = n->inputs[1];
    int p = n->inputs[0];
    graph_node *where = fuse_producer(f, p, "Where", 1);
    if (where != NULL && where->n_inputs == 3) {
        graph_node *isnan = fuse_producer(f, where->inputs[0], "IsNaN", 1);
        float zero;
        if (isnan != NULL && isnan->inputs[0] == where->inputs[2] &&
            fuse_scalar_const(g, where->inputs[1], &zero) && zero == 0.0f) {
            m->nodes[m->n_nodes++] = where;
            m->nodes[m->n_nodes++] = isnan;
            m->zero_nan = true;
            p = where->inputs[2];
        }
    }
    graph_node *softmax = fuse_producer(f, p, "Softmax", m->zero_nan ? 2 : 1);
    if (softmax == NULL || softmax->n_inputs != 1)
        return false;
    int64_t axis = graph_node_attr_int(softmax, "axis", softmax->opset >= 13 ? -1 : 1);
    if (axis != -1 && axis != 3)
        return false;
    m->nodes[m->n_nodes++] = softmax;
    int s = softmax->inputs[0];
    graph_node *add = fuse_producer(f, s, "Add", 1);
    if (add != NULL && add->n_inputs == 2) {
        for (int side = 0; side < 2; side++) {
            int scores = add->inputs[side], mask = add->inputs[1 - side];
            const graph_value *mv = &g->values[mask];
            fuse_attention peek = {.scales = {-1, -1, -1, -1, -1, -1}};
            graph_node *mm = fuse_producer(f, fuse_scaled(f, &peek, scores, 4), "MatMul", 1);
            /* the Add takes float32 scores: a mask of unknown dtype is float32 */
            if (mm == NULL || (mv->dtype != OGI_FLOAT32 && mv->dtype != OGI_DTYPE_UNDEFINED) ||
                mv->shape.rank > 4)
                continue;
            m->nodes[m->n_nodes++] = add;
            m->mask = mask;
            s = scores;
            break;
        }
    }
    s = fuse_scaled(f, m, s, 4);
    graph_node *qk = fuse_producer(f, s, "MatMul", 1);
    if (qk == NULL || qk->n_inputs != 2)
        return false;
    m->nodes[m->n_nodes++] = qk;
    m->q = fuse_scaled(f, m, qk->inputs[0], 0);
    int kt = fuse_scaled(f, m, qk->inputs[1], 2);
    graph_node *t = fuse_producer(f, kt, "Transpose", 1);
    if (t != NULL && t->n_inputs == 1) {
        const onnx_attr *perm = graph_node_attr(t, "perm"); /* absent: all dims reversed */
        if (perm == NULL || perm->n != 4 || perm->ints[0] != 0 || perm->ints[1] != 1 ||
            perm->ints[2] != 3 || perm->ints[3] != 2)
            return false;
        m->nodes[m->n_nodes++] = t;
        m->k = t->inputs[0];
    } else if (!fuse_match_kt_3d(f, kt, m)) {
        return false;
    }
    return fuse_attention_operand(g, m->q) && fuse_attention_operand(g, m->k);
}

/* The GQA repeat Reshape(Expand(Unsqueeze(X, [2]), s5), s4) producing
 * value v: its three nodes, X, s5 and s4, and the Reshape's allowzero. */
static bool fuse_match_repeat(const fuse_state *f, int v, graph_node **nodes, int *operands,
                              int64_t *allowzero)
{
    const graph *g = f->g;
    graph_node *r = fuse_producer(f, v, "Reshape", 1);
    if (r == NULL || r->n_inputs != 2)
        return false;
    *allowzero = graph_node_attr_int(r, "allowzero", 0);
    graph_node *e = fuse_producer(f, r->inputs[0], "Expand", 1);
    if (e == NULL || e->n_inputs != 2)
        return false;
    graph_node *u = fuse_producer(f, e->inputs[0], "Unsqueeze", 1);
    if (u == NULL || u->inputs[0] < 0)
        return false;
    const int64_t *axes;
    int64_t n_axes;
    if (!fuse_axes(g, u, &axes, &n_axes))
        return false;
    int x_rank = g->values[u->inputs[0]].shape.rank;
    if (n_axes != 1 || !(axes[0] == 2 || (x_rank == 4 && axes[0] == -3)))
        return false;
    nodes[0] = r;
    nodes[1] = e;
    nodes[2] = u;
    operands[0] = u->inputs[0];
    operands[1] = e->inputs[1];
    operands[2] = r->inputs[1];
    return true;
}

/* Rewrites node n into ai.ogi.ScaledDotProductAttention(Q, K, V, mask,
 * mul_q, div_q, mul_k, div_k, mul_scores, div_scores). */
static ogi_status fuse_replace(fuse_state *f, graph_node *keep, graph_node *const *nodes,
                               int n_nodes, const int *inputs, int n_inputs,
                               const op_kernel *kernel);

/* ... and, when K and V both come through the GQA repeat (allowzero 0), with
 * inputs 10-13 its shapes and K, V the unrepeated tensors. */
static ogi_status fuse_attention_node(fuse_state *f, graph_node *n, const fuse_attention *m,
                                      const op_kernel *const *kernels)
{
    const op_kernel *kernel = kernels[m->zero_nan ? 1 : 0];
    graph_node *nodes[20];
    int inputs[14] = {m->q, m->k, m->v, m->mask}, n_inputs = 10, n_nodes = m->n_nodes;
    memcpy(inputs + 4, m->scales, sizeof(m->scales));
    memcpy(nodes, m->nodes, sizeof(graph_node *) * (size_t)m->n_nodes);
    int k[3], v[3];
    int64_t kz = 0, vz = 0;
    /* the Shape(K) reading only for a 3-D K^T is dropped with it */
    const int shapes_of_k = fuse_kt_shape_readers(f, m);
    f->readers[m->k] -= shapes_of_k;
    bool repeat = fuse_match_repeat(f, m->k, nodes + n_nodes, k, &kz) &&
                  fuse_match_repeat(f, m->v, nodes + n_nodes + 3, v, &vz) && kz == vz;
    f->readers[m->k] += shapes_of_k;
    /* a repeat whose Reshapes have allowzero = 1 has kernels of its own */
    const op_kernel *repeat_kernel = kz != 0 ? kernels[m->zero_nan ? 3 : 2] : kernel;
    if (repeat && repeat_kernel != NULL) {
        n_nodes += 6;
        inputs[1] = k[0];
        inputs[2] = v[0];
        int shapes[4] = {k[1], k[2], v[1], v[2]};
        memcpy(inputs + 10, shapes, sizeof(shapes));
        n_inputs = 14;
        kernel = repeat_kernel;
    }
    nodes[n_nodes++] = n;
    return fuse_replace(f, n, nodes, n_nodes, inputs, n_inputs, kernel);
}

/* Two kernels: with the Where(IsNaN) step, a row whose keys are all masked
 * gives 0 (what the attention kernel computes); without it, NaN (what the
 * Softmax of an all -inf row gives). */
static ogi_status fuse_attentions(fuse_state *f, int *fused)
{
    /* plain, zero-masked, and both again for a repeat with allowzero = 1 */
    const op_kernel *kernels[4] = {
        op_find_kernel("ai.ogi", "ScaledDotProductAttention", 1),
        op_find_kernel("ai.ogi", "ScaledDotProductAttentionZeroMasked", 1),
        op_find_kernel("ai.ogi", "ScaledDotProductAttentionAllowZero", 1),
        op_find_kernel("ai.ogi", "ScaledDotProductAttentionZeroMaskedAllowZero", 1)};
    for (int i = 0; i < f->g->n_nodes && kernels[0] != NULL && kernels[1] != NULL; i++) {
        graph_node *n = &f->g->nodes[i];
        fuse_attention m;
        if (f->removed[i] || !fuse_match_attention(f, n, &m))
            continue;
        ogi_status st = fuse_attention_node(f, n, &m, kernels);
        if (st != OGI_OK)
            return st;
        (*fused)++;
    }
    return OGI_OK;
}

/* ---- RMSNorm ----------------------------------------------------------------- */

static bool fuse_const_equals(const graph *g, int v, float want)
{
    float x;
    return fuse_scalar_const(g, v, &x) && x == want;
}

/* Whether ReduceMean node n averages over the last axis only, keeping it. */
static bool fuse_reduces_last_axis(const graph *g, const graph_node *n, int rank)
{
    if (graph_node_attr_int(n, "keepdims", 1) != 1)
        return false;
    const int64_t *axes;
    int64_t n_axes;
    if (!fuse_axes(g, n, &axes, &n_axes))
        return false;
    return n_axes == 1 && (axes[0] == -1 || (rank > 0 && axes[0] == rank - 1));
}

/* An identity Cast (to float32, of float32) producing v, read once: its input. */
static int fuse_skip_float_cast(const fuse_state *f, int v, graph_node **cast)
{
    graph_node *n = fuse_producer(f, v, "Cast", 1);
    *cast = NULL;
    if (n == NULL || graph_node_attr_int(n, "to", 0) != OGI_FLOAT32 || n->inputs[0] < 0 ||
        f->g->values[n->inputs[0]].dtype != OGI_FLOAT32)
        return v;
    *cast = n;
    return n->inputs[0];
}

typedef struct fuse_rms {
    graph_node *nodes[8];
    int n_nodes;
    int x, eps;
} fuse_rms;

/* The x * rsqrt(mean(x^2) + eps) producing value v (Mul or Div node). */
static bool fuse_match_rms_core(const fuse_state *f, int v, fuse_rms *m)
{
    const graph *g = f->g;
    graph_node *top = fuse_producer(f, v, "Mul", 1);
    bool divide = top == NULL;
    if (top == NULL)
        top = fuse_producer(f, v, "Div", 1);
    if (top == NULL || top->n_inputs != 2)
        return false;
    for (int side = 0; side < (divide ? 1 : 2); side++) {
        int x = top->inputs[side], r = top->inputs[1 - side];
        fuse_rms cand = {.n_nodes = 0, .x = x};
        cand.nodes[cand.n_nodes++] = top;
        int sq = r;
        if (!divide) {
            graph_node *inv = fuse_producer(f, r, "Reciprocal", 1);
            if (inv == NULL) {
                inv = fuse_producer(f, r, "Div", 1);
                if (inv != NULL && !fuse_const_equals(g, inv->inputs[0], 1.0f))
                    inv = NULL;
                sq = inv != NULL ? inv->inputs[1] : -1;
            } else {
                sq = inv->inputs[0];
            }
            if (inv == NULL)
                continue;
            cand.nodes[cand.n_nodes++] = inv;
        }
        graph_node *sqrt_n = fuse_producer(f, sq, "Sqrt", 1);
        if (sqrt_n == NULL)
            continue;
        graph_node *add = fuse_producer(f, sqrt_n->inputs[0], "Add", 1);
        if (add == NULL || add->n_inputs != 2)
            continue;
        int eps_side = fuse_scalar_const(g, add->inputs[1], NULL) ? 1 : 0;
        if (!fuse_scalar_const(g, add->inputs[eps_side], NULL))
            continue;
        graph_node *mean = fuse_producer(f, add->inputs[1 - eps_side], "ReduceMean", 1);
        if (mean == NULL || !fuse_reduces_last_axis(g, mean, g->values[x].shape.rank))
            continue;
        graph_node *sq_n = fuse_producer(f, mean->inputs[0], "Pow", 1);
        if (sq_n != NULL && !(sq_n->inputs[0] == x && fuse_const_equals(g, sq_n->inputs[1], 2.0f)))
            sq_n = NULL;
        if (sq_n == NULL) {
            sq_n = fuse_producer(f, mean->inputs[0], "Mul", 1);
            if (sq_n != NULL && !(sq_n->inputs[0] == x && sq_n->inputs[1] == x))
                sq_n = NULL;
        }
        if (sq_n == NULL || g->values[x].dtype != OGI_FLOAT32)
            continue;
        cand.nodes[cand.n_nodes++] = sqrt_n;
        cand.nodes[cand.n_nodes++] = add;
        cand.nodes[cand.n_nodes++] = mean;
        cand.nodes[cand.n_nodes++] = sq_n;
        cand.eps = add->inputs[eps_side];
        *m = cand;
        return true;
    }
    return false;
}

/* Removes the matched nodes (but `keep`) and gives `keep` new inputs. */
static ogi_status fuse_replace(fuse_state *f, graph_node *keep, graph_node *const *nodes,
                               int n_nodes, const int *inputs, int n_inputs,
                               const op_kernel *kernel)
{
    int *in = malloc(sizeof(int) * (size_t)n_inputs);
    if (in == NULL)
        return ogi_error(OGI_ERR_OUT_OF_MEMORY, "out of memory while fusing");
    memcpy(in, inputs, sizeof(int) * (size_t)n_inputs);
    for (int i = 0; i < n_nodes; i++) {
        graph_node *r = nodes[i];
        if (r == keep)
            continue;
        f->removed[r - f->g->nodes] = true;
        for (int o = 0; o < r->n_outputs; o++)
            if (r->outputs[o] >= 0)
                f->g->values[r->outputs[o]].producer = -1;
    }
    free(keep->inputs);
    keep->inputs = in;
    keep->n_inputs = n_inputs;
    keep->kernel = kernel;
    return OGI_OK;
}

static ogi_status fuse_rms_norms(fuse_state *f, int *fused)
{
    const op_kernel *kernel = op_find_kernel("ai.ogi", "RMSNorm", 1);
    graph *g = f->g;
    /* the weighted forms first: the core comes before its weight's Mul in
     * node order, and fusing it bare would leave that Mul behind */
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < g->n_nodes && kernel != NULL; i++) {
            graph_node *n = &g->nodes[i];
            if (f->removed[i] || !(fuse_is(n, "Mul") || fuse_is(n, "Div")) || n->n_inputs != 2 ||
                n->n_outputs != 1)
                continue;
            fuse_rms m;
            int weight = -1;
            graph_node *cast = NULL;
            /* Mul(weight, [Cast](core)) with a constant float32 weight ... */
            for (int side = 0; side < 2 && weight < 0 && fuse_is(n, "Mul"); side++) {
                const graph_value *w = &g->values[n->inputs[side]];
                if (w->kind != VALUE_CONST || w->constant->dtype != OGI_FLOAT32 ||
                    w->constant->rank > 1)
                    continue;
                int core = fuse_skip_float_cast(f, n->inputs[1 - side], &cast);
                if (fuse_match_rms_core(f, core, &m))
                    weight = n->inputs[side];
            }
            graph_node *nodes[10];
            int n_nodes = 0;
            if (weight >= 0 && pass == 0) {
                nodes[n_nodes++] = n;
                if (cast != NULL)
                    nodes[n_nodes++] = cast;
            } else if (pass == 0 || weight >= 0 || !fuse_match_rms_core(f, n->outputs[0], &m) ||
                       m.nodes[0] != n) {
                continue; /* ... or the bare core ending at this node */
            }
            for (int k = 0; k < m.n_nodes; k++)
                nodes[n_nodes++] = m.nodes[k];
            int inputs[3] = {m.x, weight, m.eps};
            ogi_status st = fuse_replace(f, n, nodes, n_nodes, inputs, 3, kernel);
            if (st != OGI_OK)
                return st;
            (*fused)++;
        }
    return OGI_OK;
}

/* ---- SwiGLU ------------------------------------------------------------------ */

/* Mul(Mul(g, Sigmoid(g)), u) at node n: g and u, the inner nodes. */
static bool fuse_match_silu_mul(const fuse_state *f, const graph_node *n, int *gate, int *up,
                                graph_node **inner)
{
    if (!fuse_is(n, "Mul") || n->n_inputs != 2)
        return false;
    for (int side = 0; side < 2; side++) {
        graph_node *mul = fuse_producer(f, n->inputs[side], "Mul", 1);
        if (mul == NULL || mul->n_inputs != 2)
            continue;
        for (int s2 = 0; s2 < 2; s2++) {
            graph_node *sig = fuse_producer(f, mul->inputs[s2], "Sigmoid", 1);
            if (sig == NULL || sig->inputs[0] != mul->inputs[1 - s2] ||
                f->g->values[sig->inputs[0]].dtype != OGI_FLOAT32)
                continue;
            *gate = sig->inputs[0];
            *up = n->inputs[1 - side];
            inner[0] = mul;
            inner[1] = sig;
            return true;
        }
    }
    return false;
}

static ogi_status fuse_silu_muls(fuse_state *f, int *fused)
{
    const op_kernel *kernel = op_find_kernel("ai.ogi", "SiLUMul", 1);
    for (int i = 0; i < f->g->n_nodes && kernel != NULL; i++) {
        graph_node *n = &f->g->nodes[i], *inner[2];
        int gate, up;
        if (f->removed[i] || !fuse_match_silu_mul(f, n, &gate, &up, inner))
            continue;
        int inputs[2] = {gate, up};
        ogi_status st = fuse_replace(f, n, inner, 2, inputs, 2, kernel);
        if (st != OGI_OK)
            return st;
        (*fused)++;
    }
    return OGI_OK;
}

/* ---- rotate_half rotary ---------------------------------------------------------- */

/* Slice(x, starts, ends, axes[, steps]) of opset >= 10 producing value v. */
static graph_node *fuse_slice_of(const fuse_state *f, int v, int x)
{
    graph_node *n = fuse_producer(f, v, "Slice", 1);
    if (n == NULL || n->n_inputs < 4 || n->inputs[0] != x || n->inputs[3] < 0)
        return NULL;
    return n;
}

/* Matches Mul(Concat(Neg(Slice_b(x)), Slice_a(x)), sin) at value v. */
static bool fuse_match_rotated(const fuse_state *f, int v, int x, graph_node **nodes, int *sin,
                               graph_node **slices)
{
    graph_node *mul = fuse_producer(f, v, "Mul", 1);
    if (mul == NULL || mul->n_inputs != 2)
        return false;
    for (int side = 0; side < 2; side++) {
        graph_node *cat = fuse_producer(f, mul->inputs[side], "Concat", 1);
        if (cat == NULL || cat->n_inputs != 2)
            continue;
        int64_t axis = graph_node_attr_int(cat, "axis", 0), rank = f->g->values[x].shape.rank;
        if (axis != -1 && !(rank > 0 && axis == rank - 1))
            continue;
        graph_node *neg = fuse_producer(f, cat->inputs[0], "Neg", 1);
        graph_node *sa = fuse_slice_of(f, cat->inputs[1], x);
        graph_node *sb = neg != NULL ? fuse_slice_of(f, neg->inputs[0], x) : NULL;
        if (sa == NULL || sb == NULL)
            continue;
        nodes[0] = mul;
        nodes[1] = cat;
        nodes[2] = neg;
        nodes[3] = sa;
        nodes[4] = sb;
        slices[0] = sa;
        slices[1] = sb;
        *sin = mul->inputs[1 - side];
        return true;
    }
    return false;
}

static ogi_status fuse_rotate_halves(fuse_state *f, int *fused)
{
    const op_kernel *kernel = op_find_kernel("ai.ogi", "RotateHalf", 1);
    graph *g = f->g;
    for (int i = 0; i < g->n_nodes && kernel != NULL; i++) {
        graph_node *n = &g->nodes[i];
        if (f->removed[i] || !fuse_is(n, "Add") || n->n_inputs != 2)
            continue;
        for (int side = 0; side < 2; side++) {
            graph_node *mx = fuse_producer(f, n->inputs[side], "Mul", 1);
            if (mx == NULL || mx->n_inputs != 2)
                continue;
            graph_node *nodes[7], *slices[2];
            int sin = -1, x = -1, cos = -1;
            for (int xs = 0; xs < 2 && x < 0; xs++) {
                int cand = mx->inputs[xs];
                if (cand >= 0 && g->values[cand].dtype == OGI_FLOAT32 &&
                    fuse_match_rotated(f, n->inputs[1 - side], cand, nodes, &sin, slices)) {
                    x = cand;
                    cos = mx->inputs[1 - xs];
                }
            }
            if (x < 0)
                continue;
            nodes[5] = mx;
            nodes[6] = n;
            int inputs[11] = {x, cos, sin};
            for (int s = 0; s < 2; s++)
                for (int k = 0; k < 4; k++)
                    inputs[3 + 4 * s + k] =
                        k + 1 < slices[s]->n_inputs ? slices[s]->inputs[k + 1] : -1;
            ogi_status st = fuse_replace(f, n, nodes, 7, inputs, 11, kernel);
            if (st != OGI_OK)
                return st;
            (*fused)++;
            break;
        }
    }
    return OGI_OK;
}

/* ---- Attention with a bool mask ------------------------------------------------ */

/* Attention node n (kernel already swapped): K and V read through their
 * repeats when both have one (whose Reshapes agree on allowzero). */
static ogi_status fuse_kv_repeats(fuse_state *f, graph_node *n)
{
    graph_node *nodes[7] = {n};
    int k[3], v[3];
    int64_t kz, vz;
    if (!fuse_match_repeat(f, n->inputs[1], nodes + 1, k, &kz) ||
        !fuse_match_repeat(f, n->inputs[2], nodes + 4, v, &vz) || kz != vz)
        return OGI_OK;
    const op_kernel *kernel = op_find_kernel(
        "ai.ogi", kz != 0 ? "AttentionCausalMaskAllowZero" : "AttentionCausalMask", 1);
    if (kernel == NULL)
        return OGI_OK;
    int inputs[8] = {n->inputs[0], k[0], v[0], n->inputs[3], k[1], k[2], v[1], v[2]};
    return fuse_replace(f, n, nodes, 7, inputs, 8, kernel);
}

static ogi_status fuse_causal_masks(fuse_state *f, int *fused)
{
    const op_kernel *kernel = op_find_kernel("ai.ogi", "AttentionCausalMask", 1);
    for (int i = 0; i < f->g->n_nodes && kernel != NULL; i++) {
        graph_node *n = &f->g->nodes[i];
        if (f->removed[i] || !fuse_is(n, "Attention") || n->n_inputs != 4 || n->n_outputs != 1 ||
            n->inputs[3] < 0)
            continue;
        ogi_dtype mask = f->g->values[n->inputs[3]].dtype;
        if (mask != OGI_BOOL && mask != OGI_DTYPE_UNDEFINED)
            continue;
        n->kernel = kernel;
        ogi_status st = fuse_kv_repeats(f, n);
        if (st != OGI_OK)
            return st;
        (*fused)++;
    }
    return OGI_OK;
}

/* ---- KV cache read in place ---------------------------------------------------- */

/* Whether n is a live Shape node reading value v. */
static bool fuse_shape_of(const fuse_state *f, const graph_node *n, int v)
{
    return !f->removed[n - f->g->nodes] && fuse_is(n, "Shape") && n->n_inputs == 1 &&
           n->n_outputs == 1 && n->inputs[0] == v;
}

/* The live TensorGather(cache, length) producing v (linear mode, no
 * read_indices, along axis 2 of a rank-4 cache), read once by the attention
 * and otherwise only by Shape nodes (shapes[v] of them). */
static const graph_node *fuse_cache_gather(const fuse_state *f, const int *readers,
                                           const int *shapes, int v)
{
    const graph *g = f->g;
    if (v < 0 || readers[v] != 1 + shapes[v] || g->values[v].kind != VALUE_NODE ||
        g->values[v].producer < 0 || f->removed[g->values[v].producer])
        return NULL;
    const graph_node *n = &g->nodes[g->values[v].producer];
    if (strcmp(n->proto->domain, "ai.ogi") != 0 || strcmp(n->proto->op_type, "TensorGather") != 0 ||
        n->n_outputs != 1 || n->n_inputs < 2 || (n->n_inputs > 2 && n->inputs[2] >= 0) ||
        n->inputs[0] < 0 || n->inputs[1] < 0)
        return NULL;
    const onnx_attr *mode = graph_node_attr(n, "mode");
    if (mode != NULL && (mode->type != ONNX_ATTR_STRING || strcmp(mode->s, "linear") != 0))
        return NULL;
    int64_t axis = graph_node_attr_int(n, "axis", -2);
    if (g->values[n->inputs[0]].shape.rank != 4 || (axis != 2 && axis != -2))
        return NULL;
    return n;
}

/* Of the readers of each value, how many are Shape nodes (live ones). */
static void fuse_shape_readers(const fuse_state *f, int *shapes)
{
    for (int i = 0; i < f->g->n_nodes; i++) {
        const graph_node *n = &f->g->nodes[i];
        if (!f->removed[i] && n->n_inputs == 1 && n->inputs[0] >= 0 &&
            fuse_shape_of(f, n, n->inputs[0]))
            shapes[n->inputs[0]]++;
    }
}

/* The Shape nodes reading gather gk's output then read (cache, length) as
 * ai.ogi.TensorGatherShape, which gives the same shape without the gather. */
static ogi_status fuse_cache_shapes(fuse_state *f, const graph_node *gk, const op_kernel *kernel)
{
    ogi_status st = OGI_OK;
    for (int i = 0; i < f->g->n_nodes && st == OGI_OK; i++) {
        graph_node *n = &f->g->nodes[i];
        if (fuse_shape_of(f, n, gk->outputs[0]))
            st = fuse_replace(f, n, NULL, 0, gk->inputs, 2, kernel);
    }
    return st;
}

/* AttentionCausalMask[AllowZero] (4 or 8 inputs) or
 * ScaledDotProductAttention[ZeroMasked] (10 or 14 inputs) whose K and V are
 * TensorGathers of the same length from two caches: the node reads the
 * caches themselves, with the length as its last input (8, or 14; the
 * repeat's inputs omitted when there is none), the Shape nodes reading the
 * gathered K or V read (cache, length) instead, and the gathers (a copy of
 * each cache every step) are dropped. */
static ogi_status fuse_cache_reads(fuse_state *f, int *fused)
{
    graph *g = f->g;
    const op_kernel *masks[2] = {op_find_kernel("ai.ogi", "AttentionCausalMask", 1),
                                 op_find_kernel("ai.ogi", "AttentionCausalMaskAllowZero", 1)};
    const op_kernel *sdpas[4] = {
        op_find_kernel("ai.ogi", "ScaledDotProductAttention", 1),
        op_find_kernel("ai.ogi", "ScaledDotProductAttentionZeroMasked", 1),
        op_find_kernel("ai.ogi", "ScaledDotProductAttentionAllowZero", 1),
        op_find_kernel("ai.ogi", "ScaledDotProductAttentionZeroMaskedAllowZero", 1)};
    const op_kernel *shape = op_find_kernel("ai.ogi", "TensorGatherShape", 1);
    /* the readers as the fusions above left them */
    int *readers = graph_reader_counts(g, f->removed);
    int *shapes = calloc((size_t)g->n_values + 1, sizeof(int));
    if (readers == NULL || shapes == NULL) {
        free(readers);
        free(shapes);
        return ogi_error(OGI_ERR_OUT_OF_MEMORY, "out of memory while fusing");
    }
    fuse_shape_readers(f, shapes);
    ogi_status st = OGI_OK;
    for (int i = 0; i < g->n_nodes && st == OGI_OK; i++) {
        graph_node *n = &g->nodes[i];
        if (f->removed[i] || n->kernel == NULL)
            continue;
        bool mask = (n->kernel == masks[0] || n->kernel == masks[1]) &&
                    (n->n_inputs == 4 || n->n_inputs == 8);
        bool sdpa = (n->kernel == sdpas[0] || n->kernel == sdpas[1] || n->kernel == sdpas[2] ||
                     n->kernel == sdpas[3]) &&
                    (n->n_inputs == 10 || n->n_inputs == 14);
        if (!mask && !sdpa)
            continue;
        const graph_node *gk = fuse_cache_gather(f, readers, shapes, n->inputs[1]);
        const graph_node *gv = fuse_cache_gather(f, readers, shapes, n->inputs[2]);
        if (gk == NULL || gv == NULL || gk == gv || gk->inputs[1] != gv->inputs[1] ||
            (shape == NULL && shapes[n->inputs[1]] + shapes[n->inputs[2]] > 0))
            continue;
        int inputs[15], n_in = mask ? 9 : 15;
        for (int k = 0; k < n_in - 1; k++)
            inputs[k] = k < n->n_inputs ? n->inputs[k] : -1;
        inputs[1] = gk->inputs[0];
        inputs[2] = gv->inputs[0];
        inputs[n_in - 1] = gk->inputs[1];
        st = fuse_cache_shapes(f, gk, shape);
        if (st == OGI_OK)
            st = fuse_cache_shapes(f, gv, shape);
        graph_node *nodes[3] = {(graph_node *)gk, (graph_node *)gv, n};
        if (st == OGI_OK)
            st = fuse_replace(f, n, nodes, 3, inputs, n_in, n->kernel);
        (*fused)++;
    }
    free(readers);
    free(shapes);
    return st;
}

ogi_status graph_fuse(graph *g)
{
    const op_kernel *mtb = op_find_kernel("ai.ogi", "MatMulTransposeB", 1);
    int *readers = graph_reader_counts(g, NULL);
    bool *removed = calloc((size_t)g->n_nodes + 1, sizeof(bool));
    if (readers == NULL || removed == NULL) {
        free(readers);
        free(removed);
        return ogi_error(OGI_ERR_OUT_OF_MEMORY, "out of memory while fusing");
    }
    fuse_state f = {g, readers, removed};
    int fused = 0;
    ogi_status st = fuse_attentions(&f, &fused);
    if (st == OGI_OK)
        st = fuse_rms_norms(&f, &fused);
    if (st == OGI_OK)
        st = fuse_silu_muls(&f, &fused);
    if (st == OGI_OK)
        st = fuse_rotate_halves(&f, &fused);
    if (st == OGI_OK)
        st = fuse_causal_masks(&f, &fused);
    if (st == OGI_OK)
        st = fuse_cache_reads(&f, &fused);
    for (int i = 0; i < g->n_nodes && mtb != NULL && st == OGI_OK; i++) {
        graph_node *n = &g->nodes[i];
        if (removed[i])
            continue;
        graph_node *t = fuse_transposed_weight(g, n, readers);
        if (t == NULL || removed[t - g->nodes])
            continue;
        int t_index = (int)(t - g->nodes);
        g->values[n->inputs[1]].producer = -1; /* the transposed copy is never made */
        n->inputs[1] = t->inputs[0];
        n->kernel = mtb;
        removed[t_index] = true;
        fused++;
    }
    if (st == OGI_OK && fused > 0)
        st = graph_remove_nodes(g, removed);
    if (st == OGI_OK && fused > 0)
        st = graph_remove_unread(g);
    g->n_fused += fused;
    free(readers);
    free(removed);
    return st;
}
