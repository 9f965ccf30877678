/* Loading ONNX Runtime at run time.
 *
 * Where the library is looked for (the first that applies wins):
 *  1. the path the caller gives (backend_options.library_path, from
 *     ogi_pipeline_options.ort_library or `ogi ... --ort-library`);
 *  2. $OGI_ORT_LIBRARY;
 *  3. deps/onnxruntime/lib/libonnxruntime.so.1 under the current directory
 *     (a checkout where scripts/setup.sh ran);
 *  4. the same under the executable's parent directory, i.e. the directory of
 *     /proc/self/exe + "/../deps/onnxruntime/lib/libonnxruntime.so.1" (the
 *     ogi binary in build/ of such a checkout).
 * A library named in 1 or 2 that does not load is an error, not a reason to
 * search on: the caller asked for that one. A path without '/' goes to the
 * dynamic linker's own search (LD_LIBRARY_PATH, ld.so.cache).
 *
 * The library is loaded once per process and never unloaded (ONNX Runtime
 * does not support dlclose), with one OrtEnv for every session: a
 * registry-like global filled on first use under a lock.
 *
 * $OGI_ORT_LOG_LEVEL (0 verbose ... 4 fatal, the default) sets ORT's own
 * logging to stderr; ogi reports every failure itself, so by default ORT
 * stays quiet. */
#include "backends/ort_runtime.h"

#ifndef OGI_HAVE_ORT_HEADERS

bool ort_runtime_built(void)
{
    return false;
}

#else

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "core/threadpool.h"

#define ORT_DEPS_LIBRARY "deps/onnxruntime/lib/libonnxruntime.so.1"

static pthread_mutex_t ort_lock = PTHREAD_MUTEX_INITIALIZER;
static ort_runtime ort_loaded;
static void *ort_handle; /* non-NULL once ort_loaded is ready */

bool ort_runtime_built(void)
{
    return true;
}

/* ORT's log level: $OGI_ORT_LOG_LEVEL when it is a digit 0-4, else fatal. */
static OrtLoggingLevel ort_log_level(void)
{
    const char *s = getenv("OGI_ORT_LOG_LEVEL");
    if (s != NULL && s[0] >= '0' && s[0] <= '4' && s[1] == '\0')
        return (OrtLoggingLevel)(s[0] - '0');
    return ORT_LOGGING_LEVEL_FATAL;
}

/* Fills rt from the library lib was opened as. */
static ogi_status ort_runtime_init(void *lib, const char *name, ort_runtime *rt)
{
    typedef const OrtApiBase *(*get_api_base_fn)(void);
    get_api_base_fn get_base;
    *(void **)&get_base = dlsym(lib, "OrtGetApiBase");
    if (get_base == NULL)
        return ogi_error(OGI_ERR_NOT_FOUND, "%s: not an ONNX Runtime library (no OrtGetApiBase)",
                         name);
    Dl_info info;
    const char *file = dladdr(*(void **)&get_base, &info) && info.dli_fname ? info.dli_fname : name;
    if (realpath(file, rt->path) == NULL)
        snprintf(rt->path, sizeof(rt->path), "%s", file);
    const OrtApiBase *base = get_base();
    rt->version = base->GetVersionString();
    rt->api = base->GetApi(ORT_API_VERSION);
    if (rt->api == NULL)
        return ogi_error(OGI_ERR_NOT_FOUND,
                         "%s: ONNX Runtime %s is too old: ogi needs its C API version %d (ONNX "
                         "Runtime 1.%d or newer); run scripts/setup.sh",
                         rt->path, rt->version, ORT_API_VERSION, ORT_API_VERSION);
    const OrtApi *api = rt->api;
    ogi_status st =
        ort_check(rt, api->CreateEnv(ort_log_level(), "ogi", &rt->env), ORT_PHASE_OPEN, rt->path);
    if (st == OGI_OK)
        st =
            ort_check(rt, api->CreateCpuMemoryInfo(OrtDeviceAllocator, OrtMemTypeDefault, &rt->cpu),
                      ORT_PHASE_OPEN, rt->path);
    if (st == OGI_OK)
        st = ort_check(rt, api->GetAllocatorWithDefaultOptions(&rt->allocator), ORT_PHASE_OPEN,
                       rt->path);
    if (st != OGI_OK) {
        if (rt->cpu != NULL)
            api->ReleaseMemoryInfo(rt->cpu);
        if (rt->env != NULL)
            api->ReleaseEnv(rt->env);
        rt->cpu = NULL;
        rt->env = NULL;
    }
    return st;
}

