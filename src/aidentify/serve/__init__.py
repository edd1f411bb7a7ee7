"""``aidentify serve``: the emotion API and the browser view, one FastAPI app run by uvicorn.

``app.create_app(config)`` loads the models and face detectors once;
``routes`` holds the HTTP API and the page, ``live_ws`` the WebSocket that
labels the browser's camera frames, ``stream`` the MJPEG view of a server-side
camera or video, ``uploads`` the bounded, in-memory reading of what clients
send. This package uses faces, inference and live, never train: it never
imports TensorFlow for a ``.tflite`` model.
"""
