/* Logits for the positions that are needed only. A decoder's last MatMul
 * projects every position onto the vocabulary, but generation reads only the
 * last position: for a 512-token prompt and a 49k vocabulary that is a fifth
 * of the prefill's arithmetic and a [512, 49152] float tensor. */
#ifndef OGI_ENGINE_LOGITS_REWRITE_H
#define OGI_ENGINE_LOGITS_REWRITE_H

#include <stdbool.h>

#include "onnx/writer.h"

/* The graph input that selects the first position whose logits are
 * computed (int64 [1], default 0: all of them). */
#define LOGITS_FROM_INPUT "ogi_logits_from"

/* When the graph output `logits` ([batch, seq, vocab]) comes from
 * MatMul(hidden, W), inserts Slice(hidden, LOGITS_FROM_INPUT, end, axis 1)
 * before it and adds the input (with default 0). *applied tells whether
 * the graph had that shape; a graph without it is left as it is. */
ogi_status logits_rewrite(onnx_builder *b, bool *applied);

#endif
