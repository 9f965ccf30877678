/* Opening a model directory: the graph and its I/O contract, config.json,
 * generation_config.json, the tokenizer, optional genai_config.json. */
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/error.h"
#include "genai/genai.h"
#include "genai/sampler.h"

double genai_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

ogi_pipeline_options ogi_pipeline_default_options(void)
{
    ogi_pipeline_options o = {
        .backend = "native", .graph_optimization = 99, .static_kv_cache = 1, .pack_weights = 1};
    return o;
}

static bool pipeline_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* Loads dir/name as a JSON object; *out NULL when the file does not exist. */
static ogi_status pipeline_load_json(const char *dir, const char *name, json_t **out)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    *out = NULL;
    if (!pipeline_exists(path))
        return OGI_OK;
    json_error_t err;
    *out = json_load_file(path, 0, &err);
    if (*out == NULL)
        return ogi_error(OGI_ERR_INVALID_MODEL, "%s: line %d, column %d: %s", path, err.line,
                         err.column, err.text);
    if (!json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        return ogi_error(OGI_ERR_INVALID_MODEL, "%s: not a JSON object", path);
    }
    return OGI_OK;
}

static int64_t pipeline_json_int(const json_t *obj, const char *key, int64_t def)
{
    const json_t *v = obj ? json_object_get(obj, key) : NULL;
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : def;
}

static double pipeline_json_number(const json_t *obj, const char *key, double def)
{
    const json_t *v = obj ? json_object_get(obj, key) : NULL;
    return json_is_number(v) ? json_number_value(v) : def;
}

/* eos_token_id may be an int or a list of ints. */
static void pipeline_read_eos(const json_t *obj, ogi_generation_config *cfg)
{
    const json_t *v = obj ? json_object_get(obj, "eos_token_id") : NULL;
    if (json_is_integer(v)) {
        cfg->eos_token_ids[0] = (int32_t)json_integer_value(v);
        cfg->n_eos_token_ids = 1;
    } else if (json_is_array(v)) {
        cfg->n_eos_token_ids = 0;
        for (size_t i = 0; i < json_array_size(v) && i < OGI_MAX_EOS_IDS; i++)
            if (json_is_integer(json_array_get(v, i)))
                cfg->eos_token_ids[cfg->n_eos_token_ids++] =
                    (int32_t)json_integer_value(json_array_get(v, i));
    }
}

static void pipeline_read_generation(const json_t *gen, ogi_generation_config *cfg)
{
    if (gen == NULL)
        return;
    cfg->max_new_tokens = (int)pipeline_json_int(gen, "max_new_tokens", cfg->max_new_tokens);
    cfg->min_new_tokens = (int)pipeline_json_int(gen, "min_new_tokens", cfg->min_new_tokens);
    const json_t *sample = json_object_get(gen, "do_sample");
    if (json_is_boolean(sample))
        cfg->do_sample = json_is_true(sample);
    cfg->temperature = (float)pipeline_json_number(gen, "temperature", cfg->temperature);
    cfg->top_k = (int)pipeline_json_int(gen, "top_k", cfg->top_k);
    cfg->top_p = (float)pipeline_json_number(gen, "top_p", cfg->top_p);
    cfg->min_p = (float)pipeline_json_number(gen, "min_p", cfg->min_p);
    cfg->repetition_penalty =
        (float)pipeline_json_number(gen, "repetition_penalty", cfg->repetition_penalty);
    cfg->no_repeat_ngram_size =
        (int)pipeline_json_int(gen, "no_repeat_ngram_size", cfg->no_repeat_ngram_size);
    cfg->num_beams = (int)pipeline_json_int(gen, "num_beams", cfg->num_beams);
    cfg->length_penalty = (float)pipeline_json_number(gen, "length_penalty", cfg->length_penalty);
    cfg->num_return_sequences =
        (int)pipeline_json_int(gen, "num_return_sequences", cfg->num_return_sequences);
    pipeline_read_eos(gen, cfg);
}

/* Finds an input or output by name; -1 when absent. */
static int pipeline_find(const ogi_pipeline *p, bool output, const char *name)
{
    const backend_vtable *b = p->backend;
    size_t n = output ? b->output_count(p->session) : b->input_count(p->session);
    for (size_t i = 0; i < n; i++) {
        const char *x = output ? b->output_name(p->session, i) : b->input_name(p->session, i);
        if (strcmp(x, name) == 0)
            return (int)i;
    }
    return -1;
}

