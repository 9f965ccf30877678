/* Per-render memory, string builders and error recording. */
#include "tokenizer/jinja_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JINJA_CHUNK_SIZE ((size_t)64 << 10)
#define JINJA_ALIGN 16

struct jinja_chunk {
    jinja_chunk *next;
    size_t size, used;
    _Alignas(JINJA_ALIGN) unsigned char data[];
};

void jinja_ctx_init(jinja_ctx *ctx)
{
    memset(ctx, 0, sizeof(*ctx));
    ctx->status = OGI_OK;
}

void jinja_ctx_free(jinja_ctx *ctx)
{
    jinja_chunk *c = ctx->chunks;
    while (c != NULL) {
        jinja_chunk *next = c->next;
        free(c);
        c = next;
    }
    ctx->chunks = NULL;
}

static bool jinja_fail_memory(jinja_ctx *ctx, size_t size)
{
    if (ctx->allocated + size > JINJA_MAX_MEMORY || size > JINJA_MAX_MEMORY)
        return jinja_fail(ctx, "template needs more than %zu MiB of memory",
                          JINJA_MAX_MEMORY >> 20);
    jinja_fail(ctx, "out of memory");
    ctx->status = OGI_ERR_OUT_OF_MEMORY;
    return false;
}

void *jinja_alloc(jinja_ctx *ctx, size_t size)
{
    size_t rounded = (size + JINJA_ALIGN - 1) & ~(size_t)(JINJA_ALIGN - 1);
    if (size == 0)
        rounded = JINJA_ALIGN;
    if (rounded < size || rounded > JINJA_MAX_MEMORY) {
        jinja_fail_memory(ctx, SIZE_MAX);
        return NULL;
    }
    jinja_chunk *c = ctx->chunks;
    if (c == NULL || c->size - c->used < rounded) {
        size_t want = rounded > JINJA_CHUNK_SIZE / 4 ? rounded : JINJA_CHUNK_SIZE;
        if (ctx->allocated + want > JINJA_MAX_MEMORY) {
            jinja_fail_memory(ctx, want);
            return NULL;
        }
        jinja_chunk *fresh = malloc(sizeof(jinja_chunk) + want);
        if (fresh == NULL) {
            jinja_fail_memory(ctx, 0);
            return NULL;
        }
        fresh->size = want;
        fresh->used = 0;
        ctx->allocated += want;
        if (want == JINJA_CHUNK_SIZE || c == NULL) {
            fresh->next = c;
            ctx->chunks = fresh;
        } else {
            /* A big block goes behind the current chunk, whose free room stays usable. */
            fresh->next = c->next;
            c->next = fresh;
        }
        c = fresh;
    }
    void *p = c->data + c->used;
    c->used += rounded;
    memset(p, 0, size);
    ctx->last_alloc = p;
    ctx->last_size = rounded;
    return p;
}

void *jinja_alloc_array(jinja_ctx *ctx, size_t n, size_t size)
{
    if (size != 0 && n > SIZE_MAX / size) {
        jinja_fail_memory(ctx, SIZE_MAX);
        return NULL;
    }
    return jinja_alloc(ctx, n * size);
}

char *jinja_strdup(jinja_ctx *ctx, const char *ptr, size_t len)
{
    char *p = jinja_alloc(ctx, len + 1);
    if (p != NULL && len > 0)
        memcpy(p, ptr, len);
    return p;
}

/* Grows the most recent allocation in place when its chunk has room. */
static bool jinja_grow_in_place(jinja_ctx *ctx, void *p, size_t old_size, size_t new_size)
{
    jinja_chunk *c = ctx->chunks;
    if (c == NULL || p != ctx->last_alloc)
        return false;
    size_t rounded_old = (old_size + JINJA_ALIGN - 1) & ~(size_t)(JINJA_ALIGN - 1);
    size_t rounded_new = (new_size + JINJA_ALIGN - 1) & ~(size_t)(JINJA_ALIGN - 1);
    unsigned char *start = p;
    if (start + rounded_old != c->data + c->used || rounded_new < rounded_old)
        return false;
    if (c->size - c->used < rounded_new - rounded_old)
        return false;
    c->used += rounded_new - rounded_old;
    ctx->last_size = rounded_new;
    return true;
}

void jinja_position(const jinja_ctx *ctx, size_t offset, int *line, int *col)
{
    int l = 1, c = 1;
    if (offset > ctx->source_len)
        offset = ctx->source_len;
    for (size_t i = 0; i < offset; i++) {
        unsigned char ch = (unsigned char)ctx->source[i];
        if (ch == '\n') {
            l++;
            c = 1;
        } else if ((ch & 0xC0) != 0x80) {
            c++;
        }
    }
    *line = l;
    *col = c;
}

