/* Serializes decoded ONNX models (field numbers from onnx.proto) and builds
 * or edits them in memory.
 *
 * A length-delimited message needs its size before its bytes, so every
 * emitter runs twice per level: once into a counting sink, once for real.
 * Counting is cheap (tensor data only adds its length), so a model is
 * written straight to its file without a copy in memory. */
#include "onnx/writer.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/dtype.h"
#include "core/error.h"
#include "onnx/pb.h"
#include "onnx/pool.h"

enum { WR_MAX_DEPTH = 64, WR_ALIGN = 64 };

/* ---- a string-keyed hash map (names to ints) ----------------------------------- */

typedef struct name_map {
    const char **keys; /* borrowed */
    int64_t *vals;
    size_t cap, n;
} name_map;

static uint64_t name_hash(const char *s)
{
    uint64_t h = 14695981039346656037ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

static size_t name_map_slot(const name_map *m, const char *key)
{
    size_t i = (size_t)name_hash(key) & (m->cap - 1);
    while (m->keys[i] != NULL && strcmp(m->keys[i], key) != 0)
        i = (i + 1) & (m->cap - 1);
    return i;
}

static bool name_map_get(const name_map *m, const char *key, int64_t *val)
{
    if (m->cap == 0)
        return false;
    size_t i = name_map_slot(m, key);
    if (m->keys[i] == NULL)
        return false;
    if (val != NULL)
        *val = m->vals[i];
    return true;
}

/* The map's own copy of key, or NULL when absent. */
static const char *name_map_key(const name_map *m, const char *key)
{
    return m->cap == 0 ? NULL : m->keys[name_map_slot(m, key)];
}

static bool name_map_grow(name_map *m)
{
    name_map bigger = {NULL, NULL, m->cap ? m->cap * 2 : 64, 0};
    bigger.keys = calloc(bigger.cap, sizeof(*bigger.keys));
    bigger.vals = calloc(bigger.cap, sizeof(*bigger.vals));
    if (bigger.keys == NULL || bigger.vals == NULL) {
        free(bigger.keys);
        free(bigger.vals);
        return false;
    }
    for (size_t i = 0; i < m->cap; i++) {
        if (m->keys[i] != NULL) {
            size_t j = name_map_slot(&bigger, m->keys[i]);
            bigger.keys[j] = m->keys[i];
            bigger.vals[j] = m->vals[i];
        }
    }
    bigger.n = m->n;
    free(m->keys);
    free(m->vals);
    *m = bigger;
    return true;
}

/* Inserts or overwrites; false when out of memory. */
static bool name_map_put(name_map *m, const char *key, int64_t val)
{
    if ((m->n + 1) * 2 > m->cap && !name_map_grow(m))
        return false;
    size_t i = name_map_slot(m, key);
    if (m->keys[i] == NULL) {
        m->keys[i] = key;
        m->n++;
    }
    m->vals[i] = val;
    return true;
}

static void name_map_free(name_map *m)
{
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof(*m));
}

/* ---- output sinks ------------------------------------------------------------------ */

typedef enum wr_mode { WR_COUNT, WR_MEMORY, WR_FILE } wr_mode;

/* A tensor placed in the external data file. */
typedef struct wr_external {
    const onnx_tensor *tensor;
    uint64_t offset;
} wr_external;

typedef struct wr_plan {
    const char *location; /* relative to the model's directory */
    size_t n, cap;
    wr_external *entries; /* sorted by tensor address once planned */
} wr_plan;

typedef struct wr {
    wr_mode mode;
    size_t count; /* bytes emitted so far */
    uint8_t *mem; /* WR_MEMORY: a buffer of exactly mem_size bytes */
    size_t mem_size;
    FILE *file;
    bool failed; /* a write failed or sizes disagreed */
    const wr_plan *plan;
} wr;

static void wr_raw(wr *w, const void *p, size_t n)
{
    if (n == 0)
        return;
    if (w->mode == WR_MEMORY) {
        if (n <= w->mem_size - w->count && w->count <= w->mem_size)
            memcpy(w->mem + w->count, p, n);
        else
            w->failed = true;
    } else if (w->mode == WR_FILE && !w->failed && fwrite(p, 1, n, w->file) != n) {
        w->failed = true;
    }
    w->count += n;
}

static void wr_varint(wr *w, uint64_t v)
{
    uint8_t tmp[10];
    size_t n = 0;
    do {
        tmp[n] = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v)
            tmp[n] |= 0x80;
        n++;
    } while (v);
    wr_raw(w, tmp, n);
}

static size_t wr_varint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static void wr_key(wr *w, uint32_t field, uint32_t wire)
{
    wr_varint(w, (uint64_t)field << 3 | wire);
}

static void wr_uint(wr *w, uint32_t field, uint64_t v)
{
    wr_key(w, field, PB_VARINT);
    wr_varint(w, v);
}

static void wr_bytes(wr *w, uint32_t field, const void *p, size_t n)
{
    wr_key(w, field, PB_LEN);
    wr_varint(w, n);
    wr_raw(w, p, n);
}

static void wr_string(wr *w, uint32_t field, const char *s)
{
    wr_bytes(w, field, s, strlen(s));
}

/* Writes non-empty strings only (proto2 optional fields that default to ""). */
static void wr_string_opt(wr *w, uint32_t field, const char *s)
{
    if (s != NULL && s[0] != '\0')
        wr_string(w, field, s);
}

static void wr_fixed32(wr *w, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    wr_raw(w, b, 4);
}

static void wr_packed_ints(wr *w, uint32_t field, const int64_t *v, int64_t n)
{
    if (n <= 0)
        return;
    size_t bytes = 0;
    for (int64_t i = 0; i < n; i++)
        bytes += wr_varint_size((uint64_t)v[i]);
    wr_key(w, field, PB_LEN);
    wr_varint(w, bytes);
    for (int64_t i = 0; i < n; i++)
        wr_varint(w, (uint64_t)v[i]);
}

static void wr_packed_floats(wr *w, uint32_t field, const float *v, int64_t n)
{
    if (n <= 0)
        return;
    wr_key(w, field, PB_LEN);
    wr_varint(w, (uint64_t)n * 4);
    for (int64_t i = 0; i < n; i++) {
        uint32_t bits;
        memcpy(&bits, &v[i], 4);
        wr_fixed32(w, bits);
    }
}

typedef void (*wr_fn)(wr *w, const void *obj);

/* Emits obj as a length-delimited field: counted first, then written. */
static void wr_message(wr *w, uint32_t field, wr_fn fn, const void *obj)
{
    wr counter = {.mode = WR_COUNT, .plan = w->plan};
    fn(&counter, obj);
    wr_key(w, field, PB_LEN);
    wr_varint(w, counter.count);
    if (w->mode == WR_COUNT) {
        w->count += counter.count;
        return;
    }
    size_t start = w->count;
    fn(w, obj);
    if (w->count - start != counter.count)
        w->failed = true;
}

/* ---- messages -------------------------------------------------------------------- */