typedef struct pipeline_names {
    char input_ids[128], attention_mask[128], position_ids[128], logits[128];
    char past_key[128], past_value[128], present_key[128], present_value[128];
} pipeline_names;

/* genai_config.json (ONNX Runtime GenAI) may rename the I/O: its
 * model.decoder.inputs/outputs hold the names, with %d for the layer. */
static void pipeline_names_from(const json_t *genai, pipeline_names *n)
{
    snprintf(n->input_ids, sizeof(n->input_ids), "input_ids");
    snprintf(n->attention_mask, sizeof(n->attention_mask), "attention_mask");
    snprintf(n->position_ids, sizeof(n->position_ids), "position_ids");
    snprintf(n->logits, sizeof(n->logits), "logits");
    snprintf(n->past_key, sizeof(n->past_key), "past_key_values.%%d.key");
    snprintf(n->past_value, sizeof(n->past_value), "past_key_values.%%d.value");
    snprintf(n->present_key, sizeof(n->present_key), "present.%%d.key");
    snprintf(n->present_value, sizeof(n->present_value), "present.%%d.value");
    const json_t *dec = json_object_get(json_object_get(genai, "model"), "decoder");
    const json_t *in = json_object_get(dec, "inputs"), *out = json_object_get(dec, "outputs");
    const struct {
        const json_t *obj;
        const char *key;
        char *dst;
    } map[] = {
        {in, "input_ids", n->input_ids},
        {in, "attention_mask", n->attention_mask},
        {in, "position_ids", n->position_ids},
        {in, "past_key_names", n->past_key},
        {in, "past_value_names", n->past_value},
        {out, "logits", n->logits},
        {out, "present_key_names", n->present_key},
        {out, "present_value_names", n->present_value},
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        const json_t *v = json_object_get(map[i].obj, map[i].key);
        if (json_is_string(v) && strlen(json_string_value(v)) < 127)
            snprintf(map[i].dst, 128, "%s", json_string_value(v));
    }
}

/* Formats a per-layer name pattern holding one %d (checked). */
static bool pipeline_layer_name(const char *pattern, int layer, char *out, size_t size)
{
    const char *d = strstr(pattern, "%d");
    if (d == NULL || strchr(d + 2, '%') != NULL || strchr(pattern, '%') != d)
        return false;
    snprintf(out, size, "%.*s%d%s", (int)(d - pattern), pattern, layer, d + 2);
    return true;
}

/* The layer number when name is pattern with its %d filled in; -1 if not. */
static int pipeline_layer_of(const char *pattern, const char *name)
{
    const char *d = strstr(pattern, "%d");
    if (d == NULL)
        return -1;
    size_t pre = (size_t)(d - pattern), post = strlen(d + 2), len = strlen(name);
    if (len <= pre + post || strncmp(name, pattern, pre) != 0 ||
        strcmp(name + len - post, d + 2) != 0 || len - pre - post > 4)
        return -1;
    int layer = 0;
    for (size_t i = pre; i < len - post; i++) {
        if (name[i] < '0' || name[i] > '9')
            return -1;
        layer = layer * 10 + (name[i] - '0');
    }
    return layer;
}

/* The KV layers: every layer number for which the graph has a past key
 * input. Hybrid models number their attention layers among recurrent ones,
 * so the numbers need not be contiguous. */
