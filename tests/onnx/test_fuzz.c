/* Fuzz smoke test: seeded byte mutations of the conformance models, each
 * parsed, built and (when it still loads) run on its test inputs. Nothing may
 * crash or leak; errors are expected. Bounded by OGI_FUZZ_SECONDS (60). */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/exec.h"
#include "onnx/onnx.h"
#include "test_util.h"

enum { FUZZ_MAX_TESTS = 4096, FUZZ_MAX_IO = 32 };

static double fuzz_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static bool fuzz_has_loops(const graph *g)
{
    for (int i = 0; i < g->n_nodes; i++) {
        const char *op = g->nodes[i].proto->op_type;
        if (strcmp(op, "Loop") == 0 || strcmp(op, "Scan") == 0)
            return true; /* a mutated trip count could run for hours */
    }
    return false;
}

/* Runs g on the test's input_N.pb files, bound by name. */
static void fuzz_run(const graph *g, const char *dir, exec_env *env)
{
    const ogi_tensor *inputs[FUZZ_MAX_IO] = {0};
    ogi_tensor *owned[FUZZ_MAX_IO] = {0};
    ogi_tensor *outputs[FUZZ_MAX_IO] = {0};
    if (g->n_inputs > FUZZ_MAX_IO || g->n_outputs > FUZZ_MAX_IO)
        return;
    for (int i = 0; i < FUZZ_MAX_IO; i++) {
        char path[8192];
        if (snprintf(path, sizeof(path), "%s/test_data_set_0/input_%d.pb", dir, i) >=
            (int)sizeof(path))
            break;
        char *name = NULL;
        if (ogi_tensor_read_pb(path, &owned[i], &name) != OGI_OK)
            break;
        for (int k = 0; k < g->n_inputs; k++)
            if (name && strcmp(g->values[g->inputs[k]].name, name) == 0)
                inputs[k] = owned[i];
        free(name);
    }
    if (exec_run(g, env, inputs, outputs) == OGI_OK)
        for (int k = 0; k < g->n_outputs; k++)
            ogi_tensor_free(outputs[k]);
    for (int i = 0; i < FUZZ_MAX_IO; i++)
        ogi_tensor_free(owned[i]);
}

int main(void)
{
    const char *env_seconds = getenv("OGI_FUZZ_SECONDS");
    double budget = env_seconds ? atof(env_seconds) : 60.0;
    char root[4096];
    snprintf(root, sizeof(root), "%s/onnx-backend-tests/node", test_shared_dir());
    DIR *d = opendir(root);
    TEST_CHECK(d != NULL, "cannot open %s", root);
    if (d == NULL)
        return test_finish("test_fuzz", 1);
    static char *tests[FUZZ_MAX_TESTS];
    int n_tests = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n_tests < FUZZ_MAX_TESTS)
        if (e->d_name[0] != '.')
            tests[n_tests++] = strdup(e->d_name);
    closedir(d);
    /* readdir order varies between file systems: sort for a fixed sequence */
    for (int i = 1; i < n_tests; i++)
        for (int j = i; j > 0 && strcmp(tests[j - 1], tests[j]) > 0; j--) {
            char *t = tests[j];
            tests[j] = tests[j - 1];
            tests[j - 1] = t;
        }

    exec_arena *arena = NULL;
    exec_arena_create(&arena);
    exec_env env = {.pool = NULL, .arena = arena, .max_tensor_bytes = 64 << 20};
    uint64_t rng = 0x2545f4914f6cdd1dull;
    double start = fuzz_now();
    int cases = 0, loaded = 0, ran = 0;
    while (fuzz_now() - start < budget && n_tests > 0) {
        const char *name = tests[test_rand(&rng) % (uint64_t)n_tests];
        char dir[8192], path[8300];
        snprintf(dir, sizeof(dir), "%s/%s", root, name);
        snprintf(path, sizeof(path), "%s/model.onnx", dir);
        size_t size;
        unsigned char *bytes = test_read_file(path, &size);
        if (bytes == NULL || size == 0) {
            free(bytes);
            continue;
        }
        int flips = 1 + (int)(test_rand(&rng) % 8);
        for (int k = 0; k < flips; k++) {
            size_t at = test_rand(&rng) % size;
            switch (test_rand(&rng) % 3) {
            case 0:
                bytes[at] ^= (unsigned char)(1u << (test_rand(&rng) % 8));
                break;
            case 1:
                bytes[at] = 0xff;
                break;
            default:
                bytes[at] = (unsigned char)test_rand(&rng);
                break;
            }
        }
        cases++;
        onnx_model *m = NULL;
        graph *g = NULL;
        if (onnx_model_parse(bytes, size, NULL, &m) == OGI_OK &&
            graph_build(m, NULL, &g) == OGI_OK) {
            loaded++;
            if (!fuzz_has_loops(g)) {
                fuzz_run(g, dir, &env);
                ran++;
            }
        }
        graph_free(g);
        onnx_model_free(m);
        free(bytes);
    }
    exec_arena_free(arena);
    for (int i = 0; i < n_tests; i++)
        free(tests[i]);
    printf("fuzz: %d mutated models, %d still loaded, %d run, in %.0f s\n", cases, loaded, ran,
           fuzz_now() - start);
    TEST_CHECK(cases > 0, "no case ran");
    return test_finish("test_fuzz", 1);
}
