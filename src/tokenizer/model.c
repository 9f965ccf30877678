/* Models: vocabulary loading, the per-call word cache, and the WordPiece,
 * WordLevel and Unigram algorithms (BPE lives in bpe.c). */
#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok.h"

/* Ids beyond this are taken as hostile rather than allocated for. */
#define TOK_MAX_ID (1 << 26)
/* Words at least this long bypass the cache (as the reference does). */
#define TOK_CACHE_MAX_WORD 256
#define TOK_CACHE_MAX_ENTRIES 100000

static ogi_status oom(void)
{
    return ogi_error(OGI_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
}

bool tok_tokens_push(tok_tokens *t, int32_t id, uint32_t start, uint32_t end)
{
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        tok_token *v = realloc(t->v, cap * sizeof(*v));
        if (!v)
            return false;
        t->v = v;
        t->cap = cap;
    }
    t->v[t->n++] = (tok_token){id, start, end};
    return true;
}

/* ---- vocabulary --------------------------------------------------------- */

ogi_status tok_vocab_add(tok_model *m, const char *s, size_t n, long long id)
{
    if (id < 0 || id >= TOK_MAX_ID)
        return ogi_error(OGI_ERR_INVALID_MODEL,
                         "tokenizer.json: model.vocab: id %lld of token '%.*s' out of range", id,
                         (int)(n > 64 ? 64 : n), s);
    long e = tok_map_put(&m->vocab, s, n, (int32_t)id);
    if (e < 0)
        return oom();
    if ((size_t)id >= m->id_cap) {
        size_t cap = m->id_cap ? m->id_cap : 1024;
        while (cap <= (size_t)id)
            cap *= 2;
        long *p = realloc(m->id_entry, cap * sizeof(long));
        if (!p)
            return oom();
        for (size_t i = m->id_cap; i < cap; i++)
            p[i] = -1;
        m->id_entry = p;
        m->id_cap = cap;
    }
    if ((size_t)id >= m->n_ids)
        m->n_ids = (size_t)id + 1;
    m->id_entry[id] = e;
    return OGI_OK;
}

static ogi_status vocab_parse_object(const json_t *vocab, tok_model *m)
{
    if (!json_is_object(vocab))
        return ogi_error(OGI_ERR_INVALID_MODEL, "tokenizer.json: model.vocab must be an object");
    if (!tok_map_init(&m->vocab, json_object_size(vocab)))
        return oom();
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)vocab, key, v)
    {
        if (!json_is_integer(v))
            return ogi_error(OGI_ERR_INVALID_MODEL,
                             "tokenizer.json: model.vocab: id of '%s' is not an integer", key);
        ogi_status st = tok_vocab_add(m, key, strlen(key), json_integer_value(v));
        if (st != OGI_OK)
            return st;
    }
    return OGI_OK;
}

int32_t tok_model_token_to_id(const tok_model *m, const char *s, size_t n)
{
    long e = tok_map_find(&m->vocab, s, n);
    return e < 0 ? -1 : m->vocab.entries[e].value;
}

const char *tok_model_id_to_token(const tok_model *m, int32_t id)
{
    if (id < 0 || (size_t)id >= m->n_ids || m->id_entry[id] < 0)
        return NULL;
    return tok_map_key(&m->vocab, (size_t)m->id_entry[id]);
}

static ogi_status unk_from_token(const json_t *j, tok_model *m, const char *where)
{
    const char *unk;
    ogi_status st = tok_json_string(j, "unk_token", where, false, &unk);
    if (st != OGI_OK || !unk)
        return st;
    m->unk_id = tok_model_token_to_id(m, unk, strlen(unk));
    if (m->unk_id < 0)
        return ogi_error(OGI_ERR_INVALID_MODEL,
                         "tokenizer.json: %s: unk_token '%s' is not in the vocabulary", where, unk);
    return OGI_OK;
}

/* ---- WordPiece and WordLevel -------------------------------------------- */

static ogi_status need_unk(const tok_model *m, const char *what)
{
    if (m->unk_id >= 0)
        return OGI_OK;
    return ogi_error(OGI_ERR_RUNTIME, "tokenizer: %s has no unk_token for an unknown word", what);
}

