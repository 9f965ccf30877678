/* Signal processing: DFT (opsets 17 and 20), STFT, the Hann, Hamming and
 * Blackman windows, and MelWeightMatrix.
 *
 * Transforms run in double. A length-n transform uses an iterative radix-2
 * FFT when n is a power of two, Bluestein's chirp-z algorithm (a convolution
 * done with radix-2 FFTs) for other large n, and the plain O(n^2) sum for
 * small n; dft_naive() is the reference the others must match. Complex
 * float32 input instead follows numpy's float32 FFT pass for pass (see
 * fft32_run). Complex values are stored as [..., 2] (real, imaginary); real
 * ones as [..., 1]. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops/cast.h"
#include "ops/families.h"

#define DFT_NAIVE_MAX 32 /* below this length the plain sum is as fast */
#define DFT_MAX_LENGTH ((int64_t)1 << 32)
#define SIGNAL_PI 3.14159265358979323846

/* ---- transforms ------------------------------------------------------------ */

/* A forward transform of length n, X[k] = sum_t x[t] e^{-2 pi i k t / n},
 * with its tables and scratch. */
typedef struct dft_plan {
    int64_t n;
    double *tw_re, *tw_im; /* e^{-2 pi i j / n}, j < n */
    /* Bluestein only (m == 0 otherwise) */
    int64_t m;                   /* power of two >= 2n - 1 */
    double *chirp_re, *chirp_im; /* e^{-pi i j^2 / n}, j < n */
    double *filt_re, *filt_im;   /* FFT_m of the conjugate chirp, wrapped around */
    double *mtw_re, *mtw_im;     /* twiddles for length m */
    double *work_re, *work_im;   /* m each */
    double *tmp_re, *tmp_im;     /* n each, for the plain sum */
} dft_plan;

static bool dft_is_pow2(int64_t n)
{
    return n > 0 && (n & (n - 1)) == 0;
}

/* Fills re/im with e^{-2 pi i j / n} for j < n. */
static void dft_twiddles(int64_t n, double *re, double *im)
{
    for (int64_t j = 0; j < n; j++) {
        double a = -2.0 * SIGNAL_PI * (double)j / (double)n;
        re[j] = cos(a);
        im[j] = sin(a);
    }
}

/* The reference: y = DFT_n(x) by the definition, tables tw of length n. */
static void dft_naive(int64_t n, const double *tw_re, const double *tw_im, const double *x_re,
                      const double *x_im, double *y_re, double *y_im)
{
    for (int64_t k = 0; k < n; k++) {
        double sr = 0.0, si = 0.0;
        int64_t j = 0; /* k * t mod n */
        for (int64_t t = 0; t < n; t++) {
            sr += x_re[t] * tw_re[j] - x_im[t] * tw_im[j];
            si += x_re[t] * tw_im[j] + x_im[t] * tw_re[j];
            j += k;
            if (j >= n)
                j -= n;
        }
        y_re[k] = sr;
        y_im[k] = si;
    }
}

/* In-place forward FFT of length n (a power of two), tables of length n. */
static void dft_radix2(int64_t n, const double *tw_re, const double *tw_im, double *re, double *im)
{
    for (int64_t i = 1, j = 0; i < n; i++) {
        int64_t bit = n >> 1;
        for (; j & bit; bit >>= 1)
            j ^= bit;
        j |= bit;
        if (i < j) {
            double t = re[i];
            re[i] = re[j];
            re[j] = t;
            t = im[i];
            im[i] = im[j];
            im[j] = t;
        }
    }
    for (int64_t len = 2; len <= n; len <<= 1) {
        int64_t half = len >> 1, step = n / len;
        for (int64_t start = 0; start < n; start += len) {
            for (int64_t k = 0; k < half; k++) {
                double wr = tw_re[k * step], wi = tw_im[k * step];
                int64_t a = start + k, b = a + half;
                double br = re[b] * wr - im[b] * wi;
                double bi = re[b] * wi + im[b] * wr;
                re[b] = re[a] - br;
                im[b] = im[a] - bi;
                re[a] += br;
                im[a] += bi;
            }
        }
    }
}

/* In-place inverse FFT of length n (a power of two), unscaled. */
static void dft_radix2_inverse(int64_t n, const double *tw_re, const double *tw_im, double *re,
                               double *im)
{
    for (int64_t i = 0; i < n; i++)
        im[i] = -im[i];
    dft_radix2(n, tw_re, tw_im, re, im);
    for (int64_t i = 0; i < n; i++)
        im[i] = -im[i];
}

static void dft_plan_free(dft_plan *p)
{
    free(p->tw_re);
    free(p->chirp_re);
    free(p->mtw_re);
    free(p->tmp_re);
    memset(p, 0, sizeof(*p));
}

/* Bluestein tables: the chirp, and the FFT of the filter it convolves with. */
static void dft_bluestein_init(dft_plan *p)
{
    int64_t n = p->n, m = p->m;
    /* q = j^2 mod 2n, kept small so the angle stays accurate */
    for (int64_t j = 0, q = 0; j < n; j++) {
        double a = -SIGNAL_PI * (double)q / (double)n;
        p->chirp_re[j] = cos(a);
        p->chirp_im[j] = sin(a);
        q = (q + 2 * j + 1) % (2 * n);
    }
    dft_twiddles(m, p->mtw_re, p->mtw_im);
    for (int64_t j = 0; j < m; j++)
        p->filt_re[j] = p->filt_im[j] = 0.0;
    for (int64_t j = 0; j < n; j++) {
        p->filt_re[j] = p->chirp_re[j];
        p->filt_im[j] = -p->chirp_im[j];
        if (j > 0) {
            p->filt_re[m - j] = p->chirp_re[j];
            p->filt_im[m - j] = -p->chirp_im[j];
        }
    }
    dft_radix2(m, p->mtw_re, p->mtw_im, p->filt_re, p->filt_im);
}

