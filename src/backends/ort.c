/* The ONNX Runtime backend: ORT's C API behind the backend vtable, with the
 * library loaded at run time (ort_runtime.c says where it is looked for).
 *
 * Inputs are wrapped as OrtValues over the ogi tensors' own buffers (no
 * copy). An output the caller bound is handed to ORT as a pre-allocated
 * OrtValue over the caller's buffer, so ORT computes into it; one bound to an
 * input's buffer (an in-place update) is computed aside and copied after the
 * run, since ORT does not know the two alias. Other outputs are copied from
 * ORT's values into new ogi tensors. Runs are serialised per session, as in
 * the native engine. */
#include "backends/backend.h"
#include "backends/ort_runtime.h"
#include "core/error.h"

#ifndef OGI_HAVE_ORT_HEADERS

#define ORT_UNBUILT                                                                                \
    "the ONNX Runtime backend is not available: ogi was built without ONNX "                       \
    "Runtime headers (run scripts/setup.sh and rebuild)"

static int ort_available(const backend_options *opts)
{
    (void)opts;
    ogi_error(OGI_ERR_NOT_FOUND, ORT_UNBUILT);
    return 0;
}

static ogi_status ort_open(const char *model_path, const backend_options *opts,
                           backend_session **out)
{
    (void)model_path, (void)opts, (void)out;
    return ogi_error(OGI_ERR_NOT_FOUND, ORT_UNBUILT);
}

/* No session can be opened: the rest is never reached with a real one. */
static void ort_free(backend_session *s)
{
    (void)s;
}

static size_t ort_count(const backend_session *s)
{
    (void)s;
    return 0;
}

static const char *ort_name(const backend_session *s, size_t i)
{
    (void)s, (void)i;
    return NULL;
}

static ogi_status ort_input_info(const backend_session *s, size_t i, ogi_dtype *dtype, int *rank,
                                 int64_t *dims)
{
    (void)s, (void)i, (void)dtype, (void)rank, (void)dims;
    return ogi_error(OGI_ERR_NOT_FOUND, ORT_UNBUILT);
}

static ogi_status ort_run(backend_session *s, size_t n_in, const char *const *in_names,
                          const ogi_tensor *const *inputs, size_t n_out,
                          const char *const *out_names, ogi_tensor **outputs)
{
    (void)s, (void)n_in, (void)in_names, (void)inputs, (void)n_out, (void)out_names, (void)outputs;
    return ogi_error(OGI_ERR_NOT_FOUND, ORT_UNBUILT);
}

const backend_vtable backend_ort = {
    .name = "ort",
    .available = ort_available,
    .open = ort_open,
    .free = ort_free,
    .input_count = ort_count,
    .output_count = ort_count,
    .input_name = ort_name,
    .output_name = ort_name,
    .input_info = ort_input_info,
    .run = ort_run,
};

#else

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/tensor.h"

/* A graph input (or overridable initializer) or output as ORT declares it. */
typedef struct ort_io {
    char *name;
    ogi_dtype dtype;            /* OGI_DTYPE_UNDEFINED: not a tensor, or a type ogi lacks */
    int rank;                   /* -1: not a tensor */
    int64_t dims[OGI_MAX_RANK]; /* -1: symbolic or unknown */
    bool required;              /* false: an initializer the caller may override */
} ort_io;

typedef struct ort_session {
    const ort_runtime *rt;
    OrtSession *session;
    char *path;
    size_t n_in, n_out;
    ort_io *in, *out;
    pthread_mutex_t lock;
} ort_session;

static ogi_status ort_oom(void)
{
    return ogi_error(OGI_ERR_OUT_OF_MEMORY, "out of memory");
}

static int ort_available(const backend_options *opts)
{
    const ort_runtime *rt;
    return ort_runtime_get(opts ? opts->library_path : NULL, &rt) == OGI_OK;
}

/* ---- session options ---------------------------------------------------------- */

static ogi_status ort_set_optimization(const ort_runtime *rt, OrtSessionOptions *so, int level)
{
    if (level != ORT_DISABLE_ALL && level != ORT_ENABLE_BASIC && level != ORT_ENABLE_EXTENDED &&
        level != ORT_ENABLE_LAYOUT && level != ORT_ENABLE_ALL)
        return ogi_error(OGI_ERR_INVALID_ARGUMENT,
                         "graph_optimization %d: expected 0 (none), 1 (basic), 2 (extended), 3 "
                         "(layout) or 99 (all)",
                         level);
    return ort_check(rt,
                     rt->api->SetSessionGraphOptimizationLevel(so, (GraphOptimizationLevel)level),
                     ORT_PHASE_OPEN, "graph_optimization");
}