static ogi_status wordpiece_tokenize(const tok_model *m, const char *s, size_t n, tok_tokens *out)
{
    size_t first = out->n;
    if (tok_utf8_char_count(s, n) > m->max_input_chars)
        goto unknown;
    size_t plen = m->prefix ? strlen(m->prefix) : 0;
    tok_buf tmp = {0};
    for (size_t start = 0; start < n;) {
        int32_t found = -1;
        size_t end = n;
        while (start < end) {
            tmp.len = 0;
            if ((start > 0 && !tok_buf_append(&tmp, m->prefix, plen)) ||
                !tok_buf_append(&tmp, s + start, end - start)) {
                tok_buf_free(&tmp);
                return oom();
            }
            found = tok_model_token_to_id(m, tmp.data, tmp.len);
            if (found >= 0)
                break;
            do
                end--;
            while (end > start && ((unsigned char)s[end] & 0xC0) == 0x80);
        }
        if (found < 0) {
            tok_buf_free(&tmp);
            out->n = first;
            goto unknown;
        }
        if (!tok_tokens_push(out, found, (uint32_t)start, (uint32_t)end)) {
            tok_buf_free(&tmp);
            return oom();
        }
        start = end;
    }
    tok_buf_free(&tmp);
    return OGI_OK;
unknown:;
    ogi_status st = need_unk(m, "WordPiece");
    if (st != OGI_OK)
        return st;
    return tok_tokens_push(out, m->unk_id, 0, (uint32_t)n) ? OGI_OK : oom();
}

static ogi_status wordlevel_tokenize(const tok_model *m, const char *s, size_t n, tok_tokens *out)
{
    int32_t id = tok_model_token_to_id(m, s, n);
    if (id < 0) {
        ogi_status st = need_unk(m, "WordLevel");
        if (st != OGI_OK)
            return st;
        id = m->unk_id;
    }
    return tok_tokens_push(out, id, 0, (uint32_t)n) ? OGI_OK : oom();
}

/* ---- Unigram ------------------------------------------------------------ */

static ogi_status unigram_parse(const json_t *j, tok_model *m)
{
    json_t *vocab = json_object_get(j, "vocab");
    if (!json_is_array(vocab))
        return ogi_error(OGI_ERR_INVALID_MODEL,
                         "tokenizer.json: Unigram model.vocab must be an array of [piece, score]");
    size_t n = json_array_size(vocab);
    if (!tok_map_init(&m->vocab, n) || !(m->scores = malloc((n ? n : 1) * sizeof(double))))
        return oom();
    m->min_score = DBL_MAX;
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(vocab, i);
        json_t *piece = json_array_get(e, 0), *score = json_array_get(e, 1);
        if (!json_is_string(piece) || !json_is_number(score))
            return ogi_error(OGI_ERR_INVALID_MODEL,
                             "tokenizer.json: Unigram model.vocab[%zu] must be [piece, score]", i);
        size_t len = json_string_length(piece);
        if (tok_model_token_to_id(m, json_string_value(piece), len) < 0) {
            ogi_status st = tok_vocab_add(m, json_string_value(piece), len, (long long)i);
            if (st != OGI_OK)
                return st;
        }
        m->scores[i] = json_number_value(score);
        if (m->scores[i] < m->min_score)
            m->min_score = m->scores[i];
        if (len > m->max_piece_len)
            m->max_piece_len = len;
    }
    json_t *unk = json_object_get(j, "unk_id");
    if (json_is_integer(unk)) {
        if (json_integer_value(unk) < 0 || (size_t)json_integer_value(unk) >= n)
            return ogi_error(OGI_ERR_INVALID_MODEL, "tokenizer.json: Unigram unk_id out of range");
        m->unk_id = (int32_t)json_integer_value(unk);
    }
    m->byte_fallback = tok_json_bool(j, "byte_fallback", false);
    return OGI_OK;
}

/* ---- dispatch ----------------------------------------------------------- */

static void byte_ids_init(tok_model *m)
{
    for (int b = 0; b < 256; b++) {
        char name[8];
        snprintf(name, sizeof(name), "<0x%02X>", b);
        m->byte_ids[b] = tok_model_token_to_id(m, name, 6);
    }
}

