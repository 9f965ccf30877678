/* The ONNX writer and builder: every tiny model and a sample of conformance
 * node models (If/Loop/Scan subgraphs among them) go read -> write -> read,
 * and the two decoded models must be equal field by field and give
 * byte-identical outputs; models built from scratch and edited must run. */
#include <dirent.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/tensor.h"
#include "onnx/onnx.h"
#include "onnx/writer.h"
#include "test_util.h"

enum { RUN_MAX_IO = 128, SAMPLE_MODELS = 100 };

static int checks;
static char tmp_dir[64];

static void tmp_path(char *out, size_t size, const char *name)
{
    snprintf(out, size, "%s/%s", tmp_dir, name);
}

/* ---- structural equality ------------------------------------------------------------ */

/* Each returns true when equal, else reports the first difference at `at`. */
static bool eq_fail(const char *at, const char *what)
{
    TEST_CHECK(false, "%s: %s differs after the round trip", at, what);
    return false;
}

static bool eq_str(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    return strcmp(a, b) == 0;
}

static bool eq_strs(const char *const *a, const char *const *b, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (!eq_str(a[i], b[i]))
            return false;
    return true;
}

static bool eq_tensor(const onnx_tensor *a, const onnx_tensor *b, const char *at)
{
    const ogi_tensor *x = &a->tensor, *y = &b->tensor;
    if (!eq_str(a->name, b->name))
        return eq_fail(at, "tensor name");
    if (x->dtype != y->dtype || x->rank != y->rank || x->nbytes != y->nbytes)
        return eq_fail(at, "tensor dtype or rank");
    for (int d = 0; d < x->rank; d++)
        if (x->dims[d] != y->dims[d])
            return eq_fail(at, "tensor shape");
    if (x->nbytes && memcmp(x->data, y->data, x->nbytes) != 0)
        return eq_fail(at, "tensor data");
    return true;
}

static bool eq_graph(const onnx_graph *a, const onnx_graph *b, const char *at);

static bool eq_attr_value(const onnx_attr *a, const onnx_attr *b, const char *at)
{
    char sub[1024];
    switch (a->type) {
    case ONNX_ATTR_FLOAT:
        return memcmp(&a->f, &b->f, 4) == 0 || eq_fail(at, "float");
    case ONNX_ATTR_INT:
        return a->i == b->i || eq_fail(at, "int");
    case ONNX_ATTR_STRING:
        return (a->s_len == b->s_len && memcmp(a->s, b->s, a->s_len) == 0) || eq_fail(at, "string");
    case ONNX_ATTR_TENSOR:
        return eq_tensor(a->t, b->t, at);
    case ONNX_ATTR_GRAPH:
        if (snprintf(sub, sizeof(sub), "%s/graph", at) >= (int)sizeof(sub))
            return eq_fail(at, "path too long");
        return eq_graph(a->g, b->g, sub);
    case ONNX_ATTR_FLOATS:
        return (a->n == 0 || memcmp(a->floats, b->floats, (size_t)a->n * 4) == 0) ||
               eq_fail(at, "floats");
    case ONNX_ATTR_INTS:
        return (a->n == 0 || memcmp(a->ints, b->ints, (size_t)a->n * 8) == 0) ||
               eq_fail(at, "ints");
    case ONNX_ATTR_STRINGS:
        return eq_strs(a->strings, b->strings, a->n) || eq_fail(at, "strings");
    case ONNX_ATTR_TENSORS:
        for (int64_t i = 0; i < a->n; i++)
            if (!eq_tensor(&a->tensors[i], &b->tensors[i], at))
                return false;
        return true;
    case ONNX_ATTR_GRAPHS:
        for (int64_t i = 0; i < a->n; i++) {
            if (snprintf(sub, sizeof(sub), "%s/graphs[%lld]", at, (long long)i) >= (int)sizeof(sub))
                return eq_fail(at, "path too long");
            if (!eq_graph(a->graphs[i], b->graphs[i], sub))
                return false;
        }
        return true;
    default:
        return true;
    }
}

static bool eq_node(const onnx_node *a, const onnx_node *b, const char *at)
{
    char sub[1024];
    snprintf(sub, sizeof(sub), "%s/node '%s' (%s)", at, a->name, a->op_type);
    if (!eq_str(a->name, b->name) || !eq_str(a->op_type, b->op_type) ||
        !eq_str(a->domain, b->domain))
        return eq_fail(sub, "name, op_type or domain");
    if (a->n_inputs != b->n_inputs || !eq_strs(a->inputs, b->inputs, a->n_inputs))
        return eq_fail(sub, "inputs");
    if (a->n_outputs != b->n_outputs || !eq_strs(a->outputs, b->outputs, a->n_outputs))
        return eq_fail(sub, "outputs");
    if (a->n_attrs != b->n_attrs)
        return eq_fail(sub, "attribute count");
    for (int i = 0; i < a->n_attrs; i++) {
        const onnx_attr *x = &a->attrs[i], *y = &b->attrs[i];
        char asub[1200];
        snprintf(asub, sizeof(asub), "%s/attr '%s'", sub, x->name);
        if (!eq_str(x->name, y->name) || !eq_str(x->ref_attr_name, y->ref_attr_name) ||
            x->type != y->type || x->n != y->n)
            return eq_fail(asub, "name, type or count");
        if (x->ref_attr_name == NULL && !eq_attr_value(x, y, asub))
            return false;
    }
    return true;
}

static bool eq_infos(const onnx_value_info *a, const onnx_value_info *b, int n, const char *at)
{
    for (int i = 0; i < n; i++) {
        const onnx_value_info *x = &a[i], *y = &b[i];
        if (!eq_str(x->name, y->name) || x->kind != y->kind || x->elem_type != y->elem_type ||
            x->rank != y->rank)
            return eq_fail(at, x->name);
        for (int d = 0; d < x->rank; d++)
            if (x->dims[d].value != y->dims[d].value || !eq_str(x->dims[d].param, y->dims[d].param))
                return eq_fail(at, x->name);
    }
    return true;
}

