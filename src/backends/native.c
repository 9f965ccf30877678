/* The native backend: ogi's own engine behind the backend vtable. When
 * asked for a static KV cache it rewrites a concat-style graph at load
 * (engine/kv_rewrite.h) so that caches are allocated once and updated in
 * place. */
#include <stdlib.h>

#include "backends/backend.h"
#include "core/error.h"
#include "engine/session_internal.h"

typedef struct native_session {
    ogi_session *session;
    bool static_kv;
} native_session;

static const ogi_session *native_of(const backend_session *s)
{
    return ((const native_session *)s)->session;
}

static int native_available(const backend_options *opts)
{
    (void)opts;
    return 1;
}

static ogi_status native_open(const char *model_path, const backend_options *opts,
                              backend_session **out)
{
    native_session *n = calloc(1, sizeof(*n));
    if (n == NULL)
        return ogi_error(OGI_ERR_OUT_OF_MEMORY, "out of memory");
    ogi_session_options so = ogi_session_default_options();
    so.threads = opts ? opts->threads : 0;
    so.attention = opts ? (ogi_attention_precision)opts->attention : OGI_ATTENTION_EXACT;
    so.pack_weights = opts ? opts->pack_weights : 1;
    ogi_status st = opts && opts->static_kv
                        ? session_open_static_kv(model_path, &so, &n->session, &n->static_kv)
                        : ogi_session_open(model_path, &so, &n->session);
    if (st != OGI_OK) {
        free(n);
        return st;
    }
    *out = (backend_session *)n;
    return OGI_OK;
}

static void native_free(backend_session *s)
{
    if (s == NULL)
        return;
    ogi_session_free(((native_session *)s)->session);
    free(s);
}

static size_t native_input_count(const backend_session *s)
{
    return ogi_session_input_count(native_of(s));
}

static size_t native_output_count(const backend_session *s)
{
    return ogi_session_output_count(native_of(s));
}

static const char *native_input_name(const backend_session *s, size_t i)
{
    return ogi_session_input_name(native_of(s), i);
}

static const char *native_output_name(const backend_session *s, size_t i)
{
    return ogi_session_output_name(native_of(s), i);
}

static ogi_status native_input_info(const backend_session *s, size_t i, ogi_dtype *dtype, int *rank,
                                    int64_t *dims)
{
    return ogi_session_input_info(native_of(s), i, dtype, rank, dims);
}

static ogi_status native_run(backend_session *s, size_t n_in, const char *const *in_names,
                             const ogi_tensor *const *inputs, size_t n_out,
                             const char *const *out_names, ogi_tensor **outputs)
{
    return ogi_session_run(((native_session *)s)->session, n_in, in_names, inputs, n_out, out_names,
                           outputs);
}

static int native_static_kv(const backend_session *s)
{
    return ((const native_session *)s)->static_kv;
}

const backend_vtable backend_native = {
    .name = "native",
    .available = native_available,
    .open = native_open,
    .free = native_free,
    .input_count = native_input_count,
    .output_count = native_output_count,
    .input_name = native_input_name,
    .output_name = native_output_name,
    .input_info = native_input_info,
    .run = native_run,
    .static_kv = native_static_kv,
};
