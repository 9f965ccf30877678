/* Single-op cases for the differential test (test_differential.c): a model of
 * one node with random inputs, which both backends load from a file and run,
 * and whose outputs are compared. A case that fails is saved as an ONNX
 * backend test folder (model.onnx + test_data_set_0/input_N.pb, ORT's outputs
 * as output_N.pb, the native ones as native_output_N.pb) that `ogi
 * conformance` or any ONNX runtime can replay. */
#ifndef OGI_TEST_DIFF_CASE_H
#define OGI_TEST_DIFF_CASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ogi.h"

#define DIFF_MAX_IO 8
#define DIFF_MAX_ATTRS 12

typedef enum diff_attr_type {
    DIFF_ATTR_FLOAT = 1,
    DIFF_ATTR_INT = 2,
    DIFF_ATTR_STRING = 3,
    DIFF_ATTR_INTS = 7,
} diff_attr_type; /* numbered as AttributeProto.AttributeType */

typedef struct diff_attr {
    const char *name; /* a string literal */
    diff_attr_type type;
    int64_t i;
    float f;
    const char *s;
    int64_t ints[OGI_MAX_RANK];
    int n_ints;
} diff_attr;

typedef struct diff_case {
    const char *op;    /* op_type */
    const char *label; /* what the counts are kept under ("Attention-24"); op by default */
    int opset;
    int n_in, n_out, n_attrs;
    ogi_tensor *in[DIFF_MAX_IO];      /* owned; NULL: an omitted optional input */
    bool in_const[DIFF_MAX_IO];       /* an initializer rather than a graph input */
    ogi_dtype out_dtype[DIFF_MAX_IO]; /* OGI_DTYPE_UNDEFINED: an omitted output */
    diff_attr attrs[DIFF_MAX_ATTRS];
    double rtol, atol; /* 1e-4, 1e-5 unless a generator says otherwise */
    bool broken;       /* out of memory while building: skip it */
    /* Attention's masked scores: ONNX's reference writes -inf, ORT the lowest
     * float; both mean "masked", so they compare equal. */
    bool masked_is_lowest;
    /* Set when ORT is known to depart from the ONNX reference on this case
     * (the reason): a difference then counts as a skip, not a failure. */
    const char *ort_deviation;
} diff_case;

void diff_case_init(diff_case *c, const char *op, int opset);
void diff_case_free(diff_case *c);

/* Inputs and outputs in node order; t is taken over (NULL t: out of memory,
 * the case is marked broken and skipped). */
void diff_in(diff_case *c, ogi_tensor *t);
void diff_in_const(diff_case *c, ogi_tensor *t);
void diff_in_none(diff_case *c);
void diff_out(diff_case *c, ogi_dtype dtype);
void diff_out_none(diff_case *c);
void diff_attr_int(diff_case *c, const char *name, int64_t v);
void diff_attr_float(diff_case *c, const char *name, float v);
void diff_attr_string(diff_case *c, const char *name, const char *v);
void diff_attr_ints(diff_case *c, const char *name, int n, const int64_t *v);

/* The serialized ModelProto (ir_version 10, one opset import), malloc'ed. */
bool diff_case_model(const diff_case *c, uint8_t **data, size_t *size);
/* The graph inputs in order: tensors and names ("in0", "in3"); returns how
 * many. Names point into a static table. */
size_t diff_case_feeds(const diff_case *c, const ogi_tensor **tensors, const char **names);
/* The names of the outputs that are not omitted, and their count. */
size_t diff_case_fetches(const diff_case *c, const char **names);

/* Saves the case under dir (created) with the outputs of both backends (either
 * may be NULL). */
bool diff_case_save(const diff_case *c, const char *dir, ogi_tensor *const *native,
                    ogi_tensor *const *ort, size_t n_out);

/* Compares a (native) and b (ORT): dtype, shape, and values within
 * atol + rtol * |b| for floats (NaN matches NaN; -inf matches values at or
 * below the lowest float when c->masked_is_lowest), exactly otherwise. On a
 * difference, why (size bytes) says where. */
bool diff_compare(const diff_case *c, const ogi_tensor *a, const ogi_tensor *b, char *why,
                  size_t size);

/* ---- random values ------------------------------------------------------------ */

uint64_t diff_next(uint64_t *rng);
/* An integer in [lo, hi]. */
int64_t diff_int(uint64_t *rng, int64_t lo, int64_t hi);
double diff_uniform(uint64_t *rng, double lo, double hi);
/* A tensor of uniform values in [lo, hi] (integers for integer dtypes, 0/1
 * for bool), or NULL when out of memory. */
ogi_tensor *diff_random(uint64_t *rng, ogi_dtype dtype, int rank, const int64_t *dims, double lo,
                        double hi);
/* A 1-D int64 tensor of n values. */
ogi_tensor *diff_i64(int n, const int64_t *vals);
/* A rank-0 tensor. */
ogi_tensor *diff_scalar(ogi_dtype dtype, double v);

/* ---- the op families (diff_ops.c) ------------------------------------------------- */

/* Fills c (initialised by the caller) with one random case of the family. */
typedef void (*diff_generator)(uint64_t *rng, diff_case *c);

typedef struct diff_family {
    const char *name;
    int cases; /* per run at scale 1 */
    diff_generator generate;
} diff_family;

extern const diff_family diff_families[];
extern const size_t diff_n_families;

#endif
