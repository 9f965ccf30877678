/* Differential op testing: random single-op graphs (diff_ops.c) run on the
 * native engine and on ONNX Runtime, outputs compared (rtol 1e-4, atol 1e-5
 * for floats, exact for integers, bool and conversions).
 *
 *   test_differential [--seed N] [--scale X] [--only TEXT] [--case N] [--keep DIR] [--save] [-v]
 *
 * Every case is generated from (seed, case number) alone, so `--case N`
 * replays one (--save keeps it, whatever its outcome). A case that differs is saved under the keep
 * directory (default a fresh /tmp/ogi-differential-XXXXXX) as an ONNX backend test folder and its
 * path printed. Cases ONNX Runtime rejects (an op or opset it lacks, a
 * combination it refuses) are skipped, not failed, and counted with ORT's
 * reason. Without ONNX Runtime the test says so and passes. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backends/backend.h"
#include "diff_case.h"
#include "test_util.h"

typedef struct family_stats {
    int run, passed, failed, skipped, both_reject, both_error, deviations;
    char deviation[320];  /* the first known ORT deviation seen */
    char first_skip[320]; /* ORT's reason for the first case it skipped */
} family_stats;

typedef struct diff_run {
    uint64_t seed;
    double scale;
    const char *only;
    long single; /* -1: every case */
    bool verbose, save_all;
    char keep[4096];
    bool keep_made;
    char model_path[4200];
    family_stats stats[64];
} diff_run;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* The rng of case n: splitmix64 of (seed, n), never 0 (xorshift's fixed point). */
static uint64_t case_rng(uint64_t seed, long n)
{
    uint64_t z = seed + 0x9e3779b97f4a7c15ull * (uint64_t)(n + 1);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return z ? z : 1;
}

static void free_outputs(ogi_tensor **t, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        ogi_tensor_free(t[i]);
        t[i] = NULL;
    }
}

static void save_failure(diff_run *r, const diff_case *c, long n, ogi_tensor **native,
                         ogi_tensor **ort, size_t n_out, const char *why)
{
    char dir[4400];
    snprintf(dir, sizeof(dir), "%s/case-%ld-%s", r->keep, n, c->op);
    bool saved = diff_case_save(c, dir, native, ort, n_out);
    r->keep_made = r->keep_made || saved;
    printf("FAIL case %ld (%s, opset %d): %s\n     %s %s (replay: --seed %llu --case %ld)\n", n,
           c->label, c->opset, why, saved ? "saved to" : "could not save to", dir,
           (unsigned long long)r->seed, n);
}

static void note_skip(const diff_run *r, family_stats *s, long n, const char *why)
{
    if (r->verbose)
        printf("skip case %ld: %s\n", n, why);
    s->skipped++;
    if (s->first_skip[0] == '\0')
        snprintf(s->first_skip, sizeof(s->first_skip), "%.300s", why);
}

/* Runs case n on both backends and counts the outcome under s. */
static void run_case(diff_run *r, const diff_case *c, long n, family_stats *s)
{
    uint8_t *model = NULL;
    size_t size = 0;
    if (c->broken || !diff_case_model(c, &model, &size) ||
        !test_write_file(r->model_path, model, size)) {
        free(model);
        TEST_CHECK(false, "case %ld: could not build or write the model", n);
        return;
    }
    free(model);
    s->run++;
    ogi_session_options so = ogi_session_default_options();
    so.threads = 1;
    ogi_session *ns = NULL;
    ogi_status nst = ogi_session_open(r->model_path, &so, &ns);
    char native_err[1024];
    snprintf(native_err, sizeof(native_err), "%s", ogi_last_error());
    backend_options bo = {.threads = 1, .graph_optimization = 99};
    backend_session *os = NULL;
    ogi_status ost = backend_ort.open(r->model_path, &bo, &os);
    char ort_err[1024];
    snprintf(ort_err, sizeof(ort_err), "%s", ogi_last_error());
    const ogi_tensor *feeds[DIFF_MAX_IO];
    const char *in_names[DIFF_MAX_IO], *out_names[DIFF_MAX_IO];
    ogi_tensor *nout[DIFF_MAX_IO] = {0}, *oout[DIFF_MAX_IO] = {0};
    size_t n_in = diff_case_feeds(c, feeds, in_names), n_out = diff_case_fetches(c, out_names);
    char why[1400];
    if (nst != OGI_OK && ost != OGI_OK) {
        s->both_reject++;
        if (r->verbose)
            printf("both reject case %ld (%s): native: %s | ort: %s\n", n, c->label, native_err,
                   ort_err);
    } else if (ost != OGI_OK) {
        note_skip(r, s, n, ort_err);
    } else if (nst != OGI_OK) {
        s->failed++;
        snprintf(why, sizeof(why), "native rejects a model ORT accepts: %s", native_err);
        save_failure(r, c, n, NULL, NULL, 0, why);
    } else {
        nst = ogi_session_run(ns, n_in, in_names, feeds, n_out, out_names, nout);
        snprintf(native_err, sizeof(native_err), "%s", ogi_last_error());
        ost = backend_ort.run(os, n_in, in_names, feeds, n_out, out_names, oout);
        snprintf(ort_err, sizeof(ort_err), "%s", ogi_last_error());
        if (nst != OGI_OK && ost != OGI_OK) {
            s->both_error++; /* both refuse these inputs: they agree */
            s->passed++;
        } else if (ost != OGI_OK) {
            note_skip(r, s, n, ort_err);
        } else if (nst != OGI_OK) {
            s->failed++;
            snprintf(why, sizeof(why), "native fails where ORT runs: %s", native_err);
            save_failure(r, c, n, NULL, oout, n_out, why);
        } else {
            bool same = true;
            for (size_t i = 0; i < n_out && same; i++) {
                char where[400];
                same = diff_compare(c, nout[i], oout[i], where, sizeof(where));
                if (!same)
                    snprintf(why, sizeof(why), "output %zu: %s", i, where);
            }
            if (same) {
                s->passed++;
            } else if (c->ort_deviation != NULL) {
                s->deviations++;
                if (s->deviation[0] == '\0')
                    snprintf(s->deviation, sizeof(s->deviation), "%s", c->ort_deviation);
                if (r->verbose)
                    printf("known ORT deviation, case %ld: %s\n", n, why);
            } else {
                s->failed++;
                save_failure(r, c, n, nout, oout, n_out, why);
            }
        }
    }
    if (r->save_all) {
        char dir[4400];
        snprintf(dir, sizeof(dir), "%s/case-%ld-%s", r->keep, n, c->op);
        r->keep_made = diff_case_save(c, dir, nout, oout, n_out) || r->keep_made;
        printf("case %ld saved to %s\n", n, dir);
    }
    free_outputs(nout, n_out);
    free_outputs(oout, n_out);
    ogi_session_free(ns);
    if (os != NULL)
        backend_ort.free(os);
}

