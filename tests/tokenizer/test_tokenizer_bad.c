/* Hostile and edge-case inputs for the tokenizer: malformed and truncated
 * JSON, unknown component types (the error must name the type), invalid
 * UTF-8 (replaced, never a crash), empty input, out-of-range ids, and a
 * small hand-written tokenizer for the components the goldens do not use. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test_util.h"
#include "tokenizer/tok.h"

static int checks;
static char dir[256];

static ogi_status open_json(const char *json, const char *config, ogi_tokenizer **tok)
{
    char tj[300], cf[300];
    snprintf(tj, sizeof(tj), "%s/tokenizer.json", dir);
    snprintf(cf, sizeof(cf), "%s/tokenizer_config.json", dir);
    test_write_file(tj, json, strlen(json));
    if (config)
        test_write_file(cf, config, strlen(config));
    *tok = NULL;
    return ogi_tokenizer_open_files(tj, config ? cf : NULL, tok);
}

/* Opening must fail with `status` and a message containing `needle`. */
static void expect_error(const char *json, ogi_status status, const char *needle)
{
    ogi_tokenizer *tok;
    ogi_status st = open_json(json, NULL, &tok);
    checks++;
    TEST_CHECK(st == status && tok == NULL, "got %s (%s) for %.80s", ogi_status_name(st),
               ogi_last_error(), json);
    checks++;
    TEST_CHECK(strstr(ogi_last_error(), needle) != NULL, "message '%s' lacks '%s'",
               ogi_last_error(), needle);
    ogi_tokenizer_free(tok);
}

#define TINY_VOCAB                                                                                 \
    "\"vocab\": {\"a\": 0, \"b\": 1, \"c\": 2, \"ab\": 3, \"abc\": 4, \"<unk>\": 5, \"▁\": 6, "  \
    "\"▁a\": 7, \"<0x41>\": 8}"
#define TINY_BPE                                                                                   \
    "{\"type\": \"BPE\", " TINY_VOCAB ", \"merges\": [\"a b\", [\"ab\", \"c\"], \"▁ a\"], "      \
    "\"unk_token\": \"<unk>\", \"fuse_unk\": true, \"byte_fallback\": true}"

static char *tiny(const char *normalizer, const char *pre, const char *post, const char *decoder)
{
    static char buf[4096];
    snprintf(buf, sizeof(buf),
             "{\"added_tokens\": [{\"id\": 5, \"content\": \"<unk>\", \"special\": true, "
             "\"normalized\": false}], \"normalizer\": %s, \"pre_tokenizer\": %s, "
             "\"post_processor\": %s, \"decoder\": %s, \"model\": " TINY_BPE "}",
             normalizer, pre, post, decoder);
    return buf;
}

