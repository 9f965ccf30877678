/* Pre-tokenizers: cut normalized pieces into words before the model sees
 * them (ByteLevel, Split, Metaspace, whitespace/punctuation/digit splitters,
 * BERT's; Sequence of them). */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok.h"

typedef enum pretok_type {
    PRE_SEQUENCE,
    PRE_BYTE_LEVEL,
    PRE_SPLIT,
    PRE_METASPACE,
    PRE_WHITESPACE,
    PRE_WHITESPACE_SPLIT,
    PRE_PUNCTUATION,
    PRE_DIGITS,
    PRE_BERT,
    PRE_CHAR_DELIMITER,
} pretok_type;

struct tok_pretokenizer {
    pretok_type type;
    tok_pretokenizer **children;
    size_t n_children;
    tok_pattern pattern; /* Split; ByteLevel's and Whitespace's regex */
    tok_split_behavior behavior;
    bool invert;
    bool add_prefix_space, use_regex; /* ByteLevel */
    uint32_t replacement;             /* Metaspace; CharDelimiterSplit's delimiter */
    tok_prepend_scheme scheme;
    bool split;
    bool individual_digits;
};

/* GPT-2's pre-tokenization regex, which ByteLevel uses. */
static const char BYTE_LEVEL_REGEX[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

typedef bool (*char_pred)(uint32_t cp, uint32_t arg);

static ogi_status oom(void)
{
    return ogi_error(OGI_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
}

/* Every character for which pred holds is a match of its own. */
static bool find_chars(const tok_nstr *ns, char_pred pred, uint32_t arg, tok_matches *m)
{
    size_t last = 0;
    m->n = 0;
    for (size_t i = 0, clen; i < ns->len; i += clen) {
        uint32_t cp = tok_utf8_decode(ns->s + i, ns->len - i, &clen);
        if (!pred(cp, arg))
            continue;
        if ((last < i && !tok_matches_push(m, last, i, false)) ||
            !tok_matches_push(m, i, i + clen, true))
            return false;
        last = i + clen;
    }
    return last >= ns->len || tok_matches_push(m, last, ns->len, false);
}

static bool pred_whitespace(uint32_t cp, uint32_t arg)
{
    (void)arg;
    return tok_is_whitespace(cp);
}

static bool pred_punctuation(uint32_t cp, uint32_t arg)
{
    (void)arg;
    return tok_is_punctuation(cp);
}

static bool pred_numeric(uint32_t cp, uint32_t arg)
{
    (void)arg;
    return tok_is_numeric(cp);
}

static bool pred_equal(uint32_t cp, uint32_t arg)
{
    return cp == arg;
}

/* ---- one piece at a time ------------------------------------------------ */

static ogi_status split_chars(tok_nstr *ns, char_pred pred, uint32_t arg,
                              tok_split_behavior behavior, tok_pieces *out)
{
    tok_matches m = {0};
    bool ok = find_chars(ns, pred, arg, &m) && tok_split_apply(ns, &m, behavior, out);
    tok_matches_free(&m);
    return ok ? OGI_OK : oom();
}

static ogi_status split_pattern(tok_nstr *ns, const tok_pattern *p, tok_split_behavior behavior,
                                bool invert, tok_pieces *out)
{
    tok_matches m = {0};
    ogi_status st = tok_pattern_find(p, ns->s, ns->len, &m);
    if (st == OGI_OK) {
        for (size_t i = 0; invert && i < m.n; i++)
            m.v[i].is_match = !m.v[i].is_match;
        if (!tok_split_apply(ns, &m, behavior, out))
            st = oom();
    }
    tok_matches_free(&m);
    return st;
}

static ogi_status metaspace_piece(const tok_pretokenizer *p, tok_nstr *ns, tok_pieces *out)
{
    char rep[4];
    size_t rep_len = tok_utf8_encode(p->replacement, rep);
    if (memchr(ns->s, ' ', ns->len)) {
        tok_xform x;
        tok_xform_begin(&x, ns);
        for (size_t i = 0; i < ns->len; i++) {
            if (ns->s[i] == ' ') {
                tok_xform_skip(&x, 1);
                tok_xform_insert(&x, p->replacement);
            } else {
                tok_xform_copy(&x, 1);
            }
        }
        if (!tok_xform_end(&x, ns))
            return oom();
    }
    bool starts = ns->len >= rep_len && memcmp(ns->s, rep, rep_len) == 0;
    bool prepend =
        !starts && (p->scheme == TOK_PREPEND_ALWAYS ||
                    (p->scheme == TOK_PREPEND_FIRST && ns->len && ns->align[0].start == 0));
    if (prepend) {
        ogi_status st = tok_nstr_prepend(ns, rep, rep_len);
        if (st != OGI_OK)
            return st;
    }
    if (p->split)
        return split_chars(ns, pred_equal, p->replacement, TOK_SPLIT_MERGED_WITH_NEXT, out);
    tok_nstr copy = *ns;
    memset(ns, 0, sizeof(*ns));
    return copy.len == 0 || tok_pieces_push(out, &copy, -1) ? OGI_OK : oom();
}

static ogi_status byte_level_piece(const tok_pretokenizer *p, tok_nstr *ns, tok_pieces *out)
{
    if (p->add_prefix_space && (ns->len == 0 || ns->s[0] != ' ')) {
        ogi_status st = tok_nstr_prepend(ns, " ", 1);
        if (st != OGI_OK)
            return st;
    }
    size_t first = out->n;
    ogi_status st;
    if (p->use_regex) {
        st = split_pattern(ns, &p->pattern, TOK_SPLIT_ISOLATED, false, out);
    } else {
        tok_nstr copy = *ns;
        memset(ns, 0, sizeof(*ns));
        st = copy.len == 0 || tok_pieces_push(out, &copy, -1) ? OGI_OK : oom();
    }
    for (size_t i = first; st == OGI_OK && i < out->n; i++)
        st = tok_bytelevel_map(&out->v[i].ns);
    return st;
}

static ogi_status apply_piece(const tok_pretokenizer *p, tok_nstr *ns, tok_pieces *out)
{
    switch (p->type) {
    case PRE_BYTE_LEVEL:
        return byte_level_piece(p, ns, out);
    case PRE_SPLIT:
        return split_pattern(ns, &p->pattern, p->behavior, p->invert, out);
    case PRE_METASPACE:
        return metaspace_piece(p, ns, out);
    case PRE_WHITESPACE:
        return split_pattern(ns, &p->pattern, TOK_SPLIT_REMOVED, true, out);
    case PRE_WHITESPACE_SPLIT:
        return split_chars(ns, pred_whitespace, 0, TOK_SPLIT_REMOVED, out);
    case PRE_PUNCTUATION:
        return split_chars(ns, pred_punctuation, 0, p->behavior, out);
    case PRE_DIGITS:
        return split_chars(ns, pred_numeric, 0,
                           p->individual_digits ? TOK_SPLIT_ISOLATED : TOK_SPLIT_CONTIGUOUS, out);
    case PRE_CHAR_DELIMITER:
        return split_chars(ns, pred_equal, p->replacement, TOK_SPLIT_REMOVED, out);
    case PRE_BERT:
    case PRE_SEQUENCE:
        break;
    }
    return OGI_OK;
}

/* Runs f over every undecided piece, replacing it with what f produces. */
static ogi_status each_piece(const tok_pretokenizer *p, tok_pieces *pieces)
{
    tok_pieces out = {0};
    ogi_status st = OGI_OK;
    for (size_t i = 0; i < pieces->n && st == OGI_OK; i++) {
        tok_piece *pc = &pieces->v[i];
        if (pc->id >= 0)
            st = tok_pieces_push(&out, &pc->ns, pc->id) ? OGI_OK : oom();
        else
            st = apply_piece(p, &pc->ns, &out);
    }
    if (st != OGI_OK) {
        tok_pieces_free(&out);
        return st;
    }
    tok_pieces_free(pieces);
    *pieces = out;
    return OGI_OK;
}

ogi_status tok_pretokenizer_apply(const tok_pretokenizer *p, tok_pieces *pieces)
{
    if (!p)
        return OGI_OK;
    if (p->type == PRE_SEQUENCE) {
        for (size_t i = 0; i < p->n_children; i++) {
            ogi_status st = tok_pretokenizer_apply(p->children[i], pieces);
            if (st != OGI_OK)
                return st;
        }
        return OGI_OK;
    }
    if (p->type == PRE_BERT) {
        tok_pretokenizer ws = {.type = PRE_WHITESPACE_SPLIT};
        tok_pretokenizer punct = {.type = PRE_PUNCTUATION, .behavior = TOK_SPLIT_ISOLATED};
        ogi_status st = each_piece(&ws, pieces);
        return st != OGI_OK ? st : each_piece(&punct, pieces);
    }
    return each_piece(p, pieces);
}

/* ---- parsing ------------------------------------------------------------ */

void tok_pretokenizer_free(tok_pretokenizer *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n_children; i++)
        tok_pretokenizer_free(p->children[i]);
    free(p->children);
    tok_pattern_free(&p->pattern);
    free(p);
}

static ogi_status parse_sequence(const json_t *j, tok_pretokenizer *p)
{
    json_t *arr = json_object_get(j, "pretokenizers");
    if (!json_is_array(arr))
        return ogi_error(
            OGI_ERR_INVALID_MODEL,
            "tokenizer.json: pre_tokenizer Sequence: 'pretokenizers' must be an array");
    p->children = calloc(json_array_size(arr) + 1, sizeof(*p->children));
    if (!p->children)
        return oom();
    for (size_t i = 0; i < json_array_size(arr); i++) {
        ogi_status st = tok_pretokenizer_parse(json_array_get(arr, i), &p->children[i]);
        if (st != OGI_OK)
            return st;
        p->n_children++;
    }
    return OGI_OK;
}

static ogi_status parse_char(const json_t *j, const char *key, const char *where, uint32_t *out)
{
    json_t *v = json_object_get(j, key);
    const char *s = json_string_value(v);
    size_t n = json_string_length(v), clen = 0;
    if (!s || n == 0 || tok_utf8_valid_len((const unsigned char *)s, n) != n)
        return ogi_error(OGI_ERR_INVALID_MODEL,
                         "tokenizer.json: %s: '%s' must be a single character", where, key);
    *out = tok_utf8_decode(s, n, &clen);
    return OGI_OK;
}

static ogi_status parse_metaspace(const json_t *j, tok_pretokenizer *p)
{
    ogi_status st = parse_char(j, "replacement", "pre_tokenizer Metaspace", &p->replacement);
    if (st != OGI_OK)
        return st;
    p->split = tok_json_bool(j, "split", true);
    const char *scheme = json_string_value(json_object_get(j, "prepend_scheme"));
    if (!scheme) {
        p->scheme =
            tok_json_bool(j, "add_prefix_space", true) ? TOK_PREPEND_ALWAYS : TOK_PREPEND_NEVER;
    } else if (strcmp(scheme, "always") == 0) {
        p->scheme = TOK_PREPEND_ALWAYS;
    } else if (strcmp(scheme, "first") == 0) {
        p->scheme = TOK_PREPEND_FIRST;
    } else if (strcmp(scheme, "never") == 0) {
        p->scheme = TOK_PREPEND_NEVER;
    } else {
        return ogi_error(OGI_ERR_INVALID_MODEL,
                         "tokenizer.json: pre_tokenizer Metaspace: unknown prepend_scheme '%s'",
                         scheme);
    }
    return OGI_OK;
}

static ogi_status parse_split(const json_t *j, tok_pretokenizer *p)
{
    ogi_status st =
        tok_pattern_parse(json_object_get(j, "pattern"), "pre_tokenizer Split", &p->pattern);
    if (st != OGI_OK)
        return st;
    p->invert = tok_json_bool(j, "invert", false);
    return tok_split_behavior_parse(json_object_get(j, "behavior"), "pre_tokenizer Split",
                                    &p->behavior);
}

static ogi_status parse_by_type(const json_t *j, const char *type, tok_pretokenizer *p)
{
    if (strcmp(type, "Sequence") == 0) {
        p->type = PRE_SEQUENCE;
        return parse_sequence(j, p);
    }
    if (strcmp(type, "ByteLevel") == 0) {
        p->type = PRE_BYTE_LEVEL;
        p->add_prefix_space = tok_json_bool(j, "add_prefix_space", true);
        p->use_regex = tok_json_bool(j, "use_regex", true);
        return tok_pattern_compile(&p->pattern, BYTE_LEVEL_REGEX, "pre_tokenizer ByteLevel");
    }
    if (strcmp(type, "Split") == 0) {
        p->type = PRE_SPLIT;
        return parse_split(j, p);
    }
    if (strcmp(type, "Metaspace") == 0) {
        p->type = PRE_METASPACE;
        return parse_metaspace(j, p);
    }
    if (strcmp(type, "Whitespace") == 0) {
        p->type = PRE_WHITESPACE;
        return tok_pattern_compile(&p->pattern, "\\w+|[^\\w\\s]+", "pre_tokenizer Whitespace");
    }
    if (strcmp(type, "WhitespaceSplit") == 0) {
        p->type = PRE_WHITESPACE_SPLIT;
        return OGI_OK;
    }
    if (strcmp(type, "Punctuation") == 0) {
        p->type = PRE_PUNCTUATION;
        p->behavior = TOK_SPLIT_ISOLATED;
        json_t *b = json_object_get(j, "behavior");
        return b ? tok_split_behavior_parse(b, "pre_tokenizer Punctuation", &p->behavior) : OGI_OK;
    }
    if (strcmp(type, "Digits") == 0) {
        p->type = PRE_DIGITS;
        p->individual_digits = tok_json_bool(j, "individual_digits", false);
        return OGI_OK;
    }
    if (strcmp(type, "BertPreTokenizer") == 0) {
        p->type = PRE_BERT;
        return OGI_OK;
    }
    if (strcmp(type, "CharDelimiterSplit") == 0) {
        p->type = PRE_CHAR_DELIMITER;
        return parse_char(j, "delimiter", "pre_tokenizer CharDelimiterSplit", &p->replacement);
    }
    return ogi_error(OGI_ERR_UNSUPPORTED,
                     "tokenizer.json: pre_tokenizer type '%s' is not supported", type);
}

ogi_status tok_pretokenizer_parse(const json_t *j, tok_pretokenizer **out)
{
    *out = NULL;
    if (!j || json_is_null(j))
        return OGI_OK;
    if (!json_is_object(j))
        return ogi_error(OGI_ERR_INVALID_MODEL, "tokenizer.json: pre_tokenizer must be an object");
    const char *type;
    ogi_status st = tok_json_string(j, "type", "pre_tokenizer", true, &type);
    if (st != OGI_OK)
        return st;
    tok_pretokenizer *p = calloc(1, sizeof(*p));
    if (!p)
        return oom();
    st = parse_by_type(j, type, p);
    if (st != OGI_OK) {
        tok_pretokenizer_free(p);
        return st;
    }
    *out = p;
    return OGI_OK;
}

ogi_status tok_pretokenizer_metaspace(uint32_t replacement, tok_prepend_scheme scheme, bool split,
                                      tok_pretokenizer **out)
{
    tok_pretokenizer *p = calloc(1, sizeof(*p));
    if (!p)
        return oom();
    p->type = PRE_METASPACE;
    p->replacement = replacement;
    p->scheme = scheme;
    p->split = split;
    *out = p;
    return OGI_OK;
}