/* Prepares a plan for length n >= 1; false when out of memory. */
static bool dft_plan_init(dft_plan *p, int64_t n)
{
    memset(p, 0, sizeof(*p));
    p->n = n;
    p->tw_re = malloc((size_t)n * 2 * sizeof(double));
    p->tmp_re = malloc((size_t)n * 2 * sizeof(double));
    if (p->tw_re == NULL || p->tmp_re == NULL)
        goto fail;
    p->tw_im = p->tw_re + n;
    p->tmp_im = p->tmp_re + n;
    dft_twiddles(n, p->tw_re, p->tw_im);
    if (n <= DFT_NAIVE_MAX || dft_is_pow2(n))
        return true;
    p->m = 1;
    while (p->m < 2 * n - 1)
        p->m <<= 1;
    int64_t m = p->m;
    p->chirp_re = malloc((size_t)n * 2 * sizeof(double));
    p->mtw_re = malloc((size_t)m * 6 * sizeof(double));
    if (p->chirp_re == NULL || p->mtw_re == NULL)
        goto fail;
    p->chirp_im = p->chirp_re + n;
    p->mtw_im = p->mtw_re + m;
    p->filt_re = p->mtw_re + 2 * m;
    p->filt_im = p->mtw_re + 3 * m;
    p->work_re = p->mtw_re + 4 * m;
    p->work_im = p->mtw_re + 5 * m;
    dft_bluestein_init(p);
    return true;
fail:
    dft_plan_free(p);
    return false;
}

/* X[k] = chirp[k] * (a conv filt)[k], with a[t] = x[t] chirp[t]. */
static void dft_bluestein(dft_plan *p, double *re, double *im)
{
    int64_t n = p->n, m = p->m;
    double *wr = p->work_re, *wi = p->work_im;
    for (int64_t t = 0; t < m; t++)
        wr[t] = wi[t] = 0.0;
    for (int64_t t = 0; t < n; t++) {
        wr[t] = re[t] * p->chirp_re[t] - im[t] * p->chirp_im[t];
        wi[t] = re[t] * p->chirp_im[t] + im[t] * p->chirp_re[t];
    }
    dft_radix2(m, p->mtw_re, p->mtw_im, wr, wi);
    for (int64_t j = 0; j < m; j++) {
        double r = wr[j] * p->filt_re[j] - wi[j] * p->filt_im[j];
        wi[j] = wr[j] * p->filt_im[j] + wi[j] * p->filt_re[j];
        wr[j] = r;
    }
    dft_radix2_inverse(m, p->mtw_re, p->mtw_im, wr, wi);
    double scale = 1.0 / (double)m;
    for (int64_t k = 0; k < n; k++) {
        double cr = wr[k] * scale, ci = wi[k] * scale;
        re[k] = cr * p->chirp_re[k] - ci * p->chirp_im[k];
        im[k] = cr * p->chirp_im[k] + ci * p->chirp_re[k];
    }
}

/* In-place transform of re/im (length n); inverse is unscaled. */
static void dft_run(dft_plan *p, bool inverse, double *re, double *im)
{
    int64_t n = p->n;
    if (inverse)
        for (int64_t i = 0; i < n; i++)
            im[i] = -im[i];
    if (dft_is_pow2(n) && n > DFT_NAIVE_MAX) {
        dft_radix2(n, p->tw_re, p->tw_im, re, im);
    } else if (p->m > 0) {
        dft_bluestein(p, re, im);
    } else {
        dft_naive(n, p->tw_re, p->tw_im, re, im, p->tmp_re, p->tmp_im);
        memcpy(re, p->tmp_re, (size_t)n * sizeof(double));
        memcpy(im, p->tmp_im, (size_t)n * sizeof(double));
    }
    if (inverse)
        for (int64_t i = 0; i < n; i++)
            im[i] = -im[i];
}

/* ---- float32 transforms in numpy's operation order --------------------------- */

/* numpy transforms complex64 data in float32 with pocketfft's mixed-radix
 * passes (real float32 data it transforms in double), and the ONNX reference,
 * hence the conformance data, relies on it. A plain float32 or double
 * transform differs from it by rounding noise, which near zero exceeds any
 * absolute tolerance. Complex float32 input therefore runs the same passes,
 * operation for operation, reproducing numpy's rounding, when every factor of
 * the length is 2, 3, 4, 5 or 8. Other lengths (pocketfft's other radices
 * and Bluestein are not reproduced), real input and the complex-to-real
 * IRFFT use the double path. Arithmetic is in float (C11 mode, so no FMA
 * contraction). */

typedef struct fft32_c {
    float r, i;
} fft32_c;

#define FFT32_MAX_FACTORS 64

typedef struct fft32_plan {
    int64_t n;
    int n_fact;
    int64_t fact[FFT32_MAX_FACTORS];
    fft32_c *tw[FFT32_MAX_FACTORS]; /* twiddles of each pass, into mem */
    fft32_c *mem;
    fft32_c *ch; /* scratch, n */
} fft32_plan;

static fft32_c fft32_add(fft32_c a, fft32_c b)
{
    return (fft32_c){a.r + b.r, a.i + b.i};
}

static fft32_c fft32_sub(fft32_c a, fft32_c b)
{
    return (fft32_c){a.r - b.r, a.i - b.i};
}

static fft32_c fft32_scale(fft32_c a, float s)
{
    return (fft32_c){a.r * s, a.i * s};
}

/* a * conj(w) forward, a * w backward */
static fft32_c fft32_twiddle(fft32_c a, fft32_c w, bool fwd)
{
    if (fwd)
        return (fft32_c){a.r * w.r + a.i * w.i, a.i * w.r - a.r * w.i};
    return (fft32_c){a.r * w.r - a.i * w.i, a.r * w.i + a.i * w.r};
}

/* times -i forward, i backward */
static fft32_c fft32_rot90(fft32_c a, bool fwd)
{
    return fwd ? (fft32_c){a.i, -a.r} : (fft32_c){-a.i, a.r};
}

/* times e^(-i pi/4) forward, e^(i pi/4) backward */
static fft32_c fft32_rot45(fft32_c a, bool fwd)
{
    const float h = 0.707106781186547524400844362104849f;
    return fwd ? (fft32_c){h * (a.r + a.i), h * (a.i - a.r)}
               : (fft32_c){h * (a.r - a.i), h * (a.i + a.r)};
}

