/* The AST walker: statements write to ctx->out, expressions produce values.
 * Scoping follows Jinja2: every for-loop iteration, macro call and with
 * block gets a child scope, so `set` inside them does not leak out (which is
 * why templates use namespace()); if blocks share their parent's scope. */
#include "tokenizer/jinja_internal.h"

#include <math.h>
#include <string.h>

static bool eval(jinja_ctx *ctx, jinja_scope *scope, const jinja_node *n, jinja_value *out);
static bool exec_body(jinja_ctx *ctx, jinja_scope *scope, const jinja_nodes *body);

/* ---- Scopes ---- */

static jinja_scope *scope_new(jinja_ctx *ctx, jinja_scope *parent)
{
    jinja_scope *s = jinja_alloc(ctx, sizeof(*s));
    if (s != NULL)
        s->parent = parent;
    return s;
}

static const jinja_value *scope_lookup(const jinja_scope *s, jinja_str name)
{
    for (; s != NULL; s = s->parent) {
        const jinja_value *v = jinja_dict_get_str(&s->vars, name.ptr, name.len);
        if (v != NULL)
            return v;
    }
    return NULL;
}

static bool scope_set(jinja_ctx *ctx, jinja_scope *s, jinja_str name, jinja_value v)
{
    return jinja_dict_set(ctx, &s->vars, jinja_string(name.ptr, name.len), v);
}

static bool count_step(jinja_ctx *ctx)
{
    if (++ctx->steps > JINJA_MAX_STEPS)
        return jinja_fail(ctx, "more than %d loop iterations and macro calls", JINJA_MAX_STEPS);
    return true;
}

static bool enter(jinja_ctx *ctx)
{
    if (++ctx->depth > JINJA_MAX_EVAL_DEPTH)
        return jinja_fail(ctx, "recursion deeper than %d levels", JINJA_MAX_EVAL_DEPTH);
    return true;
}

/* ---- Argument binding ---- */

bool jinja_bind(jinja_ctx *ctx, const char *what, const char *const *params, size_t n_params,
                const jinja_args *args, jinja_value *out)
{
    if (args->n_pos > n_params)
        return jinja_fail(ctx, "%s takes at most %zu argument%s (%zu given)", what, n_params,
                          n_params == 1 ? "" : "s", args->n_pos);
    for (size_t i = 0; i < args->n_pos; i++)
        out[i] = args->pos[i];
    for (size_t k = 0; k < args->n_kw; k++) {
        size_t i = 0;
        while (i < n_params && !jinja_str_eq(args->kw_names[k], params[i]))
            i++;
        if (i == n_params)
            return jinja_fail(ctx, "%s got an unexpected keyword argument '%.*s'", what,
                              (int)args->kw_names[k].len, args->kw_names[k].ptr);
        if (i < args->n_pos)
            return jinja_fail(ctx, "%s got multiple values for argument '%s'", what, params[i]);
        out[i] = args->kw_vals[k];
    }
    for (size_t i = 0; i < n_params; i++) {
        if (out[i].type == JINJA_MISSING)
            return jinja_fail(ctx, "%s missing required argument '%s'", what, params[i]);
    }
    return true;
}

/* Evaluated call arguments live in the arena; small calls use `local`. */
typedef struct eval_args {
    jinja_args args;
    jinja_value local[8];
    jinja_str local_names[8];
} eval_args;

static bool eval_call_args(jinja_ctx *ctx, jinja_scope *scope, const jinja_node *n, eval_args *ea)
{
    size_t count = n->args.len;
    jinja_value *vals = ea->local;
    jinja_str *names = ea->local_names;
    if (count > 8) {
        vals = jinja_alloc_array(ctx, count, sizeof(jinja_value));
        names = jinja_alloc_array(ctx, count, sizeof(jinja_str));
        if (vals == NULL || names == NULL)
            return false;
    }
    /* positional arguments first, then keywords (the parser keeps that order) */
    size_t n_pos = 0;
    while (n_pos < count && n->arg_names[n_pos].ptr == NULL)
        n_pos++;
    for (size_t i = 0; i < count; i++) {
        if (!eval(ctx, scope, n->args.items[i], &vals[i]))
            return false;
        names[i] = n->arg_names[i];
    }
    ea->args.pos = vals;
    ea->args.n_pos = n_pos;
    ea->args.kw_vals = vals + n_pos;
    ea->args.kw_names = names + n_pos;
    ea->args.n_kw = count - n_pos;
    return true;
}

/* ---- Attribute and item access ---- */