static const wr_external *wr_plan_find(const wr_plan *plan, const onnx_tensor *t)
{
    if (plan == NULL)
        return NULL;
    size_t lo = 0, hi = plan->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        uintptr_t a = (uintptr_t)plan->entries[mid].tensor, b = (uintptr_t)t;
        if (a == b)
            return &plan->entries[mid];
        if (a < b)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

typedef struct wr_pair {
    const char *key, *value;
} wr_pair;

static void wr_entry(wr *w, const void *obj)
{
    const wr_pair *p = obj;
    wr_string(w, 1, p->key);
    wr_string(w, 2, p->value);
}

static void wr_tensor(wr *w, const void *obj)
{
    const onnx_tensor *t = obj;
    const ogi_tensor *x = &t->tensor;
    wr_packed_ints(w, 1, x->dims, x->rank);
    wr_uint(w, 2, (uint64_t)x->dtype);
    wr_string_opt(w, 8, t->name);
    if (x->dtype == OGI_STRING) {
        const ogi_string *elems = x->data;
        for (size_t i = 0; i < x->nbytes / sizeof(ogi_string); i++)
            wr_bytes(w, 6, elems[i].data, elems[i].len);
        return;
    }
    const wr_external *e = wr_plan_find(w->plan, t);
    if (e == NULL) {
        wr_bytes(w, 9, x->data, x->nbytes);
        return;
    }
    char offset[32], length[32];
    snprintf(offset, sizeof(offset), "%llu", (unsigned long long)e->offset);
    snprintf(length, sizeof(length), "%zu", x->nbytes);
    wr_pair pairs[3] = {{"location", w->plan->location}, {"offset", offset}, {"length", length}};
    for (int i = 0; i < 3; i++)
        wr_message(w, 13, wr_entry, &pairs[i]);
    wr_uint(w, 14, 1); /* data_location = EXTERNAL */
}

static void wr_graph(wr *w, const void *obj);

static void wr_attr(wr *w, const void *obj)
{
    const onnx_attr *a = obj;
    wr_string(w, 1, a->name);
    if (a->type != ONNX_ATTR_UNDEFINED)
        wr_uint(w, 20, (uint64_t)a->type);
    if (a->ref_attr_name != NULL) { /* a function's reference carries no value */
        wr_string(w, 21, a->ref_attr_name);
        return;
    }
    switch (a->type) {
    case ONNX_ATTR_FLOAT: {
        uint32_t bits;
        memcpy(&bits, &a->f, 4);
        wr_key(w, 2, PB_FIXED32);
        wr_fixed32(w, bits);
        break;
    }
    case ONNX_ATTR_INT:
        wr_uint(w, 3, (uint64_t)a->i);
        break;
    case ONNX_ATTR_STRING:
        wr_bytes(w, 4, a->s, a->s ? a->s_len : 0);
        break;
    case ONNX_ATTR_TENSOR:
        wr_message(w, 5, wr_tensor, a->t);
        break;
    case ONNX_ATTR_GRAPH:
        wr_message(w, 6, wr_graph, a->g);
        break;
    case ONNX_ATTR_FLOATS:
        wr_packed_floats(w, 7, a->floats, a->n);
        break;
    case ONNX_ATTR_INTS:
        wr_packed_ints(w, 8, a->ints, a->n);
        break;
    case ONNX_ATTR_STRINGS:
        for (int64_t i = 0; i < a->n; i++)
            wr_string(w, 9, a->strings[i]);
        break;
    case ONNX_ATTR_TENSORS:
        for (int64_t i = 0; i < a->n; i++)
            wr_message(w, 10, wr_tensor, &a->tensors[i]);
        break;
    case ONNX_ATTR_GRAPHS:
        for (int64_t i = 0; i < a->n; i++)
            wr_message(w, 11, wr_graph, a->graphs[i]);
        break;
    default:
        break; /* rejected by wr_prep_attr */
    }
}

static void wr_node(wr *w, const void *obj)
{
    const onnx_node *n = obj;
    for (int i = 0; i < n->n_inputs; i++)
        wr_string(w, 1, n->inputs[i]);
    for (int i = 0; i < n->n_outputs; i++)
        wr_string(w, 2, n->outputs[i]);
    wr_string_opt(w, 3, n->name);
    wr_string(w, 4, n->op_type);
    for (int i = 0; i < n->n_attrs; i++)
        wr_message(w, 5, wr_attr, &n->attrs[i]);
    wr_string_opt(w, 7, n->domain);
}

static void wr_dim(wr *w, const void *obj)
{
    const onnx_dim *d = obj;
    if (d->value >= 0)
        wr_uint(w, 1, (uint64_t)d->value);
    else if (d->param != NULL)
        wr_string(w, 2, d->param);
}

static void wr_shape(wr *w, const void *obj)
{
    const onnx_value_info *v = obj;
    for (int i = 0; i < v->rank; i++)
        wr_message(w, 1, wr_dim, &v->dims[i]);
}

static void wr_tensor_type(wr *w, const void *obj)
{
    const onnx_value_info *v = obj;
    if (v->elem_type != OGI_DTYPE_UNDEFINED)
        wr_uint(w, 1, (uint64_t)v->elem_type);
    if (v->rank >= 0) /* rank 0 is an empty shape, not a missing one */
        wr_message(w, 2, wr_shape, v);
}

static void wr_nothing(wr *w, const void *obj)
{
    (void)w;
    (void)obj;
}

static void wr_type(wr *w, const void *obj)
{
    const onnx_value_info *v = obj;
    switch (v->kind) {
    case ONNX_VALUE_TENSOR:
        wr_message(w, 1, wr_tensor_type, v);
        break;
    /* the reader keeps only the kind of these: their element types are lost */
    case ONNX_VALUE_SEQUENCE:
        wr_message(w, 4, wr_nothing, v);
        break;
    case ONNX_VALUE_MAP:
        wr_message(w, 5, wr_nothing, v);
        break;
    case ONNX_VALUE_SPARSE_TENSOR:
        wr_message(w, 8, wr_nothing, v);
        break;
    case ONNX_VALUE_OPTIONAL:
        wr_message(w, 9, wr_nothing, v);
        break;
    default:
        break;
    }
}

static void wr_value_info(wr *w, const void *obj)
{
    const onnx_value_info *v = obj;
    wr_string(w, 1, v->name);
    if (v->kind != ONNX_VALUE_UNKNOWN)
        wr_message(w, 2, wr_type, v);
}

static void wr_graph(wr *w, const void *obj)
{
    const onnx_graph *g = obj;
    for (int i = 0; i < g->n_nodes; i++)
        wr_message(w, 1, wr_node, &g->nodes[i]);
    wr_string_opt(w, 2, g->name);
    for (int i = 0; i < g->n_initializers; i++)
        wr_message(w, 5, wr_tensor, &g->initializers[i]);
    for (int i = 0; i < g->n_inputs; i++)
        wr_message(w, 11, wr_value_info, &g->inputs[i]);
    for (int i = 0; i < g->n_outputs; i++)
        wr_message(w, 12, wr_value_info, &g->outputs[i]);
    for (int i = 0; i < g->n_value_infos; i++)
        wr_message(w, 13, wr_value_info, &g->value_infos[i]);
}

static void wr_opset(wr *w, const void *obj)
{
    const onnx_opset *o = obj;
    wr_string(w, 1, o->domain);
    wr_uint(w, 2, (uint64_t)o->version);
}

static void wr_function(wr *w, const void *obj)
{
    const onnx_function *f = obj;
    wr_string(w, 1, f->name);
    for (int i = 0; i < f->n_inputs; i++)
        wr_string(w, 4, f->inputs[i]);
    for (int i = 0; i < f->n_outputs; i++)
        wr_string(w, 5, f->outputs[i]);
    for (int i = 0; i < f->n_attr_names; i++)
        wr_string(w, 6, f->attr_names[i]);
    for (int i = 0; i < f->n_nodes; i++)
        wr_message(w, 7, wr_node, &f->nodes[i]);
    for (int i = 0; i < f->n_opsets; i++)
        wr_message(w, 9, wr_opset, &f->opsets[i]);
    wr_string_opt(w, 10, f->domain);
}

static void wr_model(wr *w, const onnx_model *m)
{
    wr_uint(w, 1, (uint64_t)m->ir_version);
    wr_string_opt(w, 2, m->producer_name);
    wr_string_opt(w, 3, m->producer_version);
    wr_message(w, 7, wr_graph, m->graph);
    for (int i = 0; i < m->n_opsets; i++)
        wr_message(w, 8, wr_opset, &m->opsets[i]);
    for (int i = 0; i < m->n_functions; i++)
        wr_message(w, 25, wr_function, &m->functions[i]);
}

/* ---- checking a model and planning external data ------------------------------------ */

/* Walks every tensor in the order the writer does, checking that the model
 * can be written and placing large tensors in the external file. */
typedef struct wr_prep {
    size_t threshold;
    wr_plan *plan; /* NULL: everything inline */
    uint64_t end;  /* bytes of the external file so far */
} wr_prep;

static ogi_status wr_prep_graph(wr_prep *p, const onnx_graph *g, int depth);

static ogi_status wr_plan_add(wr_plan *plan, const onnx_tensor *t, uint64_t offset)
{
    if (plan->n == plan->cap) {
        size_t cap = plan->cap ? plan->cap * 2 : 16;
        wr_external *grown = realloc(plan->entries, cap * sizeof(*grown));
        if (grown == NULL)
            return ogi_error(OGI_ERR_OUT_OF_MEMORY, "out of memory planning external data");
        plan->entries = grown;
        plan->cap = cap;
    }
    plan->entries[plan->n].tensor = t;
    plan->entries[plan->n++].offset = offset;
    return OGI_OK;
}

static ogi_status wr_prep_tensor(wr_prep *p, const onnx_tensor *t)
{
    const ogi_tensor *x = &t->tensor;
    const char *name = t->name ? t->name : "";
    size_t bytes;
    int64_t numel = tensor_shape_numel(x->rank, x->dims);
    if (x->dtype == OGI_STRING) { /* string_data, never external */
        if (x->rank < 0 || x->rank > OGI_MAX_RANK || numel < 0 ||
            x->nbytes / sizeof(ogi_string) != (size_t)numel ||
            x->nbytes % sizeof(ogi_string) != 0 || (numel > 0 && x->data == NULL))
            return ogi_error(OGI_ERR_INVALID_ARGUMENT,
                             "tensor '%s': string tensor with its shape does not match its data",
                             name);
        return OGI_OK;
    }
    if (x->rank < 0 || x->rank > OGI_MAX_RANK || numel < 0 || !dtype_is_valid((int)x->dtype) ||
        !tensor_bytes_for(x->dtype, numel, &bytes) || bytes != x->nbytes)
        return ogi_error(OGI_ERR_INVALID_ARGUMENT,
                         "tensor '%s': dtype %s with its shape does not match its %zu bytes", name,
                         ogi_dtype_name(x->dtype), x->nbytes);
    if (x->nbytes > 0 && x->data == NULL)
        return ogi_error(OGI_ERR_INVALID_ARGUMENT, "tensor '%s' has no data", name);
    if (p->plan == NULL || x->nbytes <= p->threshold)
        return OGI_OK;
    uint64_t offset = (p->end + WR_ALIGN - 1) / WR_ALIGN * WR_ALIGN;
    p->end = offset + x->nbytes;
    return wr_plan_add(p->plan, t, offset);
}

/* Whether a list attribute claims elements it does not have. */
static bool wr_attr_list_missing(const onnx_attr *a)
{
    const void *list = NULL;
    switch (a->type) {
    case ONNX_ATTR_FLOATS:
        list = a->floats;
        break;
    case ONNX_ATTR_INTS:
        list = a->ints;
        break;
    case ONNX_ATTR_STRINGS:
        list = a->strings;
        break;
    case ONNX_ATTR_TENSORS:
        list = a->tensors;
        break;
    case ONNX_ATTR_GRAPHS:
        list = a->graphs;
        break;
    default:
        return false;
    }
    return a->n < 0 || (a->n > 0 && list == NULL);
}

static ogi_status wr_prep_attr(wr_prep *p, const onnx_attr *a, int depth)
{
    ogi_status st = OGI_OK;
    if (a->ref_attr_name != NULL)
        return OGI_OK;
    if (wr_attr_list_missing(a))
        return ogi_error(OGI_ERR_INVALID_ARGUMENT, "attribute '%s': %lld values but no list",
                         a->name, (long long)a->n);
    switch (a->type) {
    case ONNX_ATTR_SPARSE_TENSOR:
    case ONNX_ATTR_SPARSE_TENSORS:
    case ONNX_ATTR_TYPE_PROTO:
    case ONNX_ATTR_TYPE_PROTOS:
        return ogi_error(OGI_ERR_UNSUPPORTED,
                         "attribute '%s': %s attributes cannot be written (the reader does not "
                         "keep their value)",
                         a->name, a->type <= ONNX_ATTR_SPARSE_TENSORS ? "sparse tensor" : "type");
    case ONNX_ATTR_TENSOR:
        if (a->t == NULL)
            return ogi_error(OGI_ERR_INVALID_ARGUMENT, "attribute '%s' has no tensor", a->name);
        st = wr_prep_tensor(p, a->t);
        break;
    case ONNX_ATTR_GRAPH:
        if (a->g == NULL)
            return ogi_error(OGI_ERR_INVALID_ARGUMENT, "attribute '%s' has no graph", a->name);
        st = wr_prep_graph(p, a->g, depth + 1);
        break;
    case ONNX_ATTR_TENSORS:
        for (int64_t i = 0; i < a->n && st == OGI_OK; i++)
            st = wr_prep_tensor(p, &a->tensors[i]);
        break;
    case ONNX_ATTR_GRAPHS:
        for (int64_t i = 0; i < a->n && st == OGI_OK; i++)
            st = a->graphs[i] ? wr_prep_graph(p, a->graphs[i], depth + 1)
                              : ogi_error(OGI_ERR_INVALID_ARGUMENT, "a graph is missing");
        break;
    default:
        break;
    }
    return st == OGI_OK ? OGI_OK : ogi_error_prefix(st, "attribute '%s'", a->name);
}

static ogi_status wr_prep_nodes(wr_prep *p, const onnx_node *nodes, int n, int depth)
{
    for (int i = 0; i < n; i++) {
        const onnx_node *node = &nodes[i];
        if (node->op_type == NULL || node->op_type[0] == '\0')
            return ogi_error(OGI_ERR_INVALID_ARGUMENT, "node %d has no op_type", i);
        for (int k = 0; k < node->n_attrs; k++) {
            ogi_status st = wr_prep_attr(p, &node->attrs[k], depth);
            if (st != OGI_OK)
                return ogi_error_prefix(st, "node '%s' (%s)", node->name ? node->name : "",
                                        node->op_type);
        }
    }
    return OGI_OK;
}

static ogi_status wr_prep_graph(wr_prep *p, const onnx_graph *g, int depth)
{
    if (depth > WR_MAX_DEPTH)
        return ogi_error(OGI_ERR_INVALID_ARGUMENT, "subgraphs nested deeper than %d", WR_MAX_DEPTH);
    if (g->n_sparse_initializers > 0)
        return ogi_error(OGI_ERR_UNSUPPORTED,
                         "graph '%s': sparse initializers cannot be written (the reader does not "
                         "keep them)",
                         g->name ? g->name : "");
    ogi_status st = wr_prep_nodes(p, g->nodes, g->n_nodes, depth);
    for (int i = 0; i < g->n_initializers && st == OGI_OK; i++)
        st = wr_prep_tensor(p, &g->initializers[i]);
    return st;
}

static int wr_plan_cmp(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)((const wr_external *)a)->tensor;
    uintptr_t y = (uintptr_t)((const wr_external *)b)->tensor;
    return x < y ? -1 : x > y;
}