/* times e^(-3i pi/4) forward, e^(3i pi/4) backward */
static fft32_c fft32_rot135(fft32_c a, bool fwd)
{
    const float h = 0.707106781186547524400844362104849f;
    return fwd ? (fft32_c){h * (a.i - a.r), h * (-a.r - a.i)}
               : (fft32_c){h * (-a.r - a.i), h * (a.r - a.i)};
}

/* e^(2 pi i m / n), reduced to the first octant so that symmetric points
 * (quarters, eighths) come out exact, then rounded to float. */
static fft32_c fft32_unit(int64_t m, int64_t n)
{
    double ang = 0.25 * SIGNAL_PI / (double)n, c, s;
    int64_t x = 8 * m;
    bool lower = x >= 4 * n; /* second half: mirror, negate sine */
    if (lower)
        x = 8 * n - x;
    if (x < 2 * n) { /* first quadrant */
        if (x < n) {
            c = cos((double)x * ang);
            s = sin((double)x * ang);
        } else {
            c = sin((double)(2 * n - x) * ang);
            s = cos((double)(2 * n - x) * ang);
        }
    } else { /* second quadrant */
        x -= 2 * n;
        if (x < n) {
            c = -sin((double)x * ang);
            s = cos((double)x * ang);
        } else {
            c = -cos((double)(2 * n - x) * ang);
            s = sin((double)(2 * n - x) * ang);
        }
    }
    return (fft32_c){(float)c, (float)(lower ? -s : s)};
}

/* pocketfft's factor order: 8s, then 4s, a 2 moved to the front, then odd
 * factors ascending. False when a factor is not 2, 3, 4, 5 or 8. */
static bool fft32_factorize(fft32_plan *p)
{
    int64_t len = p->n;
    p->n_fact = 0;
    while ((len & 7) == 0 && p->n_fact < FFT32_MAX_FACTORS) {
        p->fact[p->n_fact++] = 8;
        len >>= 3;
    }
    while ((len & 3) == 0 && p->n_fact < FFT32_MAX_FACTORS) {
        p->fact[p->n_fact++] = 4;
        len >>= 2;
    }
    if ((len & 1) == 0 && p->n_fact < FFT32_MAX_FACTORS) {
        len >>= 1;
        p->fact[p->n_fact++] = 2;
        int64_t t = p->fact[0];
        p->fact[0] = 2;
        p->fact[p->n_fact - 1] = t;
    }
    for (int64_t d = 3; d <= 5; d += 2) {
        while (len % d == 0 && p->n_fact < FFT32_MAX_FACTORS) {
            p->fact[p->n_fact++] = d;
            len /= d;
        }
    }
    return len == 1;
}

static void fft32_plan_free(fft32_plan *p)
{
    free(p->mem);
    free(p->ch);
    memset(p, 0, sizeof(*p));
}

/* False when n is not supported (see above) or memory runs out. */
static bool fft32_plan_init(fft32_plan *p, int64_t n)
{
    memset(p, 0, sizeof(*p));
    p->n = n;
    if (n < 1 || !fft32_factorize(p))
        return false;
    p->mem = malloc((size_t)n * sizeof(fft32_c));
    p->ch = malloc((size_t)n * sizeof(fft32_c));
    if (p->mem == NULL || p->ch == NULL) {
        fft32_plan_free(p);
        return false;
    }
    int64_t l1 = 1, used = 0;
    for (int f = 0; f < p->n_fact; f++) {
        int64_t ip = p->fact[f], ido = n / (l1 * ip);
        p->tw[f] = p->mem + used;
        for (int64_t j = 1; j < ip; j++)
            for (int64_t i = 1; i < ido; i++)
                p->tw[f][(j - 1) * (ido - 1) + i - 1] = fft32_unit(j * l1 * i, n);
        used += (ip - 1) * (ido - 1);
        l1 *= ip;
    }
    return true;
}

/* One pass of radix ip: cc holds l1 * ip blocks of ido, ch receives them
 * transposed. CC/CH/WA index as pocketfft's lambdas do. */
typedef struct fft32_pass {
    int64_t ido, l1;
    const fft32_c *cc;
    fft32_c *ch;
    const fft32_c *wa;
    bool fwd;
} fft32_pass;

static fft32_c fft32_cc(const fft32_pass *s, int64_t cdim, int64_t a, int64_t b, int64_t c)
{
    return s->cc[a + s->ido * (b + cdim * c)];
}

static fft32_c *fft32_ch(const fft32_pass *s, int64_t a, int64_t b, int64_t c)
{
    return &s->ch[a + s->ido * (b + s->l1 * c)];
}

static fft32_c fft32_wa(const fft32_pass *s, int64_t x, int64_t i)
{
    return s->wa[i - 1 + x * (s->ido - 1)];
}

/* Stores v into CH(i, k, u), twiddled unless i == 0. */
static void fft32_put(const fft32_pass *s, int64_t i, int64_t k, int64_t u, fft32_c v)
{
    *fft32_ch(s, i, k, u) = i == 0 ? v : fft32_twiddle(v, fft32_wa(s, u - 1, i), s->fwd);
}

static void fft32_pass2(const fft32_pass *s)
{
    for (int64_t k = 0; k < s->l1; k++) {
        for (int64_t i = 0; i < s->ido; i++) {
            fft32_c a = fft32_cc(s, 2, i, 0, k), b = fft32_cc(s, 2, i, 1, k);
            *fft32_ch(s, i, k, 0) = fft32_add(a, b);
            fft32_put(s, i, k, 1, fft32_sub(a, b));
        }
    }
}

static void fft32_pass3(const fft32_pass *s)
{
    const float twr = -0.5f, twi = (s->fwd ? -1.0f : 1.0f) * 0.8660254037844386467637231707529362f;
    for (int64_t k = 0; k < s->l1; k++) {
        for (int64_t i = 0; i < s->ido; i++) {
            fft32_c t0 = fft32_cc(s, 3, i, 0, k), c1 = fft32_cc(s, 3, i, 1, k),
                    c2 = fft32_cc(s, 3, i, 2, k);
            fft32_c t1 = fft32_add(c1, c2), t2 = fft32_sub(c1, c2);
            *fft32_ch(s, i, k, 0) = fft32_add(t0, t1);
            fft32_c ca = fft32_add(t0, fft32_scale(t1, twr)), cb = fft32_scale(t2, twi);
            cb = (fft32_c){-cb.i, cb.r};
            fft32_put(s, i, k, 1, fft32_add(ca, cb));
            fft32_put(s, i, k, 2, fft32_sub(ca, cb));
        }
    }
}

