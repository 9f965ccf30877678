/* Jinja2's built-in filters (the ones chat templates use) and tests, with
 * transformers' tojson (json.dumps, no HTML escaping). Arguments bind like
 * Python calls: positionally or by keyword. */
#include "tokenizer/jinja_internal.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define N_PARAMS(a) (sizeof(a) / sizeof((a)[0]))

static jinja_value missing(void)
{
    jinja_value v = {.type = JINJA_MISSING};
    return v;
}

/* Jinja's soft_str: str(value), with undefined as "". */
static bool soft_str(jinja_ctx *ctx, jinja_value v, jinja_str *out)
{
    jinja_value s;
    if (!jinja_to_string(ctx, v, &s))
        return false;
    *out = s.s;
    return true;
}

static bool no_args(jinja_ctx *ctx, const char *name, const jinja_args *args)
{
    return jinja_bind(ctx, name, NULL, 0, args, NULL);
}

static bool arg_int(jinja_ctx *ctx, const char *what, jinja_value v, int64_t *out)
{
    if (!jinja_is_integer(v))
        return jinja_fail(ctx, "%s must be an integer, not %s", what, jinja_type_name(v));
    *out = v.type == JINJA_BOOL ? v.b : v.i;
    return true;
}

/* Dotted attribute paths ("function.name", "0.x") looked up with
 * Jinja's getitem, as make_attrgetter does. */
static bool get_attribute_path(jinja_ctx *ctx, jinja_value item, jinja_value path, jinja_value *out)
{
    if (jinja_is_integer(path))
        return jinja_getitem(ctx, item, path, out);
    if (path.type != JINJA_STRING)
        return jinja_fail(ctx, "attribute must be a string, not %s", jinja_type_name(path));
    jinja_value cur = item;
    size_t start = 0;
    for (size_t i = 0; i <= path.s.len; i++) {
        if (i < path.s.len && path.s.ptr[i] != '.')
            continue;
        jinja_str part = {path.s.ptr + start, i - start};
        jinja_value key = jinja_string(part.ptr, part.len);
        bool digits = part.len > 0 && part.len < 18;
        for (size_t k = 0; k < part.len && digits; k++)
            digits = part.ptr[k] >= '0' && part.ptr[k] <= '9';
        if (digits)
            key = jinja_int(strtoll(part.ptr, NULL, 10));
        if (!jinja_getitem(ctx, cur, key, &cur))
            return false;
        start = i + 1;
    }
    *out = cur;
    return true;
}

/* ---- String filters ---- */

static bool string_filter_case(jinja_ctx *ctx, jinja_value v, const jinja_args *args,
                               jinja_case mode, const char *name, jinja_value *out)
{
    jinja_str s;
    if (!no_args(ctx, name, args) || !soft_str(ctx, v, &s))
        return false;
    return jinja_str_case(ctx, s, mode, out);
}

static bool f_upper(jinja_ctx *ctx, jinja_value v, const jinja_args *args, jinja_value *out)
{
    return string_filter_case(ctx, v, args, JINJA_UPPER, "upper", out);
}

static bool f_lower(jinja_ctx *ctx, jinja_value v, const jinja_args *args, jinja_value *out)
{
    return string_filter_case(ctx, v, args, JINJA_LOWER, "lower", out);
}

static bool f_capitalize(jinja_ctx *ctx, jinja_value v, const jinja_args *args, jinja_value *out)
{
    return string_filter_case(ctx, v, args, JINJA_CAPITALIZE, "capitalize", out);
}

static bool is_title_break(int32_t cp)
{
    return cp == '-' || cp == '(' || cp == '{' || cp == '[' || cp == '<' || jinja_is_space(cp);
}

/* Jinja's title: split at runs of -, whitespace and opening brackets; each
 * piece gets its first character upper-cased and the rest lower-cased. */
static bool f_title(jinja_ctx *ctx, jinja_value v, const jinja_args *args, jinja_value *out)
{
    jinja_str s;
    if (!no_args(ctx, "title", args) || !soft_str(ctx, v, &s))
        return false;
    jinja_sb sb = {0};
    bool first = true, prev_break = false;
    for (size_t i = 0; i < s.len;) {
        int32_t cp = jinja_utf8_next(s.ptr, s.len, &i);
        bool brk = is_title_break(cp);
        bool starts_piece = first || brk != prev_break;
        if (!jinja_put_cased(ctx, &sb, cp, starts_piece))
            return false;
        first = false;
        prev_break = brk;
    }
    *out = jinja_sb_value(&sb);
    return true;
}

static bool f_trim(jinja_ctx *ctx, jinja_value v, const jinja_args *args, jinja_value *out)
{
    static const char *const params[] = {"chars"};
    jinja_value a[1] = {jinja_none()};
    jinja_str s, chars;
    if (!jinja_bind(ctx, "trim", params, 1, args, a) || !soft_str(ctx, v, &s))
        return false;
    bool has_chars = a[0].type != JINJA_NONE;
    if (has_chars && !soft_str(ctx, a[0], &chars))
        return false;
    jinja_str r = jinja_str_strip(s, has_chars ? &chars : NULL, true, true);
    *out = jinja_string(r.ptr, r.len);
    return jinja_charge(ctx, (s.len - r.len) * (has_chars ? chars.len : 1));
}

static bool f_replace(jinja_ctx *ctx, jinja_value v, const jinja_args *args, jinja_value *out)
{
    static const char *const params[] = {"old", "new", "count"};
    jinja_value a[3] = {missing(), missing(), jinja_none()};
    jinja_str s, old, new_;
    int64_t count = -1;
    if (!jinja_bind(ctx, "replace", params, 3, args, a) || !soft_str(ctx, v, &s) ||
        !soft_str(ctx, a[0], &old) || !soft_str(ctx, a[1], &new_))
        return false;
    if (a[2].type != JINJA_NONE && !arg_int(ctx, "count", a[2], &count))
        return false;
    return jinja_str_replace(ctx, s, old, new_, count, out);
}

