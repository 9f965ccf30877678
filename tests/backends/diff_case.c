#include "diff_case.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/dtype.h"
#include "core/tensor.h"
#include "pb_writer.h"
#include "test_util.h"

static const char *const diff_in_names[DIFF_MAX_IO] = {"in0", "in1", "in2", "in3",
                                                       "in4", "in5", "in6", "in7"};
static const char *const diff_out_names[DIFF_MAX_IO] = {"out0", "out1", "out2", "out3",
                                                        "out4", "out5", "out6", "out7"};

void diff_case_init(diff_case *c, const char *op, int opset)
{
    memset(c, 0, sizeof(*c));
    c->op = op;
    c->label = op;
    c->opset = opset;
    c->rtol = 1e-4;
    c->atol = 1e-5;
}

void diff_case_free(diff_case *c)
{
    for (int i = 0; i < c->n_in; i++)
        ogi_tensor_free(c->in[i]);
    memset(c, 0, sizeof(*c));
}

static void diff_add_in(diff_case *c, ogi_tensor *t, bool is_const, bool omitted)
{
    if (c->n_in == DIFF_MAX_IO || (t == NULL && !omitted)) {
        c->broken = true;
        ogi_tensor_free(t);
        return;
    }
    c->in_const[c->n_in] = is_const;
    c->in[c->n_in++] = t;
}

void diff_in(diff_case *c, ogi_tensor *t)
{
    diff_add_in(c, t, false, false);
}

void diff_in_const(diff_case *c, ogi_tensor *t)
{
    diff_add_in(c, t, true, false);
}

void diff_in_none(diff_case *c)
{
    diff_add_in(c, NULL, false, true);
}

void diff_out(diff_case *c, ogi_dtype dtype)
{
    if (c->n_out < DIFF_MAX_IO)
        c->out_dtype[c->n_out++] = dtype;
    else
        c->broken = true;
}

void diff_out_none(diff_case *c)
{
    diff_out(c, OGI_DTYPE_UNDEFINED);
}

static diff_attr *diff_new_attr(diff_case *c, const char *name, diff_attr_type type)
{
    if (c->n_attrs == DIFF_MAX_ATTRS) {
        c->broken = true;
        return NULL;
    }
    diff_attr *a = &c->attrs[c->n_attrs++];
    memset(a, 0, sizeof(*a));
    a->name = name;
    a->type = type;
    return a;
}

void diff_attr_int(diff_case *c, const char *name, int64_t v)
{
    diff_attr *a = diff_new_attr(c, name, DIFF_ATTR_INT);
    if (a != NULL)
        a->i = v;
}

void diff_attr_float(diff_case *c, const char *name, float v)
{
    diff_attr *a = diff_new_attr(c, name, DIFF_ATTR_FLOAT);
    if (a != NULL)
        a->f = v;
}

void diff_attr_string(diff_case *c, const char *name, const char *v)
{
    diff_attr *a = diff_new_attr(c, name, DIFF_ATTR_STRING);
    if (a != NULL)
        a->s = v;
}

void diff_attr_ints(diff_case *c, const char *name, int n, const int64_t *v)
{
    diff_attr *a = diff_new_attr(c, name, DIFF_ATTR_INTS);
    if (a == NULL || n > OGI_MAX_RANK) {
        c->broken = true;
        return;
    }
    a->n_ints = n;
    memcpy(a->ints, v, sizeof(int64_t) * (size_t)n);
}

/* ---- serialization ------------------------------------------------------------- */

static void diff_write_attr(pbw *node, const diff_attr *a)
{
    pbw m = {0};
    pbw_string(&m, 1, a->name);
    switch (a->type) {
    case DIFF_ATTR_FLOAT:
        pbw_fixed32(&m, 2, a->f);
        break;
    case DIFF_ATTR_INT:
        pbw_int(&m, 3, (uint64_t)a->i);
        break;
    case DIFF_ATTR_STRING:
        pbw_string(&m, 4, a->s);
        break;
    case DIFF_ATTR_INTS:
        for (int k = 0; k < a->n_ints; k++)
            pbw_int(&m, 8, (uint64_t)a->ints[k]);
        break;
    }
    pbw_int(&m, 20, (uint64_t)a->type);
    pbw_message(node, 5, &m);
}

