/* ai.ogi.ScaledDotProductAttention and ...ZeroMasked: the attention that
 * exporters write op by op, fused at load (engine/fuse.c):
 *
 *   Y = Softmax(scale * Q K^T + mask) V
 *
 * with inputs (Q, K, V, mask, mul_q, div_q, mul_k, div_k, mul_scores,
 * div_scores): mask is optional, each of the six others an optional scalar
 * constant that multiplied or divided Q, K or the scores (scale is their
 * product and quotient). Q [..., q, d], K [..., T, d], V [..., T, dv] of
 * rank 2 to 4 and the mask broadcast as MatMul and Add broadcast them
 * (leading dims of 1 stretch). One call of the tiled attention kernel
 * (attention_fast) replaces the score matrix, Softmax and both MatMuls.
 * Inputs 10-13, when present, are the GQA repeat's shapes (expand_k,
 * reshape_k, expand_v, reshape_v) and K, V the unrepeated tensors, as in
 * AttentionCausalMask's 8-input form below. In the 15-input (cache) form,
 * K and V are fixed-size KV caches [b, kv, max_seq, d] and input 14 the
 * length of their valid prefix (what TensorGather(cache, length) would read
 * out; inputs 10-13 the repeat's shapes or omitted): the kernel reads that
 * window in place with the cache's row pitch when the repeat is absent or
 * the plain GQA repeat, and copies it first on any other path.
 *
 * A row whose mask is -inf at every key: the ZeroMasked kernel (the
 * exported graph zeroes NaN probabilities with Where(IsNaN(P), 0, P)) gives
 * 0, the plain one NaN, as Softmax of an all -inf row does. The ...AllowZero
 * kernels are the same for a repeat whose Reshapes have allowzero = 1
 * (torch.export at opset 18).
 *
 * ai.ogi.AttentionCausalMask takes over Attention nodes given a bool mask
 * (torch.export's SDPA writes the causal and padding masks as one bool
 * tensor): when the mask is exactly causal (key j visible to query i iff
 * j <= i + T - q) it runs the kernel in causal mode, skipping the masked
 * tiles and the mask itself; anything else runs the Attention kernel as is.
 * Its 8-input form (Q, Xk, Xv, mask, expand_k, reshape_k, expand_v,
 * reshape_v) replaces the GQA repeat of exported graphs,
 * K = Reshape(Expand(Unsqueeze(Xk, 2), expand_k), reshape_k): when that is
 * the plain repeat of each KV head, Xk is read in place as the GQA key; else
 * the repeat is materialised as the three ops would. ...AllowZero is the same
 * for Reshapes with allowzero = 1 (a 0 in reshape_k is a 0-sized dim).
 * Its 9-input form takes the KV caches and, as input 8, the length of the
 * window read, as the 15-input form of ScaledDotProductAttention does. */
#include <math.h>
#include <string.h>

#include "ops/attention.h"
#include "ops/families.h"
#include "ops/strided.h"

/* A tensor's dims left-padded with 1s to rank 4. */
static void fused_dims4(const ogi_tensor *t, int64_t *dims)
{
    for (int d = 0; d < 4; d++)
        dims[d] = d < 4 - t->rank ? 1 : t->dims[d - (4 - t->rank)];
}

/* Broadcasts a leading dim: *out is max of the sizes, each 1 or equal. */
static bool fused_broadcast(int64_t *out, int64_t dim)
{
    if (dim == *out || dim == 1)
        return true;
    if (*out != 1)
        return false;
    *out = dim;
    return true;
}

/* Element strides of a [b, h, rows, dim] tensor, 0 on broadcast leading dims. */
static attention_view fused_view(const ogi_tensor *t, const int64_t *dims)
{
    attention_view v = {t->data, 0, 0, dims[3]};
    v.head_stride = dims[1] == 1 ? 0 : dims[2] * dims[3];
    v.batch_stride = dims[0] == 1 ? 0 : dims[1] * dims[2] * dims[3];
    return v;
}

/* The same for a window of a cache that stores `rows` positions per head
 * (rows >= dims[2]; 0: the tensor is contiguous). */
static attention_view fused_view_rows(const ogi_tensor *t, const int64_t *dims, int64_t rows)
{
    attention_view v = fused_view(t, dims);
    if (rows > 0) {
        v.head_stride = dims[1] == 1 ? 0 : rows * dims[3];
        v.batch_stride = dims[0] == 1 ? 0 : dims[1] * rows * dims[3];
    }
    return v;
}