static void test_malformed(void)
{
    expect_error("{\"model\": ", OGI_ERR_INVALID_MODEL, "tokenizer.json: line");
    expect_error("[1, 2]", OGI_ERR_INVALID_MODEL, "top level");
    expect_error("{}", OGI_ERR_INVALID_MODEL, "model");
    expect_error("{\"model\": {\"type\": \"Foo\"}}", OGI_ERR_UNSUPPORTED, "'Foo'");
    expect_error(tiny("{\"type\": \"Bar\"}", "null", "null", "null"), OGI_ERR_UNSUPPORTED,
                 "normalizer type 'Bar'");
    expect_error(
        tiny("{\"type\": \"Precompiled\", \"precompiled_charsmap\": \"\"}", "null", "null", "null"),
        OGI_ERR_UNSUPPORTED, "Precompiled");
    expect_error(tiny("null", "{\"type\": \"Baz\"}", "null", "null"), OGI_ERR_UNSUPPORTED,
                 "pre_tokenizer type 'Baz'");
    expect_error(tiny("null", "null", "{\"type\": \"Qux\"}", "null"), OGI_ERR_UNSUPPORTED,
                 "post_processor type 'Qux'");
    expect_error(tiny("null", "null", "null", "{\"type\": \"Zap\"}"), OGI_ERR_UNSUPPORTED,
                 "decoder type 'Zap'");
    expect_error(tiny("null",
                      "{\"type\": \"Split\", \"pattern\": {\"Regex\": \"(\"}, \"behavior\": "
                      "\"Isolated\"}",
                      "null", "null"),
                 OGI_ERR_INVALID_MODEL, "regex");
    expect_error(tiny("null",
                      "{\"type\": \"Split\", \"pattern\": {\"Regex\": \"a\"}, \"behavior\": "
                      "\"Sideways\"}",
                      "null", "null"),
                 OGI_ERR_INVALID_MODEL, "Sideways");
    expect_error("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [\"a z\"]}}",
                 OGI_ERR_INVALID_MODEL, "'z'");
    expect_error("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": -4}, \"merges\": []}}",
                 OGI_ERR_INVALID_MODEL, "'a'");
    expect_error("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [7]}}",
                 OGI_ERR_INVALID_MODEL, "merges[0]");
    expect_error("{\"model\": {\"type\": \"BPE\", \"vocab\": {}, \"merges\": [], \"dropout\": "
                 "0.5}}",
                 OGI_ERR_UNSUPPORTED, "dropout");
    expect_error("{\"model\": {\"type\": \"Unigram\", \"vocab\": [[\"a\"]]}}",
                 OGI_ERR_INVALID_MODEL, "vocab[0]");
    expect_error("{\"added_tokens\": [{\"content\": 3}], \"model\": " TINY_BPE "}",
                 OGI_ERR_INVALID_MODEL, "added_tokens[0]");
}

/* Every prefix of a real tokenizer.json is an error, never a crash. */
static void test_truncated(void)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/tokenizers/docstring-llama/tokenizer.json", test_shared_dir());
    size_t size;
    char *full = test_read_file(path, &size);
    checks++;
    TEST_CHECK(full != NULL, "cannot read %s", path);
    if (!full)
        return;
    for (size_t cut = 0; cut < size; cut += size / 97 + 1) {
        char saved = full[cut];
        full[cut] = '\0';
        ogi_tokenizer *tok;
        ogi_status st = open_json(full, NULL, &tok);
        checks++;
        TEST_CHECK(st != OGI_OK && tok == NULL && ogi_last_error()[0], "truncated at %zu: got %s",
                   cut, ogi_status_name(st));
        ogi_tokenizer_free(tok);
        full[cut] = saved;
    }
    free(full);
}

static void expect_ids(const ogi_tokenizer *tok, const char *text, size_t len, int special,
                       const int32_t *want, size_t n_want, const char *what)
{
    int32_t *ids = NULL;
    size_t n = 0;
    ogi_status st = ogi_tokenizer_encode(tok, text, len, special, &ids, &n);
    bool ok = st == OGI_OK && n == n_want && (n == 0 || memcmp(ids, want, n * 4) == 0);
    checks++;
    TEST_CHECK(ok, "%s: %s, %zu ids (first %d)", what, ogi_status_name(st), n, n ? ids[0] : -1);
    ogi_free(ids);
}

static void expect_decode(const ogi_tokenizer *tok, const int32_t *ids, size_t n, int skip,
                          const char *want, const char *what)
{
    char *text = NULL;
    size_t len = 0;
    ogi_status st = ogi_tokenizer_decode(tok, ids, n, skip, &text, &len);
    checks++;
    TEST_CHECK(st == OGI_OK && len == strlen(want) && strcmp(text, want) == 0,
               "%s: got '%s' want '%s'", what, text ? text : "(null)", want);
    ogi_free(text);
}

/* The small hand-written tokenizer: merges, unk fusing, byte fallback and
 * the components the goldens leave out. */