static ogi_status wr_prep_model(const onnx_model *m, wr_prep *p)
{
    if (m == NULL || m->graph == NULL)
        return ogi_error(OGI_ERR_INVALID_ARGUMENT, "model has no graph");
    ogi_status st = wr_prep_graph(p, m->graph, 0);
    for (int i = 0; i < m->n_functions && st == OGI_OK; i++) {
        st = wr_prep_nodes(p, m->functions[i].nodes, m->functions[i].n_nodes, 0);
        if (st != OGI_OK)
            st = ogi_error_prefix(st, "function '%s'", m->functions[i].name);
    }
    return st;
}

/* ---- files ---------------------------------------------------------------------------- */

onnx_write_options onnx_write_default_options(void)
{
    onnx_write_options o = {false, 1024, NULL};
    return o;
}

static ogi_status wr_check_size(size_t size)
{
    if (size > INT32_MAX)
        return ogi_error(OGI_ERR_UNSUPPORTED,
                         "the model needs %zu bytes, over protobuf's 2 GiB limit: write large "
                         "tensors as external data",
                         size);
    return OGI_OK;
}

/* A new temporary file beside `final` (same directory, so rename is atomic). */
static ogi_status wr_temp_open(const char *final, char *tmp, size_t size, FILE **out)
{
    if (snprintf(tmp, size, "%s.tmpXXXXXX", final) >= (int)size)
        return ogi_error(OGI_ERR_INVALID_ARGUMENT, "%s: path too long", final);
    int fd = mkstemp(tmp);
    if (fd < 0)
        return ogi_error(OGI_ERR_IO, "%s: cannot create: %s", final, strerror(errno));
    (void)fchmod(fd, 0644); /* mkstemp's 0600 would hide the model from other users */
    *out = fdopen(fd, "wb");
    if (*out == NULL) {
        close(fd);
        unlink(tmp);
        return ogi_error(OGI_ERR_IO, "%s: %s", final, strerror(errno));
    }
    return OGI_OK;
}

/* Closes f; an error (a full disk shows up at fclose) removes tmp. */
static ogi_status wr_temp_close(FILE *f, const char *tmp, const char *final, bool failed)
{
    int err = errno;
    if (fclose(f) != 0 && !failed) {
        failed = true;
        err = errno;
    }
    if (failed) {
        unlink(tmp);
        return ogi_error(OGI_ERR_IO, "%s: write failed: %s", final, strerror(err));
    }
    return OGI_OK;
}

/* Each tensor at its planned offset; the gaps left by seeking read as zeros. */
static ogi_status wr_data_file(const wr_plan *plan, const char *final, char *tmp, size_t size)
{
    FILE *f;
    ogi_status st = wr_temp_open(final, tmp, size, &f);
    if (st != OGI_OK)
        return st;
    bool failed = false;
    for (size_t i = 0; i < plan->n && !failed; i++) {
        const wr_external *e = &plan->entries[i];
        const ogi_tensor *x = &e->tensor->tensor;
        failed = fseeko(f, (off_t)e->offset, SEEK_SET) != 0 ||
                 fwrite(x->data, 1, x->nbytes, f) != x->nbytes;
    }
    return wr_temp_close(f, tmp, final, failed);
}

static ogi_status wr_model_file(const onnx_model *m, const wr_plan *plan, size_t size,
                                const char *final, char *tmp, size_t tmp_size)
{
    FILE *f;
    ogi_status st = wr_temp_open(final, tmp, tmp_size, &f);
    if (st != OGI_OK)
        return st;
    wr w = {.mode = WR_FILE, .file = f, .plan = plan};
    wr_model(&w, m);
    if (!w.failed && w.count != size) {
        w.failed = true;
        errno = EIO;
    }
    return wr_temp_close(f, tmp, final, w.failed);
}

/* The external data file's path: beside the model, named by the options or
 * "<model file name>.data"; *location points at its name within out. */
static ogi_status wr_external_path(const char *path, const onnx_write_options *o, char *out,
                                   size_t size, const char **location)
{
    const char *slash = strrchr(path, '/');
    int dir_len = slash ? (int)(slash - path) + 1 : 0;
    const char *name = o->external_name;
    if (name != NULL && (name[0] == '\0' || strchr(name, '/') != NULL || strcmp(name, ".") == 0 ||
                         strcmp(name, "..") == 0))
        return ogi_error(OGI_ERR_INVALID_ARGUMENT,
                         "external data name '%s' must be a plain file name", name);
    int n = name ? snprintf(out, size, "%.*s%s", dir_len, path, name)
                 : snprintf(out, size, "%s.data", path);
    if (n < 0 || n >= (int)size)
        return ogi_error(OGI_ERR_INVALID_ARGUMENT, "%s: path too long", path);
    if (strcmp(out, path) == 0)
        return ogi_error(OGI_ERR_INVALID_ARGUMENT, "external data would overwrite the model");
    *location = out + dir_len;
    return OGI_OK;
}

/* Writes the data file (when the plan has tensors) and the model under
 * temporary names, then renames both into place. */
static ogi_status wr_files(const onnx_model *m, const char *path, const wr_plan *plan,
                           const char *data_path)
{
    char data_tmp[PATH_MAX + 16], model_tmp[PATH_MAX + 16];
    bool has_data = plan->n > 0;
    ogi_status st = OGI_OK;
    if (has_data)
        st = wr_data_file(plan, data_path, data_tmp, sizeof(data_tmp));
    if (st != OGI_OK)
        return st;
    wr counter = {.mode = WR_COUNT, .plan = plan};
    wr_model(&counter, m);
    st = wr_check_size(counter.count);
    if (st == OGI_OK)
        st = wr_model_file(m, plan, counter.count, path, model_tmp, sizeof(model_tmp));
    else if (has_data)
        unlink(data_tmp);
    if (st != OGI_OK)
        return st;
    if (has_data && rename(data_tmp, data_path) != 0)
        st = ogi_error(OGI_ERR_IO, "%s: %s", data_path, strerror(errno));
    if (st == OGI_OK && rename(model_tmp, path) != 0)
        st = ogi_error(OGI_ERR_IO, "%s: %s", path, strerror(errno));
    if (st != OGI_OK) {
        if (has_data)
            unlink(data_tmp);
        unlink(model_tmp);
    }
    return st;
}