static bool eq_graph(const onnx_graph *a, const onnx_graph *b, const char *at)
{
    if (!eq_str(a->name, b->name))
        return eq_fail(at, "graph name");
    if (a->n_nodes != b->n_nodes || a->n_initializers != b->n_initializers ||
        a->n_inputs != b->n_inputs || a->n_outputs != b->n_outputs ||
        a->n_value_infos != b->n_value_infos ||
        a->n_sparse_initializers != b->n_sparse_initializers)
        return eq_fail(at, "a count of nodes, initializers, inputs, outputs or value_info");
    for (int i = 0; i < a->n_nodes; i++)
        if (!eq_node(&a->nodes[i], &b->nodes[i], at))
            return false;
    for (int i = 0; i < a->n_initializers; i++)
        if (!eq_tensor(&a->initializers[i], &b->initializers[i], at))
            return false;
    return eq_infos(a->inputs, b->inputs, a->n_inputs, at) &&
           eq_infos(a->outputs, b->outputs, a->n_outputs, at) &&
           eq_infos(a->value_infos, b->value_infos, a->n_value_infos, at);
}

static bool eq_opsets(const onnx_opset *a, const onnx_opset *b, int n)
{
    for (int i = 0; i < n; i++)
        if (!eq_str(a[i].domain, b[i].domain) || a[i].version != b[i].version)
            return false;
    return true;
}

static bool eq_function(const onnx_function *a, const onnx_function *b, const char *at)
{
    if (!eq_str(a->name, b->name) || !eq_str(a->domain, b->domain) || a->n_inputs != b->n_inputs ||
        a->n_outputs != b->n_outputs || a->n_attr_names != b->n_attr_names ||
        a->n_nodes != b->n_nodes || a->n_opsets != b->n_opsets ||
        !eq_strs(a->inputs, b->inputs, a->n_inputs) ||
        !eq_strs(a->outputs, b->outputs, a->n_outputs) ||
        !eq_strs(a->attr_names, b->attr_names, a->n_attr_names) ||
        !eq_opsets(a->opsets, b->opsets, a->n_opsets))
        return eq_fail(at, "function signature");
    for (int i = 0; i < a->n_nodes; i++)
        if (!eq_node(&a->nodes[i], &b->nodes[i], at))
            return false;
    return true;
}

static bool eq_model(const onnx_model *a, const onnx_model *b, const char *at)
{
    checks++;
    if (a->ir_version != b->ir_version || !eq_str(a->producer_name, b->producer_name) ||
        !eq_str(a->producer_version, b->producer_version))
        return eq_fail(at, "ir_version or producer");
    if (a->n_opsets != b->n_opsets || !eq_opsets(a->opsets, b->opsets, a->n_opsets))
        return eq_fail(at, "opset_import");
    if (a->n_functions != b->n_functions)
        return eq_fail(at, "function count");
    for (int i = 0; i < a->n_functions; i++)
        if (!eq_function(&a->functions[i], &b->functions[i], at))
            return false;
    return eq_graph(a->graph, b->graph, at);
}

/* ---- running both models ----------------------------------------------------------- */

typedef struct run_io {
    int n;
    const char *names[RUN_MAX_IO];
    ogi_tensor *tensors[RUN_MAX_IO];
    char *owned_names[RUN_MAX_IO];
} run_io;

static void run_io_free(run_io *io)
{
    for (int i = 0; i < io->n; i++) {
        ogi_tensor_free(io->tensors[i]);
        free(io->owned_names[i]);
    }
    memset(io, 0, sizeof(*io));
}

static ogi_status run_open(const char *path, ogi_session **s)
{
    ogi_session_options o = ogi_session_default_options();
    o.threads = 1; /* the same reduction order in both runs */
    return ogi_session_open(path, &o, s);
}

/* Runs the session on io and returns all its outputs (NULL names: every
 * graph output). */
static ogi_status run_session(ogi_session *s, const run_io *in, int n_out, const char **out_names,
                              ogi_tensor **outs)
{
    return ogi_session_run(s, (size_t)in->n, in->names, (const ogi_tensor *const *)in->tensors,
                           (size_t)n_out, out_names, outs);
}

static bool same_tensor_bytes(const ogi_tensor *a, const ogi_tensor *b)
{
    if (ogi_tensor_dtype(a) != ogi_tensor_dtype(b) || ogi_tensor_rank(a) != ogi_tensor_rank(b) ||
        ogi_tensor_nbytes(a) != ogi_tensor_nbytes(b))
        return false;
    for (int d = 0; d < ogi_tensor_rank(a); d++)
        if (ogi_tensor_dims(a)[d] != ogi_tensor_dims(b)[d])
            return false;
    return ogi_tensor_nbytes(a) == 0 ||
           memcmp(ogi_tensor_data((ogi_tensor *)a), ogi_tensor_data((ogi_tensor *)b),
                  ogi_tensor_nbytes(a)) == 0;
}

/* Opens both models and runs them on `in`: both fail alike, or both give
 * byte-identical outputs. Returns 1 when outputs were compared, 0 when the
 * engine cannot run the model, -1 on a mismatch. */
