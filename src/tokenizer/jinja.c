/* jinja_render: source -> tokens -> AST -> output, all in one arena. */
#include "tokenizer/jinja.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "tokenizer/jinja_internal.h"

static bool jinja_root_scope(jinja_ctx *ctx, const json_t *context, jinja_scope **out)
{
    jinja_scope *root = jinja_alloc(ctx, sizeof(*root));
    if (root == NULL)
        return false;
    if (context != NULL) {
        jinja_value v;
        if (!json_is_object(context))
            return jinja_fail(ctx, "the context must be a JSON object");
        if (!jinja_from_json(ctx, context, &v, 0))
            return false;
        root->vars = *v.dict;
    }
    *out = root;
    return true;
}

static bool jinja_run(jinja_ctx *ctx, const char *template_text, const json_t *context,
                      jinja_sb *output)
{
    jinja_str source;
    jinja_tokens tokens = {0};
    jinja_nodes body = {0};
    jinja_scope *root;
    if (!jinja_normalize_source(ctx, template_text, &source))
        return false;
    ctx->source = source.ptr;
    ctx->source_len = source.len;
    if (!jinja_lex(ctx, source, &tokens) || !jinja_parse(ctx, &tokens, &body) ||
        !jinja_root_scope(ctx, context, &root))
        return false;
    ctx->out = output;
    ctx->at = NULL;
    return jinja_exec_template(ctx, &body, root);
}

ogi_status jinja_render(const char *template_text, const json_t *context, char **out)
{
    return jinja_render_len(template_text, context, out, NULL);
}

ogi_status jinja_render_len(const char *template_text, const json_t *context, char **out,
                            size_t *out_len)
{
    if (out != NULL)
        *out = NULL;
    if (out_len != NULL)
        *out_len = 0;
    if (template_text == NULL || out == NULL)
        return ogi_error(OGI_ERR_INVALID_ARGUMENT, "jinja_render: NULL template or output");
    jinja_ctx ctx;
    jinja_sb output = {0};
    jinja_ctx_init(&ctx);
    ctx.at_line = 1;
    ctx.at_col = 1;
    bool ok = jinja_run(&ctx, template_text, context, &output);
    ogi_status status = OGI_OK;
    if (ok) {
        *out = malloc(output.len + 1);
        if (*out == NULL) {
            status = ogi_error(OGI_ERR_OUT_OF_MEMORY, "chat template: out of memory");
        } else {
            if (output.len > 0)
                memcpy(*out, output.data, output.len);
            (*out)[output.len] = '\0';
            if (out_len != NULL)
                *out_len = output.len;
        }
    } else {
        status = ogi_error(ctx.status != OGI_OK ? ctx.status : OGI_ERR_INVALID_ARGUMENT,
                           "chat template line %d, column %d: %s", ctx.error_line, ctx.error_col,
                           ctx.error);
    }
    jinja_ctx_free(&ctx);
    return status;
}
