"""HTTP client of the Atelier API (version 1), used by ``atelier submit``/``status``/``styles``/``demo`` and by
the tests.

    from services.client import Client
    client = Client("http://127.0.0.1:8000")
    job = client.submit("cat.jpg", ["starry.jpg"], params={"size": 256, "iterations": 100})
    job = client.wait(job["id"], on_update=lambda job: print(job["progress"]))
    client.download_result(job["id"], "out/cat.png")

    model = client.train_style(["starry.jpg"], train=["a.jpg", "b.jpg"], params={"steps": 2000, "size": 256})
    model = client.wait_style(model["id"], raise_on_failure=True)      # a fast-style model (POST /v1/styles)
    job = client.submit("cat.jpg", params={"style_model": model["id"]})  # no style images: the model is the style

Jobs and style models are plain dicts, exactly the JSON the API returns (``id``, ``status``, ``progress``,
``result`` or ``loss_curve``, ``error``...). A style model is a job of kind ``train_style`` on the service, so it
ends in the same statuses and raises the same exceptions.

Exceptions (all subclasses of ``ClientError``, so ``except ClientError`` catches everything this module raises)::

    ClientError                 base class
    +-- TransportError          the API could not be reached or did not answer in time (connection refused, DNS,
    |                           read timeout); ``cause`` is the underlying ``requests`` exception. Safe to retry.
    +-- ApiError                the API answered with an error body ``{"error": {code, message, field}}`` or a
    |   |                       non-JSON error; ``status`` (HTTP), ``code``, ``message``, ``field``.
    |   +-- NotFoundError       404: unknown job, style model or batch id
    |   +-- NotReadyError       409: the result is asked for before the job succeeded
    +-- JobError                ``wait``/``wait_style(..., raise_on_failure=True)`` saw the job or the training
    |   |                       end without a result; ``job`` is its last state
    |   +-- JobFailed           status ``failed``; ``job["error"]`` says why
    |   +-- JobCanceled         status ``canceled``
    +-- WaitTimeout             ``wait``/``wait_style`` gave up after ``timeout_s``; ``job`` is the last state seen

Arguments that cannot make a valid request whatever the server says (``train`` and ``from_batch`` together) raise
``ValueError`` before anything is sent, as programming errors; everything the server judges is left to it.

Tests inject a ``requests.Session`` (or anything with its ``request`` method) through ``session=``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, BinaryIO

import requests

TERMINAL = ("succeeded", "failed", "canceled")
DEFAULT_TIMEOUT_S = 30.0

# An image argument: a path, raw bytes, or (file name, bytes).
ImageInput = str | os.PathLike[str] | bytes | tuple[str, bytes]
Job = dict[str, Any]


class ClientError(Exception):
    """Base class of every error this client raises."""


class TransportError(ClientError):
    """The API could not be reached or timed out."""

    def __init__(self, message: str, cause: Exception | None = None) -> None:
        super().__init__(message)
        self.cause = cause


class ApiError(ClientError):
    """The API answered with an HTTP error; ``code`` is the API's stable error code."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.field = field


class NotFoundError(ApiError):
    """404: no such job, style model or batch."""


class NotReadyError(ApiError):
    """409: the job has no result (yet)."""


class JobError(ClientError):
    """A waited-for job (or style model training) ended without a result."""

    def __init__(self, job: Job, what: str = "job") -> None:
        error = job.get("error") or {}
        detail = f"{error.get('code')}: {error.get('message')}" if error else job.get("status", "?")
        super().__init__(f"{what} {job.get('id')} {job.get('status')}: {detail}")
        self.job = job


class JobFailed(JobError):
    """The job ended with status ``failed``."""


class JobCanceled(JobError):
    """The job ended with status ``canceled``."""


class WaitTimeout(ClientError):
    """``wait`` ran out of time; ``job`` is the last state seen."""

    def __init__(self, job: Job, timeout_s: float, what: str = "job") -> None:
        super().__init__(f"{what} {job.get('id')} still {job.get('status')} after {timeout_s:g} s")
        self.job = job