static int run_both(const char *orig, const char *copy, run_io *in, int n_out,
                    const char **out_names)
{
    ogi_session *s1 = NULL, *s2 = NULL;
    ogi_status st1 = run_open(orig, &s1);
    ogi_status st2 = run_open(copy, &s2);
    checks++;
    TEST_CHECK(st1 == st2, "%s: session open gives %s, its copy %s (%s)", orig,
               ogi_status_name(st1), ogi_status_name(st2), ogi_last_error());
    int result = st1 == st2 ? 0 : -1;
    const char *names[RUN_MAX_IO];
    if (st1 == OGI_OK && st2 == OGI_OK) {
        if (out_names == NULL) {
            n_out = (int)ogi_session_output_count(s1);
            for (int i = 0; i < n_out && i < RUN_MAX_IO; i++)
                names[i] = ogi_session_output_name(s1, (size_t)i);
            out_names = names;
        }
        ogi_tensor *o1[RUN_MAX_IO] = {0}, *o2[RUN_MAX_IO] = {0};
        st1 = run_session(s1, in, n_out, out_names, o1);
        st2 = run_session(s2, in, n_out, out_names, o2);
        checks++;
        TEST_CHECK(st1 == st2, "%s: run gives %s, its copy %s", orig, ogi_status_name(st1),
                   ogi_status_name(st2));
        result = st1 == st2 ? 0 : -1;
        if (st1 == OGI_OK && st2 == OGI_OK) {
            result = 1;
            for (int i = 0; i < n_out; i++) {
                checks++;
                bool same = same_tensor_bytes(o1[i], o2[i]);
                TEST_CHECK(same, "%s: output '%s' differs after the round trip", orig,
                           out_names[i]);
                if (!same)
                    result = -1;
            }
        }
        for (int i = 0; i < n_out; i++) {
            ogi_tensor_free(o1[i]);
            ogi_tensor_free(o2[i]);
        }
    }
    ogi_session_free(s1);
    ogi_session_free(s2);
    return result;
}

/* ---- round trips ------------------------------------------------------------------ */

/* Writes m to `path` (with opts) and reads it back into *out; the buffer
 * writer must give the same bytes when everything is inline. */
static bool round_trip(const onnx_model *m, const char *path, const onnx_write_options *opts,
                       onnx_model **out)
{
    *out = NULL;
    ogi_status st = onnx_model_write(m, path, opts);
    checks++;
    TEST_CHECK(st == OGI_OK, "write %s: %s", m->path, ogi_last_error());
    if (st != OGI_OK)
        return false;
    if (opts == NULL || !opts->external_data) {
        void *buf = NULL;
        size_t size = 0, file_size = 0;
        st = onnx_model_write_buffer(m, NULL, &buf, &size);
        void *file = test_read_file(path, &file_size);
        checks++;
        TEST_CHECK(st == OGI_OK && file != NULL && size == file_size &&
                       memcmp(buf, file, size) == 0,
                   "%s: the buffer writer and the file writer disagree", m->path);
        free(buf);
        free(file);
    }
    st = onnx_model_load(path, out);
    checks++;
    TEST_CHECK(st == OGI_OK, "read back %s: %s", m->path, ogi_last_error());
    return st == OGI_OK;
}

/* The pb files of a test data set, in index order: input_0.pb, input_1.pb, ... */
static void read_pbs(const char *set, const char *prefix, run_io *io, ogi_session *names_from,
                     bool inputs)
{
    for (int i = 0; i < RUN_MAX_IO; i++) {
        char path[4200];
        snprintf(path, sizeof(path), "%s/%s%d.pb", set, prefix, i);
        if (access(path, R_OK) != 0)
            break;
        ogi_tensor *t = NULL;
        char *name = NULL;
        if (ogi_tensor_read_pb(path, &t, &name) != OGI_OK) {
            run_io_free(io); /* a sequence or optional: not a tensor the API can feed */
            io->n = -1;
            return;
        }
        const char *fallback = inputs ? ogi_session_input_name(names_from, (size_t)i)
                                      : ogi_session_output_name(names_from, (size_t)i);
        io->owned_names[io->n] = name;
        io->names[io->n] = name ? name : fallback;
        io->tensors[io->n++] = t;
        if (io->names[io->n - 1] == NULL) {
            run_io_free(io);
            io->n = -1;
            return;
        }
    }
}

/* Runs both on the first test data set; returns as run_both. */
static int conformance_run(const char *dir, const char *orig, const char *copy)
{
    ogi_session *s;
    if (run_open(orig, &s) != OGI_OK)
        return run_both(orig, copy, &(run_io){0}, 0, NULL); /* both must fail alike */
    char set[4200];
    if (snprintf(set, sizeof(set), "%s/test_data_set_0", dir) >= (int)sizeof(set))
        return false;
    run_io in = {0}, expected = {0};
    read_pbs(set, "input_", &in, s, true);
    read_pbs(set, "output_", &expected, s, false);
    int result = 0;
    if (in.n >= 0 && expected.n >= 0)
        result = run_both(orig, copy, &in, expected.n, expected.names);
    if (in.n < 0)
        in.n = 0;
    if (expected.n < 0)
        expected.n = 0;
    run_io_free(&in);
    run_io_free(&expected);
    ogi_session_free(s);
    return result;
}

typedef struct sample_stats {
    int tried, equal, ran, not_runnable, unwritable;
} sample_stats;

