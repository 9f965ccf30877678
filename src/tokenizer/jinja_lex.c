/* Template text -> tokens. Reproduces Jinja2's lexer with the settings
 * transformers uses: trim_blocks (a newline right after a block or comment
 * tag is dropped), lstrip_blocks (spaces and tabs before a block or comment
 * tag at the start of a line are dropped), "-" / "+" whitespace control on
 * tags, and no keep_trailing_newline. */
#include "tokenizer/jinja_internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct jinja_lexer {
    jinja_ctx *ctx;
    const char *src;
    size_t len;
    size_t pos;
    jinja_tokens *out;
    bool line_starting; /* the last match ended with a newline */
} jinja_lexer;

bool jinja_normalize_source(jinja_ctx *ctx, const char *text, jinja_str *source)
{
    size_t n = strlen(text);
    char *buf = jinja_alloc(ctx, n + 1);
    if (buf == NULL)
        return false;
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        if (text[i] == '\r') {
            buf[len++] = '\n';
            if (i + 1 < n && text[i + 1] == '\n')
                i++;
        } else {
            buf[len++] = text[i];
        }
    }
    if (len > 0 && buf[len - 1] == '\n')
        len--;
    buf[len] = '\0';
    source->ptr = buf;
    source->len = len;
    return true;
}

static bool jinja_lex_fail(jinja_lexer *lx, size_t offset, const char *msg, const char *detail)
{
    int line, col;
    jinja_position(lx->ctx, offset, &line, &col);
    return jinja_fail_at(lx->ctx, line, col, "%s%s", msg, detail != NULL ? detail : "");
}

static bool jinja_push_token(jinja_lexer *lx, jinja_token tok)
{
    jinja_tokens *t = lx->out;
    if (t->len == t->cap) {
        size_t cap = t->cap < 16 ? 64 : t->cap * 2;
        jinja_token *items = jinja_alloc_array(lx->ctx, cap, sizeof(jinja_token));
        if (items == NULL)
            return false;
        if (t->len > 0)
            memcpy(items, t->items, t->len * sizeof(jinja_token));
        t->items = items;
        t->cap = cap;
    }
    t->items[t->len++] = tok;
    return true;
}

static bool jinja_push_simple(jinja_lexer *lx, jinja_token_kind kind, size_t offset, size_t len)
{
    jinja_token tok = {.kind = kind, .offset = offset};
    tok.text.ptr = lx->src + offset;
    tok.text.len = len;
    return jinja_push_token(lx, tok);
}

static bool jinja_ascii_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* Skips Python regex \s* (Unicode whitespace) from pos. */
static size_t jinja_skip_space(const char *s, size_t len, size_t pos)
{
    while (pos < len) {
        size_t next = pos;
        if (!jinja_is_space(jinja_utf8_next(s, len, &next)))
            break;
        pos = next;
    }
    return pos;
}

static bool jinja_all_space(const char *s, size_t len)
{
    return len > 0 && jinja_skip_space(s, len, 0) == len;
}

/* Text before a tag, after the tag's whitespace control ('-', '+', or none
 * with lstrip_blocks for block-like tags). */
static bool jinja_emit_text(jinja_lexer *lx, size_t start, size_t end, char sign, bool block_like)
{
    const char *text = lx->src + start;
    size_t len = end - start;
    if (sign == '-') {
        jinja_str s = jinja_str_strip((jinja_str){text, len}, NULL, false, true);
        len = s.len;
    } else if (sign != '+' && block_like) {
        size_t l_pos = len;
        while (l_pos > 0 && text[l_pos - 1] != '\n')
            l_pos--;
        if ((l_pos > 0 || lx->line_starting) && jinja_all_space(text + l_pos, len - l_pos))
            len = l_pos;
    }
    if (len == 0)
        return true;
    return jinja_push_simple(lx, JT_TEXT, start, len);
}

/* ---- Inside {{ }} and {% %} ---- */

static int jinja_hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Reads `digits` hex digits at s[*i]; -1 if they are not all there. */
static int64_t jinja_read_hex(const char *s, size_t len, size_t *i, int digits)
{
    int64_t v = 0;
    for (int k = 0; k < digits; k++) {
        if (*i >= len || jinja_hex_value(s[*i]) < 0)
            return -1;
        v = v * 16 + jinja_hex_value(s[(*i)++]);
    }
    return v;
}

