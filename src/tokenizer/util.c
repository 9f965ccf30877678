/* Buffers, UTF-8, Unicode predicates, hash maps and JSON helpers shared by
 * the tokenizer module. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "tokenizer/tok.h"

/* ---- byte buffer -------------------------------------------------------- */

bool tok_buf_reserve(tok_buf *b, size_t extra)
{
    if (b->len + extra + 1 <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + extra + 1)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p)
        return false;
    b->data = p;
    b->cap = cap;
    return true;
}

bool tok_buf_append(tok_buf *b, const void *data, size_t n)
{
    if (!tok_buf_reserve(b, n))
        return false;
    if (n)
        memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = '\0';
    return true;
}

bool tok_buf_put_cp(tok_buf *b, uint32_t cp)
{
    char tmp[4];
    size_t n = tok_utf8_encode(cp, tmp);
    return tok_buf_append(b, tmp, n);
}

char *tok_buf_finish(tok_buf *b, size_t *len)
{
    if (!tok_buf_reserve(b, 0)) {
        tok_buf_free(b);
        return NULL;
    }
    b->data[b->len] = '\0';
    char *p = b->data;
    if (len)
        *len = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}

void tok_buf_free(tok_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

char *tok_strndup(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (!p)
        return NULL;
    if (n)
        memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

/* ---- UTF-8 -------------------------------------------------------------- */

uint32_t tok_utf8_decode(const char *s, size_t n, size_t *clen)
{
    const unsigned char *u = (const unsigned char *)s;
    if (u[0] < 0x80 || n < 2) {
        *clen = 1;
        return u[0];
    }
    if (u[0] < 0xE0) {
        *clen = 2;
        return ((uint32_t)(u[0] & 0x1F) << 6) | (u[1] & 0x3F);
    }
    if (u[0] < 0xF0 || n < 4) {
        *clen = 3;
        return ((uint32_t)(u[0] & 0x0F) << 12) | ((uint32_t)(u[1] & 0x3F) << 6) | (u[2] & 0x3F);
    }
    *clen = 4;
    return ((uint32_t)(u[0] & 0x07) << 18) | ((uint32_t)(u[1] & 0x3F) << 12) |
           ((uint32_t)(u[2] & 0x3F) << 6) | (u[3] & 0x3F);
}

size_t tok_utf8_valid_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    size_t need;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        need = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 3;
        if (c == 0xE0)
            lo = 0xA0;
        if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 4;
        if (c == 0xF0)
            lo = 0x90;
        if (c == 0xF4)
            hi = 0x8F;
    } else {
        return 0;
    }
    if (n < need || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < need; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return need;
}

/* Length of the maximal prefix of an invalid sequence that could start a
 * valid one (the unit that from_utf8_lossy replaces by one U+FFFD). */
static size_t utf8_invalid_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t need;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF)
        need = 2;
    else if (c >= 0xE0 && c <= 0xEF)
        need = 3, lo = (c == 0xE0) ? 0xA0 : 0x80, hi = (c == 0xED) ? 0x9F : 0xBF;
    else if (c >= 0xF0 && c <= 0xF4)
        need = 4, lo = (c == 0xF0) ? 0x90 : 0x80, hi = (c == 0xF4) ? 0x8F : 0xBF;
    else
        return 1;
    size_t i = 1;
    if (i < n && s[i] >= lo && s[i] <= hi) {
        i++;
        while (i < need && i < n && s[i] >= 0x80 && s[i] <= 0xBF)
            i++;
    }
    return i;
}

bool tok_utf8_append_lossy(tok_buf *out, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, run = 0;
    while (i < n) {
        size_t k = tok_utf8_valid_len(u + i, n - i);
        if (k) {
            i += k;
            continue;
        }
        if (!tok_buf_append(out, s + run, i - run) || !tok_buf_append(out, "\xEF\xBF\xBD", 3))
            return false;
        i += utf8_invalid_len(u + i, n - i);
        run = i;
    }
    return tok_buf_append(out, s + run, n - run);
}

bool tok_utf8_is_valid(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        size_t k = tok_utf8_valid_len(u + i, n - i);
        if (!k)
            return false;
        i += k;
    }
    return true;
}

size_t tok_utf8_encode(uint32_t cp, char out[4])
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

size_t tok_utf8_char_count(const char *s, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += ((unsigned char)s[i] & 0xC0) != 0x80;
    return c;
}

/* ---- Unicode predicates ------------------------------------------------- */

bool tok_is_whitespace(uint32_t cp)
{
    /* The White_Space property, which Rust's char::is_whitespace uses. */
    if (cp < 0x80)
        return cp == ' ' || (cp >= 0x09 && cp <= 0x0D);
    switch (cp) {
    case 0x85:
    case 0xA0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x3000:
        return true;
    default:
        return cp >= 0x2000 && cp <= 0x200A;
    }
}

