/* UTF-8 helpers and the Python str methods templates call, with Python's
 * definitions of whitespace, line breaks and case. Invalid UTF-8 decodes to
 * U+FFFD one byte at a time. */
#include "tokenizer/jinja_internal.h"

#include <string.h>

#include <utf8proc.h>

int32_t jinja_utf8_next(const char *s, size_t len, size_t *pos)
{
    utf8proc_int32_t cp;
    utf8proc_ssize_t n =
        utf8proc_iterate((const utf8proc_uint8_t *)s + *pos, (utf8proc_ssize_t)(len - *pos), &cp);
    if (n <= 0) {
        *pos += 1;
        return 0xFFFD;
    }
    *pos += (size_t)n;
    return cp;
}

size_t jinja_utf8_count(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80) {
            i++;
        } else {
            jinja_utf8_next(s, len, &i);
        }
        n++;
    }
    return n;
}

size_t jinja_utf8_offset(const char *s, size_t len, size_t cp)
{
    size_t i = 0;
    while (cp > 0 && i < len) {
        if ((unsigned char)s[i] < 0x80)
            i++;
        else
            jinja_utf8_next(s, len, &i);
        cp--;
    }
    return i;
}

bool jinja_is_space(int32_t cp)
{
    if (cp < 0x80)
        return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20);
    return cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) ||
           cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

static utf8proc_category_t jinja_category(int32_t cp)
{
    return utf8proc_category(cp);
}

bool jinja_is_alpha(int32_t cp)
{
    switch (jinja_category(cp)) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
        return true;
    default:
        return false;
    }
}

bool jinja_is_decimal(int32_t cp)
{
    return jinja_category(cp) == UTF8PROC_CATEGORY_ND;
}

bool jinja_is_digit(int32_t cp)
{
    utf8proc_category_t c = jinja_category(cp);
    return c == UTF8PROC_CATEGORY_ND || c == UTF8PROC_CATEGORY_NO;
}

bool jinja_is_numeric(int32_t cp)
{
    utf8proc_category_t c = jinja_category(cp);
    return c == UTF8PROC_CATEGORY_ND || c == UTF8PROC_CATEGORY_NL || c == UTF8PROC_CATEGORY_NO;
}

bool jinja_is_word_char(int32_t cp)
{
    return cp == '_' || jinja_is_alpha(cp) || jinja_is_numeric(cp);
}

bool jinja_is_printable(int32_t cp)
{
    if (cp == ' ')
        return true;
    switch (jinja_category(cp)) {
    case UTF8PROC_CATEGORY_CC:
    case UTF8PROC_CATEGORY_CF:
    case UTF8PROC_CATEGORY_CS:
    case UTF8PROC_CATEGORY_CO:
    case UTF8PROC_CATEGORY_CN:
    case UTF8PROC_CATEGORY_ZL:
    case UTF8PROC_CATEGORY_ZP:
    case UTF8PROC_CATEGORY_ZS:
        return false;
    default:
        return true;
    }
}

int32_t jinja_to_upper(int32_t cp)
{
    return utf8proc_toupper(cp);
}

int32_t jinja_to_lower(int32_t cp)
{
    return utf8proc_tolower(cp);
}

int32_t jinja_to_title(int32_t cp)
{
    return utf8proc_totitle(cp);
}

bool jinja_is_upper(int32_t cp)
{
    return jinja_category(cp) == UTF8PROC_CATEGORY_LU;
}

bool jinja_is_lower(int32_t cp)
{
    return jinja_category(cp) == UTF8PROC_CATEGORY_LL;
}

bool jinja_is_cased(int32_t cp)
{
    utf8proc_category_t c = jinja_category(cp);
    return c == UTF8PROC_CATEGORY_LU || c == UTF8PROC_CATEGORY_LL || c == UTF8PROC_CATEGORY_LT;
}

/* Python applies the unconditional full mappings of SpecialCasing.txt, where
 * one character becomes several (the Latin and Armenian ones are listed). */
