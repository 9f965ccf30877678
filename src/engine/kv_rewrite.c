/* The KV-cache rewrite (see kv_rewrite.h and docs/kv-rewrite.md): finds
 * the concat-style caches, replaces each Concat by TensorScatter and
 * TensorGather on a fixed-size cache, and makes every Shape of a past input
 * report the shape the original graph would have seen. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/tensor.h"
#include "engine/kv_rewrite.h"

enum {
    KV_TENSOR_OPSET = 24, /* TensorScatter */
    KV_MIN_OPSET = 13,    /* older graphs change meaning in too many ways */
    KV_MAX_ALIASES = 64,
};

/* One past/present pair: present = Concat(past, update, axis). */
typedef struct kv_cache {
    const char *past;    /* graph input; the cache buffer after the rewrite */
    const char *present; /* graph output of the Concat */
    const char *update;  /* the Concat's second input: this run's entries */
    int axis;            /* the sequence axis, in [1, rank) */
    int rank;
} kv_cache;

typedef struct kv_ctx {
    onnx_builder *b;
    onnx_graph *g;
    int64_t window;     /* sliding window W; 0 for the static variant */
    int64_t slots;      /* cache positions on the sequence axis */
    bool symbolic;      /* declare the static cache length as "cache_len" */
    const char *tokens; /* input_ids or inputs_embeds */
    kv_cache *caches;
    int n_caches;
    /* values every cache shares, int64 of shape [1] unless told */
    const char *total;      /* attention_mask's length: past_len + seq */
    const char *seq;        /* tokens in this run */
    const char *batch;      /* batch size */
    const char *past_len;   /* positions cached before this run */
    const char *seen_past;  /* the past length the original graph sees */
    const char *write_idx;  /* static: [batch] write positions */
    const char *read_start; /* sliding: past_len - seen_past */
    const char *read_idx;   /* sliding: [batch] read_start per sample */
    const char *tail_len;   /* sliding: new entries written to the cache */
    const char *tail_start; /* sliding: seq - tail_len */
} kv_ctx;

static ogi_status kv_oom(void)
{
    return ogi_error(OGI_ERR_OUT_OF_MEMORY, "kv-rewrite: out of memory");
}

static bool kv_default_domain(const char *domain)
{
    return domain[0] == '\0' || strcmp(domain, "ai.onnx") == 0;
}

static bool kv_in_list(const char *const *list, int n, const char *s)
{
    for (int i = 0; i < n; i++)
        if (strcmp(list[i], s) == 0)
            return true;
    return false;
}

static int kv_find_info(const onnx_value_info *list, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(list[i].name, name) == 0)
            return i;
    return -1;
}

/* Identity, or a Concat of one input: the output is the input. */
static bool kv_is_alias(const onnx_node *n)
{
    if (!kv_default_domain(n->domain) || n->n_inputs != 1 || n->n_outputs != 1)
        return false;
    return strcmp(n->op_type, "Identity") == 0 || strcmp(n->op_type, "Concat") == 0;
}

/* ---- building blocks ---------------------------------------------------------- */

static const char *kv_name(kv_ctx *k, const char *hint)
{
    char prefix[256];
    snprintf(prefix, sizeof(prefix), "kv_rewrite/%s", hint);
    return onnx_builder_unique_name(k->b, prefix);
}

/* Appends op_type(in) -> out, a node with a new name. */
static ogi_status kv_add(kv_ctx *k, const char *op_type, const char *domain, int n_in,
                         const char *const *in, const char *out, onnx_node **node)
{
    for (int i = 0; i < n_in; i++)
        if (in[i] == NULL)
            return kv_oom();
    const char *name = kv_name(k, op_type);
    if (out == NULL || name == NULL)
        return kv_oom();
    onnx_node *n;
    ogi_status st =
        onnx_builder_add_simple_node(k->b, k->g, op_type, domain, n_in, in, 1, &out, &n);
    if (st != OGI_OK)
        return st;
    n->name = name;
    if (node != NULL)
        *node = n;
    return OGI_OK;
}

/* *out = op(a, b), a new value. */
static ogi_status kv_op2(kv_ctx *k, const char *op, const char *a, const char *b, const char *hint,
                         const char **out)
{
    const char *in[2] = {a, b};
    *out = kv_name(k, hint);
    return kv_add(k, op, "", 2, in, *out, NULL);
}

