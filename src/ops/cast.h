/* Element conversions between every numeric dtype, shared by Cast and the
 * quantize ops. Float8, float4 and float8e8m0 rounding follows the ONNX
 * reference (ml_dtypes): round to nearest even, saturating or overflowing to
 * inf/NaN as each format allows. */
#ifndef OGI_OPS_CAST_H
#define OGI_OPS_CAST_H

#include <stdbool.h>
#include <stdint.h>

#include "ogi.h"

/* How a value between two powers of two rounds to float8e8m0. */
typedef enum cast_round_mode {
    CAST_ROUND_UP = 0,  /* any fraction rounds away from zero (the default) */
    CAST_ROUND_DOWN,    /* fractions are dropped */
    CAST_ROUND_NEAREST, /* nearest, ties away from zero */
} cast_round_mode;

typedef struct cast_options {
    bool saturate;              /* float8 targets: out-of-range values become +-max */
    cast_round_mode round_mode; /* float8e8m0 targets */
} cast_options;

/* saturate = true, round_mode = up: Cast's defaults. */
cast_options cast_default_options(void);

/* Whether cast_elements handles dtype: every type but undefined, string and
 * complex. */
bool cast_dtype_supported(ogi_dtype dtype);

/* Converts n elements of src (dtype src_type) starting at element src_at into
 * dst (dtype dst_type) starting at element dst_at. Offsets count elements, so
 * packed sub-byte buffers can be addressed; packed destinations are written
 * bit-field by bit-field and their other bits are kept. Both dtypes must pass
 * cast_dtype_supported. Floats to integers truncate toward zero and keep the
 * low bits of the result; integers to narrower integers wrap. opt may be NULL
 * for the defaults. */
void cast_elements(const void *src, ogi_dtype src_type, int64_t src_at, void *dst,
                   ogi_dtype dst_type, int64_t dst_at, int64_t n, const cast_options *opt);

/* float64 to float16, rounded once to nearest even (no detour through
 * float32). */
uint16_t cast_f64_to_f16(double v);

#endif
