/* The native backend: ogi's own engine behind the backend vtable. */
#include "backends/backend.h"

static int native_available(const backend_options *opts)
{
    (void)opts;
    return 1;
}

static ogi_status native_open(const char *model_path, const backend_options *opts,
                              backend_session **out)
{
    ogi_session_options so = ogi_session_default_options();
    so.threads = opts ? opts->threads : 0;
    return ogi_session_open(model_path, &so, (ogi_session **)out);
}

static void native_free(backend_session *s)
{
    ogi_session_free((ogi_session *)s);
}

static size_t native_input_count(const backend_session *s)
{
    return ogi_session_input_count((const ogi_session *)s);
}

static size_t native_output_count(const backend_session *s)
{
    return ogi_session_output_count((const ogi_session *)s);
}

static const char *native_input_name(const backend_session *s, size_t i)
{
    return ogi_session_input_name((const ogi_session *)s, i);
}

static const char *native_output_name(const backend_session *s, size_t i)
{
    return ogi_session_output_name((const ogi_session *)s, i);
}

static ogi_status native_input_info(const backend_session *s, size_t i, ogi_dtype *dtype,
                                    int *rank, int64_t *dims)
{
    return ogi_session_input_info((const ogi_session *)s, i, dtype, rank, dims);
}

static ogi_status native_run(backend_session *s, size_t n_in, const char *const *in_names,
                             const ogi_tensor *const *inputs, size_t n_out,
                             const char *const *out_names, ogi_tensor **outputs)
{
    return ogi_session_run((ogi_session *)s, n_in, in_names, inputs, n_out, out_names, outputs);
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
};