/* *out = Shape(x, start, end); end INT64_MAX for "to the last dim". */
static ogi_status kv_shape(kv_ctx *k, const char *x, int64_t start, int64_t end, const char *hint,
                           const char **out)
{
    onnx_node *n;
    *out = kv_name(k, hint);
    ogi_status st = kv_add(k, "Shape", "", 1, &x, *out, &n);
    if (st == OGI_OK)
        st = onnx_builder_set_attr_int(k->b, n, "start", start);
    if (st == OGI_OK && end != INT64_MAX)
        st = onnx_builder_set_attr_int(k->b, n, "end", end);
    return st;
}

/* A new int64 initializer of shape [n] in graph g. */
static ogi_status kv_const_in(kv_ctx *k, onnx_graph *g, const int64_t *v, int64_t n,
                              const char *hint, const char **out)
{
    ogi_tensor t;
    memset(&t, 0, sizeof(t));
    ogi_status st = tensor_set_shape(&t, OGI_INT64, 1, &n);
    if (st != OGI_OK)
        return st;
    t.data = (void *)v;
    *out = kv_name(k, hint);
    if (*out == NULL)
        return kv_oom();
    return onnx_builder_add_initializer(k->b, g, *out, &t);
}

static ogi_status kv_const(kv_ctx *k, int64_t v, const char *hint, const char **out)
{
    return kv_const_in(k, k->g, &v, 1, hint, out);
}

/* Sets the attributes every TensorScatter and TensorGather here carries. */
static ogi_status kv_set_axis_mode(kv_ctx *k, onnx_node *n, int axis)
{
    ogi_status st = onnx_builder_set_attr_int(k->b, n, "axis", axis);
    if (st == OGI_OK)
        st = onnx_builder_set_attr_string(k->b, n, "mode", k->window > 0 ? "circular" : "linear");
    return st;
}

/* ---- finding the caches ------------------------------------------------------- */

/* names[0] is a graph input: adds the outputs of alias nodes that read a
 * member, transitively. Returns the count, or -1 when there are too many. */
static int kv_aliases(const onnx_graph *g, const char **names)
{
    int n = 1;
    for (bool grew = true; grew;) {
        grew = false;
        for (int i = 0; i < g->n_nodes; i++) {
            const onnx_node *nd = &g->nodes[i];
            if (!kv_is_alias(nd) || !kv_in_list(names, n, nd->inputs[0]) ||
                kv_in_list(names, n, nd->outputs[0]))
                continue;
            if (n == KV_MAX_ALIASES)
                return -1;
            names[n++] = nd->outputs[0];
            grew = true;
        }
    }
    return n;
}

/* Whether a node of g or of its subgraphs reads one of names. */
static bool kv_graph_reads(const onnx_graph *g, const char *const *names, int n)
{
    for (int i = 0; i < g->n_nodes; i++) {
        const onnx_node *nd = &g->nodes[i];
        for (int j = 0; j < nd->n_inputs; j++)
            if (kv_in_list(names, n, nd->inputs[j]))
                return true;
        for (int a = 0; a < nd->n_attrs; a++) {
            const onnx_attr *at = &nd->attrs[a];
            if (at->type == ONNX_ATTR_GRAPH && at->g && kv_graph_reads(at->g, names, n))
                return true;
            for (int64_t s = 0; at->type == ONNX_ATTR_GRAPHS && s < at->n; s++)
                if (kv_graph_reads(at->graphs[s], names, n))
                    return true;
        }
    }
    return false;
}

static bool kv_node_reads(const onnx_node *nd, const char *const *names, int n)
{
    onnx_graph one = {.n_nodes = 1, .nodes = (onnx_node *)nd};
    return kv_graph_reads(&one, names, n);
}

/* Classifies the readers of one graph input: *concat gets the cache Concat
 * (NULL: not a cache), *other the first reader the rewrite cannot keep. */
static void kv_readers(const onnx_graph *g, const char *const *names, int n,
                       const onnx_node **concat, const onnx_node **other)
{
    *concat = *other = NULL;
    for (int i = 0; i < g->n_nodes; i++) {
        const onnx_node *nd = &g->nodes[i];
        if (!kv_node_reads(nd, names, n) || kv_is_alias(nd))
            continue;
        bool plain = kv_default_domain(nd->domain) && nd->n_attrs <= 2;
        if (plain && strcmp(nd->op_type, "Shape") == 0 && nd->n_inputs == 1)
            continue;
        bool is_concat = kv_default_domain(nd->domain) && strcmp(nd->op_type, "Concat") == 0 &&
                         nd->n_inputs == 2 && nd->n_outputs == 1 &&
                         kv_in_list(names, n, nd->inputs[0]) &&
                         !kv_in_list(names, n, nd->inputs[1]) &&
                         kv_find_info(g->outputs, g->n_outputs, nd->outputs[0]) >= 0;
        if (is_concat && *concat == NULL)
            *concat = nd;
        else if (*other == NULL)
            *other = nd;
    }
}

