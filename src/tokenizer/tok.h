/* Internal interface of the tokenizer module: a C rendition of the Hugging
 * Face `tokenizers` pipeline (added tokens → normalizer → pre-tokenizer →
 * model → post-processor; decoder for the way back).
 *
 * Text moves through the pipeline as tok_nstr: a UTF-8 string plus, for each
 * of its bytes, the byte range of the original input it came from. That is
 * how the reference computes token offsets, and it keeps our offsets (and
 * the places where those alignments change behaviour) identical. */
#ifndef OGI_TOKENIZER_TOK_H
#define OGI_TOKENIZER_TOK_H

#define PCRE2_CODE_UNIT_WIDTH 8

#include <jansson.h>
#include <pcre2.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "ogi.h"

/* ---- utilities (util.c) ------------------------------------------------- */

typedef struct tok_buf {
    char *data;
    size_t len, cap;
} tok_buf;

bool tok_buf_reserve(tok_buf *b, size_t extra);
bool tok_buf_append(tok_buf *b, const void *data, size_t n);
bool tok_buf_put_cp(tok_buf *b, uint32_t cp);
/* Returns the data NUL-terminated (always allocated, even when empty) and
 * resets the buffer; NULL when out of memory. */
char *tok_buf_finish(tok_buf *b, size_t *len);
void tok_buf_free(tok_buf *b);

/* Decodes the UTF-8 character at s[0..n) (n >= 1), which must be valid;
 * returns its code point and stores its length. */
uint32_t tok_utf8_decode(const char *s, size_t n, size_t *clen);
/* Length of the valid UTF-8 sequence starting at s, 0 when invalid. */
size_t tok_utf8_valid_len(const unsigned char *s, size_t n);
size_t tok_utf8_encode(uint32_t cp, char out[4]);
/* Appends s with every maximal invalid subsequence replaced by U+FFFD, as
 * Rust's String::from_utf8_lossy does. */
bool tok_utf8_append_lossy(tok_buf *out, const char *s, size_t n);
bool tok_utf8_is_valid(const char *s, size_t n);
size_t tok_utf8_char_count(const char *s, size_t n);

/* Unicode predicates with Rust's std semantics. */
bool tok_is_whitespace(uint32_t cp);
bool tok_is_alphanumeric(uint32_t cp);
bool tok_is_numeric(uint32_t cp);
bool tok_is_punctuation(uint32_t cp); /* ASCII punctuation or general category P* */
bool tok_is_mark_nonspacing(uint32_t cp);

/* String → int32 hash map; keys are copied into the map's own arena and kept
 * NUL-terminated, so tok_map_key() can be returned to callers. */
typedef struct tok_map_entry {
    uint64_t hash;
    uint32_t key_off, key_len;
    int32_t value;
} tok_map_entry;

typedef struct tok_map {
    uint32_t *slots; /* entry index + 1; 0 = empty */
    size_t n_slots;  /* power of two */
    tok_map_entry *entries;
    size_t n, cap;
    tok_buf arena;
} tok_map;

uint64_t tok_hash(const void *data, size_t n);
bool tok_map_init(tok_map *m, size_t expected);
/* Inserts or overwrites; returns the entry index or -1 when out of memory. */
long tok_map_put(tok_map *m, const char *key, size_t len, int32_t value);
/* Entry index or -1. */
long tok_map_find(const tok_map *m, const char *key, size_t len);
const char *tok_map_key(const tok_map *m, size_t entry);
void tok_map_free(tok_map *m);

/* (uint32, uint32) → (rank, new id) map for BPE merges. */
typedef struct tok_pair_entry {
    uint64_t key; /* left << 32 | right; UINT64_MAX = empty */
    uint32_t rank;
    int32_t id;
} tok_pair_entry;

typedef struct tok_pair_map {
    tok_pair_entry *slots;
    size_t n_slots, n;
} tok_pair_map;

bool tok_pair_map_init(tok_pair_map *m, size_t expected);
bool tok_pair_map_put(tok_pair_map *m, int32_t a, int32_t b, uint32_t rank, int32_t id);
const tok_pair_entry *tok_pair_map_get(const tok_pair_map *m, int32_t a, int32_t b);
void tok_pair_map_free(tok_pair_map *m);

/* GPT-2's byte ↔ printable character table. */
uint32_t tok_byte_to_cp(uint8_t b);
/* The byte for cp, or -1 when cp is not one of the 256 characters. */
int tok_cp_to_byte(uint32_t cp);

/* JSON helpers that record an error naming `where` on failure. */
ogi_status tok_json_string(const json_t *obj, const char *key, const char *where, bool required,
                           const char **out);