static const char *object_repr(jinja_value obj)
{
    switch (obj.type) {
    case JINJA_NONE:
        return "'None'";
    case JINJA_DICT:
        return "'dict object'";
    case JINJA_LIST:
        return "'list object'";
    case JINJA_TUPLE:
        return "'tuple object'";
    case JINJA_STRING:
        return "'str object'";
    case JINJA_INT:
        return "'int object'";
    case JINJA_FLOAT:
        return "'float object'";
    case JINJA_BOOL:
        return "'bool object'";
    case JINJA_NAMESPACE:
        return "'jinja2.utils.Namespace object'";
    case JINJA_LOOP:
        return "'jinja2.runtime.LoopContext object'";
    default:
        return "'object'";
    }
}

static jinja_value no_attribute(jinja_ctx *ctx, jinja_value obj, jinja_str name)
{
    return jinja_undefined_fmt(ctx, "%s has no attribute '%.*s'", object_repr(obj),
                               (int)(name.len > 100 ? 100 : name.len), name.ptr);
}

static bool bound_method(jinja_ctx *ctx, jinja_value self, jinja_str name, bool unsafe,
                         jinja_value *out)
{
    jinja_callable *fn = jinja_alloc(ctx, sizeof(*fn));
    if (fn == NULL)
        return false;
    fn->kind = unsafe ? JINJA_FN_UNSAFE : JINJA_FN_METHOD;
    fn->name = name;
    fn->self = self;
    out->type = JINJA_CALLABLE;
    out->fn = fn;
    return true;
}

static bool loop_attr(jinja_ctx *ctx, jinja_value obj, jinja_str name, jinja_value *out)
{
    const jinja_loop *l = obj.loop;
    size_t len = l->items->len, i = l->index0;
    if (jinja_str_eq(name, "index"))
        *out = jinja_int((int64_t)i + 1);
    else if (jinja_str_eq(name, "index0"))
        *out = jinja_int((int64_t)i);
    else if (jinja_str_eq(name, "revindex"))
        *out = jinja_int((int64_t)(len - i));
    else if (jinja_str_eq(name, "revindex0"))
        *out = jinja_int((int64_t)(len - i - 1));
    else if (jinja_str_eq(name, "first"))
        *out = jinja_bool(i == 0);
    else if (jinja_str_eq(name, "last"))
        *out = jinja_bool(i + 1 == len);
    else if (jinja_str_eq(name, "length"))
        *out = jinja_int((int64_t)len);
    else if (jinja_str_eq(name, "depth")) /* only recursive loops nest deeper */
        *out = jinja_int(1);
    else if (jinja_str_eq(name, "depth0"))
        *out = jinja_int(0);
    else if (jinja_str_eq(name, "previtem"))
        *out = i > 0 ? l->items->items[i - 1] : jinja_undefined("there is no previous item");
    else if (jinja_str_eq(name, "nextitem"))
        *out = i + 1 < len ? l->items->items[i + 1] : jinja_undefined("there is no next item");
    else if (jinja_str_eq(name, "cycle") || jinja_str_eq(name, "changed"))
        return bound_method(ctx, obj, name, false, out);
    else
        *out = no_attribute(ctx, obj, name);
    return true;
}

bool jinja_getattr(jinja_ctx *ctx, jinja_value obj, jinja_str name, jinja_value *out)
{
    if (obj.type == JINJA_UNDEFINED)
        return jinja_check_defined(ctx, obj);
    if (name.len > 0 && name.ptr[0] == '_') {
        *out = no_attribute(ctx, obj, name);
        return true;
    }
    bool unsafe = false;
    switch (obj.type) {
    case JINJA_LOOP:
        return loop_attr(ctx, obj, name, out);
    case JINJA_NAMESPACE: {
        const jinja_value *v = jinja_dict_get_str(obj.dict, name.ptr, name.len);
        *out = v != NULL ? *v : no_attribute(ctx, obj, name);
        return true;
    }
    case JINJA_DICT: {
        if (jinja_has_method(obj, name, &unsafe))
            return bound_method(ctx, obj, name, unsafe, out);
        const jinja_value *v = jinja_dict_get_str(obj.dict, name.ptr, name.len);
        *out = v != NULL ? *v : no_attribute(ctx, obj, name);
        return true;
    }
    default:
        if (jinja_has_method(obj, name, &unsafe))
            return bound_method(ctx, obj, name, unsafe, out);
        *out = no_attribute(ctx, obj, name);
        return true;
    }
}

/* Python's index normalization; false when out of range. */
static bool normalize_index(int64_t i, size_t len, size_t *out)
{
    if (i < 0)
        i += (int64_t)len;
    if (i < 0 || (uint64_t)i >= len)
        return false;
    *out = (size_t)i;
    return true;
}

