/* Load-time fusion of exported node patterns into single kernels. */
#ifndef OGI_ENGINE_FUSE_H
#define OGI_ENGINE_FUSE_H

#include "engine/graph.h"

/* Applies every fusion rule of fuse.c to g (after constant folding). */
ogi_status graph_fuse(graph *g);

#endif
