/* Tokens -> AST, following the grammar of Jinja2's parser (operator
 * precedence, filters binding tighter than arithmetic, `is` tests, inline
 * if/else, tuples without parentheses in for/set). Filters and tests are
 * resolved here, so an unknown one is an error even where it never runs,
 * as in Jinja. */
#include "tokenizer/jinja_internal.h"

#include <string.h>

typedef struct jinja_parser {
    jinja_ctx *ctx;
    jinja_token *toks;
    size_t n, pos;
    int depth;
    int loops; /* enclosing for loops, for break/continue */
} jinja_parser;

static const jinja_token *cur(const jinja_parser *p)
{
    return &p->toks[p->pos];
}

static const jinja_token *peek(const jinja_parser *p)
{
    return &p->toks[p->pos + 1 < p->n ? p->pos + 1 : p->n - 1];
}

static void advance(jinja_parser *p)
{
    if (p->pos + 1 < p->n)
        p->pos++;
}

static bool tok_is_op(const jinja_token *t, const char *op)
{
    return t->kind == JT_OP && jinja_str_eq(t->text, op);
}

static bool tok_is_name(const jinja_token *t, const char *name)
{
    return t->kind == JT_NAME && jinja_str_eq(t->text, name);
}

static const char *tok_describe(const jinja_token *t, char *buf, size_t size)
{
    switch (t->kind) {
    case JT_EOF:
        return "end of template";
    case JT_TEXT:
        return "template data";
    case JT_VAR_BEGIN:
        return "'{{'";
    case JT_VAR_END:
        return "end of print statement";
    case JT_BLOCK_BEGIN:
        return "'{%'";
    case JT_BLOCK_END:
        return "end of statement block";
    case JT_STRING:
        return "string";
    case JT_INT:
    case JT_FLOAT:
        return "number";
    default:
        snprintf(buf, size, "'%.*s'", (int)(t->text.len > 40 ? 40 : t->text.len), t->text.ptr);
        return buf;
    }
}

static bool fail_tok(jinja_parser *p, const jinja_token *t, const char *fmt, const char *arg)
{
    char buf[64];
    const char *what = arg != NULL ? arg : tok_describe(t, buf, sizeof(buf));
    return jinja_fail_at(p->ctx, t->line, t->col, fmt, what);
}

static bool unexpected(jinja_parser *p)
{
    return fail_tok(p, cur(p), "unexpected %s", NULL);
}

static bool expect_op(jinja_parser *p, const char *op)
{
    if (!tok_is_op(cur(p), op)) {
        char buf[64], msg[96];
        snprintf(msg, sizeof(msg), "expected '%s', got %%s", op);
        return fail_tok(p, cur(p), msg, tok_describe(cur(p), buf, sizeof(buf)));
    }
    advance(p);
    return true;
}

static bool expect_kind(jinja_parser *p, jinja_token_kind kind, const char *what)
{
    if (cur(p)->kind != kind) {
        char buf[64], msg[96];
        snprintf(msg, sizeof(msg), "expected %s, got %%s", what);
        return fail_tok(p, cur(p), msg, tok_describe(cur(p), buf, sizeof(buf)));
    }
    advance(p);
    return true;
}

static bool enter(jinja_parser *p)
{
    if (++p->depth > JINJA_MAX_PARSE_DEPTH) {
        const jinja_token *t = cur(p);
        return jinja_fail_at(p->ctx, t->line, t->col, "template nested more than %d levels deep",
                             JINJA_MAX_PARSE_DEPTH);
    }
    return true;
}

static jinja_node *node_new(jinja_parser *p, jinja_node_kind kind, const jinja_token *t)
{
    jinja_node *n = jinja_alloc(p->ctx, sizeof(*n));
    if (n == NULL)
        return NULL;
    n->kind = kind;
    n->line = t->line;
    n->col = t->col;
    return n;
}

static bool nodes_push(jinja_parser *p, jinja_nodes *list, jinja_node *n)
{
    if (list->len == list->cap) {
        size_t cap = list->cap < 4 ? 4 : list->cap * 2;
        jinja_node **items = jinja_alloc_array(p->ctx, cap, sizeof(*items));
        if (items == NULL)
            return false;
        if (list->len > 0)
            memcpy(items, list->items, list->len * sizeof(*items));
        list->items = items;
        list->cap = cap;
    }
    list->items[list->len++] = n;
    return true;
}

/* Appends an argument and its keyword name (ptr NULL: positional). */
static bool args_push(jinja_parser *p, jinja_node *call, jinja_node *arg, jinja_str name)
{
    size_t old_cap = call->args.cap;
    if (!nodes_push(p, &call->args, arg))
        return false;
    if (call->args.cap != old_cap || call->arg_names == NULL) {
        jinja_str *names = jinja_alloc_array(p->ctx, call->args.cap, sizeof(jinja_str));
        if (names == NULL)
            return false;
        if (call->arg_names != NULL)
            memcpy(names, call->arg_names, (call->args.len - 1) * sizeof(jinja_str));
        call->arg_names = names;
    }
    call->arg_names[call->args.len - 1] = name;
    return true;
}

