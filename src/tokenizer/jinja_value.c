/* Values with Python semantics: construction, containers, truthiness,
 * str()/repr(), equality and ordering. */
#include "tokenizer/jinja_internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Construction ---- */

jinja_value jinja_undefined(const char *hint)
{
    jinja_value v = {.type = JINJA_UNDEFINED};
    v.hint = hint;
    return v;
}

jinja_value jinja_undefined_fmt(jinja_ctx *ctx, const char *fmt, ...)
{
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (n < 0)
        return jinja_undefined(NULL);
    size_t len = strlen(buf);
    char *hint = jinja_strdup(ctx, buf, len);
    return jinja_undefined(hint);
}

jinja_value jinja_none(void)
{
    jinja_value v = {.type = JINJA_NONE};
    return v;
}

jinja_value jinja_bool(bool b)
{
    jinja_value v = {.type = JINJA_BOOL};
    v.b = b;
    return v;
}

jinja_value jinja_int(int64_t i)
{
    jinja_value v = {.type = JINJA_INT};
    v.i = i;
    return v;
}

jinja_value jinja_float(double f)
{
    jinja_value v = {.type = JINJA_FLOAT};
    v.f = f;
    return v;
}

jinja_value jinja_string(const char *ptr, size_t len)
{
    jinja_value v = {.type = JINJA_STRING};
    v.s.ptr = ptr != NULL ? ptr : "";
    v.s.len = len;
    return v;
}

jinja_value jinja_cstring(const char *s)
{
    return jinja_string(s, strlen(s));
}

/* ---- Lists ---- */

jinja_list *jinja_list_new(jinja_ctx *ctx, size_t cap)
{
    jinja_list *list = jinja_alloc(ctx, sizeof(*list));
    if (list == NULL)
        return NULL;
    /* Never NULL items, so that copying zero of them is well defined. */
    if (cap == 0)
        cap = 1;
    list->items = jinja_alloc_array(ctx, cap, sizeof(jinja_value));
    if (list->items == NULL)
        return NULL;
    list->cap = cap;
    return list;
}

bool jinja_list_push(jinja_ctx *ctx, jinja_list *list, jinja_value v)
{
    if (list->len == list->cap) {
        size_t cap = list->cap < 4 ? 8 : list->cap * 2;
        jinja_value *items = jinja_alloc_array(ctx, cap, sizeof(jinja_value));
        if (items == NULL)
            return false;
        if (list->len > 0)
            memcpy(items, list->items, list->len * sizeof(jinja_value));
        list->items = items;
        list->cap = cap;
    }
    list->items[list->len++] = v;
    return true;
}

jinja_value jinja_list_value(jinja_list *list)
{
    jinja_value v = {.type = JINJA_LIST};
    v.list = list;
    return v;
}

jinja_value jinja_tuple_value(jinja_list *list)
{
    jinja_value v = {.type = JINJA_TUPLE};
    v.list = list;
    return v;
}

/* ---- Dicts ---- */

jinja_dict *jinja_dict_new(jinja_ctx *ctx)
{
    return jinja_alloc(ctx, sizeof(jinja_dict));
}

jinja_value jinja_dict_value(jinja_dict *d)
{
    jinja_value v = {.type = JINJA_DICT};
    v.dict = d;
    return v;
}

bool jinja_is_hashable(jinja_value v)
{
    switch (v.type) {
    case JINJA_NONE:
    case JINJA_BOOL:
    case JINJA_INT:
    case JINJA_FLOAT:
    case JINJA_STRING:
        return true;
    default:
        return false;
    }
}

