/* Load-time packing of MatMul weights: every float32 2-D constant that is
 * read only as the B operand of MatMul nodes is copied once into panels of
 * 32 columns (ops/gemm.h), which the small-m kernel of a decode step streams
 * front to back and the prefill GEMM reads without packing per call; so is
 * the transpose of a tied embedding read as W by MatMulTransposeB (the LM
 * head; its Gather lookups read their rows from the panels too).
 *
 * All panels share one anonymous mapping. (Transparent huge pages measured
 * no faster at decode here, and the first open after a while then spent up
 * to a second zero-filling fresh huge pages.) Once a weight
 * is packed, its pages in the model file's mapping leave the resident set
 * (onnx_model_release_data), so a session holds each weight once; nothing
 * else reads them, and if something did they would map again from the file.
 *
 * The MatMul kernel finds the panels with op_input_panels() and falls back
 * to the plain layout for anything the panels do not serve. MatMuls that
 * share their A (a layer's Q, K and V; its gate and up projections) then
 * become one ai.ogi.MatMulGroup node, whose decode products run as a single
 * job on the thread pool. Sessions on a
 * CPU without AVX-512 (the panel kernels' instruction set) pack nothing. */
#include "engine/pack.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "engine/exec.h"
#include "engine/op.h"
#include "ops/gemm.h"

/* Weights smaller than this many elements stay as they are (a few KiB
 * stream just as well in rows). */
enum { PACK_MIN_ELEMENTS = 4096 };

/* The last-level cache when the system does not say. */
#define PACK_DEFAULT_L3 ((size_t)32 << 20)

/* A node that runs the kernel domain::op_type itself (not one that fusion
 * turned into another kernel while keeping its proto). */
static bool pack_is_op(const graph_node *n, const char *domain, const char *op_type)
{
    return n->kernel != NULL && strcmp(n->kernel->domain, domain) == 0 &&
           strcmp(n->kernel->op_type, op_type) == 0;
}

static bool pack_is_matmul(const graph_node *n)
{
    return n->n_inputs == 2 && pack_is_op(n, "", "MatMul");
}

/* How a weight is packed: not at all, as the B it is to MatMul nodes, or
 * transposed, as the W ([N, K], read as B = W^T) it is to MatMulTransposeB. */
typedef enum pack_kind { PACK_NONE = 0, PACK_PLAIN, PACK_TRANS } pack_kind;

/* Per value: PACK_PLAIN for a weight read as B by MatMul nodes and by
 * nothing else (no other node, no subgraph capture, not a graph output);
 * PACK_TRANS for one read as W by MatMulTransposeB nodes and otherwise only
 * as the table of Gather nodes (a tied embedding: the Gather kernel reads
 * its rows from the panels, so the file's pages leave the resident set). */
static pack_kind *pack_candidates(const graph *g)
{
    int *readers = graph_reader_counts(g, NULL);
    int *as_b = calloc((size_t)g->n_values + 1, sizeof(int));
    int *as_w = calloc((size_t)g->n_values + 1, sizeof(int));
    int *as_table = calloc((size_t)g->n_values + 1, sizeof(int));
    pack_kind *kind = calloc((size_t)g->n_values + 1, sizeof(pack_kind));
    if (readers == NULL || as_b == NULL || as_w == NULL || as_table == NULL || kind == NULL) {
        free(kind);
        kind = NULL;
        goto done;
    }
    for (int i = 0; i < g->n_nodes; i++) {
        const graph_node *n = &g->nodes[i];
        if (pack_is_matmul(n) && n->inputs[1] >= 0)
            as_b[n->inputs[1]]++;
        else if (n->n_inputs == 2 && pack_is_op(n, "ai.ogi", "MatMulTransposeB") &&
                 n->inputs[1] >= 0 && n->inputs[1] != n->inputs[0])
            as_w[n->inputs[1]]++;
        else if (n->n_inputs >= 1 && pack_is_op(n, "", "Gather") && n->inputs[0] >= 0)
            as_table[n->inputs[0]]++;
    }
    for (int v = 0; v < g->n_values; v++) {
        const graph_value *x = &g->values[v];
        const ogi_tensor *t = x->constant;
        if (x->kind != VALUE_CONST || t == NULL || t->data == NULL || t->dtype != OGI_FLOAT32 ||
            t->rank != 2 || t->dims[0] < 1 || t->dims[1] < 1 ||
            t->dims[0] * t->dims[1] < PACK_MIN_ELEMENTS)
            continue;
        if (as_b[v] > 0 && as_b[v] == readers[v] && t->dims[1] >= GEMM_PANEL)
            kind[v] = PACK_PLAIN;
        else if (as_w[v] > 0 && as_w[v] + as_table[v] == readers[v] && t->dims[0] >= GEMM_PANEL)
            kind[v] = PACK_TRANS;
    }
done:
    free(readers);
    free(as_b);
    free(as_w);
    free(as_table);
    return kind;
}

