/* Fused kernels against plain loops: MatMul(A, Transpose(W)) with W a
 * constant becomes ai.ogi.MatMulTransposeB at load (folding is off here so
 * that the Transpose is not folded away first). Random shapes cover the
 * decode path (few rows: vectorised dot products) and the GEMM path. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pb_writer.h"
#include "test_util.h"

static int checks = 0;

static void run_case(uint64_t *rng, int64_t m, int64_t n, int64_t k, int batch)
{
    float *w = malloc(sizeof(float) * (size_t)(n * k + 1));
    float *a = malloc(sizeof(float) * (size_t)(batch * m * k + 1));
    for (int64_t i = 0; i < n * k; i++)
        w[i] = (float)((int64_t)(test_rand(rng) % 2001) - 1000) / 1000.0f;
    for (int64_t i = 0; i < batch * m * k; i++)
        a[i] = (float)((int64_t)(test_rand(rng) % 2001) - 1000) / 1000.0f;
    pbw g = {0}, model = {0};
    const char *t_in[1] = {"W"}, *t_out[1] = {"Wt"}, *mm_in[2] = {"A", "Wt"}, *mm_out[1] = {"Y"};
    pbw_node(&g, "Transpose", "t", 1, t_in, 1, t_out);
    pbw_node(&g, "MatMul", "mm", 2, mm_in, 1, mm_out);
    pbw_string(&g, 2, "g");
    pbw_tensor_raw(&g, 5, "W", 1, 2, (int64_t[]){n, k}, w, sizeof(float) * (size_t)(n * k));
    pbw_value_info(&g, 11, "A", 1, 3, (int64_t[]){batch, m, k});
    pbw_value_info(&g, 12, "Y", 1, 3, (int64_t[]){batch, m, n});
    pbw_model(&model, 8, 17, &g);
    char path[] = "/tmp/ogi-test-fused-XXXXXX";
    int fd = mkstemp(path);
    if (fd >= 0)
        close(fd);
    test_write_file(path, model.data, model.len);
    pbw_free(&model);
    ogi_session_options o = ogi_session_default_options();
    o.fold_constants = 0;
    o.threads = 2;
    ogi_session *s;
    ogi_status st = ogi_session_open(path, &o, &s);
    unlink(path);
    TEST_CHECK(st == OGI_OK, "open: %s", ogi_last_error());
    checks++;
    if (st == OGI_OK) {
        ogi_tensor *in = test_tensor_f32(3, (int64_t[]){batch, m, k}, a), *out = NULL;
        const char *in_name = "A", *out_name = "Y";
        st = ogi_session_run(s, 1, &in_name, (const ogi_tensor *const *)&in, 1, &out_name, &out);
        TEST_CHECK(st == OGI_OK, "run: %s", ogi_last_error());
        checks++;
        double worst = 0;
        for (int64_t r = 0; st == OGI_OK && r < batch * m; r++)
            for (int64_t j = 0; j < n; j++) {
                double want = 0;
                for (int64_t i = 0; i < k; i++)
                    want += (double)a[r * k + i] * (double)w[j * k + i];
                double got = ((const float *)ogi_tensor_data(out))[r * n + j];
                double err = fabs(got - want) / (1.0 + fabs(want));
                worst = err > worst ? err : worst;
            }
        TEST_CHECK(worst < 1e-5, "m %lld n %lld k %lld batch %d: relative error %g",
                   (long long)m, (long long)n, (long long)k, batch, worst);
        checks++;
        ogi_tensor_free(in);
        ogi_tensor_free(out);
        ogi_session_free(s);
    }
    free(w);
    free(a);
}

int main(void)
{
    uint64_t rng = 0x1234567887654321ull;
    const int64_t ks[] = {1, 3, 16, 17, 31, 32, 33, 64, 100, 577};
    for (int i = 0; i < 40; i++) {
        int64_t m = 1 + (int64_t)(test_rand(&rng) % 12);
        int64_t n = 1 + (int64_t)(test_rand(&rng) % 300);
        int64_t k = ks[test_rand(&rng) % (sizeof(ks) / sizeof(ks[0]))];
        run_case(&rng, m, n, k, 1 + (int)(test_rand(&rng) % 2));
    }
    run_case(&rng, 0, 5, 7, 1); /* no rows */
    return test_finish("test_fused", checks);
}