static uint64_t jinja_hash_bytes(const char *p, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static uint64_t jinja_hash_int(int64_t i)
{
    uint64_t x = (uint64_t)i;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return x;
}

/* Equal keys hash equally: 1, 1.0 and True are one key, as in Python. */
static uint64_t jinja_hash(jinja_value v)
{
    switch (v.type) {
    case JINJA_STRING:
        return jinja_hash_bytes(v.s.ptr, v.s.len);
    case JINJA_BOOL:
        return jinja_hash_int(v.b);
    case JINJA_INT:
        return jinja_hash_int(v.i);
    case JINJA_FLOAT:
        if (v.f == floor(v.f) && fabs(v.f) < 9.2e18)
            return jinja_hash_int((int64_t)v.f);
        return jinja_hash_bytes((const char *)&v.f, sizeof(v.f));
    default:
        return 7;
    }
}

static bool jinja_key_equal(jinja_value a, jinja_value b)
{
    if (a.type == JINJA_STRING || b.type == JINJA_STRING)
        return a.type == b.type && a.s.len == b.s.len && memcmp(a.s.ptr, b.s.ptr, a.s.len) == 0;
    if (jinja_is_number(a) && jinja_is_number(b)) {
        if (a.type == JINJA_FLOAT || b.type == JINJA_FLOAT)
            return jinja_as_double(a) == jinja_as_double(b);
        return (a.type == JINJA_BOOL ? a.b : a.i) == (b.type == JINJA_BOOL ? b.b : b.i);
    }
    return a.type == JINJA_NONE && b.type == JINJA_NONE;
}

static bool jinja_dict_reindex(jinja_ctx *ctx, jinja_dict *d, size_t index_cap)
{
    uint32_t *index = jinja_alloc_array(ctx, index_cap, sizeof(uint32_t));
    if (index == NULL)
        return false;
    for (size_t e = 0; e < d->len; e++) {
        size_t slot = (size_t)jinja_hash(d->keys[e]) & (index_cap - 1);
        while (index[slot] != 0)
            slot = (slot + 1) & (index_cap - 1);
        index[slot] = (uint32_t)(e + 1);
    }
    d->index = index;
    d->index_cap = index_cap;
    return true;
}

static int64_t jinja_dict_find(const jinja_dict *d, jinja_value key)
{
    if (d->index == NULL) {
        for (size_t e = 0; e < d->len; e++) {
            if (jinja_key_equal(d->keys[e], key))
                return (int64_t)e;
        }
        return -1;
    }
    size_t slot = (size_t)jinja_hash(key) & (d->index_cap - 1);
    while (d->index[slot] != 0) {
        size_t e = d->index[slot] - 1;
        if (jinja_key_equal(d->keys[e], key))
            return (int64_t)e;
        slot = (slot + 1) & (d->index_cap - 1);
    }
    return -1;
}

const jinja_value *jinja_dict_get(const jinja_dict *d, jinja_value key)
{
    if (!jinja_is_hashable(key))
        return NULL;
    int64_t e = jinja_dict_find(d, key);
    return e >= 0 ? &d->vals[e] : NULL;
}

const jinja_value *jinja_dict_get_str(const jinja_dict *d, const char *ptr, size_t len)
{
    return jinja_dict_get(d, jinja_string(ptr, len));
}

bool jinja_dict_set(jinja_ctx *ctx, jinja_dict *d, jinja_value key, jinja_value val)
{
    if (!jinja_is_hashable(key))
        return jinja_fail(ctx, "unhashable type: '%s'", jinja_type_name(key));
    int64_t e = jinja_dict_find(d, key);
    if (e >= 0) {
        d->vals[e] = val;
        return true;
    }
    if (d->len == d->cap) {
        size_t cap = d->cap < 4 ? 4 : d->cap * 2;
        jinja_value *keys = jinja_alloc_array(ctx, cap, sizeof(jinja_value));
        jinja_value *vals = jinja_alloc_array(ctx, cap, sizeof(jinja_value));
        if (keys == NULL || vals == NULL)
            return false;
        if (d->len > 0) {
            memcpy(keys, d->keys, d->len * sizeof(jinja_value));
            memcpy(vals, d->vals, d->len * sizeof(jinja_value));
        }
        d->keys = keys;
        d->vals = vals;
        d->cap = cap;
    }
    d->keys[d->len] = key;
    d->vals[d->len] = val;
    d->len++;
    if (d->len > 8 && d->len * 2 > d->index_cap) {
        size_t index_cap = 32;
        while (index_cap < d->len * 4)
            index_cap *= 2;
        return jinja_dict_reindex(ctx, d, index_cap);
    }
    if (d->index != NULL) {
        size_t slot = (size_t)jinja_hash(key) & (d->index_cap - 1);
        while (d->index[slot] != 0)
            slot = (slot + 1) & (d->index_cap - 1);
        d->index[slot] = (uint32_t)d->len;
    }
    return true;
}

void jinja_dict_clear(jinja_dict *d)
{
    d->len = 0;
    if (d->index != NULL)
        memset(d->index, 0, d->index_cap * sizeof(uint32_t));
}

/* ---- Predicates ---- */

bool jinja_truthy(jinja_value v)
{
    switch (v.type) {
    case JINJA_UNDEFINED:
    case JINJA_NONE:
    case JINJA_MISSING:
        return false;
    case JINJA_BOOL:
        return v.b;
    case JINJA_INT:
        return v.i != 0;
    case JINJA_FLOAT:
        return v.f != 0.0;
    case JINJA_STRING:
        return v.s.len > 0;
    case JINJA_LIST:
    case JINJA_TUPLE:
        return v.list->len > 0;
    case JINJA_DICT:
        return v.dict->len > 0;
    default:
        return true;
    }
}

bool jinja_is_number(jinja_value v)
{
    return v.type == JINJA_BOOL || v.type == JINJA_INT || v.type == JINJA_FLOAT;
}

bool jinja_is_integer(jinja_value v)
{
    return v.type == JINJA_BOOL || v.type == JINJA_INT;
}

double jinja_as_double(jinja_value v)
{
    switch (v.type) {
    case JINJA_BOOL:
        return v.b ? 1.0 : 0.0;
    case JINJA_INT:
        return (double)v.i;
    case JINJA_FLOAT:
        return v.f;
    default:
        return 0.0;
    }
}

const char *jinja_type_name(jinja_value v)
{
    switch (v.type) {
    case JINJA_UNDEFINED:
    case JINJA_MISSING:
        return "Undefined";
    case JINJA_NONE:
        return "NoneType";
    case JINJA_BOOL:
        return "bool";
    case JINJA_INT:
        return "int";
    case JINJA_FLOAT:
        return "float";
    case JINJA_STRING:
        return "str";
    case JINJA_LIST:
        return "list";
    case JINJA_TUPLE:
        return "tuple";
    case JINJA_DICT:
        return "dict";
    case JINJA_NAMESPACE:
        return "Namespace";
    case JINJA_CALLABLE:
        return v.fn->kind == JINJA_FN_MACRO ? "Macro" : "builtin_function_or_method";
    case JINJA_LOOP:
        return "LoopContext";
    }
    return "object";
}

bool jinja_check_defined(jinja_ctx *ctx, jinja_value v)
{
    if (v.type != JINJA_UNDEFINED)
        return true;
    return jinja_fail(ctx, "%s", v.hint != NULL ? v.hint : "value is undefined");
}

/* ---- str() and repr() ---- */

/* The shortest decimal digits that read back as f (|f|, no sign), and the
 * exponent of the first digit. */
static size_t jinja_shortest_digits(double f, char *digits, int *exponent)
{
    char buf[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof(buf), "%.*e", prec - 1, fabs(f));
        if (strtod(buf, NULL) == fabs(f))
            break;
    }
    size_t nd = 0; /* buf is d[.ddd]e[+-]xx */
    const char *p = buf;
    for (; *p != 'e'; p++) {
        if (*p != '.')
            digits[nd++] = *p;
    }
    *exponent = atoi(p + 1);
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    return nd;
}

