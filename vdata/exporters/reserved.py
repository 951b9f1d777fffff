"""Text that a trainer would read as markup, written so that it reads as text.

A sample's prose comes from annotations, transcripts and teachers: a chapter titled "Embedding <video>
tags", a web description quoting "</s>", a teacher echoing "<|im_end|>". In a training record those
are not text. LLaMA-Factory and ms-swift count `<video>` / `<image>` tags against the record's media
and stop the run at the first record where they differ; LLaVA's trainer splits the prompt at every
`<image>`; a chat template's own tokens (`<|im_end|>`, `</s>`, `<|eot_id|>`) are read as special tokens by
the tokenizer and end the turn mid-sentence. The exporters' own placeholders are added after this, so
only the text's copies are changed: `<video>` becomes `‹video›` (single angle quotation marks), which
reads the same and is no token of any of these.
"""
from __future__ import annotations

from typing import Any

from vdata.prompts import plain_text
from vdata.schemas import records as R

# the sample and clip columns that hold prose (ids, paths and times are left as they are)
PROSE_COLUMNS = (R.QUESTION, R.ANSWER, R.OPTIONS, R.RATIONALE, R.RATIONALE_STEPS, R.CAPTION, R.DENSE_EVENTS,
                 R.CHOSEN, R.REJECTED, R.PREFERENCE_CANDIDATES, R.TURNS, R.EVIDENCE)


def neutralize(value: Any) -> tuple[Any, int]:
    """`value` (a string, or lists / dicts of them) with every reserved token made plain text, and how
    many there were."""
    if isinstance(value, str):
        return plain_text(value)
    if isinstance(value, list):
        out, total = [], 0
        for v in value:
            v, n = neutralize(v)
            out.append(v)
            total += n
        return out, total
    if isinstance(value, dict):
        out, total = {}, 0
        for k, v in value.items():
            out[k], n = neutralize(v)
            total += n
        return out, total
    return value, 0


# what the release formats also write from (chapter and segment texts, video captions, transcripts)
RELEASE_PROSE_COLUMNS = PROSE_COLUMNS + (R.ANNOTATIONS, R.VIDEO_CAPTION, R.CAPTION_FIELDS, R.TRANSCRIPT_SEGMENTS)


def neutralize_row(row: dict, columns: tuple[str, ...] = PROSE_COLUMNS) -> int:
    """Neutralize the prose columns of `row` in place; returns how many tokens were changed."""
    total = 0
    for col in columns:
        if row.get(col) is not None:
            row[col], n = neutralize(row[col])
            total += n
    return total
