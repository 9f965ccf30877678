/* The op family tables (one per file in src/ops/), each ended by an entry
 * whose op_type is NULL. */
#ifndef OGI_OPS_FAMILIES_H
#define OGI_OPS_FAMILIES_H

#include "engine/op.h"

extern const op_kernel op_kernels_unary[];            /* unary.c: math functions */
extern const op_kernel op_kernels_binary[];           /* binary.c: arithmetic, comparison, logic */
extern const op_kernel op_kernels_activation[];       /* activation.c */
extern const op_kernel op_kernels_cast[];             /* cast.c: Cast, CastLike, BitCast */
extern const op_kernel op_kernels_quantize[];         /* quantize.c */
extern const op_kernel op_kernels_shape[];            /* shape.c: Reshape, Transpose, Expand, ... */
extern const op_kernel op_kernels_slice[];            /* slice.c: Slice, Concat, Split, Pad, ... */
extern const op_kernel op_kernels_gather[];           /* gather.c: Gather*, Scatter*, ... */
extern const op_kernel op_kernels_reduce[];           /* reduce.c: Reduce*, ArgMax, CumSum, TopK */
extern const op_kernel op_kernels_softmax[];          /* softmax.c */
extern const op_kernel op_kernels_norm[];             /* norm.c: LayerNorm, BatchNorm, ... */
extern const op_kernel op_kernels_matmul[];           /* matmul.c: MatMul, Gemm, ... */
extern const op_kernel op_kernels_attention[];        /* attention.c */
extern const op_kernel op_kernels_rotary[];           /* rotary.c */
extern const op_kernel op_kernels_rms_norm[];         /* rms_norm.c */
extern const op_kernel op_kernels_tensor_scatter[];   /* tensor_scatter.c */
extern const op_kernel op_kernels_tensor_gather[];    /* tensor_gather.c: ai.ogi TensorGather */
extern const op_kernel op_kernels_conv[];             /* conv.c */
extern const op_kernel op_kernels_pool[];             /* pool.c */
extern const op_kernel op_kernels_resize[];           /* resize.c: Resize, Upsample */
extern const op_kernel op_kernels_control[];          /* control.c: If, Loop, Scan */
extern const op_kernel op_kernels_loss[];             /* loss.c: cross-entropy losses */
extern const op_kernel op_kernels_signal[];           /* signal.c: DFT, STFT, windows */
extern const op_kernel op_kernels_image[];            /* image.c: GridSample, RoiAlign, NMS, ... */
extern const op_kernel op_kernels_linalg[];           /* linalg.c: Det */
extern const op_kernel op_kernels_sequence[];         /* sequence.c: Sequence*, Optional* */
extern const op_kernel op_kernels_linear_attention[]; /* linear_attention.c */
extern const op_kernel op_kernels_causal_conv[];      /* causal_conv.c: CausalConvWithState */
extern const op_kernel op_kernels_flex[];             /* flex_attention.c: FlexAttention */

extern const op_kernel op_kernels_rnn[];      /* rnn.c: RNN, GRU, LSTM, SwiGLU, DeformConv */
extern const op_kernel op_kernels_training[]; /* training.c: optimizers, Bernoulli, ... */

extern const op_kernel op_kernels_fused[]; /* fused.c: nodes made by engine/fuse.c */

/* fused_attention.c: op-by-op attention, Attention with a causal bool mask */
extern const op_kernel op_kernels_sdpa[];

#endif
