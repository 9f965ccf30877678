/* Internals of the Jinja2 interpreter (see jinja.h), shared by its files:
 *   jinja_arena.c   per-render arena, string builders, errors
 *   jinja_value.c   values, dicts, Python str()/repr(), equality, ordering
 *   jinja_json.c    JSON context -> values, tojson
 *   jinja_text.c    UTF-8 and Python str helpers (case, strip, split)
 *   jinja_lex.c     template text -> tokens (whitespace control)
 *   jinja_parse.c   tokens -> AST
 *   jinja_eval.c    AST walker: statements and expressions
 *   jinja_ops.c     binary operators: arithmetic, comparisons, `in`
 *   jinja_filters.c filters and tests
 *   jinja_methods.c str/dict/list methods and global functions
 *   jinja.c         jinja_render
 * Everything a render allocates lives in one arena freed at its end. */
#ifndef OGI_TOKENIZER_JINJA_INTERNAL_H
#define OGI_TOKENIZER_JINJA_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "ogi.h"

/* ---- Limits: a hostile template fails instead of hanging or crashing ---- */

#define JINJA_MAX_PARSE_DEPTH 200            /* nested blocks / parentheses */
#define JINJA_MAX_EVAL_DEPTH 1000            /* evaluator recursion, macro calls included */
#define JINJA_MAX_VALUE_DEPTH 500            /* nesting of printed / compared values */
#define JINJA_MAX_STEPS 1000000              /* loop iterations and macro calls per render */
#define JINJA_MAX_WORK ((size_t)1 << 30)     /* bytes and items processed per render */
#define JINJA_WORK_PER_ITEM 16               /* work units of one comparison of values */
#define JINJA_MAX_OUTPUT ((size_t)64 << 20)  /* bytes of any one string */
#define JINJA_MAX_MEMORY ((size_t)256 << 20) /* bytes allocated per render */

/* ---- Strings ---- */

typedef struct jinja_str {
    const char *ptr;
    size_t len;
} jinja_str;

/* ---- Values ---- */

typedef enum jinja_type {
    JINJA_UNDEFINED,
    JINJA_NONE,
    JINJA_BOOL,
    JINJA_INT,
    JINJA_FLOAT,
    JINJA_STRING,
    JINJA_LIST,
    JINJA_TUPLE,
    JINJA_DICT,
    JINJA_NAMESPACE,
    JINJA_CALLABLE,
    JINJA_LOOP,
    JINJA_MISSING, /* internal: an argument that was not passed */
} jinja_type;

typedef struct jinja_list jinja_list;
typedef struct jinja_dict jinja_dict;
typedef struct jinja_callable jinja_callable;
typedef struct jinja_loop jinja_loop;

typedef struct jinja_value {
    jinja_type type;
    bool markup; /* STRING from safe or escape: Python's markupsafe.Markup */
    union {
        bool b;
        int64_t i;
        double f;
        jinja_str s;
        jinja_list *list; /* LIST, TUPLE */
        jinja_dict *dict; /* DICT, NAMESPACE */
        jinja_callable *fn;
        jinja_loop *loop;
        const char *hint; /* UNDEFINED: Jinja's reason, e.g. "'x' is undefined" (may be NULL) */
    };
} jinja_value;

struct jinja_list {
    jinja_value *items;
    size_t len, cap;
};

/* Insertion-ordered, like Python's dict; a hash index once it grows. */
struct jinja_dict {
    jinja_value *keys;
    jinja_value *vals;
    size_t len, cap;
    uint32_t *index; /* slot -> entry + 1, 0 = empty */
    size_t index_cap;
};

struct jinja_node;
struct jinja_scope;

typedef enum jinja_callable_kind {
    JINJA_FN_MACRO,
    JINJA_FN_GLOBAL, /* range, namespace, dict, raise_exception, strftime_now */
    JINJA_FN_METHOD, /* a method bound to self */
    JINJA_FN_UNSAFE, /* a mutating method the immutable sandbox refuses */
} jinja_callable_kind;

struct jinja_callable {
    jinja_callable_kind kind;
    jinja_str name;
    jinja_value self;
    const struct jinja_node *macro;
    struct jinja_scope *closure;
};

