/* float32 fast paths of element-wise and row kernels against plain double
 * loops: Softmax (vectorised exp, max and sum), Sigmoid (vectorised exp),
 * RMSNormalization (contiguous rows, threaded) and IsNaN (bit tests), on
 * random shapes with odd row lengths, rows of -inf (masked attention rows),
 * +inf and NaN; bool And/Or/Xor and int64 comparisons (mask arithmetic)
 * with broadcasting against plain loops; RotaryEmbedding's float32 rows
 * (halves or interleaved pairs, partial rotary dims, position ids); Cast to
 * the input's own type (the values unchanged, bit for bit); Transpose as a
 * view when only axes of size 1 move, against the index loop. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pb_writer.h"
#include "test_util.h"

static int checks = 0;

/* One graph: S = Softmax(X), G = Sigmoid(X), R = RMSNormalization(X, W), N = IsNaN(X). */
static ogi_session *open_model(int64_t rows, int64_t n, const float *w)
{
    pbw g = {0};
    const char *x[1] = {"X"}, *xw[2] = {"X", "W"}, *s[1] = {"S"}, *gs[1] = {"G"}, *r[1] = {"R"},
               *nn[1] = {"N"};
    pbw_node(&g, "Softmax", "softmax", 1, x, 1, s);
    pbw_node(&g, "Sigmoid", "sigmoid", 1, x, 1, gs);
    pbw_node(&g, "RMSNormalization", "rms", 2, xw, 1, r);
    pbw_node(&g, "IsNaN", "isnan", 1, x, 1, nn);
    pbw_string(&g, 2, "g");
    pbw_tensor_raw(&g, 5, "W", 1, 1, (int64_t[]){n}, w, sizeof(float) * (size_t)n);
    pbw_value_info(&g, 11, "X", 1, 2, (int64_t[]){rows, n});
    pbw_value_info(&g, 12, "S", 1, 2, (int64_t[]){rows, n});
    pbw_value_info(&g, 12, "G", 1, 2, (int64_t[]){rows, n});
    pbw_value_info(&g, 12, "R", 1, 2, (int64_t[]){rows, n});
    pbw_value_info(&g, 12, "N", 9, 2, (int64_t[]){rows, n});
    ogi_session_options o = ogi_session_default_options();
    o.threads = 2;
    checks++;
    return test_open_graph(&g, 10, 23, &o);
}

/* |got - want| within tol (relative above 1), NaN matching NaN. */
static bool close_to(double got, double want, double tol)
{
    if (isnan(want) || isnan(got))
        return isnan(want) && isnan(got);
    return fabs(got - want) <= tol * (1.0 + fabs(want));
}

static void check_row(const float *x, const float *w, int64_t n, const float *s, const float *g,
                      const float *r, const uint8_t *nan_flags, const char *what)
{
    double max = -INFINITY;
    bool has_nan = false;
    for (int64_t i = 0; i < n; i++) {
        has_nan |= isnan(x[i]);
        max = x[i] > max ? x[i] : max;
    }
    double shift = isinf(max) ? 0.0 : max, sum = 0.0, sumsq = 0.0;
    for (int64_t i = 0; i < n; i++) {
        sum += exp((double)x[i] - shift);
        sumsq += (double)x[i] * x[i];
    }
    double inv_rms = 1.0 / sqrt(sumsq / (double)n + 1e-5);
    int bad = 0;
    for (int64_t i = 0; i < n && bad == 0; i++) {
        double soft = has_nan ? NAN : exp((double)x[i] - shift) / sum;
        double sig = 1.0 / (1.0 + exp(-(double)x[i]));
        if (!close_to(s[i], soft, 1e-5))
            bad = 1;
        else if (!close_to(g[i], sig, 1e-6))
            bad = 2;
        else if (!close_to(r[i], (double)x[i] * inv_rms * w[i], 1e-5))
            bad = 3;
        else if (nan_flags[i] != (isnan(x[i]) ? 1 : 0))
            bad = 4;
        if (bad)
            TEST_CHECK(false, "%s n %lld element %lld (x %g): %s got %g %g %g %d", what,
                       (long long)n, (long long)i, (double)x[i],
                       bad == 1   ? "softmax"
                       : bad == 2 ? "sigmoid"
                       : bad == 3 ? "rms"
                                  : "isnan",
                       (double)s[i], (double)g[i], (double)r[i], nan_flags[i]);
    }
    checks++;
}

