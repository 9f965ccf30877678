#include "ops/families.h"

const op_kernel op_kernels_linalg[] = {
    {NULL, NULL, 0, NULL},
};