/* ---- Expressions ---- */

static jinja_node *parse_expression(jinja_parser *p, bool with_condexpr);
static jinja_node *parse_tuple(jinja_parser *p, bool simplified, bool with_condexpr,
                               const char *extra_end, bool explicit_parens);
static jinja_node *parse_unary(jinja_parser *p, bool with_filter);
static jinja_node *parse_primary(jinja_parser *p);
static jinja_node *parse_postfix(jinja_parser *p, jinja_node *node);
static jinja_node *parse_filter(jinja_parser *p, jinja_node *node, bool start_inline);

static bool parse_call_args(jinja_parser *p, jinja_node *call)
{
    const jinja_token *open = cur(p);
    if (!expect_op(p, "("))
        return false;
    bool need_comma = false, seen_kw = false;
    while (!tok_is_op(cur(p), ")")) {
        if (need_comma) {
            if (!expect_op(p, ","))
                return false;
            if (tok_is_op(cur(p), ")"))
                break;
        }
        if (tok_is_op(cur(p), "*") || tok_is_op(cur(p), "**"))
            return fail_tok(p, cur(p), "%s: *args and **kwargs are not supported", "call");
        jinja_str name = {NULL, 0};
        if (cur(p)->kind == JT_NAME && tok_is_op(peek(p), "=")) {
            name = cur(p)->text;
            advance(p);
            advance(p);
            seen_kw = true;
        } else if (seen_kw) {
            return fail_tok(p, open, "invalid syntax for function call expression%s", "");
        }
        jinja_node *arg = parse_expression(p, true);
        if (arg == NULL || !args_push(p, call, arg, name))
            return false;
        need_comma = true;
    }
    advance(p);
    return true;
}

static jinja_node *parse_subscribed(jinja_parser *p)
{
    const jinja_token *start = cur(p);
    jinja_node *first = NULL;
    if (!tok_is_op(cur(p), ":")) {
        first = parse_expression(p, true);
        if (first == NULL || !tok_is_op(cur(p), ":"))
            return first;
    }
    advance(p); /* ':' */
    jinja_node *slice = node_new(p, JN_SLICE, start);
    jinja_node *parts[3] = {first, NULL, NULL};
    if (slice == NULL)
        return NULL;
    if (!tok_is_op(cur(p), "]") && !tok_is_op(cur(p), ",") && !tok_is_op(cur(p), ":")) {
        if ((parts[1] = parse_expression(p, true)) == NULL)
            return NULL;
    }
    if (tok_is_op(cur(p), ":")) {
        advance(p);
        if (!tok_is_op(cur(p), "]") && !tok_is_op(cur(p), ",")) {
            if ((parts[2] = parse_expression(p, true)) == NULL)
                return NULL;
        }
    }
    for (int i = 0; i < 3; i++) {
        if (!nodes_push(p, &slice->args, parts[i]))
            return NULL;
    }
    return slice;
}

static jinja_node *parse_subscript(jinja_parser *p, jinja_node *node)
{
    const jinja_token *t = cur(p);
    if (tok_is_op(t, ".")) {
        advance(p);
        const jinja_token *attr = cur(p);
        if (attr->kind == JT_NAME) {
            jinja_node *n = node_new(p, JN_ATTR, t);
            if (n == NULL)
                return NULL;
            n->a = node;
            n->name = attr->text;
            advance(p);
            return n;
        }
        if (attr->kind == JT_INT) {
            jinja_node *n = node_new(p, JN_ITEM, t), *key = node_new(p, JN_CONST, attr);
            if (n == NULL || key == NULL)
                return NULL;
            key->value = jinja_int(attr->i);
            n->a = node;
            n->b = key;
            advance(p);
            return n;
        }
        fail_tok(p, attr, "expected name or number after '.', got %s", NULL);
        return NULL;
    }
    advance(p); /* '[' */
    jinja_node *n = node_new(p, JN_ITEM, t);
    jinja_node *tuple = node_new(p, JN_TUPLE, t);
    if (n == NULL || tuple == NULL)
        return NULL;
    while (!tok_is_op(cur(p), "]")) {
        if (tuple->args.len > 0 && !expect_op(p, ","))
            return NULL;
        if (tok_is_op(cur(p), "]"))
            break;
        jinja_node *arg = parse_subscribed(p);
        if (arg == NULL || !nodes_push(p, &tuple->args, arg))
            return NULL;
    }
    if (tuple->args.len == 0) {
        unexpected(p);
        return NULL;
    }
    advance(p);
    n->a = node;
    n->b = tuple->args.len == 1 ? tuple->args.items[0] : tuple;
    return n;
}

