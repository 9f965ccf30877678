/* Normalized strings with per-byte alignments to the original text, and the
 * transform/split operations the pipeline stages are written with. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok.h"

bool tok_nstr_init(tok_nstr *ns, const char *s, size_t n, uint32_t base)
{
    ns->s = malloc(n + 1);
    ns->align = malloc((n ? n : 1) * sizeof(tok_span));
    ns->len = n;
    if (!ns->s || !ns->align) {
        tok_nstr_free(ns);
        return false;
    }
    memcpy(ns->s, s, n);
    ns->s[n] = '\0';
    for (size_t i = 0; i < n;) {
        size_t k = tok_utf8_valid_len((const unsigned char *)s + i, n - i);
        if (!k)
            k = 1;
        for (size_t j = 0; j < k && i + j < n; j++)
            ns->align[i + j] = (tok_span){base + (uint32_t)i, base + (uint32_t)(i + k)};
        i += k;
    }
    return true;
}

bool tok_nstr_slice(const tok_nstr *ns, size_t start, size_t end, tok_nstr *out)
{
    size_t n = end - start;
    out->s = malloc(n + 1);
    out->align = malloc((n ? n : 1) * sizeof(tok_span));
    out->len = n;
    if (!out->s || !out->align) {
        tok_nstr_free(out);
        return false;
    }
    memcpy(out->s, ns->s + start, n);
    out->s[n] = '\0';
    memcpy(out->align, ns->align + start, n * sizeof(tok_span));
    return true;
}

void tok_nstr_free(tok_nstr *ns)
{
    free(ns->s);
    free(ns->align);
    ns->s = NULL;
    ns->align = NULL;
    ns->len = 0;
}

tok_span tok_nstr_original(const tok_nstr *ns, size_t start, size_t end)
{
    if (ns->len == 0)
        return (tok_span){0, 0};
    if (start >= end) {
        uint32_t p = start < ns->len ? ns->align[start].start : ns->align[ns->len - 1].end;
        return (tok_span){p, p};
    }
    return (tok_span){ns->align[start].start, ns->align[end - 1].end};
}

/* ---- transform ---------------------------------------------------------- */

void tok_xform_begin(tok_xform *x, const tok_nstr *src)
{
    memset(x, 0, sizeof(*x));
    x->src = src;
}

static void xform_emit(tok_xform *x, const char *bytes, size_t n, const tok_span *aligns,
                       tok_span one)
{
    if (x->oom)
        return;
    if (x->out.len + n > x->align_cap) {
        size_t cap = x->align_cap ? x->align_cap : 64;
        while (cap < x->out.len + n)
            cap *= 2;
        tok_span *a = realloc(x->align, cap * sizeof(tok_span));
        if (!a) {
            x->oom = true;
            return;
        }
        x->align = a;
        x->align_cap = cap;
    }
    size_t at = x->out.len;
    if (!tok_buf_append(&x->out, bytes, n)) {
        x->oom = true;
        return;
    }
    for (size_t i = 0; i < n; i++)
        x->align[at + i] = aligns ? aligns[i] : one;
}

static size_t xform_char_len(const tok_xform *x)
{
    size_t len;
    if (x->pos >= x->src->len)
        return 0;
    tok_utf8_decode(x->src->s + x->pos, x->src->len - x->pos, &len);
    return len;
}

void tok_xform_replace(tok_xform *x, uint32_t cp)
{
    const tok_nstr *src = x->src;
    tok_span a = {0, 0};
    if (x->pos < src->len)
        a = src->align[x->pos];
    else if (src->len)
        a = src->align[src->len - 1];
    char tmp[4];
    xform_emit(x, tmp, tok_utf8_encode(cp, tmp), NULL, a);
    x->pos += xform_char_len(x);
}

void tok_xform_insert(tok_xform *x, uint32_t cp)
{
    tok_span a = x->pos ? x->src->align[x->pos - 1] : (tok_span){0, 0};
    char tmp[4];
    xform_emit(x, tmp, tok_utf8_encode(cp, tmp), NULL, a);
}

void tok_xform_skip(tok_xform *x, size_t n_chars)
{
    while (n_chars-- && x->pos < x->src->len)
        x->pos += xform_char_len(x);
}

