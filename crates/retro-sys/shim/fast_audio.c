/* Sound that nobody hears, mixed the cheap way.
 *
 * The core resamples its FM and PSG output into the libretro sample stream by band-limited
 * synthesis (config.hq_fm and hq_psg, on by default) or by linear interpolation. The choice
 * changes only the samples handed to the audio callback, which the front end discards: the
 * chips run the same, and the resampling buffers are in no saved state. */
#include "shared.h"
#include "libretro.h"

/* After retro_load_game, which sets the defaults. */
RETRO_API void masp_retro_set_fast_audio(void) {
    config.hq_fm = 0;
    config.hq_psg = 0;
}
