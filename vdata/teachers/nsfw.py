"""NSFW detection with NudeNet's detector, whose ONNX weights ship inside the `nudenet` wheel (MIT).

`pip install 'vdata[nsfw]'` brings it (onnxruntime, no torch). The detector is a small YOLO model at
320 px that finds body parts, exposed or covered, and faces; a frame's score for a set of classes is the
highest detection score among them (0 when none is detected; the detector reports nothing under 0.2).
Its label set is copied here so a config naming classes validates without importing onnxruntime;
`tests/test_nsfw.py` checks it against the package's.
"""
from __future__ import annotations

import os
from typing import Sequence

NUDENET_LABELS = (
    "FEMALE_GENITALIA_COVERED", "FACE_FEMALE", "BUTTOCKS_EXPOSED", "FEMALE_BREAST_EXPOSED",
    "FEMALE_GENITALIA_EXPOSED", "MALE_BREAST_EXPOSED", "ANUS_EXPOSED", "FEET_EXPOSED", "BELLY_COVERED",
    "FEET_COVERED", "ARMPITS_COVERED", "ARMPITS_EXPOSED", "FACE_MALE", "BELLY_EXPOSED", "MALE_GENITALIA_EXPOSED",
    "ANUS_COVERED", "FEMALE_BREAST_COVERED", "BUTTOCKS_COVERED",
)
# What a training set usually filters out: explicit exposure (not faces, feet, belly or covered parts).
EXPLICIT = ("FEMALE_GENITALIA_EXPOSED", "MALE_GENITALIA_EXPOSED", "FEMALE_BREAST_EXPOSED", "BUTTOCKS_EXPOSED",
            "ANUS_EXPOSED")


class NsfwDetector:
    """Per-frame class scores from NudeNet's detector (`model_path`: another ONNX export of it; default the
    packaged `320n.onnx`)."""

    def __init__(self, model_path: str | None = None, threads: int | None = None):
        try:
            import onnxruntime
            from nudenet import NudeDetector
        except ImportError:
            raise RuntimeError("the nsfw stage needs NudeNet: pip install 'vdata[nsfw]' (nudenet, MIT; its "
                               "ONNX detector ships in the wheel)") from None
        import nudenet.nudenet

        path = model_path or os.path.join(os.path.dirname(nudenet.nudenet.__file__), "320n.onnx")
        self.detector = NudeDetector(model_path=path)
        if threads:   # NudeDetector builds its session with default options: rebuild it with a thread cap
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            self.detector.onnx_session = onnxruntime.InferenceSession(path, options,
                                                                      providers=["CPUExecutionProvider"])
        self.name = "nudenet:" + (model_path or "320n.onnx")

    def class_scores(self, jpegs: Sequence[bytes], batch_size: int = 8) -> list[dict[str, float]]:
        """Encoded images → per image {class: highest detection score} (classes not detected absent)."""
        out = []
        for detections in self.detector.detect_batch(list(jpegs), batch_size=batch_size):
            scores: dict[str, float] = {}
            for d in detections:
                scores[d["class"]] = max(scores.get(d["class"], 0.0), float(d["score"]))
            out.append(scores)
        return out