typedef struct jinja_special_case {
    int32_t cp;
    const char *upper;
    const char *title;
} jinja_special_case;

static const jinja_special_case jinja_special_cases[] = {
    {0x00DF, "SS", "Ss"},           {0x0149, "\u02BCN", "\u02BCN"},
    {0x01F0, "J\u030C", "J\u030C"}, {0x0587, "\u0535\u0552", "\u0535\u0582"},
    {0x1E96, "H\u0331", "H\u0331"}, {0x1E97, "T\u0308", "T\u0308"},
    {0x1E98, "W\u030A", "W\u030A"}, {0x1E99, "Y\u030A", "Y\u030A"},
    {0x1E9A, "A\u02BE", "A\u02BE"}, {0xFB00, "FF", "Ff"},
    {0xFB01, "FI", "Fi"},           {0xFB02, "FL", "Fl"},
    {0xFB03, "FFI", "Ffi"},         {0xFB04, "FFL", "Ffl"},
    {0xFB05, "ST", "St"},           {0xFB06, "ST", "St"},
};

static const jinja_special_case *jinja_special_case_of(int32_t cp)
{
    for (size_t i = 0; i < sizeof(jinja_special_cases) / sizeof(jinja_special_cases[0]); i++) {
        if (jinja_special_cases[i].cp == cp)
            return &jinja_special_cases[i];
    }
    return NULL;
}

typedef enum jinja_case_kind {
    JINJA_TO_UPPER,
    JINJA_TO_LOWER,
    JINJA_TO_TITLE,
    JINJA_KEEP
} jinja_case_kind;

static jinja_case_kind jinja_case_kind_of(int32_t cp, jinja_case mode, bool first, bool prev_cased)
{
    switch (mode) {
    case JINJA_UPPER:
        return JINJA_TO_UPPER;
    case JINJA_LOWER:
        return JINJA_TO_LOWER;
    case JINJA_TITLE:
        return prev_cased ? JINJA_TO_LOWER : JINJA_TO_TITLE;
    case JINJA_CAPITALIZE:
        return first ? JINJA_TO_TITLE : JINJA_TO_LOWER;
    case JINJA_SWAPCASE:
        if (jinja_is_upper(cp))
            return JINJA_TO_LOWER;
        if (jinja_is_lower(cp))
            return JINJA_TO_UPPER;
        return JINJA_KEEP;
    }
    return JINJA_KEEP;
}

static bool jinja_put_case_kind(jinja_ctx *ctx, jinja_sb *sb, int32_t cp, jinja_case_kind kind)
{
    const jinja_special_case *special = jinja_special_case_of(cp);
    if (special != NULL && (kind == JINJA_TO_UPPER || kind == JINJA_TO_TITLE))
        return jinja_sb_puts(ctx, sb, kind == JINJA_TO_UPPER ? special->upper : special->title);
    if (cp == 0x0130 && kind == JINJA_TO_LOWER) /* I with dot above: i and a combining dot */
        return jinja_sb_puts(ctx, sb, "i\u0307");
    switch (kind) {
    case JINJA_TO_UPPER:
        cp = jinja_to_upper(cp);
        break;
    case JINJA_TO_LOWER:
        cp = jinja_to_lower(cp);
        break;
    case JINJA_TO_TITLE:
        cp = jinja_to_title(cp);
        break;
    case JINJA_KEEP:
        break;
    }
    return jinja_sb_put_codepoint(ctx, sb, cp);
}

bool jinja_put_cased(jinja_ctx *ctx, jinja_sb *sb, int32_t cp, bool upper)
{
    return jinja_put_case_kind(ctx, sb, cp, upper ? JINJA_TO_UPPER : JINJA_TO_LOWER);
}

