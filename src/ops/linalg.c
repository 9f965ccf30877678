/* Det (opset 11): the determinant of each square matrix in the last two
 * dims of X ([*, M, M] -> [*]), by LU decomposition with partial pivoting
 * in double. An empty matrix (M = 0) has determinant 1. */
#include <math.h>
#include <stdlib.h>

#include "ops/families.h"

/* Determinant of the m x m matrix a (row-major), destroyed in the process. */
static double det_lu(double *a, int64_t m)
{
    double det = 1.0;
    for (int64_t k = 0; k < m; k++) {
        int64_t pivot = k;
        for (int64_t i = k + 1; i < m; i++)
            if (fabs(a[i * m + k]) > fabs(a[pivot * m + k]))
                pivot = i;
        if (a[pivot * m + k] == 0.0)
            return 0.0;
        if (pivot != k) {
            for (int64_t j = 0; j < m; j++) {
                double t = a[k * m + j];
                a[k * m + j] = a[pivot * m + j];
                a[pivot * m + j] = t;
            }
            det = -det;
        }
        double diag = a[k * m + k];
        det *= diag;
        for (int64_t i = k + 1; i < m; i++) {
            double f = a[i * m + k] / diag;
            for (int64_t j = k + 1; j < m; j++)
                a[i * m + j] -= f * a[k * m + j];
        }
    }
    return det;
}

static ogi_status det(op_ctx *c)
{
    ogi_status st = op_require_input(c, 0);
    if (st != OGI_OK)
        return st;
    const ogi_tensor *x = c->in[0];
    if (!dtype_is_float(x->dtype))
        return op_error(c, OGI_ERR_INVALID_MODEL, "input 0: expected a float type, got %s",
                        ogi_dtype_name(x->dtype));
    if (x->rank < 2)
        return op_error(c, OGI_ERR_RUNTIME, "input 0: expected rank >= 2, got %d", x->rank);
    int64_t m = x->dims[x->rank - 1];
    if (x->dims[x->rank - 2] != m)
        return op_error(c, OGI_ERR_RUNTIME, "input 0: matrices are %lldx%lld, not square",
                        (long long)x->dims[x->rank - 2], (long long)m);
    if ((st = op_alloc(c, 0, x->dtype, x->rank - 2, x->dims)) != OGI_OK)
        return st;
    int64_t batch = tensor_numel(c->out[0]);
    if (batch == 0)
        return OGI_OK;
    double *a = malloc((size_t)(m > 0 ? m * m : 1) * sizeof(double));
    if (a == NULL)
        return op_error(c, OGI_ERR_OUT_OF_MEMORY, "out of memory for a %lldx%lld matrix",
                        (long long)m, (long long)m);
    for (int64_t b = 0; b < batch; b++) {
        for (int64_t i = 0; i < m * m; i++)
            a[i] = dtype_get_f64(x->data, x->dtype, b * m * m + i);
        dtype_set_f64(c->out[0]->data, x->dtype, b, det_lu(a, m));
    }
    free(a);
    return OGI_OK;
}

const op_kernel op_kernels_linalg[] = {
    {"", "Det", 11, det},
    {NULL, NULL, 0, NULL},
};