/* OGI_OK when ORT's provider list holds `wanted` ("CUDAExecutionProvider"). */
static ogi_status ort_provider_built(const ort_runtime *rt, const char *name, const char *wanted)
{
    char **list = NULL;
    int n = 0;
    ogi_status st = ort_check(rt, rt->api->GetAvailableProviders(&list, &n), ORT_PHASE_OPEN,
                              "execution providers");
    if (st != OGI_OK)
        return st;
    bool found = false;
    char have[512] = "";
    for (int i = 0; i < n; i++) {
        found = found || strcmp(list[i], wanted) == 0;
        size_t len = strlen(have);
        snprintf(have + len, sizeof(have) - len, "%s%s", i ? ", " : "", list[i]);
    }
    OrtStatus *release = rt->api->ReleaseAvailableProviders(list, n);
    if (release != NULL) /* nothing to do about it */
        rt->api->ReleaseStatus(release);
    if (!found)
        return ogi_error(OGI_ERR_NOT_FOUND,
                         "execution provider '%s' is not available in the ONNX Runtime at %s "
                         "(version %s has: %s)",
                         name, rt->path, rt->version, have);
    return OGI_OK;
}

/* One provider: name and up to 32 key=value options. */
typedef struct ort_provider {
    char *name;
    const char *keys[32], *values[32];
    size_t n_options;
} ort_provider;

/* Splits "name:key=value:key=value" (modified in place). */
static ogi_status ort_provider_parse(char *spec, ort_provider *p)
{
    while (isspace((unsigned char)*spec))
        spec++;
    char *end = spec + strlen(spec);
    while (end > spec && isspace((unsigned char)end[-1]))
        *--end = '\0';
    p->name = spec;
    p->n_options = 0;
    char *opt = strchr(spec, ':');
    if (opt != NULL)
        *opt++ = '\0';
    while (opt != NULL) {
        char *next = strchr(opt, ':');
        if (next != NULL)
            *next++ = '\0';
        char *eq = strchr(opt, '=');
        if (eq == NULL || eq == opt)
            return ogi_error(OGI_ERR_INVALID_ARGUMENT,
                             "execution provider '%s': option '%s' is not key=value", p->name, opt);
        if (p->n_options == 32)
            return ogi_error(OGI_ERR_INVALID_ARGUMENT,
                             "execution provider '%s': more than 32 options", p->name);
        *eq = '\0';
        p->keys[p->n_options] = opt;
        p->values[p->n_options++] = eq + 1;
        opt = next;
    }
    if (p->name[0] == '\0')
        return ogi_error(OGI_ERR_INVALID_ARGUMENT, "an execution provider without a name");
    return OGI_OK;
}

/* ORT may list CUDA among its providers and still fail to load it (the
 * provider libraries or CUDA itself missing): that is "not available" too. */
static ogi_status ort_append_cuda(const ort_runtime *rt, OrtSessionOptions *so,
                                  const ort_provider *p)
{
    ogi_status st = ort_provider_built(rt, p->name, "CUDAExecutionProvider");
    if (st != OGI_OK)
        return st;
    OrtCUDAProviderOptionsV2 *cuda = NULL;
    st = ort_check(rt, rt->api->CreateCUDAProviderOptions(&cuda), ORT_PHASE_OPEN, "cuda");
    bool bad_option = false;
    if (st == OGI_OK && p->n_options > 0) {
        st = ort_check(rt,
                       rt->api->UpdateCUDAProviderOptions(cuda, p->keys, p->values, p->n_options),
                       ORT_PHASE_OPEN, "cuda");
        bad_option = st == OGI_ERR_INVALID_ARGUMENT;
    }
    if (st == OGI_OK)
        st = ort_check(rt, rt->api->SessionOptionsAppendExecutionProvider_CUDA_V2(so, cuda),
                       ORT_PHASE_OPEN, "cuda");
    if (st != OGI_OK) {
        char why[512];
        snprintf(why, sizeof(why), "%s", ogi_last_error() + strlen("cuda: "));
        st = bad_option ? ogi_error(st, "execution provider 'cuda': bad option: %s", why)
                        : ogi_error(OGI_ERR_NOT_FOUND,
                                    "execution provider 'cuda' is not available in the ONNX "
                                    "Runtime at %s: %s",
                                    rt->path, why);
    }
    if (cuda != NULL)
        rt->api->ReleaseCUDAProviderOptions(cuda);
    return st;
}