static void fft32_pass4(const fft32_pass *s)
{
    for (int64_t k = 0; k < s->l1; k++) {
        for (int64_t i = 0; i < s->ido; i++) {
            fft32_c c0 = fft32_cc(s, 4, i, 0, k), c1 = fft32_cc(s, 4, i, 1, k),
                    c2 = fft32_cc(s, 4, i, 2, k), c3 = fft32_cc(s, 4, i, 3, k);
            fft32_c t2 = fft32_add(c0, c2), t1 = fft32_sub(c0, c2);
            fft32_c t3 = fft32_add(c1, c3), t4 = fft32_rot90(fft32_sub(c1, c3), s->fwd);
            *fft32_ch(s, i, k, 0) = fft32_add(t2, t3);
            fft32_put(s, i, k, 1, fft32_add(t1, t4));
            fft32_put(s, i, k, 2, fft32_sub(t2, t3));
            fft32_put(s, i, k, 3, fft32_sub(t1, t4));
        }
    }
}

/* Outputs u1 and u2 of a radix-5 butterfly (pocketfft's PARTSTEP5). */
static void fft32_step5(const fft32_pass *s, int64_t i, int64_t k, const fft32_c *t, int u1, int u2,
                        float twar, float twbr, float twai, float twbi)
{
    fft32_c ca, cb;
    ca.r = t[0].r + twar * t[1].r + twbr * t[2].r;
    ca.i = t[0].i + twar * t[1].i + twbr * t[2].i;
    cb.i = twai * t[4].r + twbi * t[3].r;
    cb.r = -(twai * t[4].i + twbi * t[3].i);
    fft32_put(s, i, k, u1, fft32_add(ca, cb));
    fft32_put(s, i, k, u2, fft32_sub(ca, cb));
}

static void fft32_pass5(const fft32_pass *s)
{
    const float sign = s->fwd ? -1.0f : 1.0f;
    const float tw1r = 0.3090169943749474241022934171828191f,
                tw1i = sign * 0.9510565162951535721164393333793821f,
                tw2r = -0.8090169943749474241022934171828191f,
                tw2i = sign * 0.5877852522924731291687059546390728f;
    for (int64_t k = 0; k < s->l1; k++) {
        for (int64_t i = 0; i < s->ido; i++) {
            fft32_c t[5], c1 = fft32_cc(s, 5, i, 1, k), c4 = fft32_cc(s, 5, i, 4, k),
                          c2 = fft32_cc(s, 5, i, 2, k), c3 = fft32_cc(s, 5, i, 3, k);
            t[0] = fft32_cc(s, 5, i, 0, k);
            t[1] = fft32_add(c1, c4);
            t[4] = fft32_sub(c1, c4);
            t[2] = fft32_add(c2, c3);
            t[3] = fft32_sub(c2, c3);
            fft32_c *out = fft32_ch(s, i, k, 0);
            out->r = t[0].r + t[1].r + t[2].r;
            out->i = t[0].i + t[1].i + t[2].i;
            fft32_step5(s, i, k, t, 1, 4, tw1r, tw2r, tw1i, tw2i);
            fft32_step5(s, i, k, t, 2, 3, tw2r, tw1r, tw2i, -tw1i);
        }
    }
}

static void fft32_pass8(const fft32_pass *s)
{
    bool fwd = s->fwd;
    for (int64_t k = 0; k < s->l1; k++) {
        for (int64_t i = 0; i < s->ido; i++) {
            fft32_c c[8];
            for (int j = 0; j < 8; j++)
                c[j] = fft32_cc(s, 8, i, j, k);
            fft32_c a1 = fft32_add(c[1], c[5]), a5 = fft32_sub(c[1], c[5]);
            fft32_c a3 = fft32_add(c[3], c[7]), a7 = fft32_sub(c[3], c[7]);
            fft32_c t = a1;
            a1 = fft32_add(a1, a3);
            a3 = fft32_rot90(fft32_sub(t, a3), fwd);
            a7 = fft32_rot90(a7, fwd);
            t = a5;
            a5 = fft32_rot45(fft32_add(a5, a7), fwd);
            a7 = fft32_rot135(fft32_sub(t, a7), fwd);
            fft32_c a0 = fft32_add(c[0], c[4]), a4 = fft32_sub(c[0], c[4]);
            fft32_c a2 = fft32_add(c[2], c[6]), a6 = fft32_sub(c[2], c[6]);
            fft32_c s02 = fft32_add(a0, a2), d02 = fft32_sub(a0, a2);
            *fft32_ch(s, i, k, 0) = fft32_add(s02, a1);
            fft32_put(s, i, k, 4, fft32_sub(s02, a1));
            fft32_put(s, i, k, 2, fft32_add(d02, a3));
            fft32_put(s, i, k, 6, fft32_sub(d02, a3));
            a6 = fft32_rot90(a6, fwd);
            fft32_c s46 = fft32_add(a4, a6), d46 = fft32_sub(a4, a6);
            fft32_put(s, i, k, 1, fft32_add(s46, a5));
            fft32_put(s, i, k, 5, fft32_sub(s46, a5));
            fft32_put(s, i, k, 3, fft32_add(d46, a7));
            fft32_put(s, i, k, 7, fft32_sub(d46, a7));
        }
    }
}

/* In-place transform of c (length n), each result multiplied by fct unless
 * fct is 1 (pocketfft's pass_all). */
static void fft32_run(fft32_plan *p, bool fwd, fft32_c *c, float fct)
{
    fft32_c *p1 = c, *p2 = p->ch;
    int64_t l1 = 1;
    for (int f = 0; f < p->n_fact; f++) {
        int64_t ip = p->fact[f];
        fft32_pass s = {p->n / (l1 * ip), l1, p1, p2, p->tw[f], fwd};
        if (ip == 2)
            fft32_pass2(&s);
        else if (ip == 3)
            fft32_pass3(&s);
        else if (ip == 4)
            fft32_pass4(&s);
        else if (ip == 5)
            fft32_pass5(&s);
        else
            fft32_pass8(&s);
        fft32_c *t = p1;
        p1 = p2;
        p2 = t;
        l1 *= ip;
    }
    for (int64_t i = 0; i < p->n; i++)
        c[i] = fct != 1.0f ? fft32_scale(p1[i], fct) : p1[i];
}