static void test_tiny(void)
{
    ogi_tokenizer *tok;
    ogi_status st = open_json(
        tiny("{\"type\": \"Sequence\", \"normalizers\": [{\"type\": \"Lowercase\"}, {\"type\": "
             "\"Strip\", \"strip_left\": true, \"strip_right\": true}]}",
             "{\"type\": \"WhitespaceSplit\"}",
             "{\"type\": \"TemplateProcessing\", \"single\": [{\"SpecialToken\": {\"id\": "
             "\"<unk>\", \"type_id\": 0}}, {\"Sequence\": {\"id\": \"A\", \"type_id\": 0}}], "
             "\"special_tokens\": {\"<unk>\": {\"id\": \"<unk>\", \"ids\": [5], \"tokens\": "
             "[\"<unk>\"]}}}",
             "{\"type\": \"Sequence\", \"decoders\": [{\"type\": \"ByteFallback\"}, {\"type\": "
             "\"Fuse\"}]}"),
        NULL, &tok);
    checks++;
    TEST_CHECK(st == OGI_OK, "tiny tokenizer: %s", ogi_last_error());
    if (st != OGI_OK)
        return;
    expect_ids(tok, "  ABC  ", 7, 0, (const int32_t[]){4}, 1, "merges ab, abc");
    expect_ids(tok, "abc", 3, 1, (const int32_t[]){5, 4}, 2, "template adds <unk>");
    expect_ids(tok, "xyzab", 5, 0, (const int32_t[]){5, 3}, 2, "unknowns fuse");
    expect_ids(tok, "", 0, 0, NULL, 0, "empty");
    expect_ids(tok, "", 0, 1, (const int32_t[]){5}, 1, "empty with special");
    expect_ids(tok, "   ", 3, 0, NULL, 0, "only spaces");
    /* Invalid UTF-8 becomes U+FFFD (unknown here), never a crash. */
    expect_ids(tok,
               "a\xff\xfe"
               "b",
               4, 0, (const int32_t[]){0, 5, 1}, 3, "invalid UTF-8");
    expect_ids(tok, "\xe2\x82", 2, 0, (const int32_t[]){5}, 1, "truncated sequence");
    expect_decode(tok, (const int32_t[]){0, 1, 8, 2}, 4, 0, "abAc", "byte fallback decode");
    expect_decode(tok, (const int32_t[]){0, 5, 1}, 3, 1, "ab", "skip special");
    expect_decode(tok, (const int32_t[]){0, -3, 1 << 30, 1}, 4, 0, "ab", "unknown ids dropped");
    checks++;
    TEST_CHECK(ogi_tokenizer_token_to_id(tok, "abc") == 4 &&
                   ogi_tokenizer_token_to_id(tok, "zzz") == -1 &&
                   ogi_tokenizer_id_to_token(tok, 99) == NULL &&
                   ogi_tokenizer_id_to_token(tok, -1) == NULL && ogi_tokenizer_is_special(tok, 5) &&
                   !ogi_tokenizer_is_special(tok, 4) && ogi_tokenizer_special_id(tok, "bos") == -1,
               "vocabulary queries");
    ogi_decode_stream *s;
    const char *piece;
    checks++;
    TEST_CHECK(ogi_decode_stream_create(tok, 0, &s) == OGI_OK &&
                   ogi_decode_stream_push(s, -7, &piece) == OGI_OK && piece[0] == '\0',
               "stream of a bad id");
    ogi_decode_stream_free(s);
    char *text = NULL;
    checks++;
    TEST_CHECK(ogi_tokenizer_apply_chat_template(tok, "[]", 1, NULL, &text) == OGI_ERR_NOT_FOUND,
               "no chat template");
    ogi_tokenizer_free(tok);
}

/* WordPiece with BERT's normalizer, pre-tokenizer, post-processor and
 * decoder. */
