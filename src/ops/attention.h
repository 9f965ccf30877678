/* The Attention op's two kernels, shared by the op (attention.c), its tests
 * and its benchmark:
 *
 *  - attention_reference(): the plain loop in double precision, one query row
 *    at a time, materialising the row's scores; it serves every feature,
 *    including the qk_matmul_output modes and softmax_precision;
 *  - attention_fast(): float32, tiled with an online softmax (FlashAttention):
 *    no score matrix beyond one tile, the query heads of a GQA group share
 *    each K/V tile, vectorised for AVX-512 / AVX2 with a scalar fallback,
 *    multi-threaded over batch x KV heads x query tiles (and key splits when
 *    those are too few).
 *
 * Both compute Y = softmax(softcap(scale * Q K^T) + bias) V, where the bias
 * gathers the additive mask and the structural masks (causal, sliding window,
 * key padding); a query row whose keys are all masked gets Y = 0. */
#ifndef OGI_OPS_ATTENTION_H
#define OGI_OPS_ATTENTION_H

#include <stdbool.h>
#include <stdint.h>

#include "core/threadpool.h"
#include "ogi.h"

/* What qk_matmul_output holds. */
typedef enum attention_qk_mode {
    ATTENTION_QK_RAW = 0,     /* scale * Q K^T */
    ATTENTION_QK_SOFTCAP = 1, /* after softcap */
    ATTENTION_QK_BIASED = 2,  /* after softcap and the mask bias */
    ATTENTION_QK_SOFTMAX = 3, /* the probabilities */
} attention_qk_mode;

/* Sizes and options of one attention call. */
typedef struct attention_params {
    int64_t batch, q_heads, kv_heads; /* q_heads is a multiple of kv_heads */
    int64_t q_len, total_len;         /* total_len: past + new keys */
    int64_t qk_dim, v_dim;
    double scale;   /* on Q K^T (the spec's sqrt(scale) on Q and on K) */
    double softcap; /* 0: none */
    /* Query i of batch b sits at key position pos = i + query_offset[b]
     * (NULL: offset 0). causal masks keys j > pos; a window masks keys
     * j < pos - left_window and j > pos + right_window (-1: that side is
     * unbounded). */
    const int64_t *query_offset; /* [batch] or NULL */
    bool causal;
    int64_t left_window, right_window;
    const int64_t *kv_valid_len; /* [batch]: keys j >= it are masked; NULL: none */
    attention_qk_mode qk_mode;
    /* float16 / bfloat16: softmax inputs and outputs are rounded to it (the
     * reference only); anything else: full precision */
    ogi_dtype softmax_dtype;
} attention_params;

/* attention_params with no options: scale 1, no masks, no windows. */
attention_params attention_default_params(void);

/* The reference's tensors, all dense row-major doubles. */
typedef struct attention_data {
    const double *q; /* [batch, q_heads, q_len, qk_dim] */
    const double *k; /* [batch, kv_heads, total_len, qk_dim] */
    const double *v; /* [batch, kv_heads, total_len, v_dim] */
    /* additive mask or NULL; element (b, h, i, j) at the dot product of
     * mask_strides with it (0 strides broadcast); keys j >= mask_len get -inf */
    const double *mask;
    int64_t mask_strides[4];
    int64_t mask_len;
    double *y;  /* [batch, q_heads, q_len, v_dim] */
    double *qk; /* [batch, q_heads, q_len, total_len], or NULL */
} attention_data;

/* The reference: every query row in turn. Fails only when out of memory. */
ogi_status attention_reference(const attention_params *p, const attention_data *d);

/* The same rows split over pool (NULL: inline) when the work is large. */
ogi_status attention_reference_run(threadpool *pool, const attention_params *p,
                                   const attention_data *d);

/* ---- the fast kernel -------------------------------------------------------- */

/* A borrowed float32 tensor seen as [batch, heads, seq, dim], dim contiguous;
 * strides in elements (a 4D input, or a 3D [batch, seq, heads * dim] one). */
typedef struct attention_view {
    const float *data;
    int64_t batch_stride, head_stride, seq_stride;
} attention_view;

/* The fast kernel's tensors. Keys and values may come in two pieces (a past
 * cache and the new positions): key j < split is row j of k[0], key j >=
 * split is row j - split of k[1]; likewise v. */
typedef struct attention_fast_data {
    attention_view q; /* [batch, q_heads, q_len, qk_dim] */
    attention_view k[2], v[2];
    int64_t split; /* total_len when everything is in k[0] / v[0] */
    /* additive mask as in attention_data, or NULL */
    const float *mask;
    int64_t mask_strides[4];
    int64_t mask_len;
    /* [batch, q_heads, q_len, v_dim] at these strides (b, h, i); dim contiguous */
    float *y;
    int64_t y_strides[3];
} attention_fast_data;