static ogi_status kv_add_cache(kv_ctx *k, const onnx_value_info *past, const onnx_node *concat)
{
    if (past->kind != ONNX_VALUE_TENSOR || past->rank < 2)
        return ogi_error(OGI_ERR_UNSUPPORTED,
                         "cache input '%s' does not declare a tensor shape of rank >= 2",
                         past->name);
    const onnx_attr *a = onnx_node_find_attr(concat, "axis");
    if (a == NULL || a->type != ONNX_ATTR_INT)
        return ogi_error(OGI_ERR_INVALID_MODEL, "node '%s' (Concat) has no int attribute axis",
                         concat->name);
    int64_t axis = a->i < 0 ? a->i + past->rank : a->i;
    if (axis < 1 || axis >= past->rank)
        return ogi_error(OGI_ERR_UNSUPPORTED,
                         "node '%s' concatenates cache '%s' on axis %lld: expected a sequence "
                         "axis in [1, %d)",
                         concat->name, past->name, (long long)a->i, past->rank);
    kv_cache *grown = realloc(k->caches, sizeof(*grown) * (size_t)(k->n_caches + 1));
    if (grown == NULL)
        return kv_oom();
    k->caches = grown;
    k->caches[k->n_caches++] =
        (kv_cache){past->name, concat->outputs[0], concat->inputs[1], (int)axis, past->rank};
    return OGI_OK;
}

/* A cache is a graph input (through Identity or one-input Concat nodes)
 * that a Concat puts first before this run's entries, into a graph output. */
static ogi_status kv_find_caches(kv_ctx *k)
{
    const onnx_graph *g = k->g;
    for (int i = 0; i < g->n_inputs; i++) {
        const onnx_value_info *in = &g->inputs[i];
        if (onnx_graph_find_initializer(g, in->name) >= 0)
            continue;
        const char *names[KV_MAX_ALIASES] = {in->name};
        int n = kv_aliases(g, names);
        if (n < 0)
            return ogi_error(OGI_ERR_UNSUPPORTED, "input '%s' has over %d Identity aliases",
                             in->name, KV_MAX_ALIASES);
        const onnx_node *concat, *other;
        kv_readers(g, names, n, &concat, &other);
        if (concat == NULL)
            continue;
        if (other != NULL)
            return ogi_error(OGI_ERR_UNSUPPORTED,
                             "node '%s' (%s) reads cache input '%s': only Shape nodes and the "
                             "Concat that makes '%s' may",
                             other->name, other->op_type, in->name, concat->outputs[0]);
        for (int a = 1; a < n; a++)
            if (kv_find_info(g->outputs, g->n_outputs, names[a]) >= 0)
                return ogi_error(OGI_ERR_UNSUPPORTED, "graph output '%s' is cache input '%s'",
                                 names[a], in->name);
        ogi_status st = kv_add_cache(k, in, concat);
        if (st != OGI_OK)
            return st;
    }
    if (k->n_caches == 0)
        return ogi_error(OGI_ERR_UNSUPPORTED,
                         "no concat-style KV cache: no graph input is concatenated (first, "
                         "with this run's entries) into a graph output");
    return OGI_OK;
}

static ogi_status kv_check_inputs(kv_ctx *k)
{
    const onnx_graph *g = k->g;
    if (kv_find_info(g->inputs, g->n_inputs, "attention_mask") < 0)
        return ogi_error(OGI_ERR_UNSUPPORTED, "the graph has no input 'attention_mask', which "
                                              "the rewrite derives the past length from");
    if (kv_find_info(g->inputs, g->n_inputs, "input_ids") >= 0)
        k->tokens = "input_ids";
    else if (kv_find_info(g->inputs, g->n_inputs, "inputs_embeds") >= 0)
        k->tokens = "inputs_embeds";
    else
        return ogi_error(OGI_ERR_UNSUPPORTED,
                         "the graph has neither 'input_ids' nor 'inputs_embeds' as an input");
    if (k->window > 0 && kv_find_info(g->inputs, g->n_inputs, "position_ids") < 0)
        return ogi_error(OGI_ERR_UNSUPPORTED,
                         "the sliding-window variant needs 'position_ids' as a graph input: "
                         "positions derived from the past length would be window-relative");
    return OGI_OK;
}

