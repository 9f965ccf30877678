/* Python methods of str, dict and list that templates call
 * (message.content.startswith(...), tool.items(), ...), the sandbox's
 * refusal of mutating ones, the global functions transformers provides, and
 * str.format / printf-style formatting. */
#include "tokenizer/jinja_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Jinja's sandbox refuses ranges longer than this. */
#define JINJA_MAX_RANGE 100000

static jinja_value missing(void)
{
    jinja_value v = {.type = JINJA_MISSING};
    return v;
}

static bool name_in(jinja_str name, const char *const *names)
{
    for (; *names != NULL; names++) {
        if (jinja_str_eq(name, *names))
            return true;
    }
    return false;
}

static const char *const str_methods[] = {
    "capitalize",   "center",  "count",      "endswith",   "find",    "format",     "index",
    "isalnum",      "isalpha", "isdecimal",  "isdigit",    "islower", "isnumeric",  "isspace",
    "isupper",      "join",    "ljust",      "lower",      "lstrip",  "partition",  "removeprefix",
    "removesuffix", "replace", "rfind",      "rindex",     "rjust",   "rpartition", "rsplit",
    "rstrip",       "split",   "splitlines", "startswith", "strip",   "swapcase",   "title",
    "upper",        "zfill",   NULL};
static const char *const dict_methods[] = {"copy", "get", "items", "keys", "values", NULL};
static const char *const dict_unsafe[] = {"clear", "pop", "popitem", "setdefault", "update", NULL};
static const char *const list_methods[] = {"copy", "count", "index", NULL};
static const char *const list_unsafe[] = {"append", "clear",   "extend", "insert", "pop",
                                          "remove", "reverse", "sort",   NULL};

bool jinja_has_method(jinja_value v, jinja_str name, bool *unsafe)
{
    *unsafe = false;
    switch (v.type) {
    case JINJA_STRING:
        return name_in(name, str_methods);
    case JINJA_DICT:
        if (name_in(name, dict_unsafe)) {
            *unsafe = true;
            return true;
        }
        return name_in(name, dict_methods);
    case JINJA_LIST:
        if (name_in(name, list_unsafe)) {
            *unsafe = true;
            return true;
        }
        return name_in(name, list_methods);
    case JINJA_TUPLE:
        return jinja_str_eq(name, "count") || jinja_str_eq(name, "index");
    default:
        return false;
    }
}

static bool want_string(jinja_ctx *ctx, const char *what, jinja_value v, jinja_str *out)
{
    if (v.type != JINJA_STRING)
        return jinja_fail(ctx, "%s: expected a string, not %s", what, jinja_type_name(v));
    *out = v.s;
    return true;
}

static bool want_int(jinja_ctx *ctx, const char *what, jinja_value v, int64_t *out)
{
    if (!jinja_is_integer(v))
        return jinja_fail(ctx, "%s: expected an integer, not %s", what, jinja_type_name(v));
    *out = v.type == JINJA_BOOL ? v.b : v.i;
    return true;
}

/* s[start:end] by code points, for the start/end arguments of find & co. */
static bool str_window(jinja_ctx *ctx, jinja_str s, jinja_value start, jinja_value end,
                       jinja_str *out, size_t *cp_start)
{
    if (!jinja_charge(ctx, s.len))
        return false;
    int64_t len = (int64_t)jinja_utf8_count(s.ptr, s.len), a = 0, b = len;
    if (start.type != JINJA_NONE && start.type != JINJA_MISSING &&
        !want_int(ctx, "start", start, &a))
        return false;
    if (end.type != JINJA_NONE && end.type != JINJA_MISSING && !want_int(ctx, "end", end, &b))
        return false;
    if (a < 0 && (a += len) < 0)
        a = 0;
    if (b < 0 && (b += len) < 0)
        b = 0;
    if (a > len)
        a = len;
    if (b > len)
        b = len;
    if (b < a)
        b = a;
    size_t ba = jinja_utf8_offset(s.ptr, s.len, (size_t)a);
    size_t bb = jinja_utf8_offset(s.ptr, s.len, (size_t)b);
    out->ptr = s.ptr + ba;
    out->len = bb - ba;
    *cp_start = (size_t)a;
    return true;
}

