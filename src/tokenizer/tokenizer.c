/* ogi_tokenizer: loading tokenizer.json + tokenizer_config.json, encode and
 * decode, vocabulary queries. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok.h"

static ogi_status oom(void)
{
    return ogi_error(OGI_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
}

/* ---- loading ------------------------------------------------------------ */

/* Config files carry integers beyond 64 bits (model_max_length = 1e30), so
 * integers are read as reals there; tokenizer.json needs exact ids. */
static ogi_status load_json(const char *path, const char *name, size_t flags, json_t **out)
{
    json_error_t err;
    FILE *f = fopen(path, "rb");
    if (!f)
        return ogi_error(OGI_ERR_IO, "%s: cannot open %s", name, path);
    *out = json_loadf(f, JSON_ALLOW_NUL | flags, &err);
    fclose(f);
    if (!*out)
        return ogi_error(OGI_ERR_INVALID_MODEL, "%s: line %d column %d: %s", name, err.line,
                         err.column, err.text);
    if (!json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        return ogi_error(OGI_ERR_INVALID_MODEL, "%s: the top level must be an object", name);
    }
    return OGI_OK;
}

static ogi_status parse_tokenizer_json(const json_t *j, ogi_tokenizer *tok)
{
    ogi_status st = tok_model_parse(json_object_get(j, "model"), &tok->model);
    if (st == OGI_OK)
        st = tok_normalizer_parse(json_object_get(j, "normalizer"), &tok->normalizer);
    if (st == OGI_OK)
        st = tok_pretokenizer_parse(json_object_get(j, "pre_tokenizer"), &tok->pretokenizer);
    if (st == OGI_OK)
        st = tok_postprocessor_parse(json_object_get(j, "post_processor"), &tok->model,
                                     &tok->postprocessor);
    if (st == OGI_OK)
        st = tok_decoder_parse(json_object_get(j, "decoder"), &tok->decoder);
    if (st == OGI_OK)
        st = tok_added_parse(json_object_get(j, "added_tokens"), tok->normalizer, &tok->added);
    return st;
}

/* A special token in tokenizer_config.json: "<s>" or {"content": "<s>"}. */
static const char *config_token(const json_t *cfg, const char *key)
{
    json_t *v = json_object_get(cfg, key);
    if (json_is_object(v))
        v = json_object_get(v, "content");
    return json_string_value(v);
}

static ogi_status special_from_config(ogi_tokenizer *tok, const json_t *cfg, const char *key,
                                      int32_t *id, char **copy)
{
    const char *s = config_token(cfg, key);
    *id = -1;
    if (!s)
        return OGI_OK;
    *id = ogi_tokenizer_token_to_id(tok, s);
    if (copy && !(*copy = tok_strndup(s, strlen(s))))
        return oom();
    return OGI_OK;
}

static ogi_status chat_template_from_config(ogi_tokenizer *tok, const json_t *cfg)
{
    json_t *t = json_object_get(cfg, "chat_template");
    const char *text = json_string_value(t);
    if (json_is_array(t)) {
        /* A list of {name, template}: the one named "default". */
        for (size_t i = 0; i < json_array_size(t) && !text; i++) {
            json_t *e = json_array_get(t, i);
            const char *name = json_string_value(json_object_get(e, "name"));
            if (name && strcmp(name, "default") == 0)
                text = json_string_value(json_object_get(e, "template"));
        }
    }
    if (text && !(tok->chat_template = tok_strndup(text, strlen(text))))
        return oom();
    return OGI_OK;
}

/* transformers 5 rebuilds some tokenizers in their class's __init__ instead
 * of taking tokenizer.json as it is. Llama's keeps vocab and merges but
 * drops the normalizer for a Metaspace pre-tokenizer. */
static ogi_status hf_class_pipeline(ogi_tokenizer *tok, const json_t *cfg)
{
    const char *cls = json_string_value(json_object_get(cfg, "tokenizer_class"));
    tok->hf_pipeline = tok->pipeline;
    if (!cls || tok->model.type != TOK_MODEL_BPE)
        return OGI_OK;
    if (strcmp(cls, "LlamaTokenizer") != 0 && strcmp(cls, "LlamaTokenizerFast") != 0)
        return OGI_OK;
    bool prefix = tok_json_bool(cfg, "add_prefix_space", true);
    bool legacy = tok_json_bool(cfg, "legacy", false);
    tok_prepend_scheme scheme = !prefix  ? TOK_PREPEND_NEVER
                                : legacy ? TOK_PREPEND_ALWAYS
                                         : TOK_PREPEND_FIRST;
    ogi_status st = tok_pretokenizer_metaspace(0x2581, scheme, false, &tok->hf_pretokenizer);
    if (st != OGI_OK)
        return st;
    tok->hf_pipeline.normalizer = NULL;
    tok->hf_pipeline.pretokenizer = tok->hf_pretokenizer;
    return OGI_OK;
}

