/* String and regular-expression patterns (PCRE2 with JIT, in UTF + UCP mode
 * to stand in for the reference's Oniguruma), and split behaviours. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok.h"

ogi_status tok_pattern_compile(tok_pattern *p, const char *regex, const char *where)
{
    int err;
    PCRE2_SIZE off;
    p->re = pcre2_compile((PCRE2_SPTR)regex, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &err,
                          &off, NULL);
    if (!p->re) {
        char msg[256];
        pcre2_get_error_message(err, (PCRE2_UCHAR *)msg, sizeof(msg));
        return ogi_error(OGI_ERR_INVALID_MODEL,
                         "tokenizer.json: %s: regex /%s/ does not compile at offset %zu: %s", where,
                         regex, (size_t)off, msg);
    }
    /* Without JIT PCRE2 still matches, only slower. */
    pcre2_jit_compile(p->re, PCRE2_JIT_COMPLETE);
    return OGI_OK;
}

ogi_status tok_pattern_parse(const json_t *j, const char *where, tok_pattern *p)
{
    memset(p, 0, sizeof(*p));
    json_t *s = json_object_get(j, "String");
    json_t *r = json_object_get(j, "Regex");
    if (json_is_string(s)) {
        p->literal_len = json_string_length(s);
        p->literal = tok_strndup(json_string_value(s), p->literal_len);
        return p->literal ? OGI_OK : ogi_error(OGI_ERR_OUT_OF_MEMORY, "tokenizer.json: %s", where);
    }
    if (json_is_string(r))
        return tok_pattern_compile(p, json_string_value(r), where);
    return ogi_error(OGI_ERR_INVALID_MODEL,
                     "tokenizer.json: %s: pattern must be {\"String\": ...} or {\"Regex\": ...}",
                     where);
}

void tok_pattern_free(tok_pattern *p)
{
    free(p->literal);
    if (p->re)
        pcre2_code_free(p->re);
    memset(p, 0, sizeof(*p));
}

static ogi_status find_literal(const tok_pattern *p, const char *s, size_t n, tok_matches *out)
{
    size_t prev = 0, k = p->literal_len;
    if (k == 0)
        return tok_matches_push(out, 0, n, false) ? OGI_OK
                                                  : ogi_error(OGI_ERR_OUT_OF_MEMORY, "tokenizer");
    for (size_t i = 0; i + k <= n;) {
        const char *hit = memmem(s + i, n - i, p->literal, k);
        if (!hit)
            break;
        size_t at = (size_t)(hit - s);
        if ((at > prev && !tok_matches_push(out, prev, at, false)) ||
            !tok_matches_push(out, at, at + k, true))
            return ogi_error(OGI_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
        prev = i = at + k;
    }
    if (prev < n && !tok_matches_push(out, prev, n, false))
        return ogi_error(OGI_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
    return OGI_OK;
}

static int regex_match(const tok_pattern *p, const char *s, size_t n, size_t start,
                       pcre2_match_data *md)
{
    int rc = pcre2_match(p->re, (PCRE2_SPTR)s, n, start, PCRE2_NO_UTF_CHECK, md, NULL);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT)
        rc = pcre2_match(p->re, (PCRE2_SPTR)s, n, start, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, md,
                         NULL);
    return rc;
}

static ogi_status find_regex(const tok_pattern *p, const char *s, size_t n, tok_matches *out)
{
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(p->re, NULL);
    if (!md)
        return ogi_error(OGI_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
    size_t prev = 0, search = 0;
    long last_end = -1;
    ogi_status st = OGI_OK;
    while (search <= n) {
        int rc = regex_match(p, s, n, search, md);
        if (rc == PCRE2_ERROR_NOMATCH)
            break;
        if (rc < 0) {
            char msg[128];
            pcre2_get_error_message(rc, (PCRE2_UCHAR *)msg, sizeof(msg));
            st = ogi_error(OGI_ERR_RUNTIME, "tokenizer: regex match failed: %s", msg);
            break;
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t ms = ov[0], me = ov[1];
        if (ms == me && (long)me == last_end) {
            /* No empty match right after the previous match (as Oniguruma's
             * iterator): step over one character and search again. */
            size_t clen = 1;
            if (search < n)
                tok_utf8_decode(s + search, n - search, &clen);
            search += clen;
            continue;
        }
        if ((ms > prev && !tok_matches_push(out, prev, ms, false)) ||
            !tok_matches_push(out, ms, me, true)) {
            st = ogi_error(OGI_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
            break;
        }
        prev = me;
        last_end = (long)me;
        search = me;
    }
    pcre2_match_data_free(md);
    if (st == OGI_OK && prev < n && !tok_matches_push(out, prev, n, false))
        st = ogi_error(OGI_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
    return st;
}

ogi_status tok_pattern_find(const tok_pattern *p, const char *s, size_t n, tok_matches *out)
{
    out->n = 0;
    if (n == 0)
        return tok_matches_push(out, 0, 0, false) ? OGI_OK
                                                  : ogi_error(OGI_ERR_OUT_OF_MEMORY, "tokenizer");
    if (p->re)
        return find_regex(p, s, n, out);
    return find_literal(p, s, n, out);
}

ogi_status tok_split_behavior_parse(const json_t *j, const char *where, tok_split_behavior *out)
{
    static const struct {
        const char *name;
        tok_split_behavior b;
    } names[] = {
        {"Removed", TOK_SPLIT_REMOVED},
        {"Isolated", TOK_SPLIT_ISOLATED},
        {"MergedWithPrevious", TOK_SPLIT_MERGED_WITH_PREVIOUS},
        {"MergedWithNext", TOK_SPLIT_MERGED_WITH_NEXT},
        {"Contiguous", TOK_SPLIT_CONTIGUOUS},
    };
    const char *s = json_string_value(j);
    for (size_t i = 0; s && i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(s, names[i].name) == 0) {
            *out = names[i].b;
            return OGI_OK;
        }
    }
    return ogi_error(OGI_ERR_INVALID_MODEL, "tokenizer.json: %s: unknown split behavior '%s'",
                     where, s ? s : "(not a string)");
}