static jinja_value no_element(jinja_ctx *ctx, jinja_value obj, jinja_value key)
{
    jinja_sb sb = {0};
    if (!jinja_write_repr(ctx, &sb, key, 0))
        return jinja_undefined(NULL);
    return jinja_undefined_fmt(ctx, "%s has no element %.*s", object_repr(obj),
                               (int)(sb.len > 100 ? 100 : sb.len), sb.data);
}

bool jinja_getitem(jinja_ctx *ctx, jinja_value obj, jinja_value key, jinja_value *out)
{
    if (obj.type == JINJA_UNDEFINED)
        return jinja_check_defined(ctx, obj);
    size_t idx;
    if (obj.type == JINJA_DICT) {
        const jinja_value *v = jinja_dict_get(obj.dict, key);
        if (v != NULL) {
            *out = *v;
            return true;
        }
    } else if ((obj.type == JINJA_LIST || obj.type == JINJA_TUPLE) && jinja_is_integer(key)) {
        if (normalize_index(key.type == JINJA_BOOL ? key.b : key.i, obj.list->len, &idx)) {
            *out = obj.list->items[idx];
            return true;
        }
    } else if (obj.type == JINJA_STRING && jinja_is_integer(key)) {
        if (!jinja_charge(ctx, obj.s.len))
            return false;
        size_t len = jinja_utf8_count(obj.s.ptr, obj.s.len);
        if (normalize_index(key.type == JINJA_BOOL ? key.b : key.i, len, &idx)) {
            size_t start = jinja_utf8_offset(obj.s.ptr, obj.s.len, idx), end = start;
            jinja_utf8_next(obj.s.ptr, obj.s.len, &end);
            *out = jinja_string(obj.s.ptr + start, end - start);
            return true;
        }
    }
    if (key.type == JINJA_STRING) {
        if (obj.type == JINJA_DICT) {
            bool unsafe;
            if (jinja_has_method(obj, key.s, &unsafe))
                return bound_method(ctx, obj, key.s, unsafe, out);
            *out = no_attribute(ctx, obj, key.s);
            return true;
        }
        return jinja_getattr(ctx, obj, key.s, out);
    }
    *out = no_element(ctx, obj, key);
    return true;
}

/* ---- Slicing ---- */

static bool slice_bound(jinja_ctx *ctx, jinja_value v, bool *given, int64_t *out)
{
    *given = false;
    if (v.type == JINJA_NONE || v.type == JINJA_MISSING)
        return true;
    if (!jinja_is_integer(v))
        return jinja_fail(ctx, "slice indices must be integers or None, not %s",
                          jinja_type_name(v));
    *given = true;
    *out = v.type == JINJA_BOOL ? v.b : v.i;
    return true;
}

static int64_t clamp_slice(int64_t i, int64_t len, int64_t step)
{
    if (i < 0) {
        i += len;
        if (i < 0)
            i = step < 0 ? -1 : 0;
    } else if (i >= len) {
        i = step < 0 ? len - 1 : len;
    }
    return i;
}

/* The items a Python slice [start:stop:step] selects from len items. */
typedef struct slice_range {
    int64_t start, step, count;
} slice_range;

static bool slice_range_of(jinja_ctx *ctx, const jinja_value *parts, int64_t len, slice_range *r)
{
    bool has_start, has_stop, has_step;
    int64_t start = 0, stop = 0, step = 1;
    if (!slice_bound(ctx, parts[0], &has_start, &start) ||
        !slice_bound(ctx, parts[1], &has_stop, &stop) ||
        !slice_bound(ctx, parts[2], &has_step, &step))
        return false;
    if (step == 0)
        return jinja_fail(ctx, "slice step cannot be zero");
    start = has_start ? clamp_slice(start, len, step) : (step < 0 ? len - 1 : 0);
    stop = has_stop ? clamp_slice(stop, len, step) : (step < 0 ? -1 : len);
    r->start = start;
    r->step = step;
    r->count = 0;
    if (step > 0 && stop > start)
        r->count = (stop - start - 1) / step + 1;
    else if (step < 0 && stop < start)
        r->count = (start - stop - 1) / (-step) + 1;
    return true;
}

/* Strings slice by code point. */
static bool slice_string(jinja_ctx *ctx, jinja_str s, int64_t len, const slice_range *r,
                         jinja_value *out)
{
    if (r->step == 1) {
        size_t a = jinja_utf8_offset(s.ptr, s.len, (size_t)r->start);
        size_t b =
            r->count > 0 ? jinja_utf8_offset(s.ptr, s.len, (size_t)(r->start + r->count)) : a;
        *out = jinja_string(s.ptr + a, b - a);
        return true;
    }
    size_t *offsets = jinja_alloc_array(ctx, (size_t)len + 1, sizeof(size_t));
    if (offsets == NULL)
        return false;
    for (size_t i = 0, k = 0; k <= (size_t)len; k++) {
        offsets[k] = i;
        if (i < s.len)
            jinja_utf8_next(s.ptr, s.len, &i);
    }
    jinja_sb sb = {0};
    for (int64_t k = 0; k < r->count; k++) {
        int64_t c = r->start + k * r->step;
        if (!jinja_sb_append(ctx, &sb, s.ptr + offsets[c], offsets[c + 1] - offsets[c]))
            return false;
    }
    *out = jinja_sb_value(&sb);
    return true;
}