/* scale from the six optional scalar inputs. */
static ogi_status fused_scale(op_ctx *c, double *scale)
{
    *scale = 1.0;
    for (int i = 4; i < 10; i++) {
        if (!op_has_input(c, i))
            continue;
        if (c->in[i]->dtype != OGI_FLOAT32 || tensor_numel(c->in[i]) != 1)
            return op_error(c, OGI_ERR_RUNTIME, "input %d: expected one float32 value", i);
        double v = *(const float *)c->in[i]->data;
        *scale = (i % 2 == 0) ? *scale * v : *scale / v;
    }
    return OGI_OK;
}

/* Y rows whose mask row is -inf at every key become NaN. */
static void fused_nan_masked_rows(const ogi_tensor *mask, const int64_t *md, const int64_t *ms,
                                  const attention_params *p, float *y)
{
    for (int64_t b = 0; b < md[0]; b++)
        for (int64_t h = 0; h < md[1]; h++)
            for (int64_t i = 0; i < md[2]; i++) {
                const float *row = (const float *)mask->data + b * ms[0] + h * ms[1] + i * ms[2];
                bool all = p->total_len > 0;
                for (int64_t j = 0; j < p->total_len && all; j++)
                    all = row[j * ms[3]] == -INFINITY;
                if (!all)
                    continue;
                /* every (batch, head, query) this mask row reaches */
                for (int64_t yb = md[0] == 1 ? 0 : b; yb < (md[0] == 1 ? p->batch : b + 1); yb++)
                    for (int64_t yh = md[1] == 1 ? 0 : h; yh < (md[1] == 1 ? p->q_heads : h + 1);
                         yh++)
                        for (int64_t yi = md[2] == 1 ? 0 : i; yi < (md[2] == 1 ? p->q_len : i + 1);
                             yi++) {
                            float *out = y + ((yb * p->q_heads + yh) * p->q_len + yi) * p->v_dim;
                            for (int64_t e = 0; e < p->v_dim; e++)
                                out[e] = NAN;
                        }
            }
}

/* Dims of Expand(Unsqueeze(x, 2), shape) into dims / *rank, as Expand
 * computes them; false when they do not broadcast. */
static bool fused_repeat_expand_dims(const ogi_tensor *x, const int64_t *shape, int64_t n,
                                     int64_t *dims, int *rank, int64_t *xdims, int *xrank)
{
    if (x->rank < 2 || x->rank + 1 > OGI_MAX_RANK || n > OGI_MAX_RANK)
        return false;
    *xrank = x->rank + 1;
    for (int d = 0, s = 0; d < *xrank; d++)
        xdims[d] = d == 2 ? 1 : x->dims[s++];
    *rank = *xrank > (int)n ? *xrank : (int)n;
    for (int i = 0; i < *rank; i++) {
        int xi = i - (*rank - *xrank), si = i - (*rank - (int)n);
        int64_t xd = xi >= 0 ? xdims[xi] : 1, sd = si >= 0 ? shape[si] : 1;
        if (sd < 0 || (xd != sd && xd != 1 && sd != 1))
            return false;
        dims[i] = xd == 1 ? sd : xd;
    }
    return true;
}

/* Dims of Reshape(t of dims/rank, shape) into out; false when the element
 * counts differ or shape is malformed. */
static bool fused_reshape_dims(const int64_t *dims, int rank, const int64_t *shape, int64_t n,
                               bool allowzero, int64_t *out)
{
    int64_t numel = tensor_shape_numel(rank, dims), known = 1;
    int infer = -1;
    if (n > OGI_MAX_RANK)
        return false;
    for (int i = 0; i < n; i++) {
        out[i] = shape[i] == 0 && !allowzero && i < rank ? dims[i] : shape[i];
        if (shape[i] == 0 && !allowzero && i >= rank)
            return false;
        if (out[i] == -1) {
            if (infer >= 0)
                return false;
            infer = i;
        } else if (out[i] < 0) {
            return false;
        } else {
            known *= out[i];
        }
    }
    if (infer >= 0) {
        if (known == 0 || numel % known != 0)
            return false;
        out[infer] = numel / known;
    } else if (known != numel) {
        return false;
    }
    return true;
}