ogi_status onnx_model_write(const onnx_model *m, const char *path, const onnx_write_options *opts)
{
    if (m == NULL || path == NULL)
        return ogi_error(OGI_ERR_INVALID_ARGUMENT, "onnx_model_write: NULL argument");
    onnx_write_options o = opts ? *opts : onnx_write_default_options();
    char data_path[PATH_MAX] = "";
    wr_plan plan = {NULL, 0, 0, NULL};
    wr_prep p = {o.external_threshold, o.external_data ? &plan : NULL, 0};
    ogi_status st = OGI_OK;
    if (o.external_data)
        st = wr_external_path(path, &o, data_path, sizeof(data_path), &plan.location);
    if (st == OGI_OK)
        st = wr_prep_model(m, &p);
    if (st == OGI_OK && plan.n > 0)
        qsort(plan.entries, plan.n, sizeof(*plan.entries), wr_plan_cmp);
    if (st == OGI_OK)
        st = wr_files(m, path, &plan, data_path);
    free(plan.entries);
    return st == OGI_OK ? OGI_OK : ogi_error_prefix(st, "%s", path);
}

ogi_status onnx_model_write_buffer(const onnx_model *m, const onnx_write_options *opts, void **data,
                                   size_t *size)
{
    if (m == NULL || data == NULL || size == NULL)
        return ogi_error(OGI_ERR_INVALID_ARGUMENT, "onnx_model_write_buffer: NULL argument");
    if (opts != NULL && opts->external_data)
        return ogi_error(OGI_ERR_INVALID_ARGUMENT,
                         "external data needs a file: use onnx_model_write");
    wr_prep p = {0, NULL, 0};
    ogi_status st = wr_prep_model(m, &p);
    if (st != OGI_OK)
        return st;
    wr counter = {.mode = WR_COUNT};
    wr_model(&counter, m);
    if ((st = wr_check_size(counter.count)) != OGI_OK)
        return st;
    uint8_t *buf = malloc(counter.count ? counter.count : 1);
    if (buf == NULL)
        return ogi_error(OGI_ERR_OUT_OF_MEMORY, "out of memory for a %zu-byte model",
                         counter.count);
    wr w = {.mode = WR_MEMORY, .mem = buf, .mem_size = counter.count};
    wr_model(&w, m);
    if (w.failed || w.count != counter.count) {
        free(buf);
        return ogi_error(OGI_ERR_RUNTIME, "the model changed while it was written");
    }
    *data = buf;
    *size = counter.count;
    return OGI_OK;
}

/* ---- looking things up ---------------------------------------------------------------- */

int onnx_graph_producer(const onnx_graph *g, const char *value)
{
    for (int i = 0; i < g->n_nodes; i++)
        for (int k = 0; k < g->nodes[i].n_outputs; k++)
            if (strcmp(g->nodes[i].outputs[k], value) == 0)
                return i;
    return -1;
}

int onnx_graph_find_node(const onnx_graph *g, const char *name)
{
    for (int i = 0; i < g->n_nodes; i++)
        if (strcmp(g->nodes[i].name, name) == 0)
            return i;
    return -1;
}

int onnx_graph_find_initializer(const onnx_graph *g, const char *name)
{
    for (int i = 0; i < g->n_initializers; i++)
        if (strcmp(g->initializers[i].name, name) == 0)
            return i;
    return -1;
}

onnx_attr *onnx_node_find_attr(const onnx_node *n, const char *name)
{
    for (int i = 0; i < n->n_attrs; i++)
        if (strcmp(n->attrs[i].name, name) == 0)
            return &n->attrs[i];
    return NULL;
}

/* ---- the builder: memory -------------------------------------------------------------- */

/* Arrays that can grow (a graph's nodes, a node's inputs, ...) hold at least
 * the next power of two >= max(n, 1) elements, so a full array is one whose
 * count is a power of two: growth needs no stored capacity. */
struct onnx_builder {
    pool pool;
    onnx_model model;
    bool names_ready; /* names below filled (by the first unique_name) */
    name_map names;   /* every name in the model: values and nodes */
    name_map next;    /* prefix -> next number to try */
};

static ogi_status builder_oom(void)
{
    return ogi_error(OGI_ERR_OUT_OF_MEMORY, "out of memory while building the model");
}

static size_t builder_capacity(size_t n)
{
    size_t c = 1;
    while (c < n)
        c <<= 1;
    return c;
}

/* A new growable array holding a copy of n elements of src (may be NULL). */
static void *builder_array(onnx_builder *b, const void *src, size_t n, size_t elem)
{
    void *a = pool_alloc_array(&b->pool, builder_capacity(n), elem);
    if (a != NULL && src != NULL && n > 0)
        memcpy(a, src, n * elem);
    return a;
}

/* `array` (holding n) with room for one more: itself, a bigger copy, or NULL. */
static void *builder_reserve(onnx_builder *b, void *array, int n, size_t elem)
{
    bool full = array == NULL || (n > 0 && (n & (n - 1)) == 0);
    if (!full)
        return array;
    void *grown = pool_alloc_array(&b->pool, n > 0 ? (size_t)n * 2 : 1, elem);
    if (grown != NULL && array != NULL && n > 0)
        memcpy(grown, array, (size_t)n * elem);
    return grown;
}

/* Moves elements [index, n) up by one, leaving a zeroed slot at index. */
static void *builder_open_slot(void *array, int n, size_t elem, int index)
{
    char *base = array;
    memmove(base + (size_t)(index + 1) * elem, base + (size_t)index * elem,
            (size_t)(n - index) * elem);
    memset(base + (size_t)index * elem, 0, elem);
    return base + (size_t)index * elem;
}

static void builder_close_slot(void *array, int n, size_t elem, int index)
{
    char *base = array;
    memmove(base + (size_t)index * elem, base + (size_t)(index + 1) * elem,
            (size_t)(n - index - 1) * elem);
}

/* A copy of s in the pool; "" for NULL. */
static const char *builder_str(onnx_builder *b, const char *s)
{
    return s ? pool_strndup(&b->pool, s, strlen(s)) : "";
}

/* Remembers a name for onnx_builder_unique_name once it tracks names. */
static bool builder_note(onnx_builder *b, const char *name)
{
    return !b->names_ready || name[0] == '\0' || name_map_put(&b->names, name, 0);
}

const char *onnx_builder_string(onnx_builder *b, const char *s)
{
    return s ? pool_strndup(&b->pool, s, strlen(s)) : NULL;
}

/* ---- the builder: deep copies ------------------------------------------------------------ */

static ogi_status builder_copy_graph(onnx_builder *b, onnx_graph *dst, const onnx_graph *src,
                                     bool copy_data, int depth);

static ogi_status builder_copy_strings(onnx_builder *b, const char **dst, const char *const *src,
                                       int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if ((dst[i] = builder_str(b, src[i])) == NULL)
            return builder_oom();
    return OGI_OK;
}

/* The elements of a string tensor and their bytes, into the pool: a byte
 * copy of the ogi_string array would point into src's storage. */
static ogi_status builder_copy_string_data(onnx_builder *b, onnx_tensor *dst,
                                           const onnx_tensor *src)
{
    size_t n = src->tensor.nbytes / sizeof(ogi_string);
    const ogi_string *from = src->tensor.data;
    ogi_string *to = pool_alloc_array(&b->pool, n, sizeof(ogi_string));
    if (to == NULL)
        return builder_oom();
    for (size_t i = 0; i < n; i++) {
        to[i].data = pool_strndup(&b->pool, from[i].data, from[i].len);
        to[i].len = from[i].len;
        if (to[i].data == NULL)
            return builder_oom();
    }
    dst->tensor.data = to;
    return OGI_OK;
}

/* copy_data false borrows the tensor's bytes. */
static ogi_status builder_copy_tensor(onnx_builder *b, onnx_tensor *dst, const onnx_tensor *src,
                                      bool copy_data)
{
    *dst = *src;
    dst->name = builder_str(b, src->name);
    dst->tensor.storage = TENSOR_BORROWED;
    dst->external = false;
    if (dst->name == NULL)
        return builder_oom();
    if (!copy_data || src->tensor.nbytes == 0)
        return OGI_OK;
    if (src->tensor.dtype == OGI_STRING)
        return builder_copy_string_data(b, dst, src);
    void *data = pool_alloc(&b->pool, src->tensor.nbytes);
    if (data == NULL)
        return builder_oom();
    memcpy(data, src->tensor.data, src->tensor.nbytes);
    dst->tensor.data = data;
    return OGI_OK;
}

