/* Runs a graph node by node. Each value lives in a slot: constants, inputs
 * and captured outer values are borrowed views; node outputs come from the
 * arena (or the heap for graph outputs, which are handed to the caller) and
 * are released right after their last reader. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/error.h"
#include "engine/exec_internal.h"
#include "engine/op.h"
#include "engine/shape_infer.h"

enum { GRAPH_MAX_FOLD_BYTES = 64 << 20 };

static void exec_release_slot(exec_frame *f, int v)
{
    ogi_tensor *t = &f->slots[v];
    if (t->storage == TENSOR_ARENA) {
        arena_release(f->env->arena, &f->blocks[v]);
        t->data = NULL;
        t->storage = TENSOR_BORROWED;
    } else {
        tensor_release(t); /* frees an owned buffer, string elements included */
    }
}

static void exec_release_tensor(ogi_tensor *t)
{
    tensor_release(t);
}

/* Frees what out[i] held from an earlier call. */
static void exec_clear_output(op_ctx *c, int i)
{
    ogi_tensor *t = c->out[i];
    int v = c->node->outputs[i];
    if (t->data == NULL && t->kind == TENSOR_KIND_TENSOR)
        return;
    if (c->frame != NULL && v >= 0)
        exec_release_slot(c->frame, v);
    else
        exec_release_tensor(t);
}

ogi_status op_alloc_strings(op_ctx *c, int i, int rank, const int64_t *dims)
{
    if (i < 0 || i >= c->n_out)
        return op_error(c, OGI_ERR_INVALID_MODEL, "output %d does not exist (node has %d)", i,
                        c->n_out);
    exec_frame *f = c->frame;
    int v = c->node->outputs[i];
    if (f != NULL && v >= 0 && f->bound != NULL && f->bound[v] != NULL)
        return op_error(c, OGI_ERR_UNSUPPORTED,
                        "output '%s' is a string tensor and cannot be bound to a caller's tensor",
                        f->g->values[v].name);
    exec_clear_output(c, i);
    /* always heap-owned, never arena: releasing the value frees each element */
    ogi_status st = tensor_alloc_strings(c->out[i], rank, dims);
    if (st != OGI_OK)
        return op_error(c, st, "output %d: %s", i, ogi_last_error());
    if (f != NULL && f->env->max_tensor_bytes && c->out[i]->nbytes > f->env->max_tensor_bytes)
        return op_error(c, OGI_ERR_OUT_OF_MEMORY, "output %d needs %zu bytes, over the %zu limit",
                        i, c->out[i]->nbytes, f->env->max_tensor_bytes);
    return OGI_OK;
}

ogi_status op_alloc_container(op_ctx *c, int i, tensor_kind kind, ogi_dtype elem, int64_t cap)
{
    if (i < 0 || i >= c->n_out)
        return op_error(c, OGI_ERR_INVALID_MODEL, "output %d does not exist (node has %d)", i,
                        c->n_out);
    exec_frame *f = c->frame;
    int v = c->node->outputs[i];
    if (f != NULL && v >= 0 && f->bound != NULL && f->bound[v] != NULL)
        return op_error(c, OGI_ERR_UNSUPPORTED,
                        "output '%s' is a sequence or optional and cannot be bound to a "
                        "caller's tensor",
                        f->g->values[v].name);
    exec_clear_output(c, i);
    /* always heap-owned, never arena: releasing the value frees each item */
    ogi_status st = tensor_init_container(c->out[i], kind, elem, cap);
    if (st != OGI_OK) {
        tensor_release(c->out[i]);
        return op_error(c, st, "output %d: %s", i, ogi_last_error());
    }
    return OGI_OK;
}

const float *op_input_panels(const op_ctx *c, int i)
{
    if (c->frame == NULL || c->frame->g->panels == NULL || i < 0 || i >= c->n_in ||
        c->node->inputs[i] < 0)
        return NULL;
    return c->frame->g->panels[c->node->inputs[i]];
}

bool op_panels_streamed(const op_ctx *c)
{
    return c->frame != NULL && c->frame->g->panels_stream;
}

ogi_status op_alloc(op_ctx *c, int i, ogi_dtype dtype, int rank, const int64_t *dims)
{
    if (i < 0 || i >= c->n_out)
        return op_error(c, OGI_ERR_INVALID_MODEL, "output %d does not exist (node has %d)", i,
                        c->n_out);
    ogi_tensor *t = c->out[i];
    exec_frame *f = c->frame;
    int v = c->node->outputs[i];
    exec_clear_output(c, i);
    ogi_status st = tensor_set_shape(t, dtype, rank, dims);
    if (st != OGI_OK)
        return op_error(c, st, "output %d: %s", i, ogi_last_error());
    if (f == NULL && t->nbytes > GRAPH_MAX_FOLD_BYTES)
        return op_error(c, OGI_ERR_OUT_OF_MEMORY, "output %d is too large to fold (%zu bytes)", i,
                        t->nbytes);
    if (f != NULL && f->env->max_tensor_bytes && t->nbytes > f->env->max_tensor_bytes)
        return op_error(c, OGI_ERR_OUT_OF_MEMORY, "output %d needs %zu bytes, over the %zu limit",
                        i, t->nbytes, f->env->max_tensor_bytes);
    if (f != NULL && v >= 0 && f->bound != NULL && f->bound[v] != NULL) {
        const ogi_tensor *b = f->bound[v];
        if (b->dtype != t->dtype || !tensor_same_shape(b, t)) {
            char s1[128], s2[128];
            return op_error(
                c, OGI_ERR_RUNTIME, "output '%s' is %s %s, but the tensor bound to it is %s %s",
                f->g->values[v].name, ogi_dtype_name(t->dtype),
                tensor_shape_str(t->rank, t->dims, s1, sizeof(s1)), ogi_dtype_name(b->dtype),
                tensor_shape_str(b->rank, b->dims, s2, sizeof(s2)));
        }
        t->data = b->data;
        t->storage = TENSOR_BORROWED;
        return OGI_OK;
    }
    if (f == NULL || v < 0 || f->g->values[v].is_output || f->env->arena == NULL) {
        st = tensor_alloc_owned(t);
        return st == OGI_OK ? OGI_OK : op_error(c, st, "output %d: %s", i, ogi_last_error());
    }
    st = arena_alloc(f->env->arena, t->nbytes, &f->blocks[v]);
    if (st != OGI_OK)
        return op_error(c, st, "output %d: %s", i, ogi_last_error());
    t->data = f->blocks[v].data;
    t->storage = TENSOR_ARENA;
    return OGI_OK;
}

