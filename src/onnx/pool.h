/* A bump allocator for everything a decoded model holds: one free() of all
 * chunks releases a model, which keeps error paths in the reader leak-free. */
#ifndef OGI_ONNX_POOL_H
#define OGI_ONNX_POOL_H

#include <stddef.h>

typedef struct pool_chunk pool_chunk;

typedef struct pool {
    pool_chunk *head;
    size_t used;     /* bytes used in head */
    size_t capacity; /* bytes of head */
} pool;

/* Zeroed, 64-byte aligned memory; NULL when out of memory or size overflows. */
void *pool_alloc(pool *p, size_t size);
void *pool_alloc_array(pool *p, size_t count, size_t elem_size);
/* NUL-terminated copy of len bytes. */
char *pool_strndup(pool *p, const void *s, size_t len);
void pool_free_all(pool *p);

#endif
