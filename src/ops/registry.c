/* The kernel registry: every op family's table, searched by (domain,
 * op_type) and the greatest since_version not above the model's opset. */
#include <string.h>

#include "engine/op.h"
#include "ops/families.h"

static const op_kernel *const op_families[] = {
    op_kernels_unary,          op_kernels_binary,   op_kernels_activation,
    op_kernels_cast,           op_kernels_quantize, op_kernels_shape,
    op_kernels_slice,          op_kernels_gather,   op_kernels_reduce,
    op_kernels_softmax,        op_kernels_norm,     op_kernels_matmul,
    op_kernels_attention,      op_kernels_rotary,   op_kernels_rms_norm,
    op_kernels_tensor_scatter, op_kernels_conv,     op_kernels_pool,
    op_kernels_resize,         op_kernels_control,  op_kernels_loss,
    op_kernels_signal,         op_kernels_image,    op_kernels_linalg,
    op_kernels_tensor_gather,  op_kernels_rnn,      op_kernels_training,
    op_kernels_fused,          op_kernels_sequence, op_kernels_linear_attention,
    op_kernels_causal_conv,    op_kernels_flex,     op_kernels_sdpa,
};

static bool op_same_domain(const char *a, const char *b)
{
    if (strcmp(a, "ai.onnx") == 0)
        a = "";
    if (strcmp(b, "ai.onnx") == 0)
        b = "";
    return strcmp(a, b) == 0;
}

const op_kernel *op_find_kernel(const char *domain, const char *op_type, int opset)
{
    const op_kernel *best = NULL;
    for (size_t f = 0; f < sizeof(op_families) / sizeof(op_families[0]); f++) {
        for (const op_kernel *k = op_families[f]; k->op_type != NULL; k++) {
            if (strcmp(k->op_type, op_type) != 0 || !op_same_domain(k->domain, domain))
                continue;
            if (k->since_version > opset)
                continue;
            if (best == NULL || k->since_version > best->since_version)
                best = k;
        }
    }
    return best;
}

/* Whether k is a default-domain op named in names (NULL-terminated). */
static bool op_kernel_is_one_of(const op_kernel *k, const char *const *names)
{
    if (k->domain[0] != '\0')
        return false;
    for (int i = 0; names[i] != NULL; i++)
        if (strcmp(k->op_type, names[i]) == 0)
            return true;
    return false;
}

bool op_kernel_takes_strings(const op_kernel *k)
{
    /* Equal and Identity handle OGI_STRING themselves (Identity copies each
     * element's bytes); Shape and Size read only dims */
    static const char *const string_ops[] = {"Equal", "Identity", "Shape", "Size", NULL};
    return op_kernel_is_one_of(k, string_ops);
}

bool op_kernel_takes_sequences(const op_kernel *k)
{
    static const char *const sequence_ops[] = {
        "Identity",           "SequenceAt",
        "SequenceLength",     "SequenceInsert",
        "SequenceErase",      "ConcatFromSequence",
        "OptionalHasElement", "OptionalGetElement",
        "Optional",           NULL,
    };
    return op_kernel_is_one_of(k, sequence_ops);
}

bool op_kernel_is_random(const op_kernel *k)
{
    static const char *const random_ops[] = {
        "RandomNormal",
        "RandomUniform",
        "RandomNormalLike",
        "RandomUniformLike",
        "Bernoulli",
        "Multinomial",
        NULL,
    };
    return op_kernel_is_one_of(k, random_ops);
}

bool op_kernel_updates_in_place(const op_kernel *k)
{
    /* the kernels that call op_alloc_inplace */
    static const char *const inplace_ops[] = {"TensorScatter", "LinearAttention",
                                              "CausalConvWithState", NULL};
    return op_kernel_is_one_of(k, inplace_ops);
}