/* Whether input j's buffer may be taken over by this node's output: j is a
 * value computed in this frame, owned by it, and read by no later node. */
static bool exec_can_take(const op_ctx *c, int j)
{
    exec_frame *f = c->frame;
    if (f == NULL || j >= c->n_in || c->node->inputs[j] < 0)
        return false;
    int v = c->node->inputs[j];
    const graph_value *x = &f->g->values[v];
    int index = (int)(c->node - f->g->nodes);
    if (x->kind != VALUE_NODE || x->is_output || x->last_use != index)
        return false;
    for (int k = 0; k < c->n_in; k++)
        if (k != j && c->node->inputs[k] == v)
            return false; /* read again by this very node */
    return f->slots[v].storage == TENSOR_ARENA || f->slots[v].storage == TENSOR_OWNED;
}

/* Moves input j's buffer into output i (which must be an unbound node
 * value), reshaped. */
static ogi_status exec_take(op_ctx *c, int i, int j, ogi_dtype dtype, int rank, const int64_t *dims)
{
    exec_frame *f = c->frame;
    int v_in = c->node->inputs[j], v_out = c->node->outputs[i];
    ogi_tensor *in = &f->slots[v_in], *out = c->out[i];
    ogi_status st = tensor_set_shape(out, dtype, rank, dims);
    if (st != OGI_OK)
        return op_error(c, st, "output %d: %s", i, ogi_last_error());
    out->data = in->data;
    out->storage = in->storage;
    f->blocks[v_out] = f->blocks[v_in];
    in->storage = TENSOR_BORROWED; /* the input still reads the buffer, no longer frees it */
    return OGI_OK;
}

static bool exec_output_movable(const op_ctx *c, int i)
{
    exec_frame *f = c->frame;
    int v = i < c->n_out ? c->node->outputs[i] : -1;
    return f != NULL && v >= 0 && !f->g->values[v].is_output && c->out[i]->data == NULL;
}

ogi_status op_alloc_view_at(op_ctx *c, int i, int j, size_t byte_offset, ogi_dtype dtype, int rank,
                            const int64_t *dims)
{
    const ogi_tensor *x = j < c->n_in ? c->in[j] : NULL;
    size_t bytes;
    int64_t numel = tensor_shape_numel(rank, dims);
    if (x != NULL && x->kind != TENSOR_KIND_TENSOR)
        return op_error(c, OGI_ERR_UNSUPPORTED, "input %d: a sequence or optional cannot be viewed",
                        j);
    if (x != NULL && x->dtype == OGI_STRING) /* a byte view would share the elements' bytes */
        return op_error(c, OGI_ERR_UNSUPPORTED, "input %d: string tensors cannot be viewed", j);
    if (x == NULL || numel < 0 || !tensor_bytes_for(dtype, numel, &bytes) ||
        byte_offset > x->nbytes || bytes > x->nbytes - byte_offset)
        return op_error(c, OGI_ERR_RUNTIME, "output %d: cannot view %zu bytes of input %d at %zu",
                        i, (size_t)(numel < 0 ? 0 : numel), j, byte_offset);
    if (exec_output_movable(c, i)) {
        int v_in = c->node->inputs[j];
        value_kind kind = v_in >= 0 ? c->frame->g->values[v_in].kind : VALUE_NODE;
        /* an arena block is released by its placement, so a view may start
         * inside it; a malloc'ed buffer must keep its own pointer */
        bool takeable = exec_can_take(c, j) &&
                        (byte_offset == 0 || c->frame->slots[v_in].storage == TENSOR_ARENA);
        if (takeable) {
            ogi_status st = exec_take(c, i, j, dtype, rank, dims);
            if (st == OGI_OK)
                c->out[i]->data = (char *)c->out[i]->data + byte_offset;
            return st;
        }
        if (kind != VALUE_NODE) {
            /* constants, inputs and captured values outlive the run: borrow */
            ogi_status st = tensor_set_shape(c->out[i], dtype, rank, dims);
            if (st != OGI_OK)
                return op_error(c, st, "output %d: %s", i, ogi_last_error());
            c->out[i]->data = (char *)x->data + byte_offset;
            c->out[i]->storage = TENSOR_BORROWED;
            return OGI_OK;
        }
    }
    ogi_status st = op_alloc(c, i, dtype, rank, dims);
    if (st == OGI_OK && bytes > 0 && c->out[i]->data != (const char *)x->data + byte_offset)
        memcpy(c->out[i]->data, (const char *)x->data + byte_offset, bytes);
    return st;
}

ogi_status op_alloc_view(op_ctx *c, int i, int j, ogi_dtype dtype, int rank, const int64_t *dims)
{
    const ogi_tensor *x = j < c->n_in ? c->in[j] : NULL;
    size_t bytes;
    int64_t numel = tensor_shape_numel(rank, dims);
    if (x == NULL || numel < 0 || !tensor_bytes_for(dtype, numel, &bytes) || bytes != x->nbytes)
        return op_error(c, OGI_ERR_RUNTIME, "output %d: cannot view input %d with another size", i,
                        j);
    return op_alloc_view_at(c, i, j, 0, dtype, rank, dims);
}