/* Python's repr(float): the shortest digits that read back exactly, in
 * fixed notation for exponents -4..15 and scientific otherwise. */
bool jinja_write_float(jinja_ctx *ctx, jinja_sb *sb, double f, bool json)
{
    if (isnan(f))
        return jinja_sb_puts(ctx, sb, json ? "NaN" : "nan");
    if (isinf(f))
        return jinja_sb_puts(ctx, sb,
                             f > 0 ? (json ? "Infinity" : "inf") : (json ? "-Infinity" : "-inf"));
    char digits[24], out[64];
    int exponent;
    size_t nd = jinja_shortest_digits(f, digits, &exponent), n = 0;
    int decpt = exponent + 1;
    if (signbit(f))
        out[n++] = '-';
    if (decpt <= -4 || decpt > 16) {
        out[n++] = digits[0];
        if (nd > 1) {
            out[n++] = '.';
            memcpy(out + n, digits + 1, nd - 1);
            n += nd - 1;
        }
        n += (size_t)snprintf(out + n, sizeof(out) - n, "e%c%02d", exponent < 0 ? '-' : '+',
                              abs(exponent));
    } else if (decpt <= 0) { /* 0.000ddd */
        memcpy(out + n, "0.", 2);
        n += 2;
        for (int i = 0; i < -decpt; i++)
            out[n++] = '0';
        memcpy(out + n, digits, nd);
        n += nd;
    } else { /* ddd.ddd, or ddd00.0 */
        for (size_t i = 0; i < (size_t)decpt || i < nd; i++) {
            if (i == (size_t)decpt)
                out[n++] = '.';
            out[n++] = i < nd ? digits[i] : '0';
        }
        if ((size_t)decpt >= nd) {
            memcpy(out + n, ".0", 2);
            n += 2;
        }
    }
    return jinja_sb_append(ctx, sb, out, n);
}