static bool eval_slice(jinja_ctx *ctx, jinja_scope *scope, jinja_value obj, const jinja_node *sl,
                       jinja_value *out)
{
    jinja_value parts[3];
    for (int k = 0; k < 3; k++) {
        parts[k].type = JINJA_MISSING;
        if (sl->args.items[k] != NULL && !eval(ctx, scope, sl->args.items[k], &parts[k]))
            return false;
    }
    if (obj.type == JINJA_UNDEFINED)
        return jinja_check_defined(ctx, obj);
    /* Jinja slices with Python's own subscript, which fails on other types. */
    if (obj.type != JINJA_LIST && obj.type != JINJA_TUPLE && obj.type != JINJA_STRING)
        return jinja_fail(ctx, "'%s' object is not subscriptable", jinja_type_name(obj));
    bool is_string = obj.type == JINJA_STRING;
    if (is_string && !jinja_charge(ctx, obj.s.len))
        return false;
    int64_t len = (int64_t)(is_string ? jinja_utf8_count(obj.s.ptr, obj.s.len) : obj.list->len);
    slice_range r;
    if (!slice_range_of(ctx, parts, len, &r))
        return false;
    if (is_string)
        return slice_string(ctx, obj.s, len, &r, out);
    jinja_list *list = jinja_list_new(ctx, (size_t)r.count);
    if (list == NULL)
        return false;
    for (int64_t k = 0; k < r.count; k++)
        list->items[list->len++] = obj.list->items[r.start + k * r.step];
    *out = obj.type == JINJA_TUPLE ? jinja_tuple_value(list) : jinja_list_value(list);
    return true;
}

/* ---- Calls ---- */

static bool capture(jinja_ctx *ctx, jinja_scope *scope, const jinja_nodes *body, jinja_value *out)
{
    jinja_sb sb = {0};
    jinja_sb *saved = ctx->out;
    ctx->out = &sb;
    bool ok = exec_body(ctx, scope, body);
    ctx->out = saved;
    *out = jinja_sb_value(&sb);
    return ok;
}

static bool bind_macro_args(jinja_ctx *ctx, const jinja_node *m, jinja_scope *scope,
                            const jinja_args *args)
{
    size_t n_params = m->args.len;
    /* Most calls have no extra arguments: they share one empty tuple and dict. */
    if (ctx->empty_list == NULL && (ctx->empty_list = jinja_list_new(ctx, 0)) == NULL)
        return false;
    if (ctx->empty_dict == NULL && (ctx->empty_dict = jinja_dict_new(ctx)) == NULL)
        return false;
    jinja_list *varargs = ctx->empty_list;
    jinja_dict *kwargs = ctx->empty_dict;
    if (args->n_pos > n_params && (varargs = jinja_list_new(ctx, args->n_pos - n_params)) == NULL)
        return false;
    for (size_t i = 0; i < args->n_pos; i++) {
        bool ok = i < n_params ? scope_set(ctx, scope, m->arg_names[i], args->pos[i])
                               : jinja_list_push(ctx, varargs, args->pos[i]);
        if (!ok)
            return false;
    }
    for (size_t k = 0; k < args->n_kw; k++) {
        size_t i = 0;
        while (i < n_params &&
               (m->arg_names[i].len != args->kw_names[k].len ||
                memcmp(m->arg_names[i].ptr, args->kw_names[k].ptr, args->kw_names[k].len) != 0))
            i++;
        jinja_value key = jinja_string(args->kw_names[k].ptr, args->kw_names[k].len);
        if (i == n_params && kwargs == ctx->empty_dict && (kwargs = jinja_dict_new(ctx)) == NULL)
            return false;
        bool ok = i < n_params ? scope_set(ctx, scope, m->arg_names[i], args->kw_vals[k])
                               : jinja_dict_set(ctx, kwargs, key, args->kw_vals[k]);
        if (!ok)
            return false;
    }
    /* Defaults are evaluated in the macro's scope, after the passed values. */
    for (size_t i = 0; i < n_params; i++) {
        jinja_str name = m->arg_names[i];
        if (jinja_dict_get_str(&scope->vars, name.ptr, name.len) != NULL)
            continue;
        jinja_value v;
        if (m->args.items[i] != NULL) {
            if (!eval(ctx, scope, m->args.items[i], &v))
                return false;
        } else {
            v = jinja_undefined_fmt(ctx, "parameter '%.*s' was not provided", (int)name.len,
                                    name.ptr);
        }
        if (!scope_set(ctx, scope, name, v))
            return false;
    }
    return scope_set(ctx, scope, (jinja_str){"varargs", 7}, jinja_tuple_value(varargs)) &&
           scope_set(ctx, scope, (jinja_str){"kwargs", 6}, jinja_dict_value(kwargs));
}

