/* Int8 attention on real activations: runs a model, captures the inputs of
 * each of its Attention nodes (added as graph outputs), then runs every
 * captured node alone in two sessions, exact and int8, and compares their
 * outputs (cosine similarity and relative L1).
 *
 * Without arguments (CTest): docstring-llama (dynamo-op23) on the first 512
 * tokens of its held-out text; every node must reach cosine >= 0.999.
 * With arguments: `MODEL_DIR N [EVERY]` runs MODEL_DIR (a dynamo-op23
 * model directory, weights inline or in external data) on N seeded random
 * token ids and compares every EVERY-th Attention node (default 1); it
 * prints the figures and checks the same threshold. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "onnx/writer.h"
#include "test_util.h"

static int checks;

/* The model with the inputs of every `every`-th Attention node added as
 * outputs; the names of those nodes' inputs (a node's slots in names[k * 6
 * .. k * 6 + 5], NULL when omitted) and how many nodes. */
typedef struct capture {
    onnx_model *model;
    onnx_builder *builder;
    int n_nodes;
    const onnx_node *nodes[64];
    const char *names[64 * 6];
} capture;

static bool capture_build(capture *c, const char *model_path, int every)
{
    memset(c, 0, sizeof(*c));
    if (onnx_model_load(model_path, &c->model) != OGI_OK ||
        onnx_builder_from_model(c->model, &c->builder) != OGI_OK)
        return false;
    onnx_graph *g = onnx_builder_graph(c->builder);
    const onnx_graph *orig = c->model->graph;
    int seen = 0;
    for (int i = 0; i < orig->n_nodes && c->n_nodes < 64; i++) {
        const onnx_node *n = &orig->nodes[i];
        if (strcmp(n->op_type, "Attention") != 0 || seen++ % every != 0)
            continue;
        for (int k = 0; k < n->n_inputs && k < 6; k++) {
            if (n->inputs[k][0] == '\0')
                continue;
            c->names[c->n_nodes * 6 + k] = n->inputs[k];
            onnx_value_info v = {n->inputs[k], ONNX_VALUE_TENSOR, OGI_DTYPE_UNDEFINED, -1, NULL};
            if (onnx_builder_add_output(c->builder, g, &v) != OGI_OK)
                return false;
        }
        c->nodes[c->n_nodes++] = n;
    }
    return c->n_nodes > 0;
}

static void capture_free(capture *c)
{
    onnx_builder_free(c->builder);
    onnx_model_free(c->model);
}

/* Runs the captured model on ids and returns the captured tensors in
 * out[k * 6 + slot] (new tensors, NULL where omitted). */
static bool capture_run(const capture *c, const char *dir, const int64_t *ids, int64_t n,
                        ogi_tensor **out)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/captured.onnx", dir);
    onnx_write_options wo = onnx_write_default_options();
    wo.external_data = true;
    wo.external_threshold = 1 << 20;
    if (onnx_model_write(onnx_builder_model(c->builder), path, &wo) != OGI_OK)
        return false;
    ogi_session *s = NULL;
    ogi_status st = ogi_session_open(path, NULL, &s);
    const int64_t dims[2] = {1, n};
    int64_t *pos = malloc(sizeof(int64_t) * (size_t)n), *ones = malloc(sizeof(int64_t) * (size_t)n);
    for (int64_t i = 0; i < n; i++) {
        pos[i] = i;
        ones[i] = 1;
    }
    const size_t n_in = st == OGI_OK ? ogi_session_input_count(s) : 0;
    ogi_tensor **in = calloc(n_in + 1, sizeof(ogi_tensor *));
    const char **in_names = calloc(n_in + 1, sizeof(char *));
    for (size_t i = 0; i < n_in && st == OGI_OK; i++) {
        const char *name = in_names[i] = ogi_session_input_name(s, i);
        if (strcmp(name, "input_ids") == 0)
            in[i] = test_tensor_i64(2, dims, ids);
        else if (strcmp(name, "attention_mask") == 0)
            in[i] = test_tensor_i64(2, dims, ones);
        else if (strcmp(name, "position_ids") == 0)
            in[i] = test_tensor_i64(2, dims, pos);
        else { /* an empty past: [1, heads, 0, dim] */
            ogi_dtype dt;
            int rank;
            int64_t d[8];
            st = ogi_session_input_info(s, i, &dt, &rank, d);
            d[0] = 1;
            d[2] = 0;
            if (st == OGI_OK)
                st = ogi_tensor_create(OGI_FLOAT32, rank, d, &in[i]);
        }
    }
    const char *out_names[64 * 6];
    ogi_tensor *got[64 * 6] = {NULL};
    size_t n_out = 0;
    for (int k = 0; k < c->n_nodes * 6; k++)
        if (c->names[k] != NULL)
            out_names[n_out++] = c->names[k];
    if (st == OGI_OK)
        st = ogi_session_run(s, n_in, in_names, (const ogi_tensor *const *)in, n_out, out_names,
                             got);
    for (int k = 0, j = 0; k < c->n_nodes * 6; k++)
        out[k] = c->names[k] != NULL ? got[j++] : NULL;
    if (st != OGI_OK)
        fprintf(stderr, "capture: %s\n", ogi_last_error());
    for (size_t i = 0; i < n_in; i++)
        ogi_tensor_free(in[i]);
    free(in);
    free(in_names);
    free(pos);
    free(ones);
    ogi_session_free(s);
    remove(path);
    snprintf(path, sizeof(path), "%s/captured.onnx.data", dir);
    remove(path);
    return st == OGI_OK;
}

