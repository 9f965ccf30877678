/* Byte-pair encoding: merges applied lowest rank first through a binary
 * heap over a linked list of symbols, O(n log n) per word. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok.h"

static ogi_status oom(void)
{
    return ogi_error(OGI_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
}

/* ---- loading ------------------------------------------------------------ */

static ogi_status merge_parts(const json_t *e, size_t rank, const char **a, size_t *alen,
                              const char **b, size_t *blen)
{
    if (json_is_array(e) && json_array_size(e) == 2 && json_is_string(json_array_get(e, 0)) &&
        json_is_string(json_array_get(e, 1))) {
        *a = json_string_value(json_array_get(e, 0));
        *alen = json_string_length(json_array_get(e, 0));
        *b = json_string_value(json_array_get(e, 1));
        *blen = json_string_length(json_array_get(e, 1));
        return OGI_OK;
    }
    if (json_is_string(e)) {
        const char *s = json_string_value(e);
        size_t n = json_string_length(e);
        const char *sp = memchr(s, ' ', n);
        if (sp && !memchr(sp + 1, ' ', n - (size_t)(sp + 1 - s))) {
            *a = s;
            *alen = (size_t)(sp - s);
            *b = sp + 1;
            *blen = n - *alen - 1;
            return OGI_OK;
        }
    }
    return ogi_error(OGI_ERR_INVALID_MODEL,
                     "tokenizer.json: model.merges[%zu] must be \"a b\" or [\"a\", \"b\"]", rank);
}

static ogi_status merges_parse(const json_t *merges, tok_model *m)
{
    size_t n = json_array_size(merges);
    if (!tok_pair_map_init(&m->merges, n))
        return oom();
    size_t plen = m->prefix ? strlen(m->prefix) : 0;
    tok_buf joined = {0};
    ogi_status st = OGI_OK;
    for (size_t r = 0; r < n && st == OGI_OK; r++) {
        const char *a, *b;
        size_t alen, blen;
        st = merge_parts(json_array_get(merges, r), r, &a, &alen, &b, &blen);
        if (st != OGI_OK)
            break;
        int32_t ia = tok_model_token_to_id(m, a, alen), ib = tok_model_token_to_id(m, b, blen);
        /* The merged token drops the right part's continuation prefix. */
        size_t skip = (plen && blen >= plen && memcmp(b, m->prefix, plen) == 0) ? plen : 0;
        joined.len = 0;
        if (!tok_buf_append(&joined, a, alen) || !tok_buf_append(&joined, b + skip, blen - skip)) {
            st = oom();
            break;
        }
        int32_t id = tok_model_token_to_id(m, joined.data, joined.len);
        if (ia < 0 || ib < 0 || id < 0)
            st = ogi_error(OGI_ERR_INVALID_MODEL,
                           "tokenizer.json: model.merges[%zu]: '%.*s' is not in the vocabulary", r,
                           (int)(ia < 0   ? alen
                                 : ib < 0 ? blen
                                          : joined.len),
                           ia < 0   ? a
                           : ib < 0 ? b
                                    : joined.data);
        else if (!tok_pair_map_put(&m->merges, ia, ib, (uint32_t)r, id))
            st = oom();
    }
    tok_buf_free(&joined);
    return st;
}

static ogi_status dup_string(const json_t *j, const char *key, char **out)
{
    const char *s;
    ogi_status st = tok_json_string(j, key, "BPE", false, &s);
    if (st != OGI_OK || !s || !*s)
        return st;
    *out = tok_strndup(s, strlen(s));
    return *out ? OGI_OK : oom();
}

static bool metaspace_is_prefix_only(const tok_model *m)
{
    static const char ms[] = "\xE2\x96\x81";
    if (tok_model_token_to_id(m, ms, 3) < 0)
        return false;
    for (size_t e = 0; e < m->vocab.n; e++) {
        const char *k = tok_map_key(&m->vocab, e);
        size_t n = m->vocab.entries[e].key_len;
        for (size_t i = 1; i + 3 <= n; i++) {
            if (memcmp(k + i, ms, 3) != 0)
                continue;
            if (i < 3 || memcmp(k + i - 3, ms, 3) != 0)
                return false;
        }
    }
    return true;
}