/* ---- DFT ------------------------------------------------------------------- */

typedef struct dft_problem {
    const ogi_tensor *x;
    int axis;
    bool inverse, onesided, complex_in;
    int64_t n;       /* transform length (dft_length) */
    int64_t in_len;  /* x's length along axis */
    int64_t out_len; /* y's length along axis */
    int64_t outer, inner;
} dft_problem;

static ogi_status dft_read_axis(const op_ctx *c, const ogi_tensor *x, int *axis)
{
    int64_t a;
    ogi_status st;
    if (c->opset >= 20) {
        a = -2;
        if (op_has_input(c, 2) && (st = op_read_scalar_i64(c, 2, &a)) != OGI_OK)
            return st;
    } else {
        a = op_attr_int(c, "axis", 1);
    }
    int64_t r = x->rank;
    if (a < 0)
        a += r;
    if (a < 0 || a > r - 2)
        return op_error(c, OGI_ERR_RUNTIME,
                        "axis %lld out of range for rank %d (the last dim "
                        "holds the complex parts)",
                        (long long)a, x->rank);
    *axis = (int)a;
    return OGI_OK;
}

static ogi_status dft_read_length(const op_ctx *c, dft_problem *p)
{
    bool irfft = p->inverse && p->onesided;
    p->n = irfft ? 2 * (p->in_len - 1) : p->in_len;
    if (op_has_input(c, 1)) {
        ogi_status st = op_read_scalar_i64(c, 1, &p->n);
        if (st != OGI_OK)
            return st;
    }
    if (p->n < 1 || p->n > DFT_MAX_LENGTH)
        return op_error(c, OGI_ERR_RUNTIME, "dft_length %lld out of range [1, %lld]",
                        (long long)p->n, (long long)DFT_MAX_LENGTH);
    p->out_len = p->onesided && !p->inverse ? p->n / 2 + 1 : p->n;
    return OGI_OK;
}

static ogi_status dft_problem_init(const op_ctx *c, dft_problem *p)
{
    ogi_status st = op_require_input(c, 0);
    if (st != OGI_OK)
        return st;
    const ogi_tensor *x = c->in[0];
    memset(p, 0, sizeof(*p));
    p->x = x;
    if (!dtype_is_float(x->dtype))
        return op_error(c, OGI_ERR_INVALID_MODEL, "input 0: expected a float type, got %s",
                        ogi_dtype_name(x->dtype));
    if (x->rank < 2 || (x->dims[x->rank - 1] != 1 && x->dims[x->rank - 1] != 2))
        return op_error(c, OGI_ERR_RUNTIME, "input 0: expected rank >= 2 with last dim 1 or 2");
    p->complex_in = x->dims[x->rank - 1] == 2;
    p->inverse = op_attr_int(c, "inverse", 0) != 0;
    p->onesided = op_attr_int(c, "onesided", 0) != 0;
    if (p->onesided && p->inverse != p->complex_in)
        return op_error(c, OGI_ERR_UNSUPPORTED, "onesided %s DFT of %s input is not supported",
                        p->inverse ? "inverse" : "forward", p->complex_in ? "complex" : "real");
    if ((st = dft_read_axis(c, x, &p->axis)) != OGI_OK)
        return st;
    p->in_len = x->dims[p->axis];
    if ((st = dft_read_length(c, p)) != OGI_OK)
        return st;
    p->outer = 1;
    p->inner = 1;
    for (int d = 0; d < x->rank - 1; d++) {
        if (d < p->axis)
            p->outer *= x->dims[d];
        else if (d > p->axis)
            p->inner *= x->dims[d];
    }
    return OGI_OK;
}

/* Loads line (o, i) of x along the axis into re/im (length n), zero-padded
 * or truncated. For an inverse onesided transform the line holds bins
 * 0..n/2 of a Hermitian spectrum; the rest is their conjugate mirror. */
static void dft_load_line(const dft_problem *p, int64_t o, int64_t i, double *re, double *im)
{
    const ogi_tensor *x = p->x;
    int64_t parts = p->complex_in ? 2 : 1;
    int64_t used = p->inverse && p->onesided ? p->n / 2 + 1 : p->n;
    if (used > p->in_len)
        used = p->in_len;
    for (int64_t k = 0; k < p->n; k++)
        re[k] = im[k] = 0.0;
    for (int64_t k = 0; k < used; k++) {
        int64_t at = ((o * p->in_len + k) * p->inner + i) * parts;
        re[k] = dtype_get_f64(x->data, x->dtype, at);
        im[k] = p->complex_in ? dtype_get_f64(x->data, x->dtype, at + 1) : 0.0;
    }
    if (!(p->inverse && p->onesided))
        return;
    for (int64_t k = 1; k < used; k++) {
        if (p->n - k <= p->n / 2)
            break;
        re[p->n - k] = re[k];
        im[p->n - k] = -im[k];
    }
}

static void dft_store_line(const dft_problem *p, ogi_tensor *y, int64_t o, int64_t i,
                           const double *re, const double *im)
{
    int64_t parts = y->dims[y->rank - 1];
    double scale = p->inverse ? 1.0 / (double)p->n : 1.0;
    for (int64_t k = 0; k < p->out_len; k++) {
        int64_t at = ((o * p->out_len + k) * p->inner + i) * parts;
        dtype_set_f64(y->data, y->dtype, at, re[k] * scale);
        if (parts == 2)
            dtype_set_f64(y->data, y->dtype, at + 1, im[k] * scale);
    }
}