bool tok_is_numeric(uint32_t cp)
{
    if (cp < 0x80)
        return cp >= '0' && cp <= '9';
    utf8proc_category_t c = utf8proc_category((utf8proc_int32_t)cp);
    return c == UTF8PROC_CATEGORY_ND || c == UTF8PROC_CATEGORY_NL || c == UTF8PROC_CATEGORY_NO;
}

bool tok_is_alphanumeric(uint32_t cp)
{
    if (cp < 0x80)
        return (cp >= '0' && cp <= '9') || ((cp | 0x20) >= 'a' && (cp | 0x20) <= 'z');
    utf8proc_category_t c = utf8proc_category((utf8proc_int32_t)cp);
    return (c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_LO) || c == UTF8PROC_CATEGORY_MC ||
           tok_is_numeric(cp);
}

bool tok_is_punctuation(uint32_t cp)
{
    if (cp < 0x80)
        return (cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) ||
               (cp >= 123 && cp <= 126);
    utf8proc_category_t c = utf8proc_category((utf8proc_int32_t)cp);
    return c >= UTF8PROC_CATEGORY_PC && c <= UTF8PROC_CATEGORY_PO;
}

bool tok_is_mark_nonspacing(uint32_t cp)
{
    return cp >= 0x300 && utf8proc_category((utf8proc_int32_t)cp) == UTF8PROC_CATEGORY_MN;
}

/* ---- hash maps ---------------------------------------------------------- */

uint64_t tok_hash(const void *data, size_t n)
{
    /* FNV-1a over 8-byte words: short keys dominate, and this is cheap. */
    const unsigned char *p = data;
    uint64_t h = 0xcbf29ce484222325ULL ^ n;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0x100000001b3ULL;
        h ^= h >> 29;
        p += 8;
        n -= 8;
    }
    while (n--)
        h = (h ^ *p++) * 0x100000001b3ULL;
    h ^= h >> 32;
    h *= 0xd6e8feb86659fd93ULL;
    h ^= h >> 32;
    return h;
}

bool tok_map_init(tok_map *m, size_t expected)
{
    memset(m, 0, sizeof(*m));
    size_t slots = 16;
    while (slots < expected * 2)
        slots *= 2;
    m->slots = calloc(slots, sizeof(uint32_t));
    m->n_slots = slots;
    return m->slots != NULL;
}

static bool map_grow(tok_map *m)
{
    size_t slots = m->n_slots * 2;
    uint32_t *s = calloc(slots, sizeof(uint32_t));
    if (!s)
        return false;
    for (size_t i = 0; i < m->n; i++) {
        size_t j = m->entries[i].hash & (slots - 1);
        while (s[j])
            j = (j + 1) & (slots - 1);
        s[j] = (uint32_t)(i + 1);
    }
    free(m->slots);
    m->slots = s;
    m->n_slots = slots;
    return true;
}

static long map_lookup(const tok_map *m, const char *key, size_t len, uint64_t h, size_t *slot)
{
    size_t j = h & (m->n_slots - 1);
    while (m->slots[j]) {
        const tok_map_entry *e = &m->entries[m->slots[j] - 1];
        if (e->hash == h && e->key_len == len &&
            memcmp(m->arena.data + e->key_off, key, len) == 0) {
            *slot = j;
            return (long)m->slots[j] - 1;
        }
        j = (j + 1) & (m->n_slots - 1);
    }
    *slot = j;
    return -1;
}

long tok_map_put(tok_map *m, const char *key, size_t len, int32_t value)
{
    if (!m->slots || len > UINT32_MAX)
        return -1;
    uint64_t h = tok_hash(key, len);
    size_t slot;
    long found = map_lookup(m, key, len, h, &slot);
    if (found >= 0) {
        m->entries[found].value = value;
        return found;
    }
    if ((m->n + 1) * 4 > m->n_slots * 3) {
        if (!map_grow(m))
            return -1;
        map_lookup(m, key, len, h, &slot);
    }
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 64;
        tok_map_entry *e = realloc(m->entries, cap * sizeof(*e));
        if (!e)
            return -1;
        m->entries = e;
        m->cap = cap;
    }
    if (m->arena.len + len + 1 > UINT32_MAX)
        return -1;
    uint32_t off = (uint32_t)m->arena.len;
    if (!tok_buf_append(&m->arena, key, len) || !tok_buf_append(&m->arena, "", 1))
        return -1;
    m->entries[m->n] = (tok_map_entry){h, off, (uint32_t)len, value};
    m->slots[slot] = (uint32_t)(m->n + 1);
    return (long)m->n++;
}

