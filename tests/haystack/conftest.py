"""Haystack fixtures: real haystack sources (a lavfi render with a tone track, the real bikes clip
without audio, the real Big Buck Bunny clip with music), the demo needles (PIL images, lavfi clips,
espeak-ng speech), and one rendered + verified benchmark shared by the render and export tests."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from .haystack_helpers import haystack_config
from vdata.haystack.demo_assets import write_demo_needles
from vdata.media.synth import Segment, render_segments


@pytest.fixture(scope="session")
def hs_root(tmp_path_factory, bikes, bunny) -> Path:
    """A folder with videos/ (haystack sources) and needles/, where test configs are written."""
    root = tmp_path_factory.mktemp("haystack")
    videos = root / "videos"
    videos.mkdir()
    render_segments(str(videos / "bars_and_cards.mp4"),
                    [Segment("testsrc2", 5.0), Segment("smptebars", 3.0), Segment("color=c=0x2060c0", 2.0)],
                    size=(640, 360), audio_tone_hz=220)
    shutil.copy(bikes, videos / "bikes.mp4")
    shutil.copy(bunny, videos / "bunny.mp4")
    write_demo_needles(str(root / "needles"))
    return root


@pytest.fixture(scope="session")
def built(hs_root):
    """Every task × every needle type (image, text, clip, speech) rendered into 24 s haystacks and
    verified by decoding: 20 items, 80 questions with circular options."""
    from vdata.haystack import build_haystack

    return build_haystack(haystack_config(hs_root, "full"))