/* The float32 path (see fft32_run); frees plan. */
static ogi_status dft_f32(op_ctx *c, const dft_problem *p, fft32_plan *plan)
{
    const float *x = p->x->data;
    float *y = c->out[0]->data;
    int64_t parts = p->complex_in ? 2 : 1, used = p->n < p->in_len ? p->n : p->in_len;
    fft32_c *line = malloc((size_t)p->n * sizeof(fft32_c));
    if (line == NULL) {
        fft32_plan_free(plan);
        return op_error(c, OGI_ERR_OUT_OF_MEMORY, "out of memory for a %lld-point DFT",
                        (long long)p->n);
    }
    float fct = p->inverse ? 1.0f / (float)p->n : 1.0f;
    for (int64_t o = 0; o < p->outer; o++) {
        for (int64_t i = 0; i < p->inner; i++) {
            for (int64_t k = 0; k < p->n; k++) {
                const float *v = x + ((o * p->in_len + k) * p->inner + i) * parts;
                line[k] = k >= used ? (fft32_c){0.0f, 0.0f}
                                    : (fft32_c){v[0], p->complex_in ? v[1] : 0.0f};
            }
            fft32_run(plan, !p->inverse, line, fct);
            for (int64_t k = 0; k < p->out_len; k++) {
                float *out = y + ((o * p->out_len + k) * p->inner + i) * 2;
                out[0] = line[k].r;
                out[1] = line[k].i;
            }
        }
    }
    free(line);
    fft32_plan_free(plan);
    return OGI_OK;
}

static ogi_status dft(op_ctx *c)
{
    dft_problem p;
    ogi_status st = dft_problem_init(c, &p);
    if (st != OGI_OK)
        return st;
    const ogi_tensor *x = p.x;
    int64_t dims[OGI_MAX_RANK];
    memcpy(dims, x->dims, sizeof(int64_t) * (size_t)x->rank);
    dims[p.axis] = p.out_len;
    dims[x->rank - 1] = p.inverse && p.onesided ? 1 : 2;
    if ((st = op_alloc(c, 0, x->dtype, x->rank, dims)) != OGI_OK)
        return st;
    if (tensor_numel(c->out[0]) == 0)
        return OGI_OK;
    fft32_plan plan32;
    if (x->dtype == OGI_FLOAT32 && p.complex_in && !p.onesided && fft32_plan_init(&plan32, p.n))
        return dft_f32(c, &p, &plan32);
    dft_plan plan;
    double *line = malloc((size_t)p.n * 2 * sizeof(double));
    if (line == NULL || !dft_plan_init(&plan, p.n)) {
        free(line);
        return op_error(c, OGI_ERR_OUT_OF_MEMORY, "out of memory for a %lld-point DFT",
                        (long long)p.n);
    }
    double *re = line, *im = line + p.n;
    for (int64_t o = 0; o < p.outer; o++) {
        for (int64_t i = 0; i < p.inner; i++) {
            dft_load_line(&p, o, i, re, im);
            dft_run(&plan, p.inverse, re, im);
            dft_store_line(&p, c->out[0], o, i, re, im);
        }
    }
    dft_plan_free(&plan);
    free(line);
    return OGI_OK;
}

/* ---- STFT ------------------------------------------------------------------ */

typedef struct stft_problem {
    const ogi_tensor *signal, *window; /* window may be NULL */
    int64_t batch, length, step, frame_length, frames, bins;
    bool complex_in;
} stft_problem;

static ogi_status stft_read_window(const op_ctx *c, stft_problem *p)
{
    ogi_status st;
    const ogi_tensor *w = p->window;
    if (w && (w->rank != 1 || w->dtype != p->signal->dtype))
        return op_error(c, OGI_ERR_RUNTIME, "input 2 (window): expected rank 1 of type %s",
                        ogi_dtype_name(p->signal->dtype));
    p->frame_length = w ? w->dims[0] : p->length;
    if (op_has_input(c, 3)) {
        if ((st = op_read_scalar_i64(c, 3, &p->frame_length)) != OGI_OK)
            return st;
        if (w && w->dims[0] != p->frame_length)
            return op_error(c, OGI_ERR_RUNTIME, "window length %lld differs from frame_length %lld",
                            (long long)w->dims[0], (long long)p->frame_length);
    }
    if (p->frame_length < 1 || p->frame_length > p->length)
        return op_error(c, OGI_ERR_RUNTIME, "frame_length %lld out of range [1, %lld]",
                        (long long)p->frame_length, (long long)p->length);
    return OGI_OK;
}

static ogi_status stft_problem_init(const op_ctx *c, stft_problem *p)
{
    ogi_status st;
    if ((st = op_require_input(c, 0)) != OGI_OK)
        return st;
    memset(p, 0, sizeof(*p));
    const ogi_tensor *s = p->signal = c->in[0];
    p->window = op_has_input(c, 2) ? c->in[2] : NULL;
    if (!dtype_is_float(s->dtype))
        return op_error(c, OGI_ERR_INVALID_MODEL, "input 0 (signal): expected a float type, got %s",
                        ogi_dtype_name(s->dtype));
    if (s->rank != 3 || (s->dims[2] != 1 && s->dims[2] != 2))
        return op_error(c, OGI_ERR_RUNTIME,
                        "input 0 (signal): expected [batch, length, 1 or 2], rank %d", s->rank);
    p->batch = s->dims[0];
    p->length = s->dims[1];
    p->complex_in = s->dims[2] == 2;
    if ((st = op_read_scalar_i64(c, 1, &p->step)) != OGI_OK)
        return st;
    if (p->step < 1)
        return op_error(c, OGI_ERR_RUNTIME, "frame_step %lld must be positive", (long long)p->step);
    if ((st = stft_read_window(c, p)) != OGI_OK)
        return st;
    bool onesided = op_attr_int(c, "onesided", 1) != 0;
    if (onesided && p->complex_in)
        return op_error(c, OGI_ERR_UNSUPPORTED, "onesided STFT of a complex signal");
    p->frames = 1 + (p->length - p->frame_length) / p->step;
    p->bins = onesided ? p->frame_length / 2 + 1 : p->frame_length;
    return OGI_OK;
}

/* Loads frame f of batch b, weighted by the window, into re/im. */
static void stft_load_frame(const stft_problem *p, int64_t b, int64_t f, double *re, double *im)
{
    const ogi_tensor *s = p->signal, *w = p->window;
    int64_t parts = p->complex_in ? 2 : 1;
    for (int64_t t = 0; t < p->frame_length; t++) {
        int64_t at = (b * p->length + f * p->step + t) * parts;
        double wt = w ? dtype_get_f64(w->data, w->dtype, t) : 1.0;
        re[t] = dtype_get_f64(s->data, s->dtype, at) * wt;
        im[t] = p->complex_in ? dtype_get_f64(s->data, s->dtype, at + 1) * wt : 0.0;
    }
}