static bool call_macro(jinja_ctx *ctx, const jinja_callable *fn, const jinja_args *args,
                       jinja_value *out)
{
    if (!count_step(ctx) || !enter(ctx))
        return false;
    jinja_scope *scope = scope_new(ctx, fn->closure);
    bool ok = scope != NULL && bind_macro_args(ctx, fn->macro, scope, args) &&
              capture(ctx, scope, &fn->macro->body, out);
    ctx->flow = JINJA_FLOW_NORMAL;
    ctx->depth--;
    return ok;
}

static bool call_loop_method(jinja_ctx *ctx, jinja_loop *l, jinja_str name, const jinja_args *args,
                             jinja_value *out)
{
    if (jinja_str_eq(name, "cycle")) {
        if (args->n_pos == 0)
            return jinja_fail(ctx, "no items for cycling given");
        *out = args->pos[l->index0 % args->n_pos];
        return true;
    }
    /* changed(*values): true when the values differ from the last call's */
    jinja_list *vals = jinja_list_new(ctx, args->n_pos);
    if (vals == NULL)
        return false;
    for (size_t i = 0; i < args->n_pos; i++)
        vals->items[vals->len++] = args->pos[i];
    jinja_value now = jinja_list_value(vals);
    bool same = false;
    if (l->has_changed && !jinja_equals(ctx, l->last_changed, now, &same))
        return false;
    l->last_changed = now;
    l->has_changed = true;
    *out = jinja_bool(!same);
    return true;
}

bool jinja_call(jinja_ctx *ctx, jinja_value callee, const jinja_args *args, jinja_value *out)
{
    if (callee.type == JINJA_UNDEFINED)
        return jinja_check_defined(ctx, callee);
    if (callee.type != JINJA_CALLABLE)
        return jinja_fail(ctx, "'%s' object is not callable", jinja_type_name(callee));
    const jinja_callable *fn = callee.fn;
    switch (fn->kind) {
    case JINJA_FN_MACRO:
        return call_macro(ctx, fn, args, out);
    case JINJA_FN_GLOBAL:
        return jinja_call_global(ctx, fn->name, args, out);
    case JINJA_FN_UNSAFE:
        return jinja_fail(ctx, "access to attribute '%.*s' of '%s' object is unsafe",
                          (int)fn->name.len, fn->name.ptr, jinja_type_name(fn->self));
    case JINJA_FN_METHOD:
        if (fn->self.type == JINJA_LOOP)
            return call_loop_method(ctx, fn->self.loop, fn->name, args, out);
        return jinja_call_method(ctx, fn->self, fn->name, args, out);
    }
    return jinja_fail(ctx, "not callable");
}

/* ---- Expressions ---- */

static bool eval_name(jinja_ctx *ctx, jinja_scope *scope, const jinja_node *n, jinja_value *out)
{
    const jinja_value *v = scope_lookup(scope, n->name);
    if (v != NULL) {
        *out = *v;
        return true;
    }
    if (jinja_lookup_global(ctx, n->name, out))
        return true;
    if (ctx->failed)
        return false;
    *out = jinja_undefined_fmt(ctx, "'%.*s' is undefined", (int)n->name.len, n->name.ptr);
    return true;
}

static bool eval_sequence(jinja_ctx *ctx, jinja_scope *scope, const jinja_node *n, jinja_value *out)
{
    jinja_list *list = jinja_list_new(ctx, n->args.len);
    if (list == NULL)
        return false;
    for (size_t i = 0; i < n->args.len; i++) {
        if (!eval(ctx, scope, n->args.items[i], &list->items[i]))
            return false;
        list->len++;
    }
    *out = n->kind == JN_TUPLE ? jinja_tuple_value(list) : jinja_list_value(list);
    return true;
}

static bool eval_dict(jinja_ctx *ctx, jinja_scope *scope, const jinja_node *n, jinja_value *out)
{
    jinja_dict *d = jinja_dict_new(ctx);
    if (d == NULL)
        return false;
    for (size_t i = 0; i + 1 < n->args.len; i += 2) {
        jinja_value k, v;
        if (!eval(ctx, scope, n->args.items[i], &k) ||
            !eval(ctx, scope, n->args.items[i + 1], &v) || !jinja_dict_set(ctx, d, k, v))
            return false;
    }
    *out = jinja_dict_value(d);
    return true;
}

