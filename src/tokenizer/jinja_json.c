/* JSON in (the render context) and out (the tojson filter, written like
 * Python's json.dumps, which transformers' tojson calls). */
#include "tokenizer/jinja_internal.h"

#include <stdlib.h>
#include <string.h>

static bool jinja_from_json_object(jinja_ctx *ctx, const json_t *json, jinja_value *out, int depth)
{
    jinja_dict *d = jinja_dict_new(ctx);
    if (d == NULL)
        return false;
    for (void *it = json_object_iter((json_t *)json); it != NULL;
         it = json_object_iter_next((json_t *)json, it)) {
        const char *key = json_object_iter_key(it);
        size_t key_len = json_object_iter_key_len(it);
        jinja_value v;
        if (!jinja_from_json(ctx, json_object_iter_value(it), &v, depth + 1) ||
            !jinja_dict_set(ctx, d, jinja_string(key, key_len), v))
            return false;
    }
    *out = jinja_dict_value(d);
    return true;
}

bool jinja_from_json(jinja_ctx *ctx, const json_t *json, jinja_value *out, int depth)
{
    if (depth > JINJA_MAX_VALUE_DEPTH)
        return jinja_fail(ctx, "context nested more than %d deep", JINJA_MAX_VALUE_DEPTH);
    switch (json_typeof(json)) {
    case JSON_OBJECT:
        return jinja_from_json_object(ctx, json, out, depth);
    case JSON_ARRAY: {
        size_t n = json_array_size(json);
        jinja_list *list = jinja_list_new(ctx, n);
        if (list == NULL)
            return false;
        for (size_t i = 0; i < n; i++) {
            if (!jinja_from_json(ctx, json_array_get(json, i), &list->items[i], depth + 1))
                return false;
            list->len++;
        }
        *out = jinja_list_value(list);
        return true;
    }
    case JSON_STRING:
        *out = jinja_string(json_string_value(json), json_string_length(json));
        return true;
    case JSON_INTEGER:
        *out = jinja_int((int64_t)json_integer_value(json));
        return true;
    case JSON_REAL:
        *out = jinja_float(json_real_value(json));
        return true;
    case JSON_TRUE:
        *out = jinja_bool(true);
        return true;
    case JSON_FALSE:
        *out = jinja_bool(false);
        return true;
    case JSON_NULL:
        *out = jinja_none();
        return true;
    }
    return jinja_fail(ctx, "unsupported JSON value in the context");
}

/* ---- tojson ---- */

/* json.dumps's two-character escape of an ASCII byte, or NULL. */
static const char *jinja_json_short_escape(unsigned char c)
{
    switch (c) {
    case '"':
        return "\\\"";
    case '\\':
        return "\\\\";
    case '\n':
        return "\\n";
    case '\r':
        return "\\r";
    case '\t':
        return "\\t";
    case '\b':
        return "\\b";
    case '\f':
        return "\\f";
    default:
        return NULL;
    }
}

/* Writes the escape of the character at s[*i], advancing *i. */
static bool jinja_json_escape_at(jinja_ctx *ctx, jinja_sb *sb, jinja_str s, size_t *i)
{
    unsigned char c = (unsigned char)s.ptr[*i];
    const char *esc = jinja_json_short_escape(c);
    if (esc != NULL || c < 0x80) {
        (*i)++;
        return esc != NULL ? jinja_sb_puts(ctx, sb, esc)
                           : jinja_sb_printf(ctx, sb, "\\u%04x", (unsigned)c);
    }
    int32_t cp = jinja_utf8_next(s.ptr, s.len, i);
    if (cp >= 0x10000) {
        int32_t v = cp - 0x10000;
        return jinja_sb_printf(ctx, sb, "\\u%04x\\u%04x", (unsigned)(0xD800 + (v >> 10)),
                               (unsigned)(0xDC00 + (v & 0x3FF)));
    }
    return jinja_sb_printf(ctx, sb, "\\u%04x", (unsigned)cp);
}

