#include "onnx/pool.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct pool_chunk {
    pool_chunk *next;
    _Alignas(64) unsigned char data[];
};

enum { POOL_CHUNK = 64 * 1024, POOL_ALIGN = 64 };

void *pool_alloc(pool *p, size_t size)
{
    size_t need = (size + POOL_ALIGN - 1) & ~(size_t)(POOL_ALIGN - 1);
    if (need < size)
        return NULL;
    if (p->head == NULL || p->capacity - p->used < need) {
        size_t cap = need > POOL_CHUNK ? need : POOL_CHUNK;
        if (cap > SIZE_MAX - sizeof(pool_chunk))
            return NULL;
        pool_chunk *c = aligned_alloc(POOL_ALIGN, (sizeof(pool_chunk) + cap + POOL_ALIGN - 1) &
                                                      ~(size_t)(POOL_ALIGN - 1));
        if (c == NULL)
            return NULL;
        if (need > POOL_CHUNK && p->head != NULL) {
            /* a big block goes behind the head so the head keeps its room */
            c->next = p->head->next;
            p->head->next = c;
            memset(c->data, 0, need);
            return c->data;
        }
        c->next = p->head;
        p->head = c;
        p->used = 0;
        p->capacity = cap;
    }
    void *out = p->head->data + p->used;
    p->used += need;
    memset(out, 0, need);
    return out;
}

void *pool_alloc_array(pool *p, size_t count, size_t elem_size)
{
    if (elem_size != 0 && count > SIZE_MAX / elem_size)
        return NULL;
    size_t n = count * elem_size;
    return pool_alloc(p, n ? n : 1);
}

char *pool_strndup(pool *p, const void *s, size_t len)
{
    char *out = pool_alloc(p, len + 1);
    if (out != NULL && len)
        memcpy(out, s, len);
    return out;
}

void pool_free_all(pool *p)
{
    pool_chunk *c = p->head;
    while (c != NULL) {
        pool_chunk *next = c->next;
        free(c);
        c = next;
    }
    p->head = NULL;
    p->used = p->capacity = 0;
}