static void jinja_vfail(jinja_ctx *ctx, int line, int col, const char *fmt, va_list ap)
{
    if (ctx->failed)
        return;
    ctx->failed = true;
    ctx->status = OGI_ERR_INVALID_ARGUMENT;
    ctx->error_line = line;
    ctx->error_col = col;
    vsnprintf(ctx->error, sizeof(ctx->error), fmt, ap);
}

bool jinja_fail(jinja_ctx *ctx, const char *fmt, ...)
{
    int line = ctx->at != NULL ? ctx->at->line : ctx->at_line;
    int col = ctx->at != NULL ? ctx->at->col : ctx->at_col;
    va_list ap;
    va_start(ap, fmt);
    jinja_vfail(ctx, line, col, fmt, ap);
    va_end(ap);
    return false;
}

bool jinja_fail_at(jinja_ctx *ctx, int line, int col, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    jinja_vfail(ctx, line, col, fmt, ap);
    va_end(ap);
    return false;
}

bool jinja_charge(jinja_ctx *ctx, size_t units)
{
    ctx->work += units;
    if (ctx->work > JINJA_MAX_WORK || units > JINJA_MAX_WORK)
        return jinja_fail(ctx, "template does too much work (more than %zu operations)",
                          JINJA_MAX_WORK);
    return true;
}

/* ---- String builders ---- */

static bool jinja_sb_reserve(jinja_ctx *ctx, jinja_sb *sb, size_t extra)
{
    if (extra > JINJA_MAX_OUTPUT || sb->len + extra > JINJA_MAX_OUTPUT)
        return jinja_fail(ctx, "template output exceeds %zu MiB", JINJA_MAX_OUTPUT >> 20);
    if (!jinja_charge(ctx, extra))
        return false;
    size_t need = sb->len + extra + 1; /* room for a terminating NUL */
    if (need <= sb->cap)
        return true;
    size_t cap = sb->cap < 64 ? 64 : sb->cap;
    while (cap < need)
        cap *= 2;
    if (sb->data != NULL && jinja_grow_in_place(ctx, sb->data, sb->cap, cap)) {
        sb->cap = cap;
        return true;
    }
    char *data = jinja_alloc(ctx, cap);
    if (data == NULL)
        return false;
    if (sb->len > 0)
        memcpy(data, sb->data, sb->len);
    sb->data = data;
    sb->cap = cap;
    return true;
}

bool jinja_sb_append(jinja_ctx *ctx, jinja_sb *sb, const char *ptr, size_t len)
{
    if (len == 0)
        return true;
    if (!jinja_sb_reserve(ctx, sb, len))
        return false;
    memcpy(sb->data + sb->len, ptr, len);
    sb->len += len;
    sb->data[sb->len] = '\0';
    return true;
}

bool jinja_sb_puts(jinja_ctx *ctx, jinja_sb *sb, const char *s)
{
    return jinja_sb_append(ctx, sb, s, strlen(s));
}

bool jinja_sb_putc(jinja_ctx *ctx, jinja_sb *sb, char c)
{
    return jinja_sb_append(ctx, sb, &c, 1);
}

bool jinja_sb_printf(jinja_ctx *ctx, jinja_sb *sb, const char *fmt, ...)
{
    char buf[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (n < 0)
        return jinja_fail(ctx, "formatting failed");
    if ((size_t)n < sizeof(buf))
        return jinja_sb_append(ctx, sb, buf, (size_t)n);
    if (!jinja_sb_reserve(ctx, sb, (size_t)n))
        return false;
    va_start(ap, fmt);
    vsnprintf(sb->data + sb->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sb->len += (size_t)n;
    return true;
}

bool jinja_sb_put_codepoint(jinja_ctx *ctx, jinja_sb *sb, int32_t cp)
{
    char buf[4];
    size_t n;
    if (cp < 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        cp = 0xFFFD;
    if (cp < 0x80) {
        buf[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        buf[0] = (char)(0xC0 | (cp >> 6));
        buf[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        buf[0] = (char)(0xE0 | (cp >> 12));
        buf[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        buf[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        buf[0] = (char)(0xF0 | (cp >> 18));
        buf[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        buf[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        buf[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    return jinja_sb_append(ctx, sb, buf, n);
}

jinja_value jinja_sb_value(const jinja_sb *sb)
{
    return jinja_string(sb->data != NULL ? sb->data : "", sb->len);
}
