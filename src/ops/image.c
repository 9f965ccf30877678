#include "ops/families.h"

const op_kernel op_kernels_image[] = {
    {NULL, NULL, 0, NULL},
};