class Client:
    """A small synchronous client. ``base_url`` is the API root, e.g. ``http://127.0.0.1:8000``."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        session: requests.Session | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self._session = session or requests.Session()
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}

    # --- jobs ---------------------------------------------------------------------------------------------------

    def submit(
        self,
        content: ImageInput,
        styles: ImageInput | Iterable[ImageInput] | None = None,
        params: Mapping[str, Any] | None = None,
        *,
        webhook: str | None = None,
        webhook_events: Iterable[str] | None = None,
    ) -> Job:
        """``POST /v1/jobs``: upload the content image and one or more style images; returns the queued job.

        With ``params["style_model"]`` (a trained model's id) give no style images: the model is the style. With
        ``webhook`` the service POSTs a signed event there when the job ends (``webhook_events``: which ends)."""
        files: list[tuple[str, tuple[str, bytes | BinaryIO]]] = [("content", _file_part(content, "content"))]
        files += [("style", _file_part(style, f"style{i}")) for i, style in enumerate(_images(styles))]
        data = {"params": json.dumps(dict(params))} if params else {}
        if webhook:
            data["webhook"] = webhook
            if webhook_events:
                data["webhook_events"] = ",".join(webhook_events)
        return self._json("POST", "/v1/jobs", files=files, data=data or None)

    def webhook_secret(self, *, rotate: bool = False) -> dict[str, Any]:
        """``GET /v1/webhooks/secret`` (``{"secret": "whsec_..."}``), or with ``rotate`` a new one
        (``POST /v1/webhooks/secret/rotate``; the old one keeps signing during the grace period)."""
        if rotate:
            return self._json("POST", "/v1/webhooks/secret/rotate")
        return self._json("GET", "/v1/webhooks/secret")

    def webhook_log(self, job_id: str, *, kind: str = "jobs") -> dict[str, Any]:
        """``GET /v1/{kind}/{id}/webhooks``: the webhook and its delivery attempts (``kind``: jobs, styles,
        batches)."""
        return self._json("GET", f"/v1/{kind}/{job_id}/webhooks")

    def get(self, job_id: str) -> Job:
        """``GET /v1/jobs/{id}``."""
        return self._json("GET", f"/v1/jobs/{job_id}")

    def cancel(self, job_id: str) -> Job:
        """``POST /v1/jobs/{id}/cancel``: a queued job never runs; a running one stops at its next progress report."""
        return self._json("POST", f"/v1/jobs/{job_id}/cancel")

    def list_jobs(
        self, status: str | None = None, limit: int = 20, cursor: str | None = None
    ) -> tuple[list[Job], str | None]:
        """``GET /v1/jobs``: one page, newest first; returns ``(jobs, next_cursor)`` (``None`` on the last page)."""
        page = self._json("GET", "/v1/jobs", params=_page_query(status, limit, cursor))
        return page.get("jobs", []), page.get("next_cursor")

    def wait(
        self,
        job_id: str,
        *,
        timeout_s: float | None = None,
        poll_interval_s: float = 0.5,
        on_update: Callable[[Job], None] | None = None,
        raise_on_failure: bool = False,
    ) -> Job:
        """Poll until the job is terminal and return it. ``on_update(job)`` is called after every poll (for progress
        bars). With ``raise_on_failure`` a failed or canceled job raises ``JobFailed``/``JobCanceled``."""
        return _poll(self.get, job_id, "job", timeout_s, poll_interval_s, on_update, raise_on_failure)

    def result_bytes(self, job_id: str) -> bytes:
        """``GET /v1/jobs/{id}/result``: the PNG bytes (redirects to presigned S3 URLs are followed)."""
        response = self._request("GET", f"/v1/jobs/{job_id}/result")
        return response.content

    def download_result(self, job_id: str, path: str | os.PathLike[str]) -> Path:
        """Write the result PNG to ``path`` (parent folders are created); returns the path."""
        data = self.result_bytes(job_id)
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        return target

    # --- style models ---------------------------------------------------------------------------------------------

    def train_style(
        self,
        styles: ImageInput | Iterable[ImageInput],
        train: ImageInput | Iterable[ImageInput] | None = None,
        from_batch: str | None = None,
        params: Mapping[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> Job:
        """``POST /v1/styles``: train a fast-style model for ``styles`` (1 to 8, blended by ``params["style_blend"]``)
        on the ``train`` images, or on the contents of the batch ``from_batch``, or (neither) on the service's
        built-in set. ``params`` are training parameters (``shared.train_params``: ``size``, ``steps``...). Returns
        the queued model; its ``id`` is what ``submit(..., params={"style_model": id})`` takes.
        ``idempotency_key``: a resend with the same key and body returns the first model instead of a second."""
        train_images = list(_images(train))
        if train_images and from_batch is not None:
            raise ValueError("give either train images or from_batch, not both")
        files = [("style", _file_part(style, f"style{i}")) for i, style in enumerate(_images(styles))]
        files += [("train", _file_part(image, f"train{i}")) for i, image in enumerate(train_images)]
        data: dict[str, str] = {}
        if params:
            data["params"] = json.dumps(dict(params))
        if from_batch is not None:
            data["from_batch"] = from_batch
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        return self._json("POST", "/v1/styles", files=files, data=data or None, extra_headers=headers)

    def style(self, model_id: str) -> Job:
        """``GET /v1/styles/{id}``: status, progress (``iteration`` is the step), loss curve, previews, metrics."""
        return self._json("GET", f"/v1/styles/{model_id}")

    def list_styles(
        self, status: str | None = None, limit: int = 20, cursor: str | None = None
    ) -> tuple[list[Job], str | None]:
        """``GET /v1/styles``: one page of the tenant's style models, newest first; ``(models, next_cursor)``."""
        page = self._json("GET", "/v1/styles", params=_page_query(status, limit, cursor))
        return page.get("styles", []), page.get("next_cursor")

    def cancel_style(self, model_id: str) -> Job:
        """``POST /v1/styles/{id}/cancel``: a queued training never runs; a running one stops at its next report."""
        return self._json("POST", f"/v1/styles/{model_id}/cancel")

    def wait_style(
        self,
        model_id: str,
        *,
        timeout_s: float | None = None,
        poll_interval_s: float = 0.5,
        on_update: Callable[[Job], None] | None = None,
        raise_on_failure: bool = False,
    ) -> Job:
        """As ``wait``, for a style model's training: poll ``style(model_id)`` until it is terminal."""
        return _poll(self.style, model_id, "style model", timeout_s, poll_interval_s, on_update, raise_on_failure)

    # --- videos -------------------------------------------------------------------------------------------------

    def submit_video(
        self,
        video: ImageInput,
        styles: ImageInput | Iterable[ImageInput] | None = None,
        params: Mapping[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> Job:
        """``POST /v1/videos``: style the clip ``video`` (a path, bytes or ``(name, bytes)``) with ``styles``
        (``mode`` optimize) or ``params["style_model"]`` (``mode`` fast); ``params`` as ``shared.video_params``."""
        files = [("video", _file_part(video, "video.mp4"))]
        files += [("style", _file_part(style, f"style{i}")) for i, style in enumerate(_images(styles))]
        data = {"params": json.dumps(dict(params))} if params else None
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        return self._json("POST", "/v1/videos", files=files, data=data, extra_headers=headers)

    def video(self, video_id: str) -> Job:
        """``GET /v1/videos/{id}``: status, ``frames_done`` of ``frames``, per-segment state, metrics."""
        return self._json("GET", f"/v1/videos/{video_id}")

    def list_videos(
        self, status: str | None = None, limit: int = 20, cursor: str | None = None
    ) -> tuple[list[Job], str | None]:
        page = self._json("GET", "/v1/videos", params=_page_query(status, limit, cursor))
        return page.get("videos", []), page.get("next_cursor")

    def cancel_video(self, video_id: str) -> Job:
        """``POST /v1/videos/{id}/cancel``: every segment stops; the video ends canceled."""
        return self._json("POST", f"/v1/videos/{video_id}/cancel")

    def wait_video(
        self,
        video_id: str,
        *,
        timeout_s: float | None = None,
        poll_interval_s: float = 0.5,
        on_update: Callable[[Job], None] | None = None,
        raise_on_failure: bool = False,
    ) -> Job:
        """As ``wait``, for a video: poll ``video(video_id)`` until it is terminal."""
        return _poll(self.video, video_id, "video", timeout_s, poll_interval_s, on_update, raise_on_failure)

    def download_video(self, video_id: str, path: str | os.PathLike[str]) -> Path:
        """Write the stylized MP4 to ``path`` (parent folders are created); returns the path."""
        data = self._request("GET", f"/v1/videos/{video_id}/result").content
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        return target

    # --- batches ------------------------------------------------------------------------------------------------

    def create_batch(
        self,
        styles: ImageInput | Iterable[ImageInput],
        params: Mapping[str, Any] | None = None,
        *,
        mode: str | None = None,
        contents: Iterable[tuple[str, bytes]] = (),
        expected_items: int | None = None,
        train_params: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """``POST /v1/batches``: one style set (and blend, in ``params``) for many contents; returns the batch.
        ``mode`` (``optimize | fast | auto``), the first ``contents`` (a fast batch trains on them),
        ``expected_items`` (how many more will come: auto weighs them) and ``train_params`` are optional."""
        files = [("style", _file_part(style, f"style{i}")) for i, style in enumerate(_images(styles))]
        files += [("content", (name, data)) for name, data in contents]
        data: dict[str, str] = {}
        if params:
            data["params"] = json.dumps(dict(params))
        if mode:
            data["mode"] = mode
        if expected_items is not None:
            data["expected_items"] = str(int(expected_items))
        if train_params:
            data["train_params"] = json.dumps(dict(train_params))
        return self._json("POST", "/v1/batches", files=files, data=data or None)

    def add_batch_items(self, batch_id: str, contents: Iterable[tuple[str, bytes]]) -> list[dict[str, Any]]:
        """``POST /v1/batches/{id}/items``: ``(source name, image bytes)`` pairs. Returns ``[{name, job_id,
        created}]``; a name already in the batch returns its existing job (``created`` False): safe to resend."""
        files = [("content", (name, data)) for name, data in contents]
        return self._json("POST", f"/v1/batches/{batch_id}/items", files=files)["items"]

    def get_batch(self, batch_id: str, *, offset: int = 0, limit: int = 100) -> dict[str, Any]:
        """``GET /v1/batches/{id}``: counts, progress, ETA and one page of items."""
        return self._json("GET", f"/v1/batches/{batch_id}", params={"offset": offset, "limit": limit})

    def batch_items(self, batch_id: str, *, page_size: int = 500) -> list[dict[str, Any]]:
        """Every item of the batch (all pages), in the order they were added."""
        items: list[dict[str, Any]] = []
        offset: int | None = 0
        while offset is not None:
            page = self.get_batch(batch_id, offset=offset, limit=page_size)
            items += page["items"]
            offset = page.get("next_offset")
        return items

    def cancel_batch(self, batch_id: str) -> dict[str, Any]:
        """``POST /v1/batches/{id}/cancel``."""
        return self._json("POST", f"/v1/batches/{batch_id}/cancel")

    def download_batch_zip(self, batch_id: str, path: str | os.PathLike[str]) -> Path:
        """``GET /v1/batches/{id}/results.zip`` streamed to ``path``."""
        response = self._request("GET", f"/v1/batches/{batch_id}/results.zip", stream=True)
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("wb") as handle:
            for chunk in response.iter_content(64 * 1024):
                handle.write(chunk)
        return target

    # --- service ------------------------------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """``GET /healthz``."""
        return self._json("GET", "/healthz")

    def ready(self) -> dict[str, Any]:
        """``GET /readyz``; raises ``ApiError`` (503) naming what is down."""
        return self._json("GET", "/readyz")

    # --- plumbing -----------------------------------------------------------------------------------------------

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._request(method, path, **kwargs)
        try:
            return response.json()
        except ValueError as exc:
            raise ApiError(response.status_code, "bad_response", f"{method} {path}: answer is not JSON") from exc

    def _request(self, method: str, path: str, *, extra_headers: Mapping[str, str] | None = None,
                 **kwargs: Any) -> requests.Response:
        url = self.base_url + path
        headers = {**self._headers, **extra_headers} if extra_headers else self._headers
        try:
            response = self._session.request(method, url, headers=headers, timeout=self.timeout_s, **kwargs)
        except requests.RequestException as exc:
            raise TransportError(f"{method} {url}: {exc}", exc) from exc
        if response.status_code >= 400:
            raise _api_error(response)
        return response


def _poll(
    get: Callable[[str], Job],
    object_id: str,
    what: str,
    timeout_s: float | None,
    poll_interval_s: float,
    on_update: Callable[[Job], None] | None,
    raise_on_failure: bool,
) -> Job:
    """``get(object_id)`` until its status is terminal (``wait`` and ``wait_style``)."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        job = get(object_id)
        if on_update is not None:
            on_update(job)
        if job.get("status") in TERMINAL:
            break
        if deadline is not None and time.monotonic() >= deadline:
            raise WaitTimeout(job, timeout_s or 0, what)
        time.sleep(poll_interval_s)
    if raise_on_failure and job["status"] == "failed":
        raise JobFailed(job, what)
    if raise_on_failure and job["status"] == "canceled":
        raise JobCanceled(job, what)
    return job


def _page_query(status: str | None, limit: int, cursor: str | None) -> dict[str, Any]:
    query: dict[str, Any] = {"limit": limit}
    if status:
        query["status"] = status
    if cursor:
        query["cursor"] = cursor
    return query


def _images(images: ImageInput | Iterable[ImageInput] | None) -> list[ImageInput]:
    """One image argument or several, as a list (``None``: none)."""
    if images is None:
        return []
    if isinstance(images, (str, bytes, os.PathLike, tuple)):
        return [images]
    return list(images)


def _api_error(response: requests.Response) -> ApiError:
    code, message, field = "http_error", response.reason or "", None
    try:
        error = response.json().get("error") or {}
        code = error.get("code") or code
        message = error.get("message") or message
        field = error.get("field")
    except (ValueError, AttributeError):
        message = (response.text or message)[:200]
    cls = {404: NotFoundError, 409: NotReadyError}.get(response.status_code, ApiError)
    return cls(response.status_code, code, message, field)


def _file_part(image: ImageInput, default_name: str) -> tuple[str, bytes]:
    if isinstance(image, tuple):
        name, data = image
        return name, data
    if isinstance(image, bytes):
        return default_name, image
    path = Path(image)
    return path.name, path.read_bytes()