ogi_status op_alloc_inplace(op_ctx *c, int i, int j)
{
    const ogi_tensor *x = c->in[j];
    if (x == NULL)
        return op_error(c, OGI_ERR_INVALID_MODEL, "input %d is required", j);
    if (x->dtype == OGI_STRING || x->kind != TENSOR_KIND_TENSOR)
        return op_error(c, OGI_ERR_UNSUPPORTED, "input %d: only numeric tensors can be updated", j);
    if (exec_output_movable(c, i) && exec_can_take(c, j))
        return exec_take(c, i, j, x->dtype, x->rank, x->dims);
    ogi_status st = op_alloc(c, i, x->dtype, x->rank, x->dims);
    /* a caller that bound the output to the input's own buffer gets no copy */
    if (st == OGI_OK && x->nbytes > 0 && c->out[i]->data != x->data)
        memcpy(c->out[i]->data, x->data, x->nbytes);
    return st;
}

/* Checks a caller's input against what the graph declares. */
static ogi_status exec_check_input(const graph_value *v, const ogi_tensor *t)
{
    static const char *const kinds[] = {"a tensor", "a sequence", "an optional"};
    char s1[128];
    if (t->kind != v->type)
        return ogi_error(OGI_ERR_INVALID_ARGUMENT, "input '%s': expected %s, got %s", v->name,
                         kinds[v->type], kinds[t->kind]);
    if (t->kind != TENSOR_KIND_TENSOR)
        return OGI_OK;
    if (v->dtype != OGI_DTYPE_UNDEFINED && t->dtype != v->dtype)
        return ogi_error(OGI_ERR_INVALID_ARGUMENT, "input '%s': expected dtype %s, got %s", v->name,
                         ogi_dtype_name(v->dtype), ogi_dtype_name(t->dtype));
    if (v->shape.rank < 0)
        return OGI_OK;
    if (t->rank != v->shape.rank)
        return ogi_error(OGI_ERR_INVALID_ARGUMENT, "input '%s': expected rank %d, got shape %s",
                         v->name, v->shape.rank,
                         tensor_shape_str(t->rank, t->dims, s1, sizeof(s1)));
    for (int d = 0; d < t->rank; d++)
        if (v->shape.dims[d] >= 0 && v->shape.dims[d] != t->dims[d])
            return ogi_error(
                OGI_ERR_INVALID_ARGUMENT, "input '%s': dim %d must be %lld, got shape %s", v->name,
                d, (long long)v->shape.dims[d], tensor_shape_str(t->rank, t->dims, s1, sizeof(s1)));
    return OGI_OK;
}

static ogi_status exec_bind(exec_frame *f, const ogi_tensor *const *inputs, bool check,
                            bool constants)
{
    const graph *g = f->g;
    for (int v = 0; v < g->n_values && constants; v++) {
        const graph_value *x = &g->values[v];
        if (x->kind == VALUE_CONST)
            f->slots[v] = *x->constant;
        else if (x->kind == VALUE_CAPTURED)
            f->slots[v] = f->parent->slots[x->capture_index];
        else
            continue;
        f->slots[v].storage = TENSOR_BORROWED;
    }
    for (int i = 0; i < g->n_inputs; i++) {
        int v = g->inputs[i];
        const ogi_tensor *t = inputs ? inputs[i] : NULL;
        if (t == NULL)
            t = g->values[v].constant;
        if (t == NULL)
            return ogi_error(OGI_ERR_INVALID_ARGUMENT, "input '%s' was not given",
                             g->values[v].name);
        if (check) {
            ogi_status st = exec_check_input(&g->values[v], t);
            if (st != OGI_OK)
                return st;
        }
        f->slots[v] = *t;
        f->slots[v].storage = TENSOR_BORROWED;
    }
    return OGI_OK;
}

/* Kernels see string tensors, sequences and optionals only when they declare
 * that they handle them: the others index elements by size and would misread
 * or shallow-copy. */
static ogi_status exec_check_strings(const graph_node *n, const ogi_tensor *const *in)
{
    for (int i = 0; i < n->n_inputs; i++) {
        if (in[i] != NULL && in[i]->kind != TENSOR_KIND_TENSOR &&
            !op_kernel_takes_sequences(n->kernel)) {
            char label[256];
            return ogi_error(OGI_ERR_UNSUPPORTED,
                             "node %s input %d: sequences and optionals are not supported by "
                             "this op",
                             graph_node_label(n, label, sizeof(label)), i);
        }
        if (in[i] != NULL && in[i]->kind == TENSOR_KIND_TENSOR && in[i]->dtype == OGI_STRING &&
            !op_kernel_takes_strings(n->kernel)) {
            char label[256];
            return ogi_error(OGI_ERR_UNSUPPORTED,
                             "node %s input %d: string tensors are not supported by this op",
                             graph_node_label(n, label, sizeof(label)), i);
        }
    }
    return OGI_OK;
}

