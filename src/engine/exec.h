/* The executor: runs a built graph's node list with a thread pool and an
 * arena that is planned by value lifetime and reused across runs. */
#ifndef OGI_ENGINE_EXEC_H
#define OGI_ENGINE_EXEC_H

#include <stdio.h>

#include "core/threadpool.h"
#include "engine/graph.h"

/* Intermediate values live in one buffer. Offsets are assigned first-fit as
 * values are created and freed after their last reader; the first run of a
 * shape learns the peak, and the buffer grows to it between runs, so later
 * runs of the same shapes allocate nothing. */
typedef struct exec_arena exec_arena;

ogi_status exec_arena_create(exec_arena **out);
void exec_arena_free(exec_arena *arena);
size_t exec_arena_capacity(const exec_arena *arena);

/* Time spent per op type (OGI_PROFILE=1) or per node (OGI_PROFILE=nodes). */
typedef struct exec_profile exec_profile;

ogi_status exec_profile_create(bool by_node, exec_profile **out);
void exec_profile_free(exec_profile *p);
/* Prints a table, most expensive first (the 60 most expensive rows). */
void exec_profile_print(const exec_profile *p, FILE *f);

/* The top-level frame's arrays (engine/exec.c), kept from run to run of
 * one graph: constants are bound once, and the slots of inputs and node
 * outputs are cleared as each run ends. One run at a time. */
typedef struct exec_frame_store exec_frame_store;
ogi_status exec_frame_store_create(const graph *g, exec_frame_store **out);
void exec_frame_store_free(exec_frame_store *s);

typedef struct exec_env {
    exec_frame_store *store; /* NULL: each run allocates its frame */
    threadpool *pool;
    exec_arena *arena;
    size_t max_tensor_bytes; /* 0 = no limit */
    exec_profile *profile;   /* NULL: not profiling */
    int attention;           /* ogi_attention_precision, for Attention kernels */
} exec_env;

/* Runs g. inputs[i] binds g->inputs[i] (NULL: use the initializer default,
 * or fail when there is none). outputs[i] NULL on entry receives a new owned
 * tensor; a non-NULL outputs[i] is the caller's tensor, of the output's dtype
 * and shape, that the output is computed into (left in place on failure). */
ogi_status exec_run(const graph *g, const exec_env *env, const ogi_tensor *const *inputs,
                    ogi_tensor **outputs);

/* Copies src into the caller's tensor dst (same dtype and shape, else an
 * error); nothing to do when they share a buffer. */
ogi_status exec_copy_into(ogi_tensor *dst, const ogi_tensor *src);

/* Runs nodes whose inputs are all constants once, replacing their outputs
 * by constants (at most 64 MiB per node) and removing them. */
ogi_status graph_fold_constants(graph *g);

/* Removes the nodes nothing reads any more (what fusion leaves of the
 * shape computations that fed the nodes it replaced), last to first; nodes
 * with subgraphs, random draws or in-place updates stay. */
ogi_status graph_remove_unread(graph *g);

/* Recomputes last readers and per-node release lists. */
ogi_status graph_plan_lifetimes(graph *g);

#endif