static void conformance_model(const char *dir, sample_stats *stats)
{
    char orig[4200], copy[256];
    if (snprintf(orig, sizeof(orig), "%s/model.onnx", dir) >= (int)sizeof(orig))
        return;
    tmp_path(copy, sizeof(copy), "conformance.onnx");
    onnx_model *a = NULL, *b = NULL;
    if (onnx_model_load(orig, &a) != OGI_OK)
        return; /* the reader's limits (e.g. string tensors) are not the writer's */
    stats->tried++;
    ogi_status st = onnx_model_write(a, copy, NULL);
    if (st == OGI_ERR_UNSUPPORTED) { /* sparse or type-proto attributes */
        stats->unwritable++;
        printf("  %s: not writable: %s\n", dir, ogi_last_error());
        onnx_model_free(a);
        return;
    }
    if (round_trip(a, copy, NULL, &b) && eq_model(a, b, orig)) {
        stats->equal++;
        int r = conformance_run(dir, orig, copy);
        stats->ran += r == 1;
        stats->not_runnable += r == 0;
    }
    onnx_model_free(a);
    onnx_model_free(b);
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every If/Loop/Scan test plus evenly spaced others, SAMPLE_MODELS in all. */
static void test_conformance_sample(void)
{
    char root[4096];
    snprintf(root, sizeof(root), "%s/onnx-backend-tests/node", test_shared_dir());
    DIR *d = opendir(root);
    TEST_CHECK(d != NULL, "cannot open %s", root);
    checks++;
    if (d == NULL)
        return;
    char **names = NULL;
    int n = 0, cap = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (strncmp(e->d_name, "test_", 5) != 0)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 256;
            names = realloc(names, (size_t)cap * sizeof(char *));
        }
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof(char *), cmp_names);
    bool *pick = calloc((size_t)n + 1, 1);
    int picked = 0;
    for (int i = 0; i < n; i++) {
        const char *s = names[i] + 5;
        if (strncmp(s, "if", 2) == 0 || strncmp(s, "loop", 4) == 0 || strncmp(s, "scan", 4) == 0) {
            pick[i] = true;
            picked++;
        }
    }
    int want = SAMPLE_MODELS - picked;
    for (int k = 0; k < want && picked < n; k++) {
        int i = (int)((int64_t)k * n / want);
        while (pick[i])
            i = (i + 1) % n;
        pick[i] = true;
        picked++;
    }
    sample_stats stats = {0};
    for (int i = 0; i < n; i++) {
        if (pick[i]) {
            char dir[4200];
            snprintf(dir, sizeof(dir), "%s/%s", root, names[i]);
            conformance_model(dir, &stats);
        }
        free(names[i]);
    }
    free(names);
    free(pick);
    printf("conformance sample: %d picked, %d read, %d equal after the round trip, %d ran with "
           "identical outputs, %d not runnable by the engine (both alike), %d not writable\n",
           picked, stats.tried, stats.equal, stats.ran, stats.not_runnable, stats.unwritable);
    checks++;
    TEST_CHECK(stats.equal + stats.unwritable == stats.tried && stats.ran >= 50,
               "too few conformance models survived the round trip");
}

/* ---- the tiny decoder models ---------------------------------------------------------- */

/* Prefill inputs for the golden prompt (Optimum's I/O names, empty cache). */
static void decoder_inputs(ogi_session *s, const int64_t *ids, int64_t n, run_io *io)
{
    int64_t pos[512], ones[512];
    for (int64_t i = 0; i < n; i++) {
        pos[i] = i;
        ones[i] = 1;
    }
    for (size_t i = 0; i < ogi_session_input_count(s) && io->n < RUN_MAX_IO; i++) {
        const char *name = ogi_session_input_name(s, i);
        int64_t dims[OGI_MAX_RANK];
        int rank;
        ogi_dtype dtype;
        ogi_session_input_info(s, i, &dtype, &rank, dims);
        ogi_tensor *t = NULL;
        if (strcmp(name, "input_ids") == 0)
            t = test_tensor_i64(2, (int64_t[]){1, n}, ids);
        else if (strcmp(name, "attention_mask") == 0)
            t = test_tensor_i64(2, (int64_t[]){1, n}, ones);
        else if (strcmp(name, "position_ids") == 0)
            t = test_tensor_i64(2, (int64_t[]){1, n}, pos);
        else if (rank == 4)
            t = test_tensor_f32(4, (int64_t[]){1, dims[1], 0, dims[3]}, NULL);
        if (t != NULL) {
            io->names[io->n] = name;
            io->tensors[io->n++] = t;
        }
    }
}

static int64_t golden_prompt(const char *dir, int64_t *ids, int64_t max)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/golden.json", dir);
    json_t *golden = json_load_file(path, 0, NULL);
    json_t *prompt = json_object_get(json_object_get(golden, "greedy"), "prompt");
    int64_t n = 0;
    for (size_t i = 0; i < json_array_size(prompt) && n < max; i++)
        ids[n++] = json_integer_value(json_array_get(prompt, i));
    json_decref(golden);
    return n;
}

static int count_external(const onnx_graph *g)
{
    int n = 0;
    for (int i = 0; i < g->n_initializers; i++)
        n += g->initializers[i].external;
    return n;
}

static void tiny_model(const char *dir, const onnx_write_options *opts, const char *name)
{
    char orig[4200], copy[256];
    if (snprintf(orig, sizeof(orig), "%s/model.onnx", dir) >= (int)sizeof(orig))
        return;
    tmp_path(copy, sizeof(copy), name);
    onnx_model *a = NULL, *b = NULL;
    ogi_status st = onnx_model_load(orig, &a);
    checks++;
    TEST_CHECK(st == OGI_OK, "load %s: %s", orig, ogi_last_error());
    if (st != OGI_OK)
        return;
    if (round_trip(a, copy, opts, &b) && eq_model(a, b, orig)) {
        if (opts != NULL && opts->external_data) {
            int big = 0;
            for (int i = 0; i < a->graph->n_initializers; i++)
                big += a->graph->initializers[i].tensor.nbytes > opts->external_threshold;
            checks++;
            TEST_CHECK(big > 0 && count_external(b->graph) == big,
                       "%s: %d tensors over the threshold, %d read back as external", orig, big,
                       count_external(b->graph));
        }
        int64_t ids[512];
        int64_t n = golden_prompt(dir, ids, 500);
        ogi_session *s = NULL;
        if (n > 0 && run_open(orig, &s) == OGI_OK) {
            run_io in = {0};
            decoder_inputs(s, ids, n, &in);
            checks++;
            TEST_CHECK(run_both(orig, copy, &in, 0, NULL) == 1,
                       "%s: the golden prompt did not run alike on both", orig);
            run_io_free(&in);
        }
        ogi_session_free(s);
    }
    onnx_model_free(a);
    onnx_model_free(b);
}