/* ---- the opset-24 import -------------------------------------------------------- */

static const char *const kv_reduce_ops[] = {
    "ReduceMean", "ReduceMax",    "ReduceMin",       "ReduceProd",      "ReduceL1",
    "ReduceL2",   "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare",
};

/* Reduce* (but ReduceSum) read axes from an input since opset 18. */
static ogi_status kv_upgrade_reduce(kv_ctx *k, onnx_graph *g, onnx_node *n, int *count)
{
    const onnx_attr *a = onnx_node_find_attr(n, "axes");
    if (a == NULL) /* all axes, at every opset */
        return OGI_OK;
    if (a->type != ONNX_ATTR_INTS || n->n_inputs != 1)
        return ogi_error(OGI_ERR_INVALID_MODEL, "node '%s' (%s): unexpected axes", n->name,
                         n->op_type);
    const char *axes;
    ogi_status st = kv_const_in(k, g, a->ints, a->n, "axes", &axes);
    if (st == OGI_OK)
        st = onnx_builder_set_node_input(k->b, n, 1, axes);
    if (st != OGI_OK)
        return st;
    onnx_builder_remove_attr(k->b, n, "axes");
    (*count)++;
    return OGI_OK;
}

static ogi_status kv_upgrade_graph(kv_ctx *k, onnx_graph *g, int64_t old, int *count);

/* Makes n mean at opset 24 what it meant at `old`. */
static ogi_status kv_upgrade_node(kv_ctx *k, onnx_graph *g, onnx_node *n, int64_t old, int *count)
{
    ogi_status st = OGI_OK;
    for (int a = 0; a < n->n_attrs && st == OGI_OK; a++) {
        onnx_attr *at = &n->attrs[a];
        if (at->type == ONNX_ATTR_GRAPH && at->g)
            st = kv_upgrade_graph(k, at->g, old, count);
        for (int64_t s = 0; at->type == ONNX_ATTR_GRAPHS && s < at->n && st == OGI_OK; s++)
            st = kv_upgrade_graph(k, at->graphs[s], old, count);
    }
    if (st != OGI_OK || !kv_default_domain(n->domain))
        return st;
    const char *op = n->op_type;
    if (old < 18 &&
        kv_in_list(kv_reduce_ops, (int)(sizeof(kv_reduce_ops) / sizeof(kv_reduce_ops[0])), op))
        return kv_upgrade_reduce(k, g, n, count);
    if (old < 18 && strcmp(op, "Split") == 0 && (n->n_inputs < 2 || n->inputs[1][0] == '\0') &&
        onnx_node_find_attr(n, "num_outputs") == NULL) {
        (*count)++; /* equal parts: Split-18 wants their number */
        return onnx_builder_set_attr_int(k->b, n, "num_outputs", n->n_outputs);
    }
    bool changed = (old < 20 && (strcmp(op, "DFT") == 0 || strcmp(op, "GridSample") == 0)) ||
                   (old < 21 && strcmp(op, "GroupNormalization") == 0);
    if (changed)
        return ogi_error(OGI_ERR_UNSUPPORTED,
                         "node '%s' (%s) changes meaning between opset %lld and %d, which "
                         "TensorScatter needs: convert the model first",
                         n->name, op, (long long)old, KV_TENSOR_OPSET);
    return OGI_OK;
}

static ogi_status kv_upgrade_graph(kv_ctx *k, onnx_graph *g, int64_t old, int *count)
{
    for (int i = 0; i < g->n_nodes; i++) {
        ogi_status st = kv_upgrade_node(k, g, &g->nodes[i], old, count);
        if (st != OGI_OK)
            return st;
    }
    return OGI_OK;
}

/* ---- the rewrite ------------------------------------------------------------------ */

static bool kv_is_past(const kv_ctx *k, const char *name)
{
    for (int c = 0; c < k->n_caches; c++)
        if (strcmp(k->caches[c].past, name) == 0)
            return true;
    return false;
}

