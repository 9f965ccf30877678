/* Decodes ONNX ModelProto from the protobuf wire format. Each message is
 * read twice: once to count its repeated fields, once to fill arrays of
 * exactly that size from the model's pool. Field numbers follow onnx.proto. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/dtype.h"
#include "core/error.h"
#include "onnx/onnx.h"
#include "onnx/pb.h"
#include "onnx/pool.h"

enum { ONNX_MAX_DEPTH = 32, ONNX_MAX_MAPPINGS = 64 };

typedef struct onnx_mapping {
    char *path;
    void *data;
    size_t size;
} onnx_mapping;

struct onnx_private {
    pool pool;
    const char *base_dir; /* NULL: external data not allowed */
    bool skip_external;   /* record external references without opening them */
    onnx_mapping main;    /* the model file itself */
    int n_mappings;
    onnx_mapping mappings[ONNX_MAX_MAPPINGS];
};

typedef struct reader {
    onnx_model *model;
    pool *pool;
    int depth;
} reader;

static ogi_status reader_bad(const char *what)
{
    return ogi_error(OGI_ERR_INVALID_MODEL, "malformed protobuf in %s (truncated or corrupt)",
                     what);
}

static ogi_status reader_oom(void)
{
    return ogi_error(OGI_ERR_OUT_OF_MEMORY, "out of memory while reading the model");
}

static const char *reader_string(reader *r, pb_cursor *c, size_t *len)
{
    pb_cursor s = pb_bytes(c);
    if (s.bad)
        return NULL;
    if (len)
        *len = (size_t)(s.end - s.p);
    return pool_strndup(r->pool, s.p, (size_t)(s.end - s.p));
}

/* Counts occurrences of each field number below 32 in a message. */
static bool reader_count(pb_cursor c, int counts[32])
{
    uint32_t field, wire;
    memset(counts, 0, 32 * sizeof(int));
    while (pb_key(&c, &field, &wire)) {
        if (field < 32 && counts[field] < INT_MAX)
            counts[field]++;
        pb_skip(&c, wire);
    }
    return !c.bad;
}

/* Counts the elements of a repeated scalar field that may be packed:
 * varints (elem_bytes 0) or fixed-size elements. */
static bool reader_count_scalars(pb_cursor c, uint32_t want, int elem_bytes, int64_t *n)
{
    uint32_t field, wire;
    *n = 0;
    while (pb_key(&c, &field, &wire)) {
        if (field != want) {
            pb_skip(&c, wire);
            continue;
        }
        if (wire == PB_LEN) {
            pb_cursor s = pb_bytes(&c);
            if (s.bad)
                return false;
            if (elem_bytes) {
                if ((s.end - s.p) % elem_bytes)
                    return false;
                *n += (s.end - s.p) / elem_bytes;
            } else {
                while (pb_more(&s)) {
                    pb_varint(&s);
                    (*n)++;
                }
                if (s.bad)
                    return false;
            }
        } else {
            pb_skip(&c, wire);
            (*n)++;
        }
    }
    return !c.bad;
}

/* Reads the next element(s) of a repeated scalar field into out[*i...]. */
static void reader_scalars(pb_cursor *c, uint32_t wire, int elem_bytes, uint64_t *out, int64_t *i,
                           int64_t cap)
{
    if (wire == PB_LEN) {
        pb_cursor s = pb_bytes(c);
        while (pb_more(&s) && *i < cap) {
            if (elem_bytes == 4)
                out[(*i)++] = pb_fixed32(&s);
            else if (elem_bytes == 8)
                out[(*i)++] = pb_fixed64(&s);
            else
                out[(*i)++] = pb_varint(&s);
        }
        if (s.bad)
            c->bad = true;
        return;
    }
    uint64_t v = wire == PB_FIXED32   ? pb_fixed32(c)
                 : wire == PB_FIXED64 ? pb_fixed64(c)
                                      : pb_varint(c);
    if (*i < cap)
        out[(*i)++] = v;
}

/* Reads a whole repeated scalar field of message m into a new array. */
static ogi_status reader_scalar_array(reader *r, pb_cursor m, uint32_t want, int elem_bytes,
                                      uint64_t **out, int64_t *n)
{
    if (!reader_count_scalars(m, want, elem_bytes, n))
        return reader_bad("a repeated field");
    *out = pool_alloc_array(r->pool, (size_t)*n, sizeof(uint64_t));
    if (*out == NULL)
        return reader_oom();
    int64_t i = 0;
    uint32_t field, wire;
    while (pb_key(&m, &field, &wire)) {
        if (field == want)
            reader_scalars(&m, wire, elem_bytes, *out, &i, *n);
        else
            pb_skip(&m, wire);
    }
    return m.bad ? reader_bad("a repeated field") : OGI_OK;
}

/* ---- external data --------------------------------------------------------- */

static ogi_status reader_map_file(const char *path, onnx_mapping *m)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ogi_error(OGI_ERR_IO, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return ogi_error(OGI_ERR_IO, "%s: not a regular file", path);
    }
    m->size = (size_t)st.st_size;
    m->data = NULL;
    if (m->size > 0) {
        m->data = mmap(NULL, m->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m->data == MAP_FAILED) {
            m->data = NULL;
            close(fd);
            return ogi_error(OGI_ERR_IO, "%s: mmap failed: %s", path, strerror(errno));
        }
    }
    close(fd);
    return OGI_OK;
}

static void reader_unmap(onnx_mapping *m)
{
    if (m->data != NULL)
        munmap(m->data, m->size);
    free(m->path);
    m->data = NULL;
    m->path = NULL;
}

/* A location is confined to the model's directory: relative, no "..", and
 * its real path (symlinks resolved) inside the directory's real path. */