static ogi_status pipeline_detect_kv(ogi_pipeline *p, const pipeline_names *names)
{
    genai_io *io = &p->io;
    size_t n_in = p->backend->input_count(p->session);
    bool *seen = calloc(10000, sizeof(bool));
    if (seen == NULL)
        return ogi_error(OGI_ERR_OUT_OF_MEMORY, "out of memory");
    int layers = 0;
    for (size_t i = 0; i < n_in; i++) {
        int l = pipeline_layer_of(names->past_key, p->backend->input_name(p->session, i));
        if (l >= 0 && !seen[l]) {
            seen[l] = true;
            layers++;
        }
    }
    io->n_layers = layers;
    io->past_key = calloc((size_t)layers + 1, sizeof(int));
    io->past_value = calloc((size_t)layers + 1, sizeof(int));
    io->present_key = calloc((size_t)layers + 1, sizeof(int));
    io->present_value = calloc((size_t)layers + 1, sizeof(int));
    ogi_status st = OGI_OK;
    if (!io->past_key || !io->past_value || !io->present_key || !io->present_value)
        st = ogi_error(OGI_ERR_OUT_OF_MEMORY, "out of memory");
    char name[256];
    for (int l = 0, k = 0; st == OGI_OK && l < 10000; l++) {
        if (!seen[l])
            continue;
        const struct {
            const char *pattern;
            bool output;
            int *dst;
        } parts[4] = {{names->past_key, false, &io->past_key[k]},
                      {names->past_value, false, &io->past_value[k]},
                      {names->present_key, true, &io->present_key[k]},
                      {names->present_value, true, &io->present_value[k]}};
        for (int j = 0; j < 4 && st == OGI_OK; j++) {
            if (!pipeline_layer_name(parts[j].pattern, l, name, sizeof(name)) ||
                (*parts[j].dst = pipeline_find(p, parts[j].output, name)) < 0)
                st = ogi_error(OGI_ERR_INVALID_MODEL, "%s: layer %d has no %s '%s'", p->dir, l,
                               parts[j].output ? "output" : "input", name);
        }
        k++;
    }
    free(seen);
    return st;
}

/* The output a recurrent-state input is carried to: the past key pattern's
 * prefix becomes the present one's ("past_key_values.3.conv_state" ->
 * "present.3.conv_state"), else the first "past" becomes "present"
 * ("past_ssm_state.0" -> "present_ssm_state.0"). */
static int pipeline_state_output(const ogi_pipeline *p, const pipeline_names *names, const char *in)
{
    char out[512];
    const char *pd = strstr(names->past_key, "%d"), *qd = strstr(names->present_key, "%d");
    size_t pre = pd ? (size_t)(pd - names->past_key) : 0;
    if (pd != NULL && qd != NULL && pre > 0 && strncmp(in, names->past_key, pre) == 0) {
        snprintf(out, sizeof(out), "%.*s%s", (int)(qd - names->present_key), names->present_key,
                 in + pre);
        return pipeline_find(p, true, out);
    }
    const char *past = strstr(in, "past");
    if (past == NULL)
        return -1;
    snprintf(out, sizeof(out), "%.*spresent%s", (int)(past - in), in, past + 4);
    return pipeline_find(p, true, out);
}

/* Recurrent state (the conv and linear-attention states of SSM and hybrid
 * models): an input no other role claims, with an output named as above,
 * of a fixed shape [batch, ...]. The generator carries it like the KV
 * cache, but it does not grow. */
static ogi_status pipeline_detect_states(ogi_pipeline *p, const pipeline_names *names)
{
    genai_io *io = &p->io;
    size_t n_in = p->backend->input_count(p->session);
    io->state_in = calloc(n_in + 1, sizeof(int));
    io->state_out = calloc(n_in + 1, sizeof(int));
    if (io->state_in == NULL || io->state_out == NULL)
        return ogi_error(OGI_ERR_OUT_OF_MEMORY, "out of memory");
    for (size_t i = 0; i < n_in; i++) {
        int used[] = {io->input_ids, io->attention_mask, io->position_ids, io->use_cache_branch,
                      io->logits_from};
        bool claimed = false;
        for (size_t u = 0; u < sizeof(used) / sizeof(used[0]); u++)
            claimed |= used[u] == (int)i;
        for (int l = 0; l < io->n_layers; l++)
            claimed |= io->past_key[l] == (int)i || io->past_value[l] == (int)i;
        const char *name = p->backend->input_name(p->session, i);
        int out = claimed ? -1 : pipeline_state_output(p, names, name);
        if (out < 0)
            continue;
        int64_t dims[OGI_MAX_RANK];
        int rank;
        ogi_dtype dtype;
        p->backend->input_info(p->session, i, &dtype, &rank, dims);
        bool fixed = rank >= 1 && (dtype == OGI_FLOAT32 || dtype == OGI_FLOAT16);
        for (int d = 1; d < rank; d++)
            fixed &= dims[d] > 0;
        if (!fixed)
            return ogi_error(OGI_ERR_UNSUPPORTED,
                             "%s: state input '%s' must be float32 or float16 [batch, ...] with "
                             "every other dimension known",
                             p->dir, name);
        io->state_in[io->n_states] = (int)i;
        io->state_out[io->n_states++] = out;
    }
    return OGI_OK;
}