/* Makes the readers of each cache's Identity aliases read the input. */
static ogi_status kv_remove_aliases(kv_ctx *k)
{
    for (int i = 0; i < k->g->n_nodes;) {
        onnx_node *n = &k->g->nodes[i];
        if (!kv_is_alias(n) || !kv_is_past(k, n->inputs[0])) {
            i++;
            continue;
        }
        ogi_status st = onnx_builder_replace_uses(k->b, k->g, n->outputs[0], n->inputs[0], NULL);
        if (st == OGI_OK)
            st = onnx_builder_remove_node(k->b, k->g, i);
        if (st != OGI_OK)
            return st;
        i = 0; /* an alias of the alias now reads the input: start over */
    }
    return OGI_OK;
}

/* Sliding window: the graph sees only the last seen_past + seq columns of
 * attention_mask, the window its masks are built over. */
static ogi_status kv_window_mask(kv_ctx *k, const char *window)
{
    const char *one;
    ogi_status st = kv_const(k, 1, "axis", &one);
    if (st != OGI_OK)
        return st;
    const char *in[4] = {"attention_mask", k->read_start, k->total, one};
    return kv_add(k, "Slice", "", 4, in, window, NULL);
}

static ogi_status kv_window_lengths(kv_ctx *k)
{
    const char *w1, *slots;
    ogi_status st = kv_const(k, k->window - 1, "window_past", &w1);
    if (st == OGI_OK)
        st = kv_op2(k, "Min", k->past_len, w1, "seen_past_len", &k->seen_past);
    if (st == OGI_OK)
        st = kv_op2(k, "Sub", k->past_len, k->seen_past, "read_start", &k->read_start);
    if (st == OGI_OK)
        st = kv_op2(k, "Expand", k->read_start, k->batch, "read_indices", &k->read_idx);
    if (st == OGI_OK)
        st = kv_const(k, k->slots, "cache_slots", &slots);
    if (st == OGI_OK)
        st = kv_op2(k, "Min", k->seq, slots, "tail_len", &k->tail_len);
    if (st == OGI_OK)
        st = kv_op2(k, "Sub", k->seq, k->tail_len, "tail_start", &k->tail_start);
    return st;
}

/* The lengths every cache shares: past_len = attention_mask's length minus
 * this run's tokens. */
static ogi_status kv_lengths(kv_ctx *k)
{
    const char *window = NULL;
    ogi_status st = OGI_OK;
    if (k->window > 0) { /* before anything reads attention_mask on purpose */
        window = kv_name(k, "attention_mask_window");
        st = window ? onnx_builder_replace_uses(k->b, k->g, "attention_mask", window, NULL)
                    : kv_oom();
    }
    if (st == OGI_OK)
        st = kv_shape(k, "attention_mask", 1, 2, "total_len", &k->total);
    if (st == OGI_OK)
        st = kv_shape(k, k->tokens, 1, 2, "seq_len", &k->seq);
    if (st == OGI_OK)
        st = kv_shape(k, k->tokens, 0, 1, "batch", &k->batch);
    if (st == OGI_OK)
        st = kv_op2(k, "Sub", k->total, k->seq, "past_len", &k->past_len);
    if (st != OGI_OK)
        return st;
    if (k->window == 0) {
        k->seen_past = k->past_len;
        return kv_op2(k, "Expand", k->past_len, k->batch, "write_indices", &k->write_idx);
    }
    st = kv_window_lengths(k);
    return st == OGI_OK ? kv_window_mask(k, window) : st;
}

/* Replaces each Shape(past) by a slice of `shape`, the past shape the
 * original graph would have seen; *count gets their number. */
static ogi_status kv_replace_shapes(kv_ctx *k, const kv_cache *c, const char *shape, int *count)
{
    *count = 0;
    for (int i = 0; i < k->g->n_nodes;) {
        const onnx_node *n = &k->g->nodes[i];
        if (strcmp(n->op_type, "Shape") != 0 || n->n_inputs != 1 ||
            strcmp(n->inputs[0], c->past) != 0) {
            i++;
            continue;
        }
        const char *name = n->name, *out = n->outputs[0];
        const onnx_attr *s = onnx_node_find_attr(n, "start"), *e = onnx_node_find_attr(n, "end");
        int64_t start = s ? s->i : 0, end = e ? e->i : INT64_MAX;
        ogi_status st = onnx_builder_remove_node(k->b, k->g, i);
        onnx_node *added;
        if (st == OGI_OK && start == 0 && end == INT64_MAX) {
            st = kv_add(k, "Identity", "", 1, &shape, out, &added);
        } else if (st == OGI_OK) {
            const char *starts = NULL, *ends = NULL, *axes = NULL;
            st = kv_const(k, start, "starts", &starts);
            if (st == OGI_OK)
                st = kv_const(k, end, "ends", &ends);
            if (st == OGI_OK)
                st = kv_const(k, 0, "axes", &axes);
            const char *in[4] = {shape, starts, ends, axes};
            if (st == OGI_OK)
                st = kv_add(k, "Slice", "", 4, in, out, &added);
        }
        if (st != OGI_OK)
            return st;
        added->name = name; /* the replacement keeps the node's name */
        (*count)++;
    }
    return OGI_OK;
}

