// ale_c.cpp: the extern "C" shim over ale::ALEInterface declared in ale_c.h.
//
// Every entry point is noexcept and funnels through `guarded`, so a C++
// exception (ALE throws std::runtime_error, and its Deserializer throws bare
// `const char*`) becomes a status code plus a thread-local message instead of
// unwinding into Rust, which would be undefined behaviour.

#include "ale_c.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <system_error>
#include <vector>

#include "ale/ale_interface.hpp"
#include "ale/common/Log.hpp"
#include "ale/emucore/Console.hxx"
#include "ale/emucore/MD5.hxx"
#include "ale/emucore/Props.hxx"
#include "ale/emucore/Settings.hxx"
#include "ale/games/RomSettings.hpp"
#include "ale/games/Roms.hpp"

namespace fs = std::filesystem;

struct ale_t {
  ale::ALEInterface iface;
};

struct ale_state_t {
  ale::ALEState state;
  // The cartridge MD5 the state was saved from. ALE's restore ignores a
  // mismatch and then reads the rest of the bytes as if they matched, which
  // silently corrupts the emulator; the shim refuses instead.
  std::string md5;
};

namespace {

thread_local std::string g_last_error;

ale_status fail(ale_status code, const char* msg) noexcept {
  try {
    g_last_error = msg;
    // ALE's messages often end in "\n"; Rust prints its own line ends.
    while (!g_last_error.empty() &&
           (g_last_error.back() == '\n' || g_last_error.back() == ' ')) {
      g_last_error.pop_back();
    }
  } catch (...) {
    // Out of memory while recording the message: the code still tells.
  }
  return code;
}

ale_status fail(ale_status code, const std::string& msg) noexcept {
  return fail(code, msg.c_str());
}

// Runs f, turning any C++ exception into `on_exception` and a message.
template <class F>
ale_status guarded(ale_status on_exception, F&& f) noexcept {
  try {
    return f();
  } catch (const std::exception& e) {
    return fail(on_exception, e.what());
  } catch (const char* msg) {
    return fail(on_exception, msg);
  } catch (...) {
    return fail(on_exception, "unknown C++ exception inside ALE");
  }
}

template <class F>
ale_status guarded(F&& f) noexcept {
  return guarded(ALE_ERROR, std::forward<F>(f));
}

// ALE's Logger prints at Info level by default (a banner per ALEInterface,
// a line per ROM load), which floods test and training output. Quiet it once
// per process, before the first handle or an explicit level.
void ensure_quiet_default() {
  static std::once_flag once;
  std::call_once(once, [] { ale::Logger::setMode(ale::Logger::Error); });
}

// Settings hides whether a key exists (an unknown key reads as -1, false or
// ""), but keeps the lookups protected. Naming them through a derived class
// yields member pointers usable on any Settings object.
struct SettingsAccess : ale::stella::Settings {
  static bool has(const ale::stella::Settings& s, const std::string& key) {
    auto internal = &SettingsAccess::getInternalPos;
    auto external = &SettingsAccess::getExternalPos;
    return (s.*internal)(key) != -1 || (s.*external)(key) != -1;
  }
};

ale_status check_key(const ale_t* ale, const char* key) {
  if (key == nullptr) return fail(ALE_INVALID_ARGUMENT, "setting key is null");
  if (!SettingsAccess::has(*ale->iface.theSettings, key)) {
    return fail(ALE_INVALID_ARGUMENT, std::string("unknown setting key '") + key + "'");
  }
  return ALE_OK;
}

bool has_rom(const ale_t* ale) { return ale->iface.environment != nullptr; }

ale_status no_rom() { return fail(ALE_NO_ROM, "no ROM loaded: call load_rom first"); }

std::string current_md5(const ale_t* ale) {
  return ale->iface.theOSystem->console().properties().get(ale::stella::Cartridge_MD5);
}

// Largest file treated as a possible ROM; the biggest 2600 bank-switched
// carts are tens of KiB, so anything beyond this is not one and is not read.
constexpr std::uintmax_t kMaxRomBytes = 1u << 20;

struct RomCheck {
  bool supported = false;
  std::string id;
  std::string md5;
};

// ALEInterface::isSupportedROM leaks the RomSettings it builds on every call;
// this does the same check and frees it.
ale_status check_rom(const char* path, RomCheck& out) {
  if (path == nullptr) return fail(ALE_INVALID_ARGUMENT, "ROM path is null");
  std::error_code ec;
  const fs::path rom(path);
  if (!fs::is_regular_file(rom, ec)) {
    return fail(ALE_INVALID_ARGUMENT, std::string("ROM file not found: ") + path);
  }
  const std::uintmax_t size = fs::file_size(rom, ec);
  if (ec) return fail(ALE_ERROR, std::string("cannot read ROM file ") + path + ": " + ec.message());
  if (size > kMaxRomBytes) {
    out.supported = false;
    return ALE_OK;
  }
  std::ifstream file(rom, std::ios::binary);
  if (!file.good()) return fail(ALE_ERROR, std::string("cannot open ROM file ") + path);
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(file)),
                             std::istreambuf_iterator<char>());
  out.md5 = ale::stella::MD5(bytes.data(), static_cast<uint32_t>(bytes.size()));
  std::unique_ptr<ale::RomSettings> wrapper(ale::buildRomRLWrapper(rom, out.md5));
  // buildRomRLWrapper also matches on the file name alone; only an MD5 match
  // is a ROM ALE was written against.
  out.supported = wrapper != nullptr && out.md5 == wrapper->md5();
  if (out.supported) out.id = wrapper->rom();
  return ALE_OK;
}

