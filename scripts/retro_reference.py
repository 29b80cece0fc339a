"""Raw screens of stable-retro's own env on a recorded action list, for retro-env's frame
equality test (crates/retro-env/tests/data/airstriker_stable_retro.txt).

Plays Airstriker-Genesis-v0 from its Level1 state with stable-retro's DISCRETE actions, one
emulator frame per step, and prints per step: the action, the FNV-1a 64 hash of the raw RGB
screen (height, width, 3), and the reward. The actions come from the same 64-bit LCG as the
Rust test (Knuth's MMIX constants, seed 5), so the file needs no action list of its own.

Run in a virtualenv with the stable-retro 1.0.1 wheel:
  python3 -m venv target/venv-stable-retro && target/venv-stable-retro/bin/pip install stable-retro==1.0.1
  target/venv-stable-retro/bin/python scripts/retro_reference.py > crates/retro-env/tests/data/airstriker_stable_retro.txt
"""

import sys

import stable_retro as retro

STEPS = 600
MASK = (1 << 64) - 1


def fnv1a(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & MASK
    return h


def actions(n, num_actions, seed):
    s = seed
    for _ in range(n):
        s = (s * 6364136223846793005 + 1442695040888963407) & MASK
        yield (s >> 33) % num_actions


def main():
    env = retro.make("Airstriker-Genesis-v0", state="Level1", use_restricted_actions=retro.Actions.DISCRETE, render_mode=None)
    obs, _ = env.reset()
    print("# stable-retro 1.0.1 wheel, Airstriker-Genesis-v0 Level1, DISCRETE, 1 frame a step (scripts/retro_reference.py)")
    print(f"# screen {obs.shape}; columns: step action fnv1a64(raw RGB) reward")
    print(f"reset - {fnv1a(obs.tobytes()):016x} 0")
    for i, a in enumerate(actions(STEPS, env.action_space.n, 5)):
        obs, rew, term, trunc, _ = env.step(a)
        print(f"{i} {a} {fnv1a(obs.tobytes()):016x} {rew:g}")
        if term or trunc:
            break
    env.close()


if __name__ == "__main__":
    sys.exit(main())
