/* Binary operators with Python semantics: int/float arithmetic (ints are
 * 64-bit here, and overflow is an error rather than a bignum), string and
 * list concatenation and repetition, comparisons and `in`. */
#include "tokenizer/jinja_internal.h"

#include <math.h>
#include <string.h>

static const char *op_symbol(jinja_op op)
{
    static const char *const symbols[] = {
        "+", "-", "*", "/", "//", "%", "**", "==", "!=", "<", "<=", ">", ">=", "in", "not in"};
    return symbols[op];
}

static bool unsupported(jinja_ctx *ctx, jinja_op op, jinja_value a, jinja_value b)
{
    return jinja_fail(ctx, "unsupported operand type(s) for %s: '%s' and '%s'", op_symbol(op),
                      jinja_type_name(a), jinja_type_name(b));
}

static int64_t as_int(jinja_value v)
{
    return v.type == JINJA_BOOL ? v.b : v.i;
}

static bool overflow(jinja_ctx *ctx)
{
    return jinja_fail(ctx, "integer overflow");
}

static bool int_pow(jinja_ctx *ctx, int64_t base, int64_t exp, jinja_value *out)
{
    int64_t result = 1;
    while (exp > 0) {
        if ((exp & 1) && __builtin_mul_overflow(result, base, &result))
            return overflow(ctx);
        exp >>= 1;
        if (exp > 0 && __builtin_mul_overflow(base, base, &base))
            return overflow(ctx);
    }
    *out = jinja_int(result);
    return true;
}

static bool float_mod_div(jinja_ctx *ctx, double a, double b, double *mod, double *floordiv)
{
    if (b == 0.0)
        return jinja_fail(ctx, "float division by zero");
    double m = fmod(a, b);
    double div = (a - m) / b;
    if (m != 0.0) {
        if ((b < 0) != (m < 0)) {
            m += b;
            div -= 1.0;
        }
    } else {
        m = copysign(0.0, b);
    }
    double fd;
    if (div != 0.0) {
        fd = floor(div);
        if (div - fd > 0.5)
            fd += 1.0;
    } else {
        fd = copysign(0.0, a / b);
    }
    *mod = m;
    *floordiv = fd;
    return true;
}

static bool int_arith(jinja_ctx *ctx, jinja_op op, int64_t x, int64_t y, jinja_value *out)
{
    int64_t r;
    switch (op) {
    case JINJA_OP_ADD:
        if (__builtin_add_overflow(x, y, &r))
            return overflow(ctx);
        break;
    case JINJA_OP_SUB:
        if (__builtin_sub_overflow(x, y, &r))
            return overflow(ctx);
        break;
    case JINJA_OP_MUL:
        if (__builtin_mul_overflow(x, y, &r))
            return overflow(ctx);
        break;
    case JINJA_OP_FLOORDIV:
    case JINJA_OP_MOD:
        if (y == 0)
            return jinja_fail(ctx, "integer division or modulo by zero");
        if (x == INT64_MIN && y == -1)
            return op == JINJA_OP_MOD ? (*out = jinja_int(0), true) : overflow(ctx);
        r = op == JINJA_OP_FLOORDIV ? x / y : x % y;
        if ((x % y != 0) && ((x < 0) != (y < 0)))
            r = op == JINJA_OP_FLOORDIV ? r - 1 : r + y;
        break;
    case JINJA_OP_POW:
        if (y < 0) {
            if (x == 0)
                return jinja_fail(ctx, "0.0 cannot be raised to a negative power");
            *out = jinja_float(pow((double)x, (double)y));
            return true;
        }
        return int_pow(ctx, x, y, out);
    default:
        return false;
    }
    *out = jinja_int(r);
    return true;
}