static ogi_status reader_external_path(reader *r, const char *location, char **out)
{
    const char *base = r->model->priv->base_dir;
    if (base == NULL)
        return ogi_error(OGI_ERR_INVALID_MODEL, "external data '%s' but the model has no directory",
                         location);
    if (location[0] == '\0' || location[0] == '/')
        return ogi_error(OGI_ERR_INVALID_MODEL,
                         "external data location '%s' must be a relative path", location);
    for (const char *p = location; *p;) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        if (len == 2 && p[0] == '.' && p[1] == '.')
            return ogi_error(OGI_ERR_INVALID_MODEL,
                             "external data location '%s' leaves the model directory", location);
        p += len + (slash != NULL);
    }
    char joined[PATH_MAX];
    if (snprintf(joined, sizeof(joined), "%s/%s", base, location) >= (int)sizeof(joined))
        return ogi_error(OGI_ERR_INVALID_MODEL, "external data path too long");
    char real_base[PATH_MAX], real_file[PATH_MAX];
    if (realpath(base, real_base) == NULL)
        return ogi_error(OGI_ERR_IO, "%s: %s", base, strerror(errno));
    if (realpath(joined, real_file) == NULL)
        return ogi_error(OGI_ERR_IO, "external data %s: %s", joined, strerror(errno));
    size_t n = strlen(real_base);
    if (strncmp(real_file, real_base, n) != 0 || (real_file[n] != '/' && real_base[n - 1] != '/'))
        return ogi_error(OGI_ERR_INVALID_MODEL,
                         "external data '%s' resolves outside the model directory", location);
    *out = strdup(real_file);
    return *out ? OGI_OK : reader_oom();
}

static ogi_status reader_external_mapping(reader *r, const char *location, onnx_mapping **out)
{
    struct onnx_private *priv = r->model->priv;
    char *path;
    ogi_status st = reader_external_path(r, location, &path);
    if (st != OGI_OK)
        return st;
    for (int i = 0; i < priv->n_mappings; i++) {
        if (strcmp(priv->mappings[i].path, path) == 0) {
            free(path);
            *out = &priv->mappings[i];
            return OGI_OK;
        }
    }
    if (priv->n_mappings == ONNX_MAX_MAPPINGS) {
        free(path);
        return ogi_error(OGI_ERR_UNSUPPORTED, "more than %d external data files",
                         ONNX_MAX_MAPPINGS);
    }
    onnx_mapping *m = &priv->mappings[priv->n_mappings];
    st = reader_map_file(path, m);
    if (st != OGI_OK) {
        free(path);
        return st;
    }
    m->path = path;
    priv->n_mappings++;
    *out = m;
    return OGI_OK;
}

typedef struct external_ref {
    const char *location;
    int64_t offset, length; /* -1 when absent */
} external_ref;

static ogi_status reader_external_entry(reader *r, pb_cursor e, external_ref *ref)
{
    const char *key = NULL, *value = NULL;
    uint32_t field, wire;
    while (pb_key(&e, &field, &wire)) {
        if (field == 1 && wire == PB_LEN)
            key = reader_string(r, &e, NULL);
        else if (field == 2 && wire == PB_LEN)
            value = reader_string(r, &e, NULL);
        else
            pb_skip(&e, wire);
    }
    if (e.bad || key == NULL || value == NULL)
        return reader_bad("external_data entry");
    if (strcmp(key, "location") == 0) {
        ref->location = value;
    } else if (strcmp(key, "offset") == 0 || strcmp(key, "length") == 0) {
        char *end;
        errno = 0;
        long long v = strtoll(value, &end, 10);
        if (errno || *end != '\0' || end == value || v < 0)
            return ogi_error(OGI_ERR_INVALID_MODEL, "external data %s '%s' is not a valid size",
                             key, value);
        if (key[0] == 'o')
            ref->offset = v;
        else
            ref->length = v;
    }
    return OGI_OK;
}

static ogi_status reader_external_data(reader *r, onnx_tensor *t, const external_ref *ref)
{
    if (ref->location == NULL)
        return ogi_error(OGI_ERR_INVALID_MODEL, "tensor '%s': external data without location",
                         t->name);
    t->external = true;
    t->external_location = ref->location;
    t->external_offset = ref->offset < 0 ? 0 : (uint64_t)ref->offset;
    t->external_length = ref->length < 0 ? t->tensor.nbytes : (uint64_t)ref->length;
    if (r->model->priv->skip_external)
        return OGI_OK;
    onnx_mapping *m = NULL;
    ogi_status st = reader_external_mapping(r, ref->location, &m);
    if (st != OGI_OK)
        return ogi_error_prefix(st, "tensor '%s'", t->name);
    uint64_t offset = ref->offset < 0 ? 0 : (uint64_t)ref->offset;
    uint64_t length = ref->length < 0 ? t->tensor.nbytes : (uint64_t)ref->length;
    if (length != t->tensor.nbytes)
        return ogi_error(OGI_ERR_INVALID_MODEL,
                         "tensor '%s': external data length %llu, but its shape needs %zu bytes",
                         t->name, (unsigned long long)length, t->tensor.nbytes);
    if (offset > m->size || length > m->size - offset)
        return ogi_error(OGI_ERR_INVALID_MODEL,
                         "tensor '%s': external data [%llu, +%llu) lies beyond the end of %s "
                         "(%zu bytes)",
                         t->name, (unsigned long long)offset, (unsigned long long)length,
                         ref->location, m->size);
    t->tensor.data = length ? (char *)m->data + offset : NULL;
    return OGI_OK;
}

/* ---- tensors --------------------------------------------------------------- */

/* Borrows bytes when suitably aligned for the element type, else copies
 * them into the pool (kernels read elements through typed pointers). */
static void *reader_aligned(reader *r, const void *p, size_t n, ogi_dtype dtype)
{
    int align = dtype_size(dtype);
    if (align <= 1 || ((uintptr_t)p % (uintptr_t)align) == 0)
        return (void *)p;
    void *copy = pool_alloc(r->pool, n);
    if (copy != NULL)
        memcpy(copy, p, n);
    return copy;
}

