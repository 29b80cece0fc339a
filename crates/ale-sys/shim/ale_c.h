/*
 * ale_c.h: a small C interface to ALE's C++ ALEInterface, for Rust's FFI.
 *
 * Rules every function follows:
 *  - No C++ exception crosses this boundary: a function that can fail
 *    returns an ale_status; on failure a message is kept in a thread-local
 *    string that ale_last_error() returns (valid until the next failing call
 *    on the same thread).
 *  - Results come back through out-parameters; buffers are owned by the
 *    caller. Variable-length results take (buf, cap, *len): at most cap items
 *    are written and *len is the full count, so a caller can retry bigger.
 *  - ALE calls std::exit() on some bad inputs (missing or unknown ROM,
 *    invalid action id, unknown setting read strictly); the shim checks those
 *    inputs first and returns an error instead.
 *  - One handle must not be used from two threads at once; distinct handles
 *    are independent, except for the log level, which is process-wide.
 */
#ifndef ALE_C_H
#define ALE_C_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef int ale_status;
#define ALE_OK 0
/* A C++ exception or other failure inside ALE; see ale_last_error(). */
#define ALE_ERROR 1
/* The call needs a loaded ROM (ale_load_rom) and there is none. */
#define ALE_NO_ROM 2
/* An argument is out of range (action id, mode, RAM index, buffer size, key). */
#define ALE_INVALID_ARGUMENT 3
/* A saved state is malformed or belongs to a different ROM. */
#define ALE_BAD_STATE 4
/* The ROM file's MD5 is not one ALE supports. */
#define ALE_UNSUPPORTED_ROM 5

/* Log levels for ale_set_log_level, as ale::Logger::mode. */
#define ALE_LOG_INFO 0
#define ALE_LOG_WARNING 1
#define ALE_LOG_ERROR 2

/* The number of bytes of Atari 2600 RAM. */
#define ALE_RAM_SIZE 128
/* The largest action id a player-A action can have, plus one. */
#define ALE_NUM_ACTIONS 18

/* Opaque: one ALEInterface. */
typedef struct ale_t ale_t;
/* Opaque: one saved ALEState. */
typedef struct ale_state_t ale_state_t;

/* The message of the last failing call on this thread ("" if none). */
const char* ale_last_error(void);

/* ALE's console logging is process-wide; the shim sets it to
 * ALE_LOG_ERROR before the first handle is created. */
ale_status ale_set_log_level(int level);

ale_status ale_create(ale_t** out);
void ale_destroy(ale_t* ale);

/* Settings. Setting an unknown key is ALE_INVALID_ARGUMENT; so is reading
 * one (ALE itself would silently answer -1, false or ""). Settings take
 * effect at the next ale_load_rom. */
ale_status ale_set_int(ale_t* ale, const char* key, int value);
ale_status ale_set_float(ale_t* ale, const char* key, float value);
ale_status ale_set_bool(ale_t* ale, const char* key, int value);
ale_status ale_set_string(ale_t* ale, const char* key, const char* value);
ale_status ale_get_int(const ale_t* ale, const char* key, int* out);
ale_status ale_get_float(const ale_t* ale, const char* key, float* out);
ale_status ale_get_bool(const ale_t* ale, const char* key, int* out);
/* *out points into ALE's settings storage (not NUL-terminated for the
 * caller's purposes; use *len), valid until the next setter call or
 * ale_load_rom on this handle. */
ale_status ale_get_string(const ale_t* ale, const char* key, const char** out, size_t* len);

/* *supported is 1 when the file's MD5 matches a ROM ALE supports; then the
 * ROM's id (e.g. "space_invaders") is written to id_buf (NUL-terminated,
 * truncated to id_cap - 1 bytes) and *id_len is its full length. */
ale_status ale_is_supported_rom(const char* path, int* supported, char* id_buf, size_t id_cap,
                                size_t* id_len);
/* Loads a ROM whose MD5 ALE supports (else ALE_UNSUPPORTED_ROM) and resets. */
ale_status ale_load_rom(ale_t* ale, const char* path);

/* One agent step: action is a player-A action id in [0, ALE_NUM_ACTIONS). */
ale_status ale_act(ale_t* ale, int action, float paddle_strength, int* reward);
ale_status ale_reset_game(ale_t* ale);
ale_status ale_game_over(const ale_t* ale, int with_truncation, int* out);
ale_status ale_game_truncated(const ale_t* ale, int* out);
ale_status ale_lives(const ale_t* ale, int* out);
ale_status ale_frame_number(const ale_t* ale, int* out);
ale_status ale_episode_frame_number(const ale_t* ale, int* out);

ale_status ale_minimal_action_set(const ale_t* ale, int* buf, size_t cap, size_t* len);
ale_status ale_legal_action_set(const ale_t* ale, int* buf, size_t cap, size_t* len);
ale_status ale_available_modes(const ale_t* ale, int* buf, size_t cap, size_t* len);
ale_status ale_available_difficulties(const ale_t* ale, int* buf, size_t cap, size_t* len);
/* Takes effect at the next ale_reset_game. */
ale_status ale_set_mode(ale_t* ale, int mode);
ale_status ale_set_difficulty(ale_t* ale, int difficulty);

ale_status ale_screen_height(const ale_t* ale, size_t* out);
ale_status ale_screen_width(const ale_t* ale, size_t* out);
/* Row-major screens; len must be exactly height*width (palette, grayscale)
 * or height*width*3 (RGB, interleaved r,g,b). */
ale_status ale_screen_palette(const ale_t* ale, uint8_t* out, size_t len);
ale_status ale_screen_grayscale(const ale_t* ale, uint8_t* out, size_t len);
ale_status ale_screen_rgb(const ale_t* ale, uint8_t* out, size_t len);

/* len must be ALE_RAM_SIZE. */
ale_status ale_get_ram(const ale_t* ale, uint8_t* out, size_t len);
ale_status ale_set_ram(ale_t* ale, size_t index, uint8_t value);

ale_status ale_clone_state(ale_t* ale, int include_rng, ale_state_t** out);
/* Same as ale_clone_state(ale, 1, out). */
ale_status ale_clone_system_state(ale_t* ale, ale_state_t** out);
/* The state must come from the same ROM (same MD5), else ALE_BAD_STATE. */
ale_status ale_restore_state(ale_t* ale, const ale_state_t* state);
void ale_state_free(ale_state_t* state);
/* ALE's own serialisation (ALEState::serialize). Writes min(cap, size) bytes
 * and sets *len to the full size. */
ale_status ale_state_serialize(const ale_state_t* state, uint8_t* buf, size_t cap, size_t* len);
/* Checks the byte layout and the embedded ROM MD5 before building a state;
 * the emulator payload itself is trusted as ALE trusts it. */
ale_status ale_state_deserialize(const uint8_t* buf, size_t len, ale_state_t** out);

#ifdef __cplusplus
}
#endif

#endif /* ALE_C_H */