static bool f_indent(jinja_ctx *ctx, jinja_value v, const jinja_args *args, jinja_value *out)
{
    static const char *const params[] = {"width", "first", "blank"};
    jinja_value a[3] = {jinja_int(4), jinja_bool(false), jinja_bool(false)};
    jinja_str s, pad;
    if (!jinja_bind(ctx, "indent", params, 3, args, a) || !jinja_check_defined(ctx, v))
        return false;
    if (v.type != JINJA_STRING) /* Jinja appends "\n" to the value itself */
        return jinja_fail(ctx, "unsupported operand type(s) for +=: '%s' and 'str'",
                          jinja_type_name(v));
    s = v.s;
    if (a[0].type == JINJA_STRING) {
        pad = a[0].s;
    } else {
        int64_t width;
        jinja_sb spaces = {0};
        if (!arg_int(ctx, "width", a[0], &width))
            return false;
        for (int64_t i = 0; i < width; i++) {
            if (!jinja_sb_putc(ctx, &spaces, ' '))
                return false;
        }
        pad = jinja_sb_value(&spaces).s;
    }
    /* Jinja appends "\n" before splitlines(), so a trailing newline survives. */
    jinja_sb text = {0};
    jinja_list *lines;
    if (!jinja_sb_append(ctx, &text, s.ptr, s.len) || !jinja_sb_putc(ctx, &text, '\n') ||
        !jinja_str_splitlines(ctx, jinja_sb_value(&text).s, false, &lines))
        return false;
    jinja_sb sb = {0};
    if (jinja_truthy(a[1]) && !jinja_sb_append(ctx, &sb, pad.ptr, pad.len))
        return false;
    for (size_t i = 0; i < lines->len; i++) {
        jinja_str line = lines->items[i].s;
        bool ok = true;
        if (i > 0) {
            ok = jinja_sb_putc(ctx, &sb, '\n');
            if (ok && (line.len > 0 || jinja_truthy(a[2])))
                ok = jinja_sb_append(ctx, &sb, pad.ptr, pad.len);
        }
        if (!ok || !jinja_sb_append(ctx, &sb, line.ptr, line.len))
            return false;
    }
    *out = jinja_sb_value(&sb);
    return true;
}

static bool f_center(jinja_ctx *ctx, jinja_value v, const jinja_args *args, jinja_value *out)
{
    static const char *const params[] = {"width"};
    jinja_value a[1] = {jinja_int(80)};
    jinja_str s;
    int64_t width;
    if (!jinja_bind(ctx, "center", params, 1, args, a) || !soft_str(ctx, v, &s) ||
        !arg_int(ctx, "width", a[0], &width))
        return false;
    if (!jinja_charge(ctx, s.len))
        return false;
    int64_t len = (int64_t)jinja_utf8_count(s.ptr, s.len);
    if (width <= len) {
        *out = jinja_string(s.ptr, s.len);
        return true;
    }
    int64_t marg = width - len, left = marg / 2 + (marg & width & 1);
    jinja_sb sb = {0};
    for (int64_t i = 0; i < marg; i++) {
        if (i == left && !jinja_sb_append(ctx, &sb, s.ptr, s.len))
            return false;
        if (!jinja_sb_putc(ctx, &sb, ' '))
            return false;
    }
    *out = jinja_sb_value(&sb);
    return true;
}

bool jinja_html_escape(jinja_ctx *ctx, jinja_str s, jinja_value *out)
{
    static const char *const entities[] = {
        ['&'] = "&amp;", ['<'] = "&lt;", ['>'] = "&gt;", ['"'] = "&#34;", ['\''] = "&#39;"};
    jinja_sb sb = {0};
    size_t run = 0;
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (c >= sizeof(entities) / sizeof(entities[0]) || entities[c] == NULL)
            continue;
        if (!jinja_sb_append(ctx, &sb, s.ptr + run, i - run) ||
            !jinja_sb_puts(ctx, &sb, entities[c]))
            return false;
        run = i + 1;
    }
    if (!jinja_sb_append(ctx, &sb, s.ptr + run, s.len - run))
        return false;
    *out = sb.len == s.len ? jinja_string(s.ptr, s.len) : jinja_sb_value(&sb);
    out->markup = true;
    return true;
}

/* escape leaves markup alone; forceescape escapes it again. */
static bool escape_filter(jinja_ctx *ctx, jinja_value v, const jinja_args *args, bool force,
                          jinja_value *out)
{
    jinja_str s;
    if (!no_args(ctx, force ? "forceescape" : "escape", args))
        return false;
    if (v.type == JINJA_STRING && v.markup && !force) {
        *out = v;
        return true;
    }
    return soft_str(ctx, v, &s) && jinja_html_escape(ctx, s, out);
}

static bool f_escape(jinja_ctx *ctx, jinja_value v, const jinja_args *args, jinja_value *out)
{
    return escape_filter(ctx, v, args, false, out);
}

static bool f_forceescape(jinja_ctx *ctx, jinja_value v, const jinja_args *args, jinja_value *out)
{
    return escape_filter(ctx, v, args, true, out);
}

static bool f_safe(jinja_ctx *ctx, jinja_value v, const jinja_args *args, jinja_value *out)
{
    if (!no_args(ctx, "safe", args) || !jinja_to_string(ctx, v, out))
        return false;
    out->markup = true;
    return true;
}

static bool f_string(jinja_ctx *ctx, jinja_value v, const jinja_args *args, jinja_value *out)
{
    return no_args(ctx, "string", args) && jinja_to_string(ctx, v, out);
}

static bool f_wordcount(jinja_ctx *ctx, jinja_value v, const jinja_args *args, jinja_value *out)
{
    jinja_str s;
    if (!no_args(ctx, "wordcount", args) || !soft_str(ctx, v, &s) || !jinja_charge(ctx, s.len))
        return false;
    int64_t words = 0;
    bool in_word = false;
    for (size_t i = 0; i < s.len;) {
        bool w = jinja_is_word_char(jinja_utf8_next(s.ptr, s.len, &i));
        if (w && !in_word)
            words++;
        in_word = w;
    }
    *out = jinja_int(words);
    return true;
}

static bool f_format(jinja_ctx *ctx, jinja_value v, const jinja_args *args, jinja_value *out)
{
    jinja_str s;
    if (!soft_str(ctx, v, &s))
        return false;
    if (args->n_pos > 0 && args->n_kw > 0)
        return jinja_fail(ctx, "can't handle positional and keyword arguments at the same time");
    jinja_value fmt_args;
    if (args->n_kw > 0) {
        jinja_dict *d = jinja_dict_new(ctx);
        if (d == NULL)
            return false;
        for (size_t k = 0; k < args->n_kw; k++) {
            jinja_value key = jinja_string(args->kw_names[k].ptr, args->kw_names[k].len);
            if (!jinja_dict_set(ctx, d, key, args->kw_vals[k]))
                return false;
        }
        fmt_args = jinja_dict_value(d);
    } else {
        jinja_list *list = jinja_list_new(ctx, args->n_pos);
        if (list == NULL)
            return false;
        for (size_t i = 0; i < args->n_pos; i++)
            list->items[list->len++] = args->pos[i];
        fmt_args = jinja_tuple_value(list);
    }
    return jinja_percent_format(ctx, s, fmt_args, out);
}

/* ---- tojson ---- */

static bool json_separators(jinja_ctx *ctx, jinja_value seps, jinja_json_style *style)
{
    if (seps.type == JINJA_NONE)
        return true;
    if ((seps.type != JINJA_LIST && seps.type != JINJA_TUPLE) || seps.list->len != 2 ||
        seps.list->items[0].type != JINJA_STRING || seps.list->items[1].type != JINJA_STRING)
        return jinja_fail(ctx, "tojson: separators must be a pair of strings");
    style->item_sep = seps.list->items[0].s;
    style->key_sep = seps.list->items[1].s;
    return true;
}

