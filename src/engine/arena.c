#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "engine/exec.h"
#include "engine/exec_internal.h"

enum { ARENA_ALIGN = 64 };

typedef struct arena_segment {
    size_t offset, size;
} arena_segment;

struct exec_arena {
    unsigned char *base;
    size_t capacity;
    size_t high_water;        /* largest end offset the plan needed */
    size_t tail;              /* everything from here on is free */
    arena_segment *free_list; /* free holes below tail, sorted by offset */
    size_t n_free, cap_free;
    size_t live; /* outstanding allocations */
};

ogi_status exec_arena_create(exec_arena **out)
{
    *out = calloc(1, sizeof(exec_arena));
    return *out ? OGI_OK : ogi_error(OGI_ERR_OUT_OF_MEMORY, "out of memory");
}

void exec_arena_free(exec_arena *a)
{
    if (a == NULL)
        return;
    free(a->base);
    free(a->free_list);
    free(a);
}

size_t exec_arena_capacity(const exec_arena *a)
{
    return a->capacity;
}

ogi_status arena_alloc(exec_arena *a, size_t size, arena_block *out)
{
    size_t need = (size + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    if (need < size)
        return ogi_error(OGI_ERR_OUT_OF_MEMORY, "allocation of %zu bytes overflows", size);
    if (need == 0)
        need = ARENA_ALIGN;
    /* best fit: the smallest hole that takes the block. First fit let a
     * 512-token prefill of SmolLM2-135M climb to 152 MB of buffer for 11 MB
     * of live values (each layer's blocks landing a little higher); best
     * fit stays at 15 MB. */
    size_t off = a->tail, best = a->n_free;
    for (size_t i = 0; i < a->n_free; i++)
        if (a->free_list[i].size >= need &&
            (best == a->n_free || a->free_list[i].size < a->free_list[best].size))
            best = i;
    if (best < a->n_free) {
        off = a->free_list[best].offset;
        a->free_list[best].offset += need;
        a->free_list[best].size -= need;
        if (a->free_list[best].size == 0) {
            memmove(&a->free_list[best], &a->free_list[best + 1],
                    (a->n_free - best - 1) * sizeof(arena_segment));
            a->n_free--;
        }
    } else {
        if (a->tail > SIZE_MAX - need)
            return ogi_error(OGI_ERR_OUT_OF_MEMORY, "arena overflow");
        a->tail += need;
        if (a->tail > a->high_water)
            a->high_water = a->tail;
    }
    out->offset = off;
    out->size = need;
    if (off + need <= a->capacity) {
        out->data = a->base + off;
        out->heap = false;
    } else {
        /* beyond this run's buffer: borrow from the heap until the arena grows */
        out->data = aligned_alloc(ARENA_ALIGN, need);
        if (out->data == NULL)
            return ogi_error(OGI_ERR_OUT_OF_MEMORY, "cannot allocate %zu bytes", need);
        out->heap = true;
    }
    a->live++;
    return OGI_OK;
}

static bool arena_insert_free(exec_arena *a, size_t off, size_t size)
{
    if (off + size == a->tail) {
        a->tail = off;
        /* the hole before may now touch the tail */
        while (a->n_free > 0) {
            arena_segment *last = &a->free_list[a->n_free - 1];
            if (last->offset + last->size != a->tail)
                break;
            a->tail = last->offset;
            a->n_free--;
        }
        return true;
    }
    size_t i = 0;
    while (i < a->n_free && a->free_list[i].offset < off)
        i++;
    if (i > 0 && a->free_list[i - 1].offset + a->free_list[i - 1].size == off) {
        a->free_list[i - 1].size += size;
        if (i < a->n_free && off + size == a->free_list[i].offset) {
            a->free_list[i - 1].size += a->free_list[i].size;
            memmove(&a->free_list[i], &a->free_list[i + 1],
                    (a->n_free - i - 1) * sizeof(arena_segment));
            a->n_free--;
        }
        return true;
    }
    if (i < a->n_free && off + size == a->free_list[i].offset) {
        a->free_list[i].offset = off;
        a->free_list[i].size += size;
        return true;
    }
    if (a->n_free == a->cap_free) {
        size_t cap = a->cap_free ? a->cap_free * 2 : 64;
        arena_segment *grown = realloc(a->free_list, cap * sizeof(*grown));
        if (grown == NULL)
            return false;
        a->free_list = grown;
        a->cap_free = cap;
    }
    memmove(&a->free_list[i + 1], &a->free_list[i], (a->n_free - i) * sizeof(arena_segment));
    a->free_list[i].offset = off;
    a->free_list[i].size = size;
    a->n_free++;
    return true;
}

void arena_release(exec_arena *a, const arena_block *b)
{
    if (b->heap)
        free(b->data);
    /* if the free list cannot grow the hole is leaked until the run ends */
    (void)arena_insert_free(a, b->offset, b->size);
    a->live--;
    if (a->live == 0) {
        a->tail = 0;
        a->n_free = 0;
    }
}

void arena_end_run(exec_arena *a)
{
    if (a->live != 0 || a->high_water <= a->capacity)
        return;
    unsigned char *grown = aligned_alloc(ARENA_ALIGN, a->high_water);
    if (grown == NULL)
        return; /* keep the old buffer: the next run borrows from the heap again */
    free(a->base);
    a->base = grown;
    a->capacity = a->high_water;
}