bool jinja_str_case(jinja_ctx *ctx, jinja_str s, jinja_case mode, jinja_value *out)
{
    jinja_sb sb = {0};
    bool prev_cased = false, first = true;
    for (size_t i = 0; i < s.len;) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (c < 0x80 && (mode == JINJA_UPPER || mode == JINJA_LOWER)) {
            char m = (char)c;
            if (mode == JINJA_UPPER && c >= 'a' && c <= 'z')
                m = (char)(c - 32);
            else if (mode == JINJA_LOWER && c >= 'A' && c <= 'Z')
                m = (char)(c + 32);
            if (!jinja_sb_putc(ctx, &sb, m))
                return false;
            i++;
            continue;
        }
        int32_t cp = jinja_utf8_next(s.ptr, s.len, &i);
        if (!jinja_put_case_kind(ctx, &sb, cp, jinja_case_kind_of(cp, mode, first, prev_cased)))
            return false;
        prev_cased = jinja_is_cased(cp);
        first = false;
    }
    *out = jinja_sb_value(&sb);
    return true;
}

static bool jinja_in_chars(int32_t cp, const jinja_str *chars)
{
    if (chars == NULL)
        return jinja_is_space(cp);
    for (size_t i = 0; i < chars->len;) {
        if (jinja_utf8_next(chars->ptr, chars->len, &i) == cp)
            return true;
    }
    return false;
}

/* Start of the code point that ends at `end`. */
static size_t jinja_utf8_prev(const char *s, size_t end)
{
    size_t i = end - 1;
    size_t limit = end >= 4 ? end - 4 : 0;
    while (i > limit && ((unsigned char)s[i] & 0xC0) == 0x80)
        i--;
    /* Only trust the lead byte if it decodes to exactly the bytes up to end. */
    size_t j = i;
    jinja_utf8_next(s, end, &j);
    return j == end ? i : end - 1;
}

jinja_str jinja_str_strip(jinja_str s, const jinja_str *chars, bool left, bool right)
{
    size_t start = 0, end = s.len;
    if (left) {
        while (start < end) {
            size_t next = start;
            int32_t cp = jinja_utf8_next(s.ptr, end, &next);
            if (!jinja_in_chars(cp, chars))
                break;
            start = next;
        }
    }
    if (right) {
        while (end > start) {
            size_t prev = jinja_utf8_prev(s.ptr, end);
            if (prev < start)
                break;
            size_t j = prev;
            int32_t cp = jinja_utf8_next(s.ptr, end, &j);
            if (!jinja_in_chars(cp, chars))
                break;
            end = prev;
        }
    }
    jinja_str r = {s.ptr + start, end - start};
    return r;
}

static bool jinja_push_piece(jinja_ctx *ctx, jinja_list *list, const char *p, size_t n)
{
    return jinja_list_push(ctx, list, jinja_string(p, n));
}

/* Whitespace split from the left (str.split with no separator). */
static bool jinja_split_ws_left(jinja_ctx *ctx, jinja_str s, int64_t maxsplit, jinja_list *list)
{
    size_t i = 0;
    int64_t splits = 0;
    while (i < s.len) {
        size_t j = i;
        while (j < s.len) {
            size_t k = j;
            if (!jinja_is_space(jinja_utf8_next(s.ptr, s.len, &k)))
                break;
            j = k;
        }
        i = j;
        if (i >= s.len)
            break;
        if (maxsplit >= 0 && splits >= maxsplit) {
            /* Python keeps the remainder's trailing whitespace. */
            return jinja_push_piece(ctx, list, s.ptr + i, s.len - i);
        }
        size_t word = i;
        while (i < s.len) {
            size_t k = i;
            if (jinja_is_space(jinja_utf8_next(s.ptr, s.len, &k)))
                break;
            i = k;
        }
        if (!jinja_push_piece(ctx, list, s.ptr + word, i - word))
            return false;
        splits++;
    }
    return true;
}

static void jinja_list_reverse(jinja_list *list)
{
    for (size_t a = 0, b = list->len; a + 1 < b; a++, b--) {
        jinja_value t = list->items[a];
        list->items[a] = list->items[b - 1];
        list->items[b - 1] = t;
    }
}

