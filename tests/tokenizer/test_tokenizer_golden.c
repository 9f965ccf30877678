/* Reproduces every entry of a tokenizer folder's golden.json (made with
 * Hugging Face tokenizers / transformers): encodings with and without
 * special tokens, character offsets, decodes, AutoTokenizer encodings, chat
 * templates and their ids, and streaming decode one id at a time.
 *
 * usage: test_tokenizer_golden NAME...   (folders under shared/tokenizers) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "test_util.h"
#include "tokenizer/tok.h"

static int checks;

/* Mismatches per field, printed as a table at the end of each folder. */
typedef struct field_stat {
    const char *name;
    int total, bad;
} field_stat;

enum {
    F_ENC,
    F_ENC_SPECIAL,
    F_OFFSETS,
    F_DEC_SPECIAL,
    F_DEC_SKIP,
    F_HF,
    F_CHAT_RENDERED,
    F_CHAT_IDS,
    F_STREAM_SPECIAL,
    F_STREAM_SKIP,
    F_COUNT
};

static field_stat stats[F_COUNT];

static void stats_reset(void)
{
    static const char *names[F_COUNT] = {
        "encode_no_special",   "encode_with_special", "offsets_no_special", "decode_with_special",
        "decode_skip_special", "hf_encode",           "chat_rendered",      "chat_ids",
        "stream_with_special", "stream_skip_special"};
    for (int i = 0; i < F_COUNT; i++)
        stats[i] = (field_stat){names[i], 0, 0};
}

static void record(const char *tok_name, int field, int index, bool ok, const char *detail)
{
    checks++;
    stats[field].total++;
    if (ok)
        return;
    test_failures++;
    if (stats[field].bad++ < 3)
        fprintf(stderr, "%s: %s[%d] differs%s%s\n", tok_name, stats[field].name, index,
                detail ? ": " : "", detail ? detail : "");
}