static bool eval_call(jinja_ctx *ctx, jinja_scope *scope, const jinja_node *n, jinja_value *out)
{
    jinja_value callee;
    eval_args ea;
    if (!eval(ctx, scope, n->a, &callee) || !eval_call_args(ctx, scope, n, &ea))
        return false;
    return jinja_call(ctx, callee, &ea.args, out);
}

/* Applies a filter node to subject (filter blocks and `set x | f` pass the
 * captured text; in expressions the subject is the node's operand). */
static bool apply_filter(jinja_ctx *ctx, jinja_scope *scope, const jinja_node *n,
                         const jinja_value *subject, jinja_value *out)
{
    jinja_value v;
    if (n->a != NULL) {
        bool ok = n->a->kind == JN_FILTER && subject != NULL
                      ? apply_filter(ctx, scope, n->a, subject, &v)
                      : eval(ctx, scope, n->a, &v);
        if (!ok)
            return false;
    } else {
        v = *subject;
    }
    eval_args ea;
    if (!eval_call_args(ctx, scope, n, &ea))
        return false;
    const jinja_node *saved = ctx->at;
    ctx->at = n;
    bool ok = n->filter(ctx, v, &ea.args, out);
    ctx->at = saved;
    return ok;
}

static bool eval_test(jinja_ctx *ctx, jinja_scope *scope, const jinja_node *n, jinja_value *out)
{
    jinja_value v;
    eval_args ea;
    bool result;
    if (!eval(ctx, scope, n->a, &v) || !eval_call_args(ctx, scope, n, &ea))
        return false;
    ctx->at = n;
    if (!n->test(ctx, v, &ea.args, &result))
        return false;
    *out = jinja_bool(result);
    return true;
}

static bool eval_unary(jinja_ctx *ctx, jinja_scope *scope, const jinja_node *n, jinja_value *out)
{
    jinja_value v;
    if (!eval(ctx, scope, n->a, &v))
        return false;
    ctx->at = n;
    if (n->kind == JN_NOT) {
        *out = jinja_bool(!jinja_truthy(v));
        return true;
    }
    if (!jinja_check_defined(ctx, v))
        return false;
    if (!jinja_is_number(v))
        return jinja_fail(ctx, "bad operand type for unary %c: '%s'", n->kind == JN_NEG ? '-' : '+',
                          jinja_type_name(v));
    if (n->kind == JN_POS) {
        *out = v.type == JINJA_BOOL ? jinja_int(v.b) : v;
        return true;
    }
    if (v.type == JINJA_FLOAT) {
        *out = jinja_float(-v.f);
        return true;
    }
    int64_t i = v.type == JINJA_BOOL ? v.b : v.i;
    if (i == INT64_MIN)
        return jinja_fail(ctx, "integer overflow");
    *out = jinja_int(-i);
    return true;
}

static bool eval_compare(jinja_ctx *ctx, jinja_scope *scope, const jinja_node *n, jinja_value *out)
{
    jinja_value left;
    if (!eval(ctx, scope, n->a, &left))
        return false;
    for (size_t i = 0; i < n->args.len; i++) {
        jinja_value right, r;
        if (!eval(ctx, scope, n->args.items[i], &right))
            return false;
        ctx->at = n;
        if (!jinja_binary(ctx, n->ops[i], left, right, &r))
            return false;
        if (!r.b) {
            *out = jinja_bool(false);
            return true;
        }
        left = right;
    }
    *out = jinja_bool(true);
    return true;
}

static bool eval_concat(jinja_ctx *ctx, jinja_scope *scope, const jinja_node *n, jinja_value *out)
{
    jinja_sb sb = {0};
    for (size_t i = 0; i < n->args.len; i++) {
        jinja_value v;
        if (!eval(ctx, scope, n->args.items[i], &v) || !jinja_write_str(ctx, &sb, v))
            return false;
    }
    *out = jinja_sb_value(&sb);
    return true;
}