ogi_status tok_model_parse(const json_t *j, tok_model *m)
{
    memset(m, 0, sizeof(*m));
    m->unk_id = -1;
    if (!json_is_object(j))
        return ogi_error(OGI_ERR_INVALID_MODEL, "tokenizer.json: 'model' must be an object");
    const char *type;
    ogi_status st = tok_json_string(j, "type", "model", false, &type);
    if (st != OGI_OK)
        return st;
    if (!type) /* old files name no type; BPE is the one with merges */
        type = json_object_get(j, "merges") ? "BPE" : "WordPiece";
    if (strcmp(type, "BPE") == 0) {
        m->type = TOK_MODEL_BPE;
        st = tok_bpe_parse(j, m);
    } else if (strcmp(type, "WordPiece") == 0 || strcmp(type, "WordLevel") == 0) {
        bool wp = type[4] == 'P';
        m->type = wp ? TOK_MODEL_WORDPIECE : TOK_MODEL_WORDLEVEL;
        st = vocab_parse_object(json_object_get(j, "vocab"), m);
        if (st == OGI_OK)
            st = unk_from_token(j, m, wp ? "WordPiece" : "WordLevel");
        const char *prefix = NULL;
        if (st == OGI_OK && wp)
            st = tok_json_string(j, "continuing_subword_prefix", "WordPiece", false, &prefix);
        if (st == OGI_OK && wp &&
            !(m->prefix = tok_strndup(prefix ? prefix : "##", strlen(prefix ? prefix : "##"))))
            st = oom();
        json_t *mx = json_object_get(j, "max_input_chars_per_word");
        m->max_input_chars = json_is_integer(mx) ? (size_t)json_integer_value(mx) : 100;
    } else if (strcmp(type, "Unigram") == 0) {
        m->type = TOK_MODEL_UNIGRAM;
        st = unigram_parse(j, m);
    } else {
        return ogi_error(OGI_ERR_UNSUPPORTED, "tokenizer.json: model.type '%s' is not supported",
                         type);
    }
    if (st == OGI_OK)
        byte_ids_init(m);
    return st;
}

void tok_model_free(tok_model *m)
{
    tok_map_free(&m->vocab);
    free(m->id_entry);
    tok_pair_map_free(&m->merges);
    free(m->prefix);
    free(m->suffix);
    free(m->scores);
    memset(m, 0, sizeof(*m));
}

static ogi_status tokenize_uncached(const tok_model *m, const char *s, size_t n, tok_tokens *out)
{
    switch (m->type) {
    case TOK_MODEL_BPE:
        return tok_bpe_tokenize(m, s, n, out);
    case TOK_MODEL_WORDPIECE:
        return wordpiece_tokenize(m, s, n, out);
    case TOK_MODEL_WORDLEVEL:
        return wordlevel_tokenize(m, s, n, out);
    case TOK_MODEL_UNIGRAM:
        return tok_unigram_tokenize(m, s, n, out);
    }
    return OGI_OK;
}

static void cache_reset(tok_cache *c)
{
    tok_map_free(&c->map);
    c->toks.n = 0;
    if (!tok_map_init(&c->map, 4096))
        c->enabled = false;
}

static ogi_status tokenize_word(const tok_model *m, const char *s, size_t n, tok_cache *cache,
                                tok_tokens *out);

/* Cuts before each "▁" that follows another character (see
 * cut_before_metaspace) and tokenizes the parts one by one. */
static ogi_status tokenize_cut(const tok_model *m, const char *s, size_t n, tok_cache *cache,
                               tok_tokens *out)
{
    static const char ms[] = "\xE2\x96\x81";
    size_t start = 0;
    for (size_t i = 3; i + 3 <= n; i++) {
        if (memcmp(s + i, ms, 3) != 0 || memcmp(s + i - 3, ms, 3) == 0)
            continue;
        size_t first = out->n;
        ogi_status st = tokenize_word(m, s + start, i - start, cache, out);
        if (st != OGI_OK)
            return st;
        for (size_t k = first; k < out->n; k++)
            out->v[k].start += (uint32_t)start, out->v[k].end += (uint32_t)start;
        start = i;
    }
    size_t first = out->n;
    ogi_status st = tokenize_word(m, s + start, n - start, cache, out);
    for (size_t k = first; st == OGI_OK && k < out->n; k++)
        out->v[k].start += (uint32_t)start, out->v[k].end += (uint32_t)start;
    return st;
}

ogi_status tok_model_tokenize(const tok_model *m, const char *s, size_t n, tok_cache *cache,
                              tok_tokens *out)
{
    if (m->type == TOK_MODEL_BPE && m->cut_before_metaspace && n > 3)
        return tokenize_cut(m, s, n, cache, out);
    return tokenize_word(m, s, n, cache, out);
}