/* A one-node model of node (its attributes kept, its captured inputs as
 * graph inputs named in0..in5), output Y. */
static bool single_write(const capture *c, int k, const ogi_tensor *const *t, const char *path)
{
    onnx_builder *b = NULL;
    if (onnx_builder_create(&b) != OGI_OK)
        return false;
    onnx_graph *g = onnx_builder_graph(b);
    onnx_builder_set_opset(b, "", c->model->opsets[0].version);
    onnx_node n = *c->nodes[k];
    static const char *const slots[6] = {"in0", "in1", "in2", "in3", "in4", "in5"};
    const char *ins[6] = {"", "", "", "", "", ""}, *outs[1] = {"Y"};
    n.n_inputs = n.n_inputs < 6 ? n.n_inputs : 6;
    for (int i = 0; i < n.n_inputs; i++) {
        if (t[i] == NULL)
            continue;
        ins[i] = slots[i];
        onnx_value_info v = {slots[i], ONNX_VALUE_TENSOR, ogi_tensor_dtype(t[i]), -1, NULL};
        onnx_builder_add_input(b, g, &v);
    }
    n.inputs = ins;
    n.n_outputs = 1;
    n.outputs = outs;
    onnx_value_info y = {"Y", ONNX_VALUE_TENSOR, OGI_FLOAT32, -1, NULL};
    onnx_builder_add_output(b, g, &y);
    bool ok = onnx_builder_add_node(b, g, &n, NULL) == OGI_OK &&
              onnx_model_write(onnx_builder_model(b), path, NULL) == OGI_OK;
    onnx_builder_free(b);
    return ok;
}

static ogi_tensor *single_run(const char *path, ogi_attention_precision precision,
                              const ogi_tensor *const *t)
{
    ogi_session_options o = ogi_session_default_options();
    o.attention = precision;
    ogi_session *s = NULL;
    ogi_tensor *y = NULL;
    static const char *const slots[6] = {"in0", "in1", "in2", "in3", "in4", "in5"};
    const char *names[6];
    const ogi_tensor *in[6];
    size_t n = 0;
    for (int i = 0; i < 6; i++)
        if (t[i] != NULL) {
            names[n] = slots[i];
            in[n++] = t[i];
        }
    const char *out = "Y";
    if (ogi_session_open(path, &o, &s) != OGI_OK ||
        ogi_session_run(s, n, names, in, 1, &out, &y) != OGI_OK)
        fprintf(stderr, "single node: %s\n", ogi_last_error());
    ogi_session_free(s);
    return y;
}