static bool float_arith(jinja_ctx *ctx, jinja_op op, double x, double y, jinja_value *out)
{
    double r, mod, fd;
    switch (op) {
    case JINJA_OP_ADD:
        r = x + y;
        break;
    case JINJA_OP_SUB:
        r = x - y;
        break;
    case JINJA_OP_MUL:
        r = x * y;
        break;
    case JINJA_OP_DIV:
        if (y == 0.0)
            return jinja_fail(ctx, "division by zero");
        r = x / y;
        break;
    case JINJA_OP_FLOORDIV:
    case JINJA_OP_MOD:
        if (!float_mod_div(ctx, x, y, &mod, &fd))
            return false;
        r = op == JINJA_OP_MOD ? mod : fd;
        break;
    case JINJA_OP_POW:
        if (x == 0.0 && y < 0)
            return jinja_fail(ctx, "0.0 cannot be raised to a negative power");
        if (x < 0 && y != floor(y))
            return jinja_fail(ctx, "negative number raised to a fractional power");
        r = pow(x, y);
        break;
    default:
        return false;
    }
    *out = jinja_float(r);
    return true;
}

/* Markup + str escapes the str first, as markupsafe does. */
static bool concat_markup(jinja_ctx *ctx, jinja_value a, jinja_value b, jinja_value *out)
{
    if (!a.markup && !jinja_html_escape(ctx, a.s, &a))
        return false;
    if (!b.markup && !jinja_html_escape(ctx, b.s, &b))
        return false;
    jinja_sb sb = {0};
    if (!jinja_sb_append(ctx, &sb, a.s.ptr, a.s.len) ||
        !jinja_sb_append(ctx, &sb, b.s.ptr, b.s.len))
        return false;
    *out = jinja_sb_value(&sb);
    out->markup = true;
    return true;
}

static bool concat(jinja_ctx *ctx, jinja_value a, jinja_value b, jinja_value *out)
{
    if (a.type == JINJA_STRING && (a.markup || b.markup))
        return concat_markup(ctx, a, b, out);
    if (a.type == JINJA_STRING) {
        if (b.s.len == 0 || a.s.len == 0) {
            *out = a.s.len == 0 ? b : a;
            return true;
        }
        jinja_sb sb = {0};
        if (!jinja_sb_append(ctx, &sb, a.s.ptr, a.s.len) ||
            !jinja_sb_append(ctx, &sb, b.s.ptr, b.s.len))
            return false;
        *out = jinja_sb_value(&sb);
        return true;
    }
    jinja_list *list = jinja_list_new(ctx, a.list->len + b.list->len);
    if (list == NULL)
        return false;
    memcpy(list->items, a.list->items, a.list->len * sizeof(jinja_value));
    memcpy(list->items + a.list->len, b.list->items, b.list->len * sizeof(jinja_value));
    list->len = a.list->len + b.list->len;
    *out = a.type == JINJA_TUPLE ? jinja_tuple_value(list) : jinja_list_value(list);
    return true;
}

static bool repeat(jinja_ctx *ctx, jinja_value seq, int64_t times, jinja_value *out)
{
    if (times < 0)
        times = 0;
    size_t unit = seq.type == JINJA_STRING ? seq.s.len : seq.list->len * sizeof(jinja_value);
    if (unit > 0 && (uint64_t)times > JINJA_MAX_OUTPUT / unit)
        return jinja_fail(ctx, "repetition result exceeds %zu MiB", JINJA_MAX_OUTPUT >> 20);
    if (seq.type == JINJA_STRING) {
        jinja_sb sb = {0};
        for (int64_t i = 0; i < times; i++) {
            if (!jinja_sb_append(ctx, &sb, seq.s.ptr, seq.s.len))
                return false;
        }
        *out = jinja_sb_value(&sb);
        return true;
    }
    size_t n = seq.list->len * (size_t)times;
    jinja_list *list = jinja_list_new(ctx, n);
    if (list == NULL)
        return false;
    for (int64_t i = 0; i < times; i++) {
        memcpy(list->items + list->len, seq.list->items, seq.list->len * sizeof(jinja_value));
        list->len += seq.list->len;
    }
    *out = seq.type == JINJA_TUPLE ? jinja_tuple_value(list) : jinja_list_value(list);
    return true;
}

