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

/* True when element i of e is, at run time, dim d of value x: a known
 * number equal to x's known dim, or an element a Shape(x) gave from that dim
 * (its origin). */
bool shape_elem_is_dim(const graph *g, const value_elems *e, int i, int x, int d);

/* True when the rank and every dim are known numbers. */
bool shape_is_static(const value_shape *s);

#endif
