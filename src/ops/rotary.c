#include "ops/families.h"

const op_kernel op_kernels_rotary[] = {
    {NULL, NULL, 0, NULL},
};
