/* Load-time merging of nodes that compute the same values. */
#ifndef OGI_ENGINE_CSE_H
#define OGI_ENGINE_CSE_H

#include "engine/graph.h"

/* Merges equal small constants and the nodes of g that compute the same
 * values from them (cse.c says which), after folding and fusion. */
ogi_status graph_eliminate_common(graph *g);

#endif