static bool eval_node(jinja_ctx *ctx, jinja_scope *scope, const jinja_node *n, jinja_value *out)
{
    jinja_value a, b;
    switch (n->kind) {
    case JN_CONST:
        *out = n->value;
        return true;
    case JN_NAME:
        return eval_name(ctx, scope, n, out);
    case JN_LIST:
    case JN_TUPLE:
        return eval_sequence(ctx, scope, n, out);
    case JN_DICT:
        return eval_dict(ctx, scope, n, out);
    case JN_ATTR:
        if (!eval(ctx, scope, n->a, &a))
            return false;
        ctx->at = n;
        return jinja_getattr(ctx, a, n->name, out);
    case JN_ITEM:
        if (!eval(ctx, scope, n->a, &a))
            return false;
        if (n->b->kind == JN_SLICE)
            return eval_slice(ctx, scope, a, n->b, out);
        if (!eval(ctx, scope, n->b, &b))
            return false;
        ctx->at = n;
        return jinja_getitem(ctx, a, b, out);
    case JN_CALL:
        return eval_call(ctx, scope, n, out);
    case JN_FILTER:
        return apply_filter(ctx, scope, n, NULL, out);
    case JN_TEST:
        return eval_test(ctx, scope, n, out);
    case JN_NOT:
    case JN_NEG:
    case JN_POS:
        return eval_unary(ctx, scope, n, out);
    case JN_BINARY:
        if (!eval(ctx, scope, n->a, &a) || !eval(ctx, scope, n->b, &b))
            return false;
        ctx->at = n;
        return jinja_binary(ctx, n->op, a, b, out);
    case JN_COMPARE:
        return eval_compare(ctx, scope, n, out);
    case JN_AND:
    case JN_OR:
        if (!eval(ctx, scope, n->a, &a))
            return false;
        if (jinja_truthy(a) == (n->kind == JN_OR)) {
            *out = a;
            return true;
        }
        return eval(ctx, scope, n->b, out);
    case JN_COND:
        if (!eval(ctx, scope, n->a, &a))
            return false;
        if (jinja_truthy(a))
            return eval(ctx, scope, n->b, out);
        if (n->c != NULL)
            return eval(ctx, scope, n->c, out);
        *out = jinja_undefined("the inline if-expression evaluated to false and no else "
                               "section was defined");
        return true;
    case JN_CONCAT:
        return eval_concat(ctx, scope, n, out);
    default:
        return jinja_fail(ctx, "not an expression");
    }
}

static bool eval(jinja_ctx *ctx, jinja_scope *scope, const jinja_node *n, jinja_value *out)
{
    const jinja_node *saved = ctx->at;
    ctx->at = n;
    if (!enter(ctx))
        return false;
    bool ok = eval_node(ctx, scope, n, out);
    ctx->depth--;
    if (ok)
        ctx->at = saved;
    return ok;
}

/* ---- Statements ---- */

static bool assign(jinja_ctx *ctx, jinja_scope *scope, const jinja_node *target, jinja_value v)
{
    if (target->kind == JN_NAME)
        return scope_set(ctx, scope, target->name, v);
    if (target->kind == JN_ATTR) {
        const jinja_value *ns = scope_lookup(scope, target->a->name);
        if (ns == NULL || ns->type != JINJA_NAMESPACE)
            return jinja_fail(ctx, "cannot assign attribute on non-namespace object");
        return jinja_dict_set(ctx, ns->dict, jinja_string(target->name.ptr, target->name.len), v);
    }
    jinja_list *items;
    if (!jinja_iterate(ctx, v, &items))
        return false;
    size_t want = target->args.len;
    if (items->len != want)
        return jinja_fail(ctx, "%s values to unpack (expected %zu, got %zu)",
                          items->len > want ? "too many" : "not enough", want, items->len);
    for (size_t i = 0; i < want; i++) {
        if (!scope_set(ctx, scope, target->args.items[i]->name, items->items[i]))
            return false;
    }
    return true;
}

static bool filter_loop_items(jinja_ctx *ctx, jinja_scope *scope, const jinja_node *n,
                              jinja_list *items, jinja_list **out)
{
    jinja_list *kept = jinja_list_new(ctx, items->len);
    jinja_scope *tmp = scope_new(ctx, scope);
    if (kept == NULL || tmp == NULL)
        return false;
    for (size_t i = 0; i < items->len; i++) {
        jinja_value cond;
        if (!count_step(ctx))
            return false;
        jinja_dict_clear(&tmp->vars);
        if (!assign(ctx, tmp, n->a, items->items[i]) || !eval(ctx, tmp, n->c, &cond))
            return false;
        if (jinja_truthy(cond))
            kept->items[kept->len++] = items->items[i];
    }
    *out = kept;
    return true;
}