static bool parse_args(int argc, char **argv, diff_run *r)
{
    r->seed = 20240611;
    r->scale = 1.0;
    r->single = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-v") || !strcmp(a, "--save")) {
            r->verbose = r->verbose || a[1] == 'v';
            r->save_all = r->save_all || a[1] == '-';
            continue;
        }
        if (v == NULL)
            return false;
        i++;
        if (!strcmp(a, "--seed"))
            r->seed = strtoull(v, NULL, 0);
        else if (!strcmp(a, "--scale"))
            r->scale = atof(v);
        else if (!strcmp(a, "--only"))
            r->only = v;
        else if (!strcmp(a, "--case"))
            r->single = atol(v);
        else if (!strcmp(a, "--keep"))
            snprintf(r->keep, sizeof(r->keep), "%s", v);
        else
            return false;
    }
    return true;
}

static void print_summary(const diff_run *r, double seconds)
{
    family_stats total = {0};
    printf("\n%-32s %6s %6s %6s %7s\n", "family", "cases", "pass", "FAIL", "skipped");
    for (size_t f = 0; f < diff_n_families; f++) {
        const family_stats *s = &r->stats[f];
        if (s->run == 0)
            continue;
        printf("%-32s %6d %6d %6d %7d\n", diff_families[f].name, s->run, s->passed, s->failed,
               s->skipped + s->both_reject + s->deviations);
        total.run += s->run;
        total.passed += s->passed;
        total.failed += s->failed;
        total.skipped += s->skipped;
        total.both_reject += s->both_reject;
        total.both_error += s->both_error;
        total.deviations += s->deviations;
    }
    for (size_t f = 0; f < diff_n_families; f++)
        if (r->stats[f].skipped > 0)
            printf("skipped %s (%d): ORT says: %.200s\n", diff_families[f].name,
                   r->stats[f].skipped, r->stats[f].first_skip);
    for (size_t f = 0; f < diff_n_families; f++)
        if (r->stats[f].deviations > 0)
            printf("known ORT deviation in %s (%d cases differ): %s\n", diff_families[f].name,
                   r->stats[f].deviations, r->stats[f].deviation);
    printf("\ndifferential: %d cases in %.1f s (seed %llu): %d matched (%d of them an error on "
           "both), %d mismatched, %d skipped because ONNX Runtime rejects them, %d differ where "
           "ORT departs from the ONNX reference, %d rejected by both backends\n",
           total.run, seconds, (unsigned long long)r->seed, total.passed, total.both_error,
           total.failed, total.skipped, total.deviations, total.both_reject);
}

int main(int argc, char **argv)
{
    static diff_run r;
    if (!parse_args(argc, argv, &r)) {
        fprintf(stderr, "usage: test_differential [--seed N] [--scale X] [--only TEXT] [--case N] "
                        "[--keep DIR] [--save] [-v]\n");
        return 2;
    }
    backend_options probe = {0};
    if (!backend_ort.available(&probe)) {
        printf("SKIP: ONNX Runtime is not available (%s): no differential cases run\n",
               ogi_last_error());
        return 0;
    }
    char work[] = "/tmp/ogi-differential-XXXXXX";
    if (mkdtemp(work) == NULL) {
        fprintf(stderr, "mkdtemp: %s\n", strerror(errno));
        return 1;
    }
    if (r.keep[0] == '\0')
        snprintf(r.keep, sizeof(r.keep), "%s", work);
    snprintf(r.model_path, sizeof(r.model_path), "%s/case.onnx", work);
    double start = now_s();
    long n = 0;
    for (size_t f = 0; f < diff_n_families; f++) {
        const diff_family *fam = &diff_families[f];
        long count = (long)(fam->cases * r.scale + 0.5);
        for (long k = 0; k < count; k++, n++) {
            if ((r.single >= 0 && n != r.single) ||
                (r.only != NULL && strstr(fam->name, r.only) == NULL))
                continue;
            uint64_t rng = case_rng(r.seed, n);
            diff_case c;
            fam->generate(&rng, &c);
            run_case(&r, &c, n, &r.stats[f]);
            diff_case_free(&c);
        }
    }
    print_summary(&r, now_s() - start);
    fflush(stdout);
    int failed = 0;
    for (size_t f = 0; f < diff_n_families; f++)
        failed += r.stats[f].failed;
    TEST_CHECK(failed == 0, "%d cases differ between the backends; saved under %s", failed, r.keep);
    unlink(r.model_path);
    if (!r.keep_made || strcmp(r.keep, work) != 0)
        rmdir(work);
    return test_finish("test_differential", 1);
}