static void test_tiny_models(void)
{
    char root[4096];
    snprintf(root, sizeof(root), "%s/models/tiny", test_shared_dir());
    DIR *d = opendir(root);
    checks++;
    TEST_CHECK(d != NULL, "cannot open %s", root);
    if (d == NULL)
        return;
    int n = 0;
    onnx_write_options ext = onnx_write_default_options();
    ext.external_data = true;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (e->d_name[0] == '.')
            continue;
        char dir[4400];
        snprintf(dir, sizeof(dir), "%s/%s", root, e->d_name);
        tiny_model(dir, NULL, "tiny.onnx");
        tiny_model(dir, &ext, "tiny_ext.onnx");
        n++;
    }
    closedir(d);
    printf("tiny models: %d round-tripped inline and with external data\n", n);
    checks++;
    TEST_CHECK(n >= 6, "expected 6 tiny models, found %d", n);
}

/* Writing a model over the file it was mapped from leaves the mapping
 * intact (temporary file + rename). */
static void test_overwrite_in_place(void)
{
    char root[4200], path[256];
    snprintf(root, sizeof(root), "%s/models/tiny/llama-dynamo-op23/model.onnx", test_shared_dir());
    tmp_path(path, sizeof(path), "in_place.onnx");
    onnx_model *a = NULL, *b = NULL, *c = NULL;
    if (onnx_model_load(root, &a) != OGI_OK)
        return;
    onnx_write_options ext = onnx_write_default_options();
    ext.external_data = true;
    bool ok = onnx_model_write(a, path, &ext) == OGI_OK && onnx_model_load(path, &b) == OGI_OK &&
              onnx_model_write(b, path, &ext) == OGI_OK && onnx_model_load(path, &c) == OGI_OK;
    checks++;
    TEST_CHECK(ok, "overwrite in place: %s", ogi_last_error());
    if (ok) {
        eq_model(a, b, "in place (old mapping)");
        eq_model(a, c, "in place (new file)");
    }
    onnx_model_free(a);
    onnx_model_free(b);
    onnx_model_free(c);
}

/* ---- building from scratch ---------------------------------------------------------------- */

/* y = ReduceSum(Relu(x + w) * k, axes=[1], keepdims=0), with x [batch, 3]
 * and k a Constant node; plus a dead branch that prune must remove. */
static onnx_builder *build_small(void)
{
    onnx_builder *b = NULL;
    if (onnx_builder_create(&b) != OGI_OK)
        return NULL;
    onnx_graph *g = onnx_builder_graph(b);
    onnx_builder_set_opset(b, "", 17);
    onnx_dim xd[2] = {{-1, "batch"}, {3, NULL}};
    onnx_value_info x = {"x", ONNX_VALUE_TENSOR, OGI_FLOAT32, 2, xd};
    onnx_dim yd[1] = {{-1, "batch"}};
    onnx_value_info y = {"y", ONNX_VALUE_TENSOR, OGI_FLOAT32, 1, yd};
    onnx_builder_add_input(b, g, &x);
    onnx_builder_add_output(b, g, &y);
    ogi_tensor *w = test_tensor_f32(1, (int64_t[]){3}, (float[]){1, -2, 3});
    ogi_tensor *k = test_tensor_f32(1, (int64_t[]){3}, (float[]){10, 100, 1000});
    ogi_tensor *axes = test_tensor_i64(1, (int64_t[]){1}, (int64_t[]){1});
    onnx_builder_add_initializer(b, g, "w", w);
    onnx_builder_add_initializer(b, g, "axes", axes);
    onnx_builder_add_initializer(b, g, "unused", w);
    onnx_node *n;
    /* out of order on purpose: the sort must fix it */
    onnx_builder_add_simple_node(b, g, "ReduceSum", "", 2, (const char *[]){"prod", "axes"}, 1,
                                 (const char *[]){"y"}, &n);
    onnx_builder_set_attr_int(b, n, "keepdims", 0);
    onnx_builder_add_simple_node(b, g, "Add", "", 2, (const char *[]){"x", "w"}, 1,
                                 (const char *[]){"sum"}, NULL);
    onnx_builder_add_simple_node(b, g, "Relu", "", 1, (const char *[]){"sum"}, 1,
                                 (const char *[]){"relu"}, NULL);
    onnx_builder_add_simple_node(b, g, "Constant", "", 0, NULL, 1, (const char *[]){"k"}, &n);
    onnx_builder_set_attr_tensor(b, n, "value", k);
    onnx_builder_add_simple_node(b, g, "Mul", "", 2, (const char *[]){"relu", "k"}, 1,
                                 (const char *[]){"prod"}, NULL);
    const char *dead = onnx_builder_unique_name(b, "dead");
    onnx_builder_add_simple_node(b, g, "Neg", "", 1, (const char *[]){"x"}, 1,
                                 (const char *[]){dead}, NULL);
    ogi_tensor_free(w);
    ogi_tensor_free(k);
    ogi_tensor_free(axes);
    return b;
}

