/* Control flow: If, Loop, Scan. Bodies are subgraphs run by the executor
 * (op_run_subgraph); values they capture come from the enclosing frame. */
#include <stdlib.h>
#include <string.h>

#include "ops/families.h"

enum { CONTROL_MAX_VALUES = 64 };

static void control_free_all(ogi_tensor **ts, int n)
{
    for (int i = 0; i < n; i++) {
        ogi_tensor_free(ts[i]);
        ts[i] = NULL;
    }
}

static ogi_status control_read_bool(const op_ctx *c, const ogi_tensor *t, const char *what,
                                    bool *out)
{
    if (t->dtype != OGI_BOOL || tensor_numel(t) != 1)
        return op_error(c, OGI_ERR_RUNTIME, "%s must be a single bool", what);
    *out = ((const uint8_t *)t->data)[0] != 0;
    return OGI_OK;
}

/* ---- If ------------------------------------------------------------------- */

static ogi_status control_if(op_ctx *c)
{
    ogi_status st = op_require_input(c, 0);
    if (st != OGI_OK)
        return st;
    bool cond;
    st = control_read_bool(c, c->in[0], "input 0 (cond)", &cond);
    if (st != OGI_OK)
        return st;
    const graph *branch = op_subgraph(c, cond ? "then_branch" : "else_branch");
    if (branch == NULL)
        return op_error(c, OGI_ERR_INVALID_MODEL, "missing %s",
                        cond ? "then_branch" : "else_branch");
    if (branch->n_outputs != c->n_out || c->n_out > CONTROL_MAX_VALUES)
        return op_error(c, OGI_ERR_INVALID_MODEL, "branch has %d outputs, node has %d",
                        branch->n_outputs, c->n_out);
    ogi_tensor *outs[CONTROL_MAX_VALUES] = {0};
    st = op_run_subgraph(c, branch, 0, NULL, c->n_out, outs);
    for (int i = 0; i < c->n_out && st == OGI_OK; i++)
        st = op_alloc_copy(c, i, outs[i]);
    control_free_all(outs, c->n_out);
    return st;
}

/* ---- stacking scan outputs -------------------------------------------------- */

/* Per-iteration slices kept until the loop ends, then stacked along `axis`. */
typedef struct control_stack {
    int n, cap;
    ogi_tensor **items;
} control_stack;

static ogi_status control_stack_push(const op_ctx *c, control_stack *s, ogi_tensor *t)
{
    if (s->n > 0 && (s->items[0]->dtype != t->dtype || !tensor_same_shape(s->items[0], t))) {
        ogi_tensor_free(t);
        return op_error(c, OGI_ERR_RUNTIME, "scan output changes shape between iterations");
    }
    if (s->n == s->cap) {
        int cap = s->cap ? s->cap * 2 : 16;
        ogi_tensor **grown = realloc(s->items, (size_t)cap * sizeof(*grown));
        if (grown == NULL) {
            ogi_tensor_free(t);
            return op_error(c, OGI_ERR_OUT_OF_MEMORY, "out of memory");
        }
        s->items = grown;
        s->cap = cap;
    }
    s->items[s->n++] = t;
    return OGI_OK;
}

static void control_stack_free(control_stack *s)
{
    control_free_all(s->items, s->n);
    free(s->items);
    memset(s, 0, sizeof(*s));
}

/* Writes the stacked slices to output `out`; `reverse` puts the last
 * iteration first. */
static ogi_status control_stack_emit(op_ctx *c, int out, const control_stack *s, int axis,
                                     bool reverse)
{
    if (s->n == 0) {
        int64_t zero = 0;
        return op_alloc(c, out, OGI_FLOAT32, 1, &zero);
    }
    const ogi_tensor *first = s->items[0];
    int esize = dtype_size(first->dtype);
    if (esize == 0)
        return op_error(c, OGI_ERR_UNSUPPORTED, "scan output of dtype %s",
                        ogi_dtype_name(first->dtype));
    int rank = first->rank + 1;
    if (axis < 0)
        axis += rank;
    if (axis < 0 || axis >= rank || rank > OGI_MAX_RANK)
        return op_error(c, OGI_ERR_RUNTIME, "scan output axis out of range");
    int64_t dims[OGI_MAX_RANK];
    for (int d = 0, k = 0; d < rank; d++)
        dims[d] = d == axis ? s->n : first->dims[k++];
    ogi_status st = op_alloc(c, out, first->dtype, rank, dims);
    if (st != OGI_OK)
        return st;
    int64_t outer = 1, inner = 1;
    for (int d = 0; d < axis; d++)
        outer *= dims[d];
    for (int d = axis + 1; d < rank; d++)
        inner *= dims[d];
    char *dst = c->out[out]->data;
    for (int it = 0; it < s->n; it++) {
        const char *src = s->items[reverse ? s->n - 1 - it : it]->data;
        for (int64_t o = 0; o < outer; o++)
            memcpy(dst + ((o * s->n + it) * inner) * esize, src + o * inner * esize,
                   (size_t)(inner * esize));
    }
    return OGI_OK;
}

