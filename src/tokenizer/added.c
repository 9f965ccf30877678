/* Added (and special) tokens: found in the text before the model runs, the
 * non-normalized ones in the raw text and the normalized ones after the
 * normalizer, honouring lstrip/rstrip/single_word as the reference does. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok.h"

static ogi_status oom(void)
{
    return ogi_error(OGI_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
}

static int cmp_len_desc(const void *a, const void *b, void *arg)
{
    const size_t *len = arg;
    size_t la = len[*(const uint32_t *)a], lb = len[*(const uint32_t *)b];
    if (la != lb)
        return la > lb ? -1 : 1;
    return *(const uint32_t *)a < *(const uint32_t *)b ? -1 : 1;
}

static bool trie_add(tok_trie *t, char *pat, size_t len, uint32_t token)
{
    char **pats = realloc(t->pats, (t->n + 1) * sizeof(*pats));
    if (pats)
        t->pats = pats;
    size_t *lens = realloc(t->pat_len, (t->n + 1) * sizeof(*lens));
    if (lens)
        t->pat_len = lens;
    uint32_t *toks = realloc(t->token, (t->n + 1) * sizeof(*toks));
    if (toks)
        t->token = toks;
    if (!pats || !lens || !toks) {
        free(pat);
        return false;
    }
    t->pats[t->n] = pat;
    t->pat_len[t->n] = len;
    t->token[t->n] = token;
    t->n++;
    return true;
}

static bool trie_index(tok_trie *t)
{
    for (size_t i = 0; i < t->n; i++)
        t->n_first[(unsigned char)t->pats[i][0]]++;
    for (int b = 0; b < 256; b++) {
        if (!t->n_first[b])
            continue;
        t->first[b] = malloc(t->n_first[b] * sizeof(uint32_t));
        if (!t->first[b])
            return false;
        t->n_first[b] = 0;
    }
    for (size_t i = 0; i < t->n; i++) {
        unsigned char b = (unsigned char)t->pats[i][0];
        t->first[b][t->n_first[b]++] = (uint32_t)i;
    }
    for (int b = 0; b < 256; b++)
        if (t->n_first[b] > 1)
            qsort_r(t->first[b], t->n_first[b], sizeof(uint32_t), cmp_len_desc, t->pat_len);
    return true;
}

static void trie_free(tok_trie *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->pats[i]);
    for (int b = 0; b < 256; b++)
        free(t->first[b]);
    free(t->pats);
    free(t->pat_len);
    free(t->token);
    memset(t, 0, sizeof(*t));
}

/* Longest pattern at s[at..n), or -1. */
static long trie_match_at(const tok_trie *t, const char *s, size_t n, size_t at)
{
    unsigned char b = (unsigned char)s[at];
    for (uint32_t k = 0; k < t->n_first[b]; k++) {
        uint32_t i = t->first[b][k];
        if (t->pat_len[i] <= n - at && memcmp(s + at, t->pats[i], t->pat_len[i]) == 0)
            return i;
    }
    return -1;
}

/* ---- parsing ------------------------------------------------------------ */

static ogi_status parse_token(const json_t *e, size_t i, tok_added_token *t)
{
    json_t *id = json_object_get(e, "id"), *content = json_object_get(e, "content");
    if (!json_is_integer(id) || !json_is_string(content) || json_integer_value(id) < 0 ||
        json_integer_value(id) >= (1 << 26))
        return ogi_error(OGI_ERR_INVALID_MODEL,
                         "tokenizer.json: added_tokens[%zu] needs an 'id' and a 'content'", i);
    t->len = json_string_length(content);
    t->content = tok_strndup(json_string_value(content), t->len);
    if (!t->content)
        return oom();
    t->id = (int32_t)json_integer_value(id);
    t->special = tok_json_bool(e, "special", false);
    t->single_word = tok_json_bool(e, "single_word", false);
    t->lstrip = tok_json_bool(e, "lstrip", false);
    t->rstrip = tok_json_bool(e, "rstrip", false);
    t->normalized = tok_json_bool(e, "normalized", !t->special);
    return OGI_OK;
}

static ogi_status index_ids(tok_added_vocab *av)
{
    for (size_t i = 0; i < av->n; i++)
        if ((size_t)av->tokens[i].id >= av->n_by_id)
            av->n_by_id = (size_t)av->tokens[i].id + 1;
    av->by_id = malloc((av->n_by_id ? av->n_by_id : 1) * sizeof(long));
    if (!av->by_id || !tok_map_init(&av->by_content, av->n))
        return oom();
    for (size_t i = 0; i < av->n_by_id; i++)
        av->by_id[i] = -1;
    for (size_t i = 0; i < av->n; i++) {
        av->by_id[av->tokens[i].id] = (long)i;
        if (tok_map_put(&av->by_content, av->tokens[i].content, av->tokens[i].len, (int32_t)i) < 0)
            return oom();
    }
    return OGI_OK;
}

/* Normalized tokens are matched in normalized text, so their patterns are
 * their normalized contents. */
