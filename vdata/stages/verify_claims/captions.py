"""What a caption sample is checked against when no frame verifier sees the clip.

A sample is never evidence for itself, and a caption sample's source is the caption stage: the clip's
caption, dense events and window steps (and the captions a sample cites) come from the same teacher
reading the same input, so none of them is evidence for it. What is said in the clip (transcript
segments, subtitles, cited transcript spans) is independent of it, and:

- a caption written from speech alone (the caption stage's `use_frames: false`: no frame went into
  it, its `caption_frame_timestamps` is empty) states only what was said. It is checked in full against
  that speech, as any sample is, and ends `verified` or rejected (`contradicted` / `hallucination`);
- a caption written from frames states mostly what was seen, which speech can neither confirm nor deny,
  so a supported ratio against speech would reject it for not being narrated. What speech can do is
  contradict what it says was said or counted: its claims are screened by the deterministic tier
  (`contradictions.py`); more refuted claims than `max_refuted_claims` reject it as `contradicted`,
  otherwise it stays `unverified` (what it saw was never checked), with no verdicts;
- with no independent evidence (no speech, or `transcript` / `cited` not among `evidence_sources`) it
  stays `unverified`.
"""
from __future__ import annotations

from vdata.schemas import records as R

from .contradictions import REFUTED, match_claim
from .facts import Evidence


def independent_evidence(ev: Evidence) -> Evidence:
    """The part of a caption sample's evidence that its caption stage did not write: what is said."""
    return Evidence.of([], [ev.speech] if ev.speech.strip() else [])


def written_from_speech(row: dict) -> bool:
    """The clip caption was written with no frame (caption `use_frames: false`): its source is the speech."""
    frames = row.get(R.CAPTION_FRAME_TIMESTAMPS)
    return (row.get(R.SAMPLE_SCOPE) != R.SCOPE_VIDEO and bool(row.get(R.CAPTION_STRATEGY))
            and frames is not None and len(frames) == 0)


def unverified(row: dict) -> dict:
    return {**row, R.V_CLAIMS: [], R.V_SUPPORTED_RATIO: None, R.V_REFUTED_CLAIMS: None, R.V_STATUS: R.STATUS_UNVERIFIED}


def screen_frame_caption(stage, row: dict, ev: Evidence):
    """A caption written from frames against what is said: rejected when speech contradicts it, else
    kept `unverified`."""
    claims = stage.claims_of(stage.texts_to_check(row)[0])
    verdicts = [match_claim(c, ev) for c in claims]
    refuted = [(c, note) for c, (v, note) in zip(claims, verdicts) if v == REFUTED]
    most = stage.config.max_refuted_claims
    if most is None or len(refuted) <= most:
        return unverified(row)
    row = {**row, R.V_CLAIMS: [{"claim": c, "supported": False, "verdict": REFUTED, "note": note} for c, note in refuted],
           R.V_SUPPORTED_RATIO: None, R.V_REFUTED_CLAIMS: len(refuted), R.V_STATUS: R.STATUS_UNVERIFIED}
    return stage.reject(row, "contradicted", f"{len(refuted)}/{len(claims)} claim(s) of a caption written from frames "
                        f"contradicted by what is said (max {most}): {[c for c, _ in refuted][:3]}",
                        refuted=[c for c, _ in refuted], notes=[n for _, n in refuted],
                        max_refuted_claims=most, checked_against="speech")