ogi_status tok_bpe_parse(const json_t *j, tok_model *m)
{
    json_t *vocab = json_object_get(j, "vocab");
    json_t *merges = json_object_get(j, "merges");
    if (!json_is_object(vocab))
        return ogi_error(OGI_ERR_INVALID_MODEL,
                         "tokenizer.json: BPE model.vocab must be an object");
    if (merges && !json_is_array(merges))
        return ogi_error(OGI_ERR_INVALID_MODEL,
                         "tokenizer.json: BPE model.merges must be an array");
    json_t *dropout = json_object_get(j, "dropout");
    if (dropout && !json_is_null(dropout) &&
        !(json_is_number(dropout) && json_number_value(dropout) == 0.0))
        return ogi_error(OGI_ERR_UNSUPPORTED, "tokenizer.json: BPE dropout is not supported");
    m->byte_fallback = tok_json_bool(j, "byte_fallback", false);
    m->fuse_unk = tok_json_bool(j, "fuse_unk", false);
    m->ignore_merges = tok_json_bool(j, "ignore_merges", false);
    ogi_status st = dup_string(j, "continuing_subword_prefix", &m->prefix);
    if (st == OGI_OK)
        st = dup_string(j, "end_of_word_suffix", &m->suffix);
    if (st != OGI_OK)
        return st;
    if (!tok_map_init(&m->vocab, json_object_size(vocab)))
        return oom();
    const char *key;
    json_t *v;
    json_object_foreach(vocab, key, v)
    {
        if (!json_is_integer(v))
            return ogi_error(OGI_ERR_INVALID_MODEL,
                             "tokenizer.json: model.vocab: bad id for token '%s'", key);
        st = tok_vocab_add(m, key, strlen(key), json_integer_value(v));
        if (st != OGI_OK)
            return st;
    }
    const char *unk;
    st = tok_json_string(j, "unk_token", "BPE", false, &unk);
    if (st != OGI_OK)
        return st;
    if (unk) {
        m->unk_id = tok_model_token_to_id(m, unk, strlen(unk));
        if (m->unk_id < 0)
            return ogi_error(OGI_ERR_INVALID_MODEL,
                             "tokenizer.json: BPE unk_token '%s' is not in the vocabulary", unk);
    }
    m->cut_before_metaspace = metaspace_is_prefix_only(m);
    for (uint32_t cp = 0; cp < 512; cp++) {
        char c[4];
        m->char_ids[cp] = tok_model_token_to_id(m, c, tok_utf8_encode(cp, c));
    }
    return merges ? merges_parse(merges, m) : (tok_pair_map_init(&m->merges, 0) ? OGI_OK : oom());
}

/* ---- encoding ----------------------------------------------------------- */

typedef struct bpe_symbol {
    int32_t id;
    int32_t prev, next;
    uint32_t len; /* bytes of the word; 0 = merged away */
} bpe_symbol;

typedef struct bpe_merge {
    uint32_t rank;
    uint32_t pos;
    int32_t id;
} bpe_merge;

typedef struct bpe_word {
    bpe_symbol *sym;
    size_t n, cap;
    bpe_merge *heap;
    size_t heap_n, heap_cap;
} bpe_word;

static bool merge_less(const bpe_merge *a, const bpe_merge *b)
{
    return a->rank != b->rank ? a->rank < b->rank : a->pos < b->pos;
}

static bool heap_push(bpe_word *w, bpe_merge m)
{
    if (w->heap_n == w->heap_cap) {
        size_t cap = w->heap_cap ? w->heap_cap * 2 : 32;
        bpe_merge *h = realloc(w->heap, cap * sizeof(*h));
        if (!h)
            return false;
        w->heap = h;
        w->heap_cap = cap;
    }
    size_t i = w->heap_n++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!merge_less(&m, &w->heap[parent]))
            break;
        w->heap[i] = w->heap[parent];
        i = parent;
    }
    w->heap[i] = m;
    return true;
}

static bpe_merge heap_pop(bpe_word *w)
{
    bpe_merge top = w->heap[0];
    bpe_merge last = w->heap[--w->heap_n];
    size_t i = 0, n = w->heap_n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && merge_less(&w->heap[c + 1], &w->heap[c]))
            c++;
        if (!merge_less(&w->heap[c], &last))
            break;
        w->heap[i] = w->heap[c];
        i = c;
    }
    if (n)
        w->heap[i] = last;
    return top;
}

static bool word_add(bpe_word *w, int32_t id, uint32_t len)
{
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 32;
        bpe_symbol *s = realloc(w->sym, cap * sizeof(*s));
        if (!s)
            return false;
        w->sym = s;
        w->cap = cap;
    }
    int32_t i = (int32_t)w->n++;
    w->sym[i] = (bpe_symbol){id, i - 1, -1, len};
    if (i > 0)
        w->sym[i - 1].next = i;
    return true;
}

/* The string looked up for one character: with the continuation prefix
 * unless it starts the word, the end-of-word suffix when it ends it. */
static const char *char_key(const tok_model *m, const char *c, size_t clen, bool first, bool last,
                            tok_buf *tmp, size_t *len)
{
    *len = clen;
    if ((first || !m->prefix) && (!last || !m->suffix))
        return c;
    tmp->len = 0;
    if ((!first && m->prefix && !tok_buf_append(tmp, m->prefix, strlen(m->prefix))) ||
        !tok_buf_append(tmp, c, clen) ||
        (last && m->suffix && !tok_buf_append(tmp, m->suffix, strlen(m->suffix))))
        return NULL;
    *len = tmp->len;
    return tmp->data;
}