/* Fills the tensor from one of the typed repeated fields. */
static ogi_status reader_typed_data(reader *r, pb_cursor m, onnx_tensor *t, uint32_t field,
                                    int64_t numel)
{
    ogi_tensor *x = &t->tensor;
    int elem_bytes = field == 4 ? 4 : field == 10 ? 8 : 0;
    uint64_t *vals;
    int64_t n;
    ogi_status st = reader_scalar_array(r, m, field, elem_bytes, &vals, &n);
    if (st != OGI_OK)
        return st;
    int bits = ogi_dtype_bits(x->dtype);
    int64_t expect = bits < 8 ? (int64_t)x->nbytes : numel; /* sub-byte: one byte per entry */
    if (n != expect)
        return ogi_error(OGI_ERR_INVALID_MODEL, "tensor '%s': %lld values for %lld elements",
                         t->name, (long long)n, (long long)expect);
    void *data = pool_alloc(r->pool, x->nbytes ? x->nbytes : 1);
    if (data == NULL)
        return reader_oom();
    for (int64_t i = 0; i < n; i++) {
        uint64_t v = vals[i];
        if (bits < 8 || bits == 8)
            ((uint8_t *)data)[i] = (uint8_t)v;
        else if (bits == 16)
            ((uint16_t *)data)[i] = (uint16_t)v;
        else if (bits == 32)
            ((uint32_t *)data)[i] = (uint32_t)v;
        else if (bits == 64)
            ((uint64_t *)data)[i] = v;
    }
    x->data = data;
    return OGI_OK;
}

/* Fills a string tensor from string_data (field 6, one bytes entry per
 * element). The elements are NUL-terminated copies in the pool. */
static ogi_status reader_string_data(reader *r, pb_cursor m, onnx_tensor *t, int rank,
                                     const int64_t *dims)
{
    ogi_status st = tensor_set_string_shape(&t->tensor, rank, dims);
    if (st != OGI_OK)
        return ogi_error_prefix(st, "tensor '%s'", t->name);
    t->tensor.storage = TENSOR_BORROWED;
    int64_t numel = tensor_numel(&t->tensor), n = 0;
    uint32_t field, wire;
    pb_cursor c = m;
    while (pb_key(&c, &field, &wire)) {
        if (field == 6 && wire == PB_LEN)
            n++;
        pb_skip(&c, wire);
    }
    if (c.bad)
        return reader_bad("TensorProto string_data");
    if (n != numel)
        return ogi_error(OGI_ERR_INVALID_MODEL, "tensor '%s': %lld strings for %lld elements",
                         t->name, (long long)n, (long long)numel);
    if (numel == 0)
        return OGI_OK;
    /* numel is bounded by the message size, so this allocation is too */
    ogi_string *elems = pool_alloc_array(r->pool, (size_t)numel, sizeof(ogi_string));
    if (elems == NULL)
        return reader_oom();
    int64_t i = 0;
    c = m;
    while (pb_key(&c, &field, &wire)) {
        if (field != 6 || wire != PB_LEN) {
            pb_skip(&c, wire);
            continue;
        }
        size_t len;
        const char *bytes = reader_string(r, &c, &len);
        if (bytes == NULL)
            return c.bad ? reader_bad("TensorProto string_data") : reader_oom();
        elems[i].data = (char *)bytes;
        elems[i].len = len;
        i++;
    }
    t->tensor.data = elems;
    return OGI_OK;
}

static ogi_status reader_tensor(reader *r, pb_cursor m, onnx_tensor *t)
{
    uint64_t *dims;
    int64_t rank;
    ogi_status st = reader_scalar_array(r, m, 1, 0, &dims, &rank);
    if (st != OGI_OK)
        return st;
    int data_type = 0;
    pb_cursor raw = {NULL, NULL, false};
    bool has_raw = false, external = false;
    uint32_t typed_field = 0;
    external_ref ref = {NULL, -1, -1};
    t->name = "";
    uint32_t field, wire;
    pb_cursor c = m;
    while (pb_key(&c, &field, &wire)) {
        if (field == 2 && wire == PB_VARINT) {
            data_type = (int)pb_varint(&c);
        } else if (field == 8 && wire == PB_LEN) {
            t->name = reader_string(r, &c, NULL);
        } else if (field == 9 && wire == PB_LEN) {
            raw = pb_bytes(&c);
            has_raw = true;
        } else if (field == 14 && wire == PB_VARINT) {
            external = pb_varint(&c) == 1;
        } else if (field == 13 && wire == PB_LEN) {
            st = reader_external_entry(r, pb_bytes(&c), &ref);
            if (st != OGI_OK)
                return st;
        } else if (field == 3) {
            return ogi_error(OGI_ERR_UNSUPPORTED, "segmented tensors are not supported");
        } else {
            if (field == 4 || field == 5 || field == 7 || field == 10 || field == 11)
                typed_field = field;
            if (field == 6)
                typed_field = 6;
            pb_skip(&c, wire);
        }
    }
    if (c.bad || t->name == NULL)
        return reader_bad("TensorProto");
    if (rank > OGI_MAX_RANK)
        return ogi_error(OGI_ERR_UNSUPPORTED, "tensor '%s': rank %lld exceeds %d", t->name,
                         (long long)rank, OGI_MAX_RANK);
    int64_t d[OGI_MAX_RANK];
    for (int i = 0; i < rank; i++) {
        if (dims[i] > (uint64_t)INT64_MAX)
            return ogi_error(OGI_ERR_INVALID_MODEL, "tensor '%s': negative dim", t->name);
        d[i] = (int64_t)dims[i];
    }
    if (!dtype_is_valid(data_type))
        return ogi_error(OGI_ERR_INVALID_MODEL, "tensor '%s': unknown data type %d", t->name,
                         data_type);
    if (data_type == OGI_STRING) {
        if (external || has_raw)
            return ogi_error(OGI_ERR_INVALID_MODEL,
                             "tensor '%s': string tensors keep their data in string_data", t->name);
        return reader_string_data(r, m, t, (int)rank, d);
    }
    if (data_type == OGI_COMPLEX64 || data_type == OGI_COMPLEX128)
        return ogi_error(OGI_ERR_UNSUPPORTED, "tensor '%s': dtype %s is not supported", t->name,
                         ogi_dtype_name((ogi_dtype)data_type));
    int64_t numel = tensor_shape_numel((int)rank, d);
    size_t nbytes;
    if (numel < 0 || !tensor_bytes_for((ogi_dtype)data_type, numel, &nbytes))
        return ogi_error(OGI_ERR_INVALID_MODEL, "tensor '%s': shape has too many elements",
                         t->name);
    st = tensor_set_shape(&t->tensor, (ogi_dtype)data_type, (int)rank, d);
    if (st != OGI_OK)
        return ogi_error_prefix(st, "tensor '%s'", t->name);
    t->tensor.storage = TENSOR_BORROWED;
    if (external)
        return reader_external_data(r, t, &ref);
    if (has_raw) {
        if (raw.bad || (size_t)(raw.end - raw.p) != nbytes)
            return ogi_error(OGI_ERR_INVALID_MODEL,
                             "tensor '%s': raw_data has %zu bytes, its shape needs %zu", t->name,
                             (size_t)(raw.end - raw.p), nbytes);
        t->tensor.data = nbytes ? reader_aligned(r, raw.p, nbytes, (ogi_dtype)data_type) : NULL;
        if (nbytes && t->tensor.data == NULL)
            return reader_oom();
        return OGI_OK;
    }
    if (typed_field == 0) {
        if (numel != 0)
            return ogi_error(OGI_ERR_INVALID_MODEL, "tensor '%s' has no data", t->name);
        return OGI_OK;
    }
    return reader_typed_data(r, m, t, typed_field, numel);
}