static ogi_status builder_copy_attr_lists(onnx_builder *b, onnx_attr *dst, const onnx_attr *src,
                                          bool copy_data, int depth)
{
    size_t n = (size_t)src->n;
    ogi_status st = OGI_OK;
    switch (src->type) {
    case ONNX_ATTR_FLOATS:
        dst->floats = pool_alloc_array(&b->pool, n, sizeof(float));
        if (dst->floats == NULL)
            return builder_oom();
        if (n)
            memcpy(dst->floats, src->floats, n * sizeof(float));
        break;
    case ONNX_ATTR_INTS:
        dst->ints = pool_alloc_array(&b->pool, n, sizeof(int64_t));
        if (dst->ints == NULL)
            return builder_oom();
        if (n)
            memcpy(dst->ints, src->ints, n * sizeof(int64_t));
        break;
    case ONNX_ATTR_STRINGS:
        dst->strings = pool_alloc_array(&b->pool, n, sizeof(char *));
        if (dst->strings == NULL)
            return builder_oom();
        st = builder_copy_strings(b, dst->strings, src->strings, src->n);
        break;
    case ONNX_ATTR_TENSORS:
        dst->tensors = pool_alloc_array(&b->pool, n, sizeof(onnx_tensor));
        if (dst->tensors == NULL)
            return builder_oom();
        for (size_t i = 0; i < n && st == OGI_OK; i++)
            st = builder_copy_tensor(b, &dst->tensors[i], &src->tensors[i], copy_data);
        break;
    case ONNX_ATTR_GRAPHS:
        dst->graphs = pool_alloc_array(&b->pool, n, sizeof(onnx_graph *));
        if (dst->graphs == NULL)
            return builder_oom();
        for (size_t i = 0; i < n && st == OGI_OK; i++) {
            dst->graphs[i] = pool_alloc(&b->pool, sizeof(onnx_graph));
            st = dst->graphs[i]
                     ? builder_copy_graph(b, dst->graphs[i], src->graphs[i], copy_data, depth + 1)
                     : builder_oom();
        }
        break;
    default:
        break;
    }
    return st;
}

static ogi_status builder_copy_attr(onnx_builder *b, onnx_attr *dst, const onnx_attr *src,
                                    bool copy_data, int depth)
{
    memset(dst, 0, sizeof(*dst));
    if (wr_attr_list_missing(src))
        return ogi_error(OGI_ERR_INVALID_ARGUMENT, "attribute '%s': %lld values but no list",
                         src->name ? src->name : "", (long long)src->n);
    dst->name = builder_str(b, src->name);
    dst->ref_attr_name = onnx_builder_string(b, src->ref_attr_name);
    dst->type = src->type;
    dst->f = src->f;
    dst->i = src->i;
    dst->n = src->n;
    if (dst->name == NULL || (src->ref_attr_name && dst->ref_attr_name == NULL))
        return builder_oom();
    if (src->type == ONNX_ATTR_STRING) {
        dst->s_len = src->s ? src->s_len : 0;
        dst->s = pool_strndup(&b->pool, src->s ? src->s : "", dst->s_len);
        if (dst->s == NULL)
            return builder_oom();
    }
    if (src->type == ONNX_ATTR_TENSOR && src->t != NULL) {
        dst->t = pool_alloc(&b->pool, sizeof(onnx_tensor));
        if (dst->t == NULL)
            return builder_oom();
        ogi_status st = builder_copy_tensor(b, dst->t, src->t, copy_data);
        if (st != OGI_OK)
            return st;
    }
    if (src->type == ONNX_ATTR_GRAPH && src->g != NULL) {
        dst->g = pool_alloc(&b->pool, sizeof(onnx_graph));
        if (dst->g == NULL)
            return builder_oom();
        ogi_status st = builder_copy_graph(b, dst->g, src->g, copy_data, depth + 1);
        if (st != OGI_OK)
            return st;
    }
    return builder_copy_attr_lists(b, dst, src, copy_data, depth);
}

static ogi_status builder_copy_node(onnx_builder *b, onnx_node *dst, const onnx_node *src,
                                    bool copy_data, int depth)
{
    memset(dst, 0, sizeof(*dst));
    dst->name = builder_str(b, src->name);
    dst->op_type = builder_str(b, src->op_type);
    dst->domain = builder_str(b, src->domain);
    dst->inputs = builder_array(b, NULL, (size_t)src->n_inputs, sizeof(char *));
    dst->outputs = builder_array(b, NULL, (size_t)src->n_outputs, sizeof(char *));
    dst->attrs = builder_array(b, NULL, (size_t)src->n_attrs, sizeof(onnx_attr));
    if (!dst->name || !dst->op_type || !dst->domain || !dst->inputs || !dst->outputs || !dst->attrs)
        return builder_oom();
    dst->n_inputs = src->n_inputs;
    dst->n_outputs = src->n_outputs;
    dst->n_attrs = src->n_attrs;
    ogi_status st = builder_copy_strings(b, dst->inputs, src->inputs, src->n_inputs);
    if (st == OGI_OK)
        st = builder_copy_strings(b, dst->outputs, src->outputs, src->n_outputs);
    for (int i = 0; i < src->n_attrs && st == OGI_OK; i++)
        st = builder_copy_attr(b, &dst->attrs[i], &src->attrs[i], copy_data, depth);
    return st;
}

static ogi_status builder_copy_value_info(onnx_builder *b, onnx_value_info *dst,
                                          const onnx_value_info *src)
{
    *dst = *src;
    dst->name = builder_str(b, src->name);
    if (dst->name == NULL)
        return builder_oom();
    if (src->rank <= 0) {
        dst->dims = NULL;
        return OGI_OK;
    }
    if (src->rank > OGI_MAX_RANK)
        return ogi_error(OGI_ERR_INVALID_ARGUMENT, "value '%s': rank %d exceeds %d", src->name,
                         src->rank, OGI_MAX_RANK);
    dst->dims = pool_alloc_array(&b->pool, (size_t)src->rank, sizeof(onnx_dim));
    if (dst->dims == NULL)
        return builder_oom();
    for (int i = 0; i < src->rank; i++) {
        dst->dims[i].value = src->dims[i].value < 0 ? -1 : src->dims[i].value;
        dst->dims[i].param = onnx_builder_string(b, src->dims[i].param);
        if (src->dims[i].param && dst->dims[i].param == NULL)
            return builder_oom();
    }
    return OGI_OK;
}

static ogi_status builder_copy_infos(onnx_builder *b, onnx_value_info **dst, int *n_dst,
                                     const onnx_value_info *src, int n)
{
    *dst = builder_array(b, NULL, (size_t)n, sizeof(onnx_value_info));
    if (*dst == NULL)
        return builder_oom();
    *n_dst = n;
    for (int i = 0; i < n; i++) {
        ogi_status st = builder_copy_value_info(b, &(*dst)[i], &src[i]);
        if (st != OGI_OK)
            return st;
    }
    return OGI_OK;
}

static ogi_status builder_copy_graph(onnx_builder *b, onnx_graph *dst, const onnx_graph *src,
                                     bool copy_data, int depth)
{
    if (depth > WR_MAX_DEPTH)
        return ogi_error(OGI_ERR_INVALID_ARGUMENT, "subgraphs nested deeper than %d", WR_MAX_DEPTH);
    memset(dst, 0, sizeof(*dst));
    dst->name = builder_str(b, src->name);
    dst->nodes = builder_array(b, NULL, (size_t)src->n_nodes, sizeof(onnx_node));
    dst->initializers = builder_array(b, NULL, (size_t)src->n_initializers, sizeof(onnx_tensor));
    if (dst->name == NULL || dst->nodes == NULL || dst->initializers == NULL)
        return builder_oom();
    dst->n_sparse_initializers = src->n_sparse_initializers;
    ogi_status st = OGI_OK;
    for (int i = 0; i < src->n_nodes && st == OGI_OK; i++, dst->n_nodes++)
        st = builder_copy_node(b, &dst->nodes[i], &src->nodes[i], copy_data, depth);
    for (int i = 0; i < src->n_initializers && st == OGI_OK; i++, dst->n_initializers++)
        st = builder_copy_tensor(b, &dst->initializers[i], &src->initializers[i], copy_data);
    if (st == OGI_OK)
        st = builder_copy_infos(b, &dst->inputs, &dst->n_inputs, src->inputs, src->n_inputs);
    if (st == OGI_OK)
        st = builder_copy_infos(b, &dst->outputs, &dst->n_outputs, src->outputs, src->n_outputs);
    if (st == OGI_OK)
        st = builder_copy_infos(b, &dst->value_infos, &dst->n_value_infos, src->value_infos,
                                src->n_value_infos);
    return st;
}

static ogi_status builder_copy_opsets(onnx_builder *b, onnx_opset **dst, int *n_dst,
                                      const onnx_opset *src, int n)
{
    *dst = builder_array(b, src, (size_t)n, sizeof(onnx_opset));
    if (*dst == NULL)
        return builder_oom();
    *n_dst = n;
    for (int i = 0; i < n; i++)
        if (((*dst)[i].domain = builder_str(b, src[i].domain)) == NULL)
            return builder_oom();
    return OGI_OK;
}

static ogi_status builder_copy_function(onnx_builder *b, onnx_function *dst,
                                        const onnx_function *src, bool copy_data)
{
    memset(dst, 0, sizeof(*dst));
    dst->name = builder_str(b, src->name);
    dst->domain = builder_str(b, src->domain);
    dst->inputs = pool_alloc_array(&b->pool, (size_t)src->n_inputs, sizeof(char *));
    dst->outputs = pool_alloc_array(&b->pool, (size_t)src->n_outputs, sizeof(char *));
    dst->attr_names = pool_alloc_array(&b->pool, (size_t)src->n_attr_names, sizeof(char *));
    dst->nodes = builder_array(b, NULL, (size_t)src->n_nodes, sizeof(onnx_node));
    if (!dst->name || !dst->domain || !dst->inputs || !dst->outputs || !dst->attr_names ||
        !dst->nodes)
        return builder_oom();
    dst->n_inputs = src->n_inputs;
    dst->n_outputs = src->n_outputs;
    dst->n_attr_names = src->n_attr_names;
    ogi_status st = builder_copy_strings(b, dst->inputs, src->inputs, src->n_inputs);
    if (st == OGI_OK)
        st = builder_copy_strings(b, dst->outputs, src->outputs, src->n_outputs);
    if (st == OGI_OK)
        st = builder_copy_strings(b, dst->attr_names, src->attr_names, src->n_attr_names);
    for (int i = 0; i < src->n_nodes && st == OGI_OK; i++, dst->n_nodes++)
        st = builder_copy_node(b, &dst->nodes[i], &src->nodes[i], copy_data, 0);
    if (st == OGI_OK)
        st = builder_copy_opsets(b, &dst->opsets, &dst->n_opsets, src->opsets, src->n_opsets);
    return st;
}

