/* Load-time shape inference over the graph IR (see shape_infer.c). */
#ifndef OGI_ENGINE_SHAPE_INFER_H
#define OGI_ENGINE_SHAPE_INFER_H

#include <stdbool.h>

#include "engine/graph.h"

/* Fills dtype and shape of node outputs the model did not declare, in
 * topological order. */
void shape_infer_graph(graph *g);

/* True when the rank and every dim are known numbers. */
bool shape_is_static(const value_shape *s);

#endif
