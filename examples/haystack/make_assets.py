"""Regenerate the tiny needle assets of this example (already committed; run again to restore them).

    python examples/haystack/make_assets.py

Images are drawn with PIL, clips rendered from ffmpeg's lavfi sources, speech spoken by espeak-ng with
its transcript in a .txt beside each WAV (the transcript is the needle's label).
"""
from pathlib import Path

from vdata.haystack.demo_assets import write_demo_needles

if __name__ == "__main__":
    root = Path(__file__).resolve().parent / "needles"
    for kind, path in write_demo_needles(str(root)).items():
        print(f"{kind}: {path}")
