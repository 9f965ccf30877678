/* Post-processors: the special tokens wrapped around an encoding when
 * add_special_tokens is set (TemplateProcessing, BERT, RoBERTa, ByteLevel,
 * Sequence). Offsets of added tokens are (0, 0). */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok.h"

typedef enum post_type {
    POST_TEMPLATE, /* also BertProcessing and RobertaProcessing */
    POST_BYTE_LEVEL,
    POST_SEQUENCE,
} post_type;

/* One template item: special token ids, or (n_ids == 0 && !special) the
 * sequence itself. */
typedef struct post_item {
    bool special;
    int32_t *ids;
    size_t n_ids;
} post_item;

struct tok_postprocessor {
    post_type type;
    post_item *items;
    size_t n_items;
    tok_postprocessor **children;
    size_t n_children;
};

static ogi_status oom(void)
{
    return ogi_error(OGI_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
}

bool tok_encoding_push(tok_encoding *e, int32_t id, tok_span off, bool special)
{
    if (e->n == e->cap) {
        size_t cap = e->cap ? e->cap * 2 : 64;
        int32_t *ids = realloc(e->ids, cap * sizeof(*ids));
        if (ids)
            e->ids = ids;
        tok_span *offs = realloc(e->offsets, cap * sizeof(*offs));
        if (offs)
            e->offsets = offs;
        bool *sp = realloc(e->special, cap * sizeof(*sp));
        if (sp)
            e->special = sp;
        if (!ids || !offs || !sp)
            return false;
        e->cap = cap;
    }
    e->ids[e->n] = id;
    e->offsets[e->n] = off;
    e->special[e->n] = special;
    e->n++;
    return true;
}

void tok_encoding_free(tok_encoding *e)
{
    free(e->ids);
    free(e->offsets);
    free(e->special);
    memset(e, 0, sizeof(*e));
}

void tok_postprocessor_free(tok_postprocessor *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n_items; i++)
        free(p->items[i].ids);
    free(p->items);
    for (size_t i = 0; i < p->n_children; i++)
        tok_postprocessor_free(p->children[i]);
    free(p->children);
    free(p);
}

static bool add_item(tok_postprocessor *p, bool special, const int32_t *ids, size_t n)
{
    post_item *items = realloc(p->items, (p->n_items + 1) * sizeof(*items));
    if (!items)
        return false;
    p->items = items;
    post_item *it = &p->items[p->n_items];
    it->special = special;
    it->n_ids = n;
    it->ids = malloc((n ? n : 1) * sizeof(int32_t));
    if (!it->ids)
        return false;
    if (n)
        memcpy(it->ids, ids, n * sizeof(int32_t));
    p->n_items++;
    return true;
}

/* ---- parsing ------------------------------------------------------------ */

static ogi_status template_special(const json_t *specials, const char *name, tok_postprocessor *p)
{
    json_t *sp = json_object_get(specials, name);
    json_t *ids = json_object_get(sp, "ids");
    if (!json_is_array(ids))
        return ogi_error(OGI_ERR_INVALID_MODEL,
                         "tokenizer.json: TemplateProcessing: special token '%s' is not defined",
                         name);
    size_t n = json_array_size(ids);
    int32_t *v = malloc((n ? n : 1) * sizeof(int32_t));
    if (!v)
        return oom();
    for (size_t i = 0; i < n; i++) {
        json_t *id = json_array_get(ids, i);
        if (!json_is_integer(id) || json_integer_value(id) < 0 ||
            json_integer_value(id) > INT32_MAX) {
            free(v);
            return ogi_error(OGI_ERR_INVALID_MODEL,
                             "tokenizer.json: TemplateProcessing: bad id for '%s'", name);
        }
        v[i] = (int32_t)json_integer_value(id);
    }
    bool ok = add_item(p, true, v, n);
    free(v);
    return ok ? OGI_OK : oom();
}

static ogi_status parse_template(const json_t *j, tok_postprocessor *p)
{
    json_t *single = json_object_get(j, "single");
    json_t *specials = json_object_get(j, "special_tokens");
    if (!json_is_array(single))
        return ogi_error(OGI_ERR_INVALID_MODEL,
                         "tokenizer.json: TemplateProcessing: 'single' must be an array");
    for (size_t i = 0; i < json_array_size(single); i++) {
        json_t *it = json_array_get(single, i);
        json_t *sp = json_object_get(it, "SpecialToken"), *seq = json_object_get(it, "Sequence");
        const char *name = json_string_value(json_object_get(sp, "id"));
        if (name) {
            ogi_status st = template_special(specials, name, p);
            if (st != OGI_OK)
                return st;
        } else if (seq) {
            const char *which = json_string_value(json_object_get(seq, "id"));
            if (which && strcmp(which, "A") == 0 && !add_item(p, false, NULL, 0))
                return oom();
        } else {
            return ogi_error(OGI_ERR_INVALID_MODEL,
                             "tokenizer.json: TemplateProcessing: single[%zu] must be a "
                             "SpecialToken or a Sequence",
                             i);
        }
    }
    return OGI_OK;
}