/* With add_bos_token/add_eos_token in the config, transformers replaces the
 * post-processor by a "bos $A eos" template. */
static ogi_status hf_postprocessor(ogi_tokenizer *tok, const json_t *cfg)
{
    json_t *ab = json_object_get(cfg, "add_bos_token"), *ae = json_object_get(cfg, "add_eos_token");
    if (!ab && !ae)
        return OGI_OK;
    int32_t bos = json_is_true(ab) ? tok->bos_id : -1;
    int32_t eos = json_is_true(ae) ? tok->eos_id : -1;
    ogi_status st = tok_postprocessor_bos_eos(bos, eos, &tok->hf_postprocessor);
    if (st == OGI_OK)
        tok->hf_pipeline.postprocessor = tok->hf_postprocessor;
    return st;
}

static ogi_status parse_config(ogi_tokenizer *tok, const json_t *cfg)
{
    ogi_status st = special_from_config(tok, cfg, "bos_token", &tok->bos_id, &tok->bos_token);
    if (st == OGI_OK)
        st = special_from_config(tok, cfg, "eos_token", &tok->eos_id, &tok->eos_token);
    if (st == OGI_OK)
        st = special_from_config(tok, cfg, "pad_token", &tok->pad_id, NULL);
    if (st == OGI_OK)
        st = special_from_config(tok, cfg, "unk_token", &tok->unk_id, NULL);
    if (st == OGI_OK)
        st = chat_template_from_config(tok, cfg);
    if (st == OGI_OK)
        st = hf_class_pipeline(tok, cfg);
    if (st == OGI_OK)
        st = hf_postprocessor(tok, cfg);
    return st;
}

ogi_status ogi_tokenizer_open_files(const char *tokenizer_json_path, const char *config_path,
                                    ogi_tokenizer **out)
{
    if (!out || !tokenizer_json_path)
        return ogi_error(OGI_ERR_INVALID_ARGUMENT, "ogi_tokenizer_open_files: NULL argument");
    *out = NULL;
    ogi_tokenizer *tok = calloc(1, sizeof(*tok));
    if (!tok)
        return oom();
    tok->bos_id = tok->eos_id = tok->pad_id = tok->unk_id = -1;
    json_t *j = NULL, *cfg = NULL;
    ogi_status st = load_json(tokenizer_json_path, "tokenizer.json", 0, &j);
    if (st == OGI_OK)
        st = parse_tokenizer_json(j, tok);
    json_decref(j);
    if (st == OGI_OK && config_path)
        st = load_json(config_path, "tokenizer_config.json", JSON_DECODE_INT_AS_REAL, &cfg);
    if (st == OGI_OK) {
        tok->pipeline = (tok_pipeline){tok->normalizer, tok->pretokenizer, tok->postprocessor};
        tok->hf_pipeline = tok->pipeline;
        if (cfg)
            st = parse_config(tok, cfg);
    }
    json_decref(cfg);
    if (st != OGI_OK) {
        ogi_tokenizer_free(tok);
        return st;
    }
    *out = tok;
    return OGI_OK;
}

ogi_status ogi_tokenizer_open(const char *model_dir, ogi_tokenizer **out)
{
    if (!model_dir || !out)
        return ogi_error(OGI_ERR_INVALID_ARGUMENT, "ogi_tokenizer_open: NULL argument");
    size_t n = strlen(model_dir) + 32;
    char *tj = malloc(n), *cfg = malloc(n);
    if (!tj || !cfg) {
        free(tj);
        free(cfg);
        return oom();
    }
    snprintf(tj, n, "%s/tokenizer.json", model_dir);
    snprintf(cfg, n, "%s/tokenizer_config.json", model_dir);
    FILE *f = fopen(cfg, "rb");
    if (f)
        fclose(f);
    ogi_status st = ogi_tokenizer_open_files(tj, f ? cfg : NULL, out);
    free(tj);
    free(cfg);
    return st;
}

void ogi_tokenizer_free(ogi_tokenizer *tok)
{
    if (!tok)
        return;
    tok_model_free(&tok->model);
    tok_added_free(&tok->added);
    tok_normalizer_free(tok->normalizer);
    tok_pretokenizer_free(tok->pretokenizer);
    tok_postprocessor_free(tok->postprocessor);
    tok_decoder_free(tok->decoder);
    tok_normalizer_free(tok->hf_normalizer);
    tok_pretokenizer_free(tok->hf_pretokenizer);
    tok_postprocessor_free(tok->hf_postprocessor);
    free(tok->bos_token);
    free(tok->eos_token);
    free(tok->chat_template);
    free(tok);
}