/* How fused_repeat_operand gives the repeated operand. */
typedef enum fused_repeat_mode {
    FUSED_REPEAT_VIEW_OR_COPY, /* Xk itself when the repeat is plain, else a copy */
    FUSED_REPEAT_COPY,         /* always the materialised copy */
    FUSED_REPEAT_VIEW_ONLY,    /* Xk itself when plain, else NULL (nothing read) */
} fused_repeat_mode;

/* K or V of the 8-input form: *gqa is Xk itself when the repeat is plain
 * (Xk [b, kv, T, d] -> [b, kv, rep, T, d] -> [b, kv * rep, T, d]) and mode
 * allows; otherwise *owned is the materialised tensor (or, VIEW_ONLY, *gqa
 * is NULL). */
static ogi_status fused_repeat_operand(op_ctx *c, int x_in, int expand_in, int reshape_in,
                                       bool allowzero, fused_repeat_mode mode,
                                       const ogi_tensor **gqa, ogi_tensor **owned)
{
    const ogi_tensor *x = c->in[x_in];
    int64_t shape[OGI_MAX_RANK], n, dims[OGI_MAX_RANK], xdims[OGI_MAX_RANK], rdims[OGI_MAX_RANK];
    int rank, xrank;
    ogi_status st = op_read_ints(c, expand_in, shape, OGI_MAX_RANK, &n);
    if (st != OGI_OK)
        return st;
    if (!fused_repeat_expand_dims(x, shape, n, dims, &rank, xdims, &xrank))
        return op_error(c, OGI_ERR_RUNTIME, "input %d: the repeat's Expand does not broadcast",
                        expand_in);
    int64_t rn;
    if ((st = op_read_ints(c, reshape_in, shape, OGI_MAX_RANK, &rn)) != OGI_OK)
        return st;
    if (!fused_reshape_dims(dims, rank, shape, rn, allowzero, rdims))
        return op_error(c, OGI_ERR_RUNTIME, "input %d: the repeat's Reshape does not fit",
                        reshape_in);
    bool plain = x->rank == 4 && rank == 5 && rn == 4 && dims[0] == x->dims[0] &&
                 dims[1] == x->dims[1] && dims[3] == x->dims[2] && dims[4] == x->dims[3] &&
                 rdims[0] == dims[0] && rdims[1] == dims[1] * dims[2] && rdims[2] == dims[3] &&
                 rdims[3] == dims[4];
    if (plain && mode != FUSED_REPEAT_COPY) {
        *gqa = x;
        return OGI_OK;
    }
    if (mode == FUSED_REPEAT_VIEW_ONLY) {
        *gqa = NULL;
        return OGI_OK;
    }
    size_t es = (size_t)dtype_size(x->dtype);
    if (x->kind != TENSOR_KIND_TENSOR || x->dtype == OGI_STRING || es == 0)
        return op_error(c, OGI_ERR_RUNTIME, "input %d: not a tensor of fixed-size elements", x_in);
    if ((st = ogi_tensor_create(x->dtype, rank, dims, owned)) != OGI_OK)
        return st;
    int64_t in_strides[OGI_MAX_RANK];
    tensor_strides(xrank, xdims, in_strides);
    strided_view v = {.rank = rank, .elsize = es, .src = x->data, .dst = (*owned)->data};
    for (int i = 0; i < rank; i++) {
        int xi = i - (rank - xrank);
        v.dims[i] = dims[i];
        v.strides[i] = xi < 0 || xdims[xi] == 1 ? 0 : in_strides[xi];
    }
    strided_copy(c->pool, &v);
    (*owned)->rank = (int)rn;
    memcpy((*owned)->dims, rdims, sizeof(int64_t) * (size_t)rn);
    *gqa = *owned;
    return OGI_OK;
}

/* k and v: the operands (gqa: K and V of fewer heads than Q, read as GQA);
 * rows[0] / rows[1]: positions stored per head of k / v when they are
 * windows of a cache (0: contiguous). */