/* ---- value infos ----------------------------------------------------------- */

static ogi_status reader_shape(reader *r, pb_cursor m, onnx_value_info *v)
{
    int counts[32];
    if (!reader_count(m, counts))
        return reader_bad("TensorShapeProto");
    v->rank = counts[1];
    if (v->rank > OGI_MAX_RANK)
        return ogi_error(OGI_ERR_UNSUPPORTED, "value '%s': rank %d exceeds %d", v->name, v->rank,
                         OGI_MAX_RANK);
    v->dims = pool_alloc_array(r->pool, (size_t)v->rank, sizeof(onnx_dim));
    if (v->dims == NULL)
        return reader_oom();
    int i = 0;
    uint32_t field, wire;
    while (pb_key(&m, &field, &wire)) {
        if (field != 1 || wire != PB_LEN) {
            pb_skip(&m, wire);
            continue;
        }
        pb_cursor d = pb_bytes(&m);
        onnx_dim *dim = &v->dims[i++];
        dim->value = -1;
        while (pb_key(&d, &field, &wire)) {
            if (field == 1 && wire == PB_VARINT) {
                uint64_t x = pb_varint(&d);
                dim->value = x > (uint64_t)INT64_MAX ? -1 : (int64_t)x;
            } else if (field == 2 && wire == PB_LEN) {
                dim->param = reader_string(r, &d, NULL);
            } else {
                pb_skip(&d, wire);
            }
        }
        if (d.bad)
            m.bad = true;
    }
    return m.bad ? reader_bad("TensorShapeProto") : OGI_OK;
}

static ogi_status reader_type(reader *r, pb_cursor m, onnx_value_info *v)
{
    uint32_t field, wire;
    while (pb_key(&m, &field, &wire)) {
        if (wire != PB_LEN) {
            pb_skip(&m, wire);
            continue;
        }
        pb_cursor t = pb_bytes(&m);
        if (field == 1) {
            v->kind = ONNX_VALUE_TENSOR;
            uint32_t f2, w2;
            while (pb_key(&t, &f2, &w2)) {
                if (f2 == 1 && w2 == PB_VARINT) {
                    uint64_t e = pb_varint(&t);
                    v->elem_type = dtype_is_valid((int)e) ? (ogi_dtype)e : OGI_DTYPE_UNDEFINED;
                } else if (f2 == 2 && w2 == PB_LEN) {
                    ogi_status st = reader_shape(r, pb_bytes(&t), v);
                    if (st != OGI_OK)
                        return st;
                } else {
                    pb_skip(&t, w2);
                }
            }
            if (t.bad)
                return reader_bad("TypeProto");
        } else if (field == 4) {
            v->kind = ONNX_VALUE_SEQUENCE;
        } else if (field == 5) {
            v->kind = ONNX_VALUE_MAP;
        } else if (field == 9) {
            v->kind = ONNX_VALUE_OPTIONAL;
        } else if (field == 8) {
            v->kind = ONNX_VALUE_SPARSE_TENSOR;
        }
    }
    return m.bad ? reader_bad("TypeProto") : OGI_OK;
}

static ogi_status reader_value_info(reader *r, pb_cursor m, onnx_value_info *v)
{
    v->name = "";
    v->rank = -1;
    uint32_t field, wire;
    while (pb_key(&m, &field, &wire)) {
        if (field == 1 && wire == PB_LEN) {
            v->name = reader_string(r, &m, NULL);
        } else if (field == 2 && wire == PB_LEN) {
            ogi_status st = reader_type(r, pb_bytes(&m), v);
            if (st != OGI_OK)
                return st;
        } else {
            pb_skip(&m, wire);
        }
    }
    return m.bad || v->name == NULL ? reader_bad("ValueInfoProto") : OGI_OK;
}

/* ---- nodes and attributes --------------------------------------------------- */

static ogi_status reader_graph(reader *r, pb_cursor m, onnx_graph *g);

static ogi_status reader_subgraph(reader *r, pb_cursor m, onnx_graph **out)
{
    if (r->depth >= ONNX_MAX_DEPTH)
        return ogi_error(OGI_ERR_INVALID_MODEL, "subgraphs nested deeper than %d", ONNX_MAX_DEPTH);
    *out = pool_alloc(r->pool, sizeof(onnx_graph));
    if (*out == NULL)
        return reader_oom();
    r->depth++;
    ogi_status st = reader_graph(r, m, *out);
    r->depth--;
    return st;
}

