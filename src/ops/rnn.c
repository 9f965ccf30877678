#include "ops/families.h"

const op_kernel op_kernels_rnn[] = {
    {NULL, NULL, 0, NULL},
};
