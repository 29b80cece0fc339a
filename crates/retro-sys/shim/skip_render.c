/* Frames whose picture nobody looks at, emulated without drawing it.
 *
 * libretro.c's retro_run always asks the core to draw (do_skip = 0); build.rs compiles it
 * with system_frame_gen/scd/sms renamed to the masp_ versions below, which pass the front
 * end's choice on. do_skip = 1 is the core's own frame skip (its gcw0 and psp2 front ends
 * use it): every chip runs as before, only the VDP's line rendering is left out. */
#include <stdbool.h>

#include "libretro.h"

void system_frame_gen(int do_skip);
void system_frame_scd(int do_skip);
void system_frame_sms(int do_skip);

/* Per loaded copy of the core, like every other global of it. */
static bool skip_render;

RETRO_API void masp_retro_set_skip_render(bool skip) {
    skip_render = skip;
}

void masp_system_frame_gen(int do_skip) {
    system_frame_gen(do_skip || skip_render);
}

void masp_system_frame_scd(int do_skip) {
    system_frame_scd(do_skip || skip_render);
}

void masp_system_frame_sms(int do_skip) {
    system_frame_sms(do_skip || skip_render);
}