static bool f_tojson(jinja_ctx *ctx, jinja_value v, const jinja_args *args, jinja_value *out)
{
    static const char *const params[] = {"ensure_ascii", "indent", "separators", "sort_keys"};
    jinja_value a[4] = {jinja_bool(false), jinja_none(), jinja_none(), jinja_bool(false)};
    if (!jinja_bind(ctx, "tojson", params, 4, args, a))
        return false;
    jinja_json_style style = {.ensure_ascii = jinja_truthy(a[0]), .sort_keys = jinja_truthy(a[3])};
    style.item_sep = (jinja_str){", ", 2};
    style.key_sep = (jinja_str){": ", 2};
    if (a[1].type == JINJA_STRING) {
        style.indent = a[1].s;
    } else if (a[1].type != JINJA_NONE) {
        int64_t width;
        if (!arg_int(ctx, "indent", a[1], &width))
            return false;
        if (width > 1000)
            return jinja_fail(ctx, "tojson: indent %lld is too large", (long long)width);
        jinja_sb spaces = {0};
        for (int64_t i = 0; i < width; i++) {
            if (!jinja_sb_putc(ctx, &spaces, ' '))
                return false;
        }
        style.indent = jinja_sb_value(&spaces).s;
    }
    if (style.indent.ptr != NULL)
        style.item_sep = (jinja_str){",", 1};
    if (!json_separators(ctx, a[2], &style))
        return false;
    jinja_sb sb = {0};
    if (!jinja_write_json(ctx, &sb, v, &style, 0))
        return false;
    *out = jinja_sb_value(&sb);
    return true;
}

/* ---- Numbers ---- */

static bool f_abs(jinja_ctx *ctx, jinja_value v, const jinja_args *args, jinja_value *out)
{
    if (!no_args(ctx, "abs", args) || !jinja_check_defined(ctx, v))
        return false;
    if (v.type == JINJA_FLOAT) {
        *out = jinja_float(fabs(v.f));
        return true;
    }
    if (!jinja_is_integer(v))
        return jinja_fail(ctx, "bad operand type for abs(): '%s'", jinja_type_name(v));
    int64_t i = v.type == JINJA_BOOL ? v.b : v.i;
    if (i == INT64_MIN)
        return jinja_fail(ctx, "integer overflow");
    *out = jinja_int(i < 0 ? -i : i);
    return true;
}

/* Python's int(str, base): optional sign and whitespace, digits with single
 * underscores, an optional matching 0x/0o/0b prefix. */
static bool parse_python_int(jinja_str s, int base, int64_t *out)
{
    jinja_str t = jinja_str_strip(s, NULL, true, true);
    size_t i = 0;
    bool neg = false;
    if (i < t.len && (t.ptr[i] == '+' || t.ptr[i] == '-'))
        neg = t.ptr[i++] == '-';
    if (i + 1 < t.len && t.ptr[i] == '0') {
        char p = (char)(t.ptr[i + 1] | 0x20);
        int prefix_base = p == 'x' ? 16 : p == 'o' ? 8 : p == 'b' ? 2 : 0;
        if (prefix_base != 0 && (base == prefix_base || base == 0)) {
            base = prefix_base;
            i += 2;
            if (i < t.len && t.ptr[i] == '_')
                i++;
        }
    }
    if (base == 0)
        base = 10;
    uint64_t v = 0;
    bool any = false, last_underscore = false;
    for (; i < t.len; i++) {
        char c = t.ptr[i];
        if (c == '_' && any && !last_underscore) {
            last_underscore = true;
            continue;
        }
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'z' ? c - 'a' + 10
                : c >= 'A' && c <= 'Z' ? c - 'A' + 10
                                       : 99;
        if (d >= base)
            return false;
        if (v > ((uint64_t)INT64_MAX + 1 - (uint64_t)d) / (uint64_t)base)
            return false;
        v = v * (uint64_t)base + (uint64_t)d;
        any = true;
        last_underscore = false;
    }
    if (!any || last_underscore || (!neg && v > (uint64_t)INT64_MAX))
        return false;
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return true;
}

/* Python's float(str): decimal or inf/nan words, surrounding whitespace. */
static bool parse_python_float(jinja_str s, double *out)
{
    jinja_str t = jinja_str_strip(s, NULL, true, true);
    char buf[128];
    size_t n = 0;
    if (t.len == 0 || t.len >= sizeof(buf))
        return false;
    for (size_t i = 0; i < t.len; i++) {
        char c = t.ptr[i];
        if (c == '_') {
            bool ok = i > 0 && i + 1 < t.len && t.ptr[i - 1] >= '0' && t.ptr[i - 1] <= '9' &&
                      t.ptr[i + 1] >= '0' && t.ptr[i + 1] <= '9';
            if (!ok)
                return false;
            continue;
        }
        if (c == 'x' || c == 'X' || c == 'p' || c == 'P' || c == '(')
            return false; /* strtod's hex and nan(...) forms are not Python's */
        buf[n++] = c;
    }
    buf[n] = '\0';
    char *end;
    errno = 0;
    double d = strtod(buf, &end);
    if (end != buf + n || end == buf)
        return false;
    *out = d;
    return true;
}

static bool f_int(jinja_ctx *ctx, jinja_value v, const jinja_args *args, jinja_value *out)
{
    static const char *const params[] = {"default", "base"};
    jinja_value a[2] = {jinja_int(0), jinja_int(10)};
    int64_t base, i;
    double d;
    if (!jinja_bind(ctx, "int", params, 2, args, a) || !arg_int(ctx, "base", a[1], &base))
        return false;
    *out = a[0];
    if (v.type == JINJA_STRING) {
        if (parse_python_int(v.s, (int)base, &i))
            *out = jinja_int(i);
        else if (parse_python_float(v.s, &d) && !isnan(d) && !isinf(d) && fabs(d) < 9.2e18)
            *out = jinja_int((int64_t)d);
        return true;
    }
    if (jinja_is_integer(v)) {
        *out = jinja_int(v.type == JINJA_BOOL ? v.b : v.i);
    } else if (v.type == JINJA_FLOAT) {
        if (isinf(v.f) || fabs(v.f) >= 9.2e18)
            return jinja_fail(ctx, "cannot convert float %s to integer",
                              isinf(v.f) ? "infinity" : "this large");
        if (!isnan(v.f))
            *out = jinja_int((int64_t)v.f);
    }
    return true;
}

static bool f_float(jinja_ctx *ctx, jinja_value v, const jinja_args *args, jinja_value *out)
{
    static const char *const params[] = {"default"};
    jinja_value a[1] = {jinja_float(0.0)};
    double d;
    if (!jinja_bind(ctx, "float", params, 1, args, a))
        return false;
    *out = a[0];
    if (jinja_is_number(v))
        *out = jinja_float(jinja_as_double(v));
    else if (v.type == JINJA_STRING && parse_python_float(v.s, &d))
        *out = jinja_float(d);
    return true;
}