/* ---- the builder: model ------------------------------------------------------------------ */

static ogi_status builder_new(onnx_builder **out)
{
    onnx_builder *b = calloc(1, sizeof(*b));
    if (b == NULL)
        return builder_oom();
    b->model.path = "<builder>";
    b->model.graph = pool_alloc(&b->pool, sizeof(onnx_graph));
    if (b->model.graph == NULL) {
        onnx_builder_free(b);
        return builder_oom();
    }
    *out = b;
    return OGI_OK;
}

ogi_status onnx_builder_create(onnx_builder **out)
{
    if (out == NULL)
        return ogi_error(OGI_ERR_INVALID_ARGUMENT, "onnx_builder_create: NULL argument");
    ogi_status st = builder_new(out);
    if (st != OGI_OK)
        return st;
    onnx_builder *b = *out;
    b->model.ir_version = 10;
    b->model.producer_name = "ogi";
    b->model.producer_version = OGI_VERSION;
    b->model.graph->name = "main";
    return OGI_OK;
}

ogi_status onnx_builder_from_model(const onnx_model *m, onnx_builder **out)
{
    if (m == NULL || m->graph == NULL || out == NULL)
        return ogi_error(OGI_ERR_INVALID_ARGUMENT, "onnx_builder_from_model: no model");
    onnx_builder *b = NULL;
    ogi_status st = builder_new(&b);
    if (st != OGI_OK)
        return st;
    onnx_model *d = &b->model;
    d->ir_version = m->ir_version;
    d->producer_name = builder_str(b, m->producer_name);
    d->producer_version = builder_str(b, m->producer_version);
    d->functions = builder_array(b, NULL, (size_t)m->n_functions, sizeof(onnx_function));
    if (!d->producer_name || !d->producer_version || !d->functions)
        st = builder_oom();
    if (st == OGI_OK)
        st = builder_copy_opsets(b, &d->opsets, &d->n_opsets, m->opsets, m->n_opsets);
    if (st == OGI_OK)
        st = builder_copy_graph(b, d->graph, m->graph, false, 0);
    for (int i = 0; i < m->n_functions && st == OGI_OK; i++, d->n_functions++)
        st = builder_copy_function(b, &d->functions[i], &m->functions[i], false);
    if (st != OGI_OK) {
        onnx_builder_free(b);
        return st;
    }
    *out = b;
    return OGI_OK;
}

void onnx_builder_free(onnx_builder *b)
{
    if (b == NULL)
        return;
    name_map_free(&b->names);
    name_map_free(&b->next);
    pool_free_all(&b->pool);
    free(b);
}

onnx_model *onnx_builder_model(onnx_builder *b)
{
    return &b->model;
}

onnx_graph *onnx_builder_graph(onnx_builder *b)
{
    return b->model.graph;
}

static bool builder_same_domain(const char *a, const char *b)
{
    if (strcmp(a, "ai.onnx") == 0)
        a = "";
    if (strcmp(b, "ai.onnx") == 0)
        b = "";
    return strcmp(a, b) == 0;
}

ogi_status onnx_builder_set_opset(onnx_builder *b, const char *domain, int64_t version)
{
    onnx_model *m = &b->model;
    domain = domain ? domain : "";
    for (int i = 0; i < m->n_opsets; i++) {
        if (builder_same_domain(m->opsets[i].domain, domain)) {
            m->opsets[i].version = version;
            return OGI_OK;
        }
    }
    const char *copy = builder_str(b, domain);
    onnx_opset *opsets = builder_reserve(b, m->opsets, m->n_opsets, sizeof(onnx_opset));
    if (copy == NULL || opsets == NULL)
        return builder_oom();
    m->opsets = opsets;
    m->opsets[m->n_opsets].domain = copy;
    m->opsets[m->n_opsets++].version = version;
    return OGI_OK;
}

ogi_status onnx_builder_set_producer(onnx_builder *b, const char *name, const char *version)
{
    const char *n = builder_str(b, name), *v = builder_str(b, version);
    if (n == NULL || v == NULL)
        return builder_oom();
    b->model.producer_name = n;
    b->model.producer_version = v;
    return OGI_OK;
}

ogi_status onnx_builder_add_function(onnx_builder *b, const onnx_function *f)
{
    onnx_function copy;
    ogi_status st = builder_copy_function(b, &copy, f, true);
    if (st != OGI_OK)
        return st;
    onnx_model *m = &b->model;
    onnx_function *fs = builder_reserve(b, m->functions, m->n_functions, sizeof(*fs));
    if (fs == NULL)
        return builder_oom();
    m->functions = fs;
    m->functions[m->n_functions++] = copy;
    return OGI_OK;
}

/* ---- the builder: names ------------------------------------------------------------------- */

static bool builder_note_graph(onnx_builder *b, const onnx_graph *g);

static bool builder_note_nodes(onnx_builder *b, const onnx_node *nodes, int n)
{
    for (int i = 0; i < n; i++) {
        const onnx_node *node = &nodes[i];
        bool ok = builder_note(b, node->name);
        for (int k = 0; k < node->n_inputs && ok; k++)
            ok = builder_note(b, node->inputs[k]);
        for (int k = 0; k < node->n_outputs && ok; k++)
            ok = builder_note(b, node->outputs[k]);
        for (int k = 0; k < node->n_attrs && ok; k++) {
            const onnx_attr *a = &node->attrs[k];
            if (a->type == ONNX_ATTR_GRAPH && a->g)
                ok = builder_note_graph(b, a->g);
            for (int64_t j = 0; a->type == ONNX_ATTR_GRAPHS && j < a->n && ok; j++)
                ok = builder_note_graph(b, a->graphs[j]);
        }
        if (!ok)
            return false;
    }
    return true;
}

static bool builder_note_infos(onnx_builder *b, const onnx_value_info *v, int n)
{
    for (int i = 0; i < n; i++)
        if (!builder_note(b, v[i].name))
            return false;
    return true;
}

static bool builder_note_graph(onnx_builder *b, const onnx_graph *g)
{
    for (int i = 0; i < g->n_initializers; i++)
        if (!builder_note(b, g->initializers[i].name))
            return false;
    return builder_note_nodes(b, g->nodes, g->n_nodes) &&
           builder_note_infos(b, g->inputs, g->n_inputs) &&
           builder_note_infos(b, g->outputs, g->n_outputs) &&
           builder_note_infos(b, g->value_infos, g->n_value_infos);
}

static bool builder_note_model(onnx_builder *b)
{
    b->names_ready = true;
    const onnx_model *m = &b->model;
    bool ok = builder_note_graph(b, m->graph);
    for (int i = 0; i < m->n_functions && ok; i++) {
        const onnx_function *f = &m->functions[i];
        ok = builder_note_nodes(b, f->nodes, f->n_nodes);
        for (int k = 0; k < f->n_inputs && ok; k++)
            ok = builder_note(b, f->inputs[k]);
    }
    return ok;
}

const char *onnx_builder_unique_name(onnx_builder *b, const char *prefix)
{
    if (!b->names_ready && !builder_note_model(b)) {
        b->names_ready = false;
        name_map_free(&b->names);
        return NULL;
    }
    size_t len = strlen(prefix) + 24;
    char *name = pool_alloc(&b->pool, len);
    if (name == NULL)
        return NULL;
    int64_t n = 0;
    name_map_get(&b->next, prefix, &n);
    do
        snprintf(name, len, "%s_%lld", prefix, (long long)n++);
    while (name_map_get(&b->names, name, NULL));
    const char *key = name_map_key(&b->next, prefix);
    if (key == NULL)
        key = builder_str(b, prefix); /* the map borrows its keys */
    if (key == NULL || !name_map_put(&b->next, key, n) || !name_map_put(&b->names, name, 0))
        return NULL;
    return name;
}

/* ---- the builder: nodes and attributes ------------------------------------------------------ */

ogi_status onnx_builder_insert_node(onnx_builder *b, onnx_graph *g, int index,
                                    const onnx_node *node, onnx_node **out)
{
    if (g == NULL || node == NULL || index < 0 || index > g->n_nodes)
        return ogi_error(OGI_ERR_INVALID_ARGUMENT,
                         "onnx_builder_insert_node: index %d not in "
                         "[0, %d]",
                         index, g ? g->n_nodes : 0);
    if (node->op_type == NULL || node->op_type[0] == '\0')
        return ogi_error(OGI_ERR_INVALID_ARGUMENT, "onnx_builder_insert_node: no op_type");
    onnx_node copy;
    ogi_status st = builder_copy_node(b, &copy, node, true, 0);
    if (st != OGI_OK)
        return st;
    onnx_node *nodes = builder_reserve(b, g->nodes, g->n_nodes, sizeof(onnx_node));
    if (nodes == NULL || !builder_note_nodes(b, &copy, 1))
        return builder_oom();
    g->nodes = nodes;
    onnx_node *slot = builder_open_slot(g->nodes, g->n_nodes++, sizeof(onnx_node), index);
    *slot = copy;
    if (out != NULL)
        *out = slot;
    return OGI_OK;
}

ogi_status onnx_builder_add_node(onnx_builder *b, onnx_graph *g, const onnx_node *node,
                                 onnx_node **out)
{
    return onnx_builder_insert_node(b, g, g ? g->n_nodes : 0, node, out);
}