/* The product's K and N of a weight packed as `kind`. */
static void pack_dims(const ogi_tensor *t, pack_kind kind, int64_t *k, int64_t *n)
{
    *k = kind == PACK_TRANS ? t->dims[1] : t->dims[0];
    *n = kind == PACK_TRANS ? t->dims[0] : t->dims[1];
}

typedef struct pack_job {
    graph *g;
    const pack_kind *kind; /* the values to pack, and how */
    const onnx_model *source;
    const float **panels;
    char *buffer;
    size_t bytes;
} pack_job;

/* Packs W [n, k] as the panels of its transpose, releasing W's pages in
 * the file 16 panels (1.2 MB of a SmolLM2 embedding) at a time rather than
 * at the end: a tied embedding is the largest weight, and this way its rows
 * are not resident twice while it is copied. */
static void pack_transposed(const onnx_model *source, const ogi_tensor *w, int64_t k, int64_t n,
                            float *out)
{
    const int64_t panels = (n + GEMM_PANEL - 1) / GEMM_PANEL;
    for (int64_t p = 0; p < panels; p += 16) {
        int64_t end = p + 16 < panels ? p + 16 : panels, rows = end * GEMM_PANEL;
        gemm_pack_panels_trans(w->data, k, n, k, p, end, out);
        onnx_model_release_data(source, w->data,
                                (size_t)(rows < n ? rows : n) * (size_t)k * sizeof(float));
    }
}

/* Unit 0 maps the panels' pages in, 4 MiB at a time, ahead of unit 1, which
 * packs the weights one by one and releases each one's pages in the file
 * as soon as it is packed, so that the copy never holds more than one
 * weight twice. */
static void pack_run(void *arg, int64_t begin, int64_t end)
{
    const size_t chunk = (size_t)4 << 20;
    pack_job *job = arg;
    for (int64_t u = begin; u < end; u++) {
        if (u == 0) {
            for (size_t o = 0; o < job->bytes; o += chunk) /* failing: the copy faults them in */
                madvise(job->buffer + o, job->bytes - o < chunk ? job->bytes - o : chunk,
                        MADV_POPULATE_WRITE);
            continue;
        }
        char *at = job->buffer;
        for (int v = 0; v < job->g->n_values; v++) {
            if (job->kind[v] == PACK_NONE)
                continue;
            const ogi_tensor *t = job->g->values[v].constant;
            int64_t k, n;
            pack_dims(t, job->kind[v], &k, &n);
            if (job->kind[v] == PACK_PLAIN) {
                gemm_pack_panels(t->data, k, n, n, 0, (n + GEMM_PANEL - 1) / GEMM_PANEL,
                                 (float *)at);
                onnx_model_release_data(job->source, t->data, t->nbytes);
            } else {
                pack_transposed(job->source, t, k, n, (float *)at);
            }
            job->panels[v] = (const float *)at;
            at += gemm_panels_floats(k, n) * sizeof(float);
        }
    }
}

/* MatMul nodes that read the same A and packed weights become one
 * ai.ogi.MatMulGroup node at the first of them, with every weight as an
 * input and every product as an output; the others go. (Their products are
 * then computed earlier, which is safe: A is ready there and the weights are
 * constants.) */