static void run_case(uint64_t *rng, int64_t rows, int64_t n, int special)
{
    float *x = malloc(sizeof(float) * (size_t)(rows * n + 1));
    float *w = malloc(sizeof(float) * (size_t)(n + 1));
    for (int64_t i = 0; i < rows * n; i++)
        x[i] = (float)((int64_t)(test_rand(rng) % 20001) - 10000) / 1000.0f;
    for (int64_t i = 0; i < n; i++)
        w[i] = (float)((int64_t)(test_rand(rng) % 2001) - 1000) / 500.0f;
    /* special rows: masked keys (-inf, float min), a fully masked row,
     * +inf, NaN, large magnitudes past exp's clamp */
    if (special && rows > 0 && n > 0) {
        for (int64_t i = n / 2; i < n; i++)
            x[i] = (i % 2) ? -INFINITY : -3.4e38f;
        int64_t r = (int64_t)(test_rand(rng) % (uint64_t)rows);
        for (int64_t i = 0; i < n; i++)
            x[r * n + i] = r == 0 && i < n / 2 ? x[i] : -INFINITY;
        x[(rows - 1) * n + (int64_t)(test_rand(rng) % (uint64_t)n)] = 95.0f;
        x[(rows - 1) * n + (int64_t)(test_rand(rng) % (uint64_t)n)] = -120.0f;
        if (rows > 2) {
            x[n + (int64_t)(test_rand(rng) % (uint64_t)n)] = NAN;
            x[2 * n + (int64_t)(test_rand(rng) % (uint64_t)n)] = INFINITY;
        }
    }
    ogi_session *s = open_model(rows, n, w);
    if (s != NULL) {
        ogi_tensor *in = test_tensor_f32(2, (int64_t[]){rows, n}, x), *out[4] = {0};
        const char *in_name = "X", *out_names[4] = {"S", "G", "R", "N"};
        ogi_status st =
            ogi_session_run(s, 1, &in_name, (const ogi_tensor *const *)&in, 4, out_names, out);
        TEST_CHECK(st == OGI_OK, "run: %s", ogi_last_error());
        checks++;
        for (int64_t r = 0; st == OGI_OK && r < rows; r++) {
            const float *sv = ogi_tensor_data(out[0]), *gv = ogi_tensor_data(out[1]),
                        *rv = ogi_tensor_data(out[2]);
            const uint8_t *nv = ogi_tensor_data(out[3]);
            check_row(x + r * n, w, n, sv + r * n, gv + r * n, rv + r * n, nv + r * n,
                      special ? "special" : "random");
        }
        ogi_tensor_free(in);
        for (int k = 0; k < 4; k++)
            ogi_tensor_free(out[k]);
        ogi_session_free(s);
    }
    free(x);
    free(w);
}

/* Y1 = And(A, B), Y2 = Or(A, B), Y3 = Xor(A, B) with A bool [rows, 1, n],
 * B bool [cols, 1]; Y4 = LessOrEqual(I, J), Y5 = Less(I, J), Y6 =
 * Greater(I, J), Y7 = GreaterOrEqual(I, J), Y8 = Equal(I, J) with I int64
 * [rows, 1, 1], J int64 [cols, n]. Every output is [rows, cols, n]. */