ogi_status onnx_builder_add_simple_node(onnx_builder *b, onnx_graph *g, const char *op_type,
                                        const char *domain, int n_in, const char *const *inputs,
                                        int n_out, const char *const *outputs, onnx_node **out)
{
    onnx_node n = {"", op_type, domain, n_in, (const char **)inputs, n_out, (const char **)outputs,
                   0,  NULL};
    return onnx_builder_add_node(b, g, &n, out);
}

ogi_status onnx_builder_remove_node(onnx_builder *b, onnx_graph *g, int index)
{
    (void)b;
    if (g == NULL || index < 0 || index >= g->n_nodes)
        return ogi_error(OGI_ERR_INVALID_ARGUMENT, "onnx_builder_remove_node: no node %d", index);
    builder_close_slot(g->nodes, g->n_nodes--, sizeof(onnx_node), index);
    return OGI_OK;
}

/* Sets (*list)[i] = name, growing the list with "" entries. */
static ogi_status builder_set_name_at(onnx_builder *b, const char ***list, int *n, int i,
                                      const char *name)
{
    if (i < 0 || i >= 65536)
        return ogi_error(OGI_ERR_INVALID_ARGUMENT, "index %d out of range", i);
    const char *copy = builder_str(b, name);
    if (copy == NULL || !builder_note(b, copy))
        return builder_oom();
    while (*n <= i) {
        const char **grown = builder_reserve(b, *list, *n, sizeof(char *));
        if (grown == NULL)
            return builder_oom();
        *list = grown;
        (*list)[(*n)++] = "";
    }
    (*list)[i] = copy;
    return OGI_OK;
}

ogi_status onnx_builder_set_node_input(onnx_builder *b, onnx_node *n, int i, const char *name)
{
    return builder_set_name_at(b, &n->inputs, &n->n_inputs, i, name);
}

ogi_status onnx_builder_set_node_output(onnx_builder *b, onnx_node *n, int i, const char *name)
{
    return builder_set_name_at(b, &n->outputs, &n->n_outputs, i, name);
}

ogi_status onnx_builder_set_attr(onnx_builder *b, onnx_node *n, const onnx_attr *a)
{
    if (a == NULL || a->name == NULL || a->name[0] == '\0')
        return ogi_error(OGI_ERR_INVALID_ARGUMENT, "onnx_builder_set_attr: attribute needs a name");
    onnx_attr copy;
    ogi_status st = builder_copy_attr(b, &copy, a, true, 0);
    if (st != OGI_OK)
        return st;
    onnx_attr *old = onnx_node_find_attr(n, a->name);
    if (old != NULL) {
        *old = copy;
        return OGI_OK;
    }
    onnx_attr *attrs = builder_reserve(b, n->attrs, n->n_attrs, sizeof(onnx_attr));
    if (attrs == NULL)
        return builder_oom();
    n->attrs = attrs;
    n->attrs[n->n_attrs++] = copy;
    return OGI_OK;
}

ogi_status onnx_builder_set_attr_int(onnx_builder *b, onnx_node *n, const char *name, int64_t v)
{
    onnx_attr a = {.name = name, .type = ONNX_ATTR_INT, .i = v};
    return onnx_builder_set_attr(b, n, &a);
}

ogi_status onnx_builder_set_attr_float(onnx_builder *b, onnx_node *n, const char *name, float v)
{
    onnx_attr a = {.name = name, .type = ONNX_ATTR_FLOAT, .f = v};
    return onnx_builder_set_attr(b, n, &a);
}

ogi_status onnx_builder_set_attr_string(onnx_builder *b, onnx_node *n, const char *name,
                                        const char *v)
{
    onnx_attr a = {.name = name, .type = ONNX_ATTR_STRING, .s = v, .s_len = v ? strlen(v) : 0};
    return onnx_builder_set_attr(b, n, &a);
}

ogi_status onnx_builder_set_attr_ints(onnx_builder *b, onnx_node *n, const char *name,
                                      const int64_t *v, int64_t count)
{
    onnx_attr a = {.name = name, .type = ONNX_ATTR_INTS, .n = count, .ints = (int64_t *)v};
    return onnx_builder_set_attr(b, n, &a);
}

ogi_status onnx_builder_set_attr_floats(onnx_builder *b, onnx_node *n, const char *name,
                                        const float *v, int64_t count)
{
    onnx_attr a = {.name = name, .type = ONNX_ATTR_FLOATS, .n = count, .floats = (float *)v};
    return onnx_builder_set_attr(b, n, &a);
}

ogi_status onnx_builder_set_attr_tensor(onnx_builder *b, onnx_node *n, const char *name,
                                        const ogi_tensor *t)
{
    if (t == NULL)
        return ogi_error(OGI_ERR_INVALID_ARGUMENT, "attribute '%s': no tensor", name);
    onnx_tensor ot = {.name = "", .tensor = *t};
    onnx_attr a = {.name = name, .type = ONNX_ATTR_TENSOR, .t = &ot};
    return onnx_builder_set_attr(b, n, &a);
}

ogi_status onnx_builder_set_attr_graph(onnx_builder *b, onnx_node *n, const char *name,
                                       const onnx_graph *g)
{
    if (g == NULL)
        return ogi_error(OGI_ERR_INVALID_ARGUMENT, "attribute '%s': no graph", name);
    onnx_attr a = {.name = name, .type = ONNX_ATTR_GRAPH, .g = (onnx_graph *)g};
    return onnx_builder_set_attr(b, n, &a);
}

bool onnx_builder_remove_attr(onnx_builder *b, onnx_node *n, const char *name)
{
    (void)b;
    onnx_attr *a = onnx_node_find_attr(n, name);
    if (a == NULL)
        return false;
    builder_close_slot(n->attrs, n->n_attrs--, sizeof(onnx_attr), (int)(a - n->attrs));
    return true;
}

/* ---- the builder: initializers and graph inputs/outputs -----------------------------------------
 */

static ogi_status builder_put_initializer(onnx_builder *b, onnx_graph *g, const char *name,
                                          const ogi_tensor *t, bool copy_data)
{
    if (g == NULL || name == NULL || name[0] == '\0' || t == NULL)
        return ogi_error(OGI_ERR_INVALID_ARGUMENT, "an initializer needs a graph, name and tensor");
    size_t bytes;
    int64_t numel = tensor_shape_numel(t->rank, t->dims);
    if (numel < 0 || !tensor_bytes_for(t->dtype, numel, &bytes) || bytes != t->nbytes)
        return ogi_error(OGI_ERR_INVALID_ARGUMENT, "initializer '%s': dtype %s is not supported",
                         name, ogi_dtype_name(t->dtype));
    onnx_tensor src = {.name = name, .tensor = *t}, copy;
    ogi_status st = builder_copy_tensor(b, &copy, &src, copy_data);
    if (st != OGI_OK)
        return st;
    int old = onnx_graph_find_initializer(g, name);
    if (old >= 0) {
        g->initializers[old] = copy;
        return OGI_OK;
    }
    onnx_tensor *inits = builder_reserve(b, g->initializers, g->n_initializers, sizeof(*inits));
    if (inits == NULL || !builder_note(b, copy.name))
        return builder_oom();
    g->initializers = inits;
    g->initializers[g->n_initializers++] = copy;
    return OGI_OK;
}

ogi_status onnx_builder_add_initializer(onnx_builder *b, onnx_graph *g, const char *name,
                                        const ogi_tensor *t)
{
    return builder_put_initializer(b, g, name, t, true);
}

ogi_status onnx_builder_add_initializer_ref(onnx_builder *b, onnx_graph *g, const char *name,
                                            const ogi_tensor *t)
{
    return builder_put_initializer(b, g, name, t, false);
}

bool onnx_builder_remove_initializer(onnx_builder *b, onnx_graph *g, const char *name)
{
    (void)b;
    int i = onnx_graph_find_initializer(g, name);
    if (i < 0)
        return false;
    builder_close_slot(g->initializers, g->n_initializers--, sizeof(onnx_tensor), i);
    return true;
}

static int builder_find_info(const onnx_value_info *list, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(list[i].name, name) == 0)
            return i;
    return -1;
}

static ogi_status builder_put_info(onnx_builder *b, onnx_value_info **list, int *n,
                                   const onnx_value_info *v)
{
    if (v == NULL || v->name == NULL || v->name[0] == '\0')
        return ogi_error(OGI_ERR_INVALID_ARGUMENT, "a graph input or output needs a name");
    onnx_value_info copy;
    ogi_status st = builder_copy_value_info(b, &copy, v);
    if (st != OGI_OK)
        return st;
    int old = builder_find_info(*list, *n, v->name);
    if (old >= 0) {
        (*list)[old] = copy;
        return OGI_OK;
    }
    onnx_value_info *grown = builder_reserve(b, *list, *n, sizeof(onnx_value_info));
    if (grown == NULL || !builder_note(b, copy.name))
        return builder_oom();
    *list = grown;
    (*list)[(*n)++] = copy;
    return OGI_OK;
}

static bool builder_drop_info(onnx_value_info *list, int *n, const char *name)
{
    int i = builder_find_info(list, *n, name);
    if (i < 0)
        return false;
    builder_close_slot(list, (*n)--, sizeof(onnx_value_info), i);
    return true;
}

ogi_status onnx_builder_add_input(onnx_builder *b, onnx_graph *g, const onnx_value_info *v)
{
    return builder_put_info(b, &g->inputs, &g->n_inputs, v);
}

ogi_status onnx_builder_add_output(onnx_builder *b, onnx_graph *g, const onnx_value_info *v)
{
    return builder_put_info(b, &g->outputs, &g->n_outputs, v);
}