/* A JSON string as json.dumps writes it: with ensure_ascii=False only
 * quotes, backslashes and control characters are escaped. */
static bool jinja_write_json_string(jinja_ctx *ctx, jinja_sb *sb, jinja_str s, bool ensure_ascii)
{
    if (!jinja_sb_putc(ctx, sb, '"'))
        return false;
    size_t run = 0; /* start of the bytes copied through unchanged */
    for (size_t i = 0; i < s.len;) {
        unsigned char c = (unsigned char)s.ptr[i];
        bool plain = c >= 0x20 && c != '"' && c != '\\' && (c < 0x7F || !ensure_ascii);
        if (plain && c >= 0x80) {
            /* Invalid UTF-8 is written as U+FFFD. */
            size_t next = i;
            int32_t cp = jinja_utf8_next(s.ptr, s.len, &next);
            if (cp == 0xFFFD && next - i == 1) {
                if (!jinja_sb_append(ctx, sb, s.ptr + run, i - run) ||
                    !jinja_sb_put_codepoint(ctx, sb, 0xFFFD))
                    return false;
                run = next;
            }
            i = next;
        } else if (plain) {
            i++;
        } else {
            if (!jinja_sb_append(ctx, sb, s.ptr + run, i - run) ||
                !jinja_json_escape_at(ctx, sb, s, &i))
                return false;
            run = i;
        }
    }
    return jinja_sb_append(ctx, sb, s.ptr + run, s.len - run) && jinja_sb_putc(ctx, sb, '"');
}

static bool jinja_json_newline(jinja_ctx *ctx, jinja_sb *sb, const jinja_json_style *style,
                               int level)
{
    if (style->indent.ptr == NULL)
        return true;
    if (!jinja_sb_putc(ctx, sb, '\n'))
        return false;
    for (int i = 0; i < level; i++) {
        if (!jinja_sb_append(ctx, sb, style->indent.ptr, style->indent.len))
            return false;
    }
    return true;
}

static bool jinja_write_json_list(jinja_ctx *ctx, jinja_sb *sb, const jinja_list *list,
                                  const jinja_json_style *style, int level)
{
    if (list->len == 0)
        return jinja_sb_puts(ctx, sb, "[]");
    if (!jinja_sb_putc(ctx, sb, '['))
        return false;
    for (size_t i = 0; i < list->len; i++) {
        if (i > 0 && !jinja_sb_append(ctx, sb, style->item_sep.ptr, style->item_sep.len))
            return false;
        if (!jinja_json_newline(ctx, sb, style, level + 1) ||
            !jinja_write_json(ctx, sb, list->items[i], style, level + 1))
            return false;
    }
    return jinja_json_newline(ctx, sb, style, level) && jinja_sb_putc(ctx, sb, ']');
}

/* A dict key as json.dumps writes it: strings as they are, numbers, booleans
 * and None converted to their JSON text. */
static bool jinja_json_key(jinja_ctx *ctx, jinja_value key, jinja_str *out)
{
    if (key.type == JINJA_STRING) {
        *out = key.s;
        return true;
    }
    jinja_sb sb = {0};
    bool ok;
    switch (key.type) {
    case JINJA_NONE:
        ok = jinja_sb_puts(ctx, &sb, "null");
        break;
    case JINJA_BOOL:
        ok = jinja_sb_puts(ctx, &sb, key.b ? "true" : "false");
        break;
    case JINJA_INT:
        ok = jinja_sb_printf(ctx, &sb, "%lld", (long long)key.i);
        break;
    case JINJA_FLOAT:
        ok = jinja_write_float(ctx, &sb, key.f, true);
        break;
    default:
        return jinja_fail(ctx, "keys must be str, int, float, bool or None, not %s",
                          jinja_type_name(key));
    }
    out->ptr = sb.data != NULL ? sb.data : "";
    out->len = sb.len;
    return ok;
}

