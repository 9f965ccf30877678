/* A fixed pool of worker threads shared by kernels; no thread is created
 * per op. */
#ifndef OGI_CORE_THREADPOOL_H
#define OGI_CORE_THREADPOOL_H

#include <stdint.h>

#include "ogi.h"

typedef struct threadpool threadpool;

/* fn(arg, begin, end) processes items [begin, end). */
typedef void (*threadpool_fn)(void *arg, int64_t begin, int64_t end);

/* threads <= 0: one per online core. A pool of 1 runs everything inline. */
ogi_status threadpool_create(int threads, threadpool **out);
void threadpool_free(threadpool *pool);
int threadpool_size(const threadpool *pool);

/* Splits [0, n) into contiguous chunks of at least min_chunk items and runs
 * them on the pool (the caller works too); returns when all are done.
 * pool may be NULL (runs inline). Not reentrant from inside fn. */
void threadpool_parallel_for(threadpool *pool, int64_t n, int64_t min_chunk, threadpool_fn fn,
                             void *arg);

/* Makes OpenBLAS (the fallback of a few float kernels, called from inside
 * pool jobs) single-threaded and stops the threads its pthreads build
 * started at load, which otherwise spin for a good fraction of a second and
 * compete for the cores with whatever runs first (a prefill, or ONNX
 * Runtime). Idempotent; called when a session or runtime opens. */
void threadpool_blas_single_thread(void);

#endif