static ogi_status tokenize_word(const tok_model *m, const char *s, size_t n, tok_cache *cache,
                                tok_tokens *out)
{
    if (n == 0)
        return OGI_OK;
    bool use = cache && cache->enabled && n < TOK_CACHE_MAX_WORD;
    if (use && !cache->map.slots)
        cache_reset(cache);
    if (use && cache->enabled) {
        long e = tok_map_find(&cache->map, s, n);
        if (e >= 0) {
            size_t at = (size_t)cache->map.entries[e].value;
            size_t count = (size_t)cache->toks.v[at].id;
            for (size_t i = 0; i < count; i++) {
                const tok_token *t = &cache->toks.v[at + 1 + i];
                if (!tok_tokens_push(out, t->id, t->start, t->end))
                    return oom();
            }
            return OGI_OK;
        }
    }
    size_t first = out->n;
    ogi_status st = tokenize_uncached(m, s, n, out);
    if (st != OGI_OK || !use || !cache->enabled)
        return st;
    if (cache->map.n >= TOK_CACHE_MAX_ENTRIES)
        cache_reset(cache);
    size_t at = cache->toks.n;
    if (!tok_tokens_push(&cache->toks, (int32_t)(out->n - first), 0, 0))
        return oom();
    for (size_t i = first; i < out->n; i++)
        if (!tok_tokens_push(&cache->toks, out->v[i].id, out->v[i].start, out->v[i].end))
            return oom();
    if (tok_map_put(&cache->map, s, n, (int32_t)at) < 0)
        return oom();
    return OGI_OK;
}

void tok_cache_free(tok_cache *c)
{
    tok_map_free(&c->map);
    free(c->toks.v);
    memset(c, 0, sizeof(*c));
}

/* Viterbi over the lattice of vocabulary pieces; unknown characters cost
 * min_score - 10 and consecutive ones fuse, as the reference does. */
ogi_status tok_unigram_tokenize(const tok_model *m, const char *s, size_t n, tok_tokens *out)
{
    typedef struct {
        double score;
        long start; /* -1: unreached */
        int32_t id;
    } best_t;
    best_t *best = malloc((n + 1) * sizeof(*best));
    if (!best)
        return oom();
    for (size_t i = 0; i <= n; i++)
        best[i] = (best_t){0, -1, -1};
    best[0].start = 0;
    double unk_score = m->min_score - 10.0;
    for (size_t i = 0, clen; i < n; i += clen) {
        tok_utf8_decode(s + i, n - i, &clen);
        bool single = false;
        for (size_t k = 1; k <= m->max_piece_len && i + k <= n; k++) {
            if (i + k < n && ((unsigned char)s[i + k] & 0xC0) == 0x80)
                continue;
            int32_t id = tok_model_token_to_id(m, s + i, k);
            if (id < 0)
                continue;
            double cand = best[i].score + m->scores[id];
            if (best[i + k].start < 0 || cand > best[i + k].score)
                best[i + k] = (best_t){cand, (long)i, id};
            single |= k == clen;
        }
        if (!single) {
            double cand = best[i].score + unk_score;
            if (best[i + clen].start < 0 || cand > best[i + clen].score)
                best[i + clen] = (best_t){cand, (long)i, m->unk_id};
        }
    }
    /* Walk back, collecting [start, end) pieces with unknowns fused. */
    tok_tokens rev = {0};
    ogi_status st = OGI_OK;
    for (size_t end = n; end > 0 && st == OGI_OK;) {
        size_t start = (size_t)best[end].start;
        bool unk = best[end].id == m->unk_id;
        if (unk && rev.n && rev.v[rev.n - 1].id == m->unk_id && m->unk_id >= 0)
            rev.v[rev.n - 1].start = (uint32_t)start;
        else if (!tok_tokens_push(&rev, best[end].id, (uint32_t)start, (uint32_t)end))
            st = oom();
        end = start;
    }
    free(best);
    for (size_t i = rev.n; st == OGI_OK && i-- > 0;) {
        tok_token t = rev.v[i];
        int32_t id = tok_model_token_to_id(m, s + t.start, t.end - t.start);
        if (id < 0 && m->byte_fallback) {
            bool all = true;
            for (uint32_t b = t.start; b < t.end; b++)
                all &= m->byte_ids[(unsigned char)s[b]] >= 0;
            for (uint32_t b = t.start; all && b < t.end && st == OGI_OK; b++)
                if (!tok_tokens_push(out, m->byte_ids[(unsigned char)s[b]], t.start, t.end))
                    st = oom();
            if (all)
                continue;
        }
        if (id < 0)
            id = m->unk_id;
        if (id < 0)
            st = ogi_error(OGI_ERR_RUNTIME, "tokenizer: Unigram model has no unk_id");
        else if (!tok_tokens_push(out, id, t.start, t.end))
            st = oom();
    }
    free(rev.v);
    return st;
}