static ogi_status reader_attr_lists(reader *r, pb_cursor m, onnx_attr *a, const int counts[32])
{
    uint64_t *vals;
    int64_t n;
    ogi_status st = reader_scalar_array(r, m, 7, 4, &vals, &n);
    if (st != OGI_OK)
        return st;
    if (n > 0) {
        a->floats = pool_alloc_array(r->pool, (size_t)n, sizeof(float));
        if (a->floats == NULL)
            return reader_oom();
        for (int64_t i = 0; i < n; i++) {
            uint32_t bits = (uint32_t)vals[i];
            memcpy(&a->floats[i], &bits, 4);
        }
        a->n = n;
        if (a->type == ONNX_ATTR_UNDEFINED)
            a->type = ONNX_ATTR_FLOATS;
    }
    st = reader_scalar_array(r, m, 8, 0, &vals, &n);
    if (st != OGI_OK)
        return st;
    if (n > 0 || a->type == ONNX_ATTR_INTS) {
        a->ints = (int64_t *)vals;
        if (a->type == ONNX_ATTR_INTS || (a->type == ONNX_ATTR_UNDEFINED && n > 0)) {
            a->n = n;
            a->type = ONNX_ATTR_INTS;
        }
    }
    int ns = counts[9], nt = counts[10], ng = counts[11];
    a->strings = pool_alloc_array(r->pool, (size_t)ns, sizeof(char *));
    a->tensors = pool_alloc_array(r->pool, (size_t)nt, sizeof(onnx_tensor));
    a->graphs = pool_alloc_array(r->pool, (size_t)ng, sizeof(onnx_graph *));
    if (a->strings == NULL || a->tensors == NULL || a->graphs == NULL)
        return reader_oom();
    int is = 0, it = 0, ig = 0;
    uint32_t field, wire;
    while (pb_key(&m, &field, &wire)) {
        if (field == 9 && wire == PB_LEN) {
            a->strings[is++] = reader_string(r, &m, NULL);
        } else if (field == 10 && wire == PB_LEN) {
            st = reader_tensor(r, pb_bytes(&m), &a->tensors[it++]);
        } else if (field == 11 && wire == PB_LEN) {
            st = reader_subgraph(r, pb_bytes(&m), &a->graphs[ig++]);
        } else {
            pb_skip(&m, wire);
        }
        if (st != OGI_OK)
            return st;
    }
    if (m.bad)
        return reader_bad("AttributeProto");
    if (a->type == ONNX_ATTR_STRINGS || (a->type == ONNX_ATTR_UNDEFINED && ns))
        a->n = ns, a->type = ONNX_ATTR_STRINGS;
    if (a->type == ONNX_ATTR_TENSORS || (a->type == ONNX_ATTR_UNDEFINED && nt))
        a->n = nt, a->type = ONNX_ATTR_TENSORS;
    if (a->type == ONNX_ATTR_GRAPHS || (a->type == ONNX_ATTR_UNDEFINED && ng))
        a->n = ng, a->type = ONNX_ATTR_GRAPHS;
    return OGI_OK;
}

static ogi_status reader_attr(reader *r, pb_cursor m, onnx_attr *a)
{
    int counts[32];
    if (!reader_count(m, counts))
        return reader_bad("AttributeProto");
    a->name = "";
    ogi_status st = OGI_OK;
    uint32_t field, wire;
    pb_cursor c = m;
    /* the declared type first, so the lists below know what they fill */
    while (pb_key(&c, &field, &wire)) {
        if (field == 20 && wire == PB_VARINT)
            a->type = (onnx_attr_type)pb_varint(&c);
        else
            pb_skip(&c, wire);
    }
    c = m;
    onnx_attr_type seen = ONNX_ATTR_UNDEFINED;
    while (pb_key(&c, &field, &wire)) {
        if (field == 1 && wire == PB_LEN) {
            a->name = reader_string(r, &c, NULL);
        } else if (field == 21 && wire == PB_LEN) {
            a->ref_attr_name = reader_string(r, &c, NULL);
        } else if (field == 2 && wire == PB_FIXED32) {
            uint32_t bits = pb_fixed32(&c);
            memcpy(&a->f, &bits, 4);
            seen = ONNX_ATTR_FLOAT;
        } else if (field == 3 && wire == PB_VARINT) {
            a->i = (int64_t)pb_varint(&c);
            seen = ONNX_ATTR_INT;
        } else if (field == 4 && wire == PB_LEN) {
            a->s = reader_string(r, &c, &a->s_len);
            seen = ONNX_ATTR_STRING;
        } else if (field == 5 && wire == PB_LEN) {
            a->t = pool_alloc(r->pool, sizeof(onnx_tensor));
            st = a->t ? reader_tensor(r, pb_bytes(&c), a->t) : reader_oom();
            seen = ONNX_ATTR_TENSOR;
        } else if (field == 6 && wire == PB_LEN) {
            st = reader_subgraph(r, pb_bytes(&c), &a->g);
            seen = ONNX_ATTR_GRAPH;
        } else if (field == 22 || field == 23) {
            pb_skip(&c, wire);
            seen = ONNX_ATTR_SPARSE_TENSOR;
        } else {
            pb_skip(&c, wire);
        }
        if (st != OGI_OK)
            return ogi_error_prefix(st, "attribute '%s'", a->name ? a->name : "?");
    }
    if (c.bad || a->name == NULL)
        return reader_bad("AttributeProto");
    if (a->type == ONNX_ATTR_UNDEFINED)
        a->type = seen;
    st = reader_attr_lists(r, m, a, counts);
    if (st != OGI_OK)
        return ogi_error_prefix(st, "attribute '%s'", a->name);
    if (a->type == ONNX_ATTR_STRING && a->s == NULL)
        a->s = "";
    return OGI_OK;
}