static void test_build_from_scratch(void)
{
    onnx_builder *b = build_small();
    checks++;
    TEST_CHECK(b != NULL, "build: %s", ogi_last_error());
    if (b == NULL)
        return;
    onnx_graph *g = onnx_builder_graph(b);
    ogi_status st = onnx_builder_prune(b, g);
    checks++;
    TEST_CHECK(st == OGI_OK && g->n_nodes == 5 && g->n_initializers == 2,
               "prune: %s; %d nodes, %d initializers left", ogi_last_error(), g->n_nodes,
               g->n_initializers);
    checks++;
    TEST_CHECK(strcmp(g->nodes[g->n_nodes - 1].op_type, "ReduceSum") == 0 &&
                   onnx_graph_producer(g, "prod") < onnx_graph_producer(g, "y"),
               "sort: ReduceSum should come last");
    char path[256];
    tmp_path(path, sizeof(path), "built.onnx");
    st = onnx_model_write(onnx_builder_model(b), path, NULL);
    checks++;
    TEST_CHECK(st == OGI_OK, "write built model: %s", ogi_last_error());
    ogi_session *s = NULL;
    st = st == OGI_OK ? run_open(path, &s) : st;
    checks++;
    TEST_CHECK(st == OGI_OK, "open built model: %s", ogi_last_error());
    if (st == OGI_OK) {
        /* rows: relu(x + w) . k */
        ogi_tensor *x = test_tensor_f32(2, (int64_t[]){2, 3}, (float[]){0, 0, 0, -1, 5, -4});
        ogi_tensor *y = NULL;
        st = ogi_session_run(s, 1, (const char *[]){"x"}, (const ogi_tensor *const *)&x, 1,
                             (const char *[]){"y"}, &y);
        checks++;
        TEST_CHECK(st == OGI_OK, "run built model: %s", ogi_last_error());
        if (st == OGI_OK) {
            const float *v = ogi_tensor_data(y);
            checks++;
            TEST_CHECK(ogi_tensor_numel(y) == 2 && v[0] == 10 + 0 + 3000 && v[1] == 0 + 300 + 0,
                       "built model computes %g %g, expected 3010 300", v[0], v[1]);
        }
        ogi_tensor_free(x);
        ogi_tensor_free(y);
    }
    ogi_session_free(s);
    onnx_builder_free(b);
}

/* An If whose branches are built as subgraphs, then edited: replace_uses
 * reaches the captured value inside the branches. */
static void test_build_subgraphs(void)
{
    onnx_builder *b = NULL;
    checks++;
    TEST_CHECK(onnx_builder_create(&b) == OGI_OK, "create");
    onnx_graph *g = onnx_builder_graph(b);
    onnx_builder_set_opset(b, "", 17);
    onnx_builder_set_opset(b, "ai.onnx", 18); /* the same domain: replaces */
    onnx_dim d1[1] = {{2, NULL}};
    onnx_value_info c = {"cond", ONNX_VALUE_TENSOR, OGI_BOOL, 0, NULL};
    onnx_value_info x = {"x", ONNX_VALUE_TENSOR, OGI_FLOAT32, 1, d1};
    onnx_value_info y = {"y", ONNX_VALUE_TENSOR, OGI_FLOAT32, 1, d1};
    onnx_builder_add_input(b, g, &c);
    onnx_builder_add_input(b, g, &x);
    onnx_builder_add_output(b, g, &y);
    onnx_builder_add_simple_node(b, g, "Identity", "", 1, (const char *[]){"x"}, 1,
                                 (const char *[]){"x2"}, NULL);
    /* branches: then = x2 + x2, else = -x2 (x2 captured from the outer graph) */
    onnx_value_info bt = {"t_out", ONNX_VALUE_TENSOR, OGI_FLOAT32, 1, d1};
    onnx_value_info be = {"e_out", ONNX_VALUE_TENSOR, OGI_FLOAT32, 1, d1};
    onnx_node *node;
    onnx_builder_add_simple_node(b, g, "If", "", 1, (const char *[]){"cond"}, 1,
                                 (const char *[]){"y"}, &node);
    onnx_graph empty = {.name = "then"};
    onnx_builder_set_attr_graph(b, node, "then_branch", &empty);
    empty.name = "else";
    onnx_builder_set_attr_graph(b, node, "else_branch", &empty);
    onnx_graph *then_g = onnx_node_find_attr(node, "then_branch")->g;
    onnx_graph *else_g = onnx_node_find_attr(node, "else_branch")->g;
    onnx_builder_add_simple_node(b, then_g, "Add", "", 2, (const char *[]){"x2", "x2"}, 1,
                                 (const char *[]){"t_out"}, NULL);
    onnx_builder_add_output(b, then_g, &bt);
    onnx_builder_add_simple_node(b, else_g, "Neg", "", 1, (const char *[]){"x2"}, 1,
                                 (const char *[]){"e_out"}, NULL);
    onnx_builder_add_output(b, else_g, &be);
    /* now bypass the Identity: every use of x2, in the branches too, reads x */
    int changed = 0;
    onnx_builder_replace_uses(b, g, "x2", "x", &changed);
    checks++;
    TEST_CHECK(changed == 3, "replace_uses changed %d inputs, expected 3", changed);
    onnx_builder_prune(b, g);
    checks++;
    TEST_CHECK(g->n_nodes == 1 && onnx_builder_model(b)->n_opsets == 1 &&
                   onnx_builder_model(b)->opsets[0].version == 18,
               "after prune %d nodes, %d opsets", g->n_nodes, onnx_builder_model(b)->n_opsets);
    char path[256];
    tmp_path(path, sizeof(path), "if.onnx");
    ogi_status st = onnx_model_write(onnx_builder_model(b), path, NULL);
    ogi_session *s = NULL;
    if (st == OGI_OK)
        st = run_open(path, &s);
    checks++;
    TEST_CHECK(st == OGI_OK, "built If model: %s", ogi_last_error());
    for (int branch = 0; branch < 2 && st == OGI_OK; branch++) {
        ogi_tensor *cond, *xt = test_tensor_f32(1, (int64_t[]){2}, (float[]){1.5f, -2});
        ogi_tensor_create(OGI_BOOL, 0, NULL, &cond);
        *(uint8_t *)ogi_tensor_data(cond) = (uint8_t)(branch == 0);
        const ogi_tensor *ins[2] = {cond, xt};
        ogi_tensor *yt = NULL;
        st = ogi_session_run(s, 2, (const char *[]){"cond", "x"}, ins, 1, (const char *[]){"y"},
                             &yt);
        checks++;
        TEST_CHECK(st == OGI_OK, "run If: %s", ogi_last_error());
        if (st == OGI_OK) {
            const float *v = ogi_tensor_data(yt);
            float want0 = branch == 0 ? 3.0f : -1.5f, want1 = branch == 0 ? -4.0f : 2.0f;
            checks++;
            TEST_CHECK(v[0] == want0 && v[1] == want1, "If branch %d gives %g %g", branch, v[0],
                       v[1]);
        }
        ogi_tensor_free(cond);
        ogi_tensor_free(xt);
        ogi_tensor_free(yt);
    }
    ogi_session_free(s);
    onnx_builder_free(b);
}