static jinja_node *parse_postfix(jinja_parser *p, jinja_node *node)
{
    while (node != NULL) {
        const jinja_token *t = cur(p);
        if (tok_is_op(t, ".") || tok_is_op(t, "[")) {
            node = parse_subscript(p, node);
        } else if (tok_is_op(t, "(")) {
            jinja_node *call = node_new(p, JN_CALL, t);
            if (call == NULL)
                return NULL;
            call->a = node;
            if (!parse_call_args(p, call))
                return NULL;
            node = call;
        } else {
            break;
        }
    }
    return node;
}

static bool parse_dotted_name(jinja_parser *p, jinja_str *name)
{
    const jinja_token *t = cur(p);
    if (t->kind != JT_NAME)
        return fail_tok(p, t, "expected a name, got %s", NULL);
    *name = t->text;
    advance(p);
    while (tok_is_op(cur(p), ".") && peek(p)->kind == JT_NAME) {
        advance(p);
        name->len = (size_t)(cur(p)->text.ptr + cur(p)->text.len - name->ptr);
        advance(p);
    }
    return true;
}

static jinja_node *parse_filter(jinja_parser *p, jinja_node *node, bool start_inline)
{
    while (tok_is_op(cur(p), "|") || start_inline) {
        if (!start_inline)
            advance(p);
        start_inline = false;
        const jinja_token *t = cur(p);
        jinja_node *f = node_new(p, JN_FILTER, t);
        if (f == NULL || !parse_dotted_name(p, &f->name))
            return NULL;
        f->filter = jinja_find_filter(f->name);
        if (f->filter == NULL) {
            char buf[96];
            snprintf(buf, sizeof(buf), "%.*s", (int)(f->name.len > 64 ? 64 : f->name.len),
                     f->name.ptr);
            fail_tok(p, t, "no filter named '%s'", buf);
            return NULL;
        }
        f->a = node;
        if (tok_is_op(cur(p), "(") && !parse_call_args(p, f))
            return NULL;
        node = f;
    }
    return node;
}

static bool test_arg_follows(const jinja_token *t)
{
    if (t->kind == JT_NAME)
        return !tok_is_name(t, "else") && !tok_is_name(t, "or") && !tok_is_name(t, "and");
    return t->kind == JT_STRING || t->kind == JT_INT || t->kind == JT_FLOAT || tok_is_op(t, "(") ||
           tok_is_op(t, "[") || tok_is_op(t, "{");
}

static jinja_node *parse_test(jinja_parser *p, jinja_node *node)
{
    const jinja_token *is_tok = cur(p);
    advance(p); /* 'is' */
    bool negated = false;
    if (tok_is_name(cur(p), "not")) {
        negated = true;
        advance(p);
    }
    const jinja_token *t = cur(p);
    jinja_node *test = node_new(p, JN_TEST, is_tok);
    if (test == NULL || !parse_dotted_name(p, &test->name))
        return NULL;
    test->test = jinja_find_test(test->name);
    if (test->test == NULL) {
        char buf[96];
        snprintf(buf, sizeof(buf), "%.*s", (int)(test->name.len > 64 ? 64 : test->name.len),
                 test->name.ptr);
        fail_tok(p, t, "no test named '%s'", buf);
        return NULL;
    }
    test->a = node;
    if (tok_is_op(cur(p), "(")) {
        if (!parse_call_args(p, test))
            return NULL;
    } else if (test_arg_follows(cur(p))) {
        if (tok_is_name(cur(p), "is")) {
            fail_tok(p, cur(p), "%s", "you cannot chain multiple tests with is");
            return NULL;
        }
        jinja_node *arg = parse_postfix(p, parse_primary(p));
        if (arg == NULL || !args_push(p, test, arg, (jinja_str){NULL, 0}))
            return NULL;
    }
    if (!negated)
        return test;
    jinja_node *not_node = node_new(p, JN_NOT, is_tok);
    if (not_node != NULL)
        not_node->a = test;
    return not_node;
}

static jinja_node *parse_filter_expr(jinja_parser *p, jinja_node *node)
{
    while (node != NULL) {
        if (tok_is_op(cur(p), "|")) {
            node = parse_filter(p, node, false);
        } else if (tok_is_name(cur(p), "is")) {
            node = parse_test(p, node);
        } else if (tok_is_op(cur(p), "(")) {
            jinja_node *call = node_new(p, JN_CALL, cur(p));
            if (call == NULL)
                return NULL;
            call->a = node;
            if (!parse_call_args(p, call))
                return NULL;
            node = call;
        } else {
            break;
        }
    }
    return node;
}

static jinja_node *parse_list_or_dict(jinja_parser *p, bool dict)
{
    const jinja_token *open = cur(p);
    advance(p);
    jinja_node *n = node_new(p, dict ? JN_DICT : JN_LIST, open);
    if (n == NULL)
        return NULL;
    const char *close = dict ? "}" : "]";
    while (!tok_is_op(cur(p), close)) {
        if (n->args.len > 0 && !expect_op(p, ","))
            return NULL;
        if (tok_is_op(cur(p), close))
            break;
        jinja_node *item = parse_expression(p, true);
        if (item == NULL || !nodes_push(p, &n->args, item))
            return NULL;
        if (dict) {
            if (!expect_op(p, ":"))
                return NULL;
            jinja_node *value = parse_expression(p, true);
            if (value == NULL || !nodes_push(p, &n->args, value))
                return NULL;
        }
    }
    advance(p);
    return n;
}

