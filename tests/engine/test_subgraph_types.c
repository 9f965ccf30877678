/* Subgraph inputs whose ValueInfoProto carries no type (ONNX allows this for
 * subgraphs: the type comes from the value the op binds): a Scan whose body
 * declares its state and scan inputs by name only runs like a typed one,
 * while an untyped input of the main graph is still refused. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ogi.h"
#include "pb_writer.h"
#include "test_util.h"

static int checks;

/* ValueInfoProto with a name and no type. */
static void test_untyped_info(pbw *b, uint32_t field, const char *name)
{
    pbw vi = {0};
    pbw_string(&vi, 1, name);
    pbw_message(b, field, &vi);
}

/* Scan(S0, X) with body s_out = s_in + x_t, y_t = s_out * 2 (running sums
 * doubled); the body's inputs are untyped. The main graph's input X is
 * untyped too when main_untyped. */
static void test_build_scan(pbw *model, bool main_untyped)
{
    pbw body = {0}, g = {0}, node = {0};
    const char *add_in[2] = {"s_in", "x_t"}, *add_out[1] = {"s_out"};
    const char *mul_in[2] = {"s_out", "two"}, *mul_out[1] = {"y_t"};
    pbw_node(&body, "Add", "add", 2, add_in, 1, add_out);
    pbw_node(&body, "Mul", "mul", 2, mul_in, 1, mul_out);
    pbw_string(&body, 2, "body");
    const float two = 2.0f;
    pbw_tensor_raw(&body, 5, "two", OGI_FLOAT32, 0, NULL, &two, sizeof(two));
    test_untyped_info(&body, 11, "s_in");
    test_untyped_info(&body, 11, "x_t");
    const int64_t d2[1] = {2};
    pbw_value_info(&body, 12, "s_out", OGI_FLOAT32, 1, d2);
    pbw_value_info(&body, 12, "y_t", OGI_FLOAT32, 1, d2);

    const char *scan_in[2] = {"S0", "X"}, *scan_out[2] = {"S", "Y"};
    pbw_node_begin(&node, "Scan", "scan", 2, scan_in, 2, scan_out);
    pbw_attr_graph(&node, "body", &body);
    pbw_attr_int(&node, "num_scan_inputs", 1);
    pbw_message(&g, 1, &node);
    pbw_string(&g, 2, "g");
    const float s0[2] = {1.0f, -1.0f};
    pbw_tensor_raw(&g, 5, "S0", OGI_FLOAT32, 1, d2, s0, sizeof(s0));
    const int64_t dx[2] = {3, 2};
    if (main_untyped)
        test_untyped_info(&g, 11, "X");
    else
        pbw_value_info(&g, 11, "X", OGI_FLOAT32, 2, dx);
    pbw_value_info(&g, 12, "S", OGI_FLOAT32, 1, d2);
    pbw_value_info(&g, 12, "Y", OGI_FLOAT32, 2, dx);
    pbw_model(model, 8, 16, &g);
}

static void test_scan_untyped_body(void)
{
    pbw m = {0};
    test_build_scan(&m, false);
    char path[TEST_PATH_SIZE];
    test_save_model(&m, path);
    const int64_t dx[2] = {3, 2};
    const float x[6] = {1, 2, 3, 4, 5, 6};
    ogi_tensor *in = test_tensor_f32(2, dx, x), *out[2] = {NULL, NULL};
    const char *in_name = "X", *out_names[2] = {"S", "Y"};
    ogi_session *s = NULL;
    ogi_status st = ogi_session_open(path, NULL, &s);
    if (st == OGI_OK)
        st = ogi_session_run(s, 1, &in_name, (const ogi_tensor *const *)&in, 2, out_names, out);
    checks++;
    TEST_CHECK(st == OGI_OK, "Scan with untyped body inputs: %s", ogi_last_error());
    if (st == OGI_OK) {
        const float want_s[2] = {1 + 1 + 3 + 5, -1 + 2 + 4 + 6};
        const float want_y[6] = {4, 2, 10, 10, 20, 22};
        const float *sv = ogi_tensor_data(out[0]), *yv = ogi_tensor_data(out[1]);
        for (int i = 0; i < 2; i++, checks++)
            TEST_CHECK(fabsf(sv[i] - want_s[i]) < 1e-6f, "S[%d] = %g, want %g", i, sv[i],
                       want_s[i]);
        for (int i = 0; i < 6; i++, checks++)
            TEST_CHECK(fabsf(yv[i] - want_y[i]) < 1e-6f, "Y[%d] = %g, want %g", i, yv[i],
                       want_y[i]);
    }
    ogi_tensor_free(out[0]);
    ogi_tensor_free(out[1]);
    ogi_tensor_free(in);
    ogi_session_free(s);
    remove(path);
}

static void test_main_untyped_refused(void)
{
    pbw m = {0};
    test_build_scan(&m, true);
    char path[TEST_PATH_SIZE];
    test_save_model(&m, path);
    ogi_session *s = NULL;
    ogi_status st = ogi_session_open(path, NULL, &s);
    checks++;
    TEST_CHECK(st == OGI_ERR_UNSUPPORTED && strstr(ogi_last_error(), "input 'X'") != NULL,
               "untyped main-graph input: %s (%s)", ogi_status_name(st), ogi_last_error());
    ogi_session_free(s);
    remove(path);
}

int main(void)
{
    test_scan_untyped_body();
    test_main_untyped_refused();
    return test_finish("test_subgraph_types", checks);
}