ogi_status onnx_builder_add_value_info(onnx_builder *b, onnx_graph *g, const onnx_value_info *v)
{
    return builder_put_info(b, &g->value_infos, &g->n_value_infos, v);
}

bool onnx_builder_remove_input(onnx_builder *b, onnx_graph *g, const char *name)
{
    (void)b;
    return builder_drop_info(g->inputs, &g->n_inputs, name);
}

bool onnx_builder_remove_output(onnx_builder *b, onnx_graph *g, const char *name)
{
    (void)b;
    return builder_drop_info(g->outputs, &g->n_outputs, name);
}

bool onnx_builder_remove_value_info(onnx_builder *b, onnx_graph *g, const char *name)
{
    (void)b;
    return builder_drop_info(g->value_infos, &g->n_value_infos, name);
}

/* ---- the builder: rewiring, sorting, pruning ----------------------------------------------------
 */

static int builder_replace_in(onnx_graph *g, const char *old_name, const char *new_name)
{
    int count = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        onnx_node *n = &g->nodes[i];
        for (int k = 0; k < n->n_inputs; k++) {
            if (strcmp(n->inputs[k], old_name) == 0) {
                n->inputs[k] = new_name;
                count++;
            }
        }
        for (int k = 0; k < n->n_attrs; k++) {
            const onnx_attr *a = &n->attrs[k];
            if (a->type == ONNX_ATTR_GRAPH && a->g)
                count += builder_replace_in(a->g, old_name, new_name);
            for (int64_t j = 0; a->type == ONNX_ATTR_GRAPHS && j < a->n; j++)
                count += builder_replace_in(a->graphs[j], old_name, new_name);
        }
    }
    return count;
}

ogi_status onnx_builder_replace_uses(onnx_builder *b, onnx_graph *g, const char *old_name,
                                     const char *new_name, int *count)
{
    if (old_name == NULL || old_name[0] == '\0' || new_name == NULL)
        return ogi_error(OGI_ERR_INVALID_ARGUMENT, "onnx_builder_replace_uses: no name");
    const char *copy = builder_str(b, new_name);
    if (copy == NULL || !builder_note(b, copy))
        return builder_oom();
    int n = builder_replace_in(g, old_name, copy);
    if (count != NULL)
        *count = n;
    return OGI_OK;
}

/* A list of ints that grows. */
typedef struct int_list {
    int *v;
    size_t n, cap;
} int_list;

static bool int_list_push(int_list *l, int x)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        int *grown = realloc(l->v, cap * sizeof(int));
        if (grown == NULL)
            return false;
        l->v = grown;
        l->cap = cap;
    }
    l->v[l->n++] = x;
    return true;
}

/* Calls visit(ctx, name) for every input of n, and for every input of the
 * nodes of its subgraphs (their captured values among them). */
typedef bool (*builder_visit_fn)(void *ctx, const char *name);

static bool builder_each_input(const onnx_node *n, builder_visit_fn visit, void *ctx)
{
    for (int k = 0; k < n->n_inputs; k++)
        if (n->inputs[k][0] != '\0' && !visit(ctx, n->inputs[k]))
            return false;
    for (int k = 0; k < n->n_attrs; k++) {
        const onnx_attr *a = &n->attrs[k];
        int64_t count = a->type == ONNX_ATTR_GRAPH ? (a->g != NULL) : 0;
        if (a->type == ONNX_ATTR_GRAPHS)
            count = a->n;
        for (int64_t j = 0; j < count; j++) {
            const onnx_graph *sub = a->type == ONNX_ATTR_GRAPH ? a->g : a->graphs[j];
            for (int i = 0; i < sub->n_nodes; i++)
                if (!builder_each_input(&sub->nodes[i], visit, ctx))
                    return false;
            for (int i = 0; i < sub->n_outputs; i++) /* an output may be a captured value */
                if (!visit(ctx, sub->outputs[i].name))
                    return false;
        }
    }
    return true;
}

typedef struct builder_deps {
    const name_map *producers;
    int_list *deps;
} builder_deps;

static bool builder_add_dep(void *ctx, const char *name)
{
    builder_deps *d = ctx;
    int64_t p;
    return !name_map_get(d->producers, name, &p) || int_list_push(d->deps, (int)p);
}

/* For each node, the nodes producing what it reads: deps->v[start[i] ..
 * start[i + 1]). */
static bool builder_dependencies(const onnx_graph *g, name_map *producers, int_list *deps,
                                 int *start)
{
    for (int i = 0; i < g->n_nodes; i++)
        for (int k = 0; k < g->nodes[i].n_outputs; k++)
            if (g->nodes[i].outputs[k][0] != '\0' &&
                !name_map_put(producers, g->nodes[i].outputs[k], i))
                return false;
    builder_deps d = {producers, deps};
    for (int i = 0; i < g->n_nodes; i++) {
        start[i] = (int)deps->n;
        if (!builder_each_input(&g->nodes[i], builder_add_dep, &d))
            return false;
    }
    start[g->n_nodes] = (int)deps->n;
    return true;
}

/* Depth-first post-order from each node in turn, so an already sorted graph
 * keeps its order. state: 0 new, 1 on the stack, 2 placed. */
static ogi_status builder_order(const onnx_graph *g, const int_list *deps, const int *start,
                                int *order)
{
    int n = g->n_nodes, placed = 0;
    char *state = calloc((size_t)n + 1, 1);
    int *stack = malloc(((size_t)n + 1) * sizeof(int)),
        *next = malloc(((size_t)n + 1) * sizeof(int));
    ogi_status st = OGI_OK;
    if (state == NULL || stack == NULL || next == NULL)
        st = builder_oom();
    for (int root = 0; root < n && st == OGI_OK; root++) {
        if (state[root])
            continue;
        int top = 0;
        stack[0] = root;
        next[0] = start[root];
        state[root] = 1;
        while (top >= 0 && st == OGI_OK) {
            int v = stack[top];
            if (next[top] == start[v + 1]) {
                state[v] = 2;
                order[placed++] = v;
                top--;
                continue;
            }
            int d = deps->v[next[top]++];
            if (state[d] == 1)
                st = ogi_error(OGI_ERR_INVALID_MODEL,
                               "graph '%s' has a cycle through node '%s' (%s)", g->name,
                               g->nodes[d].name, g->nodes[d].op_type);
            else if (state[d] == 0) {
                state[d] = 1;
                stack[++top] = d;
                next[top] = start[d];
            }
        }
    }
    free(state);
    free(stack);
    free(next);
    return st;
}

ogi_status onnx_builder_sort(onnx_builder *b, onnx_graph *g)
{
    (void)b;
    int n = g->n_nodes;
    name_map producers = {0};
    int_list deps = {0};
    int *start = malloc(((size_t)n + 1) * sizeof(int)),
        *order = malloc(((size_t)n + 1) * sizeof(int));
    onnx_node *sorted = malloc(((size_t)n + 1) * sizeof(onnx_node));
    ogi_status st = OGI_OK;
    if (start == NULL || order == NULL || sorted == NULL ||
        !builder_dependencies(g, &producers, &deps, start))
        st = builder_oom();
    if (st == OGI_OK)
        st = builder_order(g, &deps, start, order);
    if (st == OGI_OK) {
        for (int i = 0; i < n; i++)
            sorted[i] = g->nodes[order[i]];
        if (n > 0)
            memcpy(g->nodes, sorted, (size_t)n * sizeof(onnx_node));
    }
    name_map_free(&producers);
    free(deps.v);
    free(start);
    free(order);
    free(sorted);
    return st;
}

static bool builder_mark_live(void *ctx, const char *name)
{
    return name_map_put(ctx, name, 1);
}

/* Marks live nodes from the last to the first (the graph is sorted): a node
 * is live when something live reads one of its outputs. */
static bool builder_live_nodes(const onnx_graph *g, name_map *live, bool *keep)
{
    for (int i = 0; i < g->n_outputs; i++)
        if (!name_map_put(live, g->outputs[i].name, 1))
            return false;
    for (int i = g->n_nodes - 1; i >= 0; i--) {
        const onnx_node *n = &g->nodes[i];
        keep[i] = false;
        for (int k = 0; k < n->n_outputs && !keep[i]; k++)
            keep[i] = n->outputs[k][0] != '\0' && name_map_get(live, n->outputs[k], NULL);
        if (keep[i] && !builder_each_input(n, builder_mark_live, live))
            return false;
    }
    return true;
}

ogi_status onnx_builder_prune(onnx_builder *b, onnx_graph *g)
{
    ogi_status st = onnx_builder_sort(b, g);
    if (st != OGI_OK)
        return st;
    name_map live = {0};
    bool *keep = malloc(((size_t)g->n_nodes + 1) * sizeof(bool));
    if (keep == NULL || !builder_live_nodes(g, &live, keep)) {
        free(keep);
        name_map_free(&live);
        return builder_oom();
    }
    int n = 0;
    for (int i = 0; i < g->n_nodes; i++)
        if (keep[i])
            g->nodes[n++] = g->nodes[i];
    g->n_nodes = n;
    n = 0;
    for (int i = 0; i < g->n_initializers; i++) {
        const char *name = g->initializers[i].name;
        if (name_map_get(&live, name, NULL) || builder_find_info(g->inputs, g->n_inputs, name) >= 0)
            g->initializers[n++] = g->initializers[i];
    }
    g->n_initializers = n;
    n = 0;
    for (int i = 0; i < g->n_value_infos; i++)
        if (name_map_get(&live, g->value_infos[i].name, NULL))
            g->value_infos[n++] = g->value_infos[i];
    g->n_value_infos = n;
    free(keep);
    name_map_free(&live);
    return OGI_OK;
}
