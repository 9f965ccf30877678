/* The KV-cache rewrite: one graph for prefill and decode with a cache that
 * is allocated once and updated in place.
 *
 * A concat-style decoder export computes, per layer and for keys and values,
 *     present = Concat(past, new, axis=seq)
 * so the cache grows by a copy at every step. The rewrite turns each such
 * pair into a fixed-size cache buffer:
 *  - static (max_cache_len M): past is the cache [batch, heads, M, head_dim];
 *    present = TensorScatter(past, new, write_indices=past_len) is the whole
 *    cache (bind it to the past tensor and it is updated in place), and
 *    what read the Concat reads TensorGather(present, length=past_len+seq);
 *  - sliding window (W): the cache is circular (W slots by default); what
 *    read the Concat reads Concat(the last min(past_len, W-1) old entries,
 *    new), and the graph's own masks see that window as the whole past.
 * Each Shape(past) reports the shape the original graph would have seen, so
 * its mask and position arithmetic is kept as is. past_len comes from
 * attention_mask (which stays [batch, past_len + seq]) and input_ids: no new
 * graph input. docs/kv-rewrite.md gives the caller contract. */
#ifndef OGI_ENGINE_KV_REWRITE_H
#define OGI_ENGINE_KV_REWRITE_H

#include <stdbool.h>
#include <stdint.h>

#include "onnx/writer.h"

typedef struct kv_rewrite_options {
    /* Static variant: positions the cache holds (past and new tokens of a
     * run together). With sliding_window: the circular cache's slots
     * (default sliding_window, at least sliding_window - 1). */
    int64_t max_cache_len;
    /* Sliding-window variant when > 0: each token attends to itself and
     * the sliding_window - 1 tokens before it (Mistral's config.json
     * "sliding_window"). Needs position_ids as a graph input. */
    int64_t sliding_window;
    /* Static variant: declare the cache length symbolic ("cache_len") so
     * that the caller may allocate caches of any length at run time. */
    bool symbolic_cache_len;
} kv_rewrite_options;

/* Neither variant: the caller must set max_cache_len or sliding_window. */
kv_rewrite_options kv_rewrite_default_options(void);

/* What a rewrite did. */
typedef struct kv_rewrite_report {
    int n_caches;      /* past/present pairs rewritten */
    int64_t cache_len; /* positions per cache on the sequence axis */
    bool circular;     /* sliding-window variant */
    int n_upgraded;    /* nodes rewritten for the opset-24 import */
    int64_t old_opset; /* the model's default-domain opset before */
} kv_rewrite_report;

/* Rewrites the model held by b in place (see above). On failure b is left
 * half-rewritten: free it. Fails with OGI_ERR_UNSUPPORTED, naming the value
 * or node, when the graph has no concat-style cache, when a cache input is
 * read by anything other than Shape nodes and its Concat, or when the graph
 * lacks attention_mask or input_ids (inputs_embeds); OGI_ERR_INVALID_ARGUMENT
 * for bad options. report may be NULL. */
ogi_status kv_rewrite_model(onnx_builder *b, const kv_rewrite_options *opts,
                            kv_rewrite_report *report);

/* Loads in_path, rewrites it and writes out_path, tensors over 1 KiB in
 * out_path's external data file ("<file name>.data"). in_path and out_path
 * must differ. report may be NULL. */
ogi_status kv_rewrite_file(const char *in_path, const char *out_path,
                           const kv_rewrite_options *opts, kv_rewrite_report *report);

#endif