enum { JINJA_ESC_KEEP = -1, JINJA_ESC_BAD = -2, JINJA_ESC_SKIP = -3 };

/* The code point of the escape whose letter is at s[*i], advancing *i past
 * it: JINJA_ESC_KEEP for escapes Python leaves alone (backslash kept),
 * JINJA_ESC_BAD for malformed \x \u \U, JINJA_ESC_SKIP for a line
 * continuation. */
static int64_t jinja_escape_value(const char *s, size_t len, size_t *i)
{
    static const struct {
        char letter, value;
    } simple[] = {{'\\', '\\'}, {'\'', '\''}, {'"', '"'},  {'a', '\a'}, {'b', '\b'},
                  {'f', '\f'},  {'n', '\n'},  {'r', '\r'}, {'t', '\t'}, {'v', '\v'}};
    char c = s[(*i)++];
    if (c == '\n')
        return JINJA_ESC_SKIP;
    for (size_t k = 0; k < sizeof(simple) / sizeof(simple[0]); k++) {
        if (simple[k].letter == c)
            return (unsigned char)simple[k].value;
    }
    if (c == 'x' || c == 'u' || c == 'U') {
        int64_t cp = jinja_read_hex(s, len, i, c == 'x' ? 2 : c == 'u' ? 4 : 8);
        return cp < 0 || cp > 0x10FFFF ? JINJA_ESC_BAD : cp;
    }
    if (c < '0' || c > '7') {
        (*i)--;
        return JINJA_ESC_KEEP;
    }
    int64_t cp = c - '0';
    for (int k = 0; k < 2 && *i < len && s[*i] >= '0' && s[*i] <= '7'; k++)
        cp = cp * 8 + (s[(*i)++] - '0');
    return cp;
}

/* Appends a code point, pairing UTF-16 surrogates; *high holds a pending
 * high surrogate, and unpaired ones become U+FFFD. */
static bool jinja_put_unescaped(jinja_ctx *ctx, jinja_sb *sb, int64_t cp, int32_t *high)
{
    if (cp >= 0xDC00 && cp <= 0xDFFF && *high != 0) {
        cp = 0x10000 + ((*high - 0xD800) << 10) + (cp - 0xDC00);
        *high = 0;
    } else if (*high != 0) {
        *high = 0;
        if (!jinja_sb_put_codepoint(ctx, sb, 0xFFFD))
            return false;
    }
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        *high = (int32_t)cp;
        return true;
    }
    return cp < 0 || jinja_sb_put_codepoint(ctx, sb, (int32_t)cp);
}

/* Python's unicode-escape decoding of a string literal's body. */
static bool jinja_unescape(jinja_lexer *lx, size_t offset, const char *s, size_t len,
                           jinja_str *out)
{
    jinja_sb sb = {0};
    int32_t high = 0;
    for (size_t i = 0; i < len;) {
        size_t start = i;
        while (i < len && (s[i] != '\\' || i + 1 >= len))
            i++;
        if (i > start) {
            if (!jinja_put_unescaped(lx->ctx, &sb, -1, &high) ||
                !jinja_sb_append(lx->ctx, &sb, s + start, i - start))
                return false;
            continue;
        }
        i++; /* the backslash */
        int64_t cp = jinja_escape_value(s, len, &i);
        if (cp == JINJA_ESC_BAD)
            return jinja_lex_fail(lx, offset, "invalid \\x, \\u or \\U escape in string", NULL);
        if (cp == JINJA_ESC_KEEP && !jinja_sb_putc(lx->ctx, &sb, '\\'))
            return false;
        if (cp >= 0 && !jinja_put_unescaped(lx->ctx, &sb, cp, &high))
            return false;
    }
    if (!jinja_put_unescaped(lx->ctx, &sb, -1, &high))
        return false;
    out->ptr = sb.data != NULL ? sb.data : "";
    out->len = sb.len;
    return true;
}

static bool jinja_lex_string(jinja_lexer *lx)
{
    size_t start = lx->pos;
    char quote = lx->src[start];
    size_t i = start + 1;
    while (i < lx->len && lx->src[i] != quote) {
        if (lx->src[i] == '\\' && i + 1 < lx->len)
            i++;
        i++;
    }
    if (i >= lx->len)
        return jinja_lex_fail(lx, start, "unterminated string", NULL);
    jinja_token tok = {.kind = JT_STRING, .offset = start};
    if (!jinja_unescape(lx, start, lx->src + start + 1, i - start - 1, &tok.text))
        return false;
    lx->pos = i + 1;
    return jinja_push_token(lx, tok);
}

