/* Element-type helpers: sizes, and conversions between float32 and the
 * 16- and 8-bit float formats (round to nearest even). */
#ifndef OGI_CORE_DTYPE_H
#define OGI_CORE_DTYPE_H

#include <stdbool.h>
#include <stdint.h>

#include "ogi.h"

/* Bytes of one element for byte-sized types; 0 for sub-byte and string. */
int dtype_size(ogi_dtype dtype);
bool dtype_is_float(ogi_dtype dtype);   /* float16/32/64, bfloat16 */
bool dtype_is_integer(ogi_dtype dtype); /* signed or unsigned, 8–64 bit, not bool */
bool dtype_is_signed(ogi_dtype dtype);
bool dtype_is_valid(int dtype);

float dtype_f16_to_f32(uint16_t h);
uint16_t dtype_f32_to_f16(float f);
float dtype_bf16_to_f32(uint16_t b);
uint16_t dtype_f32_to_bf16(float f);

/* Reads element i of a byte-sized numeric buffer as double / int64; writes
 * back with the C conversion rules (float→int truncates). Covers the float,
 * integer and bool types (float8 and packed types read as NaN / are not
 * written: ops/cast.h converts those). Slow paths for rarely used types and
 * tests; kernels specialise their hot loops. */
double dtype_get_f64(const void *data, ogi_dtype dtype, int64_t i);
int64_t dtype_get_i64(const void *data, ogi_dtype dtype, int64_t i);
void dtype_set_f64(void *data, ogi_dtype dtype, int64_t i, double v);
void dtype_set_i64(void *data, ogi_dtype dtype, int64_t i, int64_t v);

#endif