/* The float32 path (see fft32_run): frames are weighted in float, as the
 * reference multiplies them; frees plan. */
static ogi_status stft_f32(op_ctx *c, const stft_problem *p, fft32_plan *plan)
{
    const float *x = p->signal->data, *w = p->window ? p->window->data : NULL;
    float *y = c->out[0]->data;
    int64_t n = p->frame_length, parts = p->complex_in ? 2 : 1;
    fft32_c *line = malloc((size_t)n * sizeof(fft32_c));
    if (line == NULL) {
        fft32_plan_free(plan);
        return op_error(c, OGI_ERR_OUT_OF_MEMORY, "out of memory for a %lld-point DFT",
                        (long long)n);
    }
    for (int64_t b = 0; b < p->batch; b++) {
        for (int64_t f = 0; f < p->frames; f++) {
            for (int64_t t = 0; t < n; t++) {
                const float *v = x + (b * p->length + f * p->step + t) * parts;
                float wt = w ? w[t] : 1.0f;
                line[t] = (fft32_c){v[0] * wt, p->complex_in ? v[1] * wt : 0.0f};
            }
            fft32_run(plan, true, line, 1.0f);
            float *out = y + (b * p->frames + f) * p->bins * 2;
            for (int64_t k = 0; k < p->bins; k++) {
                out[2 * k] = line[k].r;
                out[2 * k + 1] = line[k].i;
            }
        }
    }
    free(line);
    fft32_plan_free(plan);
    return OGI_OK;
}

static ogi_status stft(op_ctx *c)
{
    stft_problem p;
    ogi_status st = stft_problem_init(c, &p);
    if (st != OGI_OK)
        return st;
    int64_t dims[4] = {p.batch, p.frames, p.bins, 2};
    if ((st = op_alloc(c, 0, p.signal->dtype, 4, dims)) != OGI_OK)
        return st;
    if (tensor_numel(c->out[0]) == 0)
        return OGI_OK;
    fft32_plan plan32;
    if (p.signal->dtype == OGI_FLOAT32 && p.complex_in && fft32_plan_init(&plan32, p.frame_length))
        return stft_f32(c, &p, &plan32);
    dft_plan plan;
    int64_t n = p.frame_length;
    double *line = malloc((size_t)n * 2 * sizeof(double));
    if (line == NULL || !dft_plan_init(&plan, n)) {
        free(line);
        return op_error(c, OGI_ERR_OUT_OF_MEMORY, "out of memory for a %lld-point DFT",
                        (long long)n);
    }
    double *re = line, *im = line + n;
    ogi_tensor *y = c->out[0];
    for (int64_t b = 0; b < p.batch; b++) {
        for (int64_t f = 0; f < p.frames; f++) {
            stft_load_frame(&p, b, f, re, im);
            dft_run(&plan, false, re, im);
            int64_t base = (b * p.frames + f) * p.bins * 2;
            for (int64_t k = 0; k < p.bins; k++) {
                dtype_set_f64(y->data, y->dtype, base + 2 * k, re[k]);
                dtype_set_f64(y->data, y->dtype, base + 2 * k + 1, im[k]);
            }
        }
    }
    dft_plan_free(&plan);
    free(line);
    return OGI_OK;
}

/* ---- windows and MelWeightMatrix --------------------------------------------- */

/* Reads attribute output_datatype (default float) and checks it is numeric. */
static ogi_status signal_output_dtype(const op_ctx *c, ogi_dtype *out)
{
    int64_t t = op_attr_int(c, "output_datatype", OGI_FLOAT32);
    if (t < 0 || t > 1000 || !dtype_is_valid((int)t) ||
        !(dtype_is_float((ogi_dtype)t) || dtype_is_integer((ogi_dtype)t)))
        return op_error(c, OGI_ERR_UNSUPPORTED, "attribute output_datatype=%lld is not supported",
                        (long long)t);
    *out = (ogi_dtype)t;
    return OGI_OK;
}

/* Allocates output 0 as dtype with the given shape, and *v, a zeroed
 * buffer of as many doubles to compute it in. */
static ogi_status signal_alloc(op_ctx *c, ogi_dtype dtype, int rank, const int64_t *dims,
                               double **v)
{
    ogi_status st = op_alloc(c, 0, dtype, rank, dims);
    if (st != OGI_OK)
        return st;
    int64_t n = tensor_numel(c->out[0]);
    *v = calloc((size_t)(n > 0 ? n : 1), sizeof(double));
    if (*v == NULL)
        return op_error(c, OGI_ERR_OUT_OF_MEMORY, "out of memory for %lld values", (long long)n);
    return OGI_OK;
}

/* Converts v into output 0 (integers truncate, as numpy's astype does) and
 * frees it. */
static void signal_finish(op_ctx *c, double *v)
{
    ogi_tensor *y = c->out[0];
    int64_t n = tensor_numel(y);
    if (n > 0)
        cast_elements(v, OGI_FLOAT64, 0, y->data, y->dtype, 0, n, NULL);
    free(v);
}

/* A generalized cosine window a0 - a1 cos(2 pi n / N) + a2 cos(4 pi n / N)
 * with N = size (periodic) or size - 1 (symmetric). */
static ogi_status signal_window(op_ctx *c, double a0, double a1, double a2)
{
    int64_t size;
    ogi_dtype dtype;
    ogi_status st = op_read_scalar_i64(c, 0, &size);
    if (st != OGI_OK)
        return st;
    if (!dtype_is_integer(c->in[0]->dtype))
        return op_error(c, OGI_ERR_INVALID_MODEL, "input 0 (size): expected an integer type");
    if (size < 0)
        return op_error(c, OGI_ERR_RUNTIME, "window size %lld is negative", (long long)size);
    if ((st = signal_output_dtype(c, &dtype)) != OGI_OK)
        return st;
    double *v;
    if ((st = signal_alloc(c, dtype, 1, &size, &v)) != OGI_OK)
        return st;
    /* a symmetric window of size 1 divides 0 by 0, giving NaN as the spec's
     * function body does */
    double period = op_attr_int(c, "periodic", 1) ? (double)size : (double)(size - 1);
    for (int64_t i = 0; i < size; i++) {
        double a = 2.0 * SIGNAL_PI * (double)i / period;
        v[i] = a0 - a1 * cos(a) + a2 * cos(2.0 * a);
    }
    signal_finish(c, v);
    return OGI_OK;
}