/* ---- Loop ------------------------------------------------------------------ */

typedef struct control_loop_state {
    const graph *body;
    int n_carried, n_scan;
    ogi_tensor *carried[CONTROL_MAX_VALUES];
    control_stack scans[CONTROL_MAX_VALUES];
    ogi_tensor *iter, *cond;
} control_loop_state;

static void control_loop_state_free(control_loop_state *l)
{
    control_free_all(l->carried, l->n_carried);
    for (int k = 0; k < l->n_scan; k++)
        control_stack_free(&l->scans[k]);
    ogi_tensor_free(l->iter);
    ogi_tensor_free(l->cond);
}

/* Runs one iteration; returns the body's condition output in *go_on. */
static ogi_status control_loop_step(op_ctx *c, control_loop_state *l, int64_t i, bool *go_on)
{
    const ogi_tensor *ins[CONTROL_MAX_VALUES + 2];
    ogi_tensor *outs[CONTROL_MAX_VALUES * 2 + 1] = {0};
    *(int64_t *)l->iter->data = i;
    ins[0] = l->iter;
    ins[1] = l->cond;
    for (int k = 0; k < l->n_carried; k++)
        ins[2 + k] = l->carried[k];
    int n_out = 1 + l->n_carried + l->n_scan;
    ogi_status st = op_run_subgraph(c, l->body, 2 + l->n_carried, ins, n_out, outs);
    if (st == OGI_OK)
        st = control_read_bool(c, outs[0], "loop body condition", go_on);
    if (st != OGI_OK) {
        control_free_all(outs, n_out);
        return st;
    }
    *(uint8_t *)l->cond->data = *go_on;
    ogi_tensor_free(outs[0]);
    for (int k = 0; k < l->n_carried; k++) {
        ogi_tensor_free(l->carried[k]);
        l->carried[k] = outs[1 + k];
    }
    for (int k = 0; k < l->n_scan && st == OGI_OK; k++) {
        st = control_stack_push(c, &l->scans[k], outs[1 + l->n_carried + k]);
        outs[1 + l->n_carried + k] = NULL;
    }
    for (int k = 0; k < l->n_scan; k++)
        ogi_tensor_free(outs[1 + l->n_carried + k]);
    return st;
}

static ogi_status control_loop_run(op_ctx *c, control_loop_state *l)
{
    int64_t trip = INT64_MAX;
    bool cond = true;
    ogi_status st = OGI_OK;
    if (op_has_input(c, 0))
        st = op_read_scalar_i64(c, 0, &trip);
    if (st == OGI_OK && op_has_input(c, 1))
        st = control_read_bool(c, c->in[1], "input 1 (cond)", &cond);
    for (int k = 0; k < l->n_carried && st == OGI_OK; k++) {
        if (!op_has_input(c, 2 + k))
            return op_error(c, OGI_ERR_UNSUPPORTED, "optional loop-carried values");
        st = tensor_clone(c->in[2 + k], &l->carried[k]);
    }
    int64_t one = 1;
    if (st == OGI_OK)
        st = ogi_tensor_create(OGI_INT64, 0, &one, &l->iter);
    if (st == OGI_OK)
        st = ogi_tensor_create(OGI_BOOL, 0, &one, &l->cond);
    if (st != OGI_OK)
        return st;
    *(uint8_t *)l->cond->data = cond;
    for (int64_t i = 0; i < trip && cond && st == OGI_OK; i++)
        st = control_loop_step(c, l, i, &cond);
    for (int k = 0; k < l->n_carried && st == OGI_OK; k++)
        st = op_alloc_copy(c, k, l->carried[k]);
    for (int k = 0; k < l->n_scan && st == OGI_OK; k++)
        st = control_stack_emit(c, l->n_carried + k, &l->scans[k], 0, false);
    return st;
}