static bool ids_equal(const json_t *want, const int32_t *ids, size_t n)
{
    if (!json_is_array(want) || json_array_size(want) != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (json_integer_value(json_array_get(want, i)) != ids[i])
            return false;
    return true;
}

static void describe_ids(char *buf, size_t size, const json_t *want, const int32_t *ids, size_t n)
{
    size_t used = (size_t)snprintf(buf, size, "got [");
    for (size_t i = 0; i < n && i < 24 && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, "%s%d", i ? "," : "", ids[i]);
    char *w = json_dumps(want, JSON_COMPACT);
    if (used < size)
        snprintf(buf + used, size - used, "] want %.300s", w ? w : "?");
    free(w);
}

static int32_t *ids_of(const json_t *arr, size_t *n)
{
    *n = json_array_size(arr);
    int32_t *ids = malloc((*n + 1) * sizeof(int32_t));
    for (size_t i = 0; ids && i < *n; i++)
        ids[i] = (int32_t)json_integer_value(json_array_get(arr, i));
    return ids;
}

static void check_encode(const char *name, const ogi_tokenizer *tok, const json_t *g, int field,
                         const char *key, int add_special)
{
    json_t *texts = json_object_get(g, "texts"), *want = json_object_get(g, key);
    for (size_t i = 0; i < json_array_size(want); i++) {
        json_t *t = json_array_get(texts, i);
        int32_t *ids = NULL;
        size_t n = 0;
        ogi_status st = field == F_HF
                            ? ogi_tokenizer_encode_hf(tok, json_string_value(t),
                                                      json_string_length(t), &ids, &n)
                            : ogi_tokenizer_encode(tok, json_string_value(t), json_string_length(t),
                                                   add_special, &ids, &n);
        char detail[1024] = "";
        bool ok = st == OGI_OK && ids_equal(json_array_get(want, i), ids, n);
        if (!ok)
            describe_ids(detail, sizeof(detail), json_array_get(want, i), ids, n);
        record(name, field, (int)i, ok, detail);
        ogi_free(ids);
    }
}

static void check_offsets(const char *name, const ogi_tokenizer *tok, const json_t *g)
{
    json_t *texts = json_object_get(g, "texts"), *want = json_object_get(g, "offsets_no_special");
    for (size_t i = 0; i < json_array_size(want); i++) {
        json_t *t = json_array_get(texts, i), *w = json_array_get(want, i);
        int32_t *ids = NULL;
        size_t *starts = NULL, *ends = NULL, n = 0;
        ogi_status st = tok_encode_offsets(tok, json_string_value(t), json_string_length(t), 0,
                                           &ids, &starts, &ends, &n);
        bool ok = st == OGI_OK && json_array_size(w) == n;
        size_t bad = 0;
        for (size_t k = 0; ok && k < n; k++) {
            json_t *o = json_array_get(w, k);
            if ((size_t)json_integer_value(json_array_get(o, 0)) != starts[k] ||
                (size_t)json_integer_value(json_array_get(o, 1)) != ends[k]) {
                ok = false;
                bad = k;
            }
        }
        char detail[128] = "";
        if (!ok && n && bad < n)
            snprintf(detail, sizeof(detail), "token %zu: got (%zu, %zu)", bad, starts[bad],
                     ends[bad]);
        record(name, F_OFFSETS, (int)i, ok, detail);
        free(ids);
        free(starts);
        free(ends);
    }
}

static void check_decode(const char *name, const ogi_tokenizer *tok, const json_t *g, int field,
                         const char *key, int skip)
{
    json_t *enc = json_object_get(g, "encode_with_special"), *want = json_object_get(g, key);
    for (size_t i = 0; i < json_array_size(want); i++) {
        size_t n;
        int32_t *ids = ids_of(json_array_get(enc, i), &n);
        char *text = NULL;
        size_t len = 0;
        ogi_status st = ogi_tokenizer_decode(tok, ids, n, skip, &text, &len);
        json_t *w = json_array_get(want, i);
        bool ok = st == OGI_OK && len == json_string_length(w) &&
                  memcmp(text, json_string_value(w), len) == 0;
        char detail[512] = "";
        if (!ok)
            snprintf(detail, sizeof(detail), "got \"%.200s\" want \"%.200s\"", text ? text : "",
                     json_string_value(w));
        record(name, field, (int)i, ok, detail);
        ogi_free(text);
        free(ids);
    }
}

static void check_stream(const char *name, const ogi_tokenizer *tok, const json_t *g, int field,
                         const char *key, int skip)
{
    json_t *enc = json_object_get(g, "encode_with_special"), *want = json_object_get(g, key);
    for (size_t i = 0; i < json_array_size(want); i++) {
        size_t n;
        int32_t *ids = ids_of(json_array_get(enc, i), &n);
        ogi_decode_stream *s = NULL;
        ogi_status st = ogi_decode_stream_create(tok, skip, &s);
        tok_buf all = {0};
        for (size_t k = 0; st == OGI_OK && k < n; k++) {
            const char *piece;
            st = ogi_decode_stream_push(s, ids[k], &piece);
            if (st == OGI_OK) {
                size_t len = tok_decode_stream_piece_len(s);
                TEST_CHECK(tok_utf8_is_valid(piece, len), "%s: invalid UTF-8 piece", name);
                tok_buf_append(&all, piece, len);
            }
        }
        json_t *w = json_array_get(want, i);
        bool ok = st == OGI_OK && all.len == json_string_length(w) &&
                  (all.len == 0 || memcmp(all.data, json_string_value(w), all.len) == 0);
        char detail[512] = "";
        if (!ok)
            snprintf(detail, sizeof(detail), "got \"%.200s\" want \"%.200s\"",
                     all.data ? all.data : "", json_string_value(w));
        record(name, field, (int)i, ok, detail);
        tok_buf_free(&all);
        ogi_decode_stream_free(s);
        free(ids);
    }
}

static void check_chat(const char *name, const ogi_tokenizer *tok, const json_t *g)
{
    json_t *chat = json_object_get(g, "chat");
    for (size_t i = 0; i < json_array_size(chat); i++) {
        json_t *c = json_array_get(chat, i);
        char *messages = json_dumps(json_object_get(c, "messages"), JSON_COMPACT);
        char *text = NULL;
        ogi_status st = ogi_tokenizer_apply_chat_template(
            tok, messages, json_is_true(json_object_get(c, "add_generation_prompt")), NULL, &text);
        json_t *rendered = json_object_get(c, "rendered");
        bool ok = st == OGI_OK && strlen(text) == json_string_length(rendered) &&
                  memcmp(text, json_string_value(rendered), strlen(text)) == 0;
        char detail[600] = "";
        if (!ok)
            snprintf(detail, sizeof(detail), "%s: got \"%.200s\"",
                     st == OGI_OK ? "text" : ogi_last_error(), text ? text : "");
        record(name, F_CHAT_RENDERED, (int)i, ok, detail);
        /* The golden ids encode the rendered text without adding special
         * tokens: the template wrote them already. */
        int32_t *ids = NULL;
        size_t n = 0;
        st = ogi_tokenizer_encode(tok, json_string_value(rendered), json_string_length(rendered), 0,
                                  &ids, &n);
        ok = st == OGI_OK && ids_equal(json_object_get(c, "ids"), ids, n);
        record(name, F_CHAT_IDS, (int)i, ok, NULL);
        ogi_free(ids);
        ogi_free(text);
        free(messages);
    }
}

static void run_folder(const char *name)
{
    char dir[2048], path[2100];
    snprintf(dir, sizeof(dir), "%s/tokenizers/%s", test_shared_dir(), name);
    snprintf(path, sizeof(path), "%s/golden.json", dir);
    json_error_t err;
    json_t *g = json_load_file(path, JSON_ALLOW_NUL, &err);
    ogi_tokenizer *tok = NULL;
    ogi_status st = ogi_tokenizer_open(dir, &tok);
    checks++;
    TEST_CHECK(g != NULL, "%s: %s", path, err.text);
    TEST_CHECK(st == OGI_OK, "%s: %s", dir, ogi_last_error());
    if (g && tok) {
        stats_reset();
        check_encode(name, tok, g, F_ENC, "encode_no_special", 0);
        check_encode(name, tok, g, F_ENC_SPECIAL, "encode_with_special", 1);
        check_offsets(name, tok, g);
        check_decode(name, tok, g, F_DEC_SPECIAL, "decode_with_special", 0);
        check_decode(name, tok, g, F_DEC_SKIP, "decode_skip_special", 1);
        check_encode(name, tok, g, F_HF, "hf_encode", 1);
        check_chat(name, tok, g);
        check_stream(name, tok, g, F_STREAM_SPECIAL, "decode_with_special", 0);
        check_stream(name, tok, g, F_STREAM_SKIP, "decode_skip_special", 1);
        for (int i = 0; i < F_COUNT; i++)
            printf("%-16s %-22s %4d mismatches of %d\n", name, stats[i].name, stats[i].bad,
                   stats[i].total);
    }
    ogi_tokenizer_free(tok);
    json_decref(g);
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        run_folder(argv[i]);
    if (argc < 2)
        fprintf(stderr, "usage: %s NAME...\n", argv[0]);
    return test_finish("test_tokenizer_golden", checks);
}
