/* The public session API: a loaded model, its built graph, a thread pool and
 * an arena. One run at a time per session (runs are serialised). */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "core/error.h"
#include "engine/exec.h"
#include "engine/kv_rewrite.h"
#include "engine/pack.h"
#include "engine/logits_rewrite.h"
#include "engine/session_internal.h"
#include "onnx/onnx.h"

struct ogi_session {
    onnx_model *model;
    onnx_builder *rewritten; /* the model after the KV-cache and logits rewrites, or NULL */
    graph *graph;
    threadpool *pool;
    exec_arena *arena;
    exec_frame_store *store;
    exec_profile *profile; /* OGI_PROFILE=1: per-op times, printed when the session is freed */
    size_t max_tensor_bytes;
    ogi_attention_precision attention;
    pthread_mutex_t lock;
};

ogi_session_options ogi_session_default_options(void)
{
    ogi_session_options o = {
        .threads = 0, .fold_constants = 1, .max_tensor_bytes = 0, .pack_weights = 1};
    return o;
}

/* Opens the model file, optionally rewrites its KV cache, builds the graph
 * and the run resources. */
/* glibc's malloc serves blocks from 128 KiB up with mmap and hands freed
 * memory back to the system, adapting its thresholds as it goes; a run that
 * outgrows the executor's arena borrows its activations from the heap, so
 * the first prefill of a size spent most of its time in mmap, munmap and
 * page faults (512 tokens of a 3.5M model: 1.5x slower). Blocks up to 32 MiB
 * come from the heap, and up to 64 MiB of free heap is kept. Left alone when
 * the user tunes malloc through the environment. */
static pthread_once_t session_malloc_once = PTHREAD_ONCE_INIT;

static void session_tune_malloc(void)
{
#ifdef __GLIBC__
    if (getenv("GLIBC_TUNABLES") != NULL || getenv("MALLOC_MMAP_THRESHOLD_") != NULL ||
        getenv("MALLOC_TRIM_THRESHOLD_") != NULL)
        return;
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
#endif
}

static ogi_status session_open(const char *model_path, const ogi_session_options *options,
                               bool static_kv, ogi_session **out, bool *rewritten)
{
    if (model_path == NULL || out == NULL)
        return ogi_error(OGI_ERR_INVALID_ARGUMENT, "ogi_session_open: NULL argument");
    threadpool_blas_single_thread();
    pthread_once(&session_malloc_once, session_tune_malloc);
    ogi_session_options opts = options ? *options : ogi_session_default_options();
    if (opts.attention != OGI_ATTENTION_EXACT && opts.attention != OGI_ATTENTION_INT8)
        return ogi_error(OGI_ERR_INVALID_ARGUMENT,
                         "ogi_session_open: unknown attention precision %d", (int)opts.attention);
    ogi_session *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return ogi_error(OGI_ERR_OUT_OF_MEMORY, "out of memory");
    pthread_mutex_init(&s->lock, NULL);
    s->max_tensor_bytes = opts.max_tensor_bytes;
    s->attention = opts.attention;
    ogi_status st = onnx_model_load(model_path, &s->model);
    const onnx_model *graph_model = s->model;
    if (st == OGI_OK && static_kv) {
        kv_rewrite_options ko = kv_rewrite_default_options();
        ko.max_cache_len = 1;
        ko.symbolic_cache_len = true;
        st = onnx_builder_from_model(s->model, &s->rewritten);
        if (st == OGI_OK)
            st = kv_rewrite_model(s->rewritten, &ko, NULL);
        bool kv = st == OGI_OK, logits = false;
        if (st == OGI_ERR_UNSUPPORTED) { /* no concat-style cache: start again from the file */
            ogi_error_clear();
            onnx_builder_free(s->rewritten);
            s->rewritten = NULL;
            st = onnx_builder_from_model(s->model, &s->rewritten);
        }
        if (st == OGI_OK)
            st = logits_rewrite(s->rewritten, &logits);
        if (st == OGI_OK && !kv && !logits) { /* the graph as it is */
            onnx_builder_free(s->rewritten);
            s->rewritten = NULL;
        }
        if (s->rewritten != NULL)
            graph_model = onnx_builder_model(s->rewritten);
        if (rewritten != NULL)
            *rewritten = kv;
    }
    if (st == OGI_OK) {
        graph_options go = {.fold_constants = opts.fold_constants != 0};
        st = graph_build(graph_model, &go, &s->graph);
        if (st != OGI_OK)
            ogi_error_prefix(st, "%s", model_path);
    }
    if (st == OGI_OK)
        st = threadpool_create(opts.threads, &s->pool);
    if (st == OGI_OK && opts.pack_weights)
        st = graph_pack_weights(s->graph, s->model, s->pool);
    if (st == OGI_OK)
        st = exec_arena_create(&s->arena);
    if (st == OGI_OK)
        st = exec_frame_store_create(s->graph, &s->store);
    const char *profile = getenv("OGI_PROFILE");
    if (st == OGI_OK && profile != NULL && profile[0] != '\0' && strcmp(profile, "0") != 0)
        st = exec_profile_create(strcmp(profile, "nodes") == 0, &s->profile);
    if (st != OGI_OK) {
        ogi_session_free(s);
        return st;
    }
    *out = s;
    return OGI_OK;
}

