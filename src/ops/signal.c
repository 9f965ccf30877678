#include "ops/families.h"

const op_kernel op_kernels_signal[] = {
    {NULL, NULL, 0, NULL},
};