static ogi_status fused_sdpa_core(op_ctx *c, const ogi_tensor *k, const ogi_tensor *v,
                                  const int64_t *rows, bool gqa, bool zero_masked)
{
    ogi_status st;
    if ((st = op_require_dtype(c, 0, OGI_FLOAT32)) != OGI_OK)
        return st;
    if (k->dtype != OGI_FLOAT32 || v->dtype != OGI_FLOAT32)
        return op_error(c, OGI_ERR_RUNTIME, "K and V must be float32");
    const ogi_tensor *q = c->in[0];
    const ogi_tensor *mask = op_has_input(c, 3) ? c->in[3] : NULL;
    if (mask != NULL && (st = op_require_dtype(c, 3, OGI_FLOAT32)) != OGI_OK)
        return st;
    int rank = 0;
    const ogi_tensor *all[4] = {q, k, v, mask};
    for (int i = 0; i < 4; i++) {
        if (all[i] == NULL)
            continue;
        if (all[i]->rank > 4 || (i < 3 && all[i]->rank < 2))
            return op_error(c, OGI_ERR_RUNTIME, "input %d: expected rank 2 to 4, got %d", i,
                            all[i]->rank);
        rank = all[i]->rank > rank ? all[i]->rank : rank;
    }
    int64_t qd[4], kd[4], vd[4], md[4] = {1, 1, 1, 1};
    fused_dims4(q, qd);
    fused_dims4(k, kd);
    fused_dims4(v, vd);
    if (mask != NULL)
        fused_dims4(mask, md);
    int64_t lead[2] = {1, 1};
    for (int d = 0; d < 2; d++) {
        bool kv_ok = (gqa && d == 1) ||
                     (fused_broadcast(&lead[d], kd[d]) && fused_broadcast(&lead[d], vd[d]));
        if (!fused_broadcast(&lead[d], qd[d]) || !kv_ok || !fused_broadcast(&lead[d], md[d]))
            return op_error(c, OGI_ERR_RUNTIME, "Q, K, V and mask: dim %d does not broadcast",
                            d - 4 + rank);
    }
    if (gqa && (kd[1] != vd[1] || kd[1] == 0 || lead[1] % kd[1] != 0 || kd[0] != vd[0] ||
                (kd[0] != lead[0] && kd[0] != 1)))
        return op_error(c, OGI_ERR_RUNTIME, "K and V heads (%lld, %lld) do not group Q's %lld",
                        (long long)kd[1], (long long)vd[1], (long long)lead[1]);
    if (kd[3] != qd[3] || vd[2] != kd[2])
        return op_error(c, OGI_ERR_RUNTIME,
                        "Q [..., %lld, %lld], K [..., %lld, %lld] and V [..., %lld, %lld] do not "
                        "multiply",
                        (long long)qd[2], (long long)qd[3], (long long)kd[2], (long long)kd[3],
                        (long long)vd[2], (long long)vd[3]);
    if ((md[2] != 1 && md[2] != qd[2]) || (md[3] != 1 && md[3] != kd[2]))
        return op_error(c, OGI_ERR_RUNTIME,
                        "mask [..., %lld, %lld] does not broadcast to the scores [..., %lld, %lld]",
                        (long long)md[2], (long long)md[3], (long long)qd[2], (long long)kd[2]);
    attention_params p = attention_default_params();
    p.batch = lead[0];
    p.q_heads = lead[1];
    p.kv_heads = gqa ? kd[1] : lead[1];
    p.q_len = qd[2];
    p.total_len = kd[2];
    p.qk_dim = qd[3];
    p.v_dim = vd[3];
    if ((st = fused_scale(c, &p.scale)) != OGI_OK)
        return st;
    int64_t yd[4] = {p.batch, p.q_heads, p.q_len, p.v_dim};
    if ((st = op_alloc(c, 0, OGI_FLOAT32, rank, yd + (4 - rank))) != OGI_OK)
        return st;
    if (tensor_numel(c->out[0]) == 0)
        return OGI_OK;
    attention_fast_data d = {.q = fused_view(q, qd), .split = p.total_len, .y = c->out[0]->data};
    d.k[0] = fused_view_rows(k, kd, rows[0]);
    d.v[0] = fused_view_rows(v, vd, rows[1]);
    d.y_strides[0] = p.q_heads * p.q_len * p.v_dim;
    d.y_strides[1] = p.q_len * p.v_dim;
    d.y_strides[2] = p.v_dim;
    int64_t ms[4] = {0};
    if (mask != NULL) {
        int64_t stride = 1;
        for (int i = 3; i >= 0; i--) {
            ms[i] = md[i] == 1 ? 0 : stride;
            stride *= md[i];
        }
        d.mask = mask->data;
        memcpy(d.mask_strides, ms, sizeof(ms));
        d.mask_len = p.total_len;
    }
    if (p.total_len == 0) { /* Softmax over no keys, times no values: zeros */
        memset(c->out[0]->data, 0, c->out[0]->nbytes);
        return OGI_OK;
    }
    st = attention_run_chosen((ogi_attention_precision)c->attention, c->pool, &p, &d);
    if (st != OGI_OK)
        return op_error(c, st, "attention kernel: %s", ogi_last_error());
    if (!zero_masked && mask != NULL)
        fused_nan_masked_rows(mask, md, ms, &p, c->out[0]->data);
    return OGI_OK;
}