static void run_mask_case(uint64_t *rng, int64_t rows, int64_t cols, int64_t n)
{
    static const char *ops[8] = {
        "And", "Or", "Xor", "LessOrEqual", "Less", "Greater", "GreaterOrEqual", "Equal"};
    static const char *outs[8] = {"Y1", "Y2", "Y3", "Y4", "Y5", "Y6", "Y7", "Y8"};
    pbw g = {0};
    for (int k = 0; k < 8; k++) {
        const char *in[2] = {k < 3 ? "A" : "I", k < 3 ? "B" : "J"};
        pbw_node(&g, ops[k], ops[k], 2, in, 1, &outs[k]);
    }
    pbw_string(&g, 2, "g");
    int64_t ad[3] = {rows, 1, n}, bd[2] = {cols, 1}, id[3] = {rows, 1, 1}, jd[2] = {cols, n};
    int64_t yd[3] = {rows, cols, n};
    pbw_value_info(&g, 11, "A", 9, 3, ad);
    pbw_value_info(&g, 11, "B", 9, 2, bd);
    pbw_value_info(&g, 11, "I", 7, 3, id);
    pbw_value_info(&g, 11, "J", 7, 2, jd);
    for (int k = 0; k < 8; k++)
        pbw_value_info(&g, 12, outs[k], 9, 3, yd);
    ogi_session_options o = ogi_session_default_options();
    o.threads = 2;
    ogi_session *s = test_open_graph(&g, 8, 17, &o);
    checks++;
    if (s == NULL)
        return;
    ogi_tensor *in[4];
    ogi_tensor_create(OGI_BOOL, 3, ad, &in[0]);
    ogi_tensor_create(OGI_BOOL, 2, bd, &in[1]);
    ogi_tensor_create(OGI_INT64, 3, id, &in[2]);
    ogi_tensor_create(OGI_INT64, 2, jd, &in[3]);
    uint8_t *a = ogi_tensor_data(in[0]), *b = ogi_tensor_data(in[1]);
    int64_t *iv = ogi_tensor_data(in[2]), *jv = ogi_tensor_data(in[3]);
    for (int64_t x = 0; x < rows * n; x++)
        a[x] = test_rand(rng) % 2;
    for (int64_t x = 0; x < cols; x++)
        b[x] = test_rand(rng) % 2;
    for (int64_t x = 0; x < rows; x++)
        iv[x] = (int64_t)(test_rand(rng) % 9) - 4;
    for (int64_t x = 0; x < cols * n; x++)
        jv[x] = (int64_t)(test_rand(rng) % 9) - 4;
    const char *in_names[4] = {"A", "B", "I", "J"};
    ogi_tensor *out[8] = {0};
    ogi_status st = ogi_session_run(s, 4, in_names, (const ogi_tensor *const *)in, 8, outs, out);
    TEST_CHECK(st == OGI_OK, "run: %s", ogi_last_error());
    checks++;
    int bad = -1;
    for (int64_t r = 0; st == OGI_OK && r < rows; r++)
        for (int64_t c = 0; c < cols; c++)
            for (int64_t e = 0; e < n; e++) {
                uint8_t av = a[r * n + e], bv = b[c];
                int64_t x = iv[r], y = jv[c * n + e];
                uint8_t want[8] = {av & bv, av | bv, av ^ bv, x <= y, x<y, x> y, x >= y, x == y};
                for (int k = 0; k < 8; k++)
                    if (((const uint8_t *)ogi_tensor_data(out[k]))[(r * cols + c) * n + e] !=
                        want[k])
                        bad = k;
            }
    TEST_CHECK(bad < 0, "%s [%lld, %lld, %lld] differs from the plain loop",
               bad >= 0 ? ops[bad] : "", (long long)rows, (long long)cols, (long long)n);
    checks++;
    for (int k = 0; k < 4; k++)
        ogi_tensor_free(in[k]);
    for (int k = 0; k < 8; k++)
        ogi_tensor_free(out[k]);
    ogi_session_free(s);
}