static ogi_status exec_node(exec_frame *f, int index)
{
    const graph_node *n = &f->g->nodes[index];
    enum { MAX_IO = 64 };
    const ogi_tensor *in_small[MAX_IO];
    ogi_tensor *out_small[MAX_IO];
    ogi_tensor scratch_small[MAX_IO];
    bool used_small[MAX_IO];
    if (n->n_inputs > MAX_IO || n->n_outputs > MAX_IO)
        return ogi_error(OGI_ERR_UNSUPPORTED, "node '%s' has more than %d inputs or outputs",
                         n->proto->name, MAX_IO);
    /* entries past n_inputs read as omitted inputs, so a kernel that reads
     * a fixed input index (at most 15, the fused attention's) of a node with
     * fewer inputs finds NULL; not the whole array: this runs for every node */
    enum { READ_PAST = 16 };
    for (int i = n->n_inputs; i < READ_PAST; i++)
        in_small[i] = NULL;
    for (int i = 0; i < n->n_inputs; i++) {
        int v = n->inputs[i];
        in_small[i] = v >= 0 ? &f->slots[v] : NULL;
    }
    for (int o = 0; o < n->n_outputs; o++) {
        int v = n->outputs[o];
        /* an output's slot starts empty (a kept frame's may hold the fields
         * of the last run's value, released since) */
        out_small[o] = v >= 0 ? &f->slots[v] : &scratch_small[o];
        memset(out_small[o], 0, sizeof(ogi_tensor));
        used_small[o] = v >= 0 && (f->g->values[v].last_use >= 0 || f->g->values[v].is_output);
    }
    op_ctx c = {
        .node = n,
        .opset = n->opset,
        .n_in = n->n_inputs,
        .in = in_small,
        .n_out = n->n_outputs,
        .out = out_small,
        .out_used = used_small,
        .pool = f->env->pool,
        .frame = f,
        .attention = f->env->attention,
    };
    ogi_status st = exec_check_strings(n, in_small);
    if (st == OGI_OK)
        st = n->kernel->run(&c);
    for (int o = 0; o < n->n_outputs && st == OGI_OK; o++)
        if (used_small[o] && out_small[o]->kind == TENSOR_KIND_TENSOR &&
            out_small[o]->data == NULL && out_small[o]->nbytes == 0 &&
            out_small[o]->dtype == OGI_DTYPE_UNDEFINED)
            st = op_error(&c, OGI_ERR_UNSUPPORTED, "output %d was not computed", o);
    for (int o = 0; o < n->n_outputs; o++)
        if (n->outputs[o] < 0)
            exec_release_tensor(&scratch_small[o]);
    return st;
}

/* ---- profiling ------------------------------------------------------------- */

enum { PROFILE_MAX_OPS = 4096 };

struct exec_profile {
    bool by_node; /* one row per node name instead of per op type */
    int n;
    struct {
        const char *op;
        double seconds;
        long calls;
    } ops[PROFILE_MAX_OPS];
    long runs;
};

ogi_status exec_profile_create(bool by_node, exec_profile **out)
{
    *out = calloc(1, sizeof(exec_profile));
    if (*out == NULL)
        return ogi_error(OGI_ERR_OUT_OF_MEMORY, "out of memory");
    (*out)->by_node = by_node;
    return OGI_OK;
}

void exec_profile_free(exec_profile *p)
{
    free(p);
}

static double exec_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void exec_profile_add(exec_profile *p, const char *op, double seconds)
{
    int i = 0;
    while (i < p->n && strcmp(p->ops[i].op, op) != 0)
        i++;
    if (i == p->n) {
        if (p->n == PROFILE_MAX_OPS)
            return;
        p->ops[p->n++].op = op;
    }
    p->ops[i].seconds += seconds;
    p->ops[i].calls++;
}