static ogi_status reader_node(reader *r, pb_cursor m, onnx_node *n)
{
    int counts[32];
    if (!reader_count(m, counts))
        return reader_bad("NodeProto");
    n->name = "";
    n->op_type = "";
    n->domain = "";
    n->inputs = pool_alloc_array(r->pool, (size_t)counts[1], sizeof(char *));
    n->outputs = pool_alloc_array(r->pool, (size_t)counts[2], sizeof(char *));
    n->attrs = pool_alloc_array(r->pool, (size_t)counts[5], sizeof(onnx_attr));
    if (n->inputs == NULL || n->outputs == NULL || n->attrs == NULL)
        return reader_oom();
    uint32_t field, wire;
    while (pb_key(&m, &field, &wire)) {
        ogi_status st = OGI_OK;
        if (wire != PB_LEN) {
            pb_skip(&m, wire);
            continue;
        }
        switch (field) {
        case 1:
            n->inputs[n->n_inputs++] = reader_string(r, &m, NULL);
            break;
        case 2:
            n->outputs[n->n_outputs++] = reader_string(r, &m, NULL);
            break;
        case 3:
            n->name = reader_string(r, &m, NULL);
            break;
        case 4:
            n->op_type = reader_string(r, &m, NULL);
            break;
        case 7:
            n->domain = reader_string(r, &m, NULL);
            break;
        case 5:
            st = reader_attr(r, pb_bytes(&m), &n->attrs[n->n_attrs++]);
            break;
        default:
            pb_skip(&m, wire);
            break;
        }
        if (st != OGI_OK)
            return ogi_error_prefix(st, "node '%s' (%s)", n->name ? n->name : "",
                                    n->op_type ? n->op_type : "");
    }
    if (m.bad || !n->name || !n->op_type || !n->domain)
        return reader_bad("NodeProto");
    for (int i = 0; i < n->n_inputs; i++)
        if (n->inputs[i] == NULL)
            return reader_bad("NodeProto");
    for (int i = 0; i < n->n_outputs; i++)
        if (n->outputs[i] == NULL)
            return reader_bad("NodeProto");
    return OGI_OK;
}

/* ---- graphs, functions, model ------------------------------------------------ */

static ogi_status reader_graph(reader *r, pb_cursor m, onnx_graph *g)
{
    int counts[32];
    if (!reader_count(m, counts))
        return reader_bad("GraphProto");
    g->name = "";
    g->nodes = pool_alloc_array(r->pool, (size_t)counts[1], sizeof(onnx_node));
    g->initializers = pool_alloc_array(r->pool, (size_t)counts[5], sizeof(onnx_tensor));
    g->inputs = pool_alloc_array(r->pool, (size_t)counts[11], sizeof(onnx_value_info));
    g->outputs = pool_alloc_array(r->pool, (size_t)counts[12], sizeof(onnx_value_info));
    g->value_infos = pool_alloc_array(r->pool, (size_t)counts[13], sizeof(onnx_value_info));
    if (!g->nodes || !g->initializers || !g->inputs || !g->outputs || !g->value_infos)
        return reader_oom();
    g->n_sparse_initializers = counts[15];
    uint32_t field, wire;
    while (pb_key(&m, &field, &wire)) {
        ogi_status st = OGI_OK;
        if (wire != PB_LEN) {
            pb_skip(&m, wire);
            continue;
        }
        switch (field) {
        case 1:
            st = reader_node(r, pb_bytes(&m), &g->nodes[g->n_nodes++]);
            break;
        case 2:
            g->name = reader_string(r, &m, NULL);
            break;
        case 5:
            st = reader_tensor(r, pb_bytes(&m), &g->initializers[g->n_initializers++]);
            break;
        case 11:
            st = reader_value_info(r, pb_bytes(&m), &g->inputs[g->n_inputs++]);
            break;
        case 12:
            st = reader_value_info(r, pb_bytes(&m), &g->outputs[g->n_outputs++]);
            break;
        case 13:
            st = reader_value_info(r, pb_bytes(&m), &g->value_infos[g->n_value_infos++]);
            break;
        default:
            pb_skip(&m, wire);
            break;
        }
        if (st != OGI_OK)
            return st;
    }
    if (m.bad || g->name == NULL)
        return reader_bad("GraphProto");
    return OGI_OK;
}

static ogi_status reader_opset(reader *r, pb_cursor m, onnx_opset *o)
{
    o->domain = "";
    uint32_t field, wire;
    while (pb_key(&m, &field, &wire)) {
        if (field == 1 && wire == PB_LEN)
            o->domain = reader_string(r, &m, NULL);
        else if (field == 2 && wire == PB_VARINT)
            o->version = (int64_t)pb_varint(&m);
        else
            pb_skip(&m, wire);
    }
    return m.bad || o->domain == NULL ? reader_bad("OperatorSetIdProto") : OGI_OK;
}

static ogi_status reader_function(reader *r, pb_cursor m, onnx_function *f)
{
    int counts[32];
    if (!reader_count(m, counts))
        return reader_bad("FunctionProto");
    f->name = "";
    f->domain = "";
    f->inputs = pool_alloc_array(r->pool, (size_t)counts[4], sizeof(char *));
    f->outputs = pool_alloc_array(r->pool, (size_t)counts[5], sizeof(char *));
    f->attr_names = pool_alloc_array(r->pool, (size_t)counts[6], sizeof(char *));
    f->nodes = pool_alloc_array(r->pool, (size_t)counts[7], sizeof(onnx_node));
    f->opsets = pool_alloc_array(r->pool, (size_t)counts[9], sizeof(onnx_opset));
    if (!f->inputs || !f->outputs || !f->attr_names || !f->nodes || !f->opsets)
        return reader_oom();
    uint32_t field, wire;
    while (pb_key(&m, &field, &wire)) {
        ogi_status st = OGI_OK;
        if (wire != PB_LEN) {
            pb_skip(&m, wire);
            continue;
        }
        switch (field) {
        case 1:
            f->name = reader_string(r, &m, NULL);
            break;
        case 4:
            f->inputs[f->n_inputs++] = reader_string(r, &m, NULL);
            break;
        case 5:
            f->outputs[f->n_outputs++] = reader_string(r, &m, NULL);
            break;
        case 6:
            f->attr_names[f->n_attr_names++] = reader_string(r, &m, NULL);
            break;
        case 7:
            st = reader_node(r, pb_bytes(&m), &f->nodes[f->n_nodes++]);
            break;
        case 9:
            st = reader_opset(r, pb_bytes(&m), &f->opsets[f->n_opsets++]);
            break;
        case 10:
            f->domain = reader_string(r, &m, NULL);
            break;
        default:
            pb_skip(&m, wire);
            break;
        }
        if (st != OGI_OK)
            return st;
    }
    if (m.bad || !f->name || !f->domain)
        return reader_bad("FunctionProto");
    return OGI_OK;
}

