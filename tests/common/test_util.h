/* Small helpers shared by the C tests: checks that count failures, file
 * reading, .npy loading and the location of the shared reference data. */
#ifndef OGI_TEST_UTIL_H
#define OGI_TEST_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ogi.h"

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

#endif