/* providers: "cuda:device_id=1,cpu" -- execution providers in order of
 * preference, each with options as name:key=value:key=value. "cpu" is always
 * there as the last resort (it takes no options); "cuda" goes through
 * SessionOptionsAppendExecutionProvider_CUDA_V2; any other name through
 * ORT's generic SessionOptionsAppendExecutionProvider ("XNNPACK", "QNN"...). */
static ogi_status ort_set_providers(const ort_runtime *rt, OrtSessionOptions *so,
                                    const char *providers)
{
    if (providers == NULL || providers[0] == '\0')
        return OGI_OK;
    char *copy = strdup(providers);
    if (copy == NULL)
        return ort_oom();
    ogi_status st = OGI_OK;
    bool cpu_seen = false;
    char *save = NULL;
    for (char *spec = strtok_r(copy, ",", &save); spec != NULL && st == OGI_OK;
         spec = strtok_r(NULL, ",", &save)) {
        ort_provider p;
        st = ort_provider_parse(spec, &p);
        if (st != OGI_OK)
            break;
        if (strcasecmp(p.name, "cpu") == 0) {
            if (p.n_options > 0)
                st = ogi_error(OGI_ERR_INVALID_ARGUMENT,
                               "execution provider 'cpu' takes no options (got '%s')", p.keys[0]);
            cpu_seen = true;
        } else if (cpu_seen) {
            st = ogi_error(OGI_ERR_INVALID_ARGUMENT,
                           "execution providers '%s': 'cpu' is always the last resort and must "
                           "come last",
                           providers);
        } else if (strcasecmp(p.name, "cuda") == 0) {
            st = ort_append_cuda(rt, so, &p);
        } else {
            char context[160];
            snprintf(context, sizeof(context), "execution provider '%s'", p.name);
            st = ort_check(rt,
                           rt->api->SessionOptionsAppendExecutionProvider(so, p.name, p.keys,
                                                                          p.values, p.n_options),
                           ORT_PHASE_OPEN, context);
        }
    }
    free(copy);
    return st;
}

static ogi_status ort_session_options(const ort_runtime *rt, const backend_options *o,
                                      OrtSessionOptions **out)
{
    if (o->threads < 0)
        return ogi_error(OGI_ERR_INVALID_ARGUMENT, "threads %d: expected 0 (default) or more",
                         o->threads);
    OrtSessionOptions *so = NULL;
    ogi_status st =
        ort_check(rt, rt->api->CreateSessionOptions(&so), ORT_PHASE_OPEN, "session options");
    if (st == OGI_OK && o->threads > 0)
        st =
            ort_check(rt, rt->api->SetIntraOpNumThreads(so, o->threads), ORT_PHASE_OPEN, "threads");
    if (st == OGI_OK)
        st = ort_set_optimization(rt, so, o->graph_optimization);
    if (st == OGI_OK)
        st = ort_set_providers(rt, so, o->providers);
    if (st != OGI_OK && so != NULL) {
        rt->api->ReleaseSessionOptions(so);
        so = NULL;
    }
    *out = so;
    return st;
}

/* ---- declared inputs and outputs -------------------------------------------- */

static ogi_status ort_read_type(const ort_runtime *rt, OrtTypeInfo *ti, ort_io *io)
{
    io->dtype = OGI_DTYPE_UNDEFINED;
    io->rank = -1;
    const OrtTensorTypeAndShapeInfo *info = NULL;
    ogi_status st =
        ort_check(rt, rt->api->CastTypeInfoToTensorInfo(ti, &info), ORT_PHASE_OPEN, io->name);
    if (st != OGI_OK || info == NULL)
        return st; /* not a tensor: a sequence, a map, an optional */
    ONNXTensorElementDataType type;
    size_t rank = 0;
    st = ort_check(rt, rt->api->GetTensorElementType(info, &type), ORT_PHASE_OPEN, io->name);
    if (st == OGI_OK)
        st = ort_check(rt, rt->api->GetDimensionsCount(info, &rank), ORT_PHASE_OPEN, io->name);
    if (st == OGI_OK && rank > OGI_MAX_RANK)
        return ogi_error(OGI_ERR_UNSUPPORTED, "'%s' has rank %zu, more than %d", io->name, rank,
                         OGI_MAX_RANK);
    if (st == OGI_OK)
        st = ort_check(rt, rt->api->GetDimensions(info, io->dims, rank), ORT_PHASE_OPEN, io->name);
    if (st == OGI_OK) {
        if (!ort_dtype_to_ogi(type, &io->dtype))
            io->dtype = OGI_DTYPE_UNDEFINED;
        io->rank = (int)rank;
        for (size_t d = 0; d < rank; d++)
            io->dims[d] = io->dims[d] < 0 ? -1 : io->dims[d];
    }
    return st;
}