static void test_wordpiece(void)
{
    const char *json =
        "{\"normalizer\": {\"type\": \"BertNormalizer\", \"lowercase\": true}, "
        "\"pre_tokenizer\": {\"type\": \"BertPreTokenizer\"}, "
        "\"post_processor\": {\"type\": \"BertProcessing\", \"sep\": [\"[SEP]\", 3], \"cls\": "
        "[\"[CLS]\", 2]}, \"decoder\": {\"type\": \"WordPiece\", \"prefix\": \"##\"}, "
        "\"added_tokens\": [{\"id\": 2, \"content\": \"[CLS]\", \"special\": true}, {\"id\": 3, "
        "\"content\": \"[SEP]\", \"special\": true}], "
        "\"model\": {\"type\": \"WordPiece\", \"unk_token\": \"[UNK]\", \"vocab\": {\"[UNK]\": 0, "
        "\"un\": 1, \"[CLS]\": 2, \"[SEP]\": 3, \"##aff\": 4, \"##able\": 5, \"!\": 6, \"cafe\": "
        "7}}}";
    ogi_tokenizer *tok;
    ogi_status st = open_json(json, NULL, &tok);
    checks++;
    TEST_CHECK(st == OGI_OK, "wordpiece tokenizer: %s", ogi_last_error());
    if (st != OGI_OK)
        return;
    expect_ids(tok, "UNaffable! Café xyz", 20, 1, (const int32_t[]){2, 1, 4, 5, 6, 7, 0, 3}, 8,
               "wordpiece + bert");
    expect_decode(tok, (const int32_t[]){2, 1, 4, 5, 6, 7, 3}, 7, 1, "unaffable! cafe",
                  "wordpiece decode");
    ogi_tokenizer_free(tok);
}

/* Unigram (Viterbi) with a Metaspace pre-tokenizer and decoder. */
static void test_unigram(void)
{
    const char *json =
        "{\"pre_tokenizer\": {\"type\": \"Metaspace\", \"replacement\": \"▁\", "
        "\"prepend_scheme\": \"always\", \"split\": true}, "
        "\"decoder\": {\"type\": \"Metaspace\", \"replacement\": \"▁\", \"prepend_scheme\": "
        "\"always\"}, "
        "\"model\": {\"type\": \"Unigram\", \"unk_id\": 0, \"vocab\": [[\"<unk>\", 0.0], "
        "[\"▁\", -2.0], [\"▁he\", -3.0], [\"llo\", -3.0], [\"▁hello\", -5.0], [\"h\", -4.0], "
        "[\"e\", -4.0], [\"l\", -4.0], [\"o\", -4.0], [\"▁w\", -4.0]]}}";
    ogi_tokenizer *tok;
    ogi_status st = open_json(json, NULL, &tok);
    checks++;
    TEST_CHECK(st == OGI_OK, "unigram tokenizer: %s", ogi_last_error());
    if (st != OGI_OK)
        return;
    expect_ids(tok, "hello wxyz", 10, 0, (const int32_t[]){4, 9, 0}, 3, "viterbi + fused unk");
    expect_decode(tok, (const int32_t[]){2, 3, 9}, 3, 0, "hello w", "metaspace decode");
    ogi_tokenizer_free(tok);
}

static void test_config(void)
{
    ogi_tokenizer *tok;
    ogi_status st = open_json(tiny("null", "null", "null", "null"), "{\"bos_token\": ", &tok);
    checks++;
    TEST_CHECK(st == OGI_ERR_INVALID_MODEL && strstr(ogi_last_error(), "tokenizer_config.json"),
               "malformed config: %s", ogi_last_error());
    st = open_json(tiny("null", "null", "null", "null"),
                   "{\"bos_token\": {\"content\": \"a\"}, \"eos_token\": \"b\", "
                   "\"add_bos_token\": true, \"model_max_length\": 1e30, "
                   "\"chat_template\": [{\"name\": \"default\", \"template\": \"x\"}]}",
                   &tok);
    checks++;
    TEST_CHECK(st == OGI_OK && ogi_tokenizer_special_id(tok, "bos") == 0 &&
                   ogi_tokenizer_special_id(tok, "eos") == 1,
               "config special tokens: %s", ogi_last_error());
    if (st == OGI_OK) {
        int32_t *ids = NULL;
        size_t n = 0;
        st = ogi_tokenizer_encode_hf(tok, "c", 1, &ids, &n);
        checks++;
        TEST_CHECK(st == OGI_OK && n == 2 && ids[0] == 0 && ids[1] == 2, "encode_hf adds BOS");
        ogi_free(ids);
        char *text = NULL;
        st = ogi_tokenizer_apply_chat_template(tok, "{not json", 0, NULL, &text);
        checks++;
        TEST_CHECK(st == OGI_ERR_INVALID_ARGUMENT && text == NULL, "bad messages JSON: %s",
                   ogi_status_name(st));
        st = ogi_tokenizer_apply_chat_template(tok, "{}", 0, NULL, &text);
        checks++;
        TEST_CHECK(st == OGI_ERR_INVALID_ARGUMENT, "messages must be an array");
    }
    ogi_tokenizer_free(tok);
    char cf[300];
    snprintf(cf, sizeof(cf), "%s/tokenizer_config.json", dir);
    unlink(cf);
}