static bool jinja_write_string_repr(jinja_ctx *ctx, jinja_sb *sb, jinja_str s)
{
    bool has_single = memchr(s.ptr, '\'', s.len) != NULL;
    bool has_double = memchr(s.ptr, '"', s.len) != NULL;
    char quote = has_single && !has_double ? '"' : '\'';
    if (!jinja_sb_putc(ctx, sb, quote))
        return false;
    for (size_t i = 0; i < s.len;) {
        size_t start = i;
        int32_t cp = jinja_utf8_next(s.ptr, s.len, &i);
        bool ok;
        if (cp == quote || cp == '\\') {
            char esc[2] = {'\\', (char)cp};
            ok = jinja_sb_append(ctx, sb, esc, 2);
        } else if (cp == '\t') {
            ok = jinja_sb_puts(ctx, sb, "\\t");
        } else if (cp == '\n') {
            ok = jinja_sb_puts(ctx, sb, "\\n");
        } else if (cp == '\r') {
            ok = jinja_sb_puts(ctx, sb, "\\r");
        } else if (cp < 0x20 || cp == 0x7F) {
            ok = jinja_sb_printf(ctx, sb, "\\x%02x", (unsigned)cp);
        } else if (cp < 0x7F || (jinja_is_printable(cp) && !(cp == 0xFFFD && i - start == 1))) {
            ok = jinja_sb_append(ctx, sb, s.ptr + start, i - start);
        } else if (cp <= 0xFF) {
            ok = jinja_sb_printf(ctx, sb, "\\x%02x", (unsigned)cp);
        } else if (cp <= 0xFFFF) {
            ok = jinja_sb_printf(ctx, sb, "\\u%04x", (unsigned)cp);
        } else {
            ok = jinja_sb_printf(ctx, sb, "\\U%08x", (unsigned)cp);
        }
        if (!ok)
            return false;
    }
    return jinja_sb_putc(ctx, sb, quote);
}

static bool jinja_write_dict_repr(jinja_ctx *ctx, jinja_sb *sb, const jinja_dict *d, int depth)
{
    if (!jinja_sb_putc(ctx, sb, '{'))
        return false;
    for (size_t e = 0; e < d->len; e++) {
        if ((e > 0 && !jinja_sb_puts(ctx, sb, ", ")) ||
            !jinja_write_repr(ctx, sb, d->keys[e], depth + 1) || !jinja_sb_puts(ctx, sb, ": ") ||
            !jinja_write_repr(ctx, sb, d->vals[e], depth + 1))
            return false;
    }
    return jinja_sb_putc(ctx, sb, '}');
}

