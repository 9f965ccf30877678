/* A fork-join pool: parallel_for publishes one job, workers and the caller
 * take chunks with an atomic counter, the caller waits for the stragglers. */
#include "core/threadpool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/error.h"

struct threadpool {
    int size; /* threads including the caller */
    pthread_t *workers;
    pthread_mutex_t mutex;
    pthread_cond_t wake;
    pthread_cond_t done;
    uint64_t generation; /* bumped for every job */
    bool stop;
    /* the current job */
    threadpool_fn fn;
    void *arg;
    int64_t n, chunk, n_chunks;
    atomic_llong next_chunk;
    int active; /* workers still inside the current job */
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

static void *threadpool_main(void *arg)
{
    threadpool *p = arg;
    uint64_t seen = 0;
    pthread_mutex_lock(&p->mutex);
    for (;;) {
        while (!p->stop && p->generation == seen)
            pthread_cond_wait(&p->wake, &p->mutex);
        if (p->stop)
            break;
        seen = p->generation;
        pthread_mutex_unlock(&p->mutex);
        threadpool_work(p);
        pthread_mutex_lock(&p->mutex);
        if (--p->active == 0)
            pthread_cond_signal(&p->done);
    }
    pthread_mutex_unlock(&p->mutex);
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
    pthread_cond_init(&p->done, NULL);
    if (threads > 1) {
        p->workers = calloc((size_t)threads - 1, sizeof(pthread_t));
        if (p->workers == NULL) {
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
    p->stop = true;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mutex);
    for (int i = 0; p->workers != NULL && i < p->size - 1; i++)
        pthread_join(p->workers[i], NULL);
    free(p->workers);
    pthread_mutex_destroy(&p->mutex);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->done);
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
    pthread_mutex_lock(&p->mutex);
    p->fn = fn;
    p->arg = arg;
    p->n = n;
    p->chunk = chunk;
    p->n_chunks = (n + chunk - 1) / chunk;
    atomic_store(&p->next_chunk, 0);
    p->active = p->size - 1;
    p->generation++;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mutex);
    threadpool_work(p);
    pthread_mutex_lock(&p->mutex);
    while (p->active > 0)
        pthread_cond_wait(&p->done, &p->mutex);
    pthread_mutex_unlock(&p->mutex);
}
