"""Task names and queues: the only thing the API and the worker must agree on to talk through Celery.

The API sends tasks by name (``send_task``) so it never imports worker code. A message carries ``(job_id,)`` only;
the worker reads everything else (params, input keys) from the job record.
"""

from __future__ import annotations

STYLIZE_TASK = "atelier.stylize"
TRAIN_STYLE_TASK = "atelier.train_style"
VIDEO_TASK = "atelier.video"
VIDEO_SEGMENT_TASK = "atelier.video_segment"

# Job kind (``shared.jobs.JobKind``) -> the task that runs it. Every kind's task takes ``(job_id,)`` and reads the
# rest from the job record, so the queue adapter and the reconciler treat all kinds alike.
TASK_FOR_KIND: dict[str, str] = {"stylize": STYLIZE_TASK, "train_style": TRAIN_STYLE_TASK, "video": VIDEO_TASK,
                                 "video_segment": VIDEO_SEGMENT_TASK}

# Separate queues instead of Redis-emulated priorities (BRIEF §4): workers consume interactive first.
INTERACTIVE_QUEUE = "interactive"
BULK_QUEUE = "bulk"
QUEUES: tuple[str, ...] = (INTERACTIVE_QUEUE, BULK_QUEUE)
