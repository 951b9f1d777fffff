"""structured (Koala-36M, Vript): a caption as named fields from a bounded JSON schema.

Presets (`structured.preset`), or your own `structured.fields`:
- `koala` (Koala-36M, arXiv 2410.08260: ~200-word structured captions): subject / motion / background /
  camera, all prose; `caption` joins the four.
- `vript` (Vript, huggingface.co/datasets/Mutonix/Vript README: each clip's caption is
  `{shot_type, camera_movement, content, scene_title}`): shot type and camera movement from the dense
  vocabularies (also written to `shot_type` / `camera_movement`), content and scene title as prose;
  `caption` is the content. Vript captions a video scene by scene with the previous scene's caption, the
  video title and the voice-over in the prompt: `previous_scene`, `title` and the stage's `transcript`.

Every field is validated like dense events: the schema bounds lengths and closes vocabularies, and the
reply is checked again (a blank field, a value outside its vocabulary, or a field that copies its own
instruction rejects the clip as `structured_field_invalid`, with the raw reply in the detail). The fields
are stored in `caption_fields` as a JSON object in schema order; the joined text in `caption`.

With `previous_scene`, the stage is fed whole videos (`CaptionStage.grouping`) and captions each video's
clips in time order: clip k waits for clip k-1's caption (the nearest earlier clip that got one).
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from vdata.prompts import shorten
from vdata.schemas import records as R

from .common import Captioner, Clip, RowReject, fmt, video_title
from .config import CAMERA_MOVEMENTS, SHOT_TYPES, StructuredField, caption_fields_of, schema_fields

def structured_schema(fields: list[StructuredField]) -> dict:
    """A bounded schema: closed vocabularies as enums, every string capped."""
    props = {}
    for f in fields:
        props[f.name] = ({"type": "string", "enum": list(f.choices)} if f.choices
                         else {"type": "string", "minLength": 1, "maxLength": f.max_chars})
    return {"type": "object", "properties": props, "required": [f.name for f in fields], "additionalProperties": False}


def field_lines(fields: list[StructuredField]) -> str:
    out = []
    for f in fields:
        if f.choices:
            out.append(f'- "{f.name}": {f.ask}, one of: {", ".join(f.choices)};')
        else:
            out.append(f'- "{f.name}": {f.ask} (at most {f.max_chars} characters);')
    return "\n".join(out)


def check_fields(reply: dict, fields: list[StructuredField]) -> tuple[dict[str, str], list[str]]:
    """The reply's field values (stripped, schema order) and what is wrong with them. A grammar keeps the
    shape, not the sense: a blank value, a value outside its vocabulary (a backend without grammars), an
    over-long one, or one that copies its own instruction is a problem."""
    values, problems = {}, []
    for f in fields:
        raw = reply.get(f.name) if isinstance(reply, dict) else None
        text = " ".join(str(raw).split()) if isinstance(raw, str) else ""
        if not text:
            problems.append(f"{f.name}: missing or blank")
        elif f.choices and text not in f.choices:
            problems.append(f"{f.name}: {text[:40]!r} is not one of {', '.join(f.choices)}")
        elif len(text) > f.max_chars and not f.choices:
            problems.append(f"{f.name}: {len(text)} characters, more than {f.max_chars}")
        elif text.lower().strip(" .") == f.ask.lower().strip(" ."):
            problems.append(f"{f.name}: copies its instruction instead of describing the clip")
        values[f.name] = text
    return values, problems


def joined_caption(values: dict[str, str], names: list[str]) -> str:
    """The caption text: the chosen fields as sentences, in order."""
    parts = []
    for n in names:
        text = values.get(n, "").strip()
        if text:
            parts.append(text if text[-1] in ".!?…" else text + ".")
    return " ".join(parts)


@dataclass
class PreviousScene:
    end_s: float          # video-absolute end of the previous clip
    caption: str


def context_values(cap: Captioner, clip: Clip, previous: PreviousScene | None) -> dict:
    """The `$title` and `$previous` blocks of the prompt ("" when off or unknown); records their template ids."""
    s = cap.config.structured
    out = {"title": "", "previous": ""}
    title = video_title(clip.row) if s.title else ""
    if title:
        prompt = cap.prompts["structured_title"]
        out["title"] = prompt.render(title=shorten(title, 200))
        clip.prompt_ids[prompt.id] = None
    if s.previous_scene and previous is not None and previous.caption.strip():
        prompt = cap.prompts["structured_previous"]
        out["previous"] = prompt.render(previous_end=fmt(previous.end_s),
                                        previous_caption=shorten(previous.caption, s.context_chars))
        clip.prompt_ids[prompt.id] = None
    return out


def structured_request(cap: Captioner, clip: Clip, previous: PreviousScene | None = None):
    """The one request of a clip: its frames, the field list, title / previous scene / voice-over."""
    fields = schema_fields(cap.config.structured)
    values = {"span_start": fmt(0.0), "span_end": fmt(clip.duration_s), "fields": field_lines(fields),
              **context_values(cap, clip, previous)}
    return cap.request(clip, "structured", clip.frames, values, schema=structured_schema(fields))


async def structured(cap: Captioner, clip: Clip, previous: PreviousScene | None = None) -> dict:
    c, t = cap.config, cap.config.teacher
    fields = schema_fields(c.structured)
    res = await cap.ask(t, structured_request(cap, clip, previous), "structured")
    got, problems = check_fields(res.parsed or {}, fields)
    if problems:
        raise RowReject(cap.reject(clip.row, "structured_field_invalid",
                                   f"caption: {len(problems)} structured field(s) invalid: {'; '.join(problems[:4])}",
                                   problems=problems, raw=res.text))
    caption = joined_caption(got, caption_fields_of(c.structured))
    if not caption:
        raise RowReject(cap.reject(clip.row, "structured_field_invalid", "caption: the fields joined into the caption "
                                   "are all blank", raw=res.text))
    return cap.row(clip, caption=caption, teacher=t, fields=json.dumps(got, ensure_ascii=False),
                   shot_type=got.get("shot_type") if got.get("shot_type") in SHOT_TYPES else None,
                   camera_movement=got.get("camera_movement") if got.get("camera_movement") in CAMERA_MOVEMENTS else None)


async def structured_video(cap: Captioner, clips: list, on_error) -> list:
    """A video's clips in time order, each with the previous caption as context; one outcome per clip
    (a row, or the Reject `on_error` makes of its failure). `clips`: (Clip or Reject) in time order."""
    out, previous = [], None
    for clip in clips:
        if not isinstance(clip, Clip):      # already a reject (no frames ...): no caption to pass on
            out.append(clip)
            continue
        try:
            row = await structured(cap, clip, previous)
        except Exception as exc:  # errors are values: this clip fails, the chain goes on
            out.append(on_error(clip.row, exc))
            continue
        previous = PreviousScene(float(row[R.END_S]), row[R.CAPTION])
        out.append(row)
    return out