static ogi_status pipeline_detect_io(ogi_pipeline *p, const pipeline_names *names)
{
    const ogi_pipeline *s = p;
    genai_io *io = &p->io;
    io->input_ids = pipeline_find(s, false, names->input_ids);
    io->attention_mask = pipeline_find(s, false, names->attention_mask);
    io->position_ids = pipeline_find(s, false, names->position_ids);
    io->use_cache_branch = pipeline_find(s, false, "use_cache_branch");
    io->logits_from = pipeline_find(s, false, "ogi_logits_from");
    io->logits = pipeline_find(s, true, names->logits);
    if (io->input_ids < 0 || io->logits < 0)
        return ogi_error(OGI_ERR_INVALID_MODEL,
                         "%s: not a decoder model: the graph needs an input '%s' and an output "
                         "'%s'",
                         p->dir, names->input_ids, names->logits);
    ogi_status st = pipeline_detect_kv(p, names);
    if (st == OGI_OK)
        st = pipeline_detect_states(p, names);
    if (st == OGI_OK && io->n_layers > 0) {
        int64_t dims[OGI_MAX_RANK];
        int rank;
        p->backend->input_info(p->session, (size_t)io->past_key[0], &io->kv_dtype, &rank, dims);
        if (rank != 4 || dims[1] <= 0 || dims[3] <= 0)
            return ogi_error(OGI_ERR_UNSUPPORTED,
                             "%s: past key inputs must be declared [batch, kv_heads, past, "
                             "head_dim] with known heads and head size",
                             p->dir);
        io->kv_heads = dims[1];
        io->head_dim = dims[3];
        if (io->kv_dtype != OGI_FLOAT32)
            return ogi_error(OGI_ERR_UNSUPPORTED, "%s: KV cache of dtype %s is not supported yet",
                             p->dir, ogi_dtype_name(io->kv_dtype));
    }
    return st;
}

static void pipeline_progress(const ogi_pipeline_options *o, const char *what)
{
    if (o->progress)
        fprintf(stderr, "\r\033[Kogi: %s", what);
}

static ogi_status pipeline_open_parts(ogi_pipeline *p, const ogi_pipeline_options *o)
{
    json_t *config = NULL, *gen = NULL, *genai = NULL;
    ogi_status st = pipeline_load_json(p->dir, "config.json", &config);
    if (st == OGI_OK)
        st = pipeline_load_json(p->dir, "generation_config.json", &gen);
    if (st == OGI_OK)
        st = pipeline_load_json(p->dir, "genai_config.json", &genai);
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/model.onnx", p->dir);
    const json_t *dec = json_object_get(json_object_get(genai, "model"), "decoder");
    const json_t *file = json_object_get(dec, "filename");
    if (json_is_string(file) && strchr(json_string_value(file), '/') == NULL)
        snprintf(path, sizeof(path), "%s/%s", p->dir, json_string_value(file));
    if (st == OGI_OK && !pipeline_exists(path))
        st = ogi_error(OGI_ERR_NOT_FOUND, "%s: no model.onnx in this directory", p->dir);
    if (st == OGI_OK) {
        pipeline_progress(o, "loading the graph...");
        backend_options bo = {.threads = o->threads,
                              .graph_optimization = o->graph_optimization,
                              .library_path = o->ort_library,
                              .providers = o->providers,
                              .static_kv = o->static_kv_cache,
                              .attention = (int)o->attention,
                              .pack_weights = o->pack_weights};
        st = p->backend->open(path, &bo, &p->session);
        if (st == OGI_OK && p->backend->static_kv != NULL)
            p->io.static_kv = p->backend->static_kv(p->session) != 0;
    }
    pipeline_names names;
    pipeline_names_from(genai, &names);
    if (st == OGI_OK)
        st = pipeline_detect_io(p, &names);
    snprintf(path, sizeof(path), "%s/tokenizer.json", p->dir);
    if (st == OGI_OK && pipeline_exists(path)) {
        pipeline_progress(o, "loading the tokenizer...");
        st = ogi_tokenizer_open(p->dir, &p->tokenizer);
    }
    p->defaults = ogi_generation_default_config();
    pipeline_read_eos(config, &p->defaults);
    pipeline_read_generation(gen, &p->defaults);
    pipeline_read_generation(json_object_get(genai, "search"), &p->defaults);
    p->context = (size_t)pipeline_json_int(config, "max_position_embeddings",
                                           pipeline_json_int(config, "n_positions", 4096));
    int64_t pad =
        pipeline_json_int(gen, "pad_token_id", pipeline_json_int(config, "pad_token_id", 0));
    p->pad_id = pad >= 0 && pad <= INT32_MAX ? (int32_t)pad : 0;
    if (st == OGI_OK && p->tokenizer != NULL && p->defaults.n_eos_token_ids == 0) {
        int32_t eos = ogi_tokenizer_special_id(p->tokenizer, "eos");
        if (eos >= 0) {
            p->defaults.eos_token_ids[0] = eos;
            p->defaults.n_eos_token_ids = 1;
        }
    }
    pipeline_progress(o, "");
    json_decref(config);
    json_decref(gen);
    json_decref(genai);
    return st;
}