/* Python's round(x, ndigits): exact decimal rounding, ties to even. */
static double round_float(double x, int64_t ndigits)
{
    if (isnan(x) || isinf(x))
        return x;
    if (ndigits > 300)
        return x;
    if (ndigits >= 0) {
        char buf[512];
        snprintf(buf, sizeof(buf), "%.*f", (int)ndigits, x);
        return strtod(buf, NULL);
    }
    double scale = pow(10.0, (double)-ndigits);
    return nearbyint(x / scale) * scale;
}

static bool f_round(jinja_ctx *ctx, jinja_value v, const jinja_args *args, jinja_value *out)
{
    static const char *const params[] = {"precision", "method"};
    jinja_value a[2] = {jinja_int(0), jinja_cstring("common")};
    int64_t precision;
    if (!jinja_bind(ctx, "round", params, 2, args, a) ||
        !arg_int(ctx, "precision", a[0], &precision) || !jinja_check_defined(ctx, v))
        return false;
    if (!jinja_is_number(v))
        return jinja_fail(ctx, "type %s doesn't define __round__ method", jinja_type_name(v));
    jinja_str method = a[1].type == JINJA_STRING ? a[1].s : (jinja_str){"", 0};
    bool common = jinja_str_eq(method, "common");
    if (!common && !jinja_str_eq(method, "ceil") && !jinja_str_eq(method, "floor"))
        return jinja_fail(ctx, "method must be common, ceil or floor");
    if (common && jinja_is_integer(v) && precision >= 0) {
        *out = jinja_int(v.type == JINJA_BOOL ? v.b : v.i);
        return true;
    }
    double x = jinja_as_double(v);
    if (common) {
        *out = jinja_float(round_float(x, precision));
        return true;
    }
    double scale = pow(10.0, (double)precision);
    double r = jinja_str_eq(method, "ceil") ? ceil(x * scale) : floor(x * scale);
    *out = jinja_float(r / scale);
    return true;
}

/* ---- Sequences ---- */

static bool f_length(jinja_ctx *ctx, jinja_value v, const jinja_args *args, jinja_value *out)
{
    int64_t len;
    if (!no_args(ctx, "length", args) || !jinja_length(ctx, v, &len))
        return false;
    *out = jinja_int(len);
    return true;
}

static bool f_list(jinja_ctx *ctx, jinja_value v, const jinja_args *args, jinja_value *out)
{
    jinja_list *items;
    if (!no_args(ctx, "list", args) || !jinja_iterate(ctx, v, &items))
        return false;
    jinja_list *copy = jinja_list_new(ctx, items->len);
    if (copy == NULL)
        return false;
    memcpy(copy->items, items->items, items->len * sizeof(jinja_value));
    copy->len = items->len;
    *out = jinja_list_value(copy);
    return true;
}

static bool f_first(jinja_ctx *ctx, jinja_value v, const jinja_args *args, jinja_value *out)
{
    jinja_list *items;
    if (!no_args(ctx, "first", args) || !jinja_iterate(ctx, v, &items))
        return false;
    *out = items->len > 0 ? items->items[0] : jinja_undefined("No first item, sequence was empty.");
    return true;
}

static bool f_last(jinja_ctx *ctx, jinja_value v, const jinja_args *args, jinja_value *out)
{
    jinja_list *items;
    if (!no_args(ctx, "last", args) || !jinja_iterate(ctx, v, &items))
        return false;
    *out = items->len > 0 ? items->items[items->len - 1]
                          : jinja_undefined("No last item, sequence was empty.");
    return true;
}

static bool f_reverse(jinja_ctx *ctx, jinja_value v, const jinja_args *args, jinja_value *out)
{
    jinja_list *items;
    if (!no_args(ctx, "reverse", args) || !jinja_iterate(ctx, v, &items))
        return false;
    jinja_list *r = jinja_list_new(ctx, items->len);
    if (r == NULL)
        return false;
    for (size_t i = items->len; i-- > 0;)
        r->items[r->len++] = items->items[i];
    if (v.type != JINJA_STRING) {
        *out = jinja_list_value(r);
        return true;
    }
    jinja_sb sb = {0};
    for (size_t i = 0; i < r->len; i++) {
        if (!jinja_sb_append(ctx, &sb, r->items[i].s.ptr, r->items[i].s.len))
            return false;
    }
    *out = jinja_sb_value(&sb);
    return true;
}

static bool f_items(jinja_ctx *ctx, jinja_value v, const jinja_args *args, jinja_value *out)
{
    if (!no_args(ctx, "items", args))
        return false;
    if (v.type == JINJA_UNDEFINED) {
        *out = jinja_list_value(jinja_list_new(ctx, 0));
        return out->list != NULL;
    }
    if (v.type != JINJA_DICT)
        return jinja_fail(ctx, "Can only get item pairs from a mapping.");
    jinja_list *list = jinja_list_new(ctx, v.dict->len);
    if (list == NULL)
        return false;
    for (size_t e = 0; e < v.dict->len; e++) {
        jinja_list *pair = jinja_list_new(ctx, 2);
        if (pair == NULL)
            return false;
        pair->items[0] = v.dict->keys[e];
        pair->items[1] = v.dict->vals[e];
        pair->len = 2;
        list->items[list->len++] = jinja_tuple_value(pair);
    }
    *out = jinja_list_value(list);
    return true;
}

static bool f_join(jinja_ctx *ctx, jinja_value v, const jinja_args *args, jinja_value *out)
{
    static const char *const params[] = {"d", "attribute"};
    jinja_value a[2] = {jinja_cstring(""), jinja_none()};
    jinja_list *items;
    jinja_str sep;
    if (!jinja_bind(ctx, "join", params, 2, args, a) || !jinja_iterate(ctx, v, &items) ||
        !soft_str(ctx, a[0], &sep))
        return false;
    jinja_sb sb = {0};
    for (size_t i = 0; i < items->len; i++) {
        jinja_value item = items->items[i];
        if (a[1].type != JINJA_NONE && !get_attribute_path(ctx, item, a[1], &item))
            return false;
        if ((i > 0 && !jinja_sb_append(ctx, &sb, sep.ptr, sep.len)) ||
            !jinja_write_str(ctx, &sb, item))
            return false;
    }
    *out = jinja_sb_value(&sb);
    return true;
}

static bool f_default(jinja_ctx *ctx, jinja_value v, const jinja_args *args, jinja_value *out)
{
    static const char *const params[] = {"default_value", "boolean"};
    jinja_value a[2] = {jinja_cstring(""), jinja_bool(false)};
    if (!jinja_bind(ctx, "default", params, 2, args, a))
        return false;
    bool use_default = v.type == JINJA_UNDEFINED || (jinja_truthy(a[1]) && !jinja_truthy(v));
    *out = use_default ? a[0] : v;
    return true;
}