/* Y = RotaryEmbedding(X [b, h, s, d], cos [maxpos, rot/2], sin, positions [b, s]). */
static void run_rotary_case(uint64_t *rng, int64_t b, int64_t h, int64_t seq, int64_t d,
                            int64_t rot, int interleaved)
{
    const int64_t maxpos = 64, half = rot / 2;
    pbw g = {0}, node = {0};
    const char *in[4] = {"X", "C", "S", "P"}, *out = "Y";
    pbw_node_begin(&node, "RotaryEmbedding", "rope", 4, in, 1, &out);
    pbw_attr_int(&node, "interleaved", interleaved);
    pbw_attr_int(&node, "rotary_embedding_dim", rot);
    pbw_message(&g, 1, &node);
    pbw_string(&g, 2, "g");
    int64_t xd[4] = {b, h, seq, d}, cd[2] = {maxpos, half}, pd[2] = {b, seq};
    pbw_value_info(&g, 11, "X", 1, 4, xd);
    pbw_value_info(&g, 11, "C", 1, 2, cd);
    pbw_value_info(&g, 11, "S", 1, 2, cd);
    pbw_value_info(&g, 11, "P", 7, 2, pd);
    pbw_value_info(&g, 12, "Y", 1, 4, xd);
    ogi_session_options o = ogi_session_default_options();
    o.threads = 2;
    ogi_session *sess = test_open_graph(&g, 10, 23, &o);
    checks++;
    if (sess == NULL)
        return;
    ogi_tensor *t[4];
    ogi_tensor_create(OGI_FLOAT32, 4, xd, &t[0]);
    ogi_tensor_create(OGI_FLOAT32, 2, cd, &t[1]);
    ogi_tensor_create(OGI_FLOAT32, 2, cd, &t[2]);
    ogi_tensor_create(OGI_INT64, 2, pd, &t[3]);
    float *x = ogi_tensor_data(t[0]), *cv = ogi_tensor_data(t[1]), *sv = ogi_tensor_data(t[2]);
    int64_t *pos = ogi_tensor_data(t[3]);
    for (int64_t i = 0; i < b * h * seq * d; i++)
        x[i] = (float)((int64_t)(test_rand(rng) % 2001) - 1000) / 300.0f;
    for (int64_t i = 0; i < maxpos * half; i++) {
        double angle = (double)(test_rand(rng) % 10000) / 1000.0;
        cv[i] = (float)cos(angle);
        sv[i] = (float)sin(angle);
    }
    for (int64_t i = 0; i < b * seq; i++)
        pos[i] = (int64_t)(test_rand(rng) % (uint64_t)maxpos);
    ogi_tensor *y = NULL;
    ogi_status st = ogi_session_run(sess, 4, in, (const ogi_tensor *const *)t, 1, &out, &y);
    TEST_CHECK(st == OGI_OK, "run: %s", ogi_last_error());
    checks++;
    double worst = 0;
    for (int64_t bi = 0; st == OGI_OK && bi < b; bi++)
        for (int64_t hi = 0; hi < h; hi++)
            for (int64_t si = 0; si < seq; si++) {
                int64_t off = ((bi * h + hi) * seq + si) * d, row = pos[bi * seq + si];
                const float *yv = (const float *)ogi_tensor_data(y) + off, *xv = x + off;
                for (int64_t k = 0; k < d; k++) {
                    double want = xv[k];
                    if (k < rot) {
                        int64_t pair = interleaved ? k / 2 : k % half;
                        bool first = interleaved ? k % 2 == 0 : k < half;
                        double x1 = interleaved ? xv[2 * pair] : xv[pair];
                        double x2 = interleaved ? xv[2 * pair + 1] : xv[pair + half];
                        double c = cv[row * half + pair], sn = sv[row * half + pair];
                        want = first ? c * x1 - sn * x2 : sn * x1 + c * x2;
                    }
                    double err = fabs(yv[k] - want);
                    worst = err > worst ? err : worst;
                }
            }
    TEST_CHECK(worst < 1e-5, "rotary [%lld,%lld,%lld,%lld] rot %lld interleaved %d: error %g",
               (long long)b, (long long)h, (long long)seq, (long long)d, (long long)rot,
               interleaved, worst);
    checks++;
    for (int k = 0; k < 4; k++)
        ogi_tensor_free(t[k]);
    ogi_tensor_free(y);
    ogi_session_free(sess);
}

/* Y = Cast(X, to=float32) with X float32, read after X is also used by a
 * second node (so the executor must not hand out X's buffer to be written). */
