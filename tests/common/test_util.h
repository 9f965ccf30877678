/* Small helpers shared by the C tests: checks that count failures, file
 * reading, .npy loading, the location of the shared reference data, and
 * models written at test time (saved, run, or loaded as the prepared graph). */
#ifndef OGI_TEST_UTIL_H
#define OGI_TEST_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ogi.h"
#include "pb_writer.h"

extern int test_failures;

#define TEST_CHECK(cond, ...)                                                                      \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            test_failures++;                                                                       \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond);               \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, "\n");                                                                 \
        }                                                                                          \
    } while (0)

/* Prints the summary line and returns the process exit status. */
int test_finish(const char *name, int checks);

/* The shared reference data folder: $OGI_SHARED_DIR or the build's default. */
const char *test_shared_dir(void);

/* Whole file in a malloc'ed buffer (NUL-terminated); NULL on error. */
void *test_read_file(const char *path, size_t *size);
bool test_write_file(const char *path, const void *data, size_t size);

/* Loads a little-endian float32 C-order .npy array. */
bool test_load_npy_f32(const char *path, float **data, int *rank, int64_t *dims);

/* A new tensor holding a copy of vals. */
ogi_tensor *test_tensor_i64(int rank, const int64_t *dims, const int64_t *vals);
ogi_tensor *test_tensor_f32(int rank, const int64_t *dims, const float *vals);

/* Deterministic pseudo-random numbers (xorshift64*). */
uint64_t test_rand(uint64_t *state);

/* ---- models written at test time ----------------------------------------------- */

/* Size of a path filled by test_save_model / test_save_graph. */
#define TEST_PATH_SIZE 64

/* Writes the finished ModelProto model to a new file /tmp/ogi-test-XXXXXX,
 * frees model and puts the file's name in path (TEST_PATH_SIZE bytes); the
 * caller unlinks it. Returns false when the file could not be written. */
bool test_save_model(pbw *model, char *path);
/* The same for a finished GraphProto, wrapped by pbw_model. */
bool test_save_graph(pbw *graph, int64_t ir_version, int64_t opset, char *path);

/* Saves graph as test_save_graph does and opens a session on it with options o
 * (NULL: the defaults), the file removed again. A failed open fails a check;
 * the caller counts it. NULL on failure. */
ogi_session *test_open_graph(pbw *graph, int64_t ir_version, int64_t opset,
                             const ogi_session_options *o);

/* Opens the model at path (threads > 0: that many threads, else the default
 * options) and runs it on the named inputs; outs[i] get the named outputs. A
 * failed open or run fails a check naming what; the caller counts them.
 * Returns whether it ran. */
bool test_run_model(const char *path, int threads, int n_in, const char *const *in_names,
                    ogi_tensor *const *in, int n_out, const char *const *out_names,
                    ogi_tensor **outs, const char *what);

/* A model loaded and its graph prepared as a session prepares it (constants
 * folded, patterns fused, equal nodes merged). */
typedef struct test_graph {
    struct onnx_model *model;
    struct graph *g;
} test_graph;

/* Loads path into t; false (nothing to free) when it does not load or build. */
bool test_graph_load(const char *path, test_graph *t);
void test_graph_free(test_graph *t);

#endif