void exec_profile_print(const exec_profile *p, FILE *f)
{
    double total = 0;
    int order[PROFILE_MAX_OPS];
    for (int i = 0; i < p->n; i++) {
        total += p->ops[i].seconds;
        order[i] = i;
    }
    for (int i = 1; i < p->n; i++)
        for (int j = i; j > 0 && p->ops[order[j - 1]].seconds < p->ops[order[j]].seconds; j--) {
            int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    fprintf(f, "%-26s %10s %8s %10s %6s\n", "op", "ms", "calls", "us/call", "%");
    for (int k = 0; k < p->n && k < 60; k++) {
        int i = order[k];
        fprintf(f, "%-26s %10.2f %8ld %10.2f %6.1f\n", p->ops[i].op, p->ops[i].seconds * 1e3,
                p->ops[i].calls, p->ops[i].seconds * 1e6 / (double)p->ops[i].calls,
                total > 0 ? 100.0 * p->ops[i].seconds / total : 0);
    }
    fprintf(f, "%-26s %10.2f   (%ld runs)\n", "total", total * 1e3, p->runs);
}

struct exec_frame_store {
    const graph *g;
    ogi_tensor *slots;
    arena_block *blocks;
    ogi_tensor **bound;
    int n_live;
    int *live; /* the values a run writes: inputs and node outputs */
};

ogi_status exec_frame_store_create(const graph *g, exec_frame_store **out)
{
    exec_frame_store *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return ogi_error(OGI_ERR_OUT_OF_MEMORY, "out of memory");
    s->g = g;
    s->slots = calloc((size_t)g->n_values + 1, sizeof(ogi_tensor));
    s->blocks = calloc((size_t)g->n_values + 1, sizeof(arena_block));
    s->bound = calloc((size_t)g->n_values + 1, sizeof(ogi_tensor *));
    s->live = calloc((size_t)g->n_values + 1, sizeof(int));
    if (s->slots == NULL || s->blocks == NULL || s->bound == NULL || s->live == NULL) {
        exec_frame_store_free(s);
        return ogi_error(OGI_ERR_OUT_OF_MEMORY, "out of memory");
    }
    exec_frame f = {.g = g, .slots = s->slots};
    (void)exec_bind(&f, NULL, false, true); /* the constants; inputs are bound per run */
    /* the inputs and what the nodes write: values that lost their producer
     * to folding, fusion or merging are never written */
    for (int i = 0; i < g->n_inputs; i++)
        s->live[s->n_live++] = g->inputs[i];
    for (int i = 0; i < g->n_nodes; i++)
        for (int o = 0; o < g->nodes[i].n_outputs; o++)
            if (g->nodes[i].outputs[o] >= 0 && s->n_live < g->n_values)
                s->live[s->n_live++] = g->nodes[i].outputs[o];
    *out = s;
    return OGI_OK;
}

void exec_frame_store_free(exec_frame_store *s)
{
    if (s == NULL)
        return;
    free(s->slots);
    free(s->blocks);
    free(s->bound);
    free(s->live);
    free(s);
}

/* The store that keeps frame f's arrays, or NULL. */
static exec_frame_store *exec_frame_kept(const exec_frame *f)
{
    exec_frame_store *s = f->env->store;
    return s != NULL && s->g == f->g && f->parent == NULL ? s : NULL;
}

/* Releases what a run left in its frame. A kept frame after a complete run
 * holds only the inputs and the outputs (every other value was released at
 * its last reader, and its slot is cleared when its node next runs); after
 * a failed one, anything any node wrote. */
static void exec_frame_cleanup(exec_frame *f, bool complete)
{
    exec_frame_store *s = exec_frame_kept(f);
    if (s != NULL) {
        const graph *g = f->g;
        for (int k = 0; k < g->n_outputs; k++) {
            if (g->values[g->outputs[k]].kind != VALUE_CONST) /* bound once, for every run */
                exec_release_slot(f, g->outputs[k]);
            s->bound[g->outputs[k]] = NULL;
        }
        for (int i = 0; i < g->n_inputs; i++)
            exec_release_slot(f, g->inputs[i]);
        for (int i = 0; i < s->n_live && !complete; i++)
            exec_release_slot(f, s->live[i]);
        return;
    }
    for (int v = 0; v < f->g->n_values; v++)
        exec_release_slot(f, v);
    free(f->slots);
    free(f->blocks);
    free(f->bound);
}

ogi_status exec_copy_into(ogi_tensor *dst, const ogi_tensor *src)
{
    if (src->kind != TENSOR_KIND_TENSOR || dst->kind != TENSOR_KIND_TENSOR)
        return ogi_error(OGI_ERR_UNSUPPORTED,
                         "a sequence or optional result cannot be copied into a caller's tensor");
    if (src->dtype == OGI_STRING || dst->dtype == OGI_STRING)
        return ogi_error(OGI_ERR_UNSUPPORTED,
                         "a string result cannot be copied into a caller's tensor");
    if (src->data == dst->data)
        return OGI_OK;
    if (src->dtype != dst->dtype || !tensor_same_shape(src, dst)) {
        char s1[128], s2[128];
        return ogi_error(
            OGI_ERR_RUNTIME, "a %s %s result does not fit the bound %s %s tensor",
            ogi_dtype_name(src->dtype), tensor_shape_str(src->rank, src->dims, s1, sizeof(s1)),
            ogi_dtype_name(dst->dtype), tensor_shape_str(dst->rank, dst->dims, s2, sizeof(s2)));
    }
    if (src->nbytes)
        memcpy(dst->data, src->data, src->nbytes);
    return OGI_OK;
}

/* An output that was not computed into its bound tensor (an input or a
 * constant passed through, or a value listed twice) is copied there. */
static ogi_status exec_fill_bound(const graph_value *v, const ogi_tensor *slot, ogi_tensor *bound)
{
    ogi_status st = exec_copy_into(bound, slot);
    return st == OGI_OK ? OGI_OK : ogi_error_prefix(st, "output '%s'", v->name);
}

static ogi_status exec_take_outputs(exec_frame *f, ogi_tensor **outputs)
{
    const graph *g = f->g;
    ogi_status st = OGI_OK;
    for (int k = 0; k < g->n_outputs && st == OGI_OK; k++) {
        int v = g->outputs[k];
        ogi_tensor *slot = &f->slots[v];
        if (f->bound != NULL && f->bound[v] != NULL) {
            st = exec_fill_bound(&g->values[v], slot, f->bound[v]);
        } else if (slot->storage == TENSOR_OWNED) {
            ogi_tensor *t = malloc(sizeof(*t));
            if (t == NULL) {
                st = ogi_error(OGI_ERR_OUT_OF_MEMORY, "out of memory for the outputs");
                break;
            }
            *t = *slot;
            slot->storage = TENSOR_BORROWED; /* the caller owns the data now */
            outputs[k] = t;
        } else if (slot->data == NULL && slot->nbytes > 0) {
            st = ogi_error(OGI_ERR_RUNTIME, "output '%s' was not computed", g->values[v].name);
        } else {
            st = tensor_clone(slot, &outputs[k]);
        }
    }
    if (st == OGI_OK)
        return OGI_OK;
    for (int k = 0; k < g->n_outputs; k++) {
        if (f->bound != NULL && f->bound[g->outputs[k]] != NULL)
            continue;
        ogi_tensor_free(outputs[k]);
        outputs[k] = NULL;
    }
    return st;
}

static ogi_status exec_frame_run(exec_frame *f, const ogi_tensor *const *inputs,
                                 ogi_tensor **outputs, bool check_inputs)
{
    const graph *g = f->g;
    exec_frame_store *kept = exec_frame_kept(f);
    if (kept != NULL) {
        f->slots = kept->slots;
        f->blocks = kept->blocks;
        f->bound = kept->bound;
    } else {
        f->slots = calloc((size_t)g->n_values + 1, sizeof(ogi_tensor));
        f->blocks = calloc((size_t)g->n_values + 1, sizeof(arena_block));
        if (f->slots == NULL || f->blocks == NULL) {
            free(f->slots);
            free(f->blocks);
            return ogi_error(OGI_ERR_OUT_OF_MEMORY, "out of memory");
        }
    }
    ogi_status st = exec_bind(f, inputs, check_inputs, kept == NULL);
    for (int k = 0; k < g->n_outputs && st == OGI_OK; k++) {
        if (outputs[k] == NULL)
            continue;
        if (f->bound == NULL && (f->bound = calloc((size_t)g->n_values, sizeof(*f->bound))) == NULL)
            st = ogi_error(OGI_ERR_OUT_OF_MEMORY, "out of memory");
        else
            f->bound[g->outputs[k]] = outputs[k];
    }
    exec_profile *profile = f->env->profile;
    for (int i = 0; i < g->n_nodes && st == OGI_OK; i++) {
        double start = profile ? exec_now() : 0;
        st = exec_node(f, i);
        if (profile)
            exec_profile_add(
                profile, profile->by_node ? g->nodes[i].proto->name : g->nodes[i].kernel->op_type,
                exec_now() - start);
        const graph_node *n = &g->nodes[i];
        for (int r = 0; r < n->n_release; r++)
            exec_release_slot(f, n->release[r]);
    }
    if (st == OGI_OK)
        st = exec_take_outputs(f, outputs);
    exec_frame_cleanup(f, st == OGI_OK);
    return st;
}

ogi_status exec_run(const graph *g, const exec_env *env, const ogi_tensor *const *inputs,
                    ogi_tensor **outputs)
{
    exec_frame f = {.g = g, .env = env};
    if (env->profile)
        env->profile->runs++;
    ogi_status st = exec_frame_run(&f, inputs, outputs, true);
    if (env->arena != NULL)
        arena_end_run(env->arena);
    return st;
}

ogi_status op_run_subgraph(op_ctx *c, const graph *g, int n_in, const ogi_tensor *const *inputs,
                           int n_out, ogi_tensor **outputs)
{
    if (c->frame == NULL)
        return op_error(c, OGI_ERR_UNSUPPORTED, "subgraphs cannot run at load time");
    if (n_in != g->n_inputs || n_out != g->n_outputs)
        return op_error(c, OGI_ERR_INVALID_MODEL,
                        "subgraph takes %d inputs and gives %d outputs, not %d and %d", g->n_inputs,
                        g->n_outputs, n_in, n_out);
    for (int i = 0; i < n_in; i++)
        if (inputs[i] == NULL)
            return op_error(c, OGI_ERR_INVALID_MODEL, "subgraph input %d is missing", i);
    exec_frame f = {.g = g, .env = c->frame->env, .parent = c->frame};
    ogi_status st = exec_frame_run(&f, inputs, outputs, false);
    if (st != OGI_OK)
        return ogi_error_prefix(st, "in subgraph of node '%s'", c->node->proto->name);
    return OGI_OK;
}

/* ---- constant folding ------------------------------------------------------ */

/* Shape and Size read only their input's shape: they fold whenever
 * inference knows that shape, even though the input is computed at run time. */
static bool exec_shape_only(const graph *g, const graph_node *n)
{
    if (n->proto->domain[0] != '\0' || n->n_inputs != 1 || n->inputs[0] < 0)
        return false;
    if (strcmp(n->proto->op_type, "Shape") != 0 && strcmp(n->proto->op_type, "Size") != 0)
        return false;
    const graph_value *x = &g->values[n->inputs[0]];
    return x->dtype != OGI_DTYPE_UNDEFINED && shape_is_static(&x->shape);
}

static bool exec_foldable(const graph *g, const graph_node *n)
{
    if (n->n_subgraphs > 0 || n->proto->domain[0] != '\0' || op_kernel_is_random(n->kernel))
        return false;
    for (int o = 0; o < n->n_outputs; o++)
        if (n->outputs[o] < 0)
            return false;
    if (exec_shape_only(g, n))
        return true;
    for (int i = 0; i < n->n_inputs; i++)
        if (n->inputs[i] >= 0 && g->values[n->inputs[i]].kind != VALUE_CONST)
            return false;
    return true;
}

static ogi_status exec_keep_constant(graph *g, int v, ogi_tensor *t)
{
    ogi_tensor **owned = realloc(g->owned, (size_t)(g->n_owned + 1) * sizeof(*owned));
    if (owned == NULL)
        return ogi_error(OGI_ERR_OUT_OF_MEMORY, "out of memory");
    g->owned = owned;
    g->owned[g->n_owned++] = t;
    graph_value *x = &g->values[v];
    x->kind = VALUE_CONST;
    x->constant = t;
    x->producer = -1;
    x->dtype = t->dtype;
    x->shape.rank = t->rank;
    for (int d = 0; d < t->rank; d++) {
        x->shape.dims[d] = t->dims[d];
        x->shape.symbols[d] = NULL;
    }
    return OGI_OK;
}

/* Runs node n on constants; *folded tells whether its outputs became
 * constants. A node that fails here (too large, or an error its inputs
 * cause) is kept: the run reports the error with its full context. */
static ogi_status exec_fold_node(graph *g, graph_node *n, bool *folded)
{
    enum { MAX_IO = 64 };
    const ogi_tensor *in[MAX_IO];
    ogi_tensor outs[MAX_IO];
    ogi_tensor *out_ptrs[MAX_IO];
    bool used[MAX_IO];
    *folded = false;
    if (n->n_inputs > MAX_IO || n->n_outputs > MAX_IO)
        return OGI_OK;
    memset(outs, 0, sizeof(outs));
    memset(in, 0, sizeof(in));
    for (int i = 0; i < n->n_inputs; i++)
        in[i] = n->inputs[i] >= 0 ? g->values[n->inputs[i]].constant : NULL;
    ogi_tensor shape_only; /* dims without data, for Shape and Size */
    if (exec_shape_only(g, n) && in[0] == NULL) {
        const graph_value *x = &g->values[n->inputs[0]];
        memset(&shape_only, 0, sizeof(shape_only));
        if (tensor_set_shape(&shape_only, x->dtype, x->shape.rank, x->shape.dims) != OGI_OK) {
            ogi_error_clear();
            return OGI_OK;
        }
        in[0] = &shape_only;
    }
    for (int o = 0; o < n->n_outputs; o++) {
        out_ptrs[o] = &outs[o];
        used[o] = true;
    }
    op_ctx c = {.node = n,
                .opset = n->opset,
                .n_in = n->n_inputs,
                .in = in,
                .n_out = n->n_outputs,
                .out = out_ptrs,
                .out_used = used};
    ogi_status st = exec_check_strings(n, in);
    if (st == OGI_OK)
        st = n->kernel->run(&c);
    size_t total = 0;
    bool containers = false; /* constants stay plain tensors */
    for (int o = 0; o < n->n_outputs; o++) {
        total += outs[o].nbytes;
        containers |= outs[o].kind != TENSOR_KIND_TENSOR;
    }
    if (st != OGI_OK || total > GRAPH_MAX_FOLD_BYTES || containers) {
        for (int o = 0; o < n->n_outputs; o++)
            tensor_release(&outs[o]);
        ogi_error_clear();
        return OGI_OK;
    }
    for (int o = 0; o < n->n_outputs; o++) {
        ogi_tensor *t = malloc(sizeof(*t));
        if (t == NULL) {
            for (int k = o; k < n->n_outputs; k++)
                tensor_release(&outs[k]);
            return ogi_error(OGI_ERR_OUT_OF_MEMORY, "out of memory");
        }
        *t = outs[o];
        st = exec_keep_constant(g, n->outputs[o], t);
        if (st != OGI_OK) {
            ogi_tensor_free(t);
            for (int k = o + 1; k < n->n_outputs; k++)
                tensor_release(&outs[k]);
            return st;
        }
    }
    *folded = true;
    return OGI_OK;
}

/* Whether shape inference knows every element of every output of n: small
 * int64, int32 or bool values computed from shapes, such as
 * Gather(Shape(x), 3) when dim 3 of x is a known number though x itself is
 * computed at run time. Graph outputs stay computed (a caller may bind them). */
static bool exec_elems_known(const graph *g, const graph_node *n)
{
    if (n->n_subgraphs > 0 || n->n_outputs < 1 || op_kernel_is_random(n->kernel) ||
        op_kernel_updates_in_place(n->kernel))
        return false;
    for (int o = 0; o < n->n_outputs; o++) {
        if (n->outputs[o] < 0)
            return false;
        const graph_value *x = &g->values[n->outputs[o]];
        if (x->kind != VALUE_NODE || x->is_output || x->type != TENSOR_KIND_TENSOR ||
            !shape_elems_known(&x->elems) || !shape_is_static(&x->shape) || x->shape.rank > 1 ||
            tensor_shape_numel(x->shape.rank, x->shape.dims) != x->elems.count)
            return false;
        if (x->dtype != OGI_INT64 && x->dtype != OGI_INT32 && x->dtype != OGI_BOOL)
            return false;
    }
    return true;
}

/* Replaces n's outputs by constants holding the elements inference found. */
static ogi_status exec_fold_elems(graph *g, const graph_node *n)
{
    for (int o = 0; o < n->n_outputs; o++) {
        const graph_value *x = &g->values[n->outputs[o]];
        ogi_tensor *t;
        ogi_status st = ogi_tensor_create(x->dtype, x->shape.rank, x->shape.dims, &t);
        if (st != OGI_OK)
            return st;
        for (int i = 0; i < x->elems.count; i++) {
            int64_t v = x->elems.value[i];
            if (x->dtype == OGI_INT64)
                ((int64_t *)t->data)[i] = v;
            else if (x->dtype == OGI_INT32)
                ((int32_t *)t->data)[i] = (int32_t)v;
            else
                ((uint8_t *)t->data)[i] = v != 0;
        }
        st = exec_keep_constant(g, n->outputs[o], t);
        if (st != OGI_OK) {
            ogi_tensor_free(t);
            return st;
        }
    }
    return OGI_OK;
}

static bool exec_same_static_shape(const graph_value *a, const graph_value *b)
{
    if (!shape_is_static(&a->shape) || !shape_is_static(&b->shape) ||
        a->shape.rank != b->shape.rank)
        return false;
    for (int d = 0; d < a->shape.rank; d++)
        if (a->shape.dims[d] != b->shape.dims[d])
            return false;
    return true;
}

/* A constant whose elements are all zero (0) or all nonzero (1); -1 otherwise. */
static int exec_uniform_condition(const graph_value *c)
{
    if (c->kind != VALUE_CONST || c->constant->dtype != OGI_BOOL || tensor_numel(c->constant) < 1)
        return -1;
    const uint8_t *p = c->constant->data;
    int64_t count = tensor_numel(c->constant);
    for (int64_t i = 1; i < count; i++)
        if ((p[i] != 0) != (p[0] != 0))
            return -1;
    return p[0] != 0;
}

/* The input whose value node n's only output always is, or -1: Identity;
 * Cast to the input's own dtype; Reshape or Expand to the input's static
 * shape; Where whose condition is a constant of one truth value and whose
 * chosen input has the output's static shape (the legacy exports'
 * Where(Equal(shape, -1), 1, shape) once the Equal folds). */
static int exec_alias_input(const graph *g, const graph_node *n)
{
    if (n->proto->domain[0] != '\0' || n->n_subgraphs > 0 || n->n_outputs != 1 ||
        n->outputs[0] < 0 || n->n_inputs < 1 || n->inputs[0] < 0)
        return -1;
    const graph_value *out = &g->values[n->outputs[0]], *x = &g->values[n->inputs[0]];
    if (out->kind != VALUE_NODE || out->is_output || out->type != TENSOR_KIND_TENSOR ||
        x->type != TENSOR_KIND_TENSOR)
        return -1;
    const char *op = n->proto->op_type;
    if (strcmp(op, "Identity") == 0)
        return n->inputs[0];
    if (strcmp(op, "Cast") == 0)
        return x->dtype != OGI_DTYPE_UNDEFINED && x->dtype == out->dtype ? n->inputs[0] : -1;
    if (strcmp(op, "Reshape") == 0 || strcmp(op, "Expand") == 0)
        return exec_same_static_shape(x, out) ? n->inputs[0] : -1;
    if (strcmp(op, "Where") != 0 || n->n_inputs != 3 || n->inputs[1] < 0 || n->inputs[2] < 0)
        return -1;
    int cond = exec_uniform_condition(x);
    if (cond < 0)
        return -1;
    int pick = n->inputs[cond ? 1 : 2];
    const graph_value *y = &g->values[pick];
    return y->type == TENSOR_KIND_TENSOR && y->dtype == out->dtype && exec_same_static_shape(y, out)
               ? pick
               : -1;
}

/* The value whose elements node n's only output holds, all of them, in
 * order, with the same dtype and static shape, or -1: what Shape chains
 * give when they slice back out an element they concatenated in (a KV
 * cache's past length, re-read from every layer's cache shape). */
static int exec_alias_elems(const graph *g, const graph_node *n)
{
    if (n->n_outputs != 1 || n->outputs[0] < 0 || n->n_subgraphs > 0 ||
        op_kernel_updates_in_place(n->kernel))
        return -1;
    const graph_value *out = &g->values[n->outputs[0]];
    const value_elems *e = &out->elems;
    if (out->kind != VALUE_NODE || out->is_output || e->count < 1 || e->count > OGI_MAX_RANK)
        return -1;
    int from = -1;
    for (int i = 0; i < e->count; i++) {
        if (((e->known >> i) & 1u) || e->origin[i] <= 0)
            return -1;
        int v = value_origin_value(e->origin[i]), at = value_origin_elem(e->origin[i]);
        if (at != i || (from >= 0 && v != from) || v == n->outputs[0] || v >= g->n_values)
            return -1;
        from = v;
    }
    const graph_value *x = &g->values[from];
    return x->kind == VALUE_NODE && x->type == TENSOR_KIND_TENSOR && x->dtype == out->dtype &&
                   x->elems.count == e->count && exec_same_static_shape(x, out)
               ? from
               : -1;
}

/* Readers of node from on read `to` instead of `from` (subgraph captures
 * included). False when one of them updates that input in place. */
static bool exec_redirect(graph *g, int first, int from, int to)
{
    for (int i = first; i < g->n_nodes; i++)
        for (int k = 0; k < g->nodes[i].n_inputs; k++)
            if (g->nodes[i].inputs[k] == from && op_kernel_updates_in_place(g->nodes[i].kernel))
                return false;
    for (int i = first; i < g->n_nodes; i++) {
        graph_node *n = &g->nodes[i];
        for (int k = 0; k < n->n_inputs; k++)
            if (n->inputs[k] == from)
                n->inputs[k] = to;
        for (int sg = 0; sg < n->n_subgraphs; sg++)
            for (int v = 0; v < n->subgraphs[sg]->n_values; v++) {
                graph_value *c = &n->subgraphs[sg]->values[v];
                if (c->kind == VALUE_CAPTURED && c->capture_index == from)
                    c->capture_index = to;
            }
    }
    return true;
}

/* Marks in removed the nodes whose outputs nothing left reads (what folding
 * left of a Shape whose dims were all taken as constants), last to first so
 * that a chain goes at once. Nodes with subgraphs, random draws or in-place
 * updates stay. */
static ogi_status exec_mark_unread(graph *g, bool *removed, int *marked)
{
    int *readers = graph_reader_counts(g, removed);
    *marked = 0;
    if (readers == NULL)
        return ogi_error(OGI_ERR_OUT_OF_MEMORY, "out of memory");
    for (int i = g->n_nodes - 1; i >= 0; i--) {
        const graph_node *n = &g->nodes[i];
        bool unread = !removed[i] && n->n_subgraphs == 0 && !op_kernel_is_random(n->kernel) &&
                      !op_kernel_updates_in_place(n->kernel);
        for (int o = 0; o < n->n_outputs && unread; o++)
            unread = n->outputs[o] < 0 || readers[n->outputs[o]] == 0;
        if (!unread)
            continue;
        removed[i] = true;
        (*marked)++;
        for (int k = 0; k < n->n_inputs; k++)
            if (n->inputs[k] >= 0)
                readers[n->inputs[k]]--;
    }
    free(readers);
    return OGI_OK;
}

/* Removes the nodes marked in removed and those left unread then
 * (*unread of them). */
static ogi_status exec_remove_with_unread(graph *g, bool *removed, int *unread)
{
    ogi_status st = exec_mark_unread(g, removed, unread);
    return st == OGI_OK ? graph_remove_nodes(g, removed) : st;
}

ogi_status graph_fold_constants(graph *g)
{
    bool *folded_at = calloc((size_t)g->n_nodes + 1, sizeof(bool));
    if (folded_at == NULL)
        return ogi_error(OGI_ERR_OUT_OF_MEMORY, "out of memory");
    ogi_status st = OGI_OK;
    for (int i = 0; i < g->n_nodes && st == OGI_OK; i++) {
        graph_node *n = &g->nodes[i];
        bool folded = false;
        shape_infer_node(g, n);
        if (exec_foldable(g, n))
            st = exec_fold_node(g, n, &folded);
        if (st == OGI_OK && !folded && exec_elems_known(g, n)) {
            st = exec_fold_elems(g, n);
            folded = true;
        }
        int alias = folded || st != OGI_OK ? -1 : exec_alias_input(g, n);
        if (alias < 0 && !folded && st == OGI_OK)
            alias = exec_alias_elems(g, n);
        if (alias >= 0 && exec_redirect(g, i + 1, n->outputs[0], alias)) {
            g->values[n->outputs[0]].producer = -1;
            folded = true;
        }
        if (st == OGI_OK && folded) {
            folded_at[i] = true;
            g->n_folded++;
        }
    }
    int unread = 0;
    if (st == OGI_OK)
        st = exec_remove_with_unread(g, folded_at, &unread);
    g->n_folded += unread;
    free(folded_at);
    return st;
}

ogi_status graph_remove_unread(graph *g)
{
    bool *removed = calloc((size_t)g->n_nodes + 1, sizeof(bool));
    if (removed == NULL)
        return ogi_error(OGI_ERR_OUT_OF_MEMORY, "out of memory");
    int unread = 0;
    ogi_status st = exec_remove_with_unread(g, removed, &unread);
    free(removed);
    return st;
}
