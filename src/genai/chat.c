/* Multi-turn chat: the conversation is rendered through the model's chat
 * template each turn; the tokens it shares with what the generator already
 * holds keep their KV cache (the generator rewinds to the common prefix), so
 * only the new turn is computed. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "genai/genai.h"

struct ogi_chat {
    ogi_pipeline *pipe;
    json_t *messages;
    ogi_generator *gen;
    ogi_generation_config gen_cfg; /* the generator's config */
};

ogi_status ogi_chat_create(ogi_pipeline *pipe, const char *system, ogi_chat **out)
{
    if (pipe == NULL || out == NULL)
        return ogi_error(OGI_ERR_INVALID_ARGUMENT, "ogi_chat_create: NULL argument");
    if (pipe->tokenizer == NULL)
        return ogi_error(OGI_ERR_NOT_FOUND, "%s has no tokenizer: chat needs one", pipe->dir);
    ogi_chat *c = calloc(1, sizeof(*c));
    if (c == NULL || (c->messages = json_array()) == NULL) {
        free(c);
        return ogi_error(OGI_ERR_OUT_OF_MEMORY, "out of memory");
    }
    c->pipe = pipe;
    if (system != NULL)
        json_array_append_new(c->messages,
                              json_pack("{s:s, s:s}", "role", "system", "content", system));
    *out = c;
    return OGI_OK;
}

void ogi_chat_free(ogi_chat *c)
{
    if (c == NULL)
        return;
    json_decref(c->messages);
    ogi_generator_free(c->gen);
    free(c);
}

static size_t chat_common_prefix(const int32_t *a, size_t na, const int32_t *b, size_t nb)
{
    size_t i = 0;
    while (i < na && i < nb && a[i] == b[i])
        i++;
    return i;
}

/* Positions the generator at ids: rewinds to the prefix it shares with
 * them and appends the rest, or starts a new generator. */
static ogi_status chat_prepare(ogi_chat *c, const ogi_generation_config *cfg, const int32_t *ids,
                               size_t n)
{
    size_t have = 0, common = 0;
    const int32_t *old = c->gen ? ogi_generator_ids(c->gen, 0, &have) : NULL;
    if (old != NULL)
        common = chat_common_prefix(old, have, ids, n);
    bool same_cfg = c->gen != NULL && memcmp(&c->gen_cfg, cfg, sizeof(*cfg)) == 0;
    if (common == 0 || !same_cfg) {
        ogi_generator_free(c->gen);
        c->gen = NULL;
        ogi_status st = ogi_generator_create(c->pipe, cfg, 1, &c->gen);
        if (st != OGI_OK)
            return st;
        c->gen_cfg = *cfg;
        return ogi_generator_append(c->gen, 0, ids, n);
    }
    if (common == n)
        common = n - 1; /* the last token must run again to give logits */
    ogi_status st = ogi_generator_rewind(c->gen, common);
    if (st == OGI_OK)
        st = ogi_generator_append(c->gen, 0, ids + common, n - common);
    return st;
}

ogi_status ogi_chat_send(ogi_chat *c, const char *user_message, const ogi_generation_config *config,
                         ogi_stream_fn stream, void *user, ogi_result *result)
{
    if (c == NULL || user_message == NULL || result == NULL)
        return ogi_error(OGI_ERR_INVALID_ARGUMENT, "ogi_chat_send: NULL argument");
    memset(result, 0, sizeof(*result));
    ogi_generation_config cfg = config ? *config : c->pipe->defaults;
    json_t *msg = json_pack("{s:s, s:s}", "role", "user", "content", user_message);
    if (msg == NULL)
        return ogi_error(OGI_ERR_INVALID_ARGUMENT, "the message is not valid UTF-8");
    json_array_append_new(c->messages, msg);
    char *messages = json_dumps(c->messages, JSON_COMPACT);
    char *prompt = NULL;
    int32_t *ids = NULL;
    size_t n = 0;
    ogi_status st = messages ? OGI_OK : ogi_error(OGI_ERR_OUT_OF_MEMORY, "out of memory");
    if (st == OGI_OK)
        st = ogi_tokenizer_apply_chat_template(c->pipe->tokenizer, messages, 1, NULL, &prompt);
    if (st == OGI_OK)
        st = ogi_tokenizer_encode(c->pipe->tokenizer, prompt, strlen(prompt), 0, &ids, &n);
    if (st == OGI_OK && n == 0)
        st = ogi_error(OGI_ERR_INVALID_ARGUMENT, "the chat template rendered an empty prompt");
    if (st == OGI_OK)
        st = chat_prepare(c, &cfg, ids, n);
    if (st == OGI_OK)
        st = genai_run_loop(c->pipe, c->gen, n, &cfg, stream, user, result);
    if (st == OGI_OK)
        json_array_append_new(c->messages, json_pack("{s:s, s:s}", "role", "assistant", "content",
                                                     result->text ? result->text : ""));
    else
        json_array_remove(c->messages, json_array_size(c->messages) - 1);
    free(messages);
    ogi_free(prompt);
    ogi_free(ids);
    return st;
}
