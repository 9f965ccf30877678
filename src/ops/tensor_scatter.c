#include "ops/families.h"

const op_kernel op_kernels_tensor_scatter[] = {
    {NULL, NULL, 0, NULL},
};
