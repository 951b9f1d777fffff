"""The shots stage with `detector: transnetv2` (the `transnet` extra): the network over every frame."""
from __future__ import annotations

from typing import Any

from .detector_args import check_detector_args


def transnet_cuts(path: str, detector_args: dict[str, Any], threshold: float | None):
    """(cuts, frame times, decode errors, fps) from TransNetV2 over every frame of `path`."""
    from vdata.media import transnet

    check_detector_args("transnetv2", detector_args)   # a config read by parse_config has been checked already
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
