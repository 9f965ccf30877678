/* A fork-join pool: parallel_for publishes one job, workers and the caller
 * take chunks with an atomic counter, the caller waits for the stragglers.
 *
 * Decode steps run hundreds of small parallel loops per token, so waking a
 * sleeping thread (microseconds) would cost more than the work: workers spin
 * on the job counter for a while after each job before they sleep on a
 * condition variable, and the caller spins while the last chunks finish. */
#include "core/threadpool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/error.h"

enum { THREADPOOL_SPIN = 1 << 12 }; /* polls before sleeping: tens of microseconds */

struct threadpool {
    int size; /* threads including the caller */
    pthread_t *workers;
    pthread_mutex_t mutex;
    pthread_cond_t wake;
    atomic_uint_fast64_t generation; /* bumped for every job */
    atomic_int sleepers;
    atomic_bool stop;
    /* the current job, written before generation is bumped */
    threadpool_fn fn;
    void *arg;
    int64_t n, chunk, n_chunks;
    atomic_llong next_chunk;
    atomic_int active; /* workers still inside the current job */
};

static void threadpool_work(threadpool *p)
{
    for (;;) {
        int64_t c = atomic_fetch_add(&p->next_chunk, 1);
        if (c >= p->n_chunks)
            return;
        int64_t begin = c * p->chunk;
        int64_t end = begin + p->chunk < p->n ? begin + p->chunk : p->n;
        p->fn(p->arg, begin, end);
    }
}

static inline void threadpool_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* Waits until the generation differs from seen (or the pool stops). */
static uint64_t threadpool_wait(threadpool *p, uint64_t seen)
{
    for (int i = 0; i < THREADPOOL_SPIN; i++) {
        uint64_t g = atomic_load_explicit(&p->generation, memory_order_acquire);
        if (g != seen || atomic_load(&p->stop))
            return g;
        threadpool_relax();
    }
    pthread_mutex_lock(&p->mutex);
    atomic_fetch_add(&p->sleepers, 1);
    uint64_t g;
    while ((g = atomic_load_explicit(&p->generation, memory_order_acquire)) == seen &&
           !atomic_load(&p->stop))
        pthread_cond_wait(&p->wake, &p->mutex);
    atomic_fetch_sub(&p->sleepers, 1);
    pthread_mutex_unlock(&p->mutex);
    return g;
}

static void *threadpool_main(void *arg)
{
    threadpool *p = arg;
    uint64_t seen = 0;
    for (;;) {
        seen = threadpool_wait(p, seen);
        if (atomic_load(&p->stop))
            break;
        threadpool_work(p);
        atomic_fetch_sub_explicit(&p->active, 1, memory_order_release);
    }
    return NULL;
}

ogi_status threadpool_create(int threads, threadpool **out)
{
    if (threads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        threads = n > 0 ? (int)n : 1;
    }
    if (threads > 256)
        threads = 256;
    threadpool *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return ogi_error(OGI_ERR_OUT_OF_MEMORY, "out of memory");
    p->size = threads;
    pthread_mutex_init(&p->mutex, NULL);
    pthread_cond_init(&p->wake, NULL);
    if (threads > 1) {
        p->workers = calloc((size_t)threads - 1, sizeof(pthread_t));
        if (p->workers == NULL) {
            p->size = 1;
            threadpool_free(p);
            return ogi_error(OGI_ERR_OUT_OF_MEMORY, "out of memory");
        }
        for (int i = 0; i < threads - 1; i++) {
            if (pthread_create(&p->workers[i], NULL, threadpool_main, p) != 0) {
                p->size = i + 1;
                threadpool_free(p);
                return ogi_error(OGI_ERR_RUNTIME, "cannot create worker thread");
            }
        }
    }
    *out = p;
    return OGI_OK;
}

void threadpool_free(threadpool *p)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->mutex);
    atomic_store(&p->stop, true);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mutex);
    for (int i = 0; p->workers != NULL && i < p->size - 1; i++)
        pthread_join(p->workers[i], NULL);
    free(p->workers);
    pthread_mutex_destroy(&p->mutex);
    pthread_cond_destroy(&p->wake);
    free(p);
}

int threadpool_size(const threadpool *p)
{
    return p ? p->size : 1;
}

void threadpool_parallel_for(threadpool *p, int64_t n, int64_t min_chunk, threadpool_fn fn,
                             void *arg)
{
    if (n <= 0)
        return;
    if (min_chunk < 1)
        min_chunk = 1;
    if (p == NULL || p->size == 1 || n <= min_chunk) {
        fn(arg, 0, n);
        return;
    }
    /* a few chunks per thread balance uneven work without much overhead */
    int64_t chunk = (n + (int64_t)p->size * 4 - 1) / ((int64_t)p->size * 4);
    if (chunk < min_chunk)
        chunk = min_chunk;
    p->fn = fn;
    p->arg = arg;
    p->n = n;
    p->chunk = chunk;
    p->n_chunks = (n + chunk - 1) / chunk;
    atomic_store(&p->next_chunk, 0);
    atomic_store(&p->active, p->size - 1);
    atomic_fetch_add_explicit(&p->generation, 1, memory_order_release);
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->mutex);
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->mutex);
    }
    threadpool_work(p);
    /* every worker must leave the job before the next one reuses its fields */
    for (long spins = 0; atomic_load_explicit(&p->active, memory_order_acquire) > 0; spins++) {
        if (spins < THREADPOOL_SPIN)
            threadpool_relax();
        else
            sched_yield();
    }
}