/* Whitespace split from the right (str.rsplit with no separator). */
static bool jinja_split_ws_right(jinja_ctx *ctx, jinja_str s, int64_t maxsplit, jinja_list *list)
{
    size_t end = s.len;
    int64_t splits = 0;
    while (end > 0) {
        while (end > 0) {
            size_t p = jinja_utf8_prev(s.ptr, end), k = p;
            if (!jinja_is_space(jinja_utf8_next(s.ptr, end, &k)))
                break;
            end = p;
        }
        if (end == 0)
            break;
        if (maxsplit >= 0 && splits >= maxsplit) {
            if (!jinja_push_piece(ctx, list, s.ptr, end))
                return false;
            break;
        }
        size_t start = end;
        while (start > 0) {
            size_t p = jinja_utf8_prev(s.ptr, start), k = p;
            if (jinja_is_space(jinja_utf8_next(s.ptr, start, &k)))
                break;
            start = p;
        }
        if (!jinja_push_piece(ctx, list, s.ptr + start, end - start))
            return false;
        splits++;
        end = start;
    }
    jinja_list_reverse(list);
    return true;
}

static bool jinja_split_sep(jinja_ctx *ctx, jinja_str s, jinja_str sep, int64_t maxsplit,
                            bool from_right, jinja_list *list)
{
    int64_t splits = 0;
    if (!from_right) {
        size_t i = 0;
        while (maxsplit < 0 || splits < maxsplit) {
            int64_t at = jinja_str_find((jinja_str){s.ptr + i, s.len - i}, sep, false);
            if (at < 0)
                break;
            if (!jinja_push_piece(ctx, list, s.ptr + i, (size_t)at))
                return false;
            i += (size_t)at + sep.len;
            splits++;
        }
        return jinja_push_piece(ctx, list, s.ptr + i, s.len - i);
    }
    size_t end = s.len;
    while (maxsplit < 0 || splits < maxsplit) {
        int64_t at = jinja_str_find((jinja_str){s.ptr, end}, sep, true);
        if (at < 0)
            break;
        size_t piece = (size_t)at + sep.len;
        if (!jinja_push_piece(ctx, list, s.ptr + piece, end - piece))
            return false;
        end = (size_t)at;
        splits++;
    }
    if (!jinja_push_piece(ctx, list, s.ptr, end))
        return false;
    jinja_list_reverse(list);
    return true;
}

bool jinja_str_split(jinja_ctx *ctx, jinja_str s, const jinja_str *sep, int64_t maxsplit,
                     bool from_right, jinja_list **out)
{
    jinja_list *list = jinja_list_new(ctx, 4);
    if (list == NULL)
        return false;
    bool ok;
    if (sep == NULL) {
        ok = from_right ? jinja_split_ws_right(ctx, s, maxsplit, list)
                        : jinja_split_ws_left(ctx, s, maxsplit, list);
    } else {
        if (sep->len == 0)
            return jinja_fail(ctx, "empty separator");
        ok = jinja_split_sep(ctx, s, *sep, maxsplit, from_right, list);
    }
    *out = list;
    return ok;
}

/* Length of the line break at s[i], 0 if none (Python's str.splitlines set). */
static size_t jinja_line_break(jinja_str s, size_t i)
{
    unsigned char c = (unsigned char)s.ptr[i];
    if (c == '\r')
        return i + 1 < s.len && s.ptr[i + 1] == '\n' ? 2 : 1;
    if (c == '\n' || c == 0x0B || c == 0x0C || (c >= 0x1C && c <= 0x1E))
        return 1;
    if (c == 0xC2 && i + 1 < s.len && (unsigned char)s.ptr[i + 1] == 0x85)
        return 2;
    if (c == 0xE2 && i + 2 < s.len && (unsigned char)s.ptr[i + 1] == 0x80 &&
        ((unsigned char)s.ptr[i + 2] == 0xA8 || (unsigned char)s.ptr[i + 2] == 0xA9))
        return 3;
    return 0;
}