long tok_map_find(const tok_map *m, const char *key, size_t len)
{
    if (!m->slots)
        return -1;
    size_t slot;
    return map_lookup(m, key, len, tok_hash(key, len), &slot);
}

const char *tok_map_key(const tok_map *m, size_t entry)
{
    return m->arena.data + m->entries[entry].key_off;
}

void tok_map_free(tok_map *m)
{
    free(m->slots);
    free(m->entries);
    tok_buf_free(&m->arena);
    memset(m, 0, sizeof(*m));
}

static uint64_t pair_key(int32_t a, int32_t b)
{
    return ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
}

static size_t pair_slot(uint64_t key, size_t n_slots)
{
    /* Murmur3's finalizer: both ids must reach the low bits. */
    uint64_t h = key;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return (size_t)h & (n_slots - 1);
}

bool tok_pair_map_init(tok_pair_map *m, size_t expected)
{
    size_t slots = 16;
    while (slots < expected * 2)
        slots *= 2;
    m->slots = malloc(slots * sizeof(*m->slots));
    if (!m->slots)
        return false;
    for (size_t i = 0; i < slots; i++)
        m->slots[i].key = UINT64_MAX;
    m->n_slots = slots;
    m->n = 0;
    return true;
}

bool tok_pair_map_put(tok_pair_map *m, int32_t a, int32_t b, uint32_t rank, int32_t id)
{
    if ((m->n + 1) * 4 > m->n_slots * 3) {
        tok_pair_map bigger;
        if (!tok_pair_map_init(&bigger, m->n_slots))
            return false;
        for (size_t i = 0; i < m->n_slots; i++) {
            tok_pair_entry *e = &m->slots[i];
            if (e->key != UINT64_MAX)
                tok_pair_map_put(&bigger, (int32_t)(e->key >> 32), (int32_t)(uint32_t)e->key,
                                 e->rank, e->id);
        }
        free(m->slots);
        *m = bigger;
    }
    uint64_t key = pair_key(a, b);
    size_t j = pair_slot(key, m->n_slots);
    while (m->slots[j].key != UINT64_MAX && m->slots[j].key != key)
        j = (j + 1) & (m->n_slots - 1);
    if (m->slots[j].key == UINT64_MAX)
        m->n++;
    m->slots[j] = (tok_pair_entry){key, rank, id};
    return true;
}

const tok_pair_entry *tok_pair_map_get(const tok_pair_map *m, int32_t a, int32_t b)
{
    if (!m->slots)
        return NULL;
    uint64_t key = pair_key(a, b);
    size_t j = pair_slot(key, m->n_slots);
    while (m->slots[j].key != UINT64_MAX) {
        if (m->slots[j].key == key)
            return &m->slots[j];
        j = (j + 1) & (m->n_slots - 1);
    }
    return NULL;
}

void tok_pair_map_free(tok_pair_map *m)
{
    free(m->slots);
    memset(m, 0, sizeof(*m));
}

/* ---- GPT-2 byte table --------------------------------------------------- */

static bool byte_is_printable(unsigned b)
{
    return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

uint32_t tok_byte_to_cp(uint8_t b)
{
    /* Printable bytes stand for themselves; the others take 256, 257, ...
     * in byte order. */
    if (byte_is_printable(b))
        return b;
    uint32_t n = 0;
    for (unsigned i = 0; i < b; i++)
        n += !byte_is_printable(i);
    return 256 + n;
}

static int cp_table[324];
static pthread_once_t cp_table_once = PTHREAD_ONCE_INIT;

static void cp_table_build(void)
{
    for (int i = 0; i < 324; i++)
        cp_table[i] = -1;
    for (unsigned b = 0; b < 256; b++)
        cp_table[tok_byte_to_cp((uint8_t)b)] = (int)b;
}

int tok_cp_to_byte(uint32_t cp)
{
    pthread_once(&cp_table_once, cp_table_build);
    return cp < 324 ? cp_table[cp] : -1;
}

/* ---- JSON helpers ------------------------------------------------------- */

ogi_status tok_json_string(const json_t *obj, const char *key, const char *where, bool required,
                           const char **out)
{
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v || json_is_null(v)) {
        if (required)
            return ogi_error(OGI_ERR_INVALID_MODEL, "tokenizer.json: %s: missing '%s'", where, key);
        return OGI_OK;
    }
    if (!json_is_string(v))
        return ogi_error(OGI_ERR_INVALID_MODEL, "tokenizer.json: %s: '%s' must be a string", where,
                         key);
    *out = json_string_value(v);
    return OGI_OK;
}

bool tok_json_bool(const json_t *obj, const char *key, bool dflt)
{
    json_t *v = json_object_get(obj, key);
    if (!v || !json_is_boolean(v))
        return dflt;
    return json_is_true(v);
}