static bool jinja_write_callable_repr(jinja_ctx *ctx, jinja_sb *sb, const jinja_callable *fn)
{
    if (fn->kind == JINJA_FN_MACRO)
        return jinja_sb_printf(ctx, sb, "<Macro '%.*s'>", (int)fn->name.len, fn->name.ptr);
    if (fn->kind == JINJA_FN_GLOBAL)
        return jinja_sb_printf(ctx, sb, "<function %.*s>", (int)fn->name.len, fn->name.ptr);
    return jinja_sb_printf(ctx, sb, "<built-in method %.*s of %s object>", (int)fn->name.len,
                           fn->name.ptr, jinja_type_name(fn->self));
}

bool jinja_write_repr(jinja_ctx *ctx, jinja_sb *sb, jinja_value v, int depth)
{
    if (depth > JINJA_MAX_VALUE_DEPTH)
        return jinja_fail(ctx, "value nested more than %d deep", JINJA_MAX_VALUE_DEPTH);
    switch (v.type) {
    case JINJA_STRING:
        return jinja_write_string_repr(ctx, sb, v.s);
    case JINJA_UNDEFINED:
    case JINJA_MISSING:
        return jinja_sb_puts(ctx, sb, "Undefined");
    case JINJA_LIST:
    case JINJA_TUPLE: {
        bool tuple = v.type == JINJA_TUPLE;
        if (!jinja_sb_putc(ctx, sb, tuple ? '(' : '['))
            return false;
        for (size_t i = 0; i < v.list->len; i++) {
            if ((i > 0 && !jinja_sb_puts(ctx, sb, ", ")) ||
                !jinja_write_repr(ctx, sb, v.list->items[i], depth + 1))
                return false;
        }
        if (tuple && v.list->len == 1 && !jinja_sb_putc(ctx, sb, ','))
            return false;
        return jinja_sb_putc(ctx, sb, tuple ? ')' : ']');
    }
    case JINJA_DICT:
        return jinja_write_dict_repr(ctx, sb, v.dict, depth);
    case JINJA_NAMESPACE:
        return jinja_sb_puts(ctx, sb, "<Namespace ") &&
               jinja_write_dict_repr(ctx, sb, v.dict, depth) && jinja_sb_putc(ctx, sb, '>');
    case JINJA_CALLABLE:
        return jinja_write_callable_repr(ctx, sb, v.fn);
    case JINJA_LOOP:
        return jinja_sb_printf(ctx, sb, "<LoopContext %zu/%zu>", v.loop->index0 + 1,
                               v.loop->items->len);
    default:
        return jinja_write_str(ctx, sb, v);
    }
}

bool jinja_write_str(jinja_ctx *ctx, jinja_sb *sb, jinja_value v)
{
    switch (v.type) {
    case JINJA_STRING:
        return jinja_sb_append(ctx, sb, v.s.ptr, v.s.len);
    case JINJA_UNDEFINED:
    case JINJA_MISSING:
        return true;
    case JINJA_NONE:
        return jinja_sb_puts(ctx, sb, "None");
    case JINJA_BOOL:
        return jinja_sb_puts(ctx, sb, v.b ? "True" : "False");
    case JINJA_INT:
        return jinja_sb_printf(ctx, sb, "%lld", (long long)v.i);
    case JINJA_FLOAT:
        return jinja_write_float(ctx, sb, v.f, false);
    default:
        return jinja_write_repr(ctx, sb, v, 0);
    }
}

bool jinja_to_string(jinja_ctx *ctx, jinja_value v, jinja_value *out)
{
    if (v.type == JINJA_STRING) {
        *out = v;
        return true;
    }
    jinja_sb sb = {0};
    if (!jinja_write_str(ctx, &sb, v))
        return false;
    *out = jinja_sb_value(&sb);
    return true;
}

/* ---- Equality and ordering ---- */