static bool f_batch(jinja_ctx *ctx, jinja_value v, const jinja_args *args, jinja_value *out)
{
    static const char *const params[] = {"linecount", "fill_with"};
    jinja_value a[2] = {missing(), jinja_none()};
    jinja_list *items;
    int64_t count;
    if (!jinja_bind(ctx, "batch", params, 2, args, a) || !arg_int(ctx, "linecount", a[0], &count) ||
        !jinja_iterate(ctx, v, &items))
        return false;
    if (count <= 0)
        return jinja_fail(ctx, "batch: linecount must be positive");
    jinja_list *rows = jinja_list_new(ctx, 0), *row = NULL;
    if (rows == NULL)
        return false;
    for (size_t i = 0; i < items->len; i++) {
        if (row == NULL || row->len == (size_t)count) {
            if ((row = jinja_list_new(ctx, 0)) == NULL ||
                !jinja_list_push(ctx, rows, jinja_list_value(row)))
                return false;
        }
        if (!jinja_list_push(ctx, row, items->items[i]))
            return false;
    }
    while (row != NULL && a[1].type != JINJA_NONE && row->len < (size_t)count) {
        if (!jinja_list_push(ctx, row, a[1]))
            return false;
    }
    *out = jinja_list_value(rows);
    return true;
}

/* ---- Sorting, uniqueness, min/max ---- */

/* The key sort/unique/min/max compare: an attribute (comma-separated list
 * for sort), lower-cased strings unless case_sensitive. */
static bool sort_key(jinja_ctx *ctx, jinja_value item, jinja_value attribute, bool case_sensitive,
                     jinja_value *key)
{
    jinja_value k = item;
    if (attribute.type == JINJA_STRING && memchr(attribute.s.ptr, ',', attribute.s.len) != NULL) {
        jinja_list *parts, *keys = jinja_list_new(ctx, 0);
        jinja_str comma = {",", 1};
        if (keys == NULL || !jinja_str_split(ctx, attribute.s, &comma, -1, false, &parts))
            return false;
        for (size_t i = 0; i < parts->len; i++) {
            jinja_str p = jinja_str_strip(parts->items[i].s, NULL, true, true);
            jinja_value part_key;
            if (!sort_key(ctx, item, jinja_string(p.ptr, p.len), case_sensitive, &part_key) ||
                !jinja_list_push(ctx, keys, part_key))
                return false;
        }
        *key = jinja_list_value(keys);
        return true;
    }
    if (attribute.type != JINJA_NONE && !get_attribute_path(ctx, item, attribute, &k))
        return false;
    if (!case_sensitive && k.type == JINJA_STRING)
        return jinja_str_case(ctx, k.s, JINJA_LOWER, key);
    *key = k;
    return true;
}

/* Stable merge sort of idx[] by keys[] (Python's sort is stable). */
static bool merge_sort(jinja_ctx *ctx, const jinja_value *keys, size_t *idx, size_t *tmp, size_t n,
                       bool reverse)
{
    if (n < 2)
        return true;
    size_t mid = n / 2;
    if (!merge_sort(ctx, keys, idx, tmp, mid, reverse) ||
        !merge_sort(ctx, keys, idx + mid, tmp, n - mid, reverse))
        return false;
    size_t i = 0, j = mid, k = 0;
    while (i < mid && j < n) {
        int c;
        if (!jinja_compare(ctx, keys[idx[j]], keys[idx[i]], &c))
            return false;
        bool take_right = reverse ? c == 1 : c == -1;
        tmp[k++] = take_right ? idx[j++] : idx[i++];
    }
    while (i < mid)
        tmp[k++] = idx[i++];
    while (j < n)
        tmp[k++] = idx[j++];
    memcpy(idx, tmp, n * sizeof(size_t));
    return true;
}

static bool sorted_items(jinja_ctx *ctx, jinja_list *items, jinja_value attribute,
                         bool case_sensitive, bool reverse, jinja_list **out)
{
    size_t n = items->len;
    jinja_value *keys = jinja_alloc_array(ctx, n + 1, sizeof(jinja_value));
    size_t *idx = jinja_alloc_array(ctx, n + 1, sizeof(size_t));
    size_t *tmp = jinja_alloc_array(ctx, n + 1, sizeof(size_t));
    jinja_list *r = jinja_list_new(ctx, n);
    if (keys == NULL || idx == NULL || tmp == NULL || r == NULL)
        return false;
    for (size_t i = 0; i < n; i++) {
        idx[i] = i;
        if (!sort_key(ctx, items->items[i], attribute, case_sensitive, &keys[i]))
            return false;
    }
    if (!merge_sort(ctx, keys, idx, tmp, n, reverse))
        return false;
    for (size_t i = 0; i < n; i++)
        r->items[r->len++] = items->items[idx[i]];
    *out = r;
    return true;
}

static bool f_sort(jinja_ctx *ctx, jinja_value v, const jinja_args *args, jinja_value *out)
{
    static const char *const params[] = {"reverse", "case_sensitive", "attribute"};
    jinja_value a[3] = {jinja_bool(false), jinja_bool(false), jinja_none()};
    jinja_list *items, *r;
    if (!jinja_bind(ctx, "sort", params, 3, args, a) || !jinja_iterate(ctx, v, &items) ||
        !sorted_items(ctx, items, a[2], jinja_truthy(a[1]), jinja_truthy(a[0]), &r))
        return false;
    *out = jinja_list_value(r);
    return true;
}

static bool f_dictsort(jinja_ctx *ctx, jinja_value v, const jinja_args *args, jinja_value *out)
{
    static const char *const params[] = {"case_sensitive", "by", "reverse"};
    jinja_value a[3] = {jinja_bool(false), jinja_cstring("key"), jinja_bool(false)};
    jinja_value pairs;
    jinja_list *r;
    if (!jinja_bind(ctx, "dictsort", params, 3, args, a) ||
        !f_items(ctx, v, &(jinja_args){0}, &pairs))
        return false;
    bool by_value = a[1].type == JINJA_STRING && jinja_str_eq(a[1].s, "value");
    if (!by_value && !(a[1].type == JINJA_STRING && jinja_str_eq(a[1].s, "key")))
        return jinja_fail(ctx, "You can only sort by either \"key\" or \"value\"");
    if (!sorted_items(ctx, pairs.list, jinja_int(by_value ? 1 : 0), jinja_truthy(a[0]),
                      jinja_truthy(a[2]), &r))
        return false;
    *out = jinja_list_value(r);
    return true;
}