/* ---- encoding ----------------------------------------------------------- */

/* Added tokens are found in the raw text, then each remaining piece is
 * normalized and searched for normalized added tokens. */
static ogi_status extract_and_normalize(const ogi_tokenizer *tok, const tok_pipeline *pl,
                                        tok_nstr *all, tok_pieces *out)
{
    tok_pieces raw = {0};
    if (!tok_added_split(&tok->added, &tok->added.raw, all, &raw))
        return oom();
    ogi_status st = OGI_OK;
    for (size_t i = 0; i < raw.n && st == OGI_OK; i++) {
        tok_piece *p = &raw.v[i];
        if (p->id >= 0) {
            st = tok_pieces_push(out, &p->ns, p->id) ? OGI_OK : oom();
            continue;
        }
        st = tok_normalizer_apply(pl->normalizer, &p->ns);
        if (st == OGI_OK && !tok_added_split(&tok->added, &tok->added.normalized, &p->ns, out))
            st = oom();
    }
    tok_pieces_free(&raw);
    return st;
}

static ogi_status tokenize_pieces(const ogi_tokenizer *tok, const tok_pieces *pieces,
                                  tok_encoding *out)
{
    tok_cache cache = {.enabled = true};
    tok_tokens toks = {0};
    ogi_status st = OGI_OK;
    for (size_t i = 0; i < pieces->n && st == OGI_OK; i++) {
        const tok_nstr *ns = &pieces->v[i].ns;
        if (pieces->v[i].id >= 0) {
            if (!tok_encoding_push(out, pieces->v[i].id, tok_nstr_original(ns, 0, ns->len), false))
                st = oom();
            continue;
        }
        toks.n = 0;
        st = tok_model_tokenize(&tok->model, ns->s, ns->len, &cache, &toks);
        for (size_t k = 0; k < toks.n && st == OGI_OK; k++)
            if (!tok_encoding_push(out, toks.v[k].id,
                                   tok_nstr_original(ns, toks.v[k].start, toks.v[k].end), false))
                st = oom();
    }
    free(toks.v);
    tok_cache_free(&cache);
    return st;
}

ogi_status tok_encode(const ogi_tokenizer *tok, const tok_pipeline *pl, const char *text,
                      size_t len, bool add_special_tokens, tok_encoding *out)
{
    memset(out, 0, sizeof(*out));
    tok_buf clean = {0};
    if (!tok_utf8_is_valid(text, len)) {
        if (!tok_utf8_append_lossy(&clean, text, len))
            return oom();
        text = clean.data;
        len = clean.len;
    }
    tok_nstr all;
    tok_pieces pieces = {0};
    bool ok = len <= UINT32_MAX / 2 && tok_nstr_init(&all, text, len, 0);
    tok_buf_free(&clean);
    if (!ok)
        return len > UINT32_MAX / 2
                   ? ogi_error(OGI_ERR_INVALID_ARGUMENT, "tokenizer: text too long")
                   : oom();
    ogi_status st = extract_and_normalize(tok, pl, &all, &pieces);
    tok_nstr_free(&all);
    if (st == OGI_OK)
        st = tok_pretokenizer_apply(pl->pretokenizer, &pieces);
    if (st == OGI_OK)
        st = tokenize_pieces(tok, &pieces, out);
    tok_pieces_free(&pieces);
    if (st == OGI_OK)
        st = tok_postprocessor_apply(pl->postprocessor, out, add_special_tokens);
    if (st != OGI_OK)
        tok_encoding_free(out);
    return st;
}

static ogi_status encode_ids(const ogi_tokenizer *tok, const tok_pipeline *pl, const char *text,
                             size_t len, bool add_special, int32_t **ids, size_t *n_ids)
{
    if (!tok || (!text && len) || !ids || !n_ids)
        return ogi_error(OGI_ERR_INVALID_ARGUMENT, "ogi_tokenizer_encode: NULL argument");
    *ids = NULL;
    *n_ids = 0;
    tok_encoding e;
    ogi_status st = tok_encode(tok, pl, text ? text : "", len, add_special, &e);
    if (st != OGI_OK)
        return st;
    *ids = e.ids ? e.ids : malloc(sizeof(int32_t));
    *n_ids = e.n;
    e.ids = NULL;
    tok_encoding_free(&e);
    return *ids ? OGI_OK : oom();
}

ogi_status ogi_tokenizer_encode(const ogi_tokenizer *tok, const char *text, size_t len,
                                int add_special_tokens, int32_t **ids, size_t *n_ids)
{
    return encode_ids(tok, tok ? &tok->pipeline : NULL, text, len, add_special_tokens != 0, ids,
                      n_ids);
}