bool tok_json_bool(const json_t *obj, const char *key, bool dflt);
char *tok_strndup(const char *s, size_t n);

/* ---- normalized strings (nstr.c) --------------------------------------- */

typedef struct tok_span {
    uint32_t start, end;
} tok_span;

typedef struct tok_nstr {
    char *s;
    size_t len;
    tok_span *align; /* len entries */
} tok_nstr;

/* A fresh nstr over s[0..n) whose bytes map to their own characters,
 * shifted by `base` in the original text. */
bool tok_nstr_init(tok_nstr *ns, const char *s, size_t n, uint32_t base);
bool tok_nstr_slice(const tok_nstr *ns, size_t start, size_t end, tok_nstr *out);
void tok_nstr_free(tok_nstr *ns);
/* Original range covered by normalized bytes [start, end). */
tok_span tok_nstr_original(const tok_nstr *ns, size_t start, size_t end);

/* Rebuilds an nstr character by character, following the reference's
 * transform(): a replaced character keeps the alignment of the character it
 * replaces, an inserted one copies the alignment of the byte before. */
typedef struct tok_xform {
    const tok_nstr *src;
    size_t pos; /* next unconsumed byte of src */
    tok_buf out;
    tok_span *align;
    size_t align_cap;
    bool oom;
} tok_xform;

void tok_xform_begin(tok_xform *x, const tok_nstr *src);
/* Emits cp in place of the next source character (change 0). */
void tok_xform_replace(tok_xform *x, uint32_t cp);
/* Emits an inserted character (change +1). */
void tok_xform_insert(tok_xform *x, uint32_t cp);
/* Drops the next n source characters. */
void tok_xform_skip(tok_xform *x, size_t n_chars);
/* Copies the next n source bytes (whole characters) unchanged. */
void tok_xform_copy(tok_xform *x, size_t n_bytes);
/* Replaces *dst (usually the source) with the result. */
bool tok_xform_end(tok_xform *x, tok_nstr *dst);

/* ---- patterns and splitting (pattern.c) --------------------------------- */

typedef struct tok_match {
    size_t start, end;
    bool is_match;
} tok_match;

typedef struct tok_matches {
    tok_match *v;
    size_t n, cap;
} tok_matches;

bool tok_matches_push(tok_matches *m, size_t start, size_t end, bool is_match);
void tok_matches_free(tok_matches *m);

typedef struct tok_pattern {
    char *literal; /* a String pattern, or NULL */
    size_t literal_len;
    pcre2_code *re; /* a Regex pattern, or NULL */
} tok_pattern;

/* Parses {"String": "..."} or {"Regex": "..."}. */
ogi_status tok_pattern_parse(const json_t *j, const char *where, tok_pattern *p);
ogi_status tok_pattern_compile(tok_pattern *p, const char *regex, const char *where);
void tok_pattern_free(tok_pattern *p);
/* Covers s with alternating non-matches and matches, as the reference's
 * Pattern::find_matches. */
ogi_status tok_pattern_find(const tok_pattern *p, const char *s, size_t n, tok_matches *out);

typedef enum tok_split_behavior {
    TOK_SPLIT_REMOVED,
    TOK_SPLIT_ISOLATED,
    TOK_SPLIT_MERGED_WITH_PREVIOUS,
    TOK_SPLIT_MERGED_WITH_NEXT,
    TOK_SPLIT_CONTIGUOUS,
} tok_split_behavior;

ogi_status tok_split_behavior_parse(const json_t *j, const char *where, tok_split_behavior *out);

/* A piece of the input on its way through the pipeline. id >= 0 marks a
 * piece that an added token already decided. */
typedef struct tok_piece {
    tok_nstr ns;
    int32_t id;
} tok_piece;

typedef struct tok_pieces {
    tok_piece *v;
    size_t n, cap;
} tok_pieces;

bool tok_pieces_push(tok_pieces *p, tok_nstr *ns, int32_t id); /* takes ns */
void tok_pieces_free(tok_pieces *p);

/* Applies `behavior` to matches over ns and appends the non-empty pieces. */
bool tok_split_apply(const tok_nstr *ns, tok_matches *m, tok_split_behavior behavior,
                     tok_pieces *out);

/* ---- normalizers (normalizer.c) ---------------------------------------- */

