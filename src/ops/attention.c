#include "ops/families.h"

const op_kernel op_kernels_attention[] = {
    {NULL, NULL, 0, NULL},
};