/* Editing a loaded model: from_model, remove an output, add one, rename. */
static void test_edit_loaded(void)
{
    char orig[4200], path[256];
    snprintf(orig, sizeof(orig), "%s/onnx-backend-tests/node/test_add/model.onnx",
             test_shared_dir());
    tmp_path(path, sizeof(path), "edited.onnx");
    onnx_model *m = NULL, *back = NULL;
    onnx_builder *b = NULL;
    ogi_status st = onnx_model_load(orig, &m);
    if (st == OGI_OK)
        st = onnx_builder_from_model(m, &b);
    checks++;
    TEST_CHECK(st == OGI_OK, "from_model: %s", ogi_last_error());
    if (st != OGI_OK) {
        onnx_model_free(m);
        return;
    }
    eq_model(m, onnx_builder_model(b), "from_model copy");
    onnx_graph *g = onnx_builder_graph(b);
    onnx_value_info out = g->outputs[0];
    const char *relu = onnx_builder_unique_name(b, out.name);
    onnx_builder_add_simple_node(b, g, "Relu", "", 1, (const char *[]){out.name}, 1,
                                 (const char *[]){relu}, NULL);
    onnx_builder_remove_output(b, g, out.name);
    out.name = relu;
    onnx_builder_add_output(b, g, &out);
    st = onnx_model_write(onnx_builder_model(b), path, NULL);
    if (st == OGI_OK)
        st = onnx_model_load(path, &back);
    checks++;
    TEST_CHECK(st == OGI_OK && back->graph->n_nodes == 2 && back->graph->n_outputs == 1 &&
                   strcmp(back->graph->outputs[0].name, relu) == 0,
               "edited model: %s", ogi_last_error());
    onnx_model_free(back);
    onnx_builder_free(b);
    onnx_model_free(m);
}

static void test_errors(void)
{
    onnx_builder *b = build_small();
    onnx_model *m = onnx_builder_model(b);
    void *buf = NULL;
    size_t size;
    onnx_write_options o = onnx_write_default_options();
    o.external_data = true;
    checks++;
    TEST_CHECK(onnx_model_write_buffer(m, &o, &buf, &size) == OGI_ERR_INVALID_ARGUMENT,
               "the buffer writer must refuse external data");
    char path[256];
    tmp_path(path, sizeof(path), "err.onnx");
    o.external_name = "../escape.data";
    checks++;
    TEST_CHECK(onnx_model_write(m, path, &o) == OGI_ERR_INVALID_ARGUMENT,
               "an external name with a '/' must be refused");
    /* a cycle: Add reads its own output through Relu */
    onnx_graph *g = onnx_builder_graph(b);
    onnx_builder_add_simple_node(b, g, "Relu", "", 1, (const char *[]){"cyc_b"}, 1,
                                 (const char *[]){"cyc_a"}, NULL);
    onnx_builder_add_simple_node(b, g, "Relu", "", 1, (const char *[]){"cyc_a"}, 1,
                                 (const char *[]){"cyc_b"}, NULL);
    checks++;
    TEST_CHECK(onnx_builder_sort(b, g) == OGI_ERR_INVALID_MODEL, "a cycle must fail the sort");
    /* attributes the reader cannot keep cannot be written */
    onnx_attr sparse = {.name = "sparse_value", .type = ONNX_ATTR_SPARSE_TENSOR};
    onnx_builder_set_attr(b, &g->nodes[0], &sparse);
    checks++;
    TEST_CHECK(onnx_model_write_buffer(m, NULL, &buf, &size) == OGI_ERR_UNSUPPORTED,
               "a sparse attribute must be refused");
    onnx_builder_free(b);
}

/* A node holding every attribute type the reader keeps, a function with an
 * attribute reference, and value infos of every form; written inline and
 * with all tensors external (attribute tensors included). */