static bool jinja_is_digit_char(char c)
{
    return c >= '0' && c <= '9';
}

/* Digits with single underscores between them, as Python allows. */
static size_t jinja_scan_digits(const char *s, size_t len, size_t i)
{
    if (i >= len || !jinja_is_digit_char(s[i]))
        return i;
    while (i < len) {
        if (jinja_is_digit_char(s[i]))
            i++;
        else if (s[i] == '_' && i + 1 < len && jinja_is_digit_char(s[i + 1]))
            i++;
        else
            break;
    }
    return i;
}

/* The end of a float literal at i, or i when there is none. */
static size_t jinja_scan_float(const char *s, size_t len, size_t i)
{
    size_t e = jinja_scan_digits(s, len, i);
    size_t frac = e;
    if (e < len && s[e] == '.' && e + 1 < len && jinja_is_digit_char(s[e + 1]))
        frac = jinja_scan_digits(s, len, e + 1);
    if (frac < len && (s[frac] == 'e' || s[frac] == 'E')) {
        size_t x = frac + 1;
        if (x < len && (s[x] == '+' || s[x] == '-'))
            x++;
        size_t end = jinja_scan_digits(s, len, x);
        if (end > x)
            return end;
    }
    return frac > e ? frac : i;
}

static bool jinja_lex_number(jinja_lexer *lx)
{
    const char *s = lx->src;
    size_t start = lx->pos;
    char digits[400];
    size_t nd = 0;
    bool after_dot = start > 0 && s[start - 1] == '.';
    size_t end = after_dot ? start : jinja_scan_float(s, lx->len, start);
    jinja_token tok = {.offset = start};
    if (end > start) {
        for (size_t i = start; i < end && nd + 1 < sizeof(digits); i++) {
            if (s[i] != '_')
                digits[nd++] = s[i];
        }
        digits[nd] = '\0';
        tok.kind = JT_FLOAT;
        tok.f = strtod(digits, NULL);
        lx->pos = end;
        return jinja_push_token(lx, tok);
    }
    int base = 10;
    size_t i = start;
    if (s[i] == '0' && i + 1 < lx->len && strchr("xXoObB", s[i + 1]) != NULL) {
        base = s[i + 1] == 'x' || s[i + 1] == 'X' ? 16 : s[i + 1] == 'o' || s[i + 1] == 'O' ? 8 : 2;
        i += 2;
    }
    uint64_t v = 0;
    bool any = false;
    for (; i < lx->len; i++) {
        if (s[i] == '_')
            continue;
        int d = jinja_hex_value(s[i]);
        if (d < 0 || d >= base)
            break;
        if (v > (UINT64_MAX - (uint64_t)d) / (uint64_t)base || v * base + (uint64_t)d > INT64_MAX)
            return jinja_lex_fail(lx, start, "integer literal too large", NULL);
        v = v * (uint64_t)base + (uint64_t)d;
        any = true;
    }
    if (!any)
        return jinja_lex_fail(lx, start, "invalid number literal", NULL);
    tok.kind = JT_INT;
    tok.i = (int64_t)v;
    lx->pos = i;
    return jinja_push_token(lx, tok);
}

static bool jinja_is_name_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool jinja_is_name_char(char c)
{
    return jinja_is_name_start(c) || jinja_is_digit_char(c);
}

static size_t jinja_operator_len(const char *s, size_t len)
{
    static const char *const two[] = {"**", "//", "==", "!=", ">=", "<="};
    if (len >= 2) {
        for (size_t k = 0; k < sizeof(two) / sizeof(two[0]); k++) {
            if (s[0] == two[k][0] && s[1] == two[k][1])
                return 2;
        }
    }
    return strchr("+-/*%~[](){}<>=.:|,;", s[0]) != NULL && s[0] != '\0' ? 1 : 0;
}

typedef struct jinja_brackets {
    char open[JINJA_MAX_PARSE_DEPTH];
    int depth;
} jinja_brackets;