static ogi_status control_loop(op_ctx *c)
{
    control_loop_state l;
    memset(&l, 0, sizeof(l));
    l.body = op_subgraph(c, "body");
    if (l.body == NULL)
        return op_error(c, OGI_ERR_INVALID_MODEL, "missing body");
    l.n_carried = c->n_in - 2;
    l.n_scan = c->n_out - l.n_carried;
    if (l.n_carried < 0 || l.n_scan < 0 || l.n_carried > CONTROL_MAX_VALUES ||
        l.n_scan > CONTROL_MAX_VALUES || l.body->n_inputs != 2 + l.n_carried ||
        l.body->n_outputs != 1 + l.n_carried + l.n_scan)
        return op_error(c, OGI_ERR_INVALID_MODEL,
                        "body signature (%d inputs, %d outputs) does not match the node",
                        l.body->n_inputs, l.body->n_outputs);
    ogi_status st = control_loop_run(c, &l);
    control_loop_state_free(&l);
    return st;
}

/* ---- Scan (opset 9+) -------------------------------------------------------- */

/* Slice `it` of t along axis (t's dims without axis). */
static ogi_status control_slice(const op_ctx *c, const ogi_tensor *t, int axis, int64_t it,
                                ogi_tensor **out)
{
    int esize = dtype_size(t->dtype);
    if (esize == 0)
        return op_error(c, OGI_ERR_UNSUPPORTED, "scan input of dtype %s", ogi_dtype_name(t->dtype));
    int64_t dims[OGI_MAX_RANK];
    for (int d = 0, k = 0; d < t->rank; d++)
        if (d != axis)
            dims[k++] = t->dims[d];
    ogi_status st = ogi_tensor_create(t->dtype, t->rank - 1, dims, out);
    if (st != OGI_OK)
        return st;
    int64_t outer = 1, inner = 1;
    for (int d = 0; d < axis; d++)
        outer *= t->dims[d];
    for (int d = axis + 1; d < t->rank; d++)
        inner *= t->dims[d];
    const char *src = t->data;
    char *dst = (*out)->data;
    for (int64_t o = 0; o < outer; o++)
        memcpy(dst + o * inner * esize, src + ((o * t->dims[axis] + it) * inner) * esize,
               (size_t)(inner * esize));
    return OGI_OK;
}

typedef struct control_scan_state {
    const graph *body;
    int n_state, n_in, n_out;
    int in_axis[CONTROL_MAX_VALUES], out_axis[CONTROL_MAX_VALUES];
    bool in_reverse[CONTROL_MAX_VALUES], out_reverse[CONTROL_MAX_VALUES];
    ogi_tensor *state[CONTROL_MAX_VALUES];
    control_stack scans[CONTROL_MAX_VALUES];
} control_scan_state;

static ogi_status control_scan_attrs(const op_ctx *c, control_scan_state *s)
{
    const int64_t *v;
    int64_t n;
    for (int k = 0; k < s->n_in; k++) {
        s->in_axis[k] = 0;
        s->in_reverse[k] = false;
    }
    if (op_attr_ints(c, "scan_input_axes", &v, &n))
        for (int k = 0; k < n && k < s->n_in; k++) {
            int rank = c->in[s->n_state + k]->rank;
            ogi_status st = op_normalize_axis(c, v[k], rank, &s->in_axis[k]);
            if (st != OGI_OK)
                return st;
        }
    if (op_attr_ints(c, "scan_input_directions", &v, &n))
        for (int k = 0; k < n && k < s->n_in; k++)
            s->in_reverse[k] = v[k] != 0;
    for (int k = 0; k < s->n_out; k++) {
        s->out_axis[k] = 0;
        s->out_reverse[k] = false;
    }
    if (op_attr_ints(c, "scan_output_axes", &v, &n))
        for (int k = 0; k < n && k < s->n_out; k++)
            s->out_axis[k] = (int)v[k];
    if (op_attr_ints(c, "scan_output_directions", &v, &n))
        for (int k = 0; k < n && k < s->n_out; k++)
            s->out_reverse[k] = v[k] != 0;
    return OGI_OK;
}