typedef enum ort_io_kind { ORT_IO_INPUT, ORT_IO_INITIALIZER, ORT_IO_OUTPUT } ort_io_kind;

/* Name and type of input / overridable initializer / output i. */
static ogi_status ort_read_io(ort_session *s, ort_io_kind kind, size_t i, ort_io *io)
{
    const OrtApi *api = s->rt->api;
    OrtAllocator *alloc = s->rt->allocator;
    char *name = NULL;
    OrtStatus *os;
    switch (kind) {
    case ORT_IO_INPUT:
        os = api->SessionGetInputName(s->session, i, alloc, &name);
        break;
    case ORT_IO_INITIALIZER:
        os = api->SessionGetOverridableInitializerName(s->session, i, alloc, &name);
        break;
    default:
        os = api->SessionGetOutputName(s->session, i, alloc, &name);
        break;
    }
    ogi_status st = ort_check(s->rt, os, ORT_PHASE_OPEN, s->path);
    if (st != OGI_OK)
        return st;
    io->name = strdup(name);
    st = ort_check(s->rt, api->AllocatorFree(alloc, name), ORT_PHASE_OPEN, s->path);
    if (st != OGI_OK) {
        free(io->name);
        io->name = NULL;
        return st;
    }
    if (io->name == NULL)
        return ort_oom();
    io->required = kind == ORT_IO_INPUT;
    OrtTypeInfo *ti = NULL;
    switch (kind) {
    case ORT_IO_INPUT:
        os = api->SessionGetInputTypeInfo(s->session, i, &ti);
        break;
    case ORT_IO_INITIALIZER:
        os = api->SessionGetOverridableInitializerTypeInfo(s->session, i, &ti);
        break;
    default:
        os = api->SessionGetOutputTypeInfo(s->session, i, &ti);
        break;
    }
    st = ort_check(s->rt, os, ORT_PHASE_OPEN, s->path);
    if (st == OGI_OK)
        st = ort_read_type(s->rt, ti, io);
    if (ti != NULL)
        api->ReleaseTypeInfo(ti);
    return st;
}

/* The inputs (graph inputs, then the initializers a caller may override)
 * and the outputs. */
static ogi_status ort_read_signature(ort_session *s)
{
    const OrtApi *api = s->rt->api;
    size_t n_inputs = 0, n_inits = 0, n_outputs = 0;
    ogi_status st =
        ort_check(s->rt, api->SessionGetInputCount(s->session, &n_inputs), ORT_PHASE_OPEN, s->path);
    if (st == OGI_OK)
        st = ort_check(s->rt, api->SessionGetOverridableInitializerCount(s->session, &n_inits),
                       ORT_PHASE_OPEN, s->path);
    if (st == OGI_OK)
        st = ort_check(s->rt, api->SessionGetOutputCount(s->session, &n_outputs), ORT_PHASE_OPEN,
                       s->path);
    if (st != OGI_OK)
        return st;
    s->in = calloc(n_inputs + n_inits + 1, sizeof(ort_io));
    s->out = calloc(n_outputs + 1, sizeof(ort_io));
    if (s->in == NULL || s->out == NULL)
        return ort_oom();
    for (size_t i = 0; i < n_inputs + n_inits && st == OGI_OK; i++, s->n_in++)
        st = ort_read_io(s, i < n_inputs ? ORT_IO_INPUT : ORT_IO_INITIALIZER,
                         i < n_inputs ? i : i - n_inputs, &s->in[i]);
    for (size_t i = 0; i < n_outputs && st == OGI_OK; i++, s->n_out++)
        st = ort_read_io(s, ORT_IO_OUTPUT, i, &s->out[i]);
    return st;
}

