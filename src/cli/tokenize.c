/* `ogi tokenize`, `ogi detokenize` and `ogi chat-template`: the tokenizer of
 * a model folder (tokenizer.json + tokenizer_config.json) from the shell. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli/cli.h"
#include "ogi.h"

typedef struct tok_cli_args {
    const char *model_dir;
    bool flag; /* --special, --skip-special or --add-generation-prompt */
    bool jsonl;
    const char *extra; /* chat-template --extra JSON */
} tok_cli_args;

static void usage(FILE *f, const char *cmd)
{
    if (strcmp(cmd, "tokenize") == 0)
        fprintf(f, "usage: ogi tokenize MODEL_DIR [--special] [--jsonl]\n\n"
                   "Encodes text read from standard input with MODEL_DIR/tokenizer.json.\n"
                   "  --jsonl    each input line is a JSON string; prints one JSON array of ids\n"
                   "             per line (without it, all of stdin is one text)\n"
                   "  --special  add the special tokens (add_special_tokens=True)\n");
    else if (strcmp(cmd, "detokenize") == 0)
        fprintf(f, "usage: ogi detokenize MODEL_DIR [--skip-special] [--jsonl]\n\n"
                   "Decodes token ids read from standard input.\n"
                   "  --jsonl         each input line is a JSON array of ids; prints one JSON\n"
                   "                  string per line (without it, stdin holds ids separated by\n"
                   "                  spaces and the text is printed as is)\n"
                   "  --skip-special  leave special tokens out\n");
    else
        fprintf(f, "usage: ogi chat-template MODEL_DIR [--add-generation-prompt] [--extra JSON]"
                   " < messages.json\n\n"
                   "Renders the chat template of MODEL_DIR/tokenizer_config.json for the JSON\n"
                   "array of {\"role\", \"content\"} messages on standard input and prints the\n"
                   "prompt exactly (no newline added).\n"
                   "  --add-generation-prompt  end with the assistant's turn header\n"
                   "  --extra JSON             a JSON object of extra template variables\n"
                   "                           (tools, custom kwargs)\n");
}

static int parse_args(int argc, char **argv, tok_cli_args *a)
{
    const char *cmd = argv[0];
    const char *flag = strcmp(cmd, "tokenize") == 0     ? "--special"
                       : strcmp(cmd, "detokenize") == 0 ? "--skip-special"
                                                        : "--add-generation-prompt";
    memset(a, 0, sizeof(*a));
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout, cmd);
            return 0;
        }
        if (strcmp(argv[i], flag) == 0) {
            a->flag = true;
        } else if (strcmp(argv[i], "--jsonl") == 0 && strcmp(cmd, "chat-template") != 0) {
            a->jsonl = true;
        } else if (strcmp(argv[i], "--extra") == 0 && strcmp(cmd, "chat-template") == 0 &&
                   i + 1 < argc) {
            a->extra = argv[++i];
        } else if (argv[i][0] != '-' && !a->model_dir) {
            a->model_dir = argv[i];
        } else {
            fprintf(stderr, "ogi %s: unexpected argument '%s'\n\n", cmd, argv[i]);
            usage(stderr, cmd);
            return 2;
        }
    }
    if (!a->model_dir) {
        usage(stderr, cmd);
        return 2;
    }
    return -1;
}

static char *read_all(FILE *f, size_t *len)
{
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n - 1, f);
        if (n < cap - 1)
            break;
        char *p = realloc(buf, cap * 2);
        if (!p) {
            free(buf);
            return NULL;
        }
        buf = p;
        cap *= 2;
    }
    if (buf)
        buf[n] = '\0';
    *len = n;
    return buf;
}

static void print_ids(const int32_t *ids, size_t n)
{
    putchar('[');
    for (size_t i = 0; i < n; i++)
        printf(i ? ", %d" : "%d", ids[i]);
    puts("]");
}

static int fail(const char *cmd, const char *what, size_t line)
{
    if (line)
        fprintf(stderr, "ogi %s: line %zu: %s\n", cmd, line, what);
    else
        fprintf(stderr, "ogi %s: %s\n", cmd, what);
    return 1;
}

static int encode_one(const ogi_tokenizer *tok, const char *text, size_t len, bool special)
{
    int32_t *ids;
    size_t n;
    if (ogi_tokenizer_encode(tok, text, len, special, &ids, &n) != OGI_OK)
        return 1;
    print_ids(ids, n);
    ogi_free(ids);
    return 0;
}

