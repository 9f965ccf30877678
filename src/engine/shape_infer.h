/* Load-time shape inference over the graph IR (see shape_infer.c). */
#ifndef OGI_ENGINE_SHAPE_INFER_H
#define OGI_ENGINE_SHAPE_INFER_H

#include <stdbool.h>

#include "engine/graph.h"

/* Fills dtype, shape and (for small integer values) elements of node
 * outputs the model did not declare, in topological order. */
void shape_infer_graph(graph *g);

/* The same for one node, whose inputs are already inferred. */
void shape_infer_node(graph *g, const graph_node *n);

/* True when every element of e is a known number. */
bool shape_elems_known(const value_elems *e);

/* True when the rank and every dim are known numbers. */
bool shape_is_static(const value_shape *s);

#endif