/* Normalizers the goldens do not cover, on known inputs. */
static void expect_normalized(const char *spec, const char *in, const char *want)
{
    json_t *j = json_loads(spec, 0, NULL);
    tok_normalizer *n = NULL;
    tok_nstr ns;
    ogi_status st = tok_normalizer_parse(j, &n);
    bool ok = st == OGI_OK && tok_nstr_init(&ns, in, strlen(in), 0);
    if (ok)
        st = tok_normalizer_apply(n, &ns);
    checks++;
    TEST_CHECK(ok && st == OGI_OK && ns.len == strlen(want) && memcmp(ns.s, want, ns.len) == 0,
               "%s on '%s': got '%s' want '%s'", spec, in, ok ? ns.s : ogi_last_error(), want);
    if (ok)
        tok_nstr_free(&ns);
    tok_normalizer_free(n);
    json_decref(j);
}

static void test_normalizers(void)
{
    expect_normalized("{\"type\": \"NFKC\"}", "\xef\xac\x81 \xc2\xb2", "fi 2");
    expect_normalized("{\"type\": \"NFD\"}", "\xc3\xa9", "e\xcc\x81");
    expect_normalized("{\"type\": \"NFC\"}", "e\xcc\x81 \xe1\x84\x80\xe1\x85\xa1",
                      "\xc3\xa9 \xea\xb0\x80");
    expect_normalized("{\"type\": \"NFKD\"}", "\xef\xbc\xa6", "F");
    expect_normalized("{\"type\": \"Lowercase\"}",
                      "\xc3\x9c"
                      "BER \xc4\xb0",
                      "\xc3\xbc"
                      "ber i\xcc\x87");
    expect_normalized("{\"type\": \"Strip\", \"strip_left\": false, \"strip_right\": true}",
                      "  a b  ", "  a b");
    expect_normalized("{\"type\": \"StripAccents\"}", "e\xcc\x81", "e");
    expect_normalized("{\"type\": \"Replace\", \"pattern\": {\"Regex\": \"\\\\s+\"}, "
                      "\"content\": \"_\"}",
                      "a  b\tc", "a_b_c");
    expect_normalized("{\"type\": \"Sequence\", \"normalizers\": [{\"type\": \"Prepend\", "
                      "\"prepend\": \">\"}, {\"type\": \"Append\", \"append\": \"<\"}]}",
                      "x", ">x<");
    expect_normalized("{\"type\": \"Prepend\", \"prepend\": \">\"}", "", "");
    expect_normalized("{\"type\": \"BertNormalizer\", \"lowercase\": false}", "a\x01\t\xe4\xb8\xad",
                      "a  \xe4\xb8\xad ");
}