static void run_identity_cast_case(uint64_t *rng, int64_t n)
{
    pbw g = {0}, node = {0};
    const char *x = "X", *y = "Y";
    pbw_node_begin(&node, "Cast", "cast", 1, &x, 1, &y);
    pbw_attr_int(&node, "to", 1);
    pbw_message(&g, 1, &node);
    pbw_node(&g, "Neg", "neg", 1, (const char *[]){"X"}, 1, (const char *[]){"Z"});
    pbw_string(&g, 2, "g");
    pbw_value_info(&g, 11, "X", 1, 1, &n);
    pbw_value_info(&g, 12, "Y", 1, 1, &n);
    pbw_value_info(&g, 12, "Z", 1, 1, &n);
    ogi_session *s = test_open_graph(&g, 8, 17, NULL);
    checks++;
    if (s == NULL)
        return;
    ogi_tensor *xt = test_tensor_f32(1, &n, NULL), *out[2] = {NULL, NULL};
    uint32_t *bits = ogi_tensor_data(xt);
    for (int64_t i = 0; i < n; i++)
        bits[i] = (uint32_t)test_rand(rng); /* NaN payloads, denormals, infinities */
    const char *in_name = "X", *names[2] = {"Y", "Z"};
    ogi_status st = ogi_session_run(s, 1, &in_name, (const ogi_tensor *const *)&xt, 2, names, out);
    TEST_CHECK(st == OGI_OK, "run: %s", ogi_last_error());
    TEST_CHECK(st == OGI_OK &&
                   memcmp(ogi_tensor_data(out[0]), bits, sizeof(float) * (size_t)n) == 0,
               "Cast float32 -> float32 changed the bits (n %lld)", (long long)n);
    checks += 2;
    ogi_tensor_free(xt);
    ogi_tensor_free(out[0]);
    ogi_tensor_free(out[1]);
    ogi_session_free(s);
}

/* Transpose(input, perm) as a view when the axes longer than 1 keep their
 * order, a strided copy otherwise: T = Transpose(N = Neg(X)) read by Y =
 * Neg(T) (N's buffer taken over), Z = Neg(N) after it (N read again: a
 * copy), W = Neg(Transpose(X)) (a graph input, borrowed); against the
 * plain index loop. */
static void run_transpose_case(uint64_t *rng, int rank, const int64_t *dims, const int64_t *perm)
{
    pbw g = {0};
    for (int k = 0; k < 2; k++) {
        pbw node = {0};
        const char *in = k == 0 ? "N" : "X", *out = k == 0 ? "T" : "T2";
        pbw_node_begin(&node, "Transpose", k == 0 ? "t" : "t2", 1, &in, 1, &out);
        pbw_attr_ints(&node, "perm", rank, perm);
        if (k == 0)
            pbw_node(&g, "Neg", "n", 1, (const char *[]){"X"}, 1, (const char *[]){"N"});
        pbw_message(&g, 1, &node);
    }
    pbw_node(&g, "Neg", "y", 1, (const char *[]){"T"}, 1, (const char *[]){"Y"});
    pbw_node(&g, "Neg", "z", 1, (const char *[]){"N"}, 1, (const char *[]){"Z"});
    pbw_node(&g, "Neg", "w", 1, (const char *[]){"T2"}, 1, (const char *[]){"W"});
    pbw_string(&g, 2, "g");
    pbw_value_info(&g, 11, "X", 1, rank, dims);
    const char *outs[3] = {"Y", "Z", "W"};
    for (int i = 0; i < 3; i++)
        pbw_value_info(&g, 12, outs[i], 1, -1, NULL);
    ogi_session *s = test_open_graph(&g, 8, 17, NULL);
    checks++;
    if (s == NULL)
        return;
    ogi_tensor *x = test_tensor_f32(rank, dims, NULL), *out[3] = {NULL, NULL, NULL};
    float *xv = ogi_tensor_data(x);
    int64_t n = ogi_tensor_numel(x);
    for (int64_t i = 0; i < n; i++)
        xv[i] = (float)(test_rand(rng) % 1000) - 500.0f;
    const char *in_name = "X";
    ogi_status st = ogi_session_run(s, 1, &in_name, (const ogi_tensor *const *)&x, 3, outs, out);
    TEST_CHECK(st == OGI_OK, "run: %s", ogi_last_error());
    checks++;
    int64_t strides[8], od[8], bad = -1;
    for (int d = rank - 1, st_ = 1; d >= 0; st_ *= (int)dims[d], d--)
        strides[d] = st_;
    for (int d = 0; d < rank; d++)
        od[d] = dims[perm[d]];
    for (int64_t i = 0; i < n && st == OGI_OK && bad < 0; i++) {
        int64_t rest = i, from = 0; /* output element i, row-major over od */
        for (int d = rank - 1; d >= 0; d--) {
            from += (rest % od[d]) * strides[perm[d]];
            rest /= od[d];
        }
        const float *y = ogi_tensor_data(out[0]), *z = ogi_tensor_data(out[1]),
                    *w = ogi_tensor_data(out[2]);
        if (y[i] != xv[from] || w[i] != -xv[from] || z[i] != xv[i])
            bad = i;
    }
    TEST_CHECK(bad < 0, "Transpose rank %d: element %lld differs", rank, (long long)bad);
    checks++;
    ogi_tensor_free(x);
    for (int i = 0; i < 3; i++)
        ogi_tensor_free(out[i]);
    ogi_session_free(s);
}

