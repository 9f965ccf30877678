/* ogi_tokenizer_apply_chat_template: the context transformers gives a chat
 * template (messages, add_generation_prompt, the special tokens, tools and
 * any extra keyword arguments), rendered by the Jinja interpreter. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/jinja.h"
#include "tokenizer/tok.h"

static ogi_status parse_arg(const char *text, const char *what, json_t **out)
{
    json_error_t err;
    *out = json_loads(text, JSON_ALLOW_NUL, &err);
    if (!*out)
        return ogi_error(OGI_ERR_INVALID_ARGUMENT, "%s: line %d column %d: %s", what, err.line,
                         err.column, err.text);
    return OGI_OK;
}

static bool set_token(json_t *ctx, const char *key, const ogi_tokenizer *tok, int32_t id,
                      const char *text)
{
    if (!text && id >= 0)
        text = ogi_tokenizer_id_to_token(tok, id);
    return !text || json_object_set_new(ctx, key, json_string(text)) == 0;
}

static ogi_status build_context(const ogi_tokenizer *tok, json_t *messages,
                                int add_generation_prompt, json_t *extra, json_t **out)
{
    json_t *ctx = json_object();
    bool ok = ctx && json_object_set(ctx, "messages", messages) == 0 &&
              json_object_set_new(ctx, "add_generation_prompt",
                                  json_boolean(add_generation_prompt)) == 0 &&
              json_object_set_new(ctx, "tools", json_null()) == 0 &&
              set_token(ctx, "bos_token", tok, tok->bos_id, tok->bos_token) &&
              set_token(ctx, "eos_token", tok, tok->eos_id, tok->eos_token) &&
              set_token(ctx, "pad_token", tok, tok->pad_id, NULL) &&
              set_token(ctx, "unk_token", tok, tok->unk_id, NULL) &&
              (!extra || json_object_update(ctx, extra) == 0);
    if (!ok) {
        json_decref(ctx);
        return ogi_error(OGI_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
    }
    *out = ctx;
    return OGI_OK;
}

ogi_status ogi_tokenizer_apply_chat_template(const ogi_tokenizer *tok, const char *messages_json,
                                             int add_generation_prompt, const char *extra_json,
                                             char **text)
{
    if (!tok || !messages_json || !text)
        return ogi_error(OGI_ERR_INVALID_ARGUMENT,
                         "ogi_tokenizer_apply_chat_template: NULL argument");
    *text = NULL;
    if (!tok->chat_template)
        return ogi_error(OGI_ERR_NOT_FOUND, "tokenizer_config.json: no chat_template");
    json_t *messages = NULL, *extra = NULL, *ctx = NULL;
    ogi_status st = parse_arg(messages_json, "messages", &messages);
    if (st == OGI_OK && !json_is_array(messages))
        st = ogi_error(OGI_ERR_INVALID_ARGUMENT, "messages: must be a JSON array");
    if (st == OGI_OK && extra_json)
        st = parse_arg(extra_json, "extra", &extra);
    if (st == OGI_OK && extra && !json_is_object(extra))
        st = ogi_error(OGI_ERR_INVALID_ARGUMENT, "extra: must be a JSON object");
    if (st == OGI_OK)
        st = build_context(tok, messages, add_generation_prompt, extra, &ctx);
    if (st == OGI_OK)
        st = jinja_render(tok->chat_template, ctx, text);
    json_decref(ctx);
    json_decref(messages);
    json_decref(extra);
    return st;
}