static bool f_unique(jinja_ctx *ctx, jinja_value v, const jinja_args *args, jinja_value *out)
{
    static const char *const params[] = {"case_sensitive", "attribute"};
    jinja_value a[2] = {jinja_bool(false), jinja_none()};
    jinja_list *items;
    if (!jinja_bind(ctx, "unique", params, 2, args, a) || !jinja_iterate(ctx, v, &items))
        return false;
    /* Python keeps a set of the keys seen, so they must be hashable. */
    jinja_list *r = jinja_list_new(ctx, items->len);
    jinja_dict *seen = jinja_dict_new(ctx);
    if (r == NULL || seen == NULL)
        return false;
    for (size_t i = 0; i < items->len; i++) {
        jinja_value key;
        if (!sort_key(ctx, items->items[i], a[1], jinja_truthy(a[0]), &key))
            return false;
        if (jinja_dict_get(seen, key) != NULL)
            continue;
        if (!jinja_dict_set(ctx, seen, key, jinja_none()))
            return false;
        r->items[r->len++] = items->items[i];
    }
    *out = jinja_list_value(r);
    return true;
}

static bool min_max(jinja_ctx *ctx, jinja_value v, const jinja_args *args, bool want_max,
                    jinja_value *out)
{
    static const char *const params[] = {"case_sensitive", "attribute"};
    jinja_value a[2] = {jinja_bool(false), jinja_none()};
    jinja_list *items;
    if (!jinja_bind(ctx, want_max ? "max" : "min", params, 2, args, a) ||
        !jinja_iterate(ctx, v, &items))
        return false;
    if (items->len == 0) {
        *out = jinja_undefined("No aggregated item, sequence was empty.");
        return true;
    }
    size_t best = 0;
    jinja_value best_key;
    if (!sort_key(ctx, items->items[0], a[1], jinja_truthy(a[0]), &best_key))
        return false;
    for (size_t i = 1; i < items->len; i++) {
        jinja_value key;
        int c;
        if (!sort_key(ctx, items->items[i], a[1], jinja_truthy(a[0]), &key) ||
            !jinja_compare(ctx, key, best_key, &c))
            return false;
        if (c == (want_max ? 1 : -1)) {
            best = i;
            best_key = key;
        }
    }
    *out = items->items[best];
    return true;
}

static bool f_min(jinja_ctx *ctx, jinja_value v, const jinja_args *args, jinja_value *out)
{
    return min_max(ctx, v, args, false, out);
}

static bool f_max(jinja_ctx *ctx, jinja_value v, const jinja_args *args, jinja_value *out)
{
    return min_max(ctx, v, args, true, out);
}

static bool f_sum(jinja_ctx *ctx, jinja_value v, const jinja_args *args, jinja_value *out)
{
    static const char *const params[] = {"attribute", "start"};
    jinja_value a[2] = {jinja_none(), jinja_int(0)};
    jinja_list *items;
    if (!jinja_bind(ctx, "sum", params, 2, args, a) || !jinja_iterate(ctx, v, &items))
        return false;
    jinja_value total = a[1];
    for (size_t i = 0; i < items->len; i++) {
        jinja_value item = items->items[i];
        if (a[0].type != JINJA_NONE && !get_attribute_path(ctx, item, a[0], &item))
            return false;
        if (!jinja_binary(ctx, JINJA_OP_ADD, total, item, &total))
            return false;
    }
    *out = total;
    return true;
}

/* ---- map / select / reject ---- */

static bool f_map(jinja_ctx *ctx, jinja_value v, const jinja_args *args, jinja_value *out)
{
    jinja_list *items;
    if (!jinja_iterate(ctx, v, &items))
        return false;
    jinja_list *r = jinja_list_new(ctx, items->len);
    if (r == NULL)
        return false;
    if (args->n_pos == 0) {
        static const char *const params[] = {"attribute", "default"};
        jinja_value a[2] = {missing(), jinja_none()};
        bool has_default = false;
        for (size_t k = 0; k < args->n_kw; k++)
            has_default |= jinja_str_eq(args->kw_names[k], "default");
        if (!jinja_bind(ctx, "map", params, 2, args, a))
            return false;
        for (size_t i = 0; i < items->len; i++) {
            jinja_value x;
            if (!get_attribute_path(ctx, items->items[i], a[0], &x))
                return false;
            if (has_default && x.type == JINJA_UNDEFINED)
                x = a[1];
            r->items[r->len++] = x;
        }
        *out = jinja_list_value(r);
        return true;
    }
    if (args->pos[0].type != JINJA_STRING)
        return jinja_fail(ctx, "map: the filter name must be a string");
    jinja_args rest = *args;
    rest.pos++;
    rest.n_pos--;
    for (size_t i = 0; i < items->len; i++) {
        if (!jinja_apply_filter_named(ctx, args->pos[0].s, items->items[i], &rest,
                                      &r->items[r->len]))
            return false;
        r->len++;
    }
    *out = jinja_list_value(r);
    return true;
}

/* select/reject(test, *args) and selectattr/rejectattr(attr, test, *args). */
static bool select_common(jinja_ctx *ctx, jinja_value v, const jinja_args *args, bool by_attr,
                          bool keep_when, jinja_value *out)
{
    jinja_list *items;
    if (!jinja_iterate(ctx, v, &items))
        return false;
    size_t skip = by_attr ? 1 : 0;
    if (by_attr && args->n_pos < 1)
        return jinja_fail(ctx, "missing parameter for attribute name");
    bool has_test = args->n_pos > skip;
    if (has_test && args->pos[skip].type != JINJA_STRING)
        return jinja_fail(ctx, "the test name must be a string");
    jinja_args rest = *args;
    rest.pos += skip + (has_test ? 1 : 0);
    rest.n_pos -= skip + (has_test ? 1 : 0);
    jinja_list *r = jinja_list_new(ctx, items->len);
    if (r == NULL)
        return false;
    for (size_t i = 0; i < items->len; i++) {
        jinja_value x = items->items[i];
        bool pass;
        if (by_attr && !get_attribute_path(ctx, x, args->pos[0], &x))
            return false;
        if (has_test) {
            if (!jinja_apply_test_named(ctx, args->pos[skip].s, x, &rest, &pass))
                return false;
        } else {
            pass = jinja_truthy(x);
        }
        if (pass == keep_when)
            r->items[r->len++] = items->items[i];
    }
    *out = jinja_list_value(r);
    return true;
}

static bool f_select(jinja_ctx *ctx, jinja_value v, const jinja_args *args, jinja_value *out)
{
    return select_common(ctx, v, args, false, true, out);
}

static bool f_reject(jinja_ctx *ctx, jinja_value v, const jinja_args *args, jinja_value *out)
{
    return select_common(ctx, v, args, false, false, out);
}

static bool f_selectattr(jinja_ctx *ctx, jinja_value v, const jinja_args *args, jinja_value *out)
{
    return select_common(ctx, v, args, true, true, out);
}