/* The directory of the running executable + "/../" + ORT_DEPS_LIBRARY. */
static bool ort_exe_relative(char *out, size_t size)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0)
        return false;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash == NULL)
        return false;
    *slash = '\0';
    return snprintf(out, size, "%s/../%s", exe, ORT_DEPS_LIBRARY) < (int)size;
}

/* Opens the library by the search above; *lib and *name (the path that
 * loaded) on success. */
static ogi_status ort_library_open(const char *asked, const char *how, void **lib, char *name,
                                   size_t size)
{
    if (asked != NULL) {
        *lib = dlopen(asked, RTLD_NOW | RTLD_LOCAL);
        if (*lib == NULL)
            return ogi_error(OGI_ERR_NOT_FOUND, "ONNX Runtime library not found (%s): %s", how,
                             dlerror());
        if (snprintf(name, size, "%s", asked) >= (int)size)
            name[0] = '\0';
        return OGI_OK;
    }
    char candidates[2][PATH_MAX];
    snprintf(candidates[0], sizeof(candidates[0]), "%s", ORT_DEPS_LIBRARY);
    bool have_exe = ort_exe_relative(candidates[1], sizeof(candidates[1]));
    for (int i = 0; i < (have_exe ? 2 : 1); i++) {
        if (access(candidates[i], F_OK) != 0)
            continue;
        *lib = dlopen(candidates[i], RTLD_NOW | RTLD_LOCAL);
        if (*lib == NULL)
            return ogi_error(OGI_ERR_NOT_FOUND, "ONNX Runtime library %s does not load: %s",
                             candidates[i], dlerror());
        if (snprintf(name, size, "%s", candidates[i]) >= (int)size)
            name[0] = '\0';
        return OGI_OK;
    }
    return ogi_error(OGI_ERR_NOT_FOUND,
                     "ONNX Runtime library not found: set OGI_ORT_LIBRARY or run scripts/setup.sh "
                     "(looked for ./%s%s%s)",
                     ORT_DEPS_LIBRARY, have_exe ? " and " : "", have_exe ? candidates[1] : "");
}

static ogi_status ort_runtime_get_locked(const char *library_path, const ort_runtime **out)
{
    const char *asked = library_path != NULL && library_path[0] != '\0' ? library_path : NULL;
    const char *how = "ort_library";
    if (asked == NULL) {
        const char *env = getenv("OGI_ORT_LIBRARY");
        asked = env != NULL && env[0] != '\0' ? env : NULL;
        how = "$OGI_ORT_LIBRARY";
    }
    if (ort_handle != NULL) {
        void *same = asked ? dlopen(asked, RTLD_NOW | RTLD_NOLOAD) : ort_handle;
        if (same != NULL && same != ort_handle)
            dlclose(same);
        if (same != ort_handle)
            return ogi_error(OGI_ERR_INVALID_ARGUMENT,
                             "ONNX Runtime is already loaded from %s; one process cannot load "
                             "another (%s %s)",
                             ort_loaded.path, how, asked);
        if (asked != NULL)
            dlclose(same); /* drops the reference NOLOAD took */
        *out = &ort_loaded;
        return OGI_OK;
    }
    void *lib = NULL;
    char name[PATH_MAX];
    ogi_status st = ort_library_open(asked, how, &lib, name, sizeof(name));
    if (st != OGI_OK)
        return st;
    ort_runtime rt = {0};
    st = ort_runtime_init(lib, name, &rt);
    if (st != OGI_OK)
        return st; /* lib stays loaded: ONNX Runtime does not support dlclose */
    ort_loaded = rt;
    ort_handle = lib;
    *out = &ort_loaded;
    return OGI_OK;
}

ogi_status ort_runtime_get(const char *library_path, const ort_runtime **out)
{
    threadpool_blas_single_thread(); /* ogi links OpenBLAS: its idle threads go */
    pthread_mutex_lock(&ort_lock);
    ogi_status st = ort_runtime_get_locked(library_path, out);
    pthread_mutex_unlock(&ort_lock);
    return st;
}