static bool exec_for(jinja_ctx *ctx, jinja_scope *scope, const jinja_node *n)
{
    jinja_value seq;
    jinja_list *items;
    if (!eval(ctx, scope, n->b, &seq))
        return false;
    ctx->at = n;
    if (!jinja_iterate(ctx, seq, &items))
        return false;
    if (n->c != NULL && !filter_loop_items(ctx, scope, n, items, &items))
        return false;
    if (items->len == 0)
        return exec_body(ctx, scope, &n->else_body);
    jinja_loop *loop = jinja_alloc(ctx, sizeof(*loop));
    jinja_scope *inner = scope_new(ctx, scope);
    if (loop == NULL || inner == NULL)
        return false;
    loop->items = items;
    jinja_value loop_value = {.type = JINJA_LOOP};
    loop_value.loop = loop;
    bool ok = true;
    for (size_t i = 0; ok && i < items->len; i++) {
        ctx->at = n;
        if (!count_step(ctx)) {
            ok = false;
            break;
        }
        loop->index0 = i;
        jinja_dict_clear(&inner->vars);
        ok = assign(ctx, inner, n->a, items->items[i]) &&
             scope_set(ctx, inner, (jinja_str){"loop", 4}, loop_value) &&
             exec_body(ctx, inner, &n->body);
        if (ctx->flow == JINJA_FLOW_BREAK) {
            ctx->flow = JINJA_FLOW_NORMAL;
            break;
        }
        ctx->flow = JINJA_FLOW_NORMAL;
    }
    return ok;
}

static bool exec_set_block(jinja_ctx *ctx, jinja_scope *scope, const jinja_node *n)
{
    jinja_value text;
    jinja_scope *inner = scope_new(ctx, scope);
    if (inner == NULL || !capture(ctx, inner, &n->body, &text))
        return false;
    if (n->c != NULL && !apply_filter(ctx, scope, n->c, &text, &text))
        return false;
    return assign(ctx, scope, n->a, text);
}

static bool exec_macro_def(jinja_ctx *ctx, jinja_scope *scope, const jinja_node *n)
{
    jinja_callable *fn = jinja_alloc(ctx, sizeof(*fn));
    if (fn == NULL)
        return false;
    fn->kind = JINJA_FN_MACRO;
    fn->name = n->name;
    fn->macro = n;
    fn->closure = scope;
    jinja_value v = {.type = JINJA_CALLABLE};
    v.fn = fn;
    return scope_set(ctx, scope, n->name, v);
}

static bool exec_with(jinja_ctx *ctx, jinja_scope *scope, const jinja_node *n)
{
    jinja_scope *inner = scope_new(ctx, scope);
    if (inner == NULL)
        return false;
    for (size_t i = 0; i + 1 < n->args.len; i += 2) {
        jinja_value v;
        if (!eval(ctx, scope, n->args.items[i + 1], &v) || !assign(ctx, inner, n->args.items[i], v))
            return false;
    }
    return exec_body(ctx, inner, &n->body);
}

static bool exec_stmt(jinja_ctx *ctx, jinja_scope *scope, const jinja_node *n)
{
    jinja_value v;
    ctx->at = n;
    switch (n->kind) {
    case JN_TEXT:
        return jinja_sb_append(ctx, ctx->out, n->name.ptr, n->name.len);
    case JN_PRINT:
        return eval(ctx, scope, n->a, &v) && jinja_write_str(ctx, ctx->out, v);
    case JN_IF:
        if (!eval(ctx, scope, n->a, &v))
            return false;
        return exec_body(ctx, scope, jinja_truthy(v) ? &n->body : &n->else_body);
    case JN_FOR:
        return exec_for(ctx, scope, n);
    case JN_SET:
        if (!eval(ctx, scope, n->b, &v))
            return false;
        ctx->at = n;
        return assign(ctx, scope, n->a, v);
    case JN_SET_BLOCK:
        return exec_set_block(ctx, scope, n);
    case JN_MACRO:
        return exec_macro_def(ctx, scope, n);
    case JN_FILTER_BLOCK: {
        jinja_scope *inner = scope_new(ctx, scope);
        return inner != NULL && capture(ctx, inner, &n->body, &v) &&
               apply_filter(ctx, scope, n->a, &v, &v) && jinja_write_str(ctx, ctx->out, v);
    }
    case JN_WITH:
        return exec_with(ctx, scope, n);
    case JN_BREAK:
        ctx->flow = JINJA_FLOW_BREAK;
        return true;
    case JN_CONTINUE:
        ctx->flow = JINJA_FLOW_CONTINUE;
        return true;
    case JN_SCOPELESS_BODY:
        return exec_body(ctx, scope, &n->body);
    default:
        return jinja_fail(ctx, "not a statement");
    }
}

static bool exec_body(jinja_ctx *ctx, jinja_scope *scope, const jinja_nodes *body)
{
    if (!enter(ctx))
        return false;
    bool ok = true;
    for (size_t i = 0; ok && i < body->len; i++) {
        ok = exec_stmt(ctx, scope, body->items[i]);
        if (ctx->flow != JINJA_FLOW_NORMAL)
            break;
    }
    ctx->depth--;
    return ok;
}

bool jinja_exec_template(jinja_ctx *ctx, const jinja_nodes *body, jinja_scope *root)
{
    return exec_body(ctx, root, body);
}
