/* Strided copies shared by the data-movement kernels. */
#ifndef OGI_OPS_STRIDED_H
#define OGI_OPS_STRIDED_H

#include <stddef.h>
#include <stdint.h>

#include "core/threadpool.h"
#include "ogi.h"

/* dst (contiguous, dims) at coordinates o = src[sum o_k * strides[k]], in
 * elements from src; strides may be 0 (broadcast) or negative. */
typedef struct strided_view {
    int rank;
    int64_t dims[OGI_MAX_RANK];
    int64_t strides[OGI_MAX_RANK];
    size_t elsize;
    const char *src;
    char *dst;
} strided_view;

/* Runs the copy v describes (its dims and strides are simplified in
 * place), on the pool when the tensor is large. */
void strided_copy(threadpool *pool, strided_view *v);

#endif
