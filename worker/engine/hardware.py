"""What the CPU offers, read without any ML framework so that every backend can ask (backend_jax must not import
TensorFlow to learn it)."""

from __future__ import annotations


def cpu_has_amx_bf16() -> bool:
    """True on a CPU with AMX-BF16 tiles: the only CPUs where bfloat16 beat float32 for the backbone (see
    ``backend_tf.bfloat16_is_fast`` for the measurements)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as cpuinfo:
            return "amx_bf16" in cpuinfo.read().split()
    except OSError:  # not Linux, or /proc hidden: assume no AMX, so float32 (never the slow emulated bfloat16)
        return False
