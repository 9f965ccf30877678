/* Strided copies shared by the data-movement kernels (Transpose, Expand,
 * Slice, DepthToSpace, ...): gather a view of a source into a contiguous
 * destination, with contiguous runs copied by memcpy and transposed planes
 * in cache-sized tiles. */
#include "ops/strided.h"

#include <stddef.h>
#include <string.h>

#include "core/tensor.h"

/* Drops unit dims and merges dims that stay contiguous in the source, so a
 * copy runs over the fewest, longest rows. */
static void strided_simplify(strided_view *v)
{
    int r = 0;
    for (int k = 0; k < v->rank; k++) {
        if (v->dims[k] == 1)
            continue;
        if (r > 0 && v->strides[r - 1] == v->strides[k] * v->dims[k]) {
            v->dims[r - 1] *= v->dims[k];
            v->strides[r - 1] = v->strides[k];
            continue;
        }
        v->dims[r] = v->dims[k];
        v->strides[r] = v->strides[k];
        r++;
    }
    v->rank = r;
}

static inline void strided_copy_elems(char *dst, const char *src, int64_t n, ptrdiff_t step,
                                      size_t es)
{
    for (int64_t i = 0; i < n; i++)
        memcpy(dst + i * (ptrdiff_t)es, src + i * step, es);
}

/* n elements from src at stride (elements) into contiguous dst. */
static void strided_copy_run(char *dst, const char *src, int64_t n, int64_t stride, size_t es)
{
    if (stride == 1) {
        memcpy(dst, src, (size_t)n * es);
        return;
    }
    ptrdiff_t step = (ptrdiff_t)(stride * (int64_t)es);
    switch (es) {
    case 1:
        strided_copy_elems(dst, src, n, step, 1);
        break;
    case 2:
        strided_copy_elems(dst, src, n, step, 2);
        break;
    case 4:
        strided_copy_elems(dst, src, n, step, 4);
        break;
    case 8:
        strided_copy_elems(dst, src, n, step, 8);
        break;
    default:
        strided_copy_elems(dst, src, n, step, es);
        break;
    }
}

/* Source offset (elements) of the first element of row `row`, where rows
 * run over all dims but the last `inner_dims`. */
static int64_t strided_offset(const strided_view *v, int64_t row, int inner_dims, int64_t *coord)
{
    int64_t off = 0;
    for (int k = v->rank - 1 - inner_dims; k >= 0; k--) {
        coord[k] = row % v->dims[k];
        row /= v->dims[k];
        off += coord[k] * v->strides[k];
    }
    return off;
}

/* Steps the coordinates of the outer dims [0, last] and the offset. */
static int64_t strided_next(const strided_view *v, int last, int64_t *coord, int64_t off)
{
    for (int k = last; k >= 0; k--) {
        off += v->strides[k];
        if (++coord[k] < v->dims[k])
            return off;
        off -= coord[k] * v->strides[k];
        coord[k] = 0;
    }
    return off;
}

static void strided_rows(void *arg, int64_t begin, int64_t end)
{
    const strided_view *v = arg;
    int r = v->rank;
    int64_t inner = v->dims[r - 1];
    int64_t coord[OGI_MAX_RANK];
    int64_t off = strided_offset(v, begin, 1, coord);
    for (int64_t row = begin; row < end; row++) {
        strided_copy_run(v->dst + row * inner * (int64_t)v->elsize,
                         v->src + off * (int64_t)v->elsize, inner, v->strides[r - 1], v->elsize);
        off = strided_next(v, r - 2, coord, off);
    }
}

enum { STRIDED_TILE = 16 };

static inline void strided_transpose_tile(char *dst, const char *src, int64_t i0, int64_t i1,
                                          int64_t cols, int64_t ld, size_t es)
{
    for (int64_t j0 = 0; j0 < cols; j0 += STRIDED_TILE) {
        int64_t j1 = j0 + STRIDED_TILE < cols ? j0 + STRIDED_TILE : cols;
        for (int64_t i = i0; i < i1; i++)
            for (int64_t j = j0; j < j1; j++)
                memcpy(dst + (i * cols + j) * (int64_t)es, src + (i + j * ld) * (int64_t)es, es);
    }
}

/* Rows of the two innermost dims where the source is transposed: the
 * second-to-last dim has source stride 1, the last stride ld. Items are
 * blocks of STRIDED_TILE output rows within a plane. */
static void strided_planes(void *arg, int64_t begin, int64_t end)
{
    const strided_view *v = arg;
    int r = v->rank;
    int64_t rows = v->dims[r - 2], cols = v->dims[r - 1], ld = v->strides[r - 1];
    int64_t blocks = (rows + STRIDED_TILE - 1) / STRIDED_TILE;
    int64_t es = (int64_t)v->elsize;
    int64_t coord[OGI_MAX_RANK];
    for (int64_t item = begin; item < end; item++) {
        int64_t plane = item / blocks, i0 = item % blocks * STRIDED_TILE;
        int64_t i1 = i0 + STRIDED_TILE < rows ? i0 + STRIDED_TILE : rows;
        int64_t off = strided_offset(v, plane, 2, coord);
        char *dst = v->dst + plane * rows * cols * es;
        const char *src = v->src + off * es;
        switch (v->elsize) {
        case 1:
            strided_transpose_tile(dst, src, i0, i1, cols, ld, 1);
            break;
        case 2:
            strided_transpose_tile(dst, src, i0, i1, cols, ld, 2);
            break;
        case 4:
            strided_transpose_tile(dst, src, i0, i1, cols, ld, 4);
            break;
        case 8:
            strided_transpose_tile(dst, src, i0, i1, cols, ld, 8);
            break;
        default:
            strided_transpose_tile(dst, src, i0, i1, cols, ld, v->elsize);
            break;
        }
    }
}

void strided_copy(threadpool *pool, strided_view *v)
{
    int64_t numel = tensor_shape_numel(v->rank, v->dims);
    if (numel <= 0)
        return;
    strided_simplify(v);
    if (v->rank == 0) {
        memcpy(v->dst, v->src, v->elsize);
        return;
    }
    int r = v->rank;
    int64_t chunk_elems = ((int64_t)1 << 16) / (int64_t)v->elsize;
    if (r >= 2 && v->strides[r - 2] == 1 && v->strides[r - 1] != 1 && v->strides[r - 1] != 0) {
        int64_t blocks = (v->dims[r - 2] + STRIDED_TILE - 1) / STRIDED_TILE;
        int64_t items = numel / (v->dims[r - 2] * v->dims[r - 1]) * blocks;
        int64_t per_item = STRIDED_TILE * v->dims[r - 1];
        threadpool_parallel_for(pool, items, 1 + chunk_elems / per_item, strided_planes, v);
        return;
    }
    int64_t inner = v->dims[r - 1];
    threadpool_parallel_for(pool, numel / inner, 1 + chunk_elems / inner, strided_rows, v);
}
