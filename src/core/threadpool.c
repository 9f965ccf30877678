/* A fork-join pool: parallel_for publishes one job, workers and the caller
 * claim its chunks, and the caller returns when every chunk is done.
 *
 * Decode steps run hundreds of small parallel loops per token, so:
 *  - workers spin on the job word for a while after each job before they
 *    sleep on a condition variable (waking a sleeper costs microseconds);
 *  - the caller waits for the chunks to be done, not for every worker to
 *    check in: on a busy machine a worker that never got a core does not
 *    hold the caller up — the caller simply does the chunks itself.
 * Chunks are claimed from a 64-bit job word (job number << 32 | next chunk)
 * with compare-and-swap, so a late worker can never take a chunk of a job
 * other than the one whose fields it read. */
#include "core/threadpool.h"

#include <cblas.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/error.h"

enum { THREADPOOL_SPIN = 1 << 12 }; /* polls before sleeping: tens of microseconds */

#define THREADPOOL_CLOSED 0xffffffffu

struct threadpool {
    int size; /* threads including the caller */
    pthread_t *workers;
    pthread_mutex_t mutex;
    pthread_cond_t wake;
    atomic_uint_fast64_t job; /* job number << 32 | next chunk to claim */
    atomic_int sleepers;
    atomic_bool stop;
    /* the current job, written while the job word is closed */
    threadpool_fn fn;
    void *arg;
    int64_t n, chunk, n_chunks;
    atomic_llong done; /* chunks finished */
};

static inline void threadpool_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* Claims and runs chunks of job number `id` until none is left. */
static void threadpool_work(threadpool *p, uint64_t id)
{
    for (;;) {
        uint64_t j = atomic_load_explicit(&p->job, memory_order_acquire);
        uint32_t next = (uint32_t)j;
        if ((j >> 32) != id || next == THREADPOOL_CLOSED || (int64_t)next >= p->n_chunks)
            return;
        if (!atomic_compare_exchange_weak_explicit(&p->job, &j, j + 1, memory_order_acq_rel,
                                                   memory_order_acquire))
            continue;
        /* the job cannot change while this chunk is not done */
        int64_t begin = (int64_t)next * p->chunk;
        int64_t end = begin + p->chunk < p->n ? begin + p->chunk : p->n;
        p->fn(p->arg, begin, end);
        atomic_fetch_add_explicit(&p->done, 1, memory_order_release);
    }
}

/* Waits until the job number differs from seen (or the pool stops). */
static uint64_t threadpool_wait(threadpool *p, uint64_t seen)
{
    for (int i = 0; i < THREADPOOL_SPIN; i++) {
        uint64_t id = atomic_load_explicit(&p->job, memory_order_acquire) >> 32;
        if (id != seen || atomic_load(&p->stop))
            return id;
        threadpool_relax();
    }
    pthread_mutex_lock(&p->mutex);
    atomic_fetch_add(&p->sleepers, 1);
    uint64_t id;
    while ((id = atomic_load_explicit(&p->job, memory_order_acquire) >> 32) == seen &&
           !atomic_load(&p->stop))
        pthread_cond_wait(&p->wake, &p->mutex);
    atomic_fetch_sub(&p->sleepers, 1);
    pthread_mutex_unlock(&p->mutex);
    return id;
}

static void *threadpool_main(void *arg)
{
    threadpool *p = arg;
    uint64_t seen = 0;
    for (;;) {
        seen = threadpool_wait(p, seen);
        if (atomic_load(&p->stop))
            break;
        threadpool_work(p, seen);
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
    atomic_store(&p->job, THREADPOOL_CLOSED); /* job 0, closed */
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
    /* the previous job is closed and done: its fields may be rewritten */
    uint64_t id = (atomic_load(&p->job) >> 32) + 1;
    p->fn = fn;
    p->arg = arg;
    p->n = n;
    p->chunk = chunk;
    p->n_chunks = (n + chunk - 1) / chunk;
    atomic_store(&p->done, 0);
    atomic_store_explicit(&p->job, id << 32, memory_order_release);
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->mutex);
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->mutex);
    }
    threadpool_work(p, id);
    for (long spins = 0; atomic_load_explicit(&p->done, memory_order_acquire) < p->n_chunks;
         spins++) {
        if (spins < THREADPOOL_SPIN)
            threadpool_relax();
        else
            sched_yield();
    }
    /* close the job: a worker that reads the job word from now on finds no
     * chunk, and one holding a stale copy fails its compare-and-swap */
    atomic_store_explicit(&p->job, id << 32 | THREADPOOL_CLOSED, memory_order_release);
}

/* blas_thread_shutdown_ is a weak reference: OpenBLAS builds without it
 * (or without threads) leave it NULL. */
extern int blas_thread_shutdown_(void) __attribute__((weak));

static pthread_once_t threadpool_blas_once = PTHREAD_ONCE_INIT;

static void threadpool_blas_quiet(void)
{
    openblas_set_num_threads(1);
    if (blas_thread_shutdown_ != NULL)
        blas_thread_shutdown_();
}

void threadpool_blas_single_thread(void)
{
    pthread_once(&threadpool_blas_once, threadpool_blas_quiet);
}