static bool m_startswith(jinja_ctx *ctx, jinja_str s, const jinja_args *args, bool ends,
                         jinja_value *out)
{
    static const char *const params[] = {"prefix", "start", "end"};
    jinja_value a[3] = {missing(), jinja_none(), jinja_none()};
    jinja_str win;
    size_t cp0;
    if (!jinja_bind(ctx, ends ? "endswith" : "startswith", params, 3, args, a) ||
        !str_window(ctx, s, a[1], a[2], &win, &cp0))
        return false;
    jinja_value p = a[0];
    size_t n = p.type == JINJA_TUPLE ? p.list->len : 1;
    for (size_t i = 0; i < n; i++) {
        jinja_str affix;
        if (!want_string(ctx, ends ? "endswith" : "startswith",
                         p.type == JINJA_TUPLE ? p.list->items[i] : p, &affix))
            return false;
        if (ends ? jinja_str_ends(win, affix) : jinja_str_starts(win, affix)) {
            *out = jinja_bool(true);
            return true;
        }
    }
    *out = jinja_bool(false);
    return true;
}

static bool m_split(jinja_ctx *ctx, jinja_str s, const jinja_args *args, bool right,
                    jinja_value *out)
{
    static const char *const params[] = {"sep", "maxsplit"};
    jinja_value a[2] = {jinja_none(), jinja_int(-1)};
    jinja_str sep;
    int64_t maxsplit;
    jinja_list *parts;
    if (!jinja_bind(ctx, right ? "rsplit" : "split", params, 2, args, a) ||
        !want_int(ctx, "maxsplit", a[1], &maxsplit))
        return false;
    bool has_sep = a[0].type != JINJA_NONE;
    if (has_sep && !want_string(ctx, "split", a[0], &sep))
        return false;
    if (!jinja_charge(ctx, s.len) ||
        !jinja_str_split(ctx, s, has_sep ? &sep : NULL, maxsplit, right, &parts))
        return false;
    *out = jinja_list_value(parts);
    return true;
}

static bool m_strip(jinja_ctx *ctx, jinja_str s, const jinja_args *args, bool left, bool right,
                    jinja_value *out)
{
    static const char *const params[] = {"chars"};
    jinja_value a[1] = {jinja_none()};
    jinja_str chars;
    if (!jinja_bind(ctx, "strip", params, 1, args, a))
        return false;
    bool has_chars = a[0].type != JINJA_NONE;
    if (has_chars && !want_string(ctx, "strip", a[0], &chars))
        return false;
    jinja_str r = jinja_str_strip(s, has_chars ? &chars : NULL, left, right);
    *out = jinja_string(r.ptr, r.len);
    return jinja_charge(ctx, (s.len - r.len) * (has_chars ? chars.len : 1));
}

static bool m_replace(jinja_ctx *ctx, jinja_str s, const jinja_args *args, jinja_value *out)
{
    static const char *const params[] = {"old", "new", "count"};
    jinja_value a[3] = {missing(), missing(), jinja_int(-1)};
    jinja_str old, new_;
    int64_t count;
    if (!jinja_bind(ctx, "replace", params, 3, args, a) ||
        !want_string(ctx, "replace", a[0], &old) || !want_string(ctx, "replace", a[1], &new_) ||
        !want_int(ctx, "count", a[2], &count))
        return false;
    return jinja_str_replace(ctx, s, old, new_, count, out);
}

/* find / rfind / index / rindex / count */
static bool m_find(jinja_ctx *ctx, jinja_str s, jinja_str name, const jinja_args *args,
                   jinja_value *out)
{
    static const char *const params[] = {"sub", "start", "end"};
    jinja_value a[3] = {missing(), jinja_none(), jinja_none()};
    jinja_str sub, win;
    size_t cp0;
    if (!jinja_bind(ctx, "find", params, 3, args, a) || !want_string(ctx, "find", a[0], &sub) ||
        !str_window(ctx, s, a[1], a[2], &win, &cp0))
        return false;
    if (jinja_str_eq(name, "count")) {
        *out = jinja_int(jinja_str_count(win, sub));
        return true;
    }
    bool last = name.ptr[0] == 'r';
    if (!jinja_charge(ctx, win.len))
        return false;
    int64_t at = jinja_str_find(win, sub, last);
    if (at < 0 && (jinja_str_eq(name, "index") || jinja_str_eq(name, "rindex")))
        return jinja_fail(ctx, "substring not found");
    *out = jinja_int(at < 0 ? -1 : (int64_t)(cp0 + jinja_utf8_count(win.ptr, (size_t)at)));
    return true;
}

static bool m_join(jinja_ctx *ctx, jinja_str sep, const jinja_args *args, jinja_value *out)
{
    static const char *const params[] = {"iterable"};
    jinja_value a[1] = {missing()};
    jinja_list *items;
    if (!jinja_bind(ctx, "join", params, 1, args, a) || !jinja_iterate(ctx, a[0], &items))
        return false;
    jinja_sb sb = {0};
    for (size_t i = 0; i < items->len; i++) {
        jinja_value item = items->items[i];
        if (item.type != JINJA_STRING)
            return jinja_fail(ctx, "sequence item %zu: expected str instance, %s found", i,
                              jinja_type_name(item));
        if ((i > 0 && !jinja_sb_append(ctx, &sb, sep.ptr, sep.len)) ||
            !jinja_sb_append(ctx, &sb, item.s.ptr, item.s.len))
            return false;
    }
    *out = jinja_sb_value(&sb);
    return true;
}