/* The `loop` variable of a for statement. */
struct jinja_loop {
    const jinja_list *items;
    size_t index0;
    jinja_value last_changed;
    bool has_changed;
};

/* ---- Per-render state ---- */

typedef struct jinja_chunk jinja_chunk;

typedef struct jinja_scope {
    struct jinja_scope *parent;
    jinja_dict vars;
} jinja_scope;

typedef enum jinja_flow { JINJA_FLOW_NORMAL, JINJA_FLOW_BREAK, JINJA_FLOW_CONTINUE } jinja_flow;

/* A string under construction in the arena. */
typedef struct jinja_sb {
    char *data;
    size_t len, cap;
} jinja_sb;

typedef struct jinja_ctx {
    jinja_chunk *chunks;
    size_t allocated;
    void *last_alloc; /* most recent allocation: jinja_sb grows it in place */
    size_t last_size;

    const char *source; /* newline-normalized template, for error columns */
    size_t source_len;
    const struct jinja_node *at; /* node being evaluated, for error positions */
    int at_line, at_col;         /* position when no node applies (lexer, parser) */

    jinja_sb *out;          /* where {{ }} and text go */
    jinja_list *empty_list; /* shared by macro calls without extra arguments */
    jinja_dict *empty_dict;
    size_t steps; /* loop iterations and macro calls */
    size_t work;  /* bytes and items processed, see jinja_charge */
    int depth;
    jinja_flow flow;

    bool failed;
    ogi_status status;
    int error_line, error_col;
    char error[1024];
} jinja_ctx;

/* ---- jinja_arena.c ---- */

void jinja_ctx_init(jinja_ctx *ctx);
void jinja_ctx_free(jinja_ctx *ctx);
/* Zeroed, aligned memory; NULL (with the error recorded) past the limit. */
void *jinja_alloc(jinja_ctx *ctx, size_t size);
void *jinja_alloc_array(jinja_ctx *ctx, size_t n, size_t size);
char *jinja_strdup(jinja_ctx *ctx, const char *ptr, size_t len);
/* Records the first error at the current node (or the given position) and
 * returns false, so callers can `return jinja_fail(ctx, "...")`. */