template <class T>
ale_status write_list(const std::vector<T>& items, int* buf, size_t cap, size_t* len) {
  if (len == nullptr || (buf == nullptr && cap > 0)) {
    return fail(ALE_INVALID_ARGUMENT, "null output buffer");
  }
  const size_t n = std::min(cap, items.size());
  for (size_t i = 0; i < n; ++i) buf[i] = static_cast<int>(items[i]);
  *len = items.size();
  return ALE_OK;
}

ale_status check_screen_len(const ale_t* ale, size_t len, size_t channels, const char* op) {
  const ale::ALEScreen& screen = ale->iface.environment->getScreen();
  const size_t want = screen.height() * screen.width() * channels;
  if (len != want) {
    std::ostringstream msg;
    msg << op << ": output buffer has " << len << " bytes, expected " << screen.height() << " x "
        << screen.width();
    if (channels > 1) msg << " x " << channels;
    msg << " = " << want;
    return fail(ALE_INVALID_ARGUMENT, msg.str());
  }
  return ALE_OK;
}

template <class T>
ale_status not_available(const char* what, int value, const std::vector<T>& available) {
  std::ostringstream msg;
  msg << what << " " << value << " is not available for this ROM (available:";
  for (const T& v : available) msg << " " << v;
  msg << ")";
  return fail(ALE_INVALID_ARGUMENT, msg.str());
}

// Little-endian int as ALE's Serializer writes it.
int32_t read_i32(const uint8_t* p) {
  return static_cast<int32_t>(static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) |
                              (static_cast<uint32_t>(p[2]) << 16) |
                              (static_cast<uint32_t>(p[3]) << 24));
}

}  // namespace

