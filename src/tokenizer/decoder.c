/* Decoders: turn token strings back into text (ByteLevel, Metaspace,
 * ByteFallback, Fuse, Strip, Replace, WordPiece, BPEDecoder, CTC; Sequence).
 * Each works on the whole list of token strings, as the reference's
 * decode_chain does, so that per-position rules (first token) hold. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok.h"

typedef enum dec_type {
    DEC_SEQUENCE,
    DEC_BYTE_LEVEL,
    DEC_METASPACE,
    DEC_BYTE_FALLBACK,
    DEC_FUSE,
    DEC_STRIP,
    DEC_REPLACE,
    DEC_WORDPIECE,
    DEC_BPE,
    DEC_CTC,
} dec_type;

struct tok_decoder {
    dec_type type;
    tok_decoder **children;
    size_t n_children;
    tok_pattern pattern;
    char *content; /* Replace content; WordPiece prefix; BPE suffix; CTC pad */
    size_t content_len;
    char *word_delimiter; /* CTC */
    uint32_t ch;          /* Metaspace replacement; Strip content */
    bool prepend;         /* Metaspace: prepend_scheme != never */
    size_t start, stop;   /* Strip */
    bool cleanup;         /* WordPiece, CTC */
};

static ogi_status oom(void)
{
    return ogi_error(OGI_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
}

/* ---- string lists ------------------------------------------------------- */

bool tok_strs_push_owned(tok_strs *l, char *s, size_t n)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        char **v = realloc(l->s, cap * sizeof(*v));
        if (v)
            l->s = v;
        size_t *lens = realloc(l->len, cap * sizeof(*lens));
        if (lens)
            l->len = lens;
        if (!v || !lens) {
            free(s);
            return false;
        }
        l->cap = cap;
    }
    l->s[l->n] = s;
    l->len[l->n] = n;
    l->n++;
    return true;
}

bool tok_strs_push(tok_strs *l, const char *s, size_t n)
{
    char *p = tok_strndup(s, n);
    return p && tok_strs_push_owned(l, p, n);
}

void tok_strs_free(tok_strs *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->s[i]);
    free(l->s);
    free(l->len);
    memset(l, 0, sizeof(*l));
}

/* Replaces token i with the contents of b (b is reset). */
static bool strs_set(tok_strs *l, size_t i, tok_buf *b)
{
    size_t n;
    char *p = tok_buf_finish(b, &n);
    if (!p)
        return false;
    free(l->s[i]);
    l->s[i] = p;
    l->len[i] = n;
    return true;
}

/* ---- the decoders ------------------------------------------------------- */

static bool token_bytes(const char *s, size_t n, tok_buf *out)
{
    size_t mark = out->len;
    for (size_t i = 0, clen; i < n; i += clen) {
        int b = tok_cp_to_byte(tok_utf8_decode(s + i, n - i, &clen));
        if (b < 0) {
            /* A character outside the table: the token goes through as is. */
            out->len = mark;
            return tok_buf_append(out, s, n);
        }
        char c = (char)b;
        if (!tok_buf_append(out, &c, 1))
            return false;
    }
    return true;
}

static ogi_status dec_byte_level(tok_strs *l)
{
    tok_buf bytes = {0}, text = {0};
    bool ok = true;
    for (size_t i = 0; i < l->n && ok; i++)
        ok = token_bytes(l->s[i], l->len[i], &bytes);
    ok = ok && tok_utf8_append_lossy(&text, bytes.data ? bytes.data : "", bytes.len);
    tok_buf_free(&bytes);
    if (!ok) {
        tok_buf_free(&text);
        return oom();
    }
    tok_strs_free(l);
    size_t n;
    char *s = tok_buf_finish(&text, &n);
    return s && tok_strs_push_owned(l, s, n) ? OGI_OK : oom();
}