bool jinja_str_splitlines(jinja_ctx *ctx, jinja_str s, bool keepends, jinja_list **out)
{
    jinja_list *list = jinja_list_new(ctx, 4);
    if (list == NULL)
        return false;
    size_t start = 0, i = 0;
    while (i < s.len) {
        size_t br = jinja_line_break(s, i);
        if (br == 0) {
            i++;
            continue;
        }
        size_t end = keepends ? i + br : i;
        if (!jinja_push_piece(ctx, list, s.ptr + start, end - start))
            return false;
        i += br;
        start = i;
    }
    if (start < s.len && !jinja_push_piece(ctx, list, s.ptr + start, s.len - start))
        return false;
    *out = list;
    return true;
}

bool jinja_str_replace(jinja_ctx *ctx, jinja_str s, jinja_str old, jinja_str new_, int64_t count,
                       jinja_value *out)
{
    jinja_sb sb = {0};
    int64_t done = 0;
    if (old.len == 0) {
        /* Python inserts `new` before every character and at the end. */
        size_t i = 0;
        while (count < 0 || done < count) {
            if (!jinja_sb_append(ctx, &sb, new_.ptr, new_.len))
                return false;
            done++;
            if (i >= s.len)
                break;
            size_t next = i;
            jinja_utf8_next(s.ptr, s.len, &next);
            if (!jinja_sb_append(ctx, &sb, s.ptr + i, next - i))
                return false;
            i = next;
        }
        if (!jinja_sb_append(ctx, &sb, s.ptr + i, s.len - i))
            return false;
        *out = jinja_sb_value(&sb);
        return true;
    }
    size_t i = 0;
    while (count < 0 || done < count) {
        int64_t at = jinja_str_find((jinja_str){s.ptr + i, s.len - i}, old, false);
        if (at < 0)
            break;
        if (!jinja_sb_append(ctx, &sb, s.ptr + i, (size_t)at) ||
            !jinja_sb_append(ctx, &sb, new_.ptr, new_.len))
            return false;
        i += (size_t)at + old.len;
        done++;
    }
    if (done == 0) {
        *out = jinja_string(s.ptr, s.len);
        return true;
    }
    if (!jinja_sb_append(ctx, &sb, s.ptr + i, s.len - i))
        return false;
    *out = jinja_sb_value(&sb);
    return true;
}

int64_t jinja_str_find(jinja_str hay, jinja_str needle, bool last)
{
    if (needle.len > hay.len)
        return -1;
    if (needle.len == 0)
        return last ? (int64_t)hay.len : 0;
    if (!last) {
        const char *p = memmem(hay.ptr, hay.len, needle.ptr, needle.len);
        return p != NULL ? (int64_t)(p - hay.ptr) : -1;
    }
    for (size_t i = hay.len - needle.len + 1; i-- > 0;) {
        if (memcmp(hay.ptr + i, needle.ptr, needle.len) == 0)
            return (int64_t)i;
    }
    return -1;
}

int64_t jinja_str_count(jinja_str hay, jinja_str needle)
{
    if (needle.len == 0)
        return (int64_t)jinja_utf8_count(hay.ptr, hay.len) + 1;
    int64_t n = 0;
    size_t i = 0;
    for (;;) {
        int64_t at = jinja_str_find((jinja_str){hay.ptr + i, hay.len - i}, needle, false);
        if (at < 0)
            return n;
        n++;
        i += (size_t)at + needle.len;
    }
}

bool jinja_str_starts(jinja_str s, jinja_str prefix)
{
    return prefix.len <= s.len && memcmp(s.ptr, prefix.ptr, prefix.len) == 0;
}

bool jinja_str_ends(jinja_str s, jinja_str suffix)
{
    return suffix.len <= s.len && memcmp(s.ptr + s.len - suffix.len, suffix.ptr, suffix.len) == 0;
}

bool jinja_str_eq(jinja_str a, const char *cstr)
{
    size_t n = strlen(cstr);
    return a.len == n && memcmp(a.ptr, cstr, n) == 0;
}