extern "C" {

const char* ale_last_error(void) { return g_last_error.c_str(); }

ale_status ale_set_log_level(int level) {
  return guarded([&] {
    if (level < ALE_LOG_INFO || level > ALE_LOG_ERROR) {
      return fail(ALE_INVALID_ARGUMENT, "log level must be 0 (info), 1 (warning) or 2 (error)");
    }
    ensure_quiet_default();
    ale::Logger::setMode(static_cast<ale::Logger::mode>(level));
    return ALE_OK;
  });
}

ale_status ale_create(ale_t** out) {
  return guarded([&] {
    if (out == nullptr) return fail(ALE_INVALID_ARGUMENT, "null output pointer");
    ensure_quiet_default();
    *out = new ale_t();
    return ALE_OK;
  });
}

void ale_destroy(ale_t* ale) {
  // Destructors in ALE do not throw; a noexcept boundary would terminate if
  // one ever did, which is still better than unwinding into Rust.
  delete ale;
}

ale_status ale_set_int(ale_t* ale, const char* key, int value) {
  return guarded([&] {
    if (key == nullptr) return fail(ALE_INVALID_ARGUMENT, "setting key is null");
    ale->iface.setInt(key, value);
    return ALE_OK;
  });
}

ale_status ale_set_float(ale_t* ale, const char* key, float value) {
  return guarded([&] {
    if (key == nullptr) return fail(ALE_INVALID_ARGUMENT, "setting key is null");
    ale->iface.setFloat(key, value);
    return ALE_OK;
  });
}

ale_status ale_set_bool(ale_t* ale, const char* key, int value) {
  return guarded([&] {
    if (key == nullptr) return fail(ALE_INVALID_ARGUMENT, "setting key is null");
    ale->iface.setBool(key, value != 0);
    return ALE_OK;
  });
}

ale_status ale_set_string(ale_t* ale, const char* key, const char* value) {
  return guarded([&] {
    if (key == nullptr || value == nullptr) {
      return fail(ALE_INVALID_ARGUMENT, "setting key or value is null");
    }
    ale->iface.setString(key, value);
    return ALE_OK;
  });
}

ale_status ale_get_int(const ale_t* ale, const char* key, int* out) {
  return guarded([&] {
    if (ale_status s = check_key(ale, key); s != ALE_OK) return s;
    *out = ale->iface.getInt(key);
    return ALE_OK;
  });
}

ale_status ale_get_float(const ale_t* ale, const char* key, float* out) {
  return guarded([&] {
    if (ale_status s = check_key(ale, key); s != ALE_OK) return s;
    *out = ale->iface.getFloat(key);
    return ALE_OK;
  });
}

ale_status ale_get_bool(const ale_t* ale, const char* key, int* out) {
  return guarded([&] {
    if (ale_status s = check_key(ale, key); s != ALE_OK) return s;
    *out = ale->iface.getBool(key) ? 1 : 0;
    return ALE_OK;
  });
}

ale_status ale_get_string(const ale_t* ale, const char* key, const char** out, size_t* len) {
  return guarded([&] {
    if (ale_status s = check_key(ale, key); s != ALE_OK) return s;
    const std::string& value = ale->iface.getStringInplace(key);
    *out = value.data();
    *len = value.size();
    return ALE_OK;
  });
}

ale_status ale_is_supported_rom(const char* path, int* supported, char* id_buf, size_t id_cap,
                                size_t* id_len) {
  return guarded([&] {
    RomCheck check;
    if (ale_status s = check_rom(path, check); s != ALE_OK) return s;
    *supported = check.supported ? 1 : 0;
    *id_len = check.id.size();
    if (id_buf != nullptr && id_cap > 0) {
      const size_t n = std::min(id_cap - 1, check.id.size());
      std::memcpy(id_buf, check.id.data(), n);
      id_buf[n] = '\0';
    }
    return ALE_OK;
  });
}

ale_status ale_load_rom(ale_t* ale, const char* path) {
  return guarded([&] {
    // loadROM calls std::exit on a missing file or a ROM it cannot wrap, so
    // those cases are refused here first.
    RomCheck check;
    if (ale_status s = check_rom(path, check); s != ALE_OK) return s;
    if (!check.supported) {
      return fail(ALE_UNSUPPORTED_ROM, std::string("ROM ") + path + " has MD5 " + check.md5 +
                                           ", which this ALE version does not support");
    }
    ale->iface.loadROM(path);
    return ALE_OK;
  });
}

ale_status ale_act(ale_t* ale, int action, float paddle_strength, int* reward) {
  return guarded([&] {
    if (!has_rom(ale)) return no_rom();
    // StellaEnvironment calls std::exit on an action id it does not know.
    if (action < 0 || action >= ALE_NUM_ACTIONS) {
      return fail(ALE_INVALID_ARGUMENT, "action id must be in 0..18");
    }
    *reward = ale->iface.act(static_cast<ale::Action>(action), paddle_strength);
    return ALE_OK;
  });
}

ale_status ale_reset_game(ale_t* ale) {
  return guarded([&] {
    if (!has_rom(ale)) return no_rom();
    ale->iface.reset_game();
    return ALE_OK;
  });
}

ale_status ale_game_over(const ale_t* ale, int with_truncation, int* out) {
  return guarded([&] {
    if (!has_rom(ale)) return no_rom();
    *out = ale->iface.game_over(with_truncation != 0) ? 1 : 0;
    return ALE_OK;
  });
}

ale_status ale_game_truncated(const ale_t* ale, int* out) {
  return guarded([&] {
    if (!has_rom(ale)) return no_rom();
    *out = ale->iface.game_truncated() ? 1 : 0;
    return ALE_OK;
  });
}

ale_status ale_lives(const ale_t* ale, int* out) {
  return guarded([&] {
    if (!has_rom(ale)) return no_rom();
    // ALEInterface::lives is not declared const but only reads.
    *out = const_cast<ale_t*>(ale)->iface.lives();
    return ALE_OK;
  });
}

ale_status ale_frame_number(const ale_t* ale, int* out) {
  return guarded([&] {
    if (!has_rom(ale)) return no_rom();
    *out = ale->iface.getFrameNumber();
    return ALE_OK;
  });
}

ale_status ale_episode_frame_number(const ale_t* ale, int* out) {
  return guarded([&] {
    if (!has_rom(ale)) return no_rom();
    *out = ale->iface.getEpisodeFrameNumber();
    return ALE_OK;
  });
}

ale_status ale_minimal_action_set(const ale_t* ale, int* buf, size_t cap, size_t* len) {
  return guarded([&] {
    if (!has_rom(ale)) return no_rom();
    return write_list(ale->iface.getMinimalActionSet(), buf, cap, len);
  });
}

ale_status ale_legal_action_set(const ale_t* ale, int* buf, size_t cap, size_t* len) {
  return guarded([&] {
    if (!has_rom(ale)) return no_rom();
    return write_list(ale->iface.getLegalActionSet(), buf, cap, len);
  });
}

ale_status ale_available_modes(const ale_t* ale, int* buf, size_t cap, size_t* len) {
  return guarded([&] {
    if (!has_rom(ale)) return no_rom();
    return write_list(ale->iface.getAvailableModes(), buf, cap, len);
  });
}

ale_status ale_available_difficulties(const ale_t* ale, int* buf, size_t cap, size_t* len) {
  return guarded([&] {
    if (!has_rom(ale)) return no_rom();
    return write_list(ale->iface.getAvailableDifficulties(), buf, cap, len);
  });
}

ale_status ale_set_mode(ale_t* ale, int mode) {
  return guarded([&] {
    if (!has_rom(ale)) return no_rom();
    const ale::ModeVect available = ale->iface.getAvailableModes();
    if (mode < 0 || std::find(available.begin(), available.end(),
                              static_cast<ale::game_mode_t>(mode)) == available.end()) {
      return not_available("mode", mode, available);
    }
    ale->iface.setMode(static_cast<ale::game_mode_t>(mode));
    return ALE_OK;
  });
}

ale_status ale_set_difficulty(ale_t* ale, int difficulty) {
  return guarded([&] {
    if (!has_rom(ale)) return no_rom();
    const ale::DifficultyVect available = ale->iface.getAvailableDifficulties();
    if (difficulty < 0 ||
        std::find(available.begin(), available.end(),
                  static_cast<ale::difficulty_t>(difficulty)) == available.end()) {
      return not_available("difficulty", difficulty, available);
    }
    ale->iface.setDifficulty(static_cast<ale::difficulty_t>(difficulty));
    return ALE_OK;
  });
}

ale_status ale_screen_height(const ale_t* ale, size_t* out) {
  return guarded([&] {
    if (!has_rom(ale)) return no_rom();
    *out = ale->iface.environment->getScreen().height();
    return ALE_OK;
  });
}

ale_status ale_screen_width(const ale_t* ale, size_t* out) {
  return guarded([&] {
    if (!has_rom(ale)) return no_rom();
    *out = ale->iface.environment->getScreen().width();
    return ALE_OK;
  });
}

ale_status ale_screen_palette(const ale_t* ale, uint8_t* out, size_t len) {
  return guarded([&] {
    if (!has_rom(ale)) return no_rom();
    if (ale_status s = check_screen_len(ale, len, 1, "screen_palette"); s != ALE_OK) return s;
    std::memcpy(out, ale->iface.environment->getScreen().getArray(), len);
    return ALE_OK;
  });
}

ale_status ale_screen_grayscale(const ale_t* ale, uint8_t* out, size_t len) {
  return guarded([&] {
    if (!has_rom(ale)) return no_rom();
    if (ale_status s = check_screen_len(ale, len, 1, "screen_grayscale"); s != ALE_OK) return s;
    ale->iface.theOSystem->colourPalette().applyPaletteGrayscale(
        out, ale->iface.environment->getScreen().getArray(), len);
    return ALE_OK;
  });
}

ale_status ale_screen_rgb(const ale_t* ale, uint8_t* out, size_t len) {
  return guarded([&] {
    if (!has_rom(ale)) return no_rom();
    if (ale_status s = check_screen_len(ale, len, 3, "screen_rgb"); s != ALE_OK) return s;
    ale->iface.theOSystem->colourPalette().applyPaletteRGB(
        out, ale->iface.environment->getScreen().getArray(), len / 3);
    return ALE_OK;
  });
}

ale_status ale_get_ram(const ale_t* ale, uint8_t* out, size_t len) {
  return guarded([&] {
    if (!has_rom(ale)) return no_rom();
    const ale::ALERAM& ram = ale->iface.getRAM();
    if (len != ram.size()) {
      return fail(ALE_INVALID_ARGUMENT, "RAM output buffer must be 128 bytes");
    }
    std::memcpy(out, ram.array(), len);
    return ALE_OK;
  });
}

ale_status ale_set_ram(ale_t* ale, size_t index, uint8_t value) {
  return guarded([&] {
    if (!has_rom(ale)) return no_rom();
    if (index >= ALE_RAM_SIZE) {
      return fail(ALE_INVALID_ARGUMENT,
                  "RAM index " + std::to_string(index) + " is out of range 0..128");
    }
    ale->iface.setRAM(index, value);
    return ALE_OK;
  });
}

ale_status ale_clone_state(ale_t* ale, int include_rng, ale_state_t** out) {
  return guarded([&] {
    if (!has_rom(ale)) return no_rom();
    *out = new ale_state_t{ale->iface.cloneState(include_rng != 0), current_md5(ale)};
    return ALE_OK;
  });
}

ale_status ale_clone_system_state(ale_t* ale, ale_state_t** out) {
  return ale_clone_state(ale, 1, out);
}

ale_status ale_restore_state(ale_t* ale, const ale_state_t* state) {
  return guarded(ALE_BAD_STATE, [&] {
    if (!has_rom(ale)) return no_rom();
    if (state == nullptr) return fail(ALE_INVALID_ARGUMENT, "state is null");
    const std::string md5 = current_md5(ale);
    if (state->md5 != md5) {
      return fail(ALE_BAD_STATE, "state was saved from a ROM with MD5 " + state->md5 +
                                     ", but the loaded ROM has MD5 " + md5);
    }
    ale->iface.restoreState(state->state);
    return ALE_OK;
  });
}

void ale_state_free(ale_state_t* state) { delete state; }

ale_status ale_state_serialize(const ale_state_t* state, uint8_t* buf, size_t cap, size_t* len) {
  return guarded([&] {
    // ALEState::serialize only reads, but is not declared const.
    const std::string bytes = const_cast<ale_state_t*>(state)->state.serialize();
    if (buf != nullptr) std::memcpy(buf, bytes.data(), std::min(cap, bytes.size()));
    *len = bytes.size();
    return ALE_OK;
  });
}

ale_status ale_state_deserialize(const uint8_t* buf, size_t len, ale_state_t** out) {
  return guarded(ALE_BAD_STATE, [&] {
    // Layout (ALEState::serialize): 6 x i32 (paddles, frame numbers, mode,
    // difficulty), a length-prefixed emulator payload, 2 x i32 (paddle
    // limits). The payload opens with the length-prefixed cartridge MD5.
    // ALE's own reader trusts every length, so a short or corrupt buffer
    // would make it allocate or read wildly; check the frame first.
    constexpr size_t kHead = 6 * 4, kTail = 2 * 4;
    if (buf == nullptr || len < kHead + 4 + kTail) {
      return fail(ALE_BAD_STATE, "serialized state is too short");
    }
    const int32_t payload_len = read_i32(buf + kHead);
    if (payload_len < 4 || len != kHead + 4 + static_cast<size_t>(payload_len) + kTail) {
      return fail(ALE_BAD_STATE, "serialized state has an inconsistent length");
    }
    const uint8_t* payload = buf + kHead + 4;
    const int32_t md5_len = read_i32(payload);
    if (md5_len < 0 || static_cast<size_t>(md5_len) > static_cast<size_t>(payload_len) - 4) {
      return fail(ALE_BAD_STATE, "serialized state has an inconsistent ROM checksum field");
    }
    std::string md5(reinterpret_cast<const char*>(payload + 4), static_cast<size_t>(md5_len));
    ale::ALEState state(std::string(reinterpret_cast<const char*>(buf), len));
    *out = new ale_state_t{std::move(state), std::move(md5)};
    return ALE_OK;
  });
}

}  // extern "C"