static int jinja_cmp_str(jinja_str a, jinja_str b)
{
    size_t n = a.len < b.len ? a.len : b.len;
    int r = n > 0 ? memcmp(a.ptr, b.ptr, n) : 0;
    if (r != 0)
        return r;
    return a.len < b.len ? -1 : a.len > b.len;
}

/* Entry order of a dict for sort_keys (insertion sort: dicts here are small). */
static bool jinja_json_key_order(jinja_ctx *ctx, const jinja_dict *d, const jinja_str *keys,
                                 size_t **order)
{
    size_t *idx = jinja_alloc_array(ctx, d->len, sizeof(size_t));
    if (idx == NULL)
        return false;
    for (size_t e = 0; e < d->len; e++) {
        if (d->keys[e].type != JINJA_STRING)
            return jinja_fail(ctx, "sort_keys needs string keys, not %s",
                              jinja_type_name(d->keys[e]));
        size_t j = e;
        while (j > 0 && jinja_cmp_str(keys[idx[j - 1]], keys[e]) > 0) {
            idx[j] = idx[j - 1];
            j--;
        }
        idx[j] = e;
    }
    *order = idx;
    return true;
}

static bool jinja_write_json_dict(jinja_ctx *ctx, jinja_sb *sb, const jinja_dict *d,
                                  const jinja_json_style *style, int level)
{
    if (d->len == 0)
        return jinja_sb_puts(ctx, sb, "{}");
    jinja_str *keys = jinja_alloc_array(ctx, d->len, sizeof(jinja_str));
    if (keys == NULL)
        return false;
    for (size_t e = 0; e < d->len; e++) {
        if (!jinja_json_key(ctx, d->keys[e], &keys[e]))
            return false;
    }
    size_t *order = NULL;
    if (style->sort_keys && !jinja_json_key_order(ctx, d, keys, &order))
        return false;
    if (!jinja_sb_putc(ctx, sb, '{'))
        return false;
    for (size_t i = 0; i < d->len; i++) {
        size_t e = order != NULL ? order[i] : i;
        if (i > 0 && !jinja_sb_append(ctx, sb, style->item_sep.ptr, style->item_sep.len))
            return false;
        if (!jinja_json_newline(ctx, sb, style, level + 1) ||
            !jinja_write_json_string(ctx, sb, keys[e], style->ensure_ascii) ||
            !jinja_sb_append(ctx, sb, style->key_sep.ptr, style->key_sep.len) ||
            !jinja_write_json(ctx, sb, d->vals[e], style, level + 1))
            return false;
    }
    return jinja_json_newline(ctx, sb, style, level) && jinja_sb_putc(ctx, sb, '}');
}

bool jinja_write_json(jinja_ctx *ctx, jinja_sb *sb, jinja_value v, const jinja_json_style *style,
                      int level)
{
    if (level > JINJA_MAX_VALUE_DEPTH)
        return jinja_fail(ctx, "value nested more than %d deep", JINJA_MAX_VALUE_DEPTH);
    switch (v.type) {
    case JINJA_NONE:
        return jinja_sb_puts(ctx, sb, "null");
    case JINJA_BOOL:
        return jinja_sb_puts(ctx, sb, v.b ? "true" : "false");
    case JINJA_INT:
        return jinja_sb_printf(ctx, sb, "%lld", (long long)v.i);
    case JINJA_FLOAT:
        return jinja_write_float(ctx, sb, v.f, true);
    case JINJA_STRING:
        return jinja_write_json_string(ctx, sb, v.s, style->ensure_ascii);
    case JINJA_LIST:
    case JINJA_TUPLE:
        return jinja_write_json_list(ctx, sb, v.list, style, level);
    case JINJA_DICT:
        return jinja_write_json_dict(ctx, sb, v.dict, style, level);
    default:
        return jinja_fail(ctx, "Object of type %s is not JSON serializable", jinja_type_name(v));
    }
}