/* The reference's merge_word: one symbol per character, byte fallback for
 * unknown characters, else (fused) unknown tokens. */
static ogi_status word_init(const tok_model *m, const char *s, size_t n, bpe_word *w)
{
    tok_buf tmp = {0};
    int32_t unk_id = -1;
    uint32_t unk_len = 0;
    bool ok = true;
    for (size_t i = 0, clen; i < n && ok; i += clen) {
        uint32_t cp = tok_utf8_decode(s + i, n - i, &clen);
        size_t key_len;
        const char *key = char_key(m, s + i, clen, i == 0, i + clen >= n, &tmp, &key_len);
        if (!key) {
            ok = false;
            break;
        }
        int32_t id =
            key == s + i && cp < 512 ? m->char_ids[cp] : tok_model_token_to_id(m, key, key_len);
        if (id >= 0) {
            if (unk_id >= 0)
                ok = word_add(w, unk_id, unk_len);
            unk_id = -1;
            ok = ok && word_add(w, id, (uint32_t)clen);
            continue;
        }
        if (m->byte_fallback) {
            /* The reference falls back on the bytes of the looked-up
             * string, prefix and suffix included. */
            bool all = true;
            for (size_t b = 0; b < key_len; b++)
                all &= m->byte_ids[(unsigned char)key[b]] >= 0;
            if (all) {
                if (unk_id >= 0)
                    ok = word_add(w, unk_id, unk_len);
                unk_id = -1;
                for (size_t b = 0; b < key_len && ok; b++)
                    ok = word_add(w, m->byte_ids[(unsigned char)key[b]], 1);
                continue;
            }
        }
        if (m->unk_id < 0)
            continue;
        if (unk_id >= 0 && m->fuse_unk) {
            unk_len += (uint32_t)clen;
            continue;
        }
        if (unk_id >= 0)
            ok = word_add(w, unk_id, unk_len);
        unk_id = m->unk_id;
        unk_len = (uint32_t)clen;
    }
    if (ok && unk_id >= 0)
        ok = word_add(w, unk_id, unk_len);
    tok_buf_free(&tmp);
    return ok ? OGI_OK : oom();
}

static bool queue_pair(const tok_model *m, bpe_word *w, int32_t pos)
{
    int32_t next = w->sym[pos].next;
    if (next < 0)
        return true;
    const tok_pair_entry *e = tok_pair_map_get(&m->merges, w->sym[pos].id, w->sym[next].id);
    if (!e)
        return true;
    return heap_push(w, (bpe_merge){e->rank, (uint32_t)pos, e->id});
}

static bool word_merge_all(const tok_model *m, bpe_word *w)
{
    for (size_t i = 0; i + 1 < w->n; i++)
        if (!queue_pair(m, w, (int32_t)i))
            return false;
    while (w->heap_n) {
        bpe_merge top = heap_pop(w);
        bpe_symbol *left = &w->sym[top.pos];
        if (left->len == 0 || left->next < 0)
            continue;
        bpe_symbol *right = &w->sym[left->next];
        const tok_pair_entry *e = tok_pair_map_get(&m->merges, left->id, right->id);
        if (!e || e->id != top.id)
            continue;
        left->id = top.id;
        left->len += right->len;
        left->next = right->next;
        right->len = 0;
        if (left->next >= 0)
            w->sym[left->next].prev = (int32_t)top.pos;
        if ((left->prev >= 0 && !queue_pair(m, w, left->prev)) ||
            !queue_pair(m, w, (int32_t)top.pos))
            return false;
    }
    return true;
}

ogi_status tok_bpe_tokenize(const tok_model *m, const char *s, size_t n, tok_tokens *out)
{
    if (m->ignore_merges) {
        int32_t id = tok_model_token_to_id(m, s, n);
        if (id >= 0)
            return tok_tokens_push(out, id, 0, (uint32_t)n) ? OGI_OK : oom();
    }
    bpe_word w = {0};
    ogi_status st = word_init(m, s, n, &w);
    if (st == OGI_OK && !word_merge_all(m, &w))
        st = oom();
    /* Offsets accumulate symbol lengths, as the reference's do. */
    uint32_t pos = 0;
    for (int32_t i = w.n ? 0 : -1; st == OGI_OK && i >= 0; i = w.sym[i].next) {
        uint32_t end = pos + w.sym[i].len > n ? (uint32_t)n : pos + w.sym[i].len;
        if (!tok_tokens_push(out, w.sym[i].id, pos, end))
            st = oom();
        pos = end;
    }
    free(w.sym);
    free(w.heap);
    return st;
}