ogi_status ogi_session_open(const char *model_path, const ogi_session_options *options,
                            ogi_session **out)
{
    return session_open(model_path, options, false, out, NULL);
}

ogi_status session_open_static_kv(const char *model_path, const ogi_session_options *options,
                                  ogi_session **out, bool *rewritten)
{
    return session_open(model_path, options, true, out, rewritten);
}

void ogi_session_free(ogi_session *s)
{
    if (s == NULL)
        return;
    if (s->profile != NULL) {
        exec_profile_print(s->profile, stderr);
        exec_profile_free(s->profile);
    }
    exec_frame_store_free(s->store);
    graph_free(s->graph);
    onnx_builder_free(s->rewritten);
    onnx_model_free(s->model);
    threadpool_free(s->pool);
    exec_arena_free(s->arena);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

size_t ogi_session_input_count(const ogi_session *s)
{
    return (size_t)s->graph->n_inputs;
}

size_t ogi_session_output_count(const ogi_session *s)
{
    return (size_t)s->graph->n_outputs;
}

const char *ogi_session_input_name(const ogi_session *s, size_t i)
{
    if (i >= (size_t)s->graph->n_inputs)
        return NULL;
    return s->graph->values[s->graph->inputs[i]].name;
}

const char *ogi_session_output_name(const ogi_session *s, size_t i)
{
    if (i >= (size_t)s->graph->n_outputs)
        return NULL;
    return s->graph->values[s->graph->outputs[i]].name;
}

tensor_kind session_input_kind(const ogi_session *s, size_t i)
{
    if (i >= (size_t)s->graph->n_inputs)
        return TENSOR_KIND_TENSOR;
    return s->graph->values[s->graph->inputs[i]].type;
}

tensor_kind session_output_kind(const ogi_session *s, size_t i)
{
    if (i >= (size_t)s->graph->n_outputs)
        return TENSOR_KIND_TENSOR;
    return s->graph->values[s->graph->outputs[i]].type;
}

static ogi_status session_value_info(const graph *g, const int *list, int n, size_t index,
                                     ogi_dtype *dtype, int *rank, int64_t *dims)
{
    if (index >= (size_t)n || dtype == NULL || rank == NULL || dims == NULL)
        return ogi_error(OGI_ERR_INVALID_ARGUMENT, "no input or output %zu", index);
    const graph_value *v = &g->values[list[index]];
    *dtype = v->dtype;
    *rank = v->shape.rank;
    for (int d = 0; d < v->shape.rank; d++)
        dims[d] = v->shape.dims[d];
    return OGI_OK;
}

ogi_status ogi_session_input_info(const ogi_session *s, size_t index, ogi_dtype *dtype, int *rank,
                                  int64_t *dims)
{
    return session_value_info(s->graph, s->graph->inputs, s->graph->n_inputs, index, dtype, rank,
                              dims);
}

ogi_status ogi_session_output_info(const ogi_session *s, size_t index, ogi_dtype *dtype, int *rank,
                                   int64_t *dims)
{
    return session_value_info(s->graph, s->graph->outputs, s->graph->n_outputs, index, dtype, rank,
                              dims);
}

/* The position of name in list; callers mostly pass the names in the
 * graph's own order, so position `hint` is tried first. */
static int session_index(const int *list, int n, const graph *g, const char *name, size_t hint)
{
    if (hint < (size_t)n && strcmp(g->values[list[hint]].name, name) == 0)
        return (int)hint;
    for (int i = 0; i < n; i++)
        if (strcmp(g->values[list[i]].name, name) == 0)
            return i;
    return -1;
}

static ogi_status session_run_locked(ogi_session *s, size_t n_in, const char *const *in_names,
                                     const ogi_tensor *const *inputs, size_t n_out,
                                     const char *const *out_names, ogi_tensor **outputs)
{
    const graph *g = s->graph;
    const ogi_tensor **bound_in = calloc((size_t)g->n_inputs + 1, sizeof(*bound_in));
    ogi_tensor **all_out = calloc((size_t)g->n_outputs + 1, sizeof(*all_out));
    bool *caller_owned = calloc((size_t)g->n_outputs + 1, sizeof(bool));
    int *which = calloc(n_out + 1, sizeof(int));
    ogi_status st = OGI_OK;
    if (bound_in == NULL || all_out == NULL || caller_owned == NULL || which == NULL)
        st = ogi_error(OGI_ERR_OUT_OF_MEMORY, "out of memory");
    for (size_t i = 0; i < n_in && st == OGI_OK; i++) {
        int k = in_names[i] ? session_index(g->inputs, g->n_inputs, g, in_names[i], i) : -1;
        if (k < 0)
            st = ogi_error(OGI_ERR_NOT_FOUND, "the model has no input named '%s'",
                           in_names[i] ? in_names[i] : "(null)");
        else if (inputs[i] == NULL)
            st = ogi_error(OGI_ERR_INVALID_ARGUMENT, "input '%s' is NULL", in_names[i]);
        else
            bound_in[k] = inputs[i];
    }
    for (size_t i = 0; i < n_out && st == OGI_OK; i++) {
        which[i] = out_names[i] ? session_index(g->outputs, g->n_outputs, g, out_names[i], i) : -1;
        if (which[i] < 0)
            st = ogi_error(OGI_ERR_NOT_FOUND, "the model has no output named '%s'",
                           out_names[i] ? out_names[i] : "(null)");
        else if (outputs[i] != NULL && all_out[which[i]] == NULL) {
            all_out[which[i]] = outputs[i]; /* computed straight into the caller's tensor */
            caller_owned[which[i]] = true;
        }
    }
    if (st == OGI_OK) {
        exec_env env = {.pool = s->pool,
                        .store = s->store,
                        .arena = s->arena,
                        .max_tensor_bytes = s->max_tensor_bytes,
                        .profile = s->profile,
                        .attention = (int)s->attention};
        st = exec_run(g, &env, bound_in, all_out);
    }
    for (size_t i = 0; i < n_out && st == OGI_OK; i++) {
        int k = which[i];
        if (outputs[i] != NULL) {
            if (outputs[i] != all_out[k]) /* the same output bound twice */
                st = exec_copy_into(outputs[i], all_out[k]);
        } else if (!caller_owned[k] && all_out[k] != NULL) {
            outputs[i] = all_out[k]; /* handed over */
            caller_owned[k] = true;
        } else {
            st = tensor_clone(all_out[k], &outputs[i]); /* asked for twice */
        }
    }
    for (int k = 0; all_out != NULL && k < g->n_outputs; k++)
        if (!caller_owned[k])
            ogi_tensor_free(all_out[k]);
    free(which);
    free(caller_owned);
    free(bound_in);
    free(all_out);
    return st;
}

ogi_status ogi_session_run(ogi_session *s, size_t n_in, const char *const *in_names,
                           const ogi_tensor *const *inputs, size_t n_out,
                           const char *const *out_names, ogi_tensor **outputs)
{
    if (s == NULL || (n_in && (in_names == NULL || inputs == NULL)) ||
        (n_out && (out_names == NULL || outputs == NULL)))
        return ogi_error(OGI_ERR_INVALID_ARGUMENT, "ogi_session_run: NULL argument");
    bool *mine = calloc(n_out + 1, sizeof(bool));
    if (mine == NULL)
        return ogi_error(OGI_ERR_OUT_OF_MEMORY, "out of memory");
    for (size_t i = 0; i < n_out; i++)
        mine[i] = outputs[i] == NULL;
    pthread_mutex_lock(&s->lock);
    ogi_status st = session_run_locked(s, n_in, in_names, inputs, n_out, out_names, outputs);
    pthread_mutex_unlock(&s->lock);
    if (st != OGI_OK)
        for (size_t i = 0; i < n_out; i++)
            if (mine[i]) {
                ogi_tensor_free(outputs[i]);
                outputs[i] = NULL;
            }
    free(mine);
    return st;
}

ogi_status ogi_tensor_read_pb(const char *path, ogi_tensor **out, char **name_out)
{
    if (path == NULL || out == NULL)
        return ogi_error(OGI_ERR_INVALID_ARGUMENT, "ogi_tensor_read_pb: NULL argument");
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return ogi_error(OGI_ERR_IO, "%s: cannot open", path);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    if (size < 0) {
        fclose(f);
        return ogi_error(OGI_ERR_IO, "%s: cannot read", path);
    }
    void *buf = malloc((size_t)size + 1);
    if (buf == NULL) {
        fclose(f);
        return ogi_error(OGI_ERR_OUT_OF_MEMORY, "out of memory");
    }
    size_t got = fread(buf, 1, (size_t)size, f);
    fclose(f);
    ogi_status st = got == (size_t)size ? onnx_tensor_parse(buf, got, out, name_out)
                                        : ogi_error(OGI_ERR_IO, "%s: short read", path);
    free(buf);
    if (st != OGI_OK)
        return ogi_error_prefix(st, "%s", path);
    return OGI_OK;
}