static bool jinja_track_bracket(jinja_lexer *lx, jinja_brackets *br, char c)
{
    if (c == '(' || c == '[' || c == '{') {
        if (br->depth >= JINJA_MAX_PARSE_DEPTH)
            return jinja_lex_fail(lx, lx->pos, "brackets nested too deeply", NULL);
        br->open[br->depth++] = c;
        return true;
    }
    if (c != ')' && c != ']' && c != '}')
        return true;
    char want = c == ')' ? '(' : c == ']' ? '[' : '{';
    if (br->depth == 0 || br->open[br->depth - 1] != want) {
        char msg[48];
        snprintf(msg, sizeof(msg), "unexpected '%c'", c);
        return jinja_lex_fail(lx, lx->pos, msg, NULL);
    }
    br->depth--;
    return true;
}

/* Matches the end of a {{ }} or {% %} tag at pos; returns its length
 * including the whitespace it consumes, 0 when there is none. */
static size_t jinja_tag_end(jinja_lexer *lx, bool block)
{
    const char *s = lx->src + lx->pos;
    size_t rest = lx->len - lx->pos;
    char close = block ? '%' : '}';
    if (rest >= 3 && s[0] == '-' && s[1] == close && s[2] == '}')
        return jinja_skip_space(lx->src, lx->len, lx->pos + 3) - lx->pos;
    if (block && rest >= 3 && s[0] == '+' && s[1] == '%' && s[2] == '}')
        return 3;
    if (rest >= 2 && s[0] == close && s[1] == '}') {
        if (block && rest >= 3 && s[2] == '\n')
            return 3; /* trim_blocks */
        return 2;
    }
    return 0;
}

static bool jinja_lex_tag(jinja_lexer *lx, bool block, size_t tag_start)
{
    jinja_brackets br = {.depth = 0};
    for (;;) {
        while (lx->pos < lx->len && jinja_ascii_space(lx->src[lx->pos]))
            lx->pos++;
        if (lx->pos >= lx->len)
            return jinja_lex_fail(lx, tag_start, "unexpected end of template, expected ",
                                  block ? "'%}'" : "'}}'");
        if (br.depth == 0) {
            size_t end = jinja_tag_end(lx, block);
            if (end > 0) {
                if (!jinja_push_simple(lx, block ? JT_BLOCK_END : JT_VAR_END, lx->pos, 0))
                    return false;
                lx->pos += end;
                lx->line_starting = lx->src[lx->pos - 1] == '\n';
                return true;
            }
        }
        char c = lx->src[lx->pos];
        bool ok;
        if (c == '\'' || c == '"') {
            ok = jinja_lex_string(lx);
        } else if (jinja_is_digit_char(c)) {
            ok = jinja_lex_number(lx);
        } else if (jinja_is_name_start(c)) {
            size_t start = lx->pos;
            while (lx->pos < lx->len && jinja_is_name_char(lx->src[lx->pos]))
                lx->pos++;
            ok = jinja_push_simple(lx, JT_NAME, start, lx->pos - start);
        } else {
            size_t n = jinja_operator_len(lx->src + lx->pos, lx->len - lx->pos);
            if (n == 0) {
                char msg[48];
                snprintf(msg, sizeof(msg), "unexpected char '%c'", c);
                return jinja_lex_fail(lx, lx->pos, msg, NULL);
            }
            ok = jinja_track_bracket(lx, &br, c) && jinja_push_simple(lx, JT_OP, lx->pos, n);
            lx->pos += n;
        }
        if (!ok)
            return false;
    }
}

/* ---- Comments and raw blocks ---- */

static bool jinja_lex_comment(jinja_lexer *lx, size_t tag_start)
{
    for (size_t i = lx->pos; i + 1 < lx->len; i++) {
        const char *s = lx->src + i;
        size_t end = 0;
        if (s[0] == '+' && i + 2 < lx->len && s[1] == '#' && s[2] == '}')
            end = i + 3;
        else if (s[0] == '-' && i + 2 < lx->len && s[1] == '#' && s[2] == '}')
            end = jinja_skip_space(lx->src, lx->len, i + 3);
        else if (s[0] == '#' && s[1] == '}')
            end = i + 2 < lx->len && s[2] == '\n' ? i + 3 : i + 2;
        if (end > 0) {
            lx->pos = end;
            lx->line_starting = lx->src[end - 1] == '\n';
            return true;
        }
    }
    return jinja_lex_fail(lx, tag_start, "missing end of comment tag", NULL);
}