/* Instruction sets of the fast kernel's inner loops. */
typedef enum attention_isa {
    ATTENTION_ISA_AUTO = 0, /* the best this CPU runs */
    ATTENTION_ISA_SCALAR,
    ATTENTION_ISA_AVX2, /* AVX2 + FMA */
    ATTENTION_ISA_AVX512,
} attention_isa;

/* Whether this build and CPU run isa; AUTO and SCALAR always do. */
bool attention_isa_supported(attention_isa isa);
const char *attention_isa_name(attention_isa isa);

/* Whether the fast kernel serves p: everything but softmax_precision rounding
 * (the qk_matmul_output modes are the caller's concern: the fast kernel has
 * no such output). */
bool attention_fast_supports(const attention_params *p);

/* The fast kernel over pool (NULL: inline; small problems run inline
 * anyway). Returns OGI_ERR_INVALID_ARGUMENT when p is inconsistent or isa
 * unsupported (y untouched), OGI_ERR_OUT_OF_MEMORY when scratch cannot be
 * allocated (y partly written). */
ogi_status attention_fast(threadpool *pool, const attention_params *p, const attention_fast_data *d,
                          attention_isa isa);

/* The tiled kernel with the scores of each K tile computed by someone else
 * (the int8 kernel): every unit first calls start() with its query rows
 * (scale * Q, qk_dim each; rows = group * qn, query head g's qn positions
 * together from row g * qn), then tile() for each K tile it needs, which
 * must write the scores of its rows against keys j0 .. j0 + n of (b,
 * kv_head) into s (row r at s + r * s_stride). Softmax, P V and threading
 * stay the fast kernel's, and so does P V unless pv is set: then pv() must
 * add the rows' probabilities over keys j0 .. j0 + n (row r at p + r *
 * p_stride) times V of (b, kv_head) into their outputs (row r at o + r *
 * o_stride, v_dim each). NULL scorer: attention_fast. */
typedef struct attention_scorer {
    const void *ctx;
    /* bytes of one worker's scratch for units of up to rows_max rows */
    size_t (*scratch_bytes)(const void *ctx, int64_t rows_max);
    void (*start)(const void *ctx, void *scratch, int64_t b, int64_t kv_head, const float *q,
                  int64_t rows, int64_t qn);
    void (*tile)(const void *ctx, void *scratch, int64_t b, int64_t kv_head, int64_t j0, int64_t n,
                 int64_t rows, float *s, int64_t s_stride);
    /* NULL: the fast kernel's float32 P V */
    void (*pv)(const void *ctx, int64_t b, int64_t kv_head, int64_t j0, int64_t n, int64_t rows,
               const float *p, int64_t p_stride, float *o, int64_t o_stride);
} attention_scorer;

ogi_status attention_fast_scored(threadpool *pool, const attention_params *p,
                                 const attention_fast_data *d, attention_isa isa,
                                 const attention_scorer *scorer);

/* ---- the int8 kernel (attention_int8.c) ------------------------------------- */

/* SageAttention-style: K is smoothed (each (batch, KV head) loses its mean
 * over the valid keys, which changes every score of a query row by the same
 * amount, added back in float) and quantized to symmetric int8 per block of
 * ATTENTION_INT8_K_BLOCK keys; scale * Q is quantized per query head and
 * block of query positions (the fast kernel's query block). Q K^T runs in
 * int32 and is dequantized with the two scales; softmax and P V stay the
 * fast kernel's float32. */
#define ATTENTION_INT8_K_BLOCK 64

/* Instruction sets of the int8 dot products. */
typedef enum attention_int8_isa {
    ATTENTION_INT8_AUTO = 0,   /* the best this CPU runs */
    ATTENTION_INT8_SCALAR,     /* plain C (with the scalar float loops) */
    ATTENTION_INT8_AVX_VNNI,   /* 256-bit VPDPBUSD (AVX-VNNI) */
    ATTENTION_INT8_AVX512_VNNI /* 512-bit VPDPBUSD (AVX512-VNNI) */
} attention_int8_isa;

bool attention_int8_isa_supported(attention_int8_isa isa);
const char *attention_int8_isa_name(attention_int8_isa isa);

/* Whether the int8 kernel serves p (what attention_fast serves, head sizes
 * up to 4096). */
bool attention_int8_supports(const attention_params *p);

/* Whether the int8 kernel is expected to be faster than the fast kernel on
 * p: quantizing K costs a pass over it per call, which only query blocks of
 * many rows repay. The Attention op runs the fast kernel otherwise. */
bool attention_int8_pays(const attention_params *p);

/* The int8 kernel; the same contract as attention_fast. */
ogi_status attention_int8(threadpool *pool, const attention_params *p, const attention_fast_data *d,
                          attention_int8_isa isa);

/* The kernel the engine option asks for (ogi_attention_precision): int8
 * where it serves p and pays, the fast kernel otherwise. Used by Attention
 * and by the fused attention nodes alike. */
ogi_status attention_run_chosen(ogi_attention_precision precision, threadpool *pool,
                                const attention_params *p, const attention_fast_data *d);

#endif