static void run_transpose_cases(uint64_t *rng)
{
    for (int i = 0; i < 60; i++) {
        int rank = 1 + (int)(test_rand(rng) % 5);
        int64_t dims[5], perm[5];
        for (int d = 0; d < rank; d++) {
            dims[d] = test_rand(rng) % 2 ? 1 : 1 + (int64_t)(test_rand(rng) % 5);
            perm[d] = d;
        }
        for (int d = rank - 1; d > 0; d--) { /* Fisher-Yates */
            int j = (int)(test_rand(rng) % (uint64_t)(d + 1));
            int64_t t = perm[d];
            perm[d] = perm[j];
            perm[j] = t;
        }
        run_transpose_case(rng, rank, dims, perm);
    }
    /* a decode step's [b, seq = 1, heads, d] -> [b, heads, seq, d] and back */
    run_transpose_case(rng, 4, (int64_t[]){1, 1, 8, 32}, (int64_t[]){0, 2, 1, 3});
    run_transpose_case(rng, 4, (int64_t[]){1, 8, 1, 32}, (int64_t[]){0, 2, 1, 3});
    run_transpose_case(rng, 4, (int64_t[]){1, 8, 3, 32}, (int64_t[]){0, 2, 1, 3});
    run_transpose_case(rng, 3, (int64_t[]){2, 0, 3}, (int64_t[]){2, 0, 1}); /* empty */
}

int main(void)
{
    uint64_t rng = 0x5eed5eed12345678ull;
    const int64_t ns[] = {1, 3, 7, 8, 15, 16, 17, 31, 32, 33, 64, 100, 256, 513, 704};
    for (int i = 0; i < 30; i++) {
        int64_t rows = 1 + (int64_t)(test_rand(&rng) % 40);
        int64_t n = ns[test_rand(&rng) % (sizeof(ns) / sizeof(ns[0]))];
        run_case(&rng, rows, n, i % 2);
    }
    run_case(&rng, 600, 704, 0); /* threaded over rows */
    run_case(&rng, 0, 16, 0);    /* empty */
    for (int i = 0; i < 10; i++)
        run_mask_case(&rng, 1 + (int64_t)(test_rand(&rng) % 20),
                      1 + (int64_t)(test_rand(&rng) % 30), 1 + (int64_t)(test_rand(&rng) % 70));
    run_mask_case(&rng, 64, 64, 300); /* threaded */
    for (int i = 0; i < 12; i++) {
        int64_t d = 2 * (1 + (int64_t)(test_rand(&rng) % 40));
        int64_t rot = i % 3 == 0 ? d : 2 * (1 + (int64_t)(test_rand(&rng) % (uint64_t)(d / 2)));
        run_rotary_case(&rng, 1 + (int64_t)(test_rand(&rng) % 2),
                        1 + (int64_t)(test_rand(&rng) % 5), 1 + (int64_t)(test_rand(&rng) % 50), d,
                        rot, i % 2);
    }
    run_rotary_case(&rng, 1, 8, 512, 32, 32, 0); /* threaded */
    run_identity_cast_case(&rng, 1000);
    run_identity_cast_case(&rng, 1);
    run_transpose_cases(&rng);
    return test_finish("test_fast_paths", checks);
}
