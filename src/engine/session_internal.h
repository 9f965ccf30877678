/* Session entry points for ogi's own layers (not public). */
#ifndef OGI_ENGINE_SESSION_INTERNAL_H
#define OGI_ENGINE_SESSION_INTERNAL_H

#include <stdbool.h>

#include "core/tensor.h"
#include "ogi.h"

/* Opens model_path with its concat-style KV cache rewritten into a static
 * cache of symbolic length, updated in place when the caller binds each
 * present output to its past input (see engine/kv_rewrite.h), and with the
 * logits computed from position ogi_logits_from on (engine/logits_rewrite.h).
 * *rewritten tells whether the graph had a concat-style cache. */
ogi_status session_open_static_kv(const char *model_path, const ogi_session_options *options,
                                  ogi_session **out, bool *rewritten);

/* Whether input / output i of the session's graph is declared a tensor, a
 * sequence or an optional (TENSOR_KIND_TENSOR past the end). */
tensor_kind session_input_kind(const ogi_session *s, size_t i);
tensor_kind session_output_kind(const ogi_session *s, size_t i);

#endif
