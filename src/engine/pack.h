/* Load-time packing of MatMul weights into panels (see pack.c). */
#ifndef OGI_ENGINE_PACK_H
#define OGI_ENGINE_PACK_H

#include "core/threadpool.h"
#include "engine/graph.h"
#include "onnx/onnx.h"

/* Packs every float32 2-D constant of g that only MatMul nodes read (as B)
 * into g->panels, with the pool's threads, and releases the packed weights'
 * pages of source's file mappings. Leaves g as it is when the CPU lacks
 * AVX-512 or memory is short (the plain layout serves then). */
ogi_status graph_pack_weights(graph *g, const onnx_model *source, threadpool *pool);

#endif
