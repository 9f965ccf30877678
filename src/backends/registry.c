/* The backends ogi knows, in order of preference. */
#include <string.h>

#include "backends/backend.h"

static const backend_vtable *const backends[] = {&backend_native, &backend_ort};

const backend_vtable *backend_find(const char *name)
{
    for (size_t i = 0; i < sizeof(backends) / sizeof(backends[0]); i++)
        if (strcmp(backends[i]->name, name) == 0)
            return backends[i];
    return NULL;
}

size_t ogi_backend_count(void)
{
    return sizeof(backends) / sizeof(backends[0]);
}

const char *ogi_backend_name(size_t index)
{
    return index < ogi_backend_count() ? backends[index]->name : NULL;
}

int ogi_backend_available(const char *name)
{
    const backend_vtable *b = name ? backend_find(name) : NULL;
    backend_options o = {0};
    return b != NULL && b->available(&o);
}