/* Runs each captured node exact and int8 and checks cosine >= 0.999. */
static void compare_nodes(const capture *c, ogi_tensor **t, const char *dir, const char *label)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/node.onnx", dir);
    for (int k = 0; k < c->n_nodes; k++) {
        ogi_tensor *const *in = t + k * 6;
        checks++;
        if (in[0] == NULL || !single_write(c, k, (const ogi_tensor *const *)in, path)) {
            TEST_CHECK(false, "%s node %d: no captured inputs or no model", label, k);
            continue;
        }
        ogi_tensor *ye = single_run(path, OGI_ATTENTION_EXACT, (const ogi_tensor *const *)in);
        ogi_tensor *yi = single_run(path, OGI_ATTENTION_INT8, (const ogi_tensor *const *)in);
        double dot = 0.0, ne = 0.0, ni = 0.0, l1 = 0.0, l1e = 0.0;
        const int64_t n = ye && yi ? ogi_tensor_numel(ye) : 0;
        const float *a = ye ? ogi_tensor_data(ye) : NULL, *b = yi ? ogi_tensor_data(yi) : NULL;
        bool differs = false;
        for (int64_t e = 0; e < n; e++) {
            dot += (double)a[e] * b[e];
            ne += (double)a[e] * a[e];
            ni += (double)b[e] * b[e];
            l1 += fabs((double)a[e] - b[e]);
            l1e += fabs((double)a[e]);
            differs |= a[e] != b[e];
        }
        const double cos = n > 0 ? dot / sqrt(ne * ni) : 0.0;
        const int64_t *qd = ogi_tensor_dims(in[0]), *kd = ogi_tensor_dims(in[1]);
        printf("%-14s node %-26s Q [%lld,%lld,%lld,%lld] K len %-5lld cosine %.6f  rel L1 %.2e%s\n",
               label, c->nodes[k]->name, (long long)qd[0], (long long)qd[1], (long long)qd[2],
               (long long)(ogi_tensor_rank(in[0]) > 3 ? qd[3] : 0),
               (long long)kd[ogi_tensor_rank(in[1]) - 2], cos, l1 / (l1e > 0 ? l1e : 1.0),
               differs ? "" : "  (identical: int8 not used)");
        TEST_CHECK(n > 0 && cos >= 0.999 && differs, "%s node %s: cosine %.6f (int8 %s)", label,
                   c->nodes[k]->name, cos, differs ? "used" : "not used");
        ogi_tensor_free(ye);
        ogi_tensor_free(yi);
    }
    remove(path);
}

static void run_model(const char *model_dir, const int64_t *ids, int64_t n, int every,
                      const char *label)
{
    char model[512], dir[] = "/tmp/ogi_int8_capture_XXXXXX";
    snprintf(model, sizeof(model), "%s/model.onnx", model_dir);
    if (mkdtemp(dir) == NULL)
        return;
    capture c;
    ogi_tensor *t[64 * 6] = {NULL};
    checks++;
    bool ok = capture_build(&c, model, every) && capture_run(&c, dir, ids, n, t);
    TEST_CHECK(ok, "%s: could not capture the Attention inputs: %s", model_dir, ogi_last_error());
    if (ok)
        compare_nodes(&c, t, dir, label);
    for (int k = 0; k < 64 * 6; k++)
        ogi_tensor_free(t[k]);
    capture_free(&c);
    rmdir(dir);
}

/* The first n ids of docstring-llama's held-out text. */
static int64_t *heldout_ids(int64_t n)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/models/docstring-llama/perplexity_golden.json",
             test_shared_dir());
    json_t *root = json_load_file(path, 0, NULL);
    json_t *arr = json_object_get(root, "ids_first_1026");
    int64_t *ids = NULL;
    if (json_is_array(arr) && (int64_t)json_array_size(arr) >= n) {
        ids = malloc(sizeof(int64_t) * (size_t)n);
        for (int64_t i = 0; ids != NULL && i < n; i++)
            ids[i] = json_integer_value(json_array_get(arr, (size_t)i));
    }
    json_decref(root);
    return ids;
}

int main(int argc, char **argv)
{
    if (argc >= 3) {
        const int64_t n = atoll(argv[2]);
        const int every = argc >= 4 ? atoi(argv[3]) : 1;
        int64_t *ids = malloc(sizeof(int64_t) * (size_t)(n > 0 ? n : 1));
        uint64_t seed = 7;
        for (int64_t i = 0; i < n; i++)
            ids[i] = (int64_t)(test_rand(&seed) % 1000); /* below every vocabulary's size */
        char label[32];
        snprintf(label, sizeof(label), "random n=%lld", (long long)n);
        run_model(argv[1], ids, n, every > 0 ? every : 1, label);
        free(ids);
        return test_finish("test_attention_int8_models", checks);
    }
    char dir[512];
    snprintf(dir, sizeof(dir), "%s/models/docstring-llama/onnx-dynamo-op23", test_shared_dir());
    int64_t *ids = heldout_ids(512);
    checks++;
    TEST_CHECK(ids != NULL, "cannot read the held-out ids");
    if (ids != NULL)
        run_model(dir, ids, 512, 1, "heldout n=512");
    free(ids);
    return test_finish("test_attention_int8_models", checks);
}