bool diff_case_model(const diff_case *c, uint8_t **data, size_t *size)
{
    pbw node = {0}, graph = {0}, model = {0};
    for (int i = 0; i < c->n_in; i++)
        pbw_string(&node, 1, c->in[i] ? diff_in_names[i] : "");
    for (int i = 0; i < c->n_out; i++)
        pbw_string(&node, 2, c->out_dtype[i] ? diff_out_names[i] : "");
    pbw_string(&node, 3, "node");
    pbw_string(&node, 4, c->op);
    for (int a = 0; a < c->n_attrs; a++)
        diff_write_attr(&node, &c->attrs[a]);
    pbw_message(&graph, 1, &node);
    pbw_string(&graph, 2, "differential");
    for (int i = 0; i < c->n_in; i++) {
        const ogi_tensor *t = c->in[i];
        if (t != NULL && c->in_const[i])
            pbw_tensor_raw(&graph, 5, diff_in_names[i], t->dtype, t->rank, t->dims, t->data,
                           t->nbytes);
    }
    for (int i = 0; i < c->n_in; i++) {
        const ogi_tensor *t = c->in[i];
        if (t != NULL && !c->in_const[i])
            pbw_value_info(&graph, 11, diff_in_names[i], t->dtype, t->rank, t->dims);
    }
    for (int i = 0; i < c->n_out; i++)
        if (c->out_dtype[i])
            pbw_value_info(&graph, 12, diff_out_names[i], c->out_dtype[i], -1, NULL);
    pbw_model(&model, 10, c->opset, &graph);
    *data = model.data;
    *size = model.len;
    return model.data != NULL;
}

size_t diff_case_feeds(const diff_case *c, const ogi_tensor **tensors, const char **names)
{
    size_t n = 0;
    for (int i = 0; i < c->n_in; i++)
        if (c->in[i] != NULL && !c->in_const[i]) {
            tensors[n] = c->in[i];
            names[n++] = diff_in_names[i];
        }
    return n;
}

size_t diff_case_fetches(const diff_case *c, const char **names)
{
    size_t n = 0;
    for (int i = 0; i < c->n_out; i++)
        if (c->out_dtype[i])
            names[n++] = diff_out_names[i];
    return n;
}

/* A TensorProto file (input_N.pb / output_N.pb). */
static bool diff_write_tensor(const char *path, const char *name, const ogi_tensor *t)
{
    pbw b = {0};
    for (int d = 0; d < t->rank; d++)
        pbw_int(&b, 1, (uint64_t)t->dims[d]);
    pbw_int(&b, 2, (uint64_t)t->dtype);
    pbw_string(&b, 8, name);
    pbw_bytes(&b, 9, t->data, t->nbytes);
    bool ok = test_write_file(path, b.data, b.len);
    pbw_free(&b);
    return ok;
}

bool diff_case_save(const diff_case *c, const char *dir, ogi_tensor *const *native,
                    ogi_tensor *const *ort, size_t n_out)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/test_data_set_0", dir);
    if ((mkdir(dir, 0755) != 0 && errno != EEXIST) || (mkdir(path, 0755) != 0 && errno != EEXIST))
        return false;
    uint8_t *model;
    size_t size;
    bool ok = diff_case_model(c, &model, &size);
    snprintf(path, sizeof(path), "%s/model.onnx", dir);
    ok = ok && test_write_file(path, model, size);
    free(model);
    const ogi_tensor *feeds[DIFF_MAX_IO];
    const char *names[DIFF_MAX_IO];
    size_t n = diff_case_feeds(c, feeds, names);
    for (size_t i = 0; i < n && ok; i++) {
        snprintf(path, sizeof(path), "%s/test_data_set_0/input_%zu.pb", dir, i);
        ok = diff_write_tensor(path, names[i], feeds[i]);
    }
    n = diff_case_fetches(c, names);
    for (size_t i = 0; i < n && i < n_out && ok; i++) {
        if (ort != NULL && ort[i] != NULL) {
            snprintf(path, sizeof(path), "%s/test_data_set_0/output_%zu.pb", dir, i);
            ok = diff_write_tensor(path, names[i], ort[i]);
        }
        if (ok && native != NULL && native[i] != NULL) {
            snprintf(path, sizeof(path), "%s/test_data_set_0/native_output_%zu.pb", dir, i);
            ok = diff_write_tensor(path, names[i], native[i]);
        }
    }
    return ok;
}