/* BertProcessing / RobertaProcessing: cls $A sep, with "cls": [token, id]. */
static ogi_status parse_cls_sep(const json_t *j, const char *type, tok_postprocessor *p)
{
    json_t *cls = json_object_get(j, "cls"), *sep = json_object_get(j, "sep");
    json_t *cid = json_array_get(cls, 1), *sid = json_array_get(sep, 1);
    if (!json_is_integer(cid) || !json_is_integer(sid) || json_integer_value(cid) < 0 ||
        json_integer_value(sid) < 0 || json_integer_value(cid) > INT32_MAX ||
        json_integer_value(sid) > INT32_MAX)
        return ogi_error(OGI_ERR_INVALID_MODEL,
                         "tokenizer.json: %s: 'cls' and 'sep' must be [token, id]", type);
    int32_t c = (int32_t)json_integer_value(cid), s = (int32_t)json_integer_value(sid);
    if (!add_item(p, true, &c, 1) || !add_item(p, false, NULL, 0) || !add_item(p, true, &s, 1))
        return oom();
    return OGI_OK;
}

static ogi_status parse_sequence(const json_t *j, const tok_model *m, tok_postprocessor *p)
{
    json_t *arr = json_object_get(j, "processors");
    if (!json_is_array(arr))
        return ogi_error(OGI_ERR_INVALID_MODEL,
                         "tokenizer.json: post_processor Sequence: 'processors' must be an array");
    p->children = calloc(json_array_size(arr) + 1, sizeof(*p->children));
    if (!p->children)
        return oom();
    for (size_t i = 0; i < json_array_size(arr); i++) {
        ogi_status st = tok_postprocessor_parse(json_array_get(arr, i), m, &p->children[i]);
        if (st != OGI_OK)
            return st;
        p->n_children++;
    }
    return OGI_OK;
}

ogi_status tok_postprocessor_parse(const json_t *j, const tok_model *m, tok_postprocessor **out)
{
    *out = NULL;
    if (!j || json_is_null(j))
        return OGI_OK;
    if (!json_is_object(j))
        return ogi_error(OGI_ERR_INVALID_MODEL, "tokenizer.json: post_processor must be an object");
    const char *type;
    ogi_status st = tok_json_string(j, "type", "post_processor", true, &type);
    if (st != OGI_OK)
        return st;
    tok_postprocessor *p = calloc(1, sizeof(*p));
    if (!p)
        return oom();
    if (strcmp(type, "TemplateProcessing") == 0) {
        p->type = POST_TEMPLATE;
        st = parse_template(j, p);
    } else if (strcmp(type, "BertProcessing") == 0 || strcmp(type, "RobertaProcessing") == 0) {
        p->type = POST_TEMPLATE;
        st = parse_cls_sep(j, type, p);
    } else if (strcmp(type, "ByteLevel") == 0) {
        p->type = POST_BYTE_LEVEL;
    } else if (strcmp(type, "Sequence") == 0) {
        p->type = POST_SEQUENCE;
        st = parse_sequence(j, m, p);
    } else {
        st = ogi_error(OGI_ERR_UNSUPPORTED,
                       "tokenizer.json: post_processor type '%s' is not supported", type);
    }
    if (st != OGI_OK) {
        tok_postprocessor_free(p);
        return st;
    }
    *out = p;
    return OGI_OK;
}

ogi_status tok_postprocessor_bos_eos(int32_t bos, int32_t eos, tok_postprocessor **out)
{
    tok_postprocessor *p = calloc(1, sizeof(*p));
    if (!p)
        return oom();
    p->type = POST_TEMPLATE;
    bool ok = (bos < 0 || add_item(p, true, &bos, 1)) && add_item(p, false, NULL, 0) &&
              (eos < 0 || add_item(p, true, &eos, 1));
    if (!ok) {
        tok_postprocessor_free(p);
        return oom();
    }
    *out = p;
    return OGI_OK;
}

/* ---- applying ----------------------------------------------------------- */

static ogi_status apply_template(const tok_postprocessor *p, tok_encoding *e)
{
    tok_encoding out = {0};
    for (size_t i = 0; i < p->n_items; i++) {
        const post_item *it = &p->items[i];
        bool ok = true;
        if (!it->special) {
            for (size_t k = 0; k < e->n && ok; k++)
                ok = tok_encoding_push(&out, e->ids[k], e->offsets[k], e->special[k]);
        }
        for (size_t k = 0; it->special && k < it->n_ids && ok; k++)
            ok = tok_encoding_push(&out, it->ids[k], (tok_span){0, 0}, true);
        if (!ok) {
            tok_encoding_free(&out);
            return oom();
        }
    }
    tok_encoding_free(e);
    *e = out;
    return OGI_OK;
}

ogi_status tok_postprocessor_apply(const tok_postprocessor *p, tok_encoding *e,
                                   bool add_special_tokens)
{
    if (!p)
        return OGI_OK;
    switch (p->type) {
    case POST_TEMPLATE:
        return add_special_tokens ? apply_template(p, e) : OGI_OK;
    case POST_BYTE_LEVEL:
        return OGI_OK;
    case POST_SEQUENCE:
        for (size_t i = 0; i < p->n_children; i++) {
            ogi_status st = tok_postprocessor_apply(p->children[i], e, add_special_tokens);
            if (st != OGI_OK)
                return st;
        }
        return OGI_OK;
    }
    return OGI_OK;
}
