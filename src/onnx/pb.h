/* A minimal protobuf wire-format cursor. Every read is bounds-checked; a
 * failed read sets `bad` and returns 0 so that callers check once per
 * message. */
#ifndef OGI_ONNX_PB_H
#define OGI_ONNX_PB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum { PB_VARINT = 0, PB_FIXED64 = 1, PB_LEN = 2, PB_FIXED32 = 5 };

typedef struct pb_cursor {
    const uint8_t *p;
    const uint8_t *end;
    bool bad;
} pb_cursor;

static inline pb_cursor pb_make(const void *data, size_t size)
{
    pb_cursor c = {(const uint8_t *)data, (const uint8_t *)data + size, false};
    return c;
}

static inline bool pb_more(const pb_cursor *c)
{
    return !c->bad && c->p < c->end;
}

static inline uint64_t pb_varint(pb_cursor *c)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (c->p >= c->end) {
            c->bad = true;
            return 0;
        }
        uint8_t b = *c->p++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return v;
    }
    c->bad = true;
    return 0;
}

/* Reads a key; returns false at the end of the message or on error. */
static inline bool pb_key(pb_cursor *c, uint32_t *field, uint32_t *wire)
{
    if (!pb_more(c))
        return false;
    uint64_t k = pb_varint(c);
    if (c->bad || (k >> 3) == 0 || (k >> 3) > UINT32_MAX) {
        c->bad = true;
        return false;
    }
    *field = (uint32_t)(k >> 3);
    *wire = (uint32_t)(k & 7);
    return true;
}

/* A length-delimited payload as a sub-cursor. */
static inline pb_cursor pb_bytes(pb_cursor *c)
{
    pb_cursor sub = {c->p, c->p, false};
    uint64_t n = pb_varint(c);
    if (c->bad || n > (uint64_t)(c->end - c->p)) {
        c->bad = true;
        sub.bad = true;
        return sub;
    }
    sub.p = c->p;
    sub.end = c->p + n;
    c->p += n;
    return sub;
}

static inline uint32_t pb_fixed32(pb_cursor *c)
{
    if (c->end - c->p < 4) {
        c->bad = true;
        return 0;
    }
    uint32_t v = (uint32_t)c->p[0] | (uint32_t)c->p[1] << 8 | (uint32_t)c->p[2] << 16 |
                 (uint32_t)c->p[3] << 24;
    c->p += 4;
    return v;
}

static inline uint64_t pb_fixed64(pb_cursor *c)
{
    uint64_t lo = pb_fixed32(c);
    uint64_t hi = pb_fixed32(c);
    return lo | hi << 32;
}

static inline void pb_skip(pb_cursor *c, uint32_t wire)
{
    switch (wire) {
    case PB_VARINT:
        pb_varint(c);
        break;
    case PB_FIXED64:
        pb_fixed64(c);
        break;
    case PB_LEN:
        pb_bytes(c);
        break;
    case PB_FIXED32:
        pb_fixed32(c);
        break;
    default:
        c->bad = true;
        break;
    }
}

#endif