ogi_status ogi_tokenizer_encode_hf(const ogi_tokenizer *tok, const char *text, size_t len,
                                   int32_t **ids, size_t *n_ids)
{
    return encode_ids(tok, tok ? &tok->hf_pipeline : NULL, text, len, true, ids, n_ids);
}

/* Byte offset → character index, as the Python binding reports offsets. */
static size_t char_index(const char *s, size_t len, size_t byte)
{
    return tok_utf8_char_count(s, byte < len ? byte : len);
}

ogi_status tok_encode_offsets(const ogi_tokenizer *tok, const char *text, size_t len,
                              int add_special_tokens, int32_t **ids, size_t **starts, size_t **ends,
                              size_t *n)
{
    tok_buf clean = {0};
    if (!tok_utf8_append_lossy(&clean, text, len))
        return oom();
    tok_encoding e;
    ogi_status st =
        tok_encode(tok, &tok->pipeline, clean.data, clean.len, add_special_tokens != 0, &e);
    if (st != OGI_OK) {
        tok_buf_free(&clean);
        return st;
    }
    *starts = malloc((e.n + 1) * sizeof(size_t));
    *ends = malloc((e.n + 1) * sizeof(size_t));
    for (size_t i = 0; *starts && *ends && i < e.n; i++) {
        (*starts)[i] = char_index(clean.data, clean.len, e.offsets[i].start);
        (*ends)[i] = char_index(clean.data, clean.len, e.offsets[i].end);
    }
    tok_buf_free(&clean);
    *n = e.n;
    *ids = e.ids;
    e.ids = NULL;
    tok_encoding_free(&e);
    if (!*starts || !*ends || (!*ids && *n)) {
        free(*starts);
        free(*ends);
        free(*ids);
        return oom();
    }
    return OGI_OK;
}

/* ---- decoding ----------------------------------------------------------- */

ogi_status ogi_tokenizer_decode(const ogi_tokenizer *tok, const int32_t *ids, size_t n_ids,
                                int skip_special_tokens, char **text, size_t *len)
{
    if (!tok || (!ids && n_ids) || !text)
        return ogi_error(OGI_ERR_INVALID_ARGUMENT, "ogi_tokenizer_decode: NULL argument");
    *text = NULL;
    tok_strs tokens = {0};
    for (size_t i = 0; i < n_ids; i++) {
        const tok_added_token *a = tok_added_by_id(&tok->added, ids[i]);
        if (a && skip_special_tokens && a->special)
            continue;
        const char *s = a ? a->content : tok_model_id_to_token(&tok->model, ids[i]);
        size_t n = a ? a->len : s ? strlen(s) : 0;
        if (s && !tok_strs_push(&tokens, s, n)) {
            tok_strs_free(&tokens);
            return oom();
        }
    }
    tok_buf out = {0};
    ogi_status st = tok_decoder_decode(tok->decoder, &tokens, &out);
    tok_strs_free(&tokens);
    if (st != OGI_OK) {
        tok_buf_free(&out);
        return st;
    }
    size_t n;
    *text = tok_buf_finish(&out, &n);
    if (len)
        *len = n;
    return *text ? OGI_OK : oom();
}

/* ---- vocabulary --------------------------------------------------------- */

size_t ogi_tokenizer_vocab_size(const ogi_tokenizer *tok)
{
    if (!tok)
        return 0;
    return tok->model.n_ids > tok->added.n_by_id ? tok->model.n_ids : tok->added.n_by_id;
}

int32_t ogi_tokenizer_token_to_id(const ogi_tokenizer *tok, const char *token)
{
    if (!tok || !token)
        return -1;
    size_t n = strlen(token);
    long e = tok_map_find(&tok->added.by_content, token, n);
    if (e >= 0)
        return tok->added.tokens[tok->added.by_content.entries[e].value].id;
    return tok_model_token_to_id(&tok->model, token, n);
}

const char *ogi_tokenizer_id_to_token(const ogi_tokenizer *tok, int32_t id)
{
    if (!tok)
        return NULL;
    const tok_added_token *a = tok_added_by_id(&tok->added, id);
    return a ? a->content : tok_model_id_to_token(&tok->model, id);
}

int32_t ogi_tokenizer_special_id(const ogi_tokenizer *tok, const char *which)
{
    if (!tok || !which)
        return -1;
    if (strcmp(which, "bos") == 0)
        return tok->bos_id;
    if (strcmp(which, "eos") == 0)
        return tok->eos_id;
    if (strcmp(which, "pad") == 0)
        return tok->pad_id;
    if (strcmp(which, "unk") == 0)
        return tok->unk_id;
    return -1;
}

int ogi_tokenizer_is_special(const ogi_tokenizer *tok, int32_t id)
{
    const tok_added_token *a = tok ? tok_added_by_id(&tok->added, id) : NULL;
    return a && a->special;
}