/* Exact int/float comparison, as Python does it. */
static int jinja_cmp_int_float(int64_t i, double f)
{
    if (isnan(f))
        return 2; /* unordered */
    if (f >= 9223372036854775808.0)
        return -1;
    if (f < -9223372036854775808.0)
        return 1;
    double fl = floor(f);
    int64_t fi = (int64_t)fl;
    if (i < fi)
        return -1;
    if (i > fi)
        return 1;
    return fl == f ? 0 : -1;
}

/* -1/0/1, or 2 when unordered (NaN). */
static int jinja_cmp_numbers(jinja_value a, jinja_value b)
{
    if (a.type != JINJA_FLOAT && b.type != JINJA_FLOAT) {
        int64_t x = a.type == JINJA_BOOL ? a.b : a.i;
        int64_t y = b.type == JINJA_BOOL ? b.b : b.i;
        return x < y ? -1 : x > y;
    }
    if (a.type == JINJA_FLOAT && b.type == JINJA_FLOAT) {
        if (isnan(a.f) || isnan(b.f))
            return 2;
        return a.f < b.f ? -1 : a.f > b.f;
    }
    if (a.type == JINJA_FLOAT) {
        int r = jinja_cmp_int_float(b.type == JINJA_BOOL ? b.b : b.i, a.f);
        return r == 2 ? 2 : -r;
    }
    return jinja_cmp_int_float(a.type == JINJA_BOOL ? a.b : a.i, b.f);
}

static bool jinja_equals_depth(jinja_ctx *ctx, jinja_value a, jinja_value b, bool *eq, int depth);

static bool jinja_dicts_equal(jinja_ctx *ctx, const jinja_dict *x, const jinja_dict *y, bool *eq,
                              int depth)
{
    *eq = false;
    if (x->len != y->len)
        return true;
    for (size_t e = 0; e < x->len; e++) {
        const jinja_value *other = jinja_dict_get(y, x->keys[e]);
        if (other == NULL)
            return true;
        bool same;
        if (!jinja_equals_depth(ctx, x->vals[e], *other, &same, depth + 1))
            return false;
        if (!same)
            return true;
    }
    *eq = true;
    return true;
}

static bool jinja_equals_depth(jinja_ctx *ctx, jinja_value a, jinja_value b, bool *eq, int depth)
{
    if (depth > JINJA_MAX_VALUE_DEPTH)
        return jinja_fail(ctx, "value nested more than %d deep", JINJA_MAX_VALUE_DEPTH);
    *eq = false;
    if (!jinja_charge(ctx, JINJA_WORK_PER_ITEM +
                               (a.type == JINJA_STRING && b.type == JINJA_STRING ? a.s.len : 0)))
        return false;
    if (jinja_is_number(a) && jinja_is_number(b)) {
        *eq = jinja_cmp_numbers(a, b) == 0;
        return true;
    }
    if (a.type != b.type)
        return true;
    switch (a.type) {
    case JINJA_UNDEFINED:
    case JINJA_NONE:
        *eq = true;
        return true;
    case JINJA_STRING:
        *eq = a.s.len == b.s.len && memcmp(a.s.ptr, b.s.ptr, a.s.len) == 0;
        return true;
    case JINJA_LIST:
    case JINJA_TUPLE:
        if (a.list->len != b.list->len)
            return true;
        for (size_t i = 0; i < a.list->len; i++) {
            if (!jinja_equals_depth(ctx, a.list->items[i], b.list->items[i], eq, depth + 1))
                return false;
            if (!*eq)
                return true;
        }
        *eq = true;
        return true;
    case JINJA_DICT:
        return jinja_dicts_equal(ctx, a.dict, b.dict, eq, depth);
    case JINJA_NAMESPACE:
        *eq = a.dict == b.dict;
        return true;
    case JINJA_CALLABLE:
        *eq = a.fn == b.fn;
        return true;
    case JINJA_LOOP:
        *eq = a.loop == b.loop;
        return true;
    default:
        return true;
    }
}

bool jinja_equals(jinja_ctx *ctx, jinja_value a, jinja_value b, bool *eq)
{
    return jinja_equals_depth(ctx, a, b, eq, 0);
}

