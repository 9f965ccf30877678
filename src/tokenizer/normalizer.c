/* Normalizers: Unicode normal forms (utf8proc), case, strip, replace,
 * prepend/append, BERT's cleaning, byte-level mapping; Sequence of them. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "tokenizer/tok.h"

typedef enum norm_type {
    NORM_SEQUENCE,
    NORM_NFC,
    NORM_NFD,
    NORM_NFKC,
    NORM_NFKD,
    NORM_LOWERCASE,
    NORM_STRIP,
    NORM_STRIP_ACCENTS,
    NORM_REPLACE,
    NORM_PREPEND,
    NORM_APPEND,
    NORM_BERT,
    NORM_BYTE_LEVEL,
} norm_type;

struct tok_normalizer {
    norm_type type;
    tok_normalizer **children;
    size_t n_children;
    tok_pattern pattern;
    char *content; /* Replace content, Prepend/Append text */
    size_t content_len;
    bool left, right;                    /* Strip */
    bool clean_text, chinese, lowercase; /* BertNormalizer */
    int strip_accents;                   /* -1: follow lowercase */
};

/* ---- Unicode normal forms ----------------------------------------------- */

static utf8proc_option_t form_options(int form)
{
    utf8proc_option_t o = UTF8PROC_STABLE;
    switch (form) {
    case NORM_NFC:
        return o | UTF8PROC_COMPOSE;
    case NORM_NFD:
        return o | UTF8PROC_DECOMPOSE;
    case NORM_NFKC:
        return o | UTF8PROC_COMPOSE | UTF8PROC_COMPAT;
    default:
        return o | UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT;
    }
}

/* Normalizes s[0..n) to code points in *buf (grown as needed); returns the
 * count or -1. */