/* ---- Attention with a causal bool mask --------------------------------------- */

/* Whether the bool mask [..., q or 1, T] is the causal pattern of q queries
 * over T keys at every leading index. */
static bool fused_mask_is_causal(const ogi_tensor *m, int64_t q, int64_t t)
{
    if (m->dtype != OGI_BOOL || m->rank < 2 || m->dims[m->rank - 1] != t ||
        (m->dims[m->rank - 2] != q && !(q == 1 && m->dims[m->rank - 2] == 1)))
        return false;
    const uint8_t *v = m->data;
    int64_t rows = t > 0 ? tensor_numel(m) / t : 0;
    for (int64_t r = 0; r < rows; r++) {
        int64_t i = r % m->dims[m->rank - 2], visible = i + t - q + 1; /* keys [0, visible) */
        const uint8_t *row = v + r * t;
        for (int64_t j = 0; j < t; j++)
            if ((row[j] != 0) != (j < visible))
                return false;
    }
    return true;
}

/* Whether the node's attributes leave the plain case: scale, and is_causal,
 * softcap and qk_matmul_output_mode at 0, softmax_precision 0 or float32. */
static bool fused_attention_attrs_plain(const op_ctx *c)
{
    const onnx_node *n = c->node->proto;
    for (int a = 0; a < n->n_attrs; a++) {
        const onnx_attr *at = &n->attrs[a];
        if (strcmp(at->name, "scale") == 0)
            continue;
        if ((strcmp(at->name, "is_causal") == 0 && at->i == 0) ||
            (strcmp(at->name, "qk_matmul_output_mode") == 0 && at->i == 0) ||
            (strcmp(at->name, "softmax_precision") == 0 && (at->i == 0 || at->i == OGI_FLOAT32)) ||
            (strcmp(at->name, "softcap") == 0 && at->f == 0.0f))
            continue;
        return false;
    }
    return true;
}

/* The fast causal run; false (nothing written) when the case is not plain.
 * rows[0] / rows[1]: positions stored per head of K / V when they are
 * windows of a cache (0: contiguous). */
static bool fused_attention_causal(op_ctx *c, ogi_status *st, const int64_t *rows)
{
    if (c->n_in != 4 || c->n_out != 1 || !op_has_input(c, 3) || !fused_attention_attrs_plain(c))
        return false;
    const ogi_tensor *q = c->in[0], *k = c->in[1], *v = c->in[2];
    for (int i = 0; i < 3; i++)
        if (!op_has_input(c, i) || c->in[i]->dtype != OGI_FLOAT32 || c->in[i]->rank != 4)
            return false;
    if (k->dims[0] != q->dims[0] || v->dims[0] != q->dims[0] || v->dims[1] != k->dims[1] ||
        k->dims[3] != q->dims[3] || v->dims[2] != k->dims[2] || k->dims[1] == 0 ||
        q->dims[1] % k->dims[1] != 0 || q->dims[0] > 64)
        return false;
    attention_params p = attention_default_params();
    p.batch = q->dims[0];
    p.q_heads = q->dims[1];
    p.kv_heads = k->dims[1];
    p.q_len = q->dims[2];
    p.total_len = k->dims[2];
    p.qk_dim = q->dims[3];
    p.v_dim = v->dims[3];
    const ogi_tensor *m = c->in[3];
    if (m->rank > 4 || (m->rank == 4 && m->dims[0] != 1 && m->dims[0] != p.batch) ||
        (m->rank >= 3 && m->dims[m->rank - 3] != 1 && m->dims[m->rank - 3] != p.q_heads))
        return false;
    if (p.q_len > p.total_len || !fused_mask_is_causal(m, p.q_len, p.total_len))
        return false;
    p.scale = op_attr(c, "scale") != NULL ? op_attr_float(c, "scale", 1.0f)
              : p.qk_dim > 0              ? 1.0 / sqrt((double)p.qk_dim)
                                          : 1.0;
    int64_t offsets[64];
    for (int64_t b = 0; b < p.batch; b++)
        offsets[b] = p.total_len - p.q_len;
    p.query_offset = offsets;
    p.causal = true;
    if (!attention_fast_supports(&p))
        return false;
    int64_t yd[4] = {p.batch, p.q_heads, p.q_len, p.v_dim};
    if ((*st = op_alloc(c, 0, OGI_FLOAT32, 4, yd)) != OGI_OK)
        return true;
    if (tensor_numel(c->out[0]) == 0)
        return true;
    attention_fast_data d = {
        .q = fused_view(q, q->dims), .split = p.total_len, .y = c->out[0]->data};
    d.k[0] = fused_view_rows(k, k->dims, rows[0]);
    d.v[0] = fused_view_rows(v, v->dims, rows[1]);
    d.y_strides[0] = p.q_heads * p.q_len * p.v_dim;
    d.y_strides[1] = p.q_len * p.v_dim;
    d.y_strides[2] = p.v_dim;
    *st = attention_run_chosen((ogi_attention_precision)c->attention, c->pool, &p, &d);
    if (*st != OGI_OK)
        *st = op_error(c, *st, "attention kernel: %s", ogi_last_error());
    return true;
}