static bool f_rejectattr(jinja_ctx *ctx, jinja_value v, const jinja_args *args, jinja_value *out)
{
    return select_common(ctx, v, args, true, false, out);
}

static bool f_attr(jinja_ctx *ctx, jinja_value v, const jinja_args *args, jinja_value *out)
{
    static const char *const params[] = {"name"};
    jinja_value a[1] = {missing()};
    if (!jinja_bind(ctx, "attr", params, 1, args, a))
        return false;
    if (a[0].type != JINJA_STRING)
        return jinja_fail(ctx, "attr: the name must be a string");
    return jinja_getattr(ctx, v, a[0].s, out);
}

/* ---- Filter table ---- */

typedef struct filter_entry {
    const char *name;
    jinja_filter_fn fn;
} filter_entry;

static const filter_entry filters[] = {
    {"abs", f_abs},
    {"attr", f_attr},
    {"batch", f_batch},
    {"capitalize", f_capitalize},
    {"center", f_center},
    {"count", f_length},
    {"d", f_default},
    {"default", f_default},
    {"dictsort", f_dictsort},
    {"e", f_escape},
    {"escape", f_escape},
    {"first", f_first},
    {"float", f_float},
    {"forceescape", f_forceescape},
    {"format", f_format},
    {"indent", f_indent},
    {"int", f_int},
    {"items", f_items},
    {"join", f_join},
    {"last", f_last},
    {"length", f_length},
    {"list", f_list},
    {"lower", f_lower},
    {"map", f_map},
    {"max", f_max},
    {"min", f_min},
    {"reject", f_reject},
    {"rejectattr", f_rejectattr},
    {"replace", f_replace},
    {"reverse", f_reverse},
    {"round", f_round},
    {"safe", f_safe},
    {"select", f_select},
    {"selectattr", f_selectattr},
    {"sort", f_sort},
    {"string", f_string},
    {"sum", f_sum},
    {"title", f_title},
    {"tojson", f_tojson},
    {"trim", f_trim},
    {"unique", f_unique},
    {"upper", f_upper},
    {"wordcount", f_wordcount},
};

jinja_filter_fn jinja_find_filter(jinja_str name)
{
    for (size_t i = 0; i < N_PARAMS(filters); i++) {
        if (jinja_str_eq(name, filters[i].name))
            return filters[i].fn;
    }
    return NULL;
}

bool jinja_apply_filter_named(jinja_ctx *ctx, jinja_str name, jinja_value v, const jinja_args *args,
                              jinja_value *out)
{
    jinja_filter_fn fn = jinja_find_filter(name);
    if (fn == NULL)
        return jinja_fail(ctx, "no filter named '%.*s'", (int)(name.len > 64 ? 64 : name.len),
                          name.ptr);
    return fn(ctx, v, args, out);
}

/* ---- Tests ---- */

static bool one_arg(jinja_ctx *ctx, const char *name, const jinja_args *args, jinja_value *arg)
{
    static const char *const params[] = {"other"};
    arg[0] = missing();
    return jinja_bind(ctx, name, params, 1, args, arg);
}

/* Records a test's answer after checking that it got no arguments. */
static bool answer(jinja_ctx *ctx, const char *name, const jinja_args *args, bool result, bool *out)
{
    *out = result;
    return no_args(ctx, name, args);
}

static bool t_defined(jinja_ctx *ctx, jinja_value v, const jinja_args *args, bool *out)
{
    return answer(ctx, "defined", args, v.type != JINJA_UNDEFINED, out);
}

static bool t_undefined(jinja_ctx *ctx, jinja_value v, const jinja_args *args, bool *out)
{
    return answer(ctx, "undefined", args, v.type == JINJA_UNDEFINED, out);
}

static bool t_none(jinja_ctx *ctx, jinja_value v, const jinja_args *args, bool *out)
{
    return answer(ctx, "none", args, v.type == JINJA_NONE, out);
}

static bool t_boolean(jinja_ctx *ctx, jinja_value v, const jinja_args *args, bool *out)
{
    return answer(ctx, "boolean", args, v.type == JINJA_BOOL, out);
}

static bool t_true(jinja_ctx *ctx, jinja_value v, const jinja_args *args, bool *out)
{
    return answer(ctx, "true", args, v.type == JINJA_BOOL && v.b, out);
}

static bool t_false(jinja_ctx *ctx, jinja_value v, const jinja_args *args, bool *out)
{
    return answer(ctx, "false", args, v.type == JINJA_BOOL && !v.b, out);
}

static bool t_integer(jinja_ctx *ctx, jinja_value v, const jinja_args *args, bool *out)
{
    return answer(ctx, "integer", args, v.type == JINJA_INT, out);
}

static bool t_float(jinja_ctx *ctx, jinja_value v, const jinja_args *args, bool *out)
{
    return answer(ctx, "float", args, v.type == JINJA_FLOAT, out);
}

static bool t_number(jinja_ctx *ctx, jinja_value v, const jinja_args *args, bool *out)
{
    return answer(ctx, "number", args, jinja_is_number(v), out);
}

static bool t_string(jinja_ctx *ctx, jinja_value v, const jinja_args *args, bool *out)
{
    return answer(ctx, "string", args, v.type == JINJA_STRING, out);
}

static bool t_mapping(jinja_ctx *ctx, jinja_value v, const jinja_args *args, bool *out)
{
    return answer(ctx, "mapping", args, v.type == JINJA_DICT, out);
}

static bool t_iterable(jinja_ctx *ctx, jinja_value v, const jinja_args *args, bool *out)
{
    return answer(ctx, "iterable", args,
                  v.type == JINJA_LIST || v.type == JINJA_TUPLE || v.type == JINJA_DICT ||
                      v.type == JINJA_STRING || v.type == JINJA_UNDEFINED,
                  out);
}

/* Anything with len() and [], which Jinja's Undefined also has. */
static bool t_sequence(jinja_ctx *ctx, jinja_value v, const jinja_args *args, bool *out)
{
    return answer(ctx, "sequence", args,
                  v.type == JINJA_LIST || v.type == JINJA_TUPLE || v.type == JINJA_DICT ||
                      v.type == JINJA_STRING || v.type == JINJA_UNDEFINED,
                  out);
}

static bool t_callable(jinja_ctx *ctx, jinja_value v, const jinja_args *args, bool *out)
{
    return answer(ctx, "callable", args, v.type == JINJA_CALLABLE, out);
}

static bool t_escaped(jinja_ctx *ctx, jinja_value v, const jinja_args *args, bool *out)
{
    (void)v;
    return answer(ctx, "escaped", args, false, out);
}

static bool t_modulo(jinja_ctx *ctx, jinja_value v, jinja_value by, bool *out)
{
    jinja_value r;
    if (!jinja_binary(ctx, JINJA_OP_MOD, v, by, &r))
        return false;
    *out = !jinja_truthy(r);
    return true;
}