/* shape = Concat(Shape(past)[:axis], seen_past, Shape(past)[axis+1:]). */
static ogi_status kv_past_shape(kv_ctx *k, const kv_cache *c, const char *shape)
{
    const char *in[3] = {NULL, k->seen_past, NULL};
    ogi_status st = kv_shape(k, c->past, 0, c->axis, "past_dims", &in[0]);
    if (st == OGI_OK && c->axis + 1 < c->rank)
        st = kv_shape(k, c->past, c->axis + 1, INT64_MAX, "past_dims", &in[2]);
    onnx_node *n;
    if (st == OGI_OK)
        st = kv_add(k, "Concat", "", c->axis + 1 < c->rank ? 3 : 2, in, shape, &n);
    return st == OGI_OK ? onnx_builder_set_attr_int(k->b, n, "axis", 0) : st;
}

/* present = TensorScatter(past, update, past_len); the Concat's readers
 * read TensorGather(present, total). */
static ogi_status kv_rewrite_static(kv_ctx *k, const kv_cache *c, const char *valid)
{
    const char *scatter_in[3] = {c->past, c->update, k->write_idx};
    const char *gather_in[2] = {c->present, k->total};
    onnx_node *n;
    ogi_status st = kv_add(k, "TensorScatter", "", 3, scatter_in, c->present, &n);
    if (st == OGI_OK)
        st = kv_set_axis_mode(k, n, c->axis);
    if (st == OGI_OK)
        st = kv_add(k, "TensorGather", "ai.ogi", 2, gather_in, valid, &n);
    return st == OGI_OK ? kv_set_axis_mode(k, n, c->axis) : st;
}

/* The Concat's readers read Concat(the seen_past entries before this run,
 * update); present = TensorScatter(past, the last tail_len entries of
 * update, past_len + seq - tail_len). The write position is computed from
 * the window's length, so that the scatter runs after the gather and the
 * concat that read the old entries: a present bound to the past tensor is
 * updated in place, and the new entries may overwrite them. */
static ogi_status kv_rewrite_window(kv_ctx *k, const kv_cache *c, const char *window)
{
    const char *old = kv_name(k, "old_entries"), *tail = kv_name(k, "tail");
    const char *len = NULL, *end = NULL, *pos = NULL, *idx = NULL, *axis = NULL;
    const char *gather_in[3] = {c->past, k->seen_past, k->read_idx};
    const char *concat_in[2] = {old, c->update};
    onnx_node *n;
    ogi_status st = kv_add(k, "TensorGather", "ai.ogi", 3, gather_in, old, &n);
    if (st == OGI_OK)
        st = kv_set_axis_mode(k, n, c->axis);
    if (st == OGI_OK)
        st = kv_add(k, "Concat", "", 2, concat_in, window, &n);
    if (st == OGI_OK)
        st = onnx_builder_set_attr_int(k->b, n, "axis", c->axis);
    if (st == OGI_OK)
        st = kv_shape(k, window, c->axis, c->axis + 1, "window_len", &len);
    if (st == OGI_OK)
        st = kv_op2(k, "Add", k->read_start, len, "window_end", &end);
    if (st == OGI_OK)
        st = kv_op2(k, "Sub", end, k->tail_len, "write_pos", &pos);
    if (st == OGI_OK)
        st = kv_op2(k, "Expand", pos, k->batch, "write_indices", &idx);
    if (st == OGI_OK)
        st = kv_const(k, c->axis, "axes", &axis);
    const char *slice_in[4] = {c->update, k->tail_start, k->seq, axis};
    if (st == OGI_OK)
        st = kv_add(k, "Slice", "", 4, slice_in, tail, NULL);
    const char *scatter_in[3] = {c->past, tail, idx};
    if (st == OGI_OK)
        st = kv_add(k, "TensorScatter", "", 3, scatter_in, c->present, &n);
    return st == OGI_OK ? kv_set_axis_mode(k, n, c->axis) : st;
}