static ogi_status control_scan_step(op_ctx *c, control_scan_state *s, int64_t it)
{
    const ogi_tensor *ins[CONTROL_MAX_VALUES * 2];
    ogi_tensor *slices[CONTROL_MAX_VALUES] = {0};
    ogi_tensor *outs[CONTROL_MAX_VALUES * 2] = {0};
    ogi_status st = OGI_OK;
    for (int k = 0; k < s->n_state; k++)
        ins[k] = s->state[k];
    for (int k = 0; k < s->n_in && st == OGI_OK; k++) {
        const ogi_tensor *t = c->in[s->n_state + k];
        int64_t len = t->dims[s->in_axis[k]];
        st = control_slice(c, t, s->in_axis[k], s->in_reverse[k] ? len - 1 - it : it, &slices[k]);
        ins[s->n_state + k] = slices[k];
    }
    if (st == OGI_OK)
        st = op_run_subgraph(c, s->body, s->n_state + s->n_in, ins, s->n_state + s->n_out, outs);
    control_free_all(slices, s->n_in);
    if (st != OGI_OK)
        return st;
    for (int k = 0; k < s->n_state; k++) {
        ogi_tensor_free(s->state[k]);
        s->state[k] = outs[k];
    }
    for (int k = 0; k < s->n_out; k++) {
        if (st == OGI_OK)
            st = control_stack_push(c, &s->scans[k], outs[s->n_state + k]);
        else
            ogi_tensor_free(outs[s->n_state + k]);
    }
    return st;
}

static ogi_status control_scan_run(op_ctx *c, control_scan_state *s)
{
    ogi_status st = control_scan_attrs(c, s);
    int64_t len = -1;
    for (int k = 0; k < s->n_in && st == OGI_OK; k++) {
        const ogi_tensor *t = c->in[s->n_state + k];
        if (t == NULL || t->rank < 1)
            return op_error(c, OGI_ERR_RUNTIME, "scan input %d must have rank >= 1", k);
        int64_t l = t->dims[s->in_axis[k]];
        if (len >= 0 && l != len)
            return op_error(c, OGI_ERR_RUNTIME, "scan inputs have different lengths");
        len = l;
    }
    for (int k = 0; k < s->n_state && st == OGI_OK; k++) {
        if (c->in[k] == NULL)
            return op_error(c, OGI_ERR_INVALID_MODEL, "state input %d is missing", k);
        st = tensor_clone(c->in[k], &s->state[k]);
    }
    for (int64_t it = 0; it < len && st == OGI_OK; it++)
        st = control_scan_step(c, s, it);
    for (int k = 0; k < s->n_state && st == OGI_OK; k++)
        st = op_alloc_copy(c, k, s->state[k]);
    for (int k = 0; k < s->n_out && st == OGI_OK; k++)
        st = control_stack_emit(c, s->n_state + k, &s->scans[k], s->out_axis[k], s->out_reverse[k]);
    return st;
}

static ogi_status control_scan(op_ctx *c)
{
    control_scan_state s;
    memset(&s, 0, sizeof(s));
    s.body = op_subgraph(c, "body");
    int64_t n_in = op_attr_int(c, "num_scan_inputs", -1);
    if (s.body == NULL || n_in < 1 || n_in > c->n_in)
        return op_error(c, OGI_ERR_INVALID_MODEL, "needs a body and num_scan_inputs in [1, %d]",
                        c->n_in);
    s.n_in = (int)n_in;
    s.n_state = c->n_in - s.n_in;
    s.n_out = c->n_out - s.n_state;
    if (s.n_out < 0 || s.n_out > CONTROL_MAX_VALUES || s.n_state > CONTROL_MAX_VALUES ||
        s.body->n_inputs != c->n_in || s.body->n_outputs != c->n_out)
        return op_error(c, OGI_ERR_INVALID_MODEL, "body signature does not match the node");
    ogi_status st = control_scan_run(c, &s);
    control_free_all(s.state, s.n_state);
    for (int k = 0; k < s.n_out; k++)
        control_stack_free(&s.scans[k]);
    return st;
}

static ogi_status control_scan8(op_ctx *c)
{
    return op_error(c, OGI_ERR_UNSUPPORTED, "Scan-8 (batched, with sequence_lens)");
}

const op_kernel op_kernels_control[] = {
    {"", "If", 1, control_if},     {"", "Loop", 1, control_loop}, {"", "Scan", 8, control_scan8},
    {"", "Scan", 9, control_scan}, {NULL, NULL, 0, NULL},
};