typedef struct tok_normalizer tok_normalizer;
ogi_status tok_normalizer_parse(const json_t *j, tok_normalizer **out);
ogi_status tok_normalizer_apply(const tok_normalizer *n, tok_nstr *ns);
void tok_normalizer_free(tok_normalizer *n);
/* Unicode normal forms by name ("NFC", ...). */
ogi_status tok_unicode_normalize(tok_nstr *ns, int form);
/* Lowercases every character as Rust's char::to_lowercase. */
ogi_status tok_lowercase(tok_nstr *ns);
ogi_status tok_nstr_replace(tok_nstr *ns, const tok_pattern *p, const char *content, size_t n);
/* Prepends s unless ns is empty (the reference's NormalizedString::prepend). */
ogi_status tok_nstr_prepend(tok_nstr *ns, const char *s, size_t n);
/* Maps every byte to its GPT-2 printable character. */
ogi_status tok_bytelevel_map(tok_nstr *ns);

/* ---- pre-tokenizers (pretokenizer.c) ------------------------------------ */

typedef enum tok_prepend_scheme {
    TOK_PREPEND_ALWAYS,
    TOK_PREPEND_FIRST,
    TOK_PREPEND_NEVER,
} tok_prepend_scheme;

typedef struct tok_pretokenizer tok_pretokenizer;
ogi_status tok_pretokenizer_parse(const json_t *j, tok_pretokenizer **out);
/* A Metaspace pre-tokenizer (used to reproduce transformers' Llama class). */
ogi_status tok_pretokenizer_metaspace(uint32_t replacement, tok_prepend_scheme scheme, bool split,
                                      tok_pretokenizer **out);
ogi_status tok_pretokenizer_apply(const tok_pretokenizer *p, tok_pieces *pieces);
void tok_pretokenizer_free(tok_pretokenizer *p);

/* ---- models (model.c, bpe.c) ------------------------------------------- */

typedef enum tok_model_type {
    TOK_MODEL_BPE,
    TOK_MODEL_WORDPIECE,
    TOK_MODEL_WORDLEVEL,
    TOK_MODEL_UNIGRAM,
} tok_model_type;

typedef struct tok_model {
    tok_model_type type;
    tok_map vocab;  /* token → id */
    long *id_entry; /* id → vocab entry, -1 when unused */
    size_t n_ids;   /* max id + 1 */
    size_t id_cap;  /* allocated entries of id_entry */
    int32_t unk_id; /* -1 when none */
    /* BPE */
    tok_pair_map merges;
    bool byte_fallback, fuse_unk, ignore_merges;
    char *prefix, *suffix; /* continuing_subword_prefix, end_of_word_suffix */
    int32_t byte_ids[256]; /* <0xXX> tokens, -1 when missing */
    int32_t char_ids[512]; /* single-character tokens by code point, -1 */
    /* No token holds U+2581 after another character, so a word can be cut
     * before every "▁" that follows something else (SentencePiece vocabs
     * without a pre-tokenizer would otherwise merge whole texts at once). */
    bool cut_before_metaspace;
    /* WordPiece */
    size_t max_input_chars;
    /* Unigram */
    double *scores;
    double min_score;
    size_t max_piece_len;
} tok_model;

/* A token produced by the model, with byte offsets inside its piece. */
typedef struct tok_token {
    int32_t id;
    uint32_t start, end;
} tok_token;

typedef struct tok_tokens {
    tok_token *v;
    size_t n, cap;
} tok_tokens;

bool tok_tokens_push(tok_tokens *t, int32_t id, uint32_t start, uint32_t end);

/* Per-call memo of word → tokens, so repeated words skip the merge loop. */
typedef struct tok_cache {
    tok_map map;     /* word → index of its first token in toks */
    tok_tokens toks; /* concatenated; each run is preceded by a count entry */
    bool enabled;
} tok_cache;

void tok_cache_free(tok_cache *c);
/* Adds token s[0..n) with the given id to the vocabulary. */
ogi_status tok_vocab_add(tok_model *m, const char *s, size_t n, long long id);
ogi_status tok_model_parse(const json_t *j, tok_model *m);
void tok_model_free(tok_model *m);
int32_t tok_model_token_to_id(const tok_model *m, const char *s, size_t n);
const char *tok_model_id_to_token(const tok_model *m, int32_t id);
ogi_status tok_model_tokenize(const tok_model *m, const char *s, size_t n, tok_cache *cache,
                              tok_tokens *out);
ogi_status tok_bpe_parse(const json_t *j, tok_model *m);
ogi_status tok_bpe_tokenize(const tok_model *m, const char *s, size_t n, tok_tokens *out);
ogi_status tok_unigram_tokenize(const tok_model *m, const char *s, size_t n, tok_tokens *out);

/* ---- post-processors (postprocessor.c) ---------------------------------- */

typedef struct tok_encoding {
    int32_t *ids;
    tok_span *offsets; /* original byte offsets */
    bool *special;     /* added by the post-processor */
    size_t n, cap;
} tok_encoding;