/* ---- open and free ------------------------------------------------------------- */

static void ort_free(backend_session *bs)
{
    ort_session *s = (ort_session *)bs;
    if (s == NULL)
        return;
    if (s->session != NULL)
        s->rt->api->ReleaseSession(s->session);
    for (size_t i = 0; s->in != NULL && i < s->n_in; i++)
        free(s->in[i].name);
    for (size_t i = 0; s->out != NULL && i < s->n_out; i++)
        free(s->out[i].name);
    free(s->in);
    free(s->out);
    free(s->path);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

static ogi_status ort_open(const char *model_path, const backend_options *opts,
                           backend_session **out)
{
    if (model_path == NULL || out == NULL)
        return ogi_error(OGI_ERR_INVALID_ARGUMENT, "ort open: NULL argument");
    *out = NULL;
    backend_options o = {.graph_optimization = ORT_ENABLE_ALL};
    if (opts != NULL)
        o = *opts;
    const ort_runtime *rt;
    ogi_status st = ort_runtime_get(o.library_path, &rt);
    if (st != OGI_OK)
        return st;
    if (access(model_path, R_OK) != 0) /* as the native reader says it */
        return ogi_error(OGI_ERR_IO, "%s: %s", model_path, strerror(errno));
    ort_session *s = calloc(1, sizeof(*s));
    if (s == NULL || (s->path = strdup(model_path)) == NULL) {
        free(s);
        return ort_oom();
    }
    s->rt = rt;
    pthread_mutex_init(&s->lock, NULL);
    OrtSessionOptions *so = NULL;
    st = ort_session_options(rt, &o, &so);
    if (st == OGI_OK)
        st = ort_check(rt, rt->api->CreateSession(rt->env, model_path, so, &s->session),
                       ORT_PHASE_OPEN, model_path);
    if (so != NULL)
        rt->api->ReleaseSessionOptions(so);
    if (st == OGI_OK)
        st = ort_read_signature(s);
    if (st != OGI_OK) {
        ort_free((backend_session *)s);
        return st;
    }
    *out = (backend_session *)s;
    return OGI_OK;
}

static size_t ort_input_count(const backend_session *bs)
{
    return ((const ort_session *)bs)->n_in;
}

static size_t ort_output_count(const backend_session *bs)
{
    return ((const ort_session *)bs)->n_out;
}

static const char *ort_input_name(const backend_session *bs, size_t i)
{
    const ort_session *s = (const ort_session *)bs;
    return i < s->n_in ? s->in[i].name : NULL;
}

static const char *ort_output_name(const backend_session *bs, size_t i)
{
    const ort_session *s = (const ort_session *)bs;
    return i < s->n_out ? s->out[i].name : NULL;
}

static ogi_status ort_input_info(const backend_session *bs, size_t i, ogi_dtype *dtype, int *rank,
                                 int64_t *dims)
{
    const ort_session *s = (const ort_session *)bs;
    if (i >= s->n_in || dtype == NULL || rank == NULL || dims == NULL)
        return ogi_error(OGI_ERR_INVALID_ARGUMENT, "no input or output %zu", i);
    const ort_io *io = &s->in[i];
    *dtype = io->dtype;
    *rank = io->rank;
    for (int d = 0; d < io->rank; d++)
        dims[d] = io->dims[d];
    return OGI_OK;
}

/* ---- run ------------------------------------------------------------------------ */

static int ort_find(const ort_io *list, size_t n, const char *name)
{
    for (size_t i = 0; name != NULL && i < n; i++)
        if (strcmp(list[i].name, name) == 0)
            return (int)i;
    return -1;
}

/* The native engine's checks of a caller's input, with its messages, so that
 * both backends fail alike. A declared rank of 0 may mean "no shape" to ORT:
 * that is left to ORT. */
static ogi_status ort_check_input(const ort_io *io, const ogi_tensor *t)
{
    char s1[128];
    if (io->dtype != OGI_DTYPE_UNDEFINED && t->dtype != io->dtype)
        return ogi_error(OGI_ERR_INVALID_ARGUMENT, "input '%s': expected dtype %s, got %s",
                         io->name, ogi_dtype_name(io->dtype), ogi_dtype_name(t->dtype));
    if (io->rank <= 0)
        return OGI_OK;
    if (t->rank != io->rank)
        return ogi_error(OGI_ERR_INVALID_ARGUMENT, "input '%s': expected rank %d, got shape %s",
                         io->name, io->rank, tensor_shape_str(t->rank, t->dims, s1, sizeof(s1)));
    for (int d = 0; d < t->rank; d++)
        if (io->dims[d] >= 0 && io->dims[d] != t->dims[d])
            return ogi_error(
                OGI_ERR_INVALID_ARGUMENT, "input '%s': dim %d must be %lld, got shape %s", io->name,
                d, (long long)io->dims[d], tensor_shape_str(t->rank, t->dims, s1, sizeof(s1)));
    return OGI_OK;
}

/* An OrtValue over t's buffer (not copied; t must outlive it). */
static ogi_status ort_wrap(const ort_session *s, const char *name, const ogi_tensor *t,
                           OrtValue **out)
{
    static uint8_t empty[8]; /* ORT wants a buffer even for zero elements */
    ONNXTensorElementDataType type;
    if (!ort_dtype_from_ogi(t->dtype, &type))
        return ogi_error(OGI_ERR_UNSUPPORTED, "'%s': ONNX Runtime has no dtype %s", name,
                         ogi_dtype_name(t->dtype));
    void *data = t->data != NULL ? t->data : empty;
    char context[300];
    snprintf(context, sizeof(context), "%s: '%s'", s->path, name);
    return ort_check(s->rt,
                     s->rt->api->CreateTensorWithDataAsOrtValue(
                         s->rt->cpu, data, t->nbytes, t->dims, (size_t)t->rank, type, out),
                     ORT_PHASE_RUN, context);
}

/* Copies ORT's value of output `name` into dst (the caller's tensor, whose
 * dtype and shape must match) or, when dst is NULL, into a new *out. */
static ogi_status ort_take(const ort_session *s, const char *name, OrtValue *v, ogi_tensor *dst,
                           ogi_tensor **out)
{
    const OrtApi *api = s->rt->api;
    enum ONNXType kind = ONNX_TYPE_UNKNOWN;
    ogi_status st = ort_check(s->rt, api->GetValueType(v, &kind), ORT_PHASE_RUN, name);
    if (st == OGI_OK && kind != ONNX_TYPE_TENSOR)
        return ogi_error(OGI_ERR_UNSUPPORTED, "%s: output '%s' is not a tensor", s->path, name);
    OrtTensorTypeAndShapeInfo *info = NULL;
    ONNXTensorElementDataType type = ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED;
    size_t rank = 0;
    int64_t dims[OGI_MAX_RANK];
    if (st == OGI_OK)
        st = ort_check(s->rt, api->GetTensorTypeAndShape(v, &info), ORT_PHASE_RUN, name);
    if (st == OGI_OK)
        st = ort_check(s->rt, api->GetTensorElementType(info, &type), ORT_PHASE_RUN, name);
    if (st == OGI_OK)
        st = ort_check(s->rt, api->GetDimensionsCount(info, &rank), ORT_PHASE_RUN, name);
    if (st == OGI_OK && rank > OGI_MAX_RANK)
        st = ogi_error(OGI_ERR_UNSUPPORTED, "%s: output '%s' has rank %zu, more than %d", s->path,
                       name, rank, OGI_MAX_RANK);
    if (st == OGI_OK)
        st = ort_check(s->rt, api->GetDimensions(info, dims, rank), ORT_PHASE_RUN, name);
    if (info != NULL)
        api->ReleaseTensorTypeAndShapeInfo(info);
    ogi_dtype dtype = OGI_DTYPE_UNDEFINED;
    if (st == OGI_OK && !ort_dtype_to_ogi(type, &dtype))
        st = ogi_error(OGI_ERR_UNSUPPORTED, "%s: output '%s' has an element type (%d) ogi lacks",
                       s->path, name, (int)type);
    void *data = NULL;
    if (st == OGI_OK)
        st = ort_check(s->rt, api->GetTensorMutableData(v, &data), ORT_PHASE_RUN, name);
    if (st != OGI_OK)
        return st;
    ogi_tensor shape = {.data = data};
    st = tensor_set_shape(&shape, dtype, (int)rank, dims);
    if (st != OGI_OK)
        return ogi_error_prefix(st, "%s: output '%s'", s->path, name);
    if (dst == NULL) {
        st = ogi_tensor_create(dtype, (int)rank, dims, out);
        dst = st == OGI_OK ? *out : NULL;
    } else if (dst->dtype != dtype || !tensor_same_shape(dst, &shape)) {
        char s1[128], s2[128];
        return ogi_error(
            OGI_ERR_RUNTIME, "output '%s': a %s %s result does not fit the bound %s %s tensor",
            name, ogi_dtype_name(dtype), tensor_shape_str((int)rank, dims, s1, sizeof(s1)),
            ogi_dtype_name(dst->dtype), tensor_shape_str(dst->rank, dst->dims, s2, sizeof(s2)));
    }
    if (st == OGI_OK && shape.nbytes > 0 && dst->data != data)
        memcpy(dst->data, data, shape.nbytes);
    return st;
}

static bool ort_overlaps(const ogi_tensor *a, const ogi_tensor *b)
{
    const uint8_t *pa = a->data, *pb = b->data;
    return pa != NULL && pb != NULL && a->nbytes > 0 && b->nbytes > 0 && pa < pb + b->nbytes &&
           pb < pa + a->nbytes;
}

/* Everything one run holds, freed together. */
typedef struct ort_call {
    const ogi_tensor **feed;  /* [n_in of the session]: the caller's input or NULL */
    OrtValue **in_values;     /* [n_in]: wrappers over fed inputs */
    const char **in_names;    /* [n_in] */
    int *fetch_of;            /* [n_out requested]: index into the fetch list */
    const char **fetch_names; /* [n_out] */
    OrtValue **fetch_values;  /* [n_out]: pre-allocated over a bound tensor, or NULL */
    ogi_tensor **fetch_bound; /* [n_out]: the tensor fetch_values[k] wraps */
    size_t n_feed, n_fetch;
} ort_call;

static void ort_call_free(const ort_session *s, ort_call *c, size_t n_in, size_t n_out)
{
    for (size_t i = 0; c->in_values != NULL && i < n_in; i++)
        if (c->in_values[i] != NULL)
            s->rt->api->ReleaseValue(c->in_values[i]);
    for (size_t k = 0; c->fetch_values != NULL && k < n_out; k++)
        if (c->fetch_values[k] != NULL)
            s->rt->api->ReleaseValue(c->fetch_values[k]);
    free(c->feed);
    free(c->in_values);
    free(c->in_names);
    free(c->fetch_of);
    free(c->fetch_names);
    free(c->fetch_values);
    free(c->fetch_bound);
}

/* Binds the caller's inputs to the session's, checks and wraps them. */
static ogi_status ort_feed(ort_session *s, ort_call *c, size_t n_in, const char *const *in_names,
                           const ogi_tensor *const *inputs)
{
    for (size_t i = 0; i < n_in; i++) {
        int k = ort_find(s->in, s->n_in, in_names[i]);
        if (k < 0)
            return ogi_error(OGI_ERR_NOT_FOUND, "the model has no input named '%s'",
                             in_names[i] ? in_names[i] : "(null)");
        if (inputs[i] == NULL)
            return ogi_error(OGI_ERR_INVALID_ARGUMENT, "input '%s' is NULL", in_names[i]);
        c->feed[k] = inputs[i];
    }
    for (size_t k = 0; k < s->n_in; k++) {
        const ogi_tensor *t = c->feed[k];
        if (t == NULL) {
            if (s->in[k].required)
                return ogi_error(OGI_ERR_INVALID_ARGUMENT, "input '%s' was not given",
                                 s->in[k].name);
            continue;
        }
        ogi_status st = ort_check_input(&s->in[k], t);
        if (st == OGI_OK)
            st = ort_wrap(s, s->in[k].name, t, &c->in_values[c->n_feed]);
        if (st != OGI_OK)
            return st;
        c->in_names[c->n_feed++] = s->in[k].name;
    }
    return OGI_OK;
}

/* The outputs to fetch, each once; a bound one gets a pre-allocated value
 * over the caller's buffer unless that buffer is also an input's. */
static ogi_status ort_prepare_fetch(ort_session *s, ort_call *c, size_t n_out,
                                    const char *const *out_names, ogi_tensor **outputs)
{
    for (size_t i = 0; i < n_out; i++) {
        int k = ort_find(s->out, s->n_out, out_names[i]);
        if (k < 0)
            return ogi_error(OGI_ERR_NOT_FOUND, "the model has no output named '%s'",
                             out_names[i] ? out_names[i] : "(null)");
        size_t f = 0;
        while (f < c->n_fetch && c->fetch_names[f] != s->out[k].name)
            f++;
        if (f == c->n_fetch)
            c->fetch_names[c->n_fetch++] = s->out[k].name;
        c->fetch_of[i] = (int)f;
        ogi_tensor *bound = outputs[i];
        ONNXTensorElementDataType type;
        if (bound == NULL || c->fetch_values[f] != NULL || !ort_dtype_from_ogi(bound->dtype, &type))
            continue;
        bool aliased = false;
        for (size_t j = 0; j < s->n_in && !aliased; j++)
            aliased = c->feed[j] != NULL && ort_overlaps(bound, c->feed[j]);
        if (aliased)
            continue;
        ogi_status st = ort_wrap(s, s->out[k].name, bound, &c->fetch_values[f]);
        if (st != OGI_OK)
            return st;
        c->fetch_bound[f] = bound;
    }
    return OGI_OK;
}

static ogi_status ort_run_locked(ort_session *s, size_t n_in, const char *const *in_names,
                                 const ogi_tensor *const *inputs, size_t n_out,
                                 const char *const *out_names, ogi_tensor **outputs)
{
    ort_call c = {
        .feed = calloc(s->n_in + 1, sizeof(*c.feed)),
        .in_values = calloc(s->n_in + 1, sizeof(*c.in_values)),
        .in_names = calloc(s->n_in + 1, sizeof(*c.in_names)),
        .fetch_of = calloc(n_out + 1, sizeof(*c.fetch_of)),
        .fetch_names = calloc(n_out + 1, sizeof(*c.fetch_names)),
        .fetch_values = calloc(n_out + 1, sizeof(*c.fetch_values)),
        .fetch_bound = calloc(n_out + 1, sizeof(*c.fetch_bound)),
    };
    ogi_status st = OGI_OK;
    if (!c.feed || !c.in_values || !c.in_names || !c.fetch_of || !c.fetch_names ||
        !c.fetch_values || !c.fetch_bound)
        st = ort_oom();
    if (st == OGI_OK)
        st = ort_feed(s, &c, n_in, in_names, inputs);
    if (st == OGI_OK)
        st = ort_prepare_fetch(s, &c, n_out, out_names, outputs);
    if (st == OGI_OK)
        st = ort_check(s->rt,
                       s->rt->api->Run(s->session, NULL, c.in_names,
                                       (const OrtValue *const *)c.in_values, c.n_feed,
                                       c.fetch_names, c.n_fetch, c.fetch_values),
                       ORT_PHASE_RUN, s->path);
    for (size_t i = 0; i < n_out && st == OGI_OK; i++) {
        int f = c.fetch_of[i];
        if (outputs[i] != NULL && outputs[i] == c.fetch_bound[f])
            continue; /* ORT computed into it */
        st = ort_take(s, c.fetch_names[f], c.fetch_values[f], outputs[i], &outputs[i]);
    }
    ort_call_free(s, &c, s->n_in, n_out);
    return st;
}

static ogi_status ort_run(backend_session *bs, size_t n_in, const char *const *in_names,
                          const ogi_tensor *const *inputs, size_t n_out,
                          const char *const *out_names, ogi_tensor **outputs)
{
    ort_session *s = (ort_session *)bs;
    if (s == NULL || (n_in && (in_names == NULL || inputs == NULL)) ||
        (n_out && (out_names == NULL || outputs == NULL)))
        return ogi_error(OGI_ERR_INVALID_ARGUMENT, "ort run: NULL argument");
    bool *mine = calloc(n_out + 1, sizeof(bool));
    if (mine == NULL)
        return ort_oom();
    for (size_t i = 0; i < n_out; i++)
        mine[i] = outputs[i] == NULL;
    pthread_mutex_lock(&s->lock);
    ogi_status st = ort_run_locked(s, n_in, in_names, inputs, n_out, out_names, outputs);
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

const backend_vtable backend_ort = {
    .name = "ort",
    .available = ort_available,
    .open = ort_open,
    .free = ort_free,
    .input_count = ort_input_count,
    .output_count = ort_output_count,
    .input_name = ort_input_name,
    .output_name = ort_output_name,
    .input_info = ort_input_info,
    .run = ort_run,
};

#endif
