/* Incremental detokenizer. Like the reference's DecodeStream it decodes a
 * short window of ids: the ids of the last emitted piece (as context, so
 * that first-token rules such as Metaspace's leading space do not reapply)
 * plus the new ones, and emits what the window adds beyond the context's
 * own text once that text does not end in an incomplete character. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok.h"

struct ogi_decode_stream {
    const ogi_tokenizer *tok;
    int skip_special;
    int32_t *ids; /* the window */
    size_t n, cap;
    size_t prefix_index; /* ids[0..prefix_index) are context */
    char *prefix;        /* decode of the whole window when last emitted */
    size_t prefix_len;
    char *piece;
    size_t piece_len;
};

ogi_status ogi_decode_stream_create(const ogi_tokenizer *tok, int skip_special_tokens,
                                    ogi_decode_stream **out)
{
    if (!tok || !out)
        return ogi_error(OGI_ERR_INVALID_ARGUMENT, "ogi_decode_stream_create: NULL argument");
    ogi_decode_stream *s = calloc(1, sizeof(*s));
    if (!s || !(s->prefix = calloc(1, 1))) {
        free(s);
        return ogi_error(OGI_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
    }
    s->tok = tok;
    s->skip_special = skip_special_tokens;
    *out = s;
    return OGI_OK;
}

void ogi_decode_stream_free(ogi_decode_stream *s)
{
    if (!s)
        return;
    free(s->ids);
    free(s->prefix);
    free(s->piece);
    free(s);
}

static bool ends_incomplete(const char *s, size_t n)
{
    return n >= 3 && memcmp(s + n - 3, "\xEF\xBF\xBD", 3) == 0;
}

static ogi_status set_piece(ogi_decode_stream *s, const char *text, size_t n, const char **piece)
{
    char *p = tok_strndup(text, n);
    if (!p)
        return ogi_error(OGI_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
    free(s->piece);
    s->piece = p;
    s->piece_len = n;
    *piece = p;
    return OGI_OK;
}

/* Emits text[from..], then slides the window: the ids decoded so far
 * become context and the context before them is dropped. */
static ogi_status emit(ogi_decode_stream *s, char *text, size_t len, size_t from,
                       const char **piece)
{
    ogi_status st = set_piece(s, text + from, len - from, piece);
    if (st != OGI_OK)
        return st;
    size_t keep_from = s->prefix_index;
    size_t new_prefix_index = s->n - keep_from;
    memmove(s->ids, s->ids + keep_from, (s->n - keep_from) * sizeof(int32_t));
    s->n -= keep_from;
    char *prefix;
    size_t prefix_len;
    st = ogi_tokenizer_decode(s->tok, s->ids, s->n, s->skip_special, &prefix, &prefix_len);
    if (st != OGI_OK)
        return st;
    free(s->prefix);
    s->prefix = prefix;
    s->prefix_len = prefix_len;
    s->prefix_index = new_prefix_index;
    return OGI_OK;
}

ogi_status ogi_decode_stream_push(ogi_decode_stream *s, int32_t id, const char **piece)
{
    if (!s || !piece)
        return ogi_error(OGI_ERR_INVALID_ARGUMENT, "ogi_decode_stream_push: NULL argument");
    *piece = "";
    s->piece_len = 0;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        int32_t *ids = realloc(s->ids, cap * sizeof(int32_t));
        if (!ids)
            return ogi_error(OGI_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
        s->ids = ids;
        s->cap = cap;
    }
    s->ids[s->n++] = id;
    char *text;
    size_t len;
    ogi_status st = ogi_tokenizer_decode(s->tok, s->ids, s->n, s->skip_special, &text, &len);
    if (st != OGI_OK)
        return st;
    if (len > s->prefix_len && !ends_incomplete(text, len)) {
        /* Normally the window's text extends the context's; where a decoder
         * rewrote it, emit from the first difference. */
        size_t common = 0;
        while (common < s->prefix_len && text[common] == s->prefix[common])
            common++;
        while (common > 0 && ((unsigned char)text[common] & 0xC0) == 0x80)
            common--;
        st = emit(s, text, len, common, piece);
    }
    free(text);
    return st;
}

size_t tok_decode_stream_piece_len(const ogi_decode_stream *s)
{
    return s ? s->piece_len : 0;
}