static jinja_node *parse_string_literal(jinja_parser *p)
{
    const jinja_token *t = cur(p);
    jinja_node *n = node_new(p, JN_CONST, t);
    if (n == NULL)
        return NULL;
    advance(p);
    if (cur(p)->kind != JT_STRING) {
        n->value = jinja_string(t->text.ptr, t->text.len);
        return n;
    }
    /* Adjacent string literals concatenate, as in Python. */
    jinja_sb sb = {0};
    if (!jinja_sb_append(p->ctx, &sb, t->text.ptr, t->text.len))
        return NULL;
    while (cur(p)->kind == JT_STRING) {
        if (!jinja_sb_append(p->ctx, &sb, cur(p)->text.ptr, cur(p)->text.len))
            return NULL;
        advance(p);
    }
    n->value = jinja_sb_value(&sb);
    return n;
}

static jinja_node *parse_name(jinja_parser *p)
{
    const jinja_token *t = cur(p);
    jinja_node *n = node_new(p, JN_CONST, t);
    if (n == NULL)
        return NULL;
    advance(p);
    if (jinja_str_eq(t->text, "true") || jinja_str_eq(t->text, "True"))
        n->value = jinja_bool(true);
    else if (jinja_str_eq(t->text, "false") || jinja_str_eq(t->text, "False"))
        n->value = jinja_bool(false);
    else if (jinja_str_eq(t->text, "none") || jinja_str_eq(t->text, "None"))
        n->value = jinja_none();
    else {
        n->kind = JN_NAME;
        n->name = t->text;
    }
    return n;
}

static jinja_node *parse_primary(jinja_parser *p)
{
    const jinja_token *t = cur(p);
    if (!enter(p))
        return NULL;
    jinja_node *n = NULL;
    if (t->kind == JT_NAME) {
        n = parse_name(p);
    } else if (t->kind == JT_STRING) {
        n = parse_string_literal(p);
    } else if (t->kind == JT_INT || t->kind == JT_FLOAT) {
        n = node_new(p, JN_CONST, t);
        if (n != NULL)
            n->value = t->kind == JT_INT ? jinja_int(t->i) : jinja_float(t->f);
        advance(p);
    } else if (tok_is_op(t, "(")) {
        advance(p);
        n = parse_tuple(p, false, true, NULL, true);
        if (n != NULL && !expect_op(p, ")"))
            n = NULL;
    } else if (tok_is_op(t, "[") || tok_is_op(t, "{")) {
        n = parse_list_or_dict(p, tok_is_op(t, "{"));
    } else {
        unexpected(p);
    }
    p->depth--;
    return n;
}

static jinja_node *parse_unary(jinja_parser *p, bool with_filter)
{
    const jinja_token *t = cur(p);
    jinja_node *node;
    if (!enter(p))
        return NULL;
    if (tok_is_op(t, "-") || tok_is_op(t, "+")) {
        advance(p);
        node = node_new(p, tok_is_op(t, "-") ? JN_NEG : JN_POS, t);
        if (node != NULL && (node->a = parse_unary(p, false)) == NULL)
            node = NULL;
    } else {
        node = parse_primary(p);
    }
    node = parse_postfix(p, node);
    if (with_filter)
        node = parse_filter_expr(p, node);
    p->depth--;
    return node;
}

static jinja_node *binary_node(jinja_parser *p, const jinja_token *t, jinja_node_kind kind,
                               jinja_op op, jinja_node *a, jinja_node *b)
{
    if (a == NULL || b == NULL)
        return NULL;
    jinja_node *n = node_new(p, kind, t);
    if (n != NULL) {
        n->op = op;
        n->a = a;
        n->b = b;
    }
    return n;
}

static jinja_node *parse_pow(jinja_parser *p)
{
    jinja_node *left = parse_unary(p, true);
    while (left != NULL && tok_is_op(cur(p), "**")) {
        const jinja_token *t = cur(p);
        advance(p);
        left = binary_node(p, t, JN_BINARY, JINJA_OP_POW, left, parse_unary(p, true));
    }
    return left;
}

static jinja_node *parse_math2(jinja_parser *p)
{
    jinja_node *left = parse_pow(p);
    while (left != NULL) {
        const jinja_token *t = cur(p);
        jinja_op op;
        if (tok_is_op(t, "*"))
            op = JINJA_OP_MUL;
        else if (tok_is_op(t, "/"))
            op = JINJA_OP_DIV;
        else if (tok_is_op(t, "//"))
            op = JINJA_OP_FLOORDIV;
        else if (tok_is_op(t, "%"))
            op = JINJA_OP_MOD;
        else
            break;
        advance(p);
        left = binary_node(p, t, JN_BINARY, op, left, parse_pow(p));
    }
    return left;
}