/* ---- comparison ----------------------------------------------------------------- */

bool diff_compare(const diff_case *c, const ogi_tensor *a, const ogi_tensor *b, char *why,
                  size_t size)
{
    char sa[128], sb[128];
    if (a->dtype != b->dtype || !tensor_same_shape(a, b)) {
        snprintf(why, size, "native %s %s, ort %s %s", ogi_dtype_name(a->dtype),
                 tensor_shape_str(a->rank, a->dims, sa, sizeof(sa)), ogi_dtype_name(b->dtype),
                 tensor_shape_str(b->rank, b->dims, sb, sizeof(sb)));
        return false;
    }
    int64_t n = tensor_numel(a);
    if (dtype_is_float(a->dtype)) {
        for (int64_t e = 0; e < n; e++) {
            double x = dtype_get_f64(a->data, a->dtype, e), y = dtype_get_f64(b->data, b->dtype, e);
            if (isnan(x) && isnan(y))
                continue;
            if (c->masked_is_lowest && x <= -FLT_MAX && y <= -FLT_MAX)
                continue;
            if (x == y || fabs(x - y) <= c->atol + c->rtol * fabs(y))
                continue;
            snprintf(why, size, "element %lld: native %.9g, ort %.9g", (long long)e, x, y);
            return false;
        }
        return true;
    }
    if (dtype_is_integer(a->dtype) || a->dtype == OGI_BOOL) {
        for (int64_t e = 0; e < n; e++) {
            int64_t x = dtype_get_i64(a->data, a->dtype, e);
            int64_t y = dtype_get_i64(b->data, b->dtype, e);
            if (x != y) {
                snprintf(why, size, "element %lld: native %lld, ort %lld", (long long)e,
                         (long long)x, (long long)y);
                return false;
            }
        }
        return true;
    }
    if (a->nbytes > 0 && memcmp(a->data, b->data, a->nbytes) != 0) {
        snprintf(why, size, "the %s bytes differ", ogi_dtype_name(a->dtype));
        return false;
    }
    return true;
}

/* ---- random values ----------------------------------------------------------------- */

uint64_t diff_next(uint64_t *rng)
{
    return test_rand(rng);
}

int64_t diff_int(uint64_t *rng, int64_t lo, int64_t hi)
{
    if (hi <= lo)
        return lo;
    return lo + (int64_t)(diff_next(rng) % (uint64_t)(hi - lo + 1));
}

double diff_uniform(uint64_t *rng, double lo, double hi)
{
    return lo + (hi - lo) * (double)(diff_next(rng) >> 11) * (1.0 / 9007199254740992.0);
}

ogi_tensor *diff_random(uint64_t *rng, ogi_dtype dtype, int rank, const int64_t *dims, double lo,
                        double hi)
{
    ogi_tensor *t = NULL;
    if (ogi_tensor_create(dtype, rank, dims, &t) != OGI_OK)
        return NULL;
    int64_t n = tensor_numel(t);
    for (int64_t e = 0; e < n; e++) {
        if (dtype == OGI_BOOL)
            dtype_set_i64(t->data, dtype, e, (int64_t)(diff_next(rng) & 1));
        else if (dtype_is_integer(dtype))
            dtype_set_i64(t->data, dtype, e, diff_int(rng, (int64_t)lo, (int64_t)hi));
        else
            dtype_set_f64(t->data, dtype, e, diff_uniform(rng, lo, hi));
    }
    return t;
}

ogi_tensor *diff_i64(int n, const int64_t *vals)
{
    int64_t dims[1] = {n};
    ogi_tensor *t = NULL;
    if (ogi_tensor_create(OGI_INT64, 1, dims, &t) != OGI_OK)
        return NULL;
    if (n > 0)
        memcpy(t->data, vals, sizeof(int64_t) * (size_t)n);
    return t;
}

ogi_tensor *diff_scalar(ogi_dtype dtype, double v)
{
    ogi_tensor *t = NULL;
    if (ogi_tensor_create(dtype, 0, NULL, &t) != OGI_OK)
        return NULL;
    if (dtype_is_integer(dtype) || dtype == OGI_BOOL)
        dtype_set_i64(t->data, dtype, 0, (int64_t)v);
    else
        dtype_set_f64(t->data, dtype, 0, v);
    return t;
}
