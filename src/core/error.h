/* Error reporting: a status plus a per-thread message (see ogi_last_error). */
#ifndef OGI_CORE_ERROR_H
#define OGI_CORE_ERROR_H

#include "ogi.h"

/* Records a formatted message for this thread and returns status, so that
 * callers can write `return ogi_error(OGI_ERR_IO, "%s: %s", path, why);`. */
ogi_status ogi_error(ogi_status status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prepends "prefix: " to this thread's message, keeping status. Used to add
 * context (file, node) as an error travels up. */
ogi_status ogi_error_prefix(ogi_status status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

void ogi_error_clear(void);

#endif