static bool t_even(jinja_ctx *ctx, jinja_value v, const jinja_args *args, bool *out)
{
    return no_args(ctx, "even", args) && t_modulo(ctx, v, jinja_int(2), out);
}

static bool t_odd(jinja_ctx *ctx, jinja_value v, const jinja_args *args, bool *out)
{
    if (!no_args(ctx, "odd", args) || !t_modulo(ctx, v, jinja_int(2), out))
        return false;
    *out = !*out;
    return true;
}

static bool t_divisibleby(jinja_ctx *ctx, jinja_value v, const jinja_args *args, bool *out)
{
    jinja_value a[1];
    return one_arg(ctx, "divisibleby", args, a) && t_modulo(ctx, v, a[0], out);
}

static bool t_compare(jinja_ctx *ctx, jinja_value v, const jinja_args *args, jinja_op op,
                      const char *name, bool *out)
{
    jinja_value a[1], r;
    if (!one_arg(ctx, name, args, a) || !jinja_binary(ctx, op, v, a[0], &r))
        return false;
    *out = r.b;
    return true;
}

static bool t_eq(jinja_ctx *ctx, jinja_value v, const jinja_args *args, bool *out)
{
    return t_compare(ctx, v, args, JINJA_OP_EQ, "eq", out);
}

static bool t_ne(jinja_ctx *ctx, jinja_value v, const jinja_args *args, bool *out)
{
    return t_compare(ctx, v, args, JINJA_OP_NE, "ne", out);
}

static bool t_lt(jinja_ctx *ctx, jinja_value v, const jinja_args *args, bool *out)
{
    return t_compare(ctx, v, args, JINJA_OP_LT, "lt", out);
}

static bool t_le(jinja_ctx *ctx, jinja_value v, const jinja_args *args, bool *out)
{
    return t_compare(ctx, v, args, JINJA_OP_LE, "le", out);
}

static bool t_gt(jinja_ctx *ctx, jinja_value v, const jinja_args *args, bool *out)
{
    return t_compare(ctx, v, args, JINJA_OP_GT, "gt", out);
}

static bool t_ge(jinja_ctx *ctx, jinja_value v, const jinja_args *args, bool *out)
{
    return t_compare(ctx, v, args, JINJA_OP_GE, "ge", out);
}

static bool t_in(jinja_ctx *ctx, jinja_value v, const jinja_args *args, bool *out)
{
    return t_compare(ctx, v, args, JINJA_OP_IN, "in", out);
}

static bool t_sameas(jinja_ctx *ctx, jinja_value v, const jinja_args *args, bool *out)
{
    jinja_value a[1];
    if (!one_arg(ctx, "sameas", args, a))
        return false;
    jinja_value o = a[0];
    switch (v.type) {
    case JINJA_NONE:
    case JINJA_UNDEFINED:
        *out = o.type == v.type;
        break;
    case JINJA_BOOL:
        *out = o.type == JINJA_BOOL && o.b == v.b;
        break;
    case JINJA_INT:
        *out = o.type == JINJA_INT && o.i == v.i && v.i >= -5 && v.i <= 256;
        break;
    case JINJA_LIST:
    case JINJA_TUPLE:
        *out = o.type == v.type && o.list == v.list;
        break;
    case JINJA_DICT:
    case JINJA_NAMESPACE:
        *out = o.type == v.type && o.dict == v.dict;
        break;
    default:
        *out = false;
        break;
    }
    return true;
}

static bool t_case(jinja_ctx *ctx, jinja_value v, const jinja_args *args, bool upper, bool *out)
{
    jinja_str s;
    if (!no_args(ctx, upper ? "upper" : "lower", args) || !soft_str(ctx, v, &s) ||
        !jinja_charge(ctx, s.len))
        return false;
    bool cased = false, ok = true;
    for (size_t i = 0; i < s.len && ok;) {
        int32_t cp = jinja_utf8_next(s.ptr, s.len, &i);
        if (upper ? jinja_is_lower(cp) : jinja_is_upper(cp))
            ok = false;
        else if (jinja_is_cased(cp))
            cased = true;
    }
    *out = ok && cased;
    return true;
}

static bool t_lower(jinja_ctx *ctx, jinja_value v, const jinja_args *args, bool *out)
{
    return t_case(ctx, v, args, false, out);
}

static bool t_upper(jinja_ctx *ctx, jinja_value v, const jinja_args *args, bool *out)
{
    return t_case(ctx, v, args, true, out);
}

static bool t_filter(jinja_ctx *ctx, jinja_value v, const jinja_args *args, bool *out)
{
    *out = v.type == JINJA_STRING && jinja_find_filter(v.s) != NULL;
    return no_args(ctx, "filter", args);
}

static bool t_test(jinja_ctx *ctx, jinja_value v, const jinja_args *args, bool *out)
{
    *out = v.type == JINJA_STRING && jinja_find_test(v.s) != NULL;
    return no_args(ctx, "test", args);
}

typedef struct test_entry {
    const char *name;
    jinja_test_fn fn;
} test_entry;

static const test_entry tests[] = {
    {"!=", t_ne},
    {"<", t_lt},
    {"<=", t_le},
    {"==", t_eq},
    {">", t_gt},
    {">=", t_ge},
    {"boolean", t_boolean},
    {"callable", t_callable},
    {"defined", t_defined},
    {"divisibleby", t_divisibleby},
    {"eq", t_eq},
    {"equalto", t_eq},
    {"escaped", t_escaped},
    {"even", t_even},
    {"false", t_false},
    {"filter", t_filter},
    {"float", t_float},
    {"ge", t_ge},
    {"greaterthan", t_gt},
    {"gt", t_gt},
    {"in", t_in},
    {"integer", t_integer},
    {"iterable", t_iterable},
    {"le", t_le},
    {"lessthan", t_lt},
    {"lower", t_lower},
    {"lt", t_lt},
    {"mapping", t_mapping},
    {"ne", t_ne},
    {"none", t_none},
    {"number", t_number},
    {"odd", t_odd},
    {"sameas", t_sameas},
    {"sequence", t_sequence},
    {"string", t_string},
    {"test", t_test},
    {"true", t_true},
    {"undefined", t_undefined},
    {"upper", t_upper},
};

jinja_test_fn jinja_find_test(jinja_str name)
{
    for (size_t i = 0; i < N_PARAMS(tests); i++) {
        if (jinja_str_eq(name, tests[i].name))
            return tests[i].fn;
    }
    return NULL;
}

bool jinja_apply_test_named(jinja_ctx *ctx, jinja_str name, jinja_value v, const jinja_args *args,
                            bool *out)
{
    jinja_test_fn fn = jinja_find_test(name);
    if (fn == NULL)
        return jinja_fail(ctx, "no test named '%.*s'", (int)(name.len > 64 ? 64 : name.len),
                          name.ptr);
    return fn(ctx, v, args, out);
}
