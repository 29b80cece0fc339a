/* A log callback for the core. Genesis Plus GX calls `log_cb` without a NULL check, so a
 * front end must supply one, and libretro's is C-variadic, which stable Rust cannot define. */
#include "libretro.h"

void masp_retro_log(enum retro_log_level level, const char *fmt, ...) {
    (void)level;
    (void)fmt;
}