static ogi_status reader_model(reader *r, pb_cursor m)
{
    onnx_model *model = r->model;
    int counts[32];
    if (!reader_count(m, counts))
        return reader_bad("ModelProto");
    model->producer_name = "";
    model->producer_version = "";
    model->opsets = pool_alloc_array(r->pool, (size_t)counts[8], sizeof(onnx_opset));
    /* field 25 (functions) is above the counted range: count it here */
    int n_functions = 0;
    uint32_t field, wire;
    pb_cursor c = m;
    while (pb_key(&c, &field, &wire)) {
        if (field == 25)
            n_functions++;
        pb_skip(&c, wire);
    }
    model->functions = pool_alloc_array(r->pool, (size_t)n_functions, sizeof(onnx_function));
    if (model->opsets == NULL || model->functions == NULL)
        return reader_oom();
    while (pb_key(&m, &field, &wire)) {
        ogi_status st = OGI_OK;
        if (field == 1 && wire == PB_VARINT) {
            model->ir_version = (int64_t)pb_varint(&m);
        } else if (field == 2 && wire == PB_LEN) {
            model->producer_name = reader_string(r, &m, NULL);
        } else if (field == 3 && wire == PB_LEN) {
            model->producer_version = reader_string(r, &m, NULL);
        } else if (field == 7 && wire == PB_LEN) {
            if (model->graph != NULL)
                return ogi_error(OGI_ERR_INVALID_MODEL, "model has two graphs");
            model->graph = pool_alloc(r->pool, sizeof(onnx_graph));
            st = model->graph ? reader_graph(r, pb_bytes(&m), model->graph) : reader_oom();
        } else if (field == 8 && wire == PB_LEN) {
            st = reader_opset(r, pb_bytes(&m), &model->opsets[model->n_opsets++]);
        } else if (field == 25 && wire == PB_LEN) {
            st = reader_function(r, pb_bytes(&m), &model->functions[model->n_functions++]);
        } else {
            pb_skip(&m, wire);
        }
        if (st != OGI_OK)
            return st;
    }
    if (m.bad || !model->producer_name || !model->producer_version)
        return reader_bad("ModelProto");
    if (model->graph == NULL)
        return ogi_error(OGI_ERR_INVALID_MODEL, "model has no graph");
    if (model->n_opsets == 0)
        return ogi_error(OGI_ERR_INVALID_MODEL, "model imports no opset");
    if (model->ir_version < 3 || model->ir_version > 13)
        return ogi_error(OGI_ERR_UNSUPPORTED, "IR version %lld is outside the supported 3-13",
                         (long long)model->ir_version);
    return OGI_OK;
}

static ogi_status onnx_model_new(const char *path, const char *base_dir, onnx_model **out)
{
    onnx_model *model = calloc(1, sizeof(*model));
    struct onnx_private *priv = calloc(1, sizeof(*priv));
    if (model == NULL || priv == NULL) {
        free(model);
        free(priv);
        return reader_oom();
    }
    model->priv = priv;
    model->path = pool_strndup(&priv->pool, path, strlen(path));
    if (base_dir != NULL)
        priv->base_dir = pool_strndup(&priv->pool, base_dir, strlen(base_dir));
    if (model->path == NULL || (base_dir != NULL && priv->base_dir == NULL)) {
        onnx_model_free(model);
        return reader_oom();
    }
    *out = model;
    return OGI_OK;
}

static ogi_status onnx_model_decode(onnx_model *model, const void *data, size_t size)
{
    reader r = {model, &model->priv->pool, 0};
    return reader_model(&r, pb_make(data, size));
}

ogi_status onnx_model_parse(const void *data, size_t size, const char *base_dir, onnx_model **out)
{
    onnx_model *model = NULL;
    ogi_status st = onnx_model_new("<memory>", base_dir, &model);
    if (st != OGI_OK)
        return st;
    st = onnx_model_decode(model, data, size);
    if (st != OGI_OK) {
        onnx_model_free(model);
        return st;
    }
    *out = model;
    return OGI_OK;
}

static ogi_status onnx_model_load_with(const char *path, bool skip_external, onnx_model **out);

ogi_status onnx_model_load(const char *path, onnx_model **out)
{
    return onnx_model_load_with(path, false, out);
}

ogi_status onnx_model_load_structure(const char *path, onnx_model **out)
{
    return onnx_model_load_with(path, true, out);
}

static ogi_status onnx_model_load_with(const char *path, bool skip_external, onnx_model **out)
{
    if (path == NULL || out == NULL)
        return ogi_error(OGI_ERR_INVALID_ARGUMENT, "onnx_model_load: NULL argument");
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    if (slash == NULL)
        snprintf(dir, sizeof(dir), ".");
    else if ((size_t)(slash - path) < sizeof(dir))
        snprintf(dir, sizeof(dir), "%.*s", slash == path ? 1 : (int)(slash - path), path);
    else
        return ogi_error(OGI_ERR_INVALID_ARGUMENT, "%s: path too long", path);
    onnx_model *model = NULL;
    ogi_status st = onnx_model_new(path, dir, &model);
    if (st != OGI_OK)
        return st;
    model->priv->skip_external = skip_external;
    onnx_mapping *m = &model->priv->main;
    st = reader_map_file(path, m); /* its messages name the path */
    if (st == OGI_OK) {
        st = onnx_model_decode(model, m->data, m->size);
        if (st != OGI_OK)
            ogi_error_prefix(st, "%s", path);
    }
    if (st != OGI_OK) {
        onnx_model_free(model);
        return st;
    }
    *out = model;
    return OGI_OK;
}

void onnx_model_free(onnx_model *model)
{
    if (model == NULL)
        return;
    struct onnx_private *priv = model->priv;
    reader_unmap(&priv->main);
    for (int i = 0; i < priv->n_mappings; i++)
        reader_unmap(&priv->mappings[i]);
    pool_free_all(&priv->pool);
    free(priv);
    free(model);
}

