#include "core/tensor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dtype.h"
#include "core/error.h"

int64_t tensor_shape_numel(int rank, const int64_t *dims)
{
    /* every run calls this a few times per node: a multiply with an overflow
     * check, not a division per dim */
    int64_t n = 1;
    bool overflow = false, zero = false;
    for (int i = 0; i < rank; i++) {
        if (dims[i] < 0)
            return -1;
        zero |= dims[i] == 0;
        overflow |= __builtin_mul_overflow(n, dims[i], &n);
    }
    return zero ? 0 : overflow ? -1 : n;
}

bool tensor_bytes_for(ogi_dtype dtype, int64_t numel, size_t *bytes)
{
    int bits = ogi_dtype_bits(dtype);
    if (bits == 0 || numel < 0)
        return false;
    /* Cap at 2^48 bytes: no real tensor is larger, and it keeps the
     * arithmetic below far from overflow. */
    if (numel > ((int64_t)1 << 48))
        return false;
    *bytes = (size_t)((numel * bits + 7) / 8);
    return true;
}

ogi_status tensor_set_shape(ogi_tensor *t, ogi_dtype dtype, int rank, const int64_t *dims)
{
    if (rank < 0 || rank > OGI_MAX_RANK)
        return ogi_error(OGI_ERR_INVALID_ARGUMENT, "rank %d outside [0, %d]", rank, OGI_MAX_RANK);
    int64_t numel = tensor_shape_numel(rank, dims);
    if (numel < 0)
        return ogi_error(OGI_ERR_INVALID_ARGUMENT, "shape has a negative dim or too many elements");
    size_t bytes;
    if (!tensor_bytes_for(dtype, numel, &bytes))
        return ogi_error(OGI_ERR_UNSUPPORTED, "cannot size %lld elements of dtype %s",
                         (long long)numel, ogi_dtype_name(dtype));
    t->dtype = dtype;
    t->rank = rank;
    for (int i = 0; i < rank; i++)
        t->dims[i] = dims[i];
    t->nbytes = bytes;
    return OGI_OK;
}

ogi_status tensor_alloc_owned(ogi_tensor *t)
{
    /* calloc(0) may return NULL; allocate at least one byte so that data is
     * always a valid pointer. */
    t->data = calloc(1, t->nbytes ? t->nbytes : 1);
    if (t->data == NULL)
        return ogi_error(OGI_ERR_OUT_OF_MEMORY, "cannot allocate %zu bytes", t->nbytes);
    t->storage = TENSOR_OWNED;
    return OGI_OK;
}

void tensor_release(ogi_tensor *t)
{
    if (t->kind != TENSOR_KIND_TENSOR) {
        if (t->storage == TENSOR_OWNED) {
            for (int64_t i = 0; i < t->n_items; i++)
                ogi_tensor_free(t->items[i]);
            free(t->items);
        }
        t->items = NULL;
        t->n_items = 0;
        t->kind = TENSOR_KIND_TENSOR;
        t->data = NULL;
        t->storage = TENSOR_BORROWED;
        return;
    }
    if (t->storage == TENSOR_OWNED && t->dtype == OGI_STRING && t->data != NULL) {
        ogi_string *s = t->data;
        size_t n = t->nbytes / sizeof(ogi_string);
        for (size_t i = 0; i < n; i++)
            free(s[i].data);
    }
    if (t->storage == TENSOR_OWNED)
        free(t->data);
    t->data = NULL;
    t->storage = TENSOR_BORROWED;
}

/* ---- string tensors -------------------------------------------------------- */

ogi_status tensor_set_string_shape(ogi_tensor *t, int rank, const int64_t *dims)
{
    if (rank < 0 || rank > OGI_MAX_RANK)
        return ogi_error(OGI_ERR_INVALID_ARGUMENT, "rank %d outside [0, %d]", rank, OGI_MAX_RANK);
    int64_t numel = tensor_shape_numel(rank, dims);
    /* the same 2^48-byte cap as tensor_bytes_for */
    if (numel < 0 || numel > ((int64_t)1 << 48) / (int64_t)sizeof(ogi_string))
        return ogi_error(OGI_ERR_INVALID_ARGUMENT, "shape has a negative dim or too many elements");
    t->dtype = OGI_STRING;
    t->rank = rank;
    for (int i = 0; i < rank; i++)
        t->dims[i] = dims[i];
    t->nbytes = (size_t)numel * sizeof(ogi_string);
    return OGI_OK;
}