/* Split behaviors on the reference's documentation example. */
static void expect_split(const char *behavior, bool invert, const char *want)
{
    char spec[256];
    snprintf(spec, sizeof(spec),
             "{\"type\": \"Split\", \"pattern\": {\"String\": \"-\"}, \"behavior\": \"%s\", "
             "\"invert\": %s}",
             behavior, invert ? "true" : "false");
    json_t *j = json_loads(spec, 0, NULL);
    tok_pretokenizer *p = NULL;
    tok_pieces pieces = {0};
    tok_nstr ns;
    const char *text = "the-final--countdown";
    ogi_status st = tok_pretokenizer_parse(j, &p);
    if (st == OGI_OK && tok_nstr_init(&ns, text, strlen(text), 0) &&
        tok_pieces_push(&pieces, &ns, -1))
        st = tok_pretokenizer_apply(p, &pieces);
    char got[256] = "";
    for (size_t i = 0; st == OGI_OK && i < pieces.n; i++)
        snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%s", i ? "|" : "",
                 pieces.v[i].ns.s);
    checks++;
    TEST_CHECK(st == OGI_OK && strcmp(got, want) == 0, "%s%s: got '%s' want '%s'", behavior,
               invert ? " inverted" : "", got, want);
    tok_pieces_free(&pieces);
    tok_pretokenizer_free(p);
    json_decref(j);
}

static void test_splits(void)
{
    expect_split("Removed", false, "the|final|countdown");
    expect_split("Isolated", false, "the|-|final|-|-|countdown");
    expect_split("MergedWithPrevious", false, "the-|final-|-|countdown");
    expect_split("MergedWithNext", false, "the|-final|-|-countdown");
    expect_split("Contiguous", false, "the|-|final|--|countdown");
    expect_split("Removed", true, "-|-|-");
}

/* One tokenizer shared by threads that encode at once (it is read-only
 * after loading; caches are per call). */
typedef struct thread_job {
    const ogi_tokenizer *tok;
    const char *text;
    size_t len, n;
    int32_t *ids;
} thread_job;

static void *encode_job(void *arg)
{
    thread_job *j = arg;
    for (int r = 0; r < 20; r++) {
        ogi_free(j->ids);
        if (ogi_tokenizer_encode(j->tok, j->text, j->len, 1, &j->ids, &j->n) != OGI_OK)
            j->n = 0;
    }
    return NULL;
}

static void test_threads(void)
{
    char dir_path[1024];
    snprintf(dir_path, sizeof(dir_path), "%s/tokenizers/qwen3", test_shared_dir());
    ogi_tokenizer *tok;
    checks++;
    TEST_CHECK(ogi_tokenizer_open(dir_path, &tok) == OGI_OK, "%s", ogi_last_error());
    if (!tok)
        return;
    const char *text = "Shared tokenizers, caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac <|im_end|> 12345 "
                       "encode the same words again and again and again.";
    thread_job jobs[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (thread_job){tok, text, strlen(text), 0, NULL};
        pthread_create(&th[i], NULL, encode_job, &jobs[i]);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    for (int i = 1; i < 4; i++) {
        checks++;
        TEST_CHECK(jobs[i].n == jobs[0].n && jobs[0].n > 0 &&
                       memcmp(jobs[i].ids, jobs[0].ids, jobs[0].n * sizeof(int32_t)) == 0,
                   "thread %d encodes differently", i);
    }
    for (int i = 0; i < 4; i++)
        ogi_free(jobs[i].ids);
    ogi_tokenizer_free(tok);
}

int main(void)
{
    snprintf(dir, sizeof(dir), "/tmp/ogi_tok_bad_XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    ogi_tokenizer *none = NULL;
    checks++;
    TEST_CHECK(ogi_tokenizer_open("/nonexistent/dir", &none) == OGI_ERR_IO && none == NULL,
               "missing folder");
    test_malformed();
    test_truncated();
    test_tiny();
    test_wordpiece();
    test_unigram();
    test_config();
    test_normalizers();
    test_splits();
    test_threads();
    char path[300];
    snprintf(path, sizeof(path), "%s/tokenizer.json", dir);
    unlink(path);
    rmdir(dir);
    return test_finish("test_tokenizer_bad", checks);
}