/* isalnum, isalpha, isdecimal, isdigit, isnumeric, isspace: every code
 * point passes, and there is at least one. */
static bool m_is_class(jinja_ctx *ctx, jinja_str s, jinja_str name, const jinja_args *args,
                       jinja_value *out)
{
    if (!jinja_bind(ctx, "is...", NULL, 0, args, NULL) || !jinja_charge(ctx, s.len))
        return false;
    bool ok = s.len > 0;
    for (size_t i = 0; i < s.len && ok;) {
        int32_t cp = jinja_utf8_next(s.ptr, s.len, &i);
        if (jinja_str_eq(name, "isalnum"))
            ok = jinja_is_alpha(cp) || jinja_is_numeric(cp);
        else if (jinja_str_eq(name, "isalpha"))
            ok = jinja_is_alpha(cp);
        else if (jinja_str_eq(name, "isdecimal"))
            ok = jinja_is_decimal(cp);
        else if (jinja_str_eq(name, "isdigit"))
            ok = jinja_is_digit(cp);
        else if (jinja_str_eq(name, "isnumeric"))
            ok = jinja_is_numeric(cp);
        else
            ok = jinja_is_space(cp);
    }
    *out = jinja_bool(ok);
    return true;
}

static bool m_is_case(jinja_ctx *ctx, jinja_str s, bool upper, const jinja_args *args,
                      jinja_value *out)
{
    if (!jinja_bind(ctx, upper ? "isupper" : "islower", NULL, 0, args, NULL) ||
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
    *out = jinja_bool(ok && cased);
    return true;
}

/* center / ljust / rjust / zfill */
static bool m_pad(jinja_ctx *ctx, jinja_str s, jinja_str name, const jinja_args *args,
                  jinja_value *out)
{
    static const char *const params[] = {"width", "fillchar"};
    jinja_value a[2] = {missing(), jinja_cstring(" ")};
    bool zfill = jinja_str_eq(name, "zfill");
    int64_t width;
    jinja_str fill;
    if (!jinja_bind(ctx, "pad", params, zfill ? 1 : 2, args, a) ||
        !want_int(ctx, "width", a[0], &width) || !want_string(ctx, "fillchar", a[1], &fill))
        return false;
    if (jinja_utf8_count(fill.ptr, fill.len) != 1)
        return jinja_fail(ctx, "The fill character must be exactly one character long");
    int64_t len = (int64_t)jinja_utf8_count(s.ptr, s.len);
    if (width > (int64_t)JINJA_MAX_OUTPUT)
        return jinja_fail(ctx, "width %lld is too large", (long long)width);
    int64_t marg = width > len ? width - len : 0, left;
    if (jinja_str_eq(name, "ljust"))
        left = 0;
    else if (jinja_str_eq(name, "center"))
        left = marg / 2 + (marg & width & 1);
    else
        left = marg;
    jinja_sb sb = {0};
    size_t body = 0;
    if (zfill) {
        fill = (jinja_str){"0", 1};
        if (s.len > 0 && (s.ptr[0] == '+' || s.ptr[0] == '-')) {
            body = 1;
            if (!jinja_sb_putc(ctx, &sb, s.ptr[0]))
                return false;
        }
    }
    for (int64_t i = 0; i < marg; i++) {
        if (i == left && !jinja_sb_append(ctx, &sb, s.ptr + body, s.len - body))
            return false;
        if (!jinja_sb_append(ctx, &sb, fill.ptr, fill.len))
            return false;
    }
    if (left == marg && !jinja_sb_append(ctx, &sb, s.ptr + body, s.len - body))
        return false;
    *out = jinja_sb_value(&sb);
    return true;
}

static bool m_partition(jinja_ctx *ctx, jinja_str s, bool right, const jinja_args *args,
                        jinja_value *out)
{
    static const char *const params[] = {"sep"};
    jinja_value a[1] = {missing()};
    jinja_str sep;
    if (!jinja_bind(ctx, "partition", params, 1, args, a) ||
        !want_string(ctx, "partition", a[0], &sep))
        return false;
    if (sep.len == 0)
        return jinja_fail(ctx, "empty separator");
    jinja_list *t = jinja_list_new(ctx, 3);
    if (t == NULL)
        return false;
    int64_t at = jinja_str_find(s, sep, right);
    if (at < 0) {
        jinja_value empty = jinja_string("", 0), whole = jinja_string(s.ptr, s.len);
        t->items[0] = right ? empty : whole;
        t->items[1] = empty;
        t->items[2] = right ? whole : empty;
    } else {
        t->items[0] = jinja_string(s.ptr, (size_t)at);
        t->items[1] = jinja_string(s.ptr + at, sep.len);
        t->items[2] = jinja_string(s.ptr + at + sep.len, s.len - (size_t)at - sep.len);
    }
    t->len = 3;
    *out = jinja_tuple_value(t);
    return true;
}

static bool m_remove_affix(jinja_ctx *ctx, jinja_str s, bool suffix, const jinja_args *args,
                           jinja_value *out)
{
    static const char *const params[] = {"affix"};
    jinja_value a[1] = {missing()};
    jinja_str affix;
    if (!jinja_bind(ctx, "removeprefix", params, 1, args, a) ||
        !want_string(ctx, "removeprefix", a[0], &affix))
        return false;
    if (suffix && jinja_str_ends(s, affix))
        s.len -= affix.len;
    else if (!suffix && jinja_str_starts(s, affix)) {
        s.ptr += affix.len;
        s.len -= affix.len;
    }
    *out = jinja_string(s.ptr, s.len);
    return true;
}

static bool m_case(jinja_ctx *ctx, jinja_str s, jinja_case mode, const jinja_args *args,
                   jinja_value *out)
{
    return jinja_bind(ctx, "case method", NULL, 0, args, NULL) && jinja_str_case(ctx, s, mode, out);
}

static bool m_splitlines(jinja_ctx *ctx, jinja_str s, const jinja_args *args, jinja_value *out)
{
    static const char *const params[] = {"keepends"};
    jinja_value a[1] = {jinja_bool(false)};
    jinja_list *lines;
    if (!jinja_bind(ctx, "splitlines", params, 1, args, a) ||
        !jinja_str_splitlines(ctx, s, jinja_truthy(a[0]), &lines))
        return false;
    *out = jinja_list_value(lines);
    return true;
}

static bool call_str_method(jinja_ctx *ctx, jinja_str s, jinja_str name, const jinja_args *args,
                            jinja_value *out)
{
    if (jinja_str_eq(name, "startswith") || jinja_str_eq(name, "endswith"))
        return m_startswith(ctx, s, args, name.ptr[0] == 'e', out);
    if (jinja_str_eq(name, "split") || jinja_str_eq(name, "rsplit"))
        return m_split(ctx, s, args, name.ptr[0] == 'r', out);
    if (jinja_str_eq(name, "strip"))
        return m_strip(ctx, s, args, true, true, out);
    if (jinja_str_eq(name, "lstrip"))
        return m_strip(ctx, s, args, true, false, out);
    if (jinja_str_eq(name, "rstrip"))
        return m_strip(ctx, s, args, false, true, out);
    if (jinja_str_eq(name, "replace"))
        return m_replace(ctx, s, args, out);
    if (name_in(name, (const char *const[]){"find", "rfind", "index", "rindex", "count", NULL}))
        return m_find(ctx, s, name, args, out);
    if (jinja_str_eq(name, "join"))
        return m_join(ctx, s, args, out);
    if (jinja_str_eq(name, "format"))
        return jinja_str_format(ctx, s, args, out);
    if (jinja_str_eq(name, "upper"))
        return m_case(ctx, s, JINJA_UPPER, args, out);
    if (jinja_str_eq(name, "lower"))
        return m_case(ctx, s, JINJA_LOWER, args, out);
    if (jinja_str_eq(name, "title"))
        return m_case(ctx, s, JINJA_TITLE, args, out);
    if (jinja_str_eq(name, "capitalize"))
        return m_case(ctx, s, JINJA_CAPITALIZE, args, out);
    if (jinja_str_eq(name, "swapcase"))
        return m_case(ctx, s, JINJA_SWAPCASE, args, out);
    if (jinja_str_eq(name, "isupper") || jinja_str_eq(name, "islower"))
        return m_is_case(ctx, s, name.ptr[2] == 'u', args, out);
    if (name.len > 2 && name.ptr[0] == 'i' && name.ptr[1] == 's')
        return m_is_class(ctx, s, name, args, out);
    if (name_in(name, (const char *const[]){"center", "ljust", "rjust", "zfill", NULL}))
        return m_pad(ctx, s, name, args, out);
    if (jinja_str_eq(name, "partition") || jinja_str_eq(name, "rpartition"))
        return m_partition(ctx, s, name.ptr[0] == 'r', args, out);
    if (jinja_str_eq(name, "removeprefix") || jinja_str_eq(name, "removesuffix"))
        return m_remove_affix(ctx, s, name.ptr[6] == 's', args, out);
    if (jinja_str_eq(name, "splitlines"))
        return m_splitlines(ctx, s, args, out);
    return jinja_fail(ctx, "'str' object has no attribute '%.*s'", (int)name.len, name.ptr);
}

/* ---- dict and list methods ---- */

static bool call_dict_method(jinja_ctx *ctx, jinja_dict *d, jinja_str name, const jinja_args *args,
                             jinja_value *out)
{
    if (jinja_str_eq(name, "get")) {
        static const char *const params[] = {"key", "default"};
        jinja_value a[2] = {missing(), jinja_none()};
        if (!jinja_bind(ctx, "get", params, 2, args, a))
            return false;
        const jinja_value *v = jinja_dict_get(d, a[0]);
        *out = v != NULL ? *v : a[1];
        return true;
    }
    if (!jinja_bind(ctx, "dict method", NULL, 0, args, NULL))
        return false;
    if (jinja_str_eq(name, "copy")) {
        jinja_dict *copy = jinja_dict_new(ctx);
        if (copy == NULL)
            return false;
        for (size_t e = 0; e < d->len; e++) {
            if (!jinja_dict_set(ctx, copy, d->keys[e], d->vals[e]))
                return false;
        }
        *out = jinja_dict_value(copy);
        return true;
    }
    jinja_list *list = jinja_list_new(ctx, d->len);
    if (list == NULL)
        return false;
    for (size_t e = 0; e < d->len; e++) {
        jinja_value item = jinja_str_eq(name, "keys") ? d->keys[e] : d->vals[e];
        if (jinja_str_eq(name, "items")) {
            jinja_list *pair = jinja_list_new(ctx, 2);
            if (pair == NULL)
                return false;
            pair->items[0] = d->keys[e];
            pair->items[1] = d->vals[e];
            pair->len = 2;
            item = jinja_tuple_value(pair);
        }
        list->items[list->len++] = item;
    }
    *out = jinja_list_value(list);
    return true;
}

static bool call_list_method(jinja_ctx *ctx, jinja_value self, jinja_str name,
                             const jinja_args *args, jinja_value *out)
{
    const jinja_list *l = self.list;
    if (jinja_str_eq(name, "copy")) {
        jinja_list *copy = jinja_list_new(ctx, l->len);
        if (copy == NULL || !jinja_bind(ctx, "copy", NULL, 0, args, NULL))
            return false;
        memcpy(copy->items, l->items, l->len * sizeof(jinja_value));
        copy->len = l->len;
        *out = jinja_list_value(copy);
        return true;
    }
    static const char *const params[] = {"value"};
    jinja_value a[1] = {missing()};
    if (!jinja_bind(ctx, "list method", params, 1, args, a))
        return false;
    int64_t count = 0;
    for (size_t i = 0; i < l->len; i++) {
        bool eq;
        if (!jinja_equals(ctx, l->items[i], a[0], &eq))
            return false;
        if (eq && jinja_str_eq(name, "index")) {
            *out = jinja_int((int64_t)i);
            return true;
        }
        count += eq;
    }
    if (jinja_str_eq(name, "index"))
        return jinja_fail(ctx, "value is not in list");
    *out = jinja_int(count);
    return true;
}

bool jinja_call_method(jinja_ctx *ctx, jinja_value self, jinja_str name, const jinja_args *args,
                       jinja_value *out)
{
    switch (self.type) {
    case JINJA_STRING:
        return call_str_method(ctx, self.s, name, args, out);
    case JINJA_DICT:
        return call_dict_method(ctx, self.dict, name, args, out);
    case JINJA_LIST:
    case JINJA_TUPLE:
        return call_list_method(ctx, self, name, args, out);
    default:
        return jinja_fail(ctx, "'%s' object has no attribute '%.*s'", jinja_type_name(self),
                          (int)name.len, name.ptr);
    }
}

/* ---- Globals ---- */

static const char *const global_names[] = {"range",           "namespace",    "dict",
                                           "raise_exception", "strftime_now", NULL};

bool jinja_lookup_global(jinja_ctx *ctx, jinja_str name, jinja_value *out)
{
    if (!name_in(name, global_names))
        return false;
    jinja_callable *fn = jinja_alloc(ctx, sizeof(*fn));
    if (fn == NULL)
        return false;
    fn->kind = JINJA_FN_GLOBAL;
    fn->name = name;
    out->type = JINJA_CALLABLE;
    out->fn = fn;
    return true;
}

static bool g_range(jinja_ctx *ctx, const jinja_args *args, jinja_value *out)
{
    int64_t v[3] = {0, 0, 1};
    if (args->n_kw > 0 || args->n_pos < 1 || args->n_pos > 3)
        return jinja_fail(ctx, "range expects 1 to 3 positional integer arguments");
    for (size_t i = 0; i < args->n_pos; i++) {
        if (!want_int(ctx, "range", args->pos[i], &v[i]))
            return false;
    }
    int64_t start = args->n_pos == 1 ? 0 : v[0];
    int64_t stop = args->n_pos == 1 ? v[0] : v[1];
    int64_t step = args->n_pos == 3 ? v[2] : 1;
    if (step == 0)
        return jinja_fail(ctx, "range() arg 3 must not be zero");
    double count = 0;
    if (step > 0 && stop > start)
        count = ceil(((double)stop - (double)start) / (double)step);
    else if (step < 0 && stop < start)
        count = ceil(((double)start - (double)stop) / -(double)step);
    if (count > JINJA_MAX_RANGE)
        return jinja_fail(ctx, "range too big: the sandbox blocks ranges larger than %d",
                          JINJA_MAX_RANGE);
    jinja_list *list = jinja_list_new(ctx, (size_t)count);
    if (list == NULL)
        return false;
    for (int64_t i = 0; i < (int64_t)count; i++)
        list->items[list->len++] = jinja_int(start + i * step);
    *out = jinja_list_value(list);
    return true;
}

/* dict(**kwargs) / namespace(**kwargs), optionally from a mapping first. */
static bool g_mapping(jinja_ctx *ctx, const jinja_args *args, bool is_namespace, jinja_value *out)
{
    jinja_dict *d = jinja_dict_new(ctx);
    if (d == NULL)
        return false;
    if (args->n_pos > 1)
        return jinja_fail(ctx, "expected at most 1 positional argument");
    if (args->n_pos == 1) {
        jinja_value src = args->pos[0];
        if (src.type != JINJA_DICT && src.type != JINJA_NAMESPACE)
            return jinja_fail(ctx, "expected a mapping, not %s", jinja_type_name(src));
        for (size_t e = 0; e < src.dict->len; e++) {
            if (!jinja_dict_set(ctx, d, src.dict->keys[e], src.dict->vals[e]))
                return false;
        }
    }
    for (size_t k = 0; k < args->n_kw; k++) {
        jinja_value key = jinja_string(args->kw_names[k].ptr, args->kw_names[k].len);
        if (!jinja_dict_set(ctx, d, key, args->kw_vals[k]))
            return false;
    }
    *out = jinja_dict_value(d);
    if (is_namespace)
        out->type = JINJA_NAMESPACE;
    return true;
}

static bool g_strftime_now(jinja_ctx *ctx, const jinja_args *args, jinja_value *out)
{
    static const char *const params[] = {"format"};
    jinja_value a[1] = {missing()};
    jinja_str fmt;
    if (!jinja_bind(ctx, "strftime_now", params, 1, args, a) ||
        !want_string(ctx, "strftime_now", a[0], &fmt))
        return false;
    char *cfmt = jinja_strdup(ctx, fmt.ptr, fmt.len);
    size_t cap = fmt.len * 8 + 64;
    char *buf = jinja_alloc(ctx, cap);
    if (cfmt == NULL || buf == NULL)
        return false;
    time_t now = time(NULL);
    struct tm tm;
    if (localtime_r(&now, &tm) == NULL)
        return jinja_fail(ctx, "strftime_now: cannot read the local time");
    size_t n = strftime(buf, cap, cfmt, &tm);
    *out = jinja_string(buf, n);
    return true;
}

bool jinja_call_global(jinja_ctx *ctx, jinja_str name, const jinja_args *args, jinja_value *out)
{
    if (jinja_str_eq(name, "range"))
        return g_range(ctx, args, out);
    if (jinja_str_eq(name, "namespace") || jinja_str_eq(name, "dict"))
        return g_mapping(ctx, args, name.ptr[0] == 'n', out);
    if (jinja_str_eq(name, "strftime_now"))
        return g_strftime_now(ctx, args, out);
    /* raise_exception(message) */
    jinja_value msg = args->n_pos > 0 ? args->pos[0] : jinja_cstring("");
    jinja_value text;
    if (!jinja_to_string(ctx, msg, &text))
        return false;
    return jinja_fail(ctx, "%.*s", (int)(text.s.len > 900 ? 900 : text.s.len), text.s.ptr);
}

/* ---- str.format ---- */

static bool format_field(jinja_ctx *ctx, jinja_str field, const jinja_args *args, size_t *auto_idx,
                         jinja_sb *sb)
{
    size_t i = 0;
    while (i < field.len && field.ptr[i] != '.' && field.ptr[i] != '[' && field.ptr[i] != '!' &&
           field.ptr[i] != ':')
        i++;
    jinja_str head = {field.ptr, i};
    jinja_value v = missing();
    if (head.len == 0) {
        if (*auto_idx < args->n_pos)
            v = args->pos[*auto_idx];
        (*auto_idx)++;
    } else if (head.ptr[0] >= '0' && head.ptr[0] <= '9') {
        size_t idx = (size_t)strtoul(head.ptr, NULL, 10);
        if (idx < args->n_pos)
            v = args->pos[idx];
    } else {
        for (size_t k = 0; k < args->n_kw; k++) {
            if (args->kw_names[k].len == head.len &&
                memcmp(args->kw_names[k].ptr, head.ptr, head.len) == 0)
                v = args->kw_vals[k];
        }
    }
    if (v.type == JINJA_MISSING)
        return jinja_fail(ctx, "format: no value for field '%.*s'", (int)field.len, field.ptr);
    while (i < field.len && (field.ptr[i] == '.' || field.ptr[i] == '[')) {
        bool item = field.ptr[i] == '[';
        size_t start = ++i;
        while (i < field.len && field.ptr[i] != (item ? ']' : '.') && (item || field.ptr[i] != '['))
            i++;
        jinja_str key = {field.ptr + start, i - start};
        jinja_value key_value = jinja_string(key.ptr, key.len);
        bool digits = key.len > 0 && key.len < 18;
        for (size_t k = 0; k < key.len && digits; k++)
            digits = key.ptr[k] >= '0' && key.ptr[k] <= '9';
        if (digits) /* "{0[1]}" indexes with the number 1, as Python does */
            key_value = jinja_int(strtoll(key.ptr, NULL, 10));
        bool ok = item ? jinja_getitem(ctx, v, key_value, &v) : jinja_getattr(ctx, v, key, &v);
        if (!ok)
            return false;
        if (item && i < field.len)
            i++;
    }
    bool repr = i + 1 < field.len && field.ptr[i] == '!' && field.ptr[i + 1] == 'r';
    if (i < field.len && field.ptr[i] == '!')
        i += 2;
    if (i < field.len)
        return jinja_fail(ctx, "format: format specs are not supported ('%.*s')", (int)field.len,
                          field.ptr);
    return repr ? jinja_write_repr(ctx, sb, v, 0) : jinja_write_str(ctx, sb, v);
}

bool jinja_str_format(jinja_ctx *ctx, jinja_str fmt, const jinja_args *args, jinja_value *out)
{
    jinja_sb sb = {0};
    size_t auto_idx = 0;
    for (size_t i = 0; i < fmt.len; i++) {
        char c = fmt.ptr[i];
        if ((c == '{' || c == '}') && i + 1 < fmt.len && fmt.ptr[i + 1] == c) {
            if (!jinja_sb_putc(ctx, &sb, c))
                return false;
            i++;
            continue;
        }
        if (c == '}')
            return jinja_fail(ctx, "Single '}' encountered in format string");
        if (c != '{') {
            if (!jinja_sb_putc(ctx, &sb, c))
                return false;
            continue;
        }
        const char *close = memchr(fmt.ptr + i, '}', fmt.len - i);
        if (close == NULL)
            return jinja_fail(ctx, "Single '{' encountered in format string");
        jinja_str field = {fmt.ptr + i + 1, (size_t)(close - fmt.ptr) - i - 1};
        if (!format_field(ctx, field, args, &auto_idx, &sb))
            return false;
        i = (size_t)(close - fmt.ptr);
    }
    *out = jinja_sb_value(&sb);
    return true;
}

/* ---- printf-style formatting: "%s" % value ---- */

typedef struct percent_spec {
    char flags[8];
    int width;
    int precision; /* -1: none */
    char conv;
} percent_spec;

static bool percent_number(jinja_ctx *ctx, const percent_spec *sp, jinja_value v, jinja_sb *sb)
{
    if (!jinja_is_number(v))
        return jinja_fail(ctx, "%%%c format: a real number is required, not %s", sp->conv,
                          jinja_type_name(v));
    char fmt[32];
    if (sp->conv == 'd' || sp->conv == 'i' || sp->conv == 'x' || sp->conv == 'X' ||
        sp->conv == 'o') {
        double d = jinja_as_double(v);
        long long i = v.type == JINJA_FLOAT ? (long long)trunc(d)
                                            : (long long)(v.type == JINJA_BOOL ? v.b : v.i);
        char conv = sp->conv == 'i' ? 'd' : sp->conv;
        snprintf(fmt, sizeof(fmt), "%%%s*.*ll%c", sp->flags, conv);
        return jinja_sb_printf(ctx, sb, fmt, sp->width, sp->precision < 0 ? 1 : sp->precision, i);
    }
    snprintf(fmt, sizeof(fmt), "%%%s*.*%c", sp->flags, sp->conv);
    return jinja_sb_printf(ctx, sb, fmt, sp->width, sp->precision < 0 ? 6 : sp->precision,
                           jinja_as_double(v));
}

static bool percent_one(jinja_ctx *ctx, const percent_spec *sp, jinja_value v, jinja_sb *sb)
{
    if (sp->conv == 's' || sp->conv == 'r') {
        jinja_sb text = {0};
        bool ok =
            sp->conv == 'r' ? jinja_write_repr(ctx, &text, v, 0) : jinja_write_str(ctx, &text, v);
        if (!ok)
            return false;
        size_t len = text.len;
        if (sp->precision >= 0)
            len = jinja_utf8_offset(text.data, text.len, (size_t)sp->precision);
        int64_t pad = sp->width - (int64_t)jinja_utf8_count(text.data, len);
        bool left = strchr(sp->flags, '-') != NULL;
        for (int64_t i = 0; !left && i < pad; i++) {
            if (!jinja_sb_putc(ctx, sb, ' '))
                return false;
        }
        if (!jinja_sb_append(ctx, sb, text.data != NULL ? text.data : "", len))
            return false;
        for (int64_t i = 0; left && i < pad; i++) {
            if (!jinja_sb_putc(ctx, sb, ' '))
                return false;
        }
        return true;
    }
    if (strchr("diouxXeEfFgG", sp->conv) == NULL || sp->conv == '\0')
        return jinja_fail(ctx, "unsupported format character '%c'", sp->conv);
    return percent_number(ctx, sp, v, sb);
}

static size_t parse_percent_spec(jinja_str fmt, size_t i, percent_spec *sp, jinja_str *key)
{
    memset(sp, 0, sizeof(*sp));
    sp->precision = -1;
    key->ptr = NULL;
    if (i < fmt.len && fmt.ptr[i] == '(') {
        size_t start = ++i;
        while (i < fmt.len && fmt.ptr[i] != ')')
            i++;
        key->ptr = fmt.ptr + start;
        key->len = i - start;
        i++;
    }
    size_t nf = 0;
    while (i < fmt.len && strchr("-+ #0", fmt.ptr[i]) != NULL && fmt.ptr[i] != '\0') {
        if (nf + 1 < sizeof(sp->flags))
            sp->flags[nf++] = fmt.ptr[i];
        i++;
    }
    while (i < fmt.len && fmt.ptr[i] >= '0' && fmt.ptr[i] <= '9' && sp->width < 10000)
        sp->width = sp->width * 10 + (fmt.ptr[i++] - '0');
    if (i < fmt.len && fmt.ptr[i] == '.') {
        sp->precision = 0;
        i++;
        while (i < fmt.len && fmt.ptr[i] >= '0' && fmt.ptr[i] <= '9' && sp->precision < 10000)
            sp->precision = sp->precision * 10 + (fmt.ptr[i++] - '0');
    }
    sp->conv = i < fmt.len ? fmt.ptr[i++] : '\0';
    return i;
}

bool jinja_percent_format(jinja_ctx *ctx, jinja_str fmt, jinja_value args, jinja_value *out)
{
    jinja_sb sb = {0};
    size_t next = 0;
    bool is_tuple = args.type == JINJA_TUPLE;
    for (size_t i = 0; i < fmt.len; i++) {
        if (fmt.ptr[i] != '%') {
            if (!jinja_sb_putc(ctx, &sb, fmt.ptr[i]))
                return false;
            continue;
        }
        if (i + 1 < fmt.len && fmt.ptr[i + 1] == '%') {
            if (!jinja_sb_putc(ctx, &sb, '%'))
                return false;
            i++;
            continue;
        }
        percent_spec sp;
        jinja_str key;
        size_t end = parse_percent_spec(fmt, i + 1, &sp, &key);
        jinja_value v;
        if (key.ptr != NULL) {
            if (args.type != JINJA_DICT)
                return jinja_fail(ctx, "format requires a mapping");
            const jinja_value *found = jinja_dict_get_str(args.dict, key.ptr, key.len);
            if (found == NULL)
                return jinja_fail(ctx, "format: missing key '%.*s'", (int)key.len, key.ptr);
            v = *found;
        } else if (is_tuple) {
            if (next >= args.list->len)
                return jinja_fail(ctx, "not enough arguments for format string");
            v = args.list->items[next++];
        } else {
            if (next++ > 0)
                return jinja_fail(ctx, "not enough arguments for format string");
            v = args;
        }
        if (!percent_one(ctx, &sp, v, &sb))
            return false;
        i = end - 1;
    }
    bool unused = is_tuple ? next < args.list->len : args.type != JINJA_DICT && next == 0;
    if (unused)
        return jinja_fail(ctx, "not all arguments converted during string formatting");
    *out = jinja_sb_value(&sb);
    return true;
}