bool jinja_fail(jinja_ctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Counts work (bytes scanned or written, items visited) against
 * JINJA_MAX_WORK, so that loops over big values stay bounded in time. */
bool jinja_charge(jinja_ctx *ctx, size_t units);
bool jinja_fail_at(jinja_ctx *ctx, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* 1-based line and column (in code points) of a byte offset of the source. */
void jinja_position(const jinja_ctx *ctx, size_t offset, int *line, int *col);

bool jinja_sb_append(jinja_ctx *ctx, jinja_sb *sb, const char *ptr, size_t len);
bool jinja_sb_puts(jinja_ctx *ctx, jinja_sb *sb, const char *s);
bool jinja_sb_putc(jinja_ctx *ctx, jinja_sb *sb, char c);
bool jinja_sb_printf(jinja_ctx *ctx, jinja_sb *sb, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
bool jinja_sb_put_codepoint(jinja_ctx *ctx, jinja_sb *sb, int32_t cp);
jinja_value jinja_sb_value(const jinja_sb *sb);

/* ---- jinja_value.c ---- */

jinja_value jinja_undefined(const char *hint);
jinja_value jinja_undefined_fmt(jinja_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
jinja_value jinja_none(void);
jinja_value jinja_bool(bool b);
jinja_value jinja_int(int64_t i);
jinja_value jinja_float(double f);
jinja_value jinja_string(const char *ptr, size_t len);
jinja_value jinja_cstring(const char *s);

jinja_list *jinja_list_new(jinja_ctx *ctx, size_t cap);
bool jinja_list_push(jinja_ctx *ctx, jinja_list *list, jinja_value v);
jinja_value jinja_list_value(jinja_list *list);
jinja_value jinja_tuple_value(jinja_list *list);

jinja_dict *jinja_dict_new(jinja_ctx *ctx);
/* Python-style lookups: numbers compare by value, strings by bytes. */
const jinja_value *jinja_dict_get(const jinja_dict *d, jinja_value key);
const jinja_value *jinja_dict_get_str(const jinja_dict *d, const char *ptr, size_t len);
bool jinja_dict_set(jinja_ctx *ctx, jinja_dict *d, jinja_value key, jinja_value val);
void jinja_dict_clear(jinja_dict *d);
jinja_value jinja_dict_value(jinja_dict *d);

bool jinja_is_hashable(jinja_value v);
bool jinja_truthy(jinja_value v);
bool jinja_is_number(jinja_value v);  /* bool, int or float, like Python's Number */
bool jinja_is_integer(jinja_value v); /* bool or int: usable as an index */
double jinja_as_double(jinja_value v);
/* Python's type name ("str", "NoneType"), and Jinja's "dict object" form. */
const char *jinja_type_name(jinja_value v);
/* Python str(v) appended to sb (undefined -> ""). */
bool jinja_write_str(jinja_ctx *ctx, jinja_sb *sb, jinja_value v);
bool jinja_write_repr(jinja_ctx *ctx, jinja_sb *sb, jinja_value v, int depth);
/* str(v) as a value (strings are returned as they are). */
bool jinja_to_string(jinja_ctx *ctx, jinja_value v, jinja_value *out);
bool jinja_write_float(jinja_ctx *ctx, jinja_sb *sb, double f, bool json);
/* Fails on an undefined value, with Jinja's message. */
bool jinja_check_defined(jinja_ctx *ctx, jinja_value v);
bool jinja_equals(jinja_ctx *ctx, jinja_value a, jinja_value b, bool *eq);
/* -1/0/1 for Python's <, ==, >; fails for types without an order. */
bool jinja_compare(jinja_ctx *ctx, jinja_value a, jinja_value b, int *cmp);
/* The items of an iterable: list/tuple items, dict keys, string characters;
 * undefined iterates as empty. */
bool jinja_iterate(jinja_ctx *ctx, jinja_value v, jinja_list **items);
/* len(): strings count code points. */
bool jinja_length(jinja_ctx *ctx, jinja_value v, int64_t *len);

/* ---- jinja_json.c ---- */

bool jinja_from_json(jinja_ctx *ctx, const json_t *json, jinja_value *out, int depth);

typedef struct jinja_json_style {
    jinja_str indent; /* ptr NULL: no indent */
    jinja_str item_sep;
    jinja_str key_sep;
    bool ensure_ascii;
    bool sort_keys;
} jinja_json_style;

bool jinja_write_json(jinja_ctx *ctx, jinja_sb *sb, jinja_value v, const jinja_json_style *style,
                      int level);

/* ---- jinja_text.c ---- */

/* Decodes one code point at *pos (advancing it); invalid bytes give U+FFFD. */
int32_t jinja_utf8_next(const char *s, size_t len, size_t *pos);
size_t jinja_utf8_count(const char *s, size_t len);
/* Byte offset of code point index cp (len when past the end). */
size_t jinja_utf8_offset(const char *s, size_t len, size_t cp);
/* Python's str.isspace() for one code point. */
bool jinja_is_space(int32_t cp);
bool jinja_is_word_char(int32_t cp); /* regex \w */
bool jinja_is_printable(int32_t cp); /* str.isprintable() */
int32_t jinja_to_upper(int32_t cp);
int32_t jinja_to_lower(int32_t cp);
int32_t jinja_to_title(int32_t cp);
bool jinja_is_cased(int32_t cp);
bool jinja_is_upper(int32_t cp);
bool jinja_is_lower(int32_t cp);
bool jinja_is_alpha(int32_t cp);
bool jinja_is_digit(int32_t cp);
bool jinja_is_decimal(int32_t cp);
bool jinja_is_numeric(int32_t cp);

typedef enum jinja_case {
    JINJA_UPPER,
    JINJA_LOWER,
    JINJA_TITLE,
    JINJA_CAPITALIZE,
    JINJA_SWAPCASE
} jinja_case;
bool jinja_str_case(jinja_ctx *ctx, jinja_str s, jinja_case mode, jinja_value *out);
/* Appends Python's full upper or lower case of one code point. */
bool jinja_put_cased(jinja_ctx *ctx, jinja_sb *sb, int32_t cp, bool upper);
/* str.strip/lstrip/rstrip: chars NULL strips whitespace. */
jinja_str jinja_str_strip(jinja_str s, const jinja_str *chars, bool left, bool right);
/* str.split / str.rsplit (sep NULL: runs of whitespace), maxsplit < 0 unlimited. */
bool jinja_str_split(jinja_ctx *ctx, jinja_str s, const jinja_str *sep, int64_t maxsplit,
                     bool from_right, jinja_list **out);
bool jinja_str_splitlines(jinja_ctx *ctx, jinja_str s, bool keepends, jinja_list **out);
bool jinja_str_replace(jinja_ctx *ctx, jinja_str s, jinja_str old, jinja_str new_, int64_t count,
                       jinja_value *out);
/* Byte offset of the first (or last) occurrence in [0, len), or -1. */
int64_t jinja_str_find(jinja_str hay, jinja_str needle, bool last);
int64_t jinja_str_count(jinja_str hay, jinja_str needle);
bool jinja_str_starts(jinja_str s, jinja_str prefix);
bool jinja_str_ends(jinja_str s, jinja_str suffix);
bool jinja_str_eq(jinja_str a, const char *cstr);

/* ---- Lexer ---- */

typedef enum jinja_token_kind {
    JT_EOF,
    JT_TEXT,
    JT_VAR_BEGIN,
    JT_VAR_END,
    JT_BLOCK_BEGIN,
    JT_BLOCK_END,
    JT_NAME,
    JT_STRING,
    JT_INT,
    JT_FLOAT,
    JT_OP,
} jinja_token_kind;

typedef struct jinja_token {
    jinja_token_kind kind;
    jinja_str text; /* TEXT content, NAME, OP; STRING: unescaped value */
    int64_t i;
    double f;
    size_t offset; /* in the source */
    int line, col; /* filled in by the parser */
} jinja_token;

typedef struct jinja_tokens {
    jinja_token *items;
    size_t len, cap;
} jinja_tokens;

/* Normalizes newlines like Jinja (\r\n and \r -> \n, one trailing newline
 * dropped) into *source. */
bool jinja_normalize_source(jinja_ctx *ctx, const char *text, jinja_str *source);
bool jinja_lex(jinja_ctx *ctx, jinja_str source, jinja_tokens *out);

/* ---- Parser: AST ---- */

typedef enum jinja_node_kind {
    /* expressions */
    JN_CONST,
    JN_NAME,
    JN_LIST,
    JN_TUPLE,
    JN_DICT,
    JN_ATTR,
    JN_ITEM,
    JN_SLICE,
    JN_CALL,
    JN_FILTER,
    JN_TEST,
    JN_NOT,
    JN_NEG,
    JN_POS,
    JN_BINARY,
    JN_COMPARE,
    JN_AND,
    JN_OR,
    JN_COND,
    JN_CONCAT,
    /* statements */
    JN_TEXT,
    JN_PRINT,
    JN_IF,
    JN_FOR,
    JN_SET,
    JN_SET_BLOCK,
    JN_MACRO,
    JN_FILTER_BLOCK,
    JN_WITH,
    JN_BREAK,
    JN_CONTINUE,
    JN_SCOPELESS_BODY, /* {% generation %}: its body, in place */
} jinja_node_kind;

typedef enum jinja_op {
    JINJA_OP_ADD,
    JINJA_OP_SUB,
    JINJA_OP_MUL,
    JINJA_OP_DIV,
    JINJA_OP_FLOORDIV,
    JINJA_OP_MOD,
    JINJA_OP_POW,
    JINJA_OP_EQ,
    JINJA_OP_NE,
    JINJA_OP_LT,
    JINJA_OP_LE,
    JINJA_OP_GT,
    JINJA_OP_GE,
    JINJA_OP_IN,
    JINJA_OP_NOT_IN,
} jinja_op;

typedef struct jinja_nodes {
    struct jinja_node **items;
    size_t len, cap;
} jinja_nodes;

typedef struct jinja_args jinja_args;

typedef bool (*jinja_filter_fn)(jinja_ctx *ctx, jinja_value v, const jinja_args *args,
                                jinja_value *out);
typedef bool (*jinja_test_fn)(jinja_ctx *ctx, jinja_value v, const jinja_args *args, bool *out);

typedef struct jinja_node {
    jinja_node_kind kind;
    jinja_op op;
    int line, col;
    jinja_str name;    /* NAME, ATTR, FILTER, TEST, MACRO; TEXT content */
    jinja_value value; /* CONST */
    struct jinja_node *a, *b, *c;
    /* LIST/TUPLE items, DICT key/value pairs, CALL/FILTER/TEST arguments,
     * COMPARE operands, MACRO defaults (NULL = none), WITH values */
    jinja_nodes args;
    jinja_str
        *arg_names; /* keyword names of args (ptr NULL = positional); MACRO params; WITH names */
    jinja_op *ops;  /* COMPARE */
    jinja_filter_fn filter;
    jinja_test_fn test;
    jinja_nodes body, else_body;
} jinja_node;

/* Parses a whole template into its top-level statements. */
bool jinja_parse(jinja_ctx *ctx, const jinja_tokens *tokens, jinja_nodes *out);

/* ---- Evaluator ---- */

struct jinja_args {
    const jinja_value *pos;
    size_t n_pos;
    const jinja_str *kw_names;
    const jinja_value *kw_vals;
    size_t n_kw;
};

bool jinja_exec_template(jinja_ctx *ctx, const jinja_nodes *body, jinja_scope *root);
bool jinja_call(jinja_ctx *ctx, jinja_value callee, const jinja_args *args, jinja_value *out);
/* Jinja's obj.name and obj[key]: missing gives an undefined value. */
bool jinja_getattr(jinja_ctx *ctx, jinja_value obj, jinja_str name, jinja_value *out);
bool jinja_getitem(jinja_ctx *ctx, jinja_value obj, jinja_value key, jinja_value *out);
bool jinja_binary(jinja_ctx *ctx, jinja_op op, jinja_value a, jinja_value b, jinja_value *out);

/* Binds args to the parameter names; out[] holds the defaults on entry
 * (JINJA_MISSING for required parameters). */
bool jinja_bind(jinja_ctx *ctx, const char *what, const char *const *params, size_t n_params,
                const jinja_args *args, jinja_value *out);

/* ---- jinja_filters.c ---- */

/* markupsafe.escape: & < > " ' as HTML entities; the result is markup. */
bool jinja_html_escape(jinja_ctx *ctx, jinja_str s, jinja_value *out);

jinja_filter_fn jinja_find_filter(jinja_str name);
jinja_test_fn jinja_find_test(jinja_str name);
/* Runs a filter or test looked up by a name only known at run time
 * (map('upper'), select('odd')). */
bool jinja_apply_filter_named(jinja_ctx *ctx, jinja_str name, jinja_value v, const jinja_args *args,
                              jinja_value *out);
bool jinja_apply_test_named(jinja_ctx *ctx, jinja_str name, jinja_value v, const jinja_args *args,
                            bool *out);

/* ---- jinja_methods.c ---- */

/* Whether `name` is a method of v's Python type (str, dict, list). */
bool jinja_has_method(jinja_value v, jinja_str name, bool *unsafe);
bool jinja_call_method(jinja_ctx *ctx, jinja_value self, jinja_str name, const jinja_args *args,
                       jinja_value *out);
/* range, namespace, dict, raise_exception, strftime_now, or false. */
bool jinja_lookup_global(jinja_ctx *ctx, jinja_str name, jinja_value *out);
bool jinja_call_global(jinja_ctx *ctx, jinja_str name, const jinja_args *args, jinja_value *out);
bool jinja_str_format(jinja_ctx *ctx, jinja_str fmt, const jinja_args *args, jinja_value *out);
bool jinja_percent_format(jinja_ctx *ctx, jinja_str fmt, jinja_value args, jinja_value *out);

#endif