ogi_status ogi_pipeline_open(const char *model_dir, const ogi_pipeline_options *options,
                             ogi_pipeline **out)
{
    if (model_dir == NULL || out == NULL)
        return ogi_error(OGI_ERR_INVALID_ARGUMENT, "ogi_pipeline_open: NULL argument");
    ogi_pipeline_options o = options ? *options : ogi_pipeline_default_options();
    const backend_vtable *backend = backend_find(o.backend ? o.backend : "native");
    backend_options bo = {.threads = o.threads, .library_path = o.ort_library};
    if (backend == NULL)
        return ogi_error(OGI_ERR_NOT_FOUND, "unknown backend '%s' (known: native, ort)", o.backend);
    if (!backend->available(&bo))
        return ogi_error_prefix(OGI_ERR_NOT_FOUND, "backend '%s' is not available here",
                                backend->name);
    struct stat st_dir;
    if (stat(model_dir, &st_dir) != 0 || !S_ISDIR(st_dir.st_mode))
        return ogi_error(OGI_ERR_NOT_FOUND, "%s: not a model directory", model_dir);
    double start = genai_now();
    ogi_pipeline *p = calloc(1, sizeof(*p));
    if (p == NULL || (p->dir = strdup(model_dir)) == NULL) {
        free(p);
        return ogi_error(OGI_ERR_OUT_OF_MEMORY, "out of memory");
    }
    p->backend = backend;
    p->kv_budget = o.kv_cache_bytes ? o.kv_cache_bytes : (size_t)1 << 30;
    ogi_status st = pipeline_open_parts(p, &o);
    if (st != OGI_OK) {
        ogi_pipeline_free(p);
        return st;
    }
    p->load_s = genai_now() - start;
    *out = p;
    return OGI_OK;
}

void ogi_pipeline_free(ogi_pipeline *p)
{
    if (p == NULL)
        return;
    if (p->session != NULL)
        p->backend->free(p->session);
    ogi_tokenizer_free(p->tokenizer);
    free(p->io.past_key);
    free(p->io.past_value);
    free(p->io.present_key);
    free(p->io.present_value);
    free(p->io.state_in);
    free(p->io.state_out);
    free(p->dir);
    free(p);
}

ogi_generation_config ogi_pipeline_generation_config(const ogi_pipeline *p)
{
    return p->defaults;
}

const ogi_tokenizer *ogi_pipeline_tokenizer(const ogi_pipeline *p)
{
    return p->tokenizer;
}

size_t ogi_pipeline_context_length(const ogi_pipeline *p)
{
    return p->context;
}

int ogi_pipeline_static_kv_cache(const ogi_pipeline *p)
{
    return p->io.static_kv;
}

double ogi_pipeline_load_seconds(const ogi_pipeline *p)
{
    return p->load_s;
}

ogi_status genai_check_config(const ogi_pipeline *p, const ogi_generation_config *cfg)
{
    (void)p;
    return sampler_check_config(cfg);
}
