/* Layer 3 of the design: one vtable in front of every execution backend.
 * The GenAI layer (pipelines, generator) talks to a model only through it,
 * so the same program runs on the native engine or on ONNX Runtime. */
#ifndef OGI_BACKENDS_BACKEND_H
#define OGI_BACKENDS_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "ogi.h"

typedef struct backend_session backend_session;

typedef struct backend_options {
    int threads;              /* 0: the backend's default */
    int graph_optimization;   /* ONNX Runtime level 0-99; ignored by native */
    const char *library_path; /* ONNX Runtime shared library; NULL: search */
    const char *providers;    /* execution providers, comma-separated ("cuda,cpu") */
    int static_kv;            /* ask for a static, in-place KV cache (native only) */
    int attention;            /* ogi_attention_precision (native only) */
    int pack_weights;         /* pack MatMul weights into panels (native only) */
} backend_options;

typedef struct backend_vtable {
    const char *name;
    /* 1 when the backend can be used here (its library is found). */
    int (*available)(const backend_options *opts);
    ogi_status (*open)(const char *model_path, const backend_options *opts, backend_session **out);
    void (*free)(backend_session *s);
    size_t (*input_count)(const backend_session *s);
    size_t (*output_count)(const backend_session *s);
    const char *(*input_name)(const backend_session *s, size_t i);
    const char *(*output_name)(const backend_session *s, size_t i);
    ogi_status (*input_info)(const backend_session *s, size_t i, ogi_dtype *dtype, int *rank,
                             int64_t *dims);
    /* Same contract as ogi_session_run: NULL outputs get new tensors,
     * non-NULL ones are written into. */
    ogi_status (*run)(backend_session *s, size_t n_in, const char *const *in_names,
                      const ogi_tensor *const *inputs, size_t n_out, const char *const *out_names,
                      ogi_tensor **outputs);
    /* 1 when the session's past inputs are fixed-size caches that the run
     * updates in place (present bound to past); 0 for concat-style graphs.
     * May be NULL (0). */
    int (*static_kv)(const backend_session *s);
} backend_vtable;

/* The backend called name ("native", "ort"), or NULL. */
const backend_vtable *backend_find(const char *name);

extern const backend_vtable backend_native;
extern const backend_vtable backend_ort;

#endif