/* Matches `{%[-+]? raw %}` (or endraw) at pos: returns the tag's end and
 * its sign, 0 when it is not there. */
static size_t jinja_match_raw_tag(jinja_lexer *lx, size_t pos, const char *word, bool trim,
                                  char *sign)
{
    const char *s = lx->src;
    size_t n = lx->len, i = pos + 2;
    if (pos + 2 > n || s[pos] != '{' || s[pos + 1] != '%')
        return 0;
    *sign = 0;
    if (i < n && (s[i] == '-' || s[i] == '+'))
        *sign = s[i++];
    i = jinja_skip_space(s, n, i);
    size_t wl = strlen(word);
    if (i + wl > n || memcmp(s + i, word, wl) != 0)
        return 0;
    i = jinja_skip_space(s, n, i + wl);
    if (trim && i + 3 <= n && s[i] == '+' && s[i + 1] == '%' && s[i + 2] == '}')
        return i + 3;
    if (i + 3 <= n && s[i] == '-' && s[i + 1] == '%' && s[i + 2] == '}')
        return jinja_skip_space(s, n, i + 3);
    if (i + 2 <= n && s[i] == '%' && s[i + 1] == '}') {
        if (trim && i + 2 < n && s[i + 2] == '\n')
            return i + 3;
        return i + 2;
    }
    return 0;
}

static bool jinja_lex_raw(jinja_lexer *lx, size_t tag_start)
{
    for (size_t i = lx->pos; i + 1 < lx->len; i++) {
        char sign;
        size_t end = jinja_match_raw_tag(lx, i, "endraw", true, &sign);
        if (end == 0)
            continue;
        if (!jinja_emit_text(lx, lx->pos, i, sign, true))
            return false;
        lx->pos = end;
        lx->line_starting = lx->src[end - 1] == '\n';
        return true;
    }
    return jinja_lex_fail(lx, tag_start, "missing end of raw directive", NULL);
}

/* ---- Top level ---- */

/* The next tag opener at or after pos, or len. */
static size_t jinja_find_tag(const jinja_lexer *lx, size_t pos)
{
    for (size_t i = pos; i + 1 < lx->len; i++) {
        const char *p = memchr(lx->src + i, '{', lx->len - i - 1);
        if (p == NULL)
            return lx->len;
        i = (size_t)(p - lx->src);
        char c = p[1];
        if (c == '{' || c == '%' || c == '#')
            return i;
    }
    return lx->len;
}

static bool jinja_lex_one_tag(jinja_lexer *lx, size_t p)
{
    char kind = lx->src[p + 1];
    char sign = 0;
    if (p + 2 < lx->len && (lx->src[p + 2] == '-' || lx->src[p + 2] == '+'))
        sign = lx->src[p + 2];
    char raw_sign;
    size_t raw_end = kind == '%' ? jinja_match_raw_tag(lx, p, "raw", false, &raw_sign) : 0;
    if (!jinja_emit_text(lx, lx->pos, p, sign, kind != '{'))
        return false;
    if (raw_end > 0) {
        lx->pos = raw_end;
        lx->line_starting = lx->src[raw_end - 1] == '\n';
        return jinja_lex_raw(lx, p);
    }
    lx->pos = p + 2 + (sign != 0);
    lx->line_starting = false;
    if (kind == '#')
        return jinja_lex_comment(lx, p);
    if (!jinja_push_simple(lx, kind == '%' ? JT_BLOCK_BEGIN : JT_VAR_BEGIN, p, 2))
        return false;
    return jinja_lex_tag(lx, kind == '%', p);
}

bool jinja_lex(jinja_ctx *ctx, jinja_str source, jinja_tokens *out)
{
    jinja_lexer lx = {.ctx = ctx, .src = source.ptr, .len = source.len, .out = out};
    lx.line_starting = true;
    while (lx.pos < lx.len) {
        size_t p = jinja_find_tag(&lx, lx.pos);
        if (p >= lx.len) {
            if (!jinja_push_simple(&lx, JT_TEXT, lx.pos, lx.len - lx.pos))
                return false;
            break;
        }
        if (!jinja_lex_one_tag(&lx, p))
            return false;
    }
    return jinja_push_simple(&lx, JT_EOF, lx.len, 0);
}