static long normalize_cps(const char *s, size_t n, utf8proc_option_t opt, utf8proc_int32_t **buf,
                          size_t *cap)
{
    for (;;) {
        utf8proc_ssize_t got = utf8proc_decompose((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n,
                                                  *buf, (utf8proc_ssize_t)*cap, opt);
        if (got < 0)
            return -1;
        if ((size_t)got <= *cap) {
            utf8proc_ssize_t m = utf8proc_normalize_utf32(*buf, got, opt);
            return m < 0 ? -1 : (long)m;
        }
        utf8proc_int32_t *p = realloc(*buf, (size_t)got * sizeof(utf8proc_int32_t));
        if (!p)
            return -1;
        *buf = p;
        *cap = (size_t)got;
    }
}

/* Hangul vowels and trailing consonants compose with what precedes them
 * although they are starters; a segment must not end before them. */
static bool joins_previous(uint32_t cp)
{
    if (cp >= 0x1161 && cp <= 0x11C2)
        return true;
    return utf8proc_get_property((utf8proc_int32_t)cp)->combining_class != 0;
}

/* Emits one segment's normalized code points, aligned as the reference's
 * normalization iterators do: extra output characters count as inserted,
 * missing ones as removed after the last. */
static void emit_segment(tok_xform *x, const utf8proc_int32_t *cps, long k, size_t m)
{
    for (long i = 0; i < k; i++) {
        if ((size_t)i < m)
            tok_xform_replace(x, (uint32_t)cps[i]);
        else
            tok_xform_insert(x, (uint32_t)cps[i]);
    }
    if ((size_t)k < m)
        tok_xform_skip(x, m - (size_t)k);
}

static size_t segment_end(const char *s, size_t n, size_t i, size_t *chars)
{
    size_t clen;
    tok_utf8_decode(s + i, n - i, &clen);
    size_t j = i + clen;
    *chars = 1;
    while (j < n) {
        uint32_t cp = tok_utf8_decode(s + j, n - j, &clen);
        if (cp < 0x80 || !joins_previous(cp))
            break;
        j += clen;
        (*chars)++;
    }
    return j;
}

/* Segment by segment; false when the pieces do not add up to the whole
 * (a composition across segments), so the caller can fall back. */
static bool normalize_segments(tok_nstr *ns, utf8proc_option_t opt, const utf8proc_int32_t *whole,
                               long whole_n, tok_xform *x)
{
    size_t cap = 64;
    utf8proc_int32_t *buf = malloc(cap * sizeof(*buf));
    long at = 0;
    bool ok = buf != NULL;
    for (size_t i = 0; i < ns->len && ok;) {
        size_t m;
        size_t j = segment_end(ns->s, ns->len, i, &m);
        if (j - i == 1 && (unsigned char)ns->s[i] < 0x80) {
            ok = at < whole_n && whole[at] == (unsigned char)ns->s[i];
            tok_xform_copy(x, 1);
            at++;
            i = j;
            continue;
        }
        long k = normalize_cps(ns->s + i, j - i, opt, &buf, &cap);
        if (k < 0 || at + k > whole_n ||
            memcmp(whole + at, buf, (size_t)k * sizeof(utf8proc_int32_t)) != 0) {
            ok = false;
            break;
        }
        emit_segment(x, buf, k, m);
        at += k;
        i = j;
    }
    free(buf);
    return ok && at == whole_n;
}

/* True when s is already in the normal form: ASCII always is, and below
 * U+0300 (where combining marks start) nothing composes, so NFC keeps it. */
static bool quick_stable(const tok_nstr *ns, int form)
{
    uint32_t limit = form == NORM_NFC ? 0x300 : 0x80;
    for (size_t i = 0, clen; i < ns->len; i += clen) {
        if ((unsigned char)ns->s[i] < 0x80) {
            clen = 1;
            continue;
        }
        if (tok_utf8_decode(ns->s + i, ns->len - i, &clen) >= limit)
            return false;
    }
    return true;
}

static bool same_cps(const tok_nstr *ns, const utf8proc_int32_t *cps, long k)
{
    long at = 0;
    for (size_t i = 0, clen; i < ns->len; i += clen, at++)
        if (at >= k || (utf8proc_int32_t)tok_utf8_decode(ns->s + i, ns->len - i, &clen) != cps[at])
            return false;
    return at == k;
}

ogi_status tok_unicode_normalize(tok_nstr *ns, int form)
{
    if (quick_stable(ns, form))
        return OGI_OK;
    utf8proc_option_t opt = form_options(form);
    utf8proc_int32_t *whole = NULL;
    size_t cap = 0;
    long k = normalize_cps(ns->s, ns->len, opt, &whole, &cap);
    if (k < 0) {
        free(whole);
        return ogi_error(OGI_ERR_RUNTIME, "tokenizer: Unicode normalization failed");
    }
    if (same_cps(ns, whole, k)) {
        free(whole);
        return OGI_OK;
    }
    tok_xform x;
    tok_xform_begin(&x, ns);
    if (!normalize_segments(ns, opt, whole, k, &x)) {
        tok_buf_free(&x.out);
        free(x.align);
        tok_xform_begin(&x, ns);
        emit_segment(&x, whole, k, tok_utf8_char_count(ns->s, ns->len));
    }
    free(whole);
    return tok_xform_end(&x, ns) ? OGI_OK
                                 : ogi_error(OGI_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
}

/* ---- simple character maps --------------------------------------------- */

static ogi_status xform_done(tok_xform *x, tok_nstr *ns)
{
    return tok_xform_end(x, ns) ? OGI_OK
                                : ogi_error(OGI_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
}

ogi_status tok_lowercase(tok_nstr *ns)
{
    tok_xform x;
    tok_xform_begin(&x, ns);
    for (size_t i = 0; i < ns->len;) {
        size_t clen;
        uint32_t cp = tok_utf8_decode(ns->s + i, ns->len - i, &clen);
        if (cp == 0x130) {
            /* The one character whose lowercase is two characters. */
            tok_xform_replace(&x, 'i');
            tok_xform_insert(&x, 0x307);
        } else if (cp < 0x80) {
            tok_xform_replace(&x, (cp >= 'A' && cp <= 'Z') ? cp + 32 : cp);
        } else {
            tok_xform_replace(&x, (uint32_t)utf8proc_tolower((utf8proc_int32_t)cp));
        }
        i += clen;
    }
    return xform_done(&x, ns);
}

static ogi_status norm_strip(tok_nstr *ns, bool left, bool right)
{
    size_t lead = 0, trail = 0, count = 0, i = 0, clen;
    bool in_lead = left;
    size_t trail_run = 0;
    for (i = 0; i < ns->len; i += clen) {
        uint32_t cp = tok_utf8_decode(ns->s + i, ns->len - i, &clen);
        bool ws = tok_is_whitespace(cp);
        if (in_lead && ws)
            lead++;
        else
            in_lead = false;
        trail_run = ws ? trail_run + 1 : 0;
        count++;
    }
    if (right)
        trail = trail_run;
    if (lead == 0 && trail == 0)
        return OGI_OK;
    tok_xform x;
    tok_xform_begin(&x, ns);
    tok_xform_skip(&x, lead);
    size_t idx = lead;
    for (i = x.pos; i < ns->len && idx + trail < count; idx++) {
        tok_utf8_decode(ns->s + i, ns->len - i, &clen);
        tok_xform_copy(&x, clen);
        i += clen;
    }
    return xform_done(&x, ns);
}

static ogi_status norm_strip_accents(tok_nstr *ns)
{
    tok_xform x;
    tok_xform_begin(&x, ns);
    for (size_t i = 0, clen; i < ns->len; i += clen) {
        uint32_t cp = tok_utf8_decode(ns->s + i, ns->len - i, &clen);
        if (tok_is_mark_nonspacing(cp))
            tok_xform_skip(&x, 1);
        else
            tok_xform_copy(&x, clen);
    }
    return xform_done(&x, ns);
}

static void insert_utf8(tok_xform *x, const char *s, size_t n)
{
    for (size_t i = 0, clen; i < n; i += clen)
        tok_xform_insert(x, tok_utf8_decode(s + i, n - i, &clen));
}

ogi_status tok_nstr_replace(tok_nstr *ns, const tok_pattern *p, const char *content, size_t n)
{
    tok_matches m = {0};
    ogi_status st = tok_pattern_find(p, ns->s, ns->len, &m);
    if (st != OGI_OK) {
        tok_matches_free(&m);
        return st;
    }
    tok_xform x;
    tok_xform_begin(&x, ns);
    for (size_t i = 0; i < m.n; i++) {
        if (!m.v[i].is_match) {
            tok_xform_copy(&x, m.v[i].end - m.v[i].start);
            continue;
        }
        tok_xform_skip(&x, tok_utf8_char_count(ns->s + m.v[i].start, m.v[i].end - m.v[i].start));
        insert_utf8(&x, content, n);
    }
    tok_matches_free(&m);
    return xform_done(&x, ns);
}

ogi_status tok_nstr_prepend(tok_nstr *ns, const char *s, size_t n)
{
    if (ns->len == 0 || n == 0)
        return OGI_OK;
    tok_xform x;
    tok_xform_begin(&x, ns);
    size_t clen, first_len;
    uint32_t first = tok_utf8_decode(ns->s, ns->len, &first_len);
    tok_xform_replace(&x, tok_utf8_decode(s, n, &clen));
    insert_utf8(&x, s + clen, n - clen);
    tok_xform_insert(&x, first);
    tok_xform_copy(&x, ns->len - first_len);
    return xform_done(&x, ns);
}

static ogi_status norm_append(tok_nstr *ns, const char *s, size_t n)
{
    if (ns->len == 0)
        return OGI_OK;
    tok_xform x;
    tok_xform_begin(&x, ns);
    tok_xform_copy(&x, ns->len);
    insert_utf8(&x, s, n);
    return xform_done(&x, ns);
}

static bool bert_is_control(uint32_t cp)
{
    if (cp == '\t' || cp == '\n' || cp == '\r')
        return false;
    utf8proc_category_t c = utf8proc_category((utf8proc_int32_t)cp);
    return c == UTF8PROC_CATEGORY_CC || c == UTF8PROC_CATEGORY_CF || c == UTF8PROC_CATEGORY_CN ||
           c == UTF8PROC_CATEGORY_CO;
}

static bool is_chinese_char(uint32_t c)
{
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
           (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
           (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

static ogi_status bert_clean(tok_nstr *ns)
{
    tok_xform x;
    tok_xform_begin(&x, ns);
    for (size_t i = 0, clen; i < ns->len; i += clen) {
        uint32_t cp = tok_utf8_decode(ns->s + i, ns->len - i, &clen);
        if (cp == 0 || cp == 0xFFFD || bert_is_control(cp))
            tok_xform_skip(&x, 1);
        else if (cp == '\t' || cp == '\n' || cp == '\r' || tok_is_whitespace(cp))
            tok_xform_replace(&x, ' ');
        else
            tok_xform_copy(&x, clen);
    }
    return xform_done(&x, ns);
}

static ogi_status bert_chinese(tok_nstr *ns)
{
    tok_xform x;
    tok_xform_begin(&x, ns);
    for (size_t i = 0, clen; i < ns->len; i += clen) {
        uint32_t cp = tok_utf8_decode(ns->s + i, ns->len - i, &clen);
        if (!is_chinese_char(cp)) {
            tok_xform_copy(&x, clen);
            continue;
        }
        tok_xform_replace(&x, ' ');
        tok_xform_insert(&x, cp);
        tok_xform_insert(&x, ' ');
    }
    return xform_done(&x, ns);
}

static ogi_status norm_bert(const tok_normalizer *n, tok_nstr *ns)
{
    ogi_status st = OGI_OK;
    if (n->clean_text)
        st = bert_clean(ns);
    if (st == OGI_OK && n->chinese)
        st = bert_chinese(ns);
    bool strip = n->strip_accents < 0 ? n->lowercase : n->strip_accents != 0;
    if (st == OGI_OK && strip) {
        st = tok_unicode_normalize(ns, NORM_NFD);
        if (st == OGI_OK)
            st = norm_strip_accents(ns);
    }
    if (st == OGI_OK && n->lowercase)
        st = tok_lowercase(ns);
    return st;
}

static char enc[256][2];
static uint8_t enc_len[256];
static pthread_once_t byte_table_once = PTHREAD_ONCE_INIT;

static void byte_table_build(void)
{
    for (int b = 0; b < 256; b++) {
        char tmp[4];
        enc_len[b] = (uint8_t)tok_utf8_encode(tok_byte_to_cp((uint8_t)b), tmp);
        memcpy(enc[b], tmp, 2);
    }
}

/* Every byte becomes its table character; all characters made from one
 * source character share its alignment (what transform() would give for
 * one replaced and n-1 inserted characters). Written directly: this runs on
 * every byte of byte-level tokenizers' input. */
ogi_status tok_bytelevel_map(tok_nstr *ns)
{
    pthread_once(&byte_table_once, byte_table_build);
    size_t out_len = 0;
    for (size_t i = 0; i < ns->len; i++)
        out_len += enc_len[(unsigned char)ns->s[i]];
    char *s = malloc(out_len + 1);
    tok_span *align = malloc((out_len ? out_len : 1) * sizeof(tok_span));
    if (!s || !align) {
        free(s);
        free(align);
        return ogi_error(OGI_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
    }
    size_t o = 0;
    for (size_t i = 0; i < ns->len; i++) {
        unsigned char b = (unsigned char)ns->s[i];
        /* Bytes of one source character all carry its alignment. */
        for (uint8_t k = 0; k < enc_len[b]; k++) {
            s[o] = enc[b][k];
            align[o++] = ns->align[i];
        }
    }
    s[o] = '\0';
    free(ns->s);
    free(ns->align);
    ns->s = s;
    ns->align = align;
    ns->len = out_len;
    return OGI_OK;
}

ogi_status tok_normalizer_apply(const tok_normalizer *n, tok_nstr *ns)
{
    if (!n)
        return OGI_OK;
    switch (n->type) {
    case NORM_SEQUENCE:
        for (size_t i = 0; i < n->n_children; i++) {
            ogi_status st = tok_normalizer_apply(n->children[i], ns);
            if (st != OGI_OK)
                return st;
        }
        return OGI_OK;
    case NORM_NFC:
    case NORM_NFD:
    case NORM_NFKC:
    case NORM_NFKD:
        return tok_unicode_normalize(ns, (int)n->type);
    case NORM_LOWERCASE:
        return tok_lowercase(ns);
    case NORM_STRIP:
        return norm_strip(ns, n->left, n->right);
    case NORM_STRIP_ACCENTS:
        return norm_strip_accents(ns);
    case NORM_REPLACE:
        return tok_nstr_replace(ns, &n->pattern, n->content, n->content_len);
    case NORM_PREPEND:
        return tok_nstr_prepend(ns, n->content, n->content_len);
    case NORM_APPEND:
        return norm_append(ns, n->content, n->content_len);
    case NORM_BERT:
        return norm_bert(n, ns);
    case NORM_BYTE_LEVEL:
        return tok_bytelevel_map(ns);
    }
    return OGI_OK;
}

/* ---- parsing ------------------------------------------------------------ */

void tok_normalizer_free(tok_normalizer *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->n_children; i++)
        tok_normalizer_free(n->children[i]);
    free(n->children);
    tok_pattern_free(&n->pattern);
    free(n->content);
    free(n);
}

static ogi_status parse_content(const json_t *j, const char *key, tok_normalizer *n)
{
    json_t *v = json_object_get(j, key);
    if (!json_is_string(v))
        return ogi_error(OGI_ERR_INVALID_MODEL, "tokenizer.json: normalizer: '%s' must be a string",
                         key);
    n->content_len = json_string_length(v);
    n->content = tok_strndup(json_string_value(v), n->content_len);
    if (!n->content)
        return ogi_error(OGI_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
    if (!tok_utf8_is_valid(n->content, n->content_len))
        return ogi_error(OGI_ERR_INVALID_MODEL, "tokenizer.json: normalizer: invalid UTF-8");
    return OGI_OK;
}

static ogi_status parse_sequence(const json_t *j, tok_normalizer *n)
{
    json_t *arr = json_object_get(j, "normalizers");
    if (!json_is_array(arr))
        return ogi_error(OGI_ERR_INVALID_MODEL,
                         "tokenizer.json: normalizer Sequence: 'normalizers' must be an array");
    n->children = calloc(json_array_size(arr) + 1, sizeof(*n->children));
    if (!n->children)
        return ogi_error(OGI_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
    for (size_t i = 0; i < json_array_size(arr); i++) {
        ogi_status st = tok_normalizer_parse(json_array_get(arr, i), &n->children[i]);
        if (st != OGI_OK)
            return st;
        n->n_children++;
    }
    return OGI_OK;
}

static ogi_status parse_bert(const json_t *j, tok_normalizer *n)
{
    n->clean_text = tok_json_bool(j, "clean_text", true);
    n->chinese = tok_json_bool(j, "handle_chinese_chars", true);
    n->lowercase = tok_json_bool(j, "lowercase", true);
    json_t *sa = json_object_get(j, "strip_accents");
    n->strip_accents = json_is_boolean(sa) ? json_is_true(sa) : -1;
    return OGI_OK;
}

static ogi_status parse_by_type(const json_t *j, const char *type, tok_normalizer *n)
{
    static const struct {
        const char *name;
        norm_type type;
    } simple[] = {
        {"NFC", NORM_NFC},
        {"NFD", NORM_NFD},
        {"NFKC", NORM_NFKC},
        {"NFKD", NORM_NFKD},
        {"Lowercase", NORM_LOWERCASE},
        {"StripAccents", NORM_STRIP_ACCENTS},
        {"ByteLevel", NORM_BYTE_LEVEL},
    };
    for (size_t i = 0; i < sizeof(simple) / sizeof(simple[0]); i++) {
        if (strcmp(type, simple[i].name) == 0) {
            n->type = simple[i].type;
            return OGI_OK;
        }
    }
    if (strcmp(type, "Sequence") == 0) {
        n->type = NORM_SEQUENCE;
        return parse_sequence(j, n);
    }
    if (strcmp(type, "Strip") == 0) {
        n->type = NORM_STRIP;
        n->left = tok_json_bool(j, "strip_left", true);
        n->right = tok_json_bool(j, "strip_right", true);
        return OGI_OK;
    }
    if (strcmp(type, "Replace") == 0) {
        n->type = NORM_REPLACE;
        ogi_status st =
            tok_pattern_parse(json_object_get(j, "pattern"), "normalizer Replace", &n->pattern);
        return st != OGI_OK ? st : parse_content(j, "content", n);
    }
    if (strcmp(type, "Prepend") == 0 || strcmp(type, "Append") == 0) {
        bool prepend = type[0] == 'P';
        n->type = prepend ? NORM_PREPEND : NORM_APPEND;
        return parse_content(j, prepend ? "prepend" : "append", n);
    }
    if (strcmp(type, "BertNormalizer") == 0) {
        n->type = NORM_BERT;
        return parse_bert(j, n);
    }
    if (strcmp(type, "Precompiled") == 0)
        return ogi_error(OGI_ERR_UNSUPPORTED,
                         "tokenizer.json: normalizer type 'Precompiled' (a SentencePiece "
                         "charsmap) is not supported");
    return ogi_error(OGI_ERR_UNSUPPORTED, "tokenizer.json: normalizer type '%s' is not supported",
                     type);
}

ogi_status tok_normalizer_parse(const json_t *j, tok_normalizer **out)
{
    *out = NULL;
    if (!j || json_is_null(j))
        return OGI_OK;
    if (!json_is_object(j))
        return ogi_error(OGI_ERR_INVALID_MODEL, "tokenizer.json: normalizer must be an object");
    const char *type;
    ogi_status st = tok_json_string(j, "type", "normalizer", true, &type);
    if (st != OGI_OK)
        return st;
    tok_normalizer *n = calloc(1, sizeof(*n));
    if (!n)
        return ogi_error(OGI_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
    st = parse_by_type(j, type, n);
    if (st != OGI_OK) {
        tok_normalizer_free(n);
        return st;
    }
    *out = n;
    return OGI_OK;
}