/* Inputs 1 and 2 of the cache forms: fixed-size caches [b, h, max_seq, d]
 * of which the first `length` (input len_in, an int64 scalar) positions
 * along axis 2 are read, as TensorGather(cache, length) reads them. win[i]
 * is the cache under the window's dims (borrowed data, not contiguous unless
 * b * h == 1 or length == max_seq) and rows[i] its max_seq. */
static ogi_status fused_cache_windows(const op_ctx *c, int len_in, ogi_tensor *win, int64_t *rows)
{
    const ogi_tensor *len = c->in[len_in];
    if (len->dtype != OGI_INT64 || len->rank > 1 || tensor_numel(len) != 1)
        return op_error(c, OGI_ERR_RUNTIME, "input %d (cache length): expected an int64 scalar",
                        len_in);
    int64_t length = ((const int64_t *)len->data)[0];
    for (int i = 0; i < 2; i++) {
        const ogi_tensor *cache = c->in[1 + i];
        size_t es = (size_t)dtype_size(cache->dtype);
        if (cache->kind != TENSOR_KIND_TENSOR || cache->dtype == OGI_STRING || es == 0 ||
            cache->rank != 4)
            return op_error(c, OGI_ERR_RUNTIME,
                            "input %d: expected a rank-4 cache of fixed-size elements", 1 + i);
        if (length < 0 || length > cache->dims[2])
            return op_error(c, OGI_ERR_RUNTIME,
                            "cache length %lld is outside the sequence axis 2 of size %lld",
                            (long long)length, (long long)cache->dims[2]);
        win[i] = *cache;
        win[i].dims[2] = length;
        win[i].nbytes = (size_t)tensor_shape_numel(4, win[i].dims) * es;
        win[i].storage = TENSOR_BORROWED;
        rows[i] = cache->dims[2];
    }
    return OGI_OK;
}

/* A contiguous copy of window win of a cache storing `rows` positions per
 * head. */
static ogi_status fused_window_copy(const ogi_tensor *win, int64_t rows, ogi_tensor **out)
{
    ogi_status st = ogi_tensor_create(win->dtype, 4, win->dims, out);
    if (st != OGI_OK)
        return st;
    size_t row = (size_t)win->dims[3] * (size_t)dtype_size(win->dtype);
    int64_t heads = win->dims[0] * win->dims[1], length = win->dims[2];
    for (int64_t h = 0; h < heads && length > 0 && row > 0; h++)
        memcpy((char *)(*out)->data + (size_t)(h * length) * row,
               (const char *)win->data + (size_t)(h * rows) * row, (size_t)length * row);
    return OGI_OK;
}

/* Window i of a cache form copied to contiguous memory (*copy), which
 * takes its place as input 1 + i of in. */