void tok_xform_copy(tok_xform *x, size_t n_bytes)
{
    if (n_bytes > x->src->len - x->pos)
        n_bytes = x->src->len - x->pos;
    xform_emit(x, x->src->s + x->pos, n_bytes, x->src->align + x->pos, (tok_span){0, 0});
    x->pos += n_bytes;
}

bool tok_xform_end(tok_xform *x, tok_nstr *dst)
{
    if (x->oom || !tok_buf_reserve(&x->out, 0)) {
        tok_buf_free(&x->out);
        free(x->align);
        return false;
    }
    if (!x->align) {
        x->align = malloc(sizeof(tok_span));
        if (!x->align) {
            tok_buf_free(&x->out);
            return false;
        }
    }
    tok_nstr_free(dst);
    dst->len = x->out.len;
    dst->s = tok_buf_finish(&x->out, NULL);
    dst->align = x->align;
    return dst->s != NULL;
}

/* ---- pieces ------------------------------------------------------------- */

bool tok_pieces_push(tok_pieces *p, tok_nstr *ns, int32_t id)
{
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 16;
        tok_piece *v = realloc(p->v, cap * sizeof(*v));
        if (!v) {
            tok_nstr_free(ns);
            return false;
        }
        p->v = v;
        p->cap = cap;
    }
    p->v[p->n].ns = *ns;
    p->v[p->n].id = id;
    p->n++;
    memset(ns, 0, sizeof(*ns));
    return true;
}

void tok_pieces_free(tok_pieces *p)
{
    for (size_t i = 0; i < p->n; i++)
        tok_nstr_free(&p->v[i].ns);
    free(p->v);
    memset(p, 0, sizeof(*p));
}

/* ---- matches and splitting ---------------------------------------------- */

bool tok_matches_push(tok_matches *m, size_t start, size_t end, bool is_match)
{
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 16;
        tok_match *v = realloc(m->v, cap * sizeof(*v));
        if (!v)
            return false;
        m->v = v;
        m->cap = cap;
    }
    m->v[m->n++] = (tok_match){start, end, is_match};
    return true;
}

void tok_matches_free(tok_matches *m)
{
    free(m->v);
    memset(m, 0, sizeof(*m));
}

/* Rewrites the match list in place into the list of (range, remove) splits
 * that `behavior` asks for; is_match then means "remove". */
static void split_plan(tok_matches *m, tok_split_behavior behavior)
{
    size_t w = 0;
    bool prev = false;
    switch (behavior) {
    case TOK_SPLIT_REMOVED:
        return;
    case TOK_SPLIT_ISOLATED:
        for (size_t i = 0; i < m->n; i++)
            m->v[i].is_match = false;
        return;
    case TOK_SPLIT_CONTIGUOUS:
    case TOK_SPLIT_MERGED_WITH_PREVIOUS:
        for (size_t i = 0; i < m->n; i++) {
            tok_match cur = m->v[i];
            bool merge =
                behavior == TOK_SPLIT_CONTIGUOUS ? cur.is_match == prev : (cur.is_match && !prev);
            if (merge && w > 0)
                m->v[w - 1].end = cur.end;
            else
                m->v[w++] = (tok_match){cur.start, cur.end, false};
            prev = cur.is_match;
        }
        m->n = w;
        return;
    case TOK_SPLIT_MERGED_WITH_NEXT:
        /* Walk backwards, folding each match into the piece that follows. */
        w = m->n;
        for (size_t i = m->n; i-- > 0;) {
            tok_match cur = m->v[i];
            if (cur.is_match && !prev && w < m->n)
                m->v[w].start = cur.start;
            else
                m->v[--w] = (tok_match){cur.start, cur.end, false};
            prev = cur.is_match;
        }
        memmove(m->v, m->v + w, (m->n - w) * sizeof(tok_match));
        m->n -= w;
        return;
    }
}

bool tok_split_apply(const tok_nstr *ns, tok_matches *m, tok_split_behavior behavior,
                     tok_pieces *out)
{
    split_plan(m, behavior);
    for (size_t i = 0; i < m->n; i++) {
        if (m->v[i].is_match || m->v[i].end <= m->v[i].start)
            continue;
        tok_nstr piece;
        if (!tok_nstr_slice(ns, m->v[i].start, m->v[i].end, &piece) ||
            !tok_pieces_push(out, &piece, -1))
            return false;
    }
    return true;
}
