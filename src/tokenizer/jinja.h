/* A Jinja2 interpreter for chat templates: the subset of the language that
 * the chat templates of Hugging Face models use, rendered the way
 * transformers renders them (trim_blocks, lstrip_blocks, loop controls,
 * {% generation %}, tojson without HTML escaping, raise_exception and
 * strftime_now as globals). */
#ifndef OGI_TOKENIZER_JINJA_H
#define OGI_TOKENIZER_JINJA_H

#include <jansson.h>

#include "ogi.h"

/* Renders template_text with the variables of the JSON object `context`
 * (messages, add_generation_prompt, bos_token, eos_token, tools, custom
 * kwargs; context may be NULL for none). On success *out is a malloc'ed,
 * NUL-terminated string (free with free()).
 *
 * Errors return OGI_ERR_INVALID_ARGUMENT with a message
 * "chat template line L, column C: ..." for syntax errors, runtime errors
 * (unknown filter, raise_exception(msg) -> msg, type errors, undefined
 * values used where Jinja2 fails) and exceeded limits: loop iterations,
 * nesting and recursion depth, memory and output size are bounded, so a
 * template that loops forever or nests deeply fails quickly instead of
 * hanging or crashing. OGI_ERR_OUT_OF_MEMORY when malloc fails. */
ogi_status jinja_render(const char *template_text, const json_t *context, char **out);

/* The same, also giving the output's length in *out_len (may be NULL): a
 * message holding "\u0000" puts NUL bytes inside the text. */
ogi_status jinja_render_len(const char *template_text, const json_t *context, char **out,
                            size_t *out_len);

#endif
