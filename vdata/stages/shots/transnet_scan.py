"""The shots stage with `detector: transnetv2` (the `transnet` extra): the network over every frame."""
from __future__ import annotations

from typing import Any

TRANSNET_ARGS = {"weights", "device", "batch"}


def transnet_cuts(path: str, detector_args: dict[str, Any], threshold: float | None):
    """(cuts, frame times, decode errors, fps) from TransNetV2 over every frame of `path`."""
    from vdata.media import transnet

    unknown = set(detector_args) - TRANSNET_ARGS
    if unknown:
        raise ValueError(f"shots.detector_args.{sorted(unknown)[0]}: not a transnetv2 argument "
                         f"(allowed: {', '.join(sorted(TRANSNET_ARGS))})")
    model = transnet.load_model(detector_args.get("weights"), detector_args.get("device", "auto"))
    probabilities, times, errors = transnet.scan(path, model, int(detector_args.get("batch", 8)))
    cuts = transnet.boundaries(probabilities, 0.5 if threshold is None else threshold)
    return cuts, times, errors, frames_per_second(path)


def frames_per_second(path: str) -> float:
    import av

    from vdata.media.streams import frame_rate, video_stream

    with av.open(path, metadata_errors="ignore") as container:
        stream = video_stream(container)
        return frame_rate(stream) or 25.0