/* ORT's error codes as ogi statuses. */
static ogi_status ort_status_of(OrtErrorCode code, ort_phase phase)
{
    switch (code) {
    case ORT_NO_SUCHFILE:
        return OGI_ERR_IO;
    case ORT_NOT_IMPLEMENTED:
        return OGI_ERR_UNSUPPORTED;
    case ORT_NO_MODEL:
    case ORT_INVALID_PROTOBUF:
    case ORT_INVALID_GRAPH:
    case ORT_MODEL_LOADED:
        return OGI_ERR_INVALID_MODEL;
    case ORT_INVALID_ARGUMENT:
        return phase == ORT_PHASE_OPEN ? OGI_ERR_INVALID_ARGUMENT : OGI_ERR_RUNTIME;
    default:
        return phase == ORT_PHASE_OPEN ? OGI_ERR_INVALID_MODEL : OGI_ERR_RUNTIME;
    }
}

/* ORT's failed checks read "... /onnxruntime_src/dir/file.cc:313 <function
 * signature> <condition> was false. <reason>": keeps what comes around the
 * source location, the signature and the condition, and drops trailing
 * newlines. */
static void ort_tidy_message(const char *msg, char *out, size_t size)
{
    const char *src = strstr(msg, "/onnxruntime_src/");
    const char *end = src ? strstr(src, " was false. ") : NULL;
    if (end != NULL)
        snprintf(out, size, "%.*s%s", (int)(src - msg), msg, end + strlen(" was false. "));
    else
        snprintf(out, size, "%s", msg);
    size_t n = strlen(out);
    while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == ' '))
        out[--n] = '\0';
}

ogi_status ort_check(const ort_runtime *rt, OrtStatus *status, ort_phase phase, const char *context)
{
    if (status == NULL)
        return OGI_OK;
    const char *msg = rt->api->GetErrorMessage(status);
    char tidy[1024];
    ort_tidy_message(msg != NULL ? msg : "ONNX Runtime failed", tidy, sizeof(tidy));
    ogi_status st = ort_status_of(rt->api->GetErrorCode(status), phase);
    st = ogi_error(st, "%s: %s", context, tidy);
    rt->api->ReleaseStatus(status);
    return st;
}

static const struct {
    ogi_dtype ogi;
    ONNXTensorElementDataType ort;
} ort_dtypes[] = {
    {OGI_FLOAT32, ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT},
    {OGI_UINT8, ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8},
    {OGI_INT8, ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8},
    {OGI_UINT16, ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT16},
    {OGI_INT16, ONNX_TENSOR_ELEMENT_DATA_TYPE_INT16},
    {OGI_INT32, ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32},
    {OGI_INT64, ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64},
    {OGI_BOOL, ONNX_TENSOR_ELEMENT_DATA_TYPE_BOOL},
    {OGI_FLOAT16, ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16},
    {OGI_FLOAT64, ONNX_TENSOR_ELEMENT_DATA_TYPE_DOUBLE},
    {OGI_UINT32, ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT32},
    {OGI_UINT64, ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT64},
    {OGI_BFLOAT16, ONNX_TENSOR_ELEMENT_DATA_TYPE_BFLOAT16},
    {OGI_FLOAT8E4M3FN, ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT8E4M3FN},
    {OGI_FLOAT8E4M3FNUZ, ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT8E4M3FNUZ},
    {OGI_FLOAT8E5M2, ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT8E5M2},
    {OGI_FLOAT8E5M2FNUZ, ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT8E5M2FNUZ},
    {OGI_UINT4, ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT4},
    {OGI_INT4, ONNX_TENSOR_ELEMENT_DATA_TYPE_INT4},
    {OGI_FLOAT4E2M1, ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT4E2M1},
    {OGI_UINT2, ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT2},
    {OGI_INT2, ONNX_TENSOR_ELEMENT_DATA_TYPE_INT2},
    {OGI_FLOAT8E8M0, ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT8E8M0},
};

bool ort_dtype_from_ogi(ogi_dtype dtype, ONNXTensorElementDataType *out)
{
    for (size_t i = 0; i < sizeof(ort_dtypes) / sizeof(ort_dtypes[0]); i++)
        if (ort_dtypes[i].ogi == dtype) {
            *out = ort_dtypes[i].ort;
            return true;
        }
    return false;
}

bool ort_dtype_to_ogi(ONNXTensorElementDataType type, ogi_dtype *out)
{
    for (size_t i = 0; i < sizeof(ort_dtypes) / sizeof(ort_dtypes[0]); i++)
        if (ort_dtypes[i].ort == type) {
            *out = ort_dtypes[i].ogi;
            return true;
        }
    return false;
}

#endif