static bool contains(jinja_ctx *ctx, jinja_value item, jinja_value seq, bool *found)
{
    *found = false;
    if (!jinja_charge(ctx, seq.type == JINJA_STRING ? seq.s.len : JINJA_WORK_PER_ITEM))
        return false;
    switch (seq.type) {
    case JINJA_STRING:
        if (item.type != JINJA_STRING)
            return jinja_fail(ctx, "'in <string>' requires string as left operand, not %s",
                              jinja_type_name(item));
        *found = jinja_str_find(seq.s, item.s, false) >= 0;
        return true;
    case JINJA_LIST:
    case JINJA_TUPLE:
        for (size_t i = 0; i < seq.list->len && !*found; i++) {
            if (!jinja_equals(ctx, item, seq.list->items[i], found))
                return false;
        }
        return true;
    case JINJA_DICT:
        if (!jinja_is_hashable(item))
            return jinja_fail(ctx, "unhashable type: '%s'", jinja_type_name(item));
        *found = jinja_dict_get(seq.dict, item) != NULL;
        return true;
    case JINJA_UNDEFINED:
        return true;
    default:
        return jinja_fail(ctx, "argument of type '%s' is not iterable", jinja_type_name(seq));
    }
}

static bool compare_op(jinja_ctx *ctx, jinja_op op, jinja_value a, jinja_value b, jinja_value *out)
{
    bool r;
    if (op == JINJA_OP_EQ || op == JINJA_OP_NE) {
        if (!jinja_equals(ctx, a, b, &r))
            return false;
        *out = jinja_bool(op == JINJA_OP_EQ ? r : !r);
        return true;
    }
    if (op == JINJA_OP_IN || op == JINJA_OP_NOT_IN) {
        if (!contains(ctx, a, b, &r))
            return false;
        *out = jinja_bool(op == JINJA_OP_IN ? r : !r);
        return true;
    }
    if (a.type == JINJA_UNDEFINED || b.type == JINJA_UNDEFINED)
        return jinja_check_defined(ctx, a.type == JINJA_UNDEFINED ? a : b);
    int c;
    if (!jinja_compare(ctx, a, b, &c))
        return false;
    switch (op) {
    case JINJA_OP_LT:
        r = c == -1;
        break;
    case JINJA_OP_LE:
        r = c == -1 || c == 0;
        break;
    case JINJA_OP_GT:
        r = c == 1;
        break;
    default:
        r = c == 1 || c == 0;
        break;
    }
    *out = jinja_bool(r);
    return true;
}

bool jinja_binary(jinja_ctx *ctx, jinja_op op, jinja_value a, jinja_value b, jinja_value *out)
{
    if (op >= JINJA_OP_EQ)
        return compare_op(ctx, op, a, b, out);
    if (a.type == JINJA_UNDEFINED || b.type == JINJA_UNDEFINED)
        return jinja_check_defined(ctx, a.type == JINJA_UNDEFINED ? a : b);
    if (jinja_is_number(a) && jinja_is_number(b)) {
        if (op == JINJA_OP_DIV || a.type == JINJA_FLOAT || b.type == JINJA_FLOAT)
            return float_arith(ctx, op, jinja_as_double(a), jinja_as_double(b), out);
        return int_arith(ctx, op, as_int(a), as_int(b), out);
    }
    switch (op) {
    case JINJA_OP_ADD:
        if (a.type == b.type &&
            (a.type == JINJA_STRING || a.type == JINJA_LIST || a.type == JINJA_TUPLE))
            return concat(ctx, a, b, out);
        if (a.type == JINJA_STRING)
            return jinja_fail(ctx, "can only concatenate str (not \"%s\") to str",
                              jinja_type_name(b));
        break;
    case JINJA_OP_MUL: {
        bool a_seq = a.type == JINJA_STRING || a.type == JINJA_LIST || a.type == JINJA_TUPLE;
        bool b_seq = b.type == JINJA_STRING || b.type == JINJA_LIST || b.type == JINJA_TUPLE;
        if (a_seq && jinja_is_integer(b))
            return repeat(ctx, a, as_int(b), out);
        if (b_seq && jinja_is_integer(a))
            return repeat(ctx, b, as_int(a), out);
        break;
    }
    case JINJA_OP_MOD:
        if (a.type == JINJA_STRING)
            return jinja_percent_format(ctx, a.s, b, out);
        break;
    default:
        break;
    }
    return unsupported(ctx, op, a, b);
}