ogi_status tensor_alloc_strings(ogi_tensor *t, int rank, const int64_t *dims)
{
    ogi_status st = tensor_set_string_shape(t, rank, dims);
    if (st != OGI_OK)
        return st;
    /* calloc: every element starts as {NULL, 0}, the empty string */
    t->data = calloc(1, t->nbytes ? t->nbytes : 1);
    if (t->data == NULL)
        return ogi_error(OGI_ERR_OUT_OF_MEMORY, "cannot allocate %zu bytes", t->nbytes);
    t->storage = TENSOR_OWNED;
    return OGI_OK;
}

ogi_status tensor_string_set(ogi_tensor *t, int64_t i, const char *bytes, size_t len)
{
    if (t->dtype != OGI_STRING || t->storage != TENSOR_OWNED || i < 0 ||
        (size_t)i >= t->nbytes / sizeof(ogi_string) || len == SIZE_MAX)
        return ogi_error(OGI_ERR_INVALID_ARGUMENT, "string element %lld cannot be set",
                         (long long)i);
    char *copy = malloc(len + 1);
    if (copy == NULL)
        return ogi_error(OGI_ERR_OUT_OF_MEMORY, "cannot allocate a string of %zu bytes", len);
    if (len > 0)
        memcpy(copy, bytes, len);
    copy[len] = '\0';
    ogi_string *s = &((ogi_string *)t->data)[i];
    free(s->data);
    s->data = copy;
    s->len = len;
    return OGI_OK;
}