static jinja_node *parse_concat(jinja_parser *p)
{
    const jinja_token *t = cur(p);
    jinja_node *first = parse_math2(p);
    if (first == NULL || !tok_is_op(cur(p), "~"))
        return first;
    jinja_node *n = node_new(p, JN_CONCAT, t);
    if (n == NULL || !nodes_push(p, &n->args, first))
        return NULL;
    while (tok_is_op(cur(p), "~")) {
        advance(p);
        jinja_node *next = parse_math2(p);
        if (next == NULL || !nodes_push(p, &n->args, next))
            return NULL;
    }
    return n;
}

static jinja_node *parse_math1(jinja_parser *p)
{
    jinja_node *left = parse_concat(p);
    while (left != NULL && (tok_is_op(cur(p), "+") || tok_is_op(cur(p), "-"))) {
        const jinja_token *t = cur(p);
        jinja_op op = tok_is_op(t, "+") ? JINJA_OP_ADD : JINJA_OP_SUB;
        advance(p);
        left = binary_node(p, t, JN_BINARY, op, left, parse_concat(p));
    }
    return left;
}

static bool compare_op(const jinja_parser *p, jinja_op *op, int *width)
{
    static const struct {
        const char *text;
        jinja_op op;
    } ops[] = {{"==", JINJA_OP_EQ}, {"!=", JINJA_OP_NE}, {"<", JINJA_OP_LT},
               {"<=", JINJA_OP_LE}, {">", JINJA_OP_GT},  {">=", JINJA_OP_GE}};
    const jinja_token *t = cur(p);
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        if (tok_is_op(t, ops[i].text)) {
            *op = ops[i].op;
            *width = 1;
            return true;
        }
    }
    if (tok_is_name(t, "in")) {
        *op = JINJA_OP_IN;
        *width = 1;
        return true;
    }
    if (tok_is_name(t, "not") && tok_is_name(peek(p), "in")) {
        *op = JINJA_OP_NOT_IN;
        *width = 2;
        return true;
    }
    return false;
}

static jinja_node *parse_compare(jinja_parser *p)
{
    const jinja_token *t = cur(p);
    jinja_node *first = parse_math1(p);
    jinja_op op;
    int width;
    if (first == NULL || !compare_op(p, &op, &width))
        return first;
    jinja_node *n = node_new(p, JN_COMPARE, t);
    if (n == NULL)
        return NULL;
    n->a = first;
    size_t cap = 0;
    while (compare_op(p, &op, &width)) {
        for (int i = 0; i < width; i++)
            advance(p);
        jinja_node *operand = parse_math1(p);
        if (operand == NULL || !nodes_push(p, &n->args, operand))
            return NULL;
        if (n->args.len > cap) {
            jinja_op *ops = jinja_alloc_array(p->ctx, n->args.cap, sizeof(jinja_op));
            if (ops == NULL)
                return NULL;
            if (n->ops != NULL)
                memcpy(ops, n->ops, (n->args.len - 1) * sizeof(jinja_op));
            n->ops = ops;
            cap = n->args.cap;
        }
        n->ops[n->args.len - 1] = op;
    }
    return n;
}

static jinja_node *parse_not(jinja_parser *p)
{
    const jinja_token *t = cur(p);
    if (!tok_is_name(t, "not"))
        return parse_compare(p);
    if (!enter(p))
        return NULL;
    advance(p);
    jinja_node *n = node_new(p, JN_NOT, t);
    if (n != NULL && (n->a = parse_not(p)) == NULL)
        n = NULL;
    p->depth--;
    return n;
}

static jinja_node *parse_and(jinja_parser *p)
{
    jinja_node *left = parse_not(p);
    while (left != NULL && tok_is_name(cur(p), "and")) {
        const jinja_token *t = cur(p);
        advance(p);
        left = binary_node(p, t, JN_AND, JINJA_OP_ADD, left, parse_not(p));
    }
    return left;
}

static jinja_node *parse_or(jinja_parser *p)
{
    jinja_node *left = parse_and(p);
    while (left != NULL && tok_is_name(cur(p), "or")) {
        const jinja_token *t = cur(p);
        advance(p);
        left = binary_node(p, t, JN_OR, JINJA_OP_ADD, left, parse_and(p));
    }
    return left;
}

static jinja_node *parse_condexpr(jinja_parser *p)
{
    jinja_node *expr = parse_or(p);
    while (expr != NULL && tok_is_name(cur(p), "if")) {
        const jinja_token *t = cur(p);
        advance(p);
        jinja_node *n = node_new(p, JN_COND, t);
        if (n == NULL || (n->a = parse_or(p)) == NULL)
            return NULL;
        n->b = expr;
        if (tok_is_name(cur(p), "else")) {
            advance(p);
            if (!enter(p) || (n->c = parse_condexpr(p)) == NULL)
                return NULL;
            p->depth--;
        }
        expr = n;
    }
    return expr;
}