/* The whole pages of [data, data + size) that lie in mapping m leave the
 * resident set: a private, never-written file mapping gives them back to
 * the page cache, and a later read maps them again from the file. */
static bool reader_release_in(const onnx_mapping *m, const char *data, size_t size)
{
    const char *base = m->data;
    if (base == NULL || data < base || size > m->size || data - base > (ptrdiff_t)(m->size - size))
        return false;
    long page = sysconf(_SC_PAGESIZE);
    uintptr_t first = ((uintptr_t)data + (uintptr_t)page - 1) & ~((uintptr_t)page - 1);
    uintptr_t last = ((uintptr_t)data + size) & ~((uintptr_t)page - 1);
    if (last > first)
        madvise((void *)first, last - first, MADV_DONTNEED);
    return true;
}

void onnx_model_release_data(const onnx_model *model, const void *data, size_t size)
{
    if (model == NULL || data == NULL || size == 0)
        return;
    const struct onnx_private *priv = model->priv;
    if (reader_release_in(&priv->main, data, size))
        return;
    for (int i = 0; i < priv->n_mappings; i++)
        if (reader_release_in(&priv->mappings[i], data, size))
            return;
}

int64_t onnx_model_opset(const onnx_model *model, const char *domain)
{
    bool want_default = domain[0] == '\0' || strcmp(domain, "ai.onnx") == 0;
    for (int i = 0; i < model->n_opsets; i++) {
        const char *d = model->opsets[i].domain;
        bool is_default = d[0] == '\0' || strcmp(d, "ai.onnx") == 0;
        if (want_default ? is_default : strcmp(d, domain) == 0)
            return model->opsets[i].version;
    }
    return 0;
}

ogi_status onnx_tensor_parse(const void *data, size_t size, ogi_tensor **out, char **name_out)
{
    onnx_model *scratch = NULL;
    ogi_status st = onnx_model_new("<tensor>", NULL, &scratch);
    if (st != OGI_OK)
        return st;
    reader r = {scratch, &scratch->priv->pool, 0};
    onnx_tensor t;
    memset(&t, 0, sizeof(t));
    st = reader_tensor(&r, pb_make(data, size), &t);
    if (st == OGI_OK)
        st = tensor_clone(&t.tensor, out);
    if (st == OGI_OK && name_out != NULL) {
        *name_out = t.name[0] ? strdup(t.name) : NULL;
        if (t.name[0] && *name_out == NULL) {
            ogi_tensor_free(*out);
            st = reader_oom();
        }
    }
    onnx_model_free(scratch);
    return st;
}

/* ---- sequences and optionals (test data) ------------------------------------ */

enum { READER_MAX_NESTING = 16 };

/* Reads the TensorProto at m into a new owned tensor. */
static ogi_status reader_owned_tensor(reader *r, pb_cursor m, ogi_tensor **out)
{
    onnx_tensor t;
    memset(&t, 0, sizeof(t));
    ogi_status st = reader_tensor(r, m, &t);
    return st == OGI_OK ? tensor_clone(&t.tensor, out) : st;
}

/* SequenceProto and OptionalProto share their field numbers: name 1,
 * elem_type 2, tensor 3, sparse tensor 4, sequence 5, map 6, optional 7
 * (repeated in a sequence, at most one in an optional). */
static ogi_status reader_container(reader *r, pb_cursor m, tensor_kind kind, int depth,
                                   ogi_tensor *t, const char **name)
{
    if (depth > READER_MAX_NESTING)
        return ogi_error(OGI_ERR_UNSUPPORTED, "values nested more than %d deep",
                         READER_MAX_NESTING);
    ogi_status st = tensor_init_container(t, kind, OGI_DTYPE_UNDEFINED, 0);
    uint32_t field, wire;
    *name = "";
    while (st == OGI_OK && pb_key(&m, &field, &wire)) {
        ogi_tensor *item = NULL;
        if (field == 1 && wire == PB_LEN) {
            *name = reader_string(r, &m, NULL);
            continue;
        }
        if (wire != PB_LEN || field < 3 || field > 7) {
            pb_skip(&m, wire);
            continue;
        }
        if (field == 4 || field == 6) {
            st = ogi_error(OGI_ERR_UNSUPPORTED, "sparse tensors and maps are not supported");
            break;
        }
        pb_cursor sub = pb_bytes(&m);
        if (field == 3) {
            st = reader_owned_tensor(r, sub, &item);
        } else if ((item = calloc(1, sizeof(*item))) == NULL) {
            st = reader_oom();
        } else {
            const char *ignored;
            tensor_kind k = field == 5 ? TENSOR_KIND_SEQUENCE : TENSOR_KIND_OPTIONAL;
            st = reader_container(r, sub, k, depth + 1, item, &ignored);
            if (st != OGI_OK) {
                free(item);
                item = NULL;
            }
        }
        if (st == OGI_OK)
            st = tensor_add_item(t, item);
    }
    if (st == OGI_OK && (m.bad || *name == NULL))
        st = reader_bad(kind == TENSOR_KIND_SEQUENCE ? "SequenceProto" : "OptionalProto");
    if (st != OGI_OK)
        tensor_release(t);
    return st;
}

ogi_status onnx_value_parse(const void *data, size_t size, tensor_kind kind, ogi_tensor **out,
                            char **name_out)
{
    if (kind == TENSOR_KIND_TENSOR)
        return onnx_tensor_parse(data, size, out, name_out);
    onnx_model *scratch = NULL;
    ogi_status st = onnx_model_new("<value>", NULL, &scratch);
    if (st != OGI_OK)
        return st;
    reader r = {scratch, &scratch->priv->pool, 0};
    const char *name = "";
    ogi_tensor *t = calloc(1, sizeof(*t));
    st = t ? reader_container(&r, pb_make(data, size), kind, 0, t, &name) : reader_oom();
    if (st == OGI_OK && name_out != NULL) {
        *name_out = name[0] ? strdup(name) : NULL;
        if (name[0] && *name_out == NULL)
            st = reader_oom();
    }
    if (st == OGI_OK) {
        *out = t;
    } else {
        ogi_tensor_free(t);
    }
    onnx_model_free(scratch);
    return st;
}