static int run_tokenize(const ogi_tokenizer *tok, const tok_cli_args *a)
{
    char *line = NULL;
    size_t cap = 0, lineno = 0;
    ssize_t got;
    int rc = 0;
    if (!a->jsonl) {
        size_t len;
        char *all = read_all(stdin, &len);
        rc = !all                                 ? fail("tokenize", "out of memory", 0)
             : encode_one(tok, all, len, a->flag) ? fail("tokenize", ogi_last_error(), 0)
                                                  : 0;
        free(all);
        return rc;
    }
    while (rc == 0 && (got = getline(&line, &cap, stdin)) >= 0) {
        lineno++;
        json_error_t err;
        json_t *s = json_loadb(line, (size_t)got, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
        if (!json_is_string(s))
            rc = fail("tokenize", s ? "expected a JSON string" : err.text, lineno);
        else if (encode_one(tok, json_string_value(s), json_string_length(s), a->flag))
            rc = fail("tokenize", ogi_last_error(), lineno);
        json_decref(s);
    }
    free(line);
    return rc;
}

static int decode_print(const ogi_tokenizer *tok, const int32_t *ids, size_t n,
                        const tok_cli_args *a)
{
    char *text;
    size_t len;
    if (ogi_tokenizer_decode(tok, ids, n, a->flag, &text, &len) != OGI_OK)
        return fail("detokenize", ogi_last_error(), 0);
    if (a->jsonl) {
        json_t *s = json_stringn(text, len);
        char *out = s ? json_dumps(s, JSON_ENCODE_ANY) : NULL;
        if (out)
            puts(out);
        free(out);
        json_decref(s);
    } else {
        fwrite(text, 1, len, stdout);
    }
    ogi_free(text);
    return 0;
}

static int32_t *ids_from_json(const json_t *arr, size_t *n)
{
    *n = json_array_size(arr);
    int32_t *ids = malloc((*n + 1) * sizeof(int32_t));
    for (size_t i = 0; ids && i < *n; i++) {
        json_t *v = json_array_get(arr, i);
        if (!json_is_integer(v) || json_integer_value(v) < INT32_MIN ||
            json_integer_value(v) > INT32_MAX) {
            free(ids);
            return NULL;
        }
        ids[i] = (int32_t)json_integer_value(v);
    }
    return ids;
}

static int run_detokenize(const ogi_tokenizer *tok, const tok_cli_args *a)
{
    if (!a->jsonl) {
        size_t len, n = 0, cap = 64;
        char *all = read_all(stdin, &len), *p = all, *end;
        int32_t *ids = malloc(cap * sizeof(int32_t));
        int rc = 0;
        while (all && ids && rc == 0) {
            long v = strtol(p, &end, 10);
            if (end == p)
                break;
            p = end;
            if (n == cap) {
                int32_t *grown = realloc(ids, (cap *= 2) * sizeof(int32_t));
                if (!grown)
                    break;
                ids = grown;
            }
            ids[n++] = (int32_t)v;
        }
        rc = all && ids ? decode_print(tok, ids, n, a) : fail("detokenize", "out of memory", 0);
        free(ids);
        free(all);
        return rc;
    }
    char *line = NULL;
    size_t cap = 0, lineno = 0;
    ssize_t got;
    int rc = 0;
    while (rc == 0 && (got = getline(&line, &cap, stdin)) >= 0) {
        lineno++;
        json_error_t err;
        json_t *arr = json_loadb(line, (size_t)got, JSON_DECODE_ANY, &err);
        size_t n;
        int32_t *ids = json_is_array(arr) ? ids_from_json(arr, &n) : NULL;
        if (!ids)
            rc = fail("detokenize", arr ? "expected a JSON array of ids" : err.text, lineno);
        else
            rc = decode_print(tok, ids, n, a);
        free(ids);
        json_decref(arr);
    }
    free(line);
    return rc;
}

static int run_chat_template(const ogi_tokenizer *tok, const tok_cli_args *a)
{
    size_t len;
    char *messages = read_all(stdin, &len);
    if (!messages)
        return fail("chat-template", "out of memory", 0);
    char *text = NULL;
    ogi_status st = ogi_tokenizer_apply_chat_template(tok, messages, a->flag, a->extra, &text);
    free(messages);
    if (st != OGI_OK)
        return fail("chat-template", ogi_last_error(), 0);
    fputs(text, stdout);
    ogi_free(text);
    return 0;
}

int cli_tokenizer(int argc, char **argv)
{
    tok_cli_args a;
    int rc = parse_args(argc, argv, &a);
    if (rc >= 0)
        return rc;
    ogi_tokenizer *tok;
    if (ogi_tokenizer_open(a.model_dir, &tok) != OGI_OK)
        return fail(argv[0], ogi_last_error(), 0);
    if (strcmp(argv[0], "tokenize") == 0)
        rc = run_tokenize(tok, &a);
    else if (strcmp(argv[0], "detokenize") == 0)
        rc = run_detokenize(tok, &a);
    else
        rc = run_chat_template(tok, &a);
    ogi_tokenizer_free(tok);
    if (fflush(stdout) != 0)
        rc = fail(argv[0], "cannot write the output", 0);
    return rc;
}