static ogi_status pack_group_matmuls(graph *g)
{
    const op_kernel *group = op_find_kernel("ai.ogi", "MatMulGroup", 1);
    bool *removed = calloc((size_t)g->n_nodes + 1, sizeof(bool));
    if (removed == NULL)
        return ogi_error(OGI_ERR_OUT_OF_MEMORY, "out of memory while grouping MatMuls");
    int grouped = 0;
    ogi_status st = OGI_OK;
    for (int i = 0; i < g->n_nodes && group != NULL && st == OGI_OK; i++) {
        const graph_node *first = &g->nodes[i];
        if (removed[i] || !pack_is_matmul(first) || first->inputs[0] < 0 ||
            g->panels[first->inputs[1]] == NULL)
            continue;
        int members[GEMM_GROUP_MAX], n = 0;
        for (int j = i; j < g->n_nodes && n < GEMM_GROUP_MAX; j++) {
            const graph_node *m = &g->nodes[j];
            if (!removed[j] && pack_is_matmul(m) && m->inputs[0] == first->inputs[0] &&
                g->panels[m->inputs[1]] != NULL && m->outputs[0] >= 0)
                members[n++] = j;
        }
        if (n < 2)
            continue;
        int *in = malloc(sizeof(int) * (size_t)(n + 1)), *out = malloc(sizeof(int) * (size_t)n);
        if (in == NULL || out == NULL) {
            free(in);
            free(out);
            st = ogi_error(OGI_ERR_OUT_OF_MEMORY, "out of memory while grouping MatMuls");
            break;
        }
        in[0] = first->inputs[0];
        for (int k = 0; k < n; k++) {
            in[1 + k] = g->nodes[members[k]].inputs[1];
            out[k] = g->nodes[members[k]].outputs[0];
            if (k > 0)
                removed[members[k]] = true;
        }
        graph_node *keep = &g->nodes[i];
        free(keep->inputs);
        free(keep->outputs);
        keep->inputs = in;
        keep->n_inputs = n + 1;
        keep->outputs = out;
        keep->n_outputs = n;
        keep->kernel = group;
        grouped++;
    }
    if (st == OGI_OK && grouped > 0)
        st = graph_remove_nodes(g, removed);
    free(removed);
    return st;
}

ogi_status graph_pack_weights(graph *g, const onnx_model *source, threadpool *pool)
{
    if (gemm_isa_best() != GEMM_ISA_AVX512 || g->panels != NULL)
        return OGI_OK;
    pack_kind *kind = pack_candidates(g);
    if (kind == NULL)
        return ogi_error(OGI_ERR_OUT_OF_MEMORY, "out of memory while packing weights");
    size_t bytes = 0;
    for (int v = 0; v < g->n_values; v++)
        if (kind[v] != PACK_NONE) {
            int64_t k, n;
            pack_dims(g->values[v].constant, kind[v], &k, &n);
            bytes += gemm_panels_floats(k, n) * sizeof(float);
        }
    if (bytes == 0) {
        free(kind);
        return OGI_OK;
    }
    const float **panels = calloc((size_t)g->n_values, sizeof(*panels));
    void *buffer = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (panels == NULL || buffer == MAP_FAILED) {
        /* the plain layout still works: run without panels */
        free(kind);
        free(panels);
        if (buffer != MAP_FAILED)
            munmap(buffer, bytes);
        return OGI_OK;
    }
    /* one thread maps the new pages in while the other copies: the kernel's
     * page allocation and zeroing, not the copy, is most of the time (the
     * 538 MB of the SmolLM2 legacy export: 0.26-0.30 s with both threads
     * copying, 0.21-0.23 s so); a single thread does both in turn */
    pack_job job = {
        .g = g, .kind = kind, .source = source, .panels = panels, .buffer = buffer, .bytes = bytes};
    if (threadpool_size(pool) > 1)
        threadpool_parallel_for(pool, 2, 1, pack_run, &job);
    else
        pack_run(&job, 1, 2);
    g->panels = panels;
    g->panel_buffer = buffer;
    g->panel_bytes = bytes;
    /* weights larger than the last-level cache are streamed from memory at
     * every step: non-temporal prefetches keep them from evicting the rest
     * of the step (SmolLM2-135M decode about 5 % faster; docstring-llama,
     * whose 14 MB stay in L3, no faster) */
    long l3 = sysconf(_SC_LEVEL3_CACHE_SIZE);
    g->panels_stream = bytes > (l3 > 0 ? (size_t)l3 : PACK_DEFAULT_L3);
    free(kind);
    return pack_group_matmuls(g);
}