static ogi_status hann_window(op_ctx *c)
{
    return signal_window(c, 0.5, 0.5, 0.0);
}

static ogi_status hamming_window(op_ctx *c)
{
    return signal_window(c, 25.0 / 46.0, 21.0 / 46.0, 0.0);
}

static ogi_status blackman_window(op_ctx *c)
{
    return signal_window(c, 0.42, 0.5, 0.08);
}

/* Python's float floor division a // b (numpy's too): the floor of the
 * exact quotient, which floor(a / b) misses when a / b rounds up to an
 * integer. */
static double signal_floor_div(double a, double b)
{
    double mod = fmod(a, b);
    double div = (a - mod) / b;
    if (mod != 0.0 && (b < 0) != (mod < 0))
        div -= 1.0;
    if (div == 0.0)
        return 0.0;
    double fl = floor(div);
    return div - fl > 0.5 ? fl + 1.0 : fl;
}

typedef struct mel_params {
    int64_t mel_bins, dft_length, sample_rate;
    double lower_hz, upper_hz;
} mel_params;

static ogi_status mel_read_params(const op_ctx *c, mel_params *m)
{
    ogi_status st;
    if ((st = op_read_scalar_i64(c, 0, &m->mel_bins)) != OGI_OK ||
        (st = op_read_scalar_i64(c, 1, &m->dft_length)) != OGI_OK ||
        (st = op_read_scalar_i64(c, 2, &m->sample_rate)) != OGI_OK ||
        (st = op_read_scalar_f64(c, 3, &m->lower_hz)) != OGI_OK ||
        (st = op_read_scalar_f64(c, 4, &m->upper_hz)) != OGI_OK)
        return st;
    if (m->mel_bins < 0 || m->mel_bins > (1 << 24) || m->dft_length < 1 ||
        m->dft_length > ((int64_t)1 << 40) || m->sample_rate < 1)
        return op_error(
            c, OGI_ERR_RUNTIME, "num_mel_bins %lld, dft_length %lld, sample_rate %lld out of range",
            (long long)m->mel_bins, (long long)m->dft_length, (long long)m->sample_rate);
    return OGI_OK;
}

/* The spectrogram bin of each of the mel_bins + 2 triangle corners, spaced
 * evenly on the mel scale; false if one falls outside [0, spectrogram_bins). */
static bool mel_corner_bins(const mel_params *m, int64_t spectrogram_bins, int64_t *bins)
{
    double low_mel = 2595.0 * log10(1.0 + m->lower_hz / 700.0);
    double high_mel = 2595.0 * log10(1.0 + m->upper_hz / 700.0);
    double step = (high_mel - low_mel) / (double)(m->mel_bins + 2);
    for (int64_t i = 0; i < m->mel_bins + 2; i++) {
        double hz = 700.0 * (pow(10.0, ((double)i * step + low_mel) / 2595.0) - 1.0);
        double bin = signal_floor_div((double)(m->dft_length + 1) * hz, (double)m->sample_rate);
        if (!(bin >= 0.0 && bin < (double)spectrogram_bins))
            return false;
        bins[i] = (int64_t)bin;
    }
    return true;
}

/* Triangle i rises from bins[i] to 1 at bins[i + 1] and falls to 0 at
 * bins[i + 2]; out is [spectrogram_bins, mel_bins], zeroed. */
static void mel_triangles(int64_t mel_bins, const int64_t *bins, double *out)
{
    for (int64_t i = 0; i < mel_bins; i++) {
        int64_t lo = bins[i], mid = bins[i + 1], hi = bins[i + 2];
        if (mid == lo)
            out[mid * mel_bins + i] = 1.0;
        for (int64_t j = lo; mid != lo && j <= mid; j++)
            out[j * mel_bins + i] = (double)(j - lo) / (double)(mid - lo);
        for (int64_t j = mid; j < hi; j++)
            out[j * mel_bins + i] = (double)(hi - j) / (double)(hi - mid);
    }
}

/* MelWeightMatrix, following the ONNX reference: mel_bins + 2 corners spaced
 * by (high - low) / (mel_bins + 2) mels, mapped to bins with floor division. */
static ogi_status mel_weight_matrix(op_ctx *c)
{
    mel_params m;
    ogi_dtype dtype;
    ogi_status st = mel_read_params(c, &m);
    if (st != OGI_OK || (st = signal_output_dtype(c, &dtype)) != OGI_OK)
        return st;
    int64_t spectrogram_bins = m.dft_length / 2 + 1;
    int64_t *bins = malloc((size_t)(m.mel_bins + 2) * sizeof(int64_t));
    if (bins == NULL)
        return op_error(c, OGI_ERR_OUT_OF_MEMORY, "out of memory for %lld mel bins",
                        (long long)m.mel_bins);
    if (!mel_corner_bins(&m, spectrogram_bins, bins)) {
        free(bins);
        return op_error(c, OGI_ERR_RUNTIME, "edges %g..%g Hz map outside the %lld spectrogram bins",
                        m.lower_hz, m.upper_hz, (long long)spectrogram_bins);
    }
    int64_t dims[2] = {spectrogram_bins, m.mel_bins};
    double *out;
    if ((st = signal_alloc(c, dtype, 2, dims, &out)) == OGI_OK) {
        mel_triangles(m.mel_bins, bins, out);
        signal_finish(c, out);
    }
    free(bins);
    return st;
}

const op_kernel op_kernels_signal[] = {
    {"", "DFT", 17, dft},
    {"", "STFT", 17, stft},
    {"", "HannWindow", 17, hann_window},
    {"", "HammingWindow", 17, hamming_window},
    {"", "BlackmanWindow", 17, blackman_window},
    {"", "MelWeightMatrix", 17, mel_weight_matrix},
    {NULL, NULL, 0, NULL},
};