static jinja_node *parse_expression(jinja_parser *p, bool with_condexpr)
{
    if (!enter(p))
        return NULL;
    jinja_node *n = with_condexpr ? parse_condexpr(p) : parse_or(p);
    p->depth--;
    return n;
}

static bool tuple_end(const jinja_parser *p, const char *extra_end)
{
    const jinja_token *t = cur(p);
    if (t->kind == JT_VAR_END || t->kind == JT_BLOCK_END || t->kind == JT_EOF || tok_is_op(t, ")"))
        return true;
    return extra_end != NULL && tok_is_name(t, extra_end);
}

static jinja_node *parse_tuple(jinja_parser *p, bool simplified, bool with_condexpr,
                               const char *extra_end, bool explicit_parens)
{
    const jinja_token *start = cur(p);
    jinja_node *tuple = node_new(p, JN_TUPLE, start);
    if (tuple == NULL)
        return NULL;
    bool is_tuple = false;
    for (;;) {
        if (tuple->args.len > 0 && !expect_op(p, ","))
            return NULL;
        if (tuple_end(p, extra_end))
            break;
        jinja_node *item = simplified ? parse_primary(p) : parse_expression(p, with_condexpr);
        if (item == NULL || !nodes_push(p, &tuple->args, item))
            return NULL;
        if (!tok_is_op(cur(p), ","))
            break;
        is_tuple = true;
    }
    if (is_tuple)
        return tuple;
    if (tuple->args.len > 0)
        return tuple->args.items[0];
    if (!explicit_parens) {
        fail_tok(p, cur(p), "expected an expression, got %s", NULL);
        return NULL;
    }
    return tuple;
}

/* ---- Statements ---- */

static bool parse_body(jinja_parser *p, const char *const *end_names, jinja_nodes *body);

static bool is_one_of(const jinja_token *t, const char *const *names)
{
    for (; names != NULL && *names != NULL; names++) {
        if (tok_is_name(t, *names))
            return true;
    }
    return false;
}

/* `%}` then statements up to one of end_names (left as the current token,
 * or consumed when drop is set). */
static bool parse_statements(jinja_parser *p, const jinja_token *opener,
                             const char *const *end_names, bool drop, jinja_nodes *body)
{
    if (tok_is_op(cur(p), ":"))
        advance(p);
    if (!expect_kind(p, JT_BLOCK_END, "end of statement block"))
        return false;
    if (!enter(p) || !parse_body(p, end_names, body))
        return false;
    p->depth--;
    if (cur(p)->kind == JT_EOF) {
        char want[128] = "";
        size_t n = 0;
        for (const char *const *e = end_names; *e != NULL && n + 32 < sizeof(want); e++)
            n += (size_t)snprintf(want + n, sizeof(want) - n, "%s'%s'", n ? " or " : "", *e);
        char msg[256];
        snprintf(msg, sizeof(msg),
                 "unexpected end of template, expected %s to close the '%.*s' opened at line %d, "
                 "column %d",
                 want, (int)opener->text.len, opener->text.ptr, opener->line, opener->col);
        return fail_tok(p, cur(p), "%s", msg);
    }
    if (drop)
        advance(p);
    return true;
}

static bool check_assign_target(jinja_parser *p, jinja_node *target)
{
    if (target->kind == JN_NAME)
        return true;
    if (target->kind == JN_TUPLE) {
        for (size_t i = 0; i < target->args.len; i++) {
            if (target->args.items[i]->kind != JN_NAME)
                return jinja_fail_at(p->ctx, target->line, target->col,
                                     "can't assign to this expression");
        }
        return true;
    }
    return jinja_fail_at(p->ctx, target->line, target->col, "can't assign to this expression");
}

static jinja_node *parse_assign_target(jinja_parser *p, const char *extra_end, bool with_namespace)
{
    const jinja_token *t = cur(p);
    if (with_namespace && t->kind == JT_NAME && tok_is_op(peek(p), ".")) {
        jinja_node *ns = node_new(p, JN_NAME, t), *attr;
        if (ns == NULL)
            return NULL;
        ns->name = t->text;
        advance(p);
        advance(p);
        if (cur(p)->kind != JT_NAME) {
            fail_tok(p, cur(p), "expected a name, got %s", NULL);
            return NULL;
        }
        if ((attr = node_new(p, JN_ATTR, t)) == NULL)
            return NULL;
        attr->a = ns;
        attr->name = cur(p)->text;
        advance(p);
        return attr;
    }
    jinja_node *target = parse_tuple(p, true, true, extra_end, false);
    if (target == NULL || !check_assign_target(p, target))
        return NULL;
    return target;
}