bool tensor_string_equal(const ogi_string *a, const ogi_string *b)
{
    return a->len == b->len && (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

static ogi_status tensor_clone_strings(const ogi_tensor *src, ogi_tensor *t)
{
    ogi_status st = tensor_alloc_strings(t, src->rank, src->dims);
    const ogi_string *s = src->data;
    int64_t n = tensor_numel(t);
    for (int64_t i = 0; i < n && st == OGI_OK; i++)
        st = tensor_string_set(t, i, s[i].data, s[i].len);
    if (st != OGI_OK)
        tensor_release(t);
    return st;
}

/* ---- sequences and optionals ---------------------------------------------- */

ogi_status tensor_init_container(ogi_tensor *t, tensor_kind kind, ogi_dtype elem, int64_t cap)
{
    memset(t, 0, sizeof(*t));
    t->kind = kind;
    t->dtype = elem;
    t->storage = TENSOR_OWNED;
    if (cap < 0 || cap > INT32_MAX)
        return ogi_error(OGI_ERR_INVALID_ARGUMENT, "a sequence of %lld items", (long long)cap);
    t->items = calloc((size_t)cap + 1, sizeof(*t->items));
    if (t->items == NULL)
        return ogi_error(OGI_ERR_OUT_OF_MEMORY, "out of memory");
    return OGI_OK;
}

ogi_status tensor_add_item(ogi_tensor *t, ogi_tensor *item)
{
    if (t->kind == TENSOR_KIND_OPTIONAL && t->n_items > 0) {
        ogi_tensor_free(item);
        return ogi_error(OGI_ERR_INVALID_ARGUMENT, "an optional holds at most one value");
    }
    ogi_tensor **items = realloc(t->items, (size_t)(t->n_items + 2) * sizeof(*items));
    if (items == NULL) {
        ogi_tensor_free(item);
        return ogi_error(OGI_ERR_OUT_OF_MEMORY, "out of memory");
    }
    t->items = items;
    t->items[t->n_items++] = item;
    if (t->dtype == OGI_DTYPE_UNDEFINED)
        t->dtype = item->dtype;
    return OGI_OK;
}

static ogi_status tensor_clone_container(const ogi_tensor *src, ogi_tensor *t)
{
    ogi_status st = tensor_init_container(t, src->kind, src->dtype, src->n_items);
    for (int64_t i = 0; i < src->n_items && st == OGI_OK; i++) {
        ogi_tensor *item;
        st = tensor_clone(src->items[i], &item);
        if (st == OGI_OK)
            st = tensor_add_item(t, item);
    }
    if (st != OGI_OK)
        tensor_release(t);
    return st;
}

ogi_status tensor_clone(const ogi_tensor *src, ogi_tensor **out)
{
    ogi_tensor *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return ogi_error(OGI_ERR_OUT_OF_MEMORY, "out of memory");
    if (src->kind != TENSOR_KIND_TENSOR) {
        ogi_status st = tensor_clone_container(src, t);
        if (st != OGI_OK) {
            free(t);
            return st;
        }
        *out = t;
        return OGI_OK;
    }
    if (src->dtype == OGI_STRING) {
        ogi_status st = tensor_clone_strings(src, t);
        if (st != OGI_OK) {
            free(t);
            return st;
        }
        *out = t;
        return OGI_OK;
    }
    ogi_status st = tensor_set_shape(t, src->dtype, src->rank, src->dims);
    if (st == OGI_OK)
        st = tensor_alloc_owned(t);
    if (st != OGI_OK) {
        free(t);
        return st;
    }
    if (src->nbytes)
        memcpy(t->data, src->data, src->nbytes);
    *out = t;
    return OGI_OK;
}

const char *tensor_shape_str(int rank, const int64_t *dims, char *buf, size_t size)
{
    size_t used = 0;
    used += (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < rank && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, i ? ",%lld" : "%lld", (long long)dims[i]);
    if (used < size)
        snprintf(buf + used, size - used, "]");
    return buf;
}

void tensor_strides(int rank, const int64_t *dims, int64_t *strides)
{
    int64_t s = 1;
    for (int i = rank - 1; i >= 0; i--) {
        strides[i] = s;
        s *= dims[i];
    }
}

void tensor_load_f64(const ogi_tensor *t, int64_t off, int64_t n, double *dst)
{
    if (t->dtype == OGI_FLOAT32) {
        const float *src = (const float *)t->data + off;
        for (int64_t k = 0; k < n; k++)
            dst[k] = src[k];
    } else if (t->dtype == OGI_FLOAT64) {
        memcpy(dst, (const double *)t->data + off, (size_t)n * sizeof(double));
    } else {
        for (int64_t k = 0; k < n; k++)
            dst[k] = dtype_get_f64(t->data, t->dtype, off + k);
    }
}

void tensor_store_f64(ogi_tensor *t, int64_t off, int64_t n, const double *src)
{
    if (t->dtype == OGI_FLOAT32) {
        float *dst = (float *)t->data + off;
        for (int64_t k = 0; k < n; k++)
            dst[k] = (float)src[k];
    } else {
        for (int64_t k = 0; k < n; k++)
            dtype_set_f64(t->data, t->dtype, off + k, src[k]);
    }
}

bool tensor_same_shape(const ogi_tensor *a, const ogi_tensor *b)
{
    if (a->rank != b->rank)
        return false;
    for (int i = 0; i < a->rank; i++)
        if (a->dims[i] != b->dims[i])
            return false;
    return true;
}

/* ---- public API ---------------------------------------------------------- */

ogi_status ogi_tensor_create(ogi_dtype dtype, int rank, const int64_t *dims, ogi_tensor **out)
{
    if (out == NULL || (rank > 0 && dims == NULL))
        return ogi_error(OGI_ERR_INVALID_ARGUMENT, "ogi_tensor_create: NULL argument");
    ogi_tensor *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return ogi_error(OGI_ERR_OUT_OF_MEMORY, "out of memory");
    ogi_status st = tensor_set_shape(t, dtype, rank, dims);
    if (st == OGI_OK)
        st = tensor_alloc_owned(t);
    if (st != OGI_OK) {
        free(t);
        return st;
    }
    *out = t;
    return OGI_OK;
}

void ogi_tensor_free(ogi_tensor *tensor)
{
    if (tensor == NULL)
        return;
    tensor_release(tensor);
    free(tensor);
}

ogi_dtype ogi_tensor_dtype(const ogi_tensor *tensor)
{
    return tensor->dtype;
}

int ogi_tensor_rank(const ogi_tensor *tensor)
{
    return tensor->rank;
}

const int64_t *ogi_tensor_dims(const ogi_tensor *tensor)
{
    return tensor->dims;
}

int64_t ogi_tensor_numel(const ogi_tensor *tensor)
{
    return tensor_numel(tensor);
}

size_t ogi_tensor_nbytes(const ogi_tensor *tensor)
{
    return tensor->nbytes;
}

void *ogi_tensor_data(ogi_tensor *tensor)
{
    return tensor->data;
}

float *tensor_f16_widen(const ogi_tensor *x, bool *oom)
{
    if (x == NULL)
        return NULL;
    const int64_t n = tensor_numel(x);
    float *f = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    if (f == NULL) {
        *oom = true;
        return NULL;
    }
    const uint16_t *h = x->data;
    for (int64_t i = 0; i < n; i++)
        f[i] = dtype_f16_to_f32(h[i]);
    return f;
}

void tensor_f16_narrow(const float *f, int64_t n, void *out)
{
    uint16_t *h = out;
    for (int64_t i = 0; i < n; i++)
        h[i] = dtype_f32_to_f16(f[i]);
}
