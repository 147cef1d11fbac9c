"""Video for the worker: decoding and encoding (``io``, PyAV) and test clips with known motion (``synthetic``).

The probe the API needs without TensorFlow or OpenCV is ``shared.video``; the flow, mask and temporal loss are
pure computation in ``worker.engine.flow`` and ``worker.engine.temporal``. Nothing here reads the environment or
talks to a queue or storage: bytes and paths in, arrays and bytes out.
"""
