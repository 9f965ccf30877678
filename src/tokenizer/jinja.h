/* A Jinja2 interpreter for chat templates: the subset of the language that
 * the chat templates of Hugging Face models use, rendered the way
 * transformers renders them (trim_blocks, lstrip_blocks, loop controls,
 * {% generation %}, the immutable sandbox, tojson as json.dumps without HTML
 * escaping, raise_exception and strftime_now as globals). */
#ifndef OGI_TOKENIZER_JINJA_H
#define OGI_TOKENIZER_JINJA_H

#include <stddef.h>

#include <jansson.h>

#include "ogi.h"

/* Renders template_text with the variables of the JSON object `context`
 * (messages, add_generation_prompt, bos_token, eos_token, tools, custom
 * kwargs; context may be NULL for none). On success *out is a malloc'ed,
 * NUL-terminated string (free with free()).
 *
 * Semantics are Jinja2's with transformers' settings: an undefined variable
 * prints as "" and is falsy, but using it as an object (attribute, item,
 * call, arithmetic) is an error, as with Jinja2's default Undefined.
 *
 * Errors return OGI_ERR_INVALID_ARGUMENT with a message
 * "chat template line L, column C: ..." for syntax errors, runtime errors
 * (unknown filter or test, raise_exception(msg) -> msg, type errors) and
 * exceeded limits: loop iterations and macro calls (10^6), nesting (200
 * levels in the source, 1000 in evaluation), memory (256 MiB), any one
 * string (64 MiB) and total work are bounded, so a template that loops
 * forever or nests deeply fails in about a second at most. Evaluation needs
 * about 1 MiB of stack. OGI_ERR_OUT_OF_MEMORY when malloc fails.
 * Thread-safe: renders share no state. */
ogi_status jinja_render(const char *template_text, const json_t *context, char **out);

/* The same, also giving the output's length in *out_len (may be NULL): a
 * message holding "\u0000" puts NUL bytes inside the text. */
ogi_status jinja_render_len(const char *template_text, const json_t *context, char **out,
                            size_t *out_len);

#endif
