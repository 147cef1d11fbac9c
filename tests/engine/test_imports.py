"""The engine is pure computation: importing it pulls in no queue, storage or web library."""

from __future__ import annotations

import subprocess
import sys

import pytest

FORBIDDEN = ("redis", "boto3", "botocore", "celery", "kombu", "flask", "werkzeug")


@pytest.mark.slow  # imports TensorFlow in a fresh process
def test_engine_imports_no_service_libraries():
    code = (
        "import sys, worker.engine, worker.engine.backend_tf, worker.engine.backbones;"
        f"print(','.join(m for m in {FORBIDDEN!r} if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip().splitlines()[-1:] in ([], [""]), f"engine imported {done.stdout.strip()}"


def test_engine_sources_name_no_service_library():
    from pathlib import Path

    import worker.engine

    for source in Path(worker.engine.__file__).parent.glob("*.py"):
        text = source.read_text()
        for name in FORBIDDEN:
            assert f"import {name}" not in text and f"from {name}" not in text, f"{source.name} imports {name}"


def test_only_backend_tf_imports_tensorflow():
    """On Keras' JAX backend the engine must load no TensorFlow (a GPU machine may have JAX only), so no engine or
    shared module but backend_tf may import it; test_backend_jax.py checks the running process too."""
    from pathlib import Path

    import shared
    import worker.engine

    sources = [*Path(worker.engine.__file__).parent.glob("*.py"), *Path(shared.__file__).parent.glob("*.py")]
    for source in sources:
        if source.name == "backend_tf.py":
            continue
        text = source.read_text()
        assert "import tensorflow" not in text and "from tensorflow" not in text, f"{source.name} imports tensorflow"


def test_engine_reads_no_environment():
    """Where weights are, and the test-only random-weights switch, arrive as arguments (``WeightSource``): the
    engine reads no environment variable (worker/weights_config.py does, for the worker)."""
    from pathlib import Path

    import worker.engine

    for source in Path(worker.engine.__file__).parent.glob("*.py"):
        code = "\n".join(line for line in source.read_text().splitlines() if not line.lstrip().startswith("#"))
        for needle in ("os.environ", "getenv(", "environ.get("):
            assert needle not in code, f"{source.name} reads the environment ({needle})"


def test_shared_tables_load_no_numpy_or_tensorflow():
    """The API imports shared/backbones.py, shared/geometry.py and shared/weights.py: pure Python."""
    code = (
        "import sys, shared.backbones, shared.geometry, shared.weights, services.capabilities, worker.weights_config;"
        "print(','.join(m for m in ('numpy', 'tensorflow', 'keras', 'jax') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "", f"imported {done.stdout.strip()}"