static ogi_status build_tries(tok_added_vocab *av, const tok_normalizer *norm)
{
    for (size_t i = 0; i < av->n; i++) {
        tok_added_token *t = &av->tokens[i];
        if (t->len == 0)
            continue;
        tok_nstr ns;
        if (!tok_nstr_init(&ns, t->content, t->len, 0))
            return oom();
        ogi_status st = t->normalized ? tok_normalizer_apply(norm, &ns) : OGI_OK;
        if (st != OGI_OK) {
            tok_nstr_free(&ns);
            return st;
        }
        tok_trie *trie = t->normalized ? &av->normalized : &av->raw;
        size_t len = ns.len;
        char *pat = ns.s;
        ns.s = NULL;
        tok_nstr_free(&ns);
        if (len == 0) {
            free(pat);
            continue;
        }
        if (!trie_add(trie, pat, len, (uint32_t)i))
            return oom();
    }
    return trie_index(&av->raw) && trie_index(&av->normalized) ? OGI_OK : oom();
}

ogi_status tok_added_parse(const json_t *arr, const tok_normalizer *norm, tok_added_vocab *av)
{
    memset(av, 0, sizeof(*av));
    if (arr && !json_is_array(arr))
        return ogi_error(OGI_ERR_INVALID_MODEL, "tokenizer.json: 'added_tokens' must be an array");
    size_t n = json_array_size(arr);
    av->tokens = calloc(n ? n : 1, sizeof(*av->tokens));
    if (!av->tokens)
        return oom();
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(arr, i);
        if (!json_is_object(e))
            return ogi_error(OGI_ERR_INVALID_MODEL,
                             "tokenizer.json: added_tokens[%zu] must be an object", i);
        ogi_status st = parse_token(e, i, &av->tokens[av->n]);
        if (st != OGI_OK)
            return st;
        av->n++;
    }
    ogi_status st = index_ids(av);
    return st != OGI_OK ? st : build_tries(av, norm);
}

void tok_added_free(tok_added_vocab *av)
{
    for (size_t i = 0; i < av->n; i++)
        free(av->tokens[i].content);
    free(av->tokens);
    free(av->by_id);
    tok_map_free(&av->by_content);
    trie_free(&av->raw);
    trie_free(&av->normalized);
    memset(av, 0, sizeof(*av));
}

const tok_added_token *tok_added_by_id(const tok_added_vocab *av, int32_t id)
{
    if (id < 0 || (size_t)id >= av->n_by_id || av->by_id[id] < 0)
        return NULL;
    return &av->tokens[av->by_id[id]];
}

/* ---- splitting ---------------------------------------------------------- */

static bool is_word_char(uint32_t cp)
{
    return cp == '_' || tok_is_alphanumeric(cp);
}

static uint32_t last_char(const char *s, size_t end)
{
    if (end == 0)
        return 0;
    size_t i = end - 1;
    while (i > 0 && ((unsigned char)s[i] & 0xC0) == 0x80)
        i--;
    size_t clen;
    return tok_utf8_decode(s + i, end - i, &clen);
}

static size_t lstrip_from(const char *s, size_t start)
{
    while (start > 0) {
        size_t i = start - 1;
        while (i > 0 && ((unsigned char)s[i] & 0xC0) == 0x80)
            i--;
        size_t clen;
        if (!tok_is_whitespace(tok_utf8_decode(s + i, start - i, &clen)))
            break;
        start = i;
    }
    return start;
}

static size_t rstrip_to(const char *s, size_t n, size_t stop)
{
    while (stop < n) {
        size_t clen;
        if (!tok_is_whitespace(tok_utf8_decode(s + stop, n - stop, &clen)))
            break;
        stop += clen;
    }
    return stop;
}

static bool push_slice(const tok_nstr *ns, size_t start, size_t end, int32_t id, tok_pieces *out)
{
    if (end <= start)
        return true;
    tok_nstr piece;
    return tok_nstr_slice(ns, start, end, &piece) && tok_pieces_push(out, &piece, id);
}

bool tok_added_split(const tok_added_vocab *av, const tok_trie *t, tok_nstr *ns, tok_pieces *out)
{
    const char *s = ns->s;
    size_t n = ns->len, done = 0;
    if (t->n == 0)
        return push_slice(ns, 0, n, -1, out);
    for (size_t at = 0; at < n;) {
        long m = t->n_first[(unsigned char)s[at]] ? trie_match_at(t, s, n, at) : -1;
        if (m < 0) {
            at++;
            continue;
        }
        const tok_added_token *tok = &av->tokens[t->token[m]];
        size_t start = at, stop = at + t->pat_len[m];
        /* Like the reference's non-overlapping match iterator, a rejected
         * match still consumes its text. */
        at = stop;
        if (tok->single_word) {
            size_t clen;
            bool left_ok = start == 0 || !is_word_char(last_char(s, start));
            bool right_ok = stop == n || !is_word_char(tok_utf8_decode(s + stop, n - stop, &clen));
            if (!left_ok || !right_ok)
                continue;
        }
        if (tok->lstrip) {
            size_t ls = lstrip_from(s, start);
            start = ls > done ? ls : done;
        }
        if (tok->rstrip)
            stop = rstrip_to(s, n, stop);
        if (!push_slice(ns, done, start, -1, out) || !push_slice(ns, start, stop, tok->id, out))
            return false;
        done = stop;
        if (at < stop)
            at = stop;
    }
    return push_slice(ns, done, n, -1, out);
}
