/* ONNX Runtime, loaded with dlopen at run time: where the library is looked
 * for, the process-wide OrtApi and OrtEnv, dtype mapping and OrtStatus ->
 * ogi error. libogi never links against ONNX Runtime; without its headers at
 * build time (OGI_HAVE_ORT_HEADERS undefined) only ort_runtime_built() is
 * here, and it says no. */
#ifndef OGI_BACKENDS_ORT_RUNTIME_H
#define OGI_BACKENDS_ORT_RUNTIME_H

#include <stdbool.h>

#include "ogi.h"

/* Whether this build can use ONNX Runtime at all (its headers were found). */
bool ort_runtime_built(void);

#ifdef OGI_HAVE_ORT_HEADERS
#include <onnxruntime_c_api.h>

typedef struct ort_runtime {
    const OrtApi *api;
    OrtEnv *env;
    OrtMemoryInfo *cpu;      /* plain CPU memory: ogi tensors' buffers */
    OrtAllocator *allocator; /* ORT's default allocator (names it hands out) */
    char path[4096];         /* the library it was loaded from (real path) */
    const char *version;     /* "1.30.0" */
} ort_runtime;

/* The runtime, loaded on first use and kept for the life of the process (one
 * ONNX Runtime per process). library_path (may be NULL) names the library;
 * else the search described in ort_runtime.c. Fails with OGI_ERR_NOT_FOUND
 * when no library is found or it is too old, and with
 * OGI_ERR_INVALID_ARGUMENT when another library than the one loaded is asked
 * for. The runtime is borrowed and never freed. */
ogi_status ort_runtime_get(const char *library_path, const ort_runtime **out);

/* Where an ORT call failed: loading a session, or running one. The same ORT
 * error code means a different ogi status in each (a bad argument while
 * loading is a bad option; while running, a run that failed on its inputs). */
typedef enum ort_phase { ORT_PHASE_OPEN, ORT_PHASE_RUN } ort_phase;

/* OGI_OK when status is NULL; else releases it and records "context: ORT's
 * message" under the ogi status its error code maps to. */
ogi_status ort_check(const ort_runtime *rt, OrtStatus *status, ort_phase phase,
                     const char *context);

/* ogi and ORT number the element types alike up to float4, but not after
 * (ORT puts uint2/int2 before float8e8m0): map by name. false when the type
 * has no counterpart (strings, complex). */
bool ort_dtype_from_ogi(ogi_dtype dtype, ONNXTensorElementDataType *out);
bool ort_dtype_to_ogi(ONNXTensorElementDataType type, ogi_dtype *out);
#endif

#endif