static ogi_status dec_metaspace(const tok_decoder *d, tok_strs *l)
{
    for (size_t i = 0; i < l->n; i++) {
        tok_buf b = {0};
        bool ok = tok_buf_reserve(&b, l->len[i]);
        for (size_t k = 0, clen; k < l->len[i] && ok; k += clen) {
            uint32_t cp = tok_utf8_decode(l->s[i] + k, l->len[i] - k, &clen);
            if (cp != d->ch)
                ok = tok_buf_append(&b, l->s[i] + k, clen);
            else if (i != 0 || !d->prepend)
                ok = tok_buf_append(&b, " ", 1);
        }
        if (!ok || !strs_set(l, i, &b)) {
            tok_buf_free(&b);
            return oom();
        }
    }
    return OGI_OK;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* The byte of a "<0xXX>" token, or -1. */
static int byte_token(const char *s, size_t n)
{
    if (n != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>')
        return -1;
    int hi = hex_value(s[3]), lo = hex_value(s[4]);
    return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

/* Runs of <0xXX> tokens become their UTF-8 text, or one U+FFFD per byte
 * when the run is not valid UTF-8. */
static bool flush_bytes(tok_strs *out, tok_buf *bytes)
{
    bool ok = true;
    if (bytes->len && tok_utf8_is_valid(bytes->data, bytes->len)) {
        ok = tok_strs_push(out, bytes->data, bytes->len);
    } else {
        for (size_t i = 0; i < bytes->len && ok; i++)
            ok = tok_strs_push(out, "\xEF\xBF\xBD", 3);
    }
    bytes->len = 0;
    return ok;
}

static ogi_status dec_byte_fallback(tok_strs *l)
{
    tok_strs out = {0};
    tok_buf bytes = {0};
    bool ok = true;
    for (size_t i = 0; i < l->n && ok; i++) {
        int b = byte_token(l->s[i], l->len[i]);
        if (b >= 0) {
            char c = (char)b;
            ok = tok_buf_append(&bytes, &c, 1);
            continue;
        }
        ok = flush_bytes(&out, &bytes) && tok_strs_push_owned(&out, l->s[i], l->len[i]);
        l->s[i] = NULL;
    }
    ok = ok && flush_bytes(&out, &bytes);
    tok_buf_free(&bytes);
    tok_strs_free(l);
    *l = out;
    return ok ? OGI_OK : oom();
}

static ogi_status dec_fuse(tok_strs *l)
{
    tok_buf b = {0};
    bool ok = tok_buf_reserve(&b, 0);
    for (size_t i = 0; i < l->n && ok; i++)
        ok = tok_buf_append(&b, l->s[i], l->len[i]);
    tok_strs_free(l);
    size_t n;
    char *s = ok ? tok_buf_finish(&b, &n) : NULL;
    if (!s) {
        tok_buf_free(&b);
        return oom();
    }
    return tok_strs_push_owned(l, s, n) ? OGI_OK : oom();
}

static ogi_status dec_strip(const tok_decoder *d, tok_strs *l)
{
    for (size_t i = 0; i < l->n; i++) {
        const char *s = l->s[i];
        size_t n = l->len[i], from = 0, to = n, clen;
        for (size_t k = 0; k < d->start && from < n; k++) {
            if (tok_utf8_decode(s + from, n - from, &clen) != d->ch)
                break;
            from += clen;
        }
        for (size_t k = 0; k < d->stop && to > from; k++) {
            size_t p = to - 1;
            while (p > from && ((unsigned char)s[p] & 0xC0) == 0x80)
                p--;
            if (tok_utf8_decode(s + p, to - p, &clen) != d->ch)
                break;
            to = p;
        }
        tok_buf b = {0};
        if (!tok_buf_append(&b, s + from, to - from) || !strs_set(l, i, &b)) {
            tok_buf_free(&b);
            return oom();
        }
    }
    return OGI_OK;
}

static ogi_status dec_replace(const tok_decoder *d, tok_strs *l)
{
    for (size_t i = 0; i < l->n; i++) {
        tok_matches m = {0};
        ogi_status st = tok_pattern_find(&d->pattern, l->s[i], l->len[i], &m);
        tok_buf b = {0};
        bool ok = st == OGI_OK && tok_buf_reserve(&b, l->len[i]);
        for (size_t k = 0; k < m.n && ok; k++) {
            if (m.v[k].is_match)
                ok = tok_buf_append(&b, d->content, d->content_len);
            else
                ok = tok_buf_append(&b, l->s[i] + m.v[k].start, m.v[k].end - m.v[k].start);
        }
        tok_matches_free(&m);
        if (st != OGI_OK) {
            tok_buf_free(&b);
            return st;
        }
        if (!ok || !strs_set(l, i, &b)) {
            tok_buf_free(&b);
            return oom();
        }
    }
    return OGI_OK;
}

/* The reference's cleanup(): undo the spaces a tokenizer put before
 * punctuation and English contractions. */
static bool cleanup_text(tok_buf *b)
{
    static const char *const from[] = {" .",  " ?",  " !",   " ,",   " ' ",    " n't",
                                       " 'm", " 's", " 've", " 're", " do not"};
    static const char *const to[] = {".",  "?",  "!",   ",",   "'",     "n't",
                                     "'m", "'s", "'ve", "'re", " don't"};
    /* The reference applies the replacements in this order, each over the
     * whole string. */
    static const int order[] = {0, 1, 2, 3, 4, 5, 6, 10, 7, 8, 9};
    for (size_t r = 0; r < sizeof(order) / sizeof(order[0]); r++) {
        const char *f = from[order[r]], *t = to[order[r]];
        size_t fl = strlen(f), tl = strlen(t);
        tok_buf out = {0};
        size_t i = 0;
        bool ok = tok_buf_reserve(&out, b->len);
        while (ok && i < b->len) {
            const char *hit = b->len - i >= fl ? memmem(b->data + i, b->len - i, f, fl) : NULL;
            if (!hit) {
                ok = tok_buf_append(&out, b->data + i, b->len - i);
                break;
            }
            size_t at = (size_t)(hit - b->data);
            ok = tok_buf_append(&out, b->data + i, at - i) && tok_buf_append(&out, t, tl);
            i = at + fl;
        }
        if (!ok) {
            tok_buf_free(&out);
            return false;
        }
        tok_buf_free(b);
        *b = out;
    }
    return true;
}

static ogi_status dec_wordpiece(const tok_decoder *d, tok_strs *l)
{
    for (size_t i = 0; i < l->n; i++) {
        tok_buf b = {0};
        const char *s = l->s[i];
        size_t n = l->len[i];
        bool ok = tok_buf_reserve(&b, n + 1);
        if (i != 0) {
            if (n >= d->content_len && memcmp(s, d->content, d->content_len) == 0)
                s += d->content_len, n -= d->content_len;
            else
                ok = tok_buf_append(&b, " ", 1);
        }
        ok = ok && tok_buf_append(&b, s, n);
        ok = ok && (!d->cleanup || cleanup_text(&b));
        if (!ok || !strs_set(l, i, &b)) {
            tok_buf_free(&b);
            return oom();
        }
    }
    return OGI_OK;
}

static ogi_status dec_bpe(const tok_decoder *d, tok_strs *l)
{
    for (size_t i = 0; i < l->n; i++) {
        tok_matches m = {0};
        tok_pattern p = {.literal = d->content, .literal_len = d->content_len};
        ogi_status st = tok_pattern_find(&p, l->s[i], l->len[i], &m);
        tok_buf b = {0};
        bool ok = st == OGI_OK && tok_buf_reserve(&b, l->len[i]);
        const char *rep = i + 1 == l->n ? "" : " ";
        for (size_t k = 0; k < m.n && ok; k++)
            ok = m.v[k].is_match
                     ? tok_buf_append(&b, rep, strlen(rep))
                     : tok_buf_append(&b, l->s[i] + m.v[k].start, m.v[k].end - m.v[k].start);
        tok_matches_free(&m);
        if (st != OGI_OK || !ok || !strs_set(l, i, &b)) {
            tok_buf_free(&b);
            return st != OGI_OK ? st : oom();
        }
    }
    return OGI_OK;
}

static ogi_status dec_ctc(const tok_decoder *d, tok_strs *l)
{
    tok_strs out = {0};
    bool ok = true;
    for (size_t i = 0; i < l->n && ok; i++) {
        if (i > 0 && l->len[i] == l->len[i - 1] && memcmp(l->s[i], l->s[i - 1], l->len[i]) == 0)
            continue;
        if (l->len[i] == d->content_len && memcmp(l->s[i], d->content, d->content_len) == 0)
            continue;
        tok_buf b = {0};
        size_t dl = strlen(d->word_delimiter);
        if (l->len[i] == dl && memcmp(l->s[i], d->word_delimiter, dl) == 0)
            ok = tok_buf_append(&b, " ", 1);
        else
            ok = tok_buf_append(&b, l->s[i], l->len[i]);
        ok = ok && (!d->cleanup || cleanup_text(&b));
        size_t n;
        char *s = ok ? tok_buf_finish(&b, &n) : NULL;
        ok = s && tok_strs_push_owned(&out, s, n);
        if (!ok)
            tok_buf_free(&b);
    }
    tok_strs_free(l);
    *l = out;
    return ok ? OGI_OK : oom();
}

static ogi_status decode_chain(const tok_decoder *d, tok_strs *l)
{
    switch (d->type) {
    case DEC_SEQUENCE:
        for (size_t i = 0; i < d->n_children; i++) {
            ogi_status st = decode_chain(d->children[i], l);
            if (st != OGI_OK)
                return st;
        }
        return OGI_OK;
    case DEC_BYTE_LEVEL:
        return dec_byte_level(l);
    case DEC_METASPACE:
        return dec_metaspace(d, l);
    case DEC_BYTE_FALLBACK:
        return dec_byte_fallback(l);
    case DEC_FUSE:
        return dec_fuse(l);
    case DEC_STRIP:
        return dec_strip(d, l);
    case DEC_REPLACE:
        return dec_replace(d, l);
    case DEC_WORDPIECE:
        return dec_wordpiece(d, l);
    case DEC_BPE:
        return dec_bpe(d, l);
    case DEC_CTC:
        return dec_ctc(d, l);
    }
    return OGI_OK;
}

ogi_status tok_decoder_decode(const tok_decoder *d, tok_strs *tokens, tok_buf *out)
{
    if (!d) {
        /* No decoder: the reference joins the tokens with spaces. */
        for (size_t i = 0; i < tokens->n; i++)
            if ((i && !tok_buf_append(out, " ", 1)) ||
                !tok_buf_append(out, tokens->s[i], tokens->len[i]))
                return oom();
        return tok_buf_reserve(out, 0) ? OGI_OK : oom();
    }
    ogi_status st = decode_chain(d, tokens);
    for (size_t i = 0; st == OGI_OK && i < tokens->n; i++)
        if (!tok_buf_append(out, tokens->s[i], tokens->len[i]))
            st = oom();
    if (st == OGI_OK && !tok_buf_reserve(out, 0))
        st = oom();
    return st;
}

/* ---- parsing ------------------------------------------------------------ */

void tok_decoder_free(tok_decoder *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->n_children; i++)
        tok_decoder_free(d->children[i]);
    free(d->children);
    tok_pattern_free(&d->pattern);
    free(d->content);
    free(d->word_delimiter);
    free(d);
}

static ogi_status dup_field(const json_t *j, const char *key, const char *dflt, char **out,
                            size_t *len)
{
    json_t *v = json_object_get(j, key);
    const char *s = json_is_string(v) ? json_string_value(v) : dflt;
    size_t n = json_is_string(v) ? json_string_length(v) : strlen(dflt);
    if (v && !json_is_null(v) && !json_is_string(v))
        return ogi_error(OGI_ERR_INVALID_MODEL, "tokenizer.json: decoder: '%s' must be a string",
                         key);
    *out = tok_strndup(s, n);
    if (len)
        *len = n;
    return *out ? OGI_OK : oom();
}

static ogi_status parse_char(const json_t *j, const char *key, uint32_t *out)
{
    json_t *v = json_object_get(j, key);
    const char *s = json_string_value(v);
    size_t n = json_string_length(v), clen;
    if (!s || n == 0 || tok_utf8_valid_len((const unsigned char *)s, n) != n)
        return ogi_error(OGI_ERR_INVALID_MODEL,
                         "tokenizer.json: decoder: '%s' must be a single character", key);
    *out = tok_utf8_decode(s, n, &clen);
    return OGI_OK;
}

static ogi_status parse_sequence(const json_t *j, tok_decoder *d)
{
    json_t *arr = json_object_get(j, "decoders");
    if (!json_is_array(arr))
        return ogi_error(OGI_ERR_INVALID_MODEL,
                         "tokenizer.json: decoder Sequence: 'decoders' must be an array");
    d->children = calloc(json_array_size(arr) + 1, sizeof(*d->children));
    if (!d->children)
        return oom();
    for (size_t i = 0; i < json_array_size(arr); i++) {
        ogi_status st = tok_decoder_parse(json_array_get(arr, i), &d->children[i]);
        if (st != OGI_OK)
            return st;
        if (!d->children[i])
            return ogi_error(OGI_ERR_INVALID_MODEL, "tokenizer.json: decoder Sequence: null item");
        d->n_children++;
    }
    return OGI_OK;
}

static ogi_status parse_metaspace(const json_t *j, tok_decoder *d)
{
    ogi_status st = parse_char(j, "replacement", &d->ch);
    const char *scheme = json_string_value(json_object_get(j, "prepend_scheme"));
    d->prepend = scheme ? strcmp(scheme, "never") != 0 : tok_json_bool(j, "add_prefix_space", true);
    return st;
}

static ogi_status parse_strip(const json_t *j, tok_decoder *d)
{
    json_t *a = json_object_get(j, "start"), *b = json_object_get(j, "stop");
    if (!json_is_integer(a) || !json_is_integer(b) || json_integer_value(a) < 0 ||
        json_integer_value(b) < 0)
        return ogi_error(OGI_ERR_INVALID_MODEL,
                         "tokenizer.json: decoder Strip: 'start' and 'stop' must be counts");
    d->start = (size_t)json_integer_value(a);
    d->stop = (size_t)json_integer_value(b);
    return parse_char(j, "content", &d->ch);
}

static ogi_status parse_by_type(const json_t *j, const char *type, tok_decoder *d)
{
    if (strcmp(type, "Sequence") == 0)
        return d->type = DEC_SEQUENCE, parse_sequence(j, d);
    if (strcmp(type, "ByteLevel") == 0)
        return d->type = DEC_BYTE_LEVEL, OGI_OK;
    if (strcmp(type, "Metaspace") == 0)
        return d->type = DEC_METASPACE, parse_metaspace(j, d);
    if (strcmp(type, "ByteFallback") == 0)
        return d->type = DEC_BYTE_FALLBACK, OGI_OK;
    if (strcmp(type, "Fuse") == 0)
        return d->type = DEC_FUSE, OGI_OK;
    if (strcmp(type, "Strip") == 0)
        return d->type = DEC_STRIP, parse_strip(j, d);
    if (strcmp(type, "Replace") == 0) {
        d->type = DEC_REPLACE;
        ogi_status st =
            tok_pattern_parse(json_object_get(j, "pattern"), "decoder Replace", &d->pattern);
        return st != OGI_OK ? st : dup_field(j, "content", "", &d->content, &d->content_len);
    }
    if (strcmp(type, "WordPiece") == 0) {
        d->type = DEC_WORDPIECE;
        d->cleanup = tok_json_bool(j, "cleanup", true);
        return dup_field(j, "prefix", "##", &d->content, &d->content_len);
    }
    if (strcmp(type, "BPEDecoder") == 0) {
        d->type = DEC_BPE;
        return dup_field(j, "suffix", "</w>", &d->content, &d->content_len);
    }
    if (strcmp(type, "CTC") == 0) {
        d->type = DEC_CTC;
        d->cleanup = tok_json_bool(j, "cleanup", true);
        ogi_status st = dup_field(j, "pad_token", "<pad>", &d->content, &d->content_len);
        return st != OGI_OK ? st
                            : dup_field(j, "word_delimiter_token", "|", &d->word_delimiter, NULL);
    }
    return ogi_error(OGI_ERR_UNSUPPORTED, "tokenizer.json: decoder type '%s' is not supported",
                     type);
}

ogi_status tok_decoder_parse(const json_t *j, tok_decoder **out)
{
    *out = NULL;
    if (!j || json_is_null(j))
        return OGI_OK;
    if (!json_is_object(j))
        return ogi_error(OGI_ERR_INVALID_MODEL, "tokenizer.json: decoder must be an object");
    const char *type;
    ogi_status st = tok_json_string(j, "type", "decoder", true, &type);
    if (st != OGI_OK)
        return st;
    tok_decoder *d = calloc(1, sizeof(*d));
    if (!d)
        return oom();
    st = parse_by_type(j, type, d);
    if (st != OGI_OK) {
        tok_decoder_free(d);
        return st;
    }
    *out = d;
    return OGI_OK;
}
