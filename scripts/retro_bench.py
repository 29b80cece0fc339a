"""stable-retro's frames per second on Airstriker-Genesis-v0, the Python half of the retro
benchmark (the Rust half: `cargo run --release -p retro-env --example retro_fps`).

stable-retro's RetroEnv steps one emulator frame per call with a random DISCRETE action
held for 4 frames, as the Rust side's frame skip, and resets at game over. It does no frame
processing (no max-pool, grayscale or resize), which the Rust side does: the comparison
favours stable-retro.

  cargo xtask bench retro   (or: target/venv-stable-retro/bin/python scripts/retro_bench.py --frames 80000)
"""

import argparse
import time

import stable_retro as retro

MASK = (1 << 64) - 1


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=80_000)
    args = parser.parse_args()
    env = retro.make("Airstriker-Genesis-v0", state="Level1", use_restricted_actions=retro.Actions.DISCRETE, render_mode=None)
    env.reset()
    n = env.action_space.n
    s = 1
    frames = 0
    start = time.perf_counter()
    while frames < args.frames:
        s = (s * 6364136223846793005 + 1442695040888963407) & MASK
        a = (s >> 33) % n
        for _ in range(4):
            _, _, term, trunc, _ = env.step(a)
            frames += 1
            if term or trunc:
                env.reset()
                break
    secs = time.perf_counter() - start
    print(f"frames={frames} seconds={secs:.3f}")
    print(f"stable_retro_frames_per_s={frames / secs:.0f}")


if __name__ == "__main__":
    main()