/* The cache input and the present output become [..., slots, ...]. */
static ogi_status kv_declare(kv_ctx *k, const kv_cache *c)
{
    onnx_value_info *in = &k->g->inputs[kv_find_info(k->g->inputs, k->g->n_inputs, c->past)];
    bool symbolic = k->symbolic && k->window == 0;
    in->dims[c->axis].value = symbolic ? -1 : k->slots;
    in->dims[c->axis].param = symbolic ? "cache_len" : NULL;
    onnx_value_info out = *in;
    out.name = c->present;
    return onnx_builder_add_output(k->b, k->g, &out);
}

static ogi_status kv_rewrite_cache(kv_ctx *k, const kv_cache *c)
{
    const char *shape = kv_name(k, "past_shape"), *read = kv_name(k, "cache_read");
    if (shape == NULL || read == NULL)
        return kv_oom();
    int n_shapes;
    ogi_status st = kv_replace_shapes(k, c, shape, &n_shapes);
    if (st == OGI_OK && n_shapes > 0)
        st = kv_past_shape(k, c, shape);
    /* the Concat's readers move to `read` before anything reads present */
    if (st == OGI_OK)
        st = onnx_builder_replace_uses(k->b, k->g, c->present, read, NULL);
    int concat = onnx_graph_producer(k->g, c->present);
    if (st == OGI_OK && concat >= 0)
        st = onnx_builder_remove_node(k->b, k->g, concat);
    if (st == OGI_OK)
        st = k->window > 0 ? kv_rewrite_window(k, c, read) : kv_rewrite_static(k, c, read);
    return st == OGI_OK ? kv_declare(k, c) : st;
}

/* ---- declared shapes ---------------------------------------------------------- */

static bool kv_is_ident_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '_';
}

/* Whether expr ("s15 + s70") mentions the symbol sym. */
static bool kv_mentions(const char *expr, const char *sym)
{
    size_t len = strlen(sym);
    for (const char *p = strstr(expr, sym); p != NULL; p = strstr(p + 1, sym)) {
        bool before = p > expr && kv_is_ident_char(p[-1]);
        if (!before && !kv_is_ident_char(p[len]))
            return true;
    }
    return false;
}

/* The symbols whose meaning the rewrite changes: each cache's sequence dim
 * and, with a window, attention_mask's length. */
static int kv_changed_symbols(const kv_ctx *k, const char **syms, int cap)
{
    int n = 0;
    for (int c = 0; c < k->n_caches && n < cap; c++) {
        const onnx_value_info *in =
            &k->g->inputs[kv_find_info(k->g->inputs, k->g->n_inputs, k->caches[c].past)];
        if (in->dims[k->caches[c].axis].param != NULL)
            syms[n++] = in->dims[k->caches[c].axis].param;
    }
    int m = kv_find_info(k->g->inputs, k->g->n_inputs, "attention_mask");
    const onnx_value_info *mask = &k->g->inputs[m];
    if (k->window > 0 && mask->rank == 2 && mask->dims[1].param != NULL && n < cap)
        syms[n++] = mask->dims[1].param;
    return n;
}

/* value_info dims that mention a changed symbol become unknown. */
static void kv_forget_dims(kv_ctx *k, const char *const *syms, int n_syms)
{
    for (int v = 0; v < k->g->n_value_infos; v++) {
        onnx_value_info *info = &k->g->value_infos[v];
        for (int d = 0; d < info->rank; d++) {
            const char *p = info->dims[d].param;
            for (int s = 0; p != NULL && s < n_syms; s++)
                if (kv_mentions(p, syms[s])) {
                    info->dims[d].param = NULL;
                    info->dims[d].value = -1;
                    p = NULL;
                }
        }
    }
}

/* ---- entry points ------------------------------------------------------------ */

kv_rewrite_options kv_rewrite_default_options(void)
{
    kv_rewrite_options o = {.max_cache_len = 0, .sliding_window = 0};
    return o;
}