static bool jinja_compare_depth(jinja_ctx *ctx, jinja_value a, jinja_value b, int *cmp, int depth)
{
    if (depth > JINJA_MAX_VALUE_DEPTH)
        return jinja_fail(ctx, "value nested more than %d deep", JINJA_MAX_VALUE_DEPTH);
    if (jinja_is_number(a) && jinja_is_number(b)) {
        *cmp = jinja_cmp_numbers(a, b);
        return true;
    }
    if (!jinja_charge(ctx, JINJA_WORK_PER_ITEM))
        return false;
    if (a.type == JINJA_STRING && b.type == JINJA_STRING) {
        size_t n = a.s.len < b.s.len ? a.s.len : b.s.len;
        if (!jinja_charge(ctx, n))
            return false;
        int r = n > 0 ? memcmp(a.s.ptr, b.s.ptr, n) : 0;
        if (r == 0)
            r = a.s.len < b.s.len ? -1 : a.s.len > b.s.len;
        *cmp = r < 0 ? -1 : r > 0;
        return true;
    }
    if ((a.type == JINJA_LIST || a.type == JINJA_TUPLE) && a.type == b.type) {
        for (size_t i = 0; i < a.list->len && i < b.list->len; i++) {
            bool eq;
            if (!jinja_equals_depth(ctx, a.list->items[i], b.list->items[i], &eq, depth + 1))
                return false;
            if (!eq)
                return jinja_compare_depth(ctx, a.list->items[i], b.list->items[i], cmp, depth + 1);
        }
        *cmp = a.list->len < b.list->len ? -1 : a.list->len > b.list->len;
        return true;
    }
    return jinja_fail(ctx, "'<' not supported between instances of '%s' and '%s'",
                      jinja_type_name(a), jinja_type_name(b));
}

bool jinja_compare(jinja_ctx *ctx, jinja_value a, jinja_value b, int *cmp)
{
    return jinja_compare_depth(ctx, a, b, cmp, 0);
}

/* ---- Iteration and length ---- */

static bool jinja_string_chars(jinja_ctx *ctx, jinja_str s, jinja_list **items)
{
    jinja_list *list = jinja_list_new(ctx, s.len);
    if (list == NULL)
        return false;
    for (size_t i = 0; i < s.len;) {
        size_t start = i;
        jinja_utf8_next(s.ptr, s.len, &i);
        list->items[list->len++] = jinja_string(s.ptr + start, i - start);
    }
    *items = list;
    return true;
}

bool jinja_iterate(jinja_ctx *ctx, jinja_value v, jinja_list **items)
{
    switch (v.type) {
    case JINJA_LIST:
    case JINJA_TUPLE:
        *items = v.list;
        return true;
    case JINJA_DICT: {
        jinja_list *list = jinja_list_new(ctx, v.dict->len);
        if (list == NULL)
            return false;
        for (size_t e = 0; e < v.dict->len; e++)
            list->items[list->len++] = v.dict->keys[e];
        *items = list;
        return true;
    }
    case JINJA_STRING:
        return jinja_string_chars(ctx, v.s, items);
    case JINJA_UNDEFINED:
    case JINJA_MISSING:
        *items = jinja_list_new(ctx, 0);
        return *items != NULL;
    default:
        return jinja_fail(ctx, "'%s' object is not iterable", jinja_type_name(v));
    }
}

bool jinja_length(jinja_ctx *ctx, jinja_value v, int64_t *len)
{
    switch (v.type) {
    case JINJA_STRING:
        if (!jinja_charge(ctx, v.s.len))
            return false;
        *len = (int64_t)jinja_utf8_count(v.s.ptr, v.s.len);
        return true;
    case JINJA_LIST:
    case JINJA_TUPLE:
        *len = (int64_t)v.list->len;
        return true;
    case JINJA_DICT:
        *len = (int64_t)v.dict->len;
        return true;
    case JINJA_UNDEFINED:
        *len = 0;
        return true;
    case JINJA_LOOP:
        *len = (int64_t)v.loop->items->len;
        return true;
    default:
        return jinja_fail(ctx, "object of type '%s' has no len()", jinja_type_name(v));
    }
}
