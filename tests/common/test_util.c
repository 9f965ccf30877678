#include "test_util.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/graph.h"
#include "onnx/onnx.h"

int test_failures = 0;

int test_finish(const char *name, int checks)
{
    printf("%s: %d passed, %d failed\n", name, checks - test_failures, test_failures);
    return test_failures ? 1 : 0;
}

const char *test_shared_dir(void)
{
    const char *env = getenv("OGI_SHARED_DIR");
    return env && env[0] ? env : OGI_TEST_SHARED_DIR;
}

void *test_read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (buf == NULL || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        fclose(f);
        return NULL;
    }
    fclose(f);
    buf[n] = '\0';
    *size = (size_t)n;
    return buf;
}

bool test_write_file(const char *path, const void *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        return false;
    bool ok = fwrite(data, 1, size, f) == size;
    return fclose(f) == 0 && ok;
}

bool test_load_npy_f32(const char *path, float **data, int *rank, int64_t *dims)
{
    size_t size;
    unsigned char *buf = test_read_file(path, &size);
    if (buf == NULL || size < 10 || memcmp(buf, "\x93NUMPY", 6) != 0) {
        free(buf);
        return false;
    }
    size_t header_len = buf[8] | (size_t)buf[9] << 8, start = 10;
    if (buf[6] >= 2) {
        header_len = buf[8] | (size_t)buf[9] << 8 | (size_t)buf[10] << 16 | (size_t)buf[11] << 24;
        start = 12;
    }
    if (start + header_len > size) {
        free(buf);
        return false;
    }
    char header[1024];
    snprintf(header, sizeof(header), "%.*s", (int)header_len, (const char *)buf + start);
    const char *shape = strstr(header, "'shape': (");
    if (strstr(header, "'descr': '<f4'") == NULL ||
        strstr(header, "'fortran_order': False") == NULL || shape == NULL) {
        free(buf);
        return false;
    }
    shape += strlen("'shape': (");
    *rank = 0;
    int64_t numel = 1;
    while (*shape && *shape != ')' && *rank < OGI_MAX_RANK) {
        char *end;
        long long d = strtoll(shape, &end, 10);
        if (end == shape)
            break;
        dims[(*rank)++] = d;
        numel *= d;
        shape = end;
        while (*shape == ',' || *shape == ' ')
            shape++;
    }
    size_t offset = start + header_len;
    if (offset + (size_t)numel * 4 > size) {
        free(buf);
        return false;
    }
    *data = malloc((size_t)numel * 4 + 1);
    if (*data != NULL)
        memcpy(*data, buf + offset, (size_t)numel * 4);
    free(buf);
    return *data != NULL;
}

ogi_tensor *test_tensor_i64(int rank, const int64_t *dims, const int64_t *vals)
{
    ogi_tensor *t;
    if (ogi_tensor_create(OGI_INT64, rank, dims, &t) != OGI_OK)
        return NULL;
    if (vals)
        memcpy(ogi_tensor_data(t), vals, ogi_tensor_nbytes(t));
    return t;
}

ogi_tensor *test_tensor_f32(int rank, const int64_t *dims, const float *vals)
{
    ogi_tensor *t;
    if (ogi_tensor_create(OGI_FLOAT32, rank, dims, &t) != OGI_OK)
        return NULL;
    if (vals)
        memcpy(ogi_tensor_data(t), vals, ogi_tensor_nbytes(t));
    return t;
}

uint64_t test_rand(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ull;
}

bool test_save_model(pbw *model, char *path)
{
    snprintf(path, TEST_PATH_SIZE, "/tmp/ogi-test-XXXXXX");
    int fd = mkstemp(path);
    if (fd >= 0)
        close(fd);
    bool ok = fd >= 0 && test_write_file(path, model->data, model->len);
    pbw_free(model);
    return ok;
}

bool test_save_graph(pbw *graph, int64_t ir_version, int64_t opset, char *path)
{
    pbw model = {0};
    pbw_model(&model, ir_version, opset, graph);
    return test_save_model(&model, path);
}

ogi_session *test_open_graph(pbw *graph, int64_t ir_version, int64_t opset,
                             const ogi_session_options *o)
{
    char path[TEST_PATH_SIZE];
    test_save_graph(graph, ir_version, opset, path);
    ogi_session *s = NULL;
    ogi_status st = ogi_session_open(path, o, &s);
    unlink(path);
    TEST_CHECK(st == OGI_OK, "open: %s", ogi_last_error());
    return st == OGI_OK ? s : NULL;
}

bool test_run_model(const char *path, int threads, int n_in, const char *const *in_names,
                    ogi_tensor *const *in, int n_out, const char *const *out_names,
                    ogi_tensor **outs, const char *what)
{
    ogi_session_options o = ogi_session_default_options();
    if (threads > 0)
        o.threads = threads;
    ogi_session *s;
    ogi_status st = ogi_session_open(path, threads > 0 ? &o : NULL, &s);
    TEST_CHECK(st == OGI_OK, "%s: open: %s", what, ogi_last_error());
    if (st != OGI_OK)
        return false;
    st = ogi_session_run(s, (size_t)n_in, in_names, (const ogi_tensor *const *)in, (size_t)n_out,
                         out_names, outs);
    TEST_CHECK(st == OGI_OK, "%s: run: %s", what, ogi_last_error());
    ogi_session_free(s);
    return st == OGI_OK;
}

bool test_graph_load(const char *path, test_graph *t)
{
    graph_options go = {.fold_constants = true};
    t->g = NULL;
    if (onnx_model_load(path, &t->model) != OGI_OK)
        return false;
    if (graph_build(t->model, &go, &t->g) != OGI_OK) {
        onnx_model_free(t->model);
        return false;
    }
    return true;
}

void test_graph_free(test_graph *t)
{
    graph_free(t->g);
    onnx_model_free(t->model);
}