static onnx_builder *build_all_attrs(void)
{
    onnx_builder *b = NULL;
    if (onnx_builder_create(&b) != OGI_OK)
        return NULL;
    onnx_graph *g = onnx_builder_graph(b);
    onnx_builder_set_opset(b, "", 21);
    onnx_builder_set_opset(b, "x.test", 3);
    onnx_builder_set_producer(b, "test", "1.2");
    ogi_tensor *t = test_tensor_f32(2, (int64_t[]){2, 2}, (float[]){1, 2, 3, 4});
    ogi_tensor *u = test_tensor_i64(0, NULL, (int64_t[]){-7});
    onnx_node *n;
    onnx_builder_add_simple_node(b, g, "Custom", "x.test", 3, (const char *[]){"a", "", "c"}, 2,
                                 (const char *[]){"", "y"}, &n);
    n->name = onnx_builder_string(b, "custom_0");
    onnx_builder_set_attr_float(b, n, "f", -0.0f);
    onnx_builder_set_attr_int(b, n, "i", -5);
    onnx_attr bin = {.name = "s", .type = ONNX_ATTR_STRING, .s = "a\0b", .s_len = 3};
    onnx_builder_set_attr(b, n, &bin);
    onnx_builder_set_attr_tensor(b, n, "t", t);
    onnx_builder_set_attr_floats(b, n, "floats", (float[]){1.5f, -2}, 2);
    onnx_builder_set_attr_ints(b, n, "ints", (int64_t[]){-1, 0, INT64_MAX}, 3);
    onnx_builder_set_attr_ints(b, n, "no_ints", NULL, 0);
    const char *strs[] = {"x", "", "zz"};
    onnx_attr strings = {.name = "strings", .type = ONNX_ATTR_STRINGS, .n = 3, .strings = strs};
    onnx_builder_set_attr(b, n, &strings);
    onnx_tensor ts[2] = {{.name = "t0", .tensor = *t}, {.name = "", .tensor = *u}};
    onnx_attr tensors = {.name = "tensors", .type = ONNX_ATTR_TENSORS, .n = 2, .tensors = ts};
    onnx_builder_set_attr(b, n, &tensors);
    onnx_graph sub = {.name = "body"};
    onnx_builder_set_attr_graph(b, n, "g", &sub);
    onnx_graph *subs[2] = {&sub, &sub};
    onnx_attr graphs = {.name = "graphs", .type = ONNX_ATTR_GRAPHS, .n = 2, .graphs = subs};
    onnx_builder_set_attr(b, n, &graphs);
    onnx_builder_add_initializer(b, onnx_node_find_attr(n, "g")->g, "inner", t);
    onnx_dim dims[3] = {{-1, "batch"}, {4, NULL}, {-1, NULL}};
    onnx_value_info infos[] = {
        {"a", ONNX_VALUE_TENSOR, OGI_FLOAT16, 3, dims},
        {"c", ONNX_VALUE_TENSOR, OGI_INT4, 0, NULL},
        {"y", ONNX_VALUE_TENSOR, OGI_DTYPE_UNDEFINED, -1, NULL},
        {"seq", ONNX_VALUE_SEQUENCE, OGI_DTYPE_UNDEFINED, -1, NULL},
        {"untyped", ONNX_VALUE_UNKNOWN, OGI_DTYPE_UNDEFINED, -1, NULL},
    };
    onnx_builder_add_input(b, g, &infos[0]);
    onnx_builder_add_input(b, g, &infos[1]);
    onnx_builder_add_output(b, g, &infos[2]);
    onnx_builder_add_value_info(b, g, &infos[3]);
    onnx_builder_add_value_info(b, g, &infos[4]);
    onnx_builder_add_initializer(b, g, "c", u);
    /* a function whose node takes its alpha from the caller's attribute */
    onnx_attr ref = {.name = "alpha", .ref_attr_name = "scale", .type = ONNX_ATTR_FLOAT};
    onnx_node fnode = {"", "LeakyRelu",           "", 1,   (const char *[]){"X"},
                       1,  (const char *[]){"Y"}, 1,  &ref};
    onnx_opset fops = {"", 21};
    onnx_function f = {"MyRelu", "x.test",
                       1,        (const char *[]){"X"},
                       1,        (const char *[]){"Y"},
                       1,        (const char *[]){"scale"},
                       1,        &fnode,
                       1,        &fops};
    onnx_builder_add_function(b, &f);
    ogi_tensor_free(t);
    ogi_tensor_free(u);
    return b;
}

static void test_all_attr_types(void)
{
    onnx_builder *b = build_all_attrs();
    checks++;
    TEST_CHECK(b != NULL, "build: %s", ogi_last_error());
    if (b == NULL)
        return;
    const onnx_model *m = onnx_builder_model(b);
    void *buf = NULL;
    size_t size = 0;
    onnx_model *back = NULL;
    ogi_status st = onnx_model_write_buffer(m, NULL, &buf, &size);
    if (st == OGI_OK)
        st = onnx_model_parse(buf, size, NULL, &back);
    checks++;
    TEST_CHECK(st == OGI_OK, "all attribute types: %s", ogi_last_error());
    if (st == OGI_OK)
        eq_model(m, back, "all attribute types");
    onnx_model_free(back);
    free(buf);
    /* every tensor external, attribute tensors and subgraph initializers too */
    char path[256];
    tmp_path(path, sizeof(path), "attrs.onnx");
    onnx_write_options o = onnx_write_default_options();
    o.external_data = true;
    o.external_threshold = 0;
    o.external_name = "weights.bin";
    back = NULL;
    st = onnx_model_write(m, path, &o);
    if (st == OGI_OK)
        st = onnx_model_load(path, &back);
    checks++;
    TEST_CHECK(st == OGI_OK, "all attribute types, external: %s", ogi_last_error());
    if (st == OGI_OK) {
        eq_model(m, back, "all attribute types, external");
        const onnx_node *n = &back->graph->nodes[0];
        const onnx_graph *sub = onnx_node_find_attr(n, "g")->g;
        checks++;
        TEST_CHECK(onnx_node_find_attr(n, "t")->t->external &&
                       onnx_node_find_attr(n, "tensors")->tensors[1].external &&
                       sub->initializers[0].external && back->graph->initializers[0].external,
                   "tensors should have been read from weights.bin");
    }
    onnx_model_free(back);
    onnx_builder_free(b);
}

static void remove_tmp_dir(void)
{
    DIR *d = opendir(tmp_dir);
    if (d == NULL)
        return;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (e->d_name[0] == '.')
            continue;
        char path[512];
        tmp_path(path, sizeof(path), e->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(tmp_dir);
}

int main(void)
{
    snprintf(tmp_dir, sizeof(tmp_dir), "/tmp/ogi_test_writer_XXXXXX");
    if (mkdtemp(tmp_dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    test_build_from_scratch();
    test_build_subgraphs();
    test_edit_loaded();
    test_errors();
    test_all_attr_types();
    test_tiny_models();
    test_overwrite_in_place();
    test_conformance_sample();
    remove_tmp_dir();
    return test_finish("test_writer", checks);
}