static ogi_status fused_window_unpitch(const ogi_tensor **in, const ogi_tensor *win, int64_t *rows,
                                       int i, ogi_tensor **copy)
{
    ogi_status st = fused_window_copy(&win[i], rows[i], copy);
    if (st == OGI_OK) {
        in[1 + i] = *copy;
        rows[i] = 0;
    }
    return st;
}

/* The 14-input form reads K and V through the repeat of inputs 10-13 (as
 * AttentionCausalMask's 8-input form). The 15-input form takes the KV
 * caches as inputs 1 and 2 and the length of their valid prefix as input 14
 * (inputs 10-13 the repeat's shapes, or omitted): the kernel reads the
 * windows in place, with the cache's row pitch, when there is no repeat or
 * it is the plain GQA repeat; any other repeat reads a contiguous copy of
 * the window, as the unfused graph's TensorGather would give it. */
static ogi_status fused_sdpa_run(op_ctx *c, bool zero_masked, bool allowzero)
{
    const ogi_tensor *x_in[15], *kv[2];
    ogi_tensor *owned[2] = {NULL, NULL}, *copies[2] = {NULL, NULL}, win[2];
    int64_t rows[2] = {0, 0};
    op_ctx xc = *c; /* the inputs with K and V as the cache windows */
    ogi_status st = OGI_OK;
    for (int i = 0; i < 3 && st == OGI_OK; i++)
        st = op_require_input(c, i);
    bool cache = c->n_in == 15 && op_has_input(c, 14);
    bool gqa = c->n_in == 14 || (cache && op_has_input(c, 10));
    if (st == OGI_OK && cache) {
        st = fused_cache_windows(c, 14, win, rows);
        memcpy(x_in, c->in, sizeof(x_in));
        x_in[1] = &win[0];
        x_in[2] = &win[1];
        xc.in = x_in;
    }
    kv[0] = xc.in[1];
    kv[1] = xc.in[2];
    for (int i = 0; i < 2 && st == OGI_OK && gqa; i++) {
        if (!op_has_input(c, 10 + 2 * i) || !op_has_input(c, 11 + 2 * i))
            st = op_error(c, OGI_ERR_RUNTIME, "missing input of the fused KV repeat");
        else
            st = fused_repeat_operand(&xc, 1 + i, 10 + 2 * i, 11 + 2 * i, allowzero,
                                      rows[i] > 0 ? FUSED_REPEAT_VIEW_ONLY
                                                  : FUSED_REPEAT_VIEW_OR_COPY,
                                      &kv[i], &owned[i]);
        if (st == OGI_OK && kv[i] == NULL) { /* a window repeated otherwise: copied first */
            st = fused_window_unpitch(x_in, win, rows, i, &copies[i]);
            if (st == OGI_OK)
                st = fused_repeat_operand(&xc, 1 + i, 10 + 2 * i, 11 + 2 * i, allowzero,
                                          FUSED_REPEAT_VIEW_OR_COPY, &kv[i], &owned[i]);
        }
    }
    /* one plain, one not: both materialised, so that K and V match */
    for (int i = 0; i < 2 && st == OGI_OK && gqa && (owned[0] == NULL) != (owned[1] == NULL); i++)
        if (owned[i] == NULL) {
            if (rows[i] > 0)
                st = fused_window_unpitch(x_in, win, rows, i, &copies[i]);
            if (st == OGI_OK)
                st = fused_repeat_operand(&xc, 1 + i, 10 + 2 * i, 11 + 2 * i, allowzero,
                                          FUSED_REPEAT_COPY, &kv[i], &owned[i]);
        }
    if (st == OGI_OK)
        st = fused_sdpa_core(c, kv[0], kv[1], rows, gqa && owned[0] == NULL && owned[1] == NULL,
                             zero_masked);
    for (int i = 0; i < 2; i++) {
        ogi_tensor_free(owned[i]);
        ogi_tensor_free(copies[i]);
    }
    return st;
}

static ogi_status fused_sdpa(op_ctx *c)
{
    return fused_sdpa_run(c, false, false);
}

static ogi_status fused_sdpa_zero_masked(op_ctx *c)
{
    return fused_sdpa_run(c, true, false);
}

static ogi_status fused_sdpa_allowzero(op_ctx *c)
{
    return fused_sdpa_run(c, false, true);
}

static ogi_status fused_sdpa_zero_masked_allowzero(op_ctx *c)
{
    return fused_sdpa_run(c, true, true);
}

