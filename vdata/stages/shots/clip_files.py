"""The file of one clip (`shots.write_clips`), cut by `vdata.media.clip_cut`: a stream copy where that is
exact (`clip_codec: copy_if_aligned`), else an H.264 encode; never a file without the clip's frames."""
from __future__ import annotations

import os

from vdata.media.clip_cut import cut_clip, holds_clip
from vdata.schemas import records as R


def clip_file(output_dir: str, path: str, clip: dict, clip_codec: str) -> str:
    """The path of the file of `clip` (a clip row of the video at `path`), written unless a file that holds
    the clip is there already (a build resumed after a crash). Raises MediaError when it cannot be written."""
    # not under clips/: that folder holds the dataset's Parquet files and nothing else
    out_dir = os.path.join(output_dir, "clip_files", clip[R.VIDEO_ID][:2])
    os.makedirs(out_dir, exist_ok=True)
    out = os.path.join(out_dir, f"{clip[R.CLIP_ID]}.mp4")
    start_s, duration_s = clip[R.START_S], clip[R.CLIP_DURATION_S]
    if os.path.exists(out) and holds_clip(out, path, start_s, duration_s):
        return out
    cut_clip(path, start_s, duration_s, out + ".part.mp4", copy=clip_codec == "copy_if_aligned")
    os.replace(out + ".part.mp4", out)  # a crash never leaves a half-written clip under the final name
    return out
