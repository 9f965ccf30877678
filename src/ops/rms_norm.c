#include "ops/families.h"

const op_kernel op_kernels_rms_norm[] = {
    {NULL, NULL, 0, NULL},
};