static jinja_node *parse_for(jinja_parser *p, const jinja_token *t)
{
    static const char *const body_end[] = {"endfor", "else", NULL};
    static const char *const else_end[] = {"endfor", NULL};
    jinja_node *n = node_new(p, JN_FOR, t);
    if (n == NULL || (n->a = parse_assign_target(p, "in", false)) == NULL)
        return NULL;
    if (!tok_is_name(cur(p), "in")) {
        fail_tok(p, cur(p), "expected 'in', got %s", NULL);
        return NULL;
    }
    advance(p);
    if ((n->b = parse_tuple(p, false, false, "recursive", false)) == NULL)
        return NULL;
    if (tok_is_name(cur(p), "if")) {
        advance(p);
        if ((n->c = parse_expression(p, true)) == NULL)
            return NULL;
    }
    if (tok_is_name(cur(p), "recursive")) {
        fail_tok(p, cur(p), "%s", "recursive for loops are not supported");
        return NULL;
    }
    p->loops++;
    bool ok = parse_statements(p, t, body_end, false, &n->body);
    p->loops--;
    if (!ok)
        return NULL;
    bool has_else = tok_is_name(cur(p), "else");
    advance(p);
    if (has_else && !parse_statements(p, t, else_end, true, &n->else_body))
        return NULL;
    return n;
}

static jinja_node *parse_if(jinja_parser *p, const jinja_token *t)
{
    static const char *const body_end[] = {"elif", "else", "endif", NULL};
    static const char *const else_end[] = {"endif", NULL};
    jinja_node *n = node_new(p, JN_IF, t);
    if (n == NULL || (n->a = parse_tuple(p, false, false, NULL, false)) == NULL)
        return NULL;
    if (!parse_statements(p, t, body_end, false, &n->body))
        return NULL;
    if (tok_is_name(cur(p), "elif")) {
        const jinja_token *elif = cur(p);
        advance(p);
        if (!enter(p))
            return NULL;
        jinja_node *inner = parse_if(p, elif);
        p->depth--;
        if (inner == NULL || !nodes_push(p, &n->else_body, inner))
            return NULL;
        return n;
    }
    bool has_else = tok_is_name(cur(p), "else");
    advance(p);
    if (has_else && !parse_statements(p, t, else_end, true, &n->else_body))
        return NULL;
    return n;
}

static jinja_node *parse_set(jinja_parser *p, const jinja_token *t)
{
    static const char *const end[] = {"endset", NULL};
    jinja_node *target = parse_assign_target(p, NULL, true);
    if (target == NULL)
        return NULL;
    if (tok_is_op(cur(p), "=")) {
        advance(p);
        jinja_node *n = node_new(p, JN_SET, t);
        if (n == NULL)
            return NULL;
        n->a = target;
        if ((n->b = parse_tuple(p, false, true, NULL, false)) == NULL)
            return NULL;
        return n;
    }
    jinja_node *n = node_new(p, JN_SET_BLOCK, t);
    if (n == NULL)
        return NULL;
    n->a = target;
    if (tok_is_op(cur(p), "|") && (n->c = parse_filter(p, NULL, false)) == NULL)
        return NULL;
    if (!parse_statements(p, t, end, true, &n->body))
        return NULL;
    return n;
}

static jinja_node *parse_macro(jinja_parser *p, const jinja_token *t)
{
    static const char *const end[] = {"endmacro", NULL};
    jinja_node *n = node_new(p, JN_MACRO, t);
    if (n == NULL)
        return NULL;
    if (cur(p)->kind != JT_NAME) {
        fail_tok(p, cur(p), "expected a macro name, got %s", NULL);
        return NULL;
    }
    n->name = cur(p)->text;
    advance(p);
    if (!expect_op(p, "("))
        return NULL;
    while (!tok_is_op(cur(p), ")")) {
        if (n->args.len > 0 && !expect_op(p, ","))
            return NULL;
        if (tok_is_op(cur(p), ")"))
            break;
        if (cur(p)->kind != JT_NAME) {
            fail_tok(p, cur(p), "expected a parameter name, got %s", NULL);
            return NULL;
        }
        jinja_str name = cur(p)->text;
        jinja_node *def = NULL;
        advance(p);
        if (tok_is_op(cur(p), "=")) {
            advance(p);
            if ((def = parse_expression(p, true)) == NULL)
                return NULL;
        }
        if (!args_push(p, n, def, name))
            return NULL;
    }
    advance(p);
    int loops = p->loops;
    p->loops = 0;
    bool ok = parse_statements(p, t, end, true, &n->body);
    p->loops = loops;
    return ok ? n : NULL;
}

static jinja_node *parse_filter_block(jinja_parser *p, const jinja_token *t)
{
    static const char *const end[] = {"endfilter", NULL};
    jinja_node *n = node_new(p, JN_FILTER_BLOCK, t);
    if (n == NULL || (n->a = parse_filter(p, NULL, true)) == NULL)
        return NULL;
    if (!parse_statements(p, t, end, true, &n->body))
        return NULL;
    return n;
}

