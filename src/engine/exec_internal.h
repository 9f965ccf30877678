/* Executor internals shared by exec.c, arena.c and op.c. */
#ifndef OGI_ENGINE_EXEC_INTERNAL_H
#define OGI_ENGINE_EXEC_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "engine/exec.h"

typedef struct arena_block {
    void *data;
    size_t offset, size;
    bool heap; /* placed beyond the buffer: malloc'ed for this run only */
} arena_block;

ogi_status arena_alloc(exec_arena *a, size_t size, arena_block *out);
void arena_release(exec_arena *a, const arena_block *b);
/* Called when a run has released everything: grows the buffer to the peak
 * the plan needed. */
void arena_end_run(exec_arena *a);

typedef struct exec_frame {
    const graph *g;
    ogi_tensor *slots;   /* one per value */
    arena_block *blocks; /* arena placement of slots with TENSOR_ARENA storage */
    ogi_tensor **bound;  /* per value: a caller's tensor the output is written into */
    struct exec_frame *parent;
    const exec_env *env;
} exec_frame;

#endif