static ogi_status fused_attention_causal_mask_run(op_ctx *c, bool allowzero)
{
    const ogi_tensor *in[4] = {c->in[0], c->in[1], c->in[2], c->n_in > 3 ? c->in[3] : NULL};
    const ogi_tensor *x_in[9]; /* the inputs with K and V as the cache windows */
    ogi_tensor *owned[2] = {NULL, NULL}, *copies[2] = {NULL, NULL}, win[2];
    int64_t rows[2] = {0, 0};
    ogi_status st = OGI_OK;
    op_ctx xc = *c;
    bool cache = c->n_in == 9 && op_has_input(c, 8);
    bool repeat = c->n_in == 8 || (c->n_in == 9 && op_has_input(c, 4));
    if (cache) {
        for (int i = 0; i < 3 && st == OGI_OK; i++)
            st = op_require_input(c, i);
        if (st == OGI_OK)
            st = fused_cache_windows(c, 8, win, rows);
        memcpy(x_in, c->in, sizeof(x_in));
        x_in[1] = in[1] = &win[0];
        x_in[2] = in[2] = &win[1];
        xc.in = x_in;
    }
    for (int i = 0; i < 2 && st == OGI_OK && repeat; i++) {
        if (!op_has_input(c, 1 + i) || !op_has_input(c, 4 + 2 * i) || !op_has_input(c, 5 + 2 * i))
            st = op_error(c, OGI_ERR_RUNTIME, "missing input of the fused KV repeat");
        else
            st = fused_repeat_operand(&xc, 1 + i, 4 + 2 * i, 5 + 2 * i, allowzero,
                                      rows[i] > 0 ? FUSED_REPEAT_VIEW_ONLY
                                                  : FUSED_REPEAT_VIEW_OR_COPY,
                                      &in[1 + i], &owned[i]);
        if (st == OGI_OK && in[1 + i] == NULL) { /* a window repeated otherwise: copied first */
            st = fused_window_unpitch(x_in, win, rows, i, &copies[i]);
            if (st == OGI_OK)
                st = fused_repeat_operand(&xc, 1 + i, 4 + 2 * i, 5 + 2 * i, allowzero,
                                          FUSED_REPEAT_VIEW_OR_COPY, &in[1 + i], &owned[i]);
        }
    }
    op_ctx plain = *c; /* Attention's own four inputs */
    plain.in = in;
    plain.n_in = c->n_in < 4 ? c->n_in : 4;
    if (st == OGI_OK && !fused_attention_causal(&plain, &st, rows)) {
        /* the Attention kernel reads contiguous K and V */
        for (int i = 0; i < 2 && st == OGI_OK; i++)
            if (rows[i] > 0 && (st = fused_window_copy(&win[i], rows[i], &copies[i])) == OGI_OK)
                in[1 + i] = copies[i];
        const op_kernel *attention = op_find_kernel("", "Attention", c->opset);
        if (st == OGI_OK)
            st = attention != NULL ? attention->run(&plain)
                                   : op_error(c, OGI_ERR_UNSUPPORTED,
                                              "no Attention kernel for opset %d", c->opset);
    }
    for (int i = 0; i < 2; i++) {
        ogi_tensor_free(owned[i]);
        ogi_tensor_free(copies[i]);
    }
    return st;
}

static ogi_status fused_attention_causal_mask(op_ctx *c)
{
    return fused_attention_causal_mask_run(c, false);
}

static ogi_status fused_attention_causal_mask_allowzero(op_ctx *c)
{
    return fused_attention_causal_mask_run(c, true);
}

const op_kernel op_kernels_sdpa[] = {
    {"ai.ogi", "AttentionCausalMaskAllowZero", 1, fused_attention_causal_mask_allowzero},
    {"ai.ogi", "AttentionCausalMask", 1, fused_attention_causal_mask},
    {"ai.ogi", "ScaledDotProductAttention", 1, fused_sdpa},
    {"ai.ogi", "ScaledDotProductAttentionZeroMasked", 1, fused_sdpa_zero_masked},
    {"ai.ogi", "ScaledDotProductAttentionAllowZero", 1, fused_sdpa_allowzero},
    {"ai.ogi", "ScaledDotProductAttentionZeroMaskedAllowZero", 1, fused_sdpa_zero_masked_allowzero},
    {NULL, NULL, 0, NULL},
};