static ogi_status kv_options(kv_ctx *k, const kv_rewrite_options *o)
{
    if (o->max_cache_len < 0 || o->sliding_window < 0)
        return ogi_error(OGI_ERR_INVALID_ARGUMENT,
                         "kv-rewrite: negative max_cache_len (%lld) or "
                         "sliding_window (%lld)",
                         (long long)o->max_cache_len, (long long)o->sliding_window);
    if (o->max_cache_len == 0 && o->sliding_window == 0)
        return ogi_error(OGI_ERR_INVALID_ARGUMENT,
                         "kv-rewrite: set max_cache_len (a static cache) or sliding_window");
    k->window = o->sliding_window;
    k->slots = o->max_cache_len > 0 ? o->max_cache_len : o->sliding_window;
    k->symbolic = o->symbolic_cache_len;
    if (k->window > 0 && k->slots < k->window - 1)
        return ogi_error(OGI_ERR_INVALID_ARGUMENT,
                         "kv-rewrite: a circular cache of %lld slots cannot hold the %lld "
                         "positions a token attends to before itself (sliding window %lld)",
                         (long long)k->slots, (long long)(k->window - 1), (long long)k->window);
    return OGI_OK;
}

static ogi_status kv_rewrite_graph(kv_ctx *k, int64_t old_opset, int *upgraded)
{
    enum { MAX_SYMS = 256 };
    ogi_status st = kv_find_caches(k);
    if (st == OGI_OK)
        st = kv_check_inputs(k);
    if (st == OGI_OK && old_opset < KV_MIN_OPSET)
        st = ogi_error(OGI_ERR_UNSUPPORTED,
                       "the model imports opset %lld; the rewrite needs %d "
                       "or later",
                       (long long)old_opset, KV_MIN_OPSET);
    if (st == OGI_OK && old_opset < KV_TENSOR_OPSET)
        st = kv_upgrade_graph(k, k->g, old_opset, upgraded);
    if (st != OGI_OK)
        return st;
    const char *syms[MAX_SYMS];
    int n_syms = kv_changed_symbols(k, syms, MAX_SYMS);
    st = kv_remove_aliases(k);
    if (st == OGI_OK)
        st = kv_lengths(k);
    for (int c = 0; c < k->n_caches && st == OGI_OK; c++)
        st = kv_rewrite_cache(k, &k->caches[c]);
    if (st != OGI_OK)
        return st;
    kv_forget_dims(k, syms, n_syms);
    return onnx_builder_sort(k->b, k->g);
}

ogi_status kv_rewrite_model(onnx_builder *b, const kv_rewrite_options *opts,
                            kv_rewrite_report *report)
{
    if (b == NULL || opts == NULL)
        return ogi_error(OGI_ERR_INVALID_ARGUMENT, "kv_rewrite_model: no builder or options");
    kv_ctx k = {.b = b, .g = onnx_builder_graph(b)};
    ogi_status st = kv_options(&k, opts);
    if (st != OGI_OK)
        return st;
    onnx_model *m = onnx_builder_model(b);
    int64_t old_opset = onnx_model_opset(m, "");
    int upgraded = 0;
    st = kv_rewrite_graph(&k, old_opset, &upgraded);
    if (st == OGI_OK && old_opset < KV_TENSOR_OPSET)
        st = onnx_builder_set_opset(b, "", KV_TENSOR_OPSET);
    if (st == OGI_OK)
        st = onnx_builder_set_opset(b, "ai.ogi", 1);
    if (st == OGI_OK && m->ir_version < 10)
        m->ir_version = 10; /* the IR of opset 21 and later */
    if (st == OGI_OK && report != NULL)
        *report = (kv_rewrite_report){k.n_caches, k.slots, k.window > 0, upgraded, old_opset};
    free(k.caches);
    return st;
}

ogi_status kv_rewrite_file(const char *in_path, const char *out_path,
                           const kv_rewrite_options *opts, kv_rewrite_report *report)
{
    if (in_path == NULL || out_path == NULL || strcmp(in_path, out_path) == 0)
        return ogi_error(OGI_ERR_INVALID_ARGUMENT,
                         "kv_rewrite_file: the output must be another file than the input");
    onnx_model *m = NULL;
    onnx_builder *b = NULL;
    ogi_status st = onnx_model_load(in_path, &m);
    if (st == OGI_OK)
        st = onnx_builder_from_model(m, &b);
    if (st == OGI_OK)
        st = kv_rewrite_model(b, opts, report);
    if (st != OGI_OK) {
        st = ogi_error_prefix(st, "%s", in_path);
    } else {
        onnx_write_options wo = onnx_write_default_options();
        wo.external_data = true;
        st = onnx_model_write(onnx_builder_model(b), out_path, &wo);
    }
    onnx_builder_free(b);
    onnx_model_free(m);
    return st;
}