static jinja_node *parse_with(jinja_parser *p, const jinja_token *t)
{
    static const char *const end[] = {"endwith", NULL};
    jinja_node *n = node_new(p, JN_WITH, t);
    if (n == NULL)
        return NULL;
    while (cur(p)->kind != JT_BLOCK_END) {
        if (n->args.len > 0 && !expect_op(p, ","))
            return NULL;
        jinja_node *target = parse_assign_target(p, NULL, false);
        if (target == NULL || !expect_op(p, "="))
            return NULL;
        jinja_node *value = parse_expression(p, true);
        if (value == NULL || !nodes_push(p, &n->args, target) || !nodes_push(p, &n->args, value))
            return NULL;
    }
    if (!parse_statements(p, t, end, true, &n->body))
        return NULL;
    return n;
}

static jinja_node *parse_generation(jinja_parser *p, const jinja_token *t)
{
    static const char *const end[] = {"endgeneration", NULL};
    jinja_node *n = node_new(p, JN_SCOPELESS_BODY, t);
    if (n == NULL || !parse_statements(p, t, end, true, &n->body))
        return NULL;
    return n;
}

static jinja_node *parse_loop_control(jinja_parser *p, const jinja_token *t, jinja_node_kind kind)
{
    if (p->loops == 0) {
        fail_tok(p, t, "'%s' outside of a loop", kind == JN_BREAK ? "break" : "continue");
        return NULL;
    }
    return node_new(p, kind, t);
}

static jinja_node *parse_statement(jinja_parser *p)
{
    const jinja_token *t = cur(p);
    if (t->kind != JT_NAME) {
        fail_tok(p, t, "tag name expected, got %s", NULL);
        return NULL;
    }
    advance(p);
    if (jinja_str_eq(t->text, "for"))
        return parse_for(p, t);
    if (jinja_str_eq(t->text, "if"))
        return parse_if(p, t);
    if (jinja_str_eq(t->text, "set"))
        return parse_set(p, t);
    if (jinja_str_eq(t->text, "macro"))
        return parse_macro(p, t);
    if (jinja_str_eq(t->text, "filter"))
        return parse_filter_block(p, t);
    if (jinja_str_eq(t->text, "with"))
        return parse_with(p, t);
    if (jinja_str_eq(t->text, "generation"))
        return parse_generation(p, t);
    if (jinja_str_eq(t->text, "break"))
        return parse_loop_control(p, t, JN_BREAK);
    if (jinja_str_eq(t->text, "continue"))
        return parse_loop_control(p, t, JN_CONTINUE);
    char name[72];
    snprintf(name, sizeof(name), "%.*s", (int)(t->text.len > 64 ? 64 : t->text.len), t->text.ptr);
    fail_tok(p, t, "encountered unknown tag '%s'", name);
    return NULL;
}

static bool parse_body(jinja_parser *p, const char *const *end_names, jinja_nodes *body)
{
    for (;;) {
        const jinja_token *t = cur(p);
        jinja_node *n;
        switch (t->kind) {
        case JT_EOF:
            return true;
        case JT_TEXT:
            if ((n = node_new(p, JN_TEXT, t)) == NULL)
                return false;
            n->name = t->text;
            advance(p);
            break;
        case JT_VAR_BEGIN:
            advance(p);
            if ((n = node_new(p, JN_PRINT, t)) == NULL ||
                (n->a = parse_tuple(p, false, true, NULL, false)) == NULL ||
                !expect_kind(p, JT_VAR_END, "end of print statement"))
                return false;
            break;
        case JT_BLOCK_BEGIN:
            advance(p);
            if (is_one_of(cur(p), end_names))
                return true;
            if ((n = parse_statement(p)) == NULL ||
                !expect_kind(p, JT_BLOCK_END, "end of statement block"))
                return false;
            break;
        default:
            return unexpected(p);
        }
        if (!nodes_push(p, body, n))
            return false;
    }
}

static void assign_positions(jinja_ctx *ctx, jinja_tokens *tokens)
{
    int line = 1, col = 1;
    size_t at = 0;
    for (size_t i = 0; i < tokens->len; i++) {
        jinja_token *t = &tokens->items[i];
        if (t->offset < at) { /* not expected: tokens come in source order */
            jinja_position(ctx, t->offset, &t->line, &t->col);
            continue;
        }
        for (; at < t->offset && at < ctx->source_len; at++) {
            unsigned char c = (unsigned char)ctx->source[at];
            if (c == '\n') {
                line++;
                col = 1;
            } else if ((c & 0xC0) != 0x80) {
                col++;
            }
        }
        t->line = line;
        t->col = col;
    }
}

bool jinja_parse(jinja_ctx *ctx, const jinja_tokens *tokens, jinja_nodes *out)
{
    jinja_tokens toks = *tokens;
    assign_positions(ctx, &toks);
    jinja_parser p = {.ctx = ctx, .toks = toks.items, .n = toks.len};
    if (!parse_body(&p, NULL, out))
        return false;
    if (cur(&p)->kind != JT_EOF)
        return unexpected(&p);
    return true;
}
