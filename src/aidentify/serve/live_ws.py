"""``/ws/live``: the browser's own camera, labelled frame by frame over a WebSocket.

The page sends one camera frame (a JPEG, as binary) and waits for its answer
before it sends the next, so frames flow at the rate the server keeps up with
and none queue up. Each connection has its own live pipeline: its own tracker
and smoothing (labels steady across frames, track ids per face), borrowing
the server's detectors and classifiers. Labelling runs in a worker thread so
the event loop keeps answering other clients. A bad frame gets an
``{"error": ...}`` answer and the connection stays open.

Protocol: connect to ``/ws/live?model=NAME`` (optional); send binary image
frames; each answer is the JSON of ``/api/predict`` plus ``"index"`` (the
frame's number on this connection). An unknown model closes the connection
with code 1008 after one ``{"error": ...}`` message.
"""

from __future__ import annotations

import anyio
from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from aidentify.serve.errors import ApiError
from aidentify.serve.service import Service, frame_answer
from aidentify.serve.uploads import decode_image

router = APIRouter()


@router.websocket("/ws/live")
async def live_socket(websocket: WebSocket) -> None:
    service: Service = websocket.app.state.service
    await websocket.accept()
    try:
        model = service.model(websocket.query_params.get("model"))
    except ApiError as exc:
        await websocket.send_json({"error": exc.message})
        await websocket.close(code=1008)
        return
    pipeline = service.video_pipeline(model)
    limit = service.config.limits.max_frame_kb * 1024
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            data = message.get("bytes")
            if data is None:
                await websocket.send_json({"error": "send each camera frame as a binary image (JPEG, PNG, WebP, BMP, GIF, TIFF, HEIC or AVIF), not text"})
                continue
            if len(data) > limit:
                await websocket.send_json({"error": f"frame over the limit of {limit // 1024} KB"})
                continue
            try:
                answer = await anyio.to_thread.run_sync(_label, service, pipeline, model, data)
            except ApiError as exc:
                await websocket.send_json({"error": exc.message})
                continue
            await websocket.send_json(answer)
    except WebSocketDisconnect:
        return


def _label(service: Service, pipeline, model, data: bytes) -> dict:
    """Decode and label one frame on this connection's pipeline (blocking)."""
    image = decode_image(data, service.max_megapixels)
    _, result = pipeline(image, draw=False)
    answer = frame_answer(result, model, image.shape, pipeline.detector.name)
    answer["index"] = result.index
    return answer
