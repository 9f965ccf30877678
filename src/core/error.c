#include "core/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One message per thread, so concurrent sessions do not overwrite each
 * other's reasons. */
static _Thread_local char error_message[1024];

static const char *const status_names[] = {
    "OGI_OK",
    "OGI_ERR_INVALID_ARGUMENT",
    "OGI_ERR_INVALID_MODEL",
    "OGI_ERR_UNSUPPORTED",
    "OGI_ERR_OUT_OF_MEMORY",
    "OGI_ERR_IO",
    "OGI_ERR_RUNTIME",
    "OGI_ERR_NOT_FOUND",
};

const char *ogi_status_name(ogi_status status)
{
    if ((unsigned)status >= sizeof(status_names) / sizeof(status_names[0]))
        return "OGI_ERR_UNKNOWN";
    return status_names[status];
}

const char *ogi_last_error(void)
{
    return error_message;
}

ogi_status ogi_error(ogi_status status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(error_message, sizeof(error_message), fmt, ap);
    va_end(ap);
    return status;
}

ogi_status ogi_error_prefix(ogi_status status, const char *fmt, ...)
{
    char prefix[512];
    char old[sizeof(error_message)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    memcpy(old, error_message, sizeof(old));
    size_t n = strlen(prefix);
    if (n > sizeof(error_message) - 3)
        n = sizeof(error_message) - 3;
    memcpy(error_message, prefix, n);
    memcpy(error_message + n, ": ", 2);
    size_t room = sizeof(error_message) - n - 3;
    size_t m = strnlen(old, room);
    memcpy(error_message + n + 2, old, m);
    error_message[n + 2 + m] = '\0';
    return status;
}

void ogi_error_clear(void)
{
    error_message[0] = '\0';
}

void ogi_free(void *ptr)
{
    free(ptr);
}