bool tok_encoding_push(tok_encoding *e, int32_t id, tok_span off, bool special);
void tok_encoding_free(tok_encoding *e);

typedef struct tok_postprocessor tok_postprocessor;
ogi_status tok_postprocessor_parse(const json_t *j, const tok_model *m, tok_postprocessor **out);
/* A template "bos $A eos" as transformers builds from add_bos/eos_token. */
ogi_status tok_postprocessor_bos_eos(int32_t bos, int32_t eos, tok_postprocessor **out);
ogi_status tok_postprocessor_apply(const tok_postprocessor *p, tok_encoding *e,
                                   bool add_special_tokens);
void tok_postprocessor_free(tok_postprocessor *p);

/* ---- decoders (decoder.c) ---------------------------------------------- */

typedef struct tok_strs {
    char **s;
    size_t *len;
    size_t n, cap;
} tok_strs;

bool tok_strs_push(tok_strs *l, const char *s, size_t n);
bool tok_strs_push_owned(tok_strs *l, char *s, size_t n);
void tok_strs_free(tok_strs *l);

typedef struct tok_decoder tok_decoder;
ogi_status tok_decoder_parse(const json_t *j, tok_decoder **out);
/* Decodes the tokens in place (the list is replaced) and joins the result. */
ogi_status tok_decoder_decode(const tok_decoder *d, tok_strs *tokens, tok_buf *out);
void tok_decoder_free(tok_decoder *d);

/* ---- added tokens (added.c) -------------------------------------------- */

typedef struct tok_added_token {
    char *content;
    size_t len;
    int32_t id;
    bool single_word, lstrip, rstrip, normalized, special;
} tok_added_token;

/* Leftmost-longest matcher over a set of strings. */
typedef struct tok_trie {
    uint32_t *first[256]; /* per first byte: indices into pats, longest first */
    uint32_t n_first[256];
    char **pats;
    size_t *pat_len;
    uint32_t *token; /* pats[i] belongs to added token token[i] */
    size_t n;
} tok_trie;

typedef struct tok_added_vocab {
    tok_added_token *tokens;
    size_t n;
    tok_map by_content; /* content → index in tokens */
    long *by_id;        /* id → index, -1 when not added */
    size_t n_by_id;
    tok_trie raw, normalized;
} tok_added_vocab;

ogi_status tok_added_parse(const json_t *arr, const tok_normalizer *norm, tok_added_vocab *av);
void tok_added_free(tok_added_vocab *av);
const tok_added_token *tok_added_by_id(const tok_added_vocab *av, int32_t id);
/* Splits ns on the added tokens of trie t and appends the pieces. */
bool tok_added_split(const tok_added_vocab *av, const tok_trie *t, tok_nstr *ns, tok_pieces *out);

/* ---- the tokenizer (tokenizer.c) --------------------------------------- */

/* The parts that encode() runs; transformers may swap some of them. */
typedef struct tok_pipeline {
    const tok_normalizer *normalizer;
    const tok_pretokenizer *pretokenizer;
    const tok_postprocessor *postprocessor;
} tok_pipeline;

struct ogi_tokenizer {
    tok_model model;
    tok_added_vocab added;
    tok_normalizer *normalizer;
    tok_pretokenizer *pretokenizer;
    tok_postprocessor *postprocessor;
    tok_decoder *decoder;
    /* tokenizer_config.json */
    int32_t bos_id, eos_id, pad_id, unk_id;
    char *bos_token, *eos_token;
    char *chat_template;
    /* What transformers' AutoTokenizer runs (ogi_tokenizer_encode_hf). */
    tok_normalizer *hf_normalizer;
    tok_pretokenizer *hf_pretokenizer;
    tok_postprocessor *hf_postprocessor;
    tok_pipeline pipeline, hf_pipeline;
};

/* Encodes with an explicit pipeline; offsets are original byte offsets into
 * the UTF-8-sanitised text (which *clean receives when non-NULL). */
ogi_status tok_encode(const ogi_tokenizer *tok, const tok_pipeline *pl, const char *text,
                      size_t len, bool add_special_tokens, tok_encoding *out);
/* Character offsets (as Python reports them) for ogi_tokenizer_encode. */
ogi_status tok_encode_offsets(const ogi_tokenizer *tok, const char *text, size_t len,
                              int add_special_tokens, int32_t **ids, size_t **starts, size_t **ends,
                              size_t *n);

/* Length of the last piece ogi_decode_stream_push returned, which may
 * contain U+0000 (the public API hands out a C string). */
size_t tok_decode_stream_piece_len(const ogi_decode_stream *s);

#endif
