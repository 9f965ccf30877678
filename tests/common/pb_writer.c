#include "pb_writer.h"

#include <stdlib.h>
#include <string.h>

static void pbw_reserve(pbw *b, size_t n)
{
    if (b->len + n <= b->cap)
        return;
    size_t cap = b->cap ? b->cap * 2 : 256;
    while (cap < b->len + n)
        cap *= 2;
    uint8_t *grown = realloc(b->data, cap);
    if (grown == NULL)
        abort(); /* tests only */
    b->data = grown;
    b->cap = cap;
}

static void pbw_raw(pbw *b, const void *p, size_t n)
{
    pbw_reserve(b, n);
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
}

void pbw_free(pbw *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

void pbw_varint(pbw *b, uint64_t v)
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
    pbw_raw(b, tmp, n);
}

void pbw_key(pbw *b, uint32_t field, uint32_t wire)
{
    pbw_varint(b, (uint64_t)field << 3 | wire);
}

void pbw_int(pbw *b, uint32_t field, uint64_t v)
{
    pbw_key(b, field, 0);
    pbw_varint(b, v);
}

void pbw_fixed32(pbw *b, uint32_t field, float v)
{
    uint32_t bits;
    memcpy(&bits, &v, 4);
    uint8_t le[4] = {(uint8_t)bits, (uint8_t)(bits >> 8), (uint8_t)(bits >> 16),
                     (uint8_t)(bits >> 24)};
    pbw_key(b, field, 5);
    pbw_raw(b, le, 4);
}

void pbw_bytes(pbw *b, uint32_t field, const void *data, size_t n)
{
    pbw_key(b, field, 2);
    pbw_varint(b, n);
    pbw_raw(b, data, n);
}

void pbw_string(pbw *b, uint32_t field, const char *s)
{
    pbw_bytes(b, field, s, strlen(s));
}

void pbw_message(pbw *b, uint32_t field, pbw *sub)
{
    pbw_bytes(b, field, sub->data, sub->len);
    pbw_free(sub);
}

void pbw_tensor_raw(pbw *b, uint32_t field, const char *name, int dtype, int rank,
                    const int64_t *dims, const void *raw, size_t raw_len)
{
    pbw t = {0};
    for (int i = 0; i < rank; i++)
        pbw_int(&t, 1, (uint64_t)dims[i]);
    pbw_int(&t, 2, (uint64_t)dtype);
    pbw_string(&t, 8, name);
    if (raw != NULL)
        pbw_bytes(&t, 9, raw, raw_len);
    pbw_message(b, field, &t);
}

void pbw_value_info(pbw *b, uint32_t field, const char *name, int dtype, int rank,
                    const int64_t *dims)
{
    pbw shape = {0}, tensor = {0}, type = {0}, vi = {0};
    for (int i = 0; i < rank; i++) {
        pbw dim = {0};
        pbw_int(&dim, 1, (uint64_t)dims[i]);
        pbw_message(&shape, 1, &dim);
    }
    pbw_int(&tensor, 1, (uint64_t)dtype);
    if (rank >= 0)
        pbw_message(&tensor, 2, &shape);
    else
        pbw_free(&shape);
    pbw_message(&type, 1, &tensor);
    pbw_string(&vi, 1, name);
    pbw_message(&vi, 2, &type);
    pbw_message(b, field, &vi);
}

void pbw_node_begin(pbw *n, const char *op, const char *name, int n_in, const char *const *in,
                    int n_out, const char *const *out)
{
    for (int i = 0; i < n_in; i++)
        pbw_string(n, 1, in[i]);
    for (int i = 0; i < n_out; i++)
        pbw_string(n, 2, out[i]);
    pbw_string(n, 3, name);
    pbw_string(n, 4, op);
}

void pbw_node(pbw *b, const char *op, const char *name, int n_in, const char *const *in, int n_out,
              const char *const *out)
{
    pbw n = {0};
    pbw_node_begin(&n, op, name, n_in, in, n_out, out);
    pbw_message(b, 1, &n);
}

/* AttributeProto fields: 1 name, 2 f, 3 i, 4 s, 6 g, 8 ints, 20 type. */
void pbw_attr_int(pbw *n, const char *name, int64_t v)
{
    pbw a = {0};
    pbw_string(&a, 1, name);
    pbw_int(&a, 3, (uint64_t)v);
    pbw_int(&a, 20, 2);
    pbw_message(n, 5, &a);
}

void pbw_attr_float(pbw *n, const char *name, float v)
{
    pbw a = {0};
    pbw_string(&a, 1, name);
    pbw_fixed32(&a, 2, v);
    pbw_int(&a, 20, 1);
    pbw_message(n, 5, &a);
}

void pbw_attr_ints(pbw *n, const char *name, int count, const int64_t *v)
{
    pbw a = {0};
    pbw_string(&a, 1, name);
    for (int i = 0; i < count; i++)
        pbw_int(&a, 8, (uint64_t)v[i]);
    pbw_int(&a, 20, 7);
    pbw_message(n, 5, &a);
}

void pbw_attr_string(pbw *n, const char *name, const char *s)
{
    pbw a = {0};
    pbw_string(&a, 1, name);
    pbw_bytes(&a, 4, s, strlen(s));
    pbw_int(&a, 20, 3);
    pbw_message(n, 5, &a);
}

void pbw_attr_graph(pbw *n, const char *name, pbw *sub)
{
    pbw a = {0};
    pbw_string(&a, 1, name);
    pbw_message(&a, 6, sub);
    pbw_int(&a, 20, 5);
    pbw_message(n, 5, &a);
}

void pbw_model(pbw *out, int64_t ir_version, int64_t opset, pbw *graph)
{
    pbw_int(out, 1, (uint64_t)ir_version);
    pbw_string(out, 2, "ogi-tests");
    pbw_message(out, 7, graph);
    pbw_opset_import(out, "", opset);
}

void pbw_opset_import(pbw *model, const char *domain, int64_t version)
{
    pbw op = {0};
    pbw_string(&op, 1, domain);
    pbw_int(&op, 2, (uint64_t)version);
    pbw_message(model, 8, &op);
}
